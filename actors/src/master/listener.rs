//! Accepting connections: the TLS handshake when the node has a certificate, then the first
//! frame under the same deadline, which must be a `Hello` of this protocol version; then the
//! gate (see `security/`): members prove the cluster key, clients present the password, and
//! with mutual TLS members must have shown a certificate the CA signed. A connection that
//! passes is handed to the actor for its role; anything else gets an error frame and a
//! graceful close, and a refused member or client is logged with its address.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::{Actor, Addr, AsyncContext};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;

use net::{FromServer, Hello, MsgCodec, NodeId, PeerRole, ToServer, Welcome, WireError, NONCE_LEN, PROTOCOL_VERSION};

use super::backup_session::BackupSession;
use super::client_session::ClientSession;
use super::coordinator::SlaveJoined;
use super::slave_proxy::SlaveProxy;
use super::MasterConfig;
use crate::dial::is_member;
use crate::limit::{holding, ConnectionLimit, Slot};
use crate::node::role::{Admit, NodeActor};
use crate::outbox::{drain, frames, write_frame, Outbox};
use crate::role::Admission;
use crate::security::{ClusterKey, ReadHalf, Stream, WriteHalf};

type ServerReader = FramedRead<ReadHalf, MsgCodec<ToServer, FromServer>>;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Accepts connections forever, at most `--max-connections` open at once.
pub async fn serve(listener: TcpListener, node: Addr<NodeActor>, config: Arc<MasterConfig>) {
    let limit = ConnectionLimit::new(config.max_connections);
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => match limit.try_take() {
                Some(slot) => {
                    actix_rt::spawn(accept(tcp, peer, node.clone(), config.clone(), slot));
                }
                None if config.gate.tls.is_some() => {
                    // An error frame would cost a TLS handshake per refused connection.
                    tracing::warn!(%peer, max = limit.max(), "closing a connection: too many open");
                }
                None => {
                    tracing::warn!(%peer, max = limit.max(), "refusing a connection: too many open");
                    let (read, write) = Stream::Plain(tcp).split();
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

/// TLS (if on), then the handshake, all within `--handshake-timeout-ms` of the accept.
async fn accept(tcp: TcpStream, peer: SocketAddr, node: Addr<NodeActor>, config: Arc<MasterConfig>, slot: Slot) {
    if let Err(err) = tcp.set_nodelay(true) {
        tracing::debug!(%peer, %err, "set_nodelay failed");
    }
    let deadline = Instant::now() + config.handshake_timeout;
    let stream = match &config.gate.tls {
        None => Stream::Plain(tcp),
        Some(tls) => match tls.accept_by(tcp, peer, deadline, "").await {
            Some(stream) => stream,
            None => return,
        },
    };
    let verified = stream.peer_verified();
    let (read, write) = stream.split();
    handshake(FramedRead::new(read, MsgCodec::new()), write, peer, verified, deadline, node, config, slot).await
}

#[allow(clippy::too_many_arguments)]
async fn handshake(
    mut reader: ServerReader,
    mut write: WriteHalf,
    peer: SocketAddr,
    verified: bool,
    deadline: Instant,
    node: Addr<NodeActor>,
    config: Arc<MasterConfig>,
    slot: Slot,
) {
    let hello = match tokio::time::timeout_at(deadline, reader.next()).await {
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
    let Hello { protocol, role, nonce, password } = hello;
    if protocol != PROTOCOL_VERSION {
        let detail = format!("protocol version {protocol} is not supported; this server speaks {PROTOCOL_VERSION}");
        return refuse(peer, reader, write, WireError::protocol(detail)).await;
    }
    let admitted = if is_member(&role) {
        admit_member(&mut reader, &mut write, &role, nonce, verified, deadline, &config).await
    } else {
        admit_client(password.as_deref(), &config)
    };
    if let Err(err) = admitted {
        return refuse(peer, reader, write, err).await;
    }
    if let PeerRole::Slave { id, .. } | PeerRole::Backup { id, .. } | PeerRole::Peer { id, .. } = &role {
        if let Err(detail) = NodeId::parse(id.as_str()) {
            return refuse(peer, reader, write, WireError::bad_request(detail)).await;
        }
    }
    // Whom to admit is the role core's one decision (`role/mod.rs`, `RoleCore::admit`).
    let Ok(admitted) = node.send(Admit { role: role.clone() }).await else {
        return;
    };
    let welcome = Welcome {
        protocol: PROTOCOL_VERSION,
        node: config.node.clone(),
        role: admitted.role,
        epoch: admitted.epoch,
        last_lsn: admitted.last_lsn,
        redis: config.redis.as_ref().map(|r| r.advertised.clone()),
    };
    let serving = admitted.serving;
    match (admitted.admission, role) {
        (Admission::Peer, _) => refuse_with(peer, reader, write, FromServer::Welcome(welcome)).await,
        (Admission::NotMaster, PeerRole::Client) => {
            // Clients dial every server at once, so a standby turns one away per connection.
            let err = WireError::NotMaster { master: admitted.master };
            tracing::debug!(%peer, %err, "refusing a client");
            refuse_with(peer, reader, write, FromServer::Error(err)).await
        }
        (Admission::NotMaster, _) => {
            refuse(peer, reader, write, WireError::NotMaster { master: admitted.master }).await
        }
        (Admission::Refuse(err), _) => refuse(peer, reader, write, err).await,
        (Admission::Client, PeerRole::Client) => {
            let Some((coordinator, _)) = serving else { return };
            let outbox = Outbox::spawn(write, config.output, format_args!("client {peer}"));
            let requests = frames(reader, outbox.gate(true));
            ClientSession::create(move |ctx| {
                ctx.add_stream(holding(requests, slot));
                ClientSession::new(peer, outbox, coordinator, welcome)
            });
        }
        (Admission::Slave, PeerRole::Slave { id, epoch, incarnation, max_version, keys }) => {
            let Some((coordinator, _)) = serving else { return };
            let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            let outbox = Outbox::spawn(write, config.output, format_args!("slave {id} {peer}"));
            // The master sends this connection's requests: it reads the answers whatever it holds.
            let answers = frames(reader, outbox.gate(false));
            let heartbeat = config.heartbeat;
            let proxy_coordinator = coordinator.clone();
            let node = id.clone();
            let proxy = SlaveProxy::create(move |ctx| {
                ctx.add_stream(holding(answers, slot));
                SlaveProxy::new(node, conn, peer, outbox, proxy_coordinator, welcome, heartbeat)
            });
            let joined = SlaveJoined { node: id, epoch, incarnation, max_version, keys, addr: peer, conn, proxy };
            coordinator.do_send(joined);
        }
        (Admission::Backup { from }, PeerRole::Backup { id, .. }) => {
            let Some((coordinator, wal)) = serving else { return };
            let outbox = Outbox::spawn(write, config.output, format_args!("standby {id} {peer}"));
            // The master ships the log: it reads the standby's acknowledgements whatever it holds.
            let acks = frames(reader, outbox.gate(false));
            BackupSession::create(move |ctx| {
                ctx.add_stream(holding(acks, slot));
                BackupSession::new(id, peer, outbox, coordinator, wal, welcome, from)
            });
        }
        (admission, role) => {
            tracing::error!(?admission, ?role, "an admission that does not fit the role");
            refuse(peer, reader, write, WireError::internal("cannot admit this role")).await
        }
    }
}

/// A member proves it holds the cluster key (see `security/key.rs`); with mutual TLS it must
/// also have shown a certificate the CA signed.
async fn admit_member(
    reader: &mut ServerReader,
    write: &mut WriteHalf,
    role: &PeerRole,
    nonce: Option<Bytes>,
    verified: bool,
    deadline: Instant,
    config: &MasterConfig,
) -> Result<(), WireError> {
    if config.gate.tls.as_ref().is_some_and(|tls| tls.verifies_peers) && !verified {
        return Err(WireError::unauthorized("cluster members must present a certificate signed by the cluster's CA"));
    }
    let (key, nonce) = match (&config.gate.cluster_key, nonce) {
        (None, None) => return Ok(()),
        (None, Some(_)) => return Err(WireError::unauthorized(
            "this node runs without a cluster key and the peer has one; give every member the same --cluster-key-file",
        )),
        (Some(_), None) => {
            return Err(WireError::unauthorized("this cluster requires its key (--cluster-key-file) to join"));
        }
        (Some(key), Some(nonce)) => (key, nonce),
    };
    if nonce.len() != NONCE_LEN {
        return Err(WireError::protocol(format!("a membership nonce has {NONCE_LEN} bytes, not {}", nonce.len())));
    }
    let server_nonce = ClusterKey::nonce();
    let proof = key.server_proof(&nonce, &server_nonce, role);
    if write_frame(write, &FromServer::Challenge { nonce: server_nonce.clone(), proof }).await.is_err() {
        return Err(WireError::protocol("the connection failed during the handshake"));
    }
    match tokio::time::timeout_at(deadline, reader.next()).await {
        Ok(Some(Ok(ToServer::Proof { proof }))) if key.verify_member(&nonce, &server_nonce, role, &proof) => Ok(()),
        Ok(Some(Ok(ToServer::Proof { .. }))) => {
            Err(WireError::unauthorized("the cluster key proof does not match: the peer holds another key"))
        }
        Ok(Some(Ok(ToServer::Error(err)))) => {
            Err(WireError::unauthorized(format!("the peer refused this node: {err}")))
        }
        Ok(Some(Ok(other))) => Err(WireError::protocol(format!("expected Proof, got {}", frame_name(&other)))),
        Ok(Some(Err(err))) => Err(err.to_wire().unwrap_or_else(|| WireError::protocol(err.to_string()))),
        Ok(None) => Err(WireError::protocol("closed during the handshake")),
        Err(_) => Err(WireError::protocol("no Proof within the handshake deadline")),
    }
}

/// A client presents the password, when the node requires one.
fn admit_client(password: Option<&str>, config: &MasterConfig) -> Result<(), WireError> {
    match (&config.gate.client_password, password) {
        (None, _) => Ok(()),
        (Some(_), None) => {
            Err(WireError::unauthorized("this server requires a password (nodes client --password-file)"))
        }
        (Some(expected), Some(given)) if expected.matches(given.as_bytes()) => Ok(()),
        (Some(_), Some(_)) => Err(WireError::unauthorized("wrong password")),
    }
}

/// Sends `err`, closes the write side, and reads for a moment so the peer gets the frame.
async fn refuse(peer: SocketAddr, reader: ServerReader, write: WriteHalf, err: WireError) {
    match err {
        WireError::Unauthorized { .. } => tracing::warn!(%peer, %err, "refusing a connection"),
        _ => tracing::info!(%peer, %err, "refusing a connection"),
    }
    refuse_with(peer, reader, write, FromServer::Error(err)).await
}

/// Sends one last frame and closes gracefully.
async fn refuse_with(_peer: SocketAddr, reader: ServerReader, mut write: WriteHalf, last: FromServer) {
    if write_frame(&mut write, &last).await.is_ok() {
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
        ToServer::Proof { .. } => "Proof",
    }
}
