//! Scripted scenarios for the role core: each feeds events one by one and lists every effect.

use super::*;

fn node(name: &str) -> NodeId {
    NodeId(name.to_string())
}

fn members(list: &[(&str, u64)]) -> Membership {
    let mut m = Membership::default();
    for (name, incarnation) in list {
        m.apply(node(name), Incarnation(*incarnation), true);
    }
    m
}

/// A log whose newest epoch is `epoch`, granted to `master`, with slaves a, b, c (incarnation 1).
fn facts(epoch: u64, master: &str) -> LogFacts {
    LogFacts {
        highest_epoch: Epoch(epoch),
        newest_grant: Some((Epoch(epoch), Some(node(master)))),
        last_lsn: Lsn(100),
        members: members(&[("a", 1), ("b", 1), ("c", 1)]),
    }
}

fn core(me: &str, has_peer: bool, prefer_master: bool, facts: LogFacts) -> RoleCore {
    RoleCore::new(RoleConfig { me: node(me), replicas: 3, has_peer, prefer_master }, facts)
}

fn arrive(name: &str, incarnation: u64, promised: u64) -> Event {
    Event::SlaveArrived { node: node(name), incarnation: Incarnation(incarnation), promised: Epoch(promised) }
}

fn grant(name: &str, epoch: u64, served: u64, me: &str) -> Event {
    Event::Promise {
        node: node(name),
        asked: Epoch(epoch),
        answer: Some(PromiseAnswer { granted: true, epoch: Epoch(epoch), to: Some(node(me)), served: Epoch(served) }),
    }
}

fn refuse(name: &str, asked: u64, epoch: u64, to: &str) -> Event {
    Event::Promise {
        node: node(name),
        asked: Epoch(asked),
        answer: Some(PromiseAnswer { granted: false, epoch: Epoch(epoch), to: Some(node(to)), served: Epoch(0) }),
    }
}

fn ask(name: &str, epoch: u64) -> Effect {
    Effect::AskPromise { node: node(name), epoch: Epoch(epoch) }
}

fn read(name: &str, epoch: u64) -> Effect {
    Effect::ReadInventory { node: node(name), epoch: Epoch(epoch) }
}

fn recorded(epoch: u64) -> Event {
    Event::EpochRecorded { epoch: Epoch(epoch), result: Ok(()) }
}

fn inventory(name: &str, incarnation: u64) -> Event {
    Event::InventoryRead { node: node(name), incarnation: Incarnation(incarnation), ok: true }
}

fn peer(role: ServerRole, epoch: u64, last_lsn: u64) -> Event {
    Event::Peer(Some(PeerView { role, epoch: Epoch(epoch), last_lsn: Lsn(last_lsn) }))
}

fn stepped_down(effects: &[Effect]) -> bool {
    effects.iter().any(|e| matches!(e, Effect::StepDown { .. }))
}

/// A standby of `master` (epoch 4) that has just found its master silent.
fn standby_taking_over() -> RoleCore {
    let mut core = core("backup", true, false, facts(4, "master"));
    assert_eq!(core.step(Event::Start), vec![Effect::AskPeer]);
    assert_eq!(core.step(peer(ServerRole::Master, 4, 100)), vec![Effect::Follow]);
    assert_eq!(core.step(Event::MasterSilent { facts: facts(4, "master") }), vec![Effect::Campaign]);
    core
}

#[test]
fn a_lone_new_node_with_no_slaves_serves_at_once() {
    let mut core = core("m", false, true, LogFacts::default());
    assert_eq!(core.step(Event::Start), vec![Effect::Campaign, Effect::RecordEpoch { epoch: Epoch(1) }]);
    assert_eq!(core.step(recorded(1)), vec![Effect::Serve { epoch: Epoch(1) }]);
    assert_eq!(core.serving(), Some(Epoch(1)));
}

#[test]
fn a_takeover_waits_for_promises_from_the_recorded_membership_not_the_connected_slaves() {
    // Finding 1: only one of the three recorded slaves is reachable.
    let mut core = standby_taking_over();
    assert_eq!(core.step(arrive("a", 1, 4)), vec![ask("a", 5)]);
    assert_eq!(core.step(grant("a", 5, 4, "backup")), vec![]);
    assert_eq!(core.serving(), None);
    let why = core.waiting().unwrap();
    assert!(why.contains("1 of the 2 promises") && why.contains("not connected: b, c"), "{why}");
    // A second member's promise grants the epoch; the log (a standby's) must be read past.
    assert_eq!(core.step(arrive("b", 1, 4)), vec![ask("b", 5)]);
    assert_eq!(core.step(grant("b", 5, 4, "backup")), vec![read("a", 5), read("b", 5)]);
    assert_eq!(core.step(inventory("a", 1)), vec![]);
    assert_eq!(core.step(inventory("b", 1)), vec![Effect::RecordEpoch { epoch: Epoch(5) }]);
    assert_eq!(core.step(recorded(5)), vec![Effect::Serve { epoch: Epoch(5) }]);
}

#[test]
fn a_master_restarted_without_its_peer_serves_only_with_promises() {
    // Finding 2: no timer turns "not enough evidence" into "serve"; there is no tick at all.
    let mut core = core("master", true, true, facts(4, "master"));
    assert_eq!(core.step(Event::Start), vec![Effect::AskPeer]);
    assert_eq!(core.step(Event::Peer(None)), vec![Effect::Campaign]);
    assert_eq!(core.step(arrive("a", 1, 6)), vec![ask("a", 7)], "above the epoch the slave promised");
    assert_eq!(core.step(grant("a", 7, 6, "master")), vec![]);
    assert!(core.waiting().unwrap().contains("1 of the 2"));
    assert_eq!(core.serving(), None);
}

#[test]
fn a_slave_restarted_empty_fences_but_does_not_count_as_a_read() {
    // Finding 3: a runs incarnation 9 now, while the log last named incarnation 1.
    let mut core = standby_taking_over();
    core.step(arrive("a", 9, 4));
    core.step(arrive("b", 1, 4));
    core.step(grant("a", 5, 4, "backup"));
    assert_eq!(core.step(grant("b", 5, 4, "backup")), vec![read("b", 5)], "a's empty memory is not read");
    assert_eq!(core.step(inventory("b", 1)), vec![]);
    let why = core.waiting().unwrap();
    assert!(why.contains("1 more intact") && why.contains("restarted since the log last named them: a"), "{why}");
    assert_eq!(core.step(arrive("c", 1, 4)), vec![read("c", 5)]);
    assert_eq!(core.step(inventory("c", 1)), vec![Effect::RecordEpoch { epoch: Epoch(5) }]);
    assert_eq!(core.step(recorded(5)), vec![Effect::Serve { epoch: Epoch(5) }]);
}

#[test]
fn a_slave_whose_new_incarnation_is_recorded_counts_as_read() {
    let mut facts = facts(4, "master");
    facts.members.apply(node("a"), Incarnation(9), true);
    let mut core = core("backup", true, false, facts.clone());
    core.step(Event::Start);
    core.step(peer(ServerRole::Master, 4, 100));
    core.step(Event::MasterSilent { facts });
    core.step(arrive("a", 9, 4));
    core.step(arrive("b", 1, 4));
    core.step(grant("a", 5, 4, "backup"));
    assert_eq!(core.step(grant("b", 5, 4, "backup")), vec![read("a", 5), read("b", 5)]);
    core.step(inventory("a", 9));
    assert_eq!(core.step(inventory("b", 1)), vec![Effect::RecordEpoch { epoch: Epoch(5) }]);
}

#[test]
fn a_master_whose_own_epoch_is_the_newest_served_needs_no_read() {
    let mut core = core("master", false, true, facts(4, "master"));
    core.step(Event::Start);
    core.step(arrive("a", 7, 4));
    core.step(arrive("b", 8, 4));
    core.step(grant("a", 5, 4, "master"));
    assert_eq!(core.step(grant("b", 5, 3, "master")), vec![Effect::RecordEpoch { epoch: Epoch(5) }]);
    assert_eq!(core.step(recorded(5)), vec![Effect::Serve { epoch: Epoch(5) }], "no inventory to read");
}

#[test]
fn a_master_that_missed_a_newer_served_epoch_reads_before_serving() {
    // The peer was granted and served epoch 5 while this node was down.
    let mut core = core("master", false, true, facts(4, "master"));
    core.step(Event::Start);
    assert_eq!(core.step(arrive("a", 1, 5)), vec![ask("a", 5)]);
    assert_eq!(core.step(refuse("a", 5, 5, "backup")), vec![ask("a", 6)]);
    assert_eq!(core.step(arrive("b", 1, 5)), vec![ask("b", 6)]);
    core.step(grant("a", 6, 5, "master"));
    assert_eq!(core.step(grant("b", 6, 5, "master")), vec![read("a", 6), read("b", 6)]);
}

#[test]
fn a_granted_epoch_whose_reads_never_finished_does_not_make_a_log_complete() {
    // This node was granted epoch 6 after the peer served epoch 5, but crashed before its
    // reads finished: its log has no record of epoch 6, so the next campaign reads too.
    let mut core = core("master", false, true, facts(4, "master"));
    core.step(Event::Start);
    core.step(arrive("a", 1, 6));
    core.step(arrive("b", 1, 6));
    core.step(grant("a", 7, 5, "master"));
    assert_eq!(core.step(grant("b", 7, 5, "master")), vec![read("a", 7), read("b", 7)]);
}

#[test]
fn a_granted_candidate_that_never_served_does_not_stop_the_node_whose_log_is_complete() {
    // The peer was granted epoch 5 but never served (its reads could not be covered); the
    // promises report served = 4, this node's own epoch.
    let mut core = core("master", false, true, facts(4, "master"));
    core.step(Event::Start);
    core.step(arrive("a", 2, 5));
    core.step(refuse("a", 5, 5, "backup"));
    core.step(arrive("b", 2, 5));
    core.step(grant("a", 6, 4, "master"));
    core.step(grant("b", 6, 4, "master"));
    assert_eq!(core.step(recorded(6)), vec![Effect::Serve { epoch: Epoch(6) }]);
}

#[test]
fn a_candidate_that_loses_to_a_serving_peer_follows_it() {
    let mut core = standby_taking_over();
    core.step(arrive("a", 1, 4));
    assert_eq!(core.step(refuse("a", 5, 5, "master")), vec![ask("a", 6), Effect::AskPeer]);
    let effects = core.step(peer(ServerRole::Master, 5, 120));
    assert!(stepped_down(&effects), "{effects:?}");
    assert!(matches!(core.role(), Role::Stopped(_)));
}

#[test]
fn two_candidates_at_once_the_one_with_the_older_log_gives_way() {
    let mut core = core("backup", true, false, facts(4, "master"));
    core.step(Event::Start);
    core.step(Event::Peer(None));
    core.step(Event::MasterSilent { facts: facts(4, "master") });
    core.step(arrive("a", 1, 4));
    core.step(arrive("b", 1, 4));
    core.step(grant("a", 5, 4, "backup"));
    // b promised epoch 5 to the other candidate first.
    assert_eq!(core.step(refuse("b", 5, 5, "master")), vec![ask("a", 6), ask("b", 6), Effect::AskPeer]);
    let effects = core.step(peer(ServerRole::Candidate, 4, 130));
    assert!(stepped_down(&effects), "the peer's log is newer: {effects:?}");
}

#[test]
fn two_candidates_at_once_the_one_with_the_newer_log_goes_on() {
    let mut core = core("master", true, true, facts(4, "master"));
    core.step(Event::Start);
    core.step(Event::Peer(None));
    core.step(arrive("a", 1, 4));
    core.step(refuse("a", 5, 5, "backup"));
    assert_eq!(core.step(peer(ServerRole::Candidate, 4, 90)), vec![]);
    assert_eq!(core.step(grant("a", 6, 4, "master")), vec![]);
    core.step(arrive("b", 1, 5));
    assert_eq!(core.step(grant("b", 6, 4, "master")), vec![Effect::RecordEpoch { epoch: Epoch(6) }]);
}

#[test]
fn a_deposed_master_waking_up_steps_down() {
    let mut core = core("master", true, true, facts(4, "master"));
    core.step(Event::Start);
    core.step(Event::Peer(None));
    core.step(arrive("a", 1, 4));
    core.step(arrive("b", 1, 4));
    core.step(grant("a", 5, 4, "master"));
    core.step(grant("b", 5, 4, "master"));
    assert_eq!(core.step(recorded(5)), vec![Effect::Serve { epoch: Epoch(5) }]);
    // After a pause it meets a slave that promised epoch 6 to the other node.
    let hello = PeerRole::Slave {
        id: node("c"),
        epoch: Epoch(6),
        incarnation: Incarnation(1),
        max_version: net::Version::ZERO,
        keys: 0,
    };
    let (admission, effects) = core.admit(&hello);
    assert_eq!(admission, Admission::Refuse(WireError::StaleEpoch { sent: Epoch(5), current: Epoch(6) }));
    assert!(stepped_down(&effects));
    assert_eq!(core.serving(), None);
}

#[test]
fn a_partition_that_heals_mid_takeover_lets_the_read_finish() {
    let mut core = standby_taking_over();
    core.step(arrive("a", 1, 4));
    core.step(arrive("b", 1, 4));
    core.step(grant("a", 5, 4, "backup"));
    assert_eq!(core.step(grant("b", 5, 4, "backup")), vec![read("a", 5), read("b", 5)]);
    core.step(inventory("a", 1));
    core.step(Event::SlaveLeft { node: node("b") });
    core.step(Event::InventoryRead { node: node("b"), incarnation: Incarnation(1), ok: false });
    assert_eq!(core.serving(), None);
    assert_eq!(core.step(arrive("b", 1, 5)), vec![read("b", 5)]);
    assert_eq!(core.step(inventory("b", 1)), vec![Effect::RecordEpoch { epoch: Epoch(5) }]);
    assert_eq!(core.step(recorded(5)), vec![Effect::Serve { epoch: Epoch(5) }]);
}

#[test]
fn a_newer_epoch_after_the_grant_ends_the_campaign() {
    let mut core = standby_taking_over();
    core.step(arrive("a", 1, 4));
    core.step(arrive("b", 1, 4));
    core.step(grant("a", 5, 4, "backup"));
    core.step(grant("b", 5, 4, "backup"));
    let effects = core.step(Event::NewerEpoch { epoch: Epoch(7), source: "a slave".into() });
    assert!(stepped_down(&effects));
}

#[test]
fn a_failed_log_stops_serving_and_steps_down_after_a_pause() {
    let mut core = core("m", false, true, LogFacts::default());
    core.step(Event::Start);
    core.step(recorded(1));
    let effects = core.step(Event::LogFailed { reason: "No space left on device".into() });
    assert_eq!(
        effects,
        vec![
            Effect::StopServing { reason: "No space left on device".into() },
            Effect::StepDown { reason: "the log failed: No space left on device".into(), pause: true },
        ]
    );
    let (admission, _) = core.admit(&PeerRole::Client);
    assert_eq!(admission, Admission::NotMaster);
}

#[test]
fn an_epoch_that_cannot_be_recorded_is_not_served() {
    let mut core = core("m", false, true, LogFacts::default());
    core.step(Event::Start);
    let effects = core.step(Event::EpochRecorded { epoch: Epoch(1), result: Err("disk full".into()) });
    assert!(stepped_down(&effects));
    assert_eq!(core.serving(), None);
}

#[test]
fn at_start_a_node_follows_a_serving_or_newer_peer_and_campaigns_otherwise() {
    // (answer, prefer_master, whom the newest epoch was granted to, expected)
    let cases = [
        (peer(ServerRole::Master, 2, 10), false, "n", vec![Effect::Follow]),
        (peer(ServerRole::Standby, 9, 10), true, "n", vec![Effect::Follow]),
        (peer(ServerRole::Standby, 4, 99), true, "n", vec![Effect::Campaign]),
        // One log: the node it was granted to wins, whichever was started as master.
        (peer(ServerRole::Standby, 4, 100), false, "n", vec![Effect::Campaign]),
        (peer(ServerRole::Standby, 4, 100), true, "other", vec![Effect::Follow]),
        (Event::Peer(None), false, "n", vec![Effect::Follow]),
        (Event::Peer(None), true, "n", vec![Effect::Campaign]),
    ];
    for (answer, prefer_master, granted_to, expected) in cases {
        let mut core = core("n", true, prefer_master, facts(4, granted_to));
        core.step(Event::Start);
        assert_eq!(core.step(answer.clone()), expected, "{answer:?}, prefer_master {prefer_master}, {granted_to}");
    }
}

#[test]
fn the_listener_admits_by_role() {
    let mut standby = core("b", true, false, facts(4, "m"));
    standby.step(Event::Start);
    standby.step(peer(ServerRole::Master, 4, 100));
    assert_eq!(standby.admit(&PeerRole::Client).0, Admission::NotMaster);
    let backup = PeerRole::Backup { id: node("m"), epoch: Epoch(4), next_lsn: Lsn(50) };
    assert_eq!(standby.admit(&backup).0, Admission::NotMaster);

    let mut master = core("m", false, true, LogFacts::default());
    master.step(Event::Start);
    master.step(recorded(1));
    let resuming = PeerRole::Backup { id: node("b"), epoch: Epoch(1), next_lsn: Lsn(50) };
    assert_eq!(master.admit(&resuming).0, Admission::Backup { from: Lsn(50) });
    let diverged = PeerRole::Backup { id: node("b"), epoch: Epoch(0), next_lsn: Lsn(50) };
    assert_eq!(master.admit(&diverged).0, Admission::Backup { from: Lsn(0) });
    let peer_hello = PeerRole::Peer { id: node("b"), epoch: Epoch(1), last_lsn: Lsn(3) };
    assert_eq!(master.admit(&peer_hello), (Admission::Peer, vec![]));
}

#[test]
fn only_the_node_started_as_master_begins_a_cluster_without_slaves() {
    let mut backup = core("b", true, false, LogFacts::default());
    backup.step(Event::Start);
    backup.step(Event::Peer(None));
    assert_eq!(backup.step(Event::MasterSilent { facts: LogFacts::default() }), vec![Effect::Campaign]);
    assert_eq!(backup.serving(), None);
    assert!(backup.waiting().unwrap().contains("no slave has joined"));
    let mut master = core("m", true, true, LogFacts::default());
    master.step(Event::Start);
    assert_eq!(master.step(Event::Peer(None)), vec![Effect::Campaign, Effect::RecordEpoch { epoch: Epoch(1) }]);
}

#[test]
fn a_master_fenced_by_a_losing_candidates_promise_campaigns_again() {
    let mut core = core("master", false, true, facts(4, "master"));
    core.step(Event::Start);
    core.step(arrive("a", 1, 4));
    core.step(arrive("b", 1, 4));
    core.step(grant("a", 5, 4, "master"));
    core.step(grant("b", 5, 4, "master"));
    core.step(recorded(5));
    let fenced = Event::Fenced { epoch: Epoch(5), holder: node("backup"), source: "slave c".into() };
    assert!(stepped_down(&core.step(fenced)), "c refuses this master for as long as it serves epoch 5");
}
