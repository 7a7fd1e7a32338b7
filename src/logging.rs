//! The log subscriber: the `log.console` and `log.file` handlers from the
//! configuration, each with its own level and format, `RUST_LOG` on top.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context as _;
use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use girder_config::{FileLog, Log, LogFormatter, LogLevel};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

/// Keeps the file handler's writer thread alive; dropping it flushes what
/// is still queued. Hold it until the process ends.
#[derive(Debug)]
pub(crate) struct LogGuard {
    _file: Option<WorkerGuard>,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber:
///
/// - `log.console`: text (or JSON) on stdout at `log.console.level`, without
///   colour codes when stdout is not a terminal;
/// - `log.file`: text (or JSON) at `log.file.level` to `log.file.path`,
///   which is rotated when it passes `log.file.rotation_size`, keeping
///   `log.file.rotation_count` rotated files (`girder.log.1` is the newest).
///   Lines are written by a background thread, so a slow disk does not hold
///   up the node.
///
/// `RUST_LOG`, when set, replaces the level of both handlers.
pub(crate) fn init(log: &Log) -> anyhow::Result<LogGuard> {
    let rust_log = std::env::var("RUST_LOG").ok().filter(|s| !s.is_empty());
    let filter = |level: LogLevel| match &rust_log {
        Some(spec) => EnvFilter::try_new(spec),
        None => EnvFilter::try_new(level.tracing_directive()),
    };
    let mut layers: Vec<BoxedLayer> = Vec::new();
    let console = &log.console;
    if console.enable {
        let ansi = std::io::stdout().is_terminal();
        let filter = filter(console.level)?;
        layers.push(handler(std::io::stdout, ansi, console.formatter, filter));
    }
    let mut guard = LogGuard { _file: None };
    let file = &log.file;
    if file.enable {
        let (writer, worker) = tracing_appender::non_blocking(rotating_file(file)?);
        guard._file = Some(worker);
        layers.push(handler(writer, false, file.formatter, filter(file.level)?));
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(guard)
}

/// One handler: lines in `format` to `writer`, at the levels `filter` lets
/// through.
fn handler<W>(writer: W, ansi: bool, format: LogFormatter, filter: EnvFilter) -> BoxedLayer
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    match format {
        LogFormatter::Json => layer.json().flatten_event(true).with_filter(filter).boxed(),
        LogFormatter::Text => layer.with_filter(filter).boxed(),
    }
}

/// The log file, opened (and its directory made) now so that a path that
/// cannot be written stops start-up with a line naming it.
fn rotating_file(file: &FileLog) -> anyhow::Result<FileRotate<AppendCount>> {
    let path: &Path = &file.path;
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("log.file.path = {shown:?}: cannot create its directory"))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("log.file.path = {shown:?}: cannot open it for writing"))?;
    let size = usize::try_from(file.rotation_size.bytes())
        .unwrap_or(usize::MAX)
        .max(1);
    let count = usize::try_from(file.rotation_count).unwrap_or(usize::MAX);
    Ok(FileRotate::new(
        path,
        AppendCount::new(count),
        ContentLimit::BytesSurpassed(size),
        Compression::None,
        None,
    ))
}
