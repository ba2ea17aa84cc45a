//! [`atomic`]: Carmine's WATCH/MULTI/EXEC read-modify-write with retries.

use std::future::Future;
use std::sync::Arc;

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
/// writes that run inside MULTI/EXEC when the body returns. Cheap to clone; an owned handle,
/// so the body's future is `Send` whenever what it holds is.
///
/// Generated command methods called on the transaction run at once (reads after WATCH);
/// those called on [`writes`](Transaction::writes) are queued.
#[derive(Clone)]
pub struct Transaction {
    inner: Arc<Attempt>,
}

struct Attempt {
    client: Client,
    /// Taken by the first command: on a cluster, on the node of that command's keys.
    conn: tokio::sync::OnceCell<Exclusive>,
    writes: Pipeline,
}

impl Transaction {
    pub(crate) async fn begin(client: &Client) -> Result<Transaction> {
        Ok(Transaction {
            inner: Arc::new(Attempt {
                client: client.clone(),
                conn: tokio::sync::OnceCell::new(),
                writes: Pipeline::new(client, true),
            }),
        })
    }

    /// The attempt's connection, taken on the node of `slot` when it is the first command
    /// (on a cluster every command of an attempt must share that slot).
    async fn conn(&self, slot: Option<u16>) -> Result<&Exclusive> {
        self.inner
            .conn
            .get_or_try_init(|| self.inner.client.exclusive_for_slot(slot))
            .await
    }

    /// The slot of a command's keys, on a cluster.
    fn slot_of(&self, cmd: &Cmd) -> Option<u16> {
        self.inner.client.router()?;
        crate::cluster::PipePlan::of(cmd).slot()
    }

    /// WATCHes keys: if any changes before EXEC, the attempt is retried.
    pub async fn watch(&self, keys: impl ToArgs) -> Result<()> {
        let watch = cmd("WATCH").arg(keys);
        let slot = self.slot_of(&watch);
        self.conn(slot).await?.query(watch).await
    }

    /// The commands to run atomically at the end of the attempt.
    pub fn writes(&self) -> &Pipeline {
        &self.inner.writes
    }

    /// Runs the queued writes in MULTI/EXEC (UNWATCH alone when none are queued). An
    /// [`is_aborted()`](Error::is_aborted) error means a watched key changed.
    pub(crate) async fn commit(&self) -> Result<Vec<Result<Value>>> {
        let queue = self.inner.writes.take_queue();
        if queue.is_empty() {
            if let Some(conn) = self.inner.conn.get() {
                conn.query::<()>(cmd("UNWATCH")).await?;
            }
            return Ok(Vec::new());
        }
        let slot = queue.common_slot()?;
        let written = queue.written().to_vec();
        let replies = execute(self.conn(slot).await?, queue, true).await;
        if let Some(cache) = self.inner.client.local_cache() {
            cache.invalidate_keys(&written);
        }
        replies
    }

    /// Gives up the attempt: nothing queued runs, WATCH is dropped.
    pub(crate) async fn rollback(&self) {
        // MULTI is only sent at commit, so there is nothing to DISCARD.
        self.inner.writes.take_queue();
        if let Some(conn) = self.inner.conn.get() {
            let _ = conn.query::<()>(cmd("UNWATCH")).await;
        }
    }
}

impl CommandSink for Transaction {
    type Reply<'r, T: FromValue + 'r> = BoxedQuery<'r, T>;

    fn send<'r, T: FromValue + 'r>(&'r self, cmd: Cmd) -> Self::Reply<'r, T> {
        let slot = self.slot_of(&cmd);
        BoxedQuery::new(Box::pin(async move {
            self.conn(slot).await?.request(cmd).await
        }))
    }
}

impl crate::commands::ReplySink for Transaction {}

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
/// let (old, _) = kermes::atomic(&client, 10, |tx| async move {
///     tx.watch("balance").await?;
///     let balance: i64 = tx.get::<Option<i64>>("balance").await?.unwrap_or(0);
///     tx.writes().set("balance", balance + 10);
///     Ok(balance)
/// })
/// .await?;
/// # Ok(()) }
/// ```
pub async fn atomic<T, F, Fut>(
    client: &Client,
    max_attempts: usize,
    mut body: F,
) -> Result<(T, Vec<Result<Value>>)>
where
    F: FnMut(Transaction) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if max_attempts == 0 {
        return Err(Error::config("atomic: max_attempts must be at least 1"));
    }
    for attempt in 1..=max_attempts {
        let tx = Transaction::begin(client).await?;
        let value = match body(tx.clone()).await {
            Ok(v) => v,
            Err(e) => {
                tx.rollback().await;
                return Err(e);
            }
        };
        match tx.commit().await {
            Ok(replies) => return Ok((value, replies)),
            Err(e) if e.is_aborted() => {
                tracing::debug!(attempt, "atomic: a watched key changed; retrying");
            }
            Err(e) => return Err(e),
        }
    }
    Err(gave_up(max_attempts))
}

pub(crate) fn gave_up(max_attempts: usize) -> Error {
    Error::new(
        Kind::Aborted,
        format!("atomic gave up after {max_attempts} attempts: watched keys kept changing"),
    )
}
