//! [`atomic`]: Carmine's WATCH/MULTI/EXEC read-modify-write with retries.

use crate::client::Client;
use crate::cmd::{Cmd, cmd};
use crate::commands::CommandSink;
use crate::error::{Error, Kind, Result};
use crate::pipeline::{Pipeline, execute};
use crate::pool::Exclusive;
use crate::query::BoxedQuery;
use crate::resp::Value;
use crate::value::{FromValue, ToArgs};

/// One attempt of [`atomic`]: an exclusive connection for WATCH and reads, and a queue of
/// writes that run inside MULTI/EXEC when the body returns.
///
/// Generated command methods called on the transaction itself run at once (reads after
/// WATCH); those called on [`writes`](Transaction::writes) are queued.
pub struct Transaction<'a> {
    conn: Exclusive,
    writes: Pipeline<'a>,
}

impl<'a> Transaction<'a> {
    /// WATCHes keys: if any changes before EXEC, the attempt is retried.
    pub async fn watch(&self, keys: impl ToArgs) -> Result<()> {
        self.conn.query(cmd("WATCH").arg(keys)).await
    }

    /// The commands to run atomically at the end of the attempt.
    pub fn writes(&self) -> &Pipeline<'a> {
        &self.writes
    }
}

impl CommandSink for Transaction<'_> {
    type Reply<'r, T: FromValue + 'r>
        = BoxedQuery<'r, T>
    where
        Self: 'r;

    fn send<'r, T: FromValue + 'r>(&'r self, cmd: Cmd) -> Self::Reply<'r, T> {
        self.conn.send(cmd)
    }
}

/// Runs `body` as an optimistic transaction, as Carmine's `atomic` does: the body WATCHes
/// keys, reads them, and queues writes on [`Transaction::writes`]; the writes then run in
/// MULTI/EXEC. When a watched key changed meanwhile, EXEC does nothing and the whole body
/// runs again, up to `max_attempts` times; after that the error is
/// [`is_aborted()`](Error::is_aborted). When the body fails, nothing is written and its
/// error is returned.
///
/// Returns the body's value and the replies of the queued writes.
///
/// ```no_run
/// use kermes::prelude::*;
///
/// # async fn demo(client: Client) -> kermes::Result<()> {
/// let (old, _) = kermes::atomic(&client, 10, async |tx| {
///     tx.watch("balance").await?;
///     let balance: i64 = tx.get("balance").to::<Option<i64>>().await?.unwrap_or(0);
///     tx.writes().set("balance", balance + 10);
///     Ok(balance)
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn atomic<T, F>(
    client: &Client,
    max_attempts: usize,
    mut body: F,
) -> Result<(T, Vec<Result<Value>>)>
where
    F: AsyncFnMut(&Transaction<'_>) -> Result<T>,
{
    if max_attempts == 0 {
        return Err(Error::config("atomic: max_attempts must be at least 1"));
    }
    for attempt in 1..=max_attempts {
        let tx = Transaction {
            conn: client.exclusive().await?,
            writes: Pipeline::new(client, true),
        };
        let value = match body(&tx).await {
            Ok(v) => v,
            Err(e) => {
                // Nothing was queued on the server (MULTI comes at the end): dropping the
                // WATCH is all the cleanup there is.
                let _ = tx.conn.query::<()>(cmd("UNWATCH")).await;
                return Err(e);
            }
        };
        let queue = tx.writes.into_queue();
        if queue.is_empty() {
            tx.conn.query::<()>(cmd("UNWATCH")).await?;
            return Ok((value, Vec::new()));
        }
        match execute(&tx.conn, queue, true).await {
            Ok(replies) => return Ok((value, replies)),
            Err(e) if e.is_aborted() => {
                tracing::debug!(attempt, "atomic: a watched key changed; retrying");
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::new(
        Kind::Aborted,
        format!("atomic gave up after {max_attempts} attempts: watched keys kept changing"),
    ))
}
