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

/// Where the reply schema's type is looser than what the reply is: (command, for the plain
/// method only (the `_with` one keeps the schema's type), the type, why).
const REPLIES: &[(&str, bool, &str, &str)] = &[
    (
        "SET",
        true,
        "()",
        "SET without NX, XX or GET always answers OK",
    ),
    (
        "INCRBYFLOAT",
        false,
        "f64",
        "the spec says string: a float as text, which f64 reads",
    ),
    (
        "HINCRBYFLOAT",
        false,
        "f64",
        "the spec says string: a float as text, which f64 reads",
    ),
    (
        "GEODIST",
        false,
        "Option<f64>",
        "the spec says string or nil: a distance as text",
    ),
    (
        "HEXPIRE",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HPEXPIRE",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HEXPIREAT",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HPEXPIREAT",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, 0 condition not met, 1 done, 2 deleted)",
    ),
    (
        "HPERSIST",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one code per field (-2 no such field, -1 no expiry, 1 persisted)",
    ),
    (
        "HTTL",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HPTTL",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HEXPIRETIME",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HPEXPIRETIME",
        false,
        "Vec<i64>",
        "Valkey's dump has no schema: one time per field (-2 no such field, -1 no expiry)",
    ),
    (
        "HGETEX",
        false,
        "Vec<Option<Bytes>>",
        "Valkey's dump has no schema: one value per field, nil where missing",
    ),
    (
        "HGETDEL",
        false,
        "Vec<Option<Bytes>>",
        "Valkey's dump has no schema: one value per field, nil where missing",
    ),
    (
        "HSETEX",
        false,
        "i64",
        "Valkey's dump has no schema: 1 when the fields were set, 0 when a condition stopped it",
    ),
    (
        "MSETEX",
        false,
        "i64",
        "Valkey's dump has no schema: 1 when the keys were set, 0 when a condition stopped it",
    ),
    (
        "DELIFEQ",
        false,
        "i64",
        "Valkey's dump has no schema: 1 when the key was deleted, 0 otherwise",
    ),
    (
        "ZRANK",
        true,
        "Option<i64>",
        "without WITHSCORE: the rank, or nil",
    ),
    (
        "ZREVRANK",
        true,
        "Option<i64>",
        "without WITHSCORE: the rank, or nil",
    ),
];

/// The corrected reply type of `command`'s plain method (`plain`) or `_with` method.
pub fn reply(command: &str, plain: bool) -> Option<&'static str> {
    REPLIES
        .iter()
        .find(|(name, plain_only, _, _)| *name == command && (plain || !plain_only))
        .map(|(_, _, ty, _)| *ty)
}

pub fn apply(commands: &mut [Command]) -> Vec<String> {
    let mut applied = Vec::new();
    for (name, plain_only, ty, why) in REPLIES {
        if commands.iter().any(|c| c.name == *name) {
            let which = if *plain_only { "plain method's " } else { "" };
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
