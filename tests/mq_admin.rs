//! The queue beyond Carmine, against real servers: pause and resume, a rate limit shared by
//! workers, a handler's rate-limited outcome, remove, clean, bulk enqueue, progress and
//! logs, the short default lease.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kermes::mq::{
    self, EnqueueOptions as Opts, EnqueueResult, Job, MessageState, Outcome, Removed, Worker,
    WorkerOptions,
};
use kermes::prelude::*;
use tokio::sync::mpsc;

/// A worker that reports the id of each message it handles, with when.
async fn reporting(
    client: &Client,
    queue: &str,
    options: WorkerOptions,
) -> (Worker, mpsc::UnboundedReceiver<(String, Instant)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let worker = Worker::start(client, queue, options, move |job: Job<String>| {
        let _ = tx.send((job.id().to_owned(), Instant::now()));
        async { Outcome::success() }
    })
    .await
    .unwrap();
    (worker, rx)
}

server_tests! {
    async fn a_paused_queue_takes_nothing_until_resumed(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let (worker, mut rx) = reporting(&client, "p", WorkerOptions::new().concurrency(4)).await;
        assert!(mq::pause(&client, "p").await.unwrap());
        assert!(!mq::pause(&client, "p").await.unwrap(), "already paused");
        for i in 0..5 {
            mq::enqueue(&client, "p", format!("m{i}"), Opts::new()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(rx.try_recv().is_err(), "a paused queue handed out a message");
        let status = mq::queue_status(&client, "p").await.unwrap();
        assert!(status.paused && status.queued == 5, "{status:?}");
        let resumed = Instant::now();
        assert!(mq::resume(&client, "p").await.unwrap());
        for _ in 0..5 {
            let (_, at) = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert!(at - resumed < Duration::from_millis(500), "woken by the resume");
        }
        assert!(!mq::queue_status(&client, "p").await.unwrap().paused);
        worker.stop().await.unwrap();
    }

    async fn a_rate_limit_holds_across_workers(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        mq::set_rate_limit(&client, "r", Some((5, Duration::from_millis(500)))).await.unwrap();
        assert!(mq::set_rate_limit(&client, "r", Some((0, Duration::from_secs(1)))).await.is_err());
        let (a, mut rx) = reporting(&client, "r", WorkerOptions::new().concurrency(8)).await;
        let (b, mut rx_b) = reporting(&client, "r", WorkerOptions::new().concurrency(8)).await;
        let started = Instant::now();
        for i in 0..15 {
            mq::enqueue(&client, "r", format!("m{i}"), Opts::new()).await.unwrap();
        }
        let mut times = Vec::new();
        while times.len() < 15 {
            tokio::select! {
                Some((_, t)) = rx.recv() => times.push(t - started),
                Some((_, t)) = rx_b.recv() => times.push(t - started),
                _ = tokio::time::sleep(Duration::from_secs(10)) => panic!("only {} handled", times.len()),
            }
        }
        times.sort();
        // 5 per 500 ms window, whichever worker takes them: the 6th waits for the second
        // window, the 11th for the third.
        assert!(times[4] < Duration::from_millis(400), "{times:?}");
        assert!(times[5] >= Duration::from_millis(450), "{times:?}");
        assert!(times[10] >= Duration::from_millis(950), "{times:?}");
        assert!(times[14] < Duration::from_millis(2000), "{times:?}");
        mq::set_rate_limit(&client, "r", None).await.unwrap();
        a.stop().await.unwrap();
        b.stop().await.unwrap();
    }

    async fn a_rate_limited_outcome_runs_later_without_counting_an_attempt(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let worker = {
            let calls = calls.clone();
            Worker::start(&client, "limited", WorkerOptions::new().max_attempts(Some(1)), move |job: Job<String>| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send((job.attempt(), Instant::now()));
                async move {
                    if n < 3 { Outcome::RateLimited(Duration::from_millis(150)) } else { Outcome::success() }
                }
            })
            .await
            .unwrap()
        };
        mq::enqueue(&client, "limited", "call the api", Opts::new().id("x")).await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap());
        }
        // Four runs with max_attempts 1: none of the rate-limited runs counted.
        assert!(seen.iter().all(|(attempt, _)| *attempt == 1), "{seen:?}");
        for w in seen.windows(2) {
            assert!(w[1].1 - w[0].1 >= Duration::from_millis(140), "ran again too early");
        }
        let stats = worker.stop().await.unwrap();
        assert_eq!((stats.rate_limited, stats.succeeded, stats.dead_lettered), (3, 1, 0), "{stats:?}");
    }

    async fn remove_and_clean(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        mq::enqueue(&client, "rm", "a", Opts::new().id("queued")).await.unwrap();
        mq::enqueue(&client, "rm", "b", Opts::new().id("later").init_backoff(Duration::from_secs(60))).await.unwrap();
        assert_eq!(mq::remove(&client, "rm", "queued").await.unwrap(), Removed::Removed);
        assert_eq!(mq::remove(&client, "rm", "later").await.unwrap(), Removed::Removed);
        assert_eq!(mq::remove(&client, "rm", "queued").await.unwrap(), Removed::Missing);
        assert_eq!(mq::queue_size(&client, "rm").await.unwrap(), 0);

        // A running message is not removed; its outcome stands.
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let release = Arc::new(tokio::sync::Notify::new());
        let worker = {
            let release = release.clone();
            Worker::start(&client, "rm", WorkerOptions::new().max_attempts(Some(1)), move |job: Job<String>| {
                let (tx, release) = (tx.clone(), release.clone());
                async move {
                    let _ = tx.send(());
                    if job.message() == "hold" { release.notified().await; }
                    if job.message() == "fail" { return Outcome::error("no"); }
                    Outcome::Success(Some(Duration::from_secs(60)))
                }
            })
            .await
            .unwrap()
        };
        mq::enqueue(&client, "rm", "hold", Opts::new().id("busy")).await.unwrap();
        rx.recv().await.unwrap();
        assert_eq!(mq::remove(&client, "rm", "busy").await.unwrap(), Removed::Locked);
        release.notify_one();
        common::wait_until_async(Duration::from_secs(5), "busy done", || async {
            matches!(common::message_state(&client, "rm", "busy").await, Some(MessageState::Done(_)))
        })
        .await;
        // Done: its de-dup window refuses it until clean_done forgets the window.
        let again = mq::enqueue(&client, "rm", "hold", Opts::new().id("busy")).await.unwrap();
        assert_eq!(again.result, EnqueueResult::Backoff);
        assert_eq!(mq::clean_done(&client, "rm", 10).await.unwrap(), 1);
        assert_eq!(common::message_state(&client, "rm", "busy").await, None);

        // Dead letters: cleaned by age.
        for i in 0..3 {
            mq::enqueue(&client, "rm", "fail", Opts::new().id(format!("d{i}"))).await.unwrap();
        }
        common::wait_until_async(Duration::from_secs(5), "3 dead", || async {
            mq::queue_status(&client, "rm").await.unwrap().dead == 3
        })
        .await;
        assert_eq!(mq::clean_dead(&client, "rm", Duration::from_secs(60), 10).await.unwrap(), 0, "none a minute old");
        assert_eq!(mq::clean_dead(&client, "rm", Duration::ZERO, 2).await.unwrap(), 2);
        assert_eq!(mq::queue_status(&client, "rm").await.unwrap().dead, 1);
        release.notify_one();
        worker.stop().await.unwrap();
    }

    async fn bulk_enqueue_gives_each_message_its_own_result(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        mq::enqueue(&client, "bulk", "first", Opts::new().id("dup")).await.unwrap();
        let mut batch: Vec<(String, Opts)> = (0..1203)
            .map(|i| (format!("m{i}"), Opts::new().id(format!("id{i}"))))
            .collect();
        batch.push(("again".into(), Opts::new().id("dup")));
        batch.push(("updated".into(), Opts::new().id("dup").can_update(true)));
        batch.push(("later".into(), Opts::new().init_backoff(Duration::from_secs(30))));
        let results = mq::enqueue_many(&client, "bulk", batch).await.unwrap();
        assert_eq!(results.len(), 1206);
        assert!(results[..1203].iter().all(|r| r.result == EnqueueResult::Added));
        assert_eq!(results[17].id, "id17");
        assert_eq!(results[1203].result, EnqueueResult::AlreadyQueued);
        assert_eq!(results[1204].result, EnqueueResult::Updated);
        assert_eq!(results[1205].result, EnqueueResult::Added);
        assert!(!results[1205].id.is_empty(), "a generated id");
        let status = mq::queue_status(&client, "bulk").await.unwrap();
        assert_eq!((status.queued, status.delayed), (1204, 1));
        assert!(mq::enqueue_many::<String>(&client, "bulk", Vec::new()).await.unwrap().is_empty());
        let bad = vec![("x".to_string(), Opts::new().id(""))];
        assert!(mq::enqueue_many(&client, "bulk", bad).await.unwrap_err().is_config());
        // Workers see the batch at once.
        let (worker, mut rx) = reporting(&client, "bulk", WorkerOptions::new().concurrency(16)).await;
        for _ in 0..1204 {
            tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.unwrap().unwrap();
        }
        worker.stop().await.unwrap();
    }

    async fn progress_and_logs_are_readable_while_the_message_lives(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let release = Arc::new(tokio::sync::Notify::new());
        let worker = {
            let release = release.clone();
            Worker::start(&client, "prog", WorkerOptions::new().max_attempts(Some(1)), move |job: Job<String>| {
                let (tx, release) = (tx.clone(), release.clone());
                async move {
                    assert!(job.log("started").await.unwrap());
                    assert!(job.progress(50).await.unwrap());
                    assert!(job.log("half way").await.unwrap());
                    let _ = tx.send(());
                    release.notified().await;
                    if job.message() == "fail" {
                        assert!(job.progress("stuck at 80%").await.unwrap());
                        return Outcome::error("gave up");
                    }
                    Outcome::success()
                }
            })
            .await
            .unwrap()
        };
        mq::enqueue(&client, "prog", "ok", Opts::new().id("a")).await.unwrap();
        rx.recv().await.unwrap();
        let details = mq::job_details(&client, "prog", "a").await.unwrap();
        assert_eq!(details.progress, Some(Bytes::from_static(b"50")));
        assert_eq!(details.logs, vec!["started", "half way"]);
        release.notify_one();
        common::wait_until_async(Duration::from_secs(5), "a finished", || async {
            common::message_state(&client, "prog", "a").await.is_none()
        })
        .await;
        assert_eq!(mq::job_details(&client, "prog", "a").await.unwrap(), Default::default(), "gone with the message");

        // A dead letter keeps what its handler reported, for whoever investigates.
        mq::enqueue(&client, "prog", "fail", Opts::new().id("b")).await.unwrap();
        rx.recv().await.unwrap();
        release.notify_one();
        common::wait_until_async(Duration::from_secs(5), "b dead", || async {
            matches!(common::message_state(&client, "prog", "b").await, Some(MessageState::Dead(_)))
        })
        .await;
        let details = mq::job_details(&client, "prog", "b").await.unwrap();
        assert_eq!(details.progress.as_deref(), Some(&b"stuck at 80%"[..]));
        assert_eq!(details.logs.len(), 2);
        mq::clear(&client, "prog").await.unwrap();
        assert_eq!(mq::job_details(&client, "prog", "b").await.unwrap(), Default::default());
        worker.stop().await.unwrap();
    }

    async fn the_default_lease_is_short_and_renewed(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        assert_eq!(WorkerOptions::new().lock_time, Duration::from_secs(30));
        let (tx, mut rx) = mpsc::unbounded_channel::<Duration>();
        let worker = Worker::start(&client, "lease", WorkerOptions::new(), move |job: Job<String>| {
            let _ = tx.send(job.lock_time());
            async { Outcome::success() }
        })
        .await
        .unwrap();
        mq::enqueue(&client, "lease", "m", Opts::new()).await.unwrap();
        assert_eq!(rx.recv().await.unwrap(), Duration::from_secs(30));
        worker.stop().await.unwrap();
    }
}

/// Events of `stream` until `n` arrived (error items, from a killed connection, skipped).
async fn take_events(
    stream: &mut (impl futures::Stream<Item = kermes::Result<mq::QueueEvent>> + Unpin),
    n: usize,
) -> Vec<mq::QueueEvent> {
    use futures::StreamExt;
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(e))) => got.push(e),
            Ok(Some(Err(_))) => {}
            other => panic!("after {} events: {other:?}; {got:?}", got.len()),
        }
    }
    got
}

server_tests! {
    async fn the_event_stream_tells_each_messages_story(kind) {
        use mq::EventKind::*;
        let (_server, client) = common::server_and_client(kind).await;
        mq::enqueue(&client, "ev", "before", Opts::new()).await.unwrap();
        assert_eq!(client.cmd("EXISTS").arg(mq::queue_keys("ev").unwrap()[15].as_str()).query::<i64>().await.unwrap(), 0, "off by default");
        mq::clear(&client, "ev").await.unwrap();
        mq::set_events(&client, "ev", Some(1000)).await.unwrap();
        let mut stream = Box::pin(mq::events(&client, "ev", mq::EventsFrom::Start).unwrap());
        let tries = Arc::new(AtomicUsize::new(0));
        let worker = {
            let tries = tries.clone();
            Worker::start(&client, "ev", WorkerOptions::new().backoff(mq::Backoff::Fixed(Duration::from_millis(50))), move |job: Job<String>| {
                let tries = tries.clone();
                async move {
                    if job.message() == "flaky" && tries.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Outcome::error("first try fails");
                    }
                    job.progress(100).await.unwrap();
                    Outcome::success()
                }
            })
            .await
            .unwrap()
        };
        mq::enqueue(&client, "ev", "ok", Opts::new().id("a")).await.unwrap();
        mq::enqueue(&client, "ev", "flaky", Opts::new().id("b")).await.unwrap();
        mq::enqueue(&client, "ev", "later", Opts::new().id("c").init_backoff(Duration::from_secs(60))).await.unwrap();
        mq::remove(&client, "ev", "c").await.unwrap();
        // a: added active progress completed; b: added active failed retried active progress
        // completed; c: delayed removed.
        let events = take_events(&mut stream, 13).await;
        let story = |id: &str| -> Vec<mq::EventKind> {
            events.iter().filter(|e| e.message_id == id).map(|e| e.kind.clone()).collect()
        };
        assert_eq!(story("a"), vec![Added, Active, Progress, Completed]);
        assert_eq!(story("b"), vec![Added, Active, Failed, Retried, Active, Progress, Completed]);
        assert_eq!(story("c"), vec![Delayed, Removed]);
        let b: Vec<_> = events.iter().filter(|e| e.message_id == "b").collect();
        assert_eq!((b[1].attempt, b[4].attempt), (Some(1), Some(2)));
        assert_eq!(b[2].error.as_deref(), Some("first try fails"));
        assert_eq!(b[3].delay, Some(Duration::from_millis(50)));
        assert_eq!(b[5].progress.as_deref(), Some(&b"100"[..]));
        worker.stop().await.unwrap();
    }

    async fn the_event_stream_resumes_after_its_connection_is_killed(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        mq::set_events(&client, "resume", Some(10_000)).await.unwrap();
        let mut stream = Box::pin(mq::events(&client, "resume", mq::EventsFrom::Now).unwrap());
        // The stream pins "now" at its first read: start reading before enqueueing.
        let first = tokio::spawn(async move {
            let got = take_events(&mut stream, 20).await;
            (got, stream)
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        for i in 0..20 {
            mq::enqueue(&client, "resume", "x", Opts::new().id(format!("m{i}"))).await.unwrap();
        }
        let (got, mut stream) = first.await.unwrap();
        let killer = Client::connect(&_server.url()).await.unwrap();
        let reader = tokio::spawn(async move { take_events(&mut stream, 30).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let killed: i64 = killer.cmd("CLIENT").arg(("KILL", "TYPE", "normal", "SKIPME", "yes")).query().await.unwrap();
        assert!(killed >= 1);
        // The kill took the killer's other shared connections too: enqueue from a new client.
        let producer = Client::connect(&_server.url()).await.unwrap();
        for i in 20..50 {
            mq::enqueue(&producer, "resume", "x", Opts::new().id(format!("m{i}"))).await.unwrap();
        }
        let after = reader.await.unwrap();
        let ids: Vec<String> = got.iter().chain(&after).map(|e| e.message_id.clone()).collect();
        let expected: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
        assert_eq!(ids, expected, "every event once, in order, across the reconnect");
    }
}

server_tests! {
    async fn outcome_counts_per_minute_are_kept_on_the_server(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        assert!(mq::metrics(&client, "met").await.unwrap().is_empty(), "off by default");
        mq::set_metrics(&client, "met", Some(10)).await.unwrap();
        let worker = Worker::start(
            &client,
            "met",
            WorkerOptions::new().concurrency(8).max_attempts(Some(2)).backoff(mq::Backoff::Fixed(Duration::from_millis(10))),
            |job: Job<String>| async move {
                if job.message() == "bad" { Outcome::error("bad") } else { Outcome::success() }
            },
        )
        .await
        .unwrap();
        let mut batch: Vec<(String, Opts)> = (0..40).map(|_| ("good".to_string(), Opts::new())).collect();
        batch.extend((0..5).map(|_| ("bad".to_string(), Opts::new())));
        mq::enqueue_many(&client, "met", batch).await.unwrap();
        common::wait_until_async(Duration::from_secs(10), "all handled", || async {
            let s = mq::queue_status(&client, "met").await.unwrap();
            s.queued + s.delayed + s.locked == 0
        })
        .await;
        let series = mq::metrics(&client, "met").await.unwrap();
        assert_eq!(series.len(), 10);
        assert!(series.windows(2).all(|w| w[1].minute.duration_since(w[0].minute).unwrap() == Duration::from_secs(60)));
        let completed: u64 = series.iter().map(|m| m.completed).sum();
        let failed: u64 = series.iter().map(|m| m.failed).sum();
        // The work may straddle a minute boundary; the totals are exact.
        assert_eq!((completed, failed), (40, 10), "5 bad messages x 2 attempts");
        assert!(series[..8].iter().all(|m| m.completed == 0), "only the last minutes counted");
        worker.stop().await.unwrap();
        mq::set_metrics(&client, "met", None).await.unwrap();
        assert!(mq::metrics(&client, "met").await.unwrap().is_empty());
    }
}

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const CHILD_URL: &str = "KERMES_MQ_ADMIN_CHILD_URL";

/// The skewed-clock process of the schedule test (run under libfaketime, an hour ahead):
/// upserts a schedule, drives it with a worker, prints each run's message id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the process in schedules_follow_the_server_clock"]
async fn mq_schedule_child_process() {
    let url = std::env::var(CHILD_URL).expect("run by the schedule clock test");
    let client = Client::connect(&url).await.unwrap();
    let schedule = mq::Schedule::every(Duration::from_millis(400))
        .unwrap()
        .limit(3);
    mq::upsert_schedule(&client, "skew", "tick", &schedule, "t")
        .await
        .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker = Worker::start(
        &client,
        "skew",
        WorkerOptions::new(),
        move |job: Job<String>| {
            let _ = tx.send(job.id().to_owned());
            async { Outcome::success() }
        },
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let id = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        println!("ran {id}");
    }
    worker.stop().await.unwrap();
}

/// Scripts and functions the server has run (EVALSHA, EVAL and FCALL calls).
async fn script_calls(client: &Client) -> u64 {
    common::command_calls(client, &["evalsha", "eval", "fcall"]).await
}

async fn server_ms(client: &Client) -> u64 {
    let (s, us): (u64, u64) = client.cmd("TIME").query().await.unwrap();
    s * 1000 + us / 1000
}

fn due_of(id: &str) -> u64 {
    id.rsplit_once('@').unwrap().1.parse().unwrap()
}

server_tests! {
    async fn a_schedule_runs_each_time_exactly_once_across_workers(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let t0 = server_ms(&client).await;
        let every = mq::Schedule::every(Duration::from_millis(300)).unwrap().limit(4);
        assert_eq!(mq::upsert_schedule(&client, "sched", "tick", &every, "tick!").await.unwrap(), mq::Upserted::Created);
        assert_eq!(mq::upsert_schedule(&client, "sched", "tick", &every, "tick!").await.unwrap(), mq::Upserted::Unchanged);
        let before = mq::schedules(&client, "sched").await.unwrap();
        assert_eq!(before.len(), 1);
        // Three workers (one on another connection) race to fire each run.
        let other = Client::connect(&_server.url()).await.unwrap();
        let (a, mut ra) = reporting(&client, "sched", WorkerOptions::new()).await;
        let (b, mut rb) = reporting(&client, "sched", WorkerOptions::new()).await;
        let (tx, mut rc) = mpsc::unbounded_channel();
        let c = Worker::start(&other, "sched", WorkerOptions::new(), move |job: Job<String>| {
            let _ = tx.send((job.id().to_owned(), Instant::now()));
            async { Outcome::success() }
        })
        .await
        .unwrap();
        let ids = Arc::new(std::sync::Mutex::new(Vec::new()));
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            tokio::select! {
                Some((id, _)) = ra.recv() => ids.lock().unwrap().push(id),
                Some((id, _)) = rb.recv() => ids.lock().unwrap().push(id),
                Some((id, _)) = rc.recv() => ids.lock().unwrap().push(id),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        let got = ids.lock().unwrap().clone();
        assert_eq!(got.len(), 4, "4 runs, each once: {got:?}");
        let info = mq::schedules(&client, "sched").await.unwrap();
        assert_eq!((info[0].runs, info[0].next_run), (4, None), "finished after its limit");
        // The runs' ids carry their due time: 300 ms apart, from the upsert.
        let mut dues: Vec<u64> = got.iter().map(|id| due_of(id)).collect();
        dues.sort();
        assert!(dues[0] >= t0 + 300, "{dues:?} from {t0}");
        assert!(dues.windows(2).all(|w| w[1] - w[0] == 300), "{dues:?}");
        a.stop().await.unwrap();
        b.stop().await.unwrap();
        c.stop().await.unwrap();
        assert!(mq::remove_schedule(&client, "sched", "tick").await.unwrap());
        assert!(mq::schedules(&client, "sched").await.unwrap().is_empty());
    }

    async fn schedule_runs_are_timed_on_the_server(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let worker = Worker::start(&client, "timed", WorkerOptions::new(), move |job: Job<String>| {
            let _ = tx.send(job.id().to_owned());
            async { Outcome::success() }
        })
        .await
        .unwrap();
        let t0 = server_ms(&client).await;
        let every = mq::Schedule::every(Duration::from_millis(250)).unwrap().limit(3);
        mq::upsert_schedule(&client, "timed", "beat", &every, "b").await.unwrap();
        let mut dues = Vec::new();
        for _ in 0..3 {
            let id = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert!(id.starts_with("beat@"), "{id}");
            dues.push(due_of(&id));
            // Each run enqueued no earlier than its due time (server clock).
            assert!(server_ms(&client).await >= *dues.last().unwrap());
        }
        assert!(dues[0] >= t0 + 250 && dues[0] < t0 + 1000, "{dues:?} from {t0}");
        assert_eq!((dues[1] - dues[0], dues[2] - dues[1]), (250, 250));
        // A changed timing recomputes the next run.
        let slower = mq::Schedule::every(Duration::from_secs(60)).unwrap();
        assert_eq!(mq::upsert_schedule(&client, "timed", "beat", &slower, "b").await.unwrap(), mq::Upserted::Updated);
        let next = mq::schedules(&client, "timed").await.unwrap()[0].next_run.unwrap();
        let next_ms = next.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(next_ms > server_ms(&client).await + 50_000);
        worker.stop().await.unwrap();
    }

    async fn schedules_follow_the_server_clock_not_the_clients(kind) {
        assert!(std::path::Path::new(LIBFAKETIME).exists(),
            "{LIBFAKETIME} is missing: run `bash scripts/install-servers.sh` (installs libfaketime)");
        let (server, client) = common::server_and_client(kind).await;
        let t0 = server_ms(&client).await;
        let out = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "mq_schedule_child_process", "--ignored", "--nocapture", "--test-threads", "1"])
            .env(CHILD_URL, server.url())
            .env("LD_PRELOAD", LIBFAKETIME)
            .env("FAKETIME", "+1h")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .output()
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
        // (The test harness may print on the same line: look for the marker anywhere.)
        let dues: Vec<u64> = stdout
            .lines()
            .filter_map(|l| l.find("ran ").map(|at| l[at + 4..].trim()))
            .map(due_of)
            .collect();
        assert_eq!(dues.len(), 3, "{stdout}");
        // Timed from the server's clock at the upsert, not the child's (an hour ahead).
        assert!(dues[0] > t0 && dues[0] < t0 + 30_000, "{dues:?} from {t0}");
        assert_eq!((dues[1] - dues[0], dues[2] - dues[1]), (400, 400));
    }
}

server_tests! {
    async fn a_busy_worker_reports_and_takes_the_next_message_in_one_round_trip(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        let batch = (0..200).map(|i| (format!("m{i}"), Opts::new()));
        mq::enqueue_many(&client, "rt", batch).await.unwrap();
        let before = script_calls(&client).await;
        let (worker, mut rx) = reporting(&client, "rt", WorkerOptions::new().concurrency(1)).await;
        for _ in 0..200 {
            tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        }
        let stats = worker.stop().await.unwrap();
        assert_eq!(stats.succeeded, 200);
        let used = script_calls(&client).await - before;
        // One script per message (its ack takes the next), plus the first claim, the
        // scheduler's look and the stop: about 200, against 400 with a claim per message.
        assert!(used < 220, "{used} script calls for 200 messages");
    }
}

server_tests! {
    async fn without_claim_with_ack_each_message_costs_two_scripts(kind) {
        let (_server, client) = common::server_and_client(kind).await;
        mq::enqueue_many(&client, "rt2", (0..100).map(|i| (format!("m{i}"), Opts::new()))).await.unwrap();
        let before = script_calls(&client).await;
        let options = WorkerOptions::new().concurrency(1).claim_with_ack(false);
        let (worker, mut rx) = reporting(&client, "rt2", options).await;
        for _ in 0..100 {
            tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
        }
        worker.stop().await.unwrap();
        let used = script_calls(&client).await - before;
        assert!(used >= 200, "{used} script calls: a claim and an ack per message");
    }
}
