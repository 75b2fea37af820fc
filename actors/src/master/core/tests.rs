//! Scripted tests of the coordinator's decisions: each feeds events and checks every effect.

use super::*;
use crate::role::membership::Membership;

type Core = Coordinator<u32>;

fn node(name: &str) -> NodeId {
    NodeId(name.to_string())
}

fn key(name: &str) -> Key {
    Key::new(name.to_string()).unwrap()
}

fn value(text: &str) -> Value {
    Value::new(text.to_string()).unwrap()
}

/// A new slave joins (incarnation 1) and its joining is recorded (no standby to wait for).
fn join(core: &mut Core, name: &str) {
    let effects = core.slave_joined(node(name), Incarnation(1), Version::ZERO);
    assert!(matches!(effects.as_slice(), [Effect::RecordMember { active: false, .. }]), "{effects:?}");
    let effects = core.member_recorded(&node(name), Lsn(1));
    assert!(matches!(effects.as_slice(), [Effect::RecordMember { active: true, .. }]), "{effects:?}");
}

/// A coordinator with slaves a, b, c (incarnation 1) and R = 3.
fn cluster() -> Core {
    let mut core = Core::new(Epoch(1), 3, 42);
    for name in ["a", "b", "c"] {
        join(&mut core, name);
    }
    core
}

/// Places `k` on a new replica set (a, b, c), with no entry yet.
fn mapped(core: &mut Core, k: &str) {
    assert!(core.place_new(&key(k)));
}

/// Makes `k` a key known only from the log, at version (1, 1): its replica set is unknown.
fn logged(core: &mut Core, k: &str) {
    core.recover([(key(k), Entry { version: Version::new(1, 1), value: Some(value("logged")) })]);
}

fn write_plan(effects: Vec<Effect<u32>>) -> WritePlan {
    match effects.into_iter().next() {
        Some(Effect::Write { plan, .. }) => plan,
        other => panic!("expected a write, got {other:?}"),
    }
}

fn read_plan(effects: Vec<Effect<u32>>) -> ReadPlan {
    match effects.into_iter().next() {
        Some(Effect::Read { plan, .. }) => plan,
        other => panic!("expected a read, got {other:?}"),
    }
}

fn unavailable(effects: &[Effect<u32>]) -> bool {
    matches!(effects, [Effect::Reply { result: Err(WireError::Unavailable { .. }), .. }])
}

#[test]
fn a_new_key_is_placed_on_r_slaves_and_written_without_a_lookup() {
    let mut core = cluster();
    let plan = write_plan(core.submit(key("k"), Op::Put(value("v")), 7));
    assert_eq!(plan.targets.len(), 3);
    assert_eq!(plan.needed, 2);
    assert_eq!(plan.entry, Entry { version: Version::new(1, 1), value: Some(value("v")) });
    assert_eq!(read_plan(core.submit(key("k"), Op::Get, 8)).targets.len(), 3, "the same set serves reads");
}

#[test]
fn a_read_of_an_unknown_key_and_any_command_on_a_logged_one_look_on_every_slave_first() {
    let mut core = cluster();
    let effects = core.submit(key("k"), Op::Get, 1);
    let [Effect::Discover { targets, .. }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(targets.len(), 3, "no read answers \"none\" before every live slave was asked");
    logged(&mut core, "l");
    let effects = core.submit(key("l"), Op::Put(value("v")), 2);
    assert!(matches!(effects.as_slice(), [Effect::Discover { .. }]), "a logged key's set is unknown: {effects:?}");
}

#[test]
fn versions_grow_with_every_write() {
    let mut core = cluster();
    mapped(&mut core, "k");
    let first = write_plan(core.submit(key("k"), Op::Put(value("1")), 1)).entry.version;
    let second = write_plan(core.submit(key("k"), Op::Del, 2)).entry.version;
    assert!(second > first);
    assert_eq!(core.last_version(), second);
}

#[test]
fn placement_is_capped_by_live_slaves() {
    let mut core = Core::new(Epoch(1), 3, 1);
    join(&mut core, "only");
    let plan = write_plan(core.submit(key("k"), Op::Put(value("v")), 0));
    assert_eq!(plan.targets.len(), 1);
    assert_eq!(plan.needed, 1);
}

#[test]
fn commands_queue_while_a_key_is_discovered() {
    let mut core = cluster();
    logged(&mut core, "k");
    assert_eq!(core.submit(key("k"), Op::Put(value("x")), 1).len(), 1);
    assert!(core.submit(key("k"), Op::Get, 2).is_empty(), "the second command waits");
    // Nothing found: the log's entry is copied to the new set first, then both run.
    let effects = core.discovered(key("k"), Vec::new(), true);
    assert!(matches!(effects.as_slice(), [Effect::Seed { .. }]), "{effects:?}");
    assert!(core.submit(key("k"), Op::Get, 3).is_empty(), "still waiting");
    let effects = core.seeded(key("k"), true);
    assert_eq!(effects.len(), 3);
    let (Effect::Write { plan: w, .. }, Effect::Read { plan: r, .. }) = (&effects[0], &effects[1]) else {
        panic!("{effects:?}")
    };
    let set = |targets: &[Target]| targets.iter().map(|t| t.node.clone()).collect::<Vec<_>>();
    assert_eq!(set(&w.targets), set(&r.targets), "both commands use one replica set");
}

#[test]
fn incomplete_discovery_fails_the_waiting_commands() {
    let mut core = cluster();
    logged(&mut core, "k");
    core.submit(key("k"), Op::Put(value("x")), 1);
    let effects = core.discovered(key("k"), Vec::new(), false);
    assert!(unavailable(&effects));
    assert!(matches!(core.submit(key("k"), Op::Get, 2).as_slice(), [Effect::Discover { .. }]));
}

#[test]
fn discovery_prefers_holders_and_copies_their_version_with_a_stamp_of_its_own() {
    let mut core = Core::new(Epoch(1), 3, 5);
    for name in ["a", "b", "c", "d", "e"] {
        join(&mut core, name);
    }
    logged(&mut core, "k");
    core.submit(key("k"), Op::Get, 1);
    let newest = Entry { version: Version::new(1, 40), value: Some(value("new")) };
    let older = Entry { version: Version::new(1, 30), value: Some(value("old")) };
    let found = vec![
        Found { node: node("d"), incarnation: Incarnation(1), entry: Some(newest.clone()) },
        Found { node: node("b"), incarnation: Incarnation(1), entry: Some(older) },
        Found { node: node("a"), incarnation: Incarnation(1), entry: None },
    ];
    let before = core.stamp();
    let effects = core.discovered(key("k"), found, true);
    let [Effect::Log { entry: logged, stamp, .. }, Effect::Seed { plan }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    assert_eq!(logged, &newest, "an entry newer than the master's log is logged");
    assert!(*stamp > before && *stamp > newest.version, "with a stamp above every one before it");
    assert_eq!(plan.entry, newest, "the copy keeps the version it had");
    assert_eq!(plan.stamp, Some(*stamp), "and carries the record's stamp");
    // d holds the version but not the stamp: a standby whose log lacks the record would not
    // find the key on it, so d counts only once the stamp is written there too.
    assert_eq!(plan.needed, 2, "a majority of 3, holders included");
    assert_eq!(plan.targets.len(), 3);
    assert!(plan.targets.iter().any(|t| t.node == node("d")), "the holder of the version is stamped");
    assert!(plan.targets.iter().any(|t| t.node == node("b")), "other holders come next");
    assert!(core.submit(key("k"), Op::Get, 2).is_empty(), "commands wait for the seeding");

    let effects = core.seeded(key("k"), true);
    assert_eq!(effects.len(), 2);
    let plan = write_plan(core.submit(key("k"), Op::Put(value("x")), 3));
    assert!(plan.entry.version > Version::new(1, 40), "new writes go above what was found");
}

#[test]
fn failed_seeding_forgets_the_key() {
    let mut core = cluster();
    logged(&mut core, "k");
    core.submit(key("k"), Op::Get, 1);
    let found = vec![Found {
        node: node("a"),
        incarnation: Incarnation(1),
        entry: Some(Entry { version: Version::new(1, 3), value: None }),
    }];
    assert!(matches!(core.discovered(key("k"), found, true).as_slice(), [Effect::Log { .. }, Effect::Seed { .. }]));
    assert!(unavailable(&core.seeded(key("k"), false)));
    assert!(matches!(core.submit(key("k"), Op::Get, 2).as_slice(), [Effect::Discover { .. }]));
}

#[test]
fn a_key_with_too_few_live_replicas_is_unavailable() {
    let mut core = cluster();
    mapped(&mut core, "k");
    core.slave_left(&node("a"));
    assert_eq!(write_plan(core.submit(key("k"), Op::Put(value("x")), 1)).targets.len(), 2);
    assert_eq!(read_plan(core.submit(key("k"), Op::Get, 2)).needed, 2);
    core.slave_left(&node("b"));
    assert!(unavailable(&core.submit(key("k"), Op::Put(value("y")), 3)));
    assert!(unavailable(&core.submit(key("k"), Op::Get, 4)));
}

#[test]
fn a_restarted_slave_does_not_count_for_reads_until_refilled() {
    let mut core = cluster();
    mapped(&mut core, "k");
    core.slave_joined(node("a"), Incarnation(2), Version::ZERO);

    let plan = read_plan(core.submit(key("k"), Op::Get, 1));
    let a = plan.targets.iter().find(|t| t.node == node("a")).unwrap();
    assert!(!a.counts, "a is asked (and repaired) but its answer does not count");
    assert_eq!(plan.targets.iter().filter(|t| t.counts).count(), 2);

    // With b gone only c counts, and a read needs two.
    core.slave_left(&node("b"));
    assert!(unavailable(&core.submit(key("k"), Op::Get, 2)));

    // A write may count a's acknowledgement: its version is newer than all a forgot.
    let plan = write_plan(core.submit(key("k"), Op::Put(value("v")), 3));
    assert_eq!(plan.targets.len(), 2);

    core.revalidate(&key("k"), &node("a"), Incarnation(2));
    let plan = read_plan(core.submit(key("k"), Op::Get, 4));
    assert!(plan.targets.iter().all(|t| t.counts));
}

#[test]
fn revalidation_from_an_older_incarnation_is_ignored() {
    let mut core = cluster();
    mapped(&mut core, "k");
    core.slave_joined(node("a"), Incarnation(2), Version::ZERO);
    core.revalidate(&key("k"), &node("a"), Incarnation(1));
    let plan = read_plan(core.submit(key("k"), Op::Get, 1));
    assert!(!plan.targets.iter().find(|t| t.node == node("a")).unwrap().counts);
}

#[test]
fn no_live_slaves_is_unavailable() {
    let mut core = Core::new(Epoch(1), 3, 0);
    assert!(unavailable(&core.submit(key("k"), Op::Get, 1)));
}

#[test]
fn joining_slaves_raise_the_version_counter() {
    let mut core = Core::new(Epoch(3), 3, 0);
    core.slave_joined(node("a"), Incarnation(1), Version::new(3, 99));
    core.slave_joined(node("b"), Incarnation(1), Version::new(2, 500));
    assert_eq!(core.last_version(), Version::new(3, 99));
}

#[test]
fn status_counts_placement_and_under_replication() {
    let mut core = cluster();
    mapped(&mut core, "k1");
    mapped(&mut core, "k2");
    assert_eq!(core.map_status().under_replicated, 0);
    core.slave_joined(node("a"), Incarnation(9), Version::ZERO);
    let status = core.map_status();
    assert_eq!(status.keys, 2);
    assert_eq!(status.under_replicated, 2, "a forgot both keys");
    assert_eq!(status.placed[&node("b")], 2);
}

/// The targets of the first effect, with whether each counts.
fn targets_of(effect: &Effect<u32>) -> Vec<(String, bool)> {
    let targets = match effect {
        Effect::Write { plan, .. } | Effect::Seed { plan } | Effect::Refill { plan } => &plan.targets,
        Effect::Read { plan, .. } => &plan.targets,
        other => panic!("no targets in {other:?}"),
    };
    targets.iter().map(|t| (t.node.0.clone(), t.counts)).collect()
}

#[test]
fn a_dead_member_is_replaced_by_a_spare_that_counts_only_after_its_refill() {
    let mut core = Core::new(Epoch(1), 3, 9);
    for name in ["a", "b", "c", "d"] {
        join(&mut core, name);
    }
    assert!(core.maintenance(8).is_empty());
    mapped(&mut core, "k");
    let written = write_plan(core.submit(key("k"), Op::Put(value("v")), 1)).entry;
    let members: Vec<String> = targets_of(&core.submit(key("k"), Op::Get, 2)[0]).into_iter().map(|t| t.0).collect();
    let spare = ["a", "b", "c", "d"].into_iter().find(|n| !members.iter().any(|m| m == n)).unwrap();

    core.slave_left(&node(&members[0]));
    let effects = core.maintenance(8);
    let [Effect::Refill { plan }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(plan.entry, written, "the copy is the master's entry, version kept");
    assert_eq!(targets_of(&effects[0]), vec![(spare.to_string(), false)]);

    let read = core.submit(key("k"), Op::Get, 3);
    assert!(targets_of(&read[0]).contains(&(spare.to_string(), false)), "not counted before the copy lands");
    core.refilled(&key("k"), &node(spare), Incarnation(1), true);
    assert!(targets_of(&core.submit(key("k"), Op::Get, 4)[0]).iter().all(|t| t.1));
    assert_eq!(core.map_status().under_replicated, 0);
    assert!(!core.busy());
}

#[test]
fn recovered_keys_are_placed_in_the_background_from_the_log() {
    let mut core = Core::new(Epoch(2), 3, 4);
    let logged = Entry { version: Version::new(1, 7), value: Some(value("from the log")) };
    core.recover([(key("k"), logged.clone())]);
    assert_eq!(core.last_version(), Version::new(2, 0), "a new epoch starts above the log");
    for name in ["a", "b", "c"] {
        join(&mut core, name);
    }
    let effects = core.maintenance(8);
    assert!(matches!(effects.as_slice(), [Effect::Discover { .. }]), "{effects:?}");
    let effects = core.discovered(key("k"), Vec::new(), true);
    let [Effect::Seed { plan }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!((plan.entry.clone(), plan.needed, plan.targets.len()), (logged, 2, 3));
    assert!(core.seeded(key("k"), true).is_empty(), "no client was waiting");
    assert_eq!(read_plan(core.submit(key("k"), Op::Get, 1)).targets.len(), 3);
}

#[test]
fn a_read_whose_replicas_all_forgot_is_filled_from_the_master_first() {
    let mut core = cluster();
    mapped(&mut core, "k");
    let written = write_plan(core.submit(key("k"), Op::Put(value("v")), 1)).entry;
    for name in ["a", "b", "c"] {
        core.slave_joined(node(name), Incarnation(2), Version::ZERO);
    }
    let effects = core.submit(key("k"), Op::Get, 2);
    let [Effect::Seed { plan }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!((plan.entry.clone(), plan.needed), (written, 2));
    assert!(plan.targets.iter().all(|t| !t.counts));
    for name in ["a", "b"] {
        core.revalidate(&key("k"), &node(name), Incarnation(2));
    }
    let plan = read_plan(core.seeded(key("k"), true));
    assert_eq!(plan.targets.iter().filter(|t| t.counts).count(), 2);
}

#[test]
fn background_work_stays_within_its_budget() {
    let mut core = cluster();
    for i in 0..5 {
        mapped(&mut core, &format!("k{i}"));
        core.submit(key(&format!("k{i}")), Op::Put(value("v")), 1);
    }
    core.slave_joined(node("a"), Incarnation(2), Version::ZERO);
    let first = core.maintenance(2);
    assert_eq!(first.len(), 2);
    assert!(core.maintenance(2).is_empty(), "the budget is in use");
    let Effect::Refill { plan } = &first[0] else { panic!() };
    core.refilled(&plan.key, &node("a"), Incarnation(2), true);
    assert_eq!(core.maintenance(2).len(), 1);
}

#[test]
fn a_joining_takes_effect_only_once_the_standby_holds_its_record() {
    let mut core = Core::new(Epoch(1), 3, 3).with_membership(Membership::default(), true);
    let effects = core.slave_joined(node("a"), Incarnation(1), Version::ZERO);
    assert!(matches!(effects.as_slice(), [Effect::RecordMember { active: false, .. }]));
    assert!(core.member_recorded(&node("a"), Lsn(7)).is_empty(), "the standby has not seen it");
    assert!(unavailable(&core.submit(key("k"), Op::Put(value("v")), 1)), "no replica set may use a yet");
    assert!(core.standby_acked(Lsn(6)).is_empty());
    let effects = core.standby_acked(Lsn(7));
    assert_eq!(effects.len(), 1);
    assert!(matches!(&effects[0], Effect::RecordMember { node: n, active: true, .. } if n == &node("a")));
    assert!(matches!(core.submit(key("k"), Op::Put(value("v")), 2).as_slice(), [Effect::Write { .. }]));
}

#[test]
fn a_restarted_slave_is_recorded_in_its_new_incarnation() {
    let mut core = cluster();
    assert!(core.slave_joined(node("a"), Incarnation(1), Version::ZERO).is_empty(), "a reconnection is not news");
    let effects = core.slave_joined(node("a"), Incarnation(5), Version::ZERO);
    assert!(matches!(effects.as_slice(), [Effect::RecordMember { incarnation: Incarnation(5), active: true, .. }]));
    assert!(core.membership().intact(&node("a"), Incarnation(5)));
}

#[test]
fn replica_sets_never_shrink_with_the_live_slaves() {
    let mut core = cluster();
    core.slave_left(&node("b"));
    core.slave_left(&node("c"));
    // One live slave of three: a new key still gets three members and needs two of them.
    let effects = core.submit(key("k"), Op::Put(value("v")), 1);
    assert!(unavailable(&effects), "one live slave cannot make a quorum of a set of three: {effects:?}");
    core.slave_joined(node("b"), Incarnation(1), Version::ZERO);
    let plan = write_plan(core.submit(key("k"), Op::Put(value("v")), 2));
    assert_eq!((plan.targets.len(), plan.needed), (2, 2), "c is in the set although away");
    assert_eq!(core.map_status().under_replicated, 1);
}

#[test]
fn a_read_raises_the_masters_copy_to_its_winner() {
    let mut core = cluster();
    mapped(&mut core, "k");
    let written = write_plan(core.submit(key("k"), Op::Put(value("old")), 1)).entry;
    let plan = read_plan(core.submit(key("k"), Op::Get, 2));
    assert_eq!(plan.known, Some(written.version));
    let newer = Entry { version: Version::new(1, 50), value: Some(value("surfaced")) };
    let (effects, stamp) = core.read_won(&key("k"), newer.clone());
    assert!(
        matches!(effects.as_slice(), [Effect::Log { entry, stamp: logged, .. }] if entry == &newer && *logged == stamp),
        "{effects:?}"
    );
    assert!(stamp > plan.stamp, "the read writes the record's stamp, above the one it was planned with");
    assert!(core.read_won(&key("k"), written).0.is_empty(), "never lowered");
    // A refill now copies the raised entry.
    core.slave_joined(node("a"), Incarnation(2), Version::ZERO);
    let effects = core.maintenance(8);
    let [Effect::Refill { plan }] = effects.as_slice() else { panic!("{effects:?}") };
    assert_eq!(plan.entry, newer);
}

#[test]
fn commands_waiting_behind_a_seeding_read_keep_waiting_for_it() {
    let mut core = cluster();
    mapped(&mut core, "k");
    write_plan(core.submit(key("k"), Op::Put(value("v")), 1));
    for name in ["a", "b", "c"] {
        core.slave_joined(node(name), Incarnation(2), Version::ZERO);
    }
    // The first read must fill the forgetful replicas first; the others wait behind it.
    assert!(matches!(core.submit(key("k"), Op::Get, 2).as_slice(), [Effect::Seed { .. }]));
    assert!(core.submit(key("k"), Op::Get, 3).is_empty());
    assert!(core.submit(key("k"), Op::Put(value("w")), 4).is_empty());
    for name in ["a", "b"] {
        core.revalidate(&key("k"), &node(name), Incarnation(2));
    }
    let effects = core.seeded(key("k"), true);
    let tokens: Vec<u32> = effects
        .iter()
        .map(|e| match e {
            Effect::Read { token, .. } | Effect::Write { token, .. } => *token,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(tokens, vec![2, 3, 4], "every waiting command runs, in order, once");
}

#[test]
fn a_read_waits_for_the_log_to_hold_what_it_found() {
    let mut core = cluster();
    mapped(&mut core, "k");
    let write = write_plan(core.submit(key("k"), Op::Put(value("v")), 1));
    let version = write.entry.version;
    let plan = read_plan(core.submit(key("k"), Op::Get, 2));
    assert!(plan.unsynced, "the write's record is not durable yet");
    let reply = ClientReply::Value { value: Some(value("v")), version: Some(version) };
    assert!(core.settle_read(&key("k"), version, 2, reply.clone()).is_empty(), "the read waits for the log");
    assert!(core.synced([(key("other"), version)]).is_empty(), "another key's record changes nothing");
    let effects = core.synced([(key("k"), version)]);
    assert!(matches!(effects.as_slice(), [Effect::Reply { token: 2, result: Ok(_) }]), "{effects:?}");
    let plan = read_plan(core.submit(key("k"), Op::Get, 3));
    assert!(!plan.unsynced, "once durable, reads answer directly");
    assert!(matches!(core.settle_read(&key("k"), version, 3, reply).as_slice(), [Effect::Reply { token: 3, .. }]));
}

#[test]
fn a_read_of_a_value_newer_than_the_log_waits_for_its_record() {
    let mut core = cluster();
    mapped(&mut core, "k");
    let found = Entry { version: Version::new(1, 40), value: Some(value("surfaced")) };
    let (effects, _) = core.read_won(&key("k"), found.clone());
    assert!(matches!(effects.as_slice(), [Effect::Log { .. }]), "{effects:?}");
    let reply = ClientReply::Value { value: found.value.clone(), version: Some(found.version) };
    assert!(core.settle_read(&key("k"), found.version, 5, reply).is_empty());
    // A later write's record made durable covers the earlier one (the log is appended in order).
    let write = write_plan(core.submit(key("k"), Op::Put(value("w")), 6));
    let effects = core.synced([(key("k"), found.version), (key("k"), write.entry.version)]);
    assert!(matches!(effects.as_slice(), [Effect::Reply { token: 5, .. }]), "{effects:?}");
    let effects = core.fail_settling("stopped");
    assert!(effects.is_empty(), "nothing waits any more");
}

#[test]
fn reads_waiting_for_the_log_fail_when_the_master_stops() {
    let mut core = cluster();
    mapped(&mut core, "k");
    let write = write_plan(core.submit(key("k"), Op::Put(value("v")), 1));
    let reply = ClientReply::Value { value: Some(value("v")), version: Some(write.entry.version) };
    assert!(core.settle_read(&key("k"), write.entry.version, 2, reply).is_empty());
    assert!(unavailable(&core.fail_settling("stopped")));
}
