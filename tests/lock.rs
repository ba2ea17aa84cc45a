//! Distributed locks: exclusion across processes, one attempt for wait 0, expiry and loss
//! reported, renewal, fencing, owner checks, and waiting without spinning.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use kermes::lock::{LockOptions, Locks};
use kermes::prelude::*;
use kermes::testing::TestServer;

const CHILD_URL: &str = "KERMES_LOCK_TEST_CHILD_URL";

/// Increments `counter` non-atomically (GET, pause, SET) under the lock, `rounds` times in
/// each of `tasks` tasks: only mutual exclusion keeps the count exact.
async fn increment_under_lock(url: &str, tasks: usize, rounds: usize) {
    let client = Client::connect(url).await.unwrap();
    let locks = Locks::new(&client);
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (client, locks) = (client.clone(), locks.clone());
            tokio::spawn(async move {
                for _ in 0..rounds {
                    let guard = locks
                        .acquire("counter", None, Duration::from_secs(60))
                        .await
                        .unwrap()
                        .expect("lock within 60 s");
                    let n: i64 = client
                        .get("counter")
                        .to::<Option<i64>>()
                        .await
                        .unwrap()
                        .unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    client.set("counter", n + 1).await.unwrap();
                    assert!(
                        guard.release().await.unwrap(),
                        "the lock was held throughout"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
}

/// The second process of the two-process test: this test binary runs itself with this test
/// selected and the server's URL in the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the second process in mutual_exclusion_holds_across_two_processes"]
async fn lock_test_child_process() {
    let url = std::env::var(CHILD_URL).expect("run by mutual_exclusion_holds_across_two_processes");
    increment_under_lock(&url, 25, 4).await;
}

/// Lock attempts served so far: the acquire script's EVALSHA (or EVAL) calls. (Commands run
/// inside scripts count separately in commandstats, so they are left out.)
async fn attempts_served(client: &Client) -> u64 {
    common::command_calls(client, &["evalsha", "eval"]).await
}

/// 25 tasks in this process and 25 in a second one increment a counter 4 times each under
/// the lock, against the server (or cluster) at `url`.
async fn two_processes_increment_under_lock(url: &str) {
    let child = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_test_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_URL, url)
        .kill_on_drop(true)
        .status();
    let (status, ()) = tokio::join!(child, increment_under_lock(url, 25, 4));
    assert!(status.unwrap().success(), "the second process failed");
    let client = Client::connect(url).await.unwrap();
    assert_eq!(
        client.get("counter").to::<i64>().await.unwrap(),
        200,
        "50 tasks x 4 increments"
    );
}

/// How many times `command` ran on the server at `port` (scripts' calls included).
async fn calls_on(port: u16, command: &str) -> u64 {
    let node = Client::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    common::command_calls(&node, &[command]).await
}

server_tests! {
    async fn a_waiter_arriving_as_the_last_one_leaves_is_still_woken(kind) {
        // The last waiter of a lock leaving unsubscribes its wake-up channel; the next one
        // subscribes it again. That UNSUBSCRIBE, sent late, must not undo the SUBSCRIBE: a
        // waiter with no subscription sleeps until the holder's lease (20 s) runs out.
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let lease = Some(Duration::from_secs(20));
        let mut held = locks.acquire("relay", lease, Duration::ZERO).await.unwrap().unwrap();
        for round in 0..40 {
            let next = {
                let locks = locks.clone();
                tokio::spawn(async move { locks.acquire("relay", lease, Duration::from_secs(30)).await })
            };
            tokio::time::sleep(Duration::from_millis(5)).await;
            let t = Instant::now();
            held.release().await.unwrap();
            held = next.await.unwrap().unwrap().unwrap();
            assert!(t.elapsed() < Duration::from_secs(5), "round {round}: woken after {:?}", t.elapsed());
        }
    }

    async fn mutual_exclusion_holds_across_two_processes(kind) {
        let server = TestServer::start(kind);
        two_processes_increment_under_lock(&server.url()).await;
    }

    async fn mutual_exclusion_holds_across_two_processes_on_a_cluster(kind) {
        let set = kermes::testing::ClusterSet::start(kind);
        two_processes_increment_under_lock(&set.url()).await;
        // Releases woke waiters on the lock's own shard, never across the cluster bus.
        let mut spublished = 0;
        for node in 0..3 {
            assert_eq!(calls_on(set.port(node), "publish").await, 0, "PUBLISH on node {node}");
            spublished += calls_on(set.port(node), "spublish").await;
        }
        assert!(spublished >= 199, "{spublished} releases published with SPUBLISH");
    }

    async fn wait_zero_makes_exactly_one_attempt(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let held = locks.try_acquire("one", None).await.unwrap().unwrap();
        let before = attempts_served(&client).await;
        assert!(locks.try_acquire("one", None).await.unwrap().is_none());
        assert_eq!(attempts_served(&client).await - before, 1, "exactly one attempt");
        held.release().await.unwrap();
    }

    async fn expiry_during_the_body_is_reported_with_the_body_result(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let other = locks.clone();
        let out = locks
            .with_lock("short", Some(Duration::from_millis(200)), Duration::ZERO, async move {
                tokio::time::sleep(Duration::from_millis(600)).await;
                // Another holder took it meanwhile.
                let intruder = other.try_acquire("short", Some(Duration::from_secs(5))).await.unwrap();
                assert!(intruder.is_some());
                std::mem::forget(intruder);
                Err::<(), &str>("the body's own error")
            })
            .await
            .unwrap()
            .expect("the lock was free");
        assert!(out.lease_lost);
        assert_eq!(out.value, Err("the body's own error"));
    }

    async fn the_watchdog_keeps_a_lock_past_three_leases(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let lease = Duration::from_millis(300);
        let guard = locks.acquire_with("renewed", LockOptions::new().lease(lease).watchdog(true)).await.unwrap().unwrap();
        tokio::time::sleep(lease * 4).await;
        assert!(!guard.is_lost());
        assert!(guard.have_lock().await.unwrap());
        assert!(locks.try_acquire("renewed", None).await.unwrap().is_none());
        assert!(guard.release().await.unwrap());
        assert!(locks.try_acquire("renewed", None).await.unwrap().is_some());
    }

    async fn deleting_the_key_or_running_out_of_lease_fires_lost(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let guard = locks.acquire_with("gone", LockOptions::new().lease(Duration::from_millis(300)).watchdog(true)).await.unwrap().unwrap();
        let token = guard.cancellation_token();
        client.del("kermes:lock:{gone}").await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), guard.lost()).await.expect("lost() fired");
        assert!(token.is_cancelled());
        assert!(!guard.release().await.unwrap());

        let started = Instant::now();
        let short = locks.try_acquire("brief", Some(Duration::from_millis(200))).await.unwrap().unwrap();
        tokio::time::timeout(Duration::from_secs(2), short.lost()).await.expect("lost() at lease end");
        assert!(started.elapsed() >= Duration::from_millis(190));
    }

    async fn fencing_tokens_strictly_increase_across_holders(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let mut last = 0;
        for _ in 0..5 {
            let g = locks.acquire("fenced", Some(Duration::from_secs(5)), Duration::from_secs(5)).await.unwrap().unwrap();
            assert!(g.fencing_token() > last, "{} after {last}", g.fencing_token());
            last = g.fencing_token();
            g.release().await.unwrap();
        }
        // Taken over after an expiry: the new holder's token is greater still.
        let stale = locks.try_acquire("fenced", Some(Duration::from_millis(100))).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let fresh = locks.try_acquire("fenced", Some(Duration::from_secs(5))).await.unwrap().unwrap();
        assert!(fresh.fencing_token() > stale.fencing_token());
        // The stale holder cannot release the new holder's lock.
        assert!(!stale.release().await.unwrap());
        assert!(fresh.have_lock().await.unwrap());
    }

    async fn fifty_waiters_do_not_spin(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let locks = Locks::new(&client);
        let holder = locks.try_acquire("busy", None).await.unwrap().unwrap();
        let before = attempts_served(&client).await;
        let waiters: Vec<_> = (0..50)
            .map(|_| {
                let locks = locks.clone();
                tokio::spawn(async move { locks.acquire("busy", None, Duration::from_secs(2)).await.unwrap().is_some() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let waiting = attempts_served(&client).await - before;
        drop(holder);
        let mut got = 0;
        for w in waiters {
            got += usize::from(w.await.unwrap());
        }
        assert!(got >= 1, "a waiter took the lock after the release");
        // A 1 ms spin would be ~75,000 commands in 1.5 s; waiting costs a few per waiter.
        // A 1 ms spin would be ~75,000 attempts in 1.5 s; each waiter tries twice, then waits.
        assert!(waiting <= 100, "{waiting} attempts while 50 waiters waited 1.5 s");
        // Draining: one release wakes one waiter, so attempts stay linear in the waiters.
        let total = attempts_served(&client).await - before;
        assert!(total < 250, "{total} attempts for 50 waiters in all");
    }

    async fn dropping_the_locks_closes_their_wake_up_connection(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let connections = || async {
            let list: String = client.cmd("CLIENT").arg("LIST").query().await.unwrap();
            list.lines().count()
        };
        let locks = Locks::new(&client);
        let held = locks.acquire("busy", Some(Duration::from_secs(10)), Duration::ZERO).await.unwrap().unwrap();
        let before = connections().await;
        // Waiting subscribes to the lock's release channel on a connection of its own.
        let waited = locks.acquire("busy", Some(Duration::from_secs(10)), Duration::from_millis(50)).await.unwrap();
        assert!(waited.is_none());
        assert_eq!(connections().await, before + 1);
        held.release().await.unwrap();
        drop(locks);
        common::wait_until_async(Duration::from_secs(5), "the wake-up connection closes", || async {
            connections().await == before
        })
        .await;
    }
}
