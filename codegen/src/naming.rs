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
