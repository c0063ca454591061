//! The node's status as the admin endpoint serves it (`GET /status`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tenure_transport::TransportStats;

use crate::bindings::types::{NodeStatus, Role};

use super::NodeIdentity;

/// `GET /status`: who this node is, what it believes, and how its network
/// is doing. Field names are stable: scripts read them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeReport {
    pub node_id: String,
    pub cluster_id: String,
    /// `"leader"`, `"follower"` or `"candidate"`.
    pub role: String,
    pub term: u64,
    /// The leader this node follows (itself when leader), if known.
    pub leader: Option<String>,
    pub voted_for: Option<String>,
    /// Peers heard from recently.
    pub peers: Vec<String>,
    /// Voting members, self included.
    pub members: Vec<String>,
    pub quorum: u32,
    /// The loaded behaviour plugin, if any.
    pub plugin: Option<PluginReport>,
    /// sha256 of the protocol component.
    pub protocol_sha256: String,
    /// The protocol build's version.
    pub protocol_version: String,
    pub listen: String,
    pub admin: String,
    pub uptime_ms: u64,
    /// The longest silence, in milliseconds, between two messages from the
    /// leader this node followed (heartbeats arrive every heartbeat
    /// interval, so anything near the election timeout is trouble).
    pub max_leader_gap_ms: u64,
    /// How much longer, in milliseconds, this node may act as the sole
    /// leader without hearing from a majority again: its lease. None unless
    /// it leads and holds one.
    #[serde(default)]
    pub lease_remaining_ms: Option<f64>,
    /// How many membership changes the leaders made: members lists with a
    /// higher epoch are newer.
    #[serde(default)]
    pub epoch: u64,
    /// This copy of the node's state, 16 hex digits (the data id its peers
    /// record; see `wit/types.wit`).
    #[serde(default)]
    pub data_id: String,
    /// Whether enough peers have confirmed that data id for this node to
    /// vote (a fresh cluster's nodes wait for each other once).
    #[serde(default)]
    pub confirmed: bool,
    /// The node learned it lost its state: it never votes or stands again.
    /// Remove it with `leave` and start it under a new node id.
    #[serde(default)]
    pub abstaining: bool,
    pub transport: TransportReport,
    /// The admin endpoint's refusals and limits hit (filled in by the
    /// endpoint that serves the report; zero elsewhere).
    #[serde(default)]
    pub admin_endpoint: crate::admin::AdminReport,
    /// Why the node's last save failed, while it cannot persist its state
    /// (a full disk, say): it then withholds every protocol message —
    /// votes, candidacies, heartbeats — until a save succeeds (see
    /// `node::durability`).
    #[serde(default)]
    pub cannot_persist: Option<String>,
    /// Milliseconds since this node last heard from the leader it
    /// follows; none while it leads or follows no one.
    #[serde(default)]
    pub leader_last_contact_ms: Option<u64>,
    /// For each other member: milliseconds since this node last received
    /// an authenticated frame from it directly (protocol, plugin or host
    /// channel); `null` if none since this process started. Followers
    /// speak to the leader, not to each other, so between two followers
    /// the figure dates from the last election: `peers` (which also
    /// counts the leader's word that it hears from them) says who is alive.
    #[serde(default)]
    pub last_heard_ms: BTreeMap<String, Option<u64>>,
}

/// Which plugin runs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PluginReport {
    /// The plugin file's name.
    pub name: String,
    /// sha256 of the plugin component, hex.
    pub sha256: String,
    /// What the plugin had refused or dropped under its limits, and how
    /// its callbacks fared.
    #[serde(default)]
    pub usage: crate::plugin::quota::UsageReport,
}

/// Frame and connection counters, since the process started.
///
/// Each refused frame or connection is counted once, under one reason:
/// `rejected` is the sum of `malformed`, `oversize`, `unauthenticated`,
/// `replayed`, `foreign_cluster`, `misaddressed`, `duplicate_ids` and
/// `certificate_refused`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct TransportReport {
    /// Frames written to a peer's socket and flushed.
    pub sent: u64,
    /// Frames accepted from peers and handed to the node.
    pub received: u64,
    /// Outbound frames dropped: a peer's queue was full, or its address
    /// unknown.
    pub dropped: u64,
    /// Inbound frames and connections refused, whatever the reason (the
    /// sum of the reasons below).
    pub rejected: u64,
    /// Frames that did not decode, had another version or kind, or broke
    /// the connection's protocol (no hello first, a second hello, a bad
    /// hello address).
    #[serde(default)]
    pub malformed: u64,
    /// Length prefixes above the transport's largest frame.
    #[serde(default)]
    pub oversize: u64,
    /// Frames (hellos included) whose MAC did not verify: made without
    /// the cluster secret, or altered on the way.
    #[serde(default)]
    pub unauthenticated: u64,
    /// Frames carrying another cluster id.
    #[serde(default)]
    pub foreign_cluster: u64,
    /// Frames addressed to another node, or from another sender than the
    /// connection's hello named.
    #[serde(default)]
    pub misaddressed: u64,
    /// Hellos refused because a second live process claimed a peer's node
    /// id (a copied config, a node started twice): nonzero means an
    /// operator must stop one of them.
    #[serde(default)]
    pub duplicate_ids: u64,
    /// Frames refused as replays (a valid MAC out of sequence, or a hello
    /// answering another connection's challenge): someone recorded and
    /// re-sent this cluster's traffic.
    #[serde(default)]
    pub replayed: u64,
    /// Connections refused for their certificate (another CA, another
    /// cluster, expired, or naming another node than it speaks for).
    #[serde(default)]
    pub certificate_refused: u64,
    /// Connections refused or closed by `[peer-limits]`: too many, too
    /// slow to finish the handshake, or flooding (not in `rejected`).
    #[serde(default)]
    pub limited: u64,
    /// Accepted connections open now.
    #[serde(default)]
    pub open_connections: u64,
    /// Of those, still in their handshake.
    #[serde(default)]
    pub pending_handshakes: u64,
}

impl NodeReport {
    /// The report of a node whose protocol reports `status`, its lease
    /// measured at `now_ns` on the protocol's clock.
    pub(crate) fn new(
        plugin: Option<PluginReport>,
        max_leader_gap: Duration,
        identity: &NodeIdentity,
        status: NodeStatus,
        now_ns: u64,
        stats: TransportStats,
        uptime: Duration,
    ) -> NodeReport {
        let lease_remaining_ms = status
            .lease_expires_ns
            .filter(|_| status.role == Role::Leader)
            .and_then(|until| until.checked_sub(now_ns))
            .map(|ns| ns as f64 / 1e6);
        let role = crate::protocol::role_name(status.role);
        NodeReport {
            node_id: status.node_id,
            cluster_id: status.cluster_id,
            role: role.to_string(),
            term: status.term,
            leader: status.leader,
            voted_for: status.voted_for,
            peers: status.alive_peers,
            members: status.members,
            quorum: status.quorum,
            plugin,
            protocol_sha256: identity.protocol_sha256.clone(),
            protocol_version: identity.protocol_version.clone(),
            listen: identity.listen.to_string(),
            admin: identity.admin.to_string(),
            uptime_ms: uptime.as_millis() as u64,
            max_leader_gap_ms: max_leader_gap.as_millis() as u64,
            lease_remaining_ms,
            epoch: status.epoch,
            data_id: format!("{:016x}", status.data_id),
            confirmed: status.confirmed,
            abstaining: status.abstaining,
            transport: TransportReport {
                sent: stats.sent,
                received: stats.received,
                dropped: stats.dropped_queue_full + stats.dropped_unknown_peer,
                rejected: stats.rejected(),
                malformed: stats.rejected_malformed,
                oversize: stats.rejected_oversize,
                unauthenticated: stats.rejected_unauthenticated,
                foreign_cluster: stats.rejected_foreign_cluster,
                misaddressed: stats.rejected_misaddressed,
                duplicate_ids: stats.rejected_duplicate_id,
                replayed: stats.rejected_replayed,
                certificate_refused: stats.rejected_certificate,
                limited: stats.refused(),
                open_connections: stats.open_connections,
                pending_handshakes: stats.pending_handshakes,
            },
            admin_endpoint: crate::admin::AdminReport::default(),
            cannot_persist: None,
            leader_last_contact_ms: None,
            last_heard_ms: BTreeMap::new(),
        }
    }

    /// The report, saying why the node cannot persist, if it cannot.
    fn cannot_persist(mut self, reason: Option<&str>) -> NodeReport {
        self.cannot_persist = reason.map(str::to_string);
        self
    }

    fn last_contact(mut self, since: Option<Duration>) -> NodeReport {
        self.leader_last_contact_ms = since.map(|d| d.as_millis() as u64);
        self
    }

    /// The report with `last_heard_ms` filled in for each other member.
    fn last_heard(mut self, heard: &LastHeard, now: Instant) -> NodeReport {
        self.last_heard_ms = self
            .members
            .iter()
            .filter(|m| **m != self.node_id)
            .map(|m| (m.clone(), heard.since(m, now)))
            .collect();
        self
    }
}

/// When this node last received a frame from each peer, directly: the
/// source of [`NodeReport::last_heard_ms`]. The node task notes every
/// inbound frame; only authenticated peers' frames reach it, so the map
/// holds peers, not strangers.
#[derive(Debug, Default)]
pub(super) struct LastHeard(BTreeMap<String, Instant>);

impl LastHeard {
    /// Notes a frame from `from`, now.
    pub(super) fn note(&mut self, from: &str) {
        let now = Instant::now();
        match self.0.get_mut(from) {
            Some(at) => *at = now,
            None => {
                self.0.insert(from.to_owned(), now);
            }
        }
    }

    /// Milliseconds from the last frame of `peer` to `now`, if any came.
    fn since(&self, peer: &str, now: Instant) -> Option<u64> {
        let at = self.0.get(peer)?;
        Some(u64::try_from(now.saturating_duration_since(*at).as_millis()).unwrap_or(u64::MAX))
    }
}

impl super::Node {
    /// The node's status now, as `GET /status` serves it.
    pub(super) fn report(&mut self) -> NodeReport {
        let plugin = self.plugin.as_ref().map(|p| PluginReport {
            name: p.name(),
            sha256: p.sha256(),
            usage: p.usage().report(),
        });
        let now_ns = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        NodeReport::new(
            plugin,
            self.max_leader_gap,
            &self.identity,
            self.core.status().clone(),
            now_ns,
            self.transport.stats(),
            self.started.elapsed(),
        )
        .cannot_persist(self.durability.reason())
        .last_contact(self.leader_last_contact())
        .last_heard(&self.heard, Instant::now())
    }

    /// Time since the leader this node follows was last heard from.
    fn leader_last_contact(&self) -> Option<Duration> {
        let status = self.core.status();
        let leader = status.leader.as_ref().filter(|l| **l != status.node_id)?;
        match &self.last_from_leader {
            Some((from, at)) if from == leader => Some(at.elapsed()),
            _ => None,
        }
    }

    /// `GET /metrics`: the scrape, from the report and what the node
    /// observed (see [`crate::metrics`]).
    pub(super) fn metrics_text(&mut self) -> String {
        let report = self.report();
        let usage = self.plugin.as_ref().map(|p| p.usage().clone());
        self.metrics.render(&report, usage.as_deref())
    }
}
