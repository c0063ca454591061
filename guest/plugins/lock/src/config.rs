//! The lock service's configuration: `grace-ms` and `max-ttl-ms`, read with
//! the SDK's [`tenure_sdk::Config`] (which names the key in every refusal).

use tenure_sdk::ConfigError;

/// `grace-ms` when not configured.
pub const DEFAULT_GRACE_MS: u64 = 2000;
/// `max-ttl-ms` when not configured.
pub const DEFAULT_MAX_TTL_MS: u64 = 60_000;
/// The smallest `max-ttl-ms` accepted, in milliseconds.
pub const MIN_MAX_TTL_MS: u64 = 1;

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How long a new leader refuses requests, in milliseconds, so that
    /// grants made by earlier leaders expire first. Should be at least the
    /// longest TTL clients use. 0 serves at once (unsafe across failovers).
    pub grace_ms: u64,
    /// The longest TTL granted, in milliseconds; at least [`MIN_MAX_TTL_MS`].
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
    /// Validates the pairs handed to `init`. Unknown keys, keys given
    /// twice and bad values are refused with the key named, so a typo does
    /// not silently fall back to a default.
    pub fn parse(config: &tenure_sdk::Config) -> Result<Config, ConfigError> {
        config.allow_only(&["grace-ms", "max-ttl-ms"])?;
        // Any count of milliseconds, 0 included, is a valid grace period.
        let grace_ms = config.parse_or("grace-ms", DEFAULT_GRACE_MS)?;
        let max_ttl_ms = config.parse_or("max-ttl-ms", DEFAULT_MAX_TTL_MS)?;
        if max_ttl_ms < MIN_MAX_TTL_MS {
            return Err(ConfigError::Invalid {
                key: "max-ttl-ms".into(),
                value: max_ttl_ms.to_string(),
                reason: format!("must be at least {MIN_MAX_TTL_MS} (milliseconds)"),
            });
        }
        Ok(Config {
            grace_ms,
            max_ttl_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::parse(&tenure_sdk::Config::from_pairs(items.iter().copied()))
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(
            parse(&[]),
            Ok(Config {
                grace_ms: 2000,
                max_ttl_ms: 60_000
            })
        );
        assert_eq!(
            parse(&[("grace-ms", "0"), ("max-ttl-ms", "500")]),
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
                "`grace-ms`: cannot read \"soon\": invalid digit",
            ),
            (vec![("grace-ms", "-1")], "`grace-ms`"),
            (vec![("grace-ms", "")], "`grace-ms`"),
            (
                vec![("max-ttl-ms", "0")],
                "`max-ttl-ms`: cannot read \"0\": must be at least 1 (milliseconds)",
            ),
            (vec![("max-ttl-ms", "1m")], "`max-ttl-ms`"),
            (vec![("max-ttl", "5")], "`max-ttl`: unknown key"),
            (
                vec![("grace-ms", "1"), ("grace-ms", "2")],
                "`grace-ms`: given twice",
            ),
        ] {
            let error = parse(&items).expect_err("refused").to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }
}
