//! `tenure-bench persist`: what one durable save of the protocol state
//! costs, the node's two-slot state file against the temporary-file,
//! fsync, rename, directory-fsync way it replaced, interleaved save by
//! save in one directory so both see the same disk at the same moment.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use tenure_host::bindings::types::PersistedState;
use tenure_host::node::state_file::StateFile;

use crate::stats::Summary;

/// A state as a five-node cluster's member keeps it.
fn state(term: u64) -> PersistedState {
    let members: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    PersistedState {
        term,
        voted_for: Some("n2".into()),
        members: members.clone(),
        removed: Vec::new(),
        epoch: 4,
        epoch_term: 3,
        data_id: 0x1234_5678_9abc_def0,
        known_ids: members.iter().map(|m| (m.clone(), 7)).collect(),
        confirmed_by: members[1..].to_vec(),
        abstain: false,
    }
}

/// The save before the slots: a temporary file, fsync, rename over the
/// old one, fsync of the directory (what `state.json` took, per save).
fn rename_save(dir: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = dir.join("state.json.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, dir.join("state.json"))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

/// Runs `saves` saves of each kind, alternating, in `dir`, and prints
/// both distributions.
pub fn run(dir: &Path, saves: usize) -> anyhow::Result<()> {
    let slots_dir = dir.join("slots");
    let rename_dir = dir.join("rename");
    fs::create_dir_all(&rename_dir)
        .with_context(|| format!("creating {}", rename_dir.display()))?;
    let file = StateFile::open(&slots_dir, "n1", "bench")?;
    file.load()?;
    let mut slots = Vec::with_capacity(saves);
    let mut renames = Vec::with_capacity(saves);
    for i in 0..saves {
        let state = state(i as u64 + 1);
        let json = serde_json::to_vec_pretty(&serde_json::json!({
            "version": 1, "term": state.term, "voted-for": state.voted_for, "members": state.members,
        }))?;
        let started = Instant::now();
        file.save(&state)?;
        slots.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        rename_save(&rename_dir, &json)?;
        renames.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "persist: {saves} saves each, interleaved, in {}",
        dir.display()
    );
    if let (Some(s), Some(r)) = (Summary::of(&slots), Summary::of(&renames)) {
        println!("  two slots, one write + fdatasync:    {}", precise(&s));
        println!("  temp file + fsync + rename + fsync:  {}", precise(&r));
        println!("  median ratio: {:.1}x", r.median / s.median.max(1e-9));
    }
    Ok(())
}

/// A summary with microsecond resolution (saves are well under a ms on
/// some disks).
fn precise(s: &Summary) -> String {
    format!(
        "min {:.3}  median {:.3}  p90 {:.3}  p99 {:.3}  max {:.3} ms",
        s.min, s.median, s.p90, s.p99, s.max
    )
}
