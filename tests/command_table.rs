//! The generated API covers the spec: counts, skips, and the table that routes commands.

use kermes::commands::{CommandFlags, SKIPPED, command_info, commands};

/// The spec's own count, computed independently of codegen: the union of the commands in
/// `../shared/commands/spec/` and in the Valkey 9.1.2 `COMMAND DOCS` dump, without the
/// SENTINEL family.
fn spec_api_commands() -> std::collections::BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/commands");
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
            panic!(
                "the command spec must sit beside the repository ({}): {e}",
                p.display()
            )
        });
        serde_json::from_str(&text).unwrap()
    };
    let mut names = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(dir.join("spec")).unwrap() {
        let json = read(entry.unwrap().path());
        for (name, doc) in json.as_object().unwrap() {
            names.insert(match doc["container"].as_str() {
                Some(c) => format!("{c} {name}"),
                None => name.clone(),
            });
        }
    }
    let dump = read(dir.join("valkey-9.1.2-command-docs.json"));
    for (name, doc) in dump["docs"].as_object().unwrap() {
        names.insert(name.to_ascii_uppercase());
        for sub in doc["subcommands"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
        {
            names.insert(sub.replace('|', " ").to_ascii_uppercase());
        }
    }
    names.retain(|n| n != "SENTINEL" && !n.starts_with("SENTINEL "));
    names
}

#[test]
fn every_spec_command_is_in_the_table_and_generated_unless_listed_as_skipped() {
    let all = commands();
    let spec = spec_api_commands();
    let table: std::collections::BTreeSet<String> =
        all.iter().map(|c| c.name.to_string()).collect();
    assert_eq!(
        table, spec,
        "the table must hold exactly the spec's commands"
    );
    assert_eq!(all.len(), 399);
    let generated = all.iter().filter(|c| c.has_method).count();
    assert_eq!(generated, all.len() - SKIPPED.len());
    for (name, why) in SKIPPED {
        let info = all
            .iter()
            .find(|c| c.name == *name)
            .expect("skipped commands are in the table");
        assert!(!info.has_method && !why.is_empty(), "{name}");
    }
}

#[test]
fn the_table_carries_the_spec_flags_used_for_routing() {
    let blpop = command_info("blpop").unwrap();
    assert!(blpop.is_blocking());
    assert!(command_info("XREADGROUP").unwrap().is_blocking());
    assert!(!command_info("GET").unwrap().is_blocking());
    assert!(
        command_info("GET")
            .unwrap()
            .flags
            .contains(CommandFlags::READONLY)
    );
    assert!(
        command_info("SET")
            .unwrap()
            .flags
            .contains(CommandFlags::WRITE)
    );
    assert_eq!(command_info("hgetex").unwrap().since, "9.0.0");
    assert_eq!(command_info("GET").unwrap().key_specs.len(), 1);
    assert!(command_info("NOT-A-COMMAND").is_none());
    let blocking: Vec<&str> = commands()
        .iter()
        .filter(|c| c.is_blocking())
        .map(|c| c.name)
        .collect();
    assert_eq!(
        blocking,
        [
            "BLMOVE",
            "BLMPOP",
            "BLPOP",
            "BRPOP",
            "BRPOPLPUSH",
            "BZMPOP",
            "BZPOPMAX",
            "BZPOPMIN",
            "WAIT",
            "WAITAOF",
            "XREAD",
            "XREADGROUP"
        ]
    );
}
