//! What operators see, on real `tenure run` processes: `GET /metrics` read
//! by a real Prometheus text parser (the prometheus-parse crate) — values
//! agree with `/status` across a failover, exactly one node reports
//! `tenure_is_leader 1` once settled, counters never go down across a
//! plugin hot swap — JSON logs, `tenure --version` and `tenure config
//! check`.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::io::{Read as _, Write as _};

use kit::metrics::Metrics;
use kit::{BOUND, Cluster};
use tenure_transport::frame::{self, FrameKey, Kind};
use tenure_transport::handshake;

fn scheduler(version: &str) -> std::path::PathBuf {
    tenure_host::component_path::election_wasm()
        .with_file_name(format!("tenure_plugin_scheduler{version}.wasm"))
}

#[test]
fn metrics_agree_with_status_across_a_failover_and_counters_never_go_down() {
    let plugin = format!(
        "[plugin]\npath = \"{}\"\n[plugin.config]\nperiod-ms = \"100\"\n",
        scheduler("").display()
    );
    let mut cluster = Cluster::start("metrics", 3, |_| plugin.clone());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);

    let check = |cluster: &Cluster, nodes: &[&str], leader: &str, term: u64| {
        // A follower counts its leader's contact from the second message
        // it hears from it (the first is what made it a follower).
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut leaders = 0.0;
        for id in nodes {
            let m = Metrics::scrape(cluster, id);
            let status = cluster.status(id).expect("answers");
            assert_eq!(m.get("tenure_term", ""), status.term as f64, "{id}");
            assert_eq!(status.term, term, "{id}");
            let leads = f64::from(u8::from(*id == leader));
            assert_eq!(m.get("tenure_is_leader", ""), leads, "{id}");
            assert_eq!(
                m.get("leader_election_master_status", "name=proc"),
                leads,
                "{id}: client-go's name agrees"
            );
            assert_eq!(m.get("tenure_has_leader", ""), 1.0, "{id}");
            assert!(m.get("tenure_leader_changes_seen_total", "") >= 1.0, "{id}");
            assert!(
                m.get("tenure_state_persist_seconds_count", "") >= 1.0,
                "{id} persisted"
            );
            assert!(
                m.get("tenure_frames_total", "kind=frame,outcome=accepted") > 0.0,
                "{id}"
            );
            // Every other member has a last-heard figure, and the leader's
            // (or, on the leader, each follower's) is recent.
            let mut others: Vec<&str> = status
                .members
                .iter()
                .map(String::as_str)
                .filter(|m| m != id)
                .collect();
            others.sort_unstable();
            assert_eq!(
                status
                    .last_heard_ms
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                others,
                "{id}: {:?}",
                status.last_heard_ms
            );
            let recent = |peer: &str| status.last_heard_ms[peer].is_some_and(|ms| ms < 1000);
            if *id == leader {
                assert!(
                    nodes.iter().copied().filter(|n| n != id).all(recent),
                    "{id}: {:?}",
                    status.last_heard_ms
                );
            } else {
                assert!(recent(leader), "{id}: {:?}", status.last_heard_ms);
            }
            if *id == leader {
                assert!(m.get("tenure_lease_remaining_seconds", "") > 0.0);
            } else {
                assert!(
                    m.get("tenure_leader_last_contact_seconds", "") < 1.0,
                    "{id}"
                );
                assert_eq!(m.get("tenure_lease_remaining_seconds", ""), 0.0);
            }
            leaders += m.get("tenure_is_leader", "");
        }
        assert_eq!(leaders, 1.0, "sum(tenure_is_leader) over the cluster");
    };
    check(&cluster, &all, &leader, term);
    let won = Metrics::scrape(&cluster, &leader);
    assert!(won.get("tenure_elections_total", "outcome=won") >= 1.0);
    assert!(won.get("tenure_election_duration_seconds_count", "") >= 1.0);

    // Counters never go down across a plugin hot swap.
    let before: Vec<Metrics> = all.iter().map(|id| Metrics::scrape(&cluster, id)).collect();
    let v2 = std::fs::read(scheduler("_v2")).expect("the v2 scheduler: scripts/build-guests.sh");
    let (code, body, _) = kit::post(cluster.admin(&leader), "/plugin?name=v2.wasm", &v2);
    assert_eq!(code, 200, "{body}");
    let (again, again_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!((again.as_str(), again_term), (leader.as_str(), term));
    for (id, before) in all.iter().zip(&before) {
        let after = Metrics::scrape(&cluster, id);
        for (key, was) in before.counters() {
            let now = after.values.get(key).copied().unwrap_or(0.0);
            assert!(now >= was, "{id}: {key} went from {was} to {now}");
        }
    }
    // ... and across a protocol hot swap (the leader's, last).
    let before: Vec<Metrics> = all.iter().map(|id| Metrics::scrape(&cluster, id)).collect();
    let next_build =
        tenure_host::component_path::election_wasm().with_file_name("tenure_election_next.wasm");
    let next_build = std::fs::read(next_build).expect("the next build: scripts/build-guests.sh");
    let (code, body, _) = kit::post(cluster.admin(&leader), "/protocol", &next_build);
    assert_eq!(code, 200, "{body}");
    for (id, before) in all.iter().zip(&before) {
        let after = Metrics::scrape(&cluster, id);
        for (key, was) in before.counters() {
            let now = after.values.get(key).copied().unwrap_or(0.0);
            assert!(
                now >= was,
                "{id}: {key} went from {was} to {now} across a protocol swap"
            );
        }
    }
    let swapped = Metrics::scrape(&cluster, &leader);
    assert!(
        swapped
            .values
            .keys()
            .any(|k| k.starts_with("tenure_build_info{")
                && k.contains("protocol_version=0.1.0-next")),
        "build_info names the new protocol build"
    );
    assert_eq!(swapped.get("tenure_plugin_swaps_total", "outcome=ok"), 1.0);
    assert!(
        swapped.get(
            "tenure_plugin_callback_duration_seconds_count",
            "callback=on-scheduled"
        ) >= 1.0
    );

    // Every metric the example alert rules use is exported.
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/prometheus-alerts.yml"),
    )
    .expect("docs/prometheus-alerts.yml");
    let exported: Vec<String> = swapped
        .values
        .keys()
        .map(|k| k.split('{').next().unwrap_or_default().to_string())
        .collect();
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("tenure_") || word.starts_with("leader_election_") {
            assert!(
                exported.iter().any(|e| e == word),
                "the alert rules use {word}, which /metrics does not export"
            );
        }
    }

    // kill -9 the leader: the survivors agree on the new one.
    cluster.kill9(&leader);
    let rest: Vec<&str> = all.iter().copied().filter(|n| *n != leader).collect();
    let (next, next_term) = cluster.wait_for_leader(&rest, BOUND);
    check(&cluster, &rest, &next, next_term);
    // The survivors still say when they last heard from the dead leader.
    for id in &rest {
        let status = cluster.status(id).expect("answers");
        let heard = status.last_heard_ms.get(&leader).copied().flatten();
        assert!(
            heard.is_some_and(|ms| ms >= 300),
            "{id} last heard from the killed {leader}: {heard:?}"
        );
    }
    let next_metrics = Metrics::scrape(&cluster, &next);
    assert!(next_metrics.get("tenure_leader_changes_seen_total", "") >= 2.0);
    assert!(next_metrics.get("tenure_elections_total", "outcome=won") >= 1.0);
    println!(
        "metrics: {} samples from {next}; {leader} led term {term}, {next} term {next_term}; \
         sum(tenure_is_leader) = 1 before and after",
        next_metrics.values.len()
    );
}

/// Connects to a node's peer port as a dialler and reads its challenge:
/// the stream, and the challenge's nonce.
fn challenged(listen: std::net::SocketAddr) -> (std::net::TcpStream, handshake::Nonce) {
    let mut stream = std::net::TcpStream::connect(listen).expect("connects to the peer port");
    stream
        .set_read_timeout(Some(BOUND))
        .expect("a read timeout");
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("a length prefix");
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).expect("a challenge");
    let challenge = frame::decode(&body).expect("a challenge frame");
    assert_eq!(challenge.kind, Kind::Challenge);
    let nonce = challenge.payload.try_into().expect("a 32-byte nonce");
    (stream, nonce)
}

/// A hello from node "m" to "n1" answering `challenge`, its keys derived
/// from `secret`.
fn hello(secret: &[u8], challenge: &handshake::Nonce) -> Vec<u8> {
    let nonce = handshake::fresh_nonce();
    let base = FrameKey::new(secret).expect("a key");
    let keys = handshake::ConnectionKeys::derive(&base, challenge, &nonce).expect("keys");
    let listen = "127.0.0.1:9".parse().expect("an address");
    let payload = handshake::hello_payload(challenge, &nonce, listen, 1);
    let body = frame::encode(
        &keys.dialler,
        Kind::Hello,
        kit::CLUSTER_ID,
        "m",
        "n1",
        0,
        &payload,
    );
    let body = body.expect("a hello").to_vec();
    let mut bytes = u32::try_from(body.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    bytes.extend_from_slice(&body);
    bytes
}

/// Writes `bytes` and waits until the node closes the connection.
fn refused(mut stream: std::net::TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("writes");
    let mut rest = Vec::new();
    // EOF, or a reset if the close raced what we wrote.
    let _ = stream.read_to_end(&mut rest);
}

#[test]
fn a_forged_and_a_replayed_hello_are_counted_each_once_under_its_own_outcome() {
    let mut cluster = Cluster::configure("frames", 1, |_| String::new());
    cluster.spawn("n1");
    cluster.wait_for_leader(&["n1"], BOUND);
    let listen = cluster.listen("n1");
    // Forged: keys from another secret than the cluster's.
    let (stream, challenge) = challenged(listen);
    refused(stream, &hello(b"not this cluster's secret", &challenge));
    // Replayed: a good hello recorded on one connection, played on another.
    let secret = tenure_host::testing::processes::SECRET.as_bytes();
    let (recorded, old_challenge) = challenged(listen);
    drop(recorded);
    let (stream, _) = challenged(listen);
    refused(stream, &hello(secret, &old_challenge));

    let frames = |m: &Metrics, outcome: &str| {
        let kind = match outcome {
            "duplicate_id" => "hello",
            "certificate_refused" | "limited" => "connection",
            _ => "frame",
        };
        m.get(
            "tenure_frames_total",
            &format!("kind={kind},outcome={outcome}"),
        )
    };
    let deadline = std::time::Instant::now() + BOUND;
    let m = loop {
        let m = Metrics::scrape(&cluster, "n1");
        if frames(&m, "unauthenticated") >= 1.0 && frames(&m, "replayed") >= 1.0 {
            break m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the forged and replayed hellos were not counted within {BOUND:?}: {m:#?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(frames(&m, "unauthenticated"), 1.0, "{m:#?}");
    assert_eq!(frames(&m, "replayed"), 1.0, "{m:#?}");
    // No outcome counts another's frames: the refusals sum to the two.
    let delivered = ["sent", "dropped", "accepted"];
    let refusals: f64 = m
        .values
        .iter()
        .filter(|(k, _)| k.starts_with("tenure_frames_total{"))
        .filter(|(k, _)| {
            !delivered
                .iter()
                .any(|d| k.ends_with(&format!("outcome={d}}}")))
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refusals, 2.0, "{m:#?}");
    let status = cluster.status("n1").expect("answers");
    assert_eq!(
        (status.transport.unauthenticated, status.transport.replayed),
        (1, 1),
        "{:?}",
        status.transport
    );
    assert_eq!(status.transport.rejected, 2, "{:?}", status.transport);
}

#[test]
fn json_logs_parse_line_by_line_and_a_failover_carries_term_and_node() {
    let mut cluster = Cluster::configure("json-logs", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];
    for id in all {
        cluster
            .local
            .set_env(id, "TENURE_LOG_FORMAT", "json")
            .expect("a planned node");
        cluster.spawn(id);
    }
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    cluster.kill9(&leader);
    let rest: Vec<&str> = all.iter().copied().filter(|n| *n != leader).collect();
    let (next, next_term) = cluster.wait_for_leader(&rest, BOUND);
    // Each survivor logs the lost connection to the killed leader, naming it.
    for id in &rest {
        cluster.wait_for_log(id, &format!("\"peer\":\"{leader}\""), BOUND);
    }
    let mut lines = 0;
    let mut became_leader = Vec::new();
    let mut naming_the_dead = 0;
    for id in &rest {
        for line in cluster.log(id).lines() {
            // The kit's own start marks are not the node's.
            if line.starts_with("===") || line.trim().is_empty() {
                continue;
            }
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{id}: not JSON ({e}): {line}"));
            lines += 1;
            if value["peer"] == leader.as_str() {
                naming_the_dead += 1;
            }
            if value["event"] == "became-leader" {
                became_leader.push((value["node"].clone(), value["term"].clone()));
            }
            assert!(
                value["level"].is_string() && value["timestamp"].is_string(),
                "{line}"
            );
        }
    }
    assert!(
        became_leader.contains(&(serde_json::json!(next), serde_json::json!(next_term))),
        "no became-leader line for {next} in term {next_term}: {became_leader:?}"
    );
    assert!(
        naming_the_dead >= rest.len(),
        "{naming_the_dead} lines with peer {leader} from {rest:?}"
    );
    println!(
        "json logs: {lines} lines from the survivors, all JSON; {leader} led term {term}, \
         {next} logged became-leader with node and term {next_term}; \
         {naming_the_dead} lines carry peer {leader}"
    );
}

fn tenure(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(args)
        .output()
        .expect("tenure runs")
}

#[test]
fn version_names_the_built_in_protocol_and_config_check_validates_without_starting() {
    // Wherever clap takes the flag: first, or after global options.
    for args in [
        &["--version"][..],
        &["-V"],
        &["--log-format", "json", "--version"],
    ] {
        let out = tenure(args);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {text}");
        assert!(
            text.starts_with(&format!("tenure {}\n", env!("CARGO_PKG_VERSION"))),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("protocol: 0.1.0 (built in, sha256 "),
            "{args:?}: {text}"
        );
    }

    let cluster = Cluster::configure("config-check", 1, |_| String::new());
    let config = cluster.local.config_path("n1");
    let path = config.to_str().expect("a UTF-8 path");
    let out = tenure(&["config", "check", path]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(": ok — node n1 of cluster proc"), "{text}");
    assert!(
        !cluster.local.data_dir("n1").join("state.slots").exists(),
        "checking started nothing"
    );
    let good = std::fs::read_to_string(&config).expect("config");
    for (change, expected) in [
        ("[timings]\nheartbeat-interval-ms = 0\n", "heartbeat"),
        ("[plugin]\npath = \"missing.wasm\"\n", "`[plugin] path`"),
        ("colour = \"red\"\n", "colour"),
    ] {
        std::fs::write(&config, format!("{good}{change}")).expect("config");
        let out = tenure(&["config", "check", path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{change}: {err}");
        assert!(err.contains(expected), "{change}: {err}");
    }
}

#[test]
fn config_keys_come_from_flags_over_the_environment_over_the_file() {
    let mut cluster = Cluster::configure("config-env", 1, |_| String::new());
    let config = cluster.local.config_path("n1");
    let path = config.to_str().expect("a UTF-8 path");
    let check = |env: &[(&str, &str)], extra: &[&str]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"));
        command.args(["config", "check", path]).args(extra);
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().expect("tenure runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, text) = check(&[], &[]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("node n1 of cluster proc"), "the file: {text}");
    let (code, text) = check(
        &[("TENURE_NODE_ID", "n9"), ("TENURE_PEERS_N2", "127.0.0.1:9")],
        &[],
    );
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("node n9 of cluster proc, 1 peers"),
        "the environment: {text}"
    );
    let (code, text) = check(&[("TENURE_NODE_ID", "n9")], &["--set", "node-id=n8"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("node n8 of cluster proc"),
        "the flag wins: {text}"
    );
    // A variable that names a table but no key of it is an error naming it.
    let (code, text) = check(&[("TENURE_TIMINGS_HEARTBEAT_MS", "40")], &[]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("heartbeat-ms") && text.contains("TENURE_TIMINGS_HEARTBEAT_MS"),
        "{text}"
    );
    // Variables that are not config keys are left alone.
    let (code, text) = check(
        &[
            ("TENURE_TOOLS_DIR", "/tmp"),
            ("TENURE_ADMIN_TOKEN_FILE", "/x"),
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{text}");

    // `tenure run` reads them too: a zero heartbeat from the environment
    // stops the node at start, naming the key.
    cluster
        .local
        .set_env("n1", "TENURE_TIMINGS_HEARTBEAT_INTERVAL_MS", "0")
        .expect("a planned node");
    let (status, log) = cluster
        .spawn_expecting_exit("n1", std::time::Duration::from_secs(20))
        .expect("the node refuses to start");
    assert!(!status.success(), "{log}");
    assert!(log.contains("heartbeat-interval-ms"), "{log}");
}
