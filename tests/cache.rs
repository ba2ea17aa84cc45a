//! The cache-aside `Cache` against real servers: round trips with sub-second TTLs, single
//! flight in one process and the load lock across two, loader errors, negative caching,
//! invalidate/update/warm, early refresh, jitter, statistics and a Redis outage.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kermes::Client;
use kermes::cache::{Cache, CacheOptions, ClientCacheOptions, LoadError};
use kermes::prelude::*;
use kermes::testing::TestServer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
}

fn profile(id: u64) -> Profile {
    Profile {
        id,
        name: format!("user {id}"),
    }
}

#[derive(Debug, PartialEq)]
struct DbDown(String);

impl std::fmt::Display for DbDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database down: {}", self.0)
    }
}

impl std::error::Error for DbDown {}

const HOUR: Duration = Duration::from_secs(3600);
const CHILD_URL: &str = "KERMES_CACHE_TEST_CHILD_URL";

async fn pttl(client: &Client, key: &str) -> i64 {
    client.pttl(key).to().await.unwrap()
}

/// 500 concurrent misses of one key with the lock option, once both processes are ready;
/// the loader counts its calls in Redis and takes 500 ms.
async fn stampede_with_lock(url: &str) {
    let client = Client::connect(url).await.unwrap();
    let cache = Cache::new(
        &client,
        CacheOptions::new("two").lock(Duration::from_secs(5), Duration::from_secs(10)),
    )
    .unwrap();
    client.incr("ready").await.unwrap();
    common::wait_until_async(Duration::from_secs(30), "both processes ready", || async {
        client.get("ready").to::<Option<i64>>().await.unwrap() == Some(2)
    })
    .await;
    let calls = futures::future::join_all((0..500).map(|_| {
        let (cache, client) = (cache.clone(), client.clone());
        async move {
            cache
                .get_or_load("hot", HOUR, || async {
                    client.incr("loader-calls").await.unwrap();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Ok::<_, DbDown>(Some(profile(7)))
                })
                .await
                .unwrap()
        }
    }))
    .await;
    assert!(calls.iter().all(|p| p.as_ref() == Some(&profile(7))));
}

/// The second process of the two-process stampede test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the second process in the load lock calls the loader once across two processes"]
async fn cache_test_child_process() {
    let url = std::env::var(CHILD_URL)
        .expect("run by the_load_lock_calls_the_loader_once_across_two_processes");
    stampede_with_lock(&url).await;
}

server_tests! {
    async fn values_round_trip_with_sub_second_ttls(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p")).unwrap();
        cache.set("user:1:profile", &profile(1), Duration::from_millis(300)).await.unwrap();
        assert_eq!(cache.key("user:1:profile"), "p:user:1:profile");
        let left = pttl(&client, "p:user:1:profile").await;
        assert!(left > 0 && left <= 300, "PTTL {left}");
        assert_eq!(cache.get::<Profile>("user:1:profile").await.unwrap(), Some(profile(1)));
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(cache.get::<Profile>("user:1:profile").await.unwrap(), None);
        let err = cache.set("k", &1, Duration::from_micros(500)).await.unwrap_err();
        assert!(err.is_config(), "{err}");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.stores), (1, 1, 1), "{stats:?}");
    }

    async fn a_miss_loads_and_stores_and_the_next_read_hits(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p")).unwrap();
        let loads = AtomicUsize::new(0);
        for _ in 0..3 {
            let p: Option<Profile> = cache
                .get_or_load("user:2", HOUR, || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, DbDown>(Some(profile(2)))
                })
                .await
                .unwrap();
            assert_eq!(p, Some(profile(2)));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let left = pttl(&client, "p:user:2").await;
        assert!(left > 3_590_000 && left <= 3_600_000, "PTTL {left}");
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.loads, stats.stores), (2, 1, 1, 1), "{stats:?}");
        assert!((stats.hit_ratio() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(stats.load_latency.count, 1);
    }

    async fn concurrent_misses_in_one_process_call_the_loader_once(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p")).unwrap();
        let loads = Arc::new(AtomicUsize::new(0));
        let results = futures::future::join_all((0..500).map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            tokio::spawn(async move {
                cache
                    .get_or_load("hot", HOUR, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, DbDown>(Some(profile(3)))
                    })
                    .await
                    .unwrap()
            })
        }))
        .await;
        for r in results {
            assert_eq!(r.unwrap(), Some(profile(3)));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        let stats = cache.stats();
        assert_eq!(stats.loads, 1, "{stats:?}");
        assert!(stats.coalesced >= 400, "{stats:?}");
        assert!(stats.load_latency.p50 >= Duration::from_millis(200), "{stats:?}");
    }

    async fn a_loader_error_reaches_every_waiter_and_caches_nothing(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p").negative_ttl(HOUR)).unwrap();
        let loads = Arc::new(AtomicUsize::new(0));
        let results = futures::future::join_all((0..50).map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            async move {
                cache
                    .get_or_load("flaky", HOUR, || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err::<Option<Profile>, _>(DbDown("timeout".into()))
                    })
                    .await
            }
        }))
        .await;
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        for r in &results {
            match r {
                Err(LoadError::Loader(e)) => assert_eq!(**e, DbDown("timeout".into())),
                other => panic!("expected the loader's error, got {other:?}"),
            }
        }
        let err = results.into_iter().next().unwrap().unwrap_err();
        assert_eq!(err.to_string(), "the cache's loader failed: database down: timeout");
        assert_eq!(client.exists("p:flaky").await.unwrap(), 0, "nothing cached");
        assert_eq!(cache.stats().load_errors, 1);
        // The next read loads again, and succeeds.
        let p = cache
            .get_or_load("flaky", HOUR, || async { Ok::<_, DbDown>(Some(profile(4))) })
            .await
            .unwrap();
        assert_eq!(p, Some(profile(4)));
    }

    async fn not_found_is_cached_only_when_asked(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let plain = Cache::new(&client, CacheOptions::new("plain")).unwrap();
        let negative = Cache::new(
            &client,
            CacheOptions::new("neg").negative_ttl(Duration::from_millis(300)),
        )
        .unwrap();
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<Option<Profile>, DbDown>(None)
        };
        for _ in 0..3 {
            assert_eq!(plain.get_or_load("ghost", HOUR, load).await.unwrap(), None);
        }
        assert_eq!(loads.swap(0, Ordering::SeqCst), 3);
        for _ in 0..3 {
            assert_eq!(negative.get_or_load("ghost", HOUR, load).await.unwrap(), None);
        }
        assert_eq!(loads.swap(0, Ordering::SeqCst), 1);
        assert_eq!(negative.stats().negative_hits, 2);
        assert_eq!(negative.get::<Profile>("ghost").await.unwrap(), None);
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert_eq!(negative.get_or_load("ghost", HOUR, load).await.unwrap(), None);
        assert_eq!(loads.load(Ordering::SeqCst), 1, "loaded again once the negative entry expired");
    }

    async fn invalidate_update_and_warm(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p").warm_batch(500)).unwrap();
        let stored = cache
            .warm((0..1_200u64).map(|i| (format!("user:{i}"), profile(i))), HOUR)
            .await
            .unwrap();
        assert_eq!(stored, 1_200);
        for i in [0u64, 499, 500, 1_199] {
            assert_eq!(cache.get::<Profile>(&format!("user:{i}")).await.unwrap(), Some(profile(i)));
        }
        // The source changed: update keeps the remaining TTL.
        client.pexpire("p:user:1", 60_000).await.unwrap();
        let renamed = Profile { id: 1, name: "renamed".into() };
        assert!(cache.update("user:1", &renamed).await.unwrap());
        assert_eq!(cache.get::<Profile>("user:1").await.unwrap(), Some(renamed));
        let left = pttl(&client, "p:user:1").await;
        assert!(left > 50_000 && left <= 60_000, "PTTL {left}");
        assert!(!cache.update("user:absent", &profile(9)).await.unwrap());
        assert_eq!(client.exists("p:user:absent").await.unwrap(), 0);
        // Invalidated: the next read loads.
        assert_eq!(cache.invalidate(["user:1", "user:2", "user:none"]).await.unwrap(), 2);
        let loads = AtomicUsize::new(0);
        let p = cache
            .get_or_load("user:1", HOUR, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, DbDown>(Some(profile(100)))
            })
            .await
            .unwrap();
        assert_eq!((p, loads.load(Ordering::SeqCst)), (Some(profile(100)), 1));
    }

    async fn an_invalidation_during_a_load_keeps_its_result_out(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p")).unwrap();
        let loading = {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load("user:5", HOUR, || async {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, DbDown>(Some(profile(5)))
                    })
                    .await
                    .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        cache.invalidate(["user:5"]).await.unwrap();
        assert_eq!(loading.await.unwrap(), Some(profile(5)), "the caller still gets what it loaded");
        assert_eq!(client.exists("p:user:5").await.unwrap(), 0, "read before the change: not stored");
    }

    async fn early_refresh_reloads_before_expiry_once(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        // A factor this large refreshes on nearly every read: the point is that concurrent
        // readers keep the value and only one of them loads.
        let cache = Cache::new(&client, CacheOptions::new("p").early_refresh(10_000.0)).unwrap();
        let loads = Arc::new(AtomicUsize::new(0));
        let load = |loads: Arc<AtomicUsize>| async move {
            let n = loads.fetch_add(1, Ordering::SeqCst) as u64;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok::<_, DbDown>(Some(profile(n)))
        };
        let first = cache
            .get_or_load("warm", Duration::from_secs(60), || load(loads.clone()))
            .await
            .unwrap();
        assert_eq!(first, Some(profile(0)));
        let reads = futures::future::join_all((0..50).map(|_| {
            let (cache, loads) = (cache.clone(), loads.clone());
            async move {
                cache
                    .get_or_load("warm", Duration::from_secs(60), || load(loads))
                    .await
                    .unwrap()
            }
        }))
        .await;
        assert!(reads.iter().all(Option::is_some));
        assert_eq!(loads.load(Ordering::SeqCst), 2, "one refresh for 50 concurrent readers");
        let stats = cache.stats();
        assert!(stats.early_refreshes >= 1, "{stats:?}");
        assert_eq!(cache.get::<Profile>("warm").await.unwrap(), Some(profile(1)));
    }

    async fn jitter_spreads_ttls(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("j").jitter(0.5)).unwrap();
        let ttl = Duration::from_secs(100);
        cache.warm((0..200).map(|i| (i.to_string(), i)), ttl).await.unwrap();
        let mut left = Vec::new();
        for i in 0..200 {
            left.push(pttl(&client, &format!("j:{i}")).await);
        }
        let (min, max) = (*left.iter().min().unwrap(), *left.iter().max().unwrap());
        assert!(min >= 49_000 && max <= 150_000, "{min}..{max}");
        assert!(min < 80_000 && max > 120_000, "spread too narrow: {min}..{max}");
    }

    async fn with_redis_down_the_loader_answers(kind) {
        let mut server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p")).unwrap();
        server.kill();
        let p = cache
            .get_or_load("user:6", HOUR, || async { Ok::<_, DbDown>(Some(profile(6))) })
            .await
            .unwrap();
        assert_eq!(p, Some(profile(6)));
        let stats = cache.stats();
        assert!(stats.redis_errors >= 2, "the read and the store failed: {stats:?}");
        assert_eq!(stats.loads, 1);
    }

    async fn over_a_client_side_cache_hot_keys_are_read_locally(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder()
            .url(&server.url())
            .client_cache(ClientCacheOptions::new())
            .connect()
            .await
            .unwrap();
        let cache = Cache::new(&client, CacheOptions::new("p")).unwrap();
        for _ in 0..10 {
            let p = cache
                .get_or_load("user:8", HOUR, || async { Ok::<_, DbDown>(Some(profile(8))) })
                .await
                .unwrap();
            assert_eq!(p, Some(profile(8)));
        }
        // The first read misses, and the store's invalidation (which reaches the process
        // after its reply, maybe on the other connection) can cost a read or two more.
        let stats = client.client_cache_stats().unwrap();
        assert!(stats.hits >= 6, "{stats:?}");
        cache.invalidate(["user:8"]).await.unwrap();
        let p = cache
            .get_or_load("user:8", HOUR, || async { Ok::<_, DbDown>(Some(profile(80))) })
            .await
            .unwrap();
        assert_eq!(p, Some(profile(80)));
    }

    async fn the_load_lock_calls_the_loader_once_across_two_processes(kind) {
        let server = TestServer::start(kind);
        let url = server.url();
        let child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["cache_test_child_process", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_URL, &url)
            .kill_on_drop(true)
            .status();
        let (status, ()) = tokio::join!(child, stampede_with_lock(&url));
        assert!(status.unwrap().success(), "the second process failed");
        let client = Client::connect(&url).await.unwrap();
        let calls: i64 = client.get("loader-calls").to().await.unwrap();
        assert_eq!(calls, 1, "1,000 misses in two processes");
    }
}
