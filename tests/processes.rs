//! Multi-process tests: real `tenure run` processes on 127.0.0.1, real
//! sockets, real disks. Bounds are generous (these machines are shared and
//! noisy); every wait is bounded and every process is killed on drop.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kit::{BOUND, Cluster, get, misbehave, post};
use tenure_host::testing::ports;

#[test]
fn processes_elect_fail_over_rejoin_and_survive_a_frozen_leader() {
    let mut cluster = Cluster::start("failover", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];

    // Exactly one leader forms.
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    let leading: Vec<String> = cluster
        .statuses()
        .into_values()
        .filter(|s| s.role == "leader")
        .map(|s| s.node_id)
        .collect();
    assert_eq!(leading, vec![leader.clone()]);

    // kill -9 the leader: the survivors elect a new one in a higher term.
    cluster.kill9(&leader);
    let survivors: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
    let (second, second_term) = cluster.wait_for_leader(&survivors, BOUND);
    assert_ne!(second, leader);
    assert!(second_term > term);

    // Restart the old leader: it rejoins and follows.
    cluster.spawn(&leader);
    let (_, rejoined_term) = cluster.wait_for_leader(&all, BOUND);
    assert!(rejoined_term >= second_term);

    // Freeze the leader past the maximum election timeout, then thaw it:
    // it learns the higher term and steps down.
    let (frozen, frozen_term) = cluster.wait_for_leader(&all, BOUND);
    cluster.signal(&frozen, libc::SIGSTOP);
    let others: Vec<&str> = all.iter().copied().filter(|id| *id != frozen).collect();
    let (_, new_term) = cluster.wait_for_leader(&others, BOUND);
    assert!(new_term > frozen_term);
    std::thread::sleep(Duration::from_millis(600));
    cluster.signal(&frozen, libc::SIGCONT);
    let (_, final_term) = cluster.wait_for_leader(&all, BOUND);
    let thawed = &cluster.statuses()[&frozen];
    assert!(final_term >= new_term);
    assert!(
        thawed.term >= new_term,
        "{frozen} still at term {}",
        thawed.term
    );

    // Across the whole run, no term had two leaders.
    cluster.assert_one_leader_per_term();
}

/// Waits for a leader, then checks it holds for `hold` with every node
/// answering; returns the leader, its term and the largest heartbeat gap
/// followers saw. With `settle`, a first leader may move once (a plugin
/// refusing leadership hands it on) before the check.
fn stable_leader(
    cluster: &Cluster,
    all: &[&str],
    hold: Duration,
    settle: bool,
) -> (String, u64, u64) {
    let mut attempts = if settle { 3 } else { 1 };
    loop {
        let (leader, term) = cluster.wait_for_leader(all, BOUND);
        std::thread::sleep(hold);
        let (again, again_term) = cluster.wait_for_leader(all, BOUND);
        attempts -= 1;
        if (&again, again_term) != (&leader, term) {
            assert!(
                attempts > 0,
                "leadership moved from {leader}/{term} to {again}/{again_term}\n{}",
                cluster.logs()
            );
            continue;
        }
        let gap = cluster.largest_follower_gap_ms();
        return (leader, term, gap);
    }
}

#[test]
fn misbehaving_plugins_never_cost_the_cluster_its_leader() {
    let all = ["n1", "n2", "n3"];
    // Every node runs a plugin that loops, allocates without bound or traps
    // in a callback: the plugin is stopped and replaced, heartbeats go on.
    for (mode, on) in [
        ("loop", "on-become-follower"),
        ("bomb", "on-become-follower"),
        ("trap", "on-become-follower"),
        ("loop", "on-peer-joined"),
        ("trap", "on-term-changed"),
    ] {
        let cluster = Cluster::start(&format!("bad-{mode}-{on}"), 3, |_| misbehave(mode, on));
        let (_, _, gap) = stable_leader(&cluster, &all, Duration::from_secs(2), false);
        assert!(
            gap < 300,
            "{mode} in {on}: a follower saw a {gap} ms heartbeat gap"
        );
        println!("{mode} in {on}: stable leader, largest follower heartbeat gap {gap} ms");
        cluster.assert_one_leader_per_term();
    }
    // One node whose plugin cannot lead (error, trap, loop or bomb in
    // on-become-leader) and which times out first, so it wins first: it
    // refuses, steps down and backs off; another node leads for good.
    for mode in ["refuse", "trap", "loop", "bomb"] {
        let cluster = Cluster::start(&format!("refuse-{mode}"), 3, |id| {
            if id == "n1" {
                format!(
                    "[timings]\nelection-timeout-min-ms = 60\nelection-timeout-max-ms = 80\n\
                     heartbeat-interval-ms = 20\n{}",
                    misbehave(mode, "on-become-leader")
                )
            } else {
                String::new()
            }
        });
        let (leader, _, gap) = stable_leader(&cluster, &all, Duration::from_secs(2), true);
        assert_ne!(leader, "n1", "{mode}: the refusing node leads");
        assert!(gap < 300, "{mode}: a follower saw a {gap} ms heartbeat gap");
        let refused = cluster
            .leaders_by_term()
            .values()
            .any(|nodes| nodes.iter().any(|n| n == "n1"));
        println!(
            "{mode} in on-become-leader: n1 won an election first: {refused}; {leader} leads; gap {gap} ms"
        );
        cluster.assert_one_leader_per_term();
    }
}

fn example_plugin(name: &str) -> PathBuf {
    let wasm = tenure_host::component_path::election_wasm()
        .with_file_name(format!("tenure_plugin_{name}.wasm"));
    assert!(
        wasm.is_file(),
        "build the plugins first: scripts/build-guests.sh"
    );
    wasm
}

#[test]
fn fifty_plugin_swaps_on_the_leader_cost_no_election() {
    let scheduler = example_plugin("scheduler");
    let section = format!(
        "[plugin]\npath = \"{}\"\n[plugin.config]\nperiod-ms = 200\n",
        scheduler.display()
    );
    let cluster = Cluster::start("swap", 3, |_| section.clone());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    let admin = cluster.admin(&leader);
    let wasm = std::fs::read(&scheduler).expect("plugin bytes");
    let mut took = Vec::new();
    for i in 0..50 {
        let (code, body, t) = post(admin, "/plugin?name=scheduler-v2.wasm", &wasm);
        assert_eq!(code, 200, "swap {i}: {body}");
        took.push(t.as_secs_f64() * 1e3);
    }
    // A refused swap (the logger cannot read the scheduler's snapshot)
    // keeps the old version.
    let logger = std::fs::read(example_plugin("logger")).expect("plugin bytes");
    let (code, body, _) = post(admin, "/plugin", &logger);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("keeps running"), "{body}");

    let (after, after_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!(
        (after.as_str(), after_term),
        (leader.as_str(), term),
        "a swap cost leadership"
    );
    let statuses = cluster.statuses();
    let gap = statuses
        .values()
        .filter(|s| s.role == "follower")
        .map(|s| s.max_leader_gap_ms)
        .max()
        .unwrap_or(0);
    assert!(
        gap < 150,
        "a follower saw a {gap} ms heartbeat gap during the swaps"
    );
    assert_eq!(
        statuses[&leader].plugin.as_ref().map(|p| p.name.as_str()),
        Some("scheduler-v2.wasm")
    );
    // A call on a follower is answered by the leader's plugin (forwarded),
    // unless the caller asks for the follower's own.
    let follower = all.iter().find(|id| **id != leader).expect("a follower");
    let (code, forwarded, _) = post(cluster.admin(follower), "/call", b"runs");
    assert_eq!(code, 200, "{forwarded}");
    let runs: u64 = forwarded.trim().parse().expect("a run count");
    assert!(runs > 0, "the leader's scheduler has run");
    let (code, local, _) = post(cluster.admin(follower), "/call?local=true", b"runs");
    assert_eq!(
        (code, local.trim()),
        (200, "0"),
        "a follower's scheduler never runs"
    );
    took.sort_by(|a, b| a.total_cmp(b));
    println!(
        "50 swaps on the leader: median {:.1} ms, max {:.1} ms (artifact cached, as the node \
         loaded the same file at start); largest follower heartbeat gap {gap} ms; \
         term unchanged ({term})",
        took[25], took[49]
    );
    cluster.assert_one_leader_per_term();
}

#[test]
fn a_watched_plugin_file_is_swapped_when_it_changes_but_not_while_half_written() {
    let dir = std::env::temp_dir().join(format!("tenure-watched-plugin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let scheduler = std::fs::read(example_plugin("scheduler")).expect("plugin bytes");
    let watched = dir.join("behaviour.wasm");
    std::fs::write(&watched, &scheduler).expect("plugin file");
    let section = format!("[plugin]\npath = \"{}\"\nwatch = true\n", watched.display());
    let cluster = Cluster::start("watch", 3, |_| section.clone());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    let log = || cluster.log(&leader);

    let deadline = Instant::now() + BOUND;
    let wait_for = |needle: &str, what: &str| {
        while !log().contains(needle) {
            assert!(Instant::now() < deadline, "{what}\n{}", log());
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // A half-written file (what a copy in progress looks like) is refused;
    // the old version keeps running.
    std::fs::write(&watched, &scheduler[..scheduler.len() / 2]).expect("truncated write");
    wait_for("swap refused", "the half-written file was not noticed");
    // The complete file is swapped in.
    std::fs::write(&watched, &scheduler).expect("full write");
    wait_for("new version swapped in", "the new file was not swapped in");
    let (after, after_term) = cluster.wait_for_leader(&all, BOUND);
    assert_eq!((after.as_str(), after_term), (leader.as_str(), term));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_rolling_protocol_upgrade_keeps_the_same_leader() {
    let next = std::fs::read(
        tenure_host::component_path::election_wasm().with_file_name("tenure_election_next.wasm"),
    )
    .expect("the next build (scripts/build-guests.sh makes it)");
    let cluster = Cluster::start("upgrade", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    let order: Vec<&str> = all
        .iter()
        .copied()
        .filter(|id| *id != leader)
        .chain([leader.as_str()])
        .collect();
    for id in order {
        let (code, body, _) = post(cluster.admin(id), "/protocol", &next);
        assert_eq!(code, 200, "{id}: {body}");
        assert!(body.contains("0.1.0-next"), "{body}");
        std::thread::sleep(Duration::from_millis(500));
        let (now, now_term) = cluster.wait_for_leader(&all, BOUND);
        assert_eq!(
            (now.as_str(), now_term),
            (leader.as_str(), term),
            "after upgrading {id}"
        );
    }
    // Garbage is refused and the node keeps its build.
    let (code, body, _) = post(cluster.admin("n1"), "/protocol", b"not a component");
    assert_eq!(code, 422, "{body}");
    let statuses = cluster.statuses();
    assert!(
        statuses
            .values()
            .all(|s| s.protocol_version == "0.1.0-next"),
        "{statuses:#?}"
    );
    let gap = statuses
        .values()
        .filter(|s| s.role == "follower")
        .map(|s| s.max_leader_gap_ms)
        .max()
        .unwrap_or(0);
    // The same leader and term throughout (asserted above) is the claim;
    // the gap bound is the maximum election timeout, as in the other
    // process tests, because a loaded CI machine can stall a process for
    // a minimum timeout (156 ms was seen once with four builds running).
    assert!(gap < 300, "a follower saw a {gap} ms heartbeat gap");
    cluster.assert_one_leader_per_term();
}

#[test]
fn a_leader_asked_to_stop_hands_leadership_over_first() {
    let mut cluster = Cluster::start("handover", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    std::thread::sleep(Duration::from_millis(300));
    let signalled = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    cluster.signal(&leader, libc::SIGTERM);
    let exited = cluster.wait_exit(&leader, BOUND);
    assert!(
        exited.is_some_and(|s| s.success()),
        "clean exit: {exited:?}"
    );
    let survivors: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
    let (next, next_term) = cluster.wait_for_leader(&survivors, BOUND);
    assert!(next_term > term);
    let log = cluster.log(&leader);
    assert!(log.contains("handing leadership over"), "{log}");
    // The new leader took over well within the minimum election timeout
    // (150 ms) of the signal: no one waited for a timer.
    let took = cluster.leaders_by_term()[&next_term]
        .first()
        .map(|_| {
            let text = std::fs::read_to_string(cluster.data_dir(&next).join("events.log"))
                .unwrap_or_default();
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["event"] == "became-leader" && e["term"] == next_term)
                .filter_map(|e| e["at-ms"].as_u64())
                .next()
                .unwrap_or(u64::MAX)
        })
        .unwrap_or(u64::MAX)
        .saturating_sub(signalled);
    assert!(took < 150, "hand-over took {took} ms");
    println!("SIGTERM to the leader: {next} led term {next_term} {took} ms later");
    cluster.assert_one_leader_per_term();
}

/// A base port for `tenure demo`: it and the next two (peers) and the
/// three from base + 100 (admin), reserved as one block so no other test
/// of this run is handed any of them.
fn demo_base_port() -> u16 {
    ports::reserve(103).expect("a block of ports").first()
}

#[test]
fn the_demo_runs_any_plugin_and_shows_leadership_and_the_plugins_lines() {
    let logger =
        tenure_host::component_path::election_wasm().with_file_name("tenure_plugin_logger.wasm");
    let base = demo_base_port();
    let output = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["demo", "--seconds", "6", "--base-port", &base.to_string()])
        .arg("--plugin")
        .arg(&logger)
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("leader in term"), "{text}");
    assert!(text.contains("plugin: on-become-leader"), "{text}");
    assert!(text.contains("All nodes stopped."), "{text}");

    // A malformed --config is refused before anything starts.
    let bad = Command::new(env!("CARGO_BIN_EXE_tenure"))
        .args(["demo", "--seconds", "1", "--config", "no-equals-sign"])
        .arg("--plugin")
        .arg(&logger)
        .output()
        .expect("the demo runs");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("expected KEY=VALUE"), "{err}");
}

#[test]
fn inspect_shows_what_the_plugin_says_of_itself() {
    let logger =
        tenure_host::component_path::election_wasm().with_file_name("tenure_plugin_logger.wasm");
    let with_plugin = Cluster::start("inspect", 1, |_| {
        format!("[plugin]\npath = \"{}\"\n", logger.display())
    });
    with_plugin.wait_for_leader(&["n1"], BOUND);
    let (code, body) = get(with_plugin.admin("n1"), "/inspect");
    assert_eq!(code, 200, "{body}");
    let pairs: BTreeMap<String, String> = serde_json::from_str(&body).expect("a JSON object");
    assert_eq!(
        pairs.get("on-become-leader").map(String::as_str),
        Some("1"),
        "{body}"
    );

    let without = Cluster::start("no-inspect", 1, |_| String::new());
    without.wait_for_leader(&["n1"], BOUND);
    let (code, body) = get(without.admin("n1"), "/inspect");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no plugin"), "{body}");
}

/// `tenure demo` stops its nodes and exits within about a second when
/// SIGINT or SIGTERM is sent to its own pid only (a supervisor, `kill PID`)
/// rather than to the terminal's process group — and leaves no node
/// running. It used to wait for each node in turn (seconds), and a SIGTERM
/// left the nodes running.
#[test]
fn the_demo_stops_its_nodes_on_a_signal_to_its_own_pid() {
    use std::io::BufRead as _;
    for signal in ["-INT", "-TERM"] {
        let base = demo_base_port();
        let mut demo = Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["demo", "--seconds", "60", "--base-port", &base.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the demo starts");
        let pid = demo.id();
        let stdout = demo.stdout.take().expect("piped");
        let (lines, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + BOUND;
        let mut output = String::new();
        while !output.contains("leader in term") {
            let left = deadline.saturating_duration_since(Instant::now());
            match seen.recv_timeout(left) {
                Ok(line) => output.push_str(&(line + "\n")),
                Err(_) => panic!("no leader shown within {BOUND:?}:\n{output}"),
            }
        }
        let signalled = Instant::now();
        let sent = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = loop {
            if let Some(status) = demo.try_wait().expect("waits") {
                break status;
            }
            assert!(
                signalled.elapsed() < Duration::from_secs(10),
                "the demo ignored {signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let took = signalled.elapsed();
        assert!(status.success(), "{signal}: {status:?}\n{output}");
        // A second is the goal; allow for a loaded machine.
        assert!(took < Duration::from_secs(3), "{signal}: took {took:?}");
        let left = processes_mentioning(&format!("tenure-demo-{pid}"));
        assert!(left.is_empty(), "{signal}: nodes left running: {left:?}");
        println!("demo stopped {took:?} after {signal}");
    }
}

#[test]
fn one_config_with_peers_by_name_serves_every_node_and_they_elect_and_fail_over() {
    // The StatefulSet setup on loopback: every node reads the same file,
    // which lists every node (itself included, skipped by id) by a DNS name
    // (`localhost:PORT`, through getaddrinfo and /etc/hosts), and takes
    // its id from the environment (`${TENURE_TEST_POD}`) and its own
    // addresses from TENURE_… variables.
    let mut cluster = Cluster::configure("names", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];
    let peers: String = all
        .iter()
        .map(|id| format!("{id} = \"localhost:{}\"\n", cluster.listen(id).port()))
        .collect();
    let shared = format!(
        "node-id = \"${{TENURE_TEST_POD}}\"\ncluster-id = \"{}\"\nlisten = \"127.0.0.1:1\"\n\
         secret = \"{}\"\n[peers]\n{peers}",
        kit::CLUSTER_ID,
        tenure_host::testing::processes::SECRET,
    );
    for id in all {
        let listen = cluster.listen(id).to_string();
        let admin = cluster.admin(id).to_string();
        let data = cluster.data_dir(id).display().to_string();
        std::fs::write(cluster.local.config_path(id), &shared).expect("config");
        for (key, value) in [
            ("TENURE_TEST_POD", id),
            ("TENURE_LISTEN", listen.as_str()),
            ("TENURE_ADMIN", admin.as_str()),
            ("TENURE_DATA_DIR", data.as_str()),
        ] {
            cluster.local.set_env(id, key, value).expect("env");
        }
        cluster.spawn(id);
    }
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    let status = cluster.status(&leader).expect("the leader answers");
    assert_eq!(status.members.len(), 3, "{:?}", status.members);

    // The leader dies: the survivors, dialling each other by name, elect
    // another; the old leader, restarted, is found again by its name.
    cluster.kill9(&leader);
    let survivors: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
    let (second, second_term) = cluster.wait_for_leader(&survivors, BOUND);
    assert!(second_term > term && second != leader);
    cluster.spawn(&leader);
    cluster.wait_for_leader(&all, BOUND);
    cluster.assert_one_leader_per_term();
}

/// The command lines of running processes that mention `text` (what
/// `pgrep -f` finds, without needing procps).
fn processes_mentioning(text: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .filter(|line| line.contains(text))
        .collect()
}
