//! The two halves of a connection actor's socket: [`Outbox`] owns the write half in a task
//! that writes every frame ready at that moment with one `write` call, and [`frames`] turns
//! the read half into a stream of messages for `ctx.add_stream`.
//!
//! Closing is graceful on both sides. Dropping or closing the outbox writes what is queued,
//! then shuts the write half down. The frame stream, after a malformed frame, keeps reading
//! and discarding for a moment before it ends: a socket closed with unread bytes in its
//! receive buffer is reset, and a reset can destroy the error frame the peer has not read yet.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::{Decoder, FramedRead};

use net::{encode_frame, MsgCodec, NetError};

use crate::security::{ReadHalf, WriteHalf};

/// How long a closing connection keeps reading (and discarding) before it drops the socket.
pub const LINGER: Duration = Duration::from_millis(500);

/// Frames one write call carries at most.
const MAX_BATCH: usize = 256;

/// A write buffer that grew past this is given back after the batch.
const KEEP_BUFFER: usize = 256 * 1024;

/// The sending side of a connection.
pub struct Outbox<Out> {
    tx: Option<mpsc::UnboundedSender<Out>>,
}

impl<Out: Serialize + Send + 'static> Outbox<Out> {
    /// Starts the writer task on the current runtime; messages go out as length-prefixed
    /// MessagePack frames.
    pub fn spawn(write: WriteHalf) -> Self {
        Outbox::spawn_with(write, |msg: &Out, buf: &mut BytesMut| encode_frame(msg, buf).map_err(|err| err.to_string()))
    }
}

impl Outbox<Bytes> {
    /// Starts the writer task for bytes already encoded (another protocol's replies).
    pub fn spawn_raw(write: WriteHalf) -> Self {
        Outbox::spawn_with(write, |bytes: &Bytes, buf: &mut BytesMut| {
            buf.extend_from_slice(bytes);
            Ok(())
        })
    }
}

impl<Out: Send + 'static> Outbox<Out> {
    fn spawn_with(write: WriteHalf, encode: fn(&Out, &mut BytesMut) -> Result<(), String>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        actix_rt::spawn(write_loop(write, rx, encode));
        Outbox { tx: Some(tx) }
    }

    /// Queues a frame. Returns false when the connection is closed or closing.
    pub fn send(&self, msg: Out) -> bool {
        match &self.tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }

    /// Writes what is queued, then closes the write half. Later sends are dropped.
    pub fn close(&mut self) {
        self.tx = None;
    }

    pub fn is_open(&self) -> bool {
        self.tx.as_ref().is_some_and(|tx| !tx.is_closed())
    }
}

async fn write_loop<Out>(
    mut write: WriteHalf,
    mut rx: mpsc::UnboundedReceiver<Out>,
    encode: fn(&Out, &mut BytesMut) -> Result<(), String>,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        for msg in batch.drain(..) {
            if let Err(err) = encode(&msg, &mut buf) {
                tracing::error!(%err, "dropping an outgoing frame that cannot be encoded");
            }
        }
        // The flush is free on plain TCP and pushes out a TLS session's last record.
        if let Err(err) = async {
            write.write_all(&buf).await?;
            write.flush().await
        }
        .await
        {
            tracing::debug!(%err, "connection write failed");
            return;
        }
        buf.clear();
        if buf.capacity() > KEEP_BUFFER {
            buf = BytesMut::with_capacity(16 * 1024);
        }
    }
    let _ = write.shutdown().await;
}

/// The incoming frames of a connection, as a stream that ends after the first error (having
/// lingered as described in the module comment).
pub fn frames<In, Out>(
    framed: FramedRead<ReadHalf, MsgCodec<In, Out>>,
) -> impl Stream<Item = Result<In, NetError>> + 'static
where
    In: DeserializeOwned + 'static,
    Out: 'static,
{
    decoded(framed)
}

/// [`frames`] for any decoder (another protocol's requests).
pub fn decoded<D>(framed: FramedRead<ReadHalf, D>) -> impl Stream<Item = Result<D::Item, D::Error>> + 'static
where
    D: Decoder + 'static,
    D::Item: 'static,
    D::Error: 'static,
{
    enum State<R> {
        Reading(R),
        Draining(ReadHalf),
    }
    futures_util::stream::unfold(State::Reading(framed), |state| async move {
        match state {
            State::Reading(mut framed) => match framed.next().await {
                Some(Ok(msg)) => Some((Ok(msg), State::Reading(framed))),
                Some(Err(err)) => Some((Err(err), State::Draining(framed.into_inner()))),
                None => None,
            },
            State::Draining(read) => {
                drain(read).await;
                None
            }
        }
    })
}

/// Writes one frame and flushes it, outside any outbox: the handshake's frames, and the last
/// frame of a refused connection.
pub async fn write_frame<T: Serialize>(write: &mut WriteHalf, frame: &T) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    encode_frame(frame, &mut buf).map_err(std::io::Error::other)?;
    write.write_all(&buf).await?;
    write.flush().await
}

/// Reads and discards until the peer closes or [`LINGER`] passes.
pub async fn drain(mut read: ReadHalf) {
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(LINGER, async {
        while let Ok(n) = read.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
