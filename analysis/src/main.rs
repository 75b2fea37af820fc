//! The `analysis` binary. Exit codes: 0 success (and `linearizable`), 1 not linearizable,
//! 2 bad input or I/O error (the message names the file and line), 3 the checker gave up.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use analysis::check::{self, Verdict};
use analysis::{compare, report};

#[derive(Parser)]
#[command(name = "analysis", version, about = "Statistics, plots and the linearizability checker for harness output")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write DIR/report.md and its plots; DIR is a run or a sweep directory.
    Report { dir: PathBuf },
    /// Say per metric whether B differs from A beyond noise (Welch's t-test, alpha 0.05).
    Compare { dir_a: PathBuf, dir_b: PathBuf },
    /// Check that a recorded history is linearizable, key by key.
    Check {
        history: PathBuf,
        /// Give up on a key (exit 3) after this many distinct search states.
        #[arg(long, default_value_t = check::DEFAULT_MAX_STATES)]
        max_states: usize,
    },
}

/// Exit code for errors in the input (and I/O), as clap uses for bad arguments.
const EXIT_BAD_INPUT: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Report { dir } => {
            let written = report::write_report(&dir)?;
            println!("wrote {} and {} plot files", written.report.display(), written.plots.len());
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { dir_a, dir_b } => {
            let outcome = compare::compare(&dir_a, &dir_b)?;
            print!("{}", compare::format(&outcome, &dir_a, &dir_b));
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { history, max_states } => Ok(check_history(&history, max_states)?),
    }
}

fn check_history(path: &std::path::Path, max_states: usize) -> analysis::Result<ExitCode> {
    let report = check::check_file(path, max_states)?;
    let counts = format!(
        "{} operations on {} key(s) ({} failed operations and reads of unknown outcome dropped)",
        report.operations, report.keys, report.dropped
    );
    Ok(match report.verdict {
        Verdict::Linearizable => {
            println!("linearizable");
            eprintln!("checked {counts}");
            ExitCode::SUCCESS
        }
        Verdict::NotLinearizable(violation) => {
            print!("{violation}");
            eprintln!("checked {counts}");
            ExitCode::from(1)
        }
        Verdict::Undecided { key, operations, states } => {
            println!(
                "undecided: the search of key {key:?} ({operations} operations) visited {states} states, \
                 more than --max-states {max_states}; no verdict"
            );
            ExitCode::from(3)
        }
    })
}
