//! Distributed locks, Carmine's `with-lock` and more: owner tokens, fencing tokens, waiting
//! without spinning, lease renewal, and a way to learn the lock was lost.

mod guard;
mod scripts;
mod waiters;

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

pub use guard::LockGuard;
use scripts::{ACQUIRE, LockKeys};
use waiters::Waiters;

use crate::client::Client;
use crate::error::{Error, Result};

/// The lease of a lock taken without one: renewed by the watchdog while the guard lives.
pub const WATCHDOG_LEASE: Duration = Duration::from_secs(30);

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
        let watchdog = options.watchdog.unwrap_or(options.lease.is_none());
        let keys = LockKeys::new(name);
        let token = new_token();
        let deadline = Instant::now() + options.wait;
        let take = |fence, sent| {
            LockGuard::new(
                self.client.clone(),
                keys.clone(),
                token.clone(),
                fence,
                (lease, sent),
                watchdog,
            )
        };

        match self.attempt(&keys, &token, lease).await? {
            Attempt::Taken(fence, sent) => return Ok(Some(take(fence, sent))),
            Attempt::Held(_) if options.wait.is_zero() => return Ok(None),
            Attempt::Held(_) => {}
        }
        // Wait for a release (published by the holder) or for the holder's lease to run
        // out, whichever comes first; never poll on a timer of our own.
        let interest = self.waiters.interest(&keys.channel).await?;
        loop {
            let notified = interest.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let held = match self.attempt(&keys, &token, lease).await? {
                Attempt::Taken(fence, sent) => return Ok(Some(take(fence, sent))),
                Attempt::Held(left) => left,
            };
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let fallback = held.max(Duration::from_millis(1));
            let _ = tokio::time::timeout((deadline - now).min(fallback), notified).await;
        }
    }

    async fn attempt(&self, keys: &LockKeys, token: &str, lease: Duration) -> Result<Attempt> {
        // The lease is timed from here: the server starts it no earlier.
        let sent = Instant::now();
        let (taken, n): (i64, i64) = ACQUIRE
            .run(
                &self.client,
                (&keys.lock, &keys.fence),
                (token, lease.as_millis() as u64),
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
