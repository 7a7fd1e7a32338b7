//! The loader's error type and the warnings it collects.

use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded. Each variant displays as one
/// line starting with `config error:` that names the key path and, where a
/// value was given, the value and what was expected. When the layer that set
/// the value is known it is named at the end (`(from /etc/girder.conf)`,
/// `(from env GIRDER_MQTT__MAX_INFLIGHT)`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value has the wrong type, shape or range.
    #[error("config error: {path} = {value}: {reason}{}", OriginSuffix(.origin))]
    Invalid {
        /// Dotted key path, e.g. `mqtt.max_packet_size`.
        path: String,
        /// The value as given, e.g. `"12XB"`.
        value: String,
        /// What was expected, e.g. `expected a byte size such as 1MB or 1048576`.
        reason: String,
        /// The layer that set the value, when known.
        origin: Option<String>,
    },
    /// A key that the schema does not have.
    #[error("config error: unknown key {path}{}", OriginSuffix(.origin))]
    UnknownKey {
        /// Dotted key path, e.g. `mqtt.max_pakcet_size`.
        path: String,
        /// The layer that set the key, when known.
        origin: Option<String>,
    },
    /// A key that has no default and was not given.
    #[error("config error: missing key {path}")]
    MissingKey {
        /// Dotted key path.
        path: String,
    },
    /// A HOCON syntax or substitution error.
    #[error("config error: {origin}:{line}:{column}: {message}")]
    Syntax {
        /// The file name (or `defaults`, `env NAME`).
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser found.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("config error: cannot read {}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A command-line override that is not `key.path=value`.
    #[error("config error: override {arg:?}: expected key.path=value")]
    BadOverride {
        /// The argument as given.
        arg: String,
    },
    /// The `config` crate failed to stack the layers.
    #[error("config error: {0}")]
    Layering(String),
}

impl ConfigError {
    /// The dotted key path the error is about, if it is about one key.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Invalid { path, .. } | Self::UnknownKey { path, .. } => Some(path),
            Self::MissingKey { path } => Some(path),
            _ => None,
        }
    }

    /// Builds an [`ConfigError::Invalid`] for a validation failure.
    pub(crate) fn invalid(path: &str, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.to_owned(),
            value: value.to_string(),
            reason: reason.into(),
            origin: None,
        }
    }

    /// Attaches the layer that set the offending value, if not known yet.
    pub(crate) fn with_origin(mut self, layer: Option<String>) -> Self {
        if let Self::Invalid { origin, .. } | Self::UnknownKey { origin, .. } = &mut self {
            if origin.is_none() {
                *origin = layer;
            }
        }
        self
    }
}

/// Renders the ` (from <layer>)` suffix of an error line.
struct OriginSuffix<'a>(&'a Option<String>);

impl fmt::Display for OriginSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(origin) => write!(f, " (from {origin})"),
            None => Ok(()),
        }
    }
}

/// Something worth telling the operator that does not stop the node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// An environment variable with a known root (`GIRDER_MQTT__...`) names a
    /// key that does not exist; it was ignored, as EMQX ignores it.
    UnknownEnvVar {
        /// The variable's name.
        var: String,
        /// The key path it maps to.
        path: String,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownEnvVar { var, path } => write!(
                f,
                "unknown environment variable {var} ignored: {path} is not a configuration key"
            ),
        }
    }
}
