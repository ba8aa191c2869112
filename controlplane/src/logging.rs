//! The manager's log filter, which Kyma's overrides ConfigMap changes while the manager runs
//! (`global.logLevel`, see [`crate::telemetry::Overrides`]).
//!
//! The binary installs the filter through a `tracing_subscriber::reload` layer; [`LogFilter`] is the
//! handle on it. An override replaces the whole filter with one level (Kyma's manager has one zap
//! level for everything it logs); no override restores the filter the manager was started with
//! (`--log-level`), as Kyma falls back to its default level.

use std::sync::Arc;

use tracing_subscriber::reload;
use tracing_subscriber::{EnvFilter, Registry};

/// A level `global.logLevel` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`, and zap's `dpanic`, `panic` and `fatal`, which log errors only.
    Error,
}

/// The filter cannot be built or swapped.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The directives do not parse.
    #[error("log filter '{filter}' is not valid: {source}")]
    Filter {
        /// The directives.
        filter: String,
        /// Cause.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    /// The subscriber holding the filter is gone.
    #[error("cannot change the log filter: {0}")]
    Reload(#[source] reload::Error),
}

/// The handle on the installed filter; clones share it.
#[derive(Clone)]
pub struct LogFilter {
    inner: Arc<Inner>,
}

struct Inner {
    handle: reload::Handle<EnvFilter, Registry>,
    /// The filter the manager was started with.
    base: String,
}

// === impl LogLevel ===

impl LogLevel {
    /// Reads one of zap's level names (`debug`, `info`, `warn`, `error`, `dpanic`, `panic`,
    /// `fatal`, in lower or upper case), as Kyma's manager does.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" => Some(Self::Warn),
            "error" | "dpanic" | "panic" | "fatal" => Some(Self::Error),
            _ => None,
        }
    }

    /// The `tracing` directive.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

// === impl LogFilter ===

impl LogFilter {
    /// A filter starting as `base` (`EnvFilter` directives, e.g. `info` or
    /// `telemetry_manager=debug`), and the layer to install directly on the [`Registry`].
    pub fn new(base: &str) -> Result<(reload::Layer<EnvFilter, Registry>, Self), LoggingError> {
        let filter = parse(base)?;
        let (layer, handle) = reload::Layer::new(filter);
        Ok((layer, Self { inner: Arc::new(Inner { handle, base: base.to_string() }) }))
    }

    /// Filters by `level` alone, or by the starting filter again when `None`.
    pub fn set_level(&self, level: Option<LogLevel>) -> Result<(), LoggingError> {
        let directives = match level {
            Some(level) => level.as_str(),
            None => self.inner.base.as_str(),
        };
        let filter = parse(directives)?;
        self.inner.handle.reload(filter).map_err(LoggingError::Reload)
    }

    /// The filter in force, as directives.
    pub fn current(&self) -> String {
        self.inner.handle.with_current(ToString::to_string).unwrap_or_default()
    }
}

impl std::fmt::Debug for LogFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFilter").field("base", &self.inner.base).finish_non_exhaustive()
    }
}

/// The same handle.
impl PartialEq for LogFilter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

// === free functions ===

fn parse(directives: &str) -> Result<EnvFilter, LoggingError> {
    EnvFilter::try_new(directives)
        .map_err(|source| LoggingError::Filter { filter: directives.to_string(), source })
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Mutex;

    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Collects what the fmt layer writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    /// Scenario: a subscriber started at `info`; `global.logLevel: debug`, then `error`, then the
    /// override removed; debug, info and error events after each change.
    /// Guarantees: debug lines appear only under the `debug` override, `error` hides info lines, and
    /// without an override the starting filter holds again.
    #[test]
    fn the_override_changes_what_is_logged() {
        let (layer, filter) = LogFilter::new("info").unwrap();
        let out = Captured::default();
        let writer = out.clone();
        let fmt = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone());
        let subscriber = tracing_subscriber::registry().with(layer).with(fmt);
        tracing::subscriber::with_default(subscriber, || {
            let emit = || {
                tracing::debug!("d-line");
                tracing::info!("i-line");
                tracing::error!("e-line");
                out.take()
            };
            let logged = emit();
            assert!(!logged.contains("d-line") && logged.contains("INFO") && logged.contains("i-line"));

            filter.set_level(Some(LogLevel::Debug)).unwrap();
            assert_eq!(filter.current(), "debug");
            let logged = emit();
            assert!(logged.contains("DEBUG") && logged.contains("d-line"), "{logged}");

            filter.set_level(Some(LogLevel::Error)).unwrap();
            let logged = emit();
            assert!(!logged.contains("i-line") && logged.contains("e-line"), "{logged}");

            filter.set_level(None).unwrap();
            assert_eq!(filter.current(), "info");
            let logged = emit();
            assert!(!logged.contains("d-line") && logged.contains("i-line"), "{logged}");
        });
    }

    /// Scenario: zap's level names in either case, and words that are no level.
    /// Guarantees: each of zap's names maps to the level that logs the same, anything else is refused.
    #[test]
    fn reads_zap_level_names() {
        for (text, level) in [
            ("debug", LogLevel::Debug),
            ("DEBUG", LogLevel::Debug),
            ("info", LogLevel::Info),
            ("warn", LogLevel::Warn),
            ("error", LogLevel::Error),
            ("dpanic", LogLevel::Error),
            ("fatal", LogLevel::Error),
        ] {
            assert_eq!(LogLevel::parse(text), Some(level), "{text}");
        }
        assert_eq!(LogLevel::parse("verbose"), None);
        assert_eq!(LogLevel::parse(""), None);
    }
}
