//! The client library: an actor that talks to the master (and fails over to the backup), and
//! [`Client`], a cheap handle with one async method per command.

mod connection;

use actix::prelude::{Actor, Addr};
use bytes::Bytes;

pub use connection::{Call, ClientActor, ClientConfig, CurrentServer, ServerInfo};
use net::{ClientOp, ClientReply, Key, StatusReport, Value, Version};

use crate::error::Error;

/// A handle on a running [`ClientActor`]. Clone it freely; clones share the connection.
#[derive(Clone)]
pub struct Client {
    actor: Addr<ClientActor>,
}

impl Client {
    /// Starts the client actor on the current actix system. It connects on first use.
    pub fn start(config: ClientConfig) -> Client {
        Client { actor: ClientActor::new(config).start() }
    }

    /// The value of `key`, or `None` when it is missing or deleted.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<Option<Bytes>, Error> {
        Ok(self.get_versioned(key).await?.0)
    }

    /// The value of `key` and the version it was read at.
    pub async fn get_versioned(&self, key: impl Into<Bytes>) -> Result<(Option<Bytes>, Option<Version>), Error> {
        match self.call(ClientOp::Get { key: key_of(key)? }).await? {
            ClientReply::Value { value, version } => Ok((value.map(Value::into_bytes), version)),
            other => Err(unexpected(other)),
        }
    }

    /// Stores `value` under `key`; returns the version it was written at.
    pub async fn put(&self, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Result<Version, Error> {
        let value = Value::new(value).map_err(Error::BadInput)?;
        written(self.call(ClientOp::Put { key: key_of(key)?, value }).await?)
    }

    /// Deletes `key` (a versioned tombstone); deleting a missing key succeeds.
    pub async fn del(&self, key: impl Into<Bytes>) -> Result<Version, Error> {
        written(self.call(ClientOp::Del { key: key_of(key)? }).await?)
    }

    /// The master's view of the cluster.
    pub async fn status(&self) -> Result<StatusReport, Error> {
        match self.call(ClientOp::Status).await? {
            ClientReply::Status(report) => Ok(report),
            other => Err(unexpected(other)),
        }
    }

    /// Sends any request.
    pub async fn call(&self, op: ClientOp) -> Result<ClientReply, Error> {
        self.actor.send(Call(op)).await.map_err(|_| Error::Stopped)?
    }

    /// The server this client is connected to right now.
    pub async fn server(&self) -> Option<ServerInfo> {
        self.actor.send(CurrentServer).await.ok().flatten()
    }
}

fn key_of(key: impl Into<Bytes>) -> Result<Key, Error> {
    Key::new(key).map_err(Error::BadInput)
}

fn written(reply: ClientReply) -> Result<Version, Error> {
    match reply {
        ClientReply::Written { version, .. } => Ok(version),
        other => Err(unexpected(other)),
    }
}

fn unexpected(reply: ClientReply) -> Error {
    Error::Server(net::WireError::internal(format!("unexpected reply {reply:?}")))
}
