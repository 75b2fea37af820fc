//! A secured cluster's key, client password and certificates, made with the `nodes` commands a
//! user would run (`keygen`, `gen-certs`), and the flags and client credentials that use them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use actors::security::Credentials;

use crate::error::HarnessError;

/// A secured cluster's files, made with the `nodes` commands a user would run.
pub struct Secrets {
    key: PathBuf,
    password: PathBuf,
    certs: PathBuf,
}

impl Secrets {
    pub fn make(nodes_bin: &Path, dir: &Path, slaves: u32) -> Result<Secrets, HarnessError> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(HarnessError::io(dir))?;
        let secrets =
            Secrets { key: dir.join("cluster.key"), password: dir.join("client.password"), certs: dir.join("certs") };
        let names: Vec<String> = ["master".to_string(), "backup".to_string()]
            .into_iter()
            .chain((1..=slaves).map(|i| format!("slave-{i}")))
            .collect();
        let run = |args: &[&OsStr]| -> Result<(), HarnessError> {
            let out = std::process::Command::new(nodes_bin).args(args).output().map_err(HarnessError::io(nodes_bin))?;
            match out.status.success() {
                true => Ok(()),
                false => Err(HarnessError::Config(format!(
                    "nodes {args:?} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))),
            }
        };
        run(&["keygen".as_ref(), secrets.key.as_os_str()])?;
        run(&["gen-certs".as_ref(), secrets.certs.as_os_str(), "--names".as_ref(), names.join(",").as_ref()])?;
        let password: String = (0..24).map(|_| char::from(b'a' + rand::random_range(0..26u8))).collect();
        let owner_only = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&secrets.password)
        };
        std::io::Write::write_all(&mut owner_only.map_err(HarnessError::io(&secrets.password))?, password.as_bytes())
            .map_err(HarnessError::io(&secrets.password))?;
        Ok(secrets)
    }

    /// The flags of node `name` (a server: `master` or `backup`; else a slave).
    pub fn flags(&self, name: &str, server: bool) -> Vec<std::ffi::OsString> {
        let mut flags: Vec<std::ffi::OsString> = vec![
            "--cluster-key-file".into(),
            self.key.clone().into(),
            "--tls-ca".into(),
            self.certs.join("ca.pem").into(),
            "--tls-cert".into(),
            self.certs.join(format!("{name}.pem")).into(),
            "--tls-key".into(),
            self.certs.join(format!("{name}-key.pem")).into(),
        ];
        if server {
            flags.extend(["--client-password-file".into(), self.password.clone().into()]);
        }
        flags
    }

    pub fn credentials(&self) -> Result<Credentials, HarnessError> {
        let bad = |err: actors::Error| HarnessError::Config(err.to_string());
        Ok(Credentials {
            cluster_key: None,
            password: Some(actors::security::password::read_password_file(&self.password).map_err(bad)?),
            tls: Some(actors::security::TlsConnector::new(&self.certs.join("ca.pem"), None).map_err(bad)?),
        })
    }
}
