//! When the survivors of a Tenure failover entered the new term and knew
//! the new leader, read from the nodes' own event logs
//! (`DATA-DIR/events.log`). Every line carries `mono-ns`, the host's
//! `CLOCK_MONOTONIC`, which the bench and every node on the machine share,
//! so these times are exact: no poll rounds them up, and reading a file
//! after the trial costs the nodes nothing during it (polling six
//! `/status` endpoints every millisecond does).

use std::path::Path;

/// One trial's moments, in ms after the fault was signalled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Moments {
    /// The first survivor entered a term after the old leader's: the
    /// first candidacy that passed its pre-vote.
    pub candidacy_ms: f64,
    /// The new leader took office.
    pub elected_ms: f64,
    /// The last survivor knew the new leader (what the polled figure
    /// approximates).
    pub agreed_ms: f64,
}

/// What one node's log says about one failover: when it entered a term
/// above `old_term`, and when it knew `leader` as the leader of `term`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeMoments {
    /// It entered a term above the old leader's.
    pub entered_ns: Option<u64>,
    /// It knew the new leader (as its follower, or as the leader itself).
    pub knew_ns: Option<u64>,
    /// It is the new leader, and took office then.
    pub led_ns: Option<u64>,
}

/// Reads `log` from byte `from` on (its length before the fault) for
/// [`NodeMoments`]; a missing or unreadable log gives none.
pub fn node_moments(log: &Path, from: u64, old_term: u64, leader: &str, term: u64) -> NodeMoments {
    let Ok(bytes) = std::fs::read(log) else {
        return NodeMoments::default();
    };
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    scan(&text, old_term, leader, term)
}

/// [`node_moments`] over the text of the log's new lines.
fn scan(text: &str, old_term: u64, leader: &str, term: u64) -> NodeMoments {
    let mut found = NodeMoments::default();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(at) = event["mono-ns"].as_u64() else {
            continue;
        };
        let knew = match event["event"].as_str() {
            Some("term-changed") => {
                if event["new"].as_u64().is_some_and(|t| t > old_term) {
                    found.entered_ns.get_or_insert(at);
                }
                false
            }
            Some("became-leader") => {
                let led =
                    event["term"].as_u64() == Some(term) && event["node"].as_str() == Some(leader);
                if led {
                    found.led_ns.get_or_insert(at);
                }
                led
            }
            Some("became-follower") => {
                event["term"].as_u64() == Some(term) && event["leader"].as_str() == Some(leader)
            }
            _ => false,
        };
        if knew {
            found.knew_ns.get_or_insert(at);
        }
    }
    found
}

/// The trial's [`Moments`] from every survivor's, `fault_ns` being when
/// the fault was signalled; `None` unless every survivor knew the leader.
pub fn trial_moments(fault_ns: u64, nodes: &[NodeMoments]) -> Option<Moments> {
    let leader_ns = nodes.iter().find_map(|n| n.led_ns);
    let ms = |ns: u64| ns.saturating_sub(fault_ns) as f64 / 1e6;
    let agreed = nodes
        .iter()
        .map(|n| n.knew_ns)
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .max()?;
    let candidacy = nodes.iter().filter_map(|n| n.entered_ns).min()?;
    Some(Moments {
        candidacy_ms: ms(candidacy),
        elected_ms: ms(leader_ns?),
        agreed_ms: ms(agreed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"{"at-ms":1,"event":"became-follower","leader":"n1","mono-ns":90,"node":"n2","term":14}
{"at-ms":1,"event":"term-changed","mono-ns":100,"new":15,"node":"n2","old":14}
not json
{"at-ms":1,"event":"became-leader","mono-ns":140,"node":"n2","term":15}
{"at-ms":1,"event":"term-changed","mono-ns":200,"new":16,"node":"n2","old":15}
"#;

    #[test]
    fn finds_the_entry_into_a_new_term_and_the_leader_taking_office() {
        let leader = scan(LOG, 14, "n2", 15);
        assert_eq!(leader.entered_ns, Some(100), "the first new term counts");
        assert_eq!((leader.knew_ns, leader.led_ns), (Some(140), Some(140)));
        // Another node's leadership of term 15 is not "n3 leads".
        assert_eq!(scan(LOG, 14, "n3", 15).knew_ns, None);
        // Following the old leader in the old term is not knowing the new.
        assert_eq!(scan(LOG, 14, "n1", 14).knew_ns, Some(90));
        assert_eq!(scan(LOG, 14, "n1", 15).knew_ns, None);
    }

    #[test]
    fn a_follower_knows_the_leader_by_its_became_follower_line() {
        let log = r#"{"event":"term-changed","mono-ns":120,"new":15,"old":14}
{"event":"became-follower","leader":null,"mono-ns":121,"term":15}
{"event":"became-follower","leader":"n2","mono-ns":150,"term":15}"#;
        let follower = scan(log, 14, "n2", 15);
        let expected = NodeMoments {
            entered_ns: Some(120),
            knew_ns: Some(150),
            led_ns: None,
        };
        assert_eq!(follower, expected);
    }

    #[test]
    fn a_trial_is_agreed_when_the_last_survivor_knew_and_not_before() {
        let leader = NodeMoments {
            entered_ns: Some(1_100_000),
            knew_ns: Some(1_400_000),
            led_ns: Some(1_400_000),
        };
        let follower = NodeMoments {
            entered_ns: Some(1_200_000),
            knew_ns: Some(1_500_000),
            led_ns: None,
        };
        let m = trial_moments(1_000_000, &[leader, follower]).expect("agreed");
        assert_eq!((m.candidacy_ms, m.elected_ms, m.agreed_ms), (0.1, 0.4, 0.5));
        let unaware = NodeMoments::default();
        assert_eq!(trial_moments(1_000_000, &[leader, unaware]), None);
    }
}
