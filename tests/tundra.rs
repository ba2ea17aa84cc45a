//! Tundra against real servers: every Redis type through the disk store and an S3 store
//! (moto), writes racing replication, a worker process killed mid-run, 1,000 evicted keys
//! restored with their TTLs, keys in neither place.

#[macro_use]
mod common;
#[cfg(feature = "object-store")]
#[path = "common/moto.rs"]
mod moto;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use kermes::Client;
use kermes::mq::{self, WorkerOptions};
use kermes::prelude::*;
use kermes::testing::TestServer;
use kermes::tundra::{DataStore, DiskStore, Ensured, StoreError, Tundra, TundraOptions};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc};

const CHILD_URL: &str = "KERMES_TUNDRA_TEST_CHILD_URL";
const CHILD_DIR: &str = "KERMES_TUNDRA_TEST_CHILD_DIR";

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kermes-tundra-test-{:016x}", rand_u64()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

async fn start(kind: kermes::testing::ServerKind) -> (TestServer, Client, PathBuf) {
    let server = TestServer::start(kind);
    let client = Client::connect(&server.url()).await.unwrap();
    (server, client, temp_dir())
}

fn disk_tundra(
    client: &Client,
    dir: &std::path::Path,
    name: &str,
    ttl: Duration,
) -> Tundra<DiskStore> {
    let options = TundraOptions::new().name(name).redis_ttl(Some(ttl));
    Tundra::new(client, DiskStore::new(dir).unwrap(), options).unwrap()
}

async fn dump(client: &Client, key: &str) -> Option<Bytes> {
    client.cmd("DUMP").arg(key).query().await.unwrap()
}

/// What a key holds, comparable across a DUMP/RESTORE: the DUMP, except for a set, whose
/// members a hashtable-encoded set (Redis 7.0) may dump in another order once restored.
async fn content(client: &Client, key: &str) -> Vec<u8> {
    let kind: String = client.cmd("TYPE").arg(key).query().await.unwrap();
    if kind == "set" {
        let mut members: Vec<Bytes> = client.cmd("SMEMBERS").arg(key).query().await.unwrap();
        members.sort();
        return members.concat();
    }
    dump(client, key).await.expect("exists").to_vec()
}

async fn exists(client: &Client, key: &str) -> bool {
    client.cmd("EXISTS").arg(key).query::<i64>().await.unwrap() == 1
}

async fn pexpiretime(client: &Client, key: &str) -> i64 {
    client.cmd("PEXPIRETIME").arg(key).query().await.unwrap()
}

async fn pttl(client: &Client, key: &str) -> i64 {
    client.cmd("PTTL").arg(key).query().await.unwrap()
}

/// Waits until none of `keys` is in Redis any more (Tundra's TTL ran out).
async fn wait_evicted(client: &Client, keys: &[String], within: Duration) {
    common::wait_until_async(within, "replicated keys expired from Redis", || async {
        let n: i64 = client.cmd("EXISTS").arg(keys).query().await.unwrap();
        n == 0
    })
    .await;
}

/// One key of every type, prefixed.
async fn write_every_type(client: &Client, prefix: &str) -> Vec<String> {
    let k = |t: &str| format!("{prefix}:{t}");
    client
        .set(k("string"), Bytes::from_static(b"\x00binary\xff"))
        .await
        .unwrap();
    client
        .hset(k("hash"), [("a", "1"), ("b", "2")])
        .await
        .unwrap();
    client.rpush(k("list"), ["x", "y", "z"]).await.unwrap();
    client.sadd(k("set"), ["m1", "m2"]).await.unwrap();
    client
        .cmd("ZADD")
        .arg(k("zset"))
        .arg(["1.5", "one", "2", "two"])
        .query::<i64>()
        .await
        .unwrap();
    client
        .cmd("XADD")
        .arg(k("stream"))
        .arg(["*", "f", "v"])
        .query::<String>()
        .await
        .unwrap();
    ["string", "hash", "list", "set", "zset", "stream"]
        .iter()
        .map(|t| k(t))
        .collect()
}

/// The round trip through one store: replicate every type, let the keys expire, ensure
/// them back, compare their DUMPs.
async fn every_type_round_trips<S: DataStore>(client: &Client, store: S, name: &str) {
    let keys = write_every_type(client, name).await;
    let mut before = Vec::new();
    for k in &keys {
        before.push(content(client, k).await);
    }
    let tundra = Tundra::new(
        client,
        store,
        TundraOptions::new()
            .name(name)
            .redis_ttl(Some(Duration::from_millis(300))),
    )
    .unwrap();
    let worker = tundra
        .worker(WorkerOptions::new().concurrency(4))
        .await
        .unwrap();
    assert_eq!(tundra.dirty(&keys).await.unwrap(), keys.len());
    wait_evicted(client, &keys, Duration::from_secs(20)).await;
    let ensured = tundra.ensure(&keys).await.unwrap();
    assert_eq!(ensured, vec![Ensured::Restored; keys.len()], "{name}");
    for (k, b) in keys.iter().zip(&before) {
        assert_eq!(
            &content(client, k).await,
            b,
            "{name}: {k} came back changed"
        );
    }
    assert_eq!(
        tundra.ensure(&keys).await.unwrap(),
        vec![Ensured::Present; keys.len()]
    );
    let stats = worker.stop().await.unwrap();
    assert_eq!(stats.succeeded, keys.len() as u64, "{stats:?}");
}

/// The store contract Tundra rests on: the highest generation wins whatever order puts
/// land in; absent keys are None; delete forgets.
async fn store_keeps_the_newest<S: DataStore>(store: &S) {
    let k = Bytes::from_static(b"Contract/{odd}\x00key");
    store
        .put(&k, 7, Bytes::from_static(b"seven"))
        .await
        .unwrap();
    store.put(&k, 4, Bytes::from_static(b"four")).await.unwrap();
    let got = store
        .fetch(&[k.clone(), Bytes::from_static(b"never")])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(Bytes::from_static(b"seven")), None]);
    store
        .put(&k, 8, Bytes::from_static(b"eight"))
        .await
        .unwrap();
    assert_eq!(
        store.fetch(std::slice::from_ref(&k)).await.unwrap()[0].as_deref(),
        Some(&b"eight"[..])
    );
    store.delete(std::slice::from_ref(&k)).await.unwrap();
    assert_eq!(store.fetch(&[k]).await.unwrap(), vec![None]);
}

/// A store whose first put waits until released, and says when it started.
struct GatedStore {
    inner: DiskStore,
    puts: AtomicUsize,
    started: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

impl DataStore for GatedStore {
    async fn put(&self, key: &[u8], generation: u64, record: Bytes) -> Result<(), StoreError> {
        if self.puts.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = self.started.send(());
            self.release.notified().await;
        }
        self.inner.put(key, generation, record).await
    }

    async fn fetch(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>, StoreError> {
        self.inner.fetch(keys).await
    }

    async fn delete(&self, keys: &[Bytes]) -> Result<(), StoreError> {
        self.inner.delete(keys).await
    }
}

/// A store whose puts never finish: the worker process of the crash test hangs in it.
struct StuckStore(mpsc::UnboundedSender<Vec<u8>>);

impl DataStore for StuckStore {
    async fn put(&self, key: &[u8], _: u64, _: Bytes) -> Result<(), StoreError> {
        let _ = self.0.send(key.to_vec());
        std::future::pending().await
    }

    async fn fetch(&self, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>, StoreError> {
        Ok(vec![None; keys.len()])
    }

    async fn delete(&self, _: &[Bytes]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The worker process of the crash test: announces each key it starts to store, never
/// finishes storing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "entry point of the worker process in a_killed_worker_process_loses_nothing"]
async fn tundra_worker_child_process() {
    let url = std::env::var(CHILD_URL).expect("run by the crash test");
    let client = Client::connect(&url).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let tundra = Tundra::new(
        &client,
        StuckStore(tx),
        TundraOptions::new()
            .name("crash")
            .redis_ttl(Some(Duration::from_millis(200))),
    )
    .unwrap();
    let _worker = tundra
        .worker(
            WorkerOptions::new()
                .concurrency(4)
                .lock_time(Duration::from_millis(1500)),
        )
        .await
        .unwrap();
    while let Some(key) = rx.recv().await {
        println!("putting {}", String::from_utf8_lossy(&key));
        std::io::stdout().flush().unwrap();
    }
}

server_tests! {
    async fn every_type_round_trips_through_the_disk_store(kind) {
        let (_server, client, dir) = start(kind).await;
        store_keeps_the_newest(&DiskStore::new(dir.join("contract")).unwrap()).await;
        every_type_round_trips(&client, DiskStore::new(&dir).unwrap(), "disk").await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn every_type_round_trips_through_s3_compressed_and_encrypted(kind) {
        #[cfg(feature = "object-store")]
        {
            use kermes::tundra::ObjectStoreBackend;
            let server = TestServer::start(kind);
            let client = Client::connect(&server.url()).await.unwrap();
            let moto = moto::Moto::start();
            let bucket = moto.bucket("cold");
            store_keeps_the_newest(&ObjectStoreBackend::new(bucket.clone(), "contract")).await;
            every_type_round_trips(&client, ObjectStoreBackend::new(bucket.clone(), "plain"), "s3").await;

            // Records through the value transforms: compressed and encrypted in the store.
            let codec = || {
                kermes::ValueCodec::new()
                    .compression(kermes::Compression::Zstd(3))
                    .compress_above(0)
                    .encryption(kermes::Cipher::aes256gcm([7; 32]))
            };
            client.set("sealed", "secret ".repeat(200)).await.unwrap();
            let tundra = Tundra::new(
                &client,
                ObjectStoreBackend::new(bucket.clone(), "sealed"),
                TundraOptions::new().name("sealed").codec(codec())
                    .redis_ttl(Some(Duration::from_millis(200))),
            )
            .unwrap();
            let worker = tundra.worker(WorkerOptions::new()).await.unwrap();
            tundra.dirty(["sealed"]).await.unwrap();
            wait_evicted(&client, &["sealed".to_string()], Duration::from_secs(20)).await;
            let raw = ObjectStoreBackend::new(bucket.clone(), "sealed")
                .fetch(&[Bytes::from_static(b"sealed")])
                .await
                .unwrap()[0]
                .clone()
                .expect("stored");
            assert!(
                raw.len() < 400 && !raw.windows(6).any(|w| w == b"secret"),
                "the stored record is neither compressed nor encrypted ({} bytes)",
                raw.len()
            );
            assert_eq!(tundra.ensure(["sealed"]).await.unwrap(), vec![Ensured::Restored]);
            assert_eq!(client.get("sealed").to::<String>().await.unwrap(), "secret ".repeat(200));
            // Read with another key, the record is refused, not restored as garbage.
            let wrong = Tundra::new(
                &client,
                ObjectStoreBackend::new(bucket, "sealed"),
                TundraOptions::new().name("sealed"),
            )
            .unwrap();
            client.del("sealed").await.unwrap();
            let err = wrong.ensure(["sealed"]).await.unwrap_err();
            assert!(err.to_string().contains("not a Tundra record"), "{err}");
            worker.stop().await.unwrap();
        }
        #[cfg(not(feature = "object-store"))]
        panic!("run with --all-features (the object-store feature) to test the S3 store");
    }

    async fn a_write_during_replication_is_not_lost(kind) {
        let (_server, client, dir) = start(kind).await;
        let (started, mut started_rx) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let store = GatedStore {
            inner: DiskStore::new(&dir).unwrap(),
            puts: AtomicUsize::new(0),
            started,
            release: release.clone(),
        };
        let tundra = Tundra::new(
            &client,
            store,
            TundraOptions::new().name("race").redis_ttl(Some(Duration::from_millis(300))),
        )
        .unwrap();
        client.hset("h", [("v", "1")]).await.unwrap();
        let worker = tundra.worker(WorkerOptions::new()).await.unwrap();
        tundra.dirty(["h"]).await.unwrap();
        started_rx.recv().await.unwrap();
        // The worker has dumped version 1 and is storing it; version 2 is written now,
        // without a dirty: the worker itself must see that the key changed.
        client.hset("h", [("v", "2"), ("w", "new")]).await.unwrap();
        release.notify_one();
        wait_evicted(&client, &["h".to_string()], Duration::from_secs(20)).await;
        assert_eq!(tundra.ensure(["h"]).await.unwrap(), vec![Ensured::Restored]);
        let got: std::collections::HashMap<String, String> = client.hgetall("h").to().await.unwrap();
        assert_eq!(got.get("v").map(String::as_str), Some("2"), "{got:?}");
        assert_eq!(got.get("w").map(String::as_str), Some("new"), "{got:?}");
        assert!(tundra.store().puts.load(Ordering::SeqCst) >= 2, "dumped again after the write");
        worker.stop().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn dirty_lifts_tundras_ttl_and_keeps_the_users_own(kind) {
        let (_server, client, dir) = start(kind).await;
        let tundra = disk_tundra(&client, &dir, "ttl", Duration::from_secs(600));
        client.set("plain", "p").await.unwrap();
        client.cmd("SET").arg(["short", "s", "PX", "60000"]).query::<()>().await.unwrap();
        client.cmd("SET").arg(["long", "l", "PX", "3600000"]).query::<()>().await.unwrap();
        let (short_at, long_at) = (pexpiretime(&client, "short").await, pexpiretime(&client, "long").await);
        let worker = tundra.worker(WorkerOptions::new()).await.unwrap();
        tundra.dirty(["plain", "short", "long"]).await.unwrap();
        common::wait_until_async(Duration::from_secs(20), "replicated", || async {
            pttl(&client, "plain").await > 0
                && pexpiretime(&client, "long").await != long_at
        })
        .await;
        // Tundra's 10 minutes: on the plain key, and on the key whose own hour is longer;
        // the key whose own minute is shorter keeps it.
        assert!(pttl(&client, "plain").await > 590_000);
        assert!(pttl(&client, "long").await <= 600_000);
        assert_eq!(pexpiretime(&client, "short").await, short_at);
        // A write that keeps the TTL (HSET, APPEND, ...) then dirty: Tundra's TTL is lifted
        // until the new version is stored; the user's own comes back.
        worker.stop().await.unwrap();
        client.cmd("APPEND").arg(["plain", "+"]).query::<i64>().await.unwrap();
        client.cmd("APPEND").arg(["long", "+"]).query::<i64>().await.unwrap();
        tundra.dirty(["plain", "short", "long"]).await.unwrap();
        assert_eq!(pttl(&client, "plain").await, -1);
        assert_eq!(pexpiretime(&client, "long").await, long_at);
        assert_eq!(pexpiretime(&client, "short").await, short_at);
        mq::clear(&client, tundra.queue()).await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn a_killed_worker_process_loses_nothing(kind) {
        let (server, client, dir) = start(kind).await;
        let keys: Vec<String> = (0..50).map(|i| format!("precious:{i}")).collect();
        for k in &keys {
            client.set(k, format!("value of {k}")).await.unwrap();
        }
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tundra_worker_child_process", "--ignored", "--nocapture", "--test-threads", "1"])
            .env(CHILD_URL, server.url())
            .env(CHILD_DIR, &dir)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let tundra = disk_tundra(&client, &dir, "crash", Duration::from_millis(200));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Queued whether or not the child's worker runs yet: it claims them when it starts.
        tundra.dirty(&keys).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let line = lines.next_line().await.unwrap().expect("the child runs");
                if let Some(key) = line.strip_prefix("putting ") {
                    break key.to_owned();
                }
            }
        })
        .await
        .expect("the worker process took a key");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        // Killed mid-put: no key got a TTL, nothing was lost.
        for k in &keys {
            assert_eq!(pttl(&client, k).await, -1, "{k} (the child had {first})");
        }
        let worker = tundra.worker(WorkerOptions::new().concurrency(8)).await.unwrap();
        wait_evicted(&client, &keys, Duration::from_secs(30)).await;
        let ensured = tundra.ensure(&keys).await.unwrap();
        assert_eq!(ensured, vec![Ensured::Restored; keys.len()]);
        for k in &keys {
            assert_eq!(client.get(k).to::<String>().await.unwrap(), format!("value of {k}"));
        }
        worker.stop().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn ensure_restores_1000_evicted_keys_with_their_ttls(kind) {
        let (_server, client, dir) = start(kind).await;
        let keys: Vec<String> = (0..1000).map(|i| format!("cold:{i}")).collect();
        let mut own_expiry = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            if i % 2 == 0 {
                client.cmd("SET").arg(k).arg([k.as_str(), "PX", "120000"]).query::<()>().await.unwrap();
                own_expiry.push(pexpiretime(&client, k).await);
            } else {
                client.set(k, k.as_str()).await.unwrap();
                own_expiry.push(0);
            }
        }
        let evicting = disk_tundra(&client, &dir, "cold", Duration::from_millis(300));
        let worker = evicting.worker(WorkerOptions::new().concurrency(16)).await.unwrap();
        assert_eq!(evicting.dirty(&keys).await.unwrap(), 1000);
        wait_evicted(&client, &keys, Duration::from_secs(60)).await;
        worker.stop().await.unwrap();

        // Brought back by a Tundra whose TTL is an hour, from two tasks at once.
        let hot = disk_tundra(&client, &dir, "cold", Duration::from_secs(3600));
        let (a, b) = (hot.clone(), hot.clone());
        let (ka, kb) = (keys.clone(), keys.clone());
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.ensure(&ka).await.unwrap() }),
            tokio::spawn(async move { b.ensure(&kb).await.unwrap() }),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        for i in 0..keys.len() {
            let mut pair = [ra[i], rb[i]];
            pair.sort_by_key(|e| *e as u8);
            assert!(
                pair == [Ensured::Present, Ensured::Restored] || pair == [Ensured::Restored, Ensured::Present],
                "{}: {:?}, restored exactly once",
                keys[i],
                [ra[i], rb[i]]
            );
        }
        for (k, own) in keys.iter().zip(&own_expiry) {
            assert_eq!(client.get(k).to::<String>().await.unwrap(), *k);
            if *own > 0 {
                assert_eq!(pexpiretime(&client, k).await, *own, "{k} keeps its own expiry");
            } else {
                let left = pttl(&client, k).await;
                assert!(left > 3_500_000 && left <= 3_600_000, "{k}: PTTL {left}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    async fn ensure_says_when_a_key_is_in_neither_place_or_expired(kind) {
        let (_server, client, dir) = start(kind).await;
        let tundra = disk_tundra(&client, &dir, "gone", Duration::from_secs(10));
        let worker = tundra.worker(WorkerOptions::new()).await.unwrap();
        client.cmd("SET").arg(["brief", "b", "PX", "800"]).query::<()>().await.unwrap();
        client.set("kept", "k").await.unwrap();
        assert_eq!(tundra.dirty(["brief", "kept", "never"]).await.unwrap(), 2);
        common::wait_until_async(Duration::from_secs(20), "kept replicated", || async {
            pttl(&client, "kept").await > 0
        })
        .await;
        assert!(tundra.store().fetch(&[Bytes::from_static(b"brief")]).await.unwrap()[0].is_some());
        common::wait_until_async(Duration::from_secs(5), "brief expired on its own", || async {
            !exists(&client, "brief").await
        })
        .await;
        assert_eq!(
            tundra.ensure(["never", "brief", "kept"]).await.unwrap(),
            vec![Ensured::Missing, Ensured::Expired, Ensured::Present]
        );
        assert!(!exists(&client, "brief").await, "an expired key is not resurrected");
        tundra.delete(["kept"]).await.unwrap();
        assert_eq!(tundra.ensure(["kept"]).await.unwrap(), vec![Ensured::Missing]);
        worker.stop().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

server_tests! {
    async fn tundra_works_on_a_cluster(kind) {
        let set = kermes::testing::ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let dir = temp_dir();
        // Keys on many slots, one with a hash tag of its own, one with braces but no tag.
        let mut keys: Vec<String> = (0..40).map(|i| format!("spread:{i}")).collect();
        keys.push("{user:7}:profile".into());
        keys.push("odd}key{".into());
        for k in &keys {
            client.set(k, format!("v:{k}")).await.unwrap();
        }
        let tundra = disk_tundra(&client, &dir, "cl", Duration::from_millis(300));
        let worker = tundra.worker(WorkerOptions::new().concurrency(8)).await.unwrap();
        assert_eq!(tundra.dirty(&keys).await.unwrap(), keys.len());
        common::wait_until_async(Duration::from_secs(30), "evicted", || async {
            let mut gone = true;
            for k in &keys {
                gone &= !exists(&client, k).await;
            }
            gone
        })
        .await;
        assert_eq!(tundra.ensure(&keys).await.unwrap(), vec![Ensured::Restored; keys.len()]);
        for k in &keys {
            assert_eq!(client.get(k).to::<String>().await.unwrap(), format!("v:{k}"));
        }
        worker.stop().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
