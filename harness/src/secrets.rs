//! A secured cluster's key, client password and certificates, made with the `nodes` commands a
//! user would run (`keygen`, `gen-certs`), and the flags and client credentials that use them.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use actors::security::password::generate_password_file;
use actors::security::{Credentials, TlsFiles};

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
        generate_password_file(&secrets.password).map_err(|err| HarnessError::Config(err.to_string()))?;
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
        let tls = TlsFiles { ca: Some(self.certs.join("ca.pem")), ..TlsFiles::default() };
        Credentials::for_client(Some(&self.password), &tls).map_err(|err| HarnessError::Config(err.to_string()))
    }
}
