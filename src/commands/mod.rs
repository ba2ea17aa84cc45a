//! The command API: every command of the spec, written once by `codegen/` as trait methods
//! that work on anything implementing [`CommandSink`].
//!
//! ```no_run
//! use kermes::prelude::*;
//!
//! # async fn demo(client: kermes::Client) -> kermes::Result<()> {
//! client.set("greeting", "hello").await?;
//! client.set_with("session", "abc", SetOptions::new().ex(60).nx()).await?;
//! let n: i64 = client.incr("visits").await?;
//! let v: Option<String> = client.get("greeting").to().await?;
//! # Ok(()) }
//! ```

mod generated;
mod info;

pub use generated::*;
pub use info::{BeginSearch, CommandFlags, CommandInfo, FindKeys, KeySpec};

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

pub(crate) fn lookup(name: &[u8]) -> Option<&'static CommandInfo> {
    let mut upper = [0u8; 32];
    let upper = upper.get_mut(..name.len())?;
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    generated::table::lookup_upper(upper)
}
