//! The protocol's typed refusals, in words an operator can act on.

use crate::bindings::types::CampaignRefusal;

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
