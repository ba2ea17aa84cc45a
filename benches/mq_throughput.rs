//! The message queue end to end: messages/s through one worker with a no-op handler at
//! handler concurrency 1, 16 and 64 (a producer of 64 tasks enqueueing meanwhile), and the
//! pickup latency from enqueue to handler start on an idle queue. Prints; asserts nothing.
//!
//!     cargo bench --bench mq_throughput              # throwaway local server
//!     REDIS_URL=redis://... cargo bench --bench mq_throughput
//!
//! Pinned (server on core 0, client on core 1), as recorded in the closing note:
//!
//!     taskset -c 0 redis-server --port 6390 --save '' --appendonly no &
//!     cargo bench --bench mq_throughput --no-run
//!     REDIS_URL=redis://127.0.0.1:6390 taskset -c 1 cargo bench --bench mq_throughput
//!
//! `benches/queue_vs_bullmq/run.sh` runs it beside BullMQ with `MQ_CONCURRENCY` (the
//! concurrencies, default "1 16 64"), `MQ_MESSAGES` (default 60000), `MQ_PICKUP=0` (skip
//! the pickup run) and `MQ_TSV=1` (tab-separated lines for its summary). `MQ_PREFILL=1`
//! queues every message first and times the worker alone draining them.

use std::time::{Duration, Instant};

use futures::StreamExt;
use kermes::mq::{self, EnqueueOptions, Job, Outcome, Worker, WorkerOptions};
use kermes::prelude::*;
use tokio::sync::mpsc;

mod common;
use common::server_cpu;

const PRODUCERS: usize = 64;
const PICKUPS: usize = 1_000;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    let messages: usize = env_or("MQ_MESSAGES", 60_000);
    let tsv = std::env::var("MQ_TSV").is_ok_and(|v| v == "1");
    let concurrencies: Vec<usize> = std::env::var("MQ_CONCURRENCY")
        .unwrap_or_else(|_| "1 16 64".into())
        .split_whitespace()
        .map(|c| c.parse().expect("MQ_CONCURRENCY: numbers"))
        .collect();
    for concurrency in concurrencies {
        let (server0, client0) = (server_cpu(&client).await?, client_cpu());
        let started = Instant::now();
        let rate = throughput(&client, concurrency, messages).await?;
        let wall = started.elapsed().as_secs_f64();
        let server = server_cpu(&client).await? - server0;
        let own = client_cpu() - client0;
        if tsv {
            let per = |cpu: f64| cpu / messages as f64 * 1e6;
            println!(
                "kermes\tthroughput\t{concurrency}\t{rate:.0}\t{:.1}\t{:.1}",
                per(server),
                per(own)
            );
        } else {
            println!(
                "mq end to end, no-op handler, concurrency {concurrency:>2}: {rate:>8.0} messages/s \
                 (server {:.0}% of a core, client {:.0}%)",
                server / wall * 100.0,
                own / wall * 100.0
            );
        }
    }
    if env_or("MQ_PICKUP", 1) == 1 {
        pickup(&client, tsv).await?;
    }
    Ok(())
}

/// Seconds of CPU this process has used (/proc/self/stat, 100 ticks a second).
fn client_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

async fn throughput(client: &Client, concurrency: usize, messages: usize) -> kermes::Result<f64> {
    let queue = format!("bench-{concurrency}");
    mq::clear(client, &queue).await?;
    if std::env::var("MQ_PREFILL").is_ok_and(|v| v == "1") {
        return drain(client, &queue, concurrency, messages).await;
    }
    let worker = Worker::start(
        client,
        &queue,
        WorkerOptions::new().concurrency(concurrency),
        |_: Job<bytes::Bytes>| async { Outcome::success() },
    )
    .await?;
    let started = Instant::now();
    futures::stream::iter(0..messages)
        .map(|i| {
            let (client, queue) = (client.clone(), queue.clone());
            async move {
                mq::enqueue(&client, &queue, i.to_string(), EnqueueOptions::new())
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(PRODUCERS)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<kermes::Result<()>>()?;
    while worker.stats().succeeded < messages as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    let stats = worker.stop().await?;
    assert_eq!(stats.succeeded, messages as u64);
    Ok(rate)
}

/// `MQ_PREFILL=1`: every message queued first (not timed), then the worker alone drains
/// them; the server's CPU is then all the worker's.
async fn drain(
    client: &Client,
    queue: &str,
    concurrency: usize,
    messages: usize,
) -> kermes::Result<f64> {
    for chunk in (0..messages).collect::<Vec<_>>().chunks(500) {
        mq::enqueue_many(
            client,
            queue,
            chunk.iter().map(|i| (i.to_string(), EnqueueOptions::new())),
        )
        .await?;
    }
    let _: () = client.cmd("CONFIG").arg("RESETSTAT").query().await?;
    let started = Instant::now();
    let worker = Worker::start(
        client,
        queue,
        WorkerOptions::new().concurrency(concurrency),
        |_: Job<bytes::Bytes>| async { Outcome::success() },
    )
    .await?;
    while worker.stats().succeeded < messages as u64 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = messages as f64 / started.elapsed().as_secs_f64();
    worker.stop().await?;
    Ok(rate)
}

async fn pickup(client: &Client, tsv: bool) -> kermes::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker = Worker::start(
        client,
        "bench-pickup",
        WorkerOptions::new(),
        move |_: Job<String>| {
            let _ = tx.send(Instant::now());
            async { Outcome::success() }
        },
    )
    .await?;
    let mut latencies = Vec::with_capacity(PICKUPS);
    for i in 0..PICKUPS {
        // Let the worker go idle (blocked on its wake-up) before each enqueue.
        tokio::time::sleep(Duration::from_millis(2)).await;
        let t = Instant::now();
        mq::enqueue(client, "bench-pickup", i.to_string(), EnqueueOptions::new()).await?;
        let started = rx.recv().await.expect("worker alive");
        latencies.push(started - t);
    }
    worker.stop().await?;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    if tsv {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "kermes\tpickup\t1\t{:.3}\t{:.3}\t{:.3}",
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(latencies[latencies.len() - 1])
        );
        return Ok(());
    }
    println!(
        "mq pickup on an idle queue (enqueue -> handler start), {PICKUPS} messages: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        latencies[latencies.len() - 1]
    );
    Ok(())
}
