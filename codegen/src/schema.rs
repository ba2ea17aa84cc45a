//! Reply schemas: the default Rust type of a reply, and its description for the docs.

use serde_json::Value as Json;

/// The reply type when the schema makes one obvious; `Value` otherwise.
pub fn reply_type(schema: Option<&Json>) -> String {
    schema.and_then(ty).unwrap_or_else(|| "Value".into())
}

fn alternatives(s: &Json) -> Option<&Vec<Json>> {
    s.get("oneOf")
        .or_else(|| s.get("anyOf"))
        .and_then(Json::as_array)
}

fn ty(s: &Json) -> Option<String> {
    if let Some(c) = s.get("const") {
        return Some(match c {
            Json::String(t) if t == "OK" => "()".into(),
            Json::Number(_) => "i64".into(),
            _ => "Bytes".into(),
        });
    }
    if let Some(alts) = alternatives(s) {
        let is_null = |a: &Json| a.get("type").and_then(Json::as_str) == Some("null");
        let nullable = alts.iter().any(is_null);
        let mut types: Vec<String> = Vec::new();
        for a in alts.iter().filter(|a| !is_null(a)) {
            let t = ty(a)?;
            if !types.contains(&t) {
                types.push(t);
            }
        }
        return match (types.as_slice(), nullable) {
            ([], true) => Some("()".into()),
            // OK or nil: whether the command took effect (SET NX, ...).
            ([only], true) if only == "()" => Some("bool".into()),
            ([only], true) => Some(format!("Option<{only}>")),
            ([only], false) => Some(only.clone()),
            _ => None,
        };
    }
    match s.get("type").and_then(Json::as_str)? {
        "integer" => Some("i64".into()),
        "number" => Some("f64".into()),
        "string" => Some("Bytes".into()),
        "boolean" => Some("bool".into()),
        "null" => Some("()".into()),
        "array" => {
            let items = s.get("items")?;
            Some(format!("Vec<{}>", ty(items)?))
        }
        _ => None,
    }
}

/// One line per shape the reply can take.
pub fn describe(schema: Option<&Json>) -> Vec<String> {
    let Some(s) = schema else {
        return vec!["See the server's documentation (the spec has no reply schema).".into()];
    };
    match alternatives(s) {
        Some(alts) => alts.iter().map(one_line).collect(),
        None => vec![one_line(s)],
    }
}

fn one_line(s: &Json) -> String {
    let shape = match (s.get("const"), s.get("type").and_then(Json::as_str)) {
        (Some(c), _) => format!(
            "`{}`",
            c.as_str().map_or_else(|| c.to_string(), str::to_string)
        ),
        (None, Some("array")) => "array".into(),
        (None, Some("object")) => "map".into(),
        (None, Some("null")) => "nil".into(),
        (None, Some(t)) => t.to_string(),
        (None, None) if alternatives(s).is_some() => "one of several shapes".into(),
        _ => "value".into(),
    };
    match s.get("description").and_then(Json::as_str) {
        Some(d) => format!("{shape}: {}", crate::naming::doc_text(d)),
        None => shape,
    }
}
