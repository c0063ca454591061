//! Behaviour plugins in Python and JavaScript, run by real `tenure run`
//! processes on 127.0.0.1: the greeters in examples/plugins/python and
//! examples/plugins/js (built by scripts/build-polyglot.sh).
//!
//! Each test starts a 3-node cluster whose nodes run one greeter, lets it
//! elect, kills the leader with SIGKILL, restarts it, and asks every node's
//! plugin (`POST /call?local=true` with `seen`) what it saw: the callbacks
//! must tell the same story as the cluster's own status and event logs.
//!
//! These components are 12–18 MB and Cranelift takes tens of seconds over
//! each, so every node of every test here shares one artifact cache (each
//! node's `DATA-DIR/cache` is a link to it) and a cluster's first node
//! starts alone: each component is compiled once per run of this file, by
//! the first node that loads it; every later start — the other nodes, a
//! restarted leader, a hot swap — loads the artifact. The tests check that
//! and print both times.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;
#[path = "egress/server.rs"]
mod server;
#[path = "polyglot/support.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{ALL, Cluster, Greeter, SERIAL, Seen, passed, plugin_load};

/// Whether `seen` holds a greeting from `leader` sent in `term`.
fn greeted_by(seen: &Seen, leader: &str, term: u64) -> bool {
    seen.greeting_from(leader)
        .is_some_and(|g| g.starts_with(&format!("hi from {leader}, leader of term {term}, beat ")))
}

/// The whole story for one greeter: elect, fail over, rejoin; the plugin's
/// own record checked against the cluster's at every step.
fn elect_fail_over_and_rejoin(greeter: &Greeter) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let size = std::fs::metadata(&greeter.wasm).expect("wasm").len();
    let mut cluster = Cluster::new(greeter.lang, greeter);
    let (first, mut cached) = cluster.start_all();

    // Elected: the leader's plugin was told so, beats in its term only and
    // greets the followers, whose plugins never lead.
    let (leader, term) = cluster.wait_for_leader(&ALL);
    let followers: Vec<&str> = ALL.iter().copied().filter(|id| *id != leader).collect();
    let seen = cluster.seen_when(&leader, "three beats", |s| s.beat_count() >= 3);
    assert_eq!(seen.json["plugin"], greeter.lang);
    assert_eq!(seen.json["node"], leader.as_str());
    assert_eq!(seen.count("init"), 1);
    assert_eq!(seen.count("on-become-leader"), 1);
    assert!(seen.saw(&format!("on-become-leader {term}")));
    assert_eq!(seen.led_terms(), vec![term]);
    assert!(seen.beat_terms().iter().all(|t| *t == term));
    println!(
        "{}: the leader's first events: {:?}",
        greeter.lang,
        &seen.events()[..6]
    );
    for id in &followers {
        let seen = cluster.seen_when(id, "a greeting from the leader", |s| {
            greeted_by(s, &leader, term)
        });
        assert_eq!(seen.json["node"], *id);
        assert_eq!(seen.count("init"), 1);
        assert_eq!(seen.count("on-become-leader"), 0, "{id}: {:#}", seen.json);
        assert_eq!(seen.beat_count(), 0, "{id} beat as a follower");
        assert!(
            seen.saw(&format!("on-become-follower {leader} {term}")),
            "{id}: {:#}",
            seen.json
        );
    }
    // A call on a follower reaches the leader's plugin; a bad one is refused
    // with the plugin's reason.
    let (code, body) = cluster.call(followers[0], "/call", b"seen");
    assert_eq!(code, 200, "{body}");
    assert_eq!(Seen::parse(&body).json["node"], leader.as_str());
    let (code, body) = cluster.call(&leader, "/call", b"sing");
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("unknown request") && body.contains("`seen`"),
        "{body}"
    );

    // kill -9 the leader: a survivor leads a higher term, its plugin beats
    // in that term only, after following the old leader and seeing it go.
    cluster.kill9(&leader);
    let (second, second_term) = cluster.wait_for_leader(&followers);
    assert!(second_term > term);
    let other = followers
        .iter()
        .copied()
        .find(|id| *id != second)
        .expect("two survivors");
    let seen = cluster.seen_when(&second, "beats and the old leader's departure", |s| {
        s.beat_count() >= 3 && s.saw(&format!("on-peer-left {leader}"))
    });
    assert_eq!(seen.count("init"), 1);
    assert_eq!(seen.count("on-become-leader"), 1);
    assert!(seen.saw(&format!("on-become-follower {leader} {term}")));
    assert!(seen.saw(&format!("on-become-leader {second_term}")));
    assert!(
        seen.events()
            .iter()
            .any(|e| e.starts_with("on-term-changed ") && e.ends_with(&format!(" {second_term}"))),
        "{:#}",
        seen.json
    );
    assert_eq!(seen.led_terms(), vec![second_term]);
    assert!(seen.beat_terms().iter().all(|t| *t == second_term));
    let seen = cluster.seen_when(other, "a greeting from the new leader", |s| {
        greeted_by(s, &second, second_term)
    });
    assert_eq!(seen.count("on-become-leader"), 0);
    assert_eq!(seen.beat_count(), 0, "{other} beat as a follower");
    assert!(seen.saw(&format!("on-become-follower {second} {second_term}")));

    // The old leader comes back: a fresh plugin, loaded from the cache,
    // follows the new leader and hears its greetings.
    let restart = cluster.start(&leader);
    assert_eq!(restart.cache, "Hit", "the restarted node recompiled");
    cached.push(restart.ms);
    let (now, now_term) = cluster.wait_for_leader(&ALL);
    let seen = cluster.seen_when(&leader, "a greeting from the current leader", |s| {
        greeted_by(s, &now, now_term)
    });
    assert_eq!(seen.count("init"), 1);
    assert_eq!(seen.count("on-become-leader"), 0);
    assert_eq!(seen.beat_count(), 0);

    // Across the whole run, no term had two leaders.
    for (term, nodes) in cluster.leaders_by_term() {
        assert_eq!(nodes.len(), 1, "term {term} had leaders {nodes:?}");
    }
    cached.sort_by(f64::total_cmp);
    println!(
        "{}: {:.1} MB component; first load {:.0} ms ({}), cached loads {:.0}–{:.0} ms \
         ({} starts); {leader} led term {term}, {second} term {second_term} after kill -9",
        greeter.lang,
        size as f64 / 1e6,
        first.ms,
        if first.cache == "Hit" {
            "compiled by an earlier test"
        } else {
            "compiled"
        },
        cached[0],
        cached[cached.len() - 1],
        cached.len()
    );
    passed();
}

#[test]
fn a_python_greeter_sees_election_failover_and_rejoin() {
    elect_fail_over_and_rejoin(&Greeter::new("python", "tenure_plugin_greeter_python.wasm"));
}

#[test]
fn a_javascript_greeter_sees_election_failover_and_rejoin() {
    elect_fail_over_and_rejoin(&Greeter::new("js", "tenure_plugin_greeter_js.wasm"));
}

/// A leader's Python greeter is hot-swapped for the JavaScript one and
/// back: each version takes over the other's record through the shared
/// snapshot format, and its pending wake-up, so the beats go on numbered
/// without a gap, in the same term, with no election.
#[test]
fn a_leader_swaps_its_greeter_between_python_and_javascript_keeping_the_record() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let python = Greeter::new("python", "tenure_plugin_greeter_python.wasm");
    let js = Greeter::new("js", "tenure_plugin_greeter_js.wasm");
    let mut cluster = Cluster::new("swap", &python);
    // Both components in the cache before the cluster starts: compiling
    // one takes both cores for tens of seconds, long enough to starve a
    // leader's heartbeats; a swap of a cached version takes milliseconds.
    for greeter in [&python, &js] {
        cluster.refused_start(greeter, "period-ms = \"0\"");
    }
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader(&ALL);
    let follower = ALL
        .iter()
        .copied()
        .find(|id| *id != leader)
        .expect("a follower");
    let mut beats = cluster
        .seen_when(&leader, "three beats", |s| s.beat_count() >= 3)
        .beat_count();
    let mut swaps = Vec::new();
    for (round, to) in [&js, &python].into_iter().enumerate() {
        let bytes = std::fs::read(&to.wasm).expect("plugin bytes");
        let name = format!("greeter-{}.wasm", to.lang);
        let started = Instant::now();
        let (code, body) = cluster.call(&leader, &format!("/plugin?name={name}"), &bytes);
        swaps.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(code, 200, "swap to {}: {body}\n{}", to.lang, cluster.logs());
        let seen = cluster.seen_when(&leader, "beats after the swap", |s| {
            s.beat_count() >= beats + 3
        });
        assert_eq!(seen.json["plugin"], to.lang);
        // Every version's init is counted, each swap restored once, and
        // the beats continue the old version's numbering in the same term.
        assert_eq!(seen.count("init"), 2 + round as u64);
        assert_eq!(seen.count("restore"), 1 + round as u64);
        assert_eq!(seen.count("on-become-leader"), 1);
        assert_eq!(seen.led_terms(), vec![term]);
        let numbers: Vec<u64> = seen.json["beats"]
            .as_array()
            .expect("beats")
            .iter()
            .map(|b| b[1].as_u64().expect("a beat number"))
            .collect();
        // (The record keeps the last 200 beats, so it may not start at 1.)
        assert!(
            numbers.windows(2).all(|w| w[1] == w[0] + 1)
                && numbers.last() == Some(&seen.beat_count()),
            "beats skipped or repeated: {numbers:?}"
        );
        assert!(seen.beat_terms().iter().all(|t| *t == term));
        beats = seen.beat_count();
        // The followers hear the new version's greetings.
        cluster.seen_when(follower, "a greeting after the swap", |s| {
            s.greeting_from(&leader).is_some_and(|g| {
                g.rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n > beats - 3)
            })
        });
    }
    // A swap the new version refuses leaves the greeter running, its
    // record intact: the Rust logger cannot read a greeter's snapshot.
    let logger = std::fs::read(
        tenure_host::component_path::election_wasm().with_file_name("tenure_plugin_logger.wasm"),
    )
    .expect("logger plugin (scripts/build-guests.sh)");
    let before = cluster.seen(follower);
    let (code, body) = cluster.call(follower, "/plugin?name=logger.wasm", &logger);
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("keeps running"), "{body}");
    let after = cluster.seen(follower);
    assert_eq!(after.json["plugin"], "python");
    assert_eq!(after.count("snapshot"), before.count("snapshot") + 1);
    assert_eq!(after.count("init"), 1);

    let (now, now_term) = cluster.wait_for_leader(&ALL);
    assert_eq!(
        (now.as_str(), now_term),
        (leader.as_str(), term),
        "a swap cost leadership"
    );
    println!(
        "python -> js -> python on leader {leader}: swaps took {:.0} and {:.0} ms \
         (artifacts cached); {beats} beats without a gap, term {term} throughout",
        swaps[0], swaps[1]
    );
    passed();
}

/// `tenure plugin swap` with every node's admin address: the JavaScript
/// greeter rolled over a cluster running the Python one. It compiles on
/// every node before it swaps on any, then swaps the followers and the
/// leader last, each a cached swap; no election, the beats go on.
#[test]
fn a_rolling_swap_compiles_everywhere_first_then_swaps_without_an_election() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let python = Greeter::new("python", "tenure_plugin_greeter_python.wasm");
    let js = Greeter::new("js", "tenure_plugin_greeter_js.wasm");
    let mut cluster = Cluster::new("rolling", &python);
    cluster.refused_start(&python, "period-ms = \"0\"");
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader(&ALL);
    cluster.seen_when(&leader, "a beat", |s| s.beat_count() >= 1);

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tenure"));
    command.args(["plugin", "swap"]);
    for id in ALL {
        command
            .arg("--admin")
            .arg(cluster.kit.admin(id).to_string());
    }
    let started = Instant::now();
    let output = command.arg(&js.wasm).output().expect("tenure runs");
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        cluster.logs()
    );
    let lines: Vec<&str> = text.lines().collect();
    let compiled: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(": compiled ") && lines[i].contains("(cache "))
        .collect();
    let swapped: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].contains(": swapped to "))
        .collect();
    assert_eq!((compiled.len(), swapped.len()), (3, 3), "{text}");
    assert!(
        compiled.iter().max() < swapped.iter().min(),
        "a swap before every compile:\n{text}"
    );
    let leader_admin = cluster.kit.admin(&leader).to_string();
    let last = lines[swapped[2]];
    assert!(
        last.starts_with(&format!("{leader_admin} (leader)")),
        "the leader is not last:\n{text}"
    );

    // Every node runs the JavaScript greeter; the leader kept its term and
    // its record, so no election happened.
    for id in ALL {
        let seen = cluster.seen_when(id, "the new version", |s| s.json["plugin"] == "js");
        assert_eq!(seen.count("restore"), 1, "{id}: {:#}", seen.json);
    }
    let (after, after_term) = cluster.wait_for_leader(&ALL);
    assert_eq!(
        (after.as_str(), after_term),
        (leader.as_str(), term),
        "the roll cost leadership"
    );
    let seen = cluster.seen_when(&leader, "beats after the roll", |s| s.beat_count() >= 3);
    assert_eq!(seen.led_terms(), vec![term]);
    println!(
        "rolling swap python -> js over 3 nodes in {:.1} s:\n{text}",
        took.as_secs_f64()
    );
    passed();
}

/// A config the greeter refuses stops the node at start, with the
/// greeter's reason, in either language.
#[test]
fn a_bad_greeter_config_stops_the_node_with_the_reason() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for greeter in [
        Greeter::new("python", "tenure_plugin_greeter_python.wasm"),
        Greeter::new("js", "tenure_plugin_greeter_js.wasm"),
    ] {
        let cluster = Cluster::new(&format!("refused-{}", greeter.lang), &greeter);
        let log = cluster.refused_start(&greeter, "period-ms = \"soon\"");
        let load = plugin_load(&log).expect("the plugin loaded before init refused");
        println!(
            "{}: the component loaded in {:.0} ms (cache {}), then init refused the config",
            greeter.lang, load.ms, load.cache
        );
        assert!(
            log.contains(
                "`period-ms`: `soon` is not a whole number of milliseconds between 10 and 60000"
            ),
            "{}: {log}",
            greeter.lang
        );
        let log = cluster.refused_start(&greeter, "colour = \"blue\"");
        assert!(
            log.contains("unknown config key `colour` (known: greeting, period-ms)"),
            "{}: {log}",
            greeter.lang
        );
    }
    passed();
}

/// Waits (at most [`kit::BOUND`]) until `check` holds.
fn wait_until(cluster: &Cluster, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + kit::BOUND;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in time\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A greeter's HTTP egress on three processes, against a fencing store
/// and a webhook receiver written in the test: every node posts its
/// leadership changes (`mode = "any"`), the leader's beats reach the store
/// with its term as the token (leader mode), a follower's greeter posts
/// none, and after a kill -9 the new leader's tokens are higher and never
/// accepted out of order.
fn http_egress_is_fenced(greeter: &Greeter) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let hooks = server::Server::start();
    let store = server::Server::start();
    let plugin = format!(
        "allow-http = [{{ url = \"{}\", mode = \"any\" }}, \"{}\"]\n",
        hooks.origin(),
        store.origin()
    );
    let config = format!(
        "webhook = \"{}/hook\"\njob-url = \"{}/store\"\n",
        hooks.origin(),
        store.origin()
    );
    let mut cluster = Cluster::with(
        &format!("{}-egress", greeter.lang),
        greeter,
        &plugin,
        &config,
    );
    cluster.start_all();
    let (leader, term) = cluster.wait_for_leader(&ALL);
    wait_until(&cluster, "three of the leader's beats at the store", || {
        store.accepted(Some(&leader)).len() >= 3
    });
    assert!(store.accepted(Some(&leader)).iter().all(|t| *t == term));
    wait_until(&cluster, "every node's leadership webhook", || {
        let seen = hooks.seen_at("/hook");
        ALL.iter().all(|id| seen.iter().any(|h| h.is_from(id)))
    });
    assert!(hooks.seen_at("/hook").iter().all(|h| h.token.is_none()));
    // The greeter recorded its own outcomes: the leader's store posts went
    // through.
    let seen = cluster.seen_when(&leader, "a recorded store post", |s| {
        s.json["http"].as_array().is_some_and(|h| {
            h.iter().any(|r| {
                r["url"].as_str().is_some_and(|u| u.ends_with("/store")) && r["status"] == 200
            })
        })
    });
    assert_eq!(seen.json["node"], leader.as_str());
    let followers: Vec<&str> = ALL.iter().copied().filter(|id| *id != leader).collect();
    for id in &followers {
        assert!(
            store.seen_at("/store").iter().all(|s| !s.is_from(id)),
            "follower {id} reached the store"
        );
    }

    cluster.kill9(&leader);
    let (next, next_term) = cluster.wait_for_leader(&followers);
    assert!(next_term > term);
    wait_until(
        &cluster,
        "three of the new leader's beats at the store",
        || store.accepted(Some(&next)).len() >= 3,
    );
    assert!(store.accepted(Some(&next)).iter().all(|t| *t == next_term));
    let tokens = store.accepted(None);
    assert!(tokens.windows(2).all(|w| w[0] <= w[1]), "{tokens:?}");
    println!(
        "{}: egress fenced: {} beats accepted with tokens {term} then {next_term}, {} webhook posts",
        greeter.lang,
        tokens.len(),
        hooks.seen_at("/hook").len()
    );
    passed();
}

#[test]
fn a_python_greeters_http_egress_is_fenced_by_its_host() {
    http_egress_is_fenced(&Greeter::new("python", "tenure_plugin_greeter_python.wasm"));
}

#[test]
fn a_javascript_greeters_http_egress_is_fenced_by_its_host() {
    http_egress_is_fenced(&Greeter::new("js", "tenure_plugin_greeter_js.wasm"));
}
