//! redis-cli syntax lines, e.g. `SET key value [NX | XX] [GET]`.

use crate::model::{Arg, Command, Kind};

pub fn of_command(cmd: &Command) -> String {
    let mut parts = vec![cmd.name.clone()];
    parts.extend(cmd.args.iter().map(of_arg));
    parts.join(" ")
}

pub fn of_arg(arg: &Arg) -> String {
    let one = |a: &Arg| -> String {
        let body = match a.kind {
            Kind::PureToken => return a.token.clone().unwrap_or_else(|| a.display.clone()),
            Kind::OneOf => {
                let inner = a
                    .children
                    .iter()
                    .map(of_arg)
                    .collect::<Vec<_>>()
                    .join(" | ");
                if a.optional {
                    inner
                } else {
                    format!("<{inner}>")
                }
            }
            Kind::Block => a.children.iter().map(of_arg).collect::<Vec<_>>().join(" "),
            _ => a.display.clone(),
        };
        match &a.token {
            Some(t) => format!("{t} {body}"),
            None => body,
        }
    };
    let single = one(arg);
    let text = if arg.multiple {
        if arg.multiple_token || arg.token.is_none() {
            format!("{single} [{single} ...]")
        } else {
            let mut no_token = arg.clone();
            no_token.token = None;
            let item = one(&no_token);
            format!("{single} [{item} ...]")
        }
    } else {
        single
    };
    if arg.optional {
        format!("[{text}]")
    } else {
        text
    }
}
