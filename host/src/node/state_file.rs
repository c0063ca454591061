//! The node's durable protocol state on disk: `DATA-DIR/state.slots`.
//!
//! Two checksummed slots in one preallocated file, written in turn (see
//! `state_slots.rs`): a save is one write and one `fdatasync`, and a crash
//! in the middle of one leaves the state before it. A file that exists but
//! cannot be read back is an error at start-up, never silently reset:
//! starting from scratch could let this node vote twice in one term.
//!
//! Each slot holds the state as JSON, naming the node and the cluster it
//! belongs to, and a file of another node or cluster is refused: a data
//! directory copied from a neighbour (or a config pointed at the wrong one)
//! would otherwise hand this node another node's vote and spread that
//! cluster's members to every peer. Files written before the names were
//! recorded load as they are and gain the names at the next write.
//!
//! Tenure before the slots kept `state.json` (a temporary file, an fsync,
//! a rename and an fsync of the directory for every save). A data
//! directory with only that file is migrated when the node starts: the
//! state goes into the slots, durably, and then `state.json` is removed.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::state_slots::{Slots, SlotsRead};
use crate::bindings::types::PersistedState;

/// Version of the file's format.
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct OnDisk {
    version: u32,
    /// The node this state belongs to (absent in files written before it).
    #[serde(default)]
    node_id: Option<String>,
    /// Its cluster (absent in files written before it).
    #[serde(default)]
    cluster_id: Option<String>,
    term: u64,
    voted_for: Option<String>,
    members: Vec<String>,
    /// Members removed with `leave` (absent in files written before it).
    #[serde(default)]
    removed: Vec<String>,
    /// How many membership changes the leaders made (absent, 0, in files
    /// written before epochs).
    #[serde(default)]
    epoch: u64,
    /// The term of the leader that last confirmed that membership.
    #[serde(default)]
    epoch_term: u64,
    /// This copy of the node's state, as a hex string (0, or absent, in
    /// files written before data ids: the protocol then draws one). Hex,
    /// because JSON readers such as jq lose precision above 2^53.
    #[serde(default, with = "hex_u64")]
    data_id: u64,
    /// The data id first recorded for each peer (hex).
    #[serde(default)]
    known_ids: Vec<KnownId>,
    /// The peers that confirmed this node's data id.
    #[serde(default)]
    confirmed_by: Vec<String>,
    /// The node learned it lost its state: it never votes or stands again.
    #[serde(default)]
    abstain: bool,
}

/// One peer's recorded data id.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct KnownId {
    node: String,
    #[serde(with = "hex_u64")]
    data_id: u64,
}

/// A `u64` as 16 hex digits in JSON.
mod hex_u64 {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{value:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}

/// The state file of one data directory.
#[derive(Debug)]
pub struct StateFile {
    slots: Slots,
    /// `state.json`, the format before the slots: read once, to migrate.
    legacy: PathBuf,
    dir: PathBuf,
    node_id: String,
    cluster_id: String,
}

impl StateFile {
    /// The state file of node `node_id` of cluster `cluster_id` in
    /// `data_dir`, creating the directory if needed.
    pub fn open(data_dir: &Path, node_id: &str, cluster_id: &str) -> anyhow::Result<StateFile> {
        fs::create_dir_all(data_dir)
            .with_context(|| format!("creating data directory {}", data_dir.display()))?;
        Ok(StateFile {
            slots: Slots::new(data_dir.join(SLOTS_FILE), data_dir.to_path_buf()),
            legacy: data_dir.join(LEGACY_FILE),
            dir: data_dir.to_path_buf(),
            node_id: node_id.to_string(),
            cluster_id: cluster_id.to_string(),
        })
    }

    /// The saved state, or `None` if this node never saved any. Migrates a
    /// `state.json` of an earlier Tenure into the slots.
    pub fn load(&self) -> anyhow::Result<Option<PersistedState>> {
        let slots = self.slots_path();
        let read = self
            .slots
            .read()
            .with_context(|| format!("reading {}", slots.display()))?;
        match read {
            SlotsRead::Newest {
                payload,
                sequence,
                damaged,
            } => {
                if let Some(slot) = damaged {
                    tracing::warn!(
                        file = %slots.display(),
                        slot,
                        sequence,
                        "a state slot failed its checksum (a save torn by a crash?); \
                         loaded the other, the state before that save"
                    );
                }
                let state = self.decode(&payload, &slots)?;
                if self.legacy.exists() {
                    // A migration that crashed after the slots were saved.
                    self.remove_legacy()?;
                }
                Ok(Some(state))
            }
            SlotsRead::Damaged => bail!(
                "state file {} is corrupt (neither slot passes its checksum); refusing to start \
                 rather than forget this node's vote (inspect it, or move it aside to start this \
                 node afresh)",
                slots.display()
            ),
            SlotsRead::Missing | SlotsRead::Blank => self.migrate(),
        }
    }

    /// Replaces the saved state durably: one write, one `fdatasync`.
    pub fn save(&self, state: &PersistedState) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(&self.on_disk(state)).context("encoding state")?;
        self.slots
            .write(&bytes)
            .with_context(|| format!("writing {}", self.slots_path().display()))
    }

    /// Loads `state.json` if there is one, saves it into the slots, then
    /// removes it.
    fn migrate(&self) -> anyhow::Result<Option<PersistedState>> {
        let bytes = match fs::read(&self.legacy) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.legacy.display()));
            }
        };
        let state = self.decode(&bytes, &self.legacy)?;
        self.save(&state).with_context(|| {
            format!(
                "migrating {} into {}",
                self.legacy.display(),
                self.slots_path().display()
            )
        })?;
        self.remove_legacy()?;
        tracing::info!(
            from = %self.legacy.display(),
            to = %self.slots_path().display(),
            term = state.term,
            "migrated the state file"
        );
        Ok(Some(state))
    }

    fn remove_legacy(&self) -> anyhow::Result<()> {
        fs::remove_file(&self.legacy)
            .with_context(|| format!("removing {} after migrating it", self.legacy.display()))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", self.dir.display()))
    }

    fn slots_path(&self) -> PathBuf {
        self.dir.join(SLOTS_FILE)
    }

    /// The state in `bytes` (JSON), read from `path`, checked to be this
    /// node's.
    fn decode(&self, bytes: &[u8], path: &Path) -> anyhow::Result<PersistedState> {
        let on_disk: OnDisk = serde_json::from_slice(bytes).with_context(|| {
            format!(
                "state file {} is corrupt; refusing to start rather than forget this node's \
                 vote (inspect it, or move it aside to start this node afresh)",
                path.display()
            )
        })?;
        if on_disk.version != FORMAT_VERSION {
            bail!(
                "state file {} has format version {}, this tenure reads version {FORMAT_VERSION}",
                path.display(),
                on_disk.version
            );
        }
        let mismatch = |what: &str, found: &str, ours: &str| {
            anyhow::anyhow!(
                "state file {} belongs to {what} {found:?}, not to this node's {what} {ours:?}; \
                 refusing to start with another node's vote and membership (point data-dir \
                 at this node's own directory, or move the file aside to start afresh)",
                path.display()
            )
        };
        if let Some(found) = on_disk.node_id.as_deref().filter(|f| *f != self.node_id) {
            return Err(mismatch("node", found, &self.node_id));
        }
        if let Some(found) = on_disk
            .cluster_id
            .as_deref()
            .filter(|f| *f != self.cluster_id)
        {
            return Err(mismatch("cluster", found, &self.cluster_id));
        }
        Ok(PersistedState {
            term: on_disk.term,
            voted_for: on_disk.voted_for,
            members: on_disk.members,
            removed: on_disk.removed,
            epoch: on_disk.epoch,
            epoch_term: on_disk.epoch_term,
            data_id: on_disk.data_id,
            known_ids: on_disk
                .known_ids
                .into_iter()
                .map(|k| (k.node, k.data_id))
                .collect(),
            confirmed_by: on_disk.confirmed_by,
            abstain: on_disk.abstain,
        })
    }

    fn on_disk(&self, state: &PersistedState) -> OnDisk {
        OnDisk {
            version: FORMAT_VERSION,
            node_id: Some(self.node_id.clone()),
            cluster_id: Some(self.cluster_id.clone()),
            term: state.term,
            voted_for: state.voted_for.clone(),
            members: state.members.clone(),
            removed: state.removed.clone(),
            epoch: state.epoch,
            epoch_term: state.epoch_term,
            data_id: state.data_id,
            known_ids: state
                .known_ids
                .iter()
                .map(|(node, data_id)| KnownId {
                    node: node.clone(),
                    data_id: *data_id,
                })
                .collect(),
            confirmed_by: state.confirmed_by.clone(),
            abstain: state.abstain,
        }
    }
}

/// The state's file in a data directory.
pub const SLOTS_FILE: &str = "state.slots";
/// The file earlier Tenure versions kept the state in.
pub const LEGACY_FILE: &str = "state.json";

#[cfg(test)]
mod tests;
