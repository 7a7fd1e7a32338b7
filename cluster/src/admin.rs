//! The admin gRPC service's cluster calls (`girder.admin.v1.AdminService`).
//! The node serves it on `admin.bind`; `girder ctl` is its client.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use girder_proto::admin::admin_service_server::{AdminService, AdminServiceServer};
use girder_proto::admin::{self as pb, cluster_debug_request::Action};
use tonic::{Request, Response, Status};

use crate::builtin::{DEBUG_SLEEP, ECHO};
use crate::fault::FaultAction;
use crate::process::{Payload, RemoteMessage};
use crate::rlog::{Op, Rlog};
use crate::task::Tasks;
use crate::wire::DownReason;
use crate::{ClusterError, ClusterHandle, NodeName};

/// The admin service over a running cluster layer.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: ClusterHandle,
    /// The replicated tables whose row counts `Status` reports.
    tables: Option<(Rlog, Vec<String>)>,
    /// The supervised tasks `TaskDebug` lists and can make panic.
    tasks: Vec<Tasks>,
}

impl Admin {
    /// The tonic service, to add to the admin server.
    pub fn service(cluster: ClusterHandle) -> AdminServiceServer<Self> {
        AdminServiceServer::new(Self {
            cluster,
            tables: None,
            tasks: Vec::new(),
        })
    }

    /// The service, also reporting the row counts of `tables` in `rlog`.
    pub fn service_with_tables(
        cluster: ClusterHandle,
        rlog: Rlog,
        tables: Vec<String>,
    ) -> AdminServiceServer<Self> {
        Self::service_with_tasks(cluster, rlog, tables, Vec::new())
    }

    /// The service reporting the row counts of `tables` in `rlog`, and
    /// listing `tasks` (the cluster side's supervised tasks) in `TaskDebug`.
    pub fn service_with_tasks(
        cluster: ClusterHandle,
        rlog: Rlog,
        tables: Vec<String>,
        tasks: Vec<Tasks>,
    ) -> AdminServiceServer<Self> {
        AdminServiceServer::new(Self {
            cluster,
            tables: Some((rlog, tables)),
            tasks,
        })
    }
}

impl Admin {
    /// Calls the peer's [`DEBUG_SLEEP`] and says how the call ended.
    async fn debug_call(&self, peer: &NodeName, call: pb::Call) -> pb::ClusterDebugReply {
        let started = Instant::now();
        let payload = Payload::new("sleep", u64::from(call.sleep_ms).to_be_bytes().to_vec());
        let timeout = Duration::from_millis(u64::from(call.timeout_ms));
        let result = match self.cluster.call(peer, DEBUG_SLEEP, payload, timeout).await {
            Ok(_) => "ok".to_owned(),
            Err(ClusterError::Timeout { .. }) => "timeout".to_owned(),
            Err(ClusterError::NodeDown(_)) => "nodedown".to_owned(),
            Err(other) => other.to_string(),
        };
        pb::ClusterDebugReply {
            result,
            elapsed_ms: elapsed_ms(started),
            ..Default::default()
        }
    }

    /// Monitors the peer's [`ECHO`] and reports the Down reason, if one
    /// comes within the wait.
    async fn debug_monitor(&self, peer: &NodeName, m: pb::Monitor) -> pb::ClusterDebugReply {
        let started = Instant::now();
        let wait = Duration::from_millis(u64::from(m.wait_ms));
        let result = match tokio::time::timeout(wait, self.cluster.monitor(peer, ECHO)).await {
            Ok(DownReason::NoConnection) => "noconnection",
            Ok(DownReason::NoProc) => "noproc",
            Ok(DownReason::Unregistered) => "unregistered",
            Err(_) => "none",
        };
        pb::ClusterDebugReply {
            result: result.to_owned(),
            elapsed_ms: elapsed_ms(started),
            ..Default::default()
        }
    }

    /// Sends `count` numbered casts to the peer's [`ECHO`], naming a
    /// temporary local process as the reply-to, and checks that all come
    /// back in the order sent (order holds per pair of processes over one
    /// link, both ways).
    async fn debug_sequence(&self, peer: &NodeName, seq: pb::Sequence) -> pb::ClusterDebugReply {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let started = Instant::now();
        let name = format!("girder.debug.seq.{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<RemoteMessage>();
        if let Err(err) = self.cluster.register(&name, tx) {
            return pb::ClusterDebugReply {
                result: err.to_string(),
                ..Default::default()
            };
        }
        let count = u64::from(seq.count);
        let mut result = "ok".to_owned();
        for i in 0..count {
            let payload = Payload::new("seq", i.to_be_bytes().to_vec());
            if let Err(err) = self.cluster.send_from(peer, ECHO, Some(&name), payload) {
                result = err.to_string();
                break;
            }
        }
        let (mut received, mut in_order) = (0u64, true);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while received < count {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(msg)) => {
                    let n = <[u8; 8]>::try_from(&msg.payload.data[..])
                        .map_or(u64::MAX, u64::from_be_bytes);
                    in_order &= n == received;
                    received += 1;
                }
                Ok(None) | Err(_) => {
                    if result == "ok" {
                        result = "incomplete".to_owned();
                    }
                    break;
                }
            }
        }
        self.cluster.unregister(&name);
        pb::ClusterDebugReply {
            result,
            elapsed_ms: elapsed_ms(started),
            received,
            in_order,
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Serves the admin API alone on `addr` until `shutdown` resolves (the binary
/// may instead add [`Admin::service`] to a server of its own).
pub async fn serve(
    cluster: ClusterHandle,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(Admin::service(cluster))
        .serve_with_shutdown(addr, shutdown)
        .await
}

fn status(e: ClusterError) -> Status {
    match e {
        ClusterError::InvalidNodeName(_) | ClusterError::SelfTarget(_) => {
            Status::invalid_argument(e.to_string())
        }
        ClusterError::NotAMember(_) => Status::not_found(e.to_string()),
        ClusterError::FaultInjectionDisabled | ClusterError::Singleton => {
            Status::failed_precondition(e.to_string())
        }
        _ => Status::unavailable(e.to_string()),
    }
}

fn parse(node: &str) -> Result<NodeName, Status> {
    NodeName::parse(node).map_err(status)
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn status(
        &self,
        _: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusReply>, Status> {
        Ok(Response::new(pb::StatusReply {
            node: self.cluster.node().to_string(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_ms: u64::try_from(self.cluster.uptime().as_millis()).unwrap_or(u64::MAX),
            cluster: self.cluster.cluster_name().to_owned(),
            tables: self
                .tables
                .iter()
                .flat_map(|(rlog, names)| {
                    names.iter().map(|table| pb::TableRows {
                        table: table.clone(),
                        rows: rlog.count(table) as u64,
                    })
                })
                .collect(),
        }))
    }

    async fn cluster_status(
        &self,
        _: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusReply>, Status> {
        let s = self.cluster.status();
        let names = |v: Vec<NodeName>| v.into_iter().map(|n| n.to_string()).collect();
        let rlog = match &self.tables {
            Some((rlog, _)) => rlog.cluster_status().await,
            None => Default::default(),
        };
        let name = |n: Option<NodeName>| n.map(|n| n.to_string()).unwrap_or_default();
        Ok(Response::new(pb::ClusterStatusReply {
            node: s.node.to_string(),
            cluster: s.cluster,
            running_nodes: names(s.running),
            stopped_nodes: names(s.stopped),
            consensus: rlog
                .groups
                .into_iter()
                .map(|g| pb::ConsensusShard {
                    shard: g.shard,
                    voters: names(g.voters),
                    learners: names(g.learners),
                    leader: name(g.leader),
                    term: g.term,
                    commit_index: g.commit_index,
                })
                .collect(),
            replicants: rlog
                .replicants
                .into_iter()
                .map(|r| pb::ReplicantFollow {
                    node: r.node.to_string(),
                    shard: r.shard,
                    core: name(r.core),
                    lag: r.lag,
                })
                .collect(),
        }))
    }

    async fn cluster_join(
        &self,
        request: Request<pb::ClusterJoinRequest>,
    ) -> Result<Response<pb::ClusterJoinReply>, Status> {
        self.cluster
            .join(&request.into_inner().node)
            .await
            .map_err(status)?;
        // A core that started its consensus groups alone leaves them, to be
        // added to the joined cluster's (its own consensus rows are
        // replaced by the cluster's, as EMQX's join replaces its tables).
        if let Some((rlog, _)) = &self.tables {
            rlog.prepare_join()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
        }
        Ok(Response::new(pb::ClusterJoinReply {}))
    }

    async fn cluster_leave(
        &self,
        _: Request<pb::ClusterLeaveRequest>,
    ) -> Result<Response<pb::ClusterLeaveReply>, Status> {
        self.cluster.leave();
        Ok(Response::new(pb::ClusterLeaveReply {}))
    }

    async fn cluster_force_leave(
        &self,
        request: Request<pb::ClusterForceLeaveRequest>,
    ) -> Result<Response<pb::ClusterForceLeaveReply>, Status> {
        let node = parse(&request.into_inner().node)?;
        self.cluster.force_leave(&node).map_err(status)?;
        Ok(Response::new(pb::ClusterForceLeaveReply {}))
    }

    async fn table_debug(
        &self,
        request: Request<pb::TableDebugRequest>,
    ) -> Result<Response<pb::TableDebugReply>, Status> {
        if !self.cluster.fault_injection() {
            return Err(Status::failed_precondition(
                "fault injection is off (cluster.dist.fault_injection)",
            ));
        }
        let Some((rlog, _)) = &self.tables else {
            return Err(Status::failed_precondition("no replicated tables"));
        };
        let r = request.into_inner();
        let shard = rlog
            .shard_of(&r.table)
            .ok_or_else(|| Status::not_found(format!("no table {:?}", r.table)))?;
        if r.keys {
            return Ok(Response::new(pb::TableDebugReply {
                keys: rlog
                    .scan(&r.table, b"")
                    .into_iter()
                    .map(|(k, _)| k.to_vec())
                    .collect(),
                ..Default::default()
            }));
        }
        if r.value.is_none() && !r.delete {
            return Ok(Response::new(pb::TableDebugReply {
                value: rlog.read(&r.table, &r.key).map(|v| v.to_vec()),
                ..Default::default()
            }));
        }
        let op = Op {
            table: r.table,
            key: r.key.into(),
            value: r.value.map(Into::into),
        };
        let index = rlog
            .write(&shard, vec![op])
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::TableDebugReply {
            index,
            ..Default::default()
        }))
    }

    async fn cluster_debug(
        &self,
        request: Request<pb::ClusterDebugRequest>,
    ) -> Result<Response<pb::ClusterDebugReply>, Status> {
        let request = request.into_inner();
        let peer = parse(&request.peer)?;
        if !self.cluster.fault_injection() {
            return Err(Status::failed_precondition(
                "fault injection is off (cluster.dist.fault_injection)",
            ));
        }
        let action = match request.action {
            Some(Action::Cut(_)) => FaultAction::Cut,
            Some(Action::Restore(_)) => FaultAction::Restore,
            Some(Action::DelayMs(ms)) => FaultAction::Delay(Duration::from_millis(u64::from(ms))),
            Some(Action::Drop(_)) => FaultAction::Drop,
            Some(Action::Call(call)) => {
                return Ok(Response::new(self.debug_call(&peer, call).await))
            }
            Some(Action::Monitor(m)) => {
                return Ok(Response::new(self.debug_monitor(&peer, m).await))
            }
            Some(Action::Sequence(seq)) => {
                return Ok(Response::new(self.debug_sequence(&peer, seq).await))
            }
            Some(Action::Monitors(_)) => {
                return Ok(Response::new(pb::ClusterDebugReply {
                    result: "ok".to_owned(),
                    received: self.cluster.monitors_on_link(&peer) as u64,
                    ..Default::default()
                }))
            }
            None => return Err(Status::invalid_argument("no action")),
        };
        self.cluster.inject_fault(&peer, action).map_err(status)?;
        Ok(Response::new(pb::ClusterDebugReply::default()))
    }

    async fn task_debug(
        &self,
        request: Request<pb::TaskDebugRequest>,
    ) -> Result<Response<pb::TaskDebugReply>, Status> {
        let panic = request.into_inner().panic;
        let tasks: Vec<_> = self.tasks.iter().flat_map(Tasks::list).collect();
        if !panic.is_empty() {
            if !self.cluster.fault_injection() {
                return Err(Status::failed_precondition(
                    "fault injection is off (cluster.dist.fault_injection)",
                ));
            }
            let task = tasks
                .iter()
                .find(|t| t.name() == panic)
                .ok_or_else(|| Status::not_found(format!("no task {panic:?}")))?;
            task.inject_panic();
        }
        Ok(Response::new(pb::TaskDebugReply {
            tasks: tasks
                .iter()
                .map(|t| pb::TaskState {
                    name: t.name().to_owned(),
                    starts: t.starts(),
                    running: t.is_running(),
                })
                .collect(),
        }))
    }
}
