//! The `nodes client` contract (stdout, stderr, exit codes), SIGTERM handling, and
//! `nodes cluster`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use support::{stderr, stdout, test_dir, Cluster, Proc, NODES, NOWHERE};

#[test]
fn put_get_del_print_their_results_and_exit_codes() {
    let cluster = Cluster::start("cli", 3, &[]);

    let put = cluster.cli(&["put", "user:1", "alice"]);
    assert_eq!((put.status.code(), stdout(&put).as_str()), (Some(0), "OK"), "{}", stderr(&put));

    let get = cluster.cli(&["get", "user:1"]);
    assert_eq!((get.status.code(), stdout(&get).as_str()), (Some(0), "alice"));

    let missing = cluster.cli(&["get", "user:2"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(stdout(&missing), "");
    assert!(stderr(&missing).contains("not found"), "{}", stderr(&missing));

    let del = cluster.cli(&["del", "user:1"]);
    assert_eq!((del.status.code(), stdout(&del).as_str()), (Some(0), "OK"));
    assert_eq!(cluster.cli(&["get", "user:1"]).status.code(), Some(1), "a deleted key is missing");
}

#[test]
fn status_prints_a_table_and_json() {
    let cluster = Cluster::start("cli-status", 2, &["--replicas", "2"]);
    assert!(cluster.cli(&["put", "k", "v"]).status.success());

    let table = cluster.cli(&["status"]);
    assert_eq!(table.status.code(), Some(0));
    let text = stdout(&table);
    assert!(text.contains("Master") && text.contains("epoch") && text.contains("slave-2"), "{text}");

    let json = cluster.status();
    assert_eq!(json["role"], "Master");
    assert_eq!(json["replicas"], 2);
    assert_eq!(json["keys"], 1);
    assert_eq!(json["slaves"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_arguments_and_no_master_exit_2() {
    let missing_value = Command::new(NODES).args(["client", "put", "onlykey"]).output().unwrap();
    assert_eq!(missing_value.status.code(), Some(2));
    assert!(!stderr(&missing_value).is_empty());

    let unknown = Command::new(NODES).args(["client", "launch"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));

    let nobody =
        Command::new(NODES).args(["client", "--master", NOWHERE, "--backup", NOWHERE, "get", "k"]).output().unwrap();
    assert_eq!(nobody.status.code(), Some(2));
    assert!(stderr(&nobody).contains("no reachable master"), "{}", stderr(&nobody));
}

#[test]
fn a_key_over_the_limit_is_refused_by_the_client() {
    let cluster = Cluster::start("cli-limits", 1, &[]);
    let long_key = "k".repeat(1025);
    let out = cluster.cli(&["put", &long_key, "v"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("over the limit"), "{}", stderr(&out));
}

#[test]
fn the_interactive_prompt_reads_and_writes_and_names_its_server() {
    let cluster = Cluster::start("cli-prompt", 3, &[]);
    let mut child = Command::new(NODES)
        .args(["client", "--master", &cluster.addr, "--backup", NOWHERE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "WRITE greeting hello there").unwrap();
    writeln!(stdin, "READ greeting").unwrap();
    writeln!(stdin, "READ nothing-here").unwrap();
    writeln!(stdin, "QUIT").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(text.contains(&format!("connected to master master {}", cluster.addr)), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"OK") && lines.contains(&"hello there") && lines.contains(&"(not found)"), "{text}");
}

#[test]
fn sigterm_stops_master_and_slave_with_exit_0() {
    let mut cluster = Cluster::start("cli-sigterm", 1, &[]);
    let slave = cluster.slave("slave-1");
    slave.signal(libc::SIGTERM);
    assert_eq!(slave.wait_exit().code(), Some(0));
    cluster.master.signal(libc::SIGTERM);
    assert_eq!(cluster.master.wait_exit().code(), Some(0));
}

#[test]
fn cluster_starts_master_and_slaves_and_stops_them_on_sigterm() {
    let dir = test_dir("cluster-cmd");
    let dir_arg = dir.join("nodes");
    let mut cluster = Proc::spawn(
        &dir,
        "cluster",
        &["cluster", "--slaves", "2", "--listen", "127.0.0.1:0", "--dir", dir_arg.to_str().unwrap()],
    );
    let mut lines = BufReader::new(cluster_stdout(&mut cluster)).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first.split_whitespace().nth(1).expect("master line names the address").to_string();
    let mut pids = vec![first.split_whitespace().last().unwrap().parse::<i32>().unwrap()];
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line.starts_with("cluster running") {
            break;
        }
        pids.push(line.split_whitespace().last().unwrap().parse().unwrap());
    }
    assert_eq!(pids.len(), 4, "a master, a backup and two slaves");

    let status = support::wait_for(|| {
        let out = Command::new(NODES)
            .args(["client", "--master", &addr, "--backup", NOWHERE, "status", "--json"])
            .output()
            .ok()?;
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        (json["slaves"].as_array()?.len() == 2).then_some(json)
    });
    assert_eq!(status["role"], "Master");

    cluster.signal(libc::SIGTERM);
    assert_eq!(cluster.wait_exit().code(), Some(0));
    for pid in pids {
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "child {pid} outlived the cluster command");
    }
}

fn cluster_stdout(proc: &mut Proc) -> std::process::ChildStdout {
    proc.take_stdout()
}
