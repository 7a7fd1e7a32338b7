//! Dialing: one attempt ([`dial`]), the per-member reconnect loop with backoff
//! ([`connector`]), and seed discovery ([`discovery`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use girder_proto::dist::dist_client::DistClient;
use rand::Rng;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;
use tracing::{debug, info};

use crate::handshake::{Handshake, HandshakeError, RejectReason};
use crate::link::{self, LinkIo, MAX_FRAME};
use crate::node::{ConnectorStep, Node};
use crate::options::{Discovery, NodeName, Target};
use crate::ClusterError;

/// Dials `peer` at `addr` once. `Ok` when a link is up or already was (or a
/// handshake with the peer is under way).
pub(crate) async fn dial(
    node: &Arc<Node>,
    peer: &NodeName,
    addr: &str,
) -> Result<(), ClusterError> {
    let Some(token) = node.begin_dial(peer) else {
        return Ok(());
    };
    match handshake(node, peer, addr, token).await {
        Ok((info, io)) => {
            node.tasks.spawn(link::run(node.clone(), info, token, io));
            Ok(())
        }
        Err(e) => {
            node.abort(peer, token);
            if let ClusterError::Handshake {
                source: HandshakeError::Rejected(r),
                ..
            } = &e
            {
                match r {
                    RejectReason::Duplicate => return Ok(()),
                    RejectReason::Removed(v) => node.note_removed(*v),
                    RejectReason::Refused => {}
                }
            }
            Err(e)
        }
    }
}

async fn handshake(
    node: &Arc<Node>,
    peer: &NodeName,
    addr: &str,
    token: u64,
) -> Result<(crate::handshake::Peer, LinkIo), ClusterError> {
    let limit = node.opts.connect_timeout;
    let connect_err = |reason: String| ClusterError::Connect {
        peer: peer.clone(),
        addr: addr.to_owned(),
        reason,
    };
    let scheme = if node.opts.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| connect_err(e.to_string()))?
        .connect_timeout(limit)
        .tcp_nodelay(true);
    if let Some(tls) = &node.opts.tls {
        endpoint = endpoint
            .tls_config(tls.client_config(peer, limit))
            .map_err(|e| connect_err(e.to_string()))?;
    }
    let channel = tokio::time::timeout(limit, endpoint.connect())
        .await
        .map_err(|_| connect_err("timed out".into()))?
        .map_err(|e| connect_err(e.to_string()))?;
    let mut client = DistClient::new(channel)
        .max_decoding_message_size(MAX_FRAME)
        .max_encoding_message_size(MAX_FRAME);
    let fault = node.fault(peer);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let (hs, hello) = Handshake::dial(node.local(), peer.clone(), link::nonce());
    if !fault.drops() {
        tx.send(hello.into())
            .await
            .map_err(|_| connect_err("stream closed".into()))?;
    }
    let inbound = tokio::time::timeout(limit, client.link(ReceiverStream::new(rx)))
        .await
        .map_err(|_| connect_err("timed out".into()))?
        .map_err(|e| connect_err(e.to_string()))?
        .into_inner();
    let mut io = LinkIo {
        tx,
        rx: inbound.boxed(),
    };
    let info = link::drive(node, hs, &mut io, token, Some(&fault))
        .await
        .map_err(|source| ClusterError::Handshake {
            peer: peer.clone(),
            source,
        })?;
    Ok((info, io))
}

fn jittered(d: Duration) -> Duration {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(ms / 2 + rand::rng().random_range(0..=ms / 2))
}

/// Keeps a link to one joined member: dials, waits while the link is up,
/// redials with exponential backoff. Ends when the peer or this node leaves.
pub(crate) async fn connector(node: Arc<Node>, peer: NodeName) {
    let mut topology = node.topology();
    let mut backoff = node.opts.backoff.initial;
    loop {
        topology.borrow_and_update();
        match node.connector_step(&peer) {
            ConnectorStep::Stop => return,
            ConnectorStep::Wait => {
                tokio::select! {
                    _ = topology.changed() => {}
                    () = node.shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            ConnectorStep::Dial(addr) => match dial(&node, &peer, &addr).await {
                Ok(()) => backoff = node.opts.backoff.initial,
                Err(e) => {
                    debug!(node = %peer, cause = %e, ?backoff, "reconnect failed");
                    tokio::select! {
                        () = tokio::time::sleep(jittered(backoff)) => {}
                        () = node.shutdown.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(node.opts.backoff.max);
                }
            },
        }
    }
}

/// Resolves the discovery strategy to nodes to dial.
async fn resolve(node: &Node) -> Vec<Target> {
    match &node.opts.discovery {
        Discovery::Manual | Discovery::Singleton => Vec::new(),
        Discovery::Static { seeds } => seeds.iter().filter_map(|s| Target::parse(s).ok()).collect(),
        Discovery::Dns { name } => {
            let port = node
                .addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .unwrap_or(0);
            match tokio::net::lookup_host((name.as_str(), port)).await {
                // A records: node names carry IPv4 hosts.
                Ok(addrs) => addrs
                    .filter(std::net::SocketAddr::is_ipv4)
                    .filter_map(|a| {
                        let node =
                            NodeName::parse(&format!("{}@{}", node.me.name(), a.ip())).ok()?;
                        Some(Target {
                            node,
                            addr: a.to_string(),
                        })
                    })
                    .collect(),
                Err(e) => {
                    debug!(%name, cause = %e, "dns discovery failed");
                    Vec::new()
                }
            }
        }
    }
}

/// Removes every member that has had no link for `after` (EMQX's
/// `cluster.autoclean`), as `force_leave` does: checked every `after / 4`
/// (at most every 5 s, at least every 100 ms), so a member goes at most a
/// quarter of `after` late.
pub(crate) async fn autoclean(node: Arc<Node>, after: Duration) {
    let every = (after / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    let mut down_since: std::collections::HashMap<NodeName, tokio::time::Instant> =
        std::collections::HashMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = node.shutdown.cancelled() => return,
        }
        let now = tokio::time::Instant::now();
        let (_, stopped) = node.status();
        down_since.retain(|n, _| stopped.contains(n));
        for member in stopped {
            let since = *down_since.entry(member.clone()).or_insert(now);
            if now.duration_since(since) >= after && !node.is_left() {
                info!(node = %member, down_for = ?after, "autoclean removes a member");
                if let Err(e) = node.force_leave(&member) {
                    debug!(node = %member, cause = %e, "autoclean");
                }
                down_since.remove(&member);
            }
        }
    }
}

/// Dials every discovered node that is not known yet, now and every
/// `discovery_interval`, while this node is joined. Known members are the
/// connectors' business; tombstones are never dialed.
pub(crate) async fn discovery(node: Arc<Node>) {
    loop {
        if !node.is_left() {
            for target in resolve(&node).await {
                if node.should_discover(&target.node) {
                    let node = node.clone();
                    node.tasks.clone().spawn(async move {
                        if let Err(e) = dial(&node, &target.node, &target.addr).await {
                            debug!(node = %target.node, cause = %e, "discovered node not reachable");
                        }
                    });
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(node.opts.discovery_interval) => {}
            () = node.shutdown.cancelled() => return,
        }
    }
}
