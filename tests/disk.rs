//! A full disk under a real `tenure run` process costs the node nothing:
//! its state file was preallocated at its first save, and every later save
//! overwrites blocks it already has, so it keeps its vote and terms go on.
//!
//! What a node does when a save does fail (an I/O error, a disk remounted
//! read-only by the kernel) — go quiet, say why in `/status`, speak again
//! once a save succeeds — is the node's durability policy
//! (`node/durability.rs`), which the simulator runs under `fill_disk`
//! (tests/full_disk.rs). A process-level test of it would need a device
//! that fails writes on demand (device-mapper's `error` target), which
//! this machine does not have.
//!
//! Needs root, to mount a small tmpfs as the node's data directory; prints
//! why it skips otherwise. Built as an integration test of the host package
//! (see host/Cargo.toml) so `CARGO_BIN_EXE_tenure` names the binary under
//! test.

#[path = "kit/mod.rs"]
mod kit;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use kit::{BOUND, Cluster};

/// A tmpfs of `size` mounted at `dir`, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Result<SmallDisk, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            return Err(format!("mount -t tmpfs failed: {status}"));
        }
        Ok(SmallDisk {
            dir: dir.to_path_buf(),
        })
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let path = self.dir.join("filler");
        let mut file = std::fs::File::create(&path).expect("a filler file");
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn a_full_disk_costs_a_node_neither_its_vote_nor_its_saves() {
    if is_root() {
        run();
    } else {
        eprintln!("skipped: needs root to mount a small tmpfs as a node's data directory");
    }
}

/// Whether this process runs as root (its effective uid, from /proc).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn run() {
    // n3's data directory is a 256 KiB disk; its compiled components are
    // cached elsewhere.
    let mut cluster = Cluster::configure("disk", 3, |id| {
        if id == "n3" {
            "cache-dir = \"n3-cache\"\n".to_string()
        } else {
            String::new()
        }
    });
    // `cache-dir` is a top-level key: it must come before the tables.
    let config = cluster.local.config_path("n3");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace("cache-dir = \"n3-cache\"\n", "");
    let text = text.replacen("[peers]", "cache-dir = \"n3-cache\"\n[peers]", 1);
    std::fs::write(&config, text).expect("config");
    let disk = match SmallDisk::mount(&cluster.data_dir("n3"), "256k") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    for id in ["n1", "n2", "n3"] {
        cluster.spawn(id);
    }
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    if leader == "n3" {
        // The full node should be a follower: hand leadership on.
        kit::post(cluster.admin("n3"), "/step-down", &[]);
    }
    let (leader, term) =
        cluster.wait_for_leader_where(&all, BOUND, "a leader other than n3", |l, t| {
            l != "n3" && t >= term
        });

    // Fill n3's disk, then kill the leader: the survivors need n3's vote,
    // so n3 must save the new term on a full disk.
    let filler = disk.fill();
    cluster.kill9(&leader);
    let other = all
        .iter()
        .copied()
        .find(|id| *id != leader && *id != "n3")
        .expect("a healthy survivor");
    let (next, next_term) = cluster.wait_for_leader(&["n3", other], BOUND);
    eprintln!("on a full disk n3 still saves and votes: {next} leads term {next_term}");
    assert!(next_term > term);
    let report = cluster.status("n3").expect("n3 answers");
    assert!(
        report.cannot_persist.is_none(),
        "a full disk stopped n3's saves: {report:?}"
    );
    // Terms go on while the disk stays full.
    cluster.spawn(&leader);
    let (current, current_term) = cluster.wait_for_leader(&all, BOUND);
    cluster.kill9(&current);
    let rest: Vec<&str> = all.iter().copied().filter(|id| *id != current).collect();
    let (_, later_term) = cluster.wait_for_leader(&rest, BOUND);
    assert!(later_term > current_term);
    std::fs::remove_file(&filler).expect("frees the disk");
    cluster.assert_one_leader_per_term();
    cluster.kill9("n3");
    drop(disk);
}
