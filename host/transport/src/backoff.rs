//! Exponential reconnect back-off with jitter.

use std::time::Duration;

/// Delays from `min` doubling up to `max`; each delay handed out is drawn
/// uniformly from the upper half of the current step, so peers that lost a
/// node at the same moment do not redial it in lock-step.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    step: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            min,
            max,
            step: min,
        }
    }

    /// The next delay to wait, with jitter; doubles the step.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = step.saturating_mul(2).min(self.max);
        let half = step / 2;
        let jitter_nanos = u64::try_from((step - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=jitter_nanos))
    }

    /// Back to the first step, after a connection that held.
    pub fn reset(&mut self) {
        self.step = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_bounds_and_resets() {
        let (min, max) = (Duration::from_millis(20), Duration::from_millis(1000));
        let mut b = Backoff::new(min, max);
        let mut step = min;
        for _ in 0..12 {
            let d = b.next_delay();
            assert!(
                d >= step / 2 && d <= step,
                "{d:?} outside [{:?}, {step:?}]",
                step / 2
            );
            step = (step * 2).min(max);
        }
        assert_eq!(b.step, max);
        b.reset();
        assert!(b.next_delay() <= min);
    }
}
