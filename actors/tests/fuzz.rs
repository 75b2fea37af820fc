//! Fuzzing the decoders that face the network: the native frame decoder (both directions),
//! the handshake's checks, and the RESP request decoder with command parsing. Inputs are the
//! corpus in `fuzz/corpus/` (real requests), mutated (bytes flipped, inserted, cut), and plain
//! random bytes. Every input must be decoded, refused with an error, or left waiting for more,
//! without a panic and without buffering past the frame limit. The runs are bounded in cases,
//! so they are part of `cargo test`; a failure proptest finds is saved under
//! `proptest-regressions/` and replayed first on every later run (commit it with the fix).
//!
//! `FUZZ_CASES=100000 cargo test -p actors --test fuzz --release` runs a longer campaign.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use actors::resp::codec::RespCodec;
use actors::resp::command::{parse, Endpoint};
use actors::security::{ClusterKey, Password};
use net::limits::MAX_FRAME_LEN;
use net::{
    ClientOp, Epoch, FromServer, Hello, Incarnation, Key, Lsn, MsgCodec, NodeId, PeerRole, ToServer, Value, Version,
};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000)
}

fn corpus(kind: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus entry").path())
        .collect();
    files.sort();
    files.into_iter().map(|path| std::fs::read(path).expect("a corpus file")).collect()
}

/// Valid native frames, encoded: the seeds the native corpus is made of.
fn native_seeds() -> Vec<Vec<u8>> {
    let id = NodeId::parse("slave-1").expect("an id");
    let frames = [
        ToServer::Hello(Hello::new(PeerRole::Client)),
        ToServer::Hello(Hello { password: Some("secret".to_string()), ..Hello::new(PeerRole::Client) }),
        ToServer::Hello(Hello::new(PeerRole::Slave {
            id: id.clone(),
            epoch: Epoch(3),
            incarnation: Incarnation(7),
            max_version: Version::new(3, 9),
            keys: 2,
        })),
        ToServer::Hello(Hello {
            nonce: Some(Bytes::from(vec![7u8; net::NONCE_LEN])),
            ..Hello::new(PeerRole::Backup { id: id.clone(), epoch: Epoch(2), next_lsn: Lsn(5) })
        }),
        ToServer::Proof { proof: Bytes::from(vec![9u8; 32]) },
        ToServer::Request {
            id: 1,
            op: ClientOp::Put { key: Key::new("k").expect("key"), value: Value::new("v").expect("value") },
        },
        ToServer::Request { id: 2, op: ClientOp::Get { key: Key::new("k").expect("key") } },
        ToServer::StandbyAck { lsn: Lsn(4) },
    ];
    let encode = |frame: &dyn erased::Frame| {
        let mut buf = BytesMut::new();
        frame.encode(&mut buf);
        buf.to_vec()
    };
    let challenge =
        FromServer::Challenge { nonce: Bytes::from(vec![1u8; net::NONCE_LEN]), proof: Bytes::from(vec![2u8; 32]) };
    frames.iter().map(|f| encode(f)).chain([encode(&challenge)]).collect()
}

/// Encoding either direction's frames through one closure.
mod erased {
    pub trait Frame {
        fn encode(&self, buf: &mut bytes::BytesMut);
    }

    impl<T: serde::Serialize> Frame for T {
        fn encode(&self, buf: &mut bytes::BytesMut) {
            net::encode_frame(self, buf).expect("encodable");
        }
    }
}

/// Applies `edits` to `input`: each (position, byte, action) flips, inserts or cuts.
fn mutate(mut input: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    for &(at, byte, action) in edits {
        let at = if input.is_empty() { 0 } else { at % (input.len() + 1) };
        match action % 4 {
            0 if at < input.len() => input[at] ^= byte | 1,
            1 => input.insert(at, byte),
            2 if at < input.len() => {
                input.remove(at);
            }
            _ => input.truncate(at),
        }
    }
    input
}

/// Feeds `input` to `codec` in pieces of `chunk` bytes, decoding after each, as a socket would.
fn feed<D: Decoder>(codec: &mut D, input: &[u8], chunk: usize, mut each: impl FnMut(D::Item)) {
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => each(item),
                Ok(None) => break,
                // The connection would be answered and closed here.
                Err(_) => return,
            }
        }
        assert!(buf.len() <= MAX_FRAME_LEN, "buffered {} bytes", buf.len());
    }
}

/// What the listener checks in a handshake, applied to a decoded frame: the member's name, the
/// membership proof over whatever nonce and role arrived, the password.
fn check_handshake(frame: &ToServer) {
    let key = ClusterKey::from_bytes(&[7u8; 32]).expect("a key");
    match frame {
        ToServer::Hello(Hello { role, nonce, password, .. }) => {
            match role {
                PeerRole::Slave { id, .. } | PeerRole::Backup { id, .. } | PeerRole::Peer { id, .. } => {
                    let _ = NodeId::parse(id.as_str());
                }
                PeerRole::Client => {}
            }
            if let Some(nonce) = nonce {
                let ours = ClusterKey::nonce();
                let proof = key.server_proof(nonce, &ours, role);
                assert!(key.verify_server(nonce, &ours, role, &proof));
                assert!(!key.verify_member(nonce, &ours, role, &proof), "a server proof passed as a member's");
            }
            if let Some(password) = password {
                let _ = Password::new(b"pw").expect("a password").matches(password.as_bytes());
            }
        }
        ToServer::Proof { proof } => {
            let _ = key.verify_member(b"member", b"server", &PeerRole::Client, proof);
        }
        _ => {}
    }
}

/// What a dialing member checks in the server's answer.
fn check_challenge(frame: &FromServer) {
    if let FromServer::Challenge { nonce, proof } = frame {
        let key = ClusterKey::from_bytes(&[7u8; 32]).expect("a key");
        let _ = key.verify_server(b"member", nonce, &PeerRole::Client, proof);
    }
}

fn native(input: &[u8], chunk: usize) {
    feed(&mut MsgCodec::<ToServer, FromServer>::new(), input, chunk, |frame| check_handshake(&frame));
    feed(&mut MsgCodec::<FromServer, ToServer>::new(), input, chunk, |frame| check_challenge(&frame));
}

fn resp(input: &[u8], chunk: usize) {
    feed(&mut RespCodec, input, chunk, |args: Vec<Bytes>| {
        let _ = parse(&args, Endpoint::Data);
        let _ = parse(&args, Endpoint::Sentinel);
    });
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn native_frames_mutated(seed in any::<prop::sample::Index>(), edits in edits(), chunk in 1usize..64) {
        let mut seeds = native_seeds();
        seeds.extend(corpus("native"));
        let input = mutate(seeds[seed.index(seeds.len())].clone(), &edits);
        native(&input, chunk);
    }

    #[test]
    fn native_frames_random(input in proptest::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        native(&input, chunk);
    }

    #[test]
    fn resp_requests_mutated(seed in any::<prop::sample::Index>(), edits in edits(), chunk in 1usize..64) {
        let seeds = corpus("resp");
        let input = mutate(seeds[seed.index(seeds.len())].clone(), &edits);
        resp(&input, chunk);
    }

    #[test]
    fn resp_requests_random(input in proptest::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        resp(&input, chunk);
    }

    #[test]
    fn resp_requests_from_plausible_pieces(
        pieces in proptest::collection::vec(
            prop_oneof![
                Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()), Just(b"-1".to_vec()),
                Just(b"3".to_vec()), Just(b"SET".to_vec()), Just(b"\"".to_vec()), Just(b"\\x4".to_vec()),
                Just(b" ".to_vec()), Just(b"99999999999".to_vec()), Just(b"\n".to_vec()),
            ],
            0..40,
        ),
        chunk in 1usize..16,
    ) {
        resp(&pieces.concat(), chunk);
    }
}

/// The native corpus holds the encoded seeds (run with FUZZ_WRITE_CORPUS=1 after changing the
/// wire types, and commit the files).
#[test]
fn native_corpus_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/native");
    if std::env::var_os("FUZZ_WRITE_CORPUS").is_some() {
        for (i, seed) in native_seeds().iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}.bin")), seed).expect("write a seed");
        }
    }
    for (i, seed) in native_seeds().iter().enumerate() {
        let stored = std::fs::read(dir.join(format!("seed-{i}.bin"))).unwrap_or_default();
        assert_eq!(&stored, seed, "fuzz/corpus/native/seed-{i}.bin is stale: rerun with FUZZ_WRITE_CORPUS=1");
    }
}
