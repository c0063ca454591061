//! `[admin-auth]` and `[admin-limits]`: who may change a node through its
//! admin endpoint, and how much one client may ask of it.
//!
//! ```toml
//! [admin-auth]
//! tokens-file = "admin-tokens"   # one `NAME TOKEN` per line (`#` comments);
//!                                #   several lines for rotation. Also, or
//!                                #   instead: TENURE_ADMIN_TOKEN in the
//!                                #   node's environment (named "env").
//! protect-reads = false          # true: /status, /watch, /leader, … need a
//!                                #   token too (/livez and /readyz never do)
//! insecure-allow-remote-without-auth = false
//!                                # true: serve a non-loopback admin address
//!                                #   with no tokens (anyone who can reach
//!                                #   it can replace the node's code)
//!
//! [admin-tls]                    # HTTPS for the admin endpoint
//! cert = "n1.pem"                #   its certificate chain (`tenure certs
//! key = "n1.key"                 #   --san n1=IP` names the address)
//! client-ca = "ca.pem"           # optional: also accept client certificates
//!                                #   of this CA naming an admin (`tenure certs
//!                                #   --admin NAME`), instead of a token
//!
//! [admin-limits]
//! max-connections = 64           # open admin connections; more are closed at once
//! header-timeout-ms = 5000       # to send a request's headers (and how long
//!                                #   a kept-alive connection may sit idle)
//! body-timeout-ms = 60000        # to send a request's body
//! max-body-bytes = 1048576       # a request body (e.g. `POST /call`)
//! max-upload-bytes = 67108864    # a `POST /plugin` or `POST /protocol` body
//! ```

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{in_range, secret};

/// The environment variable that carries one more admin token (named
/// `env`), for deployments that hand secrets over as variables.
pub const ADMIN_TOKEN_ENV: &str = "TENURE_ADMIN_TOKEN";

/// The shortest admin token accepted, in bytes.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Who may use the admin endpoint (`[admin-auth]`).
#[derive(Clone, Debug, Default)]
pub struct AdminAuthConfig {
    /// The accepted tokens; empty means no authentication.
    pub tokens: Vec<AdminToken>,
    /// Whether read-only endpoints need a token too.
    pub protect_reads: bool,
    /// The operator's explicit choice to serve a non-loopback admin
    /// address without tokens.
    pub insecure_allow_remote_without_auth: bool,
    /// Where the file tokens came from, for [`AdminAuthConfig::reread`].
    tokens_file: Option<std::path::PathBuf>,
    /// The token from the environment, kept across rereads.
    env_token: Option<AdminToken>,
}

/// One accepted admin token: its name (what the audit log records) and
/// the SHA-256 of its value (the value itself is not kept).
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    /// The name the audit log records for requests bearing it.
    pub name: String,
    /// SHA-256 of the token.
    pub digest: [u8; 32],
}

impl std::fmt::Debug for AdminToken {
    /// The name only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminToken({:?})", self.name)
    }
}

impl AdminToken {
    /// A token called `name` with value `value`, checked for strength.
    pub fn new(name: &str, value: &str) -> anyhow::Result<AdminToken> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            bail!("token name {name:?} must be one word");
        }
        if value.len() < MIN_TOKEN_BYTES {
            bail!(
                "token {name:?} must be at least {MIN_TOKEN_BYTES} bytes, got {}",
                value.len()
            );
        }
        secret::check_strength(value.as_bytes())
            .map_err(|why| anyhow::anyhow!("token {name:?} is too weak: {why}"))?;
        Ok(AdminToken {
            name: name.to_string(),
            digest: Sha256::digest(value.as_bytes()).into(),
        })
    }
}

impl AdminAuthConfig {
    /// Adds the token in [`ADMIN_TOKEN_ENV`], if set (see
    /// [`NodeConfig::load`](super::NodeConfig::load)).
    pub fn add_env_token(&mut self, value: Option<String>) -> anyhow::Result<()> {
        if let Some(value) = value {
            let token = AdminToken::new("env", value.trim())
                .with_context(|| format!("`{ADMIN_TOKEN_ENV}`"))?;
            self.tokens.push(token.clone());
            self.env_token = Some(token);
        }
        Ok(())
    }

    /// The tokens as they are now: `tokens-file` read again, plus the
    /// environment's token — for a reload on SIGHUP (rotation). An error,
    /// meaning the current tokens stay, if the file is unreadable, wrong
    /// or empty, or if it would leave a node that had tokens with none.
    pub fn reread(&self) -> anyhow::Result<Vec<AdminToken>> {
        let Some(file) = &self.tokens_file else {
            bail!("`[admin-auth]` names no tokens-file to read again");
        };
        let mut tokens = read_tokens_file(file)?;
        tokens.extend(self.env_token.clone());
        Ok(tokens)
    }

    /// Refuses to serve `admin` to the network without authentication,
    /// unless the operator said so by name.
    pub fn check_exposure(
        &self,
        admin: std::net::SocketAddr,
        tls: Option<&AdminTlsConfig>,
    ) -> anyhow::Result<()> {
        let client_certificates = tls.is_some_and(|t| t.client_ca.is_some());
        if admin.ip().is_loopback() || !self.tokens.is_empty() || client_certificates {
            return Ok(());
        }
        if self.insecure_allow_remote_without_auth {
            tracing::warn!(
                %admin,
                "the admin endpoint is open to the network without authentication: anyone who \
                 can reach it can replace this node's code (admin-auth.insecure-allow-remote-without-auth)"
            );
            return Ok(());
        }
        bail!(
            "`admin`: {admin} is not a loopback address and `[admin-auth]` has no tokens, so anyone \
             who can reach it could replace this node's code; add `[admin-auth] tokens-file` (or \
             set {ADMIN_TOKEN_ENV}), or bind `admin` to 127.0.0.1"
        )
    }
}

/// HTTPS for the admin endpoint (`[admin-tls]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminTlsConfig {
    /// The endpoint's certificate chain (PEM).
    pub cert: std::path::PathBuf,
    /// Its private key (PEM).
    pub key: std::path::PathBuf,
    /// A CA whose admin client certificates authenticate a request, as a
    /// token does (the certificate's name is who the audit log records).
    pub client_ca: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAdminTls {
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
    client_ca: Option<std::path::PathBuf>,
}

/// `[admin-tls]` with its paths resolved; the files are read at start.
pub(super) fn admin_tls(
    raw: &RawAdminTls,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
) -> AdminTlsConfig {
    AdminTlsConfig {
        cert: resolve(&raw.cert),
        key: resolve(&raw.key),
        client_ca: raw.client_ca.as_deref().map(resolve),
    }
}

/// What one admin client may ask of the node (`[admin-limits]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminLimits {
    /// Open admin connections at once; more are closed on accept.
    pub max_connections: usize,
    /// Time to send a request's headers; also how long a kept-alive
    /// connection may wait idle for its next request.
    pub header_timeout: Duration,
    /// Time to send a request's body.
    pub body_timeout: Duration,
    /// Largest body of an ordinary request (`POST /call`, …).
    pub max_body_bytes: usize,
    /// Largest `POST /plugin` or `POST /protocol` body (Python and
    /// JavaScript plugins are 10–20 MB).
    pub max_upload_bytes: usize,
}

impl Default for AdminLimits {
    fn default() -> AdminLimits {
        AdminLimits {
            max_connections: 64,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(60),
            max_body_bytes: 1 << 20,
            max_upload_bytes: 64 << 20,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAdminAuth {
    tokens_file: Option<std::path::PathBuf>,
    #[serde(default)]
    protect_reads: bool,
    #[serde(default)]
    insecure_allow_remote_without_auth: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAdminLimits {
    max_connections: Option<usize>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    max_body_bytes: Option<usize>,
    max_upload_bytes: Option<usize>,
}

/// `[admin-auth]`, its tokens file read (`resolve` makes its path absolute).
pub(super) fn auth(
    raw: &RawAdminAuth,
    resolve: impl Fn(&Path) -> std::path::PathBuf,
) -> anyhow::Result<AdminAuthConfig> {
    let tokens_file = raw.tokens_file.as_deref().map(resolve);
    let tokens = match &tokens_file {
        None => Vec::new(),
        Some(file) => read_tokens_file(file)?,
    };
    Ok(AdminAuthConfig {
        tokens,
        protect_reads: raw.protect_reads,
        insecure_allow_remote_without_auth: raw.insecure_allow_remote_without_auth,
        tokens_file,
        env_token: None,
    })
}

/// The tokens in `file`: at least one.
fn read_tokens_file(file: &Path) -> anyhow::Result<Vec<AdminToken>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("`admin-auth.tokens-file`: cannot read {}", file.display()))?;
    let tokens = parse_tokens(&text)
        .with_context(|| format!("`admin-auth.tokens-file` {}", file.display()))?;
    if tokens.is_empty() {
        bail!(
            "`admin-auth.tokens-file` {}: holds no tokens (one `NAME TOKEN` per line)",
            file.display()
        );
    }
    Ok(tokens)
}

/// One `NAME TOKEN` per line; blank lines and `#` comments skipped; names
/// unique.
pub fn parse_tokens(text: &str) -> anyhow::Result<Vec<AdminToken>> {
    let mut tokens: Vec<AdminToken> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            bail!("line {}: expected `NAME TOKEN`", n + 1);
        };
        let token = AdminToken::new(name, value).with_context(|| format!("line {}", n + 1))?;
        if tokens.iter().any(|t| t.name == token.name) {
            bail!("line {}: token name {name:?} appears twice", n + 1);
        }
        tokens.push(token);
    }
    Ok(tokens)
}

/// `[admin-limits]`, checked.
pub(super) fn limits(raw: &RawAdminLimits) -> anyhow::Result<AdminLimits> {
    let d = AdminLimits::default();
    let ms = |key: &str, value: Option<u64>, default: Duration| -> anyhow::Result<Duration> {
        match value {
            None => Ok(default),
            Some(ms) => {
                in_range(&format!("admin-limits.{key}"), ms, 100..=600_000)?;
                Ok(Duration::from_millis(ms))
            }
        }
    };
    let limits = AdminLimits {
        max_connections: raw.max_connections.unwrap_or(d.max_connections),
        header_timeout: ms("header-timeout-ms", raw.header_timeout_ms, d.header_timeout)?,
        body_timeout: ms("body-timeout-ms", raw.body_timeout_ms, d.body_timeout)?,
        max_body_bytes: raw.max_body_bytes.unwrap_or(d.max_body_bytes),
        max_upload_bytes: raw.max_upload_bytes.unwrap_or(d.max_upload_bytes),
    };
    let size = |n: usize| n as u64;
    in_range(
        "admin-limits.max-connections",
        size(limits.max_connections),
        1..=10_000,
    )?;
    in_range(
        "admin-limits.max-body-bytes",
        size(limits.max_body_bytes),
        1024..=1 << 30,
    )?;
    in_range(
        "admin-limits.max-upload-bytes",
        size(limits.max_upload_bytes),
        1024..=1 << 30,
    )?;
    Ok(limits)
}
