//! Safety invariants, checked on every event of a simulated run.
//!
//! - **Election safety**: at most one leader per term across every node of
//!   a cluster, whatever their views of the membership (views that drift
//!   apart are exactly how two leaders happen). The one exception is two
//!   nodes that each lead a cluster of one by configuration — say two
//!   empty-bootstrap nodes before either `join`s: they counted no one but
//!   themselves, and the README says not to run leader work on a node
//!   that is about to join.
//! - **Monotonic terms**: a node's term never decreases, across restarts
//!   too (the term is persisted).
//! - **One vote per term**: what a node persists never changes its vote
//!   within a term, nor takes its term back, across crashes and restarts.
//! - **Leases**: no node believes it holds a lease (its lease expiry is
//!   later than its own clock) while any node of its cluster has been
//!   elected leader of a later term. Checked with each
//!   node's clock drifting from the others'.
//! - **Plugins lead only what their node won**: a behaviour plugin that
//!   takes up leadership of a term (`on-become-leader` returned Ok) runs
//!   on the node elected in that term, while that node still leads it —
//!   after a hot swap, a trap and a respawn too.

use std::collections::BTreeMap;

use crate::bindings::types::{NodeStatus, PersistedState, Role};

/// One broken invariant, with when and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Virtual time of the event that broke it.
    pub at_ns: u64,
    /// What went wrong, naming nodes and terms.
    pub what: String,
}

#[derive(Clone, Debug)]
struct LeaderRecord {
    node: usize,
    id: String,
    members: Vec<String>,
}

/// Watches a run's events and records every [`Violation`].
#[derive(Debug, Default)]
pub struct Checker {
    /// Leaders seen, by (cluster, term).
    leaders: BTreeMap<(String, u64), Vec<LeaderRecord>>,
    /// The latest term each node reported, by node index.
    terms: BTreeMap<usize, u64>,
    /// The latest (term, vote) each node persisted, by node index.
    votes: BTreeMap<usize, (u64, Option<String>)>,
    /// Every vote each node id ever cast, by (cluster, id, term): survives
    /// a lost disk, so a node that forgot it voted and votes again for
    /// someone else in that term is caught however it came to forget.
    ballots: BTreeMap<(String, String, u64), String>,
    /// Every vote each node id ever *sent*, by (cluster, id, term): what a
    /// candidate counts, whether or not the voter saved it first.
    grants: BTreeMap<(String, String, u64), String>,
    violations: Vec<Violation>,
    /// How many times a plugin took up leadership ([`Checker::plugin_led`]).
    plugin_leaderships: usize,
}

impl Checker {
    /// Records a node's term when it starts or restarts; a restarted node
    /// must not be behind the term it had before.
    pub fn started(&mut self, at_ns: u64, node: usize, status: &NodeStatus) {
        if let Some(&before) = self.terms.get(&node)
            && status.term < before
        {
            self.violate(
                at_ns,
                format!(
                    "{} restarted at term {} after reaching term {before}",
                    status.node_id, status.term
                ),
            );
        }
        self.terms.insert(node, status.term);
    }

    /// `node` crashed while quiet (a save had failed; see
    /// `node::durability`): the terms it reached after its last save were
    /// never spoken in — it withheld every protocol message — so it owes
    /// nobody those terms and may restart from the one it saved.
    pub fn unsaved_terms_lost(&mut self, node: usize, saved_term: u64) {
        self.terms.insert(node, saved_term);
    }

    /// `node`'s disk was lost (a wiped data directory): it may start again
    /// from term 0 without that being a violation in itself. What it must
    /// not do is vote again in a term it voted in before (see
    /// [`Checker::ballot`]).
    pub fn disk_lost(&mut self, node: usize) {
        self.terms.remove(&node);
        self.votes.remove(&node);
    }

    /// Checks a vote `id` of `cluster` sent to `candidate` for `term`: one
    /// candidate per term, however the voter came to forget an earlier
    /// one (a lost disk, or a vote sent before it was saved — which the
    /// node's durability policy must never do).
    pub fn vote_sent(&mut self, at_ns: u64, cluster: &str, id: &str, term: u64, candidate: &str) {
        let key = (cluster.to_string(), id.to_string(), term);
        match self.grants.get(&key) {
            Some(earlier) if earlier != candidate => {
                let what =
                    format!("{id} sent votes to {earlier} and to {candidate} in term {term}");
                self.violate(at_ns, what);
            }
            Some(_) => {}
            None => {
                self.grants.insert(key, candidate.to_string());
            }
        }
    }

    /// Checks a vote persisted by `id` of `cluster`: one candidate per
    /// term, for the node id, whatever happened to its disk.
    pub fn ballot(&mut self, at_ns: u64, cluster: &str, id: &str, state: &PersistedState) {
        let Some(vote) = &state.voted_for else {
            return;
        };
        let key = (cluster.to_string(), id.to_string(), state.term);
        match self.ballots.get(&key) {
            Some(earlier) if earlier != vote => {
                let what = format!(
                    "{id} voted for {earlier} and then for {vote} in term {}",
                    state.term
                );
                self.violate(at_ns, what);
            }
            Some(_) => {}
            None => {
                self.ballots.insert(key, vote.clone());
            }
        }
    }

    /// Checks a `term-changed(old, new)` event.
    pub fn term_changed(&mut self, at_ns: u64, node: usize, id: &str, old: u64, new: u64) {
        let known = self.terms.get(&node).copied().unwrap_or(0);
        if new <= old || old != known {
            self.violate(
                at_ns,
                format!("{id} changed term {old} -> {new}, but its term was {known}"),
            );
        }
        self.terms.insert(node, new.max(known));
    }

    /// Checks a `became-leader(term)` event against every other leader of
    /// that term in the same cluster. `status` is the new leader's view
    /// right after the event.
    pub fn became_leader(&mut self, at_ns: u64, node: usize, term: u64, status: &NodeStatus) {
        if status.term != term {
            self.violate(
                at_ns,
                format!(
                    "{} became leader of term {term} while at term {}",
                    status.node_id, status.term
                ),
            );
        }
        let record = LeaderRecord {
            node,
            id: status.node_id.clone(),
            members: status.members.clone(),
        };
        let key = (status.cluster_id.clone(), term);
        let others = self.leaders.entry(key).or_default();
        let mut clashes = Vec::new();
        // Across every node of the cluster, whatever their views of the
        // membership: a Jepsen-style checker sees two leaders, not views.
        // The one exception: two nodes that each lead a cluster of one by
        // configuration (an empty bootstrap, before `join`).
        let alone = |r: &LeaderRecord| r.members.len() == 1 && r.members[0] == r.id;
        for other in others.iter().filter(|o| o.node != node) {
            if !(alone(&record) && alone(other)) {
                clashes.push(other.id.clone());
            }
        }
        others.push(record);
        for other in clashes {
            self.violate(
                at_ns,
                format!(
                    "two leaders in term {term} of cluster {}: {} and {other}",
                    status.cluster_id, status.node_id
                ),
            );
        }
    }

    /// Checks a persisted state against the node's previous one: the term
    /// never goes back, and a vote cast in a term is never changed.
    pub fn persisted(&mut self, at_ns: u64, node: usize, id: &str, state: &PersistedState) {
        if let Some((term, vote)) = self.votes.get(&node).cloned() {
            if state.term < term {
                self.violate(
                    at_ns,
                    format!("{id} persisted term {} after term {term}", state.term),
                );
            } else if state.term == term && vote.is_some() && state.voted_for != vote {
                self.violate(
                    at_ns,
                    format!(
                        "{id} voted twice in term {term}: {vote:?} then {:?}",
                        state.voted_for
                    ),
                );
            }
        }
        self.votes
            .insert(node, (state.term, state.voted_for.clone()));
    }

    /// Checks a leader's lease at virtual time `at_ns`, when its own clock
    /// reads `local_ns`: a lease still running while a leader of a later
    /// term (anywhere in the cluster) was elected is a violation.
    pub fn lease(&mut self, at_ns: u64, local_ns: u64, status: &NodeStatus) {
        let Some(expires) = status.lease_expires_ns else {
            return;
        };
        if expires <= local_ns {
            return;
        }
        let later = self
            .leaders
            .range((status.cluster_id.clone(), status.term + 1)..)
            .take_while(|((cluster, _), _)| *cluster == status.cluster_id)
            .flat_map(|((_, term), records)| records.iter().map(move |r| (*term, r)))
            .next();
        if let Some((term, record)) = later {
            let what = format!(
                "{} holds a lease at term {} for {} ms more, but {} was elected in term {term}",
                status.node_id,
                status.term,
                (expires - local_ns) / 1_000_000,
                record.id
            );
            self.violate(at_ns, what);
        }
    }

    /// Checks that a plugin took up leadership of `term` on a node that
    /// won that term and still leads it: `status` is the node's view at
    /// that moment. A plugin that runs leader work for a term its node
    /// lost, or after its node stepped down, is what leader election is
    /// there to prevent.
    pub fn plugin_led(&mut self, at_ns: u64, node: usize, term: u64, status: &NodeStatus) {
        self.plugin_leaderships += 1;
        let key = (status.cluster_id.clone(), term);
        let won = self
            .leaders
            .get(&key)
            .is_some_and(|records| records.iter().any(|r| r.node == node));
        let leads = status.role == Role::Leader && status.term == term;
        if !won || !leads {
            let why = if won {
                let role = match status.role {
                    Role::Follower => "follower",
                    Role::Candidate => "candidate",
                    Role::Leader => "leader",
                };
                format!("while its node is a {role} of term {}", status.term)
            } else {
                "a term its node never won".to_string()
            };
            self.violate(
                at_ns,
                format!(
                    "the plugin of {} took up leadership of term {term}: {why}",
                    status.node_id
                ),
            );
        }
    }

    /// Records a violation found elsewhere (a trapped component, say).
    pub fn violate(&mut self, at_ns: u64, what: String) {
        tracing::debug!(at_ns, %what, "invariant violated");
        self.violations.push(Violation { at_ns, what });
    }

    /// Every violation so far, oldest first.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// How many times a plugin took up leadership, each checked.
    pub fn plugin_leaderships(&self) -> usize {
        self.plugin_leaderships
    }

    /// How many distinct (cluster, term) pairs had a leader.
    pub fn terms_with_leaders(&self) -> usize {
        self.leaders.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str, term: u64, members: &[&str]) -> NodeStatus {
        NodeStatus {
            node_id: id.into(),
            cluster_id: "c".into(),
            role: Role::Leader,
            term,
            leader: Some(id.into()),
            voted_for: Some(id.into()),
            members: members.iter().map(|m| m.to_string()).collect(),
            alive_peers: vec![],
            quorum: 2,
            ignored_messages: 0,
            lease_expires_ns: None,
            epoch: 0,
            data_id: 1,
            abstaining: false,
            confirmed: true,
        }
    }

    #[test]
    fn two_leaders_of_one_view_in_one_term_are_caught() {
        let mut c = Checker::default();
        c.became_leader(1, 0, 3, &status("a", 3, &["a", "b", "c"]));
        c.became_leader(2, 1, 3, &status("b", 3, &["a", "b", "c"]));
        assert_eq!(c.violations().len(), 1);
        assert!(c.violations()[0].what.contains("two leaders in term 3"));
    }

    #[test]
    fn two_leaders_of_one_term_are_caught_even_with_disjoint_views() {
        let mut c = Checker::default();
        c.became_leader(1, 0, 4, &status("a", 4, &["a", "b", "c"]));
        c.became_leader(2, 1, 4, &status("d", 4, &["d", "e", "f"]));
        assert_eq!(c.violations().len(), 1);
    }

    #[test]
    fn separately_formed_singletons_may_share_a_term() {
        let mut c = Checker::default();
        c.became_leader(1, 0, 1, &status("a", 1, &["a"]));
        c.became_leader(2, 1, 1, &status("b", 1, &["b"]));
        assert!(c.violations().is_empty());
    }

    #[test]
    fn the_same_node_re_reporting_is_not_a_clash() {
        let mut c = Checker::default();
        c.became_leader(1, 0, 1, &status("a", 1, &["a", "b"]));
        c.became_leader(2, 0, 1, &status("a", 1, &["a", "b"]));
        assert!(c.violations().is_empty());
    }

    #[test]
    fn a_plugin_leads_only_a_term_its_node_won_and_still_leads() {
        let mut c = Checker::default();
        let members = ["a", "b", "c"];
        c.became_leader(1, 0, 3, &status("a", 3, &members));
        c.plugin_led(2, 0, 3, &status("a", 3, &members));
        assert!(c.violations().is_empty(), "{:?}", c.violations());
        // b never won term 3.
        c.plugin_led(3, 1, 3, &status("b", 3, &members));
        // a stepped down to follow in term 4, and its plugin leads term 3.
        let mut stepped_down = status("a", 4, &members);
        stepped_down.role = Role::Follower;
        c.plugin_led(4, 0, 3, &stepped_down);
        let seen: Vec<&str> = c.violations().iter().map(|v| v.what.as_str()).collect();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].contains("of b took up leadership of term 3: a term its node never won"));
        assert!(
            seen[1].contains("while its node is a follower of term 4"),
            "{seen:?}"
        );
    }

    #[test]
    fn a_changed_vote_within_a_term_is_caught() {
        let mut c = Checker::default();
        let state = |term, vote: Option<&str>| PersistedState {
            term,
            voted_for: vote.map(String::from),
            members: vec![],
            removed: vec![],
            epoch: 0,
            epoch_term: 0,
            data_id: 1,
            known_ids: vec![],
            confirmed_by: vec![],
            abstain: false,
        };
        c.persisted(1, 0, "a", &state(1, Some("b")));
        c.persisted(2, 0, "a", &state(1, Some("b")));
        c.persisted(3, 0, "a", &state(2, None));
        c.persisted(4, 0, "a", &state(2, Some("c")));
        assert!(c.violations().is_empty());
        c.persisted(5, 0, "a", &state(2, Some("d")));
        assert_eq!(c.violations().len(), 1);
        c.persisted(6, 0, "a", &state(1, None));
        assert_eq!(c.violations().len(), 2);
    }

    #[test]
    fn terms_must_only_grow_even_across_restarts() {
        let mut c = Checker::default();
        c.started(0, 0, &status("a", 0, &["a"]));
        c.term_changed(1, 0, "a", 0, 1);
        assert!(c.violations().is_empty());
        c.term_changed(2, 0, "a", 1, 1);
        assert_eq!(c.violations().len(), 1);
        c.started(3, 0, &status("a", 0, &["a"]));
        assert_eq!(c.violations().len(), 2, "restart lost the term");
    }
}
