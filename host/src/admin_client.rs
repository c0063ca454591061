//! A minimal client for a node's admin endpoint (loopback HTTP/1.1), used
//! by the `tenure` CLI and by the multi-process tests.
//!
//! A node with `[admin-auth]` tokens wants `Authorization: Bearer TOKEN`
//! on every changing request: pass [`Credentials`] to the `_as` functions
//! ([`exchange_as`], [`request_as`], [`fetch_status_as`]). The CLI takes
//! them from `--token-file` or the environment ([`Credentials::from_env`]),
//! never from a flag's value, which any user could read in `ps`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::node::NodeReport;

/// How long a `GET /status` may take: a live node answers in
/// milliseconds, so waiting longer only hides a frozen or stopped one.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an action (`POST /plugin`, `/protocol`, `/step-down`, ...) may
/// take: an uncached plugin compiles before the node answers.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// The variable naming a file that holds the admin token (read first).
pub const TOKEN_FILE_ENV: &str = "TENURE_ADMIN_TOKEN_FILE";

/// The variable holding the admin token itself (the same one a node reads
/// for its own token: see [`crate::config::admin::ADMIN_TOKEN_ENV`]).
pub const TOKEN_ENV: &str = crate::config::admin::ADMIN_TOKEN_ENV;

/// How a client proves itself: a bearer token, or nothing.
///
/// ```
/// use tenure_host::admin_client::Credentials;
/// assert!(Credentials::none().is_none());
/// assert!(!Credentials::bearer("3f2a9c0d11e4b7a5c0ffee").is_none());
/// ```
#[derive(Clone, Default)]
pub struct Credentials {
    token: Option<String>,
    /// HTTPS: whom to trust, and the client certificate to show, if any.
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Credentials {
    /// Never the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = if self.token.is_some() {
            "bearer"
        } else {
            "none"
        };
        let tls = if self.tls.is_some() { ", https" } else { "" };
        write!(f, "Credentials({token}{tls})")
    }
}

impl Credentials {
    /// No token: enough for a node without `[admin-auth]` tokens and for
    /// the read-only endpoints of one without `protect-reads`.
    pub fn none() -> Credentials {
        Credentials::default()
    }

    /// `Authorization: Bearer token`.
    pub fn bearer(token: impl Into<String>) -> Credentials {
        Credentials {
            token: Some(token.into()),
            tls: None,
        }
    }

    /// The same credentials over HTTPS (a node with `[admin-tls]`):
    /// trusting the CA certificate(s) in `ca`, whose certificate for the
    /// node must name its admin address's IP (`tenure certs --san
    /// n1=IP`); with `client`, also showing that admin client certificate
    /// and key (`tenure certs --admin NAME`), which a node with
    /// `client-ca` takes instead of a token.
    pub fn with_tls(
        mut self,
        ca: &Path,
        client: Option<(&Path, &Path)>,
    ) -> anyhow::Result<Credentials> {
        use rustls_pki_types::PrivateKeyDer;
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        for cert in crate::admin::certificates(ca)? {
            roots
                .add(cert)
                .with_context(|| format!("{}: not a CA certificate", ca.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots);
        let mut config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = crate::admin::certificates(cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .with_context(|| format!("reading {}", key.display()))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .context("the client certificate and key do not go together")?
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.tls = Some(Arc::new(config));
        Ok(self)
    }

    /// Whether this carries no token.
    pub fn is_none(&self) -> bool {
        self.token.is_none()
    }

    /// The token in `path`: its first line that is not blank or a `#`
    /// comment — either the token alone, or `NAME TOKEN` as in a node's
    /// `tokens-file`.
    pub fn from_file(path: &Path) -> anyhow::Result<Credentials> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the admin token file {}", path.display()))?;
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .with_context(|| format!("{} holds no token", path.display()))?;
        let token = line.split_whitespace().last().unwrap_or(line);
        Ok(Credentials::bearer(token))
    }

    /// From the environment: the file named by [`TOKEN_FILE_ENV`], else
    /// the token in [`TOKEN_ENV`], else none.
    pub fn from_env() -> anyhow::Result<Credentials> {
        if let Some(file) = std::env::var_os(TOKEN_FILE_ENV) {
            return Credentials::from_file(Path::new(&file))
                .with_context(|| format!("`{TOKEN_FILE_ENV}`"));
        }
        Ok(std::env::var(TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .map_or_else(Credentials::none, Credentials::bearer))
    }

    /// The `Authorization` header line to send (CRLF-terminated), or
    /// nothing without a token: for clients that write their own request.
    pub fn http_header(&self) -> String {
        self.token
            .as_ref()
            .map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"))
    }
}

/// A connection to an admin endpoint: plain TCP, or TLS over it.
pub trait AdminStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> AdminStream for S {}

/// Connects to the admin endpoint at `admin`: over TLS when
/// `credentials` carry a CA ([`Credentials::with_tls`]), the certificate
/// checked against `admin`'s IP.
pub async fn connect(
    admin: SocketAddr,
    credentials: &Credentials,
) -> std::io::Result<Box<dyn AdminStream>> {
    let tcp = TcpStream::connect(admin).await?;
    let Some(tls) = &credentials.tls else {
        return Ok(Box::new(tcp));
    };
    let name = rustls_pki_types::ServerName::IpAddress(admin.ip().into());
    let stream = tokio_rustls::TlsConnector::from(tls.clone())
        .connect(name, tcp)
        .await?;
    Ok(Box::new(stream))
}

/// Fetches `GET /status` from the admin endpoint at `admin`, giving up
/// after `within` (see [`STATUS_TIMEOUT`]).
pub async fn fetch_status(admin: SocketAddr, within: Duration) -> anyhow::Result<NodeReport> {
    fetch_status_as(admin, &Credentials::none(), within).await
}

/// [`fetch_status`] with `credentials` (a node with `protect-reads`).
pub async fn fetch_status_as(
    admin: SocketAddr,
    credentials: &Credentials,
    within: Duration,
) -> anyhow::Result<NodeReport> {
    let (code, body) = request_as(admin, credentials, "GET", "/status", &[], within).await?;
    if code != 200 {
        bail!("{admin} answered {code}: {}", body.trim());
    }
    serde_json::from_str(&body).with_context(|| format!("unexpected reply from {admin}: {body}"))
}

/// One HTTP/1.1 request to the loopback admin endpoint, `Connection:
/// close`, the reply read to the end within `within`: the status code and
/// the body. A minimal client, enough for the few requests the CLI and the
/// tests make.
pub async fn request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    within: Duration,
) -> anyhow::Result<(u16, String)> {
    request_as(admin, &Credentials::none(), method, path, body, within).await
}

/// [`request`] with `credentials`.
pub async fn request_as(
    admin: SocketAddr,
    credentials: &Credentials,
    method: &str,
    path: &str,
    body: &[u8],
    within: Duration,
) -> anyhow::Result<(u16, String)> {
    let reply = exchange_as(admin, credentials, method, path, body, within).await?;
    Ok((reply.code, reply.body))
}

/// An admin endpoint's whole answer: see [`exchange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminReply {
    /// The HTTP status code.
    pub code: u16,
    /// The header lines, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl AdminReply {
    /// The first header called `name` (lower case), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Like [`request`], with the reply's headers (`Retry-After` on a refusal
/// that may succeed later, say).
pub async fn exchange(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
    within: Duration,
) -> anyhow::Result<AdminReply> {
    exchange_as(admin, &Credentials::none(), method, path, body, within).await
}

/// [`exchange`] with `credentials`.
pub async fn exchange_as(
    admin: SocketAddr,
    credentials: &Credentials,
    method: &str,
    path: &str,
    body: &[u8],
    within: Duration,
) -> anyhow::Result<AdminReply> {
    let exchange = async {
        let mut stream = connect(admin, credentials).await?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n{}\
             Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
            credentials.http_header(),
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(within, exchange)
        .await
        .with_context(|| format!("no answer from {admin} within {within:?}"))?
        .with_context(|| format!("cannot reach the admin endpoint at {admin}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("malformed HTTP reply from {admin}"))?;
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("malformed HTTP status line from {admin}"))?;
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Ok(AdminReply {
        code,
        headers,
        body: body.to_string(),
    })
}
