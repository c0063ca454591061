//! Loopback ports for benchmark clusters: the same allocator the
//! multi-process tests use ([`tenure_host::testing::ports`]), so a bench
//! never meets another cluster's ports or an outgoing connection's.

use std::net::SocketAddr;

/// A free port on 127.0.0.1, not handed out before by this process.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let port = tenure_host::testing::ports::port()?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}
