use clap::Parser;

use nodes::args::{Cli, Command};
use nodes::{client_cli, cluster, security, serve};

fn main() {
    // Reads FAILPOINTS when built with the `failpoints` feature; does nothing otherwise.
    let _failpoints = fail::FailScenario::setup();
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
