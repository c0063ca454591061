//! Logging macros: `format!` then [`crate::node::log`] at one level.

/// Logs a formatted line at [`crate::Level::Info`]: what the behaviour
/// did. The simulator's trace shows it as `plugin: …`.
///
/// ```
/// let term = 3;
/// tenure_sdk::info!("leading term {term}");
/// ```
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => {
        $crate::node::log($crate::Level::Info, &::std::format!($($arg)*))
    };
}

/// Logs a formatted line at [`crate::Level::Warn`].
///
/// ```
/// tenure_sdk::warn!("peer {} is silent", "n2");
/// ```
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {
        $crate::node::log($crate::Level::Warn, &::std::format!($($arg)*))
    };
}

/// Logs a formatted line at [`crate::Level::Error`].
///
/// ```
/// tenure_sdk::error!("cannot reach {}", "db");
/// ```
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => {
        $crate::node::log($crate::Level::Error, &::std::format!($($arg)*))
    };
}

/// Logs a formatted line at [`crate::Level::Debug`] (not in the
/// simulator's trace, nor in a node's log by default).
///
/// ```
/// tenure_sdk::debug!("ignoring wake-up {}", 7);
/// ```
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => {
        $crate::node::log($crate::Level::Debug, &::std::format!($($arg)*))
    };
}

/// Logs a formatted line at [`crate::Level::Trace`].
///
/// ```
/// tenure_sdk::trace!("state {:?}", (1, 2));
/// ```
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        $crate::node::log($crate::Level::Trace, &::std::format!($($arg)*))
    };
}
