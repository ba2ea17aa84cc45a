//! Rust names from spec names.

use std::collections::HashSet;

const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut",
    "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield",
];

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect()
}

/// `snake_case`, with a trailing `_` on keywords and a leading `n` before a digit.
pub fn snake(s: &str) -> String {
    let mut out = words(s).join("_");
    if out.is_empty() {
        out = "arg".into();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'n');
    }
    if KEYWORDS.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// `CamelCase`.
pub fn camel(s: &str) -> String {
    let mut out: String = words(s)
        .iter()
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |f| {
                f.to_ascii_uppercase().to_string() + c.as_str()
            })
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'N');
    }
    out
}

/// Hands out names unique within one scope, suffixing repeats with 2, 3 ...
#[derive(Default)]
pub struct Names(HashSet<String>);

impl Names {
    pub fn with(taken: &[&str]) -> Self {
        Names(taken.iter().map(|s| s.to_string()).collect())
    }

    pub fn unique(&mut self, base: String) -> String {
        if self.0.insert(base.clone()) {
            return base;
        }
        let stem = base.trim_end_matches('_').to_string();
        (2..)
            .map(|n| format!("{stem}{n}"))
            .find(|c| self.0.insert(c.clone()))
            .unwrap_or(base)
    }
}

/// Text safe inside rustdoc: no accidental links or HTML tags.
pub fn doc_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace('<', "\\<")
        .replace('>', "\\>")
        .replace('\n', " ")
}

/// One enum per meaning across commands: where several arguments offer the same choices
/// (as the spec writes them), they share one enum with a name a reader would write, and the
/// token prefix its variants share is left out of the variant names (`GeoFrom::Member`, not
/// `GeosearchFrom::Frommember`). (choices, enum name, prefix dropped from variants).
pub const SHARED_ENUMS: &[(&str, &str, &str)] = &[
    ("LEFT|RIGHT", "Direction", ""),
    ("MIN|MAX", "MinMax", ""),
    ("BEFORE|AFTER", "Position", ""),
    ("m|km|ft|mi", "GeoUnit", ""),
    (
        "FROMMEMBER member|FROMLONLAT longitude latitude",
        "GeoFrom",
        "FROM",
    ),
    (
        "BYRADIUS radius <m | km | ft | mi>|BYBOX width height <m | km | ft | mi>",
        "GeoBy",
        "BY",
    ),
    ("BYTE|BIT", "BitUnit", ""),
    ("MAXLEN|MINID", "TrimStrategy", ""),
    ("=|~", "TrimOperator", ""),
    ("ON|OFF", "Switch", ""),
    ("YES|NO", "YesNo", ""),
    ("SLOW|LARGE-REQUEST|LARGE-REPLY", "CommandlogType", ""),
    ("id|$", "StreamId", ""),
    ("host port|NO ONE", "ReplicaOf", ""),
];

/// Variant names camel case would spell badly.
const VARIANT_WORDS: &[(&str, &str)] = &[("Lonlat", "LonLat")];

/// The shared enum for these choices, if there is one: (name, prefix to drop).
pub fn shared_enum(choices: &str) -> Option<(&'static str, &'static str)> {
    SHARED_ENUMS
        .iter()
        .find(|(c, _, _)| *c == choices)
        .map(|(_, name, prefix)| (*name, *prefix))
}

/// A variant's name from its label, with the enum's shared prefix dropped.
pub fn variant(label: &str, prefix: &str) -> String {
    let rest = label
        .strip_prefix(prefix)
        .filter(|r| !prefix.is_empty() && !r.is_empty())
        .unwrap_or(label);
    let name = camel(rest);
    VARIANT_WORDS
        .iter()
        .find(|(from, _)| *from == name)
        .map_or(name, |(_, to)| (*to).to_string())
}
