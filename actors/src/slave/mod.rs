//! The slave: a store actor holding the data, a link that finds the master and reconnects,
//! and a session actor per connection.

pub mod link;
pub mod session;
pub mod store;

use actix::prelude::{Actor, Addr, Supervisor};

pub use link::{MasterLink, SlaveConfig};
pub use store::Store;

/// Starts a slave's actors on the current actix system. Its promise (see `role/promise.rs`) is
/// kept in `data_dir/promise` when a data directory is given.
pub fn start_slave(
    config: SlaveConfig,
    data_dir: Option<&std::path::Path>,
) -> std::io::Result<(Addr<Store>, Addr<MasterLink>)> {
    if let Some(dir) = data_dir {
        std::fs::create_dir_all(dir)?;
    }
    let store = Store::open(data_dir.map(std::path::Path::to_path_buf))?.start();
    crate::stall::watch_event_loop();
    let link_store = store.clone();
    let link = Supervisor::start(move |_| MasterLink::new(config, link_store));
    Ok((store, link))
}
