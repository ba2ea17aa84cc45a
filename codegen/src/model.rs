//! The command spec, loaded from both of its formats (the `spec/*.json` files and the
//! `COMMAND DOCS`/`COMMAND INFO` dump) into one shape.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value as Json;

#[derive(Debug, Clone)]
pub struct Command {
    /// Full name as sent: `SET`, `CLIENT KILL`.
    pub name: String,
    pub container: Option<String>,
    pub summary: String,
    pub since: String,
    pub complexity: String,
    pub group: String,
    pub acl_categories: Vec<String>,
    /// Upper case: READONLY, WRITE, BLOCKING ...
    pub flags: Vec<String>,
    pub arity: i64,
    pub deprecated_since: Option<String>,
    pub replaced_by: Option<String>,
    pub doc_flags: Vec<String>,
    pub key_specs: Vec<KeySpec>,
    /// Command tips, upper case: `REQUEST_POLICY:ALL_SHARDS`, `NONDETERMINISTIC_OUTPUT` ...
    pub tips: Vec<String>,
    pub args: Vec<Arg>,
    pub reply_schema: Option<Json>,
    /// Which input described the command.
    pub source: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Key,
    String,
    Integer,
    Double,
    UnixTime,
    Pattern,
    PureToken,
    OneOf,
    Block,
}

#[derive(Debug, Clone)]
pub struct Arg {
    pub name: String,
    pub display: String,
    pub kind: Kind,
    pub token: Option<String>,
    pub optional: bool,
    pub multiple: bool,
    pub multiple_token: bool,
    pub children: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub struct KeySpec {
    pub begin: Begin,
    pub find: Find,
    pub flags: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Begin {
    Index(i64),
    Keyword { keyword: String, start_from: i64 },
    Unknown,
}

#[derive(Debug, Clone)]
pub enum Find {
    Range {
        last_key: i64,
        step: i64,
        limit: i64,
    },
    Keynum {
        key_num_idx: i64,
        first_key: i64,
        step: i64,
    },
    Unknown,
}

/// Loads every command: the spec files first, then what only the Valkey dump has.
pub fn load(dir: &Path) -> Result<Vec<Command>, String> {
    let dump_path = dir.join("valkey-9.1.2-command-docs.json");
    let dump: Json = read_json(&dump_path)?;
    let info = flatten_info(&dump["info"]);
    let mut commands: BTreeMap<String, Command> = BTreeMap::new();

    let mut files: Vec<_> = std::fs::read_dir(dir.join("spec"))
        .map_err(|e| format!("cannot read {}: {e}", dir.join("spec").display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    for file in files {
        let json = read_json(&file)?;
        let obj = json
            .as_object()
            .ok_or_else(|| format!("{}: not an object", file.display()))?;
        for (name, doc) in obj {
            let container = doc["container"].as_str().map(str::to_string);
            let full = match &container {
                Some(c) => format!("{c} {name}"),
                None => name.clone(),
            };
            let cmd = from_spec(&full, container, doc, info.get(&info_key(&full)));
            commands.insert(full, cmd);
        }
    }
    let docs = dump["docs"].as_object().ok_or("dump has no docs")?;
    for (name, doc) in docs {
        let upper = name.to_ascii_uppercase();
        if !commands.contains_key(&upper) {
            let cmd = from_dump(&upper, None, doc, info.get(name));
            commands.insert(upper.clone(), cmd);
        }
        if let Some(subs) = doc["subcommands"].as_object() {
            for (sub, sdoc) in subs {
                let full = sub.replace('|', " ").to_ascii_uppercase();
                if let std::collections::btree_map::Entry::Vacant(slot) = commands.entry(full) {
                    let cmd = from_dump(
                        slot.key(),
                        Some(upper.clone()),
                        sdoc,
                        info.get(sub.as_str()),
                    );
                    slot.insert(cmd);
                }
            }
        }
    }
    Ok(commands.into_values().collect())
}

fn read_json(path: &Path) -> Result<Json, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `COMMAND INFO` entries by lower-case `name` or `container|sub`.
fn flatten_info(info: &Json) -> BTreeMap<String, Json> {
    let mut out = BTreeMap::new();
    if let Some(map) = info.as_object() {
        for (name, entry) in map {
            out.insert(name.clone(), entry.clone());
            for sub in entry["subcommands"].as_array().into_iter().flatten() {
                if let Some(n) = sub["name"].as_str() {
                    out.insert(n.to_string(), sub.clone());
                }
            }
        }
    }
    out
}

fn info_key(full: &str) -> String {
    full.to_ascii_lowercase().replacen(' ', "|", 1)
}

fn strings(v: &Json) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// Maps each element of a JSON array (nothing for a missing one).
fn each<T>(v: &Json, f: impl Fn(&Json) -> T) -> Vec<T> {
    v.as_array().into_iter().flatten().map(f).collect()
}

fn upper(v: &Json) -> Vec<String> {
    strings(v).iter().map(|f| f.to_ascii_uppercase()).collect()
}

fn text(v: &Json) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn from_spec(full: &str, container: Option<String>, doc: &Json, info: Option<&Json>) -> Command {
    Command {
        name: full.to_string(),
        container,
        summary: text(&doc["summary"]),
        since: text(&doc["since"]),
        complexity: text(&doc["complexity"]),
        group: text(&doc["group"]),
        acl_categories: acl_categories(doc, info),
        flags: strings(&doc["command_flags"]),
        arity: doc["arity"].as_i64().unwrap_or(0),
        deprecated_since: doc["deprecated_since"].as_str().map(str::to_string),
        replaced_by: doc["replaced_by"].as_str().map(str::to_string),
        doc_flags: strings(&doc["doc_flags"]),
        key_specs: each(&doc["key_specs"], spec_key_spec),
        tips: strings(&doc["command_tips"]),
        args: each(&doc["arguments"], spec_arg),
        reply_schema: doc.get("reply_schema").cloned(),
        source: "spec",
    }
}

fn from_dump(full: &str, container: Option<String>, doc: &Json, info: Option<&Json>) -> Command {
    let info = info.cloned().unwrap_or(Json::Null);
    Command {
        name: full.to_string(),
        container,
        summary: text(&doc["summary"]),
        since: text(&doc["since"]),
        complexity: text(&doc["complexity"]),
        group: text(&doc["group"]),
        acl_categories: strings(&info["acl_categories"]),
        flags: upper(&info["flags"]),
        arity: info["arity"].as_i64().unwrap_or(0),
        deprecated_since: doc["deprecated_since"].as_str().map(str::to_string),
        replaced_by: doc["replaced_by"].as_str().map(str::to_string),
        doc_flags: upper(&doc["doc_flags"]),
        key_specs: each(&info["key_specs"], dump_key_spec),
        tips: upper(&info["tips"]),
        args: each(&doc["arguments"], dump_arg),
        reply_schema: None,
        source: "valkey-9.1.2 COMMAND DOCS",
    }
}

/// The running server's categories where the dump has them (they include the implicit
/// ones such as @write and @fast); else the spec's explicit ones.
fn acl_categories(doc: &Json, info: Option<&Json>) -> Vec<String> {
    if let Some(info) = info {
        let cats = strings(&info["acl_categories"]);
        if !cats.is_empty() {
            return cats;
        }
    }
    strings(&doc["acl_categories"])
        .iter()
        .map(|c| format!("@{}", c.to_ascii_lowercase()))
        .collect()
}

fn kind(t: &str) -> Kind {
    match t {
        "key" => Kind::Key,
        "integer" => Kind::Integer,
        "double" => Kind::Double,
        "unix-time" => Kind::UnixTime,
        "pattern" => Kind::Pattern,
        "pure-token" => Kind::PureToken,
        "oneof" => Kind::OneOf,
        "block" => Kind::Block,
        _ => Kind::String,
    }
}

fn spec_arg(a: &Json) -> Arg {
    Arg {
        name: text(&a["name"]),
        display: a["display"]
            .as_str()
            .map_or_else(|| text(&a["name"]), str::to_string),
        kind: kind(a["type"].as_str().unwrap_or("string")),
        // A few pure tokens (SENTINEL SIMULATE-FAILURE's modes) carry no `token`: their
        // name is the token.
        token: a["token"].as_str().map(token).or_else(|| {
            (a["type"].as_str() == Some("pure-token"))
                .then(|| token(&text(&a["name"]).to_ascii_uppercase()))
        }),
        optional: a["optional"].as_bool().unwrap_or(false),
        multiple: a["multiple"].as_bool().unwrap_or(false),
        multiple_token: a["multiple_token"].as_bool().unwrap_or(false),
        children: each(&a["arguments"], spec_arg),
    }
}

fn dump_arg(a: &Json) -> Arg {
    let flags = strings(&a["flags"]);
    let has = |f: &str| flags.iter().any(|x| x == f);
    Arg {
        name: text(&a["name"]),
        display: a["display_text"]
            .as_str()
            .map_or_else(|| text(&a["name"]), str::to_string),
        kind: kind(a["type"].as_str().unwrap_or("string")),
        token: a["token"].as_str().map(token),
        optional: has("optional"),
        multiple: has("multiple"),
        multiple_token: has("multiple_token"),
        children: each(&a["arguments"], dump_arg),
    }
}

/// The spec writes an empty-string argument (MIGRATE's key placeholder) as the token `""`.
fn token(t: &str) -> String {
    if t == "\"\"" {
        String::new()
    } else {
        t.to_string()
    }
}

fn int(v: &Json) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn spec_key_spec(k: &Json) -> KeySpec {
    let b = &k["begin_search"];
    let begin = if let Some(i) = b.get("index") {
        Begin::Index(int(&i["pos"]))
    } else if let Some(kw) = b.get("keyword") {
        Begin::Keyword {
            keyword: text(&kw["keyword"]),
            start_from: int(&kw["startfrom"]),
        }
    } else {
        Begin::Unknown
    };
    let f = &k["find_keys"];
    let find = if let Some(r) = f.get("range") {
        Find::Range {
            last_key: int(&r["lastkey"]),
            step: int(&r["step"]),
            limit: int(&r["limit"]),
        }
    } else if let Some(n) = f.get("keynum") {
        Find::Keynum {
            key_num_idx: int(&n["keynumidx"]),
            first_key: int(&n["firstkey"]),
            step: int(&n["step"]),
        }
    } else {
        Find::Unknown
    };
    KeySpec {
        begin,
        find,
        flags: upper(&k["flags"]),
    }
}

fn dump_key_spec(k: &Json) -> KeySpec {
    let b = &k["begin_search"];
    let begin = match b["type"].as_str() {
        Some("index") => Begin::Index(int(&b["spec"]["index"])),
        Some("keyword") => Begin::Keyword {
            keyword: text(&b["spec"]["keyword"]),
            start_from: int(&b["spec"]["startfrom"]),
        },
        _ => Begin::Unknown,
    };
    let f = &k["find_keys"];
    let s = &f["spec"];
    let find = match f["type"].as_str() {
        Some("range") => Find::Range {
            last_key: int(&s["lastkey"]),
            step: int(&s["keystep"]),
            limit: int(&s["limit"]),
        },
        Some("keynum") => Find::Keynum {
            key_num_idx: int(&s["keynumidx"]),
            first_key: int(&s["firstkey"]),
            step: int(&s["keystep"]),
        },
        _ => Find::Unknown,
    };
    KeySpec {
        begin,
        find,
        flags: upper(&k["flags"]),
    }
}
