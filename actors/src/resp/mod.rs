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

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::Actor;
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;

use codec::RespCodec;
use session::{RespSession, Shared};

use crate::limit::{holding, ConnectionLimit};
use crate::outbox::{decoded, drain, Outbox};
use bytes::Bytes;

pub use command::Endpoint;

/// Accepts Redis-protocol connections forever, at most `max_connections` open at once; each
/// gets a [`RespSession`].
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, max_connections: usize) {
    let limit = ConnectionLimit::new(max_connections);
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %err, "set_nodelay failed");
                }
                let (read, write) = stream.into_split();
                let outbox = Outbox::spawn_raw(write);
                let Some(slot) = limit.try_take() else {
                    tracing::warn!(%peer, max = limit.max(), "refusing a Redis connection: too many open");
                    // Redis's own words; the outbox closes the connection once they are out.
                    outbox.send(Bytes::from_static(b"-ERR max number of clients reached\r\n"));
                    actix_rt::spawn(drain(read));
                    continue;
                };
                let shared = shared.clone();
                RespSession::create(move |ctx| {
                    let requests = holding(decoded(FramedRead::new(read, RespCodec)), slot);
                    actix::AsyncContext::add_stream(ctx, requests);
                    RespSession::new(peer, shared, outbox)
                });
            }
            Err(err) => {
                tracing::error!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
