//! Distributed locks: with_lock, a guard with a fencing token, waiting without spinning, and
//! noticing a lost lock.
//!
//!     cargo run --example lock

use std::time::Duration;

use kermes::lock::{LockOptions, Locks};
use kermes::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    let locks = Locks::new(&client);

    // The body's result comes back, with whether the lock held throughout.
    let out = locks
        .with_lock(
            "nightly-report",
            Some(Duration::from_secs(10)),
            Duration::ZERO,
            async { "report written" },
        )
        .await?;
    println!("with_lock: {out:?}");

    // A guard: the fencing token grows with every holder; the watchdog renews the lease.
    let guard = locks.try_acquire("invoices", None).await?.expect("free");
    println!(
        "holding invoices with fencing token {}",
        guard.fencing_token()
    );

    // Five waiters block without polling; each release wakes the next.
    let waiters: Vec<_> = (0..5)
        .map(|i| {
            let locks = locks.clone();
            tokio::spawn(async move {
                let g = locks
                    .acquire("invoices", None, Duration::from_secs(5))
                    .await
                    .unwrap()
                    .unwrap();
                println!("waiter {i} got it, fencing token {}", g.fencing_token());
                tokio::time::sleep(Duration::from_millis(20)).await;
                g.release().await.unwrap();
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    guard.release().await?;
    for w in waiters {
        w.await?;
    }

    // Losing the lock is observable: here someone deletes the key.
    let guard = locks
        .acquire_with(
            "fragile",
            LockOptions::new()
                .lease(Duration::from_millis(300))
                .watchdog(true),
        )
        .await?
        .expect("free");
    client.del("kermes:lock:{fragile}").await?;
    tokio::select! {
        _ = guard.lost() => println!("fragile: lost, stopping work"),
        _ = tokio::time::sleep(Duration::from_secs(5)) => println!("fragile: still held?"),
    }
    Ok(())
}
