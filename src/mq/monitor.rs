//! Looking into queues: counts per state, content, one message's status, queue names,
//! dead letters, and clearing.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::TryStreamExt;

use super::keys::{PREFIX, QueueKeys, queue_of};
use super::scripts::{
    CLEAR, CONTENT, DEAD_LETTERS, JOB_DETAILS, MESSAGE_STATUS, REQUEUE_DEAD, STATUS,
};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;
use crate::resp::Value;
use crate::value::FromValue;

/// Exact counts of a queue's messages per state ([`queue_status`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStatus {
    /// Runnable now, waiting for a worker (including messages whose worker's lease ran out).
    pub queued: u64,
    /// Waiting for their delay or retry backoff to end.
    pub delayed: u64,
    /// Held by a worker with a live lease.
    pub locked: u64,
    /// Finished, their id kept for a de-dup window.
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
    /// Of the locked, those asked to run again when their handling ends.
    pub requeue_pending: u64,
    /// Paused ([`pause`](super::pause)): workers take nothing new.
    pub paused: bool,
    /// Flow parents waiting for their children ([`enqueue_flow`](super::enqueue_flow)).
    pub waiting_children: u64,
}

/// Where one message is.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageState {
    /// Runnable, waiting for a worker.
    Queued,
    /// Runnable after this long (a delay or a retry backoff).
    Delayed(Duration),
    /// Held by a worker whose lease runs this much longer unless renewed.
    Locked {
        /// Lease left.
        lease_left: Duration,
        /// Asked to run again once this handling ends.
        requeue: bool,
    },
    /// Finished; its id is refused by `enqueue` for this much longer (de-dup window).
    Done(Duration),
    /// A dead letter, with its last error.
    Dead(String),
    /// A flow's parent waiting for this many children
    /// ([`enqueue_flow`](super::enqueue_flow)).
    WaitingChildren(u64),
}

/// A message's state and how many attempts it has had.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageStatus {
    /// Where it is.
    pub state: MessageState,
    /// Attempts started.
    pub attempts: u32,
}

impl FromValue for MessageStatus {
    fn from_value(value: Value) -> Result<Self> {
        let (state, attempts, ms, detail): (String, u32, u64, String) =
            FromValue::from_value(value)?;
        // For a waiting parent the number is its pending children, not milliseconds.
        let (n, ms) = (ms, Duration::from_millis(ms));
        let state = match state.as_str() {
            "queued" => MessageState::Queued,
            "delayed" => MessageState::Delayed(ms),
            "locked" => MessageState::Locked {
                lease_left: ms,
                requeue: detail == "1",
            },
            "done" => MessageState::Done(ms),
            "dead" => MessageState::Dead(detail),
            "waiting" => MessageState::WaitingChildren(n),
            other => return Err(Error::protocol(format!("unknown message state {other:?}"))),
        };
        Ok(MessageStatus { state, attempts })
    }
}

/// One message of a [`queue_content`] page.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueuedMessage {
    /// Its id.
    pub id: String,
    /// Its content as stored (decode with [`Serde`](crate::Serde) or read as bytes).
    pub payload: Bytes,
    /// Its status.
    pub status: MessageStatus,
}

/// A page of [`queue_content`]: pass `cursor` back for the next; zero means done.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContentPage {
    /// The cursor for the next page; 0 when this was the last.
    pub cursor: u64,
    /// The messages of this page (possibly none, even when more follow).
    pub messages: Vec<QueuedMessage>,
}

/// A dead letter ([`dead_letters`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Its id.
    pub id: String,
    /// Its content as stored.
    pub payload: Bytes,
    /// Attempts it had.
    pub attempts: u32,
    /// Its last error.
    pub error: String,
    /// When it was given up (server clock).
    pub died_at: SystemTime,
}

/// Exact counts per state, computed on the server in O(log n).
pub async fn queue_status(client: &Client, queue: &str) -> Result<QueueStatus> {
    let keys = QueueKeys::new(queue)?;
    let (queued, delayed, locked, done, dead, requeue_pending, paused, waiting_children): (
        _,
        _,
        _,
        _,
        _,
        _,
        i64,
        _,
    ) = STATUS.run(client, &keys, ()).await?;
    Ok(QueueStatus {
        queued,
        delayed,
        locked,
        done,
        dead,
        requeue_pending,
        paused: paused == 1,
        waiting_children,
    })
}

/// Messages waiting or being handled: queued, delayed and locked (not dead letters or
/// finished ones).
pub async fn queue_size(client: &Client, queue: &str) -> Result<u64> {
    let s = queue_status(client, queue).await?;
    Ok(s.queued + s.delayed + s.locked)
}

/// One page of a queue's messages (dead letters included) with their status, for cursor
/// 0 first, then the returned cursor until it is 0. `count` is a hint of the page size.
/// As with HSCAN, a message present for the whole scan is returned at least once.
pub async fn queue_content(
    client: &Client,
    queue: &str,
    cursor: u64,
    count: usize,
) -> Result<ContentPage> {
    let keys = QueueKeys::new(queue)?;
    let reply: Vec<Value> = CONTENT.run(client, &keys, (cursor, count.max(1))).await?;
    let mut items = reply.into_iter();
    let cursor = match items.next() {
        Some(v) => String::from_value(v)?
            .parse()
            .map_err(|_| Error::protocol("HSCAN cursor is not a number"))?,
        None => return Err(Error::protocol("empty queue content reply")),
    };
    let mut messages = Vec::new();
    while let (Some(id), Some(payload), Some(status)) = (items.next(), items.next(), items.next()) {
        messages.push(QueuedMessage {
            id: String::from_value(id)?,
            payload: Bytes::from_value(payload)?,
            status: MessageStatus::from_value(status)?,
        });
    }
    Ok(ContentPage { cursor, messages })
}

/// The status of message `id`; `None` when the queue does not know it (never enqueued,
/// finished without a de-dup window, or past it).
pub async fn message_status(
    client: &Client,
    queue: &str,
    id: &str,
) -> Result<Option<MessageStatus>> {
    let keys = QueueKeys::new(queue)?;
    MESSAGE_STATUS.run(client, &keys, id).await
}

/// What a message's handlers reported while it ran ([`Job::progress`](super::Job::progress),
/// [`Job::log`](super::Job::log)), kept while the message is queued, running, delayed or
/// dead (a finished message's go with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobDetails {
    /// The last progress reported.
    pub progress: Option<Bytes>,
    /// The log lines, oldest first (the last [`LOG_LINES`](super::LOG_LINES)).
    pub logs: Vec<String>,
}

/// The progress and log lines of message `id`.
pub async fn job_details(client: &Client, queue: &str, id: &str) -> Result<JobDetails> {
    let keys = QueueKeys::new(queue)?;
    let (progress, logs) = JOB_DETAILS.run(client, &keys, id).await?;
    Ok(JobDetails { progress, logs })
}

/// The names of the queues that have keys, found with SCAN (never KEYS), sorted.
pub async fn queue_names(client: &Client) -> Result<Vec<String>> {
    let pattern = format!("{PREFIX}{{*}}:*");
    let keys: Vec<String> = crate::helpers::scan_stream(client, Some(&pattern))
        .try_collect()
        .await?;
    let names: BTreeSet<&str> = keys.iter().filter_map(|k| queue_of(k)).collect();
    Ok(names.into_iter().map(str::to_owned).collect())
}

/// Deletes the queue: its messages (dead letters included), locks and de-dup windows.
/// Workers holding messages of it find their outcomes rejected. Returns how many messages
/// it held.
pub async fn clear(client: &Client, queue: &str) -> Result<u64> {
    let keys = QueueKeys::new(queue)?;
    CLEAR
        .run(
            client,
            &keys,
            (&keys.channel, crate::pubsub::wake::publish_command(client)),
        )
        .await
}

/// Up to `count` dead letters from position `start`, oldest first.
pub async fn dead_letters(
    client: &Client,
    queue: &str,
    start: usize,
    count: usize,
) -> Result<Vec<DeadLetter>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let keys = QueueKeys::new(queue)?;
    let rows: Vec<(String, Bytes, u32, String, u64)> = DEAD_LETTERS
        .run(client, &keys, (start, start + count - 1))
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, payload, attempts, error, ms)| DeadLetter {
            id,
            payload,
            attempts,
            error,
            died_at: UNIX_EPOCH + Duration::from_millis(ms),
        })
        .collect())
}

/// Queues dead letters again, afresh (attempts start over): the given ids, or every dead
/// letter when `ids` is empty. Returns how many were requeued; workers are woken.
pub async fn requeue_dead(client: &Client, queue: &str, ids: &[&str]) -> Result<u64> {
    let keys = QueueKeys::new(queue)?;
    REQUEUE_DEAD
        .run(
            client,
            &keys,
            (&keys.channel, wake::publish_command(client), ids),
        )
        .await
}
