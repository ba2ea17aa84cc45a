//! The lock family beside the plain lock: read-write, fair, semaphore, countdown latch and
//! rate limiter, against real servers, across processes where it matters.

#[macro_use]
mod common;

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kermes::lock::{LockGuard, LockOptions, Locks, RateLimiter, WAITING_LEASE};
use kermes::prelude::*;
use kermes::testing::TestServer;
use tokio::io::{AsyncBufReadExt, BufReader};

const CHILD_URL: &str = "KERMES_LOCK_FAMILY_CHILD_URL";
const CHILD_ROLE: &str = "KERMES_LOCK_FAMILY_CHILD_ROLE";

fn wait(secs: u64) -> LockOptions {
    LockOptions::new().wait(Duration::from_secs(secs))
}

async fn take(locks: &Locks, kind: &str, name: &str) -> LockGuard {
    let got = match kind {
        "write" => locks.acquire_write(name, wait(60)).await,
        "fair" => locks.acquire_fair(name, wait(60)).await,
        "permit" => locks.acquire_permit(name, 1, wait(60)).await,
        other => panic!("no lock kind {other}"),
    };
    got.unwrap().expect("taken within 60 s")
}

/// Increments a counter non-atomically (GET, pause, SET) under a lock of `kind`, `rounds`
/// times in each of `tasks` tasks: only mutual exclusion keeps the count exact.
async fn increment_under(url: &str, kind: &str, tasks: usize, rounds: usize) {
    let client = Client::connect(url).await.unwrap();
    let locks = Locks::new(&client);
    let counter = format!("counter:{kind}");
    common::in_tasks(tasks, |_| {
        let (client, locks, kind, counter) = (
            client.clone(),
            locks.clone(),
            kind.to_owned(),
            counter.clone(),
        );
        async move {
            for _ in 0..rounds {
                let guard = take(&locks, &kind, "shared").await;
                let n: i64 = client
                    .get(&counter)
                    .to::<Option<i64>>()
                    .await
                    .unwrap()
                    .unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(1)).await;
                client.set(&counter, n + 1).await.unwrap();
                assert!(guard.release().await.unwrap(), "held throughout");
            }
        }
    })
    .await;
}

/// KEYS: holders, max. Counts a holder in and keeps the highest count.
static COUNT_IN: std::sync::LazyLock<kermes::Script> = std::sync::LazyLock::new(|| {
    kermes::Script::new(
        "local n = redis.call('INCR', KEYS[1])
         if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
         return n",
    )
});

/// Holders of a 3-permit semaphore count themselves in on the server; the highest count
/// seen is kept.
async fn use_three_permits(url: &str, tasks: usize, rounds: usize) {
    let client = Client::connect(url).await.unwrap();
    let locks = Locks::new(&client);
    common::in_tasks(tasks, |_| {
        let (client, locks) = (client.clone(), locks.clone());
        async move {
            for _ in 0..rounds {
                let permit = locks
                    .acquire_permit("pool", 3, wait(60))
                    .await
                    .unwrap()
                    .unwrap();
                let _: i64 = COUNT_IN.run(&client, ("holders", "max"), ()).await.unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
                client.decr("holders").await.unwrap();
                assert!(permit.release().await.unwrap());
            }
        }
    })
    .await;
}

/// The other processes of these tests: this binary runs itself with this test selected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the child processes of the lock family tests"]
async fn lock_family_child_process() {
    let url = std::env::var(CHILD_URL).expect("run by a lock family test");
    let role = std::env::var(CHILD_ROLE).unwrap();
    match role.split_once(':') {
        Some(("count", kind)) => increment_under(&url, kind, 10, 4).await,
        Some(("semaphore", _)) => use_three_permits(&url, 6, 5).await,
        Some(("hold", _)) => {
            let client = Client::connect(&url).await.unwrap();
            let locks = Locks::new(&client);
            let options = LockOptions::new()
                .lease(Duration::from_millis(800))
                .watchdog(true);
            let _permit = locks
                .acquire_permit("one", 1, options)
                .await
                .unwrap()
                .unwrap();
            println!("held");
            std::io::stdout().flush().unwrap();
            std::future::pending::<()>().await
        }
        _ => panic!("unknown role {role}"),
    }
}

fn child(url: &str, role: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(std::env::current_exe().unwrap());
    c.args([
        "lock_family_child_process",
        "--exact",
        "--ignored",
        "--nocapture",
    ])
    .env(CHILD_URL, url)
    .env(CHILD_ROLE, role)
    .kill_on_drop(true);
    c
}

server_tests! {
    async fn each_kind_excludes_across_two_processes(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        for lock in ["write", "fair", "permit"] {
            let mut other = child(&server.url(), &format!("count:{lock}"));
            let url = server.url();
            let (status, ()) = tokio::join!(other.status(), increment_under(&url, lock, 10, 4));
            assert!(status.unwrap().success(), "{lock}: the second process failed");
            let n: i64 = client.get(format!("counter:{lock}")).to().await.unwrap();
            assert_eq!(n, 80, "{lock}: 20 tasks x 4 increments");
        }
    }

    async fn a_semaphore_of_three_never_has_more_than_three_holders(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let (mut a, mut b) = (child(&server.url(), "semaphore:"), child(&server.url(), "semaphore:"));
        let url = server.url();
        let t = Instant::now();
        let (a, b, ()) = tokio::join!(a.status(), b.status(), use_three_permits(&url, 6, 5));
        assert!(a.unwrap().success() && b.unwrap().success(), "a child process failed");
        // Waiters are woken by releases: a lost wake-up would wait out a 30 s lease.
        assert!(t.elapsed() < Duration::from_secs(20), "{:?}: a waiter slept through a release", t.elapsed());
        let max: i64 = client.get("max").to().await.unwrap();
        assert!(max <= 3, "{max} holders at once");
        assert!(max >= 2, "permits were shared: at most {max} at once");
        assert_eq!(client.get("holders").to::<i64>().await.unwrap(), 0);
    }

    async fn a_killed_holders_permit_comes_back_after_its_lease(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let mut holder = child(&server.url(), "hold:");
        let mut holder = holder.stdout(std::process::Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("the child took the permit")
                .unwrap()
                .expect("the child runs");
            if line == "held" {
                break;
            }
        }
        // Renewed by its watchdog, the permit stays taken past its lease...
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(locks.acquire_permit("one", 1, LockOptions::new()).await.unwrap().is_none());
        holder.start_kill().unwrap();
        holder.wait().await.unwrap();
        // ...and comes back within a lease of the holder's death.
        let t = Instant::now();
        let permit = locks.acquire_permit("one", 1, wait(10)).await.unwrap();
        assert!(permit.is_some());
        assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
    }

    async fn readers_share_writers_exclude_and_a_waiting_writer_holds_off_readers(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let none = LockOptions::new;
        let r1 = locks.acquire_read("doc", none()).await.unwrap().expect("first reader");
        let r2 = locks.acquire_read("doc", none()).await.unwrap().expect("second reader, together");
        assert!(r2.fencing_token() > r1.fencing_token());
        assert!(locks.acquire_write("doc", none()).await.unwrap().is_none(), "no writer with readers");

        let writer = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire_write("doc", wait(10)).await.unwrap().unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            locks.acquire_read("doc", none()).await.unwrap().is_none(),
            "a new reader got in ahead of the waiting writer"
        );
        let t = Instant::now();
        let read_fence = r2.fencing_token();
        assert!(r1.release().await.unwrap());
        assert!(r2.release().await.unwrap());
        let w = writer.await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(500), "the writer was woken: {:?}", t.elapsed());
        assert!(w.fencing_token() > read_fence);
        assert!(w.have_lock().await.unwrap());
        assert!(locks.acquire_read("doc", none()).await.unwrap().is_none(), "no reader with a writer");
        let reader = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire_read("doc", wait(10)).await.unwrap().unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(w.release().await.unwrap());
        let r = reader.await.unwrap();
        assert!(r.have_lock().await.unwrap());
        assert!(r.release().await.unwrap());
        assert!(writer_gets_in(&locks).await, "every guard released");
    }

    async fn a_stream_of_readers_does_not_starve_a_writer(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|i| {
                let (locks, stop) = (locks.clone(), stop.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(i * 15)).await;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if let Some(r) = locks.acquire_read("hot", wait(10)).await.unwrap() {
                            tokio::time::sleep(Duration::from_millis(40)).await;
                            r.release().await.unwrap();
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        let w = locks.acquire_write("hot", wait(10)).await.unwrap().expect("the writer gets in");
        let waited = t.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        w.release().await.unwrap();
        for r in readers {
            r.await.unwrap();
        }
        assert!(waited < Duration::from_millis(1000), "the writer waited {waited:?} behind readers");
    }

    async fn a_fair_lock_serves_waiters_in_arrival_order_and_skips_a_dead_one(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let holder = locks.acquire_fair("queue", LockOptions::new()).await.unwrap().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut waiters = Vec::new();
        for i in 0..6 {
            let (locks, order) = (locks.clone(), order.clone());
            waiters.push(tokio::spawn(async move {
                let g = locks.acquire_fair("queue", wait(30)).await.unwrap().unwrap();
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(5)).await;
                g.release().await.unwrap();
            }));
            // Each one in the queue before the next asks.
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        holder.release().await.unwrap();
        for w in waiters {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4, 5]);

        // A waiter that dies in the queue (its task is gone, it never leaves) is skipped
        // once its place lapses.
        let holder = locks.acquire_fair("queue", LockOptions::new()).await.unwrap().unwrap();
        let dead = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire_fair("queue", wait(30)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        dead.abort();
        let next = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire_fair("queue", wait(30)).await.unwrap().unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        holder.release().await.unwrap();
        let g = next.await.unwrap();
        let waited = t.elapsed();
        assert!(waited < WAITING_LEASE + Duration::from_millis(1500), "{waited:?}");
        g.release().await.unwrap();
        // A waiter that gives up leaves the queue at once.
        let holder = locks.acquire_fair("queue", LockOptions::new()).await.unwrap().unwrap();
        let gave_up = locks.acquire_fair("queue", LockOptions::new().wait(Duration::from_millis(100))).await.unwrap();
        assert!(gave_up.is_none());
        holder.release().await.unwrap();
        let t = Instant::now();
        assert!(locks.acquire_fair("queue", wait(5)).await.unwrap().is_some());
        assert!(t.elapsed() < Duration::from_millis(300), "{:?}", t.elapsed());
    }

    async fn a_countdown_latch_opens_at_zero_for_every_waiter(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let latch = locks.latch("loaded");
        assert!(latch.wait(Duration::from_millis(10)).await.unwrap(), "an unset latch is open");
        assert!(latch.try_set_count(3).await.unwrap());
        assert!(!latch.try_set_count(5).await.unwrap(), "set once");
        let waiters: Vec<_> = (0..5)
            .map(|_| {
                let latch = latch.clone();
                tokio::spawn(async move {
                    let t = Instant::now();
                    (latch.wait(Duration::from_secs(10)).await.unwrap(), t)
                })
            })
            .collect();
        assert!(!latch.wait(Duration::from_millis(100)).await.unwrap(), "closed at 3");
        let other = Locks::new(&Client::connect(&server.url()).await.unwrap()).latch("loaded");
        assert_eq!(other.count_down().await.unwrap(), 2);
        assert_eq!(other.count_down().await.unwrap(), 1);
        assert_eq!(latch.count().await.unwrap(), 1);
        let opened = Instant::now();
        assert_eq!(other.count_down().await.unwrap(), 0);
        for w in waiters {
            let (open, _) = w.await.unwrap();
            assert!(open);
        }
        assert!(opened.elapsed() < Duration::from_millis(500), "woken, not polled");
        assert_eq!(other.count_down().await.unwrap(), 0, "an open latch stays open");
    }

    async fn a_rate_limit_holds_across_clients_on_the_servers_clock(kind) {
        let server = TestServer::start(kind);
        let (a, b) = (
            Client::connect(&server.url()).await.unwrap(),
            Client::connect(&server.url()).await.unwrap(),
        );
        let limit = |c: &Client| RateLimiter::new(c, "api", 20, Duration::from_secs(1)).unwrap().burst(5).unwrap();
        let (la, lb) = (limit(&a), limit(&b));
        assert!(la.try_acquire(6).await.is_err(), "more than the burst at once");
        let first = la.try_acquire(1).await.unwrap();
        assert!(first.allowed && first.remaining == 4, "{first:?}");
        let run = Duration::from_millis(1000);
        let started = Instant::now();
        let count = |l: RateLimiter| async move {
            let mut granted = 0u64;
            while started.elapsed() < run {
                let d = l.try_acquire(1).await.unwrap();
                if d.allowed {
                    granted += 1;
                } else {
                    assert!(d.retry_after <= Duration::from_millis(50), "{d:?}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            granted
        };
        let (ga, gb) = tokio::join!(count(la.clone()), count(lb.clone()));
        // One burst (4 left after the first) plus 20 a second for the run.
        let total = ga + gb;
        assert!((4 + 18..=4 + 21).contains(&total), "{ga} + {gb} granted in {run:?}");
        assert!(ga > 0 && gb > 0);
        // acquire waits its turn: 5 more units need about a quarter of a second.
        let t = Instant::now();
        for _ in 0..5 {
            assert!(lb.acquire(1, Duration::from_secs(2)).await.unwrap());
        }
        assert!(t.elapsed() >= Duration::from_millis(150), "{:?}", t.elapsed());
        assert!(!lb.acquire(5, Duration::from_millis(10)).await.unwrap(), "not in 10 ms");
    }
}

/// Whether a writer gets the lock `doc` at once (no reader or writer holds it).
async fn writer_gets_in(locks: &Locks) -> bool {
    match locks
        .acquire_write("doc", LockOptions::new())
        .await
        .unwrap()
    {
        Some(w) => w.release().await.unwrap(),
        None => false,
    }
}
