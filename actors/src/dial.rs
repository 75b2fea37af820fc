//! Connecting to a server: TCP connect with `TCP_NODELAY`, the `Hello`, and the `Welcome`,
//! each step under a deadline so a stopped (SIGSTOP) server cannot hang the caller.

use std::time::Duration;

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use net::{encode_frame, FromServer, Hello, MsgCodec, PeerRole, ToServer, Welcome, WireError, PROTOCOL_VERSION};

use crate::error::Error;

/// The peer side of a connection to a server: frames from the server, frames to it.
pub type ServerReader = FramedRead<OwnedReadHalf, MsgCodec<FromServer, ToServer>>;

/// A connection that completed its handshake.
pub struct Dialed {
    pub addr: String,
    pub welcome: Welcome,
    pub reader: ServerReader,
    pub writer: OwnedWriteHalf,
}

/// Why a dial failed.
#[derive(Debug)]
pub enum DialError {
    /// The server answered the handshake with an error (not master, stale epoch, ...).
    Refused(WireError),
    /// Anything else: refused connection, timeout, garbage.
    Failed(Error),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Refused(err) => write!(f, "{err}"),
            DialError::Failed(err) => write!(f, "{err}"),
        }
    }
}

/// Connects to `addr` and completes the handshake as `role` within `deadline`.
pub async fn dial(addr: &str, role: PeerRole, deadline: Duration) -> Result<Dialed, DialError> {
    let failed = |reason: String| DialError::Failed(Error::Connect { addr: addr.to_string(), reason });
    let attempt = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| failed(e.to_string()))?;
        stream.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
        let (read, mut writer) = stream.into_split();
        let mut hello = BytesMut::new();
        encode_frame(&ToServer::Hello(Hello { protocol: PROTOCOL_VERSION, role }), &mut hello)
            .map_err(|e| DialError::Failed(e.into()))?;
        writer.write_all(&hello).await.map_err(|e| failed(e.to_string()))?;
        let mut reader = FramedRead::new(read, MsgCodec::new());
        match reader.next().await {
            Some(Ok(FromServer::Welcome(welcome))) => Ok(Dialed { addr: addr.to_string(), welcome, reader, writer }),
            Some(Ok(FromServer::Error(err))) => Err(DialError::Refused(err)),
            Some(Ok(other)) => Err(failed(format!("expected a Welcome, got {other:?}"))),
            Some(Err(err)) => Err(DialError::Failed(err.into())),
            None => Err(failed("closed during the handshake".to_string())),
        }
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(failed(format!("no handshake answer within {deadline:?}"))),
    }
}
