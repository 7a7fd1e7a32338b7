//! The admin gRPC service's cluster calls (`girder.admin.v1.AdminService`).
//! The node serves it on `admin.bind`; `girder ctl` is its client.

use std::net::SocketAddr;
use std::time::Duration;

use girder_proto::admin::admin_service_server::{AdminService, AdminServiceServer};
use girder_proto::admin::{self as pb, cluster_debug_request::Action};
use tonic::{Request, Response, Status};

use crate::fault::FaultAction;
use crate::{ClusterError, ClusterHandle, NodeName};

/// The admin service over a running cluster layer.
#[derive(Debug, Clone)]
pub struct Admin {
    cluster: ClusterHandle,
}

impl Admin {
    /// The tonic service, to add to the admin server.
    pub fn service(cluster: ClusterHandle) -> AdminServiceServer<Self> {
        AdminServiceServer::new(Self { cluster })
    }
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
        ClusterError::FaultInjectionDisabled => Status::failed_precondition(e.to_string()),
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
        }))
    }

    async fn cluster_status(
        &self,
        _: Request<pb::ClusterStatusRequest>,
    ) -> Result<Response<pb::ClusterStatusReply>, Status> {
        let s = self.cluster.status();
        let names = |v: Vec<NodeName>| v.into_iter().map(|n| n.to_string()).collect();
        Ok(Response::new(pb::ClusterStatusReply {
            node: s.node.to_string(),
            cluster: s.cluster,
            running_nodes: names(s.running),
            stopped_nodes: names(s.stopped),
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

    async fn cluster_debug(
        &self,
        request: Request<pb::ClusterDebugRequest>,
    ) -> Result<Response<pb::ClusterDebugReply>, Status> {
        let request = request.into_inner();
        let peer = parse(&request.peer)?;
        let action = match request.action {
            Some(Action::Cut(_)) => FaultAction::Cut,
            Some(Action::Restore(_)) => FaultAction::Restore,
            Some(Action::DelayMs(ms)) => FaultAction::Delay(Duration::from_millis(u64::from(ms))),
            Some(Action::Drop(_)) => FaultAction::Drop,
            None => return Err(Status::invalid_argument("no action")),
        };
        self.cluster.inject_fault(&peer, action).map_err(status)?;
        Ok(Response::new(pb::ClusterDebugReply {}))
    }
}
