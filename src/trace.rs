//! Tracing spans for commands, after OpenTelemetry's database conventions: one span per
//! command (and one per pipeline or transaction) at `debug` on the target
//! `kermes::command`, with `db.system.name = "redis"`, `db.operation.name` (the command's
//! name, never its arguments: they may hold secrets), `db.namespace` (the database
//! index), `server.address`, `server.port`, `db.operation.batch.size` for pipelines, and
//! `error.type` when the command failed. With no subscriber interested in that target and
//! level, a command pays one cached interest check. With
//! [`ClientBuilder::trace_statements`](crate::ClientBuilder::trace_statements), a command's
//! span also records `db.query.text`, sanitized: `SET ? ?`.

use tracing::Span;
use tracing::field::Empty;

use crate::client::Client;
use crate::cmd::Cmd;
use crate::config::Addr;
use crate::error::Error;

/// The spans' target: filter on it (`RUST_LOG=kermes::command=debug`).
pub const TARGET: &str = "kermes::command";

/// The span of one command, when a subscriber wants it.
#[inline]
pub(crate) fn command(client: &Client, cmd: &Cmd) -> Option<Span> {
    if tracing::enabled!(target: "kermes::command", tracing::Level::DEBUG) {
        Some(command_span(client, cmd))
    } else {
        None
    }
}

#[cold]
fn command_span(client: &Client, cmd: &Cmd) -> Span {
    let name = crate::commands::lookup_args(&cmd.args).map_or("unknown", |info| info.name);
    let span = tracing::debug_span!(
        target: "kermes::command",
        "redis.command",
        otel.name = name,
        db.system.name = "redis",
        db.operation.name = name,
        db.namespace = client.config().db,
        server.address = Empty,
        server.port = Empty,
        error.type = Empty,
        db.query.text = Empty,
    );
    record_server(&span, client);
    if client.config().trace_statements {
        span.record("db.query.text", sanitized(name, cmd).as_str());
    }
    span
}

/// The command's table name (a container's with its subcommand: `CLIENT SETNAME`) and a `?`
/// for every argument after it.
fn sanitized(name: &str, cmd: &Cmd) -> String {
    let words = name.split(' ').count();
    let mut text = name.to_string();
    for _ in words..cmd.args.len() {
        text.push_str(" ?");
    }
    text
}

/// The span of a pipeline or transaction of `count` commands, when a subscriber wants it.
pub(crate) fn batch(client: &Client, count: usize, atomic: bool) -> Option<Span> {
    if !tracing::enabled!(target: "kermes::command", tracing::Level::DEBUG) {
        return None;
    }
    let name = if atomic { "MULTI" } else { "PIPELINE" };
    let span = tracing::debug_span!(
        target: "kermes::command",
        "redis.batch",
        otel.name = name,
        db.system.name = "redis",
        db.operation.name = name,
        db.operation.batch.size = count,
        db.namespace = client.config().db,
        server.address = Empty,
        server.port = Empty,
        error.type = Empty,
    );
    record_server(&span, client);
    Some(span)
}

fn record_server(span: &Span, client: &Client) {
    match &client.config().addr {
        Addr::Tcp { host, port } => {
            span.record("server.address", host.as_str());
            span.record("server.port", port);
        }
        Addr::Unix(path) => {
            span.record("server.address", tracing::field::display(path.display()));
        }
    }
}

/// Records a failure on the span: the error's kind, never its text (a server's message
/// may quote a value).
pub(crate) fn failed(span: &Span, error: &Error) {
    span.record("error.type", error.kind_name());
}
