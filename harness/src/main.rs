use anyhow::Context as _;
use std::time::Duration;

use actors::client::ClientConfig;
use actors::security::{Credentials, TlsFiles};
use clap::Parser;

use harness::args::{Cli, Command, FillArgs, NemesisArgs, RunArgs, SweepArgs};
use harness::load;
use harness::nemesis::{self, NemesisConfig};
use harness::run::{self, RunPlan};
use harness::signal::EXIT_INTERRUPTED;
use harness::{report, sweep, HarnessError};

/// Exit code for any error.
const EXIT_ERROR: i32 = 2;

fn main() {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Run(args) => run_command(&args),
        Command::Sweep(args) => sweep_command(&args),
        Command::Nemesis(args) => nemesis_command(&args),
        Command::Load(args) => load_command(&args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            if matches!(err.downcast_ref(), Some(HarnessError::Interrupted)) {
                eprintln!("interrupted before the load started");
                std::process::exit(EXIT_INTERRUPTED);
            }
            eprintln!("error: {err:#}");
            std::process::exit(EXIT_ERROR);
        }
    }
}

fn run_command(args: &RunArgs) -> anyhow::Result<i32> {
    let plan = RunPlan::from_args(args)?;
    let out = plan.out.clone();
    let summary = run::execute(plan).with_context(|| format!("the run in {} failed", out.display()))?;
    print!("{}", report::table(&summary));
    println!("results in {}", out.display());
    Ok(if summary.interrupted { EXIT_INTERRUPTED } else { 0 })
}

fn sweep_command(args: &SweepArgs) -> anyhow::Result<i32> {
    let outcome = sweep::execute(args).context("the sweep failed")?;
    println!(
        "{} runs completed{}; index in {}",
        outcome.completed,
        if outcome.interrupted { " (interrupted)" } else { "" },
        outcome.out.join("index.json").display()
    );
    Ok(if outcome.interrupted { EXIT_INTERRUPTED } else { 0 })
}

fn nemesis_command(args: &NemesisArgs) -> anyhow::Result<i32> {
    let config = NemesisConfig::new(args)?;
    let out = config.out.clone();
    let outcome = nemesis::execute(config).with_context(|| format!("the nemesis in {} failed", out.display()))?;
    print!("{}", outcome.summary.text());
    println!("history, summary and logs in {}", out.display());
    Ok(outcome.exit_code)
}

fn load_command(args: &FillArgs) -> anyhow::Result<i32> {
    let tls = TlsFiles { ca: args.tls_ca.clone(), ..TlsFiles::default() };
    let credentials = Credentials::for_client(args.password_file.as_deref(), &tls)?;
    let servers = std::iter::once(args.master.clone()).chain(args.backup.clone()).collect();
    let plan = load::LoadPlan {
        config: ClientConfig {
            servers,
            connect_timeout: harness::cluster::CONNECT_TIMEOUT,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            credentials,
        },
        keys: args.keys,
        first: args.first,
        value_size: usize::try_from(args.value_size)?,
        connections: args.connections,
        pipeline: args.pipeline,
    };
    let loaded = actix_rt::System::new().block_on(load::load(plan))?;
    println!(
        "loaded {} keys of {} bytes in {:.1} s: {:.0} writes/s ({} retried)",
        loaded.keys,
        args.value_size,
        loaded.elapsed.as_secs_f64(),
        loaded.rate(),
        loaded.retried
    );
    Ok(0)
}

/// Logs to stderr; `RUST_LOG` sets the level (default: warnings only, to keep the progress
/// bar readable).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}
