//! [`CountDownLatch`]: tasks in any process wait until a count reaches zero.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::time::Instant;

use super::scripts::{Held, LockKeys};
use super::waiters::Waiters;
use crate::client::Client;
use crate::error::Result;
use crate::pubsub::wake;
use crate::script::Script;

/// KEYS: count. ARGV: channel, publish command. The count after one step down (0 when it
/// reached zero or was not set); at zero the key goes and every waiter is told.
static COUNT_DOWN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
         local left = redis.call('DECR', KEYS[1])
         if left <= 0 then
           redis.call('DEL', KEYS[1])
           redis.call(ARGV[2], ARGV[1], 'all')
           return 0
         end
         return left",
    )
});

/// A countdown latch (Redisson's `RCountDownLatch`): set a count, let holders count down,
/// and wait, woken by the step that reaches zero (no polling). A latch whose count is not
/// set, or reached zero, is open. Get one from [`Locks::latch`](super::Locks::latch).
///
/// ```no_run
/// # async fn demo(locks: kermes::lock::Locks) -> kermes::Result<()> {
/// use std::time::Duration;
/// let latch = locks.latch("all-shards-loaded");
/// latch.try_set_count(3).await?;          // once, by the coordinator
/// // ... each of 3 workers, anywhere: latch.count_down().await?;
/// let done = latch.wait(Duration::from_secs(30)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CountDownLatch {
    client: Client,
    waiters: Arc<Waiters>,
    keys: LockKeys,
}

impl CountDownLatch {
    pub(crate) fn new(client: Client, waiters: Arc<Waiters>, name: &str) -> CountDownLatch {
        CountDownLatch {
            client,
            waiters,
            keys: LockKeys::family("latch", name, Held::Key, "all"),
        }
    }

    /// Sets the count when the latch is open (not set, or at zero); true when set. A count
    /// of zero leaves it open.
    pub async fn try_set_count(&self, count: u64) -> Result<bool> {
        if count == 0 {
            return Ok(false);
        }
        let set: Option<String> = self
            .client
            .cmd("SET")
            .arg(&self.keys.lock)
            .arg((count, "NX"))
            .query()
            .await?;
        Ok(set.is_some())
    }

    /// The count left (0: open).
    pub async fn count(&self) -> Result<u64> {
        let n: Option<i64> = self.client.cmd("GET").arg(&self.keys.lock).query().await?;
        Ok(n.map_or(0, |n| n.max(0) as u64))
    }

    /// Counts down by one; returns the count left. Reaching zero opens the latch and wakes
    /// every waiter; counting down an open latch does nothing.
    pub async fn count_down(&self) -> Result<u64> {
        let left: i64 = COUNT_DOWN
            .run(
                &self.client,
                &self.keys.lock,
                (&self.keys.channel, wake::publish_command(&self.client)),
            )
            .await?;
        Ok(left.max(0) as u64)
    }

    /// Waits up to `timeout` for the latch to open; true when it did.
    pub async fn wait(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let interest = self.waiters.interest(&self.keys.channel).await?;
        loop {
            let notified = interest.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count().await? == 0 {
                return Ok(true);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(self.count().await? == 0);
            }
        }
    }
}
