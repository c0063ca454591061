//! Outgoing HTTP for plugins (`wasi:http/outgoing-handler`), by allowlist
//! and fenced by the host.
//!
//! A plugin's request leaves the node only if an entry of `[plugin]
//! allow-http` names its scheme, host and port. An entry in
//! [`EgressMode::Leader`] (a bare URL's mode) further requires that this
//! node leads *and* its lease holds when the request is made; the host then
//! stamps the request with the fencing token — the term — in a header
//! ([`DEFAULT_FENCING_HEADER`] unless configured), which a plugin cannot
//! set or forge itself. Anything refused fails with `HTTP-request-denied`
//! before a byte leaves, and is counted and logged.
//!
//! A request runs on the plugin I/O runtime ([`super::io`]), not in the
//! callback that made it: it has its own connect and total timeouts and a
//! cap on the response body (read whole, before the plugin sees the
//! response), so a callback may start a request and look at its
//! `future-incoming-response` in a later callback. A request holds its
//! slot of `http-max-concurrent` until the plugin lets go of the answer —
//! drops the response (or its future) or reads its body to the end — not
//! merely until the answer arrived: a body the host keeps for the plugin
//! lives outside the plugin's memory cap, so the slots are what bound it
//! (at most `http-max-concurrent` × `http-max-response-bytes`). What fencing does not
//! guarantee: a request already on its way when the lease lapses still
//! arrives — the receiver must compare the token with the highest it has
//! seen.

use std::pin::Pin;
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, uri::Scheme};
use http_body_util::{BodyExt as _, Full, Limited};
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use super::SharedView;
use super::quota::PluginUsage;

/// The header that carries the fencing token, unless configured otherwise.
pub const DEFAULT_FENCING_HEADER: &str = "Tenure-Fencing-Token";

/// Who may use an allowlist entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EgressMode {
    /// Every node, leader or not (a webhook that reports leadership
    /// changes, say). No fencing header.
    Any,
    /// Only while this node leads and its lease holds; every request
    /// carries the fencing token.
    Leader,
}

/// One allowlist entry: a scheme, a host and a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRule {
    /// `http` or `https`.
    pub scheme: String,
    /// The host name or IP literal (IPv6 in brackets), lowercase.
    pub host: String,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Who may use it.
    pub mode: EgressMode,
}

impl EgressRule {
    /// Parses `scheme://host[:port]` (an optional trailing `/`; no path,
    /// query or user info: an entry names a server, not a resource).
    pub fn parse(url: &str, mode: EgressMode) -> anyhow::Result<EgressRule> {
        let uri = http::Uri::from_str(url).with_context(|| format!("{url:?} is not a URL"))?;
        let scheme = match uri.scheme_str() {
            Some(s @ ("http" | "https")) => s.to_string(),
            Some(other) => bail!("{url:?}: scheme {other:?} is not http or https"),
            None => bail!("{url:?}: needs a scheme, http:// or https://"),
        };
        let Some(authority) = uri.authority() else {
            bail!("{url:?}: needs a host");
        };
        if authority.as_str().contains('@') {
            bail!("{url:?}: user info is not allowed in an allowlist entry");
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!("{url:?}: an entry names a server (scheme, host, port), not a path");
        }
        Ok(EgressRule {
            port: authority
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 }),
            scheme,
            host: authority.host().to_ascii_lowercase(),
            mode,
        })
    }

    /// `scheme://host:port`, as the logs show it.
    pub fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// What a node allows its plugin to reach, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Allowed servers; empty (the default) denies every request.
    pub rules: Vec<EgressRule>,
    /// Time to connect, at most.
    pub connect_timeout: Duration,
    /// Time from sending to the whole response read, at most.
    pub total_timeout: Duration,
    /// The largest response body; a larger one fails the request.
    pub max_response_bytes: u64,
    /// Requests in flight at once, at most; more are refused.
    pub max_concurrent: u64,
    /// The header the fencing token goes in.
    pub fencing_header: HeaderName,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy {
            rules: Vec::new(),
            connect_timeout: Duration::from_secs(2),
            total_timeout: Duration::from_secs(10),
            max_response_bytes: 1 << 20,
            max_concurrent: 8,
            fencing_header: HeaderName::from_static("tenure-fencing-token"),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No entry names the server.
    NotAllowed(String),
    /// A `leader` entry, and this node does not lead with a lease.
    NotLeading(String),
    /// Too many requests in flight.
    TooMany(u64),
    /// The request's URL lacks a host or has an unknown scheme.
    BadUrl,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotAllowed(o) => write!(f, "{o} is not in [plugin] allow-http"),
            Refusal::NotLeading(o) => write!(
                f,
                "{o} is allowed in leader mode only, and this node does not lead with a lease"
            ),
            Refusal::TooMany(n) => {
                write!(f, "{n} requests already in flight (http-max-concurrent)")
            }
            Refusal::BadUrl => write!(f, "the request has no http(s) scheme or no host"),
        }
    }
}

impl EgressPolicy {
    /// What to do with a request for `uri` now: `Ok(Some(term))` for a
    /// fenced request (the token to stamp it with), `Ok(None)` for an
    /// unfenced one.
    pub fn decide(&self, uri: &http::Uri, view: &SharedView) -> Result<Option<u64>, Refusal> {
        let scheme = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => "http",
            Some(s) if *s == Scheme::HTTPS => "https",
            _ => return Err(Refusal::BadUrl),
        };
        let host = uri.host().ok_or(Refusal::BadUrl)?.to_ascii_lowercase();
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let origin = format!("{scheme}://{host}:{port}");
        let rule = self
            .rules
            .iter()
            .find(|r| r.scheme == scheme && r.host == host && r.port == port)
            .ok_or_else(|| Refusal::NotAllowed(origin.clone()))?;
        match rule.mode {
            EgressMode::Any => Ok(None),
            EgressMode::Leader => {
                let view = view.lock().unwrap_or_else(|e| e.into_inner());
                match view.lease_remaining_ns() {
                    Some(_) => Ok(Some(view.term)),
                    None => Err(Refusal::NotLeading(origin)),
                }
            }
        }
    }
}

/// The `wasi:http` hooks of one plugin instance: the policy, applied.
pub struct EgressHooks {
    policy: Arc<EgressPolicy>,
    view: SharedView,
    usage: Arc<PluginUsage>,
    node: String,
    plugin: String,
}

impl EgressHooks {
    /// Hooks that apply `policy` to `plugin` on `node`.
    pub fn new(
        policy: Arc<EgressPolicy>,
        view: SharedView,
        usage: Arc<PluginUsage>,
        node: &str,
        plugin: &str,
    ) -> EgressHooks {
        EgressHooks {
            policy,
            view,
            usage,
            node: node.to_string(),
            plugin: plugin.to_string(),
        }
    }
}

type Sent = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// Frees a slot of the in-flight count when dropped: with the request's
/// future while it runs, then with the response body the host holds for
/// the plugin (see [`HeldBody`]).
struct InFlight(Arc<PluginUsage>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.http_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WasiHttpHooks for EgressHooks {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        let fencing = self.policy.fencing_header.clone();
        Arc::new(move |name| *name == fencing || DEFAULT_FORBIDDEN_HEADERS.contains(name))
    }

    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sent {
        let policy = self.policy.clone();
        let decision = policy.decide(request.uri(), &self.view).and_then(|token| {
            let usage = &self.usage;
            let before = usage.http_in_flight.fetch_add(1, Ordering::Relaxed);
            if before >= policy.max_concurrent {
                usage.http_in_flight.fetch_sub(1, Ordering::Relaxed);
                return Err(Refusal::TooMany(before));
            }
            Ok((token, InFlight(usage.clone())))
        });
        let (token, slot) = match decision {
            Ok(allowed) => allowed,
            Err(refusal) => {
                let refused = PluginUsage::bump(&self.usage.http_refused);
                if self.usage.warn_http_due() {
                    tracing::warn!(
                        node = %self.node, plugin = %self.plugin, refused,
                        uri = %request.uri(), "plugin HTTP request refused: {refusal}"
                    );
                }
                return Box::new(async { Err(Error::HttpRequestDenied) });
            }
        };
        if let Some(term) = token {
            request
                .headers_mut()
                .insert(policy.fencing_header.clone(), HeaderValue::from(term));
        }
        PluginUsage::bump(&self.usage.http_sent);
        let usage = self.usage.clone();
        tracing::debug!(node = %self.node, plugin = %self.plugin, uri = %request.uri(), fencing_token = ?token, "plugin HTTP request");
        Box::new(async move {
            // Until the answer is in, the slot lives in this future (a
            // future the plugin drops aborts the request and frees it);
            // then in the answer's body.
            let outcome =
                tokio::time::timeout(policy.total_timeout, send(request, options, &policy, slot))
                    .await
                    .unwrap_or(Err(Error::ConnectionReadTimeout));
            if outcome.is_err() {
                PluginUsage::bump(&usage.http_failed);
            }
            outcome
        })
    }
}

/// A response body read whole, and the request's slot of the in-flight
/// count: the slot is freed when the body is dropped — when the plugin
/// drops the response or its future, or reads the body to its end (the
/// bytes are then in the plugin's memory, under its cap).
struct HeldBody {
    bytes: Full<Bytes>,
    _slot: InFlight,
}

impl hyper::body::Body for HeldBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Error>>> {
        Pin::new(&mut self.get_mut().bytes)
            .poll_frame(cx)
            .map_err(|never| match never {})
    }

    fn is_end_stream(&self) -> bool {
        self.bytes.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.bytes.size_hint()
    }
}

/// Sends `request` and reads its whole response body, within the policy;
/// the body keeps `slot`.
async fn send(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    policy: &EgressPolicy,
    slot: InFlight,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
> {
    let asked = options.unwrap_or_default();
    let cap = |asked: Option<Duration>, most: Duration| Some(asked.map_or(most, |a| a.min(most)));
    let options = RequestOptions {
        connect_timeout: cap(asked.connect_timeout, policy.connect_timeout),
        first_byte_timeout: cap(asked.first_byte_timeout, policy.total_timeout),
        between_bytes_timeout: cap(asked.between_bytes_timeout, policy.total_timeout),
    };
    let (response, connection) =
        wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
    // The connection makes progress only while something polls it.
    let connection = tokio::spawn(connection);
    let (parts, body) = response.into_parts();
    let limit = usize::try_from(policy.max_response_bytes).unwrap_or(usize::MAX);
    let collected = Limited::new(body, limit).collect().await;
    connection.abort();
    let bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(Error::HttpResponseBodySize(Some(policy.max_response_bytes)));
        }
        Err(_) => return Err(Error::ConnectionTerminated),
    };
    let body = HeldBody {
        bytes: Full::new(bytes),
        _slot: slot,
    }
    .boxed_unsync();
    let done: Box<dyn Future<Output = Result<(), Error>> + Send> = Box::new(async { Ok(()) });
    Ok((http::Response::from_parts(parts, body), done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::Role;
    use crate::plugin::{LeaderView, ViewClock};
    use std::sync::Mutex;

    fn view(role: Role, lease: Option<u64>) -> SharedView {
        let (clock, _) = ViewClock::manual();
        Arc::new(Mutex::new(LeaderView {
            node_id: "n1".into(),
            cluster_id: "c".into(),
            role,
            term: 7,
            leader: None,
            peers: vec![],
            members: vec![],
            lease_expires_ns: lease,
            clock,
        }))
    }

    fn uri(s: &str) -> http::Uri {
        s.parse().expect("uri")
    }

    #[test]
    fn entries_name_a_server_and_nothing_else() {
        let rule = EgressRule::parse("https://API.example.com", EgressMode::Leader).expect("ok");
        assert_eq!(rule.origin(), "https://api.example.com:443");
        let rule = EgressRule::parse("http://[::1]:8080/", EgressMode::Any).expect("ok");
        assert_eq!((rule.host.as_str(), rule.port), ("[::1]", 8080));
        for bad in [
            "ftp://x",
            "x.example.com",
            "http://x/path",
            "http://u:p@x",
            "http://x?q=1",
            "::",
        ] {
            assert!(
                EgressRule::parse(bad, EgressMode::Any).is_err(),
                "{bad} accepted"
            );
        }
    }

    #[test]
    fn only_listed_servers_and_leader_entries_only_with_a_lease() {
        let policy = EgressPolicy {
            rules: vec![
                EgressRule::parse("http://127.0.0.1:8080", EgressMode::Any).expect("ok"),
                EgressRule::parse("http://127.0.0.1:9090", EgressMode::Leader).expect("ok"),
            ],
            ..EgressPolicy::default()
        };
        let follower = view(Role::Follower, None);
        let leader = view(Role::Leader, Some(1_000_000));
        let lapsed = view(Role::Leader, Some(0));
        assert_eq!(
            policy.decide(&uri("http://127.0.0.1:8080/x"), &follower),
            Ok(None)
        );
        assert_eq!(
            policy.decide(&uri("http://127.0.0.1:8081/"), &leader),
            Err(Refusal::NotAllowed("http://127.0.0.1:8081".into()))
        );
        assert_eq!(
            policy.decide(&uri("https://127.0.0.1:8080/"), &leader),
            Err(Refusal::NotAllowed("https://127.0.0.1:8080".into())),
            "the scheme is part of the entry"
        );
        assert_eq!(
            policy.decide(&uri("http://127.0.0.1:9090/"), &leader),
            Ok(Some(7))
        );
        for (name, v) in [("follower", &follower), ("lapsed lease", &lapsed)] {
            assert!(
                matches!(
                    policy.decide(&uri("http://127.0.0.1:9090/"), v),
                    Err(Refusal::NotLeading(_))
                ),
                "{name}"
            );
        }
        assert_eq!(
            EgressPolicy::default().decide(&uri("http://127.0.0.1:8080/"), &leader),
            Err(Refusal::NotAllowed("http://127.0.0.1:8080".into())),
            "deny by default"
        );
    }

    #[test]
    fn the_fencing_header_is_the_hosts_whatever_its_name() {
        let hooks = |name: &'static str| {
            let policy = EgressPolicy {
                fencing_header: HeaderName::from_static(name),
                ..EgressPolicy::default()
            };
            let usage = Arc::new(PluginUsage::default());
            EgressHooks::new(Arc::new(policy), view(Role::Leader, None), usage, "n1", "p")
        };
        let mut custom = hooks("x-fence");
        let forbidden = custom.forbidden_header_filter();
        assert!(forbidden(&HeaderName::from_static("x-fence")));
        assert!(
            forbidden(&HeaderName::from_static("host")),
            "wasi:http's own list still holds"
        );
        assert!(
            !forbidden(&HeaderName::from_static("tenure-fencing-token")),
            "only the configured name is the host's"
        );
        let mut default = hooks("tenure-fencing-token");
        let forbidden = default.forbidden_header_filter();
        assert!(forbidden(&HeaderName::from_static("tenure-fencing-token")));
        assert!(!forbidden(&HeaderName::from_static("content-type")));
    }
}
