//! Mutations: failpoints that switch a safety mechanism off, so a test can show that the
//! nemesis notices when it is gone (a checker that never fails proves nothing).
//!
//! They exist only with the `failpoints` feature; in any other build every function here is a
//! constant `false` and the compiler removes the branches that use it.

/// `mutation-no-fencing`: epochs stop fencing anything. A master that learns of a newer one
/// keeps serving, slaves accept requests from older epochs and join masters older than the
/// epoch they accepted, and a master admits slaves that have served a newer one.
pub fn fencing_off() -> bool {
    #[cfg(feature = "failpoints")]
    {
        fail::eval("mutation-no-fencing", |_| ()).is_some()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        false
    }
}
