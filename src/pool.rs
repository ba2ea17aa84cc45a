//! Exclusive connections, managed by deadpool: for what must not share a connection
//! (blocking commands, WATCH/MULTI/EXEC, SELECT and other connection state).
//!
//! A connection goes back to the pool in the state its handshake made, or not at all: what
//! a holder changed is undone in one round trip (RESET and the handshake again, or DISCARD
//! and UNWATCH), and a connection whose holder abandoned a command is closed at once.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use crate::cmd::{Cmd, Route, cmd};
use crate::conn::{Connection, Options, Payload, check_handshake, replay_handshake};
use crate::error::{Error, Kind, Result};
use crate::query::{into_result, with_timeout};
use crate::resp::Value;
use crate::route::{Place, refusal};
use crate::value::FromValue;

pub(crate) type Pool = managed::Pool<Manager>;

/// A holder ran WATCH, MULTI ...: undone with DISCARD and UNWATCH.
const TOUCHED_TRANSACTION: u8 = 1;
/// A holder changed connection state (SELECT, AUTH, HELLO, CLIENT TRACKING ...): undone
/// with RESET and the handshake.
const TOUCHED_STATE: u8 = 2;

/// Creates exclusive connections and cleans them before reuse.
pub(crate) struct Manager {
    opts: Options,
    ping: AtomicU64,
}

impl Manager {
    pub(crate) fn new(opts: Options) -> Self {
        Manager {
            opts,
            ping: AtomicU64::new(0),
        }
    }
}

/// A connection in the pool, and what its holder did with it.
pub(crate) struct PooledConnection {
    conn: Connection,
    /// False while a command is in flight; a checkout dropped in that state is closed.
    idle: AtomicBool,
    /// What the holder changed, to undo before the next holder.
    touched: AtomicU8,
}

impl managed::Manager for Manager {
    type Type = PooledConnection;
    type Error = Error;

    async fn create(&self) -> Result<PooledConnection> {
        Ok(PooledConnection {
            conn: Connection::open(self.opts.clone()).await?,
            idle: AtomicBool::new(true),
            touched: AtomicU8::new(0),
        })
    }

    async fn recycle(&self, obj: &mut PooledConnection, _: &Metrics) -> RecycleResult<Error> {
        if !obj.idle.load(Ordering::Relaxed) {
            return Err(RecycleError::message("a command was abandoned mid-flight"));
        }
        if obj.conn.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        let touched = obj.touched.swap(0, Ordering::Relaxed);
        let n = self.ping.fetch_add(1, Ordering::Relaxed).to_string();
        // Commands before the final PING, and the handshake within them to check.
        let mut before: Vec<Cmd> = Vec::new();
        let mut replayed = Vec::new();
        if touched & TOUCHED_STATE != 0 {
            before.push(cmd("RESET"));
            replayed = replay_handshake(&self.opts.config, obj.conn.protocol(), self.opts.readonly);
            before.extend(replayed.iter().map(|(c, _)| c.clone()));
        } else if touched & TOUCHED_TRANSACTION != 0 {
            // DISCARD ends a MULTI left open (and fails harmlessly outside one).
            before.push(cmd("DISCARD"));
            before.push(cmd("UNWATCH"));
        }
        let mut payload = BytesMut::new();
        for c in &before {
            c.args.encode_into(&mut payload);
        }
        // The echo proves the socket answers and that every reply before it was read.
        cmd("PING").arg(&n).args.encode_into(&mut payload);
        let count = before.len() + 1;
        let reply = obj
            .conn
            .request(Payload::Encoded(payload.freeze()), count)
            .await?;
        let mut replies = match reply {
            Value::Array(r) if count > 1 && r.len() == count => r,
            single if count == 1 => vec![single],
            other => {
                return Err(RecycleError::message(format!(
                    "unexpected recycle reply: {other:?}"
                )));
            }
        };
        let echo = replies.pop();
        let echoed = echo
            .as_ref()
            .and_then(Value::as_bytes)
            .is_some_and(|b| b[..] == *n.as_bytes());
        if !echoed {
            return Err(RecycleError::message(format!(
                "unexpected reply to the recycle PING: {echo:?}"
            )));
        }
        if touched & TOUCHED_STATE != 0 {
            let mut replies = replies.into_iter();
            match replies.next() {
                Some(Value::Simple(s)) if &s[..] == b"RESET" => {}
                // Servers before Redis 6.2 have no RESET: this connection cannot be cleaned.
                other => {
                    return Err(RecycleError::message(format!(
                        "RESET failed ({other:?}); the connection is discarded"
                    )));
                }
            }
            check_handshake(&replayed, replies.collect())?;
        }
        Ok(())
    }
}

/// A connection checked out of the pool for the caller alone. It goes back to the pool when
/// dropped, cleaned of what its holder changed; if a command on it was abandoned (its
/// future dropped or timed out before the reply), it is closed at once instead, so a
/// cancelled BLPOP stops blocking on the server.
pub struct Exclusive {
    obj: Option<managed::Object<Manager>>,
    response_timeout: Option<Duration>,
}

impl Exclusive {
    pub(crate) fn new(obj: managed::Object<Manager>, response_timeout: Option<Duration>) -> Self {
        Exclusive {
            obj: Some(obj),
            response_timeout,
        }
    }

    fn pooled(&self) -> &PooledConnection {
        // Only `drop` takes the object out.
        self.obj.as_deref().expect("an exclusive connection in use")
    }

    /// Sends a command and converts its reply. Blocking commands wait as long as they
    /// block; other commands fall under the client's response timeout. Connection state
    /// (SELECT, WATCH, CLIENT TRACKING ...) may change here; it is undone before the
    /// connection serves anyone else. The generated command methods work here too
    /// (`exclusive.watch("k").await`).
    pub async fn query<T: FromValue>(&self, cmd: Cmd) -> Result<T> {
        self.request(cmd).await.and_then(into_result)
    }

    pub(crate) async fn request(&self, mut cmd: Cmd) -> Result<Value> {
        if let Some(e) = cmd.args.take_error() {
            return Err(e);
        }
        let route = cmd.resolved_route();
        if let Some(e) = refusal(route, &cmd.full_name(), Place::Exclusive) {
            return Err(e);
        }
        self.touch(route);
        let blocking = route == Route::Blocking;
        // A blocking command waits as long as it blocks, unless given its own timeout.
        let timeout = match blocking {
            true => cmd.timeout,
            false => cmd.timeout.or(self.response_timeout),
        };
        self.request_payload(Payload::Args(cmd.args), 1, timeout, blocking)
            .await
    }

    /// Records that a command of `route` ran, so the recycle undoes what it changed.
    pub(crate) fn touch(&self, route: Route) {
        let flag = match route {
            Route::Transaction => TOUCHED_TRANSACTION,
            Route::ConnectionState => TOUCHED_STATE,
            _ => return,
        };
        self.pooled().touched.fetch_or(flag, Ordering::Relaxed);
    }

    /// Sends a payload of `replies` replies (one command, or a pipeline).
    pub(crate) async fn request_payload(
        &self,
        payload: Payload,
        replies: usize,
        timeout: Option<Duration>,
        blocking: bool,
    ) -> Result<Value> {
        let pooled = self.pooled();
        // Still false if this future is dropped before the reply: the connection is then
        // closed instead of returned to the pool with a reply due.
        pooled.idle.store(false, Ordering::Relaxed);
        let reply = with_timeout(timeout, pooled.conn.send(payload, replies, blocking)).await?;
        pooled.idle.store(true, Ordering::Relaxed);
        Ok(reply)
    }

    /// The client's response timeout, which this connection applies.
    pub(crate) fn response_timeout(&self) -> Option<Duration> {
        self.response_timeout
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if let Some(obj) = self.obj.take() {
            if !obj.idle.load(Ordering::Relaxed) {
                // Shut the socket now, from this thread, before the caller's next command can
                // reach the server: a cancelled BLPOP must not pop what is pushed next.
                obj.conn.kill();
                // Out of the pool: its slot is free at once, and it is never handed out.
                drop(managed::Object::take(obj));
            }
        }
    }
}

impl crate::commands::CommandSink for Exclusive {
    type Reply<'a, T: FromValue + 'a> = crate::query::BoxedQuery<'a, T>;

    fn send<'a, T: FromValue + 'a>(&'a self, cmd: Cmd) -> Self::Reply<'a, T> {
        crate::query::BoxedQuery::new(Box::pin(self.request(cmd)))
    }
}

impl crate::commands::ReplySink for Exclusive {}

pub(crate) fn pool_error(e: managed::PoolError<Error>) -> Error {
    match e {
        managed::PoolError::Backend(e) => e,
        managed::PoolError::Timeout(what) => Error::new(
            Kind::Pool,
            format!("no exclusive connection available in time ({what:?})"),
        ),
        managed::PoolError::Closed => Error::closed("the connection pool is closed"),
        other => Error::new(Kind::Pool, other.to_string()),
    }
}
