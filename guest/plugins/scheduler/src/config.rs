//! The scheduler's configuration: `period-ms` and `job`.

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
                "period-ms" => config.period_ms = parse_period(value)?,
                "job" => {
                    if value.trim().is_empty() {
                        return Err("`job`: must not be empty".to_string());
                    }
                    config.job.clone_from(value);
                }
                _ => {
                    return Err(format!(
                        "`{key}`: unknown key (the scheduler takes `period-ms` and `job`)"
                    ));
                }
            }
        }
        Ok(config)
    }
}

/// Parses `period-ms`: an integer of at least [`MIN_PERIOD_MS`].
fn parse_period(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(ms) if ms >= MIN_PERIOD_MS => Ok(ms),
        _ => Err(format!(
            "`period-ms`: must be an integer of at least {MIN_PERIOD_MS}, got {value:?}"
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
    fn defaults() {
        assert_eq!(
            Config::parse(&[]),
            Ok(Config {
                period_ms: 1000,
                job: "job".to_string()
            })
        );
    }

    #[test]
    fn values_are_read() {
        let config = Config::parse(&pairs(&[("period-ms", "10"), ("job", "backup")]));
        assert_eq!(
            config,
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
                "`period-ms`: must be an integer of at least 10, got \"9\"",
            ),
            (vec![("period-ms", "1s")], "`period-ms`"),
            (vec![("period-ms", "-5")], "`period-ms`"),
            (vec![("period-ms", "")], "`period-ms`"),
            (vec![("job", " ")], "`job`: must not be empty"),
            (vec![("period_ms", "100")], "`period_ms`: unknown key"),
            (vec![("job", "a"), ("job", "b")], "`job`: given twice"),
        ] {
            let error = Config::parse(&pairs(&items)).expect_err("refused");
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }
}
