//! Accepting connections: read the first frame under a deadline, check it is a `Hello` of
//! this protocol version, and hand the connection to the actor for its role. Anything else
//! gets an error frame and a graceful close.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::{Actor, Addr, AsyncContext};
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

use net::{
    encode_frame, FromServer, Hello, Lsn, MsgCodec, NodeId, PeerRole, ToServer, Welcome, WireError, PROTOCOL_VERSION,
};

use super::backup_session::BackupSession;
use super::client_session::ClientSession;
use super::coordinator::{Deposed, SlaveJoined};
use super::slave_proxy::SlaveProxy;
use super::MasterConfig;
use crate::limit::{holding, ConnectionLimit, Slot};
use crate::node::role::{Describe, NodeActor};
use crate::outbox::{drain, frames, Outbox};

type ServerReader = FramedRead<tokio::net::tcp::OwnedReadHalf, MsgCodec<ToServer, FromServer>>;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Accepts connections forever, at most `--max-connections` open at once.
pub async fn serve(listener: TcpListener, node: Addr<NodeActor>, config: Arc<MasterConfig>) {
    let limit = ConnectionLimit::new(config.max_connections);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => match limit.try_take() {
                Some(slot) => {
                    actix_rt::spawn(handshake(stream, peer, node.clone(), config.clone(), slot));
                }
                None => {
                    tracing::warn!(%peer, max = limit.max(), "refusing a connection: too many open");
                    let (read, write) = stream.into_split();
                    let reader: ServerReader = FramedRead::new(read, MsgCodec::new());
                    let err = WireError::unavailable(format!("too many connections (at most {})", limit.max()));
                    actix_rt::spawn(refuse(peer, reader, write, err));
                }
            },
            Err(err) => {
                tracing::error!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handshake(stream: TcpStream, peer: SocketAddr, node: Addr<NodeActor>, config: Arc<MasterConfig>, slot: Slot) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, %err, "set_nodelay failed");
    }
    let (read, write) = stream.into_split();
    let mut reader: ServerReader = FramedRead::new(read, MsgCodec::new());
    let hello = match tokio::time::timeout(config.handshake_timeout, reader.next()).await {
        Err(_) => {
            let detail = format!("no handshake within {:?}", config.handshake_timeout);
            return refuse(peer, reader, write, WireError::protocol(detail)).await;
        }
        Ok(None) => return,
        Ok(Some(Err(err))) => match err.to_wire() {
            Some(wire) => return refuse(peer, reader, write, wire).await,
            None => return,
        },
        Ok(Some(Ok(ToServer::Hello(hello)))) => hello,
        Ok(Some(Ok(other))) => {
            let detail = format!("the first frame must be Hello, got {}", frame_name(&other));
            return refuse(peer, reader, write, WireError::protocol(detail)).await;
        }
    };
    let Hello { protocol, role } = hello;
    if protocol != PROTOCOL_VERSION {
        let detail = format!("protocol version {protocol} is not supported; this server speaks {PROTOCOL_VERSION}");
        return refuse(peer, reader, write, WireError::protocol(detail)).await;
    }
    let Ok(view) = node.send(Describe).await else {
        return;
    };
    let welcome = Welcome {
        protocol: PROTOCOL_VERSION,
        node: config.node.clone(),
        role: view.role,
        epoch: view.epoch,
        last_lsn: view.last_lsn,
        redis: config.redis.as_ref().map(|r| r.advertised.clone()),
    };
    if let PeerRole::Peer { id, epoch, .. } = &role {
        if let (Some((coordinator, _)), true) = (&view.serving, *epoch > view.epoch) {
            tracing::error!(peer_node = %id, its_epoch = %epoch, our_epoch = %view.epoch, "peer has a newer epoch");
            coordinator.do_send(Deposed { epoch: *epoch });
        }
        return refuse_with(peer, reader, write, FromServer::Welcome(welcome)).await;
    }
    let Some((coordinator, wal)) = view.serving else {
        return refuse(peer, reader, write, WireError::NotMaster { master: view.master }).await;
    };
    match role {
        PeerRole::Client => {
            let outbox = Outbox::spawn(write);
            ClientSession::create(move |ctx| {
                ctx.add_stream(holding(frames(reader), slot));
                ClientSession::new(peer, outbox, coordinator, welcome)
            });
        }
        PeerRole::Slave { id, epoch, incarnation, max_version, keys } => {
            if let Err(detail) = NodeId::parse(id.as_str()) {
                return refuse(peer, reader, write, WireError::bad_request(detail)).await;
            }
            if epoch > view.epoch && !crate::mutation::fencing_off() {
                tracing::error!(slave = %id, slave_epoch = %epoch, our_epoch = %view.epoch, "slave has accepted a newer epoch");
                coordinator.do_send(Deposed { epoch });
                return refuse(peer, reader, write, WireError::StaleEpoch { sent: view.epoch, current: epoch }).await;
            }
            let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            let outbox = Outbox::spawn(write);
            let heartbeat = config.heartbeat;
            let proxy_coordinator = coordinator.clone();
            let node = id.clone();
            let proxy = SlaveProxy::create(move |ctx| {
                ctx.add_stream(holding(frames(reader), slot));
                SlaveProxy::new(node, conn, peer, outbox, proxy_coordinator, welcome, heartbeat)
            });
            coordinator.do_send(SlaveJoined { node: id, incarnation, max_version, keys, addr: peer, conn, proxy });
        }
        PeerRole::Peer { .. } => unreachable!("answered above"),
        PeerRole::Backup { id, epoch, next_lsn } => {
            if let Err(detail) = NodeId::parse(id.as_str()) {
                return refuse(peer, reader, write, WireError::bad_request(detail)).await;
            }
            if epoch > view.epoch {
                tracing::error!(standby = %id, its_epoch = %epoch, our_epoch = %view.epoch, "peer has a newer epoch");
                coordinator.do_send(Deposed { epoch });
                return refuse(peer, reader, write, WireError::StaleEpoch { sent: view.epoch, current: epoch }).await;
            }
            // A standby resumes only a log it received from this master in this epoch;
            // anything else may have diverged and is replaced by a snapshot.
            let from = if epoch == view.epoch { next_lsn } else { Lsn(0) };
            let outbox = Outbox::spawn(write);
            BackupSession::create(move |ctx| {
                ctx.add_stream(holding(frames(reader), slot));
                BackupSession::new(id, peer, outbox, coordinator, wal, welcome, from)
            });
        }
    }
}

/// Sends `err`, closes the write side, and reads for a moment so the peer gets the frame.
async fn refuse(peer: SocketAddr, reader: ServerReader, write: OwnedWriteHalf, err: WireError) {
    tracing::info!(%peer, %err, "refusing a connection");
    refuse_with(peer, reader, write, FromServer::Error(err)).await
}

/// Sends one last frame and closes gracefully.
async fn refuse_with(_peer: SocketAddr, reader: ServerReader, mut write: OwnedWriteHalf, last: FromServer) {
    let mut buf = BytesMut::new();
    if encode_frame(&last, &mut buf).is_ok() && write.write_all(&buf).await.is_ok() {
        let _ = write.shutdown().await;
    }
    drain(reader.into_inner()).await;
}

fn frame_name(frame: &ToServer) -> &'static str {
    match frame {
        ToServer::Hello(_) => "Hello",
        ToServer::Request { .. } => "Request",
        ToServer::SlaveResponse { .. } => "SlaveResponse",
        ToServer::Error(_) => "Error",
        ToServer::StandbyAck { .. } => "StandbyAck",
        ToServer::StandbyPing => "StandbyPing",
    }
}
