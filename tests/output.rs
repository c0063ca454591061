//! A node whose stderr nobody drains keeps its place: its log lines wait
//! for a writer thread, or are dropped and counted, and never hold up the
//! thread that sends its heartbeats (see `tenure_host::logging`).
//!
//! The stalled stderr is a pipe filled to the brim before the node starts,
//! and never read: a write to it blocks, as to a terminal paused with
//! Ctrl-S or a pipe into a reader that stopped. Before the writer thread,
//! such a node blocked on its first log line and never came up.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::io::{ErrorKind, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::time::Duration;

use kit::metrics::Metrics;
use kit::{BOUND, Cluster};

/// A pipe whose buffer is already full: its read end (to keep open, so a
/// write waits instead of failing) and its write end, which blocks again.
fn full_pipe() -> (std::io::PipeReader, OwnedFd) {
    let (reader, mut writer) = std::io::pipe().expect("a pipe");
    let fd = writer.as_raw_fd();
    let set_nonblocking = |on: bool| {
        // SAFETY: fcntl on a descriptor this function owns, with flags
        // read from it first; no memory is passed.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            assert!(flags >= 0, "F_GETFL failed");
            let flags = if on {
                flags | libc::O_NONBLOCK
            } else {
                flags & !libc::O_NONBLOCK
            };
            assert_eq!(libc::fcntl(fd, libc::F_SETFL, flags), 0, "F_SETFL failed");
        }
    };
    set_nonblocking(true);
    // Pages first, then bytes: the last page may take a partial write.
    for chunk in [&[b'x'; 4096][..], b"x"] {
        loop {
            match writer.write(chunk) {
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the pipe: {e}"),
            }
        }
    }
    set_nonblocking(false);
    (reader, writer.into())
}

#[test]
fn a_leader_whose_stderr_nobody_reads_keeps_leading_and_counts_what_it_dropped() {
    let all = ["n1", "n2", "n3"];
    let mut cluster = Cluster::configure("stalled-stderr", 3, |_| String::new());
    let (_reader, stalled) = full_pipe();
    cluster
        .local
        .stderr_to("n3", stalled)
        .expect("a planned node");
    // A queue of 8 lines, so the lines n3 writes at start overflow it.
    cluster
        .local
        .set_env("n3", tenure_host::logging::BUFFER_ENV, "8")
        .expect("a planned node");
    for id in all {
        cluster.spawn(id);
    }
    let (leader, _) = cluster.wait_for_leader(&all, BOUND);
    if leader != "n3" {
        let (code, reply, _) = kit::post(cluster.admin(&leader), "/transfer?to=n3", b"");
        assert_eq!(code, 200, "{reply}");
    }
    let (_, term) =
        cluster.wait_for_leader_where(&all, BOUND, "n3 leads", |leader, _| leader == "n3");

    // It leads on, well past a maximum election timeout, every line it
    // logs meanwhile queued or dropped; the followers hear every beat.
    std::thread::sleep(Duration::from_secs(3));
    let (again, again_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!(
        (again.as_str(), again_term),
        ("n3", term),
        "n3 lost its place\n{}",
        cluster.logs()
    );
    let gap = cluster.largest_follower_gap_ms();
    assert!(gap < 300, "a follower went {gap} ms without a heartbeat");
    let dropped = |id| Metrics::scrape(&cluster, id).get("tenure_log_lines_dropped_total", "");
    assert!(
        dropped("n3") > 0.0,
        "n3 dropped no line, so nothing here was tested"
    );
    // A node with a working stderr drops nothing.
    assert_eq!(dropped("n1"), 0.0);
    cluster.assert_one_leader_per_term();
}
