//! The protocol's timers on real time: `set-timer` and `cancel-timer` keep
//! a sorted set of deadlines, and one OS timer is armed for the earliest.
//!
//! Why not tokio's timers (or `DelayQueue`, built the same way)? They are
//! hierarchical wheels with 1 ms slots, 64 to a level: a deadline more than
//! a level-0 span ahead wakes the thread once where its slot cascades down
//! and again when it is due. An idle leader's 50 ms heartbeat timer
//! crossed a 64 ms boundary most rounds, so the process woke ~100 times a
//! second instead of ~60 — and on a VM each wake-up costs tens of
//! microseconds of kernel scheduling, most of an idle node's CPU. On Linux
//! the OS timer here is a `timerfd` (through rustix's safe API) watched by
//! tokio's reactor: one wake-up per expiry, to the nanosecond. Elsewhere
//! it is one tokio sleep, reset to the earliest deadline.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// Armed timers, by the protocol's ids.
pub struct Timers {
    /// (deadline, id), earliest first.
    due: BTreeSet<(Instant, u64)>,
    deadlines: HashMap<u64, Instant>,
    /// The deadline the OS timer is armed for, if any.
    armed_for: Option<Instant>,
    os: os::OsTimer,
}

impl Timers {
    /// No timers armed. Needs a tokio runtime with I/O enabled (the OS
    /// timer registers with its reactor).
    pub fn new() -> std::io::Result<Timers> {
        Ok(Timers {
            due: BTreeSet::new(),
            deadlines: HashMap::new(),
            armed_for: None,
            os: os::OsTimer::new()?,
        })
    }

    /// Arms timer `id` to expire after `after_ns` (replacing an armed one
    /// with the same id).
    pub fn set(&mut self, id: u64, after_ns: u64) {
        self.cancel(id);
        let deadline = Instant::now() + Duration::from_nanos(after_ns);
        self.due.insert((deadline, id));
        self.deadlines.insert(id, deadline);
    }

    /// Disarms timer `id`; unknown ids are ignored.
    pub fn cancel(&mut self, id: u64) {
        if let Some(deadline) = self.deadlines.remove(&id) {
            self.due.remove(&(deadline, id));
        }
    }

    /// Waits for the next timer to expire and returns its id. Pending
    /// forever while none is armed (so it can sit in a `select!`), and
    /// safe to drop mid-wait (as `select!` does): nothing is lost.
    pub async fn next_expired(&mut self) -> u64 {
        loop {
            let Some(&(deadline, id)) = self.due.first() else {
                return std::future::pending().await;
            };
            if deadline <= Instant::now() {
                self.due.remove(&(deadline, id));
                self.deadlines.remove(&id);
                return id;
            }
            // Re-armed only when the earliest deadline moved: a follower
            // re-arms its election timer on every heartbeat, and the OS
            // timer then stays where it is until that deadline changes.
            if self.armed_for != Some(deadline) {
                if let Err(e) = self.os.arm(deadline - Instant::now()) {
                    tracing::error!(error = %e, "cannot arm the OS timer; retrying in 1 ms");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                self.armed_for = Some(deadline);
            }
            if let Err(e) = self.os.wait().await {
                tracing::error!(error = %e, "the OS timer failed; retrying in 1 ms");
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            self.armed_for = None;
        }
    }
}

#[cfg(target_os = "linux")]
mod os {
    use std::os::fd::OwnedFd;
    use std::time::Duration;

    use rustix::time::{
        Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create,
        timerfd_settime,
    };
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// A non-blocking monotonic `timerfd` in tokio's reactor.
    pub struct OsTimer {
        fd: AsyncFd<OwnedFd>,
    }

    impl OsTimer {
        pub fn new() -> std::io::Result<OsTimer> {
            let fd = timerfd_create(
                TimerfdClockId::Monotonic,
                TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
            )?;
            // SAFETY: an `OwnedFd` is a valid, open descriptor that stays
            // open and always answers the same `as_raw_fd` for as long as
            // it is owned — here, by the `AsyncFd`, until it is dropped.
            let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
                .map_err(std::io::Error::from)?;
            Ok(OsTimer { fd })
        }

        /// Fires once, `after` from now (at least 1 ns: zero would disarm).
        pub fn arm(&self, after: Duration) -> std::io::Result<()> {
            let after = after.max(Duration::from_nanos(1));
            let value = Itimerspec {
                it_interval: Timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: Timespec {
                    tv_sec: i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(after.subsec_nanos()),
                },
            };
            timerfd_settime(self.fd.get_ref(), TimerfdTimerFlags::empty(), &value)?;
            Ok(())
        }

        /// Until the timer fires (at once if it fired meanwhile).
        pub async fn wait(&self) -> std::io::Result<()> {
            loop {
                let mut ready = self.fd.readable().await?;
                let mut expirations = [0u8; 8];
                match ready.try_io(|fd| {
                    rustix::io::read(fd.get_ref(), &mut expirations).map_err(std::io::Error::from)
                }) {
                    Ok(result) => return result.map(|_| ()),
                    // Not expired yet (a spurious readiness): wait again.
                    Err(_would_block) => continue,
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use std::sync::Mutex;
    use std::time::Duration;

    use tokio::time::Instant;

    /// One tokio sleep, reset to the earliest deadline.
    pub struct OsTimer {
        deadline: Mutex<Option<Instant>>,
    }

    impl OsTimer {
        pub fn new() -> std::io::Result<OsTimer> {
            Ok(OsTimer {
                deadline: Mutex::new(None),
            })
        }

        pub fn arm(&self, after: Duration) -> std::io::Result<()> {
            *self.deadline.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + after);
            Ok(())
        }

        pub async fn wait(&self) -> std::io::Result<()> {
            let deadline = *self.deadline.lock().unwrap_or_else(|e| e.into_inner());
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn timers_fire_in_order_and_cancelled_ones_do_not() {
        let mut t = Timers::new().expect("an OS timer");
        let started = Instant::now();
        t.set(1, 30_000_000);
        t.set(2, 10_000_000);
        t.set(3, 20_000_000);
        t.cancel(3);
        assert_eq!(t.next_expired().await, 2);
        assert!(started.elapsed() >= Duration::from_millis(10));
        assert_eq!(t.next_expired().await, 1);
        assert!(started.elapsed() >= Duration::from_millis(30));
        let nothing = tokio::time::timeout(Duration::from_millis(200), t.next_expired()).await;
        assert!(nothing.is_err(), "no timer left");
    }

    #[tokio::test]
    async fn a_wait_dropped_midway_loses_nothing_and_re_arming_moves_the_deadline() {
        let mut t = Timers::new().expect("an OS timer");
        t.set(7, 40_000_000);
        // Dropped before the timer fires, as a select! does.
        let early = tokio::time::timeout(Duration::from_millis(5), t.next_expired()).await;
        assert!(early.is_err());
        // Re-armed sooner: the earlier deadline wins.
        t.set(7, 1_000_000);
        let started = Instant::now();
        assert_eq!(t.next_expired().await, 7);
        assert!(
            started.elapsed() < Duration::from_millis(30),
            "the old deadline was kept"
        );
        // Re-armed later: it does not fire at the old one.
        t.set(8, 1_000_000);
        t.set(8, 60_000_000);
        let started = Instant::now();
        assert_eq!(t.next_expired().await, 8);
        assert!(started.elapsed() >= Duration::from_millis(60));
    }
}
