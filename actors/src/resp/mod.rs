//! The Redis-protocol endpoint: RESP2 on `--redis-listen`, and Sentinel-compatible discovery on
//! `--sentinel-listen`, for the master and the backup alike.
//!
//! Map: `codec.rs` turns bytes into requests (the `redis-protocol` crate parses, a guard checks
//! lengths first); `command.rs` turns a request into a [`command::Command`] or the error Redis
//! would give; `reply.rs` holds replies and their encoding; `session.rs` is the connection
//! actor that carries commands to the coordinator and replies in order.
//!
//! Caveats: only RESP2 (`HELLO 3` is refused); one database; no transactions, expiry, pub/sub
//! or multi-key atomicity (`MSET` is refused rather than done non-atomically). The Sentinel
//! endpoint is not a Sentinel: it reports what its own node knows of who is master, which is
//! what Sentinel-aware clients need to find the master and follow a takeover.

pub mod codec;
pub mod command;
pub mod reply;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::Actor;
use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::FramedRead;

use codec::RespCodec;
use session::{RespSession, Shared};

use crate::limit::{holding, ConnectionLimit, Slot};
use crate::outbox::{decoded, drain, Outbox, OutputLimits};
use crate::security::{Stream, TlsAcceptor};

pub use command::Endpoint;

/// How a Redis-protocol listener accepts connections.
#[derive(Debug, Clone)]
pub struct Accepting {
    /// Open connections at most.
    pub max_connections: usize,
    /// TLS, if the node has a certificate.
    pub tls: Option<TlsAcceptor>,
    /// How long a TLS handshake may take.
    pub handshake_timeout: Duration,
    /// Replies a connection may hold unread before it stops reading commands, and closes.
    pub output: OutputLimits,
}

/// Accepts Redis-protocol connections forever, at most `max_connections` open at once; each
/// gets a [`RespSession`].
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, accepting: Accepting) {
    let limit = ConnectionLimit::new(accepting.max_connections);
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                if let Err(err) = tcp.set_nodelay(true) {
                    tracing::debug!(%peer, %err, "set_nodelay failed");
                }
                let Some(slot) = limit.try_take() else {
                    tracing::warn!(%peer, max = limit.max(), "refusing a Redis connection: too many open");
                    if accepting.tls.is_none() {
                        let (read, write) = Stream::Plain(tcp).split();
                        // Redis's own words; the outbox closes the connection once they are out.
                        Outbox::spawn_raw(write, accepting.output, peer)
                            .send(Bytes::from_static(b"-ERR max number of clients reached\r\n"));
                        actix_rt::spawn(drain(read));
                    }
                    continue;
                };
                match &accepting.tls {
                    None => start_session(Stream::Plain(tcp), peer, shared.clone(), slot, accepting.output),
                    Some(tls) => {
                        actix_rt::spawn(accept_tls(
                            tls.clone(),
                            tcp,
                            peer,
                            shared.clone(),
                            slot,
                            accepting.handshake_timeout,
                            accepting.output,
                        ));
                    }
                }
            }
            Err(err) => {
                tracing::error!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn accept_tls(
    tls: TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    slot: Slot,
    deadline: Duration,
    output: OutputLimits,
) {
    let deadline = tokio::time::Instant::now() + deadline;
    if let Some(stream) = tls.accept_by(tcp, peer, deadline, "Redis connection: ").await {
        start_session(stream, peer, shared, slot, output);
    }
}

fn start_session(stream: Stream, peer: SocketAddr, shared: Arc<Shared>, slot: Slot, output: OutputLimits) {
    let (read, write) = stream.split();
    let outbox = Outbox::spawn_raw(write, output, format_args!("Redis client {peer}"));
    let requests = holding(decoded(FramedRead::new(read, RespCodec), outbox.gate(true)), slot);
    RespSession::create(move |ctx| {
        actix::AsyncContext::add_stream(ctx, requests);
        RespSession::new(peer, shared, outbox)
    });
}
