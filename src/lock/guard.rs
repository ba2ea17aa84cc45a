//! [`LockGuard`]: a held lock, its fencing token, its renewal, and how it can be lost.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::scripts::{EXTEND, Held, LockKeys, MEMBER_EXTEND, MEMBER_HELD, MEMBER_RELEASE, RELEASE};
use crate::client::Client;
use crate::commands::StringCommands;
use crate::error::Result;
use crate::pubsub::wake;

/// A held lock, read or write lock, fair lock or semaphore permit. Dropping it releases it
/// (in a spawned task); call [`release`](LockGuard::release) to learn whether it was still
/// held.
pub struct LockGuard {
    client: Client,
    keys: LockKeys,
    token: String,
    fence: u64,
    lease: Duration,
    lost: CancellationToken,
    /// When the lease is lost as this client reckons it (timed from the send of the
    /// request that took or extended it); `extend` moves it.
    expires: Arc<watch::Sender<Instant>>,
    keeper: Option<JoinHandle<()>>,
    released: bool,
}

impl LockGuard {
    pub(crate) fn new(
        client: Client,
        keys: LockKeys,
        token: String,
        fence: u64,
        (lease, sent): (Duration, Instant),
        watchdog: bool,
    ) -> LockGuard {
        let expires = Arc::new(watch::Sender::new(crate::lease::deadline(sent, lease)));
        let lost = CancellationToken::new();
        let keeper = if watchdog {
            tokio::spawn(renew(
                client.clone(),
                keys.clone(),
                token.clone(),
                (lease, sent),
                lost.clone(),
            ))
        } else {
            tokio::spawn(expire(expires.subscribe(), lost.clone()))
        };
        LockGuard {
            client,
            keys,
            token,
            fence,
            lease,
            lost,
            expires,
            keeper: Some(keeper),
            released: false,
        }
    }

    /// The fencing token: strictly greater than every token of earlier holders of this lock.
    /// Hand it to storage that should refuse writes from a stale holder.
    pub fn fencing_token(&self) -> u64 {
        self.fence
    }

    /// The owner token of this acquisition (the lock key's value while held).
    pub fn owner_token(&self) -> &str {
        &self.token
    }

    /// Resolves when the lock is lost: its lease ran out, renewal failed, or someone
    /// removed it. Select on it to stop work that must not outlive the lock.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// True once [`lost`](Self::lost) has fired.
    pub fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// A token cancelled when the lock is lost, for work spawned elsewhere.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.lost.child_token()
    }

    /// Asks the server whether this acquisition still holds the lock.
    pub async fn have_lock(&self) -> Result<bool> {
        match self.keys.held {
            Held::Key => {
                let current: Option<bytes::Bytes> = self.client.get(&self.keys.lock).await?;
                Ok(current.as_deref() == Some(self.token.as_bytes()))
            }
            Held::Member => {
                let held: i64 = MEMBER_HELD
                    .run(&self.client, &self.keys.lock, &self.token)
                    .await?;
                Ok(held == 1)
            }
        }
    }

    /// Resets the lease to `lease` from now, if this acquisition still holds the lock.
    pub async fn extend(&self, lease: Duration) -> Result<bool> {
        let sent = Instant::now();
        let ok = extend(&self.client, &self.keys, &self.token, lease).await?;
        if ok {
            self.expires
                .send_replace(crate::lease::deadline(sent, lease));
        }
        Ok(ok)
    }

    /// The lease this lock was taken (and is renewed) with.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Releases the lock. `Ok(false)`: it was no longer ours (the lease ran out, or it was
    /// taken over), so whatever ran under it may have overlapped another holder.
    pub async fn release(mut self) -> Result<bool> {
        self.released = true;
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
        release(&self.client, &self.keys, &self.token).await
    }
}

async fn release(client: &Client, keys: &LockKeys, token: &str) -> Result<bool> {
    let script = match keys.held {
        Held::Key => &*RELEASE,
        Held::Member => &*MEMBER_RELEASE,
    };
    let args = (
        token,
        &keys.channel,
        wake::publish_command(client),
        keys.wake,
    );
    let done: i64 = script.run(client, &keys.lock, args).await?;
    Ok(done == 1)
}

async fn extend(client: &Client, keys: &LockKeys, token: &str, lease: Duration) -> Result<bool> {
    let script = match keys.held {
        Held::Key => &*EXTEND,
        Held::Member => &*MEMBER_EXTEND,
    };
    let ok: i64 = script
        .run(client, &keys.lock, (token, lease.as_millis() as u64))
        .await?;
    Ok(ok == 1)
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(k) = self.keeper.take() {
            k.abort();
        }
        if !self.released
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (client, keys, token) =
                (self.client.clone(), self.keys.clone(), self.token.clone());
            rt.spawn(async move {
                if let Err(e) = release(&client, &keys, &token).await {
                    tracing::warn!(lock = %keys.lock, error = %e, "releasing a dropped lock failed; it expires with its lease");
                }
            });
        }
    }
}

/// The watchdog: renews the lease every third of it until the lock is lost.
async fn renew(
    client: Client,
    keys: LockKeys,
    token: String,
    (lease, sent): (Duration, Instant),
    lost: CancellationToken,
) {
    let renew = || extend(&client, &keys, &token, lease);
    crate::lease::keep(lease, sent, renew, lost, &keys.lock).await
}

/// Without a watchdog, the lock is lost when its lease runs out (as this client reckons
/// it, from the send of the request that took or extended it).
async fn expire(mut expires: watch::Receiver<Instant>, lost: CancellationToken) {
    loop {
        let until = *expires.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep_until(until) => break,
            changed = expires.changed() => if changed.is_err() {
                // The guard is gone.
                return;
            },
        }
    }
    lost.cancel();
}
