//! The node's durable protocol state on disk: `DATA-DIR/state.json`.
//!
//! Written atomically — a temporary file, fsync, rename over the old one,
//! fsync of the directory — so a crash at any point leaves either the old
//! state or the new one, never a torn file. A file that exists but cannot be
//! read back is an error at start-up, never silently reset: starting from
//! scratch could let this node vote twice in one term.
//!
//! The file names the node and the cluster it belongs to, and a file of
//! another node or cluster is refused: a data directory copied from a
//! neighbour (or a config pointed at the wrong one) would otherwise hand
//! this node another node's vote and spread that cluster's members to
//! every peer. Files written before the names were recorded load as they
//! are and gain the names at the next write.

use std::fs::{self, File};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

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
    path: PathBuf,
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
            path: data_dir.join("state.json"),
            dir: data_dir.to_path_buf(),
            node_id: node_id.to_string(),
            cluster_id: cluster_id.to_string(),
        })
    }

    /// The saved state, or `None` if this node never saved any.
    pub fn load(&self) -> anyhow::Result<Option<PersistedState>> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("reading {}", self.path.display()));
            }
        };
        let on_disk: OnDisk = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "state file {} is corrupt; refusing to start rather than forget this node's \
                 vote (inspect it, or move it aside to start this node afresh)",
                self.path.display()
            )
        })?;
        if on_disk.version != FORMAT_VERSION {
            bail!(
                "state file {} has format version {}, this tenure reads version {FORMAT_VERSION}",
                self.path.display(),
                on_disk.version
            );
        }
        let mismatch = |what: &str, found: &str, ours: &str| {
            anyhow::anyhow!(
                "state file {} belongs to {what} {found:?}, not to this node's {what} {ours:?}; \
                 refusing to start with another node's vote and membership (point data-dir \
                 at this node's own directory, or move the file aside to start afresh)",
                self.path.display()
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
        Ok(Some(PersistedState {
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
        }))
    }

    /// Replaces the saved state atomically and durably.
    pub fn save(&self, state: &PersistedState) -> anyhow::Result<()> {
        let on_disk = OnDisk {
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
        };
        let bytes = serde_json::to_vec_pretty(&on_disk).context("encoding state")?;
        let tmp = self.path.with_extension("json.tmp");
        // Owner-only: the vote and the membership are this node's alone.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        if let Err(e) = file.write_all(&bytes).and_then(|()| file.sync_all()) {
            // A full disk: leave no half-written file taking the space a
            // retry needs.
            drop(file);
            let _ = fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("writing {}", tmp.display()));
        }
        drop(file);
        fs::rename(&tmp, &self.path)
            .with_context(|| format!("renaming {} into place", tmp.display()))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", self.dir.display()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tenure-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_file_written_before_leave_existed_loads_with_no_removals() {
        let dir = temp_dir("before-leave");
        let file = StateFile::open(&dir, "n1", "c").expect("opens");
        fs::write(
            dir.join("state.json"),
            b"{\"version\":1,\"term\":3,\"voted-for\":\"n2\",\"members\":[\"n1\",\"n2\"]}",
        )
        .expect("writes");
        let state = file.load().expect("loads").expect("a state");
        assert_eq!((state.term, state.removed.len()), (3, 0));
        // No data id yet: the protocol draws one and keeps the vote.
        assert_eq!((state.data_id, state.abstain), (0, false));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn saves_and_loads_and_replaces() {
        let dir = temp_dir("roundtrip");
        let file = StateFile::open(&dir, "n1", "c").expect("opens");
        assert_eq!(file.load().expect("loads"), None);
        let state = PersistedState {
            term: 7,
            voted_for: Some("n2".into()),
            members: vec!["n1".into(), "n2".into()],
            removed: vec!["n9".into()],
            epoch: 3,
            epoch_term: 6,
            // Above 2^53, which a JSON number would round.
            data_id: 0xfedc_ba98_7654_3210,
            known_ids: vec![("n2".into(), u64::MAX)],
            confirmed_by: vec!["n2".into()],
            abstain: true,
        };
        file.save(&state).expect("saves");
        assert_eq!(file.load().expect("loads"), Some(state.clone()));
        let newer = PersistedState {
            term: 8,
            voted_for: None,
            ..state
        };
        file.save(&newer).expect("saves");
        assert_eq!(file.load().expect("loads"), Some(newer));
        assert!(!dir.join("state.json.tmp").exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_reset() {
        let dir = temp_dir("corrupt");
        let file = StateFile::open(&dir, "n1", "c").expect("opens");
        fs::write(dir.join("state.json"), b"{\"version\":1,\"term\":").expect("writes");
        let err = format!("{:#}", file.load().expect_err("corrupt"));
        assert!(err.contains("corrupt"), "{err}");
        fs::write(
            dir.join("state.json"),
            b"{\"version\":9,\"term\":1,\"voted-for\":null,\"members\":[]}",
        )
        .expect("writes");
        let err = format!("{:#}", file.load().expect_err("future version"));
        assert!(err.contains("format version 9"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn another_nodes_or_clusters_file_is_refused() {
        let dir = temp_dir("foreign");
        let state = PersistedState {
            term: 4,
            voted_for: Some("n2".into()),
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            removed: vec![],
            epoch: 0,
            epoch_term: 0,
            data_id: 7,
            known_ids: vec![],
            confirmed_by: vec![],
            abstain: false,
        };
        StateFile::open(&dir, "n1", "c")
            .expect("opens")
            .save(&state)
            .expect("saves");
        let text = fs::read_to_string(dir.join("state.json")).expect("reads");
        assert!(text.contains("\"node-id\": \"n1\""), "{text}");
        let other_node = StateFile::open(&dir, "n2", "c").expect("opens");
        let err = format!("{:#}", other_node.load().expect_err("another node's"));
        assert!(err.contains("belongs to node \"n1\""), "{err}");
        let other_cluster = StateFile::open(&dir, "n1", "d").expect("opens");
        let err = format!("{:#}", other_cluster.load().expect_err("another cluster's"));
        assert!(err.contains("belongs to cluster \"c\""), "{err}");
        let ours = StateFile::open(&dir, "n1", "c").expect("opens");
        assert_eq!(ours.load().expect("loads"), Some(state));
        let _ = fs::remove_dir_all(&dir);
    }
}
