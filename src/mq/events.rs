//! A queue's durable event stream ([`events`]): what happened to its messages, in order, as
//! a `futures::Stream` that resumes where it was after a reconnect.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::Stream;

use super::keys::QueueKeys;
use super::scripts::SET_EVENTS;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::FromValue;

/// Turns `queue`'s event stream on, keeping about the last `keep` events (a Redis Stream
/// trimmed with `MAXLEN ~`), or off with `None` (the stream is deleted). Every script that
/// changes a message then appends its event, in the same atomic step, so the stream never
/// misses or invents one. Off by default: a busy queue pays an `XADD` per change.
pub async fn set_events(client: &Client, queue: &str, keep: Option<usize>) -> Result<()> {
    let keys = QueueKeys::new(queue)?;
    let _: i64 = SET_EVENTS.run(client, &keys, keep.unwrap_or(0)).await?;
    Ok(())
}

/// What happened to a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// Enqueued, runnable now.
    Added,
    /// Enqueued to run later.
    Delayed,
    /// Taken by a worker (with the attempt number).
    Active,
    /// Its handler reported progress.
    Progress,
    /// Handled successfully.
    Completed,
    /// An attempt failed (with the error); a `Retried`, `Dead` or `Removed` follows.
    Failed,
    /// To run again after a delay.
    Retried,
    /// Moved to the dead letters.
    Dead,
    /// Removed ([`remove`](super::remove), or dropped after its last attempt).
    Removed,
    /// Its worker's lease ran out (the worker died or stalled); it is handed out again.
    Stalled,
    /// Put back unfinished by a stopping worker.
    Released,
    /// Put back by its handler as rate limited.
    RateLimited,
    /// A flow's parent, enqueued to wait for its children.
    WaitingChildren,
    /// A flow's parent whose children have all ended: runnable.
    ChildrenCompleted,
    /// An event this version does not know.
    Other(String),
}

impl EventKind {
    fn parse(name: &str) -> EventKind {
        match name {
            "added" => EventKind::Added,
            "delayed" => EventKind::Delayed,
            "active" => EventKind::Active,
            "progress" => EventKind::Progress,
            "completed" => EventKind::Completed,
            "failed" => EventKind::Failed,
            "retried" => EventKind::Retried,
            "dead" => EventKind::Dead,
            "removed" => EventKind::Removed,
            "stalled" => EventKind::Stalled,
            "released" => EventKind::Released,
            "rate-limited" => EventKind::RateLimited,
            "waiting-children" => EventKind::WaitingChildren,
            "children-completed" => EventKind::ChildrenCompleted,
            other => EventKind::Other(other.to_owned()),
        }
    }
}

/// One event of a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueEvent {
    /// The stream entry's id (`<ms>-<n>`): pass it to [`EventsFrom::After`] to resume.
    pub stream_id: String,
    /// When, on the server's clock.
    pub at: SystemTime,
    /// What happened.
    pub kind: EventKind,
    /// The message's id.
    pub message_id: String,
    /// The attempt, for [`EventKind::Active`].
    pub attempt: Option<u32>,
    /// The error, for `Failed` and `Dead`.
    pub error: Option<String>,
    /// The progress reported, for `Progress`.
    pub progress: Option<Bytes>,
    /// The delay, for `Retried` and `RateLimited`.
    pub delay: Option<Duration>,
}

/// Where [`events`] starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventsFrom {
    /// Events appended from now on.
    Now,
    /// Every event still kept.
    Start,
    /// Events after this stream id (resuming a consumer).
    After(String),
}

/// How many events one read takes, and how long it blocks waiting for one.
const READ_COUNT: usize = 256;
const BLOCK_MS: u64 = 5000;

/// The events of `queue` (turned on with [`set_events`]), from `from`, in order. Reads block
/// on the server (`XREAD BLOCK`, on a pooled exclusive connection, never the shared one)
/// instead of polling; after a connection error the stream waits and reads on from the
/// last event it returned, so a reconnect loses or repeats nothing. It ends only when
/// dropped; errors are items, and the stream goes on after them.
pub fn events(
    client: &Client,
    queue: &str,
    from: EventsFrom,
) -> Result<impl Stream<Item = Result<QueueEvent>> + Send + 'static> {
    let keys = QueueKeys::new(queue)?;
    let key = keys.events();
    let last = match from {
        EventsFrom::Now => None,
        EventsFrom::Start => Some("0-0".to_owned()),
        EventsFrom::After(id) => Some(id),
    };
    let state = Reader {
        client: client.clone(),
        key,
        last,
        buffered: VecDeque::new(),
        failures: 0,
    };
    Ok(futures::stream::unfold(state, |mut r| async move {
        let item = r.next().await;
        Some((item, r))
    }))
}

struct Reader {
    client: Client,
    key: String,
    /// The last id returned; `None` until the first read of a stream started at "now".
    last: Option<String>,
    buffered: VecDeque<QueueEvent>,
    failures: u32,
}

impl Reader {
    async fn next(&mut self) -> Result<QueueEvent> {
        loop {
            if let Some(e) = self.buffered.pop_front() {
                self.last = Some(e.stream_id.clone());
                return Ok(e);
            }
            if self.failures > 0 {
                let pause = Duration::from_millis(50 << self.failures.min(6));
                tokio::time::sleep(pause).await;
            }
            let last = match &self.last {
                Some(id) => id.clone(),
                None => {
                    // "Now" is pinned to the newest id at the first read, so events between
                    // reads are never skipped.
                    match self.newest().await {
                        Ok(id) => {
                            self.last = Some(id.clone());
                            id
                        }
                        Err(e) => {
                            self.failures += 1;
                            return Err(e);
                        }
                    }
                }
            };
            let reply = self
                .client
                .cmd("XREAD")
                .arg(("COUNT", READ_COUNT, "BLOCK", BLOCK_MS, "STREAMS"))
                .arg((&self.key, &last))
                .query::<Value>()
                .await;
            match reply.and_then(parse_read) {
                Ok(events) => {
                    self.failures = 0;
                    self.buffered.extend(events);
                }
                Err(e) => {
                    self.failures += 1;
                    return Err(e);
                }
            }
        }
    }

    async fn newest(&self) -> Result<String> {
        let last: Vec<(String, Value)> = self
            .client
            .cmd("XREVRANGE")
            .arg((&self.key, "+", "-", "COUNT", 1))
            .query()
            .await?;
        Ok(last
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |(id, _)| id))
    }
}

/// XREAD's reply (nil on a timeout; one stream, as a RESP3 map or a RESP2 array).
fn parse_read(reply: Value) -> Result<Vec<QueueEvent>> {
    let entries = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(mut streams) if streams.len() == 1 => streams.remove(0).1,
        Value::Array(mut streams) if streams.len() == 1 => match streams.remove(0) {
            Value::Array(mut pair) if pair.len() == 2 => pair.remove(1),
            other => {
                return Err(Error::protocol(format!(
                    "unexpected XREAD stream {other:?}"
                )));
            }
        },
        other => return Err(Error::protocol(format!("unexpected XREAD reply {other:?}"))),
    };
    let entries: Vec<(String, Vec<Bytes>)> = FromValue::from_value(entries)?;
    entries
        .into_iter()
        .map(|(id, fields)| parse_event(id, fields))
        .collect()
}

fn parse_event(stream_id: String, fields: Vec<Bytes>) -> Result<QueueEvent> {
    let ms: u64 = stream_id
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .ok_or_else(|| Error::protocol(format!("bad stream id {stream_id:?}")))?;
    let mut event = QueueEvent {
        stream_id,
        at: UNIX_EPOCH + Duration::from_millis(ms),
        kind: EventKind::Other(String::new()),
        message_id: String::new(),
        attempt: None,
        error: None,
        progress: None,
        delay: None,
    };
    let text = |b: &Bytes| String::from_utf8_lossy(b).into_owned();
    for pair in fields.chunks(2) {
        let [name, value] = pair else { break };
        match &name[..] {
            b"event" => event.kind = EventKind::parse(&text(value)),
            b"id" => event.message_id = text(value),
            b"attempt" => event.attempt = text(value).parse().ok(),
            b"error" => event.error = Some(text(value)),
            b"progress" => event.progress = Some(value.clone()),
            b"delay" => event.delay = text(value).parse().ok().map(Duration::from_millis),
            _ => {}
        }
    }
    Ok(event)
}
