//! The simulated network's fault model: delay, loss, duplication,
//! reordering and partitions. The [`super::Simulation`] applies it to every
//! message with its seeded generator.

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

/// Which nodes can reach each other: every node is in a group, and only
/// nodes of the same group exchange messages. One group means healed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Partition {
    /// Group of each node, by node index; missing entries are group 0.
    groups: Vec<u32>,
}

impl Partition {
    /// Splits the nodes: each slice is a group; nodes not named form a
    /// group of their own together.
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

    /// Puts every node back in one group.
    pub(crate) fn heal(&mut self) {
        self.groups.clear();
    }

    /// Whether `a` and `b` can exchange messages.
    pub(crate) fn connected(&self, a: usize, b: usize) -> bool {
        let group = |n: usize| self.groups.get(n).copied().unwrap_or(0);
        group(a) == group(b)
    }

    /// Whether any split is in force.
    pub(crate) fn is_split(&self) -> bool {
        self.groups.iter().any(|&g| g != 0) && self.groups.iter().any(|&g| g != self.groups[0])
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
