//! The mutation check (build with `--features failpoints`): with fencing switched off, the
//! nemesis must report a violation. A checker that passes a store without its safety
//! mechanisms proves nothing about the store with them.
//!
//! `mutation-no-fencing` (see `actors::mutation`) makes every node ignore epochs: a master
//! that was paused while its standby took over keeps serving when it wakes, and slaves that
//! reconnect to it are accepted although they served the newer master. Writes acknowledged by
//! the old master carry versions from the older epoch and lose to the new master's, so reads
//! go back in time or writes vanish; at the least two masters serve at once and the cluster
//! never settles on one.

#![cfg(feature = "failpoints")]

use std::path::PathBuf;

use clap::Parser;
use harness::args::{Cli, Command};
use harness::nemesis::{self, NemesisConfig};

#[test]
fn without_fencing_the_nemesis_reports_a_violation() {
    // The only test in this binary: nothing else runs while the variable is set, and every
    // node the nemesis starts inherits it.
    std::env::set_var("FAILPOINTS", "mutation-no-fencing=return");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mutation-no-fencing-{}", std::process::id()));
    let cli = Cli::parse_from([
        "harness",
        "nemesis",
        "--duration",
        "40",
        "--seed",
        "1",
        "--faults",
        "pause-master,kill-slave,partition",
        "--settle-timeout",
        "10",
        "--nodes-bin",
        env!("CARGO_BIN_EXE_nodes"),
        "--out",
        out.to_str().expect("a UTF-8 path"),
    ]);
    let Command::Nemesis(args) = cli.command else { unreachable!("parsed as nemesis") };
    let config = NemesisConfig::new(&args).expect("a valid configuration");
    let outcome = nemesis::execute(config).expect("the nemesis runs to its verdict");
    println!("{}", serde_json::to_string_pretty(&outcome.summary.violations).unwrap_or_default());
    assert_eq!(outcome.exit_code, 1, "the nemesis must report a violation; summary in {}", out.display());
    assert!(!outcome.summary.violations.is_empty());
}
