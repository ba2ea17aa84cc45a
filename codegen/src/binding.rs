//! Which replies the caller types by the binding (`let v: Option<String> = client.get("k")
//! .await?`), and which keep the one type their reply has.
//!
//! The rule, written once: a reply that carries what the user stored (values, members,
//! fields, keys, a script's result) has no single right Rust type, so the method takes it
//! from the binding, as redis-rs, fred and rustis do. A reply the server makes (a count, OK,
//! an ID, a help text, a statistics structure) keeps its type, so it needs no annotation
//! and a statement like `client.xadd(..).await?;` compiles as it is.

use crate::model::Command;

/// Groups whose commands read what the user stored.
const DATA_GROUPS: &[&str] = &[
    "string",
    "list",
    "set",
    "sorted_set",
    "hash",
    "generic",
    "geo",
    "stream",
    "bitmap",
    "hyperloglog",
];

/// Commands outside those groups whose reply is still the user's data.
const DATA_COMMANDS: &[(&str, &str)] = &[
    ("ECHO", "answers with the caller's message"),
    ("EVAL", "a script's result"),
    ("EVALSHA", "a script's result"),
    ("EVAL_RO", "a script's result"),
    ("EVALSHA_RO", "a script's result"),
    ("FCALL", "a function's result"),
    ("FCALL_RO", "a function's result"),
];

/// Commands of the data groups whose reply the server makes: (command, why).
const SERVER_MADE: &[(&str, &str)] = &[
    ("XADD", "the new entry's ID"),
    ("MIGRATE", "OK or NOKEY"),
    ("TYPE", "a type name"),
    ("DUMP", "a serialized payload for RESTORE, only ever bytes"),
    ("OBJECT ENCODING", "an encoding name"),
    ("ZADD", "a count, or the new score with INCR"),
    ("XINFO CONSUMERS", "a statistics structure"),
    ("XINFO GROUPS", "a statistics structure"),
    ("XINFO STREAM", "a statistics structure"),
    ("XPENDING", "a summary or a list of pending IDs"),
    (
        "SET",
        "OK, or with GET the old value: `set_with` keeps `Value` (read it with `to`)",
    ),
];

/// Whether `cmd`'s method (whose reply schema reads as `ty`) takes its reply type from the
/// caller.
pub fn binds(cmd: &Command, ty: &str) -> bool {
    let untyped = ["Bytes", "Value", "StreamEntry", "GeoMember"]
        .iter()
        .any(|t| ty.contains(t));
    let data = DATA_GROUPS.contains(&cmd.group.as_str())
        || DATA_COMMANDS.iter().any(|(n, _)| *n == cmd.name);
    untyped
        && data
        && !cmd.name.ends_with(" HELP")
        && !SERVER_MADE.iter().any(|(n, _)| *n == cmd.name)
}

/// The exceptions, one line each, for codegen's report.
pub fn report() -> Vec<String> {
    let mut out: Vec<String> = DATA_COMMANDS
        .iter()
        .map(|(n, why)| format!("{n} reply typed by the binding: {why}"))
        .collect();
    out.extend(
        SERVER_MADE
            .iter()
            .map(|(n, why)| format!("{n} reply keeps its type: {why}")),
    );
    out
}
