//! Compiled components cached on disk, so restarts and hot swaps skip
//! Cranelift.
//!
//! An entry is keyed by the sha256 of the `.wasm` and the engine's
//! [`Engine::precompile_compatibility_hash`] (which covers wasmtime's
//! version and every setting that changes the machine code), so a new
//! build of a plugin, a new wasmtime or a different engine configuration
//! never finds a stale entry. Next to each `KEY.cwasm` lies `KEY.sha256`,
//! the checksum of the artifact as written; an entry whose checksum does
//! not match, or that wasmtime refuses to load, is recompiled and
//! replaced — never trusted. Entries are written atomically (temporary
//! file, then rename), so a crash never leaves a half-written one.
//!
//! The cache is bounded: after each store, the least recently used
//! entries (by modification time, refreshed on every hit) are removed
//! until the artifacts take at most [`DEFAULT_MAX_BYTES`]. A build that was
//! refused (a swap that failed) is removed at once with
//! [`ArtifactCache::forget`], so uploads that never ran leave nothing.
//!
//! A node's runtime has one thread, which also sends its heartbeats, so
//! nothing here runs on it: compiling and storing run on background
//! threads, and [`ArtifactCache::forget`] hands its unlinks to a blocking
//! thread (on a busy disk one unlink waited on the filesystem's journal
//! long enough for a leader to miss its check-quorum and step down).

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::protocol::wasm;

/// Whether a component came from the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded a compiled artifact.
    Hit,
    /// Compiled (and stored the artifact).
    Miss,
    /// Found an entry that failed its checksum or would not load; compiled
    /// afresh and replaced it.
    Replaced,
}

/// The most the cache's artifacts may take on disk: 1 GiB, a few dozen
/// compiled Python or JavaScript plugins.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// A directory of compiled components.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl ArtifactCache {
    /// The cache in `dir`, created if missing.
    pub fn open(dir: &Path) -> anyhow::Result<ArtifactCache> {
        if let Some(stall) = removal_stall() {
            tracing::warn!(
                ms = stall.as_millis() as u64,
                "{STALL_ENV} is set: every removal from the artifact cache stalls (a test's slow disk)"
            );
        }
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the artifact cache {}", dir.display()))?;
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
            max_bytes: DEFAULT_MAX_BYTES,
        })
    }

    /// The same cache with another size bound (see [`DEFAULT_MAX_BYTES`]).
    pub fn with_max_bytes(mut self, max_bytes: u64) -> ArtifactCache {
        self.max_bytes = max_bytes;
        self
    }

    /// Removes every entry compiled from `bytes` (by any engine): for a
    /// build that was refused and must not take space. The hashing and
    /// the unlinks run on a blocking thread, never on the caller's
    /// runtime thread; this returns once they are done.
    pub async fn forget(&self, bytes: Arc<Vec<u8>>) {
        let cache = self.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || cache.forget_now(&bytes)).await {
            tracing::warn!(error = %e, "removing a refused build from the artifact cache failed");
        }
    }

    /// [`ArtifactCache::forget`] on the calling thread.
    fn forget_now(&self, bytes: &[u8]) {
        let prefix = format!("{}-", hex::encode(Sha256::digest(bytes)));
        for path in self.entries() {
            let is_it = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix));
            if is_it {
                remove_entry(&path);
            }
        }
    }

    /// The `.cwasm` files in the cache.
    fn entries(&self) -> Vec<PathBuf> {
        let Ok(listing) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        listing
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .collect()
    }

    /// Removes the least recently used entries, never `keep`, until the
    /// artifacts fit [`ArtifactCache::with_max_bytes`].
    fn prune(&self, keep: &Path) {
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = self
            .entries()
            .into_iter()
            .filter_map(|p| {
                let meta = fs::metadata(&p).ok()?;
                Some((meta.modified().ok()?, meta.len(), p))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path != keep {
                tracing::info!(entry = %path.display(), "artifact cache full: removing the least recently used entry");
                remove_entry(&path);
                total = total.saturating_sub(len);
            }
        }
    }

    /// The component for `bytes`, from the cache if a valid entry exists,
    /// else compiled with `engine` and stored. Storing is best effort: a
    /// full disk costs the next start a compile, not this one.
    pub fn component(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> anyhow::Result<(Component, CacheOutcome)> {
        let key = self.key(engine, bytes);
        let artifact = self.dir.join(format!("{key}.cwasm"));
        let checksum = self.dir.join(format!("{key}.sha256"));
        let mut outcome = CacheOutcome::Miss;
        if let (Ok(cwasm), Ok(expected)) = (fs::read(&artifact), fs::read_to_string(&checksum)) {
            if hex::encode(Sha256::digest(&cwasm)) == expected.trim() {
                // SAFETY: wasmtime trusts serialized artifacts to be its
                // own output. This one was written by `store` below, into
                // a directory this node owns, and its checksum matches what
                // was written; wasmtime still checks version and settings.
                match wasm(unsafe { Component::deserialize(engine, &cwasm) }) {
                    Ok(component) => {
                        // Recently used: the last to be pruned.
                        let _ = fs::File::options()
                            .append(true)
                            .open(&artifact)
                            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                        return Ok((component, CacheOutcome::Hit));
                    }
                    Err(e) => {
                        tracing::warn!(entry = %artifact.display(), error = %format!("{e:#}"), "cache entry refused; recompiling")
                    }
                }
            } else {
                tracing::warn!(entry = %artifact.display(), "cache entry fails its checksum; recompiling");
            }
            outcome = CacheOutcome::Replaced;
        }
        let cwasm = wasm(engine.precompile_component(bytes)).context("compiling the component")?;
        // SAFETY: the bytes were produced just now by this engine.
        let component = wasm(unsafe { Component::deserialize(engine, &cwasm) })
            .context("loading the freshly compiled component")?;
        match self.store(&artifact, &checksum, &cwasm) {
            Ok(()) => self.prune(&artifact),
            Err(e) => {
                tracing::warn!(entry = %artifact.display(), error = %format!("{e:#}"), "cannot store cache entry")
            }
        }
        Ok((component, outcome))
    }

    fn key(&self, engine: &Engine, bytes: &[u8]) -> String {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        format!(
            "{}-{:016x}",
            hex::encode(Sha256::digest(bytes)),
            hasher.finish()
        )
    }

    fn store(&self, artifact: &Path, checksum: &Path, cwasm: &[u8]) -> anyhow::Result<()> {
        // A name of this writer's own: nodes that share a cache directory
        // may compile the same component at once.
        let unique = format!(
            "{}.{}.{}",
            std::process::id(),
            std::thread::current()
                .name()
                .unwrap_or("t")
                .replace('/', "-"),
            rand::random::<u32>()
        );
        let tmp = artifact.with_extension(format!("cwasm.{unique}.tmp"));
        fs::write(&tmp, cwasm).with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, artifact).with_context(|| format!("renaming {}", tmp.display()))?;
        let tmp = checksum.with_extension(format!("sha256.{unique}.tmp"));
        fs::write(&tmp, hex::encode(Sha256::digest(cwasm)))
            .with_context(|| format!("writing {}", tmp.display()))?;
        fs::rename(&tmp, checksum).with_context(|| format!("renaming {}", tmp.display()))?;
        Ok(())
    }
}

/// Removes an entry's artifact and checksum (best effort: a cache shared
/// between nodes may lose it to another pruner first).
fn remove_entry(artifact: &Path) {
    if let Some(stall) = removal_stall() {
        std::thread::sleep(stall);
    }
    let _ = fs::remove_file(artifact);
    let _ = fs::remove_file(artifact.with_extension("sha256"));
}

/// The variable that makes every removal from the cache take this many
/// milliseconds longer, as on a disk whose journal is busy. Tests only:
/// `tests/security.rs` sets it to prove that cleaning up after a refused
/// upload never holds the node's thread. A node warns at start when it is
/// set.
pub const STALL_ENV: &str = "TENURE_TEST_CACHE_STALL_MS";

/// The stall [`STALL_ENV`] asks for, read once.
fn removal_stall() -> Option<Duration> {
    static STALL: OnceLock<Option<Duration>> = OnceLock::new();
    *STALL.get_or_init(|| {
        let ms: u64 = std::env::var(STALL_ENV).ok()?.trim().parse().ok()?;
        (ms > 0).then(|| Duration::from_millis(ms))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: just the header.
    const EMPTY_COMPONENT: &[u8] = &[0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

    #[test]
    fn miss_then_hit_and_a_corrupt_entry_is_replaced_not_trusted() {
        let dir = std::env::temp_dir().join(format!("tenure-cache-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cache = ArtifactCache::open(&dir).expect("opens");
        let engine = Engine::default();
        let outcome = |c: &ArtifactCache| c.component(&engine, EMPTY_COMPONENT).expect("loads").1;
        assert_eq!(outcome(&cache), CacheOutcome::Miss);
        assert_eq!(outcome(&cache), CacheOutcome::Hit);
        let artifact = fs::read_dir(&dir)
            .expect("lists")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .expect("an artifact");
        let mut bytes = fs::read(&artifact).expect("reads");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&artifact, bytes).expect("corrupts");
        assert_eq!(outcome(&cache), CacheOutcome::Replaced);
        assert_eq!(outcome(&cache), CacheOutcome::Hit);
        // Another engine configuration never shares entries.
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).expect("engine");
        let (_, o) = cache.component(&other, EMPTY_COMPONENT).expect("loads");
        assert_eq!(o, CacheOutcome::Miss);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cache_stays_within_its_bound_and_forgets_refused_builds() {
        let dir = std::env::temp_dir().join(format!("tenure-cache-bound-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let cache = ArtifactCache::open(&dir).expect("opens").with_max_bytes(1);
        let count = || cache.entries().len();
        let engine = Engine::default();
        cache.component(&engine, EMPTY_COMPONENT).expect("loads");
        assert_eq!(count(), 1, "the newest entry is kept, even above the bound");
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).expect("engine");
        cache.component(&other, EMPTY_COMPONENT).expect("loads");
        assert_eq!(count(), 1, "the older entry made room");
        cache.forget_now(EMPTY_COMPONENT);
        assert_eq!(count(), 0);
        let left: Vec<_> = fs::read_dir(&dir).expect("lists").collect();
        assert!(
            left.is_empty(),
            "checksums go with their artifacts: {left:?}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
