//! The RESP connection actor: one per Redis-protocol connection, on the data endpoint or the
//! Sentinel endpoint.
//!
//! Data commands become the same [`Execute`] messages a native client session sends to the
//! coordinator, so both protocols share one code path for the store's semantics. A command on
//! several keys (`DEL`, `EXISTS`, `MGET`) is one `Execute` per key. Answers come back in any
//! order; replies go out in the order the commands came, as RESP requires of a pipeline: every
//! command takes a slot in a queue, and the front slots are written as soon as they are whole.
//!
//! Where to send a command depends on the node's role, which can change under a connection
//! (a standby takes over, a master steps down): the session asks the node actor when it does
//! not know a serving coordinator, and forgets it when the coordinator says it is no longer
//! master. On a standby, writes get `-READONLY` and reads an error naming the master's Redis
//! address, so no client ever reads a stale value from it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::{Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, StreamHandler};
use actix::WrapFuture;
use bytes::{Bytes, BytesMut};

use net::{ClientOp, ClientReply, ServerRole, StatusReport, WireError};

use super::codec::RespError;
use super::command::{parse, Command, CommandInfo, Endpoint, SentinelCommand, TABLE};
use super::reply::Reply;
use crate::master::coordinator::{ClientDone, CoordinatorActor, Execute};
use crate::master::RedisConfig;
use crate::node::role::{Describe, NodeActor, NodeView};
use crate::outbox::{Outbox, LINGER};
use crate::security::Password;

/// Requests (keys, for multi-key commands) one connection may have in flight; a command that
/// would pass it is refused until answers go out.
pub const MAX_IN_FLIGHT: usize = 4096;

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// What every connection of an endpoint shares.
pub struct Shared {
    pub node: Addr<NodeActor>,
    pub node_id: String,
    pub config: RedisConfig,
    pub endpoint: Endpoint,
    /// Clients must `AUTH` (or `HELLO 2 AUTH`) with it before anything but `AUTH`, `HELLO`,
    /// `PING` and `QUIT`.
    pub password: Option<Password>,
    /// With a password: a connection not authenticated this long after it opened is closed.
    pub auth_timeout: Duration,
}

/// Commands a connection may send before it authenticates; past them it is closed, so an
/// unauthenticated peer cannot make the server queue replies without end.
pub const MAX_COMMANDS_BEFORE_AUTH: u32 = 64;

/// Where data commands go.
enum Route {
    Unknown,
    Master(Addr<CoordinatorActor>),
    /// This node does not serve; Redis clients should use `master` (if known).
    Elsewhere {
        master: Option<String>,
    },
}

/// How a slot's answers become its reply.
enum Kind {
    Get,
    Set,
    Del,
    Exists,
    MGet,
    DbSize,
    Info(Vec<String>),
    Role,
}

struct Slot {
    /// The request id of the slot's first part; parts have consecutive ids.
    base: u64,
    kind: Option<Kind>,
    parts: Vec<Option<Result<ClientReply, WireError>>>,
    missing: usize,
    reply: Option<Reply>,
    /// Close the connection once this reply is out (`QUIT`).
    last: bool,
}

pub struct RespSession {
    peer: SocketAddr,
    client_id: u64,
    name: Option<Bytes>,
    shared: Arc<Shared>,
    outbox: Outbox<Bytes>,
    route: Route,
    next_id: u64,
    slots: VecDeque<Slot>,
    in_flight: usize,
    closing: bool,
    half_closed: bool,
    /// The connection authenticated, or the endpoint needs no password.
    authed: bool,
    /// Commands refused or answered before authentication.
    before_auth: u32,
}

impl RespSession {
    pub fn new(peer: SocketAddr, shared: Arc<Shared>, outbox: Outbox<Bytes>) -> Self {
        let authed = shared.password.is_none();
        RespSession {
            peer,
            client_id: NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed),
            name: None,
            shared,
            outbox,
            route: Route::Unknown,
            next_id: 1,
            slots: VecDeque::new(),
            in_flight: 0,
            closing: false,
            half_closed: false,
            authed,
            before_auth: 0,
        }
    }

    /// Queues a reply that is already known. Its `base` is the next request id, which keeps
    /// the queue sorted by id (see the `ClientDone` handler).
    fn push(&mut self, reply: Reply) {
        self.slots.push_back(Slot {
            base: self.next_id,
            kind: None,
            parts: Vec::new(),
            missing: 0,
            reply: Some(reply),
            last: false,
        });
    }

    /// Writes every whole reply at the front of the queue, in order, straight into the
    /// connection's send buffer.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        let mut quit = false;
        if self.slots.front().is_some_and(|s| s.reply.is_some()) {
            let slots = &mut self.slots;
            if !self.outbox.write_with(|buf| quit = encode_ready(slots, buf)) {
                // Closed: the replies have nowhere to go, but the queue moves on all the same.
                quit = encode_ready(slots, &mut BytesMut::new());
            }
        }
        if quit {
            self.slots.clear();
            self.close(ctx);
        } else if self.half_closed && self.slots.is_empty() {
            ctx.stop();
        }
    }

    fn close(&mut self, ctx: &mut Context<Self>) {
        self.outbox.close();
        self.closing = true;
        ctx.run_later(LINGER, |_, ctx| ctx.stop());
    }

    fn request(&mut self, args: Vec<Bytes>, ctx: &mut Context<Self>) {
        if !self.authed {
            self.before_auth += 1;
            if self.before_auth > MAX_COMMANDS_BEFORE_AUTH {
                tracing::warn!(peer = %self.peer, "closing a Redis connection: too many commands before AUTH");
                self.push(Reply::error("ERR too many commands before AUTH; closing the connection"));
                if let Some(slot) = self.slots.back_mut() {
                    slot.last = true;
                }
                return;
            }
            if !args.first().is_some_and(|name| allowed_before_auth(name)) {
                return self.push(Reply::error("NOAUTH Authentication required."));
            }
        }
        match parse(&args, self.shared.endpoint) {
            Err(reply) => self.push(reply),
            Ok(command) => self.run(command, ctx),
        }
    }

    fn run(&mut self, command: Command, ctx: &mut Context<Self>) {
        let needs_view = match &command {
            Command::Role | Command::Info(_) | Command::Sentinel(_) => true,
            Command::Get(_)
            | Command::Set(..)
            | Command::Del(_)
            | Command::Exists(_)
            | Command::MGet(_)
            | Command::DbSize => !matches!(self.route, Route::Master(_)),
            _ => false,
        };
        if !needs_view {
            return self.execute(command, None, ctx);
        }
        // Wait for the node's answer before reading further commands, which keeps replies
        // in order without more bookkeeping; this happens on a standby or after a role change.
        let describe = self.shared.node.send(Describe);
        ctx.wait(describe.into_actor(self).map(move |view, act, ctx| {
            let view = view.ok();
            act.route = match &view {
                Some(NodeView { serving: Some((coordinator, _)), .. }) => Route::Master(coordinator.clone()),
                Some(view) => Route::Elsewhere { master: view.master_redis.clone() },
                None => Route::Unknown,
            };
            act.execute(command, view, ctx);
            act.flush(ctx);
        }));
    }

    fn execute(&mut self, command: Command, view: Option<NodeView>, ctx: &mut Context<Self>) {
        let reply = match command {
            Command::Ping(None) => Reply::Simple("PONG"),
            Command::Ping(Some(text)) | Command::Echo(text) => Reply::Bulk(text),
            Command::Select | Command::ClientOk => Reply::ok(),
            Command::ClientSetName(name) => {
                self.name = Some(name);
                Reply::ok()
            }
            Command::ClientGetName => self.name.clone().map_or(Reply::Nil, Reply::Bulk),
            Command::ClientId => Reply::Int(self.client_id as i64),
            Command::Hello(auth) => match auth {
                Some((user, password)) => match self.auth(Some(&user), &password) {
                    Ok(()) => self.hello(view.as_ref()),
                    Err(refusal) => refusal,
                },
                None if !self.authed => Reply::error(
                    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> \
                     AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol \
                     version at the same time",
                ),
                None => self.hello(view.as_ref()),
            },
            Command::Auth(user, password) => match self.auth(user.as_ref(), &password) {
                Ok(()) => Reply::ok(),
                Err(refusal) => refusal,
            },
            Command::Command(info) => command_info(info),
            Command::ConfigGet(patterns) => config_get(&patterns),
            Command::Quit => {
                self.push(Reply::ok());
                if let Some(slot) = self.slots.back_mut() {
                    slot.last = true;
                }
                return;
            }
            // A master's log position is the coordinator's to tell; the node's view has the one
            // it started with.
            Command::Role if self.shared.endpoint == Endpoint::Data && matches!(self.route, Route::Master(_)) => {
                return self.dispatch(Kind::Role, vec![ClientOp::Status], ctx)
            }
            Command::Role => self.role(view.as_ref()),
            Command::Sentinel(sentinel) => self.sentinel(sentinel, view.as_ref()),
            // The Sentinel port has one section, whatever was asked.
            Command::Info(_) if self.shared.endpoint == Endpoint::Sentinel => Reply::bulk(format!(
                "# Sentinel\r\nsentinel_masters:1\r\nmaster0:name={}\r\n",
                self.shared.config.cluster_name
            )),
            Command::Info(sections) => match &self.route {
                Route::Master(_) => return self.dispatch(Kind::Info(sections), vec![ClientOp::Status], ctx),
                _ => Reply::bulk(self.info_text(None, view.as_ref(), &sections)),
            },
            Command::DbSize => return self.data(Kind::DbSize, vec![ClientOp::Status], true, ctx),
            Command::Get(key) => return self.data(Kind::Get, vec![ClientOp::Get { key }], true, ctx),
            Command::Set(key, value) => return self.data(Kind::Set, vec![ClientOp::Put { key, value }], false, ctx),
            Command::Del(keys) => {
                return self.data(Kind::Del, keys.into_iter().map(|key| ClientOp::Del { key }).collect(), false, ctx)
            }
            Command::Exists(keys) => {
                return self.data(Kind::Exists, keys.into_iter().map(|key| ClientOp::Get { key }).collect(), true, ctx)
            }
            Command::MGet(keys) => {
                return self.data(Kind::MGet, keys.into_iter().map(|key| ClientOp::Get { key }).collect(), true, ctx)
            }
        };
        self.push(reply);
    }

    /// A data command: to the coordinator if this node serves, otherwise refused with where to go.
    fn data(&mut self, kind: Kind, ops: Vec<ClientOp>, read: bool, ctx: &mut Context<Self>) {
        match &self.route {
            Route::Master(_) => self.dispatch(kind, ops, ctx),
            Route::Elsewhere { master } => self.push(not_master(read, master.as_deref())),
            Route::Unknown => self.push(Reply::error("ERR this node is stopping")),
        }
    }

    fn dispatch(&mut self, kind: Kind, ops: Vec<ClientOp>, ctx: &mut Context<Self>) {
        let Route::Master(coordinator) = &self.route else { return };
        if self.in_flight + ops.len() > MAX_IN_FLIGHT {
            tracing::debug!(peer = %self.peer, max = MAX_IN_FLIGHT, "refusing a command: too many in flight");
            return self.push(Reply::error(format!(
                "BUSY more than {MAX_IN_FLIGHT} requests in flight on this connection; read the replies first"
            )));
        }
        let (base, count) = (self.next_id, ops.len());
        self.next_id += count as u64;
        self.in_flight += count;
        let recipient = ctx.address().recipient();
        for (id, op) in (base..).zip(ops) {
            coordinator.do_send(Execute { id, op, reply: recipient.clone() });
        }
        self.slots.push_back(Slot {
            base,
            kind: Some(kind),
            parts: vec![None; count],
            missing: count,
            reply: None,
            last: false,
        });
    }

    /// Checks a password (for the only user, `default`), as `AUTH` and `HELLO ... AUTH` do.
    fn auth(&mut self, user: Option<&Bytes>, password: &[u8]) -> Result<(), Reply> {
        let Some(expected) = &self.shared.password else {
            return Err(Reply::error(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your \
                 configuration is correct?",
            ));
        };
        let user_ok = user.is_none_or(|user| user.as_ref() == b"default");
        // Both checks run whatever the user, so timing does not tell which one failed.
        if expected.matches(password) & user_ok {
            self.authed = true;
            return Ok(());
        }
        tracing::warn!(peer = %self.peer, endpoint = ?self.shared.endpoint, "refusing a Redis AUTH: wrong password");
        Err(Reply::error("WRONGPASS invalid username-password pair or user is disabled."))
    }

    fn hello(&self, view: Option<&NodeView>) -> Reply {
        let role = match (self.shared.endpoint, view.map(|v| v.role)) {
            (Endpoint::Sentinel, _) => "sentinel",
            (_, Some(ServerRole::Standby)) => "replica",
            _ => "master",
        };
        Reply::Array(vec![
            Reply::bulk("server"),
            Reply::bulk("redis"),
            Reply::bulk("version"),
            Reply::bulk(REDIS_VERSION),
            Reply::bulk("proto"),
            Reply::Int(2),
            Reply::bulk("id"),
            Reply::Int(self.client_id as i64),
            Reply::bulk("mode"),
            Reply::bulk(if self.shared.endpoint == Endpoint::Sentinel { "sentinel" } else { "standalone" }),
            Reply::bulk("role"),
            Reply::bulk(role),
            Reply::bulk("modules"),
            Reply::Array(Vec::new()),
        ])
    }

    fn role(&self, view: Option<&NodeView>) -> Reply {
        if self.shared.endpoint == Endpoint::Sentinel {
            return Reply::Array(vec![
                Reply::bulk("sentinel"),
                Reply::Array(vec![Reply::bulk(self.shared.config.cluster_name.clone())]),
            ]);
        }
        match view {
            Some(NodeView { serving: Some(_), last_lsn, .. }) => master_role(*last_lsn),
            Some(view) => {
                let (host, port) = split_addr(view.master_redis.as_deref());
                Reply::Array(vec![
                    Reply::bulk("slave"),
                    Reply::bulk(host),
                    Reply::Int(port),
                    Reply::bulk(if view.master_redis.is_some() { "connected" } else { "connect" }),
                    Reply::Int(view.last_lsn.0 as i64),
                ])
            }
            None => Reply::error("ERR this node is stopping"),
        }
    }

    /// The current master's Redis address, as this node knows it.
    fn master_addr(&self, view: Option<&NodeView>) -> Option<String> {
        let view = view?;
        match &view.serving {
            Some(_) => Some(self.shared.config.advertised.clone()),
            None => view.master_redis.clone(),
        }
    }

    fn sentinel(&self, command: SentinelCommand, view: Option<&NodeView>) -> Reply {
        let name = &self.shared.config.cluster_name;
        let ours = |asked: &Bytes| asked.as_ref() == name.as_bytes();
        let master = self.master_addr(view);
        match command {
            SentinelCommand::GetMasterAddrByName(asked) => match (ours(&asked), &master) {
                (true, Some(addr)) => {
                    let (host, port) = split_addr(Some(addr));
                    Reply::Array(vec![Reply::bulk(host), Reply::bulk(port.to_string())])
                }
                _ => Reply::Nil,
            },
            SentinelCommand::Masters => match &master {
                Some(addr) => Reply::Array(vec![self.master_entry(addr, view)]),
                None => Reply::Array(Vec::new()),
            },
            SentinelCommand::Master(asked) => match (ours(&asked), &master) {
                (true, Some(addr)) => self.master_entry(addr, view),
                _ => Reply::error("ERR No such master with that name"),
            },
            SentinelCommand::Sentinels(asked) | SentinelCommand::Replicas(asked) => {
                if ours(&asked) {
                    Reply::Array(Vec::new())
                } else {
                    Reply::error("ERR No such master with that name")
                }
            }
        }
    }

    /// One master as `SENTINEL MASTERS` describes it: a flat list of field names and values.
    fn master_entry(&self, addr: &str, view: Option<&NodeView>) -> Reply {
        let (host, port) = split_addr(Some(addr));
        let epoch = view.map_or(0, |v| v.epoch.0);
        let fields = [
            ("name", self.shared.config.cluster_name.clone()),
            ("ip", host),
            ("port", port.to_string()),
            ("runid", self.shared.node_id.clone()),
            ("flags", "master".to_string()),
            ("link-pending-commands", "0".to_string()),
            ("link-refcount", "1".to_string()),
            ("last-ping-sent", "0".to_string()),
            ("last-ok-ping-reply", "0".to_string()),
            ("last-ping-reply", "0".to_string()),
            ("down-after-milliseconds", "0".to_string()),
            ("role-reported", "master".to_string()),
            ("config-epoch", epoch.to_string()),
            ("num-slaves", "0".to_string()),
            ("num-other-sentinels", "1".to_string()),
            ("quorum", "1".to_string()),
            ("failover-timeout", "0".to_string()),
            ("parallel-syncs", "1".to_string()),
        ];
        Reply::Array(fields.into_iter().flat_map(|(k, v)| [Reply::bulk(k), Reply::bulk(v)]).collect())
    }

    fn info_text(&self, status: Option<&StatusReport>, view: Option<&NodeView>, sections: &[String]) -> String {
        let wanted = |name: &str| {
            sections.is_empty()
                || sections.iter().any(|s| s == name || s == "all" || s == "everything" || s == "default")
        };
        let mut text = String::new();
        if wanted("server") {
            text.push_str(&format!(
                "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_mode:standalone\r\nkv_node:{}\r\nprocess_id:{}\r\ntcp_port:{}\r\n\r\n",
                self.shared.node_id,
                std::process::id(),
                split_addr(Some(&self.shared.config.advertised)).1
            ));
        }
        if wanted("replication") {
            match (status, view) {
                (Some(status), _) => {
                    text.push_str(&format!(
                        "# Replication\r\nrole:master\r\nkv_role:master\r\nkv_epoch:{}\r\nkv_replicas:{}\r\nkv_slaves:{}\r\nkv_under_replicated:{}\r\nkv_last_lsn:{}\r\n",
                        status.epoch.0,
                        status.replicas,
                        status.slaves.len(),
                        status.under_replicated,
                        status.last_lsn.0
                    ));
                    match &status.standby {
                        Some(standby) => text.push_str(&format!(
                            "kv_standby:{}\r\nkv_standby_acked_lsn:{}\r\nkv_standby_lag:{}\r\n",
                            standby.id, standby.acked_lsn.0, standby.lag
                        )),
                        None => text.push_str("kv_standby:none\r\n"),
                    }
                    text.push_str("connected_slaves:0\r\n\r\n");
                }
                (None, Some(view)) => {
                    let (host, port) = split_addr(view.master_redis.as_deref());
                    text.push_str(&format!(
                        "# Replication\r\nrole:slave\r\nkv_role:standby\r\nkv_epoch:{}\r\nkv_last_lsn:{}\r\nmaster_host:{host}\r\nmaster_port:{port}\r\nmaster_link_status:{}\r\nslave_read_only:1\r\n\r\n",
                        view.epoch.0,
                        view.last_lsn.0,
                        if view.master_redis.is_some() { "up" } else { "down" },
                    ));
                }
                (None, None) => text.push_str("# Replication\r\nrole:unknown\r\n\r\n"),
            }
        }
        if wanted("keyspace") {
            text.push_str("# Keyspace\r\n");
            if let Some(status) = status {
                text.push_str(&format!("db0:keys={},expires=0,avg_ttl=0\r\n", status.values));
            }
        }
        text
    }

    /// Turns a slot's answers into its reply.
    fn complete(&mut self, kind: Kind, parts: Vec<Option<Result<ClientReply, WireError>>>) -> Reply {
        // The first failure is the reply; otherwise every part is an answer.
        for part in &parts {
            match part {
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    if matches!(err, WireError::NotMaster { .. } | WireError::StaleEpoch { .. }) {
                        self.route = Route::Unknown;
                    }
                    let read = !matches!(kind, Kind::Set | Kind::Del);
                    return error_reply(err, read);
                }
                None => return Reply::error("ERR internal: an answer is missing"),
            }
        }
        let mut answers = parts.into_iter().flatten().flatten();
        let value = |reply: ClientReply| match reply {
            ClientReply::Value { value: Some(value), .. } => Reply::Bulk(value.into_bytes()),
            _ => Reply::Nil,
        };
        match kind {
            Kind::Get => answers.next().map_or(Reply::Nil, value),
            Kind::Set => Reply::ok(),
            Kind::Del => {
                Reply::Int(answers.filter(|r| matches!(r, ClientReply::Written { existed: true, .. })).count() as i64)
            }
            Kind::Exists => {
                Reply::Int(answers.filter(|r| matches!(r, ClientReply::Value { value: Some(_), .. })).count() as i64)
            }
            Kind::MGet => Reply::Array(answers.map(value).collect()),
            Kind::DbSize => match answers.next() {
                Some(ClientReply::Status(status)) => Reply::Int(status.values as i64),
                _ => Reply::error("ERR internal: no status"),
            },
            Kind::Info(sections) => match answers.next() {
                Some(ClientReply::Status(status)) => Reply::bulk(self.info_text(Some(&status), None, &sections)),
                _ => Reply::error("ERR internal: no status"),
            },
            Kind::Role => match answers.next() {
                Some(ClientReply::Status(status)) => master_role(status.last_lsn),
                _ => Reply::error("ERR internal: no status"),
            },
        }
    }
}

/// The Redis version this endpoint reports; clients use it to pick features.
pub const REDIS_VERSION: &str = "7.2.0";

/// `ROLE` on a master: the role, its replication offset (the log's last LSN), no replicas in
/// Redis's sense.
fn master_role(last_lsn: net::Lsn) -> Reply {
    Reply::Array(vec![Reply::bulk("master"), Reply::Int(last_lsn.0 as i64), Reply::Array(Vec::new())])
}

fn split_addr(addr: Option<&str>) -> (String, i64) {
    let Some(addr) = addr else { return (String::new(), 0) };
    match addr.rsplit_once(':') {
        Some((host, port)) => (host.trim_matches(['[', ']']).to_string(), port.parse().unwrap_or(0)),
        None => (addr.to_string(), 0),
    }
}

fn not_master(read: bool, master: Option<&str>) -> Reply {
    let whereto = match master {
        Some(addr) => format!("the master serves Redis clients at {addr}"),
        None => "the master is not known yet".to_string(),
    };
    if read {
        Reply::error(format!("NOTMASTER this node is the standby and serves no reads; {whereto}"))
    } else {
        Reply::error(format!("READONLY You can't write against a read only replica; {whereto}"))
    }
}

/// A store error as a Redis error line; the code says whether the command may have happened.
fn error_reply(err: &WireError, read: bool) -> Reply {
    match err {
        WireError::Unavailable { detail } => Reply::error(format!("TRYAGAIN not applied: {detail}")),
        WireError::OutcomeUnknown { detail } => {
            Reply::error(format!("UNKNOWN the write may or may not have taken effect: {detail}"))
        }
        WireError::NotMaster { .. } | WireError::StaleEpoch { .. } => {
            if read {
                Reply::error("NOTMASTER this node is no longer the master; ask Sentinel for the new one")
            } else {
                Reply::error("READONLY You can't write against a read only replica; this node is no longer the master")
            }
        }
        other => Reply::error(format!("ERR {other}")),
    }
}

/// The settings this store can describe in Redis's terms: the log is always on and every
/// acknowledged write is in it; there are no RDB snapshots on a schedule.
const SETTINGS: &[(&str, &str)] = &[("appendonly", "yes"), ("save", ""), ("databases", "1")];

fn config_get(patterns: &[Bytes]) -> Reply {
    let mut out = Vec::new();
    for (name, value) in SETTINGS {
        let asked = patterns.iter().any(|p| p.as_ref() == b"*" || p.eq_ignore_ascii_case(name.as_bytes()));
        if asked {
            out.push(Reply::bulk(*name));
            out.push(Reply::bulk(*value));
        }
    }
    Reply::Array(out)
}

fn command_info(info: CommandInfo) -> Reply {
    match info {
        CommandInfo::Count => Reply::Int(TABLE.len() as i64),
        CommandInfo::Docs => Reply::Array(Vec::new()),
        CommandInfo::List => Reply::Array(
            TABLE
                .iter()
                .map(|(name, arity, flags, first, last, step)| {
                    Reply::Array(vec![
                        Reply::bulk(*name),
                        Reply::Int(*arity),
                        Reply::Array(flags.iter().map(|f| Reply::Simple(f)).collect()),
                        Reply::Int(*first),
                        Reply::Int(*last),
                        Reply::Int(*step),
                    ])
                })
                .collect(),
        ),
    }
}

/// Encodes the whole replies at the front of `slots` into `buf`, in order, and takes them off;
/// true if one of them is the connection's last.
fn encode_ready(slots: &mut VecDeque<Slot>, buf: &mut BytesMut) -> bool {
    while slots.front().is_some_and(|s| s.reply.is_some()) {
        let Some(slot) = slots.pop_front() else { break };
        if let Some(reply) = slot.reply {
            reply.encode(buf);
        }
        if slot.last {
            return true;
        }
    }
    false
}

impl Actor for RespSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if !self.authed {
            ctx.run_later(self.shared.auth_timeout, |act, ctx| {
                if !act.authed && !act.closing {
                    tracing::info!(peer = %act.peer, "closing a Redis connection: no AUTH within the handshake deadline");
                    act.close(ctx);
                }
            });
        }
    }
}

impl StreamHandler<Result<Vec<Bytes>, RespError>> for RespSession {
    fn handle(&mut self, request: Result<Vec<Bytes>, RespError>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        match request {
            Ok(args) => self.request(args, ctx),
            Err(RespError::Protocol(detail)) => {
                tracing::info!(peer = %self.peer, %detail, "closing a Redis connection: protocol error");
                self.push(Reply::error(format!("ERR Protocol error: {detail}")));
                if let Some(slot) = self.slots.back_mut() {
                    slot.last = true;
                }
            }
            Err(RespError::Io(err)) => {
                tracing::debug!(peer = %self.peer, %err, "Redis connection failed");
                return ctx.stop();
            }
        }
        self.flush(ctx);
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // The client may have only shut down its writing side: answer what it asked first.
        self.half_closed = true;
        if !self.closing && self.slots.is_empty() {
            ctx.stop();
        }
    }
}

impl Handler<ClientDone> for RespSession {
    type Result = ();

    fn handle(&mut self, msg: ClientDone, ctx: &mut Context<Self>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let id = msg.id;
        let index = self.slots.partition_point(|s| s.base + s.parts.len() as u64 <= id);
        let Some(slot) = self.slots.get_mut(index).filter(|s| s.base <= id && !s.parts.is_empty()) else {
            return;
        };
        let part = (id - slot.base) as usize;
        if slot.parts[part].is_none() {
            slot.parts[part] = Some(msg.result);
            slot.missing -= 1;
        }
        if slot.missing == 0 {
            let (kind, parts) = (slot.kind.take(), std::mem::take(&mut slot.parts));
            let reply = match kind {
                Some(kind) => self.complete(kind, parts),
                None => Reply::error("ERR internal: a slot without a kind"),
            };
            if let Some(slot) = self.slots.get_mut(index) {
                slot.reply = Some(reply);
            }
        }
        self.flush(ctx);
    }
}

/// The commands Redis accepts before `AUTH`.
fn allowed_before_auth(name: &[u8]) -> bool {
    [&b"auth"[..], b"hello", b"ping", b"quit"].iter().any(|allowed| name.eq_ignore_ascii_case(allowed))
}
