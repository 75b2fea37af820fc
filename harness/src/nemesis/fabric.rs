//! How the nemesis's processes reach each other, and where a cut is made (`--net`):
//!
//! - [`Fabric::Proxies`] (the default): everything on loopback, with a [`Proxy`] on every link
//!   (see `topology.rs` for the picture); a cut holds or resets one direction of a proxy.
//!   No root needed.
//! - [`Fabric::Namespaces`]: every process in its own network namespace on a bridge
//!   (`netns.rs`); a cut is a kernel rule, as a switch failure would be.
//!
//! Either way a cut is asked for as directed [`Link`]s and their [`LinkState`]s, which
//! `partition.rs` works out; this file only knows where each link's bytes pass.

use std::ffi::OsString;

use actors::client::{Client, ClientConfig};
use serde::Serialize;

use crate::error::HarnessError;
use crate::nemesis::netns::Namespaces;
use crate::nemesis::partition::{Endpoint, Link};
use crate::nemesis::proxy::{Direction, LinkState, Proxy};

/// `--net`: how the processes are wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NetMode {
    /// Loopback, a TCP proxy on every link.
    Proxies,
    /// A network namespace for every process, on one bridge; cuts by nftables (root only).
    Namespaces,
}

/// Where the links pass.
pub enum Fabric {
    Proxies(Box<Proxies>),
    Namespaces(Namespaces),
}

impl Fabric {
    /// Where node `i` listens; the harness's own probes reach it there, past every cut.
    pub fn node_addr(&self, i: usize) -> String {
        match self {
            Fabric::Proxies(p) => p.node_addrs[i].clone(),
            Fabric::Namespaces(n) => n.node_addr(i),
        }
    }

    /// The address node `i` is given for its peer.
    pub fn peer_addr(&self, i: usize) -> String {
        match self {
            Fabric::Proxies(p) => p.peer[1 - i].addr.to_string(),
            Fabric::Namespaces(n) => n.node_addr(1 - i),
        }
    }

    /// The address slave `k` is given for node `i`.
    pub fn slave_target(&self, k: usize, i: usize) -> String {
        match self {
            Fabric::Proxies(p) => p.slave.get(k).map(|s| s[i].addr.to_string()).unwrap_or_default(),
            Fabric::Namespaces(n) => n.node_addr(i),
        }
    }

    /// The addresses the workload's clients are given for the two nodes.
    pub fn client_addrs(&self) -> Vec<String> {
        match self {
            Fabric::Proxies(p) => p.client.iter().map(|c| c.addr.to_string()).collect(),
            Fabric::Namespaces(n) => vec![n.node_addr(0), n.node_addr(1)],
        }
    }

    /// What a node's command line is prefixed with (`ip netns exec NS` in a namespace).
    pub fn wrapper(&self, endpoint: Endpoint) -> Vec<OsString> {
        match self {
            Fabric::Proxies(_) => Vec::new(),
            Fabric::Namespaces(_) => Namespaces::wrapper(endpoint),
        }
    }

    /// Puts each link in its new state.
    pub fn apply(&mut self, changes: &[(Link, LinkState)]) -> Result<(), HarnessError> {
        match self {
            Fabric::Proxies(p) => {
                for &(link, state) in changes {
                    p.apply(link, state);
                }
                Ok(())
            }
            Fabric::Namespaces(n) => n.apply(changes),
        }
    }

    /// A workload client: on the harness's thread, or on the clients' namespace's thread.
    pub async fn start_client(&self, config: ClientConfig) -> Result<Client, HarnessError> {
        match self {
            Fabric::Proxies(_) => Ok(Client::start(config)),
            Fabric::Namespaces(n) => n.start_client(config).await,
        }
    }

    /// Tears down what the fabric set up (the namespaces; proxies go when dropped).
    pub fn remove(&mut self) {
        match self {
            Fabric::Proxies(_) => {}
            Fabric::Namespaces(n) => n.remove(),
        }
    }
}

/// A proxy of [`Proxies`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyId {
    /// `client[i]`: clients to node i.
    Client(usize),
    /// `peer[i]`: the other node to node i.
    Peer(usize),
    /// `slave[k][i]`: slave k to node i.
    Slave(usize, usize),
}

/// The proxy directions that carry `link`'s bytes. A proxy's `Up` is what its dialling side
/// sends: node j's bytes to node i go up `peer[i]` (j dials i) and down `peer[j]` (i dials j).
/// Pairs that never talk have none.
pub fn carriers(link: Link) -> Vec<(ProxyId, Direction)> {
    use Endpoint::{Clients, Node, Slave};
    match (link.from, link.to) {
        (Clients, Node(i)) => vec![(ProxyId::Client(i), Direction::Up)],
        (Node(i), Clients) => vec![(ProxyId::Client(i), Direction::Down)],
        (Slave(k), Node(i)) => vec![(ProxyId::Slave(k, i), Direction::Up)],
        (Node(i), Slave(k)) => vec![(ProxyId::Slave(k, i), Direction::Down)],
        (Node(j), Node(i)) if i != j => vec![(ProxyId::Peer(i), Direction::Up), (ProxyId::Peer(j), Direction::Down)],
        (Node(_), Node(_)) | (Slave(_), Slave(_) | Clients) | (Clients, Slave(_) | Clients) => Vec::new(),
    }
}

/// The proxies on every link, and where the nodes listen behind them.
pub struct Proxies {
    /// Where node i listens (reached directly only by the harness).
    pub node_addrs: [String; 2],
    client: [Proxy; 2],
    peer: [Proxy; 2],
    slave: Vec<[Proxy; 2]>,
}

impl Proxies {
    /// Starts a proxy on every link to nodes listening on `node_addrs`.
    pub async fn start(node_addrs: [String; 2], slaves: u32) -> Result<Proxies, HarnessError> {
        let client = [Proxy::start(&node_addrs[0]).await?, Proxy::start(&node_addrs[1]).await?];
        let peer = [Proxy::start(&node_addrs[0]).await?, Proxy::start(&node_addrs[1]).await?];
        let mut slave = Vec::new();
        for _ in 0..slaves {
            slave.push([Proxy::start(&node_addrs[0]).await?, Proxy::start(&node_addrs[1]).await?]);
        }
        Ok(Proxies { node_addrs, client, peer, slave })
    }

    fn proxy(&self, id: ProxyId) -> Option<&Proxy> {
        match id {
            ProxyId::Client(i) => self.client.get(i),
            ProxyId::Peer(i) => self.peer.get(i),
            ProxyId::Slave(k, i) => self.slave.get(k).and_then(|s| s.get(i)),
        }
    }

    fn apply(&self, link: Link, state: LinkState) {
        for (id, direction) in carriers(link) {
            if let Some(proxy) = self.proxy(id) {
                proxy.set_direction(direction, state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::nemesis::partition::{both_ways, Member, Split};

    const M: Endpoint = Endpoint::Node(0);
    const B: Endpoint = Endpoint::Node(1);

    #[test]
    fn node_to_node_bytes_pass_two_proxies() {
        assert_eq!(carriers(Link::new(B, M)), [(ProxyId::Peer(0), Direction::Up), (ProxyId::Peer(1), Direction::Down)]);
        assert_eq!(carriers(Link::new(M, B)), [(ProxyId::Peer(1), Direction::Up), (ProxyId::Peer(0), Direction::Down)]);
    }

    #[test]
    fn slaves_and_clients_dial_their_own_proxies() {
        let slave = Endpoint::Slave(2);
        assert_eq!(carriers(Link::new(slave, B)), [(ProxyId::Slave(2, 1), Direction::Up)]);
        assert_eq!(carriers(Link::new(B, slave)), [(ProxyId::Slave(2, 1), Direction::Down)]);
        assert_eq!(carriers(Link::new(Endpoint::Clients, M)), [(ProxyId::Client(0), Direction::Up)]);
        assert!(carriers(Link::new(slave, Endpoint::Clients)).is_empty());
        assert!(carriers(Link::new(M, M)).is_empty());
    }

    #[test]
    fn every_proxy_direction_carries_exactly_one_directed_link() {
        let all = Endpoint::all(3);
        let mut seen = BTreeSet::new();
        for &a in &all {
            for &b in &all {
                for (id, direction) in carriers(Link::new(a, b)) {
                    assert!(seen.insert(format!("{id:?}{direction:?}")), "{id:?} {direction:?} twice");
                }
            }
        }
        // 2 client proxies, 2 peer proxies, 3 x 2 slave proxies; two directions each.
        assert_eq!(seen.len(), 2 * (2 + 2 + 6));
    }

    #[test]
    fn the_classic_peer_cut_holds_both_peer_proxies_both_ways() {
        let ids: Vec<(ProxyId, Direction)> = both_ways(M, B).into_iter().flat_map(carriers).collect();
        assert_eq!(ids.len(), 4);
        let one_way = Split::OneWay { side: vec![Member::Serving] }.links(0, 0);
        let ids: Vec<(ProxyId, Direction)> = one_way.into_iter().flat_map(carriers).collect();
        // master -> backup (two proxy directions) and master -> clients (one).
        assert_eq!(ids.len(), 3);
    }
}
