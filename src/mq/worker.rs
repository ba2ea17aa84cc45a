//! [`Worker`]: spawned tasks that take messages from a queue and run a handler on each.
//!
//! One fetch task claims as many messages as there are free handler slots (one step),
//! spawns a task per message, and when the queue is drained waits for a wake-up published
//! by `enqueue` (one subscriber connection per worker), for the next delayed message or
//! lease end the claim reported, or for a long safety recheck; it never polls in a loop.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ack::{Acked, Acks, Action, Report};
use super::enqueue::millis;
use super::job::{AfterLastAttempt, Backoff, Job, Outcome};
use super::keys::QueueKeys;
use super::scripts::{CLAIM, RENEW};
use super::stats::{Counters, WorkerStats};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::pubsub::wake;
use crate::resp::Value;
use crate::value::FromValue;

/// How a worker runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerOptions {
    /// Handlers running at once. Default 1.
    pub concurrency: usize,
    /// How long a taken message stays locked to this worker without renewal, unless the
    /// message was enqueued with its own. Default 30 s, renewed every 10 s while the handler
    /// runs, so a crashed worker's message is handed out again within 30 s. Carmine's 60
    /// minutes is `lock_time(Duration::from_secs(3600))`, for handlers that must not be
    /// retaken while the network is down for long.
    pub lock_time: Duration,
    /// Renew the lease every third of the lock time while the handler runs, so a slow
    /// handler is never handled twice. Off: the lock time is a fixed visibility timeout.
    /// Default on.
    pub renew_lease: bool,
    /// Attempts before a failing message is given up ([`after_last_attempt`]); counts
    /// errors, panics and deaths of the worker mid-handler, not [`Outcome::Retry`]. `None`:
    /// no limit. Default 5.
    ///
    /// [`after_last_attempt`]: Self::after_last_attempt
    pub max_attempts: Option<u32>,
    /// The delay before retrying a failed attempt. Default exponential from 1 s to 10 min
    /// with jitter.
    pub backoff: Backoff,
    /// What becomes of a message whose last attempt failed. Default dead-letter.
    pub after_last_attempt: AfterLastAttempt,
    /// How long [`Worker::stop`] lets running handlers finish before it puts their messages
    /// back. Default 30 s.
    pub stop_grace: Duration,
    /// An idle worker is woken by enqueues; as a safety net it also looks at the queue
    /// after this long without a wake-up. Default 30 s.
    pub idle_recheck: Duration,
    /// Report each outcome and take the next ready message in one step (one round trip
    /// per message instead of two; outcomes that finish together share a step, and so do
    /// the messages it takes for them). `None` (the default) and `Some(true)`: on. Off:
    /// the fetcher alone takes messages.
    pub claim_with_ack: Option<bool>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 1,
            lock_time: Duration::from_secs(30),
            renew_lease: true,
            max_attempts: Some(5),
            backoff: Backoff::default(),
            after_last_attempt: AfterLastAttempt::DeadLetter,
            stop_grace: Duration::from_secs(30),
            idle_recheck: Duration::from_secs(30),
            claim_with_ack: None,
        }
    }
}

impl WorkerOptions {
    /// All defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`concurrency`](Self::concurrency).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets [`lock_time`](Self::lock_time).
    pub fn lock_time(mut self, d: Duration) -> Self {
        self.lock_time = d;
        self
    }

    /// Sets [`renew_lease`](Self::renew_lease).
    pub fn renew_lease(mut self, on: bool) -> Self {
        self.renew_lease = on;
        self
    }

    /// Sets [`max_attempts`](Self::max_attempts).
    pub fn max_attempts(mut self, n: Option<u32>) -> Self {
        self.max_attempts = n;
        self
    }

    /// Sets [`backoff`](Self::backoff).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets [`after_last_attempt`](Self::after_last_attempt).
    pub fn after_last_attempt(mut self, then: AfterLastAttempt) -> Self {
        self.after_last_attempt = then;
        self
    }

    /// Sets [`stop_grace`](Self::stop_grace).
    pub fn stop_grace(mut self, d: Duration) -> Self {
        self.stop_grace = d;
        self
    }

    /// Sets [`idle_recheck`](Self::idle_recheck).
    pub fn idle_recheck(mut self, d: Duration) -> Self {
        self.idle_recheck = d;
        self
    }

    /// Sets [`claim_with_ack`](Self::claim_with_ack).
    pub fn claim_with_ack(mut self, on: bool) -> Self {
        self.claim_with_ack = Some(on);
        self
    }

    fn validate(&self) -> Result<()> {
        if self.concurrency == 0 || u32::try_from(self.concurrency).is_err() {
            return Err(Error::config(
                "worker concurrency must be from 1 to u32::MAX",
            ));
        }
        if self.lock_time < Duration::from_millis(10) {
            return Err(Error::config("worker lock time must be at least 10 ms"));
        }
        if self.max_attempts == Some(0) {
            return Err(Error::config(
                "max_attempts must be at least 1 (None: no limit)",
            ));
        }
        if self.idle_recheck.is_zero() {
            return Err(Error::config("idle_recheck must be more than zero"));
        }
        Ok(())
    }
}

/// A message as the claim step hands it out.
pub(super) struct Claimed {
    id: String,
    payload: Bytes,
    attempt: u32,
    token: i64,
    lock_time: Duration,
    age: Duration,
    waited: Duration,
    /// When the claim that took it was sent: its lease is timed from then.
    claimed_at: Instant,
}

/// The handler with the message type erased: decodes, builds the [`Job`], runs.
type Run = Arc<dyn Fn(Claimed, CancellationToken) -> BoxFuture<'static, Outcome> + Send + Sync>;

struct Inner {
    client: Client,
    keys: QueueKeys,
    options: WorkerOptions,
    run: Run,
    counters: Counters,
    slots: Arc<Semaphore>,
    /// Stop taking messages.
    stopping: CancellationToken,
    /// The grace period is over: put unfinished messages back.
    abandon: CancellationToken,
    wake: Notify,
    /// Wakes the scheduler task (a schedule was upserted, or a reconnect).
    schedule_wake: Notify,
    /// Reports outcomes, together when they finish together.
    acks: Acks,
}

/// Workers taking messages from one queue: spawned Tokio tasks running an async handler
/// on each message, up to [`concurrency`](WorkerOptions::concurrency) at once.
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// use kermes::{Serde, mq::{self, Outcome, Worker, WorkerOptions}};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Email { to: String }
///
/// mq::enqueue(&client, "emails", Serde(Email { to: "ann@example.com".into() }), Default::default()).await?;
/// let worker = Worker::start(&client, "emails", WorkerOptions::new().concurrency(16),
///     |job: mq::Job<Serde<Email>>| async move {
///         let Serde(email) = job.message();
///         println!("attempt {} to {}", job.attempt(), email.to);
///         Outcome::success()
///     }).await?;
/// // ...
/// worker.stop().await?;
/// # Ok(()) }
/// ```
pub struct Worker {
    inner: Arc<Inner>,
    fetcher: Option<JoinHandle<()>>,
    waker: Option<JoinHandle<()>>,
    scheduler: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts a worker on `queue`. Messages are decoded as `M` ([`Serde<T>`](crate::Serde),
    /// `Bytes`, `String`, ...); a message that does not decode is a failed attempt. A
    /// panicking handler is a failed attempt too. Returns once the worker listens for
    /// wake-ups, so a message enqueued afterwards is picked up at once.
    pub async fn start<M, F, Fut>(
        client: &Client,
        queue: &str,
        options: WorkerOptions,
        handler: F,
    ) -> Result<Worker>
    where
        M: FromValue + Send + 'static,
        F: Fn(Job<M>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        options.validate()?;
        let keys = QueueKeys::new(queue)?;
        let name: Arc<str> = Arc::from(queue);
        // The worker's claims, outcomes and renewals go over connections of its own, so
        // they never queue behind what the application sends on the client's (producers
        // enqueueing on the same client, above all).
        let client = &client.sibling().await?;
        let (job_client, job_keys) = (client.clone(), Arc::new(keys.clone()));
        let run: Run = Arc::new(move |c: Claimed, lease: CancellationToken| {
            match M::from_value(Value::Bulk(c.payload)) {
                Ok(message) => handler(Job {
                    message,
                    id: c.id,
                    attempt: c.attempt,
                    age: c.age,
                    waited: c.waited,
                    lock_time: c.lock_time,
                    queue: name.clone(),
                    lease,
                    token: c.token,
                    client: job_client.clone(),
                    keys: job_keys.clone(),
                })
                .boxed(),
                Err(e) => futures::future::ready(Outcome::error(format_args!(
                    "the message does not decode: {e}"
                )))
                .boxed(),
            }
        });
        let mut subscriber = client.subscriber().await?;
        wake::subscribe(client, &subscriber.handle(), &keys.channel).await?;
        let acks = Acks::start(
            client.clone(),
            Arc::new(keys.clone()),
            options.lock_time,
            options.max_attempts,
        );
        let inner = Arc::new(Inner {
            acks,
            client: client.clone(),
            slots: Arc::new(Semaphore::new(options.concurrency)),
            keys,
            options,
            run,
            counters: Counters::default(),
            stopping: CancellationToken::new(),
            abandon: CancellationToken::new(),
            wake: Notify::new(),
            schedule_wake: Notify::new(),
        });
        let waker = {
            let inner = inner.clone();
            tokio::spawn(async move {
                // Any event wakes the fetcher: a message, a reconnect (wake-ups may have
                // been missed), or lag.
                // An upsert's wake-up ('schedule') is for the scheduler only; a reconnect
                // or lag may have lost either kind.
                while let Some(event) = subscriber.next().await {
                    match event {
                        crate::pubsub::Event::Message(m) if &m.payload[..] == b"schedule" => {
                            inner.schedule_wake.notify_one()
                        }
                        crate::pubsub::Event::Message(_) => inner.wake.notify_one(),
                        _ => {
                            inner.wake.notify_one();
                            inner.schedule_wake.notify_one();
                        }
                    }
                }
                tracing::warn!(queue = %inner.keys.name, "wake-up subscription ended; the worker falls back to its idle recheck");
            })
        };
        let fetcher = tokio::spawn(fetch(inner.clone()));
        let scheduler = tokio::spawn(drive_schedules(inner.clone()));
        Ok(Worker {
            inner,
            fetcher: Some(fetcher),
            waker: Some(waker),
            scheduler: Some(scheduler),
        })
    }

    /// The queue this worker takes from.
    pub fn queue(&self) -> &str {
        &self.inner.keys.name
    }

    /// Counts by outcome and latency percentiles, as of now.
    pub fn stats(&self) -> WorkerStats {
        self.inner.counters.snapshot()
    }

    /// Stops taking messages, lets running handlers finish for up to
    /// [`stop_grace`](WorkerOptions::stop_grace), then puts the messages of handlers still
    /// running back in the queue (that attempt does not count), so nothing stays locked by
    /// this worker. Returns the final statistics; an error when some message could not be
    /// put back (it is then retaken when its lease runs out).
    pub async fn stop(mut self) -> Result<WorkerStats> {
        self.inner.stopping.cancel();
        if let Some(f) = self.fetcher.take() {
            let _ = f.await;
        }
        if let Some(w) = self.waker.take() {
            w.abort();
        }
        if let Some(s) = self.scheduler.take() {
            s.abort();
        }
        let all = self.inner.options.concurrency as u32;
        let slots = self.inner.slots.clone();
        if tokio::time::timeout(self.inner.options.stop_grace, slots.acquire_many(all))
            .await
            .is_err()
        {
            self.inner.abandon.cancel();
            // Putting back is a step per batch of messages; allow for a reconnect.
            if tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all))
                .await
                .is_err()
            {
                return Err(Error::timeout(
                    "stopping the worker: some messages could not be put back in time",
                ));
            }
        }
        Ok(self.stats())
    }
}

impl Drop for Worker {
    /// Stops taking messages; handlers already running finish and report on their own.
    fn drop(&mut self) {
        self.inner.stopping.cancel();
        if let Some(w) = self.waker.take() {
            w.abort();
        }
        if let Some(s) = self.scheduler.take() {
            s.abort();
        }
    }
}

/// Enqueues the queue's scheduled runs as they come due (every worker does; the server
/// lets one enqueue each run). Sleeps until the next run, woken early by an upsert.
async fn drive_schedules(inner: Arc<Inner>) {
    let mut failures = 0u32;
    loop {
        let wait = match super::schedule::fire_due(&inner.client, &inner.keys).await {
            Ok(next) => {
                failures = 0;
                next.unwrap_or(inner.options.idle_recheck)
                    .min(inner.options.idle_recheck)
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(queue = %inner.keys.name, error = %e, "firing schedules failed");
                Duration::from_millis(50 << failures.min(6))
            }
        };
        tokio::select! {
            biased;
            _ = inner.stopping.cancelled() => return,
            _ = inner.schedule_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn fetch(inner: Arc<Inner>) {
    let mut failures = 0u32;
    loop {
        let first = tokio::select! {
            biased;
            _ = inner.stopping.cancelled() => return,
            p = inner.slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let mut permits = vec![first];
        while let Ok(p) = inner.slots.clone().try_acquire_owned() {
            permits.push(p);
        }
        let asked = permits.len();
        // Never cancelled midway: a claim that ran but went unread would leave messages
        // locked until their leases end.
        let (next, handoffs, claimed) = match claim(&inner, asked).await {
            Ok(c) => {
                failures = 0;
                c
            }
            Err(e) => {
                failures += 1;
                let pause = Duration::from_millis(50 << failures.min(6));
                tracing::warn!(queue = %inner.keys.name, error = %e, "claiming messages failed; retrying in {pause:?}");
                tokio::select! {
                    _ = inner.stopping.cancelled() => return,
                    _ = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let got = claimed.len();
        for (c, permit) in claimed.into_iter().zip(permits) {
            tokio::spawn(handle(inner.clone(), c, permit));
        }
        if handoffs {
            hand_off(&inner).await;
        }
        if got == asked || next == Some(Duration::ZERO) {
            continue;
        }
        let wait = next.map_or(inner.options.idle_recheck, |n| {
            n.min(inner.options.idle_recheck)
        });
        tokio::select! {
            biased;
            _ = inner.stopping.cancelled() => return,
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Hands this queue's due flow hand-offs to their parents; failures are logged (the
/// hand-offs come due again).
async fn hand_off(inner: &Inner) {
    if let Err(e) = super::flow::hand_off(&inner.client, &inner.keys).await {
        tracing::warn!(queue = %inner.keys.name, error = %e, "handing flow results to their parents failed; retried later");
    }
}

/// A claim: how long until a delayed message is due, a lease runs out or a flow hand-off
/// comes due (when nothing else is ready), whether hand-offs are due now, the messages.
type ClaimReply = (Option<Duration>, bool, Vec<Claimed>);

/// Takes up to `n` messages.
async fn claim(inner: &Inner, n: usize) -> Result<ClaimReply> {
    let sent = Instant::now();
    let reply: Vec<Value> = CLAIM
        .run(
            &inner.client,
            &inner.keys,
            (
                n,
                millis(inner.options.lock_time),
                inner.options.max_attempts.unwrap_or(0),
            ),
        )
        .await?;
    parse_claim(reply.into_iter(), sent)
}

/// A claim reply: the wait until something is due, the hand-offs due, the server's clock
/// (ms), then 7 fields per message (its age and wait computed here from the times it was
/// enqueued and became due: the step formats no number).
pub(super) fn parse_claim(
    mut items: impl ExactSizeIterator<Item = Value>,
    sent: Instant,
) -> Result<ClaimReply> {
    let mut header = || i64::from_value(items.next().unwrap_or(Value::Int(-1)));
    let next = u64::try_from(header()?).ok().map(Duration::from_millis);
    let handoffs = header()? > 0;
    let now = header()?;
    let mut claimed = Vec::with_capacity(items.len() / 7);
    while let Some(id) = items.next() {
        let mut field = || {
            items
                .next()
                .ok_or_else(|| Error::protocol("claim reply cut short"))
        };
        let ms = |n: i64| Duration::from_millis(n.max(0) as u64);
        let (id, payload) = (String::from_value(id)?, Bytes::from_value(field()?)?);
        let attempt = u32::from_value(field()?)?;
        let token = i64::from_value(field()?)?;
        let lock_time = ms(i64::from_value(field()?)?);
        let born = i64::from_value(field()?)?;
        let due = i64::from_value(field()?)?;
        claimed.push(Claimed {
            id,
            payload,
            attempt,
            token,
            lock_time,
            age: ms(now - born),
            waited: ms(now - due),
            claimed_at: sent,
        });
    }
    Ok((next, handoffs, claimed))
}

/// Runs the handler on one message while keeping its lease, then reports the outcome; the
/// report also takes the next ready message when there is one (one round trip per message
/// on a busy queue), which this task then handles with the same slot.
async fn handle(inner: Arc<Inner>, first: Claimed, _slot: OwnedSemaphorePermit) {
    let mut next = Some(first);
    while let Some(c) = next.take() {
        let (id, token, attempt) = (c.id.clone(), c.token, c.attempt);
        let report = run_one(&inner, c).await;
        let action = report.action;
        let o = &inner.options;
        let take_next = o.claim_with_ack.unwrap_or(true)
            && !inner.stopping.is_cancelled()
            && !matches!(action, Action::Release);
        let reported = inner.acks.report(&id, token, &report, take_next).await;
        let counters = &inner.counters;
        match reported {
            Ok((Acked::Applied { handoff }, claimed)) => {
                if handoff && !skip_handoff(&inner.keys.name) {
                    hand_off(&inner).await;
                }
                Counters::bump(match action {
                    Action::Done => &counters.succeeded,
                    Action::Retry => &counters.retried,
                    Action::Bury => &counters.dead_lettered,
                    Action::Drop => &counters.dropped,
                    Action::Release => &counters.released,
                    Action::Limited => &counters.rate_limited,
                });
                next = claimed;
            }
            Ok((Acked::Rejected, _)) => {
                Counters::bump(&counters.rejected_acks);
                tracing::warn!(queue = %inner.keys.name, id = %id, attempt, "outcome rejected: the lease was lost and another worker holds the message");
            }
            Err(e) => {
                tracing::warn!(queue = %inner.keys.name, id = %id, error = %e, "could not report the outcome; the message is retaken when its lease runs out")
            }
        }
    }
}

/// Queues whose workers skip the hand-off right after an ack (as if they died there), so
/// tests can check that a later claim hands the result over.
#[cfg(feature = "testing")]
pub(crate) static SKIP_HANDOFF: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn skip_handoff(_queue: &str) -> bool {
    #[cfg(feature = "testing")]
    return SKIP_HANDOFF
        .lock()
        .is_ok_and(|queues| queues.iter().any(|q| q == _queue));
    #[cfg(not(feature = "testing"))]
    false
}

/// One message: the handler, with its lease kept; returns the outcome to report.
async fn run_one(inner: &Arc<Inner>, c: Claimed) -> Report {
    let counters = &inner.counters;
    Counters::bump(&counters.claimed);
    Counters::bump(&counters.running);
    counters.record_wait(c.waited);
    let (id, token, attempt, lock_time) = (c.id.clone(), c.token, c.attempt, c.lock_time);
    let claimed_at = c.claimed_at;
    let lease = CancellationToken::new();
    let started = Instant::now();
    let work = AssertUnwindSafe((inner.run)(c, lease.clone())).catch_unwind();
    let keeper = keep_lease(inner, &id, token, (lock_time, claimed_at), lease.clone());
    tokio::pin!(work, keeper);
    let mut keeping = true;
    let finished = loop {
        tokio::select! {
            r = &mut work => break Some(r),
            _ = &mut keeper, if keeping => {
                keeping = false;
                Counters::bump(&counters.leases_lost);
            }
            _ = inner.abandon.cancelled() => break None,
        }
    };
    counters.record_handling(started.elapsed());
    counters
        .running
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    match finished {
        None => Report::new(Action::Release, Duration::ZERO, String::new()),
        Some(Ok(outcome)) => settle(inner, outcome, attempt),
        Some(Err(panic)) => {
            Counters::bump(&counters.panicked);
            let text = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic".into());
            settle(
                inner,
                Outcome::Error(format!("handler panicked: {text}")),
                attempt,
            )
        }
    }
}

/// What the ack step is to do for an outcome.
fn settle(inner: &Inner, outcome: Outcome, attempt: u32) -> Report {
    match outcome {
        Outcome::Success(dedup) => {
            Report::new(Action::Done, dedup.unwrap_or_default(), String::new())
        }
        Outcome::Returned(value) => Report {
            result: Some(value),
            ..Report::new(Action::Done, Duration::ZERO, String::new())
        },
        Outcome::Retry(backoff) => Report::new(Action::Retry, backoff, String::new()),
        Outcome::RateLimited(delay) => Report::new(Action::Limited, delay, String::new()),
        Outcome::Error(error) => {
            Counters::bump(&inner.counters.failed);
            let o = &inner.options;
            if o.max_attempts.is_some_and(|max| attempt >= max) {
                match o.after_last_attempt {
                    AfterLastAttempt::DeadLetter => {
                        Report::new(Action::Bury, Duration::ZERO, error)
                    }
                    AfterLastAttempt::Drop => Report::new(Action::Drop, Duration::ZERO, error),
                }
            } else {
                Report::new(Action::Retry, o.backoff.delay(attempt), error)
            }
        }
    }
}

/// Renews the lease while the handler runs (or, without renewal, waits out the lock
/// time); returns once the lease is lost, having cancelled `lost`.
async fn keep_lease(
    inner: &Inner,
    id: &str,
    token: i64,
    (lock_time, claimed_at): (Duration, Instant),
    lost: CancellationToken,
) {
    if !inner.options.renew_lease {
        tokio::time::sleep_until(crate::lease::deadline(claimed_at, lock_time)).await;
        lost.cancel();
        return;
    }
    let ms = millis(lock_time);
    let extend = || async move {
        let renewed: i64 = RENEW
            .run(&inner.client, &inner.keys, (id, token, ms))
            .await?;
        Ok(renewed == 1)
    };
    crate::lease::keep(lock_time, claimed_at, extend, lost, id).await
}
