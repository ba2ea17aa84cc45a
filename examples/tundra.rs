//! Tundra: keep only hot keys in Redis memory. Profiles are written and marked dirty; a
//! worker copies each to a disk store and lets it expire from Redis two seconds later;
//! `ensure` brings an evicted profile back before it is read (one whose own TTL has
//! passed stays gone). A profile
//! changed while it was being copied is copied again, never dropped.
//!
//! Uses `REDIS_URL` when set; otherwise starts a throwaway redis-server (or valkey-server)
//! from a local binary (see `scripts/install-servers.sh`).
//!
//!     cargo run --example tundra --features testing

use std::time::Duration;

use kermes::Client;
use kermes::mq::{self, WorkerOptions};
use kermes::prelude::*;
use kermes::tundra::{DiskStore, Ensured, Tundra, TundraOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    let dir = std::env::temp_dir().join(format!("kermes-tundra-example-{}", std::process::id()));
    let store = DiskStore::new(&dir)?;
    let tundra = Tundra::new(
        &client,
        store,
        TundraOptions::new()
            .name("example")
            .redis_ttl(Some(Duration::from_secs(2))),
    )?;
    let worker = tundra.worker(WorkerOptions::new().concurrency(4)).await?;

    let keys: Vec<String> = (1..=100).map(|i| format!("profile:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        client
            .hset(key, [("name", format!("user {i}")), ("visits", "0".into())])
            .await?;
    }
    // One profile has its own TTL of a second, shorter than Tundra's: it is kept, and once
    // it has passed the profile is not brought back.
    client.pexpire(&keys[0], 1000).await?;
    println!("marked dirty: {}", tundra.dirty(&keys).await?);

    // Replicated, then evicted from memory once their two seconds are up.
    loop {
        let status = mq::queue_status(&client, tundra.queue()).await?;
        let left: i64 = client.cmd("EXISTS").arg(&keys).query().await?;
        println!("queue {status:?}; {left} of 100 profiles still in Redis");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    println!("on disk under {}", dir.display());

    // Before use: bring them back.
    let ensured = tundra.ensure(&keys[..10]).await?;
    assert_eq!(ensured[0], Ensured::Expired);
    assert!(ensured[1..].iter().all(|e| *e == Ensured::Restored));
    let name: String = client.hget(&keys[3], "name").await?;
    let ttl: i64 = client.pttl(&keys[3]).await?;
    println!(
        "restored 9, {} expired on its own; {} is {name:?}, back in Redis for {ttl} ms",
        keys[0], keys[3]
    );
    println!(
        "a key in neither place: {:?}",
        tundra.ensure(["profile:never"]).await?
    );

    let stats = worker.stop().await?;
    println!(
        "worker: {} replicated, {} retried",
        stats.succeeded, stats.retried
    );
    tundra.delete(&keys).await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
