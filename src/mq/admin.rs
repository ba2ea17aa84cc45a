//! Controlling a queue from anywhere: pause and resume, a rate limit shared by every worker,
//! removing a message, cleaning dead letters and de-dup entries.

use std::time::Duration;

use super::enqueue::millis;
use super::keys::QueueKeys;
use super::scripts::{CLEAN, PAUSE, REMOVE, SET_LIMIT};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;

/// Pauses `queue`: every worker, in every process, stops taking messages at its next claim;
/// handlers already running finish and report as usual; enqueueing goes on. True when the
/// queue was not paused before.
pub async fn pause(client: &Client, queue: &str) -> Result<bool> {
    set_paused(client, queue, true).await
}

/// Resumes a paused queue and wakes its idle workers at once. True when it was paused.
pub async fn resume(client: &Client, queue: &str) -> Result<bool> {
    set_paused(client, queue, false).await
}

async fn set_paused(client: &Client, queue: &str, on: bool) -> Result<bool> {
    let keys = QueueKeys::new(queue)?;
    let flag = if on { "1" } else { "0" };
    let changed: i64 = PAUSE
        .run(
            client,
            &keys,
            (flag, &keys.channel, wake::publish_command(client)),
        )
        .await?;
    Ok(changed == 1)
}

/// Limits `queue` to `max` messages taken per `per`, across all its workers (a window that
/// starts with the first message taken in it, as BullMQ's limiter does); `None` lifts it. A
/// worker that finds the allowance spent waits for the window's end, woken by no one and
/// polling nothing. Stored in Redis: it holds for workers started later too.
pub async fn set_rate_limit(
    client: &Client,
    queue: &str,
    limit: Option<(u64, Duration)>,
) -> Result<()> {
    let keys = QueueKeys::new(queue)?;
    let (max, per) = match limit {
        None => (0, 0),
        Some((0, _)) => return Err(Error::config("a rate limit must allow at least 1 message")),
        Some((max, per)) if per.is_zero() => {
            return Err(Error::config(format!("a rate limit of {max} per 0 ms")));
        }
        Some((max, per)) => (max, millis(per)),
    };
    let _: i64 = SET_LIMIT
        .run(
            client,
            &keys,
            (max, per, &keys.channel, wake::publish_command(client)),
        )
        .await?;
    Ok(())
}

/// What [`remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Removed {
    /// The message (queued, delayed, dead or done) is gone, with its progress and logs.
    Removed,
    /// A worker is handling it: not removed (its outcome will be applied as usual).
    Locked,
    /// The queue does not know the id.
    Missing,
}

/// Removes message `id` from `queue`, whatever its state but running.
pub async fn remove(client: &Client, queue: &str, id: &str) -> Result<Removed> {
    let keys = QueueKeys::new(queue)?;
    let done: String = REMOVE.run(client, &keys, id).await?;
    if done == "removed" {
        // A flow child's parent hears of it now, not at a worker's next claim.
        super::flow::hand_off(client, &keys).await?;
    }
    Ok(match done.as_str() {
        "removed" => Removed::Removed,
        "locked" => Removed::Locked,
        _ => Removed::Missing,
    })
}

/// Removes up to `limit` dead letters given up at least `older_than` ago, oldest first;
/// returns how many.
pub async fn clean_dead(
    client: &Client,
    queue: &str,
    older_than: Duration,
    limit: usize,
) -> Result<u64> {
    clean(client, queue, "dead", older_than, limit).await
}

/// Forgets up to `limit` finished messages' de-dup windows (those ending soonest first), so
/// their ids can be enqueued again at once; returns how many.
pub async fn clean_done(client: &Client, queue: &str, limit: usize) -> Result<u64> {
    clean(client, queue, "done", Duration::ZERO, limit).await
}

async fn clean(
    client: &Client,
    queue: &str,
    what: &str,
    older_than: Duration,
    limit: usize,
) -> Result<u64> {
    if limit == 0 {
        return Ok(0);
    }
    let keys = QueueKeys::new(queue)?;
    let n: u64 = CLEAN
        .run(client, &keys, (what, millis(older_than), limit))
        .await?;
    if what == "dead" && n > 0 {
        super::flow::hand_off(client, &keys).await?;
    }
    Ok(n)
}
