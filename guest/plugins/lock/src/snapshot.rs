//! The lock table handed to the next version on a hot swap, as UTF-8 text:
//! a header line, then `KEY VALUE...` lines, e.g.
//!
//! ```text
//! tenure-plugin-lock 1
//! term 5
//! seq 12
//! lock db app-1 12 5000 31
//! ```
//!
//! `term` is absent when not leading, `grace` (the warm-up wake-up's id)
//! present only while warming up, and each `lock NAME HOLDER SEQ TTL_MS
//! WAKEUP` line is one grant. Names and holders never contain whitespace,
//! since requests are split on it.

use std::collections::BTreeMap;

use tenure_sdk::WakeupId;

use crate::table::{Grant, Phase, Table};

/// The first line of every snapshot: format name and version.
const HEADER: &str = "tenure-plugin-lock 1";

/// The snapshot text of `table` (see the module docs).
pub fn encode(table: &Table) -> Vec<u8> {
    let mut text = format!("{HEADER}\n");
    if let Some(term) = table.phase.term() {
        text.push_str(&format!("term {term}\n"));
    }
    text.push_str(&format!("seq {}\n", table.seq));
    if let Phase::WarmingUp { grace, .. } = table.phase {
        text.push_str(&format!("grace {}\n", grace.as_raw()));
    }
    for (name, grant) in &table.locks {
        text.push_str(&format!(
            "lock {name} {} {} {} {}\n",
            grant.holder,
            grant.seq,
            grant.ttl_ms,
            grant.wakeup.as_raw()
        ));
    }
    text.into_bytes()
}

/// Reads a snapshot written by [`encode`]. An empty snapshot means no
/// state; anything malformed or inconsistent is refused with the reason.
pub fn decode(snapshot: &[u8]) -> Result<Table, String> {
    if snapshot.is_empty() {
        return Ok(Table::default());
    }
    let text =
        std::str::from_utf8(snapshot).map_err(|_| "snapshot is not UTF-8 text".to_string())?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(format!(
            "snapshot is not a lock snapshot (expected first line `{HEADER}`)"
        ));
    }
    let (mut term, mut seq, mut grace) = (None, None, None);
    let mut locks = BTreeMap::new();
    for (number, line) in lines.enumerate().map(|(i, l)| (i + 2, l)) {
        let words: Vec<&str> = line.split_ascii_whitespace().collect();
        let number_at = |i: usize| -> Result<u64, String> {
            words[i]
                .parse()
                .map_err(|_| format!("snapshot line {number}: `{}` is not a number", words[i]))
        };
        let slot = match words[..] {
            ["term", _] => &mut term,
            ["seq", _] => &mut seq,
            ["grace", _] => &mut grace,
            ["lock", name, holder, _, _, _] => {
                let grant = Grant {
                    holder: holder.to_string(),
                    seq: number_at(3)?,
                    ttl_ms: number_at(4)?,
                    wakeup: WakeupId::from_raw(number_at(5)?),
                };
                if locks.insert(name.to_string(), grant).is_some() {
                    return Err(format!("snapshot line {number}: lock `{name}` given twice"));
                }
                continue;
            }
            _ => return Err(format!("snapshot line {number}: unexpected {line:?}")),
        };
        if slot.replace(number_at(1)?).is_some() {
            return Err(format!(
                "snapshot line {number}: `{}` given twice",
                words[0]
            ));
        }
    }
    let phase = match (term, grace) {
        (None, None) => Phase::Following,
        (Some(term), None) => Phase::Serving { term },
        (Some(term), Some(grace)) => Phase::WarmingUp {
            term,
            grace: WakeupId::from_raw(grace),
        },
        (None, Some(_)) => return Err("snapshot has `grace` without `term`".to_string()),
    };
    let seq = seq.ok_or("snapshot lacks `seq`")?;
    if !locks.is_empty() && !matches!(phase, Phase::Serving { .. }) {
        return Err("snapshot has locks but was not serving".to_string());
    }
    if let Some((name, _)) = locks.iter().find(|(_, grant)| grant.seq > seq) {
        return Err(format!("snapshot: lock `{name}` has a SEQ above `seq`"));
    }
    Ok(Table { phase, seq, locks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serving() -> Table {
        let mut locks = BTreeMap::new();
        for (name, holder, seq) in [("db", "app-1", 11), ("queue", "app-2", 12)] {
            let grant = Grant {
                holder: holder.to_string(),
                seq,
                ttl_ms: 5000,
                wakeup: WakeupId::from_raw(30 + seq),
            };
            locks.insert(name.to_string(), grant);
        }
        Table {
            phase: Phase::Serving { term: 5 },
            seq: 12,
            locks,
        }
    }

    #[test]
    fn round_trips() {
        let warming = Table {
            phase: Phase::WarmingUp {
                term: 6,
                grace: WakeupId::from_raw(3),
            },
            seq: 0,
            locks: BTreeMap::new(),
        };
        for table in [Table::default(), serving(), warming] {
            assert_eq!(decode(&encode(&table)), Ok(table));
        }
        assert_eq!(
            String::from_utf8_lossy(&encode(&serving())),
            "tenure-plugin-lock 1\nterm 5\nseq 12\nlock db app-1 11 5000 41\nlock queue app-2 12 5000 42\n"
        );
    }

    #[test]
    fn empty_is_no_state() {
        assert_eq!(decode(b""), Ok(Table::default()));
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for (garbage, reason) in [
            (&b"\xff"[..], "not UTF-8"),
            (b"hello\n", "not a lock snapshot"),
            (b"tenure-plugin-lock 1\nterm 1\n", "lacks `seq`"),
            (b"tenure-plugin-lock 1\nseq x\n", "`x` is not a number"),
            (b"tenure-plugin-lock 1\nseq 1\nseq 1\n", "`seq` given twice"),
            (
                b"tenure-plugin-lock 1\nseq 1\ngrace 2\n",
                "`grace` without `term`",
            ),
            (
                b"tenure-plugin-lock 1\nseq 1\nlock a b 1 1 1\n",
                "was not serving",
            ),
            (
                b"tenure-plugin-lock 1\nterm 1\nseq 1\nlock a b 2 1 1\n",
                "SEQ above",
            ),
            (
                b"tenure-plugin-lock 1\nterm 1\nseq 1\nlock a b 1 1\n",
                "unexpected",
            ),
            (
                b"tenure-plugin-lock 1\nterm 1\nseq 2\nlock a b 1 1 1\nlock a c 2 1 2\n",
                "lock `a` given twice",
            ),
        ] {
            let error = decode(garbage).expect_err("garbage");
            assert!(error.contains(reason), "{error:?} lacks {reason:?}");
        }
    }
}
