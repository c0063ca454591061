//! The state handed to the next version on a hot swap, as UTF-8 text: a
//! header line, then `KEY VALUE` lines, e.g.
//!
//! ```text
//! tenure-plugin-scheduler 1
//! runs 42
//! last-run-term 3
//! pending 17
//! ```
//!
//! `last-run-term` is absent before the first run, `pending` when no tick
//! is scheduled.

/// The first line of every snapshot: format name and version.
const HEADER: &str = "tenure-plugin-scheduler 1";

/// What a scheduler hands over.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Runs so far, so numbering continues in the next version.
    pub runs: u64,
    /// The term of the last run, if any.
    pub last_run_term: Option<u64>,
    /// The id of the pending tick. Wake-ups are handed to the next version
    /// with the swap, so it must know this one's id to accept it.
    pub pending: Option<u64>,
}

impl State {
    /// The snapshot text (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut text = format!("{HEADER}\nruns {}\n", self.runs);
        if let Some(term) = self.last_run_term {
            text.push_str(&format!("last-run-term {term}\n"));
        }
        if let Some(id) = self.pending {
            text.push_str(&format!("pending {id}\n"));
        }
        text.into_bytes()
    }

    /// Reads a snapshot written by [`State::encode`]. An empty snapshot
    /// means no state; anything else malformed is refused with the reason.
    pub fn decode(snapshot: &[u8]) -> Result<State, String> {
        if snapshot.is_empty() {
            return Ok(State::default());
        }
        let text =
            std::str::from_utf8(snapshot).map_err(|_| "snapshot is not UTF-8 text".to_string())?;
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!(
                "snapshot is not a scheduler snapshot (expected first line `{HEADER}`)"
            ));
        }
        let mut runs = None;
        let mut last_run_term = None;
        let mut pending = None;
        for (number, line) in lines.enumerate().map(|(i, l)| (i + 2, l)) {
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| format!("snapshot line {number}: expected `KEY VALUE`"))?;
            let slot = match key {
                "runs" => &mut runs,
                "last-run-term" => &mut last_run_term,
                "pending" => &mut pending,
                _ => return Err(format!("snapshot line {number}: unknown key `{key}`")),
            };
            let value = value
                .parse::<u64>()
                .map_err(|_| format!("snapshot line {number}: `{value}` is not a number"))?;
            if slot.replace(value).is_some() {
                return Err(format!("snapshot line {number}: `{key}` given twice"));
            }
        }
        Ok(State {
            runs: runs.ok_or("snapshot lacks `runs`")?,
            last_run_term,
            pending,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for state in [
            State::default(),
            State {
                runs: 42,
                last_run_term: Some(3),
                pending: Some(17),
            },
            State {
                runs: 1,
                last_run_term: Some(9),
                pending: None,
            },
        ] {
            assert_eq!(State::decode(&state.encode()), Ok(state));
        }
        assert_eq!(
            String::from_utf8_lossy(
                &State {
                    runs: 2,
                    last_run_term: Some(3),
                    pending: Some(4)
                }
                .encode()
            ),
            "tenure-plugin-scheduler 1\nruns 2\nlast-run-term 3\npending 4\n"
        );
    }

    #[test]
    fn empty_is_no_state() {
        assert_eq!(State::decode(b""), Ok(State::default()));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for (garbage, reason) in [
            (&b"\xff"[..], "not UTF-8"),
            (b"tenure-plugin-logger 1\n", "not a scheduler snapshot"),
            (b"tenure-plugin-scheduler 1\n", "lacks `runs`"),
            (b"tenure-plugin-scheduler 1\nruns", "line 2: expected"),
            (b"tenure-plugin-scheduler 1\nruns x", "`x` is not a number"),
            (
                b"tenure-plugin-scheduler 1\nruns 1\nruns 2",
                "`runs` given twice",
            ),
            (
                b"tenure-plugin-scheduler 1\nruns 1\nspeed 2",
                "unknown key `speed`",
            ),
        ] {
            let error = State::decode(garbage).expect_err("garbage");
            assert!(error.contains(reason), "{error:?} lacks {reason:?}");
        }
    }
}
