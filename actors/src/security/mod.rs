//! Who may connect: cluster membership by a shared key (`key.rs`), client passwords
//! (`password.rs`), and TLS on listeners and dialers (`tls.rs`, with the plain-or-TLS socket
//! in `stream.rs`).
//!
//! Each piece is optional and independent. Without a cluster key any process that reaches a
//! port may join as a slave or a standby; without a password any client may read and write;
//! without TLS the bytes cross the network in the clear. Nodes log a warning at start for
//! each one that is off.

pub mod key;
pub mod password;
pub mod stream;
pub mod tls;

use std::sync::Arc;

pub use key::ClusterKey;
pub use password::Password;
pub use stream::{ReadHalf, Stream, WriteHalf};
pub use tls::{TlsAcceptor, TlsConnector, TlsFiles};

/// What a dialing side presents and checks: the cluster key (members only), the client
/// password (clients only), and TLS. Its `Debug` leaves the password out.
#[derive(Clone, Default)]
pub struct Credentials {
    pub cluster_key: Option<ClusterKey>,
    pub password: Option<String>,
    pub tls: Option<TlsConnector>,
}

impl Credentials {
    /// A client's: the password in `password_file`, and TLS from `tls` (a CA to verify the
    /// servers, and a certificate if they ask for one).
    pub fn for_client(password_file: Option<&std::path::Path>, tls: &TlsFiles) -> Result<Self, crate::Error> {
        Ok(Credentials {
            cluster_key: None,
            password: password_file.map(password::read_password_file).transpose()?,
            tls: tls.connector()?,
        })
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("cluster_key", &self.cluster_key)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .finish()
    }
}

/// What a listening side demands and offers.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Members (slaves, the standby, the peer) must prove they hold it.
    pub cluster_key: Option<ClusterKey>,
    /// Clients (native and Redis) must present it.
    pub client_password: Option<Password>,
    /// TLS on every listener of the node.
    pub tls: Option<TlsAcceptor>,
}

impl Gate {
    /// Logs a warning for each protection that is off, once at start.
    pub fn warn_if_open(&self, credentials: &Credentials) {
        if self.cluster_key.is_none() {
            tracing::warn!(
                "no --cluster-key-file: this cluster is open, anyone who reaches its port can join as a slave or standby"
            );
        }
        if self.client_password.is_none() {
            tracing::warn!("no --client-password-file: any client that reaches a port can read and write every key");
        }
        if self.tls.is_none() {
            tracing::warn!(
                "no --tls-cert/--tls-key: this node's listeners serve plain TCP; passwords, keys and values cross the \
                 network unencrypted, and the cluster key protects only the handshake"
            );
        } else if credentials.tls.is_none() {
            tracing::warn!("no --tls-ca: this node connects to its peer over plain TCP");
        }
    }
}

/// A gate and credentials shared by a node's listeners and dialers.
pub type SharedGate = Arc<Gate>;
