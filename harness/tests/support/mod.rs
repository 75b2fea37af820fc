//! Test support: running the `harness` binary, finding the `nodes` binary, reading the files a
//! run writes, and a fake master that speaks the protocol with `net` types.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use net::{
    ClientOp, ClientReply, Epoch, FromServer, MsgCodec, NodeId, ServerRole, StatusReport, ToServer, Value, Version,
    Welcome, WireError, PROTOCOL_VERSION,
};
use serde_json::Value as Json;
use tokio::net::TcpListener;
use tokio_util::codec::Framed;

pub const HARNESS: &str = env!("CARGO_BIN_EXE_harness");

/// The `nodes` binary: `$NODES_BIN`, or `nodes` next to the harness binary.
pub fn nodes_bin() -> PathBuf {
    let path = match std::env::var_os("NODES_BIN") {
        Some(path) => PathBuf::from(path),
        None => Path::new(HARNESS).with_file_name("nodes"),
    };
    assert!(path.is_file(), "no nodes binary at {}: build it (cargo build -p nodes) or set NODES_BIN", path.display());
    path
}

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A fresh folder for one test's files.
pub fn test_dir(name: &str) -> PathBuf {
    let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("harness-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

/// Runs `harness ARGS...` to completion.
pub fn harness(args: &[&str]) -> Output {
    Command::new(HARNESS).args(args).output().expect("run harness")
}

/// Asserts the run exited 0, showing its output otherwise.
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "harness failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn read_json(path: &Path) -> Json {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Every line of a JSON-lines file, parsed.
pub fn read_jsonl(path: &Path) -> Vec<Json> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{} line {}: {e}: {line}", path.display(), i + 1))
        })
        .collect()
}

/// `metrics.csv` as (header, rows of numbers).
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().expect("a header").split(',').map(String::from).collect();
    let rows = lines
        .map(|line| {
            let row: Vec<f64> =
                line.split(',').map(|f| f.parse().unwrap_or_else(|e| panic!("{f:?} in {line:?}: {e}"))).collect();
            assert_eq!(row.len(), header.len(), "row {line:?}");
            row
        })
        .collect();
    (header, rows)
}

pub fn u(json: &Json) -> u64 {
    json.as_u64().unwrap_or_else(|| panic!("{json} is not a count"))
}

pub fn f(json: &Json) -> f64 {
    json.as_f64().unwrap_or_else(|| panic!("{json} is not a number"))
}

/// How the fake master answers client requests.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Every GET finds nothing and every write succeeds, each after `delay`.
    Delay(Duration),
    /// GETs are refused as unavailable, writes answered "outcome unknown".
    Errors,
    /// A real (single-node, in-memory) register per key, answering at once.
    Store,
}

/// A master impostor on a free loopback port, in its own thread; it stops when dropped.
pub struct FakeMaster {
    pub addr: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeMaster {
    pub fn start(behaviour: Behaviour) -> FakeMaster {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let addr = std_listener.local_addr().expect("local addr").to_string();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                let listener = TcpListener::from_std(std_listener).expect("listener");
                let store = std::rc::Rc::new(std::cell::RefCell::new(HashMap::new()));
                let accept = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        let _ = stream.set_nodelay(true);
                        let b = behaviour.clone();
                        tokio::task::spawn_local(serve(stream, b, store.clone()));
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = stop_rx => {}
                }
            });
        });
        FakeMaster { addr, _stop: stop_tx }
    }
}

type Store = std::rc::Rc<std::cell::RefCell<HashMap<Vec<u8>, Value>>>;

async fn serve(stream: tokio::net::TcpStream, behaviour: Behaviour, store: Store) {
    let mut framed = Framed::new(stream, MsgCodec::<ToServer, FromServer>::new());
    let mut seq = 0;
    while let Some(Ok(frame)) = framed.next().await {
        let reply = match frame {
            ToServer::Hello(_) => FromServer::Welcome(Welcome {
                redis: None,
                protocol: PROTOCOL_VERSION,
                node: NodeId("fake".into()),
                role: ServerRole::Master,
                epoch: Epoch(1),
                last_lsn: net::Lsn(0),
            }),
            ToServer::Request { id, op } => {
                seq += 1;
                let result = answer(&behaviour, &store, op, seq).await;
                FromServer::Response { id, result }
            }
            other => panic!("the fake master got {other:?}"),
        };
        if framed.send(reply).await.is_err() {
            return;
        }
    }
}

async fn answer(behaviour: &Behaviour, store: &Store, op: ClientOp, seq: u64) -> Result<ClientReply, WireError> {
    let written = Ok(ClientReply::Written { version: Version::new(1, seq), existed: false });
    match (behaviour, op) {
        (_, ClientOp::Ping) => Ok(ClientReply::Pong),
        (_, ClientOp::Status) => Ok(ClientReply::Status(StatusReport {
            node: NodeId("fake".into()),
            role: ServerRole::Master,
            epoch: Epoch(1),
            replicas: 1,
            keys: 0,
            values: 0,
            under_replicated: 0,
            slaves: Vec::new(),
            last_lsn: net::Lsn(0),
            standby: None,
            members: Vec::new(),
            waiting: None,
        })),
        (Behaviour::Delay(delay), op) => {
            tokio::time::sleep(*delay).await;
            match op {
                ClientOp::Get { .. } => Ok(ClientReply::Value { value: None, version: None }),
                ClientOp::Put { .. } | ClientOp::Del { .. } | ClientOp::Status | ClientOp::Ping => written,
            }
        }
        (Behaviour::Errors, ClientOp::Get { .. }) => Err(WireError::unavailable("fake")),
        (Behaviour::Errors, _) => Err(WireError::outcome_unknown("fake")),
        (Behaviour::Store, ClientOp::Get { key }) => {
            Ok(ClientReply::Value { value: store.borrow().get(key.as_bytes()).cloned(), version: None })
        }
        (Behaviour::Store, ClientOp::Put { key, value }) => {
            store.borrow_mut().insert(key.as_bytes().to_vec(), value);
            written
        }
        (Behaviour::Store, ClientOp::Del { key }) => {
            store.borrow_mut().remove(key.as_bytes());
            written
        }
    }
}
