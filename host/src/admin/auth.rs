//! Who is asking: bearer tokens on the admin endpoint, and the audit trail
//! of every change made through it.
//!
//! A request proves itself with `Authorization: Bearer TOKEN`, where TOKEN
//! is one of `[admin-auth]`'s tokens (see [`crate::config::admin`]):
//!
//! - no `Authorization` header: **401** with `WWW-Authenticate: Bearer`;
//! - a token that is no configured one: **403**;
//! - a right one: the request goes on, and its [`Caller`] is the token's
//!   name.
//!
//! Endpoints that change something always need a token when the node has
//! tokens; read-only ones only with `protect-reads`. With no tokens at all
//! (allowed on a loopback admin address) every caller is `anonymous`.
//! Tokens are compared by SHA-256 digest in constant time, so neither the
//! value nor its prefix leaks through timing.
//!
//! Every request that reaches a changing endpoint is recorded by
//! [`audit`] in `DATA-DIR/events.log` (event `admin-action`: who, from
//! where, what, the status code) and in the node's log; every refused one
//! too (event `admin-refused`).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::server::{AdminCounters, Remote};
use crate::config::AdminToken;
use crate::node::event_log::EventLog;

/// Who made a request: the name of the token it bore, or `anonymous` on a
/// node without tokens. Handlers and the audit trail read it from the
/// request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller(pub String);

/// The tokens the admin endpoint accepts now; replace them (on SIGHUP,
/// say) with [`TokenStore::replace`], and every later request is checked
/// against the new ones.
#[derive(Clone, Debug, Default)]
pub struct TokenStore(Arc<RwLock<Arc<Vec<AdminToken>>>>);

impl TokenStore {
    /// A store holding `tokens`.
    pub fn new(tokens: Vec<AdminToken>) -> TokenStore {
        TokenStore(Arc::new(RwLock::new(Arc::new(tokens))))
    }

    /// Accepts `tokens` from now on, instead of the ones before.
    pub fn replace(&self, tokens: Vec<AdminToken>) {
        let mut now = self.0.write().unwrap_or_else(|p| p.into_inner());
        *now = Arc::new(tokens);
    }

    /// The names of the tokens accepted now.
    pub fn names(&self) -> Vec<String> {
        self.current().iter().map(|t| t.name.clone()).collect()
    }

    fn current(&self) -> Arc<Vec<AdminToken>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The accepted tokens, and the audit log, shared by the middleware.
#[derive(Clone)]
pub(super) struct Gate {
    tokens: TokenStore,
    audit: Arc<AuditLog>,
    counters: Arc<AdminCounters>,
}

impl Gate {
    pub(super) fn new(tokens: TokenStore, audit: AuditLog, counters: Arc<AdminCounters>) -> Gate {
        Gate {
            tokens,
            audit: Arc::new(audit),
            counters,
        }
    }

    /// The token's name if `headers` bear a configured one; the refusal
    /// otherwise.
    fn check(&self, headers: &HeaderMap) -> Result<Caller, Refusal> {
        let tokens = self.tokens.current();
        if tokens.is_empty() {
            return Ok(Caller("anonymous".into()));
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Err(Refusal::Missing);
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Refusal::Malformed)?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        // Compare with every token, not stopping at a match.
        let mut found = None;
        for token in tokens.iter() {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some(token.name.clone());
            }
        }
        found.map(Caller).ok_or(Refusal::Wrong)
    }
}

/// Why a request was not let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// No `Authorization` header.
    Missing,
    /// An `Authorization` header that is not `Bearer TOKEN`.
    Malformed,
    /// A token that is none of the configured ones.
    Wrong,
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Refusal::Missing => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    "this endpoint needs `Authorization: Bearer TOKEN` (the CLI reads it from \
                     --token-file or TENURE_ADMIN_TOKEN)\n",
                )
                    .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer realm=\"tenure\""),
                );
                r
            }
            Refusal::Malformed => (
                StatusCode::UNAUTHORIZED,
                "the Authorization header must be `Bearer TOKEN`\n",
            )
                .into_response(),
            Refusal::Wrong => {
                (StatusCode::FORBIDDEN, "this token is not accepted\n").into_response()
            }
        }
    }

    fn name(self) -> &'static str {
        match self {
            Refusal::Missing => "no token",
            Refusal::Malformed => "malformed Authorization header",
            Refusal::Wrong => "wrong token",
        }
    }
}

/// Middleware for endpoints that need a token: lets a request with a
/// configured one through (with its [`Caller`]), refuses and records the
/// rest.
pub(super) async fn require_token(
    State(gate): State<Gate>,
    mut request: Request,
    next: Next,
) -> Response {
    // A verified admin client certificate is a credential of its own.
    if let Some(cert) = request.extensions().get::<super::tls::ClientCertificate>() {
        let caller = Caller(format!("cert:{}", cert.0));
        request.extensions_mut().insert(caller);
        return next.run(request).await;
    }
    match gate.check(request.headers()) {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(refusal) => {
            let remote = remote(&request);
            let action = action(&request);
            let code = refusal.response().status().as_u16();
            gate.counters.count_refusal(code);
            tracing::warn!(%remote, %action, reason = refusal.name(), "admin request refused");
            gate.audit.record(serde_json::json!({
                "event": "admin-refused", "from": remote.to_string(), "action": action,
                "reason": refusal.name(), "status": code,
            }));
            refusal.response()
        }
    }
}

/// Middleware for endpoints that change something: records who asked for
/// what, and the outcome, once the handler answered.
pub(super) async fn audit(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let remote = remote(&request);
    let action = action(&request);
    let who = request
        .extensions()
        .get::<Caller>()
        .map_or_else(|| "anonymous".to_string(), |c| c.0.clone());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    tracing::info!(%who, %remote, %action, status, "admin action");
    gate.audit.record(serde_json::json!({
        "event": "admin-action", "who": who, "from": remote.to_string(),
        "action": action, "status": status,
    }));
    response
}

fn remote(request: &Request) -> SocketAddr {
    request
        .extensions()
        .get::<Remote>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |r| r.0)
}

/// `METHOD /path?query`, as the audit trail records it (the query names
/// the target of a transfer or a removal).
fn action(request: &Request) -> String {
    let uri = request.uri();
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let clipped: String = path.chars().take(200).collect();
    format!("{} {clipped}", request.method())
}

/// `DATA-DIR/events.log`, opened a second time for the admin endpoint's
/// lines (see [`EventLog::append_fields`]).
pub(super) struct AuditLog {
    log: Mutex<Option<EventLog>>,
}

impl AuditLog {
    /// Opens (creating or appending to) `data_dir/events.log`.
    pub(super) fn open(data_dir: &Path, node: &str) -> anyhow::Result<AuditLog> {
        Ok(AuditLog {
            log: Mutex::new(Some(EventLog::open(data_dir, node)?)),
        })
    }

    /// An audit log that writes nowhere (the node's log still has it).
    #[cfg(test)]
    pub(super) fn discard() -> AuditLog {
        AuditLog {
            log: Mutex::new(None),
        }
    }

    /// Appends `fields`; a failed write is logged, never fatal (a full
    /// disk must not stop the endpoint).
    fn record(&self, fields: serde_json::Value) {
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(log) = log.as_mut()
            && let Err(e) = log.append_fields(fields)
        {
            tracing::warn!(error = %format!("{e:#}"), "cannot append to the event log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(tokens: &[(&str, &str)]) -> Gate {
        let tokens = tokens
            .iter()
            .map(|(n, v)| AdminToken::new(n, v).expect("token"))
            .collect();
        Gate::new(TokenStore::new(tokens), AuditLog::discard(), Arc::default())
    }

    fn bearing(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, value.parse().expect("header"));
        headers
    }

    #[test]
    fn the_right_token_names_its_caller_and_others_are_refused() {
        let g = gate(&[
            ("ops", "4c6f6e672d72616e646f6d2d746f6b656e"),
            ("ci", "d1c2b3a4958677685a4b3c2d1e0f"),
        ]);
        assert_eq!(
            g.check(&bearing("Bearer d1c2b3a4958677685a4b3c2d1e0f")),
            Ok(Caller("ci".into()))
        );
        assert_eq!(g.check(&HeaderMap::new()), Err(Refusal::Missing));
        assert_eq!(g.check(&bearing("Basic b3BzOnB3")), Err(Refusal::Malformed));
        assert_eq!(
            g.check(&bearing("Bearer 4c6f6e672d72616e646f6d2d746f6b65")),
            Err(Refusal::Wrong)
        );
        assert_eq!(
            Refusal::Missing.response().status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(Refusal::Wrong.response().status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn without_tokens_everyone_is_anonymous() {
        assert_eq!(
            gate(&[]).check(&HeaderMap::new()),
            Ok(Caller("anonymous".into()))
        );
    }
}
