//! The queue's guarantees beyond Carmine, each against real servers: no loss when a worker
//! process is killed, fenced acks, lease renewal and loss, idle workers that do not poll,
//! the server's clock, one hash tag per queue, finished messages removed at once, and a
//! stop that leaves nothing locked.

#[macro_use]
mod common;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kermes::helpers::info_map;
use kermes::mq::{self, EnqueueOptions as Opts, Job, MessageState, Outcome, Worker, WorkerOptions};
use kermes::prelude::*;
use kermes::testing::TestServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc};

const CHILD_URL: &str = "KERMES_MQ_TEST_CHILD_URL";
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

async fn setup(kind: kermes::testing::ServerKind) -> (TestServer, Client) {
    let server = TestServer::start(kind);
    let client = Client::connect(&server.url()).await.unwrap();
    (server, client)
}

async fn wait_for(what: &str, within: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn state(client: &Client, queue: &str, id: &str) -> Option<MessageState> {
    mq::message_status(client, queue, id)
        .await
        .unwrap()
        .map(|s| s.state)
}

/// The worker process of the crash test: this test binary runs itself with this test
/// selected. Its handler announces the job on stdout, then never finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the worker process in no_message_is_lost_when_a_worker_process_is_killed"]
async fn mq_worker_child_process() {
    let url = std::env::var(CHILD_URL).expect("run by the crash test");
    let client = Client::connect(&url).await.unwrap();
    let options = WorkerOptions::new().lock_time(Duration::from_millis(900));
    let _worker = Worker::start(&client, "crash", options, |job: Job<String>| async move {
        println!("started {} {} {}", job.id(), job.attempt(), job.message());
        std::io::stdout().flush().unwrap();
        std::future::pending::<Outcome>().await
    })
    .await
    .unwrap();
    std::future::pending::<()>().await
}

/// The skewed-clock process of the clock test (run under libfaketime): checks that its
/// clock is off, then that delays, leases and de-dup windows follow the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the process in deadlines_follow_the_server_clock_not_the_clients"]
async fn mq_clock_child_process() {
    let url = std::env::var(CHILD_URL).expect("run by the clock test");
    let client = Client::connect(&url).await.unwrap();
    let (secs, _): (String, String) = client.cmd("TIME").query().await.unwrap();
    let mine = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let skew = secs.parse::<i64>().unwrap() - mine;
    assert!(
        skew.abs() > 3000,
        "this process's clock is shifted: {skew} s"
    );

    let (tx, mut rx) = mpsc::unbounded_channel();
    let options = WorkerOptions::new().lock_time(Duration::from_secs(20));
    let worker = Worker::start(&client, "clock", options, move |job: Job<String>| {
        let _ = tx.send(Instant::now());
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            drop(job);
            Outcome::Success(Some(Duration::from_secs(30)))
        }
    })
    .await
    .unwrap();
    let t = Instant::now();
    let delayed = Opts::new().id("m").init_backoff(Duration::from_millis(400));
    mq::enqueue(&client, "clock", "m", delayed).await.unwrap();
    let Some(MessageState::Delayed(left)) = state(&client, "clock", "m").await else {
        panic!("not delayed")
    };
    assert!(
        left <= Duration::from_millis(400) && left > Duration::from_millis(300),
        "{left:?}"
    );
    let started = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        started - t >= Duration::from_millis(380),
        "ran early: {:?}",
        started - t
    );
    let Some(MessageState::Locked { lease_left, .. }) = state(&client, "clock", "m").await else {
        panic!("not locked")
    };
    assert!(lease_left > Duration::from_secs(19), "{lease_left:?}");
    wait_for("done", Duration::from_secs(5), async || {
        matches!(
            state(&client, "clock", "m").await,
            Some(MessageState::Done(_))
        )
    })
    .await;
    let Some(MessageState::Done(window)) = state(&client, "clock", "m").await else {
        panic!()
    };
    assert!(
        window > Duration::from_secs(29) && window <= Duration::from_secs(30),
        "{window:?}"
    );
    worker.stop().await.unwrap();
    mq::clear(&client, "clock").await.unwrap();
}

/// A worker process takes a message and is killed with SIGKILL mid-handler: the message is
/// handled again, attempt 2, once its lease ends.
async fn killed_worker_loses_nothing(url: &str, client: &Client) {
    let sent = mq::enqueue(client, "crash", "precious", Opts::new())
        .await
        .unwrap();
    let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "mq_worker_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_URL, url)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let started = loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("the worker process took the message")
            .unwrap()
            .expect("the worker process is running");
        // libtest's "test name ... " has no line end yet: look inside the line.
        if let Some(at) = line.find("started ") {
            break line[at + "started ".len()..].to_owned();
        }
    };
    assert_eq!(started, format!("{} 1 precious", sent.id));
    // Held past several lease lengths by the child's renewals: it is alive.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(matches!(
        state(client, "crash", &sent.id).await,
        Some(MessageState::Locked { .. })
    ));

    child.kill().await.unwrap(); // SIGKILL, mid-handler
    let killed = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker = Worker::start(
        client,
        "crash",
        WorkerOptions::new(),
        move |job: Job<String>| {
            let _ = tx.send((
                job.id().to_owned(),
                job.attempt(),
                job.into_message(),
                Instant::now(),
            ));
            async { Outcome::success() }
        },
    )
    .await
    .unwrap();
    let (id, attempt, message, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("handled again after the lease ran out")
        .unwrap();
    assert_eq!(
        (id, attempt, message.as_str()),
        (sent.id.clone(), 2, "precious")
    );
    assert!(
        at - killed <= Duration::from_millis(900 + 500),
        "retaken when the lease ended: {:?}",
        at - killed
    );
    wait_for("done", Duration::from_secs(5), async || {
        state(client, "crash", &sent.id).await.is_none()
    })
    .await;
    worker.stop().await.unwrap();
}

server_tests! {
    async fn no_message_is_lost_when_a_worker_process_is_killed(kind) {
        let (server, client) = setup(kind).await;
        killed_worker_loses_nothing(&server.url(), &client).await;
    }

    async fn no_message_is_lost_when_a_worker_process_is_killed_on_a_cluster(kind) {
        let set = kermes::testing::ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        killed_worker_loses_nothing(&set.url(), &client).await;
        // An idle worker is woken by an enqueue, through a shard channel of the queue's slot.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let worker = Worker::start(&client, "woken", WorkerOptions::new(), move |job: Job<String>| {
            let _ = tx.send(Instant::now());
            drop(job);
            async { Outcome::success() }
        }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        for _ in 0..5 {
            let sent = Instant::now();
            mq::enqueue(&client, "woken", "wake up", Opts::new()).await.unwrap();
            let picked = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert!(picked - sent < Duration::from_millis(500), "picked up after {:?}", picked - sent);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worker.stop().await.unwrap();
        let owner = set.owner_of(kermes::cluster::key_slot(b"woken"), 0).unwrap();
        let node = Client::connect(&format!("redis://127.0.0.1:{owner}")).await.unwrap();
        let info = info_map(&node, "commandstats").await.unwrap();
        assert!(info.get("commandstats", "cmdstat_spublish").is_some(), "wake-ups use SPUBLISH: {:?}", info.section("commandstats"));
        for i in 0..3 {
            let node = Client::connect(&format!("redis://127.0.0.1:{}", set.port(i))).await.unwrap();
            let info = info_map(&node, "commandstats").await.unwrap();
            assert!(info.get("commandstats", "cmdstat_publish").is_none(), "PUBLISH on node {i}");
        }
    }

    async fn an_ack_after_the_lease_was_taken_over_is_rejected(kind) {
        let (_server, client) = setup(kind).await;
        let q = "fenced";
        let (tx, mut rx) = mpsc::unbounded_channel();
        let a_saw_loss = Arc::new(AtomicBool::new(false));
        let saw = a_saw_loss.clone();
        let tx_a = tx.clone();
        // A holds the message with a fixed 300 ms visibility timeout and overruns it.
        let a = Worker::start(&client, q, WorkerOptions::new().lock_time(Duration::from_millis(300)).renew_lease(false),
            move |job: Job<String>| {
                let (tx, saw) = (tx_a.clone(), saw.clone());
                async move {
                    let _ = tx.send(("a", job.attempt()));
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    saw.store(job.is_lease_lost(), Ordering::SeqCst);
                    Outcome::success()
                }
            }).await.unwrap();
        mq::enqueue(&client, q, "m", Opts::new().id("m")).await.unwrap();
        assert_eq!(rx.recv().await, Some(("a", 1)));
        let gate = Arc::new(Notify::new());
        let g = gate.clone();
        let b = Worker::start(&client, q, WorkerOptions::new(), move |job: Job<String>| {
            let (tx, g) = (tx.clone(), g.clone());
            async move {
                let _ = tx.send(("b", job.attempt()));
                g.notified().await;
                Outcome::success()
            }
        }).await.unwrap();
        assert_eq!(rx.recv().await, Some(("b", 2)), "B takes the message over when A's lease ends");
        wait_for("A's outcome rejected", Duration::from_secs(5), async || a.stats().rejected_acks == 1).await;
        assert!(a_saw_loss.load(Ordering::SeqCst), "A's handler saw its lease lost");
        assert_eq!(a.stats().succeeded, 0);
        let s = mq::message_status(&client, q, "m").await.unwrap().unwrap();
        assert!(matches!(s.state, MessageState::Locked { .. }), "still with B: {s:?}");
        assert_eq!(s.attempts, 2);
        gate.notify_one();
        wait_for("B's outcome applied", Duration::from_secs(5), async || b.stats().succeeded == 1).await;
        assert_eq!(state(&client, q, "m").await, None);
        a.stop().await.unwrap();
        b.stop().await.unwrap();
    }

    async fn leases_renew_while_a_slow_handler_runs_and_loss_is_observable(kind) {
        let (_server, client) = setup(kind).await;
        let q = "renewed";
        let calls = Arc::new(AtomicU32::new(0));
        let options = WorkerOptions::new().lock_time(Duration::from_millis(300));
        let mut workers = vec![];
        for _ in 0..2 {
            let calls = calls.clone();
            workers.push(Worker::start(&client, q, options.clone(), move |job: Job<String>| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    assert!(!job.is_lease_lost());
                    Outcome::success()
                }
            }).await.unwrap());
        }
        mq::enqueue(&client, q, "slow", Opts::new()).await.unwrap();
        wait_for("handled", Duration::from_secs(10), async || {
            workers.iter().map(|w| w.stats().succeeded).sum::<u64>() == 1
        }).await;
        assert_eq!(calls.load(Ordering::SeqCst), 1, "five lease lengths, handled once");
        for w in workers {
            let s = w.stop().await.unwrap();
            assert_eq!((s.leases_lost, s.rejected_acks), (0, 0));
        }

        // Losing the lease (here: the queue is cleared under the handler) is observable.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let worker = Worker::start(&client, q, options, move |job: Job<String>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send("started");
                let lost = tokio::time::timeout(Duration::from_secs(5), job.lease_lost()).await.is_ok();
                let _ = tx.send(if lost { "lost" } else { "kept" });
                Outcome::success()
            }
        }).await.unwrap();
        mq::enqueue(&client, q, "doomed", Opts::new()).await.unwrap();
        assert_eq!(rx.recv().await, Some("started"));
        assert_eq!(mq::clear(&client, q).await.unwrap(), 1);
        assert_eq!(rx.recv().await, Some("lost"));
        wait_for("outcome rejected", Duration::from_secs(5), async || worker.stats().rejected_acks == 1).await;
        assert_eq!(worker.stats().leases_lost, 1);
        worker.stop().await.unwrap();
    }

    async fn an_idle_worker_wakes_at_once_without_polling(kind) {
        let (_server, client) = setup(kind).await;
        let q = "idle";
        let (tx, mut rx) = mpsc::unbounded_channel();
        let worker = Worker::start(&client, q, WorkerOptions::new(), move |_: Job<String>| {
            let _ = tx.send(Instant::now());
            async { Outcome::success() }
        }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.cmd("CONFIG").arg("RESETSTAT").exec().await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let info = info_map(&client, "commandstats").await.unwrap();
        let mut sent = 0u64;
        for (name, value) in info.section("commandstats").unwrap() {
            if name == "cmdstat_config" || name == "cmdstat_info" {
                continue;
            }
            let calls: u64 = value.split(',').next().unwrap().trim_start_matches("calls=").parse().unwrap();
            sent += calls;
        }
        assert!(sent <= 4, "an idle worker sent {sent} commands in 2 s: {:?}", info.section("commandstats"));

        let mut pickups = vec![];
        for i in 0..15 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            mq::enqueue(&client, q, i.to_string(), Opts::new()).await.unwrap();
            let started = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            pickups.push(started - t);
        }
        pickups.sort();
        assert!(pickups[pickups.len() / 2] < Duration::from_millis(50), "{pickups:?}");
        assert!(pickups[pickups.len() - 1] < Duration::from_millis(500), "{pickups:?}");
        worker.stop().await.unwrap();
    }

    async fn deadlines_follow_the_server_clock_not_the_clients(kind) {
        assert!(Path::new(LIBFAKETIME).exists(),
            "{LIBFAKETIME} is missing: run `bash scripts/install-servers.sh` (installs libfaketime)");
        let server = TestServer::start(kind);
        // A producer and worker process whose wall clock is an hour ahead of, then behind,
        // the server's: a deadline it reckoned itself would be due at once or in an hour.
        for offset in ["+1h", "-1h"] {
            let out = tokio::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "mq_clock_child_process", "--ignored", "--nocapture", "--test-threads", "1"])
                .env(CHILD_URL, server.url())
                .env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME", offset)
                .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "client clock {offset}: {}{}",
                String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed"));
        }
    }

    async fn every_key_a_script_touches_is_the_queues_own(kind) {
        let (_server, client) = setup(kind).await;
        let keys = mq::queue_keys("tagged").unwrap();
        assert!(keys.iter().all(|k| k.starts_with("kermes:mq:{tagged}:")), "{keys:?}");
        mq::enqueue(&client, "neighbour", "n", Opts::new().id("n")).await.unwrap();

        let mut monitor = client.monitor().await.unwrap();
        let q = "tagged";
        let worker = Worker::start(&client, q, WorkerOptions::new().max_attempts(Some(1)), |job: Job<String>| async move {
            if job.message() == "fail" { Outcome::error("no") } else { Outcome::Success(Some(Duration::from_secs(5))) }
        }).await.unwrap();
        mq::enqueue(&client, q, "ok", Opts::new().id("ok")).await.unwrap();
        mq::enqueue(&client, q, "fail", Opts::new().id("fail")).await.unwrap();
        mq::enqueue(&client, q, "later", Opts::new().init_backoff(Duration::from_millis(100))).await.unwrap();
        wait_for("three handled", Duration::from_secs(5), async || {
            let s = worker.stats();
            s.succeeded == 2 && s.dead_lettered == 1
        }).await;
        mq::requeue_dead(&client, q, &[]).await.unwrap();
        mq::queue_status(&client, q).await.unwrap();
        mq::queue_content(&client, q, 0, 10).await.unwrap();
        mq::dead_letters(&client, q, 0, 10).await.unwrap();
        worker.stop().await.unwrap();
        mq::clear(&client, q).await.unwrap();
        client.set("end-of-test", 1).await.unwrap();

        let mut from_scripts = 0;
        while let Some(event) = monitor.next().await {
            let Some(entry) = event.unwrap().into_entry() else {
                panic!("the MONITOR connection was interrupted; commands may have been missed");
            };
            if entry.command.eq_ignore_ascii_case("set") && entry.args.first().is_some_and(|a| a == "end-of-test") {
                break;
            }
            if entry.client != "lua" {
                continue;
            }
            from_scripts += 1;
            for arg in &entry.args {
                let arg = String::from_utf8_lossy(arg);
                if arg.starts_with("kermes:") {
                    assert!(arg.starts_with("kermes:mq:{tagged}:"), "{} touched {arg}", entry.command);
                }
            }
        }
        assert!(from_scripts > 50, "the scripts' commands were seen: {from_scripts}");
        assert_eq!(mq::queue_size(&client, "neighbour").await.unwrap(), 1);
    }

    async fn finished_messages_are_removed_by_their_ack(kind) {
        let (_server, client) = setup(kind).await;
        let q = "finished";
        for i in 0..100 {
            let mut o = Opts::new().id(format!("m{i}"));
            if i >= 90 {
                o = o.priority(-1); // handled last, with a de-dup window
            }
            mq::enqueue(&client, q, "x", o).await.unwrap();
        }
        let worker = Worker::start(&client, q, WorkerOptions::new().concurrency(8), |job: Job<String>| async move {
            let n: u32 = job.id()[1..].parse().unwrap();
            Outcome::Success((n >= 90).then_some(Duration::from_secs(60)))
        }).await.unwrap();
        wait_for("all handled", Duration::from_secs(10), async || worker.stats().succeeded == 100).await;
        // Checked the moment the last ack landed: no later lap has run.
        let mut left = std::collections::BTreeMap::new();
        for key in mq::queue_keys(q).unwrap() {
            let kind: String = client.cmd("TYPE").arg(&key).query().await.unwrap();
            if kind != "none" {
                left.insert(key.rsplit(':').next().unwrap().to_owned(), kind);
            }
        }
        let expected: std::collections::BTreeMap<String, String> =
            [("config", "hash"), ("done", "zset"), ("seq", "string")].map(|(a, b)| (a.into(), b.into())).into();
        assert_eq!(left, expected, "only the de-dup ids, the counter and the idle mark remain");
        // The worker, drained, waits for a wake-up: the queue's settings say so, and that
        // is all they hold.
        let config: Vec<String> = client.hkeys(format!("kermes:mq:{{{q}}}:config")).await.unwrap();
        assert_eq!(config, ["idle"]);
        let done: i64 = client.zcard(format!("kermes:mq:{{{q}}}:done")).await.unwrap();
        assert_eq!(done, 10);
        worker.stop().await.unwrap();
    }

    async fn stop_waits_for_handlers_within_its_grace_and_puts_back_the_rest(kind) {
        let (_server, client) = setup(kind).await;
        let q = "stopping";
        let (tx, mut rx) = mpsc::unbounded_channel();
        let options = WorkerOptions::new().concurrency(2).stop_grace(Duration::from_millis(400));
        let worker = Worker::start(&client, q, options, move |job: Job<String>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(job.message().clone());
                let ms = job.message().parse().unwrap();
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Outcome::success()
            }
        }).await.unwrap();
        mq::enqueue(&client, q, "150", Opts::new().id("quick")).await.unwrap();
        mq::enqueue(&client, q, "60000", Opts::new().id("slow")).await.unwrap();
        let _ = rx.recv().await;
        let _ = rx.recv().await;
        let t = Instant::now();
        let stats = worker.stop().await.unwrap();
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(390) && took < Duration::from_secs(3), "{took:?}");
        assert_eq!((stats.succeeded, stats.released, stats.running), (1, 1, 0));
        let status = mq::queue_status(&client, q).await.unwrap();
        assert_eq!((status.locked, status.queued), (0, 1), "nothing locked: {status:?}");
        let slow = mq::message_status(&client, q, "slow").await.unwrap().unwrap();
        assert_eq!((slow.state, slow.attempts), (MessageState::Queued, 0), "the cut attempt does not count");
        // A stopped worker takes nothing more.
        mq::enqueue(&client, q, "1", Opts::new().id("after")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(state(&client, q, "after").await, Some(MessageState::Queued));
    }
}
