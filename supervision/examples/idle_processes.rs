//! Measures what an idle process costs: starts `N` idle actors as temporary children
//! of a `Strategy::Dynamic` supervisor, placed round-robin on an arbiter pool, the way
//! the broker starts one channel actor per MQTT connection, and prints the growth of
//! the resident set (`VmRSS` in `/proc/self/status`, Linux only) per process.
//!
//! ```text
//! cargo run --release -p girder-supervision --example idle_processes [N]
//! ```
//!
//! RSS includes allocator slack and whatever else the runtime touched meanwhile, so
//! run it a few times; the figure is a measurement, not a bound.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use girder_supervision::{
    spawn_with, ArbiterPool, ChildSpec, Placement, Restart, StartArgs, Strategy, SupFlags,
    SupervisorSpec,
};

/// An actor that does nothing: what is left is the cost of being a process.
struct Idle;

impl Actor for Idle {
    type Context = Context<Self>;
}

/// Resident set size in bytes, from `/proc/self/status`.
fn rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A child spec like the listener's: one start closure per connection, temporary,
/// round-robin placement.
fn spec() -> ChildSpec {
    let start =
        Arc::new(|args: StartArgs| spawn_with(args.spawn_options(), |_| Idle).map(|s| s.pid));
    ChildSpec::new("channel", start)
        .restart(Restart::Temporary)
        .placement(Placement::RoundRobin)
}

#[actix_rt::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 10_000,
    };
    let pool = ArbiterPool::new(2)?;
    let sup = SupervisorSpec::new(SupFlags::new(Strategy::Dynamic))
        .pool(pool.clone())
        .start_root()
        .await?;
    // Warm up: thread-local caches, the registry, tracing callsites.
    for _ in 0..100 {
        let pid = sup.start_child(spec()).await?;
        sup.terminate_child(pid).await?;
    }
    actix_rt::time::sleep(Duration::from_millis(100)).await;

    let rss0 = rss();
    // The supervisor keeps the pids; keeping them here too would add to the figure.
    for _ in 0..n {
        sup.start_child(spec()).await?;
    }
    actix_rt::time::sleep(Duration::from_millis(100)).await;
    let rss1 = rss();

    println!("idle processes:   {n}");
    match (rss0, rss1) {
        (Some(r0), Some(r1)) => {
            let per = (r1 as f64 - r0 as f64) / n as f64;
            println!("rss per process:  {per:.0} bytes");
        }
        _ => println!("rss per process:  unknown (no /proc/self/status)"),
    }

    let children = sup.which_children().await?.len();
    println!("children listed:  {children}");
    sup.shutdown().await;
    pool.stop();
    Ok(())
}
