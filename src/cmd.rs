//! [`Cmd`]: one command and its arguments, encoded as it is built.

use std::time::Duration;

use crate::value::{ArgBuf, ToArgs};

pub(crate) use crate::route::Route;

/// The route of a top-level command name, from the generated command table. Names the
/// spec does not know (module commands) share connections.
fn route_of(name: &[u8]) -> Route {
    crate::commands::lookup(name).map_or(Route::Shared, |info| info.route)
}

/// A command: its name, its arguments, and options for how it runs.
///
/// Arguments are encoded into the command's buffer as they are added, so sending copies the
/// bytes once into the connection's write buffer and nothing else.
///
/// ```
/// let cmd = kermes::cmd("SET").arg("key").arg(42).arg(["EX", "10"]);
/// assert_eq!(cmd.arg_count(), 5);
/// ```
#[derive(Clone)]
#[must_use = "a command does nothing until it is sent"]
pub struct Cmd {
    pub(crate) args: ArgBuf,
    pub(crate) route: Route,
    pub(crate) timeout: Option<Duration>,
}

/// Starts a command. `name` may hold one word (`"GET"`); add subcommand words as arguments
/// (`cmd("CLIENT").arg("ID")`).
pub fn cmd(name: &str) -> Cmd {
    Cmd::new(name)
}

impl Cmd {
    /// Starts a command named `name`.
    pub fn new(name: &str) -> Cmd {
        let mut args = ArgBuf::with_capacity(64);
        args.push(name.as_bytes());
        Cmd {
            args,
            route: route_of(name.as_bytes()),
            timeout: None,
        }
    }

    /// A command whose route the generator already knows.
    pub(crate) fn with_route(name: &'static str, route: Route) -> Cmd {
        let mut args = ArgBuf::with_capacity(64);
        args.push(name.as_bytes());
        Cmd {
            args,
            route,
            timeout: None,
        }
    }

    /// Appends arguments (see [`ToArgs`]: a collection adds one argument per element).
    pub fn arg(mut self, arg: impl ToArgs) -> Cmd {
        arg.write_args(&mut self.args);
        self
    }

    /// Appends arguments to a command held by reference.
    pub fn push_arg(&mut self, arg: impl ToArgs) -> &mut Cmd {
        arg.write_args(&mut self.args);
        self
    }

    /// Overrides the client's response timeout for this command.
    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = Some(timeout);
        self
    }

    /// Appends the command as it goes on the wire (a RESP array of bulk strings).
    pub fn write_to(&self, out: &mut bytes::BytesMut) {
        self.args.encode_into(out);
    }

    /// Number of arguments, the name included.
    pub fn arg_count(&self) -> usize {
        self.args.len()
    }

    /// The command's name as given.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(self.args.get(0).unwrap_or_default()).into_owned()
    }

    /// True when the command blocks its connection server-side (BLPOP, XREAD with BLOCK,
    /// WAIT ...).
    pub fn is_blocking(&self) -> bool {
        self.resolved_route() == Route::Blocking
    }

    /// True when the spec marks the command (or its subcommand) read-only: it may run on a
    /// replica.
    pub(crate) fn is_readonly(&self) -> bool {
        crate::commands::lookup_args(&self.args)
            .is_some_and(|i| i.flags.contains(crate::commands::CommandFlags::READONLY))
    }

    /// Where the command may run, its subcommand and arguments considered.
    #[inline]
    pub(crate) fn resolved_route(&self) -> Route {
        crate::route::resolve(self.route, &self.args)
    }

    /// The command's name, with the subcommand of a container (`CLIENT REPLY`), for
    /// messages.
    pub(crate) fn full_name(&self) -> String {
        let mut name = self.name().to_ascii_uppercase();
        if self.route == Route::Subcommand
            && let Some(sub) = self.args.get(1)
        {
            name.push(' ');
            name.push_str(&String::from_utf8_lossy(sub).to_ascii_uppercase());
        }
        name
    }
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Arguments may hold secrets (AUTH, values): show the name and the count only.
        f.debug_struct("Cmd")
            .field("name", &self.name())
            .field("args", &(self.args.len() - 1))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_follows_the_command_name_case_insensitively() {
        assert_eq!(cmd("get").route, Route::Shared);
        assert!(cmd("blpop").is_blocking());
        assert!(!cmd("XREADGROUP").is_blocking());
        assert!(cmd("XREADGROUP").arg(["BLOCK", "0"]).is_blocking());
        assert_eq!(cmd("Multi").route, Route::Transaction);
        assert_eq!(cmd("psubscribe").route, Route::PubSub);
    }

    #[test]
    fn debug_hides_arguments() {
        let c = cmd("AUTH").arg("user").arg("hunter2");
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("AUTH"));
    }
}
