//! The cluster page: `GET /` and its assets, plain HTML, CSS and
//! JavaScript embedded in the binary (no build step, no CDN). The page
//! reads `GET /status` every second and `GET /watch` as it happens; see
//! `page/page.js`.
//!
//! - `GET /`: the page.
//! - `GET /page/page.js`, `GET /page/page.css`, `GET /page/icon.svg`: its
//!   script, style and icon.
//! - `GET /page/access`: `{"tokens": bool, "protect_reads": bool}`, so the
//!   page knows whether to ask for a token, and offers operator actions
//!   (step-down, transfer, each behind a confirmation) only on an endpoint
//!   that has tokens.
//!
//! These routes never need a token: they carry no data about the node.
//! Every answer forbids anything but this origin's own resources
//! (`Content-Security-Policy: default-src 'self'`), framing and sniffing.

use axum::Router;
use axum::extract::State;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use super::TokenStore;

/// The page.
const INDEX_HTML: &str = include_str!("page/index.html");
/// Its script.
const PAGE_JS: &str = include_str!("page/page.js");
/// Its style.
const PAGE_CSS: &str = include_str!("page/page.css");
/// Its icon (browsers ask for one; a 404 would be noise in their logs).
const ICON_SVG: &str = include_str!("page/icon.svg");

/// Only this origin's scripts, styles, images and connections; no
/// framing, no forms, no `<base>`.
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// What the page must know of the endpoint's authentication.
#[derive(Clone)]
pub(super) struct Access {
    /// The tokens accepted now (they may be replaced while the node runs).
    pub tokens: TokenStore,
    /// Whether reads need a token (`[admin-auth] protect-reads`).
    pub protect_reads: bool,
}

/// The page's routes, for any router state.
pub(super) fn routes<S: Clone + Send + Sync + 'static>(access: Access) -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/page/page.js",
            get(|| async { asset("text/javascript; charset=utf-8", PAGE_JS) }),
        )
        .route(
            "/page/page.css",
            get(|| async { asset("text/css; charset=utf-8", PAGE_CSS) }),
        )
        .route(
            "/page/icon.svg",
            get(|| async { asset("image/svg+xml", ICON_SVG) }),
        )
        .route("/page/access", get(access_json))
        .with_state(access)
}

/// The headers every page answer carries.
fn guarded(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        // A node upgraded in place serves its own assets at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    for (name, value) in set {
        headers.insert::<HeaderName>(name, value);
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    guarded(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// `GET /page/access`.
async fn access_json(State(access): State<Access>) -> Response {
    let tokens = !access.tokens.names().is_empty();
    guarded(
        Json(serde_json::json!({ "tokens": tokens, "protect_reads": access.protect_reads }))
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower_service::Service as _;

    /// GET `path` from the page's routes: status, content type, CSP, body.
    async fn get(access: Access, path: &str) -> (StatusCode, String, String, String) {
        let mut app: Router = routes(access);
        let request = Request::get(path).body(Body::empty()).expect("a request");
        let response = app.call(request).await.expect("infallible");
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (status, content_type, csp) = (
            response.status(),
            header(header::CONTENT_TYPE),
            header(header::CONTENT_SECURITY_POLICY),
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        (
            status,
            content_type,
            csp,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn open() -> Access {
        Access {
            tokens: TokenStore::default(),
            protect_reads: false,
        }
    }

    #[tokio::test]
    async fn the_page_is_html_under_a_policy_that_allows_only_this_origin() {
        let (status, content_type, csp, body) = get(open(), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/html; charset=utf-8");
        assert!(csp.starts_with("default-src 'self'"), "{csp}");
        assert!(body.starts_with("<!doctype html>"), "{body}");
        assert!(body.contains(r#"name="viewport""#), "usable on a phone");
        // Only its own assets, and no inline script or style to allow.
        assert!(body.contains(r#"src="/page/page.js""#));
        assert!(body.contains(r#"href="/page/page.css""#));
        assert!(!body.contains("<script>") && !body.contains("style="));
        assert!(!body.contains("http://") && !body.contains("https://"));
    }

    #[tokio::test]
    async fn the_assets_are_served_with_their_types() {
        let (status, content_type, csp, body) = get(open(), "/page/page.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/javascript; charset=utf-8");
        assert_eq!(csp, CONTENT_SECURITY_POLICY);
        assert!(body.contains("new EventSource(\"/watch\")"));
        assert!(!body.contains("innerHTML"), "data reaches the DOM as text");
        let (status, content_type, _, body) = get(open(), "/page/page.css").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "text/css; charset=utf-8");
        assert!(body.contains("@media"));
        let (status, content_type, _, _) = get(open(), "/page/icon.svg").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type, "image/svg+xml");
        let (status, _, _, _) = get(open(), "/page/nothing.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_page_learns_whether_the_endpoint_has_tokens() {
        let (_, content_type, _, body) = get(open(), "/page/access").await;
        assert_eq!(content_type, "application/json");
        assert_eq!(body, r#"{"protect_reads":false,"tokens":false}"#);
        let token = crate::config::AdminToken::new("ops", "c0ffee-9f8e7d6c5b4a39281706f5e4")
            .expect("a strong token");
        let guarded = Access {
            tokens: TokenStore::new(vec![token]),
            protect_reads: true,
        };
        let (_, _, _, body) = get(guarded, "/page/access").await;
        assert_eq!(body, r#"{"protect_reads":true,"tokens":true}"#);
    }
}
