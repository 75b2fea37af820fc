//! Quorum arithmetic and the read-repair decision, as plain functions.
//!
//! A key lives on a replica set of `n` slaves. A write is complete when a majority of the set
//! holds it; a read asks the set, waits for a majority, and takes the highest version. Any two
//! majorities of the same set share a member, so a read's majority always contains at least one
//! replica of every completed write. Before a read answers, the version it returns is written
//! back until a majority holds it too (read repair, as in the ABD register), so a value once
//! returned can never be un-seen by a later read.

use net::Entry;

/// The smallest number of members that forms a majority of a set of `n`.
pub fn majority(n: usize) -> usize {
    debug_assert!(n > 0, "a replica set is never empty");
    n / 2 + 1
}

/// One replica's answer to the gather phase of a read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadAnswer<'a> {
    /// Whether this replica's answer counts toward the quorum (false for a replica that
    /// restarted empty and has not been refilled since).
    pub counts: bool,
    pub entry: Option<&'a Entry>,
}

/// What a read does once enough answers are in.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairDecision {
    /// The newest entry any answer held; `None` when no replica held the key at all.
    pub winner: Option<Entry>,
    /// Indices of the answers that must be written back (they hold an older entry or none).
    pub stale: Vec<usize>,
    /// Answers that already hold the winner and count toward the quorum.
    pub holders: usize,
}

/// Decides the gather phase of a read, or `None` while fewer than `needed` counting answers
/// are in.
pub fn decide_read(answers: &[ReadAnswer<'_>], needed: usize) -> Option<RepairDecision> {
    let counting = answers.iter().filter(|a| a.counts).count();
    if counting < needed {
        return None;
    }
    let winner = answers.iter().filter_map(|a| a.entry).max_by_key(|e| e.version).cloned();
    let Some(winner) = winner else {
        return Some(RepairDecision { winner: None, stale: Vec::new(), holders: counting });
    };
    let mut stale = Vec::new();
    let mut holders = 0;
    for (i, answer) in answers.iter().enumerate() {
        match answer.entry {
            Some(entry) if entry.version == winner.version => holders += usize::from(answer.counts),
            Some(_) | None => stale.push(i),
        }
    }
    Some(RepairDecision { winner: Some(winner), stale, holders })
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::{Value, Version};

    fn entry(seq: u64) -> Entry {
        Entry { version: Version::new(1, seq), value: Some(Value::new(format!("v{seq}")).unwrap()) }
    }

    #[test]
    fn majority_of_each_replica_set_size() {
        let table = [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)];
        for (n, expected) in table {
            assert_eq!(majority(n), expected, "n = {n}");
        }
    }

    /// For every set size 1..=5 and every subset of acknowledging members, the write is
    /// complete exactly when the subset is a majority, and any two majorities intersect.
    #[test]
    fn every_subset_of_answers_against_the_quorum() {
        for n in 1..=5usize {
            let subsets: Vec<u32> = (0..(1u32 << n)).collect();
            for &acks in &subsets {
                let complete = acks.count_ones() as usize >= majority(n);
                assert_eq!(complete, 2 * acks.count_ones() as usize > n, "n={n} acks={acks:b}");
                for &other in &subsets {
                    if complete && other.count_ones() as usize >= majority(n) {
                        assert_ne!(acks & other, 0, "majorities {acks:b} and {other:b} of {n} must meet");
                    }
                }
            }
        }
    }

    #[test]
    fn read_waits_for_enough_counting_answers() {
        let e = entry(1);
        let answers = [ReadAnswer { counts: true, entry: Some(&e) }, ReadAnswer { counts: false, entry: Some(&e) }];
        assert_eq!(decide_read(&answers, 2), None, "an amnesiac replica does not count");
        assert!(decide_read(&answers[..1], 1).is_some());
    }

    #[test]
    fn read_takes_the_highest_version_and_repairs_the_rest() {
        let (old, new) = (entry(1), entry(2));
        let answers = [
            ReadAnswer { counts: true, entry: Some(&old) },
            ReadAnswer { counts: true, entry: Some(&new) },
            ReadAnswer { counts: false, entry: None },
        ];
        let decision = decide_read(&answers, 2).unwrap();
        assert_eq!(decision.winner, Some(new));
        assert_eq!(decision.stale, vec![0, 2]);
        assert_eq!(decision.holders, 1);
    }

    #[test]
    fn a_tombstone_wins_over_an_older_value() {
        let old = entry(1);
        let tomb = Entry { version: Version::new(1, 2), value: None };
        let answers = [ReadAnswer { counts: true, entry: Some(&old) }, ReadAnswer { counts: true, entry: Some(&tomb) }];
        let decision = decide_read(&answers, 2).unwrap();
        assert_eq!(decision.winner, Some(tomb));
        assert_eq!(decision.stale, vec![0]);
    }

    #[test]
    fn no_entry_anywhere_needs_no_repair() {
        let answers = [ReadAnswer { counts: true, entry: None }, ReadAnswer { counts: true, entry: None }];
        let decision = decide_read(&answers, 2).unwrap();
        assert_eq!(decision, RepairDecision { winner: None, stale: vec![], holders: 2 });
    }
}
