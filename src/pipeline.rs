//! Explicit pipelines and MULTI/EXEC transactions.

use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::BytesMut;

use crate::client::Client;
use crate::cluster::PipePlan;
use crate::cmd::{Cmd, Route};
use crate::commands::CommandSink;
use crate::conn::Payload;
use crate::error::{Error, Kind, Result, ServerError};
use crate::pool::Exclusive;
use crate::query::with_timeout;
use crate::resp::Value;
use crate::route::{Place, refusal};
use crate::value::FromValue;

/// A reply parser: maps one reply; its error becomes that reply's error.
type Parser = Box<dyn Fn(Value) -> Result<Value> + Send + Sync>;

#[derive(Default)]
pub(crate) struct Queue {
    buf: BytesMut,
    count: usize,
    parsers: Vec<(usize, Parser)>,
    /// A queued command blocks: the pipeline runs on an exclusive connection.
    needs_exclusive: bool,
    /// The first argument that could not be encoded: the pipeline fails without sending.
    error: Option<Error>,
    /// On a cluster: where each command ends in `buf`, and where it goes.
    cluster: Option<(Vec<usize>, Vec<PipePlan>)>,
    /// Keys the queued commands may change, with the client-side cache on: invalidated
    /// when the replies are in, before the caller sees them, so it reads its writes.
    written: Vec<bytes::Bytes>,
}

impl Queue {
    /// The slot every keyed command of a cluster transaction shares, or a CROSSSLOT error.
    pub(crate) fn common_slot(&self) -> Result<Option<u16>> {
        let Some((_, plans)) = &self.cluster else {
            return Ok(None);
        };
        let mut slot = None;
        for p in plans {
            match (p, slot, p.slot()) {
                (PipePlan::CrossSlot(why), _, _) => {
                    return Err(ServerError::new(why.clone()).into());
                }
                (_, Some(s), Some(t)) if s != t => {
                    return Err(ServerError::new(
                        "CROSSSLOT Keys in request don't hash to the same slot (a cluster \
                         transaction runs on one node: give its keys one hash tag)",
                    )
                    .into());
                }
                (_, None, Some(t)) => slot = Some(t),
                _ => {}
            }
        }
        Ok(slot)
    }
}

/// Commands gathered to be sent in one write, their replies read together.
///
/// Every generated command method queues into it (`pipe.set("k", 1)`), as does
/// [`cmd`](Pipeline::cmd). Then:
/// - [`run`](Pipeline::run) returns every reply in order, server errors as values;
/// - [`query`](Pipeline::query) reads the replies as one typed value (a tuple, a `Vec`)
///   and fails on the first error.
///
/// [`Client::transaction`] makes one whose commands run inside MULTI/EXEC.
///
/// ```no_run
/// use kermes::prelude::*;
///
/// # async fn demo(client: Client) -> kermes::Result<()> {
/// let pipe = client.pipeline();
/// pipe.set("a", 1);
/// pipe.incr("a");
/// pipe.get("missing");
/// let (ok, n, none): ((), i64, Option<String>) = pipe.query().await?;
///
/// let pipe = client.pipeline();
/// pipe.incr("a");
/// pipe.lpush("a", "x"); // WRONGTYPE: an error value, the rest still ran
/// let replies = pipe.run().await?;
/// assert!(replies[1].is_err());
/// # Ok(()) }
/// ```
pub struct Pipeline {
    client: Client,
    atomic: bool,
    queue: Mutex<Queue>,
}

/// A command queued in a [`Pipeline`]; attach a parser to its reply with
/// [`parse`](Queued::parse).
pub struct Queued<'a> {
    queue: &'a Mutex<Queue>,
    index: usize,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Queued<'_> {
    /// Maps this command's reply when the pipeline runs. A parser that fails turns this
    /// reply into an error; the other replies are unaffected. It is not called for an error
    /// reply.
    pub fn parse(self, f: impl Fn(Value) -> Result<Value> + Send + Sync + 'static) -> Self {
        lock(self.queue).parsers.push((self.index, Box::new(f)));
        self
    }

    /// Position of this command's reply.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl Pipeline {
    pub(crate) fn new(client: &Client, atomic: bool) -> Self {
        Pipeline {
            client: client.clone(),
            atomic,
            queue: Mutex::default(),
        }
    }

    /// Queues a raw command.
    pub fn cmd(&self, mut cmd: Cmd) -> Queued<'_> {
        let mut q = lock(&self.queue);
        if let Some(e) = cmd.args.take_error() {
            q.error.get_or_insert(e);
        }
        let route = cmd.resolved_route();
        if let Some(e) = refusal(route, &cmd.full_name(), Place::Pipeline) {
            q.error.get_or_insert(e);
        }
        if route == Route::Blocking {
            q.needs_exclusive = true;
        }
        if let Some(cache) = self.client.local_cache()
            && let Some(keys) = cache.writing(&cmd.args)
        {
            q.written.extend(keys);
        }
        cmd.args.encode_into(&mut q.buf);
        if self.client.router().is_some() {
            let end = q.buf.len();
            let (ends, plans) = q.cluster.get_or_insert_with(Default::default);
            ends.push(end);
            plans.push(PipePlan::of(&cmd));
        }
        q.count += 1;
        Queued {
            queue: &self.queue,
            index: q.count - 1,
        }
    }

    /// Number of commands queued.
    pub fn len(&self) -> usize {
        lock(&self.queue).count
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends every command in one write and returns the replies in order, an error reply
    /// (or a failed parser) as an `Err` in its place. The outer error is for the connection
    /// (closed, timed out) or, for a transaction, an aborted one. Always a vector, even for
    /// one command.
    pub async fn run(self) -> Result<Vec<Result<Value>>> {
        let client = self.client.clone();
        let atomic = self.atomic;
        let mut queue = self.into_queue();
        if let Some(e) = queue.error.take() {
            return Err(e);
        }
        if queue.count == 0 {
            return Ok(Vec::new());
        }
        let timeout = client.config().response_timeout;
        let span = crate::trace::batch(&client, queue.count, atomic);
        let written = std::mem::take(&mut queue.written);
        let replies = match client.router() {
            // A cluster transaction runs on the node of its keys.
            // The cluster and exclusive paths are boxed: held inline, their futures would
            // make every pipeline in flight as large as the largest of them (8 KB).
            Some(_) if atomic => {
                Box::pin(async {
                    let conn = client.exclusive_for_slot(queue.common_slot()?).await?;
                    execute(&conn, queue, atomic).await
                })
                .await
            }
            Some(router) => {
                let Queue {
                    buf,
                    parsers,
                    cluster,
                    ..
                } = queue;
                let (ends, plans) = cluster.unwrap_or_default();
                let replies =
                    Box::pin(router.pipeline(&buf.freeze(), &ends, &plans, timeout)).await?;
                Ok(apply(replies, parsers))
            }
            None if atomic || queue.needs_exclusive => {
                Box::pin(async {
                    let conn = client.exclusive().await?;
                    execute(&conn, queue, atomic).await
                })
                .await
            }
            None => {
                let Queue {
                    buf,
                    count,
                    parsers,
                    ..
                } = queue;
                let payload = Payload::Encoded(buf.freeze());
                let Some(conn) = client.shared() else {
                    return Err(crate::conn::shut_down());
                };
                let reply = with_timeout(timeout, conn.request(payload, count)).await?;
                Ok(apply(split(reply, count), parsers))
            }
        };
        if let Some(cache) = client.local_cache()
            && !written.is_empty()
        {
            cache.invalidate_keys(&written);
        }
        if let Err(e) = &replies {
            client.registry().failed(e);
            if let Some(span) = &span {
                crate::trace::failed(span, e);
            }
        }
        replies
    }

    pub(crate) fn into_queue(self) -> Queue {
        self.queue
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Empties the pipeline, handing back what was queued.
    pub(crate) fn take_queue(&self) -> Queue {
        std::mem::take(&mut *lock(&self.queue))
    }

    /// Runs the pipeline and reads all replies as one value (a tuple or a `Vec`), failing on
    /// the first error reply.
    pub async fn query<T: FromValue>(self) -> Result<T> {
        collect(self.run().await?)
    }
}

impl Queue {
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Keys the queued commands may change (collected with the client-side cache on).
    pub(crate) fn written(&self) -> &[bytes::Bytes] {
        &self.written
    }
}

/// The replies as one value, failing on the first error.
pub(crate) fn collect<T: FromValue>(replies: Vec<Result<Value>>) -> Result<T> {
    let values = replies.into_iter().collect::<Result<Vec<Value>>>()?;
    T::from_value(Value::Array(values))
}

/// Sends a queue on an exclusive connection, inside MULTI/EXEC when `atomic`.
pub(crate) async fn execute(
    conn: &Exclusive,
    queue: Queue,
    atomic: bool,
) -> Result<Vec<Result<Value>>> {
    let timeout = conn.response_timeout();
    if !atomic {
        // Only blocking commands send a pipeline here; they may block as long as they like.
        let payload = Payload::Encoded(queue.buf.freeze());
        let reply = conn
            .request_payload(payload, queue.count, None, true)
            .await?;
        return Ok(apply(split(reply, queue.count), queue.parsers));
    }
    let mut buf = BytesMut::with_capacity(queue.buf.len() + 32);
    Cmd::new("MULTI").args.encode_into(&mut buf);
    buf.extend_from_slice(&queue.buf);
    Cmd::new("EXEC").args.encode_into(&mut buf);
    let replies = queue.count + 2;
    conn.touch(Route::Transaction);
    let all = split(
        conn.request_payload(Payload::Encoded(buf.freeze()), replies, timeout, false)
            .await?,
        replies,
    );
    let mut all = all.into_iter();
    let multi = all
        .next()
        .unwrap_or_else(|| Err(Error::protocol("no reply to MULTI")));
    multi?;
    // An error while queueing (a syntax error, an unknown command) aborts the transaction.
    let mut queued_error = None;
    for r in all.by_ref().take(queue.count) {
        if let Err(e) = r
            && queued_error.is_none()
        {
            queued_error = Some(e);
        }
    }
    match all.next() {
        Some(Ok(Value::Array(results))) => Ok(apply(
            results.into_iter().map(into_item).collect(),
            queue.parsers,
        )),
        Some(Ok(Value::Nil)) => Err(Error::new(
            Kind::Aborted,
            "transaction aborted: a watched key changed",
        )),
        Some(Err(e)) => Err(queued_error.unwrap_or(e)),
        other => Err(Error::protocol(format!(
            "unexpected reply to EXEC: {other:?}"
        ))),
    }
}

/// One reply per command: the driver returns a lone reply as itself and several as an array.
fn split(reply: Value, count: usize) -> Vec<Result<Value>> {
    match (count, reply) {
        (1, v) => vec![into_item(v)],
        (_, Value::Array(items)) => items.into_iter().map(into_item).collect(),
        (_, other) => vec![Err(Error::protocol(format!(
            "expected {count} replies, got {}",
            other.kind_name()
        )))],
    }
}

fn into_item(v: Value) -> Result<Value> {
    match v {
        Value::Error(e) => Err(e.into()),
        v => Ok(v),
    }
}

fn apply(mut replies: Vec<Result<Value>>, parsers: Vec<(usize, Parser)>) -> Vec<Result<Value>> {
    for (i, parser) in parsers {
        if let Some(slot) = replies.get_mut(i) {
            *slot = match std::mem::replace(slot, Ok(Value::Nil)) {
                Ok(v) => parser(v),
                Err(e) => Err(e),
            };
        }
    }
    replies
}

impl CommandSink for Pipeline {
    type Reply<'a, T: FromValue + 'a>
        = Queued<'a>
    where
        Self: 'a;

    fn send<'a, T: FromValue + 'a>(&'a self, cmd: Cmd) -> Queued<'a> {
        self.cmd(cmd)
    }
}

impl crate::commands::BatchSink for Pipeline {
    fn queue(&self, cmd: Cmd) -> Queued<'_> {
        self.cmd(cmd)
    }
}
