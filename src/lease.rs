//! Keeping a lease alive: shared by lock guards and queue workers.
//!
//! A lease is timed from the moment the request that took (or renewed) it was sent, never
//! from when its reply arrived: the server started counting at least that late, so the lease
//! as this client reckons it ends no later than on the server.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// How long before the reckoned end of a lease it is given up: room for clocks that run at
/// slightly different rates (1%, as Redlock allows), plus 2 ms.
pub(crate) fn safety_margin(lease: Duration) -> Duration {
    lease / 100 + Duration::from_millis(2)
}

/// When a lease taken (or renewed) by a request sent at `sent` must be considered lost.
pub(crate) fn deadline(sent: Instant, lease: Duration) -> Instant {
    sent + lease - safety_margin(lease).min(lease / 2)
}

/// Renews a lease, taken by a request sent at `sent`, every third of it with `extend` until
/// the lease is lost, then cancels `lost` and returns.
///
/// Lost means: `extend` says the lease is no longer ours, or no renewal succeeded before
/// the lease (timed from the last successful renewal's send) ran out. Each renewal may take
/// only the time left before that deadline, so a silent network cannot hold it past the
/// lease; failed renewals are retried sooner. `what` names the lease in logs.
pub(crate) async fn keep<F, Fut>(
    lease: Duration,
    sent: Instant,
    mut extend: F,
    lost: CancellationToken,
    what: &str,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let every = (lease / 3).max(Duration::from_millis(10));
    let retry = (every / 4).max(Duration::from_millis(5));
    let mut held_until = deadline(sent, lease);
    let mut next = sent + every;
    loop {
        tokio::time::sleep_until(next.min(held_until)).await;
        let attempt = Instant::now();
        if attempt >= held_until {
            tracing::warn!(
                lease = what,
                "lease lost: no renewal succeeded before it ran out"
            );
            break;
        }
        match tokio::time::timeout_at(held_until, extend()).await {
            Ok(Ok(true)) => {
                held_until = deadline(attempt, lease);
                next = attempt + every;
            }
            Ok(Ok(false)) => {
                tracing::warn!(lease = what, "lease lost: it is no longer ours");
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(lease = what, error = %e, "lease renewal failed; retrying");
                next = Instant::now() + retry;
            }
            Err(_) => {
                tracing::warn!(
                    lease = what,
                    "lease lost: the renewal got no reply before it ran out"
                );
                break;
            }
        }
    }
    lost.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Runs `keep` on a 3 s lease whose renewals `outcome` answers (by call number); returns
    /// when the lease was lost (from the start) and how many renewals were tried.
    async fn lose(outcome: fn(u32) -> Option<Result<bool>>) -> (Duration, u32) {
        let sent = Instant::now();
        let lost = CancellationToken::new();
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let extend = move || {
            let answer = outcome(counter.fetch_add(1, Ordering::SeqCst));
            async move {
                match answer {
                    Some(r) => r,
                    None => std::future::pending().await,
                }
            }
        };
        keep(Duration::from_secs(3), sent, extend, lost.clone(), "test").await;
        assert!(lost.is_cancelled());
        (sent.elapsed(), calls.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_that_never_answers_loses_the_lease_before_it_runs_out() {
        let (at, calls) = lose(|n| (n == 0).then_some(Ok(true))).await;
        // Renewed once at 1 s: the lease then ends at 4 s; lost strictly before.
        assert!(at < Duration::from_secs(4), "{at:?}");
        assert!(at >= Duration::from_millis(3900), "{at:?}");
        assert_eq!(calls, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_renewals_are_retried_until_the_lease_runs_out() {
        let (at, calls) = lose(|_| Some(Err(crate::Error::closed("down")))).await;
        assert!(at < Duration::from_secs(3), "{at:?}");
        assert!(calls > 3, "retried sooner than every third: {calls}");
    }
}
