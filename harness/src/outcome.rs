//! How a failed request is counted ([`ErrorKind`], for the metrics) and what it means for the
//! history ([`EventType`]: did the operation certainly not happen, or is its outcome unknown).

use actors::Error;
use net::WireError;

use crate::workload::OpKind;

/// The error kinds of `summary.json`'s `errors` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The master refused: nothing was done, a retry may succeed.
    Unavailable,
    /// A write went out and its fate is unknown (no quorum in time, connection lost).
    OutcomeUnknown,
    /// No answer within `--request-timeout-ms`.
    Timeout,
    /// No server answered as master.
    NoMaster,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] =
        [ErrorKind::Unavailable, ErrorKind::OutcomeUnknown, ErrorKind::Timeout, ErrorKind::NoMaster, ErrorKind::Other];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
            ErrorKind::Timeout => "timeout",
            ErrorKind::NoMaster => "no_master",
            ErrorKind::Other => "other",
        }
    }

    /// Position in [`ErrorKind::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn of(err: &Error) -> ErrorKind {
        match err {
            Error::Server(WireError::Unavailable { .. }) => ErrorKind::Unavailable,
            Error::Server(WireError::OutcomeUnknown { .. }) | Error::ConnectionLost { .. } => ErrorKind::OutcomeUnknown,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::NoMaster(_) => ErrorKind::NoMaster,
            Error::Server(_)
            | Error::BadInput(_)
            | Error::Connect { .. }
            | Error::Net(_)
            | Error::Stopped
            | Error::Io { .. }
            | Error::Corrupt { .. }
            | Error::Locked { .. } => ErrorKind::Other,
        }
    }
}

/// The `type` of a history line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Invoke,
    Ok,
    /// The operation certainly did not take effect.
    Fail,
    /// The operation may or may not take effect, now or later.
    Info,
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    /// How the history records `op` failing with `err`. A GET changes nothing, so a failed
    /// GET is always `fail`; a write is `fail` only when it was certainly not carried out.
    pub fn of_error(op: OpKind, err: &Error) -> EventType {
        if !op.is_write() {
            return EventType::Fail;
        }
        match err {
            Error::Server(
                WireError::Unavailable { .. }
                | WireError::BadRequest { .. }
                | WireError::NotMaster { .. }
                | WireError::Unauthorized { .. },
            )
            | Error::NoMaster(_)
            | Error::BadInput(_)
            | Error::Connect { .. } => EventType::Fail,
            Error::Server(
                WireError::OutcomeUnknown { .. }
                | WireError::BadFrame { .. }
                | WireError::Protocol { .. }
                | WireError::StaleEpoch { .. }
                | WireError::Fenced { .. }
                | WireError::Internal { .. },
            )
            | Error::ConnectionLost { .. }
            | Error::Timeout(_)
            | Error::Net(_)
            | Error::Stopped
            | Error::Io { .. }
            | Error::Corrupt { .. }
            | Error::Locked { .. } => EventType::Info,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn kinds_follow_the_error() {
        let cases = [
            (Error::Server(WireError::unavailable("x")), "unavailable"),
            (Error::Server(WireError::outcome_unknown("x")), "outcome_unknown"),
            (Error::ConnectionLost { server: "a".into() }, "outcome_unknown"),
            (Error::Timeout(Duration::from_secs(1)), "timeout"),
            (Error::NoMaster("none".into()), "no_master"),
            (Error::Server(WireError::internal("x")), "other"),
            (Error::Stopped, "other"),
        ];
        for (err, name) in cases {
            assert_eq!(ErrorKind::of(&err).name(), name, "{err}");
        }
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn only_certain_failures_are_fail_for_writes() {
        let fail = [
            Error::Server(WireError::unavailable("x")),
            Error::NoMaster("none".into()),
            Error::BadInput("empty key".into()),
        ];
        let info = [
            Error::Server(WireError::outcome_unknown("x")),
            Error::ConnectionLost { server: "a".into() },
            Error::Timeout(Duration::from_secs(1)),
            Error::Server(WireError::internal("x")),
        ];
        for err in &fail {
            assert_eq!(EventType::of_error(OpKind::Put, err), EventType::Fail, "{err}");
        }
        for err in &info {
            assert_eq!(EventType::of_error(OpKind::Del, err), EventType::Info, "{err}");
            assert_eq!(EventType::of_error(OpKind::Get, err), EventType::Fail, "{err}");
        }
    }
}
