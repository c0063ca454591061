//! Leadership for applications, on real `tenure run` processes: the
//! `GET /watch` stream (through `tenure watch`), and `GET /leader`, which
//! answers 200 on one node at a time — checked exactly, since every
//! answer carries the host's `CLOCK_MONOTONIC`, one clock for all nodes.
//!
//! Built as an integration test of the host package (see host/Cargo.toml)
//! so `CARGO_BIN_EXE_tenure` names the binary under test.

#[path = "kit/mod.rs"]
mod kit;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use kit::{BOUND, Cluster};
use serde_json::Value;

/// `tenure watch --admin ADDR --json`, its events as they come.
struct Watcher {
    child: std::process::Child,
    events: mpsc::Receiver<Value>,
}

impl Watcher {
    fn start(admin: SocketAddr) -> Watcher {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenure"))
            .args(["watch", "--json", "--admin", &admin.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("tenure watch starts");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        Watcher { child, events }
    }

    /// Events until one satisfies `done` (included), within `bound`.
    fn until(&self, bound: Duration, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + bound;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    let last = done(&event);
                    seen.push(event);
                    if last {
                        return seen;
                    }
                }
                Err(_) => panic!("no such event within {bound:?}; saw {seen:#?}"),
            }
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_starts_with_the_current_state_then_streams_every_change_in_order() {
    let mut cluster = Cluster::start("watch-stream", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];
    let (leader, term) = cluster.wait_for_leader(&all, BOUND);
    let follower = all
        .iter()
        .copied()
        .find(|id| *id != leader)
        .expect("a follower");
    let watcher = Watcher::start(cluster.admin(follower));
    // First: the current state, as it is now.
    let first = watcher.until(BOUND, |_| true).remove(0);
    assert_eq!(first["node"], follower);
    assert_eq!(first["leader"], leader.as_str(), "{first}");
    assert_eq!(first["term"], term, "{first}");
    let first_seq = first["seq"].as_u64().expect("numbered");

    // Then every change, numbered one by one, up to the new leader.
    cluster.kill9(&leader);
    let survivors: Vec<&str> = all.iter().copied().filter(|id| *id != leader).collect();
    let (next, next_term) = cluster.wait_for_leader(&survivors, BOUND);
    let changes = watcher.until(BOUND, |e| {
        e["leader"] == next.as_str() && e["term"].as_u64() == Some(next_term)
    });
    let seqs: Vec<u64> = changes.iter().filter_map(|e| e["seq"].as_u64()).collect();
    let expected: Vec<u64> = (first_seq + 1..=first_seq + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every change, in order: {changes:#?}");
    // A follower carries no fencing token, ever.
    assert!(
        changes
            .iter()
            .all(|e| e["fencing_token"].is_null() || e["role"] == "leader")
    );
    // The new leader's own stream shows it leading with a token.
    let on_leader = Watcher::start(cluster.admin(&next));
    let leading = on_leader.until(BOUND, |e| e["fencing_token"].as_u64().is_some());
    let last = leading.last().expect("an event");
    assert_eq!(last["fencing_token"], next_term);
    assert!(
        last["valid_for_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{last}"
    );
    cluster.assert_one_leader_per_term();
}

/// One `GET /leader` answer: who answered, the code, and when the node
/// decided it (the host's monotonic clock, ns).
#[derive(Clone, Debug)]
struct Claim {
    node: String,
    code: u16,
    term: u64,
    at_ns: u64,
}

/// `GET /leader` over HTTP/1.0 (one connection each): code and body.
fn get_leader(admin: SocketAddr) -> Option<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_millis(200)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"GET /leader HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    Some((code, serde_json::from_str(body).ok()?))
}

/// The leader the nodes agree on in a term after `term` (the agreed
/// leader right after a request may still be the old one).
fn next_leader(cluster: &Cluster, all: &[&str], term: u64) -> (String, u64) {
    let what = format!("a leader after term {term}");
    cluster.wait_for_leader_where(all, BOUND, &what, |_, now| now > term)
}

/// Asks every node for `/leader` about once a millisecond until stopped.
fn sample(
    cluster: &Cluster,
    ids: &[&str],
) -> (Arc<AtomicBool>, Vec<std::thread::JoinHandle<Vec<Claim>>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = ids
        .iter()
        .map(|id| {
            let (id, admin, stop) = (id.to_string(), cluster.admin(id), stop.clone());
            std::thread::spawn(move || {
                let mut claims = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if let Some((code, body)) = get_leader(admin)
                        && let Some(at_ns) = body["monotonic_ns"].as_u64()
                    {
                        claims.push(Claim {
                            node: id.clone(),
                            code,
                            term: body["term"].as_u64().unwrap_or(0),
                            at_ns,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                claims
            })
        })
        .collect();
    (stop, threads)
}

#[test]
fn leader_answers_200_on_one_node_at_a_time_across_transfer_step_down_and_isolation() {
    let cluster = Cluster::start("leader-endpoint", 3, |_| String::new());
    let all = ["n1", "n2", "n3"];
    let (first, first_term) = cluster.wait_for_leader(&all, BOUND);
    std::thread::sleep(Duration::from_millis(300));
    let (stop, samplers) = sample(&cluster, &all);
    std::thread::sleep(Duration::from_millis(300));

    // A transfer.
    let to = all.iter().copied().find(|id| *id != first).expect("a peer");
    let (code, body, _) = kit::post(cluster.admin(&first), &format!("/transfer?to={to}"), b"");
    assert_eq!(code, 200, "{body}");
    let (second, second_term) = next_leader(&cluster, &all, first_term);
    std::thread::sleep(Duration::from_millis(400));
    // A step-down.
    let (code, body, _) = kit::post(cluster.admin(&second), "/step-down", b"");
    assert_eq!(code, 200, "{body}");
    let (third, third_term) = next_leader(&cluster, &all, second_term);
    std::thread::sleep(Duration::from_millis(400));
    // An isolation: both followers frozen, so the leader loses its majority.
    let followers: Vec<&str> = all.iter().copied().filter(|id| *id != third).collect();
    println!("isolating {third}: freezing {followers:?}");
    for id in &followers {
        cluster.signal(id, libc::SIGSTOP);
    }
    std::thread::sleep(Duration::from_millis(600));
    for id in &followers {
        cluster.signal(id, libc::SIGCONT);
    }
    let (fourth, fourth_term) = next_leader(&cluster, &all, third_term);
    println!("after the isolation: {fourth} leads term {fourth_term}");
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    let mut claims: Vec<Claim> = samplers
        .into_iter()
        .flat_map(|t| t.join().expect("sampler"))
        .collect();
    claims.sort_by_key(|c| c.at_ns);
    if std::env::var_os("TENURE_TEST_VERBOSE").is_some() {
        let mut last: std::collections::BTreeMap<String, (u16, u64)> = Default::default();
        for c in &claims {
            if last.get(&c.node) != Some(&(c.code, c.term)) {
                println!("{:>14} {} {} term {}", c.at_ns, c.node, c.code, c.term);
                last.insert(c.node.clone(), (c.code, c.term));
            }
        }
    }

    // In time order, the 200s form runs of one (node, term) each: once
    // another node (or term) answered 200, the earlier holder never does
    // again — so no two nodes ever claimed leadership at once.
    let holders: Vec<&Claim> = claims.iter().filter(|c| c.code == 200).collect();
    let mut runs: Vec<(&str, u64, u64, u64)> = Vec::new(); // node, term, first, last
    for claim in &holders {
        match runs.last_mut() {
            Some(run) if run.0 == claim.node && run.1 == claim.term => run.3 = claim.at_ns,
            _ => {
                let repeated = runs.iter().any(|r| r.0 == claim.node && r.1 == claim.term);
                assert!(
                    !repeated,
                    "{} (term {}) answered 200 again after another holder did: {runs:?}",
                    claim.node, claim.term
                );
                if let Some(previous) = runs.last() {
                    assert!(claim.term > previous.1, "terms go backwards: {runs:?}");
                }
                runs.push((&claim.node, claim.term, claim.at_ns, claim.at_ns));
            }
        }
    }
    let gaps_ms: Vec<f64> = runs
        .windows(2)
        .map(|w| (w[1].2 - w[0].3) as f64 / 1e6)
        .collect();
    println!(
        "{} claims sampled; holders in order {:?}; gap between one holder's last 200 and the next's first, ms: {gaps_ms:?}",
        claims.len(),
        runs.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>()
    );
    assert!(
        runs.len() >= 4,
        "a transfer, a step-down and an isolation should show four holders: {runs:?}"
    );
    cluster.assert_one_leader_per_term();
}

#[test]
fn hooks_run_on_events_and_a_failing_became_leader_hook_refuses_leadership() {
    let dir = std::env::temp_dir().join(format!("tenure-hooks-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let out = dir.join("hooks.log");
    let record = |event: &str| {
        format!(
            "echo \"{event} $TENURE_NODE_ID term=$TENURE_TERM token=$TENURE_FENCING_TOKEN \
             leader=$TENURE_LEADER\" >> {}",
            out.display()
        )
    };
    let (leader_hook, follower_hook) = (record("leader"), record("follower"));
    // n1 times out first (60-80 ms), so it wins first; its became-leader
    // hook fails, which refuses leadership as a plugin error does.
    let cluster = Cluster::start("hooks", 3, |id| {
        let became_leader = if id == "n1" {
            "exit 3".to_string()
        } else {
            leader_hook.clone()
        };
        let timings = if id == "n1" {
            "[timings]\nelection-timeout-min-ms = 60\nelection-timeout-max-ms = 80\n\
             heartbeat-interval-ms = 20\n"
        } else {
            ""
        };
        format!(
            "{timings}[hooks]\nbecame-leader = {became_leader:?}\nbecame-follower = {follower_hook:?}\n"
        )
    });
    let all = ["n1", "n2", "n3"];
    let (leader, term) =
        cluster.wait_for_leader_where(&all, BOUND, "a leader other than n1", |l, _| l != "n1");
    // The hook of the leader ran with its term and token; followers' too.
    let deadline = Instant::now() + BOUND;
    let want = format!("leader {leader} term={term} token={term} leader={leader}");
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains(&want)
            && text.contains(&format!("leader={leader}"))
            && text.contains("follower ")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no {want:?} in the hook log:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // n1, if it won first, refused through its failed hook.
    let n1 = cluster.log("n1");
    let n1_won = cluster
        .leaders_by_term()
        .values()
        .any(|nodes| nodes.iter().any(|n| n == "n1"));
    println!("n1 won an election first and refused it through its hook: {n1_won}");
    if n1_won {
        assert!(
            n1.contains("hook failed") && n1.contains("refused leadership"),
            "{n1}"
        );
    }
    cluster.assert_one_leader_per_term();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hot_swap_is_a_change_on_the_watch_stream() {
    let wasm = |name: &str| {
        tenure_host::component_path::election_wasm()
            .with_file_name(format!("tenure_plugin_{name}.wasm"))
    };
    let plugin = format!(
        "[plugin]\npath = {:?}\n",
        wasm("scheduler").display().to_string()
    );
    let cluster = Cluster::start("watch-swap", 3, |_| plugin.clone());
    let all = ["n1", "n2", "n3"];
    let (leader, _) = cluster.wait_for_leader(&all, BOUND);
    let watcher = Watcher::start(cluster.admin(&leader));
    let first = watcher.until(BOUND, |_| true).remove(0);
    let before = first["plugin"].as_str().expect("a plugin runs").to_string();
    let v2 = std::fs::read(wasm("scheduler_v2")).expect("the v2 build");
    let (code, body, _) = kit::post(cluster.admin(&leader), "/plugin?name=v2.wasm", &v2);
    assert_eq!(code, 200, "{body}");
    let swapped = watcher.until(BOUND, |e| e["plugin"].as_str().is_some_and(|p| p != before));
    let last = swapped.last().expect("an event");
    assert_eq!(
        last["leader"],
        leader.as_str(),
        "a swap is no election: {last}"
    );
    assert_eq!(
        last["seq"].as_u64(),
        first["seq"].as_u64().map(|s| s + swapped.len() as u64),
        "numbered on from the first"
    );
}
