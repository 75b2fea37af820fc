//! TLS for listeners (`--tls-cert`, `--tls-key`, and `--tls-ca` to verify peers' certificates)
//! and for dialers (`--tls-ca` to verify the server, and the node's own certificate to be
//! verified in turn). rustls with the ring provider; certificates and keys are PEM files.
//!
//! A listener with a CA asks every peer for a certificate but lets clients without one in
//! (clients are checked by password); cluster members must present one the CA signed, or the
//! handshake refuses them. A certificate from another CA fails the TLS handshake itself.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::stream::Stream;
use crate::error::Error;

/// The PEM files a node was given.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    /// The listener side: `None` without a certificate; an error with only half a pair.
    pub fn acceptor(&self) -> Result<Option<TlsAcceptor>, Error> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => TlsAcceptor::new(cert, key, self.ca.as_deref()).map(Some),
            (None, None) => Ok(None),
            _ => Err(Error::BadInput("--tls-cert and --tls-key go together".to_string())),
        }
    }

    /// The dialing side: `None` without a CA (plain TCP); with one, TLS that verifies the
    /// server, presenting this node's certificate when it has one.
    pub fn connector(&self) -> Result<Option<TlsConnector>, Error> {
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            _ => return Err(Error::BadInput("--tls-cert and --tls-key go together".to_string())),
        };
        match &self.ca {
            Some(ca) => TlsConnector::new(ca, identity).map(Some),
            None => Ok(None),
        }
    }
}

/// Accepts TLS on a listener.
#[derive(Clone)]
pub struct TlsAcceptor {
    inner: tokio_rustls::TlsAcceptor,
    /// Peers' certificates are verified against a CA (mutual TLS).
    pub verifies_peers: bool,
}

impl fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsAcceptor").field("verifies_peers", &self.verifies_peers).finish()
    }
}

impl TlsAcceptor {
    pub fn new(cert: &Path, key: &Path, ca: Option<&Path>) -> Result<Self, Error> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS", e))?;
        let builder = match ca {
            Some(ca) => {
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| tls_error(&format!("the CA in {}", ca.display()), e))?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(certs(cert)?, private_key(key)?)
            .map_err(|e| tls_error(&format!("{} and {}", cert.display(), key.display()), e))?;
        Ok(TlsAcceptor { inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)), verifies_peers: ca.is_some() })
    }

    /// The TLS handshake on an accepted connection.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<Stream> {
        let tls = self.inner.accept(tcp).await?;
        Ok(Stream::Tls(Box::new(tls.into())))
    }

    /// The TLS handshake on a listener's connection from `peer`, by `deadline`; a failure is
    /// logged (each line starting with `what`, which names the listener) and gives `None`.
    pub async fn accept_by(&self, tcp: TcpStream, peer: SocketAddr, deadline: Instant, what: &str) -> Option<Stream> {
        match tokio::time::timeout_at(deadline, self.accept(tcp)).await {
            Ok(Ok(stream)) => Some(stream),
            // rustls reports what the peer sent wrong (not TLS, a certificate the CA did not
            // sign) as InvalidData; anything else is a peer that went away mid-handshake (a
            // client that dialed every server and kept another one, a cut link).
            Ok(Err(err)) if err.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(%peer, %err, "{what}TLS handshake refused; closing");
                None
            }
            Ok(Err(err)) => {
                tracing::debug!(%peer, %err, "{what}connection closed during the TLS handshake");
                None
            }
            Err(_) => {
                tracing::info!(%peer, "{what}no TLS handshake within the deadline; closing");
                None
            }
        }
    }
}

/// Dials TLS, verifying the server against a CA.
#[derive(Clone)]
pub struct TlsConnector {
    inner: tokio_rustls::TlsConnector,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConnector(..)")
    }
}

impl TlsConnector {
    pub fn new(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, Error> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error("TLS", e))?
            .with_root_certificates(roots(ca)?);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(certs(cert)?, private_key(key)?)
                .map_err(|e| tls_error(&format!("{} and {}", cert.display(), key.display()), e))?,
            None => builder.with_no_client_auth(),
        };
        Ok(TlsConnector { inner: tokio_rustls::TlsConnector::from(Arc::new(config)) })
    }

    /// The TLS handshake on a connection to `addr` (`host:port`); the server's certificate
    /// must name `host` (a DNS name or an IP address).
    pub async fn connect(&self, addr: &str, tcp: TcpStream) -> io::Result<Stream> {
        let host = host_of(addr);
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a server name")))?;
        let tls = self.inner.connect(name, tcp).await?;
        Ok(Stream::Tls(Box::new(tls.into())))
    }
}

/// `host` of `host:port` or `[v6]:port`.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| Error::BadInput(format!("cannot read certificates from {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::BadInput(format!("{} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| Error::BadInput(format!("cannot read a PEM private key from {}: {e}", path.display())))
}

fn roots(ca: &Path) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certs(ca)? {
        roots.add(cert).map_err(|e| tls_error(&format!("the CA in {}", ca.display()), e))?;
    }
    Ok(roots)
}

fn tls_error(what: &str, err: impl fmt::Display) -> Error {
    Error::BadInput(format!("{what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts_come_out_of_addresses() {
        assert_eq!(host_of("127.0.0.1:5"), "127.0.0.1");
        assert_eq!(host_of("localhost:5"), "localhost");
        assert_eq!(host_of("[::1]:5"), "::1");
    }
}
