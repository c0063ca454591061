//! Work that must not slow the node down. Compiling a component for a hot
//! swap keeps a core busy for seconds (a 12–18 MB Python or JavaScript
//! plugin); on a loaded machine that starved the node's own threads long
//! enough for a leader to miss its check-quorum and step down. So such work
//! runs on a thread of its own at a lower scheduling priority (nice +10 on
//! Linux), and the plugin engine compiles on that one thread only.

use anyhow::Context as _;

/// Runs `work` on a new low-priority thread named `tenure-{what}` and
/// waits for it without blocking the runtime.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// let sum = tenure_host::background::at_low_priority("sum", || 2 + 2).await?;
/// assert_eq!(sum, 4);
/// # Ok(()) }
/// ```
pub async fn at_low_priority<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("tenure-{what}"))
        .spawn(move || {
            lower_this_threads_priority();
            let _ = done.send(work());
        })
        .context("starting a background thread")?;
    result
        .await
        .with_context(|| format!("the {what} thread stopped without an answer"))
}

/// Nice +10 for the calling thread (Linux schedules threads one by one).
/// Best effort: if the kernel refuses, the work runs at normal priority.
#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority take plain integers, touch no memory
    // of ours and affect only the calling thread's scheduling priority.
    let refused = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0
    };
    if refused {
        tracing::debug!("could not lower a background thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_and_its_answer_comes_back() {
        let answer = at_low_priority("test", || 6 * 7).await.expect("runs");
        assert_eq!(answer, 42);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_not_a_hang() {
        let outcome = at_low_priority("boom", || -> u8 { panic!("on purpose") }).await;
        assert!(outcome.is_err());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_thread_runs_at_nice_ten() {
        let nice = at_low_priority("nice", || {
            // SAFETY: as above; getpriority only reads.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
        })
        .await
        .expect("runs");
        assert_eq!(nice, 10);
    }
}
