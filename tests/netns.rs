//! A Jepsen-style fault test across network namespaces: five `tenure run`
//! processes, each in a namespace of its own with its own address and a
//! DNS name (a hosts file), on a shared bridge; a nemesis that applies and
//! heals faults at random times drawn from a seed; every node supervising
//! a command that writes its fencing token to a store which refuses tokens
//! below the highest it accepted; and a checker over the recorded history
//! (see `netns/check.rs`). RELIABILITY.md has the results of a long run.
//!
//! The faults: full partitions (3/2 and 2/2/1, links moved to separate
//! bridges), one-way partitions (nftables), kill -9 of the leader and a
//! restart, SIGSTOP/SIGCONT of the leader or of a follower, a restart
//! under a new address (the namespace's IP changes, the hosts files
//! follow), and delay with loss from the transport's test-only fault
//! layer (`tenure_transport::faults`; this kernel has no `tc netem`).
//!
//! The checks: no two nodes' leases (the fencing token applications see,
//! logged with `CLOCK_MONOTONIC`, which every namespace shares) overlap in
//! real time; at most one leader per term; no fenced write accepted with a
//! token below one already accepted, nor one token written by two nodes;
//! and after every heal one leader within [`SETTLE_BOUND`].
//!
//! Needs root and a usable `ip netns` (it says why and passes otherwise);
//! without nftables only the one-way partitions are left out, saying so.
//!
//! ```text
//! cargo test --locked -p tenure-host --test netns -- --nocapture     # 16 cycles, as in scripts/test.sh
//! TENURE_NETNS_CYCLES=120 cargo test --locked --release -p tenure-host --test netns -- --nocapture
//! TENURE_NETNS_SEED=1234 …                                          # replays a run's faults
//! ```
//!
//! The processes are `CARGO_BIN_EXE_tenure`: the debug binary under
//! `cargo test`, the release one under `cargo test --release`.

#[path = "netns/check.rs"]
mod check;
#[path = "kit/fencing_store.rs"]
mod fencing_store;
#[path = "netns/nemesis.rs"]
mod nemesis;
#[path = "netns/net.rs"]
mod net;
#[path = "netns/nodes.rs"]
mod nodes;
#[path = "netns/store.rs"]
mod store;

use std::path::Path;
use std::time::{Duration, Instant};

use check::Cycle;
use nemesis::{Fault, KINDS, Kind, Rng};
use nodes::Cluster;
use store::mono_ns;

/// How long after a heal every node must agree on one leader. Generous:
/// the machine is shared, and a debug build is slower; the figures the
/// test prints say how long it really took.
const SETTLE_BOUND: Duration = Duration::from_secs(15);

/// How long the first election may take (the processes start and compile
/// their component first).
const START_BOUND: Duration = Duration::from_secs(60);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn five_nodes_in_namespaces_survive_the_nemesis_with_no_overlapping_lease() {
    if let Some(why) = net::unusable() {
        println!("netns: SKIPPED: {why}");
        return;
    }
    let cycles = env_u64("TENURE_NETNS_CYCLES").unwrap_or(16) as usize;
    let seed =
        env_u64("TENURE_NETNS_SEED").unwrap_or_else(|| mono_ns() ^ u64::from(std::process::id()));
    println!(
        "netns: seed {seed}, {cycles} cycles (replay: TENURE_NETNS_SEED={seed} TENURE_NETNS_CYCLES={cycles})"
    );
    let started = Instant::now();
    let ids: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    let net = net::Net::create(&ids).expect("the namespaces and bridges");
    net.enter_hub().expect("this thread in the hub namespace");
    let kinds: Vec<Kind> = match &net.nft {
        Ok(()) => KINDS.to_vec(),
        Err(why) => {
            println!("netns: one-way partitions LEFT OUT: nftables is not usable here: {why}");
            KINDS
                .iter()
                .copied()
                .filter(|k| *k != Kind::OneWay)
                .collect()
        }
    };
    let writes = store::start().expect("the fencing store");
    let dir = std::env::temp_dir().join(format!("tenure-netns-{}", std::process::id()));
    let binary = Path::new(env!("CARGO_BIN_EXE_tenure"));
    let mut cluster = Cluster::new(net, &ids, &dir, binary, seed).expect("a cluster");
    for id in &ids {
        cluster.spawn(id).expect("tenure starts");
    }
    let mut rng = Rng::new(seed);
    let fail = |cluster: &Cluster, what: String| -> ! {
        panic!(
            "{what}\nreplay: TENURE_NETNS_SEED={seed} TENURE_NETNS_CYCLES={cycles}\nlogs in {}\n{}",
            cluster.dir.display(),
            cluster.log_tails(25)
        )
    };
    let Some((mut leader, _)) = cluster.wait_for_leader(START_BOUND) else {
        fail(&cluster, "no leader after the start".into())
    };

    let mut done: Vec<Cycle> = Vec::new();
    let mut order: Vec<Kind> = Vec::new();
    for c in 0..cycles {
        // Every kind once per round, in an order the seed draws.
        if order.is_empty() {
            order = kinds.clone();
            rng.shuffle(&mut order);
        }
        let kind = order.remove(0);
        std::thread::sleep(Duration::from_millis(rng.between(300, 1200)));
        let fault = Fault::draw(kind, &ids, &leader, &mut rng);
        let hold = Duration::from_millis(rng.between(500, 2500));
        let applied_ns = mono_ns();
        if let Err(e) = fault.apply(&mut cluster) {
            fail(&cluster, format!("cycle {c}: applying {fault}: {e:#}"));
        }
        std::thread::sleep(hold);
        let healed_ns = mono_ns();
        if let Err(e) = fault.heal(&mut cluster) {
            fail(&cluster, format!("cycle {c}: healing {fault}: {e:#}"));
        }
        let Some((next, term)) = cluster.wait_for_leader(SETTLE_BOUND) else {
            fail(
                &cluster,
                format!("cycle {c}: no single leader within {SETTLE_BOUND:?} of healing {fault}"),
            )
        };
        let settled_ns = mono_ns();
        println!(
            "netns: cycle {c:>3}: {fault} for {} ms; then leader {next} (term {term}) {:.0} ms after the heal",
            hold.as_millis(),
            (settled_ns - healed_ns) as f64 / 1e6
        );
        done.push(Cycle {
            kind: fault.kind(),
            what: fault.to_string(),
            applied_ns,
            healed_ns,
            settled_ns,
        });
        leader = next;
    }
    // A last quiet second, then stop every node so each logs its end.
    std::thread::sleep(Duration::from_secs(1));
    let end_ns = mono_ns();
    cluster.stop_all();

    let history = check::read(&cluster, end_ns).expect("the event logs");
    let writes = writes.lock().expect("the store's writes").clone();
    let verdict = check::check(&history, &writes);
    let report = check::report(
        &done,
        end_ns,
        &history,
        &writes,
        &verdict,
        &cluster.promises,
    );
    println!(
        "netns: seed {seed}, {} cycles in {:.0} s, binary {}\n{report}",
        done.len(),
        started.elapsed().as_secs_f64(),
        binary.display()
    );
    if !verdict.clean() {
        let faults: Vec<String> = done
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{i}: {}", c.what))
            .collect();
        fail(
            &cluster,
            format!(
                "the checker found violations:\n{report}\nfaults:\n{}",
                faults.join("\n")
            ),
        );
    }
    assert!(
        !writes.is_empty(),
        "no leader's command ever wrote to the store"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
