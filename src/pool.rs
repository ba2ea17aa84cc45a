//! Exclusive connections, managed by deadpool: for what must not share a connection
//! (blocking commands, WATCH/MULTI/EXEC, subscriptions).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::BytesMut;
use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};

use crate::cmd::{Cmd, Route, cmd};
use crate::config::Config;
use crate::conn::{Connection, Payload};
use crate::error::{Error, Kind, Result};
use crate::query::{into_result, with_timeout};
use crate::resp::Value;
use crate::value::FromValue;

pub(crate) type Pool = managed::Pool<Manager>;

/// Creates exclusive connections and checks them before reuse.
pub(crate) struct Manager {
    config: Arc<Config>,
    ping: AtomicU64,
}

impl Manager {
    pub(crate) fn new(config: Arc<Config>) -> Self {
        Manager {
            config,
            ping: AtomicU64::new(0),
        }
    }
}

/// A connection in the pool, and whether its last command completed.
pub(crate) struct PooledConnection {
    conn: Connection,
    /// False while a command is in flight; a checkout dropped in that state (a cancelled
    /// BLPOP, say) leaves a reply on the wire and the connection is discarded, not reused.
    idle: AtomicBool,
}

impl managed::Manager for Manager {
    type Type = PooledConnection;
    type Error = Error;

    async fn create(&self) -> Result<PooledConnection> {
        // No silent reconnect: WATCH or a subscription must not vanish behind the caller.
        let conn = Connection::open(self.config.clone(), false).await?;
        Ok(PooledConnection {
            conn,
            idle: AtomicBool::new(true),
        })
    }

    async fn recycle(&self, obj: &mut PooledConnection, _: &Metrics) -> RecycleResult<Error> {
        if !obj.idle.load(Ordering::Relaxed) {
            return Err(RecycleError::message("a command was abandoned mid-flight"));
        }
        if obj.conn.is_closed() {
            return Err(RecycleError::message("connection closed"));
        }
        // One round trip clears any WATCH left behind and proves the socket answers.
        let n = self.ping.fetch_add(1, Ordering::Relaxed).to_string();
        let mut payload = BytesMut::new();
        cmd("UNWATCH").args.encode_into(&mut payload);
        cmd("PING").arg(&n).args.encode_into(&mut payload);
        let reply = obj
            .conn
            .request(Payload::Encoded(payload.freeze()), 2)
            .await?;
        match reply {
            Value::Array(r)
                if r.len() == 2 && r[1].as_bytes().is_some_and(|b| b[..] == *n.as_bytes()) =>
            {
                Ok(())
            }
            other => Err(RecycleError::message(format!(
                "unexpected recycle reply: {other:?}"
            ))),
        }
    }
}

/// A connection checked out of the pool for the caller alone. It goes back to the pool when
/// dropped (after UNWATCH + PING prove it clean), or is discarded if a command on it was
/// abandoned.
pub struct Exclusive {
    obj: managed::Object<Manager>,
    response_timeout: Option<std::time::Duration>,
}

impl Exclusive {
    pub(crate) fn new(
        obj: managed::Object<Manager>,
        response_timeout: Option<std::time::Duration>,
    ) -> Self {
        Exclusive {
            obj,
            response_timeout,
        }
    }

    /// Sends a command and converts its reply. Blocking commands wait as long as they
    /// block; other commands fall under the client's response timeout. The generated
    /// command methods work here too (`exclusive.watch("k").await`).
    pub async fn query<T: FromValue>(&self, cmd: Cmd) -> Result<T> {
        self.request(cmd).await.and_then(into_result)
    }

    pub(crate) async fn request(&self, mut cmd: Cmd) -> Result<Value> {
        if let Some(e) = cmd.args.take_error() {
            return Err(e);
        }
        if cmd.route == Route::PubSub {
            return Err(Error::config(format!(
                "{} puts a connection in pub/sub mode; use Client::subscriber() or Client::monitor()",
                cmd.name()
            )));
        }
        // A blocking command waits as long as it blocks, unless given its own timeout.
        let timeout = match cmd.route {
            Route::Blocking => cmd.timeout,
            _ => cmd.timeout.or(self.response_timeout),
        };
        self.request_payload(Payload::Args(cmd.args), 1, timeout)
            .await
    }

    /// Sends a payload of `replies` replies (one command, or a pipeline).
    pub(crate) async fn request_payload(
        &self,
        payload: Payload,
        replies: usize,
        timeout: Option<std::time::Duration>,
    ) -> Result<Value> {
        // Cleared if this future is dropped before the reply: the connection is then
        // discarded instead of returned to the pool with a reply still due.
        self.obj.idle.store(false, Ordering::Relaxed);
        let reply = with_timeout(timeout, self.obj.conn.request(payload, replies)).await?;
        self.obj.idle.store(true, Ordering::Relaxed);
        Ok(reply)
    }

    /// The client's response timeout, which this connection applies.
    pub(crate) fn response_timeout(&self) -> Option<std::time::Duration> {
        self.response_timeout
    }
}

impl crate::commands::CommandSink for Exclusive {
    type Reply<'a, T: FromValue + 'a> = crate::query::BoxedQuery<'a, T>;

    fn send<'a, T: FromValue + 'a>(&'a self, cmd: Cmd) -> Self::Reply<'a, T> {
        crate::query::BoxedQuery::new(Box::pin(self.request(cmd)))
    }
}

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
