//! A full disk under a real `tenure run` process: the node goes quiet
//! rather than exit, says why in `/status`, and rejoins by itself once the
//! disk has room again.
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
use std::time::{Duration, Instant};

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
fn a_node_on_a_full_disk_goes_quiet_and_rejoins_when_it_has_room() {
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
    // and n3 cannot persist the new term.
    let filler = disk.fill();
    cluster.kill9(&leader);
    let other = all
        .iter()
        .copied()
        .find(|id| *id != leader && *id != "n3")
        .expect("a healthy survivor");
    let deadline = Instant::now() + BOUND;
    let reason = loop {
        if let Some(reason) = cluster.status("n3").and_then(|r| r.cannot_persist) {
            break reason;
        }
        assert!(
            Instant::now() < deadline,
            "n3 never reported the full disk\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("n3 on a full disk reports: {reason}");
    // While full, n3 votes for no one, so no leader can be elected.
    std::thread::sleep(Duration::from_secs(2));
    for id in ["n3", other] {
        let report = cluster.status(id).expect("still running and answering");
        assert_ne!(
            report.role, "leader",
            "{id} leads without n3's vote: {report:?}"
        );
    }
    assert!(cluster.local.is_running("n3"), "a full disk stopped n3");

    // Room again: n3 saves by itself, votes, and a leader is elected.
    let freed = Instant::now();
    std::fs::remove_file(&filler).expect("frees the disk");
    let (next, next_term) = cluster.wait_for_leader(&["n3", other], BOUND);
    eprintln!(
        "after freeing the disk: {next} leads term {next_term} within {:?}",
        freed.elapsed()
    );
    assert!(next_term > term);
    assert!(
        cluster
            .status("n3")
            .expect("n3 answers")
            .cannot_persist
            .is_none()
    );
    cluster.assert_one_leader_per_term();
    cluster.kill9("n3");
    drop(disk);
}
