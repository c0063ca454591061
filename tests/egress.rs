//! Plugins that act on the world, on real `tenure run` processes: outgoing
//! HTTP by allowlist, fenced by the host, against a real local HTTP
//! server written here (a fencing store that refuses tokens lower than
//! the highest it accepted, a webhook receiver, an endpoint that never
//! answers).
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;
#[path = "egress/server.rs"]
mod server;

use std::net::{Ipv4Addr, TcpStream};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::time::{Duration, Instant};

use kit::{BOUND, Cluster};
use server::Server;

/// The webhook example plugin (guest/plugins/webhook).
fn webhook_wasm() -> std::path::PathBuf {
    let wasm =
        tenure_host::component_path::election_wasm().with_file_name("tenure_plugin_webhook.wasm");
    assert!(
        wasm.is_file(),
        "build the plugins first: scripts/build-guests.sh"
    );
    wasm
}

/// A `[plugin]` table running the webhook plugin: leadership changes to
/// `hooks` (mode any), the job to `job` (leader mode: a bare URL).
fn webhook_plugin(hooks: &Server, job_origin: &str, job_path: &str, extra: &str) -> String {
    format!(
        "[plugin]\npath = \"{wasm}\"\n\
         allow-http = [{{ url = \"{hooks}\", mode = \"any\" }}, \"{job_origin}\"]\n{extra}\
         [plugin.config]\nwebhook = \"{hooks}/hook\"\njob-url = \"{job_origin}{job_path}\"\n\
         period-ms = \"100\"\nwait-ms = \"40\"\n",
        wasm = webhook_wasm().display(),
        hooks = hooks.origin(),
    )
}

/// Waits until `check` holds, polling; panics with `what` and the logs.
fn wait_until(cluster: &Cluster, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {BOUND:?}\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `on-call(request)` on `node`'s own plugin (not forwarded to the
/// leader's).
fn call(cluster: &Cluster, node: &str, request: &str) -> String {
    let (code, reply, _) = kit::post(cluster.admin(node), "/call?local=true", request.as_bytes());
    assert_eq!(code, 200, "{request} on {node}: {reply}");
    reply
}

#[test]
fn the_leaders_job_carries_its_token_and_a_deposed_leader_is_never_accepted_again() {
    let hooks = Server::start();
    let store = Server::start();
    let mut cluster = Cluster::start("egress-fence", 3, |_| {
        webhook_plugin(&hooks, &store.origin(), "/store", "")
    });
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);

    // The leader's job reaches the store with its term as the token.
    wait_until(&cluster, "three runs of the first leader's job", || {
        store.accepted(Some(&leader)).len() >= 3
    });
    assert!(
        store.accepted(Some(&leader)).iter().all(|t| *t == term),
        "the first leader's token is its term {term}: {:?}",
        store.seen_at("/store")
    );
    // Every node posted its leadership change to the webhook (mode any).
    wait_until(&cluster, "every node's webhook", || {
        let hooks = hooks.seen_at("/hook");
        all.iter().all(|n| {
            hooks
                .iter()
                .any(|h| h.body.contains(&format!("\"node\":\"{n}\"")))
        })
    });
    assert!(
        hooks.seen_at("/hook").iter().all(|h| h.token.is_none()),
        "mode any carries no fencing token"
    );

    // A follower's plugin calling the leader-mode store is refused by its
    // own host, and so is a server nobody listed.
    let follower = all.iter().find(|n| **n != leader).expect("a follower");
    let refused = call(&cluster, follower, &format!("get {}/store", store.origin()));
    assert!(refused.contains("refused by the node"), "{refused}");
    let unlisted = call(&cluster, &leader, "get http://127.0.0.1:9/");
    assert!(unlisted.contains("refused by the node"), "{unlisted}");
    assert!(
        store.seen_at("/store").iter().all(|s| s.method == "POST"),
        "the follower's GET never reached the store"
    );

    // Kill -9 the leader: the new one's job carries a higher token, and
    // the store never accepts a lower token after a higher one.
    cluster.kill9(&leader);
    let rest: Vec<&str> = all.iter().copied().filter(|n| *n != leader).collect();
    let (next, next_term) = cluster.wait_for_leader(&rest, BOUND);
    assert!(next_term > term);
    wait_until(&cluster, "three runs of the new leader's job", || {
        store.accepted(Some(&next)).len() >= 3
    });
    let tokens = store.accepted(None);
    assert!(
        tokens.windows(2).all(|w| w[0] <= w[1]),
        "accepted tokens never go down: {tokens:?}"
    );
    assert!(store.accepted(Some(&next)).iter().all(|t| *t == next_term));
    let status = cluster.status(&next).expect("the new leader answers");
    let usage = status.plugin.expect("a plugin").usage;
    assert!(usage.http_sent >= 3, "{usage:?}");
    assert!(
        cluster
            .log(follower)
            .contains("plugin HTTP request refused"),
        "the refusal is in the follower's log"
    );

    // Freeze the new leader past its lease (SIGSTOP: the pause users
    // fear) while the restarted first leader and the third node elect a
    // successor; then thaw it. Its host no longer lets its job through: at
    // most one request that was already in flight when it froze reaches
    // the store, and the store refuses that one for its lower token.
    cluster.spawn(&leader);
    cluster.signal(&next, libc::SIGSTOP);
    let others: Vec<&str> = all.iter().copied().filter(|n| *n != next).collect();
    let (third, third_term) = cluster.wait_for_leader(&others, BOUND);
    wait_until(&cluster, "three runs of the third leader's job", || {
        store.accepted(Some(&third)).len() >= 3
    });
    let before = store.seen_at("/store").len();
    cluster.signal(&next, libc::SIGCONT);
    cluster.wait_for_leader(&all, BOUND);
    std::thread::sleep(Duration::from_secs(1));
    let thawed: Vec<_> = store.seen_at("/store")[before..]
        .iter()
        .filter(|s| s.is_from(&next))
        .cloned()
        .collect();
    assert!(
        thawed.iter().all(|s| s.status != 200),
        "the store accepted the deposed leader: {thawed:?}"
    );
    assert!(
        thawed.len() <= 1,
        "the thawed leader's host let its job through: {thawed:?}"
    );
    let tokens = store.accepted(None);
    assert!(tokens.windows(2).all(|w| w[0] <= w[1]), "{tokens:?}");
    let refused_after_thaw = cluster
        .status(&next)
        .and_then(|s| s.plugin)
        .map_or(0, |p| p.usage.http_refused);
    println!(
        "egress: {} job runs accepted, tokens {term}, {next_term}, {third_term}; the follower's and the unlisted request refused; \
         after a freeze, {} request(s) from the deposed leader reached the store (refused there), its host refused {refused_after_thaw}",
        tokens.len(),
        thawed.len()
    );
    cluster.assert_one_leader_per_term();
}

#[test]
fn a_remote_that_never_answers_times_out_and_one_that_answers_too_much_is_cut_while_heartbeats_go_on()
 {
    let hooks = Server::start();
    let hang = Server::start();
    let cluster = Cluster::start("egress-hang", 3, |_| {
        webhook_plugin(
            &hooks,
            &hang.origin(),
            "/hang",
            "http-timeout-ms = 500\nhttp-max-response-bytes = 65536\n",
        )
    });
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    // Every job request hangs; each times out after 500 ms in the host and
    // the next tick records it.
    wait_until(&cluster, "a timed-out job", || {
        call(&cluster, &leader, "seen").contains("/hang error: timed out")
    });
    // A response over the cap fails the request, not the node (the probe
    // answers at once, or says pending and `seen` shows it later).
    let big_url = format!("{}/big", hang.origin());
    let big = call(&cluster, &leader, &format!("get {big_url}"));
    assert!(
        big.contains("response too large") || big.ends_with("pending"),
        "{big}"
    );
    wait_until(&cluster, "the oversized answer refused", || {
        call(&cluster, &leader, "seen").contains(&format!("{big_url} error: response too large"))
    });
    // Meanwhile other callbacks answer at once...
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let (code, _, took) = kit::post(cluster.admin(&leader), "/call", b"seen");
        assert_eq!(code, 200);
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(50));
    }
    // ... and nobody missed a heartbeat.
    let (again, again_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!((again.as_str(), again_term), (leader.as_str(), term));
    let gap = cluster.largest_follower_gap_ms();
    let usage = cluster
        .status(&leader)
        .and_then(|s| s.plugin)
        .expect("a plugin")
        .usage;
    assert!(usage.http_failed >= 1, "{usage:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "a call waited {slowest:?} behind a hung request"
    );
    assert!(gap < 300, "a follower saw a {gap} ms heartbeat gap");
    println!(
        "hung remote: {} requests timed out, slowest /call {slowest:?}, largest follower heartbeat gap {gap} ms, term unchanged",
        usage.http_failed
    );
}

/// A loopback listener whose accept queue is full (backlog 0, one
/// connection queued and never accepted): the kernel drops the SYN of any
/// further connect, so a connect to it never completes — what a server
/// that cannot be reached looks like, without leaving loopback. Returns
/// its port and what keeps it so, or why this kernel would not.
fn unconnectable() -> Result<(u16, OwnedFd, Vec<TcpStream>), String> {
    let port = tenure_host::testing::ports::port().expect("a loopback port");
    // SAFETY: `socket` takes no pointers; a valid descriptor is owned by
    // the `OwnedFd` at once, which closes it.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    if raw < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // As std's listeners do: a port an earlier run left in TIME_WAIT binds.
    let one: libc::c_int = 1;
    // SAFETY: `one` is a c_int that outlives the call; `fd` is open.
    let reuse = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&raw const one).cast::<libc::c_void>(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if reuse != 0 {
        return Err(format!("SO_REUSEADDR: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `addr` is a valid sockaddr_in of `len` bytes that outlives
    // the call; `fd` is an open socket.
    let bound = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            len,
        )
    };
    // SAFETY: `fd` is an open, bound socket.
    if bound != 0 || unsafe { libc::listen(fd.as_raw_fd(), 0) } != 0 {
        return Err(format!("bind/listen: {}", std::io::Error::last_os_error()));
    }
    let target = std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut queued = Vec::new();
    for _ in 0..8 {
        match TcpStream::connect_timeout(&target, Duration::from_millis(300)) {
            Ok(stream) => queued.push(stream),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok((port, fd, queued)),
            Err(e) => return Err(format!("a connect to a full listener failed: {e}")),
        }
    }
    Err("8 connects to a listener with backlog 0 all completed".into())
}

/// One cluster, three checks on the webhook plugin's egress:
/// - a custom fencing header (`fencing-header = "X-Fence"`) carries the
///   leader's token, and the default header is not sent;
/// - a plugin cannot forge the fencing header: a request that sets it is
///   refused by its own host (in leader and in any mode), and nothing
///   reaches the server;
/// - a webhook slower (300 ms) than the plugin waits inside a callback
///   (`wait-ms` 40) still hears every node's leadership change: the post
///   is collected later, not abandoned;
/// - a server that never completes a connect fails the request at
///   `http-connect-timeout-ms` (300 ms), long before `http-timeout-ms`.
#[test]
fn a_custom_fencing_header_is_the_hosts_alone_a_slow_webhook_is_heard_and_connects_time_out() {
    let hooks = Server::start();
    let store = Server::with_fencing_header("x-fence");
    let full_listener = unconnectable();
    let unreachable_origin = full_listener
        .as_ref()
        .ok()
        .map(|(port, ..)| format!("http://127.0.0.1:{port}"));
    let extra_allow = unreachable_origin
        .as_ref()
        .map(|o| format!(", {{ url = \"{o}\", mode = \"any\" }}"))
        .unwrap_or_default();
    let section = format!(
        "[plugin]\npath = \"{wasm}\"\n\
         allow-http = [{{ url = \"{hooks}\", mode = \"any\" }}, \"{store}\"{extra_allow}]\n\
         fencing-header = \"X-Fence\"\nhttp-connect-timeout-ms = 300\nhttp-timeout-ms = 10000\n\
         [plugin.config]\nwebhook = \"{hooks}/slow-hook\"\njob-url = \"{store}/store\"\n\
         period-ms = \"100\"\nwait-ms = \"40\"\n",
        wasm = webhook_wasm().display(),
        hooks = hooks.origin(),
        store = store.origin(),
    );
    let cluster = Cluster::start("egress-header", 3, |_| section.clone());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);

    // The token travels in X-Fence, and only there.
    wait_until(&cluster, "three runs of the leader's job", || {
        store.accepted(Some(&leader)).len() >= 3
    });
    assert!(store.accepted(Some(&leader)).iter().all(|t| *t == term));
    assert!(
        store
            .seen_at("/store")
            .iter()
            .all(|s| s.headers.iter().all(|(n, _)| n != "tenure-fencing-token")),
        "the default header was sent too: {:?}",
        store.seen_at("/store")
    );

    // Every node's slow webhook was heard and its answer collected.
    for node in all {
        wait_until(&cluster, &format!("{node}'s slow webhook answered"), || {
            call(&cluster, node, "seen").contains(&format!("{}/slow-hook 200", hooks.origin()))
        });
    }
    let seen = call(&cluster, &leader, "seen");
    assert!(
        !seen.contains("slow-hook error"),
        "a slow webhook post was given up: {seen}"
    );

    // Forged tokens never leave the node.
    let follower = *all.iter().find(|n| **n != leader).expect("a follower");
    for (node, url) in [
        (leader.as_str(), format!("{}/store", store.origin())),
        (follower, format!("{}/forged", hooks.origin())),
        (leader.as_str(), format!("{}/forged", hooks.origin())),
    ] {
        let forged = call(&cluster, node, &format!("get {url} X-Fence:999999"));
        assert!(forged.contains("bad request"), "{node}: {forged}");
    }
    assert!(hooks.seen_at("/forged").is_empty(), "a forged request left");
    assert!(
        store
            .seen()
            .iter()
            .all(|s| s.token != Some(999_999) && s.method == "POST"),
        "a forged request reached the store"
    );

    // A connect that never completes fails at the connect timeout.
    match (&unreachable_origin, &full_listener) {
        (Some(origin), _) => {
            let asked = Instant::now();
            let first = call(&cluster, &leader, &format!("get {origin}/"));
            assert!(first.contains("pending"), "{first}");
            let failed = format!("{origin}/ error: timed out");
            wait_until(&cluster, "the connect timeout", || {
                call(&cluster, &leader, "seen").contains(&failed)
            });
            let took = asked.elapsed();
            assert!(
                took < Duration::from_secs(5),
                "the connect took {took:?} to fail: the total timeout (10 s), not the connect timeout (300 ms)"
            );
            println!(
                "a connect that never completes failed after {took:?} (connect timeout 300 ms)"
            );
        }
        (None, Err(why)) => println!("skipped the connect timeout end to end: {why}"),
        (None, Ok(_)) => unreachable!("an origin for every listener"),
    }
    let (again, again_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!((again.as_str(), again_term), (leader.as_str(), term));
    println!(
        "custom fencing header: {} job runs accepted with X-Fence {term}; 3 forged requests refused by \
         their hosts; every node's 300 ms webhook answered",
        store.accepted(None).len()
    );
}
