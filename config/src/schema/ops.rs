//! `log`, `prometheus`, `admin` and `sys_topics`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::check;
use crate::error::ConfigError;
use crate::types::{disabled_or, Bind, ByteSize, Duration};

keyword_enum! {
    /// EMQX's eight syslog levels, plus `trace`.
    pub enum LogLevel {
        /// Everything, including per-packet traces.
        Trace = "trace",
        /// Debugging detail.
        Debug = "debug",
        /// Informational.
        Info = "info",
        /// Normal but significant.
        Notice = "notice",
        /// Warnings (the default).
        Warning = "warning",
        /// Errors.
        Error = "error",
        /// Critical conditions.
        Critical = "critical",
        /// Action needed now.
        Alert = "alert",
        /// The system is unusable.
        Emergency = "emergency",
    }
    default Warning
}

impl LogLevel {
    /// The `tracing` level this maps to (`notice` → info; `critical`,
    /// `alert`, `emergency` → error), as a filter directive.
    pub const fn tracing_directive(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info | Self::Notice => "info",
            Self::Warning => "warn",
            Self::Error | Self::Critical | Self::Alert | Self::Emergency => "error",
        }
    }
}

keyword_enum! {
    /// Log line format.
    pub enum LogFormatter {
        /// `2026-05-06T03:00:48.738654+00:00 [error] msg: ...`.
        Text = "text",
        /// One JSON object per line.
        Json = "json",
    }
    default Text
}

/// `log.console` (EMQX 5.0 spelling `log.console_handler` accepted).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleLog {
    /// Log to standard output.
    pub enable: bool,
    /// Lowest level logged.
    pub level: LogLevel,
    /// Line format.
    pub formatter: LogFormatter,
}

impl Default for ConsoleLog {
    fn default() -> Self {
        Self {
            enable: true,
            level: LogLevel::Warning,
            formatter: LogFormatter::Text,
        }
    }
}

/// `log.file`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileLog {
    /// Log to a file.
    pub enable: bool,
    /// Lowest level logged.
    pub level: LogLevel,
    /// Line format.
    pub formatter: LogFormatter,
    /// The log file.
    pub path: PathBuf,
    /// Rotated files kept.
    pub rotation_count: u32,
    /// Rotate when the file reaches this size.
    pub rotation_size: ByteSize,
}

impl Default for FileLog {
    fn default() -> Self {
        Self {
            enable: false,
            level: LogLevel::Warning,
            formatter: LogFormatter::Text,
            path: PathBuf::from("log/girder.log"),
            rotation_count: 10,
            rotation_size: ByteSize::mb(50),
        }
    }
}

/// `log`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Log {
    /// Console handler.
    pub console: ConsoleLog,
    /// File handler.
    pub file: FileLog,
}

impl Log {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.file.enable {
            check(
                !self.file.path.as_os_str().is_empty(),
                "log.file.path",
                "\"\"",
                "a file path when log.file.enable = true",
            )?;
            check(
                self.file.rotation_size.bytes() >= 1024,
                "log.file.rotation_size",
                self.file.rotation_size,
                "at least 1KB",
            )?;
            check(
                self.file.rotation_count >= 1,
                "log.file.rotation_count",
                self.file.rotation_count,
                "at least 1",
            )?;
        }
        Ok(())
    }
}

/// `prometheus`: metrics served at `/metrics` and
/// `/api/v5/prometheus/stats` on the admin endpoint.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prometheus {
    /// Serve metrics.
    pub enable: bool,
    /// Require the admin credentials to scrape.
    pub enable_basic_auth: bool,
}

/// `admin`: the gRPC admin API, `/metrics` and `/health` (EMQX's dashboard
/// port).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Admin {
    /// Serve the admin endpoint.
    pub enable: bool,
    /// Its address.
    pub bind: Bind,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            enable: true,
            bind: Bind(std::net::SocketAddr::from(([127, 0, 0, 1], 18083))),
        }
    }
}

/// `sys_topics.sys_event_messages`: which client events are published under
/// `$SYS/brokers/<node>/clients/...`. As in EMQX, connections and their
/// ends are published by default, subscriptions are not.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SysEventMessages {
    /// `.../connected`.
    pub client_connected: bool,
    /// `.../disconnected`.
    pub client_disconnected: bool,
    /// `.../subscribed`.
    pub client_subscribed: bool,
    /// `.../unsubscribed`.
    pub client_unsubscribed: bool,
}

impl Default for SysEventMessages {
    fn default() -> Self {
        Self {
            client_connected: true,
            client_disconnected: true,
            client_subscribed: false,
            client_unsubscribed: false,
        }
    }
}

/// `sys_topics`: EMQX's defaults, 1m for stats and metrics, 30s for the
/// heartbeat.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SysTopics {
    /// Period of `$SYS` stats and metrics messages, or `disabled`.
    #[serde(deserialize_with = "disabled_or")]
    pub sys_msg_interval: Option<Duration>,
    /// Period of `$SYS` uptime and datetime messages, or `disabled`.
    #[serde(deserialize_with = "disabled_or")]
    pub sys_heartbeat_interval: Option<Duration>,
    /// Client event messages.
    pub sys_event_messages: SysEventMessages,
}

impl Default for SysTopics {
    fn default() -> Self {
        Self {
            sys_msg_interval: Some(Duration::mins(1)),
            sys_heartbeat_interval: Some(Duration::secs(30)),
            sys_event_messages: SysEventMessages::default(),
        }
    }
}

impl SysTopics {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (key, interval) in [
            ("sys_msg_interval", self.sys_msg_interval),
            ("sys_heartbeat_interval", self.sys_heartbeat_interval),
        ] {
            if let Some(d) = interval {
                check(
                    !d.get().is_zero(),
                    &format!("sys_topics.{key}"),
                    d,
                    "a duration greater than 0s or disabled",
                )?;
            }
        }
        Ok(())
    }
}
