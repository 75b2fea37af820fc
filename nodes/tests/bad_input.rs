//! Bad input, sent as raw bytes to a real master and a real slave: each gets an error frame
//! and a closed connection, and nothing else is harmed: the process lives, other connections
//! keep working, and the data reads back.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use net::{
    encode_frame, ClientOp, Epoch, FromServer, Hello, Key, PeerRole, ServerRole, SlaveOp, SlaveReply, ToServer, Value,
    Version, Welcome, WireError, PROTOCOL_VERSION,
};
use serde::Serialize;
use support::{frames_until_close, Cluster, Proc};

fn frame<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = BytesMut::new();
    encode_frame(msg, &mut buf).unwrap();
    buf.to_vec()
}

fn client_hello() -> Vec<u8> {
    frame(&ToServer::Hello(Hello::new(PeerRole::Client)))
}

/// Mirrors of the wire types with unchecked byte fields, to send what our types refuse.
#[derive(Serialize)]
enum RawToServer {
    Request { id: u64, op: RawOp },
}

#[derive(Serialize)]
enum RawOp {
    Put {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        value: Vec<u8>,
    },
}

fn raw_put(key: Vec<u8>, value: Vec<u8>) -> Vec<u8> {
    frame(&RawToServer::Request { id: 1, op: RawOp::Put { key, value } })
}

/// Sends `payload` on a fresh connection and returns the error frame that closed it.
fn send_bad(addr: &str, payload: &[u8]) -> WireError {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(payload).unwrap();
    let frames = frames_until_close(&mut stream);
    match frames.last() {
        Some(FromServer::Error(err)) => err.clone(),
        other => {
            panic!("expected an error frame before the close, got {other:?} (all: {frames:?})")
        }
    }
}

/// What the error frame for a bad input must say.
type Expect = fn(&WireError) -> bool;

#[test]
fn the_master_answers_bad_input_with_an_error_and_keeps_serving() {
    let mut cluster = Cluster::start("bad-master", 3, &["--handshake-timeout-ms", "300"]);
    assert!(cluster.cli(&["put", "precious", "data"]).status.success());

    // A client that stays connected through all of it.
    let mut bystander = TcpStream::connect(&cluster.addr).unwrap();
    bystander.write_all(&client_hello()).unwrap();

    let mut over_limit = BytesMut::new();
    over_limit.put_u32(net::limits::MAX_FRAME_LEN as u32 + 1);
    let mut not_msgpack = BytesMut::new();
    not_msgpack.put_u32(3);
    not_msgpack.put_slice(&[0xc1, 0xc1, 0xc1]);
    let unknown = frame(&std::collections::BTreeMap::from([("Launch", 1)]));
    let early = frame(&ToServer::Request { id: 1, op: ClientOp::Status });
    let wrong_version = frame(&ToServer::Hello(Hello { protocol: 999, ..Hello::new(PeerRole::Client) }));
    let slave_on_client = [
        client_hello(),
        frame(&ToServer::Hello(Hello::new(PeerRole::Slave {
            id: net::NodeId("intruder".into()),
            epoch: Epoch(0),
            incarnation: net::Incarnation(1),
            max_version: Version::ZERO,
            keys: 0,
        }))),
    ]
    .concat();
    let with_hello = |payload: Vec<u8>| [client_hello(), payload].concat();

    let cases: Vec<(&str, Vec<u8>, Expect)> = vec![
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), |e| matches!(e, WireError::BadFrame { .. })),
        ("length over the limit", over_limit.to_vec(), |e| e.to_string().contains("over the limit")),
        ("not MessagePack", not_msgpack.to_vec(), |e| matches!(e, WireError::BadFrame { .. })),
        ("unknown message", unknown, |e| matches!(e, WireError::BadFrame { .. })),
        ("request before the handshake", early, |e| e.to_string().contains("first frame must be Hello")),
        ("wrong protocol version", wrong_version, |e| e.to_string().contains("protocol version 999")),
        ("slave handshake on a client connection", slave_on_client, |e| {
            e.to_string().contains("handshake already done")
        }),
        ("empty key", with_hello(raw_put(vec![], b"v".to_vec())), |e| e.to_string().contains("empty key")),
        ("oversized key", with_hello(raw_put(vec![b'k'; 1025], b"v".to_vec())), |e| {
            e.to_string().contains("key of 1025 bytes")
        }),
        ("oversized value", with_hello(raw_put(b"k".to_vec(), vec![b'v'; net::limits::MAX_VALUE_LEN + 1])), |e| {
            e.to_string().contains("value of 1048577 bytes")
        }),
        ("silence", Vec::new(), |e| e.to_string().contains("no handshake within")),
    ];
    for (name, payload, expected) in cases {
        let err = send_bad(&cluster.addr, &payload);
        assert!(expected(&err), "{name}: unexpected error {err:?}");
        assert!(cluster.master.is_running(), "{name} killed the master");
    }

    // The bystander's connection still works, and so does a new client; the data is whole.
    let get = frame(&ToServer::Request { id: 42, op: ClientOp::Get { key: Key::new("precious").unwrap() } });
    bystander.write_all(&get).unwrap();
    bystander.shutdown(std::net::Shutdown::Write).unwrap();
    let replies = frames_until_close(&mut bystander);
    assert!(matches!(replies.first(), Some(FromServer::Welcome(_))), "{replies:?}");
    match replies.get(1) {
        Some(FromServer::Response { id: 42, result: Ok(net::ClientReply::Value { value: Some(v), .. }) }) => {
            assert_eq!(v.as_bytes(), b"data")
        }
        other => panic!("bystander got {other:?}"),
    }
    assert_eq!(support::stdout(&cluster.cli(&["get", "precious"])), "data");
    assert_eq!(cluster.status()["slaves"].as_array().unwrap().len(), 3);
}

#[test]
fn a_value_at_the_limit_is_accepted() {
    let cluster = Cluster::start("limit", 1, &[]);
    let value = bytes::Bytes::from(vec![b'x'; net::limits::MAX_VALUE_LEN]);
    let key = "k".repeat(net::limits::MAX_KEY_LEN);
    let (k, v) = (key.clone(), value.clone());
    let read = cluster.with_client(|client| async move {
        client.put(k.clone(), v).await.unwrap();
        client.get(k).await.unwrap()
    });
    assert_eq!(read, Some(value));
}

/// A fake master: the test listens, a real slave connects to it.
struct FakeMaster {
    listener: TcpListener,
}

impl FakeMaster {
    fn new() -> Self {
        FakeMaster { listener: TcpListener::bind("127.0.0.1:0").unwrap() }
    }

    fn addr(&self) -> String {
        self.listener.local_addr().unwrap().to_string()
    }

    /// Accepts the slave's next connection and answers its Hello; returns what it claimed.
    fn accept(&self) -> (TcpStream, PeerRole) {
        let (mut stream, _) = self.listener.accept().unwrap();
        let hello = read_frame::<ToServer>(&mut stream);
        let ToServer::Hello(Hello { role, .. }) = hello else { panic!("expected Hello, got {hello:?}") };
        let welcome = Welcome {
            redis: None,
            protocol: PROTOCOL_VERSION,
            node: net::NodeId("fake".into()),
            role: ServerRole::Master,
            epoch: Epoch(1),
            last_lsn: net::Lsn(0),
        };
        stream.write_all(&frame(&FromServer::Welcome(welcome))).unwrap();
        (stream, role)
    }
}

fn read_frame<T: serde::de::DeserializeOwned>(stream: &mut TcpStream) -> T {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).unwrap();
    rmp_serde::from_slice(&body).unwrap()
}

fn slave_request(stream: &mut TcpStream, id: u64, op: SlaveOp) -> Result<SlaveReply, WireError> {
    stream.write_all(&frame(&FromServer::SlaveRequest { id, epoch: Epoch(1), op })).unwrap();
    match read_frame::<ToServer>(stream) {
        ToServer::SlaveResponse { id: got, result } if got == id => result,
        other => panic!("expected the response to {id}, got {other:?}"),
    }
}

#[test]
fn the_slave_answers_bad_input_with_an_error_and_keeps_its_data() {
    let fake = FakeMaster::new();
    let dir = support::test_dir("bad-slave");
    let data = dir.join("s1");
    let mut slave = Proc::spawn(
        &dir,
        "slave",
        &[
            "slave",
            "--master",
            &fake.addr(),
            "--backup",
            support::NOWHERE,
            "--id",
            "s1",
            "--data-dir",
            data.to_str().unwrap(),
        ],
    );

    let (mut conn, _) = fake.accept();
    let key = Key::new("k").unwrap();
    let write = SlaveOp::Write {
        key: key.clone(),
        version: Version::new(1, 1),
        value: Some(Value::new("v").unwrap()),
        stamp: None,
    };
    assert_eq!(slave_request(&mut conn, 1, write), Ok(SlaveReply::Written { current: Version::new(1, 1) }));

    let mut garbage = BytesMut::new();
    garbage.put_u32(4);
    garbage.put_slice(b"\xc1junk");
    let oversized = (net::limits::MAX_FRAME_LEN as u32 + 1).to_be_bytes().to_vec();
    for (name, payload) in [("garbage", garbage.to_vec()), ("oversized", oversized)] {
        conn.write_all(&payload).unwrap();
        let frames = support::frames_from_peer::<ToServer, FromServer>(&mut conn);
        assert!(
            matches!(frames.last(), Some(ToServer::Error(WireError::BadFrame { .. }))),
            "{name}: slave sent {frames:?}"
        );
        assert!(slave.is_running(), "{name} killed the slave");

        // The slave reconnects by itself, with its data.
        let (next, role) = fake.accept();
        conn = next;
        let PeerRole::Slave { keys, max_version, .. } = role else { panic!("{role:?}") };
        assert_eq!((keys, max_version), (1, Version::new(1, 1)));
    }
    let read = slave_request(&mut conn, 2, SlaveOp::Read { key });
    let Ok(SlaveReply::Read { entry: Some(entry) }) = read else { panic!("{read:?}") };
    assert_eq!(entry.value.unwrap().as_bytes(), b"v");
}
