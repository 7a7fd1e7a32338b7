//! A node running the distribution layer and the replicated tables, driven
//! by a line protocol on stdin (one answer line per command on stdout). Used
//! by the multi-process rlog tests and the benchmark until `girder start`
//! runs the cluster layer.
//!
//! ```text
//! rlog_node --name c1@127.0.0.1 --dist 127.0.0.1:4371 --role core \
//!           --core c1@127.0.0.1:4371 --core c2@127.0.0.1:4372 --data-dir /tmp/c1
//! ```
//!
//! Shards: `auth` (consensus; tables `users`, `acl`), `route` (owned;
//! tables `routes`, `registry`) and, with `--extra-shards N`, consensus
//! shards `s1`..`sN` with tables `t1`..`tN`. Consensus writes go to their
//! table's shard. Commands:
//!
//! ```text
//! put TABLE KEY VALUE        consensus write (shard auth)   -> ok INDEX | err MSG
//! del TABLE KEY                                             -> ok INDEX | err MSG
//! bulk TABLE PREFIX N BATCH W N puts, BATCH per entry, W writers -> ok SECS
//! oput TABLE KEY VALUE       owned write                    -> ok SEQ
//! odel TABLE KEY                                            -> ok SEQ
//! obulk TABLE PREFIX N       N owned puts                   -> ok SECS
//! cas TABLE KEY OLD NEW      consensus compare-and-set: NEW if KEY holds
//!                            OLD (`-`: absent); the outcome shows in reads
//!                                                           -> ok INDEX | err MSG
//! get TABLE KEY                                             -> val V | none
//! rget TABLE KEY             local read, with the applied index it is as of
//!                                                           -> val V @ POS | none @ POS
//! lget TABLE KEY             linearizable read: commits an empty entry, waits
//!                            until it is applied here, then reads
//!                                                           -> val V @ POS | none @ POS | err MSG
//! oget TABLE KEY                                            -> val OWNER=V,... | none
//! count TABLE                                               -> count N
//! digest TABLE                                              -> digest N HASH
//! status                                                    -> status {Debug of RlogStatus}
//! pos                        the auth shard's applied index -> pos N
//! links                      nodes with a live link         -> links N1,N2,...
//! lock KEY MS / renew KEY / unlock KEY   lease lock          -> ok | err MSG
//! wait INDEX MS              wait until auth applied INDEX  -> ok | timeout
//! cut NODE / restore NODE    fault injection on the link    -> ok
//! drop NODE / delay NODE MS  drop / hold this node's frames to NODE -> ok
//! serve                      accept clients on a loopback port, each a
//!                            connection speaking this protocol -> serving PORT
//! ```
//!
//! `--plant-ack-before-commit` is a planted bug for the history test to find
//! (never used otherwise): `put` and `cas` answer `ok` before the write is
//! committed, and commit it in the background.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use girder_cluster::rlog::{LeaseLock, Op, Rlog, RlogOptions, ShardKind, ShardSpec};
use girder_cluster::{start, ClusterOptions, Discovery, FaultAction, NodeName};
use std::io::{BufRead, Write};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

#[derive(Debug, Parser)]
struct Cli {
    #[arg(long)]
    name: String,
    #[arg(long, default_value = "girder")]
    cookie: String,
    #[arg(long)]
    dist: SocketAddr,
    #[arg(long, default_value = "core")]
    role: String,
    /// Core nodes as name@host:port (voters; what replicants follow).
    #[arg(long = "core")]
    cores: Vec<String>,
    /// Other nodes to link to (name@host:port).
    #[arg(long = "seed")]
    seeds: Vec<String>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value_t = 3000)]
    grace_ms: u64,
    #[arg(long, default_value_t = 200_000)]
    retain: usize,
    #[arg(long, default_value_t = 100_000)]
    snapshot_every: u64,
    /// Extra consensus shards `s1`..`sN`, with one table each (`t1`..`tN`).
    #[arg(long, default_value_t = 0)]
    extra_shards: usize,
    /// Heartbeats (300 ms apart) missed before a silent peer is declared
    /// down.
    #[arg(long, default_value_t = 5)]
    heartbeat_misses: u32,
    /// A planted bug (tests of the history checker only): acknowledge
    /// `put` and `cas` before they are committed.
    #[arg(long)]
    plant_ack_before_commit: bool,
}

/// What every command needs.
struct Ctx {
    rlog: Rlog,
    handle: girder_cluster::ClusterHandle,
    shard_of: HashMap<String, String>,
    plant_ack_before_commit: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut o = ClusterOptions::new(&cli.name, &cli.cookie, "girder")?;
    o.dist_bind = cli.dist;
    o.heartbeat_interval = Duration::from_millis(300);
    o.heartbeat_misses = cli.heartbeat_misses;
    o.discovery_interval = Duration::from_millis(300);
    o.backoff.max = Duration::from_millis(300);
    o.fault_injection = true;
    let mut seeds: Vec<String> = cli.seeds.clone();
    seeds.extend(cli.cores.iter().cloned());
    seeds.retain(|s| !s.starts_with(&format!("{}:", cli.name)));
    if !seeds.is_empty() {
        o.discovery = Discovery::Static { seeds };
    }
    let handle = start(o).await?;
    let mut opts = RlogOptions {
        role: cli.role.parse()?,
        data_dir: cli.data_dir.clone(),
        owner_grace: Duration::from_millis(cli.grace_ms),
        retain: cli.retain,
        snapshot_every: cli.snapshot_every,
        ..RlogOptions::default()
    };
    for c in &cli.cores {
        let name = c.rsplit_once(':').map_or(c.as_str(), |(n, _)| n);
        opts.core_nodes.push(NodeName::parse(name)?);
    }
    opts.shards = vec![
        ShardSpec::new("auth", ShardKind::Consensus, &["users", "acl"]),
        ShardSpec::new("route", ShardKind::Owned, &["routes", "registry"]),
    ];
    for i in 1..=cli.extra_shards {
        let table = format!("t{i}");
        opts.shards.push(ShardSpec::new(
            &format!("s{i}"),
            ShardKind::Consensus,
            &[table.as_str()],
        ));
    }
    // Consensus writes go to the shard of their table.
    let shard_of: HashMap<String, String> = opts
        .shards
        .iter()
        .filter(|s| s.kind == ShardKind::Consensus)
        .flat_map(|s| s.tables.iter().map(|t| (t.clone(), s.name.clone())))
        .collect();
    let rlog = Rlog::start(handle.clone(), opts).await?;
    // stdin is read on a thread: the workspace's tokio has no io-std.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut out = std::io::stdout();
    writeln!(out, "ready")?;
    out.flush()?;
    let ctx = Arc::new(Ctx {
        rlog: rlog.clone(),
        handle: handle.clone(),
        shard_of,
        plant_ack_before_commit: cli.plant_ack_before_commit,
    });
    let mut locks = HashMap::new();
    while let Some(line) = lines.recv().await {
        let answer = if line.trim() == "serve" {
            match serve(ctx.clone()).await {
                Ok(port) => format!("serving {port}"),
                Err(e) => format!("err {e}"),
            }
        } else {
            run(&ctx, &mut locks, line.trim()).await
        };
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    rlog.shutdown().await;
    handle.shutdown().await;
    Ok(())
}

/// Accepts clients on a loopback port; each connection's commands run one
/// after the other, connections side by side.
async fn serve(ctx: Arc<Ctx>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                let (rd, mut wr) = sock.into_split();
                let mut rd = tokio::io::BufReader::new(rd).lines();
                let mut locks = HashMap::new();
                while let Ok(Some(line)) = rd.next_line().await {
                    let mut answer = run(&ctx, &mut locks, line.trim()).await;
                    answer.push('\n');
                    if wr.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    Ok(port)
}

/// A row read with its index, as `rget` and `lget` answer.
fn row_at((value, pos): (Option<bytes::Bytes>, u64)) -> String {
    match value {
        Some(v) => format!("val {} @ {pos}", String::from_utf8_lossy(&v)),
        None => format!("none @ {pos}"),
    }
}

/// Commits `ops`, or with the planted bug answers at once and commits in
/// the background.
async fn write(ctx: &Ctx, shard: String, ops: Vec<Op>) -> anyhow::Result<String> {
    if ctx.plant_ack_before_commit {
        let (_, pos) = ctx.rlog.read_at(&shard, "", b"");
        let rlog = ctx.rlog.clone();
        tokio::spawn(async move { rlog.write(&shard, ops).await });
        return Ok(format!("ok {}", pos + 1));
    }
    Ok(format!("ok {}", ctx.rlog.write(&shard, ops).await?))
}

async fn run(ctx: &Ctx, locks: &mut HashMap<String, LeaseLock>, line: &str) -> String {
    let (rlog, handle, shard_of) = (&ctx.rlog, &ctx.handle, &ctx.shard_of);
    let w: Vec<&str> = line.split_whitespace().collect();
    let shard = |t: &str| shard_of.get(t).cloned().unwrap_or_else(|| "auth".into());
    let res: anyhow::Result<String> = async {
        Ok(match w.as_slice() {
            ["put", t, k, v] => {
                write(
                    ctx,
                    shard(t),
                    vec![Op::put(t, k.to_string(), v.to_string())],
                )
                .await?
            }
            ["cas", t, k, old, new] => {
                let old = (*old != "-").then(|| bytes::Bytes::from(old.to_string()));
                let ops = vec![
                    Op::guard(t, k.as_bytes(), old, 1),
                    Op::put(t, k.to_string(), new.to_string()),
                ];
                write(ctx, shard(t), ops).await?
            }
            ["rget", t, k] => row_at(rlog.read_at(&shard(t), t, k.as_bytes())),
            ["lget", t, k] => {
                let s = shard(t);
                let i = rlog.write(&s, Vec::new()).await?;
                if !rlog.wait_applied(&s, i, Duration::from_secs(5)).await {
                    anyhow::bail!("entry {i} not applied here in 5 s");
                }
                row_at(rlog.read_at(&s, t, k.as_bytes()))
            }
            ["del", t, k] => format!(
                "ok {}",
                rlog.write(&shard(t), vec![Op::delete(t, k.to_string())])
                    .await?
            ),
            ["bulk", t, prefix, n, batch, writers] => {
                let (n, batch, writers): (usize, usize, usize) =
                    (n.parse()?, batch.parse()?, writers.parse()?);
                let started = Instant::now();
                let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let mut tasks = Vec::new();
                for _ in 0..writers.max(1) {
                    let (rlog, next, t, prefix, shard) = (
                        rlog.clone(),
                        next.clone(),
                        t.to_string(),
                        prefix.to_string(),
                        shard(t),
                    );
                    tasks.push(tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(batch, std::sync::atomic::Ordering::Relaxed);
                            if i >= n {
                                return Ok::<(), girder_cluster::rlog::RlogError>(());
                            }
                            let ops = (i..(i + batch).min(n))
                                .map(|j| Op::put(&t, format!("{prefix}{j}"), format!("v{j}")))
                                .collect();
                            rlog.write(&shard, ops).await?;
                        }
                    }));
                }
                for t in tasks {
                    t.await??;
                }
                format!("ok {:.3}", started.elapsed().as_secs_f64())
            }
            ["oput", t, k, v] => format!(
                "ok {}",
                rlog.write_owned(t, k.to_string(), Some(v.to_string().into()))?
            ),
            ["odel", t, k] => format!("ok {}", rlog.write_owned(t, k.to_string(), None)?),
            ["obulk", t, prefix, n] => {
                let n: usize = n.parse()?;
                let started = Instant::now();
                for j in 0..n {
                    rlog.write_owned(t, format!("{prefix}{j}"), Some(format!("v{j}").into()))?;
                }
                format!("ok {:.3}", started.elapsed().as_secs_f64())
            }
            ["get", t, k] => match rlog.read(t, k.as_bytes()) {
                Some(v) => format!("val {}", String::from_utf8_lossy(&v)),
                None => "none".into(),
            },
            ["oget", t, k] => {
                let owners = rlog.read_owned(t, k.as_bytes());
                if owners.is_empty() {
                    "none".into()
                } else {
                    let parts: Vec<String> = owners
                        .iter()
                        .map(|(n, v)| format!("{n}={}", String::from_utf8_lossy(v)))
                        .collect();
                    format!("val {}", parts.join(","))
                }
            }
            ["count", t] => format!("count {}", rlog.count(t)),
            ["digest", t] => {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                let rows = rlog.scan(t, b"");
                let owned = rlog.scan_owned(t, b"");
                rows.hash(&mut h);
                for (k, n, v) in &owned {
                    (k, n.as_str(), v).hash(&mut h);
                }
                format!("digest {} {:016x}", rows.len() + owned.len(), h.finish())
            }
            ["status"] => format!("status {:?}", rlog.status()),
            ["lock", k, ms] => {
                let lock = rlog
                    .lock(k.to_string(), Duration::from_millis(ms.parse()?))
                    .await?;
                locks.insert(k.to_string(), lock);
                "ok".into()
            }
            ["renew", k] => {
                let lock = locks
                    .get_mut(*k)
                    .ok_or_else(|| anyhow::anyhow!("not held"))?;
                if let Err(e) = lock.renew().await {
                    locks.remove(*k);
                    return Err(e.into());
                }
                "ok".into()
            }
            ["unlock", k] => {
                let lock = locks
                    .remove(*k)
                    .ok_or_else(|| anyhow::anyhow!("not held"))?;
                lock.release().await;
                "ok".into()
            }
            ["links"] => {
                let mut up: Vec<String> =
                    handle.connected().iter().map(|n| n.to_string()).collect();
                up.sort();
                format!("links {}", up.join(","))
            }
            ["pos"] => {
                let st = rlog.status();
                let auth = st.shards.iter().find(|s| s.shard == "auth");
                format!("pos {}", auth.map_or(0, |s| s.position))
            }
            ["wait", i, ms] => {
                let ok = rlog
                    .wait_applied("auth", i.parse()?, Duration::from_millis(ms.parse()?))
                    .await;
                if ok {
                    "ok".into()
                } else {
                    "timeout".into()
                }
            }
            ["cut", n] => {
                handle.inject_fault(&NodeName::parse(n)?, FaultAction::Cut)?;
                "ok".into()
            }
            ["restore", n] => {
                handle.inject_fault(&NodeName::parse(n)?, FaultAction::Restore)?;
                "ok".into()
            }
            ["drop", n] => {
                handle.inject_fault(&NodeName::parse(n)?, FaultAction::Drop)?;
                "ok".into()
            }
            ["delay", n, ms] => {
                let d = Duration::from_millis(ms.parse()?);
                handle.inject_fault(&NodeName::parse(n)?, FaultAction::Delay(d))?;
                "ok".into()
            }
            _ => "err unknown command".into(),
        })
    }
    .await;
    match res {
        Ok(s) => s,
        Err(e) => format!("err {}", e.to_string().replace('\n', " ")),
    }
}
