//! Handoff latency of a lock: from the holder's release to the next waiter holding it.
//! Prints percentiles; asserts nothing (performance is measured, never asserted in tests).
//!
//!     cargo bench --bench lock_handoff              # throwaway local server
//!     REDIS_URL=redis://... cargo bench --bench lock_handoff

use std::sync::Arc;
use std::time::{Duration, Instant};

use kermes::lock::Locks;
use kermes::prelude::*;
use tokio::sync::Mutex;

const HANDOFFS: usize = 2_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    let locks = Locks::new(&client);
    // Each handoff: the holder stamps the time and releases; the waiter measures when it
    // holds the lock.
    let released_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut latencies = Vec::with_capacity(HANDOFFS);
    let mut guard = locks
        .try_acquire("bench", Some(Duration::from_secs(30)))
        .await?
        .expect("free");
    for _ in 0..HANDOFFS {
        let waiter = {
            let (locks, released_at) = (locks.clone(), released_at.clone());
            tokio::spawn(async move {
                let g = locks
                    .acquire(
                        "bench",
                        Some(Duration::from_secs(30)),
                        Duration::from_secs(10),
                    )
                    .await
                    .unwrap()
                    .unwrap();
                let at = released_at.lock().await.take().expect("release stamped");
                (g, at.elapsed())
            })
        };
        // Let the waiter block before releasing.
        tokio::time::sleep(Duration::from_millis(2)).await;
        *released_at.lock().await = Some(Instant::now());
        guard.release().await?;
        let (next, latency) = waiter.await?;
        latencies.push(latency);
        guard = next;
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "lock handoff over {HANDOFFS} releases: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    Ok(())
}
