//! The key/value configuration a node hands its plugin's `init` (the
//! `[plugin.config]` table of the node's TOML), with typed getters that
//! name the key in every refusal.

use std::fmt;
use std::str::FromStr;

/// A plugin's configuration, in the order the node gave it.
///
/// Values are strings: the node writes every TOML value as text
/// (`period-ms = 500` arrives as `"500"`). Read them with [`Config::get`]
/// or [`Config::parse_or`], and call [`Config::allow_only`] first so a typo
/// (`period_ms`) is refused instead of silently falling back to a default.
///
/// ```
/// use tenure_sdk::Config;
///
/// let config = Config::from_pairs([("period-ms", "500"), ("job", "backup")]);
/// config.allow_only(&["period-ms", "job"])?;
/// let period: u64 = config.parse_or("period-ms", 1000)?;
/// let job = config.get("job").unwrap_or("job");
/// assert_eq!((period, job), (500, "backup"));
/// # Ok::<(), tenure_sdk::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pairs: Vec<(String, String)>,
}

impl Config {
    /// A config of `pairs`, for tests (the SDK builds the real one from
    /// what `init` receives).
    ///
    /// ```
    /// let config = tenure_sdk::Config::from_pairs([("job", "backup")]);
    /// assert_eq!(config.len(), 1);
    /// ```
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Config
    where
        K: Into<String>,
        V: Into<String>,
    {
        Config {
            pairs: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Every pair, in order.
    ///
    /// ```
    /// let config = tenure_sdk::Config::from_pairs([("a", "1")]);
    /// assert_eq!(config.pairs(), [("a".to_string(), "1".to_string())]);
    /// ```
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// How many pairs there are.
    ///
    /// ```
    /// assert_eq!(tenure_sdk::Config::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether the node gave no config at all.
    ///
    /// ```
    /// assert!(tenure_sdk::Config::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The value of `key` (its first occurrence), if given.
    ///
    /// ```
    /// let config = tenure_sdk::Config::from_pairs([("job", "backup")]);
    /// assert_eq!(config.get("job"), Some("backup"));
    /// assert_eq!(config.get("nope"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key`, or a [`ConfigError::Missing`] naming it.
    ///
    /// ```
    /// let config = tenure_sdk::Config::default();
    /// let error = config.require("endpoint").unwrap_err();
    /// assert_eq!(error.to_string(), "`endpoint`: required");
    /// ```
    pub fn require(&self, key: &str) -> Result<&str, ConfigError> {
        self.get(key).ok_or_else(|| ConfigError::Missing {
            key: key.to_string(),
        })
    }

    /// `key` parsed as a `T` (surrounding whitespace ignored), `None` if it
    /// is absent, or a [`ConfigError::Invalid`] naming the key, the value
    /// and why it did not parse.
    ///
    /// ```
    /// let config = tenure_sdk::Config::from_pairs([("period-ms", "soon")]);
    /// assert_eq!(config.parse::<u64>("other"), Ok(None));
    /// let error = config.parse::<u64>("period-ms").unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "`period-ms`: cannot read \"soon\": invalid digit found in string"
    /// );
    /// ```
    pub fn parse<T>(&self, key: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        value
            .trim()
            .parse()
            .map(Some)
            .map_err(|e: T::Err| ConfigError::Invalid {
                key: key.to_string(),
                value: value.to_string(),
                reason: e.to_string(),
            })
    }

    /// `key` parsed as a `T`, or `default` when absent.
    ///
    /// ```
    /// let config = tenure_sdk::Config::from_pairs([("period-ms", "250")]);
    /// assert_eq!(config.parse_or("period-ms", 1000u64), Ok(250));
    /// assert_eq!(config.parse_or("grace-ms", 2000u64), Ok(2000));
    /// ```
    pub fn parse_or<T>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    /// Refuses keys not in `known` and keys given twice, so a typo is an
    /// error at start (or a refused swap) rather than a silent default.
    ///
    /// ```
    /// let config = tenure_sdk::Config::from_pairs([("period_ms", "5")]);
    /// let error = config.allow_only(&["period-ms", "job"]).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "`period_ms`: unknown key (known: `period-ms`, `job`)"
    /// );
    /// ```
    pub fn allow_only(&self, known: &[&str]) -> Result<(), ConfigError> {
        for (i, (key, _)) in self.pairs.iter().enumerate() {
            if !known.contains(&key.as_str()) {
                return Err(ConfigError::Unknown {
                    key: key.clone(),
                    known: known.iter().map(|k| k.to_string()).collect(),
                });
            }
            if self.pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(ConfigError::Duplicate { key: key.clone() });
            }
        }
        Ok(())
    }
}

/// What is wrong with a plugin's config; every variant names the key.
///
/// Converts into [`crate::Error`], so `?` in [`crate::Behaviour::init`]
/// refuses the config with this text.
///
/// ```
/// use tenure_sdk::ConfigError;
///
/// let error = ConfigError::Missing { key: "endpoint".into() };
/// assert_eq!(error.to_string(), "`endpoint`: required");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A key the plugin does not take.
    Unknown {
        /// The key given.
        key: String,
        /// The keys the plugin takes.
        known: Vec<String>,
    },
    /// A key given more than once.
    Duplicate {
        /// The key.
        key: String,
    },
    /// A required key that is absent.
    Missing {
        /// The key.
        key: String,
    },
    /// A value that does not parse.
    Invalid {
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// Why it does not parse.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Unknown { key, known } => {
                write!(f, "`{key}`: unknown key (known: ")?;
                for (i, k) in known.iter().enumerate() {
                    let separator = if i == 0 { "" } else { ", " };
                    write!(f, "{separator}`{k}`")?;
                }
                f.write_str(")")
            }
            ConfigError::Duplicate { key } => write!(f, "`{key}`: given twice"),
            ConfigError::Missing { key } => write!(f, "`{key}`: required"),
            ConfigError::Invalid { key, value, reason } => {
                write!(f, "`{key}`: cannot read {value:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused() {
        let config = Config::from_pairs([("a", "1"), ("a", "2")]);
        assert_eq!(
            config.allow_only(&["a"]),
            Err(ConfigError::Duplicate { key: "a".into() })
        );
        assert_eq!(config.get("a"), Some("1"));
    }

    #[test]
    fn whitespace_around_numbers_is_fine() {
        let config = Config::from_pairs([("n", " 7 ")]);
        assert_eq!(config.parse::<u32>("n"), Ok(Some(7)));
    }
}
