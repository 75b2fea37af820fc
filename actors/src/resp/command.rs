//! Redis commands as this store understands them: a request (the arguments of one RESP array
//! or inline line) becomes a [`Command`], or the error reply Redis would give. No I/O here.

use bytes::Bytes;

use net::{Key, Value};

use super::reply::Reply;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Ping(Option<Bytes>),
    Echo(Bytes),
    Get(Key),
    Set(Key, Value),
    Del(Vec<Key>),
    Exists(Vec<Key>),
    MGet(Vec<Key>),
    DbSize,
    /// The sections asked for, lower-cased; empty means the default set.
    Info(Vec<String>),
    Role,
    Select,
    ClientSetName(Bytes),
    ClientGetName,
    ClientId,
    /// `CLIENT SETINFO` and other `CLIENT` calls that need only an `OK`.
    ClientOk,
    /// `HELLO [2] [AUTH user password]`; `HELLO 3` is refused while parsing.
    Hello(Option<(Bytes, Bytes)>),
    /// `AUTH [user] password`: `user` is `None` in the one-argument form.
    Auth(Option<Bytes>, Bytes),
    Command(CommandInfo),
    Quit,
    Sentinel(SentinelCommand),
    /// `CONFIG GET pattern...`: the few settings clients ask about (redis-benchmark does).
    ConfigGet(Vec<Bytes>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandInfo {
    /// `COMMAND` or `COMMAND INFO ...`: the table of supported commands.
    List,
    Count,
    /// `COMMAND DOCS ...`: no documentation (an empty map), enough for `redis-cli`.
    Docs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SentinelCommand {
    GetMasterAddrByName(Bytes),
    Masters,
    /// `SENTINEL MASTER <name>`.
    Master(Bytes),
    Sentinels(Bytes),
    Replicas(Bytes),
}

/// One command as `COMMAND` lists it: name, arity (negative: at least that many), flags,
/// first key, last key, step.
pub type CommandEntry = (&'static str, i64, &'static [&'static str], i64, i64, i64);

/// The commands this endpoint knows.
pub const TABLE: &[CommandEntry] = &[
    ("ping", -1, &["fast", "stale"], 0, 0, 0),
    ("echo", 2, &["fast"], 0, 0, 0),
    ("get", 2, &["readonly", "fast"], 1, 1, 1),
    ("set", -3, &["write", "denyoom"], 1, 1, 1),
    ("del", -2, &["write"], 1, -1, 1),
    ("exists", -2, &["readonly", "fast"], 1, -1, 1),
    ("mget", -2, &["readonly", "fast"], 1, -1, 1),
    ("dbsize", 1, &["readonly", "fast"], 0, 0, 0),
    ("info", -1, &["stale"], 0, 0, 0),
    ("role", 1, &["stale", "fast"], 0, 0, 0),
    ("select", 2, &["fast", "stale"], 0, 0, 0),
    ("client", -2, &["stale"], 0, 0, 0),
    ("hello", -1, &["fast", "stale"], 0, 0, 0),
    ("auth", -2, &["fast", "stale", "no-auth"], 0, 0, 0),
    ("command", -1, &["stale"], 0, 0, 0),
    ("quit", -1, &["fast", "stale"], 0, 0, 0),
    ("sentinel", -2, &["stale"], 0, 0, 0),
    ("config", -2, &["stale"], 0, 0, 0),
];

/// Which commands a connection accepts: the data endpoint, or the Sentinel endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Data,
    Sentinel,
}

/// Parses one request. `args[0]` is the command name, in any case.
pub fn parse(args: &[Bytes], endpoint: Endpoint) -> Result<Command, Reply> {
    let Some(name) = args.first() else {
        // An empty array or an empty inline line: Redis ignores it; answer nothing useful.
        return Err(Reply::error("ERR empty command"));
    };
    let lower = name.to_ascii_lowercase();
    let rest = &args[1..];
    let allowed = match endpoint {
        Endpoint::Data => lower.as_slice() != b"sentinel",
        Endpoint::Sentinel => matches!(
            lower.as_slice(),
            b"ping" | b"echo" | b"sentinel" | b"client" | b"hello" | b"auth" | b"command" | b"quit" | b"role" | b"info"
        ),
    };
    if !allowed {
        return Err(unknown_command(name, rest));
    }
    let arity = |ok: bool| if ok { Ok(()) } else { Err(wrong_arity(&lower)) };
    match lower.as_slice() {
        b"ping" => {
            arity(rest.len() <= 1)?;
            Ok(Command::Ping(rest.first().cloned()))
        }
        b"echo" => {
            arity(rest.len() == 1)?;
            Ok(Command::Echo(rest[0].clone()))
        }
        b"get" => {
            arity(rest.len() == 1)?;
            Ok(Command::Get(key(&rest[0])?))
        }
        b"set" => {
            arity(rest.len() >= 2)?;
            if let Some(option) = rest.get(2) {
                return Err(set_option(option));
            }
            let value = Value::new(rest[1].clone()).map_err(|e| Reply::error(format!("ERR {e}")))?;
            Ok(Command::Set(key(&rest[0])?, value))
        }
        b"del" | b"unlink" if !rest.is_empty() => Ok(Command::Del(keys(rest)?)),
        b"exists" if !rest.is_empty() => Ok(Command::Exists(keys(rest)?)),
        b"mget" if !rest.is_empty() => Ok(Command::MGet(keys(rest)?)),
        b"del" | b"unlink" | b"exists" | b"mget" => Err(wrong_arity(&lower)),
        b"mset" | b"msetnx" => Err(Reply::error(format!(
            "ERR {} is not supported: writes to several keys are not atomic in this store; use one SET per key",
            String::from_utf8_lossy(&lower).to_uppercase()
        ))),
        b"dbsize" => {
            arity(rest.is_empty())?;
            Ok(Command::DbSize)
        }
        b"info" => Ok(Command::Info(rest.iter().map(|s| String::from_utf8_lossy(s).to_ascii_lowercase()).collect())),
        b"role" => {
            arity(rest.is_empty())?;
            Ok(Command::Role)
        }
        b"select" => {
            arity(rest.len() == 1)?;
            match integer(&rest[0]) {
                Some(0) => Ok(Command::Select),
                Some(_) => Err(Reply::error("ERR DB index is out of range")),
                None => Err(Reply::error("ERR value is not an integer or out of range")),
            }
        }
        b"client" => client(rest),
        b"hello" => hello(rest),
        b"command" => match rest.first().map(|s| s.to_ascii_lowercase()) {
            None => Ok(Command::Command(CommandInfo::List)),
            Some(sub) if sub == b"count" => Ok(Command::Command(CommandInfo::Count)),
            Some(sub) if sub == b"docs" => Ok(Command::Command(CommandInfo::Docs)),
            Some(sub) if sub == b"info" => Ok(Command::Command(CommandInfo::List)),
            Some(sub) => Err(unknown_subcommand(&sub, "COMMAND")),
        },
        b"quit" => Ok(Command::Quit),
        b"auth" => match rest {
            [] => Err(wrong_arity(b"auth")),
            [password] => Ok(Command::Auth(None, password.clone())),
            [user, password] => Ok(Command::Auth(Some(user.clone()), password.clone())),
            _ => Err(Reply::error("ERR syntax error")),
        },
        b"config" => match rest.first().map(|s| s.to_ascii_lowercase()) {
            Some(sub) if sub == b"get" && rest.len() >= 2 => Ok(Command::ConfigGet(rest[1..].to_vec())),
            Some(sub) if sub == b"get" => Err(Reply::error("ERR wrong number of arguments for 'config|get' command")),
            Some(sub) => Err(unknown_subcommand(&sub, "CONFIG")),
            None => Err(wrong_arity(b"config")),
        },
        b"sentinel" => sentinel(rest),
        _ => Err(unknown_command(name, rest)),
    }
}

fn client(rest: &[Bytes]) -> Result<Command, Reply> {
    let Some(sub) = rest.first().map(|s| s.to_ascii_lowercase()) else {
        return Err(wrong_arity(b"client"));
    };
    let args = &rest[1..];
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(Reply::error(format!(
                "ERR wrong number of arguments for 'client|{}' command",
                String::from_utf8_lossy(&sub)
            )))
        }
    };
    match sub.as_slice() {
        b"setname" => {
            arity(args.len() == 1)?;
            if args[0].iter().any(|&b| b <= b' ' || b > b'~') {
                return Err(Reply::error("ERR Client names cannot contain spaces, newlines or special characters."));
            }
            Ok(Command::ClientSetName(args[0].clone()))
        }
        b"getname" => {
            arity(args.is_empty())?;
            Ok(Command::ClientGetName)
        }
        b"id" => {
            arity(args.is_empty())?;
            Ok(Command::ClientId)
        }
        b"setinfo" => {
            arity(args.len() == 2)?;
            Ok(Command::ClientOk)
        }
        _ => Err(unknown_subcommand(&sub, "CLIENT")),
    }
}

fn hello(rest: &[Bytes]) -> Result<Command, Reply> {
    if let Some(version) = rest.first() {
        match integer(version) {
            Some(2) => {}
            Some(_) => return Err(Reply::error("NOPROTO unsupported protocol version")),
            None => return Err(Reply::error("ERR Protocol version is not an integer or out of range")),
        }
    }
    // HELLO 2 AUTH user pass / SETNAME name (the name is accepted and not kept).
    let mut auth = None;
    let mut options = rest.iter().skip(1);
    while let Some(option) = options.next() {
        match option.to_ascii_lowercase().as_slice() {
            b"auth" => {
                let (Some(user), Some(password)) = (options.next(), options.next()) else {
                    return Err(Reply::error("ERR Syntax error in HELLO option 'auth'"));
                };
                auth = Some((user.clone(), password.clone()));
            }
            b"setname" => {
                if options.next().is_none() {
                    return Err(Reply::error("ERR Syntax error in HELLO option 'setname'"));
                }
            }
            _ => {
                return Err(Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(option)
                )))
            }
        }
    }
    Ok(Command::Hello(auth))
}

fn sentinel(rest: &[Bytes]) -> Result<Command, Reply> {
    let Some(sub) = rest.first().map(|s| s.to_ascii_lowercase()) else {
        return Err(wrong_arity(b"sentinel"));
    };
    let name = || {
        rest.get(1).cloned().ok_or_else(|| {
            Reply::error(format!(
                "ERR wrong number of arguments for 'sentinel|{}' command",
                String::from_utf8_lossy(&sub)
            ))
        })
    };
    match sub.as_slice() {
        b"get-master-addr-by-name" => Ok(SentinelCommand::GetMasterAddrByName(name()?)),
        b"masters" => Ok(SentinelCommand::Masters),
        b"master" => Ok(SentinelCommand::Master(name()?)),
        b"sentinels" => Ok(SentinelCommand::Sentinels(name()?)),
        b"replicas" | b"slaves" => Ok(SentinelCommand::Replicas(name()?)),
        _ => Err(unknown_subcommand(&sub, "SENTINEL")),
    }
    .map(Command::Sentinel)
}

fn integer(raw: &[u8]) -> Option<i64> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

fn key(raw: &Bytes) -> Result<Key, Reply> {
    Key::new(raw.clone()).map_err(|e| Reply::error(format!("ERR {e}")))
}

fn keys(raw: &[Bytes]) -> Result<Vec<Key>, Reply> {
    raw.iter().map(key).collect()
}

fn set_option(option: &Bytes) -> Reply {
    let upper = String::from_utf8_lossy(option).to_ascii_uppercase();
    let why = match upper.as_str() {
        "NX" | "XX" | "GET" => "it needs an atomic read-modify-write, which this store does not offer",
        "EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL" | "PERSIST" => "keys do not expire in this store",
        _ => return Reply::error("ERR syntax error"),
    };
    Reply::error(format!("ERR SET option {upper} is not supported: {why}"))
}

fn wrong_arity(lower: &[u8]) -> Reply {
    Reply::error(format!("ERR wrong number of arguments for '{}' command", String::from_utf8_lossy(lower)))
}

/// Redis's wording: `ERR unknown command 'foo', with args beginning with: 'a' 'b' `.
pub fn unknown_command(name: &[u8], rest: &[Bytes]) -> Reply {
    let mut text = format!("ERR unknown command '{}', with args beginning with: ", clip(name));
    for arg in rest.iter().take(20) {
        text.push_str(&format!("'{}' ", clip(arg)));
    }
    Reply::error(text)
}

fn unknown_subcommand(sub: &[u8], command: &str) -> Reply {
    Reply::error(format!("ERR unknown subcommand '{}'. Try {command} HELP.", clip(sub)))
}

/// An argument as an error message may quote it: at most 128 bytes, no line breaks.
fn clip(raw: &[u8]) -> String {
    let cut = &raw[..raw.len().min(128)];
    String::from_utf8_lossy(cut).chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
    }

    fn data(words: &[&str]) -> Result<Command, Reply> {
        parse(&args(words), Endpoint::Data)
    }

    fn error_text(result: Result<Command, Reply>) -> String {
        match result {
            Err(Reply::Error(text)) => text,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn names_are_case_insensitive() {
        assert_eq!(data(&["gEt", "k"]), Ok(Command::Get(Key::new("k").unwrap())));
        assert_eq!(data(&["PING"]), Ok(Command::Ping(None)));
    }

    #[test]
    fn unknown_commands_are_worded_as_redis_words_them() {
        assert_eq!(
            error_text(data(&["foo", "a", "b"])),
            "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
        );
        assert_eq!(error_text(data(&["foo"])), "ERR unknown command 'foo', with args beginning with: ");
        assert!(error_text(data(&["sentinel", "masters"])).starts_with("ERR unknown command 'sentinel'"));
        assert!(error_text(parse(&args(&["get", "k"]), Endpoint::Sentinel)).starts_with("ERR unknown command 'get'"));
    }

    #[test]
    fn set_options_are_refused_never_ignored() {
        for option in ["NX", "xx", "GET", "EX", "px", "KEEPTTL"] {
            let text = error_text(data(&["set", "k", "v", option, "10"]));
            assert!(text.contains("not supported"), "{option}: {text}");
        }
        assert_eq!(error_text(data(&["set", "k", "v", "bogus"])), "ERR syntax error");
    }

    #[test]
    fn arity_and_limits() {
        assert_eq!(error_text(data(&["get"])), "ERR wrong number of arguments for 'get' command");
        assert_eq!(error_text(data(&["del"])), "ERR wrong number of arguments for 'del' command");
        assert!(error_text(data(&["get", ""])).contains("key"));
        let long = "k".repeat(net::limits::MAX_KEY_LEN + 1);
        assert!(error_text(data(&["get", &long])).contains("over the limit"));
        assert!(error_text(data(&["mset", "a", "1"])).contains("not atomic"));
    }

    #[test]
    fn select_hello_and_client() {
        assert_eq!(data(&["select", "0"]), Ok(Command::Select));
        assert_eq!(error_text(data(&["select", "1"])), "ERR DB index is out of range");
        assert_eq!(data(&["hello", "2", "setname", "x"]), Ok(Command::Hello(None)));
        assert_eq!(
            data(&["hello", "2", "auth", "default", "pw"]),
            Ok(Command::Hello(Some((Bytes::from("default"), Bytes::from("pw")))))
        );
        assert_eq!(data(&["auth", "pw"]), Ok(Command::Auth(None, Bytes::from("pw"))));
        assert_eq!(data(&["AUTH", "u", "pw"]), Ok(Command::Auth(Some(Bytes::from("u")), Bytes::from("pw"))));
        assert_eq!(error_text(data(&["auth", "a", "b", "c"])), "ERR syntax error");
        assert_eq!(error_text(data(&["hello", "3"])), "NOPROTO unsupported protocol version");
        assert_eq!(data(&["client", "setinfo", "lib-name", "redis-py"]), Ok(Command::ClientOk));
        assert!(error_text(data(&["client", "setname", "a b"])).contains("spaces"));
    }

    #[test]
    fn sentinel_commands_on_the_sentinel_endpoint() {
        let parsed = parse(&args(&["SENTINEL", "get-master-addr-by-name", "mymaster"]), Endpoint::Sentinel);
        assert_eq!(parsed, Ok(Command::Sentinel(SentinelCommand::GetMasterAddrByName(Bytes::from("mymaster")))));
        assert!(parse(&args(&["sentinel", "bogus"]), Endpoint::Sentinel).is_err());
    }
}
