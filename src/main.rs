//! The `girder` binary: runs a node, checks configuration, and (later)
//! inspects nodes and loads them with benchmark traffic.
//!
//! It only parses the command line, loads the configuration, installs the
//! log subscriber and starts a node; everything else lives in the crates.

/// jemalloc: less memory per idle connection than the system allocator
/// (see BENCHMARKS.md) and no lock contention between worker threads.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod bench;
mod ctl;
mod logging;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use girder_config::{Config, LoadOptions};
use girder_supervision::{run_until_signal, RunEnd, ShutdownSignals};
use tracing::{error, info, warn};

/// Girder: a clustered MQTT broker.
#[derive(Debug, Parser)]
#[command(name = "girder", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until SIGINT or SIGTERM.
    Start {
        /// Configuration file (HOCON). Without one the embedded defaults run
        /// a single node.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Override one key, e.g. `--set mqtt.max_inflight=64` (repeatable;
        /// wins over the file and the environment).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Validate a configuration file without starting a node.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the default configuration file, with comments.
    GenerateConfig,
    /// Inspect and manage a running node through its admin endpoint.
    Ctl(ctl::CtlArgs),
    /// Load a broker with MQTT benchmark traffic (emqtt-bench style), or
    /// report on earlier runs.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start { config, overrides } => start(config, overrides),
        Command::CheckConfig { file } => match girder_config::check_file(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("{err}");
                ExitCode::FAILURE
            }
        },
        Command::GenerateConfig => {
            print!("{}", girder_config::default_file());
            ExitCode::SUCCESS
        }
        Command::Bench(args) => bench::run(args),
        Command::Ctl(args) => ctl(args),
    }
}

fn ctl(args: ctl::CtlArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("girder ctl: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ctl::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("girder ctl: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(file: Option<PathBuf>, overrides: Vec<String>) -> ExitCode {
    let options = LoadOptions {
        file,
        env: std::env::vars().collect(),
        overrides,
    };
    let loaded = match Config::load(&options) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("{err}");
            return ExitCode::FAILURE;
        }
    };
    // Held to the end: dropping it flushes the log file.
    let _log_guard = match logging::init(&loaded.config.log) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("girder: cannot set up logging: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &loaded.warnings {
        warn!(%warning, "config_warning");
    }
    let system = actix::System::new();
    let result = system.block_on(run(loaded.config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            eprintln!("girder: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a node until a signal, then stops it within a timeout.
async fn run(config: Config) -> anyhow::Result<()> {
    // Listen for signals before anything starts, so that a SIGTERM during
    // start-up still stops the node cleanly.
    let mut signals = ShutdownSignals::listen().context("cannot listen for signals")?;
    let node = girder_actors::Node::start(&config)
        .await
        .context("node failed to start")?;
    info!(node = %config.node.name, "node_started");
    let listeners: Vec<String> = node
        .listeners()
        .iter()
        .map(|(name, addr)| format!("{name} {addr}"))
        .collect();
    println!(
        "girder {} is running: node {}, listeners: {}",
        env!("CARGO_PKG_VERSION"),
        config.node.name,
        listeners.join(", ")
    );
    match run_until_signal(node.supervisor(), &mut signals).await {
        RunEnd::Signal => {
            info!("node_stopping");
            let stop = node.shutdown();
            if tokio::time::timeout(Duration::from_secs(15), stop)
                .await
                .is_err()
            {
                warn!("shutdown timed out; exiting anyway");
            }
            info!("node_stopped");
            Ok(())
        }
        RunEnd::Exited(reason) => {
            anyhow::bail!("supervision tree ended: {reason:?}")
        }
    }
}
