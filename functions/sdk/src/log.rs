//! Log records that the host keeps with the call's result.
//!
//! Use the macros [`error!`](crate::error), [`warn!`](crate::warn),
//! [`info!`](crate::info), [`debug!`](crate::debug) and
//! [`trace!`](crate::trace), which take `format!` arguments:
//!
//! ```
//! cloudless_sdk::info!("routing {} {}", "GET", "/items");
//! ```
//!
//! The host keeps at most 64 records and 16 KiB of messages per call and
//! counts the records that it drops, so log what helps to debug a call and
//! not every loop iteration.

use std::fmt;

/// Log level, with the numbers that `cloudless.log` expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
    Trace = 4,
}

impl Level {
    /// Lowercase name, as the host reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Sends `message` to the host at `level`.
pub fn log(level: Level, message: &str) {
    crate::host::write_log(level as i32, message);
}

/// Formats `args` and sends the result to the host. The macros call this.
#[doc(hidden)]
pub fn log_args(level: Level, args: fmt::Arguments<'_>) {
    // Plain string literals need no allocation.
    match args.as_str() {
        Some(message) => log(level, message),
        None => log(level, &args.to_string()),
    }
}

/// Logs at level error, with `format!` arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::log_args($crate::log::Level::Error, ::core::format_args!($($arg)+))
    };
}

/// Logs at level warn, with `format!` arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::log_args($crate::log::Level::Warn, ::core::format_args!($($arg)+))
    };
}

/// Logs at level info, with `format!` arguments.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::log_args($crate::log::Level::Info, ::core::format_args!($($arg)+))
    };
}

/// Logs at level debug, with `format!` arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::log_args($crate::log::Level::Debug, ::core::format_args!($($arg)+))
    };
}

/// Logs at level trace, with `format!` arguments.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::log_args($crate::log::Level::Trace, ::core::format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::Level;
    use crate::testing;

    #[test]
    fn macros_record_each_level() {
        testing::take_logs();
        crate::error!("e {}", 1);
        crate::warn!("w");
        crate::info!("i {}", "two");
        crate::debug!("d");
        crate::trace!("t {:?}", [3]);
        assert_eq!(
            testing::take_logs(),
            vec![
                (Level::Error, "e 1".to_string()),
                (Level::Warn, "w".to_string()),
                (Level::Info, "i two".to_string()),
                (Level::Debug, "d".to_string()),
                (Level::Trace, "t [3]".to_string()),
            ]
        );
    }

    #[test]
    fn take_logs_clears_records() {
        crate::info!("once");
        assert_eq!(testing::take_logs().len(), 1);
        assert!(testing::take_logs().is_empty());
    }

    #[test]
    fn level_numbers_match_host() {
        assert_eq!(Level::Error as i32, 0);
        assert_eq!(Level::Trace as i32, 4);
        assert_eq!(Level::Warn.to_string(), "warn");
    }
}
