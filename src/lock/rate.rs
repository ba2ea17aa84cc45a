//! [`RateLimiter`]: a distributed rate limit (GCRA on the server's clock).

use std::sync::LazyLock;
use std::time::Duration;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::script::Script;

/// GCRA. KEYS: the limit's theoretical arrival time (server µs). ARGV: emission interval
/// (µs per unit), burst (units), cost (units). `{allowed 0/1, µs to wait, units left}`.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local t = redis.call('TIME')
         local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
         local interval = tonumber(ARGV[1])
         local window = interval * tonumber(ARGV[2])
         local tat = tonumber(redis.call('GET', KEYS[1]) or now)
         if tat < now then tat = now end
         local new = tat + interval * tonumber(ARGV[3])
         local allow_at = new - window
         if now < allow_at then
           return {0, allow_at - now, math.floor((now - (tat - window)) / interval)}
         end
         redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
         return {1, 0, math.floor((now - (new - window)) / interval)}",
    )
});

/// What one [`RateLimiter::try_acquire`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateDecision {
    /// The units were granted.
    pub allowed: bool,
    /// When refused: how long until the same request would be granted.
    pub retry_after: Duration,
    /// Units that could be granted right now after this decision.
    pub remaining: u64,
}

/// A rate limit shared by every client of a Redis (`limit` units per `period`, bursts of up
/// to `burst`), as the generic cell rate algorithm: one key per limiter holding when the
/// next unit is due, on the server's clock, so clients with skewed clocks agree. Granting
/// is one script call; waiting sleeps exactly as long as the server says, never polls.
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// use std::time::Duration;
/// use kermes::lock::RateLimiter;
///
/// let api = RateLimiter::new(&client, "partner-api", 100, Duration::from_secs(1))?.burst(20)?;
/// if api.try_acquire(1).await?.allowed { /* call the partner API */ }
/// assert!(api.acquire(1, Duration::from_secs(5)).await?); // waits for its turn
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RateLimiter {
    client: Client,
    key: String,
    interval_us: u64,
    burst: u64,
}

impl RateLimiter {
    /// `limit` units per `period`, bursts of up to `limit`.
    pub fn new(client: &Client, name: &str, limit: u64, period: Duration) -> Result<RateLimiter> {
        if limit == 0 || period.is_zero() {
            return Err(Error::config(
                "a rate limit needs a positive limit and period",
            ));
        }
        let interval_us = (period.as_micros() / u128::from(limit)).max(1);
        Ok(RateLimiter {
            client: client.clone(),
            key: format!("kermes:rate:{{{name}}}"),
            interval_us: u64::try_from(interval_us).unwrap_or(u64::MAX),
            burst: limit,
        })
    }

    /// At most `burst` units at once after a quiet spell (at least 1).
    pub fn burst(mut self, burst: u64) -> Result<RateLimiter> {
        if burst == 0 {
            return Err(Error::config("a rate limit's burst must be at least 1"));
        }
        self.burst = burst;
        Ok(self)
    }

    /// Takes `units` now if the limit allows, else says how long to wait.
    pub async fn try_acquire(&self, units: u64) -> Result<RateDecision> {
        if units > self.burst {
            return Err(Error::config(format!(
                "{units} units can never be granted at once by a limit whose burst is {}",
                self.burst
            )));
        }
        let (allowed, wait_us, remaining): (i64, i64, i64) = TAKE
            .run(
                &self.client,
                &self.key,
                (self.interval_us, self.burst, units),
            )
            .await?;
        Ok(RateDecision {
            allowed: allowed == 1,
            retry_after: Duration::from_micros(wait_us.max(0) as u64),
            remaining: remaining.max(0) as u64,
        })
    }

    /// Takes `units`, waiting up to `max_wait` for them; false when they were not granted
    /// in time.
    pub async fn acquire(&self, units: u64, max_wait: Duration) -> Result<bool> {
        let deadline = tokio::time::Instant::now() + max_wait;
        loop {
            let d = self.try_acquire(units).await?;
            if d.allowed {
                return Ok(true);
            }
            let until = tokio::time::Instant::now() + d.retry_after;
            if until > deadline {
                return Ok(false);
            }
            tokio::time::sleep_until(until).await;
        }
    }
}
