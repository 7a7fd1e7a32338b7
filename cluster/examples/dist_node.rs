#![allow(unreachable_pub)] // src/ctl.rs is public inside the girder binary
//! A distribution node from command-line flags, serving the admin API, and the
//! `girder ctl` client (the same module the `girder` binary uses). Used by the
//! multi-process cluster tests until `girder start` runs the cluster layer.
//!
//! ```text
//! dist_node node --name n1@127.0.0.1 --dist 127.0.0.1:4371 --admin 127.0.0.1:18083 [--seed n2@127.0.0.1 ...]
//! dist_node ctl --node 127.0.0.1:18083 cluster status
//! ```

#[path = "../../src/ctl.rs"]
mod ctl;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use girder_cluster::{start, ClusterOptions, Discovery};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node until killed.
    Node {
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "girder")]
        cookie: String,
        #[arg(long, default_value = "girder")]
        cluster: String,
        #[arg(long)]
        dist: SocketAddr,
        #[arg(long)]
        admin: SocketAddr,
        #[arg(long = "seed")]
        seeds: Vec<String>,
        #[arg(long, default_value_t = 200)]
        heartbeat_ms: u64,
        #[arg(long)]
        fault_injection: bool,
    },
    /// `girder ctl`.
    Ctl(ctl::CtlArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Ctl(args) => ctl::run(args).await,
        Command::Node {
            name,
            cookie,
            cluster,
            dist,
            admin,
            seeds,
            heartbeat_ms,
            fault_injection,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter("info")
                .with_writer(std::io::stderr)
                .init();
            let mut o = ClusterOptions::new(&name, &cookie, &cluster)?;
            o.dist_bind = dist;
            o.heartbeat_interval = Duration::from_millis(heartbeat_ms);
            o.heartbeat_misses = 3;
            o.discovery_interval = Duration::from_millis(500);
            o.backoff.max = Duration::from_millis(500);
            o.fault_injection = fault_injection;
            if !seeds.is_empty() {
                o.discovery = Discovery::Static { seeds };
            }
            let handle = start(o).await?;
            girder_cluster::serve_admin(handle, admin, std::future::pending()).await?;
            Ok(())
        }
    }
}
