//! How long a node stays out of elections after its plugin refuses
//! leadership: [`FIRST_REFUSAL_BACKOFF`], doubling with each refusal in a
//! row up to [`MAX_REFUSAL_BACKOFF`], and back to the first once the node
//! leads without a refusal. Shared by real nodes and the simulator.

use std::time::Duration;

/// The back-off after a first refusal.
pub const FIRST_REFUSAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest back-off after repeated refusals.
pub const MAX_REFUSAL_BACKOFF: Duration = Duration::from_secs(30);

/// The refusal back-off of one node.
#[derive(Clone, Debug)]
pub struct RefusalBackoff {
    next: Duration,
}

impl Default for RefusalBackoff {
    fn default() -> Self {
        RefusalBackoff {
            next: FIRST_REFUSAL_BACKOFF,
        }
    }
}

impl RefusalBackoff {
    /// The plugin refused: returns how long to stay out of elections, and
    /// doubles the next back-off.
    pub fn refused(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(MAX_REFUSAL_BACKOFF);
        now
    }

    /// The plugin accepted leadership: the next refusal starts from the
    /// first back-off again.
    pub fn accepted(&mut self) {
        self.next = FIRST_REFUSAL_BACKOFF;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = RefusalBackoff::default();
        let seq: Vec<u64> = (0..7).map(|_| b.refused().as_secs()).collect();
        assert_eq!(seq, vec![1, 2, 4, 8, 16, 30, 30]);
        b.accepted();
        assert_eq!(b.refused().as_secs(), 1);
    }
}
