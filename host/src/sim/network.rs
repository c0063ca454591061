//! The simulated network's fault model: delay, loss, duplication,
//! reordering and partitions. The [`super::Simulation`] applies it to every
//! message with its seeded generator.

use std::collections::{BTreeMap, BTreeSet};

use super::rng::SimRng;

const MS: u64 = 1_000_000;

/// How the simulated network treats messages. Change it at any time with
/// [`super::Simulation::set_network`]; it applies to messages sent after.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Shortest one-way delay, in nanoseconds.
    pub min_delay_ns: u64,
    /// Longest one-way delay (before reordering), in nanoseconds. Delays are
    /// uniform in `[min, max]`, so messages already overtake each other.
    pub max_delay_ns: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back by an extra 1–10 × the
    /// maximum delay, arriving well after later messages.
    pub reorder: f64,
}

impl Default for NetworkConfig {
    /// A healthy LAN: 0.5–2 ms delays, no loss, no duplication.
    fn default() -> Self {
        NetworkConfig {
            min_delay_ns: MS / 2,
            max_delay_ns: 2 * MS,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
        }
    }
}

impl NetworkConfig {
    /// One machine's loopback: 50–200 µs one way, nothing lost. What
    /// failover figures in virtual time compare with real processes on one
    /// host (`tenure-bench sim-failover`).
    pub fn loopback() -> Self {
        NetworkConfig {
            min_delay_ns: 50_000,
            max_delay_ns: 200_000,
            ..NetworkConfig::default()
        }
    }

    /// The delivery delays for one message: none if it is lost, two if it
    /// is duplicated.
    pub(crate) fn delays(&self, rng: &mut SimRng) -> Vec<u64> {
        if rng.chance(self.loss) {
            return Vec::new();
        }
        let copies = if rng.chance(self.duplicate) { 2 } else { 1 };
        (0..copies)
            .map(|_| {
                let mut delay = rng.range(self.min_delay_ns, self.max_delay_ns);
                if rng.chance(self.reorder) {
                    delay += rng.range(self.max_delay_ns, 10 * self.max_delay_ns);
                }
                delay
            })
            .collect()
    }
}

/// Which nodes can reach each other, link by link and in each direction:
/// every node is in a group and only nodes of the same group exchange
/// messages; on top of that, single directed links can be cut (a one-way
/// fault, or a bridge partition where one node still reaches both sides
/// that cannot reach each other) or slowed. Healed: one group, no cuts.
#[derive(Clone, Debug, Default)]
pub(crate) struct Partition {
    groups: Vec<u32>,
    /// Directed links `(from, to)` that drop everything.
    cut: BTreeSet<(usize, usize)>,
    /// Directed links `(from, to)` with this much extra delay.
    slow: BTreeMap<(usize, usize), u64>,
    /// Directed links `(from, to)` that drop each message with this
    /// probability (on top of the network's loss).
    lossy: BTreeMap<(usize, usize), f64>,
}

impl Partition {
    pub(crate) fn split(&mut self, node_count: usize, groups: &[&[usize]]) {
        self.groups = vec![0; node_count];
        for (g, members) in groups.iter().enumerate() {
            for &n in *members {
                if let Some(slot) = self.groups.get_mut(n) {
                    *slot = g as u32 + 1;
                }
            }
        }
    }

    /// Cuts the link from `from` to `to` (the other direction stays).
    pub(crate) fn cut(&mut self, from: usize, to: usize) {
        self.cut.insert((from, to));
    }

    /// Adds `extra_ns` of delay to every message from `from` to `to`.
    pub(crate) fn slow(&mut self, from: usize, to: usize, extra_ns: u64) {
        self.slow.insert((from, to), extra_ns);
    }

    /// Makes the link from `from` to `to` drop each message with
    /// probability `loss`.
    pub(crate) fn lossy(&mut self, from: usize, to: usize, loss: f64) {
        self.lossy.insert((from, to), loss);
    }

    /// The extra loss of the link from `from` to `to` (0 for most).
    pub(crate) fn loss(&self, from: usize, to: usize) -> f64 {
        self.lossy.get(&(from, to)).copied().unwrap_or(0.0)
    }

    /// The extra delay of the link from `from` to `to`.
    pub(crate) fn extra_delay(&self, from: usize, to: usize) -> u64 {
        self.slow.get(&(from, to)).copied().unwrap_or(0)
    }

    pub(crate) fn heal(&mut self) {
        self.groups.clear();
        self.cut.clear();
        self.slow.clear();
        self.lossy.clear();
    }

    /// Whether a message sent by `from` now reaches `to`.
    pub(crate) fn connected(&self, from: usize, to: usize) -> bool {
        let group = |n: usize| self.groups.get(n).copied().unwrap_or(0);
        group(from) == group(to) && !self.cut.contains(&(from, to))
    }

    pub(crate) fn is_split(&self) -> bool {
        let grouped =
            self.groups.iter().any(|&g| g != 0) && self.groups.iter().any(|&g| g != self.groups[0]);
        grouped || !self.cut.is_empty() || !self.slow.is_empty() || !self.lossy.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_and_heal() {
        let mut p = Partition::default();
        assert!(p.connected(0, 4));
        p.split(5, &[&[0, 1, 2], &[3, 4]]);
        assert!(p.is_split());
        assert!(p.connected(0, 2) && p.connected(3, 4));
        assert!(!p.connected(2, 3));
        p.heal();
        assert!(!p.is_split() && p.connected(2, 3));
    }

    #[test]
    fn one_way_cuts_and_bridges() {
        let mut p = Partition::default();
        p.cut(0, 1);
        assert!(p.is_split());
        assert!(!p.connected(0, 1) && p.connected(1, 0));
        // A bridge: 0 and 2 cannot reach each other, 1 reaches both.
        p.heal();
        p.cut(0, 2);
        p.cut(2, 0);
        assert!(p.connected(0, 1) && p.connected(1, 2) && !p.connected(0, 2));
        p.slow(1, 2, 7);
        assert_eq!((p.extra_delay(1, 2), p.extra_delay(2, 1)), (7, 0));
        p.heal();
        assert!(!p.is_split() && p.connected(0, 2) && p.extra_delay(1, 2) == 0);
    }

    #[test]
    fn unnamed_nodes_share_the_rest_group() {
        let mut p = Partition::default();
        p.split(4, &[&[0]]);
        assert!(p.connected(1, 3));
        assert!(!p.connected(0, 1));
    }

    #[test]
    fn loss_duplication_and_delay_bounds() {
        let mut rng = SimRng::new(3);
        let lossy = NetworkConfig {
            loss: 1.0,
            ..NetworkConfig::default()
        };
        assert!(lossy.delays(&mut rng).is_empty());
        let dup = NetworkConfig {
            duplicate: 1.0,
            ..NetworkConfig::default()
        };
        assert_eq!(dup.delays(&mut rng).len(), 2);
        let healthy = NetworkConfig::default();
        for _ in 0..1000 {
            for d in healthy.delays(&mut rng) {
                assert!((MS / 2..=2 * MS).contains(&d));
            }
        }
    }
}
