//! The client password (`--client-password-file`), compared in constant time.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::key::{read_secret_file, trim, write_secret_file};
use crate::error::Error;

/// The password clients must present. Only its digest is kept.
#[derive(Clone)]
pub struct Password(Arc<[u8; 32]>);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    pub fn new(password: &[u8]) -> Result<Self, String> {
        if password.is_empty() {
            return Err("the client password is empty".to_string());
        }
        Ok(Password(Arc::new(Sha256::digest(password).into())))
    }

    /// Reads a password file: its contents less surrounding whitespace.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let contents = read_secret_file(path, "password")?;
        Password::new(trim(&contents)).map_err(|e| Error::BadInput(format!("{}: {e}", path.display())))
    }

    /// Whether `given` is the password. Comparing digests in constant time tells an attacker
    /// neither how much of a guess was right nor how long the password is.
    pub fn matches(&self, given: &[u8]) -> bool {
        let given: [u8; 32] = Sha256::digest(given).into();
        bool::from(self.0.as_slice().ct_eq(given.as_slice()))
    }
}

/// Writes a new random password (24 letters and digits) to `path`, which must not exist, with
/// mode 0600: for clusters that make their own secrets (`nodes cluster --secure`, the harness).
pub fn generate_password_file(path: &Path) -> Result<(), Error> {
    use rand::distr::{Alphanumeric, SampleString};
    let password = Alphanumeric.sample_string(&mut rand::rng(), 24);
    write_secret_file(path, format!("{password}\n").as_bytes())
}

/// Reads a password file for a client to send: its contents less surrounding whitespace.
pub fn read_password_file(path: &Path) -> Result<String, Error> {
    let contents = read_secret_file(path, "password")?;
    let text = String::from_utf8(trim(&contents).to_vec())
        .map_err(|_| Error::BadInput(format!("{}: the password is not UTF-8", path.display())))?;
    if text.is_empty() {
        return Err(Error::BadInput(format!("{}: the password is empty", path.display())));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_password_file_reads_back_and_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("kv-password-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("client.password");
        generate_password_file(&path).unwrap();
        let password = read_password_file(&path).unwrap();
        assert_eq!(password.len(), 24);
        assert!(generate_password_file(&path).is_err());
        assert_eq!(read_password_file(&path).unwrap(), password);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_the_exact_password_matches() {
        let password = Password::new(b"correct horse").unwrap();
        assert!(password.matches(b"correct horse"));
        assert!(!password.matches(b"correct hors"));
        assert!(!password.matches(b"correct horse "));
        assert!(!password.matches(b""));
        assert!(Password::new(b"").is_err());
    }
}
