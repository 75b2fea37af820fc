//! Connecting to a server: TCP connect with `TCP_NODELAY`, TLS when the credentials carry a
//! CA, the `Hello`, the membership challenge-response when the credentials carry a cluster key
//! (see `security/key.rs`), and the `Welcome`, all under one deadline so a stopped (SIGSTOP)
//! server cannot hang the caller.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio_util::codec::FramedRead;

use net::{FromServer, Hello, MsgCodec, NetError, PeerRole, ToServer, Welcome, WireError, NONCE_LEN};

use crate::error::Error;
use crate::outbox::write_frame;
use crate::security::{ClusterKey, Credentials, ReadHalf, Stream, WriteHalf};

/// The peer side of a connection to a server: frames from the server, frames to it.
pub type ServerReader = FramedRead<ReadHalf, MsgCodec<FromServer, ToServer>>;

/// A connection that completed its handshake.
pub struct Dialed {
    pub addr: String,
    pub welcome: Welcome,
    pub reader: ServerReader,
    pub writer: WriteHalf,
}

/// Why a dial failed.
#[derive(Debug)]
pub enum DialError {
    /// The server answered the handshake with an error (not master, stale epoch,
    /// unauthorized, ...).
    Refused(WireError),
    /// The two sides do not trust each other, found on this side: the server cannot prove it
    /// holds the cluster key, or runs without one; TLS verification failed either way. The
    /// server is alive; retrying will not help until the configuration changes.
    Untrusted(Error),
    /// Nothing listens at the address: the connection was refused (the process is gone, or
    /// a firewall rejects it).
    NoListener(Error),
    /// Anything else: timeout, reset, garbage.
    Failed(Error),
}

impl DialError {
    /// Whether the server answered but the two sides do not trust each other.
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, DialError::Untrusted(_) | DialError::Refused(WireError::Unauthorized { .. }))
    }
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Refused(err) => write!(f, "{err}"),
            DialError::Untrusted(err) | DialError::NoListener(err) | DialError::Failed(err) => write!(f, "{err}"),
        }
    }
}

/// Whether a role joins the cluster (and so proves the cluster key) rather than using it.
pub fn is_member(role: &PeerRole) -> bool {
    !matches!(role, PeerRole::Client)
}

/// Connects to `addr` and completes the handshake as `role` within `deadline`.
pub async fn dial(
    addr: &str,
    role: PeerRole,
    deadline: Duration,
    credentials: &Credentials,
) -> Result<Dialed, DialError> {
    let failed = |reason: String| DialError::Failed(Error::Connect { addr: addr.to_string(), reason });
    let untrusted = |reason: String| DialError::Untrusted(Error::Connect { addr: addr.to_string(), reason });
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                DialError::NoListener(Error::Connect { addr: addr.to_string(), reason: e.to_string() })
            }
            _ => failed(e.to_string()),
        })?;
        tcp.set_nodelay(true).map_err(|e| failed(e.to_string()))?;
        let stream = match &credentials.tls {
            // rustls reports certificate and alert failures as InvalidData.
            Some(tls) => tls.connect(addr, tcp).await.map_err(|e| match e.kind() {
                std::io::ErrorKind::InvalidData => untrusted(format!("TLS: {e}")),
                _ => failed(format!("TLS: {e}")),
            })?,
            None => Stream::Plain(tcp),
        };
        let (read, mut writer) = stream.split();
        let mut reader = FramedRead::new(read, MsgCodec::new());

        let key = credentials.cluster_key.as_ref().filter(|_| is_member(&role));
        let nonce = key.map(|_| ClusterKey::nonce());
        let hello = Hello {
            nonce: nonce.clone(),
            password: credentials.password.clone().filter(|_| !is_member(&role)),
            ..Hello::new(role.clone())
        };
        write_frame(&mut writer, &ToServer::Hello(hello)).await.map_err(|e| failed(e.to_string()))?;
        let mut answer = next(&mut reader, addr).await?;
        if let FromServer::Challenge { nonce: server_nonce, proof } = &answer {
            let (Some(key), Some(nonce)) = (key, &nonce) else {
                return Err(untrusted(
                    "the server demands a cluster key and this node has none (--cluster-key-file)".into(),
                ));
            };
            if server_nonce.len() != NONCE_LEN || !key.verify_server(nonce, server_nonce, &role, proof) {
                // Tell the server, which logs the attempt; then give up on it.
                let err = WireError::unauthorized("the server's proof does not match this node's cluster key");
                let _ = write_frame(&mut writer, &ToServer::Error(err)).await;
                return Err(untrusted(
                    "the server failed to prove it holds the cluster key: it has another key".into(),
                ));
            }
            let proof = key.member_proof(nonce, server_nonce, &role);
            write_frame(&mut writer, &ToServer::Proof { proof }).await.map_err(|e| failed(e.to_string()))?;
            answer = next(&mut reader, addr).await?;
        } else if key.is_some() && matches!(answer, FromServer::Welcome(_)) {
            return Err(untrusted("the server did not prove it holds the cluster key: it runs without one".into()));
        }
        match answer {
            FromServer::Welcome(welcome) => Ok(Dialed { addr: addr.to_string(), welcome, reader, writer }),
            FromServer::Error(err) => Err(DialError::Refused(err)),
            other => Err(failed(format!("expected a Welcome, got {other:?}"))),
        }
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(result) => result,
        Err(_) => Err(failed(format!("no handshake answer within {deadline:?}"))),
    }
}

async fn next(reader: &mut ServerReader, addr: &str) -> Result<FromServer, DialError> {
    match reader.next().await {
        Some(Ok(frame)) => Ok(frame),
        // A TLS record (alert 0x15 or handshake 0x16, version 3.x) read as a length prefix.
        Some(Err(NetError::FrameTooLong { len, .. })) if matches!(len >> 16, 0x1503 | 0x1603) => {
            Err(DialError::Failed(Error::Connect {
                addr: addr.to_string(),
                reason: "the server speaks TLS; connect with --tls-ca".to_string(),
            }))
        }
        Some(Err(err)) => Err(DialError::Failed(err.into())),
        None => Err(DialError::Failed(Error::Connect {
            addr: addr.to_string(),
            reason: "closed during the handshake".to_string(),
        })),
    }
}
