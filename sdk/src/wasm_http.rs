//! `crate::http` through the generated `wasi:http` bindings (only in
//! `wasm32` builds).

use std::time::Duration;

use crate::__bindings::wasi::clocks::monotonic_clock;
use crate::__bindings::wasi::http::outgoing_handler;
use crate::__bindings::wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, Scheme,
};
use crate::__bindings::wasi::io::poll;
use crate::__bindings::wasi::io::streams::StreamError;
use crate::http::{HttpError, Request, Response, split_url};

/// A request in flight: the host's future for its response.
pub(crate) type PendingResponse = FutureIncomingResponse;

/// Bytes per write to a request body (what `blocking-write-and-flush`
/// takes at most).
const WRITE_CHUNK: usize = 4096;

fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    }
}

fn bad(what: &str) -> impl Fn(()) -> HttpError + '_ {
    move |()| HttpError::BadRequest(format!("the node refused the {what}"))
}

pub(crate) fn http_start(request: Request) -> Result<PendingResponse, HttpError> {
    let (scheme, authority, path) = split_url(&request.url)?;
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.as_bytes().to_vec()))
        .collect();
    // A known length rather than a chunked body: every server takes it.
    if !request.body.is_empty()
        && !entries
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"))
    {
        entries.push((
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let headers = Fields::from_list(&entries)
        .map_err(|e| HttpError::BadRequest(format!("headers: {e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    outgoing
        .set_method(&method(&request.method))
        .map_err(bad("method"))?;
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    outgoing.set_scheme(Some(&scheme)).map_err(bad("scheme"))?;
    outgoing
        .set_authority(Some(authority))
        .map_err(bad("authority"))?;
    outgoing
        .set_path_with_query(Some(&path))
        .map_err(bad("path"))?;
    let body = outgoing.body().map_err(bad("body"))?;
    // Handed over before the body is written: the host reads the body as
    // it is written, and a body larger than its buffer would otherwise
    // wait for a reader that is not there yet.
    let pending = outgoing_handler::handle(outgoing, None).map_err(error)?;
    if !request.body.is_empty() {
        let stream = body.write().map_err(bad("body stream"))?;
        for chunk in request.body.chunks(WRITE_CHUNK) {
            match stream.blocking_write_and_flush(chunk) {
                Ok(()) => {}
                // The exchange ended early (the server answered, or the
                // request failed): the response says how.
                Err(StreamError::Closed) => break,
                Err(e) => return Err(HttpError::Failed(format!("writing the body: {e:?}"))),
            }
        }
    }
    OutgoingBody::finish(body, None).map_err(error)?;
    Ok(pending)
}

pub(crate) fn http_wait(
    pending: &mut PendingResponse,
    most: Duration,
) -> Option<Result<Response, HttpError>> {
    if pending.get().is_none() {
        let ready = pending.subscribe();
        let nanos = u64::try_from(most.as_nanos()).unwrap_or(u64::MAX);
        let timer = monotonic_clock::subscribe_duration(nanos);
        poll::poll(&[&ready, &timer]);
    }
    match pending.get()? {
        Err(()) => Some(Err(HttpError::Failed(
            "the response was taken already".into(),
        ))),
        Ok(Err(code)) => Some(Err(error(code))),
        Ok(Ok(response)) => Some(read(response)),
    }
}

fn read(response: IncomingResponse) -> Result<Response, HttpError> {
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let incoming = response
        .consume()
        .map_err(|()| HttpError::Failed("the body was taken already".into()))?;
    let mut body = Vec::new();
    {
        let stream = incoming
            .stream()
            .map_err(|()| HttpError::Failed("the body stream was taken already".into()))?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Failed(e.to_debug_string()));
                }
            }
        }
    }
    IncomingBody::finish(incoming);
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn error(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied,
        ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => HttpError::Timeout,
        ErrorCode::HttpResponseTimeout => HttpError::Timeout,
        ErrorCode::HttpResponseBodySize(_) => HttpError::TooLarge,
        other => HttpError::Failed(format!("{other:?}")),
    }
}
