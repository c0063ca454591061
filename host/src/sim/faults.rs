//! Faults of the network's edge that a real host's transport sees, and the
//! rule it judges them by.
//!
//! A real transport reports a peer dead (the protocol's `peer-unreachable`)
//! only on the evidence of [`tenure_transport::death`]: a refused dial while
//! no connection from the peer is open. The simulator makes the refusals —
//! a crash's, but also a live peer's, as a firewall that resets one port or
//! a full listen backlog would cause — and passes them through the same
//! rule, so what it proves about fast failover is what the node does.

use tenure_transport::death::DeathEvidence;

use super::{NodeIndex, Simulation};

impl Simulation {
    /// `node`'s dial to `peer` is refused now, whether or not `peer`'s
    /// process lives (a resetting firewall, a listener briefly down).
    ///
    /// The connection `peer` holds to `node` stays open while `peer` runs
    /// and the network lets it reach `node`; judged by the transport's rule,
    /// the refusal then proves nothing and the protocol hears nothing. Only
    /// if `peer` is down or cut off from `node` is `node` told
    /// `peer-unreachable` (a refusal under a partition is the one case the
    /// rule cannot tell from a death; the README states that assumption).
    pub fn refuse_dial(&mut self, node: NodeIndex, peer: NodeIndex) {
        if node == peer || !self.is_up(node) || peer >= self.nodes.len() {
            return;
        }
        let mut evidence = DeathEvidence::default();
        if self.is_up(peer) && self.partition.connected(peer, node) {
            evidence.inbound_opened();
        }
        let dead = evidence.dial_refused();
        let peer_id = self.nodes[peer].spec.id.clone();
        self.trace_line(format!(
            "{}'s dial to {peer_id} refused ({})",
            self.nodes[node].spec.id,
            if dead {
                "taken for a death"
            } else {
                "ignored: it still talks to us"
            }
        ));
        if dead {
            let _ = self.call(node, |i| i.peer_unreachable(&peer_id));
        }
    }
}

impl Simulation {
    /// Cuts the link from `from` to `to` only: `to` stops hearing `from`
    /// while `from` still hears `to` (a one-way fault). [`Simulation::heal`]
    /// restores it. Cut both directions between two groups and leave a
    /// third node linked to both for a bridge (non-transitive) partition.
    pub fn cut_link(&mut self, from: NodeIndex, to: NodeIndex) {
        self.partition.cut(from, to);
        let line = format!("cut link {} -> {}", self.id(from), self.id(to));
        self.trace_line(line);
    }

    /// Adds `extra_ns` to the delay of every message from `from` to `to`
    /// sent from now on, until [`Simulation::heal`].
    pub fn slow_link(&mut self, from: NodeIndex, to: NodeIndex, extra_ns: u64) {
        self.partition.slow(from, to, extra_ns);
        let line = format!(
            "slow link {} -> {} by {} us",
            self.id(from),
            self.id(to),
            extra_ns / 1_000
        );
        self.trace_line(line);
    }

    /// Makes the link from `from` to `to` drop each message with
    /// probability `loss` (a flaky NIC, a congested path), until
    /// [`Simulation::heal`].
    pub fn lossy_link(&mut self, from: NodeIndex, to: NodeIndex, loss: f64) {
        self.partition.lossy(from, to, loss);
        let line = format!(
            "lossy link {} -> {} at {:.0} %",
            self.id(from),
            self.id(to),
            loss * 100.0
        );
        self.trace_line(line);
    }

    /// Freezes `node`'s process for `duration_ns` (a long GC pause, a
    /// stopped VM, SIGSTOP): it handles nothing — no message, no timer —
    /// until then, and handles what came meanwhile in order when it
    /// thaws. Its connections stay open, so no one sees it die; its clock
    /// runs on, so it finds its timers overdue.
    pub fn pause(&mut self, node: NodeIndex, duration_ns: u64) {
        let until = self.now_ns().saturating_add(duration_ns);
        if let Some(n) = self.nodes.get_mut(node) {
            n.paused_until_ns = n.paused_until_ns.max(until);
            let line = format!("paused for {} ms", duration_ns / 1_000_000);
            self.note(node, &line);
        }
    }

    /// Thaws every paused node now.
    pub fn resume_all(&mut self) {
        let now = self.now_ns();
        for n in &mut self.nodes {
            n.paused_until_ns = n.paused_until_ns.min(now);
        }
    }

    /// Whether `node` is frozen by [`Simulation::pause`] now.
    pub fn is_paused(&self, node: NodeIndex) -> bool {
        self.nodes
            .get(node)
            .is_some_and(|n| n.paused_until_ns > self.now_ns())
    }

    /// Wipes a crashed node's disk, as a lost or replaced data directory
    /// would: it restarts with no state, draws a new data id, and its
    /// peers' records make it abstain. (A running node is crashed first.)
    pub fn wipe_disk(&mut self, node: NodeIndex) {
        if node >= self.nodes.len() {
            return;
        }
        self.crash(node);
        self.nodes[node].disk = None;
        self.nodes[node].previous_disk = None;
        // A lost disk is within what the protocol must survive: the node
        // may start again from term 0; it must not vote twice in a term.
        self.checker.disk_lost(node);
        self.wiped_disks += 1;
        self.note(node, "disk wiped");
    }

    /// How many disks [`Simulation::wipe_disk`] has wiped so far.
    pub fn wiped_disks(&self) -> usize {
        self.wiped_disks
    }

    /// Crashes `node` and loses its latest write, as a disk that
    /// acknowledged an fsync it had not made would: it restarts from the
    /// state before. Tenure assumes honest fsync; this fault shows the
    /// checker catching what breaking that assumption costs.
    pub fn lose_last_write(&mut self, node: NodeIndex) {
        if node >= self.nodes.len() {
            return;
        }
        self.crash(node);
        let n = &mut self.nodes[node];
        if let Some(previous) = n.previous_disk.take() {
            n.disk = Some(previous);
        } else {
            n.disk = None;
        }
        self.note(node, "lost its last write");
    }
}

impl Simulation {
    /// From now on `node`'s clock runs `drift_ppm` parts per million fast
    /// (negative: slow), carrying on from its current reading — the rate
    /// change a hypervisor or a drifting oscillator brings. Stay within the
    /// margin the nodes' `lease-drift-margin-ms` covers, or the lease
    /// invariant will (rightly) fail.
    pub fn set_clock_drift(&mut self, node: NodeIndex, drift_ppm: i32) {
        let now = self.now_ns();
        let Some(n) = self.nodes.get_mut(node) else {
            return;
        };
        n.clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_drift(now, drift_ppm);
        n.spec.clock_drift_ppm = drift_ppm;
        self.note(node, &format!("clock now drifts {drift_ppm} ppm"));
    }
}

impl Simulation {
    /// Fills `node`'s disk: from now on every save fails, and the node
    /// goes quiet as a real one does (`node::durability`) — no vote,
    /// candidacy or heartbeat leaves it — until [`Simulation::free_disk`]
    /// (or a [`Simulation::heal`]) makes room and its retry succeeds.
    pub fn fill_disk(&mut self, node: NodeIndex) {
        if let Some(n) = self.nodes.get_mut(node)
            && !n.disk_full
        {
            n.disk_full = true;
            self.note(node, "disk full");
        }
    }

    /// Makes room on `node`'s disk again; its next retry saves.
    pub fn free_disk(&mut self, node: NodeIndex) {
        if let Some(n) = self.nodes.get_mut(node)
            && n.disk_full
        {
            n.disk_full = false;
            self.note(node, "disk has room again");
        }
    }

    /// Frees every full disk (as [`Simulation::heal`] does, with the
    /// network).
    pub fn heal_disks(&mut self) {
        for node in 0..self.nodes.len() {
            self.free_disk(node);
        }
    }

    /// Whether some node's disk is full.
    pub fn any_disk_full(&self) -> bool {
        self.nodes.iter().any(|n| n.disk_full)
    }

    /// Whether `node` is quiet because a save failed (its `/status` would
    /// show `cannot_persist`).
    pub fn cannot_persist(&self, node: NodeIndex) -> bool {
        self.nodes.get(node).is_some_and(|n| n.durability.quiet())
    }
}
