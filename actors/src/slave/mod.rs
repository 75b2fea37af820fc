//! The slave: a store actor holding the data, a link that finds the master and reconnects,
//! and a session actor per connection.

pub mod link;
pub mod session;
pub mod store;

use actix::prelude::{Actor, Addr, Supervisor};

pub use link::{MasterLink, SlaveConfig};
pub use store::Store;

/// Starts a slave's actors on the current actix system.
pub fn start_slave(config: SlaveConfig) -> (Addr<Store>, Addr<MasterLink>) {
    let store = Store::new().start();
    let link_store = store.clone();
    let link = Supervisor::start(move |_| MasterLink::new(config, link_store));
    (store, link)
}
