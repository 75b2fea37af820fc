use clap::Parser;

use nodes::args::{Cli, Command};
use nodes::{client_cli, cluster, security, serve};

fn main() {
    // Reads FAILPOINTS when built with the `failpoints` feature; does nothing otherwise.
    let _failpoints = fail::FailScenario::setup();
    first_run_failpoints();
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Client(_) | Command::Keygen { .. } | Command::GenCerts(_));
    serve::init_logging(if quiet { "warn" } else { "info" });
    let result = match cli.command {
        Command::Master(args) => serve::run_master(args),
        Command::Backup(args) => serve::run_backup(args),
        Command::Slave(args) => serve::run_slave(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Client(args) => std::process::exit(client_cli::run(args)),
        Command::Keygen { file } => security::keygen(&file),
        Command::GenCerts(args) => security::gen_certs(&args),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(2);
    }
}

/// `FAILPOINTS_FIRST_RUN` (same syntax as `FAILPOINTS`) applies only to a process that was not
/// restarted by stepping down, so a test can inject one fault and watch the node recover from
/// it rather than meet it again after each restart.
fn first_run_failpoints() {
    if std::env::var_os(serve::STEPPED_DOWN).is_some() {
        return;
    }
    let Ok(spec) = std::env::var("FAILPOINTS_FIRST_RUN") else { return };
    for entry in spec.split(';').filter(|e| !e.trim().is_empty()) {
        match entry.split_once('=') {
            Some((name, actions)) => {
                if let Err(err) = fail::cfg(name.trim(), actions.trim()) {
                    eprintln!("FAILPOINTS_FIRST_RUN: {entry}: {err}");
                }
            }
            None => eprintln!("FAILPOINTS_FIRST_RUN: {entry}: expected name=actions"),
        }
    }
}
