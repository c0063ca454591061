//! The endpoints applications, load balancers and orchestrators read:
//!
//! - `GET /leader`: 200 with the [`Leadership`] as JSON only on a leader
//!   whose fencing token is good (its lease holds, less the guard); 503
//!   otherwise. Point a load balancer's health check at it to route to the
//!   leader alone (Patroni's convention).
//! - `GET /livez`: 200 when the node's task answers within
//!   [`LIVENESS_BOUND`], 503 when it does not — a wedged node task (or
//!   protocol call) fails it, not only a dead process.
//! - `GET /readyz`: 200 when the node is a member (admitted) and knows a
//!   leader, 503 with the reason otherwise.
//! - `GET /watch`: Server-Sent Events, one `leadership` event per change
//!   (the first is the current state), each numbered (`id:` and `seq`); a
//!   subscriber that falls more than
//!   [`CHANGES_KEPT`](crate::node::leadership::CHANGES_KEPT) changes behind gets a
//!   `lagged` event saying how many it missed, then the current state; a
//!   comment line every [`KEEP_ALIVE`] keeps idle connections open. A slow
//!   subscriber never slows the node: changes wait in a bounded buffer the
//!   node writes without blocking.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use futures_util::Stream;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use super::{AdminState, ask};
use crate::node::Command;
use crate::node::leadership::{Leadership, LeadershipChange};

/// How long `GET /livez` waits for the node's task.
pub const LIVENESS_BOUND: Duration = Duration::from_secs(1);

/// How often `GET /watch` writes a keep-alive comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The leadership as JSON, with how long its token is still good.
#[derive(Serialize)]
struct LeadershipJson<'a> {
    #[serde(flatten)]
    leadership: &'a Leadership,
    /// Milliseconds the fencing token is still good for, if there is one.
    valid_for_ms: Option<f64>,
    /// When this answer was decided, on the host's `CLOCK_MONOTONIC` in
    /// nanoseconds (Linux): comparable across every process of one host,
    /// which is how tests order two nodes' claims exactly.
    monotonic_ns: Option<u64>,
}

fn json(leadership: &Leadership, now: Instant, monotonic_ns: Option<u64>) -> serde_json::Value {
    let body = LeadershipJson {
        leadership,
        valid_for_ms: leadership.valid_for_ms(now),
        monotonic_ns,
    };
    serde_json::to_value(&body).unwrap_or(serde_json::Value::Null)
}

/// The host's monotonic clock, in nanoseconds (Linux only).
fn monotonic_ns() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let ns = i128::from(t.tv_sec) * 1_000_000_000 + i128::from(t.tv_nsec);
        u64::try_from(ns).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// `GET /leader`.
pub(super) async fn leader(State(state): State<AdminState>) -> Response {
    let now = state.leadership.watch().borrow().clone();
    // Decided at one instant, read on both clocks.
    let at = Instant::now();
    let at_monotonic = monotonic_ns();
    let holds = now.fencing_token.is_some() && now.valid_until.is_some_and(|u| u > at);
    let status = if holds {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json(&now, at, at_monotonic))).into_response()
}

/// `GET /livez`.
pub(super) async fn livez(State(state): State<AdminState>) -> Response {
    let started = Instant::now();
    let answered =
        tokio::time::timeout(LIVENESS_BOUND, ask(&state.commands, Command::Status)).await;
    match answered {
        Ok(Ok(_)) => (
            StatusCode::OK,
            format!("live: the node task answered in {:?}\n", started.elapsed()),
        )
            .into_response(),
        Ok(Err(response)) => response,
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not live: the node task did not answer within {LIVENESS_BOUND:?}\n"),
        )
            .into_response(),
    }
}

/// `GET /readyz`.
pub(super) async fn readyz(State(state): State<AdminState>) -> Response {
    let report = match ask(&state.commands, Command::Status).await {
        Ok(report) => report,
        Err(response) => return response,
    };
    let unready =
        |why: String| (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response();
    if !report.members.contains(&report.node_id) {
        return unready(format!(
            "not ready: {} is no member yet (joining, an observer, or removed)",
            report.node_id
        ));
    }
    match &report.leader {
        Some(leader) => (
            StatusCode::OK,
            format!("ready: member of {}, leader {leader}\n", report.cluster_id),
        )
            .into_response(),
        None => unready("not ready: no leader known yet (an election is under way)".into()),
    }
}

/// `GET /watch`.
pub(super) async fn watch(
    State(state): State<AdminState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (first, receiver) = state.leadership.changes();
    let stream = futures_util::stream::unfold(
        Watching {
            pending: Some(first),
            last_seq: 0,
            receiver,
            subscriptions: state.leadership,
        },
        |mut w| async move {
            let event = w.next().await.into_event();
            Some((Ok(event), w))
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
}

/// One subscriber's place in the change stream.
struct Watching {
    /// A change to send before reading the stream again.
    pending: Option<LeadershipChange>,
    /// The number of the last change sent.
    last_seq: u64,
    receiver: tokio::sync::broadcast::Receiver<LeadershipChange>,
    subscriptions: crate::node::leadership::Subscriptions,
}

/// What a `/watch` subscriber is sent next.
#[derive(Debug)]
enum Outgoing {
    /// A numbered change: its JSON (with `seq`).
    Change { seq: u64, body: serde_json::Value },
    /// The subscriber fell behind by this many changes.
    Lagged(u64),
}

impl Outgoing {
    fn into_event(self) -> Event {
        match self {
            Outgoing::Change { seq, body } => Event::default()
                .event("leadership")
                .id(seq.to_string())
                .data(body.to_string()),
            Outgoing::Lagged(missed) => Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{missed}}}")),
        }
    }
}

impl Watching {
    /// The next event for this subscriber.
    async fn next(&mut self) -> Outgoing {
        loop {
            let change = match self.pending.take() {
                Some(change) => change,
                None => match self.receiver.recv().await {
                    Ok(change) => change,
                    Err(RecvError::Lagged(missed)) => {
                        // Told, never silent: then the current state.
                        self.pending = Some(self.subscriptions.changes().0);
                        return Outgoing::Lagged(missed);
                    }
                    // The node stopped; the endpoint closes with it.
                    Err(RecvError::Closed) => return std::future::pending().await,
                },
            };
            if change.seq <= self.last_seq {
                continue; // seen already (subscribed while it was sent)
            }
            self.last_seq = change.seq;
            let mut body = json(&change.leadership, Instant::now(), monotonic_ns());
            if let Some(object) = body.as_object_mut() {
                object.insert("seq".into(), change.seq.into());
            }
            return Outgoing::Change {
                seq: change.seq,
                body,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{NodeStatus, Role};
    use crate::node::leadership::{CHANGES_KEPT, Publisher};

    fn follower_of(term: u64) -> Leadership {
        let status = NodeStatus {
            node_id: "n2".into(),
            cluster_id: "c".into(),
            role: Role::Follower,
            term,
            leader: Some("n1".into()),
            voted_for: None,
            members: vec!["n1".into(), "n2".into()],
            epoch: 0,
            alive_peers: Vec::new(),
            quorum: 2,
            ignored_messages: 0,
            lease_expires_ns: None,
            data_id: 0,
            abstaining: false,
            confirmed: true,
        };
        Leadership::of(
            &status,
            Instant::now(),
            Duration::from_millis(20),
            Instant::now(),
        )
    }

    /// (seq, term) of a change; panics on anything else.
    fn change(out: Outgoing) -> (u64, u64) {
        match out {
            Outgoing::Change { seq, body } => (seq, body["term"].as_u64().expect("a term")),
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_current_state_then_changes_and_is_told_what_it_missed() {
        let (mut publisher, subscriptions) = Publisher::new(follower_of(1));
        let (first, receiver) = subscriptions.changes();
        let mut watching = Watching {
            pending: Some(first),
            last_seq: 0,
            receiver,
            subscriptions: subscriptions.clone(),
        };
        assert_eq!(change(watching.next().await), (1, 1));
        publisher.publish(follower_of(2));
        assert_eq!(change(watching.next().await), (2, 2));
        // Far behind: told how many it missed, then the current state.
        let published = CHANGES_KEPT as u64 + 10;
        for term in 3..3 + published {
            publisher.publish(follower_of(term));
        }
        match watching.next().await {
            Outgoing::Lagged(missed) => assert_eq!(missed, published - CHANGES_KEPT as u64),
            other => panic!("expected a lag notice, got {other:?}"),
        }
        let latest = 2 + published;
        assert_eq!(change(watching.next().await), (latest, latest));
    }
}
