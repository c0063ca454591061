//! Behaviour plugins in the simulator: the real example plugins (`.wasm`)
//! beside the real election component, on virtual time, through the same
//! plugin driver a node uses.

use std::collections::BTreeMap;

use tenure_host::types::{CampaignRefusal, Role};
use tenure_tests::{
    MAX_TIMEOUT, MS, assert_safe, cluster_with_plugins, elect, plugin_component, sim_plugin,
};

const THREE: [&str; 3] = ["n1", "n2", "n3"];

/// `(virtual ms, node, run number, term)` of every scheduler run in the
/// trace (`plugin: run N of JOB by NODE in term T`).
fn scheduler_runs(trace: &[String]) -> Vec<(u64, String, u64, u64)> {
    trace
        .iter()
        .filter_map(|line| {
            let (stamp, rest) = line.trim_start().split_once("ms ")?;
            let ms = stamp.split('.').next()?.parse().ok()?;
            let text = rest.split_once("plugin: run ")?.1;
            let words: Vec<&str> = text.split_whitespace().collect();
            // N of JOB by NODE in term T
            match words[..] {
                [n, "of", _, "by", node, "in", "term", t] => {
                    Some((ms, node.to_string(), n.parse().ok()?, t.parse().ok()?))
                }
                _ => None,
            }
        })
        .collect()
}

#[test]
fn the_scheduler_runs_once_per_period_and_only_on_the_leader() {
    for seed in 0..5 {
        let plugin = |_: &str| {
            Some(sim_plugin(
                "scheduler",
                &[("period-ms", "500"), ("job", "report")],
            ))
        };
        let mut sim = cluster_with_plugins(seed, "c", &THREE, plugin);
        let (leader, leader_id, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        sim.run_for(10_000 * MS);
        sim.crash(leader);
        elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        sim.run_for(10_000 * MS);
        assert_safe(&sim);

        let runs = scheduler_runs(sim.trace());
        // Never two nodes running the job in one term, and every run is by
        // the node that led that term.
        let mut by_term: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for (_, node, _, term) in &runs {
            let nodes = by_term.entry(*term).or_default();
            if !nodes.contains(node) {
                nodes.push(node.clone());
            }
        }
        assert!(
            by_term.len() >= 2,
            "seed {seed}: runs in {} terms only",
            by_term.len()
        );
        for (term, nodes) in &by_term {
            assert_eq!(nodes.len(), 1, "seed {seed}: term {term} ran on {nodes:?}");
        }
        // Exactly once per period across the cluster: consecutive runs are
        // one period apart, except across the failover.
        for pair in runs.windows(2) {
            let ((a, node_a, ..), (b, node_b, ..)) = (&pair[0], &pair[1]);
            if node_a == node_b {
                assert!(
                    (499..=501).contains(&(b - a)),
                    "seed {seed}: runs {a} ms and {b} ms apart"
                );
            } else {
                assert_eq!(
                    node_a, &leader_id,
                    "seed {seed}: only the first leader hands over"
                );
            }
        }
        // ~20 s at one run per 500 ms, less the failover.
        assert!(
            (36..=40).contains(&runs.len()),
            "seed {seed}: {} runs",
            runs.len()
        );
    }
}

#[test]
fn callbacks_arrive_in_the_order_events_happened() {
    let plugin = |_: &str| Some(sim_plugin("logger", &[]));
    let mut sim = cluster_with_plugins(3, "c", &THREE, plugin);
    let (_, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    let lines: Vec<&String> = sim
        .trace()
        .iter()
        .filter(|l| l.contains(&format!("c/{leader_id} plugin:")))
        .collect();
    let position = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {lines:#?}"))
    };
    let init = position("init config=");
    let term_changed = position(&format!("on-term-changed old={} new={term}", term - 1));
    let became_leader = position(&format!("on-become-leader term={term}"));
    assert!(
        init < term_changed && term_changed < became_leader,
        "{lines:#?}"
    );
    // Followers hear on-become-follower naming the leader.
    let follower_line = format!("on-become-follower leader={leader_id} term={term}");
    assert!(
        sim.trace()
            .iter()
            .any(|l| !l.contains(&format!("c/{leader_id} ")) && l.contains(&follower_line)),
        "no follower was told about {leader_id}"
    );
    assert_safe(&sim);
}

#[test]
fn a_plugin_that_refuses_leadership_hands_it_on_and_backs_off() {
    // n1 times out first (60-80 ms) so it wins first, and refuses.
    let mut sim = tenure_host::sim::Simulation::new(tenure_tests::component(), 9);
    for id in THREE {
        let mut spec = tenure_host::sim::NodeSpec::new(id, "c", &THREE);
        if id == "n1" {
            spec.timings.election_timeout_min_ms = 60;
            spec.timings.election_timeout_max_ms = 80;
            spec.timings.heartbeat_interval_ms = 20;
            spec.plugin = Some(sim_plugin(
                "misbehave",
                &[("mode", "refuse"), ("on", "on-become-leader")],
            ));
        }
        sim.add_node(spec).expect("starts");
    }
    // Run until n1 wins and its plugin refuses.
    let refused = |sim: &tenure_host::sim::Simulation| {
        sim.trace()
            .iter()
            .any(|l| l.contains("c/n1 plugin refused leadership"))
    };
    for _ in 0..500 {
        if refused(&sim) {
            break;
        }
        sim.run_for(10 * MS);
    }
    assert!(refused(&sim), "n1 never won, so never refused");
    // The protocol itself holds n1 aside for the back-off (1 s after a
    // first refusal), though its election timeout is 60-80 ms.
    sim.run_for(300 * MS);
    match sim.campaign(0).expect("runs") {
        Err(CampaignRefusal::StandingAside(for_ms)) => {
            assert!((600..=700).contains(&for_ms), "{for_ms} ms left")
        }
        other => panic!("n1 should stand aside, not {other:?}"),
    }
    let (_, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    assert_ne!(leader_id, "n1");
    sim.run_for(10_000 * MS);
    assert_eq!(
        sim.agreement("c"),
        Some((leader_id, term)),
        "leadership moved"
    );
    assert_safe(&sim);
}

/// The node keeps its status from the protocol's reports (`status-changed`)
/// instead of asking after every call: through elections, crashes,
/// partitions, transfers, plugin refusals and stand-asides, what it keeps
/// must equal what the protocol answers, on every node after every event.
#[test]
fn the_status_a_node_keeps_always_equals_the_protocols_answer() {
    let mut sim = tenure_host::sim::Simulation::new(tenure_tests::component(), 21);
    for id in ["n1", "n2", "n3", "n4", "n5"] {
        let mut spec = tenure_host::sim::NodeSpec::new(id, "c", &["n1", "n2", "n3", "n4", "n5"]);
        if id == "n1" {
            spec.plugin = Some(sim_plugin(
                "misbehave",
                &[("mode", "refuse"), ("on", "on-become-leader")],
            ));
        } else {
            spec.plugin = Some(sim_plugin(
                "scheduler",
                &[("period-ms", "200"), ("job", "report")],
            ));
        }
        sim.add_node(spec).expect("starts");
    }
    sim.set_crash_detection(Some(25 * MS));
    let check = |sim: &mut tenure_host::sim::Simulation, when: &str| {
        for n in 0..sim.node_count() {
            if let Some(current) = sim.status_is_current(n) {
                assert!(
                    current.expect("answers"),
                    "{when}: node {n} keeps a stale status"
                );
            }
        }
    };
    let mut steps = 0;
    for round in 0..6u64 {
        for _ in 0..300 {
            sim.run_for(2 * MS);
            check(&mut sim, &format!("round {round}"));
            steps += 1;
        }
        let leaders = sim.leaders("c");
        match (round % 3, leaders.first()) {
            (0, Some(&leader)) => sim.crash(leader),
            (1, Some(&leader)) => {
                let to = sim.id((leader + 1) % 5).to_string();
                let _ = sim.transfer_leadership(leader, &to);
            }
            (_, Some(&leader)) => sim.partition(&[&[leader]]),
            _ => {}
        }
        check(&mut sim, "after a fault");
        sim.run_for(400 * MS);
        sim.heal();
        for n in 0..5 {
            if !sim.is_up(n) {
                sim.restart(n).expect("restarts");
            }
        }
    }
    assert!(steps >= 1_800);
    assert!(
        sim.terms_with_leaders() >= 3,
        "too few elections to say much"
    );
    assert_safe(&sim);
}

#[test]
fn trapping_looping_and_allocating_plugins_are_replaced_and_the_leader_holds() {
    for (mode, on) in [
        ("trap", "on-term-changed"),
        ("loop", "on-become-follower"),
        ("bomb", "on-peer-joined"),
    ] {
        let plugin = |_: &str| Some(sim_plugin("misbehave", &[("mode", mode), ("on", on)]));
        let mut sim = cluster_with_plugins(5, "c", &THREE, plugin);
        let (_, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
        sim.run_for(5_000 * MS);
        assert_eq!(
            sim.agreement("c"),
            Some((leader_id, term)),
            "{mode} in {on}: leadership moved"
        );
        // The replaced instances keep answering.
        for n in 0..3 {
            let pairs = sim.inspect_plugin(n).expect("plugin answers inspect");
            assert!(!pairs.is_empty(), "{mode} in {on}: empty inspect");
        }
        assert_safe(&sim);
    }
}

#[test]
fn the_lock_service_grants_on_the_leader_with_the_term_as_fencing_token() {
    let plugin = |_: &str| Some(sim_plugin("lock", &[("grace-ms", "1000")]));
    let mut sim = cluster_with_plugins(4, "c", &THREE, plugin);
    let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    let follower = (leader + 1) % 3;
    let acquire = b"acquire db alice 5000";
    // Warming up right after the election, then granted.
    assert!(sim.call_plugin(leader, acquire).expect("answers").is_err());
    sim.run_for(1_100 * MS);
    let granted = sim
        .call_plugin(leader, acquire)
        .expect("answers")
        .expect("granted");
    let text = String::from_utf8(granted).expect("utf-8");
    assert!(
        text.starts_with(&format!("granted db to alice token {term}.")),
        "{text}"
    );
    let refused = sim
        .call_plugin(follower, acquire)
        .expect("answers")
        .expect_err("not leader");
    assert!(refused.contains(&leader_id), "{refused}");
    // A new leader hands out tokens of a higher term.
    sim.crash(leader);
    let (new_leader, _, new_term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    sim.run_for(6_000 * MS);
    let granted = sim
        .call_plugin(new_leader, b"acquire db bob 5000")
        .expect("answers")
        .expect("granted");
    let text = String::from_utf8(granted).expect("utf-8");
    assert!(
        text.starts_with(&format!("granted db to bob token {new_term}.")),
        "{text}"
    );
    assert!(new_term > term);
    assert_eq!(sim.status(new_leader).map(|s| s.role), Some(Role::Leader));
    assert_safe(&sim);
}

#[test]
fn fifty_swaps_on_the_leader_keep_leadership_and_the_schedule() {
    let plugin = |_: &str| Some(sim_plugin("scheduler", &[("period-ms", "200")]));
    let mut sim = cluster_with_plugins(8, "c", &THREE, plugin);
    let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    let new_version = plugin_component("scheduler");
    for swap in 0..50 {
        sim.run_for(130 * MS);
        let swapped = sim.swap_plugin(leader, new_version.clone());
        assert_eq!(swapped, Ok(()), "swap {swap}");
    }
    sim.run_for(1_000 * MS);
    assert_eq!(
        sim.agreement("c"),
        Some((leader_id.clone(), term)),
        "a swap cost leadership"
    );
    // The job kept its numbering and its period through every swap.
    let runs = scheduler_runs(sim.trace());
    let numbers: Vec<u64> = runs.iter().map(|(_, _, n, _)| *n).collect();
    let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, expected, "runs were lost or repeated across swaps");
    for pair in runs.windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, 200, "period broken: {pair:?}");
    }
    assert!(
        runs.iter()
            .all(|(_, node, _, t)| *node == leader_id && *t == term)
    );
    assert!(
        runs.len() >= 35,
        "{} runs\n{}",
        runs.len(),
        sim.trace()
            .iter()
            .filter(|l| l.contains("plugin"))
            .take(60)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_safe(&sim);
}

#[test]
fn a_refused_swap_keeps_the_old_version_running() {
    let plugin = |_: &str| Some(sim_plugin("scheduler", &[("period-ms", "200")]));
    let mut sim = cluster_with_plugins(2, "c", &THREE, plugin);
    let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    sim.run_for(1_000 * MS);
    let before = scheduler_runs(sim.trace()).len();
    // The logger cannot read the scheduler's snapshot; misbehave refuses
    // the scheduler's config keys.
    let refused = sim
        .swap_plugin(leader, plugin_component("logger"))
        .expect_err("refused");
    assert!(refused.contains("snapshot"), "{refused}");
    let refused = sim
        .swap_plugin(leader, plugin_component("misbehave"))
        .expect_err("refused");
    assert!(refused.contains("config"), "{refused}");
    sim.run_for(1_000 * MS);
    let runs = scheduler_runs(sim.trace());
    assert_eq!(runs.len(), before + 5, "the old version stopped running");
    let numbers: Vec<u64> = runs.iter().map(|(_, _, n, _)| *n).collect();
    assert_eq!(numbers, (1..=runs.len() as u64).collect::<Vec<_>>());
    assert_safe(&sim);
}

/// A plugin stuck in every `on-call` (it sleeps, and is cut at its
/// deadline each time) behind a flood of calls: calls beyond the queue
/// are turned away, each told the plugin is busy, and counted; a
/// protocol event is always taken, however full the queue.
#[test]
fn protocol_events_are_never_dropped_however_full_the_plugin_queue() {
    use tenure_host::plugin::PluginLimits;
    use tenure_host::plugin::runner::{INPUT_QUEUE, PluginHandle, PluginInput};
    use tenure_host::types::{Event, FollowerChange};

    let view = lone_view();
    let config: BTreeMap<String, String> = [("mode", "sleep"), ("on", "on-call")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let limits = PluginLimits {
        deadline: std::time::Duration::from_millis(20),
        ..PluginLimits::default()
    };
    let (outputs, _keep) = tokio::sync::mpsc::unbounded_channel();
    let handle = on_a_node_runtime(PluginHandle::start(
        plugin_component("misbehave"),
        config,
        limits,
        view,
        outputs,
    ))
    .expect("the plugin starts");
    let mut busy = Vec::new();
    let mut taken = 0;
    for _ in 0..INPUT_QUEUE + 100 {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if handle.deliver(PluginInput::Call {
            request: b"go".to_vec(),
            reply,
        }) {
            taken += 1;
        } else {
            busy.push(answer);
        }
    }
    assert!(taken <= INPUT_QUEUE + 1, "{taken} calls queued");
    assert!(busy.len() >= 99, "only {} calls turned away", busy.len());
    for mut answer in busy {
        let told = answer.try_recv().expect("answered at once");
        assert!(
            matches!(&told, Err(why) if why.contains("busy")),
            "{told:?}"
        );
    }
    for term in 2..50 {
        let event = Event::BecameFollower(FollowerChange {
            leader: Some("n2".into()),
            term,
        });
        assert!(
            handle.deliver(PluginInput::Event(event)),
            "the event of term {term} was dropped"
        );
    }
    assert!(handle.usage().report().inputs_dropped >= 99);
}

/// Runs `future` as a node does: on a one-thread Tokio runtime.
fn on_a_node_runtime<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// Node `n1`'s view, alone and following, for plugins outside a simulation.
fn lone_view() -> tenure_host::plugin::SharedView {
    use tenure_host::plugin::{LeaderView, ViewClock};
    let (clock, _) = ViewClock::manual();
    std::sync::Arc::new(std::sync::Mutex::new(LeaderView {
        node_id: "n1".into(),
        cluster_id: "c".into(),
        role: Role::Follower,
        term: 1,
        leader: None,
        peers: vec![],
        members: vec!["n1".into()],
        lease_expires_ns: None,
        clock,
    }))
}

/// A plugin starts (instantiation, an `init` of up to its deadline) on its
/// own thread: the node's one-thread runtime, awaiting it, runs its other
/// tasks meanwhile — here a 10 ms ticker, while `init` sleeps past 400 ms.
#[test]
fn starting_a_plugin_never_blocks_the_nodes_runtime() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};
    use tenure_host::plugin::PluginLimits;
    use tenure_host::plugin::runner::PluginHandle;

    let config: BTreeMap<String, String> = [("mode", "sleep"), ("on", "init")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let limits = PluginLimits {
        deadline: Duration::from_millis(400),
        ..PluginLimits::default()
    };
    let component = plugin_component("misbehave");
    let ticks = Arc::new(AtomicU64::new(0));
    let counted = ticks.clone();
    let (outcome, took) = on_a_node_runtime(async move {
        let ticker = tokio::spawn(async move {
            let mut interval = tokio::time::interval(Duration::from_millis(10));
            loop {
                interval.tick().await;
                counted.fetch_add(1, Ordering::SeqCst);
            }
        });
        let started = Instant::now();
        let (outputs, _keep) = tokio::sync::mpsc::unbounded_channel();
        let outcome = PluginHandle::start(component, config, limits, lone_view(), outputs).await;
        let took = started.elapsed();
        ticker.abort();
        (outcome.map(|_| ()), took)
    });
    let error = format!("{:#}", outcome.expect_err("init overran its deadline"));
    assert!(error.contains("deadline"), "{error}");
    assert!(took >= Duration::from_millis(400), "start took {took:?}");
    let ticked = ticks.load(Ordering::SeqCst);
    assert!(
        ticked >= 15,
        "the runtime ticked {ticked} times in the {took:?} the plugin took to fail its start"
    );
    println!(
        "plugin start refused after {took:?}; the node's runtime ticked {ticked} times meanwhile"
    );
}

/// A plugin that asks `transfer-leadership` 1,000 times in one callback
/// hands its node one transfer, the last asked; asked again in 49 more
/// callbacks at once, while that transfer is under way, the protocol
/// refuses each, and the node logs those refusals at powers of two only.
/// Leadership moves once, in one new term.
#[test]
fn a_transfer_asked_in_a_loop_is_carried_out_once() {
    let plugin = |_: &str| {
        Some(sim_plugin(
            "misbehave",
            &[("mode", "transfer-loop"), ("on", "on-call")],
        ))
    };
    let mut sim = cluster_with_plugins(6, "c", &THREE, plugin);
    let (leader, leader_id, term) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    let before = sim.trace().len();
    for _ in 0..50 {
        let answer = sim
            .call_plugin(leader, b"go")
            .expect("answers")
            .expect("the plugin answers");
        assert_eq!(String::from_utf8_lossy(&answer), "asked 1000");
    }
    sim.run_for(2_000 * MS);
    let (now, now_term) = sim.agreement("c").expect("a leader");
    assert_ne!(now, leader_id, "leadership moved");
    assert_eq!(now_term, term + 1, "one transfer, one new term");
    let refusals: Vec<&String> = sim.trace()[before..]
        .iter()
        .filter(|l| l.contains("transfer to") && l.contains("refused"))
        .collect();
    assert!(
        (1..=8).contains(&refusals.len()),
        "{} refusal lines for 49 refused transfers: {refusals:#?}",
        refusals.len()
    );
    assert_safe(&sim);
}

/// `plugin-limits.max-snapshot-bytes` holds on a hot swap: a running
/// version whose snapshot is over it is not swapped (the old version keeps
/// running, the refusal says why and is counted); under it, the same swap
/// goes through.
#[test]
fn a_snapshot_over_max_snapshot_bytes_refuses_the_swap() {
    use tenure_host::plugin::quota::PluginQuota;
    let with_max = |max_snapshot_bytes: u64| {
        move |_: &str| {
            let mut plugin = sim_plugin("scheduler", &[("period-ms", "200")]);
            plugin.limits = plugin.limits.clone().with_quota(PluginQuota {
                max_snapshot_bytes,
                ..PluginQuota::default()
            });
            Some(plugin)
        }
    };
    let mut sim = cluster_with_plugins(9, "c", &THREE, with_max(4));
    let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    sim.run_for(1_000 * MS);
    let before = scheduler_runs(sim.trace()).len();
    let refused = sim
        .swap_plugin(leader, plugin_component("scheduler"))
        .expect_err("a snapshot over 4 bytes");
    assert!(refused.contains("max-snapshot-bytes (4)"), "{refused}");
    sim.run_for(1_000 * MS);
    assert_eq!(
        scheduler_runs(sim.trace()).len(),
        before + 5,
        "the old version kept running"
    );
    assert_safe(&sim);

    let mut sim = cluster_with_plugins(9, "c", &THREE, with_max(1 << 20));
    let (leader, _, _) = elect(&mut sim, "c", 10 * MAX_TIMEOUT);
    sim.run_for(1_000 * MS);
    assert_eq!(
        sim.swap_plugin(leader, plugin_component("scheduler")),
        Ok(())
    );
}
