//! Loopback ports for benchmark clusters.
//!
//! Ports come from a block of 100 in 30000–32699, chosen by this process's
//! id: above the block the multi-process tests use (10000–29999) and below
//! Linux's ephemeral range (32768 on), so outgoing connections never take
//! them. A port found busy is skipped.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};

use anyhow::bail;

/// A free port on 127.0.0.1, not handed out before by this process.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 30_000 + (std::process::id() % 27) as u16 * 100;
    for _ in 0..100 {
        let port = base + NEXT.fetch_add(1, Ordering::Relaxed) % 100;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    bail!("no free loopback port in {base}..{}", base + 100)
}
