//! `harness nemesis`: tries to break the store's guarantees with real faults and checks what
//! the clients saw.
//!
//! A run starts its own cluster (master, backup, `--slaves` slaves) from the `nodes` binary,
//! with a way to cut every link ([`topology`], [`fabric`]): a TCP proxy on every link
//! ([`proxy`], the default), or with `--net namespaces` a network namespace for every process
//! and cuts made by the kernel ([`netns`]). It runs a closed-loop workload of a few clients
//! over a few keys, so that operations collide, recording a history ([`load`]). Meanwhile
//! faults come on a seeded schedule ([`fault`]), each made concrete as a script of steps once
//! it is known who serves ([`script`]), and are carried out and healed ([`inject`]): SIGKILL of
//! the serving master and a restart on its data directory, SIGSTOP and SIGCONT of the serving
//! master or of its standby, SIGKILL and restart of one slave or two, partitions (the classic
//! shapes, and isolations, halves, bridges and one-way cuts over master, backup, slaves and
//! clients, [`partition`]) made as resets or black holes, kills and restarts while a partition
//! holds, and SIGKILL of both master-capable nodes followed by restarts. By default faults
//! come one at a time; with `--compose` they overlap ([`compose`] plans when each starts,
//! [`conduct`] plays them, [`ledger`] keeps two faults off one process). A [`monitor`] dials
//! both nodes every 100 ms to see who serves at which epoch: the faults aim at the serving
//! master, and each new epoch counts as a takeover.
//!
//! After `--duration` seconds everything is healed, the workload stops, and the run waits (at
//! most `--settle-timeout`) for the cluster to report every slave and a standby, then reads
//! every key (those reads go into the history too). It then stops every node and checks
//! ([`verdict`]): (a) the history is linearizable (the `analysis` crate's checker), (b) no
//! acknowledged write was lost, (c) the cluster served again and every node came back. It
//! writes `history.jsonl`, `summary.json` and the nodes' logs (`logs/`) into `--out`, and
//! prints a summary ([`report`]). Exit codes: 0 no violation, 1 a violation, 2 an error of the
//! harness, 3 the checker gave up on a key (no verdict), 130 interrupted.
//!
//! Map: `config.rs` (the checked flags); the network: `proxy.rs` (one proxy, each direction on
//! its own), `fabric.rs` (proxies or namespaces, and which proxy carries which link),
//! `netns.rs` (the namespaces and their nftables rules), `topology.rs` (the cluster and its
//! active cuts); the faults, pure: `fault.rs` (kinds and the seeded schedule), `partition.rs`
//! (parties, directed links, splits, cuts that add up), `script.rs` (a fault as timed steps),
//! `ledger.rs` (who holds which process), `compose.rs` (the overlapping plan); carrying them
//! out: `inject.rs` (one fault, and the steps), `conduct.rs` (overlapping faults);
//! `monitor.rs`, `load.rs`, `verdict.rs`, `report.rs`, and `run.rs` (one run from start to end).
//!
//! Caveats:
//! - The schedule is deterministic for a seed; the cluster's timing is not, so two runs with
//!   one seed inject the same faults but may see different histories.
//! - Without `--compose`, one fault at a time: faults overlap only in their after-effects (a
//!   slave still being refilled when the master is killed), never in their injection. With it,
//!   which process a fault touches is decided when it starts (who serves then), so a fault
//!   that would touch a process another active fault holds is skipped, not retargeted (except
//!   a slave fault, moved to a free slave).
//! - The proxies run on the harness's thread; a harness starved of CPU delays traffic, which
//!   the nodes may take for a fault. That can cost availability, never correctness. In
//!   namespaces the kernel carries the traffic.
//! - Through proxies, clients redirected by a standby reach the master through the peer proxy
//!   (see `topology.rs`), so a partition of the client links alone does not hide a master from
//!   them; in namespaces it does.

pub mod compose;
pub mod conduct;
pub mod config;
pub mod fabric;
pub mod fault;
pub mod inject;
pub mod ledger;
pub mod load;
pub mod monitor;
pub mod netns;
pub mod partition;
pub mod preload;
pub mod proxy;
pub mod report;
pub mod run;
pub mod script;
pub mod topology;
pub mod verdict;

pub use config::NemesisConfig;
pub use run::{execute, Outcome};
