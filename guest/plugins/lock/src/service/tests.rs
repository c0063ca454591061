//! Unit tests of [`LockService`] against the SDK's fake node
//! (`tenure_sdk::fake`), which the `tenure_sdk::node` functions use in a
//! native build.

use tenure_sdk::fake::{self, Wakeup};

use super::*;

/// Fires the pending wake-up tagged `tag` into `service`, as the node
/// would.
fn fire(service: &mut LockService, tag: &str) {
    let wakeup = take_wakeup(tag);
    service.scheduled(wakeup.id, &wakeup.tag);
}

/// Removes the pending wake-up tagged `tag` from the fake node.
fn take_wakeup(tag: &str) -> Wakeup {
    fake::with(|n| {
        let at = n.scheduled.iter().position(|w| w.tag == tag);
        n.scheduled.remove(at.expect("scheduled"))
    })
}

/// The tags of the pending wake-ups, in the order they were asked for.
fn tags() -> Vec<String> {
    fake::with(|n| n.scheduled.iter().map(|w| w.tag.clone()).collect())
}

/// How many wake-ups are pending.
fn scheduled() -> usize {
    fake::with(|n| n.scheduled.len())
}

/// The log lines written at `level`, in order.
fn lines(level: Level) -> Vec<String> {
    fake::with(|n| n.lines(level))
}

/// Sends `request` to `service`, reading the reply as text.
fn call(service: &mut LockService, request: &str) -> Result<String, String> {
    service
        .call(request.as_bytes())
        .map(|reply| String::from_utf8(reply).expect("UTF-8 reply"))
}

/// A fresh fake node (follower n1, term 0) and a service that does not
/// lead.
fn following() -> LockService {
    fake::reset();
    LockService::new(Config::default())
}

/// A fresh fake node leading term 3, and a service leading it, warmed up.
fn serving() -> LockService {
    let mut service = following();
    fake::with(|n| n.lead(3));
    service.become_leader(3);
    fire(&mut service, GRACE_TAG);
    service
}

#[test]
fn followers_point_at_the_leader() {
    let mut s = following();
    assert_eq!(
        call(&mut s, "query a"),
        Err("not leader; no leader known".into())
    );
    fake::with(|n| n.follow(Some("n2"), 1));
    assert_eq!(
        call(&mut s, "query a"),
        Err("not leader; leader is n2".into())
    );
    assert_eq!(scheduled(), 0, "a follower schedules nothing");
}

#[test]
fn a_new_leader_warms_up_first() {
    let mut s = following();
    fake::with(|n| n.lead(3));
    s.become_leader(3);
    assert_eq!(
        fake::with(|n| n.scheduled.clone()),
        [Wakeup {
            id: WakeupId::from_raw(1),
            after: Duration::from_millis(2000),
            tag: "grace".to_string(),
        }]
    );
    assert_eq!(call(&mut s, "acquire a x 100"), Err(WARMING_UP.into()));
    assert_eq!(call(&mut s, "query a"), Err(WARMING_UP.into()));
    fire(&mut s, GRACE_TAG);
    assert_eq!(
        call(&mut s, "acquire a x 100"),
        Ok("granted a to x token 3.1".into())
    );
    assert_eq!(
        lines(Level::Info),
        [
            "term 3: leading; refusing requests for 2000 ms while earlier grants expire",
            "term 3: warmed up, granting locks",
        ]
    );
}

#[test]
fn grants_are_exclusive_renewable_and_fenced() {
    let mut s = serving();
    assert_eq!(
        call(&mut s, "acquire a x 100"),
        Ok("granted a to x token 3.1".into())
    );
    let expiry = fake::with(|n| n.scheduled[0].clone());
    assert_eq!(
        (expiry.after, expiry.tag.as_str()),
        (Duration::from_millis(100), "expire a 1")
    );
    assert_eq!(
        call(&mut s, "acquire a y 100"),
        Err("held by x until expiry".into())
    );
    assert_eq!(
        call(&mut s, "acquire a x 200"),
        Ok("granted a to x token 3.2".into())
    );
    assert_eq!(tags(), ["expire a 2"], "the renewal replaced the expiry");
    assert_eq!(
        call(&mut s, "query a"),
        Ok("held a by x token 3.2 ttl 200".into())
    );
    assert_eq!(call(&mut s, "query b"), Ok("free b".into()));
    assert_eq!(
        lines(Level::Debug),
        [
            "a: granted to x for 100 ms, token 3.1",
            "a: granted to x for 200 ms, token 3.2",
        ]
    );
}

#[test]
fn release_only_by_the_holder() {
    let mut s = serving();
    call(&mut s, "acquire a x 100").expect("granted");
    assert_eq!(call(&mut s, "release a y"), Err("held by x".into()));
    assert_eq!(call(&mut s, "release a x"), Ok("released a".into()));
    assert_eq!(scheduled(), 0, "expiry cancelled");
    assert_eq!(call(&mut s, "release a x"), Err("a is not held".into()));
    assert_eq!(
        call(&mut s, "acquire a y 100"),
        Ok("granted a to y token 3.2".into())
    );
    assert!(
        lines(Level::Debug).contains(&"a: released by x".to_string()),
        "{:?}",
        lines(Level::Debug)
    );
}

#[test]
fn expiry_frees_only_the_matching_grant() {
    let mut s = serving();
    call(&mut s, "acquire a x 100").expect("granted");
    call(&mut s, "acquire a x 100").expect("renewed");
    s.scheduled(WakeupId::from_raw(99), "expire a 1"); // the renewed grant's
    assert_eq!(
        call(&mut s, "query a"),
        Ok("held a by x token 3.2 ttl 100".into())
    );
    fire(&mut s, "expire a 2");
    assert_eq!(call(&mut s, "query a"), Ok("free a".into()));
    let debug = lines(Level::Debug);
    assert!(
        debug.contains(&"ignoring wake-up 99 \"expire a 1\": no longer current".to_string()),
        "{debug:?}"
    );
    assert!(
        debug.contains(&"a: token 3.2 expired".to_string()),
        "{debug:?}"
    );
}

#[test]
fn ttls_are_bounded() {
    let mut s = serving();
    for request in ["acquire a x 0", "acquire a x 60001"] {
        let error = call(&mut s, request).expect_err("refused");
        assert!(
            error.starts_with("TTL_MS: must be between 1 and 60000"),
            "{error}"
        );
    }
    assert!(call(&mut s, "acquire a x 60000").is_ok());
    assert!(call(&mut s, "lock a").expect_err("bad").contains("usage"));
}

#[test]
fn stepping_down_forgets_everything_and_the_next_term_starts_over() {
    let mut s = serving();
    call(&mut s, "acquire a x 100").expect("granted");
    fake::with(|n| n.follow(Some("n2"), 3));
    s.become_follower();
    assert_eq!(scheduled(), 0, "expiry cancelled");
    assert_eq!(
        call(&mut s, "query a"),
        Err("not leader; leader is n2".into())
    );

    fake::with(|n| n.lead(5));
    s.become_leader(5);
    fire(&mut s, GRACE_TAG);
    assert_eq!(call(&mut s, "query a"), Ok("free a".into()));
    assert_eq!(
        call(&mut s, "acquire a y 100"),
        Ok("granted a to y token 5.1".into())
    );
}

#[test]
fn a_fresh_instance_on_a_leader_warms_up() {
    let mut s = following();
    fake::with(|n| n.lead(4));
    s.start();
    assert_eq!(tags(), ["grace"]);
    s.become_leader(4); // re-delivered: no second warm-up
    assert_eq!(tags(), ["grace"]);
    // A call in a term this instance never heard of starts it too.
    fake::with(|n| n.lead(6));
    assert_eq!(call(&mut s, "query a"), Err(WARMING_UP.into()));
    assert_eq!(scheduled(), 1);
    fire(&mut s, GRACE_TAG);
    assert_eq!(
        call(&mut s, "acquire a x 10"),
        Ok("granted a to x token 6.1".into())
    );
}

#[test]
fn zero_grace_serves_at_once() {
    fake::reset();
    fake::with(|n| n.lead(2));
    let config = Config {
        grace_ms: 0,
        ..Config::default()
    };
    let mut s = LockService::new(config);
    s.become_leader(2);
    assert_eq!(scheduled(), 0, "no warm-up to wait for");
    assert_eq!(
        call(&mut s, "acquire a x 10"),
        Ok("granted a to x token 2.1".into())
    );
}

#[test]
fn hot_swap_keeps_the_table_and_its_expiries() {
    let mut old = serving();
    call(&mut old, "acquire a x 100").expect("granted");
    let snapshot = old.snapshot();

    let mut new = LockService::new(Config::default());
    new.start(); // leading: arms its own warm-up
    new.restore(&snapshot).expect("restores");
    assert_eq!(tags(), ["expire a 1"], "own warm-up cancelled");
    assert_eq!(
        call(&mut new, "acquire a y 100"),
        Err("held by x until expiry".into())
    );
    assert_eq!(
        call(&mut new, "acquire b y 100"),
        Ok("granted b to y token 3.2".into())
    );
    fire(&mut new, "expire a 1");
    assert_eq!(call(&mut new, "query a"), Ok("free a".into()));
    assert_eq!(
        lines(Level::Info).last().map(String::as_str),
        Some("term 3: restored 1 lock(s), serving")
    );
}

#[test]
fn a_stale_snapshot_is_dropped() {
    let mut old = serving();
    call(&mut old, "acquire a x 100").expect("granted");
    let snapshot = old.snapshot();

    fake::with(|n| n.lead(4)); // re-elected in a later term before the swap
    let mut new = LockService::new(Config::default());
    new.start();
    new.restore(&snapshot).expect("restores");
    assert_eq!(tags(), ["grace"], "the old expiry is cancelled");
    assert_eq!(call(&mut new, "query a"), Err(WARMING_UP.into()));
    assert_eq!(
        lines(Level::Info).last().map(String::as_str),
        Some("dropped the snapshot of term 3: no longer leading it")
    );
}

#[test]
fn restore_of_garbage_changes_nothing() {
    let mut s = serving();
    call(&mut s, "acquire a x 100").expect("granted");
    assert!(s.restore(b"junk").is_err());
    assert_eq!(
        call(&mut s, "query a"),
        Ok("held a by x token 3.1 ttl 100".into())
    );
    assert_eq!(tags(), ["expire a 1"], "the expiry is still pending");
}

#[test]
fn inspect_lists_the_locks() {
    let mut s = serving();
    call(&mut s, "acquire a x 100").expect("granted");
    let pairs = s.inspect();
    assert_eq!(pairs[0], ("phase".into(), "serving".into()));
    assert_eq!(pairs[1], ("term".into(), "3".into()));
    assert_eq!(pairs[4], ("locks".into(), "1".into()));
    assert_eq!(pairs[5], ("lock a".into(), "x token 3.1 ttl 100".into()));
}
