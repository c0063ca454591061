//! What the benchmarks need from a cluster, whichever system runs it:
//! start members, ask each who leads, signal and restart them.
//!
//! Both systems are asked the same question the same way: one HTTP request
//! per member to its loopback endpoint (Tenure's `GET /status`, etcd's
//! `POST /v3/maintenance/status`), all members at once, a new connection
//! per request, or a kept-alive one per member with `--keep-alive on` ([`crate::keep_alive`]).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tenure_host::admin_client::{fetch_status, request};
use tokio::task::JoinSet;

use tenure_host::testing::processes::Process;

/// How long one status probe may take. A live member answers within a
/// millisecond or two; a frozen one never does.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// What one member says about the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct View {
    /// The member's own identity, as leaders are named in `leader`.
    pub me: String,
    /// The leader it follows (itself when it leads), if it knows one.
    pub leader: Option<String>,
    /// Its current term.
    pub term: u64,
}

/// How to ask one member for its [`View`]: owned, so probes of several
/// members can run at once.
#[derive(Clone, Debug)]
pub enum Probe {
    /// A Tenure node's admin endpoint.
    Tenure(SocketAddr),
    /// An etcd member's client URL (host:port).
    Etcd(SocketAddr),
}

impl Probe {
    /// Asks once; `None` if the member does not answer in time or sensibly.
    pub async fn view(self) -> Option<View> {
        match self {
            Probe::Tenure(admin) if crate::keep_alive::enabled() => {
                let (code, body) =
                    crate::keep_alive::request(admin, "GET", "/status", b"", PROBE_TIMEOUT)
                        .await
                        .ok()?;
                if code != 200 {
                    return None;
                }
                Some(tenure_view(serde_json::from_str(&body).ok()?))
            }
            Probe::Tenure(admin) => {
                Some(tenure_view(fetch_status(admin, PROBE_TIMEOUT).await.ok()?))
            }
            Probe::Etcd(client) => {
                let path = "/v3/maintenance/status";
                let asked = if crate::keep_alive::enabled() {
                    crate::keep_alive::request(client, "POST", path, b"{}", PROBE_TIMEOUT).await
                } else {
                    request(client, "POST", path, b"{}", PROBE_TIMEOUT).await
                };
                let (code, body) = asked.ok()?;
                if code != 200 {
                    return None;
                }
                etcd_view(&body).ok()
            }
        }
    }
}

/// What a Tenure node's `/status` says about the election.
fn tenure_view(report: tenure_host::node::NodeReport) -> View {
    View {
        me: report.node_id,
        leader: report.leader,
        term: report.term,
    }
}

/// Parses etcd's status reply (gRPC-gateway JSON: 64-bit numbers are
/// strings; a member that knows no leader says `"0"` or leaves it out).
fn etcd_view(body: &str) -> anyhow::Result<View> {
    let json: serde_json::Value = serde_json::from_str(body).context("status is not JSON")?;
    let number = |v: &serde_json::Value| -> Option<u64> {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .or_else(|| v.as_u64())
    };
    let me = number(&json["header"]["member_id"]).context("no header.member_id")?;
    let term = number(&json["raftTerm"]).unwrap_or(0);
    let leader = number(&json["leader"]).filter(|&l| l != 0);
    Ok(View {
        me: me.to_string(),
        leader: leader.map(|l| l.to_string()),
        term,
    })
}

/// A running cluster of one system.
pub trait System {
    /// A short name for reports, e.g. `tenure` or `etcd (pre-vote)`.
    fn label(&self) -> String;
    /// How many members it has.
    fn size(&self) -> usize;
    /// How to probe `member`.
    fn probe(&self, member: usize) -> Probe;
    /// `member`'s process.
    fn process(&mut self, member: usize) -> &mut Process;
    /// The address peers connect to `member` on.
    fn peer_addr(&self, member: usize) -> SocketAddr;
    /// Starts `member` again after it was killed, with its data intact.
    fn restart(&mut self, member: usize) -> anyhow::Result<()>;
    /// `member`'s event log with `CLOCK_MONOTONIC` times, if the system
    /// keeps one ([`crate::event_times`]).
    fn event_log(&self, _member: usize) -> Option<std::path::PathBuf> {
        None
    }
}

/// Probes every member in `among` at once; a member that does not answer
/// maps to `None`.
pub async fn views(system: &impl System, among: &[usize]) -> Vec<(usize, Option<View>)> {
    let mut set = JoinSet::new();
    for &member in among {
        let probe = system.probe(member);
        set.spawn(async move { (member, probe.view().await) });
    }
    let mut out = Vec::with_capacity(among.len());
    while let Some(joined) = set.join_next().await {
        if let Ok(pair) = joined {
            out.push(pair);
        }
    }
    out.sort_by_key(|(member, _)| *member);
    out
}

/// An agreed leader: every probed member answered, all name the same
/// leader, and that leader is among them and says so itself. Returns the
/// leader's member index and its view.
///
/// Terms are not compared: etcd's status reports the term of the last
/// *applied* entry, which lags the leader field by the new leader's first
/// commit, so survivors briefly disagree on it. A leader that names itself
/// and is named by everyone is the agreement that matters.
pub fn agreement(views: &[(usize, Option<View>)]) -> Option<(usize, View)> {
    let first = views.first()?.1.as_ref()?;
    let leader = first.leader.as_ref()?;
    let all_agree = views.iter().all(|(_, v)| {
        v.as_ref()
            .is_some_and(|v| v.leader.as_ref() == Some(leader))
    });
    if !all_agree {
        return None;
    }
    views
        .iter()
        .find(|(_, v)| v.as_ref().is_some_and(|v| &v.me == leader))
        .and_then(|(member, v)| Some((*member, v.clone()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(me: &str, leader: Option<&str>, term: u64) -> Option<View> {
        Some(View {
            me: me.into(),
            leader: leader.map(Into::into),
            term,
        })
    }

    #[test]
    fn agreement_needs_everyone_and_the_leader_itself() {
        let agreed = [(0, view("a", Some("b"), 3)), (1, view("b", Some("b"), 3))];
        assert_eq!(agreement(&agreed).map(|(m, _)| m), Some(1));
        let other_leader = [(0, view("a", Some("a"), 3)), (1, view("b", Some("b"), 3))];
        assert_eq!(agreement(&other_leader), None);
        let silent = [(0, view("a", Some("b"), 3)), (1, None)];
        assert_eq!(agreement(&silent), None);
        let leader_absent = [(0, view("a", Some("c"), 3)), (1, view("b", Some("c"), 3))];
        assert_eq!(agreement(&leader_absent), None);
    }

    #[test]
    fn parses_etcd_status() {
        let body = r#"{"header":{"cluster_id":"1","member_id":"42","revision":"1","raft_term":"5"},
            "version":"3.4.23","leader":"42","raftIndex":"9","raftTerm":"5"}"#;
        let v = etcd_view(body).unwrap();
        assert_eq!(
            (v.me.as_str(), v.leader.as_deref(), v.term),
            ("42", Some("42"), 5)
        );
        let no_leader = r#"{"header":{"member_id":"7"},"raftTerm":"2"}"#;
        assert_eq!(etcd_view(no_leader).unwrap().leader, None);
    }
}
