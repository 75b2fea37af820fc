//! Turning the security flags into the actors' [`Gate`] and [`Credentials`], and the two
//! commands that make secrets: `nodes keygen` and `nodes gen-certs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair, KeyUsagePurpose};

use actors::security::key::MIN_KEY_LEN;
use actors::security::{ClusterKey, Credentials, Gate, Password, TlsFiles};

use crate::args::{ClientArgs, GenCertsArgs, ServerArgs, SlaveArgs, TlsArgs};

fn tls_files(args: &TlsArgs) -> TlsFiles {
    TlsFiles { cert: args.tls_cert.clone(), key: args.tls_key.clone(), ca: args.tls_ca.clone() }
}

fn cluster_key(file: Option<&Path>) -> anyhow::Result<Option<ClusterKey>> {
    Ok(file.map(ClusterKey::load).transpose()?)
}

/// What a master or backup demands of those who connect, and presents to its peer.
pub fn server(args: &ServerArgs, has_peer: bool) -> anyhow::Result<(Arc<Gate>, Credentials)> {
    let files = tls_files(&args.tls);
    let tls = files.acceptor()?;
    if tls.is_some() && has_peer && files.ca.is_none() {
        anyhow::bail!(
            "--tls-cert needs --tls-ca on a master or backup: it connects to its peer over TLS and must verify it"
        );
    }
    if tls.is_none() && files.ca.is_some() {
        anyhow::bail!(
            "--tls-ca needs --tls-cert and --tls-key on a master or backup: without them its listeners serve plain TCP"
        );
    }
    let gate = Gate {
        cluster_key: cluster_key(args.cluster_key_file.as_deref())?,
        client_password: args.client_password_file.as_deref().map(Password::load).transpose()?,
        tls,
    };
    let credentials = Credentials { cluster_key: gate.cluster_key.clone(), password: None, tls: files.connector()? };
    gate.warn_if_open(&credentials);
    Ok((Arc::new(gate), credentials))
}

/// What a slave presents to its master.
pub fn slave(args: &SlaveArgs) -> anyhow::Result<Credentials> {
    let files = tls_files(&args.tls);
    if files.cert.is_some() && files.ca.is_none() {
        anyhow::bail!("--tls-cert needs --tls-ca on a slave: it connects over TLS only with a CA to verify the master");
    }
    let credentials = Credentials {
        cluster_key: cluster_key(args.cluster_key_file.as_deref())?,
        password: None,
        tls: files.connector()?,
    };
    if credentials.cluster_key.is_none() {
        tracing::warn!("no --cluster-key-file: joining only a master that runs an open cluster");
    }
    Ok(credentials)
}

/// What a client presents.
pub fn client(args: &ClientArgs) -> anyhow::Result<Credentials> {
    let files = tls_files(&args.tls);
    if files.cert.is_some() && files.ca.is_none() {
        anyhow::bail!("--tls-cert needs --tls-ca: a client connects over TLS only with a CA to verify the server");
    }
    Ok(Credentials::for_client(args.password_file.as_deref(), &files)?)
}

/// A cluster's secret files, any of which may be absent, and the flags that give them to each
/// role. Certificates are a `gen-certs` folder: `ca.pem`, and `NAME.pem` / `NAME-key.pem` per
/// node, named after the master's and backup's roles and the slaves' ids.
#[derive(Debug, Clone, Default)]
pub struct SecretFiles {
    pub key: Option<PathBuf>,
    pub password: Option<PathBuf>,
    pub certs: Option<PathBuf>,
}

impl SecretFiles {
    /// A file of the certificates folder, if there is one.
    pub fn cert_file(&self, name: &str) -> Option<String> {
        self.certs.as_ref().map(|certs| certs.join(name).to_string_lossy().into_owned())
    }

    fn tls(&self, name: &str) -> Vec<String> {
        let (Some(ca), Some(cert), Some(key)) = (
            self.cert_file("ca.pem"),
            self.cert_file(&format!("{name}.pem")),
            self.cert_file(&format!("{name}-key.pem")),
        ) else {
            return Vec::new();
        };
        vec!["--tls-ca".into(), ca, "--tls-cert".into(), cert, "--tls-key".into(), key]
    }

    fn flag(flag: &str, path: &Option<PathBuf>) -> Vec<String> {
        path.iter().flat_map(|p| [flag.to_string(), p.to_string_lossy().into_owned()]).collect()
    }

    /// For `nodes master|backup`, whose certificate is named after its role.
    pub fn server_flags(&self, role: &str) -> Vec<String> {
        let mut flags = self.tls(role);
        flags.extend(SecretFiles::flag("--cluster-key-file", &self.key));
        flags.extend(SecretFiles::flag("--client-password-file", &self.password));
        flags
    }

    /// For `nodes slave --id NAME`.
    pub fn slave_flags(&self, name: &str) -> Vec<String> {
        let mut flags = self.tls(name);
        flags.extend(SecretFiles::flag("--cluster-key-file", &self.key));
        flags
    }

    /// For `nodes client`: the password, then the CA (no certificate).
    pub fn client_flags(&self) -> Vec<String> {
        let mut flags = SecretFiles::flag("--password-file", &self.password);
        flags.extend(self.cert_file("ca.pem").into_iter().flat_map(|ca| ["--tls-ca".to_string(), ca]));
        flags
    }
}

/// `nodes keygen FILE`.
pub fn keygen(file: &Path) -> anyhow::Result<()> {
    ClusterKey::generate(file)?;
    println!("wrote a {}-character cluster key to {} (mode 0600)", MIN_KEY_LEN * 2, file.display());
    Ok(())
}

/// `nodes gen-certs DIR`: a CA, and for each name a certificate for `hosts` signed by it,
/// usable by servers and clients alike. For tests and trials; real deployments bring their own.
pub fn gen_certs(args: &GenCertsArgs) -> anyhow::Result<()> {
    write_certs(&args.dir, &args.names, &args.hosts, args.days)?;
    println!(
        "wrote ca.pem and a certificate for each of {} (valid for {}) to {}",
        args.names.join(", "),
        args.hosts.join(", "),
        args.dir.display()
    );
    Ok(())
}

/// Writes `dir/ca.pem`, `dir/ca-key.pem`, and `NAME.pem`, `NAME-key.pem` for each name.
pub fn write_certs(dir: &Path, names: &[String], hosts: &[String], days: u32) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let now = time_now();
    let until = now + std::time::Duration::from_secs(u64::from(days) * 86_400);

    let ca_key = KeyPair::generate().context("cannot generate the CA key")?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("kv cluster CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    ca.not_before = now.into();
    ca.not_after = until.into();
    let ca_cert = ca.self_signed(&ca_key).context("cannot sign the CA certificate")?;
    write(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    write(&dir.join("ca-key.pem"), ca_key.serialize_pem().as_bytes(), true)?;

    for node in names {
        if node.is_empty() || !node.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            anyhow::bail!("{node:?} is not a usable certificate name (letters, digits, - and _)");
        }
        let key = KeyPair::generate().context("cannot generate a key")?;
        let mut params = CertificateParams::new(hosts.to_vec()).context("bad --hosts")?;
        params.distinguished_name = name(node);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        params.not_before = now.into();
        params.not_after = until.into();
        let cert = params.signed_by(&key, &ca_cert, &ca_key).with_context(|| format!("cannot sign {node}"))?;
        write(&dir.join(format!("{node}.pem")), cert.pem().as_bytes(), false)?;
        write(&dir.join(format!("{node}-key.pem")), key.serialize_pem().as_bytes(), true)?;
    }
    Ok(())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}

fn time_now() -> std::time::SystemTime {
    // A minute of slack for clocks a little behind this one.
    std::time::SystemTime::now() - std::time::Duration::from_secs(60)
}

/// Writes a new file (an existing one is never replaced); private keys get mode 0600.
fn write(path: &Path, contents: &[u8], private: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents).with_context(|| format!("cannot write {}", path.display()))
}
