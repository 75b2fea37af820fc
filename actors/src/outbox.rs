//! The two halves of a connection actor's socket: [`Outbox`] encodes frames straight into one
//! buffer that a writer task sends with one `write` call for everything queued at that moment,
//! and [`frames`] turns the read half into a stream of messages for `ctx.add_stream`.
//!
//! Closing is graceful on both sides. Dropping or closing the outbox writes what is queued,
//! then shuts the write half down. The frame stream, after a malformed frame, keeps reading
//! and discarding for a moment before it ends: a socket closed with unread bytes in its
//! receive buffer is reset, and a reset can destroy the error frame the peer has not read yet.
//!
//! Backpressure: a peer that sends requests and never reads the answers must not make this
//! process hold them all. Every outbox counts the bytes its peer has not taken yet against
//! [`OutputLimits`]. A connection that serves requests reads through a [`ReadGate::Pause`]: while
//! its unsent output is over the soft limit it reads no more requests, so TCP flow control
//! pushes back on the peer. Past the hard limit (answers to requests already taken can still
//! pile up) the outbox drops what is queued, logs the peer, and closes; the frame stream then
//! ends, and the actor stops as it does when a peer leaves. A connection that sends requests
//! (a slave proxy on the master, the standby's log stream) never pauses its reading, which
//! could deadlock two peers waiting for each other; it has the hard limit only
//! ([`ReadGate::CloseOnly`]).

use std::fmt::Display;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{watch, Notify};
use tokio_util::codec::{Decoder, FramedRead};

use net::limits::MAX_FRAME_LEN;
use net::{encode_frame, MsgCodec, NetError};

use crate::security::{ReadHalf, WriteHalf};

/// How long a closing connection keeps reading (and discarding) before it drops the socket.
pub const LINGER: Duration = Duration::from_millis(500);

/// A write buffer that grew past this is given back once it is empty.
const KEEP_BUFFER: usize = 256 * 1024;

/// How much output a connection may hold that its peer has not read yet, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputLimits {
    /// Over this, a connection that serves requests stops reading them.
    pub soft: usize,
    /// Over this, the connection is closed.
    pub hard: usize,
}

impl OutputLimits {
    /// 4 MiB before a serving connection stops reading, 64 MiB before any connection closes.
    pub const DEFAULT: OutputLimits = OutputLimits { soft: 4 << 20, hard: 64 << 20 };

    /// Limits in MiB, as the command line takes them. The hard limit must leave room above
    /// the soft one for at least one frame of the largest size.
    pub fn from_mib(soft: usize, hard: usize) -> Result<OutputLimits, String> {
        let limits = OutputLimits { soft: soft.saturating_mul(1 << 20), hard: hard.saturating_mul(1 << 20) };
        if limits.soft == 0 {
            return Err("the soft output limit must be at least 1 MiB".to_string());
        }
        if limits.hard < limits.soft.saturating_add(MAX_FRAME_LEN) {
            return Err(format!(
                "the hard output limit ({hard} MiB) must exceed the soft one ({soft} MiB) by at least one largest \
                 frame ({} KiB)",
                MAX_FRAME_LEN >> 10
            ));
        }
        Ok(limits)
    }
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits::DEFAULT
    }
}

/// Where a connection's unsent output stands against its limits (what a [`ReadGate`] watches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Below,
    OverSoft,
    /// Over the hard limit: the connection is being closed.
    Overflowed,
}

struct Queue {
    /// Encoded frames not yet handed to the socket.
    buf: BytesMut,
    /// Bytes handed to the socket in a write that has not finished.
    writing: usize,
    /// No more frames are taken: closed by the actor, by a write error, or by overflow.
    closed: bool,
    level: Level,
}

impl Queue {
    fn unsent(&self) -> usize {
        self.buf.len() + self.writing
    }
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer task: frames were queued, or the outbox closed.
    wake_writer: Notify,
    /// Tells gated readers where the output stands.
    level: watch::Sender<Level>,
    limits: OutputLimits,
    peer: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The lock guards plain bytes and counters; a panic while holding it leaves them usable.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Recomputes the level after the unsent byte count changed; tells readers if it moved.
    fn relevel(&self, queue: &mut Queue) {
        if queue.level == Level::Overflowed {
            return;
        }
        let unsent = queue.unsent();
        let level = if unsent > self.limits.hard {
            tracing::warn!(
                peer = %self.peer,
                unsent,
                limit = self.limits.hard,
                "closing a connection: its peer does not read what it is sent"
            );
            queue.buf = BytesMut::new();
            queue.closed = true;
            Level::Overflowed
        } else if unsent > self.limits.soft {
            Level::OverSoft
        } else {
            Level::Below
        };
        if level != queue.level {
            queue.level = level;
            self.level.send_replace(level);
        }
    }
}

/// The sending side of a connection.
pub struct Outbox<Out> {
    shared: Option<Arc<Shared>>,
    encode: fn(&Out, &mut BytesMut) -> Result<(), String>,
}

impl<Out: Serialize> Outbox<Out> {
    /// Starts the writer task on the current runtime; messages go out as length-prefixed
    /// MessagePack frames. `peer` names the connection in the log.
    pub fn spawn(write: WriteHalf, limits: OutputLimits, peer: impl Display) -> Self {
        Outbox::spawn_with(write, limits, peer, |msg: &Out, buf: &mut BytesMut| {
            encode_frame(msg, buf).map_err(|err| err.to_string())
        })
    }
}

impl Outbox<bytes::Bytes> {
    /// Starts the writer task for bytes already encoded (another protocol's replies).
    pub fn spawn_raw(write: WriteHalf, limits: OutputLimits, peer: impl Display) -> Self {
        Outbox::spawn_with(write, limits, peer, |bytes: &bytes::Bytes, buf: &mut BytesMut| {
            buf.extend_from_slice(bytes);
            Ok(())
        })
    }

    /// Lets `write` encode straight into the send buffer, without a copy in between. Returns
    /// false (and calls nothing) when the connection is closed or closing.
    pub fn write_with(&self, write: impl FnOnce(&mut BytesMut)) -> bool {
        let Some(shared) = &self.shared else { return false };
        let mut queue = shared.lock();
        if queue.closed {
            return false;
        }
        write(&mut queue.buf);
        shared.relevel(&mut queue);
        let open = !queue.closed;
        drop(queue);
        shared.wake_writer.notify_one();
        open
    }
}

impl<Out> Outbox<Out> {
    fn spawn_with(
        write: WriteHalf,
        limits: OutputLimits,
        peer: impl Display,
        encode: fn(&Out, &mut BytesMut) -> Result<(), String>,
    ) -> Self {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                buf: BytesMut::with_capacity(16 * 1024),
                writing: 0,
                closed: false,
                level: Level::Below,
            }),
            wake_writer: Notify::new(),
            level: watch::Sender::new(Level::Below),
            limits,
            peer: peer.to_string(),
        });
        actix_rt::spawn(write_loop(write, shared.clone()));
        Outbox { shared: Some(shared), encode }
    }

    /// Queues a frame. Returns false when the connection is closed or closing (then, or when
    /// this frame took it over its hard limit, the frame is dropped).
    pub fn send(&self, msg: Out) -> bool {
        let Some(shared) = &self.shared else { return false };
        let mut queue = shared.lock();
        if queue.closed {
            return false;
        }
        let before = queue.buf.len();
        if let Err(err) = (self.encode)(&msg, &mut queue.buf) {
            queue.buf.truncate(before);
            tracing::error!(peer = %shared.peer, %err, "dropping an outgoing frame that cannot be encoded");
            return true;
        }
        shared.relevel(&mut queue);
        let open = !queue.closed;
        drop(queue);
        shared.wake_writer.notify_one();
        open
    }

    /// Writes what is queued, then closes the write half. Later sends are dropped.
    pub fn close(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.lock().closed = true;
            shared.wake_writer.notify_one();
        }
    }

    pub fn is_open(&self) -> bool {
        self.shared.as_ref().is_some_and(|shared| !shared.lock().closed)
    }

    /// The unsent output is over the soft limit: a sender of bulk output (a snapshot) waits
    /// for [`Outbox::writable`] before it queues more.
    pub fn over_soft(&self) -> bool {
        self.shared.as_ref().is_some_and(|shared| shared.lock().level == Level::OverSoft)
    }

    /// Resolves once the unsent output is back at or under the soft limit, or the connection
    /// is closed.
    pub fn writable(&self) -> impl std::future::Future<Output = ()> + 'static {
        let level = self.shared.as_ref().map(|shared| shared.level.subscribe());
        async move {
            if let Some(mut level) = level {
                let _ = level.wait_for(|l| *l != Level::OverSoft).await;
            }
        }
    }

    /// The gate for this connection's reader: [`ReadGate::Pause`] for a connection that serves
    /// requests, [`ReadGate::CloseOnly`] for one that sends them.
    pub fn gate(&self, pause: bool) -> ReadGate {
        match &self.shared {
            Some(shared) if pause => ReadGate::Pause(shared.level.subscribe()),
            Some(shared) => ReadGate::CloseOnly(shared.level.subscribe()),
            None => ReadGate::Open,
        }
    }
}

impl<Out> Drop for Outbox<Out> {
    fn drop(&mut self) {
        self.close();
    }
}

async fn write_loop(mut write: WriteHalf, shared: Arc<Shared>) {
    loop {
        let chunk = {
            let mut queue = shared.lock();
            if queue.buf.is_empty() {
                if queue.closed {
                    break;
                }
                if queue.buf.capacity() > KEEP_BUFFER {
                    queue.buf = BytesMut::with_capacity(16 * 1024);
                }
                None
            } else {
                let chunk = queue.buf.split();
                queue.writing = chunk.len();
                Some(chunk)
            }
        };
        let Some(chunk) = chunk else {
            shared.wake_writer.notified().await;
            continue;
        };
        // The flush is free on plain TCP and pushes out a TLS session's last record.
        let written = async {
            write.write_all(&chunk).await?;
            write.flush().await
        }
        .await;
        let mut queue = shared.lock();
        queue.writing = 0;
        if let Err(err) = written {
            tracing::debug!(peer = %shared.peer, %err, "connection write failed");
            queue.closed = true;
            queue.buf = BytesMut::new();
            return;
        }
        shared.relevel(&mut queue);
    }
    let overflowed = shared.lock().level == Level::Overflowed;
    if !overflowed {
        let _ = write.shutdown().await;
    }
}

/// How a connection's reader waits on its outbox.
pub enum ReadGate {
    /// Reads regardless of the outbox (a connection without one).
    Open,
    /// Stops reading while the unsent output is over the soft limit; ends past the hard one.
    Pause(watch::Receiver<Level>),
    /// Ends once the unsent output passed the hard limit.
    CloseOnly(watch::Receiver<Level>),
}

impl ReadGate {
    /// Waits until reading may go on; false once the connection overflowed.
    async fn admit(&mut self) -> bool {
        let ReadGate::Pause(level) = self else { return true };
        match level.wait_for(|l| *l != Level::OverSoft).await {
            Ok(level) => *level != Level::Overflowed,
            // The outbox is gone: the actor is stopping, and the read ends with it.
            Err(_) => true,
        }
    }

    /// Resolves once the connection overflowed; never, for a gate that cannot.
    async fn overflowed(&mut self) {
        match self {
            ReadGate::Open => std::future::pending().await,
            ReadGate::Pause(level) | ReadGate::CloseOnly(level) => {
                if level.wait_for(|l| *l == Level::Overflowed).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// The incoming frames of a connection, as a stream that ends after the first error (having
/// lingered as described in the module comment), or when `gate` reports an overflow.
pub fn frames<In, Out>(
    framed: FramedRead<ReadHalf, MsgCodec<In, Out>>,
    gate: ReadGate,
) -> impl Stream<Item = Result<In, NetError>> + 'static
where
    In: DeserializeOwned + 'static,
    Out: 'static,
{
    decoded(framed, gate)
}

/// [`frames`] for any decoder (another protocol's requests).
pub fn decoded<D>(
    framed: FramedRead<ReadHalf, D>,
    gate: ReadGate,
) -> impl Stream<Item = Result<D::Item, D::Error>> + 'static
where
    D: Decoder + 'static,
    D::Item: 'static,
    D::Error: 'static,
{
    enum State<R> {
        Reading(R, ReadGate),
        Draining(ReadHalf),
    }
    futures_util::stream::unfold(State::Reading(framed, gate), |state| async move {
        match state {
            State::Reading(mut framed, mut gate) => {
                if !gate.admit().await {
                    return None;
                }
                let next = tokio::select! {
                    biased;
                    () = gate.overflowed() => return None,
                    next = framed.next() => next,
                };
                match next {
                    Some(Ok(msg)) => Some((Ok(msg), State::Reading(framed, gate))),
                    Some(Err(err)) => Some((Err(err), State::Draining(framed.into_inner()))),
                    None => None,
                }
            }
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
