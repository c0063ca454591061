//! Where a plugin's asynchronous work runs: one small Tokio runtime per
//! process, apart from the node's own.
//!
//! Callbacks are wasmtime async calls ([`block_on`] drives each on the
//! calling thread, the plugin's own), so that a deadline also covers time
//! a plugin spends blocked in a host call — waiting on an HTTP response, a
//! clock, a stream — and not just time spent computing. WASI's host side
//! (timers, HTTP connections) lives on this runtime, entered for the call:
//! never on the node's runtime, whose threads carry heartbeats, and never
//! by starting a runtime inside one (which panics).
//!
//! A request a plugin starts runs here as a task of its own, so it makes
//! progress between callbacks too.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::runtime::Runtime;

/// The plugin I/O runtime: one worker thread, started on first use.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tenure-plugin-io")
            .enable_all()
            .build()
            // Only fails when the OS refuses a thread or an epoll: the
            // process cannot run plugins (nor much else) then.
            .unwrap_or_else(|e| panic!("cannot start the plugin I/O runtime: {e}"))
    })
}

/// Wakes the thread that waits in [`block_on`].
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread, with the plugin I/O runtime
/// entered (its timers and I/O drivers serve the future). Safe to call from
/// any thread, a thread of another Tokio runtime included: it only parks
/// this thread, it does not start a runtime here. Tokio futures that need
/// the runtime when they are made (a `sleep`, a `timeout`) must be made
/// inside `future` — an `async` block — not passed in ready-made.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let _entered = runtime().enter();
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn timers_work_and_a_timeout_cuts_a_long_wait() {
        let started = Instant::now();
        let out = super::block_on(async {
            tokio::time::timeout(
                Duration::from_millis(20),
                tokio::time::sleep(Duration::from_secs(3600)),
            )
            .await
        });
        assert!(out.is_err(), "the hour-long sleep was cut");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn it_does_not_panic_inside_another_runtime() {
        let out = super::block_on(async { 42 });
        assert_eq!(out, 42);
    }
}
