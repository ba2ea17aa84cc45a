//! How the queue's steps run, against real servers: as a function library loaded on
//! demand (again after FUNCTION FLUSH), as scripts for a user who may not use functions,
//! outcomes that finish together reported in one step, and wake-ups published only to
//! workers that wait for one.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use kermes::mq::{self, EnqueueOptions as Opts, Job, Outcome, Worker, WorkerOptions};
use kermes::prelude::*;
use kermes::testing::{ServerOptions, TestServer};
use tokio::sync::mpsc;

/// A worker that reports each message it handles.
async fn reporting(
    client: &Client,
    queue: &str,
    options: WorkerOptions,
) -> (Worker, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = Worker::start(client, queue, options, move |job: Job<String>| {
        let _ = tx.send(job.id().to_owned());
        async { Outcome::success() }
    })
    .await
    .unwrap();
    (worker, rx)
}

/// Waits until a worker marked `queue` idle (it waits for a wake-up).
async fn marked_idle(client: &Client, queue: &str) {
    let config = format!("kermes:mq:{{{queue}}}:config");
    common::wait_until_async(Duration::from_secs(5), "the queue marked idle", || async {
        client.hexists(&config, "idle").await.unwrap() == 1
    })
    .await;
}

async fn receive(rx: &mut mpsc::UnboundedReceiver<String>, n: usize) {
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("handled within 10 s")
            .unwrap();
    }
}

server_tests! {
    async fn the_library_loads_on_first_use_and_again_after_a_flush(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let listed = async || -> String {
            format!("{:?}", client.cmd("FUNCTION").arg("LIST").query::<Value>().await.unwrap())
        };
        assert!(!listed().await.contains("kermes_mq_"));
        mq::enqueue(&client, "lib", "one", Opts::new()).await.unwrap();
        assert!(listed().await.contains("kermes_mq_"), "loaded on first use");
        assert!(common::command_calls(&client, &["fcall"]).await >= 2, "the failed call, then the call after loading");
        assert_eq!(common::command_calls(&client, &["eval", "evalsha"]).await, 0);

        let _: () = client.cmd("FUNCTION").arg("FLUSH").query().await.unwrap();
        assert!(!listed().await.contains("kermes_mq_"));
        mq::enqueue(&client, "lib", "two", Opts::new()).await.unwrap();
        assert!(listed().await.contains("kermes_mq_"), "loaded again");
        assert_eq!(mq::queue_size(&client, "lib").await.unwrap(), 2);
        let (worker, mut rx) = reporting(&client, "lib", WorkerOptions::new()).await;
        receive(&mut rx, 2).await;
        worker.stop().await.unwrap();
        assert_eq!(common::command_calls(&client, &["eval", "evalsha"]).await, 0, "functions all along");
    }

    async fn a_user_without_functions_runs_the_steps_as_scripts(kind) {
        let server = TestServer::start_with(kind, ServerOptions::default().args([
            "--user", "nofn", "on", ">pw", "~*", "&*", "+@all", "-fcall", "-fcall_ro", "-function",
        ]));
        let admin = Client::connect(&server.url()).await.unwrap();
        let client = Client::builder().url(&server.url()).username("nofn").password("pw").connect().await.unwrap();
        let err = client.cmd("FUNCTION").arg("LIST").query::<Value>().await.unwrap_err();
        assert!(err.to_string().contains("NOPERM"), "the user may not use functions: {err}");

        let sent = mq::enqueue_many(&client, "nofn", (0..20).map(|i| (format!("m{i}"), Opts::new()))).await.unwrap();
        assert_eq!(sent.len(), 20);
        let (worker, mut rx) = reporting(&client, "nofn", WorkerOptions::new().concurrency(4)).await;
        receive(&mut rx, 20).await;
        mq::enqueue(&client, "nofn", "late", Opts::new()).await.unwrap();
        receive(&mut rx, 1).await;
        let stats = worker.stop().await.unwrap();
        assert_eq!(stats.succeeded, 21);
        assert_eq!(mq::queue_size(&client, "nofn").await.unwrap(), 0);
        // Each client (the worker has its own) tried a function once, then used scripts.
        let ran = common::command_calls(&admin, &["eval", "evalsha"]).await;
        assert!(ran >= 5, "{ran} scripts");
        let info = kermes::helpers::info_map(&admin, "commandstats").await.unwrap();
        let fcall = info.get("commandstats", "cmdstat_fcall").unwrap_or_default().to_owned();
        assert!(fcall.contains("calls=0") || fcall.is_empty(), "no function ran: {fcall}");
    }

    async fn outcomes_that_finish_together_are_reported_in_one_step(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        const N: usize = 64;
        const CONCURRENCY: usize = 16;
        mq::enqueue_many(&client, "together", (0..N).map(|i| (format!("m{i}"), Opts::new()))).await.unwrap();
        let before = common::command_calls(&client, &["fcall"]).await;
        // Handlers released together, 16 at a time.
        let barrier = Arc::new(tokio::sync::Barrier::new(CONCURRENCY));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let worker = Worker::start(&client, "together", WorkerOptions::new().concurrency(CONCURRENCY), move |job: Job<String>| {
            let (barrier, tx) = (barrier.clone(), tx.clone());
            async move {
                barrier.wait().await;
                let _ = tx.send(job.id().to_owned());
                Outcome::success()
            }
        })
        .await
        .unwrap();
        receive(&mut rx, N).await;
        let stats = worker.stop().await.unwrap();
        assert_eq!(stats.succeeded, N as u64);
        let steps = common::command_calls(&client, &["fcall"]).await - before;
        // One outcome per step would be 64 steps for the outcomes alone, besides the
        // first claim and the schedule look; together, about 2 per round of 16.
        assert!(steps <= (N / 2) as u64, "{steps} steps for {N} messages");
        assert_eq!(mq::queue_size(&client, "together").await.unwrap(), 0);
    }

    async fn enqueues_onto_a_busy_queue_publish_nothing_and_an_idle_worker_is_woken(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        for i in 0..50 {
            mq::enqueue(&client, "busy", format!("m{i}"), Opts::new()).await.unwrap();
        }
        assert_eq!(common::command_calls(&client, &["publish"]).await, 0, "no worker waits: no wake-up");
        let (worker, mut rx) = reporting(&client, "busy", WorkerOptions::new().concurrency(4)).await;
        receive(&mut rx, 50).await;
        // Drained: the worker waits for a wake-up, and the next message sends one.
        marked_idle(&client, "busy").await;
        let started = Instant::now();
        mq::enqueue(&client, "busy", "late", Opts::new()).await.unwrap();
        receive(&mut rx, 1).await;
        assert!(started.elapsed() < Duration::from_secs(2), "woken, not rechecked: {:?}", started.elapsed());
        assert_eq!(common::command_calls(&client, &["publish"]).await, 1);
        worker.stop().await.unwrap();
    }

    async fn a_cleared_queue_still_wakes_its_idle_worker(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let (worker, mut rx) = reporting(&client, "cleared", WorkerOptions::new()).await;
        mq::enqueue(&client, "cleared", "first", Opts::new()).await.unwrap();
        receive(&mut rx, 1).await;
        marked_idle(&client, "cleared").await;
        mq::clear(&client, "cleared").await.unwrap();
        // The worker, woken by the clear, marks the queue idle again.
        marked_idle(&client, "cleared").await;
        let started = Instant::now();
        mq::enqueue(&client, "cleared", "second", Opts::new()).await.unwrap();
        receive(&mut rx, 1).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        worker.stop().await.unwrap();
    }
}

server_tests! {
    async fn concurrent_enqueues_share_steps_and_keep_their_own_results(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        mq::enqueue(&client, "shared", "old", Opts::new().id("taken")).await.unwrap();
        let before = common::command_calls(&client, &["fcall"]).await;
        // 200 enqueues at once: fresh ids, one id repeated 10 times, an id already queued,
        // and updates of it allowed for one.
        let sends = (0..200).map(|i| {
            let client = client.clone();
            async move {
                let (msg, o) = match i {
                    0..=9 => (format!("dup {i}"), Opts::new().id("dup")),
                    10 => ("again".to_owned(), Opts::new().id("taken")),
                    11 => ("new content".to_owned(), Opts::new().id("taken").can_update(true)),
                    _ => (format!("m{i}"), Opts::new().id(format!("m{i}"))),
                };
                (i, mq::enqueue(&client, "shared", msg, o).await.unwrap())
            }
        });
        let results = futures::future::join_all(sends).await;
        let steps = common::command_calls(&client, &["fcall"]).await - before;
        assert!(steps < 50, "{steps} steps for 200 concurrent enqueues");
        let added_dups = results.iter().filter(|(i, r)| *i < 10 && r.result == mq::EnqueueResult::Added).count();
        assert_eq!(added_dups, 1, "one of the repeated id is added, the others see it");
        for (i, r) in &results {
            match i {
                0..=9 => assert!(matches!(r.result, mq::EnqueueResult::Added | mq::EnqueueResult::AlreadyQueued), "{r:?}"),
                10 => assert_eq!(r.result, mq::EnqueueResult::AlreadyQueued),
                11 => assert_eq!(r.result, mq::EnqueueResult::Updated),
                _ => assert_eq!((r.id.as_str(), r.result), (format!("m{i}").as_str(), mq::EnqueueResult::Added)),
            }
        }
        assert_eq!(mq::queue_size(&client, "shared").await.unwrap(), 1 + 1 + 188);
        let (worker, mut rx) = reporting(&client, "shared", WorkerOptions::new().concurrency(8)).await;
        receive(&mut rx, 190).await;
        worker.stop().await.unwrap();
    }

    async fn one_bad_enqueue_among_concurrent_ones_fails_alone(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let sends = (0..20).map(|i| {
            let client = client.clone();
            async move {
                let o = if i == 7 { Opts::new().id("") } else { Opts::new() };
                mq::enqueue(&client, "bad", "x", o).await
            }
        });
        let results = futures::future::join_all(sends).await;
        for (i, r) in results.iter().enumerate() {
            if i == 7 {
                assert!(r.as_ref().unwrap_err().is_config(), "{r:?}");
            } else {
                assert_eq!(r.as_ref().unwrap().result, mq::EnqueueResult::Added);
            }
        }
        assert_eq!(mq::queue_size(&client, "bad").await.unwrap(), 19);
    }

    async fn concurrent_enqueues_in_priority_order_then_fifo(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        // Joined in this order within a step or across steps: high priority first, then
        // the order of issue within a priority.
        let sends = (0..40).map(|i| {
            let client = client.clone();
            async move {
                let o = Opts::new().id(format!("{i:02}")).priority(if i % 2 == 0 { 1 } else { 0 });
                mq::enqueue(&client, "order", "x", o).await.unwrap()
            }
        });
        futures::future::join_all(sends).await;
        let (worker, mut rx) = reporting(&client, "order", WorkerOptions::new()).await;
        let mut seen = Vec::new();
        for _ in 0..40 {
            seen.push(tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap());
        }
        worker.stop().await.unwrap();
        let (high, low): (Vec<String>, Vec<String>) = seen.iter().cloned().partition(|id| id.parse::<u32>().unwrap() % 2 == 0);
        assert_eq!(seen[..20], high[..], "priority 1 first: {seen:?}");
        let in_issue_order = |v: &[String]| v.windows(2).all(|w| w[0] < w[1]);
        assert!(in_issue_order(&high), "FIFO within priority 1: {high:?}");
        assert!(in_issue_order(&low), "FIFO within priority 0: {low:?}");
    }
}

server_tests! {
    async fn a_pending_requeue_missing_from_extras_is_still_honoured(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let release = Arc::new(tokio::sync::Notify::new());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let worker = {
            let release = release.clone();
            Worker::start(&client, "legacy", WorkerOptions::new(), move |job: Job<String>| {
                let (tx, release) = (tx.clone(), release.clone());
                async move {
                    let _ = tx.send(job.attempt());
                    if job.message() == "first" { release.notified().await; }
                    Outcome::success()
                }
            })
            .await
            .unwrap()
        };
        mq::enqueue(&client, "legacy", "first", Opts::new().id("r")).await.unwrap();
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap(), Some(1));
        let again = mq::enqueue(&client, "legacy", "second", Opts::new().id("r").can_requeue(true).can_update(true)).await.unwrap();
        assert_eq!(again.result, mq::EnqueueResult::Requeued);
        // As a queue written before the `extras` set: the requeue is only in its own set.
        let _: i64 = client.cmd("SREM").arg(("kermes:mq:{legacy}:extras", "r")).query().await.unwrap();
        release.notify_one();
        assert_eq!(tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap(), Some(1), "ran again, afresh");
        worker.stop().await.unwrap();
    }
}
