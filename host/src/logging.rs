//! Where a node's log lines go: to stderr, through a writer thread, so a
//! stalled stderr never stalls the node.
//!
//! A node runs on one runtime thread, which also sends its heartbeats. A
//! `write` to a stderr that nobody drains blocks: a terminal paused with
//! Ctrl-S, a pipe into a reader that stopped, a container log driver in
//! blocking mode. Made inline, as `tracing`'s writer does by default, the
//! first line that does not fit froze the whole node, and a leader was
//! deposed by its own logging. Here each line is queued for a thread of
//! its own (up to [`BUFFERED_LINES`] of them); past that, lines are
//! dropped, never waited for, and counted: [`dropped_lines`], served as
//! the metric `tenure_log_lines_dropped_total`.
//!
//! ```no_run
//! let (writer, _guard) = tenure_host::logging::stderr_writer();
//! tracing_subscriber::fmt().with_writer(writer).init();
//! // Keep `_guard` until the process ends: dropping it writes out what
//! // is queued (waiting at most about a second for a blocked stderr).
//! ```

use std::sync::OnceLock;

use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};

/// How many lines may wait for a slow stderr before new ones are dropped:
/// a few MB at most, and minutes of a node's `info` output.
pub const BUFFERED_LINES: usize = 16_384;

/// Test builds only: a smaller queue, so a test fills it with the lines a
/// node writes at start (see tests/output.rs). A node warns when it is set.
pub const BUFFER_ENV: &str = "TENURE_TEST_LOG_BUFFER_LINES";

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// The queue length [`BUFFER_ENV`] asks for, if it is set to one.
fn test_buffer_lines() -> Option<usize> {
    std::env::var(BUFFER_ENV)
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
}

/// A writer to stderr that never blocks its caller, and the guard that
/// flushes it when dropped. Counts what it drops ([`dropped_lines`]).
pub fn stderr_writer() -> (NonBlocking, WorkerGuard) {
    let lines = test_buffer_lines().unwrap_or(BUFFERED_LINES);
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(lines)
        .thread_name("tenure-log")
        .finish(std::io::stderr());
    let _ = DROPPED.set(writer.error_counter());
    (writer, guard)
}

/// Log lines dropped since the process started because stderr fell
/// behind; 0 when logs do not go through [`stderr_writer`].
pub fn dropped_lines() -> u64 {
    DROPPED
        .get()
        .map_or(0, |c| u64::try_from(c.dropped_lines()).unwrap_or(u64::MAX))
}

/// Warns, through the log, when [`BUFFER_ENV`] shortened the queue: it
/// is for tests.
pub fn warn_if_test_buffer() {
    if let Some(lines) = test_buffer_lines() {
        tracing::warn!(
            lines,
            "{BUFFER_ENV} is set: the log queue is shortened for a test"
        );
    }
}
