//! Hostile behaviour plugins on real `tenure run` processes: a plugin that
//! floods `send`, `broadcast`, `log` or `schedule`, writes to stderr,
//! blocks in a host call, answers a huge `inspect()`, holds every HTTP
//! answer it gets, or fails in `init` (at start, or hot-swapped into a
//! running cluster).
//! Each stays within its node's limits: the cluster keeps its leader and
//! term, the node stays up and answers SIGTERM, and its memory and log
//! stay bounded (the test prints both, before and after).
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;
#[path = "egress/server.rs"]
mod server;

use std::time::{Duration, Instant};

use kit::{BOUND, Cluster, misbehave};

/// How long each hostile plugin is provoked.
const PROVOKE: Duration = Duration::from_secs(3);

/// Growth of a node's resident memory this test tolerates: the plugin's
/// own 32 MiB cap, a fresh instance after each trap, and slack.
const RSS_SLACK_KIB: u64 = 160 << 10;

/// Growth of a node's log this test tolerates over [`PROVOKE`]: the log
/// limits allow 256 KiB a second plus the host's own, rate-limited lines.
const LOG_SLACK_BYTES: u64 = 4 << 20;

/// `http-max-concurrent` for the plugin that holds its HTTP answers: each
/// held answer (2 MiB, from `/big`) keeps its slot, so at most this many
/// ever reach the server from one instance.
const HOLD_CONCURRENT: usize = 4;

/// The misbehave plugin's `[plugin]` table for `mode` in `on-call`; the
/// plugin that holds HTTP answers may reach `server`, with answers of up
/// to 4 MiB.
fn hostile_section(mode: &str, server: &server::Server) -> String {
    let section = misbehave(mode, "on-call");
    if mode != "hold-http" {
        return section;
    }
    section.replace(
        "[plugin.config]",
        &format!(
            "allow-http = [{{ url = \"{}\", mode = \"any\" }}]\n\
             http-max-concurrent = {HOLD_CONCURRENT}\nhttp-max-response-bytes = 4194304\n\
             [plugin.config]",
            server.origin()
        ),
    )
}

/// Resident memory of node `id`'s process, in KiB.
fn rss_kib(cluster: &mut Cluster, id: &str) -> u64 {
    let pid = cluster
        .local
        .process(id)
        .and_then(|p| p.pid())
        .expect("a running node");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn log_bytes(cluster: &Cluster, id: &str) -> u64 {
    std::fs::metadata(cluster.local.log_path(id)).map_or(0, |m| m.len())
}

/// What one provocation cost a node.
struct Cost {
    rss_before: u64,
    rss_after: u64,
    log_growth: u64,
}

#[test]
fn hostile_plugins_stay_within_their_limits() {
    let all = ["n1", "n2", "n3"];
    let server = server::Server::start();
    let big = format!("{}/big", server.origin());
    for mode in [
        "hold-http",
        "flood-send",
        "flood-broadcast",
        "flood-log",
        "flood-schedule",
        "stderr",
        "sleep",
        "huge-inspect",
    ] {
        let mut cluster = Cluster::start(&format!("hostile-{mode}"), 3, |_| {
            hostile_section(mode, &server)
        });
        let (leader, term) = cluster.wait_for_leader(&all, BOUND);
        let before: Vec<(u64, u64)> = all
            .iter()
            .map(|id| (rss_kib(&mut cluster, id), log_bytes(&cluster, id)))
            .collect();

        // Provoke every node's plugin, one call after another.
        let started = Instant::now();
        let mut calls = 0u32;
        let mut slowest = Duration::ZERO;
        while started.elapsed() < PROVOKE {
            let id = all[calls as usize % all.len()];
            let asked = Instant::now();
            let admin = cluster.admin(id);
            if mode == "huge-inspect" {
                let (code, body) = kit::get(admin, "/inspect");
                assert_eq!(code, 200, "{body}");
                assert!(
                    body.len() < 1 << 20,
                    "inspect answered {} bytes",
                    body.len()
                );
            } else if mode == "hold-http" {
                let (code, body, _) = kit::post(admin, "/call?local=true", big.as_bytes());
                assert_eq!(code, 200, "{body}");
            } else {
                kit::post(admin, "/call?local=true", b"go");
            }
            slowest = slowest.max(asked.elapsed());
            calls += 1;
        }

        // The leader and its term held; nobody missed a heartbeat.
        let (again, again_term) = cluster.wait_for_leader(&all, BOUND);
        assert_eq!(
            (again.as_str(), again_term),
            (leader.as_str(), term),
            "{mode}: leadership moved\n{}",
            cluster.logs()
        );
        let gap = cluster.largest_follower_gap_ms();
        assert!(gap < 300, "{mode}: a follower saw a {gap} ms heartbeat gap");
        let costs: Vec<Cost> = all
            .iter()
            .zip(&before)
            .map(|(id, (rss_before, log_before))| Cost {
                rss_before: *rss_before,
                rss_after: rss_kib(&mut cluster, id),
                log_growth: log_bytes(&cluster, id).saturating_sub(*log_before),
            })
            .collect();
        let usage = cluster
            .status(&leader)
            .and_then(|s| s.plugin)
            .expect("a plugin")
            .usage;
        for (id, cost) in all.iter().zip(&costs) {
            assert!(
                cost.rss_after < cost.rss_before + RSS_SLACK_KIB,
                "{mode}: {id} grew from {} to {} KiB",
                cost.rss_before,
                cost.rss_after
            );
            assert!(
                cost.log_growth < LOG_SLACK_BYTES,
                "{mode}: {id}'s log grew {} bytes",
                cost.log_growth
            );
        }
        // Each mode hit the limit it is about.
        let hit = match mode {
            "flood-send" | "flood-broadcast" => usage.messages_dropped,
            "flood-log" => usage.log_lines_dropped + usage.log_lines_truncated,
            "flood-schedule" => usage.wakeups_refused,
            "stderr" => usage.output_lines,
            "sleep" => usage.deadlines,
            "huge-inspect" => usage.inspect_oversized,
            "hold-http" => usage.http_refused,
            _ => unreachable!(),
        };
        if mode == "hold-http" {
            // Every answer is held, so every slot stays taken: no more
            // requests than slots ever left a node.
            let reached = server.seen_at("/big").len();
            assert!(
                reached <= all.len() * HOLD_CONCURRENT,
                "{mode}: {reached} requests reached the server, over {HOLD_CONCURRENT} a node"
            );
            assert_eq!(
                usage.http_in_flight, HOLD_CONCURRENT as u64,
                "{mode}: the held answers keep their slots: {usage:?}"
            );
            // Host resources without end (header sets) hit the cap on
            // them: a trap, well before the deadline would cut it.
            let (code, body, _) = kit::post(cluster.admin(&leader), "/call?local=true", b"exhaust");
            assert_ne!(code, 200, "{body}");
            cluster.wait_for_log(&leader, "resource table has no free keys", BOUND);
        }
        assert!(hit > 0, "{mode}: the limit was never hit: {usage:?}");

        // A node whose plugin is stuck still stops on SIGTERM.
        let follower = *all.iter().find(|n| **n != leader).expect("a follower");
        let admin = cluster.admin(follower);
        let poke = std::thread::spawn(move || {
            let _ = std::panic::catch_unwind(|| kit::post(admin, "/call?local=true", b"go"));
        });
        std::thread::sleep(Duration::from_millis(10));
        cluster.signal(follower, libc::SIGTERM);
        let exited = cluster.wait_exit(follower, Duration::from_secs(10));
        let _ = poke.join();
        assert!(
            exited.is_some(),
            "{mode}: {follower} ignored SIGTERM\n{}",
            cluster.log(follower)
        );
        let worst = |f: fn(&Cost) -> u64| costs.iter().map(f).max().unwrap_or(0);
        println!(
            "{mode}: {calls} provocations in {PROVOKE:?} (slowest {slowest:?}); leader {leader} term {term} held, \
             largest heartbeat gap {gap} ms; RSS {} -> {} KiB (largest node), log +{} KiB (largest); \
             limit hits {hit}; SIGTERM obeyed",
            worst(|c| c.rss_before),
            worst(|c| c.rss_after),
            worst(|c| c.log_growth) >> 10,
        );
        cluster.assert_one_leader_per_term();
    }
}

#[test]
fn a_plugin_that_fails_in_init_is_refused_and_never_crashes_the_host() {
    for (mode, on) in [("trap", "init"), ("stderr", "init"), ("sleep", "init")] {
        let mut cluster =
            Cluster::configure(&format!("hostile-init-{mode}"), 1, |_| misbehave(mode, on));
        let (status, log) = cluster
            .spawn_expecting_exit("n1", Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{mode} in {on}: the node kept running"));
        assert_eq!(
            status.code(),
            Some(1),
            "{mode} in {on}: the node must refuse the plugin with an error, not crash:\n{log}"
        );
        // The plugin's own panic message arrives through its captured
        // stderr, tagged; the host itself never panics.
        assert!(
            log.lines()
                .filter(|l| l.contains("panicked at"))
                .all(|l| l.contains("stream=\"stderr\"")),
            "{mode} in {on}: the host panicked:\n{log}"
        );
        assert!(
            log.contains("plugin"),
            "{mode} in {on}: the reason names the plugin:\n{log}"
        );
        println!("{mode} in {on}: refused at start (exit 1)");
    }
}

/// A build that fails in `init` — it panics on n1, floods stderr on n2,
/// sleeps past its deadline on n3 — hot-swapped into a running 3-node
/// cluster, twice on every node: each swap is refused with the reason and
/// the running version keeps running; the cluster keeps its leader and
/// term, no node misses a heartbeat or crashes, memory and log stay
/// bounded, and a node still stops on SIGTERM. The running version is the
/// logger, which ignores the `mode`/`on` config that makes the misbehave
/// build fail in `init` (a swap keeps the node's config). Every swap
/// compiles the build afresh, so there are few of them.
#[test]
fn a_build_that_fails_in_init_is_refused_by_a_running_cluster() {
    const ROUNDS: usize = 2;
    let all = ["n1", "n2", "n3"];
    let mode_of = |id: &str| match id {
        "n1" => "trap",
        "n2" => "stderr",
        _ => "sleep",
    };
    let wasm = tenure_host::component_path::election_wasm();
    let logger = wasm.with_file_name("tenure_plugin_logger.wasm");
    let failing = std::fs::read(wasm.with_file_name("tenure_plugin_misbehave.wasm"))
        .expect("the plugins are built");
    let mut cluster = Cluster::start("hostile-swap-init", 3, |id| {
        format!(
            "[plugin]\npath = \"{}\"\ndeadline-ms = 50\nmemory-mib = 32\n\
             [plugin.config]\nmode = \"{}\"\non = \"init\"\n",
            logger.display(),
            mode_of(id)
        )
    });
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    let before: Vec<(u64, u64)> = all
        .iter()
        .map(|id| (rss_kib(&mut cluster, id), log_bytes(&cluster, id)))
        .collect();
    let mut took = Vec::new();
    for _ in 0..ROUNDS {
        for id in all {
            let mode = mode_of(id);
            let (code, body, t) = kit::post(
                cluster.admin(id),
                "/plugin?name=fails-in-init.wasm",
                &failing,
            );
            assert_eq!(code, 422, "{mode} in init, swapped into {id}: {body}");
            assert!(body.contains("keeps running"), "{body}");
            assert!(body.contains("init"), "the reason names init: {body}");
            took.push(t);
        }
    }
    let (again, again_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!(
        (again.as_str(), again_term),
        (leader.as_str(), term),
        "leadership moved\n{}",
        cluster.logs()
    );
    let gap = cluster.largest_follower_gap_ms();
    assert!(gap < 300, "a follower saw a {gap} ms heartbeat gap");
    for (id, (rss_before, log_before)) in all.iter().zip(&before) {
        let mode = mode_of(id);
        let status = cluster.status(id).expect("the node answers");
        let plugin = status.plugin.expect("a plugin");
        assert_eq!(
            plugin.name, "tenure_plugin_logger.wasm",
            "{id} runs the old version"
        );
        assert!(
            plugin.usage.swaps_refused >= ROUNDS as u64,
            "{:?}",
            plugin.usage
        );
        let rss_after = rss_kib(&mut cluster, id);
        let log_growth = log_bytes(&cluster, id).saturating_sub(*log_before);
        assert!(
            rss_after < rss_before + RSS_SLACK_KIB,
            "{mode} in init: {id} grew from {rss_before} to {rss_after} KiB"
        );
        assert!(
            log_growth < LOG_SLACK_BYTES,
            "{mode} in init: {id}'s log grew {log_growth} bytes"
        );
        let log = cluster.log(id);
        assert!(
            log.lines()
                .filter(|l| l.contains("panicked at"))
                .all(|l| l.contains("stream=\"stderr\"")),
            "{mode} in init: the host panicked:\n{log}"
        );
        println!(
            "{mode} in init, hot-swapped into {id} {ROUNDS} times: refused each time; \
             RSS {rss_before} -> {rss_after} KiB, log +{} KiB",
            log_growth >> 10
        );
    }
    let follower = *all.iter().find(|n| **n != leader).expect("a follower");
    cluster.signal(follower, libc::SIGTERM);
    assert!(
        cluster
            .wait_exit(follower, Duration::from_secs(10))
            .is_some(),
        "{follower} ignored SIGTERM\n{}",
        cluster.log(follower)
    );
    took.sort();
    println!(
        "{} refused swaps (each compiling the build; slowest {:?}); leader {leader} term {term} held, \
         largest heartbeat gap {gap} ms; SIGTERM obeyed",
        took.len(),
        took.last().copied().unwrap_or_default()
    );
    cluster.assert_one_leader_per_term();
}

#[test]
fn a_plugin_gets_no_sockets_files_or_environment() {
    // A listener the plugin is told to reach: nothing may arrive.
    let port = kit::free_port();
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("a listener");
    listener.set_nonblocking(true).expect("nonblocking");
    let udp = std::net::UdpSocket::bind(("127.0.0.1", port)).expect("a UDP socket");
    udp.set_nonblocking(true).expect("nonblocking");
    let cluster = Cluster::start("hostile-escape", 1, |_| misbehave("escape", "on-call"));
    cluster.wait_for_leader(&["n1"], BOUND);
    let (code, report, _) = kit::post(
        cluster.admin("n1"),
        "/call?local=true",
        format!("127.0.0.1:{port}").as_bytes(),
    );
    assert_eq!(code, 200, "{report}");
    println!("a plugin trying its way out:\n{report}");
    for way in ["tcp", "udp", "dns", "file", "dir"] {
        let line = report
            .lines()
            .find(|l| l.starts_with(&format!("{way}: ")))
            .unwrap_or_else(|| panic!("no {way} line in {report}"));
        assert!(line.contains("refused"), "{line}");
    }
    assert!(report.contains("env: 0 variables"), "{report}");
    assert!(
        listener.accept().is_err(),
        "a TCP connection reached the listener"
    );
    let mut buf = [0u8; 16];
    assert!(udp.recv_from(&mut buf).is_err(), "a datagram arrived");
}
