//! The command API: every command of the spec, written once by `codegen/` as trait methods
//! that work on anything implementing [`CommandSink`].
//!
//! ```no_run
//! use std::time::Duration;
//! use kermes::prelude::*;
//!
//! # async fn demo(client: kermes::Client) -> kermes::Result<()> {
//! client.set("greeting", "hello").await?;
//! client.set_with("session", "abc", SetOptions::new().expire_in(Duration::from_secs(60)).nx()).await?;
//! let n: i64 = client.incr("visits").await?;
//! let v: Option<String> = client.get("greeting").await?;
//! # Ok(()) }
//! ```

mod expiry;
mod generated;
mod info;
mod replies;

pub use expiry::ExpiryCommands;
pub(crate) use expiry::{absolute, relative};
pub use generated::*;
pub use info::{
    BeginSearch, CommandFlags, CommandInfo, FindKeys, KeySpec, RequestPolicy, ResponsePolicy,
};
pub use replies::{GeoMember, StreamEntry};

use crate::cmd::Cmd;
use crate::value::FromValue;

/// Anything commands can be sent through: the [`Client`](crate::Client) (each command is
/// a [`Query`](crate::Query) to await), and later pipelines and transactions (which queue
/// it). The generated command traits are implemented for every sink.
pub trait CommandSink {
    /// What a command returns: for a client, a future of the reply as `T`.
    type Reply<'a, T: FromValue + 'a>
    where
        Self: 'a;

    /// Sends (or queues) a command whose reply reads as `T`.
    fn send<'a, T: FromValue + 'a>(&'a self, cmd: Cmd) -> Self::Reply<'a, T>;
}

/// A sink that answers each command on its own: a [`Client`](crate::Client), an
/// [`Exclusive`](crate::Exclusive) connection, an [`atomic`](crate::atomic) body's
/// transaction, a [`SentinelClient`](crate::sentinel::SentinelClient). The generated
/// `*Commands` traits are implemented for it; a reply that holds stored data takes its type
/// from the binding.
pub trait ReplySink: CommandSink {}

/// A sink that queues commands to run together: a [`Pipeline`](crate::Pipeline) (a
/// transaction's writes included). The generated `*Pipeline` traits are implemented for it.
pub trait BatchSink {
    /// Queues a command; its reply comes back when the batch runs.
    fn queue(&self, cmd: Cmd) -> crate::pipeline::Queued<'_>;
}

/// Every command of the spec, sorted by name, generated methods or not.
pub fn commands() -> &'static [CommandInfo] {
    generated::table::COMMANDS
}

/// Commands of the spec without a generated method, with the reason.
pub static SKIPPED: &[(&str, &str)] = generated::table::SKIPPED;

/// The spec's entry for a top-level command name, in any case (`"get"`, `"CLIENT"`).
pub fn command_info(name: &str) -> Option<&'static CommandInfo> {
    lookup(name.as_bytes())
}

/// The entry of `NAME SUB` (a container's subcommand), in any case.
pub(crate) fn lookup_subcommand(name: &[u8], sub: &[u8]) -> Option<&'static CommandInfo> {
    let mut full = [0u8; 64];
    let len = name.len() + 1 + sub.len();
    let full = full.get_mut(..len)?;
    full[..name.len()].copy_from_slice(name);
    full[name.len()] = b' ';
    full[name.len() + 1..].copy_from_slice(sub);
    full.make_ascii_uppercase();
    let table = generated::table::COMMANDS;
    table
        .binary_search_by(|c| c.name.as_bytes().cmp(full))
        .ok()
        .map(|i| &table[i])
}

/// The entry of a command as sent: its subcommand's for a container (`CLIENT SETNAME`),
/// whether the command was built by a generated method or by hand.
pub(crate) fn lookup_args(args: &crate::value::ArgBuf) -> Option<&'static CommandInfo> {
    let mut it = args.iter();
    let name = it.next()?;
    let top = lookup(name)?;
    if top.route != crate::route::Route::Subcommand {
        return Some(top);
    }
    match it.next() {
        Some(sub) => lookup_subcommand(name, sub),
        None => Some(top),
    }
}

pub(crate) fn lookup(name: &[u8]) -> Option<&'static CommandInfo> {
    let mut upper = [0u8; 32];
    let upper = upper.get_mut(..name.len())?;
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    generated::table::lookup_upper(upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_bytewise_for_subcommand_lookup() {
        let table = generated::table::COMMANDS;
        assert!(
            table
                .windows(2)
                .all(|w| w[0].name.as_bytes() < w[1].name.as_bytes())
        );
        assert_eq!(
            lookup_subcommand(b"client", b"No-Evict").map(|c| c.name),
            Some("CLIENT NO-EVICT")
        );
        assert!(lookup_subcommand(b"CLIENT", b"NOPE").is_none());
        assert!(lookup_subcommand(b"GET", b"X").is_none());
    }
}
