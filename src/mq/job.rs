//! What a handler receives ([`Job`]) and returns ([`Outcome`]), and how failed attempts are
//! spaced ([`Backoff`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::keys::QueueKeys;
use super::scripts::{LOG, PROGRESS};
use crate::client::Client;
use crate::error::Result;
use crate::value::ToArgs;

/// How many log lines a message keeps ([`Job::log`]); older ones are dropped.
pub const LOG_LINES: usize = 1000;

/// One message handed to a handler, with what is known about its delivery.
#[derive(Debug)]
pub struct Job<M> {
    pub(crate) message: M,
    pub(crate) id: String,
    pub(crate) attempt: u32,
    pub(crate) age: Duration,
    pub(crate) waited: Duration,
    pub(crate) lock_time: Duration,
    pub(crate) queue: Arc<str>,
    pub(crate) lease: CancellationToken,
    pub(crate) token: i64,
    pub(crate) client: Client,
    pub(crate) keys: Arc<QueueKeys>,
}

impl<M> Job<M> {
    /// The message.
    pub fn message(&self) -> &M {
        &self.message
    }

    /// The message, owned.
    pub fn into_message(self) -> M {
        self.message
    }

    /// The message id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which attempt this is, from 1. A message whose worker died is handed out again with
    /// the next number.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Time since the message was enqueued (server clock).
    pub fn age(&self) -> Duration {
        self.age
    }

    /// Time the message waited between becoming runnable and being taken.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The lock (lease) time this message is held with; renewed while the handler runs.
    pub fn lock_time(&self) -> Duration {
        self.lock_time
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.queue
    }

    /// Resolves when this worker no longer holds the message: renewal found another holder,
    /// or could not reach the server before the lease ran out. Its outcome will then be
    /// rejected if another worker took the message over; select on this to stop early.
    pub async fn lease_lost(&self) {
        self.lease.cancelled().await
    }

    /// True once [`lease_lost`](Self::lease_lost) has fired.
    pub fn is_lease_lost(&self) -> bool {
        self.lease.is_cancelled()
    }

    /// A token cancelled when the lease is lost, for work spawned elsewhere.
    pub fn lease_token(&self) -> CancellationToken {
        self.lease.child_token()
    }

    /// Records the handler's progress (one value: a number, text, bytes, a
    /// [`Serde`](crate::Serde) value), readable with [`job_details`](super::job_details)
    /// while the message lives. Fenced like the outcome: false, and nothing stored, once
    /// this worker no longer holds the message.
    pub async fn progress(&self, value: impl ToArgs) -> Result<bool> {
        let stored: i64 = PROGRESS
            .run(
                &self.client,
                &self.keys,
                (self.id.as_str(), self.token, value),
            )
            .await?;
        Ok(stored == 1)
    }

    /// The results of this flow parent's children ([`enqueue_flow`](super::enqueue_flow)),
    /// in the order they were given; empty for a message that is not a flow's parent.
    pub async fn children(&self) -> Result<Vec<super::ChildResult>> {
        super::flow::results(&self.client, &self.keys, &self.id).await
    }

    /// Appends a line to the message's log (the last [`LOG_LINES`] are kept), readable with
    /// [`job_details`](super::job_details). False once this worker no longer holds the
    /// message.
    pub async fn log(&self, line: impl AsRef<str>) -> Result<bool> {
        let stored: i64 = LOG
            .run(
                &self.client,
                &self.keys,
                (self.id.as_str(), self.token, LOG_LINES, line.as_ref()),
            )
            .await?;
        Ok(stored == 1)
    }
}

/// What a handler made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Handled. With a duration, the id stays known for that long, and enqueueing it again
    /// meanwhile is refused with [`Backoff`](super::EnqueueResult::Backoff).
    Success(Option<Duration>),
    /// Handled, with a result: a flow's parent reads it in
    /// [`Job::children`](super::Job::children) (see [`enqueue_flow`](super::enqueue_flow)).
    /// Build it with [`Outcome::returned`].
    Returned(Bytes),
    /// Run it again after this backoff. Asked for by the handler, so not limited by
    /// [`max_attempts`](super::WorkerOptions::max_attempts).
    Retry(Duration),
    /// Not run now because a limit outside the queue said so (an API answered 429): put back
    /// to run after this delay. Not counted as an attempt. For a limit of the queue
    /// itself, see [`set_rate_limit`](super::set_rate_limit).
    RateLimited(Duration),
    /// Failed: retried after the worker's [`Backoff`] until
    /// [`max_attempts`](super::WorkerOptions::max_attempts), then dead-lettered or dropped.
    Error(String),
}

impl Outcome {
    /// Handled, with no de-dup window.
    pub fn success() -> Outcome {
        Outcome::Success(None)
    }

    /// A failure with this error.
    pub fn error(error: impl fmt::Display) -> Outcome {
        Outcome::Error(error.to_string())
    }

    /// Handled, returning `value` (one value: a number, text, bytes, a
    /// [`Serde`](crate::Serde) value) to the flow's parent; a value that does not encode is
    /// a failure.
    pub fn returned(value: impl ToArgs) -> Outcome {
        match crate::value::one_arg(&value) {
            Ok(bytes) => Outcome::Returned(bytes),
            Err(e) => Outcome::error(format_args!("the returned value does not encode: {e}")),
        }
    }
}

/// `Ok(())` is success, `Err(e)` an error, so handlers can use `?` in an inner block.
impl<E: fmt::Display> From<Result<(), E>> for Outcome {
    fn from(result: Result<(), E>) -> Outcome {
        match result {
            Ok(()) => Outcome::success(),
            Err(e) => Outcome::error(e),
        }
    }
}

/// How long to wait before retrying a failed attempt.
#[derive(Clone)]
#[non_exhaustive]
pub enum Backoff {
    /// The same delay every time.
    Fixed(Duration),
    /// `base * 2^(attempt - 1)`, at most `max`; with `jitter`, a random amount up to half
    /// of it is taken off, so failures do not retry in lockstep.
    Exponential {
        /// The first delay.
        base: Duration,
        /// The largest delay.
        max: Duration,
        /// Take a random share (up to half) off each delay.
        jitter: bool,
    },
    /// Any function of the attempt number that just failed (from 1).
    Custom(Arc<dyn Fn(u32) -> Duration + Send + Sync>),
}

impl Backoff {
    /// Exponential with jitter.
    pub fn exponential(base: Duration, max: Duration) -> Backoff {
        Backoff::Exponential {
            base,
            max,
            jitter: true,
        }
    }

    /// A function of the attempt number that just failed (from 1).
    pub fn custom(f: impl Fn(u32) -> Duration + Send + Sync + 'static) -> Backoff {
        Backoff::Custom(Arc::new(f))
    }

    /// The delay after attempt `attempt` (from 1) failed.
    pub fn delay(&self, attempt: u32) -> Duration {
        match self {
            Backoff::Fixed(d) => *d,
            Backoff::Exponential { base, max, jitter } => {
                crate::config::exponential_delay(*base, *max, attempt.saturating_sub(1), *jitter)
            }
            Backoff::Custom(f) => f(attempt),
        }
    }
}

impl Default for Backoff {
    /// Exponential from 1 s to 10 min, with jitter.
    fn default() -> Self {
        Backoff::exponential(Duration::from_secs(1), Duration::from_secs(600))
    }
}

impl fmt::Debug for Backoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backoff::Fixed(d) => f.debug_tuple("Fixed").field(d).finish(),
            Backoff::Exponential { base, max, jitter } => f
                .debug_struct("Exponential")
                .field("base", base)
                .field("max", max)
                .field("jitter", jitter)
                .finish(),
            Backoff::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// What happens to a message whose last attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AfterLastAttempt {
    /// Kept in the queue's dead letters, with its last error, to inspect and requeue.
    #[default]
    DeadLetter,
    /// Removed.
    Drop,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_doubles_up_to_its_cap_and_jitter_takes_at_most_half() {
        let plain = Backoff::Exponential {
            base: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: false,
        };
        let ms: Vec<u128> = (1..=6).map(|a| plain.delay(a).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(plain.delay(200), Duration::from_secs(1));
        let jittered = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1));
        for attempt in 1..=6 {
            let d = jittered.delay(attempt);
            let full = plain.delay(attempt);
            assert!(d <= full && d >= full / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn fixed_and_custom_backoff() {
        assert_eq!(
            Backoff::Fixed(Duration::from_millis(7)).delay(9),
            Duration::from_millis(7)
        );
        let custom = Backoff::custom(|a| Duration::from_secs(u64::from(a) * 3));
        assert_eq!(custom.delay(2), Duration::from_secs(6));
    }

    #[test]
    fn results_convert_to_outcomes() {
        assert_eq!(Outcome::from(Ok::<(), String>(())), Outcome::Success(None));
        assert_eq!(
            Outcome::from(Err::<(), _>("boom")),
            Outcome::Error("boom".into())
        );
    }
}
