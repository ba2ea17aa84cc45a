//! Rewrites Carmine-style named variables (`_:name`) to `KEYS[i]` / `ARGV[i]`, only in Lua
//! code: never inside string literals or comments.

use crate::error::{Error, Result};

/// Replaces each `_:name` in code with `KEYS[i]` for the i-th (1-based) of `keys`, or
/// `ARGV[i]` for the i-th of `args`. A variable that names neither is an error. Where names
/// contain `-` (as Carmine allows), the longest known name wins (`_:n-1` is `_:n` minus one
/// when only `n` is known).
pub(crate) fn rewrite(src: &str, keys: &[&str], args: &[&str]) -> Result<String> {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len() + 16);
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => i = skip_short_string(b, i),
            b'[' if long_bracket_level(b, i).is_some() => i = skip_long(b, i),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i += 2;
                if long_bracket_level(b, i).is_some() {
                    i = skip_long(b, i);
                } else {
                    while i < b.len() && b[i] != b'\n' {
                        i += 1;
                    }
                }
            }
            b'_' if b.get(i + 1) == Some(&b':') && (i == 0 || !is_ident(b[i - 1])) => {
                let start = i + 2;
                let mut end = start;
                while end < b.len() && (is_ident(b[end]) || b[end] == b'-') {
                    end += 1;
                }
                let (name, replacement) =
                    resolve(&src[start..end], keys, args).ok_or_else(|| {
                        Error::config(format!(
                            "lua: `_:{}` names no key or argument (keys: {keys:?}, args: {args:?})",
                            &src[start..end]
                        ))
                    })?;
                out.push_str(&src[copied..i]);
                out.push_str(&replacement);
                i = start + name.len();
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&src[copied..]);
    Ok(out)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The longest prefix of `candidate`, cut at a `-`, that is a known name.
fn resolve<'a>(candidate: &'a str, keys: &[&str], args: &[&str]) -> Option<(&'a str, String)> {
    let mut name = candidate;
    loop {
        if let Some(i) = keys.iter().position(|k| *k == name) {
            return Some((name, format!("KEYS[{}]", i + 1)));
        }
        if let Some(i) = args.iter().position(|a| *a == name) {
            return Some((name, format!("ARGV[{}]", i + 1)));
        }
        name = &name[..name.rfind('-')?];
    }
}

/// Past a `'...'` or `"..."` literal starting at `i` (escapes honoured).
fn skip_short_string(b: &[u8], i: usize) -> usize {
    let quote = b[i];
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return j + 1,
            b'\n' => return j, // unfinished: Lua rejects it; leave the rest as code
            _ => j += 1,
        }
    }
    b.len()
}

/// `Some(level)` when a long bracket (`[[`, `[==[`) opens at `i`.
fn long_bracket_level(b: &[u8], i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'[') {
        return None;
    }
    let mut j = i + 1;
    while b.get(j) == Some(&b'=') {
        j += 1;
    }
    (b.get(j) == Some(&b'[')).then_some(j - i - 1)
}

/// Past the long string or comment body whose bracket opens at `i`.
fn skip_long(b: &[u8], i: usize) -> usize {
    let level = long_bracket_level(b, i).unwrap_or(0);
    let close: Vec<u8> = std::iter::once(b']')
        .chain(std::iter::repeat_n(b'=', level))
        .chain(std::iter::once(b']'))
        .collect();
    let body = i + level + 2;
    b[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map_or(b.len(), |p| body + p + close.len())
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn replaces_names_in_code_only() {
        let src = r#"
            -- comment mentions _:key
            local s = "_:key in a string" .. '_:arg too' .. [[_:key long]] .. [==[ _:arg ]==]
            --[[ block _:key ]]
            return redis.call('SET', _:key, _:arg) .. _:key
        "#;
        let out = rewrite(src, &["key"], &["arg"]).unwrap();
        assert!(
            out.contains("redis.call('SET', KEYS[1], ARGV[1]) .. KEYS[1]"),
            "{out}"
        );
        assert!(out.contains("\"_:key in a string\""));
        assert!(out.contains("'_:arg too'"));
        assert!(out.contains("[[_:key long]]"));
        assert!(out.contains("[==[ _:arg ]==]"));
        assert!(out.contains("-- comment mentions _:key"));
        assert!(out.contains("--[[ block _:key ]]"));
    }

    #[test]
    fn escaped_quotes_hyphenated_names_and_method_calls() {
        let out = rewrite(
            r#"local a = "x\"_:k" return _:my-key, _:n-1, obj_:m()"#,
            &["my-key"],
            &["n"],
        )
        .unwrap();
        assert_eq!(
            out,
            r#"local a = "x\"_:k" return KEYS[1], ARGV[1]-1, obj_:m()"#
        );
    }

    #[test]
    fn unknown_names_are_an_error() {
        let err = rewrite("return _:nope", &["key"], &[]).unwrap_err();
        assert!(
            err.is_config() && err.to_string().contains("_:nope"),
            "{err}"
        );
    }
}
