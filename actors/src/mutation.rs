//! Mutations: failpoints that switch a safety mechanism off, so a test can show that the
//! nemesis (or a scripted fault) notices when it is gone (a checker that never fails proves
//! nothing).
//!
//! They exist only with the `failpoints` feature; in any other build every function here is a
//! constant `false` and the compiler removes the branches that use it. Each is switched on with
//! `FAILPOINTS=<name>=return`:
//! - `mutation-no-fencing`: epochs stop fencing anything. A master that learns of a newer one
//!   keeps serving, slaves accept requests from older epochs and join masters older than the
//!   epoch they accepted, and a master admits slaves that have served a newer one.
//! - `mutation-live-membership`: a candidate counts promises and reads over the slaves it has
//!   met, not over the recorded membership (finding 1 of the takeover review).
//! - `mutation-live-replica-sets`: replica sets are sized by the live slaves, and a quorum is a
//!   majority of the set as placed (with the one above, finding 1; with the one below,
//!   finding 2).
//! - `mutation-serve-with-one-slave`: one promise grants an epoch and one read completes the
//!   takeover (finding 2: a master restarted in a partition serves with the slave it reaches,
//!   as a deadline used to let it).
//! - `mutation-count-forgetful-reads`: a slave that restarted empty counts as a read
//!   (finding 3).
//! - `mutation-no-read-raise`: a read's winner is not raised into the master's copy (finding 4).
//! - `mutation-log-failure-keeps-serving`: a master whose log failed for good keeps its slaves
//!   and its standby (finding 5).
//! - `mutation-standby-no-stall-check`: a standby counts its own stall as its master's silence.
//! - `mutation-read-before-durable`: a read answers what it found on the slaves before the
//!   master's log holds it.
//! - `mutation-no-restamp`: a version found on the slaves and appended to the log again is not
//!   written back to the slaves that held it with the record's stamp, so a later takeover that
//!   reads only what was written after its log's last stamp misses it.

/// `mutation-no-fencing` is on.
pub fn fencing_off() -> bool {
    enabled("mutation-no-fencing")
}

/// The mutation `name` is on.
pub fn enabled(name: &str) -> bool {
    #[cfg(feature = "failpoints")]
    {
        fail::eval(name, |_| ()).is_some()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = name;
        false
    }
}
