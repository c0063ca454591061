//! A small HTTP/1.1 server for the egress tests, on a port no other test
//! of the run holds: a fencing store that refuses tokens lower than the
//! highest it accepted, a webhook receiver, an endpoint that never
//! answers (`/hang`), one that answers late (`/slow…`, after 300 ms) and
//! one that answers too much (`/big`). Every request is recorded.
// Each test that includes this module uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The fencing header's value, if the request had one.
    pub token: Option<u64>,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The status the server answered (0: never answered).
    pub status: u16,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    highest: Option<u64>,
    /// The fencing header's name, lowercase.
    fencing_header: String,
}

/// The running server; it stops with the test process.
#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Seen {
    /// Whether the JSON body names `node` (`"node":"n1"`, spaces or not).
    pub fn is_from(&self, node: &str) -> bool {
        let compact: String = self.body.chars().filter(|c| !c.is_whitespace()).collect();
        compact.contains(&format!("\"node\":\"{node}\""))
    }
}

impl Server {
    /// Starts the server on a fresh loopback port; the fencing token comes
    /// in `Tenure-Fencing-Token`.
    pub fn start() -> Server {
        Server::with_fencing_header("tenure-fencing-token")
    }

    /// Starts the server, the fencing token in header `name`.
    pub fn with_fencing_header(name: &str) -> Server {
        let port = tenure_host::testing::ports::port().expect("a loopback port");
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the test server binds");
        let server = Server {
            addr: listener.local_addr().expect("an address"),
            state: Arc::new(Mutex::new(State {
                fencing_header: name.to_ascii_lowercase(),
                ..State::default()
            })),
        };
        let state = server.state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = state.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        server
    }

    /// `http://127.0.0.1:PORT`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("state").seen.clone()
    }

    /// Tokens the store (`/store`) accepted, in order, from `node` (from
    /// every node when `None`).
    pub fn accepted(&self, node: Option<&str>) -> Vec<u64> {
        self.seen_at("/store")
            .into_iter()
            .filter(|s| s.status == 200 && node.is_none_or(|n| s.is_from(n)))
            .filter_map(|s| s.token)
            .collect()
    }

    /// Requests to `path` so far.
    pub fn seen_at(&self, path: &str) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.path == path).collect()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let (mut length, mut token, mut chunked) = (0usize, None, false);
    let mut headers = Vec::new();
    let fencing = state.lock().expect("state").fencing_header.clone();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            let name = name.trim().to_ascii_lowercase();
            match name.as_str() {
                "content-length" => length = value.parse().unwrap_or(0),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                _ if name == fencing => token = value.parse().ok(),
                _ => {}
            }
            headers.push((name, value.to_string()));
        }
    }
    let mut body = Vec::new();
    if chunked {
        // Size line, data, CRLF; a zero size ends the body.
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).is_err() {
                return;
            }
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                return;
            };
            let mut chunk = vec![0; size + 2];
            if reader.read_exact(&mut chunk).is_err() {
                return;
            }
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body = vec![0; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    let big = path == "/big";
    let status = {
        let mut state = state.lock().expect("state");
        let status = match path.as_str() {
            // Never answers: the connection is held until the client gives up.
            "/hang" => 0,
            "/store" => match token {
                None => 400,
                Some(t) if state.highest.is_some_and(|h| t < h) => 409,
                Some(t) => {
                    state.highest = Some(t);
                    200
                }
            },
            _ => 200,
        };
        state.seen.push(Seen {
            method,
            path: path.clone(),
            token,
            headers,
            body,
            status,
        });
        status
    };
    let mut stream = reader.into_inner();
    if status == 0 {
        std::thread::sleep(Duration::from_secs(30));
        return;
    }
    if path.starts_with("/slow") {
        std::thread::sleep(Duration::from_millis(300));
    }
    let reason = if status == 200 { "OK" } else { "No" };
    // `/big` answers 2 MiB, more than a plugin may read.
    let body = if big {
        "b".repeat(2 << 20)
    } else {
        "ok".to_string()
    };
    let reply = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}
