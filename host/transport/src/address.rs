//! Where a peer listens: a socket address, or a DNS name resolved at each
//! dial ([`PeerAddr`]), and the [`Resolve`] trait that turns names into
//! addresses.
//!
//! A name is the address to use when peers move: a Kubernetes pod that is
//! rescheduled keeps its name (`tenure-1.tenure.ns.svc`) but not its IP.
//! So a name is resolved afresh on every (re)connection, never cached here,
//! and stays authoritative for dialling whatever address a hello from that
//! peer later reports (see [`crate::Transport::add_peer`]).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::time::Duration;

/// How long one resolution may take before the dial counts as failed and
/// waits out its back-off (getaddrinfo's own DNS timeouts can be far
/// longer).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A peer's address as configured: `IP:port` (`10.0.0.2:7101`,
/// `[::1]:7101`) or `host:port` (`tenure-0.tenure.ns.svc:7101`).
///
/// ```
/// use tenure_transport::PeerAddr;
/// let literal: PeerAddr = "[::1]:7101".parse()?;
/// assert!(matches!(literal, PeerAddr::Socket(a) if a.port() == 7101));
/// let name: PeerAddr = "tenure-0.tenure.ns.svc:7101".parse()?;
/// assert_eq!(name.to_string(), "tenure-0.tenure.ns.svc:7101");
/// assert!("tenure-0".parse::<PeerAddr>().is_err()); // no port
/// # Ok::<(), tenure_transport::PeerAddrError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PeerAddr {
    /// An IP literal and port: dialled as is.
    Socket(SocketAddr),
    /// A DNS name (or `/etc/hosts` entry) and port: resolved on every dial.
    Name {
        /// The host name, without the port.
        host: String,
        /// The port.
        port: u16,
    },
}

impl PeerAddr {
    /// Whether every address this may stand for is loopback: an IP literal
    /// on loopback, or `localhost` (and `*.localhost`, which RFC 6761
    /// reserves for it).
    pub fn is_loopback(&self) -> bool {
        match self {
            PeerAddr::Socket(addr) => addr.ip().is_loopback(),
            PeerAddr::Name { host, .. } => {
                let host = host.to_ascii_lowercase();
                host == "localhost" || host.ends_with(".localhost")
            }
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(addr: SocketAddr) -> Self {
        PeerAddr::Socket(addr)
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Socket(addr) => write!(f, "{addr}"),
            PeerAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Why a text is no [`PeerAddr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddrError {
    /// No `:port` at the end.
    #[error("{0:?} has no port: write host:port or IP:port, e.g. tenure-0.tenure:7101")]
    NoPort(String),
    /// The port is not a number from 1 to 65535.
    #[error("{text:?}: the port {port:?} is not a number from 1 to 65535")]
    BadPort {
        /// The whole text.
        text: String,
        /// What stood after the last colon.
        port: String,
    },
    /// An IPv6 address without the brackets that set it apart from the port.
    #[error("{0:?}: write an IPv6 address in brackets, e.g. [::1]:7101")]
    Ipv6WithoutBrackets(String),
    /// The host is not a DNS name (letters, digits, `-`, `_` and dots).
    #[error("{0:?}: the host is not an IP address or a DNS name")]
    BadHost(String),
}

impl FromStr for PeerAddr {
    type Err = PeerAddrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(PeerAddr::Socket(addr));
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            return Err(PeerAddrError::NoPort(text.to_owned()));
        };
        if host.contains(':') || host.starts_with('[') {
            return Err(PeerAddrError::Ipv6WithoutBrackets(text.to_owned()));
        }
        let port = match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(PeerAddrError::BadPort {
                    text: text.to_owned(),
                    port: port.to_owned(),
                });
            }
        };
        if !is_dns_name(host) {
            return Err(PeerAddrError::BadHost(text.to_owned()));
        }
        // `10.0.0.1:x` failed as a socket address for its port, not here:
        // a host made of digits and dots that is no IPv4 address is refused.
        if host.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(PeerAddrError::BadHost(text.to_owned()));
        }
        Ok(PeerAddr::Name {
            host: host.to_owned(),
            port,
        })
    }
}

/// Labels of letters, digits, `-` and `_` (`_` for the service names some
/// resolvers serve), 1 to 63 bytes each, dot-separated, 253 bytes at most;
/// a trailing dot (fully qualified) is allowed.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// The future a [`Resolve`] returns: every address the name stands for.
pub type Resolution = Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>>;

/// Turns a host name into addresses; the transport asks it on every dial
/// of a peer configured by name.
///
/// The default is [`SystemResolver`]. Tests (or an application with its
/// own discovery) set [`TransportConfig::resolver`](crate::TransportConfig::resolver)
/// to another implementation:
///
/// ```
/// use std::net::SocketAddr;
/// use tenure_transport::{Resolution, Resolve};
/// /// Every name is the same fixed address.
/// struct Fixed(SocketAddr);
/// impl Resolve for Fixed {
///     fn resolve(&self, _host: &str, _port: u16) -> Resolution {
///         let addr = self.0;
///         Box::pin(async move { Ok(vec![addr]) })
///     }
/// }
/// ```
pub trait Resolve: Send + Sync {
    /// The addresses of `host` at `port`, best first. An empty list counts
    /// as a failure to resolve.
    fn resolve(&self, host: &str, port: u16) -> Resolution;
}

/// The operating system's resolver (`getaddrinfo` through
/// [`tokio::net::lookup_host`]): honours `/etc/hosts`, `nsswitch.conf`
/// and `resolv.conf` (search domains included) like every other program
/// on the host, which is what Kubernetes and systemd hosts expect.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> Resolution {
        let target = format!("{host}:{port}");
        Box::pin(async move { Ok(tokio::net::lookup_host(target).await?.collect()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PeerAddr, PeerAddrError> {
        text.parse()
    }

    #[test]
    fn literals_and_names_parse() {
        assert_eq!(
            parse("10.0.0.2:7101"),
            Ok(PeerAddr::Socket("10.0.0.2:7101".parse().expect("addr")))
        );
        assert_eq!(
            parse("[::1]:7101"),
            Ok(PeerAddr::Socket("[::1]:7101".parse().expect("addr")))
        );
        assert_eq!(
            parse("tenure-0.tenure.ns.svc.cluster.local.:7101"),
            Ok(PeerAddr::Name {
                host: "tenure-0.tenure.ns.svc.cluster.local.".into(),
                port: 7101
            })
        );
        assert_eq!(
            parse("localhost:1").map(|a| a.to_string()),
            Ok("localhost:1".into())
        );
    }

    #[test]
    fn bad_addresses_say_what_is_wrong() {
        assert!(matches!(parse("tenure-0"), Err(PeerAddrError::NoPort(_))));
        assert!(matches!(parse("n1:0"), Err(PeerAddrError::BadPort { .. })));
        assert!(matches!(
            parse("n1:70000"),
            Err(PeerAddrError::BadPort { .. })
        ));
        assert!(matches!(
            parse("::1:7101"),
            Err(PeerAddrError::Ipv6WithoutBrackets(_))
        ));
        for bad in ["a b:1", ":7101", "-x:1", "a..b:1", "10.0.0.300:1", "x/y:1"] {
            assert!(
                matches!(parse(bad), Err(PeerAddrError::BadHost(_))),
                "{bad}: {:?}",
                parse(bad)
            );
        }
    }

    #[test]
    fn loopback_is_literal_loopback_or_localhost() {
        assert!(parse("127.0.0.1:1").expect("addr").is_loopback());
        assert!(parse("localhost:1").expect("addr").is_loopback());
        assert!(parse("n1.localhost:1").expect("addr").is_loopback());
        assert!(!parse("tenure-0.tenure:1").expect("addr").is_loopback());
        assert!(!parse("10.0.0.1:1").expect("addr").is_loopback());
    }
}
