//! The protocol's timers on tokio: `set-timer` and `cancel-timer` map onto
//! a [`DelayQueue`], and [`Timers::next_expired`] yields expired ids.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio_util::time::{DelayQueue, delay_queue};

/// Armed timers, by the protocol's ids.
#[derive(Default)]
pub struct Timers {
    queue: DelayQueue<u64>,
    keys: HashMap<u64, delay_queue::Key>,
}

impl Timers {
    /// Arms timer `id` to expire after `after_ns` (replacing an armed one
    /// with the same id).
    pub fn set(&mut self, id: u64, after_ns: u64) {
        self.cancel(id);
        let key = self.queue.insert(id, Duration::from_nanos(after_ns));
        self.keys.insert(id, key);
    }

    /// Disarms timer `id`; unknown ids are ignored.
    pub fn cancel(&mut self, id: u64) {
        if let Some(key) = self.keys.remove(&id) {
            self.queue.try_remove(&key);
        }
    }

    /// Waits for the next timer to expire and returns its id. Pending
    /// forever while none is armed (so it can sit in a `select!`).
    pub async fn next_expired(&mut self) -> Option<u64> {
        if self.queue.is_empty() {
            std::future::pending::<()>().await;
        }
        let expired = self.queue.next().await?;
        let id = expired.into_inner();
        self.keys.remove(&id);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn timers_fire_in_order_and_cancelled_ones_do_not() {
        let mut t = Timers::default();
        t.set(1, 30_000_000);
        t.set(2, 10_000_000);
        t.set(3, 20_000_000);
        t.cancel(3);
        assert_eq!(t.next_expired().await, Some(2));
        assert_eq!(t.next_expired().await, Some(1));
        let nothing = tokio::time::timeout(Duration::from_secs(5), t.next_expired()).await;
        assert!(nothing.is_err(), "no timer left");
    }
}
