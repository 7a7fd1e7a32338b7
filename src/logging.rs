//! The log subscriber: `log.console` from the configuration, `RUST_LOG`
//! on top of it.

use std::io::IsTerminal;

use girder_config::{Log, LogFormatter};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: text (or JSON with
/// `log.console.formatter = json`) on stdout, at `log.console.level` unless
/// `RUST_LOG` says otherwise, without colour codes when stdout is not a
/// terminal.
pub(crate) fn init(log: &Log) -> anyhow::Result<()> {
    let console = &log.console;
    let level = if console.enable {
        console.level.tracing_directive()
    } else {
        "off"
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(spec)?,
        _ => EnvFilter::try_new(level)?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::stdout().is_terminal());
    let result = match console.formatter {
        LogFormatter::Json => builder.json().flatten_event(true).try_init(),
        LogFormatter::Text => builder.try_init(),
    };
    result.map_err(|e| anyhow::anyhow!(e))
}
