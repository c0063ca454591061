//! Outgoing HTTP from a plugin, through the node (`wasi:http`).
//!
//! The node sends only what its config allows (`[plugin] allow-http`:
//! scheme, host and port), and for entries in `leader` mode only while it
//! leads with a lease — then it adds the fencing token as a header
//! (`Tenure-Fencing-Token` unless configured), so a receiver that keeps the
//! highest token it has seen refuses a deposed leader's writes. A refused
//! request fails with [`HttpError::Denied`]; nothing left the node.
//!
//! A callback has a deadline (100 ms by default) that counts time spent
//! waiting. Two ways to call, then:
//!
//! - [`Request::send`] waits for the response at most as long as you say —
//!   keep that well inside the deadline; fine for a fast, nearby service;
//! - [`Request::start`] returns a [`Pending`] at once. The node carries the
//!   request out on its own, with its own timeouts; keep the `Pending` in
//!   your behaviour and look at it in a later callback (a wake-up from
//!   [`crate::node::schedule`]) with [`Pending::try_get`]. A slow remote
//!   then never holds up a callback.
//!
//! ```
//! use std::time::Duration;
//! use tenure_sdk::{fake, http};
//! fake::with(|n| n.http_responses.push_back(Ok(http::Response::new(200, "stored"))));
//! let reply = http::Request::post("http://127.0.0.1:9000/jobs", "run")
//!     .header("content-type", "text/plain")
//!     .send(Duration::from_millis(50))
//!     .expect("the fake answered");
//! assert_eq!((reply.status, reply.text().as_str()), (200, "stored"));
//! assert_eq!(fake::with(|n| n.http_requests[0].url.clone()), "http://127.0.0.1:9000/jobs");
//! ```
//!
//! In a native build (`cargo test`) requests go to the [`crate::fake`]
//! node: it records them and answers from `http_responses`.

use std::fmt;
use std::time::Duration;

#[cfg(not(target_arch = "wasm32"))]
use crate::fake as imp;
#[cfg(target_arch = "wasm32")]
use crate::wasm_http as imp;

/// A request to make; build it with [`Request::get`], [`Request::post`] or
/// [`Request::new`], then [`send`](Request::send) or
/// [`start`](Request::start) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `http://host[:port]/path?query` or `https://...`.
    pub url: String,
    /// Header names and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body; empty for none.
    pub body: Vec<u8>,
}

/// A response, read whole (the node caps its size: `[plugin]
/// http-max-response-bytes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request brought no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// The node refused it before sending: not in its allowlist, a
    /// `leader` entry while this node does not lead with a lease, or too
    /// many requests in flight. The node's log says which.
    Denied,
    /// No response within the node's timeouts, or within the wait asked
    /// of [`Request::send`] (the request is abandoned then).
    Timeout,
    /// The response body was larger than the node allows.
    TooLarge,
    /// The request could not be made: a bad URL, method or header.
    BadRequest(String),
    /// The connection or the exchange failed.
    Failed(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied => write!(f, "refused by the node (allowlist, leadership or limit)"),
            HttpError::Timeout => write!(f, "timed out"),
            HttpError::TooLarge => write!(f, "response too large"),
            HttpError::BadRequest(why) => write!(f, "bad request: {why}"),
            HttpError::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

impl Request {
    /// A request with `method` for `url`, no headers and no body.
    pub fn new(method: &str, url: impl Into<String>) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new("GET", url)
    }

    /// `POST url` with `body`.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Request {
        Request::new("POST", url).body(body)
    }

    /// Adds a header. (The fencing header is the node's to set: a request
    /// that sets it is refused as a bad request.)
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sends the request and waits at most `wait` for the response; after
    /// that the request is abandoned and [`HttpError::Timeout`] returned.
    /// Keep `wait` well inside the callback's deadline.
    pub fn send(self, wait: Duration) -> Result<Response, HttpError> {
        let mut pending = self.start()?;
        pending.wait(wait).unwrap_or(Err(HttpError::Timeout))
    }

    /// Hands the request to the node and returns at once; see [`Pending`].
    pub fn start(self) -> Result<Pending, HttpError> {
        imp::http_start(self).map(Pending)
    }
}

/// A request the node is carrying out. Keep it across callbacks and ask
/// [`try_get`](Pending::try_get) later; dropping it abandons the request.
/// It lives in the plugin instance: a trap or a hot swap abandons it too.
/// Until `try_get` takes its answer (or it is dropped), it holds one of
/// the node's `http-max-concurrent` slots, answered or not: collect it.
pub struct Pending(pub(crate) imp::PendingResponse);

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pending")
    }
}

impl Pending {
    /// The outcome if it is in, without waiting.
    pub fn try_get(&mut self) -> Option<Result<Response, HttpError>> {
        self.wait(Duration::ZERO)
    }

    /// The outcome, waiting for it at most `most`; `None` if it is not in
    /// yet (ask again later). Once it returned `Some`, it returns
    /// `Some(Err(Failed))` after.
    pub fn wait(&mut self, most: Duration) -> Option<Result<Response, HttpError>> {
        imp::http_wait(&mut self.0, most)
    }
}

impl Response {
    /// A response with `status` and `body` (for fakes and tests).
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// `url` split into scheme, authority and path-with-query.
pub(crate) fn split_url(url: &str) -> Result<(&str, &str, &str), HttpError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| HttpError::BadRequest(format!("{url:?} has no scheme")))?;
    if scheme != "http" && scheme != "https" {
        return Err(HttpError::BadRequest(format!(
            "{url:?}: the scheme must be http or https"
        )));
    }
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() {
        return Err(HttpError::BadRequest(format!("{url:?} has no host")));
    }
    Ok((scheme, authority, if path.is_empty() { "/" } else { path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_their_parts() {
        assert_eq!(
            split_url("http://127.0.0.1:9000/a/b?c=1"),
            Ok(("http", "127.0.0.1:9000", "/a/b?c=1"))
        );
        assert_eq!(
            split_url("https://x.example?q"),
            Ok(("https", "x.example", "?q"))
        );
        assert_eq!(split_url("http://x"), Ok(("http", "x", "/")));
        for bad in ["x.example/a", "ftp://x/", "http:///a"] {
            assert!(split_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_fake_records_requests_and_is_denied_without_an_answer() {
        crate::fake::reset();
        let denied = Request::get("http://127.0.0.1:1/").send(Duration::from_millis(1));
        assert_eq!(denied, Err(HttpError::Denied));
        let bad = Request::get("nowhere").start().map(|_| ());
        assert!(matches!(bad, Err(HttpError::BadRequest(_))));
        assert_eq!(crate::fake::with(|n| n.http_requests.len()), 1);
    }
}
