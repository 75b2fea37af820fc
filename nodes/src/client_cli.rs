//! `nodes client`: one command with a strict stdout/stderr/exit-code contract, or an
//! interactive prompt.
//!
//! Exit codes: 0 success; 1 the key is missing; 2 any error (bad arguments, no reachable
//! master, unavailable, outcome unknown).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use actors::client::{Client, ClientConfig, ServerInfo};
use actors::Error;
use bytes::Bytes;
use net::StatusReport;

use crate::args::{ClientArgs, ClientCommand};

pub const EXIT_OK: i32 = 0;
pub const EXIT_MISSING: i32 = 1;
pub const EXIT_ERROR: i32 = 2;

pub fn run(args: ClientArgs) -> i32 {
    let credentials = match crate::security::client(&args) {
        Ok(credentials) => credentials,
        Err(err) => {
            eprintln!("error: {err:#}");
            return EXIT_ERROR;
        }
    };
    let config = ClientConfig {
        servers: vec![args.master.clone(), args.backup.clone()],
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_millis(args.timeout_ms),
        credentials,
    };
    actix_rt::System::new().block_on(async move {
        let client = Client::start(config);
        match args.command {
            Some(command) => one_shot(&client, command).await,
            None => interactive(&client).await,
        }
    })
}

async fn one_shot(client: &Client, command: ClientCommand) -> i32 {
    let result = match command {
        ClientCommand::Get { key } => match client.get(key.clone()).await {
            Ok(Some(value)) => {
                print_value(&value);
                return EXIT_OK;
            }
            Ok(None) => {
                eprintln!("key not found: {key}");
                return EXIT_MISSING;
            }
            Err(err) => Err(err),
        },
        ClientCommand::Put { key, value } => client.put(key, value).await.map(|_| println!("OK")),
        ClientCommand::Del { key } => client.del(key).await.map(|_| println!("OK")),
        ClientCommand::Status { json } => client.status().await.map(|report| {
            if json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            } else {
                print!("{}", render_status(&report));
            }
        }),
    };
    match result {
        Ok(()) => EXIT_OK,
        Err(err) => {
            eprintln!("error: {err}");
            EXIT_ERROR
        }
    }
}

fn print_value(value: &Bytes) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(value);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// The status report as a small table.
pub fn render_status(report: &StatusReport) -> String {
    let mut out = format!(
        "node {} ({:?}), epoch {}, last LSN {}, replicas {}\nkeys {}, under-replicated {}\n",
        report.node,
        report.role,
        report.epoch,
        report.last_lsn.0,
        report.replicas,
        report.keys,
        report.under_replicated
    );
    if let Some(waiting) = &report.waiting {
        out.push_str(&format!("not serving yet: {waiting}\n"));
    }
    match &report.standby {
        Some(standby) => out.push_str(&format!(
            "standby {} (Standby), acknowledged LSN {}, lag {} records\n",
            standby.id, standby.acked_lsn.0, standby.lag
        )),
        None => out.push_str("standby: none connected\n"),
    }
    out.push_str(&format!("{:<16} {:<22} {:>10} {:>10}\n", "slave", "address", "held", "placed"));
    for slave in &report.slaves {
        out.push_str(&format!(
            "{:<16} {:<22} {:>10} {:>10}\n",
            slave.id, slave.addr, slave.keys_held, slave.keys_placed
        ));
    }
    // Members the table above lacks: away, or joining (not yet used by replica sets).
    for member in report.members.iter().filter(|m| !report.slaves.iter().any(|s| s.id == m.id)) {
        let state = match (member.live, member.active) {
            (_, false) => "joining",
            (true, true) => "connected",
            (false, true) => "away",
        };
        out.push_str(&format!("{:<16} {:<22}\n", member.id, state));
    }
    out
}

const HELP: &str = "commands: READ key | WRITE key value | GET key | PUT key value | DEL key | STATUS | HELP | QUIT";

async fn interactive(client: &Client) -> i32 {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let tty = std::io::stdin().is_terminal();
    println!("{HELP}");
    let mut shown: Option<String> = None;
    loop {
        if tty {
            print!("{}> ", prompt(&client.server().await));
            let _ = std::io::stdout().flush();
        }
        let Some(line) = rx.recv().await else {
            return EXIT_OK;
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((verb, rest)) = words.split_first() else {
            continue;
        };
        let reply = match (verb.to_ascii_uppercase().as_str(), rest) {
            ("QUIT" | "EXIT", []) => return EXIT_OK,
            ("HELP", []) => HELP.to_string(),
            ("READ" | "GET", [key]) => match client.get(key.to_string()).await {
                Ok(Some(value)) => String::from_utf8_lossy(&value).into_owned(),
                Ok(None) => "(not found)".to_string(),
                Err(err) => format!("error: {err}"),
            },
            ("WRITE" | "PUT", [key, value @ ..]) if !value.is_empty() => {
                outcome(client.put(key.to_string(), value.join(" ")).await)
            }
            ("DEL" | "DELETE", [key]) => outcome(client.del(key.to_string()).await),
            ("STATUS", []) => match client.status().await {
                Ok(report) => render_status(&report).trim_end().to_string(),
                Err(err) => format!("error: {err}"),
            },
            _ => format!("cannot parse {line:?}; {HELP}"),
        };
        let now = client.server().await;
        let label = prompt(&now);
        if shown.as_ref() != Some(&label) {
            println!("[connected to {label}]");
            shown = Some(label);
        }
        println!("{reply}");
    }
}

fn outcome<T>(result: Result<T, Error>) -> String {
    match result {
        Ok(_) => "OK".to_string(),
        Err(err) => format!("error: {err}"),
    }
}

fn prompt(server: &Option<ServerInfo>) -> String {
    match server {
        Some(info) => format!("{:?} {} {}", info.welcome.role, info.welcome.node, info.addr).to_lowercase(),
        None => "not connected".to_string(),
    }
}
