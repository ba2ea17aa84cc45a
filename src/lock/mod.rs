//! Distributed locks, Carmine's `with-lock` and more: owner tokens, fencing tokens, waiting
//! without spinning, lease renewal, and a way to learn the lock was lost.
//!
//! Beside the plain lock, Redisson's family on the same [`LockGuard`]:
//! [`Locks::acquire_read`] / [`Locks::acquire_write`] (a read-write lock whose waiting
//! writers hold off new readers), [`Locks::acquire_fair`] (served in arrival order, a dead
//! waiter skipped after [`WAITING_LEASE`]), [`Locks::acquire_permit`] (a semaphore whose
//! permits are leased, so a crashed holder's comes back), [`CountDownLatch`] and
//! [`RateLimiter`] (GCRA on the server's clock).

mod guard;
mod latch;
mod rate;
mod scripts;
mod waiters;

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

pub use guard::LockGuard;
pub use latch::CountDownLatch;
pub use rate::{RateDecision, RateLimiter};
use scripts::{
    ACQUIRE, FAIR_ACQUIRE, FAIR_LEAVE, Held, LockKeys, READ_ACQUIRE, SEMAPHORE_ACQUIRE,
    WRITE_ACQUIRE, ZREM_WAITING,
};
use waiters::Waiters;

use crate::script::Script;

use crate::client::Client;
use crate::error::{Error, Result};

/// The lease of a lock taken without one: renewed by the watchdog while the guard lives.
pub const WATCHDOG_LEASE: Duration = Duration::from_secs(30);

/// How long a waiter's place in a fair lock's queue, or a waiting writer's claim on a
/// read-write lock, lasts without renewal. Waiters renew it every third of it while they
/// wait, so only a dead waiter's place lapses.
pub const WAITING_LEASE: Duration = Duration::from_secs(3);

/// How to take a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LockOptions {
    /// How long the lock holds without renewal. `None`: [`WATCHDOG_LEASE`], renewed by a
    /// watchdog while the guard lives. Default `None`.
    pub lease: Option<Duration>,
    /// How long to wait for a held lock. Zero tries exactly once. Default zero.
    pub wait: Duration,
    /// Renew the lease while the guard lives. Default: on when `lease` is `None`.
    pub watchdog: Option<bool>,
}

impl LockOptions {
    /// Watchdog-renewed, one attempt.
    pub fn new() -> Self {
        LockOptions {
            lease: None,
            wait: Duration::ZERO,
            watchdog: None,
        }
    }

    /// Sets [`lease`](Self::lease).
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Sets [`wait`](Self::wait).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Sets [`watchdog`](Self::watchdog).
    pub fn watchdog(mut self, on: bool) -> Self {
        self.watchdog = Some(on);
        self
    }
}

impl Default for LockOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`Locks::with_lock`] returns when it got the lock.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Locked<T> {
    /// What the body returned, whatever happened to the lock.
    pub value: T,
    /// True when the lock was lost before the body finished (the lease ran out or the lock
    /// was taken over), so the body may have overlapped another holder.
    pub lease_lost: bool,
}

/// Distributed locks on one client. Cheap to clone; waiting for locks shares one
/// subscriber connection, woken by releases instead of polling.
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// use std::time::Duration;
/// use kermes::lock::Locks;
///
/// let locks = Locks::new(&client);
/// if let Some(guard) = locks.acquire("report", None, Duration::from_secs(5)).await? {
///     let fence = guard.fencing_token();
///     // ... work, passing `fence` to storage; select on guard.lost() to stop early ...
///     guard.release().await?;
/// }
/// let outcome = locks.with_lock("report", Some(Duration::from_secs(10)), Duration::ZERO, async { 42 }).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Locks {
    client: Client,
    waiters: Arc<Waiters>,
}

/// How one kind of lock is taken: its attempt script and keys, and what a waiter that gives
/// up must undo.
struct Spec {
    /// The guard's keys (where its token is held, the release channel).
    keys: LockKeys,
    script: &'static Script,
    script_keys: Vec<String>,
    /// A third argument to the attempt script.
    extra: Option<u64>,
    /// The longest wait between attempts (a waiter's place must be renewed).
    nap: Option<Duration>,
    /// Run with the token when waiting ends without the lock.
    leave: Option<(&'static Script, Vec<String>)>,
}

enum Attempt {
    /// Taken with this fencing token, by a request sent at this instant.
    Taken(u64, Instant),
    /// Held by another, with this much lease left.
    Held(Duration),
}

impl Locks {
    /// Locks on this client.
    pub fn new(client: &Client) -> Locks {
        Locks {
            client: client.clone(),
            waiters: Arc::new(Waiters::new(client)),
        }
    }

    /// Takes the lock `name`, waiting up to `wait` while another holds it (zero tries once).
    /// With `lease` `None` the lock is renewed by a watchdog while the guard lives.
    /// `Ok(None)` when the lock was not free in time.
    pub async fn acquire(
        &self,
        name: &str,
        lease: Option<Duration>,
        wait: Duration,
    ) -> Result<Option<LockGuard>> {
        let mut options = LockOptions::new().wait(wait);
        options.lease = lease;
        self.acquire_with(name, options).await
    }

    /// Tries once to take the lock.
    pub async fn try_acquire(
        &self,
        name: &str,
        lease: Option<Duration>,
    ) -> Result<Option<LockGuard>> {
        self.acquire(name, lease, Duration::ZERO).await
    }

    /// Takes a lock with all options.
    pub async fn acquire_with(
        &self,
        name: &str,
        options: LockOptions,
    ) -> Result<Option<LockGuard>> {
        let lease = options.lease.unwrap_or(WATCHDOG_LEASE);
        if lease < Duration::from_millis(1) {
            return Err(Error::config("lock lease must be at least 1 ms"));
        }
        let keys = LockKeys::new(name);
        let spec = Spec {
            script: &ACQUIRE,
            script_keys: vec![keys.lock.clone(), keys.fence.clone()],
            extra: None,
            nap: None,
            leave: None,
            keys,
        };
        self.acquire_spec(spec, options).await
    }

    /// Takes the read side of the read-write lock `name`: any number of readers hold it
    /// together, never with a writer. A writer waiting for it holds off new readers, so
    /// writers are not starved (each waiting writer renews its claim every second; a dead
    /// one's claim ends after [`WAITING_LEASE`]).
    pub async fn acquire_read(
        &self,
        name: &str,
        options: LockOptions,
    ) -> Result<Option<LockGuard>> {
        let writer = LockKeys::family("rw", name, Held::Key, "all");
        let mut keys = writer.clone();
        keys.lock = writer.sibling("readers");
        keys.held = Held::Member;
        let spec = Spec {
            script: &READ_ACQUIRE,
            script_keys: vec![
                keys.lock.clone(),
                writer.lock.clone(),
                writer.sibling("writers-waiting"),
                writer.fence.clone(),
            ],
            extra: None,
            nap: Some(WAITING_LEASE / 3),
            leave: None,
            keys,
        };
        self.acquire_spec(spec, options).await
    }

    /// Takes the write side of the read-write lock `name`: one writer, no readers. Fencing
    /// tokens are shared with the read side, so they order reads and writes together.
    pub async fn acquire_write(
        &self,
        name: &str,
        options: LockOptions,
    ) -> Result<Option<LockGuard>> {
        let keys = LockKeys::family("rw", name, Held::Key, "all");
        let waiting = keys.sibling("writers-waiting");
        let spec = Spec {
            script: &WRITE_ACQUIRE,
            script_keys: vec![
                keys.sibling("readers"),
                keys.lock.clone(),
                waiting.clone(),
                keys.fence.clone(),
            ],
            extra: Some(WAITING_LEASE.as_millis() as u64),
            nap: Some(WAITING_LEASE / 3),
            leave: Some((&ZREM_WAITING, vec![waiting])),
            keys,
        };
        self.acquire_spec(spec, options).await
    }

    /// Takes the fair lock `name`: waiters, in any process, get it in the order they asked.
    /// A waiter renews its place while it waits; one that stops (a dead process) is skipped
    /// once its place's [`WAITING_LEASE`] ends. Not the same lock as [`acquire`](Self::acquire)'s
    /// of that name.
    pub async fn acquire_fair(
        &self,
        name: &str,
        options: LockOptions,
    ) -> Result<Option<LockGuard>> {
        let keys = LockKeys::family("fair", name, Held::Key, "all");
        let (queue, alive) = (keys.sibling("queue"), keys.sibling("alive"));
        let spec = Spec {
            script: &FAIR_ACQUIRE,
            script_keys: vec![
                keys.lock.clone(),
                queue.clone(),
                alive.clone(),
                keys.sibling("tickets"),
                keys.fence.clone(),
            ],
            extra: Some(WAITING_LEASE.as_millis() as u64),
            nap: Some(WAITING_LEASE / 3),
            leave: Some((&FAIR_LEAVE, vec![queue, alive])),
            keys,
        };
        self.acquire_spec(spec, options).await
    }

    /// Takes one of `permits` permits of the semaphore `name`. A permit is leased like a
    /// lock (renewed by the watchdog, [`LockGuard::lost`] when it ends), so a crashed
    /// holder's permit comes back when its lease runs out. Everyone using `name` must pass
    /// the same `permits`.
    pub async fn acquire_permit(
        &self,
        name: &str,
        permits: u32,
        options: LockOptions,
    ) -> Result<Option<LockGuard>> {
        if permits == 0 {
            return Err(Error::config("a semaphore needs at least one permit"));
        }
        let mut keys = LockKeys::family("semaphore", name, Held::Member, "all");
        keys.lock = keys.sibling("holders");
        let spec = Spec {
            script: &SEMAPHORE_ACQUIRE,
            script_keys: vec![keys.lock.clone(), keys.fence.clone()],
            extra: Some(u64::from(permits)),
            nap: None,
            leave: None,
            keys,
        };
        self.acquire_spec(spec, options).await
    }

    /// The countdown latch `name`.
    pub fn latch(&self, name: &str) -> CountDownLatch {
        CountDownLatch::new(self.client.clone(), self.waiters.clone(), name)
    }

    async fn acquire_spec(&self, spec: Spec, options: LockOptions) -> Result<Option<LockGuard>> {
        let lease = options.lease.unwrap_or(WATCHDOG_LEASE);
        if lease < Duration::from_millis(1) {
            return Err(Error::config("lock lease must be at least 1 ms"));
        }
        let watchdog = options.watchdog.unwrap_or(options.lease.is_none());
        let token = new_token();
        let deadline = Instant::now() + options.wait;
        let take = |fence, sent| {
            LockGuard::new(
                self.client.clone(),
                spec.keys.clone(),
                token.clone(),
                fence,
                (lease, sent),
                watchdog,
            )
        };
        let result = async {
            match self.attempt(&spec, &token, lease).await? {
                Attempt::Taken(fence, sent) => return Ok(Some(take(fence, sent))),
                Attempt::Held(_) if options.wait.is_zero() => return Ok(None),
                Attempt::Held(_) => {}
            }
            // Wait for a release (published by the holder) or for the holder's lease to
            // run out, whichever comes first; never poll on a timer of our own.
            let interest = self.waiters.interest(&spec.keys.channel).await?;
            loop {
                let notified = interest.notify.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let held = match self.attempt(&spec, &token, lease).await? {
                    Attempt::Taken(fence, sent) => return Ok(Some(take(fence, sent))),
                    Attempt::Held(left) => left,
                };
                let now = Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                let fallback = held
                    .min(spec.nap.unwrap_or(Duration::MAX))
                    .max(Duration::from_millis(1));
                let _ = tokio::time::timeout((deadline - now).min(fallback), notified).await;
            }
        }
        .await;
        // A waiter that did not get in gives its place (or its claim) up.
        if let (Ok(None) | Err(_), Some((leave, keys))) = (&result, &spec.leave) {
            if let Err(e) = leave.run::<_, i64>(&self.client, keys, &token).await {
                tracing::debug!(lock = %spec.keys.lock, error = %e, "leaving the wait failed; the place lapses with its lease");
            }
        }
        result
    }

    async fn attempt(&self, spec: &Spec, token: &str, lease: Duration) -> Result<Attempt> {
        // The lease is timed from here: the server starts it no earlier.
        let sent = Instant::now();
        let (taken, n): (i64, i64) = spec
            .script
            .run(
                &self.client,
                &spec.script_keys,
                (token, lease.as_millis() as u64, spec.extra),
            )
            .await?;
        Ok(if taken == 1 {
            Attempt::Taken(n as u64, sent)
        } else {
            // PTTL -1 (no expiry) cannot happen for our keys; treat it as a short wait.
            Attempt::Held(Duration::from_millis(n.max(1) as u64))
        })
    }

    /// Runs `body` holding the lock `name`: `Ok(None)` when the lock was not free within
    /// `wait`, else the body's value, also when the lease ran out during the body (then
    /// [`Locked::lease_lost`] says so). Releasing never replaces the body's own result or
    /// error.
    pub async fn with_lock<F: Future>(
        &self,
        name: &str,
        lease: Option<Duration>,
        wait: Duration,
        body: F,
    ) -> Result<Option<Locked<F::Output>>> {
        let Some(guard) = self.acquire(name, lease, wait).await? else {
            return Ok(None);
        };
        let value = body.await;
        let lost_during = guard.is_lost();
        let still_held = match guard.release().await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(lock = name, error = %e, "release after with_lock failed");
                false
            }
        };
        Ok(Some(Locked {
            value,
            lease_lost: lost_during || !still_held,
        }))
    }
}

/// A token unique to one acquisition across processes and time.
pub(crate) fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        h.write_usize(i);
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        *w = h.finish();
    }
    format!("{:016x}{:016x}", words[0], words[1])
}
