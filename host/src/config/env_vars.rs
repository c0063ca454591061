//! `${VAR}` in config values that differ per node of one deployment.
//!
//! One config file serves a whole StatefulSet when each pod's id comes
//! from its environment: `node-id = "${HOSTNAME}"` gives `tenure-0`,
//! `tenure-1`, … (Kubernetes sets `HOSTNAME` to the pod's name). Only
//! `node-id` is expanded; the other per-node keys can come from
//! `TENURE_…` variables ([`super::overrides`]), and `TENURE_NODE_ID`
//! itself is one of them (it replaces the file's `node-id` before the
//! expansion, so `TENURE_NODE_ID='${HOSTNAME}'` works too).
//!
//! The syntax is deliberately small: `${NAME}` (NAME of ASCII letters,
//! digits and `_`, not starting with a digit) is replaced by the
//! variable's value; a `$` not followed by `{` stays as it is. A variable
//! that is unset is an error naming it — a node must never start with an
//! id it did not mean to have.

use anyhow::bail;

/// `value` with every `${NAME}` replaced by `lookup(NAME)`.
///
/// Fails naming `key` and the variable when one is unset, and on a `${`
/// without its `}` or with a name that is no variable name.
///
/// ```
/// use tenure_host::config::env_vars::expand;
/// let env = |name: &str| (name == "HOSTNAME").then(|| "tenure-1".to_string());
/// assert_eq!(expand("node-id", "${HOSTNAME}", env)?, "tenure-1");
/// assert_eq!(expand("node-id", "n-${HOSTNAME}-a", env)?, "n-tenure-1-a");
/// assert!(expand("node-id", "${POD}", env).unwrap_err().to_string().contains("POD"));
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn expand(
    key: &str,
    value: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<String> {
    let Some(pieces) = pieces(value) else {
        bail!("`{key}`: {value:?} has a `${{` without its `}}`");
    };
    let mut out = String::with_capacity(value.len());
    for piece in pieces {
        let name = match piece {
            Piece::Text(text) => {
                out.push_str(text);
                continue;
            }
            Piece::Reference(name) => name,
        };
        if !is_var_name(name) {
            bail!("`{key}`: {value:?}: `${{{name}}}` is not a variable name (letters, digits, _)");
        }
        match lookup(name) {
            Some(found) => out.push_str(&found),
            None => {
                bail!("`{key}`: {value:?} names the environment variable {name}, which is not set")
            }
        }
    }
    Ok(out)
}

/// One piece of a value split at its `${…}` references ([`pieces`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Text kept as it is (a `$` not followed by `{` included).
    Text(&'a str),
    /// What stands between `${` and the next `}`: a variable's name, and
    /// whatever else the caller's syntax allows (`NAME:-default` in a
    /// scenario's plugin path).
    Reference(&'a str),
}

/// Splits `value` into text and `${…}` references, in order; `None` when
/// a `${` has no `}` after it. The one scanner behind every `${VAR}` the
/// project expands (config values here, scenario plugin paths in
/// `scenario::values`), so they agree on what a reference is.
///
/// ```
/// use tenure_host::config::env_vars::{Piece, pieces};
/// assert_eq!(
///     pieces("a${B}c"),
///     Some(vec![Piece::Text("a"), Piece::Reference("B"), Piece::Text("c")])
/// );
/// assert_eq!(pieces("${B"), None);
/// ```
pub fn pieces(value: &str) -> Option<Vec<Piece<'_>>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        out.push(Piece::Reference(&after[..end]));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Some(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOSTNAME" => Some("tenure-2".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn variables_are_replaced_and_the_rest_kept() {
        assert_eq!(expand("k", "${HOSTNAME}", env).expect("ok"), "tenure-2");
        assert_eq!(
            expand("k", "a$b${HOSTNAME}$", env).expect("ok"),
            "a$btenure-2$"
        );
        assert_eq!(expand("k", "plain", env).expect("ok"), "plain");
        assert_eq!(expand("k", "${EMPTY}", env).expect("ok"), "");
    }

    #[test]
    fn unset_and_malformed_variables_are_errors_naming_them() {
        let unset = expand("node-id", "${POD_NAME}", env).expect_err("unset");
        let text = unset.to_string();
        assert!(
            text.contains("node-id") && text.contains("POD_NAME"),
            "{text}"
        );
        assert!(expand("k", "${HOSTNAME", env).is_err());
        assert!(expand("k", "${1X}", env).is_err());
        assert!(expand("k", "${}", env).is_err());
    }
}
