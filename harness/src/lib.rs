//! `harness`: the load harness of the replicated key-value store. It starts a cluster from
//! the `nodes` binary (or drives an existing one), runs a closed- or open-loop workload over
//! many client connections, and writes what it measured for the `analysis` tool: one row per
//! second (`metrics.csv`, `metrics.jsonl`), the whole run (`summary.json`), and on request a
//! history of every operation for the linearizability checker. `harness nemesis` runs a
//! workload while it injects faults (kills, pauses, partitions), then checks the history with
//! the `analysis` crate's checker.
//!
//! Map of the crate:
//! - `args.rs`: the command line (clap); `config.rs`: the checked configuration of one run,
//!   which is also `summary.json`'s `config`.
//! - `launcher.rs`: child processes of `nodes`, their logs, and stopping them (SIGTERM, then
//!   SIGKILL; `kill_on_drop`; `PR_SET_PDEATHSIG`). `cluster.rs`: the cluster under load,
//!   started role by role or given by address. `secrets.rs`: the key, password and
//!   certificates of a `--secure` cluster. `signal.rs`: Ctrl-C and SIGTERM.
//! - `keys.rs`: the key space, uniform or Zipf. `workload.rs`: the operation mix and unique
//!   written values. `driver.rs`: one task per connection, closed or open loop.
//! - `outcome.rs`: how an error is counted and what it means for the history. `stats.rs`:
//!   HDR histograms of successes and error counts. `history.rs`: the history file.
//! - `measure.rs`: the measured load and the once-a-second collector. `metrics.rs`: the
//!   per-second files. `summary.rs`: `summary.json`. `progress.rs`: the progress bar.
//!   `cpu.rs`: each process's CPU time per operation, from `/proc`.
//!   `report.rs`: the table printed at the end.
//! - `run.rs`: one run from start to end. `sweep.rs`: a grid of runs and its `index.json`.
//! - `nemesis/`: `harness nemesis` (its `mod.rs` has the map): a cluster with a TCP proxy on
//!   every link, a seeded fault schedule, injection and healing, an epoch monitor, a workload
//!   built from `driver.rs` and `history.rs`, and the verdict (linearizable, no lost writes,
//!   serving again).
//!
//! Caveats: the harness runs on one actix system thread and shares the machine with the
//! cluster it measures, so on a small machine it competes with the nodes for CPU; its own
//! work per request is one histogram record (and one history line when recording). A second
//! is cut when the collector's timer fires, so a starved harness makes seconds longer, never
//! loses requests.

pub mod args;
pub mod cluster;
pub mod config;
pub mod cpu;
pub mod driver;
pub mod error;
pub mod history;
pub mod keys;
pub mod launcher;
pub mod load;
pub mod measure;
pub mod metrics;
pub mod nemesis;
pub mod outcome;
pub mod progress;
pub mod report;
pub mod run;
pub mod secrets;
pub mod signal;
pub mod stats;
pub mod summary;
pub mod sweep;
pub mod workload;

pub use error::HarnessError;
