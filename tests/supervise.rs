//! `tenure run --config FILE -- CMD`: a command that runs only while its
//! node leads, measured against a fencing store. Each of three nodes
//! supervises a bash loop that writes `W TOKEN NODE` to the store as fast
//! as it can; the store (a thread of this test) accepts a token only if it
//! is at least the highest it has accepted, and records every write. Over
//! many leader kills (SIGKILL) and isolations (both followers frozen, so
//! the leader loses its majority), no write is ever refused — no deposed
//! leader's command was still writing once a newer one had begun — and
//! each isolated leader's command was stopped before its lease lapsed.
//! Then the leader itself is frozen a few times: its command writes on
//! (a frozen node cannot stop it), and the store's refusals are what keep
//! those writes out — as the docs say.
//!
//! `TENURE_SUPERVISE_CYCLES` (default 30) sets how many of each.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use kit::fencing_store::{self, Write, Writes, mono_ns};
use kit::{BOUND, Cluster};

/// The fencing store on a loopback port of its own.
fn fencing_store() -> (u16, Writes) {
    let port = kit::free_port();
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("the store listens");
    (port, fencing_store::serve(listener))
}

/// The `lease_lapses_in_ms=` figures of every log line saying `what`.
fn margins(cluster: &Cluster, what: &str) -> Vec<f64> {
    cluster
        .ids
        .iter()
        .flat_map(|id| {
            cluster
                .log(id)
                .lines()
                .filter(|l| l.contains(what))
                .filter_map(|l| {
                    let field = l
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("lease_lapses_in_ms="))?;
                    field.parse::<f64>().ok()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn summary(values: &[f64]) -> String {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match (v.first(), v.get(v.len() / 2)) {
        (Some(min), Some(median)) => {
            format!("min {min:.1} ms, median {median:.1} ms, n {}", v.len())
        }
        _ => "none".into(),
    }
}

#[test]
fn a_supervised_command_never_writes_beside_a_newer_leaders() {
    let cycles: usize = std::env::var("TENURE_SUPERVISE_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let (port, writes) = fencing_store();
    let script = format!(
        "trap 'exit 0' TERM; while :; do exec 3<>/dev/tcp/127.0.0.1/{port} || exit 1; \
         echo \"W $TENURE_FENCING_TOKEN $TENURE_NODE_ID\" >&3; read -r _ <&3; exec 3>&-; done"
    );
    // n1's command ignores SIGTERM: its node must SIGKILL it within the
    // grace, still before the lease lapses.
    let stubborn = script.replacen("trap 'exit 0' TERM", "trap '' TERM", 1);
    assert_ne!(stubborn, script);
    // A wider guard than the default 20 ms, so a loaded test machine's
    // scheduling cannot eat it: the token is revoked 60 ms before the
    // lease lapses, the stubborn command SIGKILLed 30 ms after SIGTERM.
    let mut cluster = Cluster::configure("supervise", 3, |_| {
        "[protocol]\nlease-guard-ms = 60\n[command]\ngrace-ms = 30\n".to_string()
    });
    let all = ["n1", "n2", "n3"];
    for id in all {
        let body = if id == "n1" { &stubborn } else { &script };
        cluster
            .local
            .supervise(id, &["bash", "-c", body])
            .expect("planned");
        cluster.spawn(id);
    }
    let (mut leader, _) = cluster.wait_for_leader(&all, BOUND);

    // SIGKILL the leader, again and again; it restarts as a follower.
    for _ in 0..cycles {
        std::thread::sleep(Duration::from_millis(150));
        cluster.kill9(&leader);
        let survivors: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
        let (next, _) = cluster.wait_for_leader(&survivors, BOUND);
        cluster.spawn(&leader);
        leader = next;
        cluster.wait_for_leader(&all, BOUND);
    }
    // Freeze both followers: the leader loses its majority, and must stop
    // its command before its lease lapses.
    for cycle in 0..cycles {
        if cycle % 2 == 0 && leader != "n1" {
            // Every other time, isolate n1, whose command ignores SIGTERM.
            kit::post(cluster.admin(&leader), "/transfer?to=n1", b"");
            let deadline = Instant::now() + BOUND;
            while leader != "n1" && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
                leader = cluster.wait_for_leader(&all, BOUND).0;
            }
        }
        std::thread::sleep(Duration::from_millis(150));
        let followers: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
        for id in &followers {
            cluster.signal(id, libc::SIGSTOP);
        }
        std::thread::sleep(Duration::from_millis(300));
        for id in &followers {
            cluster.signal(id, libc::SIGCONT);
        }
        leader = cluster.wait_for_leader(&all, BOUND).0;
    }
    std::thread::sleep(Duration::from_millis(150));
    let before_freezes = mono_ns();
    let sigterm = margins(&cluster, "fencing token revoked: SIGTERM to the command");
    let stopped = margins(&cluster, "command stopped");
    let sigkill = margins(&cluster, "outlived its grace: SIGKILL sent");

    // What the token cannot do: freeze the *leader* itself. Its command is
    // another process and writes on; the survivors elect a new leader whose
    // command writes a higher token; the store refuses the frozen one's.
    let frozen_cycles = 3;
    for _ in 0..frozen_cycles {
        std::thread::sleep(Duration::from_millis(150));
        let frozen = leader.clone();
        cluster.signal(&frozen, libc::SIGSTOP);
        let survivors: Vec<&str> = all.iter().copied().filter(|id| *id != frozen).collect();
        cluster.wait_for_leader(&survivors, BOUND);
        std::thread::sleep(Duration::from_millis(200));
        cluster.signal(&frozen, libc::SIGCONT);
        leader = cluster.wait_for_leader(&all, BOUND).0;
    }
    std::thread::sleep(Duration::from_millis(150));

    let writes = writes.lock().expect("store log").clone();
    let (writes, frozen_phase): (Vec<Write>, Vec<Write>) =
        writes.into_iter().partition(|w| w.at_ns < before_freezes);
    let refused_while_frozen = frozen_phase.iter().filter(|w| !w.accepted).count();
    let mut highest = 0;
    for w in frozen_phase.iter().filter(|w| w.accepted) {
        assert!(
            w.token >= highest,
            "an accepted token went backwards: {w:?}"
        );
        highest = w.token;
    }
    let thawed =
        margins(&cluster, "fencing token revoked: SIGTERM to the command").len() - sigterm.len();
    println!(
        "frozen leaders: {refused_while_frozen} of their commands' writes refused by the store \
         over {frozen_cycles} freezes; every accepted token rose; {thawed} commands stopped \
         once their node thawed (after the lease: no frozen node can do better)"
    );
    assert!(
        refused_while_frozen > 0,
        "a frozen leader's command kept writing, yet the store refused nothing: was it tested?"
    );
    let accepted: Vec<&Write> = writes.iter().filter(|w| w.accepted).collect();
    let refused: Vec<&Write> = writes.iter().filter(|w| !w.accepted).collect();
    let tokens: std::collections::BTreeSet<u64> = accepted.iter().map(|w| w.token).collect();
    let killed = sigkill.len();
    let mut by_node: std::collections::BTreeMap<&str, usize> = Default::default();
    for w in &accepted {
        *by_node.entry(w.node.as_str()).or_default() += 1;
    }
    // From one leadership's last write to the next one's first.
    let gaps: Vec<f64> = accepted
        .windows(2)
        .filter(|p| p[0].token != p[1].token)
        .map(|p| (p[1].at_ns - p[0].at_ns) as f64 / 1e6)
        .collect();
    println!(
        "{} writes accepted ({by_node:?}) under {} tokens, {} refused; lease left at SIGTERM: {}; \
         when the command had stopped: {}; at SIGKILL (after the grace): {}; \
         from one token's last write to the next's first: {}",
        accepted.len(),
        tokens.len(),
        refused.len(),
        summary(&sigterm),
        summary(&stopped),
        summary(&sigkill),
        summary(&gaps)
    );
    assert!(
        refused.is_empty(),
        "a deposed leader's command wrote after a newer one began: {:?}\n{}",
        &refused[..refused.len().min(10)],
        cluster.logs()
    );
    // Tokens never went backwards, and no two overlapped in time.
    for pair in accepted.windows(2) {
        assert!(pair[0].token <= pair[1].token, "{pair:?}");
    }
    assert!(
        tokens.len() > cycles,
        "too few leaderships wrote anything: {tokens:?}"
    );
    // Every isolated leader stopped its command with lease to spare.
    assert!(
        stopped.len() >= cycles / 2,
        "too few isolations ended a command: {stopped:?}"
    );
    assert!(killed > 0, "n1's stubborn command was never SIGKILLed");
    assert!(
        sigterm.iter().chain(&sigkill).all(|m| *m > 0.0),
        "a command was signalled after its lease lapsed: SIGTERM {sigterm:?}, SIGKILL {sigkill:?}"
    );
    // SIGTERM to the leader's node: its command is stopped and waited for
    // first, then leadership is handed over, then the node exits cleanly.
    let (leader, _) = cluster.wait_for_leader(&all, BOUND);
    std::thread::sleep(Duration::from_millis(200));
    let before = cluster.log(&leader).len();
    cluster.signal(&leader, libc::SIGTERM);
    let exited = cluster.wait_exit(&leader, BOUND);
    assert!(
        exited.is_some_and(|s| s.success()),
        "clean exit: {exited:?}"
    );
    let tail = cluster.log(&leader)[before..].to_string();
    let stopped_at = tail
        .find("the command exited after SIGTERM")
        .or_else(|| tail.find("SIGKILL sent"));
    let handed_at = tail.find("handing leadership over before shutting down");
    assert!(
        matches!((stopped_at, handed_at), (Some(s), Some(h)) if s < h),
        "the command must stop before leadership is handed over:\n{tail}"
    );
    cluster.assert_one_leader_per_term();
}
