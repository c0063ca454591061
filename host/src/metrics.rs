//! `GET /metrics`: the node in the Prometheus exposition format
//! (OpenMetrics text, from the prometheus-client crate), with the standard
//! leader-election names — `tenure_is_leader`, `tenure_has_leader`,
//! `tenure_leader_changes_seen_total`, … — and client-go's
//! `leader_election_master_status{name}` so Kubernetes dashboards and
//! alerts written for it work unchanged.
//!
//! Two kinds of figures:
//!
//! - **observed** as they happen, by the node task: leader changes,
//!   elections by outcome and how long they took, each persist's
//!   duration ([`NodeMetrics`]), the protocol messages sent and their
//!   bytes by kind (`sent`), and each plugin callback's duration
//!   ([`crate::plugin::quota::PluginUsage`]);
//! - **sampled** from the node's [`NodeReport`] at each scrape: role,
//!   term, lease, last contact with the leader, peers, the transport's and
//!   the plugin's counters.
//!
//! Labels are bounded: outcomes, states, kinds and callback names, never a
//! peer or a term.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::bindings::types::{Event, NodeStatus, Role};
use crate::node::NodeReport;
use crate::plugin::quota::PluginUsage;

mod sent;

/// The content type of [`NodeMetrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One label: an outcome, a state or a kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// The outcome.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FrameLabels {
    kind: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
    protocol_version: String,
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NameLabel {
    name: String,
}

/// Where this node is in an election, to tell outcomes apart.
#[derive(Debug, Default)]
struct Tracker {
    /// When this node's current candidacy (or the first of a run of
    /// split ones) began.
    campaign_since: Option<Instant>,
    /// When this attempt to lead began: its first pre-vote round (sent as
    /// the election timer fires, or on a fast-failover signal), else its
    /// candidacy.
    attempt_since: Option<Instant>,
    /// The leader last seen, to count changes.
    leader: Option<String>,
    /// When this node last sent a pre-vote request, and whether that
    /// round is still waiting to become a candidacy.
    pre_vote: Option<(Instant, bool)>,
}

/// Pre-vote requests sent closer together than this are one round (a
/// round asks every voter at once).
const PRE_VOTE_ROUND: Duration = Duration::from_millis(10);

/// The figures the node task observes as they happen, and the scrape.
#[derive(Debug)]
pub struct NodeMetrics {
    leader_changes: Counter,
    elections: Family<OutcomeLabel, Counter>,
    election_seconds: Histogram,
    persist_seconds: Histogram,
    /// Protocol messages sent and their bytes, by kind.
    sent: sent::SentMessages,
    tracker: Mutex<Tracker>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            leader_changes: Counter::default(),
            elections: Family::default(),
            // 1 ms to ~16 s.
            election_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            // 50 µs to ~1.6 s: an fsync on a fast disk to a slow one.
            persist_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            sent: sent::SentMessages::default(),
            tracker: Mutex::new(Tracker::default()),
        }
    }
}

/// Buckets of a plugin callback's duration: 10 µs to ~5 s.
pub fn callback_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

impl NodeMetrics {
    /// Notes a protocol event: `status` is the node's status after it.
    ///
    /// An election is counted for the node that campaigned: `won` when it
    /// became leader, `lost` when it followed another leader instead,
    /// `split` when it had to campaign again in a higher term. Its
    /// duration runs from the attempt's first pre-vote request (which the
    /// node sends as its election timer fires, or on a fast-failover
    /// signal; the candidacy's start when there was no pre-vote) to
    /// becoming leader.
    pub fn on_event(&self, event: &Event, status: &NodeStatus) {
        let mut t = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut outcome = match event {
            Event::TermChanged(_) if status.role == Role::Candidate => {
                // The pre-vote round, if any, was won.
                if let Some((_, pending)) = &mut t.pre_vote {
                    *pending = false;
                }
                t.attempt_since.get_or_insert(now);
                if t.campaign_since.is_some() {
                    Some("split")
                } else {
                    t.campaign_since = Some(now);
                    None
                }
            }
            Event::BecameLeader(_) => {
                t.campaign_since = None;
                if let Some(since) = t.attempt_since.take() {
                    self.election_seconds
                        .observe(now.duration_since(since).as_secs_f64());
                }
                Some("won")
            }
            Event::BecameFollower(f) if f.leader.is_some() => {
                t.attempt_since = None;
                t.campaign_since.take().map(|_| "lost")
            }
            _ => None,
        };
        // A pre-candidate that follows a leader instead lost its round.
        if let (Event::BecameFollower(f), Some((_, pending @ true))) = (event, &mut t.pre_vote)
            && f.leader.is_some()
        {
            *pending = false;
            outcome = outcome.or(Some("pre_vote_refused"));
        }
        if let Some(outcome) = outcome {
            self.elections
                .get_or_create(&OutcomeLabel {
                    outcome: outcome.to_string(),
                })
                .inc();
        }
        let leader = match event {
            Event::BecameLeader(_) => Some(status.node_id.clone()),
            Event::BecameFollower(f) => f.leader.clone(),
            _ => return,
        };
        if leader.is_some() && leader != t.leader {
            self.leader_changes.inc();
            t.leader = leader;
        }
    }

    /// Notes a protocol message this node sends, read in the built-in
    /// build's wire format: its kind and size
    /// (`tenure_sent_messages_total{kind}`, `tenure_sent_bytes_total{kind}`;
    /// another build's messages count as `unknown`), and a pre-vote round
    /// that begins while the last one never became a candidacy means the
    /// last one was refused (`elections_total{outcome="pre_vote_refused"}`).
    pub fn on_sent(&self, payload: &[u8]) {
        use tenure_election_core::wire::{Body, Message};
        let body = Message::decode(payload).ok().map(|m| m.body);
        self.sent.note(sent::kind(body.as_ref()), payload.len());
        let Some(Body::RequestPreVote { .. }) = body else {
            return;
        };
        let now = Instant::now();
        let mut t = self.tracker.lock().unwrap_or_else(|e| e.into_inner());
        let refused = match t.pre_vote {
            Some((at, _)) if now.duration_since(at) < PRE_VOTE_ROUND => {
                t.pre_vote = Some((at, true));
                return;
            }
            Some((_, pending)) => pending,
            None => false,
        };
        t.pre_vote = Some((now, true));
        t.attempt_since.get_or_insert(now);
        if refused {
            self.elections
                .get_or_create(&OutcomeLabel {
                    outcome: "pre_vote_refused".to_string(),
                })
                .inc();
        }
    }

    /// Notes how long one save of the durable state took.
    pub fn persisted(&self, took: Duration) {
        self.persist_seconds.observe(took.as_secs_f64());
    }

    /// The scrape: the observed figures, and those sampled from `report`
    /// (and the running plugin's `usage`).
    pub fn render(&self, report: &NodeReport, usage: Option<&PluginUsage>) -> String {
        let mut r = Registry::default();
        let gauge = |value: i64| {
            let g: Gauge = Gauge::default();
            g.set(value);
            g
        };
        let float = |value: f64| {
            let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
            g.set(value);
            g
        };
        let leads = report.role == "leader";
        r.register(
            "tenure_is_leader",
            "1 while this node leads",
            gauge(i64::from(leads)),
        );
        r.register(
            "tenure_has_leader",
            "1 while this node knows a leader (itself included)",
            gauge(i64::from(report.leader.is_some())),
        );
        r.register(
            "tenure_term",
            "This node's current term",
            gauge(i64::try_from(report.term).unwrap_or(i64::MAX)),
        );
        r.register_with_unit(
            "tenure_lease_remaining",
            "How much longer this node may act as sole leader (0 without a lease)",
            Unit::Seconds,
            float(report.lease_remaining_ms.unwrap_or(0.0) / 1e3),
        );
        if let Some(ms) = report.leader_last_contact_ms {
            r.register_with_unit(
                "tenure_leader_last_contact",
                "Time since this follower last heard from its leader",
                Unit::Seconds,
                float(ms as f64 / 1e3),
            );
        }
        let peers: Family<StateLabel, Gauge> = Family::default();
        let alive = report.peers.len() as i64;
        let others = report
            .members
            .iter()
            .filter(|m| **m != report.node_id)
            .count() as i64;
        for (state, n) in [("alive", alive), ("silent", (others - alive).max(0))] {
            peers
                .get_or_create(&StateLabel {
                    state: state.to_string(),
                })
                .set(n);
        }
        r.register(
            "tenure_peers",
            "Other voting members by whether they were heard from lately",
            peers,
        );
        r.register(
            "tenure_leader_changes_seen",
            "Leaders this node has seen take over, itself included",
            self.leader_changes.clone(),
        );
        r.register(
            "tenure_elections",
            "Elections this node campaigned in, by outcome (won, lost, split, pre_vote_refused)",
            self.elections.clone(),
        );
        r.register_with_unit(
            "tenure_election_duration",
            "From this node's first pre-vote request (its timer or a fast-failover signal) to its becoming leader",
            Unit::Seconds,
            self.election_seconds.clone(),
        );
        r.register_with_unit(
            "tenure_state_persist",
            "One save of the durable term, vote and membership (the fsync on the failover path)",
            Unit::Seconds,
            self.persist_seconds.clone(),
        );
        r.register("tenure_frames", FRAMES_HELP, frames(report));
        let dropped: Counter = Counter::default();
        dropped.inc_by(crate::logging::dropped_lines());
        r.register(
            "tenure_log_lines_dropped",
            "Log lines dropped because stderr fell behind (the node never waits for it)",
            dropped,
        );
        self.sent.register(&mut r);
        if let (Some(plugin), Some(usage)) = (&report.plugin, usage) {
            r.register_with_unit(
                "tenure_plugin_callback_duration",
                "Each behaviour plugin callback's duration, by callback",
                Unit::Seconds,
                usage.callback_seconds.clone(),
            );
            let errors: Family<KindLabel, Counter> = Family::default();
            let u = &plugin.usage;
            for (kind, n) in [
                ("error", u.errors),
                ("trap", u.traps),
                ("deadline", u.deadlines),
                ("memory", u.memory),
            ] {
                errors
                    .get_or_create(&KindLabel {
                        kind: kind.to_string(),
                    })
                    .inc_by(n);
            }
            r.register(
                "tenure_plugin_errors",
                "Plugin callbacks that failed, by kind",
                errors,
            );
            let swaps: Family<OutcomeLabel, Counter> = Family::default();
            for (outcome, n) in [("ok", u.swaps_ok), ("refused", u.swaps_refused)] {
                swaps
                    .get_or_create(&OutcomeLabel {
                        outcome: outcome.to_string(),
                    })
                    .inc_by(n);
            }
            r.register("tenure_plugin_swaps", "Plugin hot swaps by outcome", swaps);
        }
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                protocol_version: report.protocol_version.clone(),
                plugin: report.plugin.as_ref().map_or(String::new(), |p| {
                    format!("{}@{}", p.name, p.sha256.get(..12).unwrap_or(&p.sha256))
                }),
            })
            .set(1);
        r.register(
            "tenure_build_info",
            "The binary's version, the protocol build's, and the plugin's",
            build,
        );
        let master: Family<NameLabel, Gauge> = Family::default();
        master
            .get_or_create(&NameLabel {
                name: report.cluster_id.clone(),
            })
            .set(i64::from(leads));
        r.register(
            "leader_election_master_status",
            "client-go's name for tenure_is_leader: 1 while this node leads the election `name`",
            master,
        );
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &r);
        text
    }
}

/// `tenure_frames_total`'s help: what each `kind` and `outcome` counts.
const FRAMES_HELP: &str = "Peer frames and connections by kind and outcome; each is counted once. \
kind=frame: sent (written to a peer), dropped (outbound, never sent: queue full or no address), \
accepted (inbound, handed to the node), and inbound frames refused as malformed (undecodable, \
or out of the connection's protocol), oversize, unauthenticated (MAC did not verify: no cluster \
secret, or altered), replayed (valid MAC out of sequence, or a hello for another connection), \
foreign_cluster or misaddressed. kind=hello: duplicate_id (another live process holds that \
node id). kind=connection: certificate_refused (mutual TLS), limited (closed by [peer-limits])";

/// The transport's counters as `tenure_frames_total{kind,outcome}`:
/// one sample per reason, none counted under two (see [`FRAMES_HELP`]).
fn frames(report: &NodeReport) -> Family<FrameLabels, Counter> {
    let t = &report.transport;
    let family: Family<FrameLabels, Counter> = Family::default();
    for (kind, outcome, n) in [
        ("frame", "sent", t.sent),
        ("frame", "dropped", t.dropped),
        ("frame", "accepted", t.received),
        ("frame", "malformed", t.malformed),
        ("frame", "oversize", t.oversize),
        ("frame", "unauthenticated", t.unauthenticated),
        ("frame", "replayed", t.replayed),
        ("frame", "foreign_cluster", t.foreign_cluster),
        ("frame", "misaddressed", t.misaddressed),
        ("hello", "duplicate_id", t.duplicate_ids),
        ("connection", "certificate_refused", t.certificate_refused),
        ("connection", "limited", t.limited),
    ] {
        family
            .get_or_create(&FrameLabels {
                kind: kind.to_string(),
                outcome: outcome.to_string(),
            })
            .inc_by(n);
    }
    family
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{FollowerChange, TermChange};
    use tenure_election_core::wire::{Body, Message};

    fn status(role: Role) -> NodeStatus {
        NodeStatus {
            node_id: "n1".into(),
            cluster_id: "c".into(),
            role,
            term: 1,
            leader: None,
            voted_for: None,
            members: vec!["n1".into(), "n2".into(), "n3".into()],
            epoch: 0,
            alive_peers: vec![],
            quorum: 2,
            ignored_messages: 0,
            lease_expires_ns: None,
            data_id: 1,
            abstaining: false,
            confirmed: true,
        }
    }

    fn pre_vote() -> Vec<u8> {
        Message {
            cluster_id: "c".into(),
            sender: tenure_election_core::wire::Standing::default(),
            sender_data_id: 1,
            recipient_data_id: None,
            body: Body::RequestPreVote {
                term: 2,
                epoch: 0,
                epoch_term: 0,
            },
        }
        .encode()
    }

    fn outcome(m: &NodeMetrics, outcome: &str) -> u64 {
        m.elections
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .get()
    }

    #[test]
    fn frame_outcomes_count_each_frame_once() {
        use tenure_transport::TransportStats;
        let stats = TransportStats {
            sent: 50,
            received: 40,
            dropped_queue_full: 3,
            dropped_unknown_peer: 1,
            rejected_malformed: 1,
            rejected_oversize: 2,
            rejected_unauthenticated: 3,
            rejected_replayed: 4,
            rejected_foreign_cluster: 5,
            rejected_misaddressed: 6,
            rejected_duplicate_id: 7,
            rejected_certificate: 8,
            refused_max_pending: 9,
            closed_frame_rate: 10,
            ..TransportStats::default()
        };
        let identity = crate::node::NodeIdentity {
            protocol_sha256: "ab".repeat(32),
            protocol_version: "0.1.0".into(),
            admin: ([127, 0, 0, 1], 1).into(),
            listen: ([127, 0, 0, 1], 2).into(),
        };
        let report = NodeReport::new(
            None,
            Duration::ZERO,
            &identity,
            status(Role::Follower),
            0,
            stats,
            Duration::ZERO,
        );
        let text = NodeMetrics::default().render(&report, None);
        let samples: Vec<(&str, u64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("tenure_frames_total{"))
            .filter_map(|l| l.split_once("} "))
            .map(|(labels, n)| (labels, n.parse().expect("a count")))
            .collect();
        let total: u64 = samples.iter().map(|(_, n)| n).sum();
        assert_eq!(
            total,
            stats.sent + stats.received + 4 + stats.rejected() + stats.refused(),
            "{text}"
        );
        for (labels, n) in [
            (r#"kind="frame",outcome="accepted""#, 40),
            (r#"kind="frame",outcome="unauthenticated""#, 3),
            (r#"kind="frame",outcome="replayed""#, 4),
            (r#"kind="hello",outcome="duplicate_id""#, 7),
            (r#"kind="connection",outcome="certificate_refused""#, 8),
            (r#"kind="connection",outcome="limited""#, 19),
        ] {
            assert!(samples.contains(&(labels, n)), "{labels} {n}:\n{text}");
        }
    }

    #[test]
    fn outcomes_are_told_apart() {
        let m = NodeMetrics::default();
        let candidate = status(Role::Candidate);
        let term = |old, new| Event::TermChanged(TermChange { old, new });
        // A refused pre-vote round: the next round begins, no candidacy.
        m.on_sent(&pre_vote());
        std::thread::sleep(PRE_VOTE_ROUND * 2);
        m.on_sent(&pre_vote());
        assert_eq!(outcome(&m, "pre_vote_refused"), 1);
        // That round wins; the candidacy splits, then wins.
        m.on_event(&term(1, 2), &candidate);
        m.on_event(&term(2, 3), &candidate);
        m.on_event(&Event::BecameLeader(3), &status(Role::Leader));
        assert_eq!((outcome(&m, "split"), outcome(&m, "won")), (1, 1));
        let mut registry = Registry::default();
        registry.register_with_unit("e", "e", Unit::Seconds, m.election_seconds.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("e_seconds_count 1"),
            "one election timed:\n{text}"
        );
        // A candidacy that meets another leader is lost.
        m.on_event(&term(3, 4), &candidate);
        let follows = Event::BecameFollower(FollowerChange {
            leader: Some("n2".into()),
            term: 4,
        });
        m.on_event(&follows, &status(Role::Follower));
        assert_eq!(outcome(&m, "lost"), 1);
        assert_eq!(m.leader_changes.get(), 2, "n1, then n2");
    }
}
