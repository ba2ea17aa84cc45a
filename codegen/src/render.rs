//! One group's file: a trait with a method per command, its options structs and enums.

use std::fmt::Write;

use crate::model::{Arg, Command, Kind};
use crate::naming::{Names, camel, snake};
use crate::schema;

/// What a method needs: its parameters and the statements that write its arguments to `a`.
#[derive(Default)]
struct Sig {
    params: Vec<(String, String)>,
    body: Vec<String>,
}

/// Collects the enums and options structs a group file defines.
pub struct Group {
    pub trait_name: String,
    items: String,
    methods: String,
    /// The same commands queued on a pipeline, in the `*Pipeline` trait.
    pipe_methods: String,
    /// One function per method building its command, shared by both traits.
    builders: String,
    /// Commands whose only argument is an optional list: `info()` and `info_with(list)`.
    pub lone_lists: Vec<String>,
    /// Methods whose reply reads as an untyped `Value`: (command, method).
    pub untyped: Vec<(String, String)>,
    type_names: Names,
    /// Enums already defined, by command prefix and argument syntax, so asking for an
    /// argument's type twice never defines it twice.
    enums: std::collections::HashMap<String, String>,
}

/// One generated method: see [`Group::emit`].
struct Method<'a> {
    /// The spec's name (`CLIENT LIST`).
    command: &'a str,
    /// The method's name (`client_list`, `client_list_with`).
    name: String,
    params: Vec<(String, String)>,
    /// Statements building `cmd`.
    body: String,
    /// The awaited method's rustdoc, indented.
    docs: String,
    /// The pipeline method's one-line doc.
    pipe_doc: String,
    deprecated: &'a str,
    bind: bool,
    ret: &'a str,
}

/// Names a generated argument-counting integer takes: the count is written for the caller.
fn is_count(arg: &Arg, next: Option<&Arg>) -> bool {
    arg.kind == Kind::Integer
        && matches!(arg.name.as_str(), "numkeys" | "numfields")
        && next.is_some_and(|n| n.multiple)
}

/// A method body's opening: the command, then (only when there are any) its arguments.
fn with_args(head: &str, subcommand: &str, body: &[String]) -> String {
    if subcommand.is_empty() && body.is_empty() {
        format!("let cmd = {head};")
    } else {
        format!(
            "let mut cmd = {head}; let a = &mut cmd.args;{subcommand}\n        {}",
            body.join("\n        ")
        )
    }
}

/// What to name a choice after: its token as redis-cli spells it (`NX`, `EXAT`), or its
/// argument name where the token is not a word (`=`, `~`, `""`).
fn label(arg: &Arg) -> &str {
    match &arg.token {
        Some(t) if t.chars().any(|c| c.is_ascii_alphanumeric()) => t,
        _ => &arg.name,
    }
}

/// A method's generic parameters: the reply type, when the caller's binding chooses it.
fn generics(bind: bool) -> &'static str {
    if bind {
        "<'a, T: FromValue + 'a>"
    } else {
        "<'a>"
    }
}

/// A method's reply type parameter.
fn reply(bind: bool, ty: &str) -> &str {
    if bind { "T" } else { ty }
}

fn token_lit(t: &str) -> String {
    format!("b{:?}", t)
}

fn is_scalar(k: Kind) -> bool {
    matches!(
        k,
        Kind::Key | Kind::String | Kind::Pattern | Kind::Integer | Kind::Double | Kind::UnixTime
    )
}

/// The type of a scalar passed by the caller as a parameter. Score-range bounds (`min`,
/// `max`) are doubles in the spec but also take `(1.5` (exclusive) and `-inf`, so they
/// accept any argument.
fn param_type(arg: &Arg) -> &'static str {
    if arg.kind == Kind::Double && matches!(arg.name.as_str(), "min" | "max") {
        return "impl ToArgs";
    }
    param_scalar(arg.kind)
}

fn param_scalar(k: Kind) -> &'static str {
    match k {
        Kind::Integer | Kind::UnixTime => "i64",
        Kind::Double => "f64",
        _ => "impl ToArgs",
    }
}

/// The type of a scalar stored in an enum, tuple or `Option`.
fn owned_scalar(k: Kind) -> &'static str {
    match k {
        Kind::Integer | Kind::UnixTime => "i64",
        Kind::Double => "f64",
        _ => "Bytes",
    }
}

impl Group {
    pub fn new(group: &str) -> Self {
        Group {
            trait_name: format!("{}Commands", camel(group)),
            items: String::new(),
            methods: String::new(),
            pipe_methods: String::new(),
            builders: String::new(),
            lone_lists: Vec::new(),
            untyped: Vec::new(),
            type_names: Names::default(),
            enums: Default::default(),
        }
    }

    /// The owned type of an argument, `Option`, `Vec` and enums included; `None` for a
    /// required pure token, which carries no data.
    fn owned_type(&mut self, arg: &Arg, prefix: &str) -> Option<String> {
        let base = match arg.kind {
            Kind::PureToken => None,
            k if is_scalar(k) => Some(owned_scalar(k).to_string()),
            Kind::OneOf => Some(self.define_enum(arg, prefix)),
            _ => {
                let fields: Vec<String> = arg
                    .children
                    .iter()
                    .filter_map(|c| self.owned_type(c, prefix))
                    .collect();
                match fields.len() {
                    0 => None,
                    1 => Some(fields[0].clone()),
                    _ => Some(format!("({})", fields.join(", "))),
                }
            }
        };
        match (base, arg.optional, arg.multiple) {
            (None, true, _) => Some("bool".into()),
            (None, false, _) => None,
            (Some(t), _, true) if arg.optional => Some(format!("Option<Vec<{t}>>")),
            (Some(t), _, true) => Some(format!("Vec<{t}>")),
            (Some(t), true, false) => Some(format!("Option<{t}>")),
            (Some(t), false, false) => Some(t),
        }
    }

    /// Statements writing an owned value, reached through the reference `expr`, to `to`.
    fn write_owned(
        &mut self,
        arg: &Arg,
        expr: &str,
        to: &str,
        prefix: &str,
        depth: usize,
    ) -> String {
        let v = format!("v{depth}");
        if arg.optional {
            let mut inner = arg.clone();
            inner.optional = false;
            if arg.kind == Kind::PureToken || self.owned_type(&inner, prefix).is_none() {
                let body = self.write_owned(&inner, "&()", to, prefix, depth + 1);
                return format!("if *{expr} {{ {body} }}");
            }
            let body = self.write_owned(&inner, &v, to, prefix, depth + 1);
            return format!("if let Some({v}) = {expr} {{ {body} }}");
        }
        if arg.multiple {
            let mut one = arg.clone();
            one.multiple = false;
            let lead = match (&arg.token, arg.multiple_token) {
                (Some(t), false) => {
                    one.token = None;
                    format!("{to}.push({});", token_lit(t))
                }
                _ => String::new(),
            };
            let body = self.write_owned(&one, &v, to, prefix, depth + 1);
            return format!("{lead} for {v} in {expr} {{ {body} }}");
        }
        let mut out = String::new();
        if let Some(t) = &arg.token {
            let _ = write!(out, "{to}.push({});", token_lit(t));
        }
        match arg.kind {
            Kind::PureToken => {}
            Kind::Block => {
                let mut fields = Vec::new();
                let mut stmts = Vec::new();
                for (i, c) in arg.children.iter().enumerate() {
                    if self.owned_type(c, prefix).is_some() {
                        let f = format!("f{depth}_{i}");
                        fields.push(f.clone());
                        stmts.push((c, Some(f)));
                    } else {
                        stmts.push((c, None));
                    }
                }
                if fields.len() > 1 {
                    let _ = write!(out, "let ({}) = {expr};", fields.join(", "));
                }
                for (c, f) in stmts {
                    let e = match f {
                        Some(_) if fields.len() == 1 => expr.to_string(),
                        Some(f) => f,
                        None => "&()".into(),
                    };
                    out.push_str(&self.write_owned(c, &e, to, prefix, depth + 1));
                }
            }
            _ => {
                let _ = write!(out, "({expr}).write_args({to});");
            }
        }
        out
    }

    /// Defines (once per command and argument) the enum for a `oneof`, and names it.
    fn define_enum(&mut self, arg: &Arg, prefix: &str) -> String {
        let choices: Vec<String> = arg.children.iter().map(crate::syntax::of_arg).collect();
        let shape = choices.join("|");
        let shared = crate::naming::shared_enum(&shape);
        let key = match shared {
            Some((name, _)) => format!("shared/{name}"),
            None => format!("{prefix}/{}/{shape}", arg.name),
        };
        if let Some(name) = self.enums.get(&key) {
            return name.clone();
        }
        let name = match shared {
            Some((name, _)) => self.type_names.unique(name.to_string()),
            None => self
                .type_names
                .unique(format!("{prefix}{}", camel(&arg.name))),
        };
        let strip = shared.map_or("", |(_, p)| p);
        self.enums.insert(key, name.clone());
        let mut variants = String::new();
        let mut arms = String::new();
        let mut vnames = Names::default();
        for child in &arg.children {
            let vname = vnames.unique(crate::naming::variant(label(child), strip));
            let syntax = crate::syntax::of_arg(child);
            let _ = writeln!(variants, "    /// `{}`", syntax.replace('`', "'"));
            let mut owned = child.clone();
            owned.optional = false;
            match self.owned_type(&owned, prefix) {
                None => {
                    let _ = writeln!(variants, "    {vname},");
                    let body = self.write_owned(&owned, "&()", "a", prefix, 1);
                    let _ = writeln!(arms, "            {name}::{vname} => {{ {body} }}");
                }
                Some(t) => {
                    let _ = writeln!(variants, "    {vname}({t}),");
                    let body = self.write_owned(&owned, "v", "a", prefix, 1);
                    let _ = writeln!(arms, "            {name}::{vname}(v) => {{ {body} }}");
                }
            }
        }
        let _ = write!(
            self.items,
            "/// Choices for `{}`.\n#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\npub enum {name} {{\n{variants}}}\n\n\
             impl ToArgs for {name} {{\n    fn write_args(&self, a: &mut ArgBuf) {{\n        match self {{\n{arms}        }}\n    }}\n}}\n\n",
            crate::syntax::of_arg(arg).replace('`', "'")
        );
        name
    }

    /// Parameters and statements for required arguments, as the caller passes them.
    fn flatten(&mut self, args: &[Arg], sig: &mut Sig, names: &mut Names, prefix: &str) {
        let mut counted = false;
        for (i, arg) in args.iter().enumerate() {
            if is_count(arg, args.get(i + 1)) {
                counted = true;
                continue;
            }
            let to = if counted { "counted" } else { "a" };
            let mut stmts = Vec::new();
            if arg.optional && !counted {
                let Some(t) = self.owned_type(arg, prefix) else {
                    continue;
                };
                let p = names.unique(snake(&arg.name));
                stmts.push(self.write_owned(arg, &format!("&{p}"), to, prefix, 1));
                sig.params.push((p, t));
            } else {
                match arg.kind {
                    Kind::PureToken => stmts.push(format!(
                        "{to}.push({});",
                        token_lit(arg.token.as_deref().unwrap_or(&arg.name))
                    )),
                    Kind::Block if !arg.multiple => {
                        if let Some(t) = &arg.token {
                            stmts.push(format!("{to}.push({});", token_lit(t)));
                        }
                        let mut inner = Sig::default();
                        self.flatten(&arg.children, &mut inner, names, prefix);
                        sig.params.extend(inner.params);
                        stmts.extend(inner.body.into_iter().map(|s| {
                            if counted {
                                s.replace("a.", "counted.")
                            } else {
                                s
                            }
                        }));
                    }
                    _ => {
                        let p = names.unique(snake(&arg.name));
                        let simple_block = arg.kind == Kind::Block
                            && arg.children.iter().all(|c| {
                                is_scalar(c.kind) && !c.optional && !c.multiple && c.token.is_none()
                            });
                        let elem_owned = || {
                            let mut one = arg.clone();
                            one.multiple = false;
                            one.optional = false;
                            one
                        };
                        let ty = if arg.multiple && arg.multiple_token {
                            let one = elem_owned();
                            let elem = if is_scalar(arg.kind) {
                                param_scalar(arg.kind).to_string()
                            } else {
                                self.owned_type(&one, prefix).unwrap_or_default()
                            };
                            format!("impl IntoIterator<Item = {elem}>")
                        } else if arg.multiple && (is_scalar(arg.kind) || simple_block) {
                            "impl ToArgs".to_string()
                        } else if arg.multiple {
                            let one = elem_owned();
                            format!(
                                "impl IntoIterator<Item = {}>",
                                self.owned_type(&one, prefix).unwrap_or_default()
                            )
                        } else if is_scalar(arg.kind) {
                            param_type(arg).to_string()
                        } else {
                            self.owned_type(arg, prefix).unwrap_or_default()
                        };
                        let lead = match &arg.token {
                            Some(t) if !arg.multiple_token => {
                                format!("{to}.push({});", token_lit(t))
                            }
                            _ => String::new(),
                        };
                        if arg.multiple
                            && (arg.multiple_token || !(is_scalar(arg.kind) || simple_block))
                        {
                            let mut one = elem_owned();
                            if !arg.multiple_token {
                                one.token = None;
                            }
                            let body = if is_scalar(arg.kind) && arg.multiple_token {
                                format!(
                                    "{to}.push({}); v1.write_args({to});",
                                    token_lit(arg.token.as_deref().unwrap_or_default())
                                )
                            } else {
                                self.write_owned(&one, "&v1", to, prefix, 2)
                            };
                            stmts.push(format!("{lead} for v1 in {p} {{ {body} }}"));
                        } else if is_scalar(arg.kind) || simple_block {
                            stmts.push(format!("{lead} {p}.write_args({to});"));
                        } else {
                            let mut one = arg.clone();
                            one.token = None;
                            stmts.push(format!(
                                "{lead} {}",
                                self.write_owned(&one, &format!("&{p}"), to, prefix, 1)
                            ));
                        }
                        sig.params.push((p, ty));
                    }
                }
            }
            if counted && (arg.multiple || to == "counted") {
                // The count is of elements, not arguments: a field/value pair is one.
                let per_element = match arg.kind {
                    Kind::Block => arg.children.len().max(1),
                    _ => 1,
                };
                let count = if per_element == 1 {
                    "counted.len()".to_string()
                } else {
                    format!("counted.len() / {per_element}")
                };
                sig.body.push(format!(
                    "let counted = &mut ArgBuf::default(); {} a.push_int({count}); a.append(counted);",
                    stmts.join(" ")
                ));
                counted = false;
            } else {
                sig.body.extend(stmts);
            }
        }
    }

    /// Adds the methods (and options struct) of one command.
    pub fn command(&mut self, cmd: &Command) {
        let method = snake(&cmd.name);
        let prefix = camel(&cmd.name);
        let mut words = cmd.name.split(' ');
        let first = words.next().unwrap_or_default();
        let route = crate::table::route(cmd, false);
        let head = format!("Cmd::with_route({first:?}, Route::{route})");
        let subcommand: String = words
            .map(|w| format!(" a.push({});", token_lit(w)))
            .collect();
        let schema_ret = schema::reply_type(cmd.reply_schema.as_ref());
        let ret =
            crate::corrections::reply(&cmd.name, true).map_or(schema_ret.clone(), String::from);
        let ret_with = crate::corrections::reply(&cmd.name, false).map_or(schema_ret, String::from);
        let bind = crate::binding::binds(cmd, &ret);
        let bind_with = crate::binding::binds(cmd, &ret_with);
        let docs = crate::docs::command_docs(cmd, bind, &ret);
        let deprecated = match (&cmd.deprecated_since, &cmd.replaced_by) {
            (Some(since), Some(by)) => format!(
                "    #[deprecated(since = {since:?}, note = {:?})]\n",
                format!("use {}", by.replace('`', ""))
            ),
            (Some(since), None) => format!("    #[deprecated(since = {since:?})]\n"),
            _ => String::new(),
        };

        // One pass in spec order: required arguments become parameters (shared by both
        // methods); optional ones are left out of the plain method and read from the
        // options struct by the `_with` method. Counted lists (EVAL's keys) stay positional.
        let mut names = Names::with(&["a", "cmd", "counted", "options", "self"]);
        let mut params = Vec::new();
        let (mut plain, mut with) = (Vec::new(), Vec::new());
        let (mut fields, mut setters) = (String::new(), String::new());
        let mut field_names = Names::default();
        let mut method_names = Names::with(&["new"]);
        // A command whose only argument is an optional list (INFO [section ...], COMMAND
        // DOCS [name ...]): the plain method sends none (`info()`), the `_with` method
        // takes the list (`info_with(["memory"])`).
        let lone_list = match cmd.args.as_slice() {
            [a] => a.optional && a.multiple && a.token.is_none() && is_scalar(a.kind),
            _ => false,
        };
        if lone_list {
            let mut part = Sig::default();
            let arg = Arg {
                optional: false,
                ..cmd.args[0].clone()
            };
            self.flatten(std::slice::from_ref(&arg), &mut part, &mut names, &prefix);
            self.lone_lists.push(cmd.name.clone());
            let list = crate::syntax::of_arg(&cmd.args[0]).replace('`', "'");
            self.emit(Method {
                command: &cmd.name,
                name: method.clone(),
                params: Vec::new(),
                body: with_args(&head, &subcommand, &[]),
                docs: docs.clone(),
                pipe_doc: format!("Queues [`{}`]({}::{method}).", cmd.name, self.trait_name),
                deprecated: &deprecated,
                bind,
                ret: &ret,
            });
            self.emit(Method {
                command: &cmd.name,
                name: format!("{method}_with"),
                body: with_args(&head, &subcommand, &part.body),
                params: part.params,
                docs: format!(
                    "    /// [`{method}`]({t}::{method}) with `{list}`: any list (`[\"a\", \"b\"]`, a `Vec`).\n    ///\n    /// {}\n",
                    crate::docs::reply_line(bind_with, &ret_with),
                    t = self.trait_name,
                ),
                pipe_doc: format!(
                    "Queues [`{}`]({}::{method}_with) with `{list}`.",
                    cmd.name, self.trait_name
                ),
                deprecated: &deprecated,
                bind: bind_with,
                ret: &ret_with,
            });
            return;
        }
        let mut i = 0;
        while i < cmd.args.len() {
            let arg = &cmd.args[i];
            let counted_list = i > 0 && is_count(&cmd.args[i - 1], Some(arg));
            // A trailing variadic list (GEOHASH's members, EVAL's args) reads better as a
            // parameter than as an option; pass `()` for none.
            let trailing_list = i + 1 == cmd.args.len()
                && arg.multiple
                && arg.token.is_none()
                && is_scalar(arg.kind);
            if arg.optional && !counted_list && !trailing_list {
                let field = field_names.unique(snake(&arg.name));
                let _ = writeln!(fields, "    {field}: Option<ArgBuf>,");
                with.push(format!(
                    "if let Some(o) = &options.{field} {{ a.append(o); }}"
                ));
                self.setters(arg, &field, &mut setters, &mut method_names, &prefix);
                i += 1;
                continue;
            }
            let mut group = vec![Arg {
                optional: arg.optional && !trailing_list,
                ..arg.clone()
            }];
            if is_count(arg, cmd.args.get(i + 1)) {
                group.push(cmd.args[i + 1].clone());
                i += 1;
            }
            let mut part = Sig::default();
            self.flatten(&group, &mut part, &mut names, &prefix);
            params.extend(part.params);
            plain.extend(part.body.iter().cloned());
            with.extend(part.body);
            i += 1;
        }
        self.emit(Method {
            command: &cmd.name,
            name: method.clone(),
            params: params.clone(),
            body: with_args(&head, &subcommand, &plain),
            docs,
            pipe_doc: format!("Queues [`{}`]({}::{method}).", cmd.name, self.trait_name),
            deprecated: &deprecated,
            bind,
            ret: &ret,
        });
        if !fields.is_empty() {
            let opts = self.type_names.unique(format!("{prefix}Options"));
            let _ = write!(
                self.items,
                "/// Optional arguments of [`{t}::{method}_with`]:\n///\n/// ```text\n/// {syn}\n/// ```\n#[derive(Debug, Clone, Default)]\n#[must_use]\npub struct {opts} {{\n{fields}}}\n\n\
                 impl {opts} {{\n    /// No options: the command as [`{t}::{method}`] sends it.\n    pub fn new() -> Self {{\n        Self::default()\n    }}\n\n{setters}}}\n\n",
                t = self.trait_name,
                syn = crate::syntax::of_command(cmd)
            );
            let mut with_params = params;
            with_params.push(("options".into(), opts.clone()));
            self.emit(Method {
                command: &cmd.name,
                name: format!("{method}_with"),
                params: with_params,
                body: with_args(&head, &subcommand, &with),
                docs: format!(
                    "    /// [`{method}`]({t}::{method}) with its optional arguments: see [`{opts}`].\n    ///\n    /// {}\n",
                    crate::docs::reply_line(bind_with, &ret_with),
                    t = self.trait_name,
                ),
                pipe_doc: format!(
                    "Queues [`{}`]({}::{method}_with) with its optional arguments.",
                    cmd.name, self.trait_name
                ),
                deprecated: &deprecated,
                bind: bind_with,
                ret: &ret_with,
            });
        }
    }

    /// Writes one method into both traits, and the free function building its command
    /// that both call: the awaited method (its reply typed by the binding when `bind`),
    /// and the pipeline's, which queues it.
    fn emit(&mut self, m: Method<'_>) {
        if m.ret == "Value" {
            self.untyped.push((m.command.to_string(), m.name.clone()));
        }
        let name = &m.name;
        let decl: Vec<String> = m.params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let args: Vec<&str> = m.params.iter().map(|(n, _)| n.as_str()).collect();
        let (decl, args) = (decl.join(", "), args.join(", "));
        let params: String = m
            .params
            .iter()
            .map(|(n, t)| format!(", {n}: {t}"))
            .collect();
        let _ = write!(
            self.builders,
            "fn cmd_{name}({decl}) -> Cmd {{\n    {}\n    cmd\n}}\n\n",
            m.body
        );
        let _ = write!(
            self.methods,
            "{}{}    fn {name}{}(&'a self{params}) -> Self::Reply<'a, {}> {{\n        self.send(cmd_{name}({args}))\n    }}\n\n",
            m.docs,
            m.deprecated,
            generics(m.bind),
            reply(m.bind, m.ret),
        );
        let _ = write!(
            self.pipe_methods,
            "    /// {}\n{}    fn {name}(&self{params}) -> Queued<'_> {{\n        self.queue(cmd_{name}({args}))\n    }}\n\n",
            m.pipe_doc, m.deprecated,
        );
    }

    /// Builder methods setting one optional argument.
    fn setters(
        &mut self,
        arg: &Arg,
        field: &str,
        out: &mut String,
        names: &mut Names,
        prefix: &str,
    ) {
        let syntax = crate::syntax::of_arg(arg).replace('`', "'");
        // A `oneof` gets one method per choice, named like redis-cli's token where it has one.
        let choices: Vec<Arg> = if arg.kind == Kind::OneOf && !arg.multiple {
            arg.children
                .iter()
                .map(|c| Arg {
                    optional: false,
                    ..c.clone()
                })
                .collect()
        } else {
            vec![Arg {
                optional: false,
                ..arg.clone()
            }]
        };
        for choice in choices {
            let name = names.unique(snake(label(&choice)));
            let mut sig = Sig::default();
            // A choice of a tokened oneof (`AGGREGATE SUM | MIN | MAX`) follows that token.
            if arg.kind == Kind::OneOf
                && !arg.multiple
                && let Some(t) = &arg.token
            {
                sig.body.push(format!("a.push({});", token_lit(t)));
            }
            let mut pnames = Names::with(&["a", "self", "counted"]);
            self.flatten(std::slice::from_ref(&choice), &mut sig, &mut pnames, prefix);
            let params: String = sig
                .params
                .iter()
                .map(|(n, t)| format!(", {n}: {t}"))
                .collect();
            let _ = write!(
                out,
                "    /// `{}` (from `{syntax}`).\n    pub fn {name}(mut self{params}) -> Self {{\n        let mut buf = ArgBuf::default();\n        let a = &mut buf;\n        {}\n        self.{field} = Some(buf);\n        self\n    }}\n\n",
                crate::syntax::of_arg(&choice).replace('`', "'"),
                sig.body.join("\n        ")
            );
        }
        // Expirations as a Duration or a SystemTime beside the integer forms, when the
        // oneof offers both precisions (`EX seconds | PX milliseconds`, `EXAT | PXAT`).
        if arg.kind == Kind::OneOf && !arg.multiple {
            let has = |t: &str| {
                arg.children.iter().any(|c| {
                    c.token.as_deref() == Some(t)
                        && matches!(c.kind, Kind::Integer | Kind::UnixTime)
                })
            };
            for (secs, millis, method, param, ty, helper, what) in [
                (
                    "EX",
                    "PX",
                    "expire_in",
                    "ttl",
                    "std::time::Duration",
                    "relative",
                    "a `Duration`",
                ),
                (
                    "EXAT",
                    "PXAT",
                    "expire_at",
                    "at",
                    "std::time::SystemTime",
                    "absolute",
                    "a `SystemTime`",
                ),
            ] {
                if has(secs) && has(millis) {
                    let name = names.unique(method.to_owned());
                    let _ = write!(
                        out,
                        "    /// `{secs}` or `{millis}` from {what}: whole seconds as `{secs}`, anything finer as\n    /// `{millis}` (rounded up to the millisecond).\n    pub fn {name}(mut self, {param}: {ty}) -> Self {{\n        let mut buf = ArgBuf::default();\n        crate::commands::{helper}(&mut buf, {param}, b\"{secs}\", b\"{millis}\");\n        self.{field} = Some(buf);\n        self\n    }}\n\n",
                    );
                }
            }
        }
    }

    pub fn finish(self, group: &str) -> String {
        // Sentinel commands run on a sentinel, never on a data node, and never in a pipeline.
        if group == "sentinel" {
            return format!(
                "/// Commands of a Sentinel, on a [`SentinelClient`](crate::sentinel::SentinelClient): every method builds its command and hands it to\n/// [`CommandSink::send`].\npub trait {t}: CommandSink {{\n{m}}}\n\nimpl {t} for crate::sentinel::SentinelClient {{}}\n\n{items}{b}",
                t = self.trait_name,
                m = self.methods,
                items = self.items,
                b = self.builders
            );
        }
        let pipe = self.trait_name.replace("Commands", "Pipeline");
        format!(
            "/// Commands of the `{group}` group, awaited one by one: every method builds its command and\n/// hands it to [`CommandSink::send`]; import [`crate::prelude`] to use them. A reply that holds\n/// stored data takes its type from the binding (`let v: Option<String> = client.get(\"k\").await?`).\n/// On a [`Pipeline`](crate::Pipeline) the same methods queue: see [`{pipe}`].\npub trait {t}: ReplySink {{\n{m}}}\n\nimpl<S: ReplySink + ?Sized> {t} for S {{}}\n\n\
             /// Commands of the `{group}` group queued on a [`Pipeline`](crate::Pipeline) (or a transaction's\n/// writes): the methods of [`{t}`], each returning the [`Queued`] command.\npub trait {pipe}: BatchSink {{\n{p}}}\n\nimpl<S: BatchSink + ?Sized> {pipe} for S {{}}\n\n{items}{b}",
            t = self.trait_name,
            m = self.methods,
            p = self.pipe_methods,
            items = self.items,
            b = self.builders
        )
    }
}
