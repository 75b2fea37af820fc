pub mod backoff;
pub mod master;
pub mod outbox;
