//! `nodes`: the binary that runs every role of the store.
//!
//! Map of the crate:
//! - `args.rs`: the command line (clap): `master`, `backup`, `slave`, `client`, `cluster`,
//!   `keygen`, `gen-certs`.
//! - `serve.rs`: running the master-capable nodes and the slave: logging, the actix system,
//!   SIGTERM, and restarting a master that was deposed.
//! - `client_cli.rs`: `nodes client`, one-shot commands and the interactive prompt.
//! - `cluster.rs`: `nodes cluster`, a local cluster (master, backup, slaves) of child processes.
//! - `security.rs`: the security flags as the actors' gate and credentials; `keygen`, `gen-certs`.
//! - `main.rs`: parses the command line and dispatches.

pub mod args;
pub mod client_cli;
pub mod cluster;
pub mod security;
pub mod serve;
