//! The command table: flags, routing and key positions of every command.

use std::fmt::Write;

use crate::model::{Begin, Command, Find};

/// Commands that change the state of their connection: refused on a shared connection.
const CONNECTION_STATE: &[&str] = &[
    "WATCH", "UNWATCH", "MULTI", "EXEC", "DISCARD", "SELECT", "HELLO", "RESET", "QUIT", "AUTH",
];

/// Commands that put a connection in pub/sub or MONITOR mode.
const PUBSUB_MODE: &[&str] = &[
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
];

/// Flag names as the table's bit constants; the spec spells some differently from
/// `COMMAND INFO`.
pub const FLAGS: &[(&str, &[&str])] = &[
    ("WRITE", &["WRITE"]),
    ("READONLY", &["READONLY"]),
    ("DENYOOM", &["DENYOOM"]),
    ("MODULE", &["MODULE"]),
    ("ADMIN", &["ADMIN"]),
    ("PUBSUB", &["PUBSUB"]),
    ("NOSCRIPT", &["NOSCRIPT"]),
    ("BLOCKING", &["BLOCKING"]),
    ("LOADING", &["LOADING"]),
    ("STALE", &["STALE"]),
    ("SKIP_MONITOR", &["SKIP_MONITOR"]),
    ("SKIP_SLOWLOG", &["SKIP_SLOWLOG"]),
    ("ASKING", &["ASKING"]),
    ("FAST", &["FAST"]),
    ("NO_AUTH", &["NO_AUTH"]),
    ("MAY_REPLICATE", &["MAY_REPLICATE"]),
    ("SENTINEL", &["SENTINEL"]),
    ("ONLY_SENTINEL", &["ONLY_SENTINEL"]),
    ("NO_MANDATORY_KEYS", &["NO_MANDATORY_KEYS"]),
    ("PROTECTED", &["PROTECTED"]),
    ("MOVABLE_KEYS", &["MOVABLEKEYS", "MOVABLE_KEYS"]),
    ("NO_ASYNC_LOADING", &["NO_ASYNC_LOADING"]),
    ("NO_MULTI", &["NO_MULTI"]),
    ("ALLOW_BUSY", &["ALLOW_BUSY"]),
    ("TOUCHES_ARBITRARY_KEYS", &["TOUCHES_ARBITRARY_KEYS"]),
];

pub fn route(cmd: &Command) -> &'static str {
    let first = cmd.name.split(' ').next().unwrap_or_default();
    if cmd.flags.iter().any(|f| f == "BLOCKING") {
        "Blocking"
    } else if cmd.container.is_none() && PUBSUB_MODE.contains(&first) {
        "PubSub"
    } else if cmd.container.is_none() && CONNECTION_STATE.contains(&first) {
        "ConnectionState"
    } else {
        "Shared"
    }
}

fn flag_expr(cmd: &Command) -> String {
    let bits: Vec<String> = FLAGS
        .iter()
        .filter(|(_, spellings)| cmd.flags.iter().any(|f| spellings.contains(&f.as_str())))
        .map(|(name, _)| format!("CommandFlags::{name}.bits()"))
        .collect();
    if bits.is_empty() {
        "CommandFlags::empty()".into()
    } else {
        format!("CommandFlags::from_bits({})", bits.join(" | "))
    }
}

fn key_spec(k: &crate::model::KeySpec) -> String {
    let begin = match &k.begin {
        Begin::Index(i) => format!("BeginSearch::Index({i})"),
        Begin::Keyword {
            keyword,
            start_from,
        } => {
            format!("BeginSearch::Keyword {{ keyword: {keyword:?}, start_from: {start_from} }}")
        }
        Begin::Unknown => "BeginSearch::Unknown".into(),
    };
    let find = match &k.find {
        Find::Range {
            last_key,
            step,
            limit,
        } => {
            format!("FindKeys::Range {{ last_key: {last_key}, step: {step}, limit: {limit} }}")
        }
        Find::Keynum {
            key_num_idx,
            first_key,
            step,
        } => format!(
            "FindKeys::Keynum {{ key_num_idx: {key_num_idx}, first_key: {first_key}, step: {step} }}"
        ),
        Find::Unknown => "FindKeys::Unknown".into(),
    };
    format!(
        "KeySpec {{ begin: {begin}, find: {find}, flags: &{:?} }}",
        k.flags
    )
}

/// `all` is every command of the spec; `skipped` names those without a method, and why.
pub fn render(all: &[Command], skipped: &[(String, String)]) -> String {
    let mut out = String::new();
    out.push_str("use super::super::info::{BeginSearch, CommandFlags, CommandInfo, FindKeys, KeySpec};\nuse crate::cmd::Route;\n\n");
    out.push_str("impl CommandFlags {\n");
    for (i, (name, spellings)) in FLAGS.iter().enumerate() {
        let _ = writeln!(
            out,
            "    /// The `{}` flag.\n    pub const {name}: CommandFlags = CommandFlags(1 << {i});",
            spellings[0].to_ascii_lowercase()
        );
    }
    out.push_str("}\n\n");
    let _ = writeln!(
        out,
        "/// Every command of the spec ({} in all), sorted by name.\npub(crate) static COMMANDS: &[CommandInfo] = &[",
        all.len()
    );
    for c in all {
        let specs: Vec<String> = c.key_specs.iter().map(key_spec).collect();
        let has_method = !skipped.iter().any(|(n, _)| n == &c.name);
        let _ = writeln!(
            out,
            "    CommandInfo {{ name: {:?}, group: {:?}, since: {:?}, arity: {}, flags: {}, route: Route::{}, key_specs: &[{}], has_method: {has_method} }},",
            c.name,
            c.group,
            c.since,
            c.arity,
            flag_expr(c),
            route(c),
            specs.join(", ")
        );
    }
    out.push_str("];\n\n");
    out.push_str("/// The entry of a top-level command name, already upper case.\npub(crate) fn lookup_upper(name: &[u8]) -> Option<&'static CommandInfo> {\n    let i = match name {\n");
    for (i, c) in all.iter().enumerate() {
        if c.container.is_none() {
            let _ = writeln!(out, "        b{:?} => {i},", c.name);
        }
    }
    out.push_str("        _ => return None,\n    };\n    Some(&COMMANDS[i])\n}\n\n");
    let _ = writeln!(
        out,
        "/// Commands of the spec with no generated method, and why.\npub(crate) static SKIPPED: &[(&str, &str)] = &["
    );
    for (n, why) in skipped {
        let _ = writeln!(out, "    ({n:?}, {why:?}),");
    }
    out.push_str("];\n");
    out
}
