//! How callback arguments are printed in log lines: plain when they are
//! plain words, quoted and escaped otherwise, and long payloads cut short,
//! so one callback is always one readable line.

use std::fmt::Write as _;

/// Bytes of a payload shown before the rest is elided.
const SHOWN_BYTES: usize = 64;

/// A node id or tag: as is when it is a non-empty run of printable,
/// non-space ASCII without quotes or `=`, else quoted and escaped.
pub fn text(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=' && b != b'\\');
    if plain {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// A followed leader, or `none`.
pub fn leader(leader: Option<&str>) -> String {
    leader.map_or_else(|| "none".to_string(), text)
}

/// A payload: its first bytes, quoted with non-printable bytes escaped,
/// and its length, e.g. `"hello" (5 bytes)`.
pub fn bytes(payload: &[u8]) -> String {
    let shown = &payload[..payload.len().min(SHOWN_BYTES)];
    let more = if shown.len() < payload.len() {
        "..."
    } else {
        ""
    };
    format!(
        "\"{}\"{more} ({} bytes)",
        shown.escape_ascii(),
        payload.len()
    )
}

/// A config: `{key="value", ...}` in the order given.
pub fn config(pairs: &[(String, String)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in pairs.iter().enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        // Writing to a String cannot fail.
        let _ = write!(out, "{separator}{}={value:?}", text(key));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(text("n2"), "n2");
        assert_eq!(text("tick"), "tick");
        assert_eq!(text(""), "\"\"");
        assert_eq!(text("a b"), "\"a b\"");
        assert_eq!(text("x=1\n"), "\"x=1\\n\"");
    }

    #[test]
    fn leaders() {
        assert_eq!(leader(Some("n1")), "n1");
        assert_eq!(leader(None), "none");
    }

    #[test]
    fn payloads_are_escaped_and_cut_short() {
        assert_eq!(bytes(b"hello"), "\"hello\" (5 bytes)");
        assert_eq!(bytes(b"a\x00\"\n"), "\"a\\x00\\\"\\n\" (4 bytes)");
        let long = vec![b'x'; 100];
        let shown = bytes(&long);
        assert!(shown.ends_with("\"... (100 bytes)"), "{shown}");
        assert_eq!(shown.matches('x').count(), SHOWN_BYTES);
    }

    #[test]
    fn configs() {
        assert_eq!(config(&[]), "{}");
        let pairs = [
            ("job".to_string(), "backup".to_string()),
            ("period-ms".to_string(), "1000".to_string()),
        ];
        assert_eq!(config(&pairs), "{job=\"backup\", period-ms=\"1000\"}");
    }
}
