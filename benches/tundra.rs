//! Tundra end to end with the disk store: keys marked dirty per second, keys replicated per
//! second by one worker (concurrency 16: DUMP, fsynced file, commit script), and evicted
//! keys restored per second by `ensure`, with the server's CPU per key. Prints; asserts
//! nothing.
//!
//!     cargo bench --bench tundra                     # throwaway local server, $TMPDIR
//!     REDIS_URL=redis://... TUNDRA_DIR=/mnt/disk cargo bench --bench tundra

use std::time::{Duration, Instant};

use kermes::mq::WorkerOptions;
use kermes::prelude::*;
use kermes::tundra::{DiskStore, Ensured, Tundra, TundraOptions};

mod common;
use common::server_cpu;

const KEYS: usize = 10_000;
const VALUE: usize = 1024;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    let root = std::env::var_os("TUNDRA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("kermes-tundra-bench-{}", std::process::id()));
    let tundra = Tundra::new(
        &client,
        DiskStore::new(&root)?,
        TundraOptions::new()
            .name("bench")
            .redis_ttl(Some(Duration::from_secs(3600))),
    )?;
    let keys: Vec<String> = (0..KEYS).map(|i| format!("bench:tundra:{i}")).collect();
    let value = "v".repeat(VALUE);
    futures::future::try_join_all(keys.iter().map(|k| client.set(k, value.as_str()))).await?;

    let (cpu0, t) = (server_cpu(&client).await?, Instant::now());
    tundra.dirty(&keys).await?;
    report("dirty", t.elapsed(), server_cpu(&client).await? - cpu0);

    let (cpu0, t) = (server_cpu(&client).await?, Instant::now());
    let worker = tundra.worker(WorkerOptions::new().concurrency(16)).await?;
    while worker.stats().succeeded < KEYS as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    report(
        "replicate (disk, fsync)",
        t.elapsed(),
        server_cpu(&client).await? - cpu0,
    );
    worker.stop().await?;

    // Evicted (as Tundra's TTL would), then brought back.
    futures::future::try_join_all(keys.chunks(500).map(|c| client.del(c))).await?;
    let (cpu0, t) = (server_cpu(&client).await?, Instant::now());
    let ensured = tundra.ensure(&keys).await?;
    report(
        "ensure (restore)",
        t.elapsed(),
        server_cpu(&client).await? - cpu0,
    );
    assert!(ensured.iter().all(|e| *e == Ensured::Restored));
    let (cpu0, t) = (server_cpu(&client).await?, Instant::now());
    tundra.ensure(&keys).await?;
    report(
        "ensure (present)",
        t.elapsed(),
        server_cpu(&client).await? - cpu0,
    );

    tundra.delete(&keys).await?;
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

fn report(step: &str, took: Duration, server_cpu: f64) {
    println!(
        "{step:<24} {KEYS} keys of {VALUE} B: {:>8.0} keys/s, server {:>5.1} us of CPU per key",
        KEYS as f64 / took.as_secs_f64(),
        server_cpu * 1e6 / KEYS as f64
    );
}
