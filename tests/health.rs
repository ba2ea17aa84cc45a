//! A network that goes silent is noticed: in-flight commands fail within the configured
//! bound, idle connections are checked, leases are lost before they could have run out on
//! the server, and the client recovers by itself when the network heals. The faults come
//! from an in-process proxy (`kermes::testing::FaultProxy`).

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::eventually;
use futures::StreamExt;
use kermes::lock::{LockOptions, Locks};
use kermes::mq::{self, EnqueueOptions, Job, Outcome, Worker, WorkerOptions};
use kermes::testing::{Fault, FaultProxy, TestServer};
use kermes::{Client, ConnectionEvent};
use tokio::time::Instant;

/// The next event that `wanted` picks, within `within`.
async fn next_event(
    events: &mut kermes::ConnectionEvents,
    within: Duration,
    wanted: impl Fn(&ConnectionEvent) -> bool,
) -> Option<ConnectionEvent> {
    tokio::time::timeout(within, async {
        loop {
            match events.next().await {
                Some(e) if wanted(&e) => return e,
                Some(_) => continue,
                None => panic!("the event stream ended"),
            }
        }
    })
    .await
    .ok()
}

/// A server, a proxy in front of it, a client with default settings through the proxy,
/// and one straight to the server.
async fn behind_proxy(
    kind: kermes::testing::ServerKind,
) -> (TestServer, FaultProxy, Client, Client) {
    let server = TestServer::start(kind);
    let proxy = FaultProxy::start(server.port()).await.unwrap();
    let client = through(&proxy).connect().await.unwrap();
    let direct = Client::connect(&server.url()).await.unwrap();
    (server, proxy, client, direct)
}

fn through(proxy: &FaultProxy) -> kermes::ClientBuilder {
    Client::builder()
        .url(&proxy.url())
        .connect_timeout(Duration::from_millis(500))
}

server_tests! {
    async fn in_flight_commands_fail_within_the_bound_when_the_network_goes_silent(kind) {
        let server = TestServer::start(kind);
        let proxy = FaultProxy::start(server.port()).await.unwrap();
        let client = through(&proxy)
            // The health bound alone: no response timeout, no idle PING.
            .unresponsive_timeout(Duration::from_secs(1))
            .idle_ping(None)
            .connect()
            .await
            .unwrap();
        client.cmd("SET").arg("k").arg("v").exec().await.unwrap();
        proxy.set(Fault::BlackHole);
        let started = Instant::now();
        let in_flight: Vec<_> = (0..10).map(|_| client.cmd("GET").arg("k").query::<String>()).collect();
        let results = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(in_flight))
            .await
            .expect("commands on a silent network must fail within the bound, not hang");
        let took = started.elapsed();
        for r in results {
            let err = r.expect_err("nothing can be answered through a black hole");
            assert!(err.is_io() || err.is_timeout(), "{err}");
        }
        assert!(took >= Duration::from_millis(900), "failed before the bound: {took:?}");
        assert!(took < Duration::from_secs(3), "failed long after the bound: {took:?}");
        // The network heals; the client reconnects by itself.
        proxy.set(Fault::Pass);
        let v: String = eventually(Duration::from_secs(10), || client.cmd("GET").arg("k").query()).await;
        assert_eq!(v, "v");
    }

    async fn an_idle_connection_is_checked_and_found_dead_without_any_command(kind) {
        let server = TestServer::start(kind);
        let proxy = FaultProxy::start(server.port()).await.unwrap();
        let client = through(&proxy)
            .idle_ping(Duration::from_millis(200))
            .unresponsive_timeout(Duration::from_millis(500))
            .connect()
            .await
            .unwrap();
        let mut events = client.events();
        proxy.set(Fault::BlackHole);
        let started = Instant::now();
        // No command is sent: only the health check can notice.
        let event = next_event(&mut events, Duration::from_secs(5), |e| matches!(e, ConnectionEvent::Disconnected { .. }))
            .await
            .expect("an idle connection on a silent network must be found dead");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(format!("{event:?}").contains("generation: 0"), "{event:?}");
        proxy.set(Fault::Pass);
        let event = next_event(&mut events, Duration::from_secs(10), |e| matches!(e, ConnectionEvent::Reconnected { .. }))
            .await
            .expect("the client reconnects when the network heals");
        assert!(matches!(event, ConnectionEvent::Reconnected { generation: 1, .. }), "{event:?}");
        let pong: String = client.cmd("PING").query().await.unwrap();
        assert_eq!(pong, "PONG");
    }

    async fn a_lock_is_lost_before_its_lease_could_run_out_when_the_network_goes_silent(kind) {
        // Default health settings: the lease keeper must not wait for the connection's check.
        let (_server, proxy, client, direct) = behind_proxy(kind).await;
        let locks = Locks::new(&client);
        let lease = Duration::from_secs(2);
        let guard = locks
            .acquire_with("silent", LockOptions::new().lease(lease).watchdog(true))
            .await
            .unwrap()
            .expect("the lock is free");
        // Let the watchdog renew once, then cut the network.
        tokio::time::sleep(Duration::from_millis(800)).await;
        let cut = Instant::now();
        proxy.set(Fault::BlackHole);
        tokio::time::timeout(Duration::from_secs(6), guard.lost())
            .await
            .expect("lost() must fire when renewals cannot reach the server");
        let lost_after = cut.elapsed();
        // The last renewal that could have reached the server was sent before the cut, so the
        // server's lease ends by cut + lease at the latest; lost() must come before that.
        assert!(lost_after < lease, "lost() fired {lost_after:?} after the cut, lease {lease:?}");
        // The server does expire it: another client takes the lock.
        let other = Locks::new(&direct);
        let taken = other
            .acquire("silent", Some(Duration::from_secs(5)), Duration::from_secs(5))
            .await
            .unwrap();
        assert!(taken.is_some(), "the lease should have run out on the server");
        proxy.set(Fault::Pass);
        let pong: String = eventually(Duration::from_secs(20), || client.cmd("PING").query()).await;
        assert_eq!(pong, "PONG");
    }

    async fn a_job_lease_is_lost_before_it_could_run_out_when_the_network_goes_silent(kind) {
        let (_server, proxy, client, direct) = behind_proxy(kind).await;
        let lease = Duration::from_secs(2);
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let started_tx = Arc::new(std::sync::Mutex::new(Some(started_tx)));
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel();
        let lost_tx = Arc::new(std::sync::Mutex::new(Some(lost_tx)));
        let worker = Worker::start(
            &client,
            "silent",
            WorkerOptions::new().lock_time(lease),
            move |job: Job<String>| {
                let (started_tx, lost_tx) = (started_tx.clone(), lost_tx.clone());
                async move {
                    if let Some(tx) = started_tx.lock().unwrap().take() {
                        let _ = tx.send(());
                    }
                    job.lease_lost().await;
                    if let Some(tx) = lost_tx.lock().unwrap().take() {
                        let _ = tx.send(Instant::now());
                    }
                    Outcome::success()
                }
            },
        )
        .await
        .unwrap();
        mq::enqueue(&direct, "silent", "m", EnqueueOptions::new()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), started_rx).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(800)).await;
        let cut = Instant::now();
        proxy.set(Fault::BlackHole);
        let lost_at = tokio::time::timeout(Duration::from_secs(6), lost_rx)
            .await
            .expect("the handler must learn that its lease is lost")
            .unwrap();
        assert!(lost_at - cut < lease, "lease_lost fired {:?} after the cut", lost_at - cut);
        proxy.set(Fault::Pass);
        drop(worker);
    }

    async fn a_lock_lease_is_timed_from_when_its_request_was_sent(kind) {
        let (_server, proxy, client, direct) = behind_proxy(kind).await;
        let locks = Locks::new(&client);
        // Load the lock's scripts before the delay, so every call is one round trip.
        drop(locks.acquire("warm", Some(Duration::from_secs(1)), Duration::ZERO).await.unwrap());
        let lease = Duration::from_secs(1);
        // Every chunk takes 300 ms each way: the reply arrives 600 ms after the request left.
        proxy.set(Fault::Delay(Duration::from_millis(300)));
        let guard = locks
            .acquire_with("timed", LockOptions::new().lease(lease).watchdog(false))
            .await
            .unwrap()
            .expect("the lock is free");
        // When the server's lease ends, read from the server itself.
        let pttl: i64 = direct.cmd("PTTL").arg("timed").query().await.unwrap_or(-2);
        let pttl = if pttl > 0 { pttl } else {
            // The lock's key may carry a hash tag; find it.
            let keys: Vec<String> = direct.cmd("KEYS").arg("*timed*").query().await.unwrap();
            let lock_key = keys.iter().find(|k| !k.contains("fence")).expect("the lock key").clone();
            direct.cmd("PTTL").arg(&lock_key).query().await.unwrap()
        };
        let server_ends = Instant::now() + Duration::from_millis(pttl as u64);
        tokio::time::timeout(Duration::from_secs(5), guard.lost()).await.unwrap();
        let lost_at = Instant::now();
        assert!(
            lost_at <= server_ends + Duration::from_millis(20),
            "lost() fired {:?} after the server's lease ended",
            lost_at - server_ends
        );

        // extend() is timed from its send too.
        let guard = locks
            .acquire_with("timed2", LockOptions::new().lease(Duration::from_secs(5)).watchdog(false))
            .await
            .unwrap()
            .expect("the lock is free");
        assert!(guard.extend(lease).await.unwrap());
        let keys: Vec<String> = direct.cmd("KEYS").arg("*timed2*").query().await.unwrap();
        let lock_key = keys.iter().find(|k| !k.contains("fence")).expect("the lock key").clone();
        let pttl: i64 = direct.cmd("PTTL").arg(&lock_key).query().await.unwrap();
        let server_ends = Instant::now() + Duration::from_millis(pttl.max(0) as u64);
        tokio::time::timeout(Duration::from_secs(5), guard.lost()).await.unwrap();
        let lost_at = Instant::now();
        assert!(
            lost_at <= server_ends + Duration::from_millis(20),
            "after extend, lost() fired {:?} after the server's lease ended",
            lost_at - server_ends
        );
        proxy.set(Fault::Pass);
    }
}
