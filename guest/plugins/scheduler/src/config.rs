//! The scheduler's configuration: `period-ms` and `job`, read with the
//! SDK's [`tenure_sdk::Config`] (which names the key in every refusal).

use tenure_sdk::ConfigError;

/// The shortest period accepted, in milliseconds.
pub const MIN_PERIOD_MS: u64 = 10;
/// `period-ms` when not configured.
pub const DEFAULT_PERIOD_MS: u64 = 1000;
/// `job` when not configured.
pub const DEFAULT_JOB: &str = "job";

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Time between runs, in milliseconds; at least [`MIN_PERIOD_MS`].
    pub period_ms: u64,
    /// The job's name, as it appears in the run log lines.
    pub job: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            period_ms: DEFAULT_PERIOD_MS,
            job: DEFAULT_JOB.to_string(),
        }
    }
}

impl Config {
    /// Validates the pairs handed to `init`. Unknown keys, keys given
    /// twice and bad values are refused with the key named, so a typo does
    /// not silently fall back to a default.
    pub fn parse(config: &tenure_sdk::Config) -> Result<Config, ConfigError> {
        config.allow_only(&["period-ms", "job"])?;
        let period_ms = config.parse_or("period-ms", DEFAULT_PERIOD_MS)?;
        if period_ms < MIN_PERIOD_MS {
            return Err(ConfigError::Invalid {
                key: "period-ms".into(),
                value: period_ms.to_string(),
                reason: format!("must be at least {MIN_PERIOD_MS}"),
            });
        }
        let job = config.get("job").unwrap_or(DEFAULT_JOB);
        if job.trim().is_empty() {
            return Err(ConfigError::Invalid {
                key: "job".into(),
                value: job.to_string(),
                reason: "must not be empty".into(),
            });
        }
        Ok(Config {
            period_ms,
            job: job.to_string(),
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
    fn defaults() {
        assert_eq!(
            parse(&[]),
            Ok(Config {
                period_ms: 1000,
                job: "job".to_string()
            })
        );
    }

    #[test]
    fn values_are_read() {
        assert_eq!(
            parse(&[("period-ms", "10"), ("job", "backup")]),
            Ok(Config {
                period_ms: 10,
                job: "backup".to_string()
            })
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (items, expected) in [
            (
                vec![("period-ms", "9")],
                "`period-ms`: cannot read \"9\": must be at least 10",
            ),
            (vec![("period-ms", "1s")], "`period-ms`"),
            (vec![("period-ms", "-5")], "`period-ms`"),
            (vec![("period-ms", "")], "`period-ms`"),
            (
                vec![("job", " ")],
                "`job`: cannot read \" \": must not be empty",
            ),
            (vec![("period_ms", "100")], "`period_ms`: unknown key"),
            (vec![("job", "a"), ("job", "b")], "`job`: given twice"),
        ] {
            let error = parse(&items).expect_err("refused").to_string();
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }
}
