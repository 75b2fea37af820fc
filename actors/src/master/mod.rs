//! The master: a listener, a connection actor per client, a proxy per slave, the quorum
//! coordinator and its aggregators.

pub mod core;
pub mod placement;
pub mod quorum;
