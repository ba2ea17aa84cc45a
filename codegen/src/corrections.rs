//! Where the spec's argument types are narrower than what the server accepts. Each entry is
//! printed by codegen so the list stays visible.

use crate::model::{Arg, Command, Kind};

/// (command, argument, corrected type, why).
const CORRECTIONS: &[(&str, &str, Kind, &str)] = &[(
    "ZINCRBY",
    "increment",
    Kind::Double,
    "the spec says integer; the server takes a float increment (ZINCRBY z 2.5 m)",
)];

/// Which of a command's methods a reply correction is for.
#[derive(Clone, Copy, PartialEq)]
enum Which {
    /// The plain method only (its options can change the reply's shape).
    Plain,
    /// The `_with` method only.
    With,
    /// Both.
    Both,
}
use Which::{Both, Plain, With};

/// Where the reply schema's type is looser than what the reply is: (command, which method,
/// the type, why). For a reply typed by the binding (see `binding.rs`) the type is what the
/// docs name as its natural type.
const REPLIES: &[(&str, Which, &str, &str)] = &[
    (
        "SET",
        Plain,
        "()",
        "SET without NX, XX or GET always answers OK",
    ),
    (
        "INCRBYFLOAT",
        Both,
        "f64",
        "the spec says string: a float as text, which f64 reads",
    ),
    (
        "HINCRBYFLOAT",
        Both,
        "f64",
        "the spec says string: a float as text, which f64 reads",
    ),
    (
        "GEODIST",
        Both,
        "Option<f64>",
        "the spec says string or nil: a distance as text",
    ),
    (
        "HEXPIRE",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HPEXPIRE",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HEXPIREAT",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HPEXPIREAT",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HPERSIST",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, -1 no expiry, 1 persisted)",
    ),
    (
        "HTTL",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HPTTL",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HEXPIRETIME",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HPEXPIRETIME",
        Both,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HGETEX",
        Both,
        "Vec<Option<Bytes>>",
        "Valkey's dump has no schema: one value per field, nil where missing",
    ),
    (
        "HGETDEL",
        Both,
        "Vec<Option<Bytes>>",
        "Valkey's dump has no schema: one value per field, nil where missing",
    ),
    (
        "HSETEX",
        Both,
        "i64",
        "Valkey's dump has no schema: 1 when the fields were set, 0 when a condition stopped it",
    ),
    (
        "MSETEX",
        Both,
        "i64",
        "Valkey's dump has no schema: 1 when the keys were set, 0 when a condition stopped it",
    ),
    (
        "DELIFEQ",
        Both,
        "i64",
        "Valkey's dump has no schema: 1 when the key was deleted, 0 otherwise",
    ),
    (
        "ZRANK",
        Plain,
        "Option<i64>",
        "without WITHSCORE: the rank, or nil",
    ),
    (
        "ZREVRANK",
        Plain,
        "Option<i64>",
        "without WITHSCORE: the rank, or nil",
    ),
    (
        "SCAN",
        Both,
        "(u64, Vec<Bytes>)",
        "a cursor and a page of keys",
    ),
    (
        "SSCAN",
        Both,
        "(u64, Vec<Bytes>)",
        "a cursor and a page of members",
    ),
    (
        "HSCAN",
        Both,
        "(u64, Vec<(Bytes, Bytes)>)",
        "a cursor and a page of fields and values (NOVALUES: `(u64, Vec<Bytes>)`)",
    ),
    (
        "ZSCAN",
        Both,
        "(u64, Vec<(Bytes, f64)>)",
        "a cursor and a page of members and scores",
    ),
    (
        "HGETALL",
        Both,
        "HashMap<Bytes, Bytes>",
        "a map in RESP3, pairs in RESP2: both read as a map",
    ),
    (
        "BLPOP",
        Both,
        "Option<(Bytes, Bytes)>",
        "the list and the element, or nil on timeout",
    ),
    (
        "BRPOP",
        Both,
        "Option<(Bytes, Bytes)>",
        "the list and the element, or nil on timeout",
    ),
    (
        "BZPOPMIN",
        Both,
        "Option<(Bytes, Bytes, f64)>",
        "the key, the member and its score, or nil on timeout",
    ),
    (
        "BZPOPMAX",
        Both,
        "Option<(Bytes, Bytes, f64)>",
        "the key, the member and its score, or nil on timeout",
    ),
    (
        "LMPOP",
        Both,
        "Option<(Bytes, Vec<Bytes>)>",
        "the list and the elements, or nil",
    ),
    (
        "BLMPOP",
        Both,
        "Option<(Bytes, Vec<Bytes>)>",
        "the list and the elements, or nil on timeout",
    ),
    (
        "ZMPOP",
        Both,
        "Option<(Bytes, Vec<(Bytes, f64)>)>",
        "the key and its members with scores, or nil",
    ),
    (
        "BZMPOP",
        Both,
        "Option<(Bytes, Vec<(Bytes, f64)>)>",
        "the key and its members with scores, or nil on timeout",
    ),
    (
        "ZPOPMIN",
        Both,
        "Vec<(Bytes, f64)>",
        "members with their scores",
    ),
    (
        "ZPOPMAX",
        Both,
        "Vec<(Bytes, f64)>",
        "members with their scores",
    ),
    (
        "GEOPOS",
        Both,
        "Vec<Option<(f64, f64)>>",
        "longitude and latitude per member, nil where missing",
    ),
    (
        "GEOSEARCH",
        Both,
        "Vec<GeoMember>",
        "names, with what WITHDIST, WITHHASH and WITHCOORD add",
    ),
    (
        "GEORADIUS",
        Both,
        "Vec<GeoMember>",
        "names, with what WITHDIST, WITHHASH and WITHCOORD add (a count with STORE)",
    ),
    (
        "GEORADIUS_RO",
        Both,
        "Vec<GeoMember>",
        "names, with what WITHDIST, WITHHASH and WITHCOORD add",
    ),
    (
        "GEORADIUSBYMEMBER",
        Both,
        "Vec<GeoMember>",
        "names, with what WITHDIST, WITHHASH and WITHCOORD add (a count with STORE)",
    ),
    (
        "GEORADIUSBYMEMBER_RO",
        Both,
        "Vec<GeoMember>",
        "names, with what WITHDIST, WITHHASH and WITHCOORD add",
    ),
    (
        "XRANGE",
        Both,
        "Vec<StreamEntry>",
        "entries: an ID and field-value pairs each",
    ),
    (
        "XREVRANGE",
        Both,
        "Vec<StreamEntry>",
        "entries: an ID and field-value pairs each",
    ),
    (
        "XCLAIM",
        Both,
        "Vec<StreamEntry>",
        "the claimed entries (JUSTID: `Vec<Bytes>`)",
    ),
    (
        "XAUTOCLAIM",
        Both,
        "(Bytes, Vec<StreamEntry>, Vec<Bytes>)",
        "the next start ID, the claimed entries, the IDs no longer in the stream",
    ),
    (
        "XREAD",
        Both,
        "Option<Vec<(Bytes, Vec<StreamEntry>)>>",
        "each stream's name and new entries (a map in RESP3), or nil",
    ),
    (
        "XREADGROUP",
        Both,
        "Option<Vec<(Bytes, Vec<StreamEntry>)>>",
        "each stream's name and entries (a map in RESP3), or nil",
    ),
    (
        "SORT",
        Plain,
        "Vec<Option<Bytes>>",
        "without STORE: the sorted elements (nil for a missing GET pattern)",
    ),
    (
        "LPOP",
        Plain,
        "Option<Bytes>",
        "without a count: one element or nil",
    ),
    (
        "LPOP",
        With,
        "Option<Vec<Bytes>>",
        "with a count: the elements, or nil",
    ),
    (
        "RPOP",
        Plain,
        "Option<Bytes>",
        "without a count: one element or nil",
    ),
    (
        "RPOP",
        With,
        "Option<Vec<Bytes>>",
        "with a count: the elements, or nil",
    ),
    (
        "SPOP",
        Plain,
        "Option<Bytes>",
        "without a count: one member or nil",
    ),
    ("SPOP", With, "Vec<Bytes>", "with a count: the members"),
    (
        "SRANDMEMBER",
        Plain,
        "Option<Bytes>",
        "without a count: one member or nil",
    ),
    (
        "SRANDMEMBER",
        With,
        "Vec<Bytes>",
        "with a count: the members",
    ),
    (
        "HRANDFIELD",
        Plain,
        "Option<Bytes>",
        "without a count: one field or nil",
    ),
    (
        "HRANDFIELD",
        With,
        "Vec<Bytes>",
        "with a count: the fields (WITHVALUES: `Vec<(Bytes, Bytes)>`)",
    ),
    (
        "ZRANDMEMBER",
        Plain,
        "Option<Bytes>",
        "without a count: one member or nil",
    ),
    (
        "ZRANDMEMBER",
        With,
        "Vec<Bytes>",
        "with a count: the members (WITHSCORES: `Vec<(Bytes, f64)>`)",
    ),
    (
        "ZADD",
        Plain,
        "i64",
        "without INCR: how many members were added",
    ),
    (
        "LPOS",
        Plain,
        "Option<i64>",
        "without COUNT: the index, or nil",
    ),
    (
        "ZDIFF",
        Plain,
        "Vec<Bytes>",
        "without WITHSCORES: the members",
    ),
    (
        "ZINTER",
        Plain,
        "Vec<Bytes>",
        "without WITHSCORES: the members",
    ),
    (
        "ZUNION",
        Plain,
        "Vec<Bytes>",
        "without WITHSCORES: the members",
    ),
    (
        "ZREVRANGE",
        Plain,
        "Vec<Bytes>",
        "without WITHSCORES: the members",
    ),
    (
        "LCS",
        Plain,
        "Bytes",
        "without LEN or IDX: the common subsequence",
    ),
    (
        "CONFIG GET",
        Both,
        "std::collections::HashMap<String, Bytes>",
        "parameter names and values (a map in RESP3, pairs in RESP2)",
    ),
    (
        "PUBSUB NUMSUB",
        Both,
        "Vec<(Bytes, i64)>",
        "each channel with its subscriber count",
    ),
    (
        "PUBSUB SHARDNUMSUB",
        Both,
        "Vec<(Bytes, i64)>",
        "each shard channel with its subscriber count",
    ),
    (
        "MEMORY STATS",
        Both,
        "std::collections::HashMap<String, Value>",
        "named figures whose set varies by server version",
    ),
    (
        "XINFO STREAM",
        Both,
        "std::collections::HashMap<String, Value>",
        "named fields (length, groups, first-entry...) whose values differ in kind",
    ),
    (
        "XINFO GROUPS",
        Both,
        "Vec<std::collections::HashMap<String, Value>>",
        "one map of named fields per group",
    ),
    (
        "XINFO CONSUMERS",
        Both,
        "Vec<std::collections::HashMap<String, Value>>",
        "one map of named fields per consumer",
    ),
    (
        "XPENDING",
        Plain,
        "(i64, Option<Bytes>, Option<Bytes>, Option<Vec<(Bytes, i64)>>)",
        "the summary form: count, smallest and greatest ID, entries per consumer",
    ),
    (
        "XPENDING",
        With,
        "Vec<(Bytes, Bytes, i64, i64)>",
        "the extended form: ID, consumer, idle ms, deliveries per entry",
    ),
    (
        "FUNCTION LIST",
        Both,
        "Vec<std::collections::HashMap<String, Value>>",
        "one map per library (name, engine, functions...)",
    ),
    (
        "CLIENT TRACKINGINFO",
        Both,
        "std::collections::HashMap<String, Value>",
        "flags, redirect and prefixes",
    ),
    (
        "ACL GETUSER",
        Both,
        "Option<std::collections::HashMap<String, Value>>",
        "the user's rules by name, or nil",
    ),
    (
        "COMMAND DOCS",
        Both,
        "std::collections::HashMap<String, Value>",
        "each command's docs by name",
    ),
    (
        "LATENCY HISTORY",
        Both,
        "Vec<(i64, i64)>",
        "timestamp and latency per sample",
    ),
    (
        "CLUSTER SHARDS",
        Both,
        "Vec<std::collections::HashMap<String, Value>>",
        "one map per shard (slots, nodes)",
    ),
    (
        "CLUSTER LINKS",
        Both,
        "Vec<std::collections::HashMap<String, Value>>",
        "one map per link to a peer",
    ),
    (
        "FUNCTION STATS",
        Both,
        "std::collections::HashMap<String, Value>",
        "the running script and each engine's figures",
    ),
    (
        "ACL LOG",
        Plain,
        "Vec<std::collections::HashMap<String, Value>>",
        "without RESET: one map per entry",
    ),
    (
        "COMMAND GETKEYSANDFLAGS",
        Both,
        "Vec<(Bytes, Vec<Bytes>)>",
        "each key with its flags",
    ),
    ("COMMANDLOG HELP", Both, "Vec<Bytes>", "lines of help"),
    ("COMMANDLOG LEN", Both, "i64", "the number of entries"),
    ("COMMANDLOG RESET", Both, "()", "OK"),
    (
        "LATENCY HISTOGRAM",
        Both,
        "std::collections::HashMap<String, Value>",
        "each command's calls and histogram",
    ),
    (
        "MODULE LIST",
        Both,
        "Vec<std::collections::HashMap<String, Value>>",
        "one map per module (name, ver, ...)",
    ),
    (
        "SLOWLOG GET",
        Both,
        "Vec<(i64, i64, i64, Vec<Bytes>, Bytes, Bytes)>",
        "each entry: ID, Unix time, microseconds, arguments, client address, client name",
    ),
    (
        "HELLO",
        Both,
        "std::collections::HashMap<String, Value>",
        "the server's properties (server, version, proto, id, mode, role, modules)",
    ),
    (
        "EXEC",
        Both,
        "Option<Vec<Value>>",
        "each queued command's reply, or nil when a watched key changed",
    ),
    (
        "SENTINEL MASTERS",
        Both,
        "Vec<std::collections::HashMap<String, String>>",
        "one map of state per monitored master",
    ),
    (
        "SENTINEL PRIMARIES",
        Both,
        "Vec<std::collections::HashMap<String, String>>",
        "one map of state per monitored primary",
    ),
    (
        "SENTINEL MASTER",
        Both,
        "std::collections::HashMap<String, String>",
        "the master's state",
    ),
    (
        "SENTINEL PRIMARY",
        Both,
        "std::collections::HashMap<String, String>",
        "the primary's state",
    ),
    (
        "SENTINEL REPLICAS",
        Both,
        "Vec<std::collections::HashMap<String, String>>",
        "one map of state per replica",
    ),
    (
        "SENTINEL SLAVES",
        Both,
        "Vec<std::collections::HashMap<String, String>>",
        "one map of state per replica",
    ),
    (
        "SENTINEL SENTINELS",
        Both,
        "Vec<std::collections::HashMap<String, String>>",
        "one map of state per other sentinel",
    ),
    (
        "SENTINEL GET-MASTER-ADDR-BY-NAME",
        Both,
        "Option<(String, u16)>",
        "host and port, or nil for an unknown name",
    ),
    (
        "SENTINEL GET-PRIMARY-ADDR-BY-NAME",
        Both,
        "Option<(String, u16)>",
        "host and port, or nil for an unknown name",
    ),
    (
        "ACL DRYRUN",
        Both,
        "Bytes",
        "OK, or the reason the user may not run the command",
    ),
    (
        "ZRANGE",
        Plain,
        "Vec<Bytes>",
        "without WITHSCORES: the members",
    ),
    (
        "ZRANGEBYSCORE",
        Plain,
        "Vec<Bytes>",
        "without WITHSCORES: the members",
    ),
    (
        "WAITAOF",
        Both,
        "(i64, i64)",
        "how many local and replica AOFs have the writes",
    ),
    (
        "MIGRATE",
        Both,
        "Bytes",
        "OK, or NOKEY when no key was found",
    ),
    (
        "ZREVRANGEBYSCORE",
        Plain,
        "Vec<Bytes>",
        "without WITHSCORES: the members",
    ),
];

/// The corrected reply type of `command`'s plain method (`plain`) or `_with` method.
pub fn reply(command: &str, plain: bool) -> Option<&'static str> {
    let wanted = if plain { Plain } else { With };
    REPLIES
        .iter()
        .find(|(name, which, _, _)| *name == command && (*which == Both || *which == wanted))
        .map(|(_, _, ty, _)| *ty)
}

pub fn apply(commands: &mut [Command]) -> Vec<String> {
    let mut applied = Vec::new();
    for (name, which, ty, why) in REPLIES {
        if commands.iter().any(|c| c.name == *name) {
            let which = match which {
                Plain => "plain method's ",
                With => "_with method's ",
                Both => "",
            };
            applied.push(format!("{name} {which}reply {ty}: {why}"));
        }
    }
    for (name, arg, kind, why) in CORRECTIONS {
        if let Some(c) = commands.iter_mut().find(|c| c.name == *name)
            && let Some(a) = find(&mut c.args, arg)
        {
            a.kind = *kind;
            applied.push(format!("{name} {arg}: {why}"));
        }
    }
    applied
}

fn find<'a>(args: &'a mut [Arg], name: &str) -> Option<&'a mut Arg> {
    for a in args {
        if a.name == name {
            return Some(a);
        }
        if let Some(found) = find(&mut a.children, name) {
            return Some(found);
        }
    }
    None
}

/// Why a command's reply is still read as an untyped `Value`: codegen refuses a method
/// whose reply is `Value` without a line here.
const VALUE_KEPT: &[(&str, &str)] = &[
    (
        "LATENCY LATEST",
        "Redis answers four fields per event, Valkey 9 more",
    ),
    (
        "ZREVRANGEBYSCORE",
        "with WITHSCORES members and scores (bind `Vec<(Bytes, f64)>`)",
    ),
    (
        "CLUSTER MIGRATESLOTS",
        "Valkey 9 only, and its dump has no reply schema",
    ),
    (
        "EVAL",
        "a script returns whatever it returns: bind the type it gives",
    ),
    (
        "EVALSHA",
        "a script returns whatever it returns: bind the type it gives",
    ),
    (
        "EVAL_RO",
        "a script returns whatever it returns: bind the type it gives",
    ),
    (
        "EVALSHA_RO",
        "a script returns whatever it returns: bind the type it gives",
    ),
    (
        "FCALL",
        "a function returns whatever it returns: bind the type it gives",
    ),
    (
        "FCALL_RO",
        "a function returns whatever it returns: bind the type it gives",
    ),
    ("LCS", "with LEN a number, with IDX a map of matches"),
    (
        "LPOS",
        "with COUNT a list of indexes, without it one index or nil",
    ),
    (
        "SORT",
        "with STORE a count, with GET patterns elements or nils",
    ),
    (
        "ZDIFF",
        "with WITHSCORES members and scores (bind `Vec<(Bytes, f64)>`)",
    ),
    (
        "ZINTER",
        "with WITHSCORES members and scores (bind `Vec<(Bytes, f64)>`)",
    ),
    (
        "ZUNION",
        "with WITHSCORES members and scores (bind `Vec<(Bytes, f64)>`)",
    ),
    (
        "ZRANGE",
        "with WITHSCORES members and scores (bind `Vec<(Bytes, f64)>`)",
    ),
    (
        "ZRANGEBYSCORE",
        "with WITHSCORES members and scores (bind `Vec<(Bytes, f64)>`)",
    ),
    (
        "ZREVRANGE",
        "with WITHSCORES members and scores (bind `Vec<(Bytes, f64)>`)",
    ),
    ("ZRANK", "with WITHSCORE the rank and the score"),
    ("ZREVRANK", "with WITHSCORE the rank and the score"),
    ("SET", "with NX or XX OK or nil, with GET the old value"),
    (
        "ZADD",
        "with INCR the new score (or nil), otherwise a count",
    ),
    ("ACL LOG", "with RESET OK, otherwise the entries"),
    (
        "CLIENT KILL",
        "the old form answers OK, the new form a count",
    ),
    (
        "CLIENT IMPORT-SOURCE",
        "Valkey 9 only, and its dump has no reply schema",
    ),
    (
        "CLUSTER CANCELSLOTMIGRATIONS",
        "Valkey 9 only, and its dump has no reply schema",
    ),
    (
        "CLUSTER GETSLOTMIGRATIONS",
        "Valkey 9 only, and its dump has no reply schema",
    ),
    (
        "CLUSTER FLUSHSLOT",
        "Valkey 9 only, and its dump has no reply schema",
    ),
    (
        "CLUSTER SLOT-STATS",
        "Valkey only, and its dump has no reply schema",
    ),
    (
        "CLUSTERSCAN",
        "Valkey 9 only, and its dump has no reply schema",
    ),
    (
        "COMMANDLOG GET",
        "Valkey only: entries whose fields depend on the log's type",
    ),
    (
        "CLUSTER SLOTS",
        "nested arrays whose node entries grew fields across versions; the cluster client reads it itself",
    ),
    (
        "COMMAND",
        "the command table, nested differently per version: `kermes::commands::commands()` has it parsed",
    ),
    (
        "COMMAND INFO",
        "the command table, nested differently per version: `kermes::commands::command_info` has it parsed",
    ),
    (
        "ROLE",
        "its shape depends on the role: master, replica or sentinel",
    ),
    (
        "MONITOR",
        "refused on a shared connection: `Client::monitor()` gives the lines as a stream",
    ),
    (
        "SUBSCRIBE",
        "refused on a shared connection: `Client::subscriber()` gives typed messages",
    ),
    (
        "PSUBSCRIBE",
        "refused on a shared connection: `Client::subscriber()` gives typed messages",
    ),
    (
        "SSUBSCRIBE",
        "refused on a shared connection: `Client::subscriber()` gives typed messages",
    ),
    (
        "UNSUBSCRIBE",
        "refused on a shared connection: `Client::subscriber()` gives typed messages",
    ),
    (
        "PUNSUBSCRIBE",
        "refused on a shared connection: `Client::subscriber()` gives typed messages",
    ),
    (
        "SUNSUBSCRIBE",
        "refused on a shared connection: `Client::subscriber()` gives typed messages",
    ),
    (
        "SENTINEL CONFIG",
        "sentinel internals whose shape depends on the arguments",
    ),
    (
        "SENTINEL DEBUG",
        "sentinel internals whose shape depends on the arguments",
    ),
    (
        "SENTINEL INFO-CACHE",
        "sentinel internals whose shape depends on the arguments",
    ),
    (
        "SENTINEL PENDING-SCRIPTS",
        "sentinel internals whose shape depends on the arguments",
    ),
    (
        "SENTINEL SIMULATE-FAILURE",
        "sentinel internals whose shape depends on the arguments",
    ),
    (
        "SENTINEL IS-MASTER-DOWN-BY-ADDR",
        "a sentinel-to-sentinel vote, not for clients",
    ),
    (
        "SENTINEL IS-PRIMARY-DOWN-BY-ADDR",
        "a sentinel-to-sentinel vote, not for clients",
    ),
];

/// The reason `command`'s reply stays `Value`, if one is written.
pub fn value_reason(command: &str) -> Option<&'static str> {
    VALUE_KEPT
        .iter()
        .find(|(name, _)| *name == command)
        .map(|(_, why)| *why)
}
