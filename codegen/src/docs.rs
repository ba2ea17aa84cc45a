//! Rustdoc for one command.

use std::fmt::Write;

use crate::model::Command;
use crate::naming::doc_text;

pub fn command_docs(cmd: &Command, bind: bool, reply_type: &str) -> String {
    let mut d = String::new();
    let mut line = |s: &str| {
        if s.is_empty() {
            d.push_str("    ///\n");
        } else {
            let _ = writeln!(d, "    /// {s}");
        }
    };
    line(&doc_text(&cmd.summary));
    line("");
    line("```text");
    line(&crate::syntax::of_command(cmd));
    line("```");
    line("");
    line(&format!("- Group: `{}`; since {}", cmd.group, cmd.since));
    line(&format!("- Complexity: {}", doc_text(&cmd.complexity)));
    if !cmd.acl_categories.is_empty() {
        let cats: Vec<String> = cmd
            .acl_categories
            .iter()
            .map(|c| format!("`{c}`"))
            .collect();
        line(&format!("- ACL categories: {}", cats.join(", ")));
    }
    if let Some(since) = &cmd.deprecated_since {
        match &cmd.replaced_by {
            Some(by) => line(&format!("- Deprecated since {since}: use {}", doc_text(by))),
            None => line(&format!("- Deprecated since {since}")),
        }
    }
    if cmd.source != "spec" {
        line(&format!(
            "- Described by the {} dump (newer than the spec files)",
            cmd.source
        ));
    }
    line("");
    line(&reply_line(bind, reply_type));
    for shape in crate::schema::describe(cmd.reply_schema.as_ref()) {
        line(&format!("- {shape}"));
    }
    d
}

/// The line that says which Rust type the reply reads as.
pub fn reply_line(bind: bool, ty: &str) -> String {
    if bind {
        format!(
            "Reply, as the type you bind (`{ty}`, or any [`FromValue`](crate::FromValue) of that shape: `String` for `Bytes`, a number, a [`Serde`](crate::Serde)):"
        )
    } else {
        format!("Reply (read as `{ty}`; [`Query::to`](crate::Query::to) re-types it):")
    }
}
