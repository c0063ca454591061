//! A fencing store for tests of fenced writers: each line a client sends,
//! `W TOKEN NODE`, is one write; the store accepts it if TOKEN is at least
//! the highest token it accepted (what a fenced store does: compare-and-set
//! on the token), records it with the monotonic time it arrived, and
//! answers `ok` or `refused`.
//!
//! Shared by the supervised-command test (on loopback) and the namespace
//! fault test (on the hub's control address); both include this file.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

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
    /// When it arrived ([`mono_ns`]).
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

/// Serves the store on `listener`, one write per connection, on a thread
/// that runs until the test process ends.
pub fn serve(listener: TcpListener) -> Writes {
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
    writes
}
