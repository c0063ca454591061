//! The component as a host sees it, one call at a time: options refused
//! with the field named, effects in a safe order (persist before send),
//! and imports that give the protocol no ambient authority.

use tenure_host::types::{Event, Options, Role, Timings};
use tenure_host::{Effect, InvalidOptions};
use tenure_tests::{MS, component};

#[test]
fn bad_options_are_refused_with_the_field_named() {
    let component = component();
    let mut instance = component
        .instantiate("n1", Box::new(Fixed))
        .expect("instantiates");
    let options = Options {
        node_id: "n1".into(),
        cluster_id: "c".into(),
        bootstrap: vec![],
        timings: Timings {
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 150,
            ..Timings::default()
        },
        pre_vote: true,
        priority: 0,
        voter: true,
        joining: false,
    };
    let err = instance.start(&options, None).expect_err("refused");
    let invalid = err
        .downcast_ref::<InvalidOptions>()
        .expect("an InvalidOptions");
    assert_eq!(invalid.0.field, "timings.election-timeout-max-ms");
    assert!(err.to_string().contains("greater than"), "{err}");
}

#[test]
fn the_component_reports_events_and_persists_before_sending() {
    let component = component();
    let options = |id: &str| Options {
        node_id: id.into(),
        cluster_id: "c".into(),
        bootstrap: vec!["n1".into(), "n2".into()],
        timings: Timings::default(),
        pre_vote: false,
        priority: 0,
        voter: true,
        joining: false,
    };
    let persists_before_sending = |effects: &[Effect]| {
        let persist = effects.iter().position(|e| matches!(e, Effect::Persist(_)));
        let send = effects
            .iter()
            .position(|e| matches!(e, Effect::Send { .. }));
        persist.expect("persists") < send.expect("sends")
    };
    let mut nodes = Vec::new();
    let mut pending = Vec::new();
    let mut timers = [None, None];
    for (i, id) in ["n1", "n2"].into_iter().enumerate() {
        let mut instance = component
            .instantiate(id, Box::new(Fixed))
            .expect("instantiates");
        let effects = instance.start(&options(id), None).expect("starts");
        // A first start draws and saves the node's data id before it asks
        // its peers to confirm it.
        assert!(persists_before_sending(&effects), "{effects:?}");
        pending.push((i, effects));
        nodes.push(instance);
    }
    // Let the two confirm each other's data ids.
    for _ in 0..10 {
        let Some((from, effects)) = pending.pop() else {
            break;
        };
        for effect in effects {
            match effect {
                Effect::Send { payload, .. } => {
                    let to = 1 - from;
                    let sender = ["n1", "n2"][from];
                    let out = nodes[to].on_message(sender, &payload).expect("handles");
                    pending.push((to, out));
                }
                Effect::SetTimer { id, after_ns } => timers[from] = Some((id, after_ns)),
                _ => {}
            }
        }
    }
    assert!(nodes[0].status().confirmed);
    // What the instance keeps from the reports is what the component says.
    let queried = nodes[0].query_status().expect("status");
    assert_eq!(&queried, nodes[0].status());
    let (timer, after_ns) = timers[0].expect("n1 armed its election timer");
    assert!((150 * MS..=300 * MS).contains(&after_ns));
    let effects = nodes[0].on_timer(timer).expect("fires");
    // The candidacy's term and self-vote are durable before any vote request.
    assert!(persists_before_sending(&effects), "{effects:?}");
    assert!(effects.contains(&Effect::Emit(Event::TermChanged(
        tenure_host::types::TermChange { old: 0, new: 1 }
    ))));
    assert_eq!(nodes[0].status().role, Role::Candidate);
}

#[test]
fn the_protocol_imports_no_clock_entropy_network_or_filesystem() {
    let imports = component().imports();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("tenure:election/host@")),
        "{imports:?}"
    );
    for forbidden in [
        "wasi:clocks",
        "wasi:random",
        "wasi:sockets",
        "wasi:http",
        "wasi:filesystem",
    ] {
        assert!(
            !imports.iter().any(|i| i.starts_with(forbidden)),
            "the protocol imports {forbidden}: {imports:?}"
        );
    }
}

/// A clock stuck at zero and a constant "random" source.
struct Fixed;

impl tenure_host::Environment for Fixed {
    fn now_ns(&mut self) -> u64 {
        0
    }
    fn random_u64(&mut self) -> u64 {
        12_345_678_901
    }
}
