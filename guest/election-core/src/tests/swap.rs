//! Handing the whole state to another build (protocol swap).

use super::*;

#[test]
fn a_leader_hands_its_whole_state_to_another_build() {
    let (n, actions) = leader();
    let heartbeat_timer = last_timer(&actions);
    let state = n.e.export_state();
    let mut env = TestEnv::new(99);
    let mut next = Election::import_state(options("n1", &["n1", "n2", "n3"]), &state, &mut env)
        .expect("imports");
    assert_eq!(next.status(), n.e.status());
    assert!(
        sent(&next.take_actions()).is_empty(),
        "importing sends nothing"
    );
    // The timer the old build armed fires into the new one.
    next.on_timer(heartbeat_timer, &mut env);
    let beats = sent(&next.take_actions());
    assert_eq!(beats.len(), 2);
    assert!(
        beats
            .iter()
            .all(|(_, b)| matches!(b, Body::Heartbeat { term: 1, .. }))
    );
}

#[test]
fn a_leaders_lease_survives_a_swap_and_a_format_1_state_still_imports() {
    let (mut n, _) = leader();
    n.deliver(
        "n2",
        Body::HeartbeatAck {
            term: 1,
            ok: true,
            round: 1,
            members: vec![],
            removed: vec![],
            holds: None,
        },
    );
    let lease = n.e.lease_expires_ns();
    assert!(lease.is_some());
    let state = n.e.export_state();
    let mut env = TestEnv::new(5);
    let next = Election::import_state(options("n1", &["n1", "n2", "n3"]), &state, &mut env)
        .expect("imports");
    assert_eq!(next.lease_expires_ns(), lease);

    // A build from before leases wrote format 1: the bare state.
    let (&format, rest) = state.split_first().expect("not empty");
    assert_eq!(format, crate::handover::HANDOVER_FORMAT);
    let (with_lease, _): (crate::handover::HandoverWithLease, _) =
        postcard::take_from_bytes(rest).expect("decodes");
    let mut old = vec![1u8];
    old.extend(postcard::to_allocvec(&with_lease.core).expect("encodes"));
    let from_old = Election::import_state(options("n1", &["n1", "n2", "n3"]), &old, &mut env)
        .expect("format 1 imports");
    assert_eq!(from_old.status().role, Role::Leader);
    assert_eq!(
        from_old.lease_expires_ns(),
        None,
        "no lease until the next acknowledged round"
    );
}

#[test]
fn a_foreign_or_unknown_state_is_refused_with_the_reason() {
    let (n, _) = leader();
    let state = n.e.export_state();
    let mut env = TestEnv::new(1);
    let other = Election::import_state(options("n2", &["n1", "n2", "n3"]), &state, &mut env)
        .expect_err("another node's state");
    assert!(other.contains("state of node n1"), "{other}");
    let mut future = state.clone();
    future[0] = 9;
    let err = Election::import_state(options("n1", &["n1", "n2", "n3"]), &future, &mut env)
        .expect_err("unknown format");
    assert!(err.contains("format 9"), "{err}");
    let err = Election::import_state(options("n1", &["n1"]), &state[..state.len() / 2], &mut env)
        .expect_err("truncated");
    assert!(err.contains("malformed"), "{err}");
}
