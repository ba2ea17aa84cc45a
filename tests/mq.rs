//! Message queue: Carmine's enqueue options and results, handler outcomes, backoff, dead
//! letters, delays, priorities, monitoring and worker statistics.

#[macro_use]
mod common;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use kermes::Serde;
use kermes::mq::{
    self, AfterLastAttempt, Backoff, EnqueueOptions as Opts, EnqueueResult, Job, MessageState,
    Outcome, Worker, WorkerOptions,
};
use kermes::prelude::*;
use tokio::sync::mpsc;

/// A worker that reports (id, attempt, message) of each job and returns `outcome(attempt)`.
async fn recording_worker(
    client: &Client,
    queue: &str,
    options: WorkerOptions,
    outcome: impl Fn(u32) -> Outcome + Send + Sync + 'static,
) -> (Worker, mpsc::UnboundedReceiver<(String, u32, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = Worker::start(client, queue, options, move |job: Job<String>| {
        let _ = tx.send((job.id().to_owned(), job.attempt(), job.message().clone()));
        let o = outcome(job.attempt());
        async move { o }
    })
    .await
    .unwrap();
    (worker, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<(String, u32, String)>) -> (String, u32, String) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a job within 10 s")
        .expect("worker alive")
}

server_tests! {
    async fn enqueue_results_follow_carmines_rules(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let q = "rules";
        let add = |opts: Opts| {
            let client = client.clone();
            async move { mq::enqueue(&client, q, "m", opts).await.unwrap().result }
        };
        let id = || Opts::new().id("a");
        assert_eq!(add(id()).await, EnqueueResult::Added);
        assert_eq!(add(id()).await, EnqueueResult::AlreadyQueued);
        assert_eq!(add(id().can_requeue(true)).await, EnqueueResult::AlreadyQueued);
        let updated = mq::enqueue(&client, q, "m2", id().can_update(true)).await.unwrap();
        assert_eq!(updated.result, EnqueueResult::Updated);
        let page = mq::queue_content(&client, q, 0, 100).await.unwrap();
        assert_eq!(page.messages[0].payload, Bytes::from("m2"));

        // Locked: refused, or requeued with can_requeue; a requeued one can be updated.
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let gate = release.clone();
        let worker = Worker::start(&client, q, WorkerOptions::new(), move |job: Job<String>| {
            let (tx, gate) = (tx.clone(), gate.clone());
            async move {
                let _ = tx.send(job.attempt());
                gate.notified().await;
                Outcome::Success(Some(Duration::from_secs(60)))
            }
        })
        .await
        .unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert!(matches!(common::message_state(&client, q, "a").await, Some(MessageState::Locked { requeue: false, .. })));
        assert_eq!(add(id()).await, EnqueueResult::Locked);
        assert_eq!(add(id().can_requeue(true)).await, EnqueueResult::Requeued);
        assert!(matches!(common::message_state(&client, q, "a").await, Some(MessageState::Locked { requeue: true, .. })));
        assert_eq!(add(id().can_requeue(true)).await, EnqueueResult::Locked);
        assert_eq!(add(id().can_update(true)).await, EnqueueResult::Updated);
        // Finishing with a de-dup window runs the requeued message after the window.
        release.notify_one();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(MessageState::Delayed(left)) = common::message_state(&client, q, "a").await {
                assert!(left > Duration::from_secs(50), "{left:?}");
                break;
            }
            assert!(Instant::now() < deadline, "not requeued: {:?}", common::message_state(&client, q, "a").await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worker.stop().await.unwrap();

        // Done inside the de-dup window: refused with Backoff unless can_requeue.
        let b = || Opts::new().id("b");
        assert_eq!(add(b()).await, EnqueueResult::Added);
        let (w, mut rx) = recording_worker(&client, "rules", WorkerOptions::new(), |_| {
            Outcome::Success(Some(Duration::from_millis(400)))
        }).await;
        let _ = rx.recv().await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !matches!(common::message_state(&client, q, "b").await, Some(MessageState::Done(_))) {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(add(b()).await, EnqueueResult::Backoff);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(common::message_state(&client, q, "b").await, None, "the window ended");
        assert_eq!(add(b()).await, EnqueueResult::Added, "a new message once the window ended");
        w.stop().await.unwrap();
    }

    async fn done_messages_requeue_after_their_window_and_updates_reset_the_delay(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let q = "windows";
        let opts = || Opts::new().id("x");
        mq::enqueue(&client, q, "1", opts().init_backoff(Duration::from_secs(30))).await.unwrap();
        let Some(MessageState::Delayed(left)) = common::message_state(&client, q, "x").await else { panic!() };
        assert!(left > Duration::from_secs(29) && left <= Duration::from_secs(30), "{left:?}");
        // Updating keeps the delay; reset_init_backoff starts it over from the new one.
        let r = mq::enqueue(&client, q, "2", opts().can_update(true).init_backoff(Duration::from_secs(5))).await.unwrap();
        assert_eq!(r.result, EnqueueResult::Updated);
        let Some(MessageState::Delayed(left)) = common::message_state(&client, q, "x").await else { panic!() };
        assert!(left > Duration::from_secs(25), "{left:?}");
        mq::enqueue(&client, q, "3", opts().can_update(true).reset_init_backoff(true)).await.unwrap();
        assert_eq!(common::message_state(&client, q, "x").await, Some(MessageState::Queued));

        let (worker, mut rx) = recording_worker(&client, q, WorkerOptions::new(), |_| {
            Outcome::Success(Some(Duration::from_secs(30)))
        }).await;
        assert_eq!(next(&mut rx).await.2, "3");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !matches!(common::message_state(&client, q, "x").await, Some(MessageState::Done(_))) {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let r = mq::enqueue(&client, q, "4", opts().can_requeue(true)).await.unwrap();
        assert_eq!(r.result, EnqueueResult::Added);
        let Some(MessageState::Delayed(left)) = common::message_state(&client, q, "x").await else { panic!() };
        assert!(left > Duration::from_secs(25), "runs after the window: {left:?}");
        worker.stop().await.unwrap();
    }

    async fn serde_and_raw_messages_reach_handlers_intact(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
        struct Order { id: u32, items: Vec<String> }
        let order = Order { id: 7, items: vec!["tea".into(), "cup".into()] };
        mq::enqueue(&client, "orders", Serde(order.clone()), Opts::new()).await.unwrap();
        let raw = Bytes::from_static(b"\x00\xff raw \r\n bytes");
        mq::enqueue(&client, "raw", raw.clone(), Opts::new()).await.unwrap();

        let (tx, mut rx) = mpsc::unbounded_channel();
        let w1 = Worker::start(&client, "orders", WorkerOptions::new(), move |job: Job<Serde<Order>>| {
            let _ = tx.send(job.into_message().0);
            async { Outcome::success() }
        }).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), order);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let w2 = Worker::start(&client, "raw", WorkerOptions::new(), move |job: Job<Bytes>| {
            let _ = tx.send(job.into_message());
            async { Outcome::success() }
        }).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), raw);
        w1.stop().await.unwrap();
        w2.stop().await.unwrap();

        // A message must be one value; a refused serde value fails before anything is sent.
        let err = mq::enqueue(&client, "orders", ("a", "b"), Opts::new()).await.unwrap_err();
        assert!(err.is_type(), "{err}");
        let err = mq::enqueue(&client, "bad{name", "m", Opts::new()).await.unwrap_err();
        assert!(err.is_config(), "{err}");
        assert_eq!(mq::queue_size(&client, "orders").await.unwrap(), 0);
    }

    async fn errors_back_off_then_dead_letter_and_can_be_requeued(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let q = "failing";
        let options = WorkerOptions::new()
            .max_attempts(Some(3))
            .backoff(Backoff::Fixed(Duration::from_millis(150)));
        let (worker, mut rx) = recording_worker(&client, q, options, |attempt| {
            Outcome::error(format!("boom {attempt}"))
        }).await;
        let sent = mq::enqueue(&client, q, "payload", Opts::new().id("poison")).await.unwrap();
        let mut times = vec![];
        for expected in 1..=3 {
            let (id, attempt, _) = next(&mut rx).await;
            assert_eq!((id.as_str(), attempt), (sent.id.as_str(), expected));
            times.push(Instant::now());
        }
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(140), "backoff respected");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while mq::queue_status(&client, q).await.unwrap().dead == 0 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let dead = mq::dead_letters(&client, q, 0, 10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!((dead[0].id.as_str(), dead[0].attempts), ("poison", 3));
        assert_eq!(dead[0].error, "boom 3");
        assert_eq!(dead[0].payload, Bytes::from("payload"));
        assert!(dead[0].died_at <= SystemTime::now() + Duration::from_secs(1));
        assert_eq!(common::message_state(&client, q, "poison").await, Some(MessageState::Dead("boom 3".into())));
        let again = mq::enqueue(&client, q, "payload", Opts::new().id("poison")).await.unwrap();
        assert_eq!(again.result, EnqueueResult::Dead);
        // The worker counts an outcome once its step's reply is back, just after the
        // server shows it.
        let deadline = Instant::now() + Duration::from_secs(5);
        while worker.stats().dead_lettered == 0 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let stats = worker.stats();
        assert_eq!((stats.failed, stats.retried, stats.dead_lettered), (3, 2, 1));

        // Requeued dead letters start over with attempt 1.
        assert_eq!(mq::requeue_dead(&client, q, &[]).await.unwrap(), 1);
        assert_eq!(next(&mut rx).await.1, 1);
        worker.stop().await.unwrap();
        assert_eq!(mq::requeue_dead(&client, q, &["nope"]).await.unwrap(), 0);
    }

    async fn panics_are_errors_and_drop_discards_after_the_last_attempt(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let q = "panicky";
        let (tx, mut rx) = mpsc::unbounded_channel();
        let options = WorkerOptions::new()
            .max_attempts(Some(2))
            .backoff(Backoff::Fixed(Duration::ZERO))
            .after_last_attempt(AfterLastAttempt::Drop);
        let worker = Worker::start(&client, q, options, move |job: Job<String>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(job.attempt());
                if job.attempt() > 0 {
                    panic!("handler bug");
                }
                Outcome::success()
            }
        }).await.unwrap();
        mq::enqueue(&client, q, "m", Opts::new().id("p")).await.unwrap();
        assert_eq!(rx.recv().await, Some(1));
        assert_eq!(rx.recv().await, Some(2));
        let deadline = Instant::now() + Duration::from_secs(5);
        while worker.stats().dropped == 0 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stats = worker.stats();
        assert_eq!((stats.panicked, stats.failed, stats.dropped), (2, 2, 1));
        assert_eq!(common::message_state(&client, q, "p").await, None);
        assert_eq!(mq::queue_status(&client, q).await.unwrap(), Default::default());
        worker.stop().await.unwrap();
    }

    async fn retry_runs_again_after_its_backoff_beyond_max_attempts(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let options = WorkerOptions::new().max_attempts(Some(1));
        let (worker, mut rx) = recording_worker(&client, "retry", options, |attempt| {
            if attempt < 3 { Outcome::Retry(Duration::from_millis(100)) } else { Outcome::success() }
        }).await;
        mq::enqueue(&client, "retry", "m", Opts::new()).await.unwrap();
        let first = next(&mut rx).await;
        let t = Instant::now();
        assert_eq!(next(&mut rx).await.1, 2);
        assert!(t.elapsed() >= Duration::from_millis(90));
        assert_eq!(next(&mut rx).await.1, 3);
        assert_eq!(first.1, 1);
        let stats = worker.stop().await.unwrap();
        assert_eq!((stats.retried, stats.succeeded, stats.dead_lettered), (2, 1, 0));
    }

    async fn delayed_messages_wait_and_priorities_run_first(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let q = "sched";
        let t0 = Instant::now();
        mq::enqueue(&client, q, "later", Opts::new().init_backoff(Duration::from_millis(400))).await.unwrap();
        let at = SystemTime::now() + Duration::from_millis(250);
        mq::enqueue(&client, q, "at", Opts::new().run_at(at)).await.unwrap();
        for (m, p) in [("low", -5), ("normal", 0), ("high", 9), ("normal2", 0), ("high2", 9)] {
            mq::enqueue(&client, q, m, Opts::new().priority(p)).await.unwrap();
        }
        let (worker, mut rx) = recording_worker(&client, q, WorkerOptions::new(), |_| Outcome::success()).await;
        let mut order = vec![];
        for _ in 0..5 {
            order.push(next(&mut rx).await.2);
        }
        assert_eq!(order, ["high", "high2", "normal", "normal2", "low"]);
        let (_, _, m) = next(&mut rx).await;
        assert_eq!(m, "at");
        assert!(t0.elapsed() >= Duration::from_millis(200), "{:?}", t0.elapsed());
        let (_, _, m) = next(&mut rx).await;
        assert_eq!(m, "later");
        assert!(t0.elapsed() >= Duration::from_millis(390), "{:?}", t0.elapsed());
        worker.stop().await.unwrap();
    }

    async fn monitoring_counts_pages_and_names_exactly(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let q = "monitored";
        for i in 0..250 {
            let mut o = Opts::new().id(format!("m{i}"));
            if i % 5 == 0 {
                o = o.init_backoff(Duration::from_secs(60));
            }
            mq::enqueue(&client, q, format!("body{i}"), o).await.unwrap();
        }
        mq::enqueue(&client, "other", "x", Opts::new()).await.unwrap();
        let status = mq::queue_status(&client, q).await.unwrap();
        assert_eq!((status.queued, status.delayed, status.locked, status.dead), (200, 50, 0, 0));
        assert_eq!(mq::queue_size(&client, q).await.unwrap(), 250);

        let mut seen = std::collections::BTreeMap::new();
        let mut cursor = 0;
        loop {
            let page = mq::queue_content(&client, q, cursor, 40).await.unwrap();
            for m in page.messages {
                seen.insert(m.id.clone(), (m.payload, m.status.state));
            }
            cursor = page.cursor;
            if cursor == 0 { break; }
        }
        assert_eq!(seen.len(), 250);
        assert_eq!(seen["m3"].0, Bytes::from("body3"));
        assert_eq!(seen["m3"].1, MessageState::Queued);
        assert!(matches!(seen["m5"].1, MessageState::Delayed(_)));

        let s = mq::message_status(&client, q, "m7").await.unwrap().unwrap();
        assert_eq!((s.state, s.attempts), (MessageState::Queued, 0));
        assert_eq!(mq::message_status(&client, q, "nope").await.unwrap(), None);
        assert_eq!(mq::queue_names(&client).await.unwrap(), ["monitored", "other"]);

        assert_eq!(mq::clear(&client, q).await.unwrap(), 250);
        assert_eq!(mq::queue_size(&client, q).await.unwrap(), 0);
        assert_eq!(mq::queue_names(&client).await.unwrap(), ["other"]);
        let left: Vec<String> = client.keys("*{monitored}*").to().await.unwrap();
        assert!(left.is_empty(), "{left:?}");
    }

    async fn worker_stats_count_outcomes_and_time_percentiles(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let q = "stats";
        for i in 0..40 {
            mq::enqueue(&client, q, i.to_string(), Opts::new()).await.unwrap();
        }
        let worker = Worker::start(&client, q, WorkerOptions::new().concurrency(4), |job: Job<String>| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let n: u32 = job.message().parse().unwrap();
            if n % 10 == 0 { Outcome::error("tens fail") } else { Outcome::success() }
        }).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while worker.stats().succeeded < 36 {
            assert!(Instant::now() < deadline, "{:?}", worker.stats());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let stats = worker.stats();
        assert!(stats.running <= 4);
        assert_eq!((stats.succeeded, stats.failed), (36, 4));
        assert_eq!(stats.handling.samples, 40);
        assert!(stats.handling.p50 >= Duration::from_millis(20), "{:?}", stats.handling);
        assert!(stats.handling.p99 >= stats.handling.p50);
        assert!(stats.queue_wait.max >= Duration::from_millis(100), "40 jobs x 20 ms on 4 slots wait: {:?}", stats.queue_wait);
        assert_eq!(stats.queue_wait.samples, 40);
        let status = mq::queue_status(&client, q).await.unwrap();
        assert_eq!(status.delayed, 4, "failures back off");
        worker.stop().await.unwrap();
    }

    async fn bad_worker_options_are_refused(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let h = |_: Job<String>| async { Outcome::success() };
        for options in [
            WorkerOptions::new().concurrency(0),
            WorkerOptions::new().lock_time(Duration::from_millis(1)),
            WorkerOptions::new().max_attempts(Some(0)),
            WorkerOptions::new().idle_recheck(Duration::ZERO),
        ] {
            let err = Worker::start(&client, "q", options, h).await.err().unwrap();
            assert!(err.is_config(), "{err}");
        }
        assert!(Worker::start(&client, "", WorkerOptions::new(), h).await.err().unwrap().is_config());
    }
}
