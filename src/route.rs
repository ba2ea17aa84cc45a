//! Where a command may run, decided once per command from the generated table: by name, by
//! subcommand (`CLIENT SETNAME`), and by arguments where the spec says so (`XREAD` blocks
//! only with `BLOCK`).

use crate::error::Error;
use crate::value::ArgBuf;

/// How a command must be routed. The generated table holds one per command and subcommand;
/// `Subcommand` and `BlockOption` are resolved from the arguments when the command is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Any shared multiplexed connection.
    Shared,
    /// Blocks the connection server-side (the spec's BLOCKING flag): runs on an exclusive
    /// connection and is exempt from the response timeout.
    Blocking,
    /// Blocks only when its `BLOCK` option is given (XREAD, XREADGROUP).
    BlockOption,
    /// A container (CLIENT, CONFIG ...): its subcommand decides.
    Subcommand,
    /// WATCH, MULTI, EXEC ...: exclusive connections only.
    Transaction,
    /// Changes per-connection state for later commands (SELECT, AUTH, HELLO, CLIENT
    /// SETNAME, CLIENT TRACKING ...): exclusive connections only, which are reset before they
    /// return to the pool.
    ConnectionState,
    /// Puts the connection in pub/sub or MONITOR mode, where replies stop matching requests.
    PubSub,
    /// Makes the server skip replies (CLIENT REPLY): never runs, since every request waits
    /// for its reply.
    NoReply,
}

/// Where a command is about to run, for the refusal messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// The client's shared multiplexed connection.
    Shared,
    /// An exclusive connection from the pool.
    Exclusive,
    /// A pipeline or a MULTI/EXEC transaction.
    Pipeline,
}

/// The final route of a command: subcommands and the BLOCK option resolved.
#[inline]
pub(crate) fn resolve(route: Route, args: &ArgBuf) -> Route {
    match route {
        Route::Subcommand => subcommand_route(args),
        Route::BlockOption if has_block_option(args) => Route::Blocking,
        Route::BlockOption => Route::Shared,
        other => other,
    }
}

fn subcommand_route(args: &ArgBuf) -> Route {
    let (Some(name), Some(sub)) = (args.get(0), args.get(1)) else {
        return Route::Shared;
    };
    // Unknown subcommands (a newer server's, a module's) are ordinary commands.
    crate::commands::lookup_subcommand(name, sub).map_or(Route::Shared, |info| {
        match info.route {
            // A subcommand is never itself a container.
            Route::Subcommand => Route::Shared,
            r => resolve(r, args),
        }
    })
}

/// True when `XREAD [COUNT n] [BLOCK ms] STREAMS ...` or `XREADGROUP GROUP g c [COUNT n]
/// [BLOCK ms] [NOACK] STREAMS ...` carries BLOCK before STREAMS (after it come stream names,
/// which may be called anything).
fn has_block_option(args: &ArgBuf) -> bool {
    let mut i = 1;
    while let Some(arg) = args.get(i) {
        if arg.eq_ignore_ascii_case(b"STREAMS") {
            return false;
        }
        if arg.eq_ignore_ascii_case(b"BLOCK") {
            return true;
        }
        // GROUP takes a group and a consumer name, COUNT a number: skip their values.
        i += if arg.eq_ignore_ascii_case(b"GROUP") {
            3
        } else if arg.eq_ignore_ascii_case(b"COUNT") {
            2
        } else {
            1
        };
    }
    false
}

/// The error for a command that cannot run at `place`, or `None` when it can.
pub(crate) fn refusal(route: Route, name: &str, place: Place) -> Option<Error> {
    let why = match (route, place) {
        (Route::NoReply, _) => format!(
            "{name} is not supported: kermes waits for a reply to every command, and a \
             command the server does not answer would leave every later reply matched to \
             the wrong caller"
        ),
        (Route::PubSub, _) => format!(
            "{name} puts a connection in pub/sub or MONITOR mode; use Client::subscriber(), \
             Client::shared_subscriber() or Client::monitor()"
        ),
        (Route::Transaction, Place::Pipeline) => format!(
            "{name} cannot be queued in a pipeline; use Client::transaction() for MULTI/EXEC \
             or kermes::atomic() for WATCH"
        ),
        (Route::ConnectionState, Place::Pipeline) => format!(
            "{name} changes the state of its connection and cannot be queued in a pipeline; \
             run it on Client::exclusive()"
        ),
        (Route::Transaction | Route::ConnectionState, Place::Shared) => format!(
            "{name} changes the state of its connection and cannot run on a shared one; use \
             Client::exclusive() (or kermes::atomic() and Client::transaction() for \
             WATCH/MULTI/EXEC)"
        ),
        _ => return None,
    };
    Some(Error::usage(why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    fn route_of(c: crate::Cmd) -> Route {
        resolve(c.route, &c.args)
    }

    #[test]
    fn subcommands_decide_for_containers_in_any_case() {
        assert_eq!(route_of(cmd("CLIENT").arg("ID")), Route::Shared);
        assert_eq!(
            route_of(cmd("client").arg(["setname", "x"])),
            Route::ConnectionState
        );
        assert_eq!(
            route_of(cmd("CLIENT").arg(["REPLY", "OFF"])),
            Route::NoReply
        );
        assert_eq!(
            route_of(cmd("CLIENT").arg(["Tracking", "on"])),
            Route::ConnectionState
        );
        assert_eq!(route_of(cmd("CLIENT")), Route::Shared);
        assert_eq!(route_of(cmd("CLIENT").arg("NO-SUCH-SUB")), Route::Shared);
        assert_eq!(route_of(cmd("CONFIG").arg(["GET", "x"])), Route::Shared);
        assert_eq!(route_of(cmd("READONLY")), Route::ConnectionState);
        assert_eq!(route_of(cmd("WATCH").arg("k")), Route::Transaction);
    }

    #[test]
    fn xread_blocks_only_with_block_before_streams() {
        let xread = |args: &[&str]| route_of(cmd("XREAD").arg(args));
        assert_eq!(xread(&["STREAMS", "s", "0"]), Route::Shared);
        assert_eq!(xread(&["COUNT", "1", "STREAMS", "s", "0"]), Route::Shared);
        assert_eq!(xread(&["BLOCK", "0", "STREAMS", "s", "0"]), Route::Blocking);
        assert_eq!(
            xread(&["count", "5", "block", "0", "streams", "s", "0"]),
            Route::Blocking
        );
        assert_eq!(xread(&["STREAMS", "BLOCK", "0"]), Route::Shared);
        // A COUNT of "BLOCK" is a value, not the option (the server will refuse it).
        assert_eq!(
            xread(&["COUNT", "BLOCK", "STREAMS", "s", "0"]),
            Route::Shared
        );
        let group = |args: &[&str]| route_of(cmd("XREADGROUP").arg(args));
        assert_eq!(
            group(&["GROUP", "BLOCK", "BLOCK", "STREAMS", "s", ">"]),
            Route::Shared
        );
        assert_eq!(
            group(&[
                "GROUP", "g", "c", "NOACK", "BLOCK", "5", "STREAMS", "s", ">"
            ]),
            Route::Blocking
        );
    }

    #[test]
    fn refusals_point_only_where_the_command_can_run() {
        let shared = refusal(Route::ConnectionState, "SELECT", Place::Shared).unwrap();
        assert!(shared.is_usage() && shared.to_string().starts_with("not allowed here: "));
        assert!(shared.to_string().contains("exclusive()"));
        assert!(refusal(Route::ConnectionState, "SELECT", Place::Exclusive).is_none());
        let reply = refusal(Route::NoReply, "CLIENT REPLY", Place::Exclusive).unwrap();
        assert!(!reply.to_string().contains("exclusive()"));
        let sub = refusal(Route::PubSub, "SUBSCRIBE", Place::Shared).unwrap();
        assert!(!sub.to_string().contains("exclusive()"));
        assert!(refusal(Route::Blocking, "BLPOP", Place::Pipeline).is_none());
        assert!(refusal(Route::Transaction, "MULTI", Place::Pipeline).is_some());
    }
}
