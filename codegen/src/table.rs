//! The command table: flags, routing and key positions of every command.

use std::fmt::Write;

use crate::model::{Begin, Command, Find};

/// Commands (or subcommands) that change the state of their connection for the commands
/// after them: refused on a shared connection, and undone (RESET and the handshake again)
/// before an exclusive connection returns to the pool.
pub const CONNECTION_STATE: &[&str] = &[
    "SELECT",
    "HELLO",
    "RESET",
    "QUIT",
    "AUTH",
    "ASKING",
    "READONLY",
    "READWRITE",
    "CLIENT SETNAME",
    "CLIENT SETINFO",
    "CLIENT TRACKING",
    "CLIENT CACHING",
    "CLIENT NO-EVICT",
    "CLIENT NO-TOUCH",
    "CLIENT IMPORT-SOURCE",
];

/// Optimistic transactions: exclusive connections only; undone with DISCARD and UNWATCH.
pub const TRANSACTION: &[&str] = &["WATCH", "UNWATCH", "MULTI", "EXEC", "DISCARD"];

/// Commands that put a connection in pub/sub or MONITOR mode.
pub const PUBSUB_MODE: &[&str] = &[
    "SUBSCRIBE",
    "PSUBSCRIBE",
    "SSUBSCRIBE",
    "UNSUBSCRIBE",
    "PUNSUBSCRIBE",
    "SUNSUBSCRIBE",
    "MONITOR",
];

/// Commands after which the server sends no reply (or skips the next one): a client that
/// matches replies to requests cannot run them at all.
pub const NO_REPLY: &[&str] = &["CLIENT REPLY"];

/// Commands that block only with their BLOCK option; without it they are ordinary reads.
pub const BLOCK_OPTION: &[&str] = &["XREAD", "XREADGROUP"];

/// Every name the lists above hold must be in the spec, so a typo cannot route silently.
pub fn check_lists(all: &[Command]) -> Result<(), String> {
    for list in [
        CONNECTION_STATE,
        TRANSACTION,
        PUBSUB_MODE,
        NO_REPLY,
        BLOCK_OPTION,
    ] {
        for name in list {
            if !all.iter().any(|c| c.name == *name) {
                return Err(format!(
                    "routing lists name {name}, which the spec does not have"
                ));
            }
        }
    }
    Ok(())
}

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

/// The route of a command or subcommand; `container` when subcommands decide.
pub fn route(cmd: &Command, container: bool) -> &'static str {
    let name = cmd.name.as_str();
    if container {
        "Subcommand"
    } else if BLOCK_OPTION.contains(&name) {
        "BlockOption"
    } else if cmd.flags.iter().any(|f| f == "BLOCKING") {
        "Blocking"
    } else if PUBSUB_MODE.contains(&name) {
        "PubSub"
    } else if TRANSACTION.contains(&name) {
        "Transaction"
    } else if CONNECTION_STATE.contains(&name) {
        "ConnectionState"
    } else if NO_REPLY.contains(&name) {
        "NoReply"
    } else {
        "Shared"
    }
}

/// True when some command of `all` is a subcommand of `cmd`.
pub fn is_container(cmd: &Command, all: &[Command]) -> bool {
    cmd.container.is_none()
        && all
            .iter()
            .any(|s| s.container.as_deref() == Some(cmd.name.as_str()))
}

/// The cluster request and response policies of a command's tips, as the table's variants.
fn policies(cmd: &Command) -> (&'static str, &'static str) {
    let tip = |prefix: &str| {
        cmd.tips
            .iter()
            .find_map(|t| t.strip_prefix(prefix))
            .map(str::to_string)
    };
    let request = match tip("REQUEST_POLICY:").as_deref() {
        Some("ALL_NODES") => "AllNodes",
        Some("ALL_SHARDS") => "AllShards",
        Some("MULTI_SHARD") => "MultiShard",
        Some("SPECIAL") => "Special",
        _ => "Default",
    };
    let response = match tip("RESPONSE_POLICY:").as_deref() {
        Some("ONE_SUCCEEDED") => "OneSucceeded",
        Some("ALL_SUCCEEDED") => "AllSucceeded",
        Some("AGG_LOGICAL_AND") => "AggLogicalAnd",
        Some("AGG_LOGICAL_OR") => "AggLogicalOr",
        Some("AGG_MIN") => "AggMin",
        Some("AGG_MAX") => "AggMax",
        Some("AGG_SUM") => "AggSum",
        Some("SPECIAL") => "Special",
        _ => "Default",
    };
    (request, response)
}

/// True when a reply of `cmd` may be kept by a client-side cache: a read-only command of
/// exactly one key, the first argument (what the server's tracking records and
/// invalidates), whose reply depends on nothing but that key's value. Replies that change
/// with time or chance (TTL, PTTL, DUMP, SRANDMEMBER, HRANDFIELD, SCAN cursors, XPENDING's
/// idle times: the `NONDETERMINISTIC_OUTPUT` tip) and blocking reads are not.
fn cacheable(cmd: &Command) -> bool {
    let has = |flag: &str| cmd.flags.iter().any(|f| f == flag);
    let one_key_first = matches!(
        cmd.key_specs.as_slice(),
        [k] if matches!(k.begin, Begin::Index(1))
            && matches!(k.find, Find::Range { last_key: 0, .. })
    );
    cmd.container.is_none()
        && has("READONLY")
        && !has("BLOCKING")
        && one_key_first
        && !cmd.tips.iter().any(|t| t == "NONDETERMINISTIC_OUTPUT")
        && !TIME_DEPENDENT.contains(&cmd.name.as_str())
}

/// Replies that count down with time and whose spec entry lacks the
/// `NONDETERMINISTIC_OUTPUT` tip (Valkey's hash-field TTLs, as of 9.1).
const TIME_DEPENDENT: &[&str] = &["HTTL", "HPTTL"];

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
    out.push_str("use super::super::info::{BeginSearch, CommandFlags, CommandInfo, FindKeys, KeySpec, RequestPolicy, ResponsePolicy};\nuse crate::route::Route;\n\n");
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
            "    CommandInfo {{ name: {:?}, group: {:?}, since: {:?}, arity: {}, flags: {}, route: Route::{}, key_specs: &[{}], request_policy: RequestPolicy::{}, response_policy: ResponsePolicy::{}, has_method: {has_method}, cacheable: {} }},",
            c.name,
            c.group,
            c.since,
            c.arity,
            flag_expr(c),
            route(c, is_container(c, all)),
            specs.join(", "),
            policies(c).0,
            policies(c).1,
            cacheable(c)
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
