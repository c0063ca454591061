//! Fair limits on what a plugin may ask of its node, and the counters that
//! show how often it hit them.
//!
//! Every request a plugin makes through `leader-api` (and every line it
//! writes to stdout or stderr) passes a [`PluginUsage`] first. Over a limit
//! the request is dropped or refused, the drop counted, and a warning
//! logged at most once per [`WARN_EVERY_NS`] per kind — so a hostile plugin
//! costs its node neither memory nor its heartbeats, and its log cannot
//! flood the node's.
//!
//! Rates are token buckets on the driver's clock (the simulator's virtual
//! time there, so a simulated run stays deterministic), with a burst of one
//! second's worth.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use serde::{Deserialize, Serialize};

/// At most one warning per kind of drop in this long (nanoseconds).
pub const WARN_EVERY_NS: u64 = 5_000_000_000;

/// The limits one plugin is held to; `[plugin-limits]` in the node's
/// config sets them. Defaults are generous for leader logic and small
/// next to what a node needs for itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PluginQuota {
    /// Messages per second through `send` and `broadcast` (a broadcast
    /// counts once per peer).
    pub messages_per_sec: u64,
    /// Payload bytes per second through `send` and `broadcast` (a
    /// broadcast counts once per peer).
    pub message_bytes_per_sec: u64,
    /// The largest payload of one message; larger ones are dropped. Below
    /// the transport's frame limit, so a plugin message never costs a
    /// connection.
    pub max_message_bytes: u64,
    /// Log lines per second, `log` and stdout/stderr together.
    pub log_lines_per_sec: u64,
    /// Log bytes per second, `log` and stdout/stderr together.
    pub log_bytes_per_sec: u64,
    /// The longest log line; longer ones are cut (and marked so).
    pub max_log_line_bytes: u64,
    /// Wake-ups pending at once; `schedule` beyond them returns 0.
    pub max_wakeups: u64,
    /// The largest `inspect()` answer, keys and values together; a larger
    /// one is replaced by a note saying so.
    pub max_inspect_bytes: u64,
    /// The largest `snapshot()`; a larger one fails the swap (the old
    /// version keeps running).
    pub max_snapshot_bytes: u64,
}

impl Default for PluginQuota {
    fn default() -> Self {
        PluginQuota {
            messages_per_sec: 1_000,
            message_bytes_per_sec: 1 << 20,
            max_message_bytes: 16 << 10,
            log_lines_per_sec: 200,
            log_bytes_per_sec: 256 << 10,
            max_log_line_bytes: 4 << 10,
            max_wakeups: 1_024,
            max_inspect_bytes: 64 << 10,
            max_snapshot_bytes: 16 << 20,
        }
    }
}

/// What a plugin had refused or dropped, and how it fared, since its node
/// started: `/status` shows it under `plugin.usage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageReport {
    /// Messages dropped: over the rate, or too large.
    pub messages_dropped: u64,
    /// Log lines dropped over the rate (stdout/stderr included).
    pub log_lines_dropped: u64,
    /// Log lines cut to the longest allowed.
    pub log_lines_truncated: u64,
    /// Lines the plugin wrote to stdout or stderr (logged, not inherited).
    pub output_lines: u64,
    /// `schedule` calls refused: too many wake-ups pending.
    pub wakeups_refused: u64,
    /// Inputs not delivered because the plugin's queue was full (never a
    /// protocol event: those are always delivered).
    pub inputs_dropped: u64,
    /// `inspect()` answers replaced for being too large.
    pub inspect_oversized: u64,
    /// Swaps refused because the snapshot was too large.
    pub snapshot_oversized: u64,
    /// HTTP requests allowed and sent.
    pub http_sent: u64,
    /// HTTP requests refused: not allowed, not leading, or too many.
    pub http_refused: u64,
    /// HTTP requests in flight now.
    pub http_in_flight: u64,
    /// HTTP requests that failed after they were sent (timeout, too large a
    /// response, connection error).
    pub http_failed: u64,
    /// Callbacks that returned an error (a refused leadership, config or
    /// snapshot, a failed call).
    pub errors: u64,
    /// Callbacks that trapped (other than at the memory cap).
    pub traps: u64,
    /// Callbacks that hit the memory cap.
    pub memory: u64,
    /// Hot swaps that took.
    pub swaps_ok: u64,
    /// Hot swaps refused (the old version kept running).
    pub swaps_refused: u64,
    /// Callbacks cut off at their deadline (computing or blocked).
    pub deadlines: u64,
}

/// One kind of request counted against a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Message,
    Log,
    Http,
}

/// A token bucket on the driver's clock.
#[derive(Debug)]
struct Bucket {
    /// Tokens available, scaled by 1e9 (token-nanoseconds per second).
    tokens: u128,
    last_ns: Option<u64>,
}

impl Bucket {
    const fn new() -> Bucket {
        Bucket {
            tokens: 0,
            last_ns: None,
        }
    }

    /// Takes `amount` at `now_ns` from a bucket refilled at `rate` per
    /// second with a burst of one second; false if there is not enough.
    fn take(&mut self, now_ns: u64, rate: u64, amount: u64) -> bool {
        let cap = u128::from(rate) * 1_000_000_000;
        let refill = match self.last_ns {
            None => cap,
            Some(last) => u128::from(now_ns.saturating_sub(last)) * u128::from(rate),
        };
        self.last_ns = Some(now_ns);
        self.tokens = (self.tokens + refill).min(cap);
        let need = u128::from(amount) * 1_000_000_000;
        if need > self.tokens {
            return false;
        }
        self.tokens -= need;
        true
    }
}

#[derive(Debug)]
struct Buckets {
    messages: Bucket,
    message_bytes: Bucket,
    log_lines: Bucket,
    log_bytes: Bucket,
    /// When each kind of drop was last warned about.
    warned_ns: [Option<u64>; 3],
}

/// The limits and counters of one plugin on one node, shared by every
/// instance and version of it (a swap or a respawn does not reset them).
#[derive(Debug)]
pub struct PluginUsage {
    quota: PluginQuota,
    /// The time of the input being handled, set by the driver.
    now_ns: AtomicU64,
    buckets: Mutex<Buckets>,
    pub(crate) messages_dropped: AtomicU64,
    pub(crate) log_lines_dropped: AtomicU64,
    pub(crate) log_lines_truncated: AtomicU64,
    pub(crate) output_lines: AtomicU64,
    pub(crate) wakeups_refused: AtomicU64,
    pub(crate) inputs_dropped: AtomicU64,
    pub(crate) inspect_oversized: AtomicU64,
    pub(crate) snapshot_oversized: AtomicU64,
    pub(crate) http_sent: AtomicU64,
    pub(crate) http_refused: AtomicU64,
    pub(crate) http_failed: AtomicU64,
    pub(crate) http_in_flight: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) traps: AtomicU64,
    pub(crate) memory: AtomicU64,
    pub(crate) deadlines: AtomicU64,
    pub(crate) swaps_ok: AtomicU64,
    pub(crate) swaps_refused: AtomicU64,
    /// Each callback's duration, by callback, for `/metrics`.
    pub(crate) callback_seconds: CallbackHistograms,
}

/// `tenure_plugin_callback_duration_seconds{callback}`.
pub(crate) type CallbackHistograms = Family<CallbackLabel, Histogram, fn() -> Histogram>;

/// A callback's WIT name, as a metric label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct CallbackLabel {
    /// `on-become-leader`, `on-call`, …
    pub callback: String,
}

impl PluginUsage {
    /// Fresh counters for a plugin held to `quota`.
    pub fn new(quota: PluginQuota) -> PluginUsage {
        PluginUsage {
            quota,
            now_ns: AtomicU64::new(0),
            buckets: Mutex::new(Buckets {
                messages: Bucket::new(),
                message_bytes: Bucket::new(),
                log_lines: Bucket::new(),
                log_bytes: Bucket::new(),
                warned_ns: [None; 3],
            }),
            messages_dropped: AtomicU64::new(0),
            log_lines_dropped: AtomicU64::new(0),
            log_lines_truncated: AtomicU64::new(0),
            output_lines: AtomicU64::new(0),
            wakeups_refused: AtomicU64::new(0),
            inputs_dropped: AtomicU64::new(0),
            inspect_oversized: AtomicU64::new(0),
            snapshot_oversized: AtomicU64::new(0),
            http_sent: AtomicU64::new(0),
            http_refused: AtomicU64::new(0),
            http_failed: AtomicU64::new(0),
            http_in_flight: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            traps: AtomicU64::new(0),
            memory: AtomicU64::new(0),
            deadlines: AtomicU64::new(0),
            swaps_ok: AtomicU64::new(0),
            swaps_refused: AtomicU64::new(0),
            callback_seconds: Family::new_with_constructor(crate::metrics::callback_histogram),
        }
    }

    /// The limits in force.
    pub fn quota(&self) -> &PluginQuota {
        &self.quota
    }

    /// Sets the clock the rates are measured on (the driver does, before
    /// each input).
    pub fn set_now(&self, now_ns: u64) {
        self.now_ns.store(now_ns, Ordering::Relaxed);
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `copies` messages of `bytes` each may go now; counts and
    /// (rarely) warns about a refusal.
    pub fn admit_message(&self, node: &str, plugin: &str, bytes: usize, copies: usize) -> bool {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let copies = u64::try_from(copies).unwrap_or(u64::MAX).max(1);
        let now = self.now_ns.load(Ordering::Relaxed);
        let mut b = self.buckets();
        let why = if bytes > self.quota.max_message_bytes {
            Some("larger than plugin-limits.max-message-bytes")
        } else if !b.messages.take(now, self.quota.messages_per_sec, copies)
            || !b.message_bytes.take(
                now,
                self.quota.message_bytes_per_sec,
                bytes.saturating_mul(copies),
            )
        {
            Some("over plugin-limits.messages-per-sec or message-bytes-per-sec")
        } else {
            None
        };
        let Some(why) = why else { return true };
        let dropped = self.messages_dropped.fetch_add(copies, Ordering::Relaxed) + copies;
        if warn_due(&mut b, Kind::Message, now) {
            tracing::warn!(
                node,
                plugin,
                bytes,
                dropped,
                "plugin message dropped: {why}"
            );
        }
        false
    }

    /// A log line as it may be written now: `None` if over the rate
    /// (counted), else the line, cut to the longest allowed.
    pub fn admit_log_line<'a>(
        &self,
        node: &str,
        plugin: &str,
        line: &'a str,
    ) -> Option<std::borrow::Cow<'a, str>> {
        let max = usize::try_from(self.quota.max_log_line_bytes).unwrap_or(usize::MAX);
        let line = if line.len() > max {
            self.log_lines_truncated.fetch_add(1, Ordering::Relaxed);
            let mut end = max;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            std::borrow::Cow::Owned(format!("{}… [cut at {max} bytes]", &line[..end]))
        } else {
            std::borrow::Cow::Borrowed(line)
        };
        let now = self.now_ns.load(Ordering::Relaxed);
        let mut b = self.buckets();
        let bytes = u64::try_from(line.len()).unwrap_or(u64::MAX);
        if b.log_lines.take(now, self.quota.log_lines_per_sec, 1)
            && b.log_bytes.take(now, self.quota.log_bytes_per_sec, bytes)
        {
            return Some(line);
        }
        let dropped = self.log_lines_dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if warn_due(&mut b, Kind::Log, now) {
            tracing::warn!(
                node,
                plugin,
                dropped,
                "plugin log lines dropped: over plugin-limits.log-lines-per-sec or log-bytes-per-sec"
            );
        }
        None
    }

    /// Whether a refused HTTP request should be logged now (at most once
    /// per [`WARN_EVERY_NS`]).
    pub fn warn_http_due(&self) -> bool {
        let now = self.now_ns.load(Ordering::Relaxed);
        warn_due(&mut self.buckets(), Kind::Http, now)
    }

    /// Notes that `callback` took `took`.
    pub fn observe_callback(&self, callback: &str, took: std::time::Duration) {
        self.callback_seconds
            .get_or_create(&CallbackLabel {
                callback: callback.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one more of `counter` (one of this struct's counters).
    pub(crate) fn bump(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The counters now.
    pub fn report(&self) -> UsageReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        UsageReport {
            messages_dropped: get(&self.messages_dropped),
            log_lines_dropped: get(&self.log_lines_dropped),
            log_lines_truncated: get(&self.log_lines_truncated),
            output_lines: get(&self.output_lines),
            wakeups_refused: get(&self.wakeups_refused),
            inputs_dropped: get(&self.inputs_dropped),
            inspect_oversized: get(&self.inspect_oversized),
            snapshot_oversized: get(&self.snapshot_oversized),
            http_sent: get(&self.http_sent),
            http_refused: get(&self.http_refused),
            http_failed: get(&self.http_failed),
            http_in_flight: get(&self.http_in_flight),
            errors: get(&self.errors),
            traps: get(&self.traps),
            memory: get(&self.memory),
            deadlines: get(&self.deadlines),
            swaps_ok: get(&self.swaps_ok),
            swaps_refused: get(&self.swaps_refused),
        }
    }
}

impl Default for PluginUsage {
    fn default() -> Self {
        PluginUsage::new(PluginQuota::default())
    }
}

/// Whether a warning about `kind` is due at `now` (and notes it if so).
fn warn_due(b: &mut Buckets, kind: Kind, now: u64) -> bool {
    let slot = &mut b.warned_ns[kind as usize];
    if slot.is_some_and(|at| now.saturating_sub(at) < WARN_EVERY_NS) {
        return false;
    }
    *slot = Some(now);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_bucket_allows_a_seconds_burst_then_its_rate() {
        let mut b = Bucket::new();
        assert!((0..10).all(|_| b.take(0, 10, 1)), "a full second's burst");
        assert!(!b.take(0, 10, 1), "then nothing until it refills");
        assert!(b.take(SEC / 10, 10, 1), "one token per tenth of a second");
        assert!(!b.take(SEC / 10, 10, 1));
        assert!(
            !b.take(100 * SEC, 10, 11),
            "never more than the burst at once"
        );
    }

    #[test]
    fn messages_over_the_rate_or_size_are_dropped_and_counted() {
        let usage = PluginUsage::new(PluginQuota {
            messages_per_sec: 5,
            max_message_bytes: 100,
            ..PluginQuota::default()
        });
        assert!(!usage.admit_message("n1", "p", 101, 1), "too large");
        assert!((0..5).all(|_| usage.admit_message("n1", "p", 10, 1)));
        assert!(!usage.admit_message("n1", "p", 10, 1), "over the rate");
        assert!(
            !usage.admit_message("n1", "p", 10, 3),
            "a broadcast counts per peer"
        );
        assert_eq!(usage.report().messages_dropped, 1 + 1 + 3);
        usage.set_now(SEC);
        assert!(
            usage.admit_message("n1", "p", 10, 3),
            "refilled a second later"
        );
    }

    #[test]
    fn long_log_lines_are_cut_and_a_flood_is_dropped() {
        let usage = PluginUsage::new(PluginQuota {
            log_lines_per_sec: 3,
            max_log_line_bytes: 8,
            ..PluginQuota::default()
        });
        let cut = usage
            .admit_log_line("n1", "p", "ééééééé")
            .expect("admitted");
        assert!(
            cut.starts_with("éééé…"),
            "cut on a character boundary: {cut}"
        );
        assert_eq!(
            usage.admit_log_line("n1", "p", "short").as_deref(),
            Some("short")
        );
        assert!(usage.admit_log_line("n1", "p", "third").is_some());
        assert!(usage.admit_log_line("n1", "p", "fourth").is_none());
        let report = usage.report();
        assert_eq!(
            (report.log_lines_truncated, report.log_lines_dropped),
            (1, 1)
        );
    }
}
