//! What the tests and the checker ask of a running simulation: statuses,
//! leaders, agreement, the trace and its fingerprint.

use super::*;

impl Simulation {
    /// A running node's status (as its protocol last reported it: no
    /// call into the component); `None` while it is crashed.
    pub fn status(&self, node: NodeIndex) -> Option<NodeStatus> {
        Some(self.nodes.get(node)?.core.as_ref()?.status().clone())
    }

    /// Asks a running node's protocol for its status (the `status`
    /// export) and says whether it equals the one the node keeps from the
    /// protocol's reports; `None` while it is crashed. For tests of the
    /// reports themselves.
    pub fn status_is_current(&mut self, node: NodeIndex) -> Option<anyhow::Result<bool>> {
        let core = self.nodes.get_mut(node)?.core.as_mut()?;
        let kept = core.status().clone();
        Some(
            core.protocol()
                .query_status()
                .map(|queried| queried == kept),
        )
    }

    /// Indices of the running nodes of `cluster`.
    pub fn live_nodes(&self, cluster: &str) -> Vec<NodeIndex> {
        (0..self.nodes.len())
            .filter(|&n| self.is_up(n) && self.nodes[n].spec.cluster_id == cluster)
            .collect()
    }

    /// Indices of the running nodes of `cluster` that believe they lead.
    pub fn leaders(&mut self, cluster: &str) -> Vec<NodeIndex> {
        self.live_nodes(cluster)
            .into_iter()
            .filter(|&n| self.status(n).is_some_and(|s| s.role == Role::Leader))
            .collect()
    }

    /// Indices of the running voters of `cluster`: running nodes that
    /// count themselves as members (not observers, not removed nodes).
    pub fn voters(&mut self, cluster: &str) -> Vec<NodeIndex> {
        self.live_nodes(cluster)
            .into_iter()
            .filter(|&n| {
                self.status(n)
                    .is_some_and(|s| s.members.contains(&s.node_id) && !s.abstaining)
            })
            .collect()
    }

    /// The leader and term every running voter of `cluster` agrees on, if
    /// they all do: each follows the same leader in the same term, and that
    /// leader is running and leads that term.
    pub fn agreement(&mut self, cluster: &str) -> Option<(String, u64)> {
        let voters = self.voters(cluster);
        self.agreement_among(&voters)
    }

    /// Like [`Simulation::agreement`], over the running nodes among
    /// `nodes` only (one side of a partition, say). The leader must be one
    /// of them.
    pub fn agreement_among(&mut self, nodes: &[NodeIndex]) -> Option<(String, u64)> {
        let mut agreed: Option<(String, u64)> = None;
        let mut leader_confirmed = false;
        for &n in nodes {
            if !self.is_up(n) {
                continue;
            }
            let s = self.status(n)?;
            let view = (s.leader.clone()?, s.term);
            if agreed.as_ref().is_some_and(|a| *a != view) {
                return None;
            }
            if s.role == Role::Leader && s.leader.as_deref() == Some(s.node_id.as_str()) {
                leader_confirmed = true;
            }
            agreed = Some(view);
        }
        agreed.filter(|_| leader_confirmed)
    }

    /// Runs until every running node of `cluster` agrees on one leader, or
    /// `bound_ns` of virtual time pass. Checks every 5 ms of virtual time.
    /// Returns the leader, its term and the virtual time it took.
    pub fn run_until_agreement(
        &mut self,
        cluster: &str,
        bound_ns: u64,
    ) -> anyhow::Result<(String, u64, u64)> {
        let start = self.now_ns();
        let deadline = start.saturating_add(bound_ns);
        loop {
            if let Some((leader, term)) = self.agreement(cluster) {
                return Ok((leader, term, self.now_ns() - start));
            }
            if self.now_ns() >= deadline {
                bail!(
                    "cluster {cluster} did not agree on a leader within {} ms (seed {})",
                    bound_ns / NS_PER_MS,
                    self.seed
                );
            }
            let step = (5 * NS_PER_MS).min(deadline - self.now_ns());
            self.run_for(step);
        }
    }

    /// Runs every event due in the next `duration_ns` of virtual time, then
    /// sets the clock to the end of that span.
    pub fn run_for(&mut self, duration_ns: u64) {
        let end = self.now_ns().saturating_add(duration_ns);
        while self.queue.peek().is_some_and(|Reverse(s)| s.at_ns <= end) {
            let Some(Reverse(next)) = self.queue.pop() else {
                break;
            };
            self.shared.now_ns.store(next.at_ns, Ordering::Relaxed);
            let paused_until = self
                .nodes
                .get(next.what.node())
                .map_or(0, |n| n.paused_until_ns);
            if paused_until > next.at_ns {
                // A frozen process handles nothing until it thaws; what
                // came for it is handled then, in the order it came.
                self.schedule(paused_until, next.what);
                continue;
            }
            self.dispatch(next.what);
        }
        self.shared.now_ns.store(end, Ordering::Relaxed);
    }

    /// Every safety violation seen so far.
    pub fn violations(&self) -> &[Violation] {
        self.checker.violations()
    }

    /// How many times a plugin took up leadership so far (each checked
    /// against its node's election; see [`Checker::plugin_led`]).
    pub fn plugin_leaderships(&self) -> usize {
        self.checker.plugin_leaderships()
    }

    /// How many distinct terms had a leader (per cluster), so far.
    pub fn terms_with_leaders(&self) -> usize {
        self.checker.terms_with_leaders()
    }

    /// The run's trace: one line per event, fault and network change.
    pub fn trace(&self) -> &[String] {
        &self.trace
    }

    /// A hash of everything that happened, effects and faults alike: two
    /// runs with equal fingerprints did the same thing.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Counters of the run so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}
