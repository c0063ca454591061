//! The error a callback returns to refuse something: a plugin config, a
//! leadership, a call, a snapshot.

use std::fmt;

use crate::config::ConfigError;

/// Why a callback refused: the text the host reports (in its log, to the
/// caller of `on-call`, or as the reason a swap was refused).
///
/// Build one from a `String` or `&str` (so `Err("no".into())` and `?` on a
/// [`ConfigError`] both work), or with [`Error::new`] from anything that
/// displays.
///
/// ```
/// use tenure_sdk::Error;
///
/// fn check(ttl_ms: u64) -> Result<(), Error> {
///     if ttl_ms == 0 {
///         return Err("TTL must be positive".into());
///     }
///     Ok(())
/// }
/// assert_eq!(check(0).unwrap_err().to_string(), "TTL must be positive");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    /// An error with `message`, which may be anything that displays
    /// (another error, say).
    ///
    /// ```
    /// let parse = "x".parse::<u64>().unwrap_err();
    /// let error = tenure_sdk::Error::new(format!("bad number: {parse}"));
    /// assert!(error.message().starts_with("bad number"));
    /// ```
    pub fn new(message: impl fmt::Display) -> Error {
        Error {
            message: message.to_string(),
        }
    }

    /// The text the host will see.
    ///
    /// ```
    /// assert_eq!(tenure_sdk::Error::from("busy").message(), "busy");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The text, owned: what crosses the WIT boundary.
    ///
    /// ```
    /// assert_eq!(tenure_sdk::Error::from("busy").into_message(), "busy");
    /// ```
    pub fn into_message(self) -> String {
        self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?})", self.message)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error { message }
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::from(message.to_string())
    }
}

impl From<ConfigError> for Error {
    fn from(error: ConfigError) -> Error {
        Error::new(error)
    }
}
