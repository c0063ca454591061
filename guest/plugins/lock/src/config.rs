//! The lock service's configuration: `grace-ms` and `max-ttl-ms`.

/// `grace-ms` when not configured.
pub const DEFAULT_GRACE_MS: u64 = 2000;
/// `max-ttl-ms` when not configured.
pub const DEFAULT_MAX_TTL_MS: u64 = 60_000;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long a new leader refuses requests, in milliseconds, so that
    /// grants made by earlier leaders expire first. Should be at least the
    /// longest TTL clients use. 0 serves at once (unsafe across failovers).
    pub grace_ms: u64,
    /// The longest TTL granted, in milliseconds; at least 1.
    pub max_ttl_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace_ms: DEFAULT_GRACE_MS,
            max_ttl_ms: DEFAULT_MAX_TTL_MS,
        }
    }
}

impl Config {
    /// Validates the key/value pairs handed to `init`. Unknown keys, keys
    /// given twice and bad values are refused with the key named, so a
    /// typo does not silently fall back to a default.
    pub fn parse(pairs: &[(String, String)]) -> Result<Config, String> {
        let mut config = Config::default();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key.as_str()) {
                return Err(format!("`{key}`: given twice"));
            }
            seen.push(key);
            match key.as_str() {
                "grace-ms" => config.grace_ms = parse_ms(key, value, 0)?,
                "max-ttl-ms" => config.max_ttl_ms = parse_ms(key, value, 1)?,
                _ => {
                    return Err(format!(
                        "`{key}`: unknown key (the lock service takes `grace-ms` and `max-ttl-ms`)"
                    ));
                }
            }
        }
        Ok(config)
    }
}

/// Parses a millisecond count of at least `min` for `key`.
fn parse_ms(key: &str, value: &str, min: u64) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(ms) if ms >= min => Ok(ms),
        _ => Err(format!(
            "`{key}`: must be an integer of at least {min} (milliseconds), got {value:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(
            Config::parse(&[]),
            Ok(Config {
                grace_ms: 2000,
                max_ttl_ms: 60_000
            })
        );
        assert_eq!(
            Config::parse(&pairs(&[("grace-ms", "0"), ("max-ttl-ms", "500")])),
            Ok(Config {
                grace_ms: 0,
                max_ttl_ms: 500
            })
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (items, expected) in [
            (
                vec![("grace-ms", "soon")],
                "`grace-ms`: must be an integer of at least 0",
            ),
            (
                vec![("max-ttl-ms", "0")],
                "`max-ttl-ms`: must be an integer of at least 1",
            ),
            (vec![("max-ttl", "5")], "`max-ttl`: unknown key"),
            (
                vec![("grace-ms", "1"), ("grace-ms", "2")],
                "`grace-ms`: given twice",
            ),
        ] {
            let error = Config::parse(&pairs(&items)).expect_err("refused");
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }
}
