//! Only members get in: real processes without the cluster key, the client password or a
//! certificate from the cluster's CA are refused and change nothing; a handshake captured from
//! a real slave and replayed is refused; a whole cluster runs over mutual TLS through a
//! takeover.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use net::{encode_frame, FromServer, MsgCodec, ToServer, WireError};
use redis::{Connection, RedisError, Value as RedisValue};
use support::{redis_cli, stderr, stdout, strs, test_dir, Cluster, Proc, Secrets, DEADLINE, NODES, NOWHERE};
use tokio_util::codec::Decoder;

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_string())
}

/// `nodes client` against the cluster's master with only `flags` (no secrets of the cluster's).
fn bare_client(cluster: &Cluster, flags: &[&str], command: &[&str]) -> Output {
    let backup = cluster.backup_addr.clone().unwrap_or_else(|| NOWHERE.to_string());
    let mut args = vec!["client", "--master", cluster.addr.as_str(), "--backup", backup.as_str()];
    args.extend_from_slice(flags);
    args.extend_from_slice(command);
    Command::new(NODES).args(&args).output().expect("run the client")
}

/// Waits until `proc`'s log contains `text`.
fn wait_for_log(proc: &Proc, text: &str) {
    let start = Instant::now();
    while !proc.log_text().contains(text) {
        assert!(start.elapsed() < DEADLINE, "{} never logged {text:?}; log:\n{}", proc.name, proc.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A slave process with exactly `flags` for security.
fn spawn_slave(cluster: &Cluster, id: &str, master: &str, flags: &[String]) -> Proc {
    let data = cluster.dir.join(format!("{id}-data"));
    let data = data.to_str().expect("utf-8 path").to_string();
    let mut args = vec!["slave", "--master", master, "--backup", NOWHERE, "--id", id, "--data-dir", &data];
    args.extend(strs(flags));
    Proc::spawn(&cluster.dir, id, &args)
}

fn path(p: &std::path::Path) -> String {
    p.to_str().expect("utf-8 path").to_string()
}

#[test]
fn members_and_clients_without_the_secrets_are_refused_and_the_data_is_unchanged() {
    let cluster = Cluster::start_secured("sec-refused", 2, &[], |dir| Secrets::make(dir, true, true, false));
    assert!(cluster.cli(&["put", "precious", "data"]).status.success());
    let before = cluster.status();
    let key = cluster.secrets.key.clone().expect("a key");

    // A slave without the key, and one with another key.
    let no_key = spawn_slave(&cluster, "intruder", &cluster.addr, &[]);
    wait_for_log(&no_key, "unauthorized: this cluster requires its key");
    let other = Secrets::make(&test_dir("sec-other-key"), true, false, false);
    let other_key = path(other.key.as_ref().expect("a key"));
    let wrong_key = spawn_slave(&cluster, "impostor", &cluster.addr, &["--cluster-key-file".into(), other_key.clone()]);
    wait_for_log(&wrong_key, "failed to prove it holds the cluster key");
    wait_for_log(&cluster.master, "the peer refused this node");
    // A backup without the key, and one with another key: never admitted as the standby, and
    // since the master answered, they refuse to decide alone and exit.
    let backup_dir = cluster.dir.join("rogue-backup");
    let (backup_data, backup_listen) = (path(&backup_dir), support::free_addr());
    let rogue_args = |extra: &[&str]| -> Vec<String> {
        let mut args =
            vec!["backup", "--listen", &backup_listen, "--master", &cluster.addr, "--data-dir", &backup_data];
        args.extend_from_slice(&["--redis-listen", "off", "--sentinel-listen", "off", "--peer-wait-ms", "300"]);
        args.extend_from_slice(&["--failover-after-ms", "60000"]);
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect()
    };
    for (name, extra, why) in [
        ("rogue-backup", &[][..], "unauthorized: this cluster requires its key"),
        ("rogue-backup-2", &["--cluster-key-file", other_key.as_str()][..], "failed to prove it holds the cluster key"),
    ] {
        let mut rogue = Proc::spawn(&cluster.dir, name, &strs(&rogue_args(extra)));
        assert_eq!(rogue.wait_exit().code(), Some(2), "{name} kept running; log:\n{}", rogue.log_text());
        let log = rogue.log_text();
        assert!(log.contains("do not trust each other") && log.contains(why), "{name}: {log}");
    }

    // Clients without the password or with a wrong one.
    let refused = bare_client(&cluster, &[], &["put", "precious", "overwritten"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("unauthorized: this server requires a password"), "{}", stderr(&refused));
    let wrong = cluster.dir.join("wrong.password");
    std::fs::write(&wrong, "guess").expect("write");
    let refused = bare_client(&cluster, &["--password-file", &path(&wrong)], &["del", "precious"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("unauthorized: wrong password"), "{}", stderr(&refused));
    wait_for_log(&cluster.master, "refusing a connection peer=");

    // Nothing changed: same slaves, no standby, the value as written.
    let after = cluster.status();
    assert_eq!(support::slave_ids(&after), vec!["slave-1", "slave-2"]);
    assert!(after["standby"].is_null(), "a standby got in: {after}");
    assert_eq!(after["keys"], before["keys"]);
    let read = cluster.cli(&["get", "precious"]);
    assert_eq!(stdout(&read), "data", "{}", stderr(&read));
    // And with the secrets everything works: a new slave with the key joins.
    let mut cluster = cluster;
    let joined = spawn_slave(&cluster, "slave-3", &cluster.addr, &["--cluster-key-file".into(), path(&key)]);
    cluster.slaves.insert("slave-3".into(), joined);
    cluster.wait_for_slaves(&["slave-1", "slave-2", "slave-3"]);
    assert!(cluster.cli(&["put", "more", "data"]).status.success());
}

fn redis_connect(addr: &str) -> Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("a client");
    let con = client.get_connection_with_timeout(Duration::from_secs(5)).expect("a connection");
    con.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    con
}

fn cmd<T: redis::FromRedisValue>(con: &mut Connection, args: &[&str]) -> Result<T, RedisError> {
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(con)
}

fn error_of(con: &mut Connection, args: &[&str]) -> String {
    match cmd::<RedisValue>(con, args) {
        Ok(value) => panic!("{args:?} succeeded with {value:?}"),
        Err(err) => format!("{} {}", err.code().unwrap_or("?"), err.detail().unwrap_or("")),
    }
}

#[test]
fn redis_clients_must_authenticate_before_anything_but_auth_hello_ping_and_quit() {
    let flags = ["--redis-listen", "127.0.0.1:0", "--sentinel-listen", "127.0.0.1:0", "--handshake-timeout-ms", "500"];
    let mut cluster = Cluster::start_secured("sec-redis", 2, &flags, |dir| Secrets::make(dir, true, true, false));
    let (addr, sentinel) =
        (cluster.master.announced("redis listening on "), cluster.master.announced("sentinel listening on "));
    let password = "open sesame";
    assert!(cluster.cli(&["put", "k", "before"]).status.success());

    let mut con = redis_connect(&addr);
    assert_eq!(cmd::<String>(&mut con, &["PING"]).unwrap(), "PONG");
    assert_eq!(error_of(&mut con, &["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(error_of(&mut con, &["SET", "k", "sneaky"]), "NOAUTH Authentication required.");
    assert_eq!(error_of(&mut con, &["DBSIZE"]), "NOAUTH Authentication required.");
    assert!(error_of(&mut con, &["HELLO", "2"]).starts_with("NOAUTH HELLO must be called"));
    assert_eq!(error_of(&mut con, &["AUTH", "guess"]), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(
        error_of(&mut con, &["AUTH", "someone", password]),
        "WRONGPASS invalid username-password pair or user is disabled.",
        "the only user is `default`"
    );
    assert_eq!(error_of(&mut con, &["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(cmd::<String>(&mut con, &["AUTH", password]).unwrap(), "OK");
    assert_eq!(cmd::<String>(&mut con, &["GET", "k"]).unwrap(), "before", "the refused SET did nothing");

    // HELLO 2 AUTH authenticates and answers the hello.
    let mut con = redis_connect(&addr);
    assert!(error_of(&mut con, &["HELLO", "2", "AUTH", "default", "guess"]).starts_with("WRONGPASS"));
    let hello: Vec<RedisValue> = cmd(&mut con, &["HELLO", "2", "AUTH", "default", password]).unwrap();
    assert!(hello.len() >= 2, "{hello:?}");
    assert_eq!(cmd::<String>(&mut con, &["SET", "k", "after"]).unwrap(), "OK");

    // A client library given the password in its URL.
    let client = redis::Client::open(format!("redis://:{}@{addr}/", password.replace(' ', "%20"))).expect("a client");
    let mut con = client.get_connection_with_timeout(Duration::from_secs(5)).expect("an authenticated connection");
    assert_eq!(cmd::<String>(&mut con, &["GET", "k"]).unwrap(), "after");

    // A connection that never authenticates is closed after 64 commands...
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream.write_all(&b"GET k\r\n".repeat(70)).expect("send");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert_eq!(answer.matches("-NOAUTH").count(), 64, "{answer}");
    assert!(answer.ends_with("-ERR too many commands before AUTH; closing the connection\r\n"), "{answer}");
    // ...or at the handshake deadline, if it says nothing.
    let mut silent = TcpStream::connect(&addr).expect("connect");
    silent.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut sink = [0u8; 16];
    assert!(matches!(silent.read(&mut sink), Ok(0)), "a silent, unauthenticated connection was kept open");

    // The Sentinel endpoint is gated the same way.
    let mut con = redis_connect(&sentinel);
    assert_eq!(
        error_of(&mut con, &["SENTINEL", "get-master-addr-by-name", "mymaster"]),
        "NOAUTH Authentication required."
    );
    assert_eq!(cmd::<String>(&mut con, &["AUTH", "default", password]).unwrap(), "OK");
    let master: Vec<String> = cmd(&mut con, &["SENTINEL", "get-master-addr-by-name", "mymaster"]).unwrap();
    assert_eq!(master.join(":"), addr);
}

/// A relay that forwards one connection to `target` and records what the connecting side sent.
fn recording_relay(target: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let (target, sink) = (target.to_string(), recorded.clone());
    std::thread::spawn(move || {
        let Ok((mut inbound, _)) = listener.accept() else { return };
        let Ok(mut outbound) = TcpStream::connect(&target) else { return };
        let (Ok(mut back_from), Ok(mut back_to)) = (outbound.try_clone(), inbound.try_clone()) else { return };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut back_from, &mut back_to);
            let _ = back_to.shutdown(std::net::Shutdown::Both);
        });
        let mut chunk = [0u8; 16384];
        while let Ok(n) = inbound.read(&mut chunk) {
            if n == 0 || outbound.write_all(&chunk[..n]).is_err() {
                break;
            }
            sink.lock().expect("lock").extend_from_slice(&chunk[..n]);
        }
        let _ = outbound.shutdown(std::net::Shutdown::Both);
    });
    (addr, recorded)
}

/// Sends `bytes` on a fresh connection and returns every frame the server sent before closing.
fn replay(addr: &str, bytes: &[u8]) -> Vec<FromServer> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(bytes).expect("send");
    support::frames_until_close(&mut stream)
}

#[test]
fn a_replayed_handshake_is_refused() {
    let mut cluster = Cluster::start_secured("sec-replay", 0, &[], |dir| Secrets::make(dir, true, false, false));
    let key = path(cluster.secrets.key.as_ref().expect("a key"));
    let (relay, recorded) = recording_relay(&cluster.addr);
    let slave = spawn_slave(&cluster, "slave-1", &relay, &["--cluster-key-file".into(), key]);
    cluster.slaves.insert("slave-1".into(), slave);
    cluster.wait_for_slaves(&["slave-1"]);
    cluster.kill_slave("slave-1");
    cluster.wait_status("the slave gone", |s| support::slave_ids(s).is_empty());

    // The captured handshake: a Hello with the slave's nonce, then its proof.
    let captured = recorded.lock().expect("lock").clone();
    let mut codec = MsgCodec::<ToServer, FromServer>::new();
    let mut buf = BytesMut::from(&captured[..]);
    let hello = codec.decode(&mut buf).expect("a frame").expect("the Hello");
    let proof = codec.decode(&mut buf).expect("a frame").expect("the Proof");
    assert!(matches!(&hello, ToServer::Hello(h) if h.nonce.is_some()), "{hello:?}");
    assert!(matches!(proof, ToServer::Proof { .. }), "{proof:?}");
    let mut handshake = BytesMut::new();
    encode_frame(&hello, &mut handshake).expect("encode");
    encode_frame(&proof, &mut handshake).expect("encode");

    for attempt in [&handshake[..], &captured[..]] {
        let answer = replay(&cluster.addr, attempt);
        assert!(matches!(answer.first(), Some(FromServer::Challenge { .. })), "{answer:?}");
        assert!(
            matches!(answer.last(), Some(FromServer::Error(WireError::Unauthorized { detail })) if detail.contains("does not match")),
            "{answer:?}"
        );
        assert_eq!(answer.len(), 2, "nothing but the challenge and the refusal: {answer:?}");
    }
    wait_for_log(&cluster.master, "the cluster key proof does not match");
    let status = cluster.status();
    assert!(support::slave_ids(&status).is_empty(), "the replay joined: {status}");
}

/// A put that retries until some master accepts it.
async fn write_until_accepted(client: &actors::client::Client, key: &str, value: &str) {
    let start = Instant::now();
    loop {
        match client.put(b(key), b(value)).await {
            Ok(_) => return,
            Err(err) => assert!(start.elapsed() < DEADLINE, "no master accepted writes: {err}"),
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn the_whole_cluster_runs_over_mutual_tls_through_a_takeover() {
    let mut cluster = Cluster::start_pair_secured("sec-tls", 3, &["--handshake-timeout-ms", "1000"], |dir| {
        Secrets::make(dir, true, true, true)
    });
    support::write_keys(&cluster, "tls", 20);
    let certs = cluster.secrets.certs.clone().expect("certificates");
    let ours = |file: &str| path(&certs.join(file));

    // A client without TLS is told the server speaks TLS.
    let password = path(cluster.secrets.password.as_ref().expect("a password"));
    let plain = bare_client(&cluster, &["--password-file", &password], &["get", "tls0"]);
    assert_eq!(plain.status.code(), Some(2));
    assert!(stderr(&plain).contains("the server speaks TLS"), "{}", stderr(&plain));

    // A slave whose certificate another CA signed is refused by the TLS handshake itself; one
    // without a certificate gets through TLS but not the gate. Both hold the right key.
    let other = Secrets::make(&test_dir("sec-other-ca"), false, false, true);
    let other_certs = other.certs.clone().expect("certificates");
    let key = path(cluster.secrets.key.as_ref().expect("a key"));
    let foreign = spawn_slave(
        &cluster,
        "slave-4",
        &cluster.addr,
        &[
            "--cluster-key-file".into(),
            key.clone(),
            "--tls-ca".into(),
            ours("ca.pem"),
            "--tls-cert".into(),
            path(&other_certs.join("slave-4.pem")),
            "--tls-key".into(),
            path(&other_certs.join("slave-4-key.pem")),
        ],
    );
    wait_for_log(&cluster.master, "invalid peer certificate");
    let anonymous = spawn_slave(
        &cluster,
        "anonymous",
        &cluster.addr,
        &["--cluster-key-file".into(), key, "--tls-ca".into(), ours("ca.pem")],
    );
    wait_for_log(&anonymous, "cluster members must present a certificate signed by the cluster's CA");
    // And a slave that trusts another CA does not trust this master.
    let misled =
        spawn_slave(&cluster, "misled", &cluster.addr, &["--tls-ca".into(), path(&other_certs.join("ca.pem"))]);
    wait_for_log(&misled, "invalid peer certificate");
    let status = cluster.status();
    assert_eq!(support::slave_ids(&status), vec!["slave-1", "slave-2", "slave-3"]);
    drop((foreign, anonymous, misled));

    // A connection that never starts TLS is closed at the handshake deadline.
    let mut idle = TcpStream::connect(&cluster.addr).expect("connect");
    idle.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut sink = [0u8; 64];
    match idle.read(&mut sink) {
        Ok(0) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("an idle connection was not closed at the handshake deadline: {other:?}"),
    }

    // Takeover: SIGKILL the master; the backup takes over over TLS and has every write.
    cluster.master.kill();
    cluster.with_client(|client| async move {
        write_until_accepted(&client, "after-takeover", "yes").await;
        for i in 0..20 {
            let value = client.get(b(&format!("tls{i}"))).await.expect("read after the takeover");
            assert_eq!(value, Some(b(&format!("tls-value-{i}"))));
        }
    });
    cluster.wait_status("the backup serving with every slave", |s| {
        s["node"] == "backup" && s["role"] == "Master" && support::slave_ids(s) == ["slave-1", "slave-2", "slave-3"]
    });
}

#[test]
fn nodes_cluster_secure_runs_every_node_with_a_key_a_password_and_tls() {
    use std::io::BufRead;
    let dir = test_dir("sec-cluster-cmd");
    let nodes_dir = path(&dir.join("nodes"));
    let mut cluster = Proc::spawn(
        &dir,
        "cluster",
        &["cluster", "--secure", "--slaves", "1", "--listen", "127.0.0.1:0", "--dir", &nodes_dir],
    );
    let mut lines = std::io::BufReader::new(cluster.take_stdout()).lines();
    let (mut addrs, mut connect, mut redis) = (Vec::new(), None, None);
    for line in lines.by_ref() {
        let line = line.expect("a line");
        if line.starts_with("cluster running") {
            break;
        }
        if let Some(flags) = line.strip_prefix("secured; connect with: nodes client ") {
            connect = Some(flags.split_whitespace().map(String::from).collect::<Vec<_>>());
        } else if let Some(command) = line.strip_prefix("redis: ") {
            redis = Some(command.to_string());
        } else if line.starts_with("master ") || line.starts_with("backup ") {
            addrs.push(line.split_whitespace().nth(1).expect("an address").to_string());
        }
    }
    let connect = connect.expect("the cluster says how to connect");
    let client = |flags: &[String], command: &[&str]| {
        let mut args = vec!["client", "--master", addrs[0].as_str(), "--backup", addrs[1].as_str()];
        args.extend(strs(flags));
        args.extend_from_slice(command);
        Command::new(NODES).args(&args).output().expect("run the client")
    };
    let status = support::wait_for(|| {
        let out = client(&connect, &["status", "--json"]);
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["slaves"].as_array()?.len() == 1 && !json["standby"].is_null()).then_some(json)
    });
    assert_eq!(status["role"], "Master");
    assert!(client(&connect, &["put", "k", "v"]).status.success());
    let plain = client(&[], &["get", "k"]);
    assert_eq!(plain.status.code(), Some(2), "a client without the secrets got in");
    let ca_only = client(&connect[2..], &["get", "k"]);
    assert!(stderr(&ca_only).contains("requires a password"), "{}", stderr(&ca_only));
    // The printed redis-cli line works as it is.
    let redis = redis.expect("the cluster prints a redis-cli line");
    if redis_cli().is_some() {
        let out = Command::new("bash").args(["-c", &format!("{redis} get k")]).output().expect("bash");
        assert_eq!(stdout(&out), "v", "{redis}: {}", stderr(&out));
    }
    cluster.signal(libc::SIGTERM);
    assert_eq!(cluster.wait_exit().code(), Some(0));
}

#[test]
fn redis_cli_speaks_tls_and_auth_to_a_secured_master() {
    let Some(cli) = redis_cli() else { return };
    let flags = ["--redis-listen", "127.0.0.1:0"];
    let mut cluster = Cluster::start_secured("sec-redis-tls", 1, &flags, |dir| Secrets::make(dir, true, true, true));
    let addr = cluster.master.announced("redis listening on ");
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let ca = path(&cluster.secrets.certs.as_ref().expect("certificates").join("ca.pem"));
    let run = |args: &[&str]| {
        let out = Command::new(cli).args(["-h", host, "-p", port]).args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let tls = ["--tls", "--cacert", ca.as_str()];
    let authed = [&tls[..], &["--no-auth-warning", "--pass", "open sesame"]].concat();
    assert_eq!(run(&[&authed[..], &["set", "k", "v"]].concat()), "OK");
    assert_eq!(run(&[&authed[..], &["get", "k"]].concat()), "v");
    assert!(run(&[&tls[..], &["get", "k"]].concat()).contains("NOAUTH"), "TLS without the password");
    let plain = run(&["--no-auth-warning", "--pass", "open sesame", "get", "k"]);
    assert_ne!(plain.lines().next(), Some("v"), "a client without TLS read the value");
    wait_for_log(&cluster.master, "Redis connection: TLS handshake refused");
}

#[test]
fn half_configured_tls_and_existing_certificates_are_refused() {
    let dir = test_dir("sec-flags");
    let certs = Secrets::make(&dir, false, false, true).certs.clone().expect("certificates");
    let data = path(&dir.join("data"));
    let ca = path(&certs.join("ca.pem"));
    let out = Command::new(NODES)
        .args(["master", "--listen", "127.0.0.1:0", "--backup", "off", "--data-dir", &data, "--tls-ca", &ca])
        .output()
        .expect("run nodes");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--tls-ca needs --tls-cert"), "{}", stderr(&out));
    let cert = path(&certs.join("master.pem"));
    let out = Command::new(NODES)
        .args([
            "master",
            "--listen",
            "127.0.0.1:0",
            "--backup",
            "127.0.0.1:1",
            "--data-dir",
            &data,
            "--tls-cert",
            &cert,
        ])
        .output()
        .expect("run nodes");
    assert_eq!(out.status.code(), Some(2), "--tls-cert without --tls-key");

    // gen-certs and keygen never replace what exists.
    let again = Command::new(NODES).args(["gen-certs", &path(&certs)]).output().expect("run nodes");
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("ca.pem"), "{}", stderr(&again));
    let key = dir.join("cluster.key");
    assert!(Command::new(NODES).args(["keygen", &path(&key)]).output().expect("keygen").status.success());
    let before = std::fs::read(&key).expect("the key");
    let again = Command::new(NODES).args(["keygen", &path(&key)]).output().expect("keygen");
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(std::fs::read(&key).expect("the key"), before);
}
