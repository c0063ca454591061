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

use anyhow::{anyhow, bail};

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
    substitute(
        value,
        || anyhow!("`{key}`: {value:?} has a `${{` without its `}}`"),
        |name| {
            if !is_var_name(name) {
                bail!(
                    "`{key}`: {value:?}: `${{{name}}}` is not a variable name (letters, digits, _)"
                );
            }
            lookup(name).ok_or_else(|| {
                anyhow!(
                    "`{key}`: {value:?} names the environment variable {name}, which is not set"
                )
            })
        },
    )
}

/// `value` with every `${…}` reference replaced by what `resolve` makes
/// of the text between `${` and the next `}` (a variable's name, and
/// whatever else the caller's syntax allows: `NAME:-default` in a
/// scenario's plugin path); `unclosed` makes the error for a `${` with no
/// `}` after it. A `$` not followed by `{` stays as it is. The one scanner
/// behind every `${VAR}` the project expands (config values here,
/// scenario plugin paths in `scenario::values`), so they agree on what a
/// reference is.
///
/// ```
/// use tenure_host::config::env_vars::substitute;
/// let upper = |r: &str| Ok::<_, String>(r.to_uppercase());
/// assert_eq!(substitute("a${b}c$d", || "unclosed".to_string(), upper), Ok("aBc$d".into()));
/// assert_eq!(substitute("${b", || "unclosed".to_string(), upper), Err("unclosed".into()));
/// ```
pub fn substitute<E>(
    value: &str,
    unclosed: impl FnOnce() -> E,
    mut resolve: impl FnMut(&str) -> Result<String, E>,
) -> Result<String, E> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(unclosed());
        };
        out.push_str(&resolve(&after[..end])?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
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
