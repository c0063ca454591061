//! Summaries of a sample: percentiles, and the theoretical failover time.

use std::fmt;

/// Order statistics of a sample of durations in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub min: f64,
    pub median: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    /// Summarises `sample`; `None` if it is empty. Percentiles are
    /// nearest-rank (the smallest value with at least q of the sample at or
    /// below it), so with 30 trials p99 is the maximum.
    pub fn of(sample: &[f64]) -> Option<Summary> {
        if sample.is_empty() {
            return None;
        }
        let mut sorted = sample.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let index = (q * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        let median = if sorted.len() % 2 == 1 {
            sorted[sorted.len() / 2]
        } else {
            (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
        };
        Some(Summary {
            count: sorted.len(),
            min: sorted[0],
            median,
            p90: rank(0.90),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        })
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "min {:.1}  median {:.1}  p90 {:.1}  p99 {:.1}  max {:.1} ms",
            self.min, self.median, self.p90, self.p99, self.max
        )
    }
}

/// The expected failover time on the timeout path (a frozen leader, or
/// fast failover off). Followers re-arm on every heartbeat for the
/// minimum timeout `min` plus their turn (see the README's *Timeout
/// turns*): the first in line waits `min` and a jitter uniform in half a
/// slot (a slot is a fifth of a heartbeat `h`, at least 5 ms), counted
/// from the last heartbeat, which came on average `h / 2` before the
/// fault: `min + slot / 4 - h / 2`, whatever the number of survivors.
/// Leaves out the election's round trips (about a millisecond on
/// loopback).
pub fn theoretical_failover_ms(min: f64, heartbeat: f64) -> f64 {
    let slot = (heartbeat / 5.0).max(5.0);
    min + slot / 4.0 - heartbeat / 2.0
}

/// The expectation with Raft's randomized timeouts, which Tenure used
/// before its timeout turns (and etcd still uses, see
/// [`etcd_theoretical_failover_ms`]): each of the `survivors` draws a
/// timeout uniform in `[min, max]` after the last heartbeat; the earliest
/// of `m` uniforms is `min + (max - min) / (m + 1)`.
pub fn randomized_failover_ms(min: f64, max: f64, heartbeat: f64, survivors: usize) -> f64 {
    min + (max - min) / (survivors as f64 + 1.0) - heartbeat / 2.0
}

/// The same expectation for etcd, whose clock is a tick of one heartbeat
/// `h`: each follower draws a whole number of ticks uniform in `[k, 2k)`
/// (`k` = election / heartbeat) and counts them from the last heartbeat
/// on its own ticker, whose phase is uniform. The earliest of `m` draws is
/// `E[min]` ticks; the first counted tick comes on average half a tick
/// after the heartbeat, and the heartbeat half a tick before the crash:
/// `h × (E[min] − 1)`.
pub fn etcd_theoretical_failover_ms(heartbeat: f64, election: f64, survivors: usize) -> f64 {
    let k = (election / heartbeat).round().max(1.0) as u32;
    // E[min] = k + sum over j in k+1..2k of P(every draw >= j).
    let tail: f64 = (k + 1..2 * k)
        .map(|j| (f64::from(2 * k - j) / f64::from(k)).powi(survivors as i32))
        .sum();
    heartbeat * (f64::from(k) + tail - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let sample: Vec<f64> = (1..=30).map(f64::from).collect();
        let s = Summary::of(&sample).unwrap();
        assert_eq!(
            (s.min, s.median, s.p90, s.p99, s.max),
            (1.0, 15.5, 27.0, 30.0, 30.0)
        );
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn theory_matches_the_issue() {
        // The issue's 175 ms was the randomized timers' expectation.
        assert_eq!(randomized_failover_ms(150.0, 300.0, 50.0, 2), 175.0);
        // Turns: 150 + 10 / 4 - 25.
        assert_eq!(theoretical_failover_ms(150.0, 50.0), 127.5);
    }

    #[test]
    fn etcd_theory_counts_ticks() {
        // k = 5 ticks of 30 ms, 2 survivors: E[min] = 5 + (16+9+4+1)/25.
        let expected = 30.0 * (5.0 + 30.0 / 25.0 - 1.0);
        assert!((etcd_theoretical_failover_ms(30.0, 150.0, 2) - expected).abs() < 1e-9);
    }
}
