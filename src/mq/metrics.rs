//! Outcome counts per minute, kept on the server ([`set_metrics`], [`metrics`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::keys::QueueKeys;
use super::scripts::{METRICS, SET_METRICS};
use crate::client::Client;
use crate::error::{Error, Result};

/// Turns on per-minute counts of `queue`'s completed messages and failed attempts, kept for
/// the last `minutes` (a counter per minute bucket, incremented by the outcome's own
/// script), or off with `None` (the counts are deleted). Off by default.
pub async fn set_metrics(client: &Client, queue: &str, minutes: Option<u32>) -> Result<()> {
    let keys = QueueKeys::new(queue)?;
    let _: i64 = SET_METRICS.run(client, &keys, minutes.unwrap_or(0)).await?;
    Ok(())
}

/// One minute of a queue's outcomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MinuteCounts {
    /// The minute's start (server clock).
    pub minute: SystemTime,
    /// Messages handled successfully.
    pub completed: u64,
    /// Attempts that failed (errors and panics; each retry of a message counts).
    pub failed: u64,
}

/// The counts of every minute kept, oldest first, the current minute last (minutes with no
/// outcome count zero); empty when metrics are off.
pub async fn metrics(client: &Client, queue: &str) -> Result<Vec<MinuteCounts>> {
    let keys = QueueKeys::new(queue)?;
    let reply: Vec<u64> = METRICS.run(client, &keys, ()).await?;
    let [minute, keep, counts @ ..] = &reply[..] else {
        return Err(Error::protocol("short metrics reply"));
    };
    let first = minute + 1 - keep;
    Ok(counts
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| MinuteCounts {
            minute: UNIX_EPOCH + Duration::from_secs((first + i as u64) * 60),
            completed: pair[0],
            failed: pair.get(1).copied().unwrap_or(0),
        })
        .collect())
}
