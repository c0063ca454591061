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

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

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

/// A directory of compiled components.
#[derive(Clone, Debug)]
pub struct ArtifactCache {
    dir: PathBuf,
}

impl ArtifactCache {
    /// The cache in `dir`, created if missing.
    pub fn open(dir: &Path) -> anyhow::Result<ArtifactCache> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the artifact cache {}", dir.display()))?;
        Ok(ArtifactCache {
            dir: dir.to_path_buf(),
        })
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
                    Ok(component) => return Ok((component, CacheOutcome::Hit)),
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
        if let Err(e) = self.store(&artifact, &checksum, &cwasm) {
            tracing::warn!(entry = %artifact.display(), error = %format!("{e:#}"), "cannot store cache entry");
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
}
