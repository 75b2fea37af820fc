//! A TCP proxy on loopback that the nemesis places on one link (client -> node,
//! slave -> node, node -> peer) so that it can cut the link and heal it without root.
//!
//! A link is [`LinkState::Open`] (bytes flow), or cut in one of two ways:
//! - [`LinkState::Reset`]: every connection through the proxy is closed at once and new ones
//!   are closed as soon as they are accepted, as when a peer's host reboots or a firewall sends
//!   resets. The nodes notice at once.
//! - [`LinkState::Blackhole`]: nothing is forwarded and nothing is closed, as when packets are
//!   dropped: connections stay open but silent, new ones are accepted and left waiting, and the
//!   nodes notice only through their heartbeat and request timeouts. On heal the bytes held back
//!   are delivered late, as TCP retransmission would deliver them, so a node may receive
//!   messages that were sent before the partition, after it has been replaced.
//!
//! Each direction of a connection is one task that reads a chunk, waits until its direction is
//! open, and writes the chunk; so a cut never drops bytes from the middle of a stream.
//!
//! The two directions have their own state ([`Direction`]): a one-way cut holds what one side
//! sends while the other side's bytes still arrive, as a switch that drops one direction of
//! traffic would. A reset is a connection's end, so it closes both directions whichever one it
//! is set on. A new connection is dialled through only when both directions are open: a TCP
//! handshake needs both.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::HarnessError;

/// Bytes moved per read.
const CHUNK: usize = 16 * 1024;

/// Pause after a failed accept.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// What a link does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    /// Close every connection, refuse new ones.
    Reset,
    /// Hold every connection silent.
    Blackhole,
}

/// One direction of a proxied link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// What the dialling side sends to the target.
    Up,
    /// What the target sends back.
    Down,
}

/// The state every connection task watches; `resets` counts the cuts that closed connections,
/// so a connection opened before a reset knows to close even if the link was healed since.
#[derive(Debug, Clone, Copy)]
struct Shared {
    up: LinkState,
    down: LinkState,
    resets: u64,
}

impl Shared {
    fn of(&self, direction: Direction) -> LinkState {
        match direction {
            Direction::Up => self.up,
            Direction::Down => self.down,
        }
    }

    fn is_reset(&self) -> bool {
        self.up == LinkState::Reset || self.down == LinkState::Reset
    }

    fn both_open(&self) -> bool {
        self.up == LinkState::Open && self.down == LinkState::Open
    }
}

/// One proxied link: connections to [`Proxy::addr`] go to `target`.
pub struct Proxy {
    pub addr: SocketAddr,
    pub target: String,
    control: watch::Sender<Shared>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: &str) -> Result<Proxy, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(HarnessError::io("proxy on 127.0.0.1:0"))?;
        let addr = listener.local_addr().map_err(HarnessError::io("proxy on 127.0.0.1:0"))?;
        let (control, watch) = watch::channel(Shared { up: LinkState::Open, down: LinkState::Open, resets: 0 });
        let accept = tokio::spawn(accept_loop(listener, target.to_string(), watch));
        Ok(Proxy { addr, target: target.to_string(), control, accept })
    }

    /// Puts both directions of the link in `state` (a reset closes every current connection).
    pub fn set(&self, state: LinkState) {
        self.control.send_modify(|shared| {
            if state == LinkState::Reset {
                shared.resets += 1;
            }
            shared.up = state;
            shared.down = state;
        });
    }

    /// Puts one direction in `state`; a reset closes every current connection (both ways).
    pub fn set_direction(&self, direction: Direction, state: LinkState) {
        self.control.send_modify(|shared| {
            if state == LinkState::Reset && !shared.is_reset() {
                shared.resets += 1;
            }
            match direction {
                Direction::Up => shared.up = state,
                Direction::Down => shared.down = state,
            }
        });
    }

    /// The state of one direction.
    pub fn state(&self, direction: Direction) -> LinkState {
        self.control.borrow().of(direction)
    }

    /// True when both directions are open.
    pub fn is_open(&self) -> bool {
        self.control.borrow().both_open()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Dropping the sender ends every connection task at its next wait.
    }
}

async fn accept_loop(listener: TcpListener, target: String, watch: watch::Receiver<Shared>) {
    loop {
        let inbound = match listener.accept().await {
            Ok((inbound, _)) => inbound,
            Err(err) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                tracing::warn!(%err, "proxy cannot accept");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let shared = *watch.borrow();
        if shared.is_reset() {
            drop(inbound);
            continue;
        }
        tokio::spawn(connection(inbound, target.clone(), watch.clone(), shared.resets));
    }
}

/// Forwards one connection in both directions until either side closes or a reset comes.
async fn connection(inbound: TcpStream, target: String, mut watch: watch::Receiver<Shared>, born: u64) {
    if !both_open(&mut watch, born).await {
        return;
    }
    let outbound = tokio::select! {
        connected = TcpStream::connect(&target) => match connected {
            Ok(stream) => stream,
            Err(_) => return,
        },
        () = reset(watch.clone(), born) => return,
    };
    let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let up = pipe(in_read, out_write, watch.clone(), born, Direction::Up);
    let down = pipe(out_read, in_write, watch.clone(), born, Direction::Down);
    tokio::select! {
        ((), ()) = async { tokio::join!(up, down) } => {}
        () = reset(watch, born) => {}
    }
}

/// One direction: read a chunk, wait for the direction to be open, write it.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut watch: watch::Receiver<Shared>,
    born: u64,
    direction: Direction,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        if !open(&mut watch, born, direction).await {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if !open(&mut watch, born, direction).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// Waits until `direction` is open; false once a reset after `born` has closed the connection
/// (or the proxy is gone).
async fn open(watch: &mut watch::Receiver<Shared>, born: u64, direction: Direction) -> bool {
    match watch.wait_for(|s| s.resets != born || s.of(direction) == LinkState::Open).await {
        Ok(shared) => shared.resets == born,
        Err(_) => false,
    }
}

/// Waits until both directions are open, as [`open`] does for one.
async fn both_open(watch: &mut watch::Receiver<Shared>, born: u64) -> bool {
    match watch.wait_for(|s| s.resets != born || s.both_open()).await {
        Ok(shared) => shared.resets == born,
        Err(_) => false,
    }
}

/// Resolves when a reset after `born` comes (or the proxy is gone).
async fn reset(mut watch: watch::Receiver<Shared>, born: u64) {
    let _ = watch.wait_for(|s| s.resets != born).await;
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// An echo server on a free port.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = stream.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, msg: &[u8], within: Duration) -> Option<Vec<u8>> {
        stream.write_all(msg).await.ok()?;
        let mut buf = vec![0u8; msg.len()];
        match tokio::time::timeout(within, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some(buf),
            Ok(Err(_)) | Err(_) => None,
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
    }

    #[test]
    fn an_open_link_forwards_both_ways() {
        runtime().block_on(async {
            let proxy = Proxy::start(&echo().await.to_string()).await.expect("proxy");
            let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
            let got = round_trip(&mut stream, b"hello", Duration::from_secs(5)).await;
            assert_eq!(got.as_deref(), Some(&b"hello"[..]));
        });
    }

    #[test]
    fn a_reset_closes_connections_and_refuses_new_ones_until_healed() {
        runtime().block_on(async {
            let proxy = Proxy::start(&echo().await.to_string()).await.expect("proxy");
            let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
            assert!(round_trip(&mut stream, b"a", Duration::from_secs(5)).await.is_some());
            proxy.set(LinkState::Reset);
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the old connection is closed: {read:?}");
            let mut refused = TcpStream::connect(proxy.addr).await.expect("the listener accepts");
            let read = tokio::time::timeout(Duration::from_secs(5), refused.read(&mut buf)).await;
            assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "a new connection is closed: {read:?}");
            proxy.set(LinkState::Open);
            let mut healed = TcpStream::connect(proxy.addr).await.expect("connect");
            assert!(round_trip(&mut healed, b"b", Duration::from_secs(5)).await.is_some());
        });
    }

    #[test]
    fn a_blackhole_holds_bytes_and_delivers_them_on_heal() {
        runtime().block_on(async {
            let proxy = Proxy::start(&echo().await.to_string()).await.expect("proxy");
            let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
            assert!(round_trip(&mut stream, b"a", Duration::from_secs(5)).await.is_some());
            proxy.set(LinkState::Blackhole);
            assert_eq!(round_trip(&mut stream, b"held", Duration::from_millis(200)).await, None);
            proxy.set(LinkState::Open);
            let mut buf = [0u8; 4];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf)).await;
            assert!(matches!(read, Ok(Ok(_))), "{read:?}");
            assert_eq!(&buf, b"held");
        });
    }

    /// An echo server that also reports every chunk it receives.
    async fn tapped_echo() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tap, seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let tap = tap.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64];
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        let _ = tap.send(buf[..n].to_vec());
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, seen)
    }

    #[test]
    fn a_one_way_cut_holds_one_direction_and_lets_the_other_through() {
        runtime().block_on(async {
            let (target, mut seen) = tapped_echo().await;
            let proxy = Proxy::start(&target.to_string()).await.expect("proxy");
            let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
            assert!(round_trip(&mut stream, b"a", Duration::from_secs(5)).await.is_some());
            assert_eq!(seen.recv().await.as_deref(), Some(&b"a"[..]));
            proxy.set_direction(Direction::Down, LinkState::Blackhole);
            assert_eq!(proxy.state(Direction::Up), LinkState::Open);
            assert!(!proxy.is_open());
            // The target receives "up" (Up is open), but its echo is held on the way back.
            assert_eq!(round_trip(&mut stream, b"up", Duration::from_millis(200)).await, None);
            let got = tokio::time::timeout(Duration::from_secs(5), seen.recv()).await;
            assert_eq!(got.ok().flatten().as_deref(), Some(&b"up"[..]));
            proxy.set_direction(Direction::Down, LinkState::Open);
            let mut buf = [0u8; 2];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf)).await;
            assert!(matches!(read, Ok(Ok(_))), "{read:?}");
            assert_eq!(&buf, b"up");
        });
    }

    #[test]
    fn a_reset_on_one_direction_closes_the_connection() {
        runtime().block_on(async {
            let proxy = Proxy::start(&echo().await.to_string()).await.expect("proxy");
            let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
            assert!(round_trip(&mut stream, b"a", Duration::from_secs(5)).await.is_some());
            proxy.set_direction(Direction::Up, LinkState::Reset);
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
            assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the connection is closed: {read:?}");
        });
    }
}
