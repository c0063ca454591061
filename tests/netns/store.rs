//! The fencing store the supervised commands write to, and the machine's
//! monotonic clock.
//!
//! Each line a client sends, `W TOKEN NODE`, is one write; the store
//! accepts it if TOKEN is at least the highest token it accepted (what a
//! fenced store does: compare-and-set on the token), records it with the
//! monotonic time it arrived, and answers `ok` or `refused`. It listens on
//! the hub's control address, which no fault touches, so a deposed or
//! frozen leader's command can always reach it: the worst case for
//! fencing.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use super::net::{HUB_CONTROL_IP, STORE_PORT};

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock every process of the
/// machine shares, in every network namespace.
pub fn mono_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    let ns = i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
    u64::try_from(ns).unwrap_or(0)
}

/// One write the store saw, in the order it saw them.
#[derive(Clone, Debug)]
pub struct Write {
    /// When it arrived (monotonic ns).
    pub at_ns: u64,
    /// The fencing token it carried.
    pub token: u64,
    /// The node whose command wrote it.
    pub node: String,
    /// Whether the store took it (the token was at least the highest).
    pub accepted: bool,
}

/// Every write so far.
pub type Writes = Arc<Mutex<Vec<Write>>>;

/// Starts the store on the hub's control address (the calling thread must
/// be in the hub namespace); its thread runs until the test process ends.
pub fn start() -> anyhow::Result<Writes> {
    let listener = TcpListener::bind((HUB_CONTROL_IP, STORE_PORT))
        .with_context(|| format!("the store binding {HUB_CONTROL_IP}:{STORE_PORT}"))?;
    let writes: Writes = Arc::default();
    let log = writes.clone();
    std::thread::spawn(move || {
        let mut highest = 0u64;
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            let (Some(token), Some(node)) = (
                words.get(1).and_then(|t| t.parse::<u64>().ok()),
                words.get(2),
            ) else {
                continue;
            };
            let accepted = token >= highest;
            if accepted {
                highest = token;
            }
            let Ok(mut log) = log.lock() else { return };
            log.push(Write {
                at_ns: mono_ns(),
                token,
                node: node.to_string(),
                accepted,
            });
            drop(log);
            let _ = stream.write_all(if accepted { b"ok\n" } else { b"refused\n" });
        }
    });
    Ok(writes)
}

/// The command each node supervises: writes `W TOKEN NODE` to the store
/// about fifty times a second while its node leads.
pub fn writer_script() -> String {
    format!(
        "trap 'exit 0' TERM; while :; do exec 3<>/dev/tcp/{HUB_CONTROL_IP}/{STORE_PORT} || exit 1; \
         echo \"W $TENURE_FENCING_TOKEN $TENURE_NODE_ID\" >&3; read -r _ <&3; exec 3>&-; \
         sleep 0.02; done"
    )
}
