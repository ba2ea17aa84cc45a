//! [`enqueue`]: adding a message, with Carmine's de-duplication options, atomically.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::keys::QueueKeys;
use super::scripts::ENQUEUE;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;
use crate::value::{ArgBuf, ToArgs};

/// How to enqueue a message. Every field defaults to off or none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnqueueOptions {
    /// The message id, for de-duplication: while a message with this id is queued, locked
    /// or inside its de-dup window, enqueueing it again is refused unless the options below
    /// allow it. Default: a fresh random id.
    pub id: Option<String>,
    /// How long a worker holds the message before another may take it (renewed while the
    /// handler runs). Default: the worker's [`lock_time`](super::WorkerOptions::lock_time).
    pub lock_time: Option<Duration>,
    /// Runnable only after this long (Carmine's init-backoff; a delayed message).
    /// Measured on the server's clock. Default none.
    pub init_backoff: Option<Duration>,
    /// Runnable only from this wall-clock time (compared with the server's clock).
    /// Overrides `init_backoff`. Default none.
    pub run_at: Option<SystemTime>,
    /// Higher runs first; FIFO within a priority. Default 0.
    pub priority: i8,
    /// A queued message with the same id gets this content, lock time and priority
    /// ([`EnqueueResult::Updated`]) instead of [`EnqueueResult::AlreadyQueued`]. Default off.
    pub can_update: bool,
    /// A message with the same id that is being handled, is in its de-dup window, or is a
    /// dead letter is queued again: after the handling ends ([`EnqueueResult::Requeued`]),
    /// after the window, or at once. Default off.
    pub can_requeue: bool,
    /// With `can_update`, the updated message's delay starts over from `init_backoff`.
    /// Default off.
    pub reset_init_backoff: bool,
}

impl EnqueueOptions {
    /// All defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`id`](Self::id).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets [`lock_time`](Self::lock_time).
    pub fn lock_time(mut self, lock_time: Duration) -> Self {
        self.lock_time = Some(lock_time);
        self
    }

    /// Sets [`init_backoff`](Self::init_backoff).
    pub fn init_backoff(mut self, delay: Duration) -> Self {
        self.init_backoff = Some(delay);
        self
    }

    /// Sets [`run_at`](Self::run_at).
    pub fn run_at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Sets [`priority`](Self::priority).
    pub fn priority(mut self, priority: i8) -> Self {
        self.priority = priority;
        self
    }

    /// Sets [`can_update`](Self::can_update).
    pub fn can_update(mut self, on: bool) -> Self {
        self.can_update = on;
        self
    }

    /// Sets [`can_requeue`](Self::can_requeue).
    pub fn can_requeue(mut self, on: bool) -> Self {
        self.can_requeue = on;
        self
    }

    /// Sets [`reset_init_backoff`](Self::reset_init_backoff).
    pub fn reset_init_backoff(mut self, on: bool) -> Self {
        self.reset_init_backoff = on;
        self
    }
}

/// What [`enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnqueueResult {
    /// A new message was queued (or a finished, dead or de-duplicated one queued afresh).
    Added,
    /// The queued message with this id got the new content.
    Updated,
    /// The message is being handled; it runs again once that handling ends.
    Requeued,
    /// Refused: a message with this id is queued (pass `can_update`).
    AlreadyQueued,
    /// Refused: the message is being handled (pass `can_requeue`).
    Locked,
    /// Refused: the message finished inside its de-dup window (pass `can_requeue`).
    Backoff,
    /// Refused: the message is a dead letter (pass `can_requeue`, or requeue it from the
    /// dead letters).
    Dead,
}

impl EnqueueResult {
    /// True when the message was queued, updated or requeued.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Added | Self::Updated | Self::Requeued)
    }

    pub(super) fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "added" => Self::Added,
            "updated" => Self::Updated,
            "requeued" => Self::Requeued,
            "already-queued" => Self::AlreadyQueued,
            "locked" => Self::Locked,
            "backoff" => Self::Backoff,
            "dead" => Self::Dead,
            other => {
                return Err(Error::protocol(format!(
                    "unexpected enqueue result {other:?}"
                )));
            }
        })
    }
}

/// The id of an enqueued message and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Enqueued {
    /// The message id (the one given, or the generated one).
    pub id: String,
    /// What happened.
    pub result: EnqueueResult,
}

/// Adds `message` to `queue`, atomically (one server-side step). The message is one value:
/// bytes and strings are stored as they are, [`Serde`](crate::Serde) values through the
/// installed [`ValueCodec`](crate::ValueCodec). Refusals ([`EnqueueResult::AlreadyQueued`],
/// [`Locked`](EnqueueResult::Locked), [`Backoff`](EnqueueResult::Backoff),
/// [`Dead`](EnqueueResult::Dead)) are results, not errors. Idle workers are woken at once.
///
/// Enqueues to one queue issued on one client while a step for it is on its way share the
/// next step (each applied as alone, with its own result): many concurrent producers cost
/// the server little more than one.
pub async fn enqueue(
    client: &Client,
    queue: &str,
    message: impl ToArgs,
    options: EnqueueOptions,
) -> Result<Enqueued> {
    let keys = QueueKeys::new(queue)?;
    let mut args = ArgBuf::default();
    let id = push_message(&mut args, &message, options)?;
    let result = super::coalesce::enqueue(client, keys, args).await?;
    Ok(Enqueued { id, result })
}

/// Adds many messages to `queue` in one step per 500 (one round trip for a batch of that
/// size; the new messages of a step are added with one command per structure), each with
/// its own options and its own [`Enqueued`] result, in order. Each message is enqueued
/// exactly as [`enqueue`] would; idle workers are woken once per step.
/// An invalid message (not one value, an empty id) fails the whole call before anything is
/// sent.
pub async fn enqueue_many<M: ToArgs>(
    client: &Client,
    queue: &str,
    messages: impl IntoIterator<Item = (M, EnqueueOptions)>,
) -> Result<Vec<Enqueued>> {
    let keys = QueueKeys::new(queue)?;
    let mut batches = Vec::new();
    let mut ids = Vec::new();
    let mut args = ArgBuf::default();
    let mut in_batch = 0;
    for (message, options) in messages {
        if in_batch == 0 {
            (keys.channel.as_str(), wake::publish_command(client)).write_args(&mut args);
        }
        ids.push(push_message(&mut args, &message, options)?);
        in_batch += 1;
        if in_batch == super::coalesce::MOST_PER_STEP {
            batches.push(std::mem::take(&mut args));
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        batches.push(args);
    }
    let mut results = Vec::with_capacity(ids.len());
    for batch in batches {
        let names: Vec<String> = ENQUEUE.run(client, &keys, batch).await?;
        for name in names {
            results.push(EnqueueResult::parse(&name)?);
        }
    }
    if results.len() != ids.len() {
        return Err(Error::protocol(format!(
            "{} messages enqueued, {} results",
            ids.len(),
            results.len()
        )));
    }
    Ok(ids
        .into_iter()
        .zip(results)
        .map(|(id, result)| Enqueued { id, result })
        .collect())
}

/// Appends one message's 9 script arguments; returns its id.
pub(crate) fn push_message(
    args: &mut ArgBuf,
    message: &impl ToArgs,
    options: EnqueueOptions,
) -> Result<String> {
    let id = match options.id {
        Some(id) if id.is_empty() => return Err(Error::config("message id must not be empty")),
        Some(id) => id,
        None => crate::lock::new_token(),
    };
    let mut payload = ArgBuf::default();
    message.write_args(&mut payload);
    if let Some(e) = payload.take_error() {
        return Err(e);
    }
    if payload.len() != 1 {
        return Err(Error::type_error(format!(
            "a message must be exactly one value; this one wrote {} arguments",
            payload.len()
        )));
    }
    let run_at = match options.run_at {
        Some(at) => at
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::config("run_at is before 1970"))?
            .as_millis()
            .max(1) as u64,
        None => 0,
    };
    let flag = |on: bool| if on { "1" } else { "0" };
    (
        (
            id.as_str(),
            options.lock_time.map_or(0, millis),
            i64::from(options.priority),
            options.init_backoff.map_or(0, millis),
            run_at,
        ),
        (
            flag(options.can_update),
            flag(options.can_requeue),
            flag(options.reset_init_backoff),
        ),
    )
        .write_args(args);
    args.append(&payload);
    Ok(id)
}

/// Whole milliseconds, as the scripts take them.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
