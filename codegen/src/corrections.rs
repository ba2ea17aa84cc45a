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

pub fn apply(commands: &mut [Command]) -> Vec<String> {
    let mut applied = Vec::new();
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
