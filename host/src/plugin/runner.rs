//! The plugin's own thread on a real node: it owns a [`PluginDriver`] (and
//! so the plugin's store), feeds it inputs in order on the monotonic clock,
//! fires its wake-ups, and forwards what it asks for to the node task.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::mpsc as tokio_mpsc;
use tokio::sync::oneshot;

use super::driver::PluginDriver;
pub use super::driver::{PluginInput, PluginOutput};
use super::{PluginComponent, PluginLimits, SharedView};

/// Inputs other than protocol events queued for the plugin beyond this are
/// dropped (counted, and logged now and then): a plugin that falls behind
/// must not hold up its node. Protocol events — leadership, terms, peers —
/// are never dropped: the protocol makes few, and a plugin that missed
/// `on-become-follower` would go on acting as leader.
pub const INPUT_QUEUE: usize = 1024;

/// A running plugin thread.
pub struct PluginHandle {
    inputs: Sender<PluginInput>,
    /// Inputs queued that could be dropped (all but protocol events).
    droppable_queued: Arc<AtomicUsize>,
    /// Set when the node lets go of the plugin: the thread stops after its
    /// current callback, whatever is still queued.
    stopping: Arc<AtomicBool>,
    usage: Arc<super::quota::PluginUsage>,
    thread: Option<JoinHandle<()>>,
    /// The running version's name and sha256; the thread updates them when
    /// a swap succeeds.
    version: Arc<Mutex<(String, String)>>,
}

impl PluginHandle {
    /// Starts the plugin's thread, which instantiates and `init`s the
    /// plugin (an error there refuses the plugin and is returned) and then
    /// serves its inputs. Start-up takes up to the plugin's deadline (and
    /// a compile's worth of instantiation): it runs on the plugin's thread,
    /// never on the caller's, so a node awaiting this on its one-thread
    /// runtime goes on with its other tasks meanwhile.
    pub async fn start(
        component: Arc<PluginComponent>,
        config: BTreeMap<String, String>,
        limits: PluginLimits,
        view: SharedView,
        outputs: tokio_mpsc::UnboundedSender<PluginOutput>,
    ) -> anyhow::Result<PluginHandle> {
        let origin = Instant::now();
        let usage = limits.usage.clone();
        let version = Arc::new(Mutex::new((
            component.name().to_string(),
            component.sha256().to_string(),
        )));
        let (inputs, rx) = mpsc::channel();
        let thread_version = version.clone();
        let droppable_queued = Arc::new(AtomicUsize::new(0));
        let queued = droppable_queued.clone();
        let stopping = Arc::new(AtomicBool::new(false));
        let stop = stopping.clone();
        let (started_tx, started) = oneshot::channel();
        let name = component.name().to_string();
        let thread = std::thread::Builder::new()
            .name(format!("plugin-{name}"))
            .spawn(move || {
                let (driver, first) = match PluginDriver::start(component, config, limits, view, 0)
                {
                    Ok(started) => started,
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                        return;
                    }
                };
                forward(&outputs, first);
                // A caller that gave up waiting has no handle to serve.
                if started_tx.send(Ok(())).is_ok() {
                    run(driver, rx, outputs, origin, thread_version, queued, stop);
                }
            })
            .context("starting the plugin thread")?;
        let outcome = started.await;
        let handle = PluginHandle {
            inputs,
            droppable_queued,
            stopping,
            usage,
            thread: Some(thread),
            version,
        };
        match outcome {
            Ok(Ok(())) => Ok(handle),
            // The thread has ended: dropping the handle joins it at once.
            Ok(Err(refused)) => Err(refused),
            Err(_) => {
                tracing::error!(plugin = %name, "the plugin thread ended during start-up");
                Err(anyhow::anyhow!(
                    "the plugin thread ended during start-up (it panicked; see the log)"
                ))
            }
        }
    }

    /// Queues an input; never blocks. Returns false if it was dropped: only
    /// an input other than a protocol event, and only with [`INPUT_QUEUE`]
    /// of those waiting already (a dropped call's caller is told the plugin
    /// is busy).
    pub fn deliver(&self, input: PluginInput) -> bool {
        let droppable = !matches!(input, PluginInput::Event(_));
        if droppable {
            if self.droppable_queued.load(Ordering::Relaxed) >= INPUT_QUEUE {
                let dropped = super::quota::PluginUsage::bump(&self.usage.inputs_dropped);
                if dropped.is_power_of_two() {
                    tracing::warn!(plugin = %self.name(), dropped, "plugin input queue full; input dropped");
                }
                if let PluginInput::Call { reply, .. } = input {
                    let _ = reply.send(Err("the plugin is busy: its input queue is full".into()));
                }
                return false;
            }
            self.droppable_queued.fetch_add(1, Ordering::Relaxed);
        }
        self.inputs.send(input).is_ok()
    }

    /// The plugin's quota and what was refused under it.
    pub fn usage(&self) -> &Arc<super::quota::PluginUsage> {
        &self.usage
    }

    /// The running version's file name.
    pub fn name(&self) -> String {
        self.version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// sha256 of the running version, hex.
    pub fn sha256(&self) -> String {
        self.version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }
}

impl Drop for PluginHandle {
    fn drop(&mut self) {
        // The thread ends after its current callback (bounded by the
        // deadline), not after everything still queued: a node stopping
        // must not wait out a queue of slow calls.
        self.stopping.store(true, Ordering::SeqCst);
        let (closed, _) = mpsc::channel();
        self.inputs = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends the driver's outputs to the node task; log lines were already
/// written to `tracing` and stay here.
fn forward(outputs: &tokio_mpsc::UnboundedSender<PluginOutput>, batch: Vec<PluginOutput>) {
    for output in batch {
        if !matches!(output, PluginOutput::Log { .. }) {
            let _ = outputs.send(output);
        }
    }
}

/// The plugin thread: inputs in order, wake-ups when due, until the node
/// closes the input channel.
fn run(
    mut driver: PluginDriver,
    inputs: Receiver<PluginInput>,
    outputs: tokio_mpsc::UnboundedSender<PluginOutput>,
    origin: Instant,
    version: Arc<Mutex<(String, String)>>,
    droppable_queued: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
) {
    let now = || u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
    loop {
        let wait = match driver.next_wakeup_ns() {
            Some(due) => Duration::from_nanos(due.saturating_sub(now())),
            None => Duration::from_secs(3600),
        };
        let batch = match inputs.recv_timeout(wait) {
            Ok(_) if stopping.load(Ordering::SeqCst) => return,
            Ok(input) => {
                if !matches!(input, PluginInput::Event(_)) {
                    droppable_queued.fetch_sub(1, Ordering::Relaxed);
                }
                driver.handle(input, now())
            }
            Err(RecvTimeoutError::Timeout) => driver.fire_due(now()),
            Err(RecvTimeoutError::Disconnected) => return,
        };
        forward(&outputs, batch);
        let mut current = version.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 != driver.name() || current.1 != driver.sha256() {
            *current = (driver.name().to_string(), driver.sha256().to_string());
        }
    }
}
