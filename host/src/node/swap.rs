//! Hot swap from the outside in: compile a new plugin version off the node's
//! task (through the artifact cache), then hand it to the node, which swaps
//! it in on the plugin's thread. Used by `POST /plugin` and by the plugin
//! file watcher; `POST /plugin/compile` does the first half only, so a
//! rolling swap (`tenure plugin swap --admin A --admin B …`) compiles on
//! every node before it swaps on any.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Command;
use crate::artifact_cache::{ArtifactCache, CacheOutcome};
use crate::plugin::{PluginComponent, PluginEngine};

/// A successful swap, timed.
#[derive(Clone, Debug)]
pub struct SwapReport {
    /// sha256 of the new version.
    pub sha256: String,
    /// Whether the compiled artifact came from the cache.
    pub cache: CacheOutcome,
    /// Time spent compiling (or loading from the cache).
    pub compile: Duration,
    /// From the request to the new version being current.
    pub total: Duration,
    /// The version was compiled ahead by [`compile_only`] and kept loaded.
    pub prepared: bool,
}

/// The version [`compile_only`] compiled last, kept loaded so that its
/// swap skips even the artifact cache's deserialization (~100 ms for a
/// 15 MB component): a rolling swap's swap step is then the swap alone.
/// One version at a time (a newer compile replaces it; its swap uses it
/// up), so it holds one component's memory at most.
#[derive(Clone, Default)]
pub struct Prepared(Arc<Mutex<Option<Kept>>>);

/// A compiled version and the bytes it was compiled from.
type Kept = (Arc<Vec<u8>>, Arc<PluginComponent>);

impl Prepared {
    fn keep(&self, bytes: Arc<Vec<u8>>, component: Arc<PluginComponent>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some((bytes, component));
    }

    /// The kept version if it was compiled from exactly `bytes`.
    fn take_matching(&self, bytes: &[u8]) -> Option<Arc<PluginComponent>> {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.as_ref().is_some_and(|(b, _)| b.as_slice() == bytes) {
            return kept.take().map(|(_, component)| component);
        }
        None
    }
}

/// Compiles `bytes` and swaps them in as the plugin `name`. On failure the
/// old version keeps running and the reason comes back.
pub async fn compile_and_swap(
    engine: &PluginEngine,
    cache: &ArtifactCache,
    commands: &mpsc::Sender<Command>,
    prepared: Option<&Prepared>,
    name: String,
    bytes: Vec<u8>,
) -> Result<SwapReport, String> {
    let started = Instant::now();
    let bytes = Arc::new(bytes);
    let ahead = prepared.and_then(|p| p.take_matching(&bytes));
    let was_prepared = ahead.is_some();
    let (component, outcome) = match ahead {
        Some(component) => (component, CacheOutcome::Hit),
        None => {
            let (component, outcome) = compile_plugin(engine, cache, name, bytes.clone()).await?;
            (Arc::new(component), outcome)
        }
    };
    let compile = started.elapsed();
    let sha256 = component.sha256().to_string();
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command::SwapPlugin { component, reply })
        .await
        .map_err(|_| "the node is shutting down".to_string())?;
    match tokio::time::timeout(Duration::from_secs(30), answer).await {
        Ok(Ok(Ok(()))) => Ok(SwapReport {
            sha256,
            cache: outcome,
            compile,
            total: started.elapsed(),
            prepared: was_prepared,
        }),
        Ok(Ok(Err(reason))) => {
            // A version that never ran takes no space.
            cache.forget(bytes.clone()).await;
            Err(reason)
        }
        Ok(Err(_)) => Err("the node is shutting down".into()),
        Err(_) => Err("the plugin did not answer within 30 s".into()),
    }
}

/// A plugin version compiled into the artifact cache, not swapped in.
#[derive(Clone, Debug)]
pub struct CompileReport {
    /// sha256 of the version.
    pub sha256: String,
    /// Whether it was in the cache already.
    pub cache: CacheOutcome,
    /// Time spent compiling (or loading from the cache).
    pub compile: Duration,
}

/// Compiles `bytes` (and links them against the host, so a component
/// that does not fit the plugin world is refused now) into the artifact
/// cache, so a later swap of the same bytes skips Cranelift, and keeps it
/// loaded in `prepared` for that swap. Nothing changes on the node.
pub async fn compile_only(
    engine: &PluginEngine,
    cache: &ArtifactCache,
    prepared: &Prepared,
    name: String,
    bytes: Vec<u8>,
) -> Result<CompileReport, String> {
    let started = Instant::now();
    let bytes = Arc::new(bytes);
    let (component, outcome) = compile_plugin(engine, cache, name, bytes.clone()).await?;
    let sha256 = component.sha256().to_string();
    prepared.keep(bytes, Arc::new(component));
    Ok(CompileReport {
        sha256,
        cache: outcome,
        compile: started.elapsed(),
    })
}

/// Compiles through the cache off the node's threads, and below them (see
/// `crate::background`).
async fn compile_plugin(
    engine: &PluginEngine,
    cache: &ArtifactCache,
    name: String,
    bytes: Arc<Vec<u8>>,
) -> Result<(PluginComponent, CacheOutcome), String> {
    let (engine, store) = (engine.clone(), cache.clone());
    let compiled = crate::background::at_low_priority("compile", move || {
        PluginComponent::from_cache(&engine, &store, &name, &bytes)
    })
    .await;
    match compiled {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(e) => Err(format!("compilation failed: {e}")),
    }
}

/// How often the watcher looks at the plugin file.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// Watches the plugin file and swaps in each new version. A change is acted
/// on once the file's size and modification time have held still for one
/// more interval (debounce: a file being written is not loaded); a version
/// that fails to compile or swap is logged and skipped, the old one keeps
/// running, and the next change is tried again.
pub async fn watch_plugin(
    path: PathBuf,
    engine: PluginEngine,
    cache: ArtifactCache,
    commands: mpsc::Sender<Command>,
    shutdown: CancellationToken,
) {
    let mut loaded = stamp(&path).await;
    let mut seen = loaded;
    let mut ticker = tokio::time::interval(WATCH_INTERVAL);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let now = stamp(&path).await;
        let settled = now.is_some() && now == seen && now != loaded;
        seen = now;
        if !settled {
            continue;
        }
        loaded = now;
        let bytes = match tokio::fs::read(&path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the changed plugin");
                continue;
            }
        };
        let name = file_name(&path);
        match compile_and_swap(&engine, &cache, &commands, None, name, bytes).await {
            Ok(report) => tracing::info!(
                path = %path.display(), sha256 = %report.sha256, cache = ?report.cache,
                total_ms = report.total.as_secs_f64() * 1e3,
                "plugin file changed; new version swapped in"
            ),
            Err(reason) => tracing::warn!(
                path = %path.display(), %reason,
                "plugin file changed; swap refused, the old version keeps running"
            ),
        }
    }
}

/// The file's size and modification time, read on a blocking thread (a
/// `stat` on a slow or network filesystem must not hold the node's one
/// runtime thread).
async fn stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = tokio::fs::metadata(path).await.ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// The file name of `path`, for status reports.
pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
