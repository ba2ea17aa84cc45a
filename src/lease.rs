//! Keeping a lease alive: shared by lock guards and queue workers.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Result;

/// Renews a lease every third of it with `extend` until the lease is lost, then cancels
/// `lost` and returns. Lost means: `extend` says the lease is no longer ours, or it keeps
/// failing until the lease must have run out. `what` names the lease in logs.
pub(crate) async fn keep<F, Fut>(
    lease: Duration,
    mut extend: F,
    lost: CancellationToken,
    what: &str,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let every = (lease / 3).max(Duration::from_millis(10));
    let mut held_until = Instant::now() + lease;
    loop {
        tokio::time::sleep(every).await;
        let attempt = Instant::now();
        match extend().await {
            Ok(true) => held_until = attempt + lease,
            Ok(false) => {
                tracing::warn!(lease = what, "lease lost: it is no longer ours");
                break;
            }
            Err(e) if Instant::now() >= held_until => {
                tracing::warn!(lease = what, error = %e, "lease lost: renewal failed until it ran out");
                break;
            }
            Err(e) => tracing::debug!(lease = what, error = %e, "lease renewal failed; retrying"),
        }
    }
    lost.cancel();
}
