//! The lock service: leadership phases, requests, expiries, hot swaps.
//!
//! Only the leader answers. A newly elected leader cannot know what earlier
//! leaders granted, so it starts from an empty table and refuses requests
//! for `grace-ms`, by which time every earlier grant (of a TTL up to
//! `grace-ms`) has run out. Each grant carries the fencing token
//! `TERM.SEQ`: the term it was granted in, then its number within the term.

use std::time::Duration;

use tenure_sdk::{Level, Term, WakeupId, node};

use crate::config::Config;
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
    pub fn start(&mut self) {
        if node::is_leader() {
            self.lead(node::term());
        }
    }

    /// The node won the election for `term`: start warming up, unless this
    /// instance already leads that term.
    pub fn become_leader(&mut self, term: Term) {
        if self.table.phase.term() != Some(term) {
            self.lead(term);
        }
    }

    /// The node no longer leads: forget every grant.
    pub fn become_follower(&mut self) {
        self.clear();
    }

    /// Answers a client request, or refuses it with the reason.
    pub fn call(&mut self, request: &[u8]) -> Result<Vec<u8>, String> {
        if !node::is_leader() {
            return Err(match node::leader() {
                Some(leader) => format!("not leader; leader is {leader}"),
                None => "not leader; no leader known".to_string(),
            });
        }
        let term = node::term();
        if self.table.phase.term() != Some(term) {
            // No `on-become-leader` for this term reached this instance.
            self.lead(term);
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
            } => self.acquire(term, name, holder, ttl_ms)?,
            Request::Release { name, holder } => self.release(name, holder)?,
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
    pub fn scheduled(&mut self, id: WakeupId, tag: &str) {
        match (Wakeup::parse(tag), self.table.phase) {
            (Some(Wakeup::Grace), Phase::WarmingUp { term, grace }) if grace == id => {
                self.table.phase = Phase::Serving { term };
                node::log(
                    Level::Info,
                    &format!("term {term}: warmed up, granting locks"),
                );
            }
            (Some(Wakeup::Expire { name, seq }), Phase::Serving { term })
                if self.table.locks.get(name).is_some_and(|g| g.seq == seq) =>
            {
                self.table.locks.remove(name);
                node::log(Level::Debug, &format!("{name}: token {term}.{seq} expired"));
            }
            _ => node::log(
                Level::Debug,
                &format!(
                    "ignoring wake-up {} {tag:?}: no longer current",
                    id.as_raw()
                ),
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
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        let table = snapshot::decode(snapshot)?;
        let leading = node::is_leader().then(node::term);
        match table.phase.term() {
            Some(term) if Some(term) == leading => {
                self.clear();
                node::log(
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
                    node::cancel(id);
                }
                if let Some(term) = stale {
                    node::log(
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
        term: Term,
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
            node::cancel(grant.wakeup);
        }
        self.table.seq += 1;
        let seq = self.table.seq;
        let wakeup = node::schedule(Duration::from_millis(ttl_ms), &expire_tag(name, seq));
        let grant = Grant {
            holder: holder.to_string(),
            seq,
            ttl_ms,
            wakeup,
        };
        self.table.locks.insert(name.to_string(), grant);
        node::log(
            Level::Debug,
            &format!("{name}: granted to {holder} for {ttl_ms} ms, token {term}.{seq}"),
        );
        Ok(format!("granted {name} to {holder} token {term}.{seq}"))
    }

    /// Frees `name` if `holder` holds it.
    fn release(&mut self, name: &str, holder: &str) -> Result<String, String> {
        match self.table.locks.get(name) {
            Some(grant) if grant.holder == holder => {
                node::cancel(grant.wakeup);
                self.table.locks.remove(name);
                node::log(Level::Debug, &format!("{name}: released by {holder}"));
                Ok(format!("released {name}"))
            }
            Some(grant) => Err(format!("held by {}", grant.holder)),
            None => Err(format!("{name} is not held")),
        }
    }

    /// Starts leading `term` from an empty table: warming up for
    /// `grace-ms`, or serving at once when it is 0.
    fn lead(&mut self, term: Term) {
        self.clear();
        let grace_ms = self.config.grace_ms;
        self.table.phase = if grace_ms == 0 {
            Phase::Serving { term }
        } else {
            let grace = node::schedule(Duration::from_millis(grace_ms), GRACE_TAG);
            Phase::WarmingUp { term, grace }
        };
        node::log(
            Level::Info,
            &format!(
                "term {term}: leading; refusing requests for {grace_ms} ms while earlier grants expire"
            ),
        );
    }

    /// Forgets every grant and stops leading, cancelling the wake-ups.
    fn clear(&mut self) {
        for id in self.table.wakeups() {
            node::cancel(id);
        }
        self.table = Table::default();
    }
}

#[cfg(test)]
mod tests;
