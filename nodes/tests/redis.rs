//! The Redis-protocol endpoint, driven by a real Redis client library (the `redis` crate),
//! by raw bytes, by `redis-cli`, and by redis-py's Sentinel client through a takeover.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::{Connection, ErrorKind, RedisError, Value as RedisValue};
use support::{redis_cli, Cluster, DEADLINE};

const REDIS_FLAGS: &[&str] = &["--redis-listen", "127.0.0.1:0", "--sentinel-listen", "127.0.0.1:0"];

/// A cluster whose master serves Redis; returns it and the master's Redis address.
fn redis_cluster(name: &str, slaves: usize) -> (Cluster, String) {
    let mut cluster = Cluster::start(name, slaves, REDIS_FLAGS);
    let redis = cluster.master.announced("redis listening on ");
    (cluster, redis)
}

/// The Redis and Sentinel addresses of both nodes of a pair: (master, master sentinel,
/// backup, backup sentinel).
fn redis_pair(name: &str, slaves: usize) -> (Cluster, [String; 4]) {
    let mut cluster = Cluster::start_pair(name, slaves, REDIS_FLAGS);
    let master = cluster.master.announced("redis listening on ");
    let master_sentinel = cluster.master.announced("sentinel listening on ");
    let backup = cluster.backup.as_mut().expect("a backup");
    let (redis, sentinel) = (backup.announced("redis listening on "), backup.announced("sentinel listening on "));
    (cluster, [master, master_sentinel, redis, sentinel])
}

fn connect(addr: &str) -> Connection {
    let client = redis::Client::open(format!("redis://{addr}/")).expect("a client");
    let con = client.get_connection_with_timeout(Duration::from_secs(5)).expect("a connection");
    con.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    con
}

fn cmd<T: redis::FromRedisValue>(con: &mut Connection, args: &[&[u8]]) -> Result<T, RedisError> {
    let mut command = redis::cmd(std::str::from_utf8(args[0]).expect("a name"));
    for arg in &args[1..] {
        command.arg(*arg);
    }
    command.query(con)
}

/// The error line (code and message) of a command that must fail.
fn error_of(con: &mut Connection, args: &[&[u8]]) -> String {
    match cmd::<RedisValue>(con, args) {
        Ok(value) => panic!("{:?} succeeded with {value:?}", String::from_utf8_lossy(args[0])),
        Err(err) => format!("{} {}", err.code().unwrap_or("?"), err.detail().unwrap_or("")),
    }
}

#[test]
fn round_trips_and_the_commands_clients_need() {
    let (_cluster, addr) = redis_cluster("redis-round-trips", 3);
    let mut con = connect(&addr);
    assert_eq!(cmd::<String>(&mut con, &[b"PING"]).unwrap(), "PONG");
    assert_eq!(cmd::<String>(&mut con, &[b"PING", b"hi"]).unwrap(), "hi");
    assert_eq!(cmd::<String>(&mut con, &[b"ECHO", b"echo"]).unwrap(), "echo");
    assert_eq!(cmd::<String>(&mut con, &[b"SET", b"a", b"1"]).unwrap(), "OK");
    assert_eq!(cmd::<String>(&mut con, &[b"SET", b"b", b"2"]).unwrap(), "OK");
    assert_eq!(cmd::<Option<String>>(&mut con, &[b"GET", b"a"]).unwrap().as_deref(), Some("1"));
    assert_eq!(cmd::<Option<String>>(&mut con, &[b"GET", b"missing"]).unwrap(), None);
    assert_eq!(
        cmd::<Vec<Option<String>>>(&mut con, &[b"MGET", b"a", b"missing", b"b"]).unwrap(),
        vec![Some("1".into()), None, Some("2".into())]
    );
    assert_eq!(cmd::<i64>(&mut con, &[b"EXISTS", b"a", b"b", b"missing", b"a"]).unwrap(), 3);
    assert_eq!(cmd::<i64>(&mut con, &[b"DBSIZE"]).unwrap(), 2);
    assert_eq!(cmd::<i64>(&mut con, &[b"DEL", b"a", b"missing"]).unwrap(), 1, "DEL counts the keys that existed");
    assert_eq!(cmd::<i64>(&mut con, &[b"DEL", b"a"]).unwrap(), 0);
    assert_eq!(cmd::<Option<String>>(&mut con, &[b"GET", b"a"]).unwrap(), None);
    assert_eq!(cmd::<i64>(&mut con, &[b"DBSIZE"]).unwrap(), 1);
    assert_eq!(cmd::<String>(&mut con, &[b"SELECT", b"0"]).unwrap(), "OK");
    assert_eq!(cmd::<String>(&mut con, &[b"CLIENT", b"SETNAME", b"tester"]).unwrap(), "OK");
    assert_eq!(cmd::<String>(&mut con, &[b"CLIENT", b"GETNAME"]).unwrap(), "tester");
    assert!(cmd::<i64>(&mut con, &[b"CLIENT", b"ID"]).unwrap() > 0);
    assert_eq!(cmd::<String>(&mut con, &[b"CLIENT", b"SETINFO", b"lib-name", b"test"]).unwrap(), "OK");
    let hello: Vec<RedisValue> = cmd(&mut con, &[b"HELLO", b"2"]).unwrap();
    assert!(hello.len() >= 12, "{hello:?}");
    assert!(cmd::<i64>(&mut con, &[b"COMMAND", b"COUNT"]).unwrap() >= 15);
    let table: Vec<RedisValue> = cmd(&mut con, &[b"COMMAND"]).unwrap();
    assert!(table.len() >= 15);
    let _docs: RedisValue = cmd(&mut con, &[b"COMMAND", b"DOCS"]).unwrap();
    let info: String = cmd(&mut con, &[b"INFO"]).unwrap();
    for needle in ["# Server", "# Replication", "role:master", "kv_epoch:", "kv_standby:", "# Keyspace", "db0:keys=1"] {
        assert!(info.contains(needle), "INFO lacks {needle:?}:\n{info}");
    }
    let replication: String = cmd(&mut con, &[b"INFO", b"replication"]).unwrap();
    assert!(replication.contains("role:master") && !replication.contains("# Server"), "{replication}");
    let role: Vec<RedisValue> = cmd(&mut con, &[b"ROLE"]).unwrap();
    assert_eq!(role.first(), Some(&RedisValue::BulkString(b"master".to_vec())));
    assert!(matches!(role.get(1), Some(RedisValue::Int(offset)) if *offset > 0), "the log's position: {role:?}");
    assert_eq!(cmd::<String>(&mut con, &[b"QUIT"]).unwrap(), "OK");
}

#[test]
fn every_refusal_is_a_clear_error_and_the_connection_stays_usable() {
    let (_cluster, addr) = redis_cluster("redis-errors", 3);
    let mut con = connect(&addr);
    assert_eq!(
        error_of(&mut con, &[b"FOO", b"a", b"b"]),
        "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "
    );
    for option in [&b"NX"[..], b"XX", b"GET"] {
        let err = error_of(&mut con, &[b"SET", b"k", b"v", option]);
        assert!(err.starts_with("ERR") && err.contains("not supported") && err.contains("atomic"), "{err}");
    }
    assert!(error_of(&mut con, &[b"SET", b"k", b"v", b"KEEPTTL"]).contains("not supported"));
    for option in [&b"EX"[..], b"PX"] {
        let err = error_of(&mut con, &[b"SET", b"k", b"v", option, b"10"]);
        assert!(err.contains("not supported") && err.contains("expire"), "{err}");
    }
    assert!(error_of(&mut con, &[b"MSET", b"a", b"1", b"b", b"2"]).contains("not atomic"));
    assert_eq!(error_of(&mut con, &[b"SELECT", b"1"]), "ERR DB index is out of range");
    assert_eq!(error_of(&mut con, &[b"HELLO", b"3"]), "NOPROTO unsupported protocol version");
    assert!(error_of(&mut con, &[b"GET"]).contains("wrong number of arguments for 'get'"));
    assert!(error_of(&mut con, &[b"GET", b""]).contains("key"));
    // None of the refused writes happened, and the connection still works.
    assert_eq!(cmd::<Option<String>>(&mut con, &[b"GET", b"k"]).unwrap(), None);
    assert_eq!(cmd::<Option<String>>(&mut con, &[b"GET", b"a"]).unwrap(), None);
    assert_eq!(cmd::<String>(&mut con, &[b"PING"]).unwrap(), "PONG");
}

#[test]
fn ten_thousand_pipelined_commands_come_back_in_order() {
    let (_cluster, addr) = redis_cluster("redis-pipeline", 3);
    let mut con = connect(&addr);
    let mut pipe = redis::pipe();
    for i in 0..5_000 {
        pipe.cmd("SET").arg(format!("key{}", i % 500)).arg(format!("value{i}")).ignore();
        pipe.cmd("GET").arg(format!("key{}", i % 500));
    }
    let got: Vec<String> = pipe.query(&mut con).expect("the pipeline");
    assert_eq!(got.len(), 5_000);
    for (i, value) in got.iter().enumerate() {
        assert_eq!(value, &format!("value{i}"), "reply {i} out of order");
    }
}

#[test]
fn keys_and_values_are_binary_safe_up_to_the_size_limit() {
    let (_cluster, addr) = redis_cluster("redis-binary", 3);
    let mut con = connect(&addr);
    let key: Vec<u8> = b"k\0\r\n\xff key".to_vec();
    let value: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    assert_eq!(cmd::<String>(&mut con, &[b"SET", &key, &value]).unwrap(), "OK");
    assert_eq!(cmd::<Vec<u8>>(&mut con, &[b"GET", &key]).unwrap(), value);
    assert_eq!(cmd::<String>(&mut con, &[b"SET", b"empty", b""]).unwrap(), "OK");
    assert_eq!(cmd::<Option<Vec<u8>>>(&mut con, &[b"GET", b"empty"]).unwrap(), Some(Vec::new()));

    let limit = net::limits::MAX_VALUE_LEN;
    let big = vec![b'x'; limit];
    assert_eq!(cmd::<String>(&mut con, &[b"SET", b"big", &big]).unwrap(), "OK");
    assert_eq!(cmd::<Vec<u8>>(&mut con, &[b"GET", b"big"]).unwrap().len(), limit);
    // One byte over: refused with a protocol error, and this connection is closed.
    let over = vec![b'y'; limit + 1];
    let err = cmd::<RedisValue>(&mut con, &[b"SET", b"big", &over]).unwrap_err();
    assert!(err.kind() == ErrorKind::Io || err.to_string().contains("invalid bulk length"), "unexpected error: {err}");
    let mut con = connect(&addr);
    assert_eq!(cmd::<Vec<u8>>(&mut con, &[b"GET", b"big"]).unwrap(), big, "the old value stands");
}

/// Sends `bytes` on a fresh connection (in pieces of `chunk` bytes), closes the sending side,
/// and returns everything the server wrote back before closing.
fn raw_exchange(addr: &str, bytes: &[u8], chunk: usize) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    for piece in bytes.chunks(chunk.max(1)) {
        stream.write_all(piece).expect("write");
        if chunk < bytes.len() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    stream.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn garbage_and_hostile_lengths_get_errors_and_nothing_else_is_harmed() {
    let (_cluster, addr) = redis_cluster("redis-garbage", 3);
    let mut con = connect(&addr);
    assert_eq!(cmd::<String>(&mut con, &[b"SET", b"kept", b"safe"]).unwrap(), "OK");

    let answer = raw_exchange(&addr, b"*1\r\n$999999999999\r\n", usize::MAX);
    assert!(answer.starts_with("-ERR Protocol error: invalid bulk length"), "{answer:?}");
    let answer = raw_exchange(&addr, b"*-5\r\n", usize::MAX);
    assert!(answer.starts_with("-ERR Protocol error: invalid multibulk length"), "{answer:?}");
    let answer = raw_exchange(&addr, b"*2\r\n$3\r\nGET\r\n:12\r\n", usize::MAX);
    assert!(answer.starts_with("-ERR Protocol error: expected '$'"), "{answer:?}");
    let answer = raw_exchange(&addr, b"*1\r\n*1\r\n*1\r\n*1\r\n", usize::MAX);
    assert!(answer.starts_with("-ERR Protocol error"), "{answer:?}");
    let mut noise: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1).collect();
    noise.insert(0, b'*');
    let answer = raw_exchange(&addr, &noise, usize::MAX);
    assert!(answer.starts_with("-ERR Protocol error"), "{answer:?}");

    // A command split into one-byte writes, and inline commands as telnet sends them.
    let answer =
        raw_exchange(&addr, b"*3\r\n$3\r\nSET\r\n$5\r\nbytes\r\n$3\r\none\r\n*2\r\n$3\r\nGET\r\n$5\r\nbytes\r\n", 1);
    assert_eq!(answer, "+OK\r\n$3\r\none\r\n");
    let answer = raw_exchange(&addr, b"PING\r\nset inline \"two words\"\r\nGET inline\r\nquit\r\nPING\r\n", usize::MAX);
    assert_eq!(answer, "+PONG\r\n+OK\r\n$9\r\ntwo words\r\n+OK\r\n", "QUIT ends the connection");

    // The store is whole: the other connection still works and nothing changed.
    assert_eq!(cmd::<String>(&mut con, &[b"GET", b"kept"]).unwrap(), "safe");
}

#[test]
fn the_standby_refuses_data_commands_and_names_the_master() {
    let (cluster, [master, master_sentinel, backup, backup_sentinel]) = redis_pair("redis-standby", 3);
    let mut con = connect(&master);
    assert_eq!(cmd::<String>(&mut con, &[b"SET", b"k", b"v"]).unwrap(), "OK");
    let mut standby = connect(&backup);
    let err = error_of(&mut standby, &[b"SET", b"k", b"other"]);
    assert!(err.starts_with("READONLY"), "{err}");
    // The standby learns the master's Redis address from the master itself.
    let deadline = Instant::now() + DEADLINE;
    loop {
        let err = error_of(&mut standby, &[b"GET", b"k"]);
        if err.contains(&master) {
            break;
        }
        assert!(Instant::now() < deadline, "the standby never named the master: {err}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(error_of(&mut standby, &[b"MGET", b"k"]).contains(&master));
    let info: String = cmd(&mut standby, &[b"INFO", b"replication"]).unwrap();
    assert!(info.contains("role:slave") && info.contains("kv_role:standby"), "{info}");
    assert_eq!(cmd::<String>(&mut con, &[b"GET", b"k"]).unwrap(), "v", "nothing changed");

    for sentinel in [&master_sentinel, &backup_sentinel] {
        let mut s = connect(sentinel);
        let addr: Vec<String> = cmd(&mut s, &[b"SENTINEL", b"get-master-addr-by-name", b"mymaster"]).unwrap();
        assert_eq!(addr.join(":"), master, "sentinel {sentinel}");
        let unknown: Option<Vec<String>> = cmd(&mut s, &[b"SENTINEL", b"get-master-addr-by-name", b"other"]).unwrap();
        assert_eq!(unknown, None);
        let masters: Vec<Vec<String>> = cmd(&mut s, &[b"SENTINEL", b"masters"]).unwrap();
        assert_eq!(masters.len(), 1);
        assert!(masters[0].windows(2).any(|w| w[0] == "flags" && w[1] == "master"), "{masters:?}");
        assert!(error_of(&mut s, &[b"GET", b"k"]).starts_with("ERR unknown command"));
    }
    drop(cluster);
}

/// `redis-cli` if it is installed; CI installs it (and sets REQUIRE_REDIS_TOOLS so that its
/// absence fails instead of skipping).
#[test]
fn redis_cli_works_one_shot_and_with_a_piped_script() {
    let Some(cli) = redis_cli() else { return };
    let (_cluster, addr) = redis_cluster("redis-cli", 3);
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let run = |args: &[&str], input: Option<&str>| {
        let mut child = std::process::Command::new(cli)
            .args(["-h", host, "-p", port])
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli");
        let mut stdin = child.stdin.take().expect("stdin");
        if let Some(input) = input {
            stdin.write_all(input.as_bytes()).expect("script");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("redis-cli output");
        assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(run(&["set", "k", "v"], None).trim(), "OK");
    assert_eq!(run(&["get", "k"], None).trim(), "v");
    let info = run(&["info", "replication"], None);
    assert!(info.contains("role:master"), "{info}");
    let out = run(&[], Some("set a 1\nset b \"two words\"\nget b\ndel a b nothere\nget a\n"));
    assert_eq!(out, "OK\nOK\ntwo words\n2\n\n", "{out:?}");
}

/// A virtualenv with redis-py, made once per target folder. `None` (and a notice) when
/// Python or the package index cannot be had, unless REQUIRE_REDIS_TOOLS says they must.
fn redis_py() -> Option<std::path::PathBuf> {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("redis-py-venv");
    let python = venv.join("bin/python");
    let ready = venv.join("ready");
    if !ready.exists() {
        let made = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
        let installed = made.is_ok_and(|s| s.success())
            && std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "redis>=5,<9"])
                .status()
                .is_ok_and(|s| s.success());
        if !installed {
            assert!(std::env::var_os("REQUIRE_REDIS_TOOLS").is_none(), "cannot install redis-py into {venv:?}");
            eprintln!("python3 -m venv or pip install redis failed; skipping");
            return None;
        }
        std::fs::write(&ready, b"").expect("mark the venv ready");
    }
    Some(python)
}

#[test]
fn a_sentinel_aware_client_follows_a_takeover_and_loses_nothing() {
    use std::io::BufRead;
    let Some(python) = redis_py() else { return };
    let (mut cluster, [master, master_sentinel, backup, backup_sentinel]) = redis_pair("redis-sentinel", 3);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/redis_sentinel_failover.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .args([&master_sentinel, &backup_sentinel])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the redis-py script");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut killed = false;
    let mut summary = None;
    for line in stdout.lines() {
        let line = line.expect("script output");
        if line == "progress 100" && !killed {
            cluster.master.kill();
            killed = true;
        } else if line.starts_with('{') {
            summary = Some(line);
        }
    }
    let status = child.wait().expect("the script ends");
    assert!(status.success(), "the redis-py script failed: {status}");
    assert!(killed, "the script never got 100 writes through");
    let summary: serde_json::Value = serde_json::from_str(&summary.expect("a summary line")).expect("JSON");
    assert_eq!(summary["lost"], serde_json::json!([]), "acknowledged writes lost: {summary}");
    assert!(summary["acked"].as_u64().unwrap_or(0) >= 400, "{summary}");
    assert_eq!(summary["first"], master.as_str(), "Sentinel names the master at first");
    assert_eq!(summary["master"], backup.as_str(), "Sentinel names the backup after the takeover");
}

#[test]
fn the_connection_cap_holds_and_those_connected_keep_being_served() {
    let mut flags = REDIS_FLAGS.to_vec();
    flags.extend(["--max-connections", "2"]);
    let mut cluster = Cluster::start("redis-cap", 1, &flags);
    cluster.wait_status("a quiet native listener", |s| s["slaves"].as_array().is_some_and(|a| a.len() == 1));
    let addr = cluster.master.announced("redis listening on ");
    let (mut first, mut second) = (connect(&addr), connect(&addr));
    assert_eq!(cmd::<String>(&mut first, &[b"SET", b"k", b"v"]).unwrap(), "OK");
    let answer = raw_exchange(&addr, b"PING\r\n", usize::MAX);
    assert_eq!(answer, "-ERR max number of clients reached\r\n");
    assert_eq!(cmd::<String>(&mut second, &[b"GET", b"k"]).unwrap(), "v", "those connected are served");
    drop(first);
    // A closed connection frees its place.
    let deadline = Instant::now() + DEADLINE;
    while raw_exchange(&addr, b"PING\r\n", usize::MAX) != "+PONG\r\n" {
        assert!(Instant::now() < deadline, "the freed place was never given back");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The native listener has its own cap; the slave holds one of its two places.
    let native = &cluster.addr;
    let _one = TcpStream::connect(native).expect("connect");
    let mut over = TcpStream::connect(native).expect("connect");
    over.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut reply = Vec::new();
    let _ = over.read_to_end(&mut reply);
    assert!(String::from_utf8_lossy(&reply).contains("too many connections"), "{reply:?}");
}
