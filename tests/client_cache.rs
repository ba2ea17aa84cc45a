//! The client-side cache (RESP3 tracking) against real servers: hits without the network,
//! freshness under concurrent writers, invalidation after reconnects, FLUSHALL, restarts
//! and expiry, the byte and entry bounds, and each tracking mode.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{eventually, wait_until};
use futures::StreamExt;
use kermes::cache::{ClientCacheOptions, TrackingMode};
use kermes::prelude::*;
use kermes::testing::TestServer;
use kermes::{Client, ConnectionEvent, Protocol};

async fn cached(server: &TestServer, options: ClientCacheOptions) -> Client {
    Client::builder()
        .url(&server.url())
        .client_name("cached")
        .shared_connections(1)
        .client_cache(options)
        .connect()
        .await
        .unwrap()
}

/// A cached client with the default connections: one per worker thread (two here).
async fn per_worker(server: &TestServer) -> Client {
    Client::builder()
        .url(&server.url())
        .client_cache(ClientCacheOptions::new())
        .connect()
        .await
        .unwrap()
}

async fn get(client: &Client, key: &str) -> Option<String> {
    client.get(key).to().await.unwrap()
}

/// Waits until reading `key` through `client` gives `expected`.
async fn reads_as(client: &Client, key: &str, expected: Option<&str>, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let v = get(client, key).await;
        if v.as_deref() == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} still reads {v:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The ids of the connections named `name`.
async fn ids_named(admin: &Client, name: &str) -> Vec<i64> {
    let list: String = admin.cmd("CLIENT").arg("LIST").query().await.unwrap();
    list.lines()
        .filter(|l| l.split(' ').any(|f| f == format!("name={name}")))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .map(|id| id.parse().unwrap())
        .collect()
}

server_tests! {
    async fn a_second_read_is_a_hit_and_a_write_elsewhere_invalidates_it(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        let other = Client::connect(&server.url()).await.unwrap();
        other.set("k", "v1").await.unwrap();
        assert_eq!(get(&client, "k").await.as_deref(), Some("v1"));
        assert_eq!(get(&client, "k").await.as_deref(), Some("v1"));
        let stats = client.client_cache_stats().unwrap();
        assert_eq!((stats.misses, stats.hits, stats.entries), (1, 1, 1), "{stats:?}");
        // The hit did not reach the server: it ran one GET.
        let info: String = other.cmd("INFO").arg("commandstats").query().await.unwrap();
        assert!(info.contains("cmdstat_get:calls=1,"), "{info}");

        other.set("k", "v2").await.unwrap();
        reads_as(&client, "k", Some("v2"), Duration::from_secs(2)).await;
        assert!(client.client_cache_stats().unwrap().invalidations >= 1);
    }

    async fn the_clients_own_writes_are_read_back_at_once(kind) {
        let server = TestServer::start(kind);
        let client = per_worker(&server).await;
        for i in 0..300 {
            client.set("mine", i).await.unwrap();
            let read: i64 = client.get("mine").to().await.unwrap();
            assert_eq!(read, i);
            let again: i64 = client.get("mine").to().await.unwrap();
            assert_eq!(again, i);
            client.hset("h", ("f", i)).await.unwrap();
            let f: i64 = client.hget("h", "f").to().await.unwrap();
            assert_eq!(f, i);
        }
        let stats = client.client_cache_stats().unwrap();
        // The server's own invalidation of each write arrives after its reply and may refuse the
        // next read's reply (a miss, never a stale value): some reads are hits, not all.
        assert!(stats.hits >= 100, "{stats:?}");
    }

    async fn under_concurrent_writers_no_stale_entry_survives(kind) {
        const KEYS: usize = 100;
        let server = TestServer::start(kind);
        // One shared connection per worker (two): invalidations come on both.
        let client = per_worker(&server).await;
        let writer = Client::connect(&server.url()).await.unwrap();
        for k in 0..KEYS {
            writer.set(format!("hot:{k}"), 0).await.unwrap();
        }
        // The newest version of each key whose SET has returned.
        let written: Arc<Vec<AtomicU64>> = Arc::new((0..KEYS).map(|_| AtomicU64::new(0)).collect());
        let stop = Arc::new(AtomicBool::new(false));
        let stale_reads = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for w in 0..2u64 {
            let (writer, written, stop) = (writer.clone(), written.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                // Each writer owns half of the keys, so a key's versions only grow.
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let k = (n * 2 + w as usize) % KEYS;
                    let v = written[k].load(Ordering::SeqCst) + 1;
                    writer.set(format!("hot:{k}"), v).await.unwrap();
                    written[k].store(v, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            }));
        }
        for r in 0..8usize {
            let (client, written, stop) = (client.clone(), written.clone(), stop.clone());
            let (stale_reads, reads) = (stale_reads.clone(), reads.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = r;
                while !stop.load(Ordering::Relaxed) {
                    let k = i % KEYS;
                    i += 1;
                    let floor = written[k].load(Ordering::SeqCst);
                    let v: u64 = client.get(format!("hot:{k}")).to().await.unwrap();
                    reads.fetch_add(1, Ordering::Relaxed);
                    if v < floor {
                        stale_reads.fetch_add(1, Ordering::Relaxed);
                    }
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut stale_entries = 0;
        for k in 0..KEYS {
            let cached_value: u64 = client.get(format!("hot:{k}")).to().await.unwrap();
            let server_value: u64 = writer.get(format!("hot:{k}")).to().await.unwrap();
            if cached_value != server_value {
                stale_entries += 1;
            }
        }
        let stats = client.client_cache_stats().unwrap();
        eprintln!(
            "{kind:?}: {} reads, {} stale (older than a write acknowledged before the read \
             began: its invalidation was still on its way), {stats:?}",
            reads.load(Ordering::Relaxed),
            stale_reads.load(Ordering::Relaxed),
        );
        assert_eq!(stale_entries, 0, "cached values differ from the server's after the writers stopped");
        assert!(stats.hits > 0 && stats.invalidations > 0, "{stats:?}");
    }

    async fn a_killed_connection_flushes_the_cache_and_tracks_again(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.set("k", "before").await.unwrap();
        assert_eq!(get(&client, "k").await.as_deref(), Some("before"));
        let mut events = client.events();
        let ids = ids_named(&admin, "cached").await;
        assert_eq!(ids.len(), 1);
        admin.cmd("CLIENT").arg("KILL").arg("ID").arg(ids[0]).exec().await.unwrap();
        // Written while the cached connection is down: its invalidation goes nowhere.
        admin.set("k", "while-down").await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !matches!(events.next().await, Some(ConnectionEvent::Reconnected { .. })) {}
        })
        .await
        .expect("reconnected");
        assert_eq!(get(&client, "k").await.as_deref(), Some("while-down"));
        assert!(client.client_cache_stats().unwrap().flushes >= 1);
        // Tracking is on again on the new connection.
        let info: Vec<kermes::Value> = client.cmd("CLIENT").arg("TRACKINGINFO").query().await.unwrap();
        assert!(format!("{info:?}").contains("on"), "{info:?}");
        assert_eq!(get(&client, "k").await.as_deref(), Some("while-down"));
        admin.set("k", "after").await.unwrap();
        reads_as(&client, "k", Some("after"), Duration::from_secs(2)).await;
    }

    async fn flushall_empties_the_cache(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.set("a", "1").await.unwrap();
        admin.set("b", "2").await.unwrap();
        assert_eq!(get(&client, "a").await.as_deref(), Some("1"));
        assert_eq!(get(&client, "b").await.as_deref(), Some("2"));
        assert_eq!(client.client_cache_stats().unwrap().entries, 2);
        admin.cmd("FLUSHALL").exec().await.unwrap();
        wait_until(Duration::from_secs(2), "the null invalidation arrived", || {
            client.client_cache_stats().unwrap().entries == 0
        })
        .await;
        assert_eq!(get(&client, "a").await, None);
        assert_eq!(get(&client, "b").await, None);
    }

    async fn a_server_restart_flushes_the_cache(kind) {
        let mut server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        client.set("k", "old").await.unwrap();
        assert_eq!(get(&client, "k").await.as_deref(), Some("old"));
        assert_eq!(get(&client, "k").await.as_deref(), Some("old"));
        server.kill();
        server.restart();
        let fresh = Client::connect(&server.url()).await.unwrap();
        fresh.set("k", "new").await.unwrap();
        let v: Option<String> = eventually(Duration::from_secs(10), || client.get("k").to()).await;
        assert_eq!(v.as_deref(), Some("new"));
        assert!(client.client_cache_stats().unwrap().flushes >= 1);
    }

    async fn an_expired_key_is_not_served(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.cmd("SET").arg("short").arg("v").arg("PX").arg(300).exec().await.unwrap();
        assert_eq!(get(&client, "short").await.as_deref(), Some("v"));
        assert_eq!(get(&client, "short").await.as_deref(), Some("v"));
        // The server expires it (actively, within its cycle) and invalidates it.
        reads_as(&client, "short", None, Duration::from_secs(3)).await;
    }

    async fn the_byte_bound_holds(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new().max_bytes(1 << 20)).await;
        let value = "x".repeat(1024);
        let pipe = client.pipeline();
        for i in 0..10_000 {
            pipe.cmd(kermes::cmd("SET").arg(format!("big:{i}")).arg(&value));
        }
        pipe.run().await.unwrap();
        let mut peak = 0;
        for i in 0..10_000 {
            let v: String = client.get(format!("big:{i}")).to().await.unwrap();
            assert_eq!(v.len(), 1024);
            if i % 100 == 0 {
                peak = peak.max(client.client_cache_stats().unwrap().bytes);
            }
        }
        let stats = client.client_cache_stats().unwrap();
        peak = peak.max(stats.bytes);
        assert!(peak <= 1 << 20, "{peak} bytes cached: {stats:?}");
        assert!(stats.entries > 100 && stats.entries < 1024, "{stats:?}");
        assert!(stats.evictions > 8_000, "{stats:?}");
    }

    async fn the_entry_bound_holds(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new().max_entries(100)).await;
        for i in 0..1_000 {
            client.set(format!("n:{i}"), i).await.unwrap();
            let _: i64 = client.get(format!("n:{i}")).to().await.unwrap();
        }
        let stats = client.client_cache_stats().unwrap();
        assert!(stats.entries <= 100 && stats.entries > 10, "{stats:?}");
    }

    async fn the_ttl_cap_ends_an_entry(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new().ttl(Duration::from_millis(200))).await;
        client.set("k", "v").await.unwrap();
        get(&client, "k").await;
        get(&client, "k").await;
        assert_eq!(client.client_cache_stats().unwrap().hits, 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        get(&client, "k").await;
        let stats = client.client_cache_stats().unwrap();
        assert_eq!((stats.hits, stats.misses, stats.expired), (1, 2, 1), "{stats:?}");
    }

    async fn replies_that_change_by_themselves_are_never_cached(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        client.sadd("s", ["a", "b", "c"]).await.unwrap();
        client.cmd("SET").arg("t").arg("v").arg("EX").arg(100).exec().await.unwrap();
        for _ in 0..5 {
            let _: Option<String> = client.srandmember("s").to().await.unwrap();
            let _: i64 = client.ttl("t").to().await.unwrap();
            let _: kermes::Value = client.cmd("TIME").query().await.unwrap();
            let _: kermes::Value = client.cmd("RANDOMKEY").query().await.unwrap();
        }
        let stats = client.client_cache_stats().unwrap();
        assert_eq!((stats.hits, stats.misses, stats.entries), (0, 0, 0), "{stats:?}");
    }

    async fn opt_in_mode_tracks_only_what_it_caches(kind) {
        let server = TestServer::start(kind);
        let client = cached(
            &server,
            ClientCacheOptions::new()
                .mode(TrackingMode::OptIn)
                .filter(|k| k.starts_with(b"hot:")),
        )
        .await;
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.set("hot:1", "a").await.unwrap();
        admin.set("cold:1", "b").await.unwrap();
        assert_eq!(get(&client, "hot:1").await.as_deref(), Some("a"));
        assert_eq!(get(&client, "hot:1").await.as_deref(), Some("a"));
        assert_eq!(get(&client, "cold:1").await.as_deref(), Some("b"));
        assert_eq!(get(&client, "cold:1").await.as_deref(), Some("b"));
        let stats = client.client_cache_stats().unwrap();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 1, 1), "{stats:?}");
        admin.set("hot:1", "a2").await.unwrap();
        reads_as(&client, "hot:1", Some("a2"), Duration::from_secs(2)).await;
    }

    async fn broadcast_mode_caches_keys_under_its_prefixes(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new().broadcast(["user:"])).await;
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.set("user:1", "ann").await.unwrap();
        admin.set("other", "x").await.unwrap();
        for _ in 0..3 {
            assert_eq!(get(&client, "user:1").await.as_deref(), Some("ann"));
            assert_eq!(get(&client, "other").await.as_deref(), Some("x"));
        }
        let stats = client.client_cache_stats().unwrap();
        assert_eq!((stats.hits, stats.misses), (2, 1), "{stats:?}");
        admin.set("user:1", "bob").await.unwrap();
        reads_as(&client, "user:1", Some("bob"), Duration::from_secs(2)).await;
    }

    async fn resp2_is_refused_with_a_clear_error(kind) {
        let server = TestServer::start(kind);
        let err = Client::builder()
            .url(&server.url())
            .protocol(Protocol::Resp2)
            .client_cache(ClientCacheOptions::new())
            .connect()
            .await
            .unwrap_err();
        assert!(err.is_config(), "{err}");
        assert!(err.to_string().contains("RESP3"), "{err}");
    }

    async fn writes_in_transactions_reach_the_cache_through_the_server(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        client.set("k", "1").await.unwrap();
        assert_eq!(get(&client, "k").await.as_deref(), Some("1"));
        let tx = client.transaction();
        tx.cmd(kermes::cmd("SET").arg("k").arg("2"));
        tx.run().await.unwrap();
        reads_as(&client, "k", Some("2"), Duration::from_secs(2)).await;
    }
}

server_tests! {
    async fn mget_is_answered_per_key_from_the_cache(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new()).await;
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.mset([("a", "1"), ("b", "2")]).await.unwrap();
        assert_eq!(get(&client, "a").await.as_deref(), Some("1"));
        // a from the cache, b and the missing c from the server.
        let v: Vec<Option<String>> = client.mget(["a", "b", "c"]).to().await.unwrap();
        assert_eq!(v, [Some("1".into()), Some("2".into()), None]);
        let before: String = admin.cmd("INFO").arg("commandstats").query().await.unwrap();
        let v: Vec<Option<String>> = client.mget(["b", "a"]).to().await.unwrap();
        assert_eq!(v, [Some("2".into()), Some("1".into())]);
        let after: String = admin.cmd("INFO").arg("commandstats").query().await.unwrap();
        let mget_calls = |info: &str| info.lines().find(|l| l.starts_with("cmdstat_mget:")).map(str::to_string);
        assert_eq!(mget_calls(&before), mget_calls(&after), "answered without the server");
        admin.set("b", "3").await.unwrap();
        reads_as(&client, "b", Some("3"), Duration::from_secs(2)).await;
        let v: Vec<Option<String>> = client.mget(["a", "b"]).to().await.unwrap();
        assert_eq!(v, [Some("1".into()), Some("3".into())]);
    }
}

server_tests! {
    async fn pipelines_and_transactions_read_their_own_writes(kind) {
        let server = TestServer::start(kind);
        let client = per_worker(&server).await;
        client.set("k", 0).await.unwrap();
        for i in 1..=100 {
            let _: i64 = client.get("k").to().await.unwrap();
            let _: i64 = client.get("k").to().await.unwrap();
            let pipe = client.pipeline();
            pipe.cmd(kermes::cmd("SET").arg("k").arg(2 * i - 1));
            pipe.run().await.unwrap();
            let read: i64 = client.get("k").to().await.unwrap();
            assert_eq!(read, 2 * i - 1, "after a pipeline");
            let _: i64 = client.get("k").to().await.unwrap();
            let tx = client.transaction();
            tx.cmd(kermes::cmd("SET").arg("k").arg(2 * i));
            tx.run().await.unwrap();
            let read: i64 = client.get("k").to().await.unwrap();
            assert_eq!(read, 2 * i, "after a transaction");
        }
    }
}

server_tests! {
    async fn in_opt_in_mode_mget_never_caches_untracked_keys(kind) {
        let server = TestServer::start(kind);
        let client = cached(&server, ClientCacheOptions::new().mode(TrackingMode::OptIn)).await;
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.set("m", "1").await.unwrap();
        for _ in 0..2 {
            let v: Vec<Option<String>> = client.mget(["m"]).to().await.unwrap();
            assert_eq!(v, [Some("1".into())]);
        }
        admin.set("m", "2").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A plain MGET is not tracked in OPTIN mode: nothing may have been kept from it.
        let v: Vec<Option<String>> = client.mget(["m"]).to().await.unwrap();
        assert_eq!(v, [Some("2".into())]);
        reads_as(&client, "m", Some("2"), Duration::from_secs(2)).await;
    }
}
