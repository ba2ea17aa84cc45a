//! Sentinel against real processes: a master, a replica and three sentinels of each server
//! kind (`redis-server --sentinel` / `valkey-server --sentinel`). Discovery, a dead sentinel
//! skipped, failovers followed by every connection kind with nothing replayed, replica reads.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::eventually;
use futures::StreamExt;
use kermes::prelude::*;
use kermes::pubsub::Event;
use kermes::testing::{MASTER_NAME, SentinelSet};
use kermes::{Client, Value, cmd};
use tokio::time::Instant;

/// The port of the server a client's shared connection is on.
async fn serving_port(client: &Client) -> u16 {
    try_serving_port(client).await.unwrap()
}

/// The same, or the error of the moment (during a failover).
async fn try_serving_port(client: &Client) -> kermes::Result<u16> {
    let info: String = client.cmd("INFO").arg("server").query().await?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("tcp_port:"))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no tcp_port in {info}")))
}

/// How many GETs a server has run, from INFO commandstats on a connection of its own.
async fn gets_served(port: u16) -> u64 {
    let direct = Client::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    let stats: String = direct
        .cmd("INFO")
        .arg("commandstats")
        .query()
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

server_tests! {
    async fn the_master_is_found_through_the_sentinels_and_a_dead_sentinel_is_skipped(kind) {
        let mut set = SentinelSet::start(kind);
        // The first sentinel of the URL is down: the next one answers.
        set.kill_sentinel(0);
        let client = Client::connect(&set.url()).await.unwrap();
        client.set("k", "v").await.unwrap();
        assert_eq!(serving_port(&client).await, set.master.port());
        // The SENTINEL commands, on a sentinel connection.
        let sentinel = client.sentinel().await.unwrap();
        let addr: Vec<String> = sentinel.query(cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME)).await.unwrap();
        assert_eq!(addr[1], set.master.port().to_string());
        let masters: Value = sentinel.query(cmd("SENTINEL").arg("MASTERS")).await.unwrap();
        assert!(format!("{masters:?}").contains(MASTER_NAME), "{masters:?}");
        assert_eq!(sentinel.sentinel_myid().await.unwrap().len(), 40);
        // The same, typed (Redis 7.0's sentinel knows only the MASTER names).
        #[allow(deprecated)]
        let (found, unknown, masters, master) = (
            sentinel.sentinel_get_master_addr_by_name(MASTER_NAME).await.unwrap(),
            sentinel.sentinel_get_master_addr_by_name("nosuchmaster").await.unwrap(),
            sentinel.sentinel_masters().await.unwrap(),
            sentinel.sentinel_master(MASTER_NAME).await.unwrap(),
        );
        assert_eq!(found, Some(("127.0.0.1".to_string(), set.master.port())));
        assert!(unknown.is_none());
        assert_eq!(masters[0]["name"], MASTER_NAME);
        assert_eq!(master["port"], set.master.port().to_string());
        let replicas = sentinel.sentinel_replicas(MASTER_NAME).await.unwrap();
        assert!(replicas.iter().all(|r| r.contains_key("ip")), "{replicas:?}");
        let others = sentinel.sentinel_sentinels(MASTER_NAME).await.unwrap();
        assert!(others.iter().all(|r| r.contains_key("runid")), "{others:?}");
        // A wrong master name is a clear error.
        let url = set.url().replace(&format!("/{MASTER_NAME}"), "/nosuchmaster");
        let err = Client::builder()
            .url(&url)
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
            .unwrap_err();
        assert!(err.is_connect() && err.to_string().contains("nosuchmaster"), "{err}");
    }

    async fn a_killed_master_is_followed_and_no_increment_is_replayed(kind) {
        let mut set = SentinelSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let (acked, unknown, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let killed_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
        let first_after: Arc<std::sync::Mutex<Option<Duration>>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (client, acked, unknown, failed, killed_at, first_after, stop) = (
                    client.clone(), acked.clone(), unknown.clone(), failed.clone(),
                    killed_at.clone(), first_after.clone(), stop.clone(),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        // INCR, then WAIT on the same connection: acknowledged only once a
                        // replica has it (replication is asynchronous).
                        let pipe = client.pipeline();
                        pipe.incr("counter");
                        pipe.cmd(cmd("WAIT").arg(1).arg(100));
                        let started = Instant::now();
                        let result = pipe.run().await;
                        // Sent after the old master's process was gone: it ran on the new one.
                        if let (Ok(r), Some(at)) = (&result, *killed_at.lock().unwrap())
                            && r[0].is_ok()
                            && started > at
                        {
                            first_after.lock().unwrap().get_or_insert(at.elapsed());
                        }
                        match result {
                            Ok(r) if matches!((&r[0], &r[1]), (Ok(_), Ok(Value::Int(n))) if *n >= 1) => {
                                acked.fetch_add(1, Ordering::Relaxed);
                            }
                            // The INCR was refused (the server said so): it did not run.
                            Ok(r) if r[0].is_err() => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                            // It may or may not have run, or ran without reaching a replica
                            // (after the failover the new master has none).
                            Ok(_) | Err(_) => {
                                unknown.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(acked.load(Ordering::Relaxed) > 0, "no increment acknowledged before the kill");
        let old = set.master.port();
        set.master.kill();
        *killed_at.lock().unwrap() = Some(Instant::now());
        let new = set.wait_for_new_master(old, Duration::from_secs(30)).unwrap();
        assert_eq!(new, set.replica.port());
        // No action from the user: the client follows the new master by itself. (The old
        // master stays down: bringing it back empty this soon can make the sentinels sync
        // the promoted replica from it, which loses acknowledged writes server-side.)
        let deadline = Instant::now() + Duration::from_secs(30);
        while first_after.lock().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no increment succeeded on the new master");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let took = first_after.lock().unwrap().unwrap();
        eprintln!("{kind:?}: from kill -9 of the master to the first increment on the new one: {took:?}");
        let (acked, unknown, failed) = (acked.load(Ordering::Relaxed), unknown.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        let counter: i64 = eventually(Duration::from_secs(10), || client.get("counter").to::<Option<i64>>())
            .await
            .unwrap_or(0);
        eprintln!("{kind:?}: counter {counter}, acknowledged {acked}, unknown {unknown}, refused {failed}");
        assert!(counter as u64 >= acked, "an acknowledged increment was lost: {counter} < {acked}");
        assert!(counter as u64 <= acked + unknown, "an increment ran twice: {counter} > {acked} + {unknown}");
        assert_eq!(serving_port(&client).await, new);
    }

    async fn a_graceful_failover_moves_subscribers_and_commands(kind) {
        let set = SentinelSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let mut events = client.events();
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("news").await.unwrap();
        assert_eq!(client.publish("news", "before").await.unwrap(), 1);
        let first = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        assert!(matches!(first, Event::Message(_)), "{first:?}");
        let old = set.master.port();
        let sentinel = client.sentinel().await.unwrap();
        sentinel.sentinel_failover(MASTER_NAME).await.unwrap();
        let new = set.wait_for_new_master(old, Duration::from_secs(30)).unwrap();
        // The subscriber moves, says so, and receives on the new master.
        let event = tokio::time::timeout(Duration::from_secs(20), sub.next()).await.unwrap().unwrap();
        assert_eq!(event, Event::Reconnected);
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.publish("news", "after").await.unwrap_or(0) == 0 {
            assert!(Instant::now() < deadline, "the subscriber never resubscribed on the new master");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let Event::Message(m) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap() else {
            panic!("expected a message")
        };
        assert_eq!(m.payload_as::<String>().unwrap(), "after");
        assert_eq!(serving_port(&client).await, new);
        // The shared connection reported its move.
        let mut moved = false;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(100), events.next()).await {
            if let kermes::ConnectionEvent::Reconnected { addr, .. } = e {
                moved |= addr.to_string().ends_with(&format!(":{new}"));
            }
        }
        assert!(moved, "no Reconnected event to the new master");
        // Writes go to the new master.
        client.set("after-failover", 1).await.unwrap();
    }

    async fn read_only_commands_go_to_a_replica_when_asked(kind) {
        let mut set = SentinelSet::start(kind);
        let url = format!("{}?read_from=replica", set.url());
        let client = Client::connect(&url).await.unwrap();
        // SET and WAIT on one connection: WAIT waits for that connection's writes.
        let pipe = client.pipeline();
        pipe.set("k", "v");
        pipe.cmd(cmd("WAIT").arg(1).arg(2000));
        let (_, replicas): ((), i64) = pipe.query().await.unwrap();
        assert_eq!(replicas, 1);
        let (master_before, replica_before) = (gets_served(set.master.port()).await, gets_served(set.replica.port()).await);
        for _ in 0..10 {
            let v: Option<String> = client.get("k").to().await.unwrap();
            assert_eq!(v.as_deref(), Some("v"));
        }
        assert_eq!(gets_served(set.replica.port()).await - replica_before, 10);
        assert_eq!(gets_served(set.master.port()).await, master_before);
        // Writes still go to the master.
        client.set("k2", "v2").await.unwrap();

        // PreferReplica falls back to the master when no replica answers.
        let prefer = Client::connect(&format!("{}?read_from=prefer_replica", set.url())).await.unwrap();
        set.replica.kill();
        let v: Option<String> = eventually(Duration::from_secs(10), || prefer.get("k").to()).await;
        assert_eq!(v.as_deref(), Some("v"));
    }

    async fn sentinels_learned_from_the_first_one_carry_on_when_it_dies(kind) {
        let mut set = SentinelSet::start(kind);
        let ports = set.sentinel_ports();
        // The client is told about one sentinel only; it learns of the other two from it.
        let client = Client::connect(&format!("redis+sentinel://127.0.0.1:{}/{MASTER_NAME}", ports[0]))
            .await
            .unwrap();
        client.set("k", "v").await.unwrap();
        set.kill_sentinel(0);
        let old = set.master.port();
        let other = kermes::sentinel::SentinelClient::connect(&format!("redis://127.0.0.1:{}", ports[1]))
            .await
            .unwrap();
        other.sentinel_failover(MASTER_NAME).await.unwrap();
        let new = set.wait_for_new_master(old, Duration::from_secs(30)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while try_serving_port(&client).await.ok() != Some(new) {
            assert!(Instant::now() < deadline, "the client did not follow the failover");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.set("after", 1).await.unwrap();
    }
}
