//! The protocol's typed refusals, in words an operator can act on.

use crate::bindings::types::{CampaignRefusal, ChangeRefusal};

/// One sentence that says why the node did not stand, and what to do.
/// (The bindings' own `Display` prints the variant's debug form.)
///
/// ```
/// use tenure_host::protocol::explain_campaign_refusal;
/// use tenure_host::types::{CampaignRefusal, Loyalty};
/// let loyal = CampaignRefusal::Loyal(Loyalty { leader: Some("n1".into()), for_ms: 120 });
/// assert_eq!(
///     explain_campaign_refusal(&loyal),
///     "it is loyal to leader n1 for 120 ms more (that leader's lease may rest on it); \
///      try again then, or transfer leadership to it"
/// );
/// ```
pub fn explain_campaign_refusal(refusal: &CampaignRefusal) -> String {
    match refusal {
        CampaignRefusal::Leading(term) => format!("it already leads term {term}"),
        CampaignRefusal::Observer => "it is an observer: it never stands".into(),
        CampaignRefusal::Removed => "it was removed with leave: it never stands".into(),
        CampaignRefusal::NotAdmitted => {
            "it is joining and no leader has admitted it yet: it stands once one has".into()
        }
        CampaignRefusal::Loyal(loyalty) => {
            let leader = loyalty.leader.as_deref().unwrap_or("(just restarted)");
            format!(
                "it is loyal to leader {leader} for {} ms more (that leader's lease may \
                 rest on it); try again then, or transfer leadership to it",
                loyalty.for_ms
            )
        }
        CampaignRefusal::TermCeiling(term) => {
            format!("its term {term} is at the ceiling; only a faulty peer pushes a term that far")
        }
        CampaignRefusal::StandingAside(for_ms) => format!(
            "it stands aside for {for_ms} ms more (its plugin refused to lead); try again then"
        ),
        CampaignRefusal::NotStarted => "the protocol has not started".into(),
        CampaignRefusal::LostState => "it lost its state (its peers remember another data id \
             for it), so it never votes or stands again; remove it with leave on the leader \
             and start it under a new node id"
            .into(),
        CampaignRefusal::Unconfirmed(c) => format!(
            "only {} of the {} peers it needs have confirmed its data id yet (it asked them \
             again); try again once they answer",
            c.have, c.need
        ),
    }
}

/// One sentence that says why a transfer or a removal was refused, and
/// what to do.
///
/// ```
/// use tenure_host::protocol::explain_change_refusal;
/// use tenure_host::types::ChangeRefusal;
/// assert_eq!(
///     explain_change_refusal(&ChangeRefusal::NotLeader(Some("n1".into()))),
///     "this node does not lead: ask n1 (transfers and membership changes go through the leader)"
/// );
/// ```
pub fn explain_change_refusal(refusal: &ChangeRefusal) -> String {
    match refusal {
        ChangeRefusal::NotLeader(leader) => format!(
            "this node does not lead: ask {} (transfers and membership changes go through the \
             leader)",
            leader.as_deref().unwrap_or("the leader, once there is one")
        ),
        ChangeRefusal::UnknownNode(node) => format!("{node} is not a member of this cluster"),
        ChangeRefusal::AlreadyLeads => "the target is this node, which already leads".into(),
        ChangeRefusal::NotHeardLately(node) => {
            format!("{node} has not been heard from recently; it may be down")
        }
        ChangeRefusal::TransferUnderWay(t) => format!(
            "a transfer to {} is under way; it ends within {} ms, try again then",
            t.to, t.for_ms
        ),
        ChangeRefusal::LeaderMustTransfer => {
            "this node leads; transfer leadership before it leaves".into()
        }
        ChangeRefusal::ChangePending => "the last membership change has not settled (no \
             majority has acknowledged it yet); try again in a heartbeat or two (with a \
             majority down, the membership cannot change)"
            .into(),
        ChangeRefusal::NotStarted => "the protocol has not started".into(),
    }
}

/// How an HTTP API answers a refusal: the status code and, when asking
/// again later may succeed without anyone acting, after how many seconds
/// (`Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpRefusal {
    /// 403: this node never does it; 404: no such member; 409: not in
    /// this state (ask the leader, pick another target); 503: not yet.
    pub status: u16,
    /// Seconds, rounded up, for `Retry-After` with a 503.
    pub retry_after_s: Option<u64>,
}

impl HttpRefusal {
    fn new(status: u16) -> Self {
        HttpRefusal {
            status,
            retry_after_s: None,
        }
    }

    fn retry(ms: u64) -> Self {
        HttpRefusal {
            status: 503,
            retry_after_s: Some(ms.div_ceil(1000).max(1)),
        }
    }
}

/// The HTTP answer to a refused `campaign`.
pub fn campaign_refusal_http(refusal: &CampaignRefusal) -> HttpRefusal {
    match refusal {
        CampaignRefusal::Observer
        | CampaignRefusal::Removed
        | CampaignRefusal::LostState
        | CampaignRefusal::TermCeiling(_) => HttpRefusal::new(403),
        CampaignRefusal::Leading(_) | CampaignRefusal::NotAdmitted => HttpRefusal::new(409),
        CampaignRefusal::Loyal(l) => HttpRefusal::retry(l.for_ms),
        CampaignRefusal::StandingAside(for_ms) => HttpRefusal::retry(*for_ms),
        CampaignRefusal::Unconfirmed(_) | CampaignRefusal::NotStarted => HttpRefusal::retry(1_000),
    }
}

/// The HTTP answer to a refused transfer or removal.
pub fn change_refusal_http(refusal: &ChangeRefusal) -> HttpRefusal {
    match refusal {
        ChangeRefusal::UnknownNode(_) => HttpRefusal::new(404),
        ChangeRefusal::NotLeader(_)
        | ChangeRefusal::AlreadyLeads
        | ChangeRefusal::NotHeardLately(_)
        | ChangeRefusal::LeaderMustTransfer => HttpRefusal::new(409),
        ChangeRefusal::TransferUnderWay(t) => HttpRefusal::retry(t.for_ms),
        ChangeRefusal::ChangePending | ChangeRefusal::NotStarted => HttpRefusal::retry(1_000),
    }
}
