//! `girder ctl`: a client of a node's admin API (`admin.bind`, default
//! port 18083), with output shaped like `emqx ctl`.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use girder_proto::admin::admin_service_client::AdminServiceClient;
use girder_proto::admin::{self as pb, cluster_debug_request::Action};
use tonic::transport::{Channel, Endpoint};

/// `girder ctl [--node HOST:PORT] [--json] COMMAND`.
#[derive(Debug, Args)]
pub(crate) struct CtlArgs {
    /// The node's admin endpoint.
    #[arg(
        long,
        global = true,
        default_value = "127.0.0.1:18083",
        env = "GIRDER_CTL_NODE"
    )]
    pub node: String,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: CtlCommand,
}

/// The ctl commands.
#[derive(Debug, Subcommand)]
pub(crate) enum CtlCommand {
    /// Whether the node runs, and which it is.
    Status,
    /// Cluster membership.
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

/// `girder ctl cluster ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Running and stopped members, as this node sees them.
    Status,
    /// Join the cluster of NODE (`name@host` or `name@host:port`).
    Join {
        /// A member of the cluster to join.
        #[arg(value_name = "NODE")]
        target: String,
    },
    /// Make this node leave its cluster.
    Leave,
    /// Remove NODE from the cluster.
    ForceLeave {
        /// The node to remove.
        #[arg(value_name = "NODE")]
        target: String,
    },
    /// Write or read one row of a consensus table (nodes with fault
    /// injection only; for tests): `put TABLE KEY VALUE`, `delete TABLE
    /// KEY` (committed through the table's Raft group), `get TABLE KEY`
    /// (this node's copy), `keys TABLE` (every key of this node's copy).
    DebugTable {
        /// put, delete, get or keys.
        op: String,
        /// The table (e.g. `users`).
        table: String,
        /// The row's key (not with `keys`).
        #[arg(default_value = "")]
        key: String,
        /// put: the row's value.
        value: Option<String>,
    },
    /// The cluster side's supervised tasks (starts, running); with
    /// `--panic TASK`, makes that task panic first (nodes with fault
    /// injection only; for tests).
    DebugTask {
        /// The task to make panic (e.g. `rlog.pump`).
        #[arg(long)]
        panic: Option<String>,
    },
    /// Fault injection on the link to PEER (nodes with fault injection only).
    Debug {
        /// The peer whose link is acted on.
        peer: String,
        /// cut, restore, drop, delay=MS; or a probe whose result is
        /// printed: call=SLEEP_MS/TIMEOUT_MS, monitor=WAIT_MS, sequence=N,
        /// monitors (how many monitors the link holds, as `received`).
        action: String,
    },
}

async fn connect(node: &str) -> anyhow::Result<AdminServiceClient<Channel>> {
    let channel = Endpoint::from_shared(format!("http://{node}"))
        .context("invalid --node")?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(15))
        .connect()
        .await
        .with_context(|| format!("cannot reach the admin endpoint at {node}"))?;
    Ok(AdminServiceClient::new(channel))
}

fn status_line(s: &pb::ClusterStatusReply) -> String {
    let list = |v: &[String]| {
        v.iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut out = format!(
        "Cluster status: #{{running_nodes => [{}], stopped_nodes => [{}]}}",
        list(&s.running_nodes),
        list(&s.stopped_nodes)
    );
    for g in &s.consensus {
        let leader = if g.leader.is_empty() {
            "none".to_owned()
        } else {
            format!("'{}'", g.leader)
        };
        out.push_str(&format!(
            "\nConsensus shard {}: #{{voters => [{}], learners => [{}], leader => {leader}, term => {}, commit_index => {}}}",
            g.shard,
            list(&g.voters),
            list(&g.learners),
            g.term,
            g.commit_index
        ));
    }
    for r in &s.replicants {
        let core = if r.core.is_empty() {
            "none".to_owned()
        } else {
            format!("'{}'", r.core)
        };
        out.push_str(&format!(
            "\nReplicant '{}' shard {}: #{{core => {core}, lag => {}}}",
            r.node, r.shard, r.lag
        ));
    }
    out
}

fn status_json(s: &pb::ClusterStatusReply) -> serde_json::Value {
    serde_json::json!({
        "node": s.node,
        "cluster": s.cluster,
        "running_nodes": s.running_nodes,
        "stopped_nodes": s.stopped_nodes,
        "consensus": s.consensus.iter().map(|g| serde_json::json!({
            "shard": g.shard,
            "voters": g.voters,
            "learners": g.learners,
            "leader": if g.leader.is_empty() { serde_json::Value::Null } else { g.leader.clone().into() },
            "term": g.term,
            "commit_index": g.commit_index,
        })).collect::<Vec<_>>(),
        "replicants": s.replicants.iter().map(|r| serde_json::json!({
            "node": r.node,
            "shard": r.shard,
            "core": if r.core.is_empty() { serde_json::Value::Null } else { r.core.clone().into() },
            "lag": r.lag,
        })).collect::<Vec<_>>(),
    })
}

/// Runs one ctl command against the node.
pub(crate) async fn run(args: CtlArgs) -> anyhow::Result<()> {
    let mut client = connect(&args.node).await?;
    let json = args.json;
    match args.command {
        CtlCommand::Status => {
            let s = client.status(pb::StatusRequest {}).await?.into_inner();
            if json {
                let tables: serde_json::Map<String, serde_json::Value> = s
                    .tables
                    .iter()
                    .map(|t| (t.table.clone(), t.rows.into()))
                    .collect();
                let v = serde_json::json!({
                    "node": s.node, "version": s.version, "uptime_ms": s.uptime_ms, "cluster": s.cluster, "status": "started", "tables": tables,
                });
                println!("{v}");
            } else {
                println!("Node '{}' {} is started", s.node, s.version);
                for t in &s.tables {
                    println!("  table {}: {} rows", t.table, t.rows);
                }
            }
        }
        CtlCommand::Cluster(cmd) => {
            let done = match cmd {
                ClusterCommand::Status => None,
                ClusterCommand::Join { target } => {
                    client
                        .cluster_join(pb::ClusterJoinRequest { node: target })
                        .await?;
                    Some("Join the cluster successfully.")
                }
                ClusterCommand::Leave => {
                    client.cluster_leave(pb::ClusterLeaveRequest {}).await?;
                    Some("Leave the cluster successfully.")
                }
                ClusterCommand::ForceLeave { target } => {
                    client
                        .cluster_force_leave(pb::ClusterForceLeaveRequest { node: target })
                        .await?;
                    Some("Remove the node from cluster successfully.")
                }
                ClusterCommand::DebugTable {
                    op,
                    table,
                    key,
                    value,
                } => {
                    let (value, delete, keys) = match (op.as_str(), value) {
                        ("put", Some(v)) => (Some(v.into_bytes()), false, false),
                        ("delete", None) => (None, true, false),
                        ("get", None) => (None, false, false),
                        ("keys", None) => (None, false, true),
                        _ => anyhow::bail!(
                            "expected put TABLE KEY VALUE, delete TABLE KEY, get TABLE KEY or keys TABLE"
                        ),
                    };
                    let write = value.is_some() || delete;
                    let reply = client
                        .table_debug(pb::TableDebugRequest {
                            table,
                            key: key.into_bytes(),
                            value,
                            delete,
                            keys,
                        })
                        .await?
                        .into_inner();
                    if keys {
                        let keys: Vec<String> = reply
                            .keys
                            .iter()
                            .map(|k| String::from_utf8_lossy(k).into_owned())
                            .collect();
                        if json {
                            println!("{}", serde_json::json!({ "keys": keys }));
                        } else {
                            for k in keys {
                                println!("{k}");
                            }
                        }
                        return Ok(());
                    }
                    let shown = reply
                        .value
                        .as_deref()
                        .map(|v| String::from_utf8_lossy(v).into_owned());
                    if json {
                        let v = if write {
                            serde_json::json!({ "index": reply.index })
                        } else {
                            serde_json::json!({ "value": shown })
                        };
                        println!("{v}");
                    } else if write {
                        println!("committed at index {}", reply.index);
                    } else {
                        println!("{}", shown.as_deref().unwrap_or("(no row)"));
                    }
                    return Ok(());
                }
                ClusterCommand::DebugTask { panic } => {
                    let reply = client
                        .task_debug(pb::TaskDebugRequest {
                            panic: panic.unwrap_or_default(),
                        })
                        .await?
                        .into_inner();
                    if json {
                        let tasks: Vec<_> = reply
                            .tasks
                            .iter()
                            .map(|t| {
                                serde_json::json!({
                                    "name": t.name,
                                    "starts": t.starts,
                                    "running": t.running,
                                })
                            })
                            .collect();
                        println!("{}", serde_json::json!({ "tasks": tasks }));
                    } else {
                        for t in &reply.tasks {
                            println!("{} starts={} running={}", t.name, t.starts, t.running);
                        }
                    }
                    return Ok(());
                }
                ClusterCommand::Debug { peer, action } => {
                    let action = debug_action(&action)?;
                    let probe = matches!(
                        action,
                        Action::Call(_)
                            | Action::Monitor(_)
                            | Action::Sequence(_)
                            | Action::Monitors(_)
                    );
                    let reply = client
                        .cluster_debug(pb::ClusterDebugRequest {
                            peer,
                            action: Some(action),
                        })
                        .await?
                        .into_inner();
                    if probe {
                        if json {
                            println!(
                                "{}",
                                serde_json::json!({
                                    "result": reply.result,
                                    "elapsed_ms": reply.elapsed_ms,
                                    "received": reply.received,
                                    "in_order": reply.in_order,
                                })
                            );
                        } else {
                            println!(
                                "result: {}, elapsed: {} ms, received: {}, in order: {}",
                                reply.result, reply.elapsed_ms, reply.received, reply.in_order
                            );
                        }
                        return Ok(());
                    }
                    Some("Fault applied.")
                }
            };
            let s = client
                .cluster_status(pb::ClusterStatusRequest {})
                .await?
                .into_inner();
            if json {
                println!("{}", status_json(&s));
            } else {
                if let Some(done) = done {
                    println!("{done}");
                }
                println!("{}", status_line(&s));
            }
        }
    }
    Ok(())
}

/// Parses a `cluster debug` action.
fn debug_action(action: &str) -> anyhow::Result<Action> {
    let number = |v: &str| {
        v.parse::<u32>()
            .with_context(|| format!("{action:?}: {v:?} is not a whole number"))
    };
    Ok(match action.split_once('=') {
        None if action == "cut" => Action::Cut(pb::Cut {}),
        None if action == "restore" => Action::Restore(pb::Restore {}),
        None if action == "drop" => Action::Drop(pb::Drop {}),
        None if action == "monitors" => Action::Monitors(pb::Monitors {}),
        Some(("delay", ms)) => Action::DelayMs(number(ms)?),
        Some(("call", args)) => {
            let (sleep, timeout) = args
                .split_once('/')
                .with_context(|| format!("{action:?}: expected call=SLEEP_MS/TIMEOUT_MS"))?;
            Action::Call(pb::Call {
                sleep_ms: number(sleep)?,
                timeout_ms: number(timeout)?,
            })
        }
        Some(("monitor", ms)) => Action::Monitor(pb::Monitor {
            wait_ms: number(ms)?,
        }),
        Some(("sequence", n)) => Action::Sequence(pb::Sequence { count: number(n)? }),
        _ => anyhow::bail!(
            "unknown action {action:?}: cut, restore, drop, delay=MS, call=SLEEP_MS/TIMEOUT_MS, monitor=WAIT_MS, monitors or sequence=N"
        ),
    })
}
