//! The distribution listener: the tonic `Dist` service.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use girder_proto::dist::dist_server::{Dist, DistServer};
use girder_proto::dist::Frame;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::link::{self, LinkIo, MAX_FRAME};
use crate::node::Node;

/// Accepts link streams and hands each to a handshake task.
#[derive(Debug)]
pub(crate) struct DistService {
    node: Arc<Node>,
}

impl DistService {
    pub(crate) fn server(node: Arc<Node>) -> DistServer<Self> {
        DistServer::new(Self { node })
            .max_decoding_message_size(MAX_FRAME)
            .max_encoding_message_size(MAX_FRAME)
    }
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, Status>> + Send>>;

#[tonic::async_trait]
impl Dist for DistService {
    type LinkStream = FrameStream;

    async fn link(
        &self,
        request: Request<Streaming<Frame>>,
    ) -> Result<Response<FrameStream>, Status> {
        if self.node.shutdown.is_cancelled() {
            return Err(Status::unavailable("shutting down"));
        }
        let remote = request.remote_addr();
        let inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let io = LinkIo {
            tx,
            rx: inbound.boxed(),
        };
        self.node
            .tasks
            .spawn(link::accept(self.node.clone(), io, remote));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx).map(Ok))))
    }
}
