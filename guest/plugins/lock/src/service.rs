//! The lock service: leadership phases, requests, expiries, hot swaps.
//!
//! Only the leader answers. A newly elected leader cannot know what earlier
//! leaders granted, so it starts from an empty table and refuses requests
//! for `grace-ms`, by which time every earlier grant (of a TTL up to
//! `grace-ms`) has run out. Each grant carries the fencing token
//! `TERM.SEQ`: the term it was granted in, then its number within the term.

use crate::config::Config;
use crate::host::{Host, Level};
use crate::request::{GRACE_TAG, Request, Wakeup, expire_tag};
use crate::snapshot;
use crate::table::{Grant, Phase, Table};

/// The refusal while a new leader waits for earlier grants to expire.
pub const WARMING_UP: &str = "leader warming up";

/// A lock service fenced by the election term.
#[derive(Debug)]
pub struct LockService {
    /// The validated configuration.
    config: Config,
    /// Phase, SEQ counter and grants.
    table: Table,
}

impl LockService {
    /// A service that does not lead and holds no grants.
    pub fn new(config: Config) -> LockService {
        LockService {
            config,
            table: Table::default(),
        }
    }

    /// Called after `init`. A fresh instance on a node that already leads
    /// (the host replaced a trapped one, losing the table) warms up at once.
    pub fn start(&mut self, host: &mut impl Host) {
        if host.is_leader() {
            self.lead(host, host.current_term());
        }
    }

    /// The node won the election for `term`: start warming up, unless this
    /// instance already leads that term.
    pub fn become_leader(&mut self, host: &mut impl Host, term: u64) {
        if self.table.phase.term() != Some(term) {
            self.lead(host, term);
        }
    }

    /// The node no longer leads: forget every grant.
    pub fn become_follower(&mut self, host: &mut impl Host) {
        self.clear(host);
    }

    /// Answers a client request, or refuses it with the reason.
    pub fn call(&mut self, host: &mut impl Host, request: &[u8]) -> Result<Vec<u8>, String> {
        if !host.is_leader() {
            return Err(match host.leader() {
                Some(leader) => format!("not leader; leader is {leader}"),
                None => "not leader; no leader known".to_string(),
            });
        }
        let term = host.current_term();
        if self.table.phase.term() != Some(term) {
            // No `on-become-leader` for this term reached this instance.
            self.lead(host, term);
        }
        let request = Request::parse(request)?;
        let Phase::Serving { term } = self.table.phase else {
            return Err(WARMING_UP.to_string());
        };
        let reply = match request {
            Request::Acquire {
                name,
                holder,
                ttl_ms,
            } => self.acquire(host, term, name, holder, ttl_ms)?,
            Request::Release { name, holder } => self.release(host, name, holder)?,
            Request::Query { name } => match self.table.locks.get(name) {
                Some(grant) => format!(
                    "held {name} by {} token {term}.{} ttl {}",
                    grant.holder, grant.seq, grant.ttl_ms
                ),
                None => format!("free {name}"),
            },
        };
        Ok(reply.into_bytes())
    }

    /// A wake-up is due: the end of the warm-up, or a grant's expiry.
    /// Wake-ups that no longer match the table are ignored.
    pub fn scheduled(&mut self, host: &mut impl Host, id: u64, tag: &str) {
        match (Wakeup::parse(tag), self.table.phase) {
            (Some(Wakeup::Grace), Phase::WarmingUp { term, grace }) if grace == id => {
                self.table.phase = Phase::Serving { term };
                host.log(
                    Level::Info,
                    &format!("term {term}: warmed up, granting locks"),
                );
            }
            (Some(Wakeup::Expire { name, seq }), Phase::Serving { term })
                if self.table.locks.get(name).is_some_and(|g| g.seq == seq) =>
            {
                self.table.locks.remove(name);
                host.log(Level::Debug, &format!("{name}: token {term}.{seq} expired"));
            }
            _ => host.log(
                Level::Debug,
                &format!("ignoring wake-up {id} {tag:?}: no longer current"),
            ),
        }
    }

    /// State for operators: phase, term, settings, then one entry per lock.
    pub fn inspect(&self) -> Vec<(String, String)> {
        let term = self
            .table
            .phase
            .term()
            .map_or_else(|| "none".to_string(), |term| term.to_string());
        let mut pairs = vec![
            ("phase".to_string(), self.table.phase.name().to_string()),
            ("term".to_string(), term.clone()),
            ("grace-ms".to_string(), self.config.grace_ms.to_string()),
            ("max-ttl-ms".to_string(), self.config.max_ttl_ms.to_string()),
            ("locks".to_string(), self.table.locks.len().to_string()),
        ];
        for (name, grant) in &self.table.locks {
            pairs.push((
                format!("lock {name}"),
                format!(
                    "{} token {term}.{} ttl {}",
                    grant.holder, grant.seq, grant.ttl_ms
                ),
            ));
        }
        pairs
    }

    /// The table to hand to the next version.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(&self.table)
    }

    /// Takes over a previous version's table if this node still leads the
    /// same term; its wake-ups come with the swap and replace any this
    /// instance armed in `start`. Otherwise the snapshot is stale: its
    /// wake-ups are cancelled and this instance keeps its own state.
    pub fn restore(&mut self, host: &mut impl Host, snapshot: &[u8]) -> Result<(), String> {
        let table = snapshot::decode(snapshot)?;
        let leading = host.is_leader().then(|| host.current_term());
        match table.phase.term() {
            Some(term) if Some(term) == leading => {
                self.clear(host);
                host.log(
                    Level::Info,
                    &format!(
                        "term {term}: restored {} lock(s), {}",
                        table.locks.len(),
                        table.phase.name()
                    ),
                );
                self.table = table;
            }
            stale => {
                for id in table.wakeups() {
                    host.cancel_schedule(id);
                }
                if let Some(term) = stale {
                    host.log(
                        Level::Info,
                        &format!("dropped the snapshot of term {term}: no longer leading it"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Grants (or renews) `name` to `holder` for `ttl_ms`.
    fn acquire(
        &mut self,
        host: &mut impl Host,
        term: u64,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> Result<String, String> {
        let max = self.config.max_ttl_ms;
        if ttl_ms == 0 || ttl_ms > max {
            return Err(format!("TTL_MS: must be between 1 and {max}, got {ttl_ms}"));
        }
        if let Some(grant) = self.table.locks.get(name) {
            if grant.holder != holder {
                return Err(format!("held by {} until expiry", grant.holder));
            }
            host.cancel_schedule(grant.wakeup);
        }
        self.table.seq += 1;
        let seq = self.table.seq;
        let wakeup = host.schedule(ttl_ms, &expire_tag(name, seq));
        let grant = Grant {
            holder: holder.to_string(),
            seq,
            ttl_ms,
            wakeup,
        };
        self.table.locks.insert(name.to_string(), grant);
        host.log(
            Level::Debug,
            &format!("{name}: granted to {holder} for {ttl_ms} ms, token {term}.{seq}"),
        );
        Ok(format!("granted {name} to {holder} token {term}.{seq}"))
    }

    /// Frees `name` if `holder` holds it.
    fn release(
        &mut self,
        host: &mut impl Host,
        name: &str,
        holder: &str,
    ) -> Result<String, String> {
        match self.table.locks.get(name) {
            Some(grant) if grant.holder == holder => {
                host.cancel_schedule(grant.wakeup);
                self.table.locks.remove(name);
                host.log(Level::Debug, &format!("{name}: released by {holder}"));
                Ok(format!("released {name}"))
            }
            Some(grant) => Err(format!("held by {}", grant.holder)),
            None => Err(format!("{name} is not held")),
        }
    }

    /// Starts leading `term` from an empty table: warming up for
    /// `grace-ms`, or serving at once when it is 0.
    fn lead(&mut self, host: &mut impl Host, term: u64) {
        self.clear(host);
        let grace_ms = self.config.grace_ms;
        self.table.phase = if grace_ms == 0 {
            Phase::Serving { term }
        } else {
            let grace = host.schedule(grace_ms, GRACE_TAG);
            Phase::WarmingUp { term, grace }
        };
        host.log(
            Level::Info,
            &format!("term {term}: leading; refusing requests for {grace_ms} ms while earlier grants expire"),
        );
    }

    /// Forgets every grant and stops leading, cancelling the wake-ups.
    fn clear(&mut self, host: &mut impl Host) {
        for id in self.table.wakeups() {
            host.cancel_schedule(id);
        }
        self.table = Table::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node whose leadership the test sets, recording what the plugin
    /// asked of it.
    #[derive(Default)]
    struct FakeHost {
        leader: Option<String>,
        term: u64,
        next_id: u64,
        /// Scheduled and not cancelled: (id, after_ms, tag).
        scheduled: Vec<(u64, u64, String)>,
    }

    impl Host for FakeHost {
        fn is_leader(&self) -> bool {
            self.leader.as_deref() == Some("n1")
        }
        fn leader(&self) -> Option<String> {
            self.leader.clone()
        }
        fn current_term(&self) -> u64 {
            self.term
        }
        fn schedule(&mut self, after_ms: u64, tag: &str) -> u64 {
            self.next_id += 1;
            self.scheduled
                .push((self.next_id, after_ms, tag.to_string()));
            self.next_id
        }
        fn cancel_schedule(&mut self, id: u64) {
            self.scheduled.retain(|(i, _, _)| *i != id);
        }
        fn log(&mut self, _level: Level, _message: &str) {}
    }

    impl FakeHost {
        /// Fires the pending wake-up tagged `tag` into `service`.
        fn fire(&mut self, service: &mut LockService, tag: &str) {
            let at = self.scheduled.iter().position(|(_, _, t)| t == tag);
            let (id, _, tag) = self.scheduled.remove(at.expect("scheduled"));
            service.scheduled(self, id, &tag);
        }

        fn tags(&self) -> Vec<&str> {
            self.scheduled.iter().map(|(_, _, t)| t.as_str()).collect()
        }
    }

    fn call(
        service: &mut LockService,
        host: &mut FakeHost,
        request: &str,
    ) -> Result<String, String> {
        service
            .call(host, request.as_bytes())
            .map(|reply| String::from_utf8(reply).expect("UTF-8 reply"))
    }

    /// A service leading term 3, warmed up.
    fn serving(host: &mut FakeHost) -> LockService {
        host.leader = Some("n1".to_string());
        host.term = 3;
        let mut service = LockService::new(Config::default());
        service.become_leader(host, 3);
        host.fire(&mut service, GRACE_TAG);
        service
    }

    #[test]
    fn followers_point_at_the_leader() {
        let mut host = FakeHost::default();
        let mut s = LockService::new(Config::default());
        assert_eq!(
            call(&mut s, &mut host, "query a"),
            Err("not leader; no leader known".into())
        );
        host.leader = Some("n2".to_string());
        assert_eq!(
            call(&mut s, &mut host, "query a"),
            Err("not leader; leader is n2".into())
        );
    }

    #[test]
    fn a_new_leader_warms_up_first() {
        let mut host = FakeHost {
            leader: Some("n1".to_string()),
            term: 3,
            ..FakeHost::default()
        };
        let mut s = LockService::new(Config::default());
        s.become_leader(&mut host, 3);
        assert_eq!(host.scheduled, [(1, 2000, "grace".to_string())]);
        assert_eq!(
            call(&mut s, &mut host, "acquire a x 100"),
            Err(WARMING_UP.into())
        );
        assert_eq!(call(&mut s, &mut host, "query a"), Err(WARMING_UP.into()));
        host.fire(&mut s, GRACE_TAG);
        assert_eq!(
            call(&mut s, &mut host, "acquire a x 100"),
            Ok("granted a to x token 3.1".into())
        );
    }

    #[test]
    fn grants_are_exclusive_renewable_and_fenced() {
        let mut host = FakeHost::default();
        let mut s = serving(&mut host);
        assert_eq!(
            call(&mut s, &mut host, "acquire a x 100"),
            Ok("granted a to x token 3.1".into())
        );
        assert_eq!(
            call(&mut s, &mut host, "acquire a y 100"),
            Err("held by x until expiry".into())
        );
        assert_eq!(
            call(&mut s, &mut host, "acquire a x 200"),
            Ok("granted a to x token 3.2".into())
        );
        assert_eq!(
            host.tags(),
            ["expire a 2"],
            "the renewal replaced the expiry"
        );
        assert_eq!(
            call(&mut s, &mut host, "query a"),
            Ok("held a by x token 3.2 ttl 200".into())
        );
        assert_eq!(call(&mut s, &mut host, "query b"), Ok("free b".into()));
    }

    #[test]
    fn release_only_by_the_holder() {
        let mut host = FakeHost::default();
        let mut s = serving(&mut host);
        call(&mut s, &mut host, "acquire a x 100").expect("granted");
        assert_eq!(
            call(&mut s, &mut host, "release a y"),
            Err("held by x".into())
        );
        assert_eq!(
            call(&mut s, &mut host, "release a x"),
            Ok("released a".into())
        );
        assert!(host.scheduled.is_empty(), "expiry cancelled");
        assert_eq!(
            call(&mut s, &mut host, "release a x"),
            Err("a is not held".into())
        );
        assert_eq!(
            call(&mut s, &mut host, "acquire a y 100"),
            Ok("granted a to y token 3.2".into())
        );
    }

    #[test]
    fn expiry_frees_only_the_matching_grant() {
        let mut host = FakeHost::default();
        let mut s = serving(&mut host);
        call(&mut s, &mut host, "acquire a x 100").expect("granted");
        call(&mut s, &mut host, "acquire a x 100").expect("renewed");
        s.scheduled(&mut host, 99, "expire a 1"); // the renewed grant's
        assert_eq!(
            call(&mut s, &mut host, "query a"),
            Ok("held a by x token 3.2 ttl 100".into())
        );
        host.fire(&mut s, "expire a 2");
        assert_eq!(call(&mut s, &mut host, "query a"), Ok("free a".into()));
    }

    #[test]
    fn ttls_are_bounded() {
        let mut host = FakeHost::default();
        let mut s = serving(&mut host);
        for request in ["acquire a x 0", "acquire a x 60001"] {
            let error = call(&mut s, &mut host, request).expect_err("refused");
            assert!(
                error.starts_with("TTL_MS: must be between 1 and 60000"),
                "{error}"
            );
        }
        assert!(call(&mut s, &mut host, "acquire a x 60000").is_ok());
        assert!(
            call(&mut s, &mut host, "lock a")
                .expect_err("bad")
                .contains("usage")
        );
    }

    #[test]
    fn stepping_down_forgets_everything_and_the_next_term_starts_over() {
        let mut host = FakeHost::default();
        let mut s = serving(&mut host);
        call(&mut s, &mut host, "acquire a x 100").expect("granted");
        host.leader = Some("n2".to_string());
        s.become_follower(&mut host);
        assert!(host.scheduled.is_empty(), "expiry cancelled");
        assert_eq!(
            call(&mut s, &mut host, "query a"),
            Err("not leader; leader is n2".into())
        );

        host.leader = Some("n1".to_string());
        host.term = 5;
        s.become_leader(&mut host, 5);
        host.fire(&mut s, GRACE_TAG);
        assert_eq!(call(&mut s, &mut host, "query a"), Ok("free a".into()));
        assert_eq!(
            call(&mut s, &mut host, "acquire a y 100"),
            Ok("granted a to y token 5.1".into())
        );
    }

    #[test]
    fn a_fresh_instance_on_a_leader_warms_up() {
        let mut host = FakeHost {
            leader: Some("n1".to_string()),
            term: 4,
            ..FakeHost::default()
        };
        let mut s = LockService::new(Config::default());
        s.start(&mut host);
        assert_eq!(host.tags(), ["grace"]);
        s.become_leader(&mut host, 4); // re-delivered: no second warm-up
        assert_eq!(host.tags(), ["grace"]);
        // A call in a term this instance never heard of starts it too.
        host.term = 6;
        assert_eq!(call(&mut s, &mut host, "query a"), Err(WARMING_UP.into()));
        assert_eq!(host.scheduled.len(), 1);
        host.fire(&mut s, GRACE_TAG);
        assert_eq!(
            call(&mut s, &mut host, "acquire a x 10"),
            Ok("granted a to x token 6.1".into())
        );
    }

    #[test]
    fn zero_grace_serves_at_once() {
        let mut host = FakeHost {
            leader: Some("n1".to_string()),
            term: 2,
            ..FakeHost::default()
        };
        let config = Config {
            grace_ms: 0,
            ..Config::default()
        };
        let mut s = LockService::new(config);
        s.become_leader(&mut host, 2);
        assert_eq!(
            call(&mut s, &mut host, "acquire a x 10"),
            Ok("granted a to x token 2.1".into())
        );
    }

    #[test]
    fn hot_swap_keeps_the_table_and_its_expiries() {
        let mut host = FakeHost::default();
        let mut old = serving(&mut host);
        call(&mut old, &mut host, "acquire a x 100").expect("granted");
        let snapshot = old.snapshot();

        let mut new = LockService::new(Config::default());
        new.start(&mut host); // leading: arms its own warm-up
        new.restore(&mut host, &snapshot).expect("restores");
        assert_eq!(host.tags(), ["expire a 1"], "own warm-up cancelled");
        assert_eq!(
            call(&mut new, &mut host, "acquire a y 100"),
            Err("held by x until expiry".into())
        );
        assert_eq!(
            call(&mut new, &mut host, "acquire b y 100"),
            Ok("granted b to y token 3.2".into())
        );
        host.fire(&mut new, "expire a 1");
        assert_eq!(call(&mut new, &mut host, "query a"), Ok("free a".into()));
    }

    #[test]
    fn a_stale_snapshot_is_dropped() {
        let mut host = FakeHost::default();
        let mut old = serving(&mut host);
        call(&mut old, &mut host, "acquire a x 100").expect("granted");
        let snapshot = old.snapshot();

        host.term = 4; // re-elected in a later term before the swap
        let mut new = LockService::new(Config::default());
        new.start(&mut host);
        new.restore(&mut host, &snapshot).expect("restores");
        assert_eq!(host.tags(), ["grace"], "the old expiry is cancelled");
        assert_eq!(call(&mut new, &mut host, "query a"), Err(WARMING_UP.into()));
    }

    #[test]
    fn restore_of_garbage_changes_nothing() {
        let mut host = FakeHost::default();
        let mut s = serving(&mut host);
        call(&mut s, &mut host, "acquire a x 100").expect("granted");
        assert!(s.restore(&mut host, b"junk").is_err());
        assert_eq!(
            call(&mut s, &mut host, "query a"),
            Ok("held a by x token 3.1 ttl 100".into())
        );
    }

    #[test]
    fn inspect_lists_the_locks() {
        let mut host = FakeHost::default();
        let mut s = serving(&mut host);
        call(&mut s, &mut host, "acquire a x 100").expect("granted");
        let pairs = s.inspect();
        assert_eq!(pairs[0], ("phase".into(), "serving".into()));
        assert_eq!(pairs[1], ("term".into(), "3".into()));
        assert_eq!(pairs[4], ("locks".into(), "1".into()));
        assert_eq!(pairs[5], ("lock a".into(), "x token 3.1 ttl 100".into()));
    }
}
