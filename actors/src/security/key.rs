//! The cluster key and the challenge-response that proves a peer holds it.
//!
//! A member (slave, standby, peer master) sends a fresh nonce in its `Hello`; the server
//! answers with its own fresh nonce and `HMAC(key, SERVER_LABEL, both nonces, role)`; the
//! member checks that, then proves itself with `HMAC(key, MEMBER_LABEL, ...)` over the same
//! fields. The key never crosses the wire. A replayed member proof fails because the server's
//! nonce is new on every connection; the two labels keep one side's proof from serving as the
//! other's. Proofs are checked in constant time.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use net::{PeerRole, NONCE_LEN};
use rand::RngCore;
use sha2::Sha256;

use crate::error::Error;

const SERVER_LABEL: &[u8] = b"kv cluster membership: server proof v1";
const MEMBER_LABEL: &[u8] = b"kv cluster membership: member proof v1";

/// The shortest key accepted, in bytes of the key file (after trimming whitespace).
pub const MIN_KEY_LEN: usize = 32;

/// A shared secret that every member of one cluster holds.
#[derive(Clone)]
pub struct ClusterKey(Arc<[u8]>);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// The key in `bytes`, which must be at least [`MIN_KEY_LEN`] long.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "a cluster key must be at least {MIN_KEY_LEN} bytes, this one has {} (make one with `nodes keygen FILE`)",
                bytes.len()
            ));
        }
        Ok(ClusterKey(bytes.into()))
    }

    /// Reads a key file: its contents, less surrounding whitespace. Warns when the file is
    /// readable by others than its owner.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let contents = read_secret_file(path, "cluster key")?;
        ClusterKey::from_bytes(trim(&contents)).map_err(|e| Error::BadInput(format!("{}: {e}", path.display())))
    }

    /// Writes a new random key (64 hex digits) to `path`, which must not exist, with mode 0600.
    pub fn generate(path: &Path) -> Result<(), Error> {
        let mut raw = [0u8; 32];
        rand::rng().fill_bytes(&mut raw);
        let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        write_secret_file(path, format!("{hex}\n").as_bytes())
    }

    /// A fresh random nonce for one handshake.
    pub fn nonce() -> Bytes {
        let mut nonce = vec![0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        Bytes::from(nonce)
    }

    /// The server's proof for a member's `Hello` with `member_nonce` and `role`.
    pub fn server_proof(&self, member_nonce: &[u8], server_nonce: &[u8], role: &PeerRole) -> Bytes {
        Bytes::from(self.mac(SERVER_LABEL, member_nonce, server_nonce, role).finalize().into_bytes().to_vec())
    }

    /// The member's proof, sent after it checked the server's.
    pub fn member_proof(&self, member_nonce: &[u8], server_nonce: &[u8], role: &PeerRole) -> Bytes {
        Bytes::from(self.mac(MEMBER_LABEL, member_nonce, server_nonce, role).finalize().into_bytes().to_vec())
    }

    /// Whether `proof` is the server's proof for these fields (constant time).
    pub fn verify_server(&self, member_nonce: &[u8], server_nonce: &[u8], role: &PeerRole, proof: &[u8]) -> bool {
        self.mac(SERVER_LABEL, member_nonce, server_nonce, role).verify_slice(proof).is_ok()
    }

    /// Whether `proof` is the member's proof for these fields (constant time).
    pub fn verify_member(&self, member_nonce: &[u8], server_nonce: &[u8], role: &PeerRole, proof: &[u8]) -> bool {
        self.mac(MEMBER_LABEL, member_nonce, server_nonce, role).verify_slice(proof).is_ok()
    }

    fn mac(&self, label: &[u8], member_nonce: &[u8], server_nonce: &[u8], role: &PeerRole) -> Hmac<Sha256> {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        // The role binds the proof to what the member claimed (its name, its epoch); encoding
        // one value with the same encoder gives the same bytes on both sides.
        let role = rmp_serde::to_vec(role).unwrap_or_default();
        for field in [label, member_nonce, server_nonce, &role] {
            mac.update(&(field.len() as u32).to_be_bytes());
            mac.update(field);
        }
        mac
    }
}

pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Reads a file holding a secret, warning when others than its owner may read it.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    let contents =
        std::fs::read(path).map_err(|e| Error::io(format!("cannot read the {what} file {}", path.display()), e))?;
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the {what} file can be read by others than its owner; chmod 600 it");
        }
    }
    Ok(contents)
}

/// Creates `path` (which must not exist) readable and writable by its owner only.
pub(crate) fn write_secret_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::{Epoch, Incarnation, NodeId, Version};

    fn key(byte: u8) -> ClusterKey {
        ClusterKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn slave(epoch: u64) -> PeerRole {
        PeerRole::Slave {
            id: NodeId::parse("s1").unwrap(),
            epoch: Epoch(epoch),
            incarnation: Incarnation(1),
            max_version: Version::ZERO,
            keys: 0,
        }
    }

    #[test]
    fn proofs_check_out_only_with_the_same_key_nonces_role_and_side() {
        let (m, s) = (ClusterKey::nonce(), ClusterKey::nonce());
        let proof = key(1).member_proof(&m, &s, &slave(1));
        assert!(key(1).verify_member(&m, &s, &slave(1), &proof));
        assert!(!key(2).verify_member(&m, &s, &slave(1), &proof), "another key");
        assert!(!key(1).verify_member(&m, &ClusterKey::nonce(), &slave(1), &proof), "a fresh server nonce");
        assert!(!key(1).verify_member(&ClusterKey::nonce(), &s, &slave(1), &proof), "another member nonce");
        assert!(!key(1).verify_member(&m, &s, &slave(2), &proof), "another role");
        assert!(!key(1).verify_server(&m, &s, &slave(1), &proof), "a member proof is not a server proof");
        assert!(!key(1).verify_member(&m, &s, &slave(1), &proof[..16]), "truncated");
        let server = key(1).server_proof(&m, &s, &slave(1));
        assert!(key(1).verify_server(&m, &s, &slave(1), &server));
        assert!(!key(1).verify_member(&m, &s, &slave(1), &server));
    }

    #[test]
    fn short_keys_are_refused_and_files_are_trimmed() {
        assert!(ClusterKey::from_bytes(b"short").is_err());
        assert_eq!(trim(b"  abc \n"), b"abc");
        assert_eq!(trim(b" \n"), b"");
    }

    #[test]
    fn keygen_writes_an_owner_only_file_once() {
        let dir = std::env::temp_dir().join(format!("kv-keygen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("cluster.key");
        ClusterKey::generate(&path).unwrap();
        assert!(ClusterKey::generate(&path).is_err(), "an existing key is never overwritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let loaded = ClusterKey::load(&path).unwrap();
        assert_eq!(loaded.0.len(), 64);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
