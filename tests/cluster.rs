//! Redis Cluster against real clusters (three primaries, three replicas) of each server kind:
//! routing by key, commands split across slots and fanned out to every node, pipelines and
//! transactions, SCAN over every node, blocking commands and pub/sub, resharding under load.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use kermes::cluster::key_slot;
use kermes::prelude::*;
use kermes::pubsub::Event;
use kermes::testing::ClusterSet;
use kermes::{Client, Value, cmd};

/// A client of the cluster straight to the node at `port` (no routing), for checking where
/// a key lives.
async fn direct(port: u16) -> Client {
    Client::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap()
}

server_tests! {
    async fn keys_go_to_the_node_serving_their_slot(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        for i in 0..200 {
            client.set(format!("key:{i}"), i).await.unwrap();
        }
        for i in (0..200).step_by(17) {
            let key = format!("key:{i}");
            let owner = set.owner_of(key_slot(key.as_bytes()), 0).unwrap();
            // READONLY-free plain GET on the owner: the key is there, not elsewhere.
            let there: Option<i64> = direct(owner).await.get(&key).to().await.unwrap();
            assert_eq!(there, Some(i), "{key} is not on the node serving its slot");
            let v: i64 = client.get(&key).to().await.unwrap();
            assert_eq!(v, i);
        }
        assert_eq!(client.cluster_stats().unwrap().moved, 0, "a fresh map needs no redirection");
    }

    async fn multi_key_commands_are_split_per_slot_and_recombined_in_order(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let keys: Vec<String> = (0..1000).map(|i| format!("m:{i}")).collect();
        let pairs: Vec<(String, String)> = keys.iter().map(|k| (k.clone(), format!("v-{k}"))).collect();
        client.mset(&pairs).await.unwrap();
        let values: Vec<Option<String>> = client.mget(&keys).to().await.unwrap();
        assert_eq!(values.len(), 1000);
        for (k, v) in keys.iter().zip(&values) {
            assert_eq!(v.as_deref(), Some(format!("v-{k}").as_str()));
        }
        // Missing keys keep their place.
        let mixed: Vec<Option<String>> = client.mget(["m:1", "nope:1", "m:2", "nope:2"]).to().await.unwrap();
        assert_eq!(mixed, [Some("v-m:1".into()), None, Some("v-m:2".into()), None]);
        let exists: i64 = client.exists(&keys[..100]).await.unwrap();
        assert_eq!(exists, 100);
        let touched: i64 = client.touch(&keys[..10]).await.unwrap();
        assert_eq!(touched, 10);
        let deleted: i64 = client.del(&keys[..500]).await.unwrap();
        assert_eq!(deleted, 500);
        let unlinked: i64 = client.unlink(&keys[500..]).await.unwrap();
        assert_eq!(unlinked, 500);
        // Other commands across slots fail before anything is sent, as the server would.
        let err = client.sunion(["a", "b"]).to::<Value>().await.unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "CROSSSLOT", "{err}");
        client.sadd("{s}a", ["x"]).await.unwrap();
        client.sadd("{s}b", ["y"]).await.unwrap();
        let union: Vec<String> = client.sunion(["{s}a", "{s}b"]).to().await.unwrap();
        assert_eq!(union.len(), 2);
    }

    async fn keyless_commands_reach_every_node_the_spec_names(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        for i in 0..300 {
            client.set(format!("k{i}"), i).await.unwrap();
        }
        // DBSIZE on every primary, summed.
        let size: i64 = client.dbsize().await.unwrap();
        assert_eq!(size, 300);
        // KEYS on every primary, concatenated.
        let keys: Vec<String> = client.keys("k*").to().await.unwrap();
        assert_eq!(keys.len(), 300);
        // SCAN walks every primary.
        let scanned: Vec<String> = kermes::helpers::scan_stream(&client, Some("k*")).try_collect().await.unwrap();
        assert_eq!(scanned.len(), 300);
        // SCRIPT LOAD on every node: EVALSHA then works whatever the slot.
        let sha: String = client.script_load("return redis.call('GET', KEYS[1])").to().await.unwrap();
        for i in [0, 100, 200] {
            let v: i64 = client.evalsha(&sha, [format!("k{i}")], ()).to().await.unwrap();
            assert_eq!(v, i);
        }
        let script = kermes::Script::new("return redis.call('INCR', KEYS[1])");
        let n: i64 = script.run(&client, "counter{x}", ()).await.unwrap();
        assert_eq!(n, 1);
        // FLUSHALL on every primary.
        client.flushall().await.unwrap();
        assert_eq!(client.dbsize().await.unwrap(), 0);
        let pong = client.ping().await.unwrap();
        assert_eq!(&pong[..], b"PONG");
    }

    async fn pipelines_and_transactions_span_nodes_or_one_slot(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let pipe = client.pipeline();
        for i in 0..100 {
            pipe.set(format!("p:{i}"), i);
        }
        for i in 0..100 {
            pipe.get(format!("p:{i}"));
        }
        pipe.sunion(["x", "y"]);
        pipe.echo("keyless");
        let replies = pipe.run().await.unwrap();
        assert_eq!(replies.len(), 202);
        for i in 0..100 {
            assert_eq!(replies[100 + i].as_ref().unwrap(), &Value::Bulk(i.to_string().into()));
        }
        let err = replies[200].as_ref().unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "CROSSSLOT", "{err}");
        assert_eq!(replies[201].as_ref().unwrap(), &Value::Bulk("keyless".into()));
        // A transaction runs on the node of its slot.
        let tx = client.transaction();
        tx.incr("{acct}:a");
        tx.incr("{acct}:b");
        let (a, b): (i64, i64) = tx.query().await.unwrap();
        assert_eq!((a, b), (1, 1));
        let tx = client.transaction();
        tx.incr("a");
        tx.incr("b");
        let err = tx.run().await.unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "CROSSSLOT", "{err}");
        // atomic() with WATCH, in one slot.
        let (seen, _) = kermes::atomic(&client, 5, |tx| async move {
            tx.watch("{acct}:a").await?;
            let a: i64 = tx.get("{acct}:a").to().await?;
            tx.writes().set("{acct}:b", a + 10);
            Ok(a)
        })
        .await
        .unwrap();
        assert_eq!(seen, 1);
        let b: i64 = client.get("{acct}:b").to().await.unwrap();
        assert_eq!(b, 11);
    }

    async fn blocking_commands_and_subscribers_work_on_a_cluster(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let pusher = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            pusher.rpush("jobs", ["j1"]).await.unwrap();
        });
        let popped: Option<(String, String)> = client.blpop("jobs", 5.0).to().await.unwrap();
        assert_eq!(popped, Some(("jobs".into(), "j1".into())));
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("news").await.unwrap();
        // Classic pub/sub reaches subscribers on every node (PUBLISH counts only the
        // subscribers of the node it ran on).
        client.publish("news", "hello").await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        let Event::Message(m) = event else { panic!("{event:?}") };
        assert_eq!(m.payload_as::<String>().unwrap(), "hello");
    }

    async fn resharding_under_load_is_invisible_to_callers(kind) {
        let set = Arc::new(ClusterSet::start(kind));
        let client = Client::connect(&set.url()).await.unwrap();
        let slot = key_slot(b"r");
        let from = (0..3).find(|&i| set.owner_of(slot, 0) == Some(set.port(i))).unwrap();
        let to = (from + 1) % 3;
        for i in 0..400 {
            client.set(format!("{{r}}:{i}"), i).await.unwrap();
        }
        let errors = Arc::new(AtomicU64::new(0));
        let ops = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: Vec<_> = (0..50u64)
            .map(|t| {
                let (client, errors, ops, stop) = (client.clone(), errors.clone(), ops.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        i = (i * 7 + 13) % 400;
                        let key = format!("{{r}}:{i}");
                        let ok = match client.set(&key, i as i64).await {
                            Ok(_) => client.get(&key).to::<i64>().await.is_ok_and(|v| v == i as i64),
                            Err(e) => {
                                eprintln!("SET {key}: {e}");
                                false
                            }
                        };
                        if !ok {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        ops.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let migrating = set.clone();
        tokio::task::spawn_blocking(move || migrating.migrate_slot(slot, from, to, 10, Duration::from_millis(20)))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let stats = client.cluster_stats().unwrap();
        eprintln!("{kind:?}: {} operations during the migration; {stats:?}", ops.load(Ordering::Relaxed));
        assert_eq!(errors.load(Ordering::Relaxed), 0, "callers saw errors");
        assert!(stats.asked > 0, "no ASK was followed: {stats:?}");
        assert!(stats.moved > 0, "no MOVED was followed: {stats:?}");
        assert_eq!(set.owner_of(slot, 1), Some(set.port(to)));
        let v: i64 = client.get("{r}:7").to().await.unwrap();
        assert_eq!(v, 7);
    }

    async fn a_killed_primary_is_followed_and_no_increment_is_replayed(kind) {
        let mut set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let slot = key_slot(b"f");
        let primary = (0..3).find(|&i| set.owner_of(slot, 0) == Some(set.port(i))).unwrap();
        let outcome = Arc::new(Outcome::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let killed_at: Arc<std::sync::Mutex<Option<tokio::time::Instant>>> = Arc::default();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (client, outcome, stop, killed_at) = (client.clone(), outcome.clone(), stop.clone(), killed_at.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let started = tokio::time::Instant::now();
                        outcome.record(increment(&client, "{f}:counter").await, started, *killed_at.lock().unwrap());
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        set.node(primary).kill();
        *killed_at.lock().unwrap() = Some(tokio::time::Instant::now());
        // The replica takes over; the client follows by itself.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while outcome.first_after.lock().unwrap().is_none() {
            assert!(tokio::time::Instant::now() < deadline, "no increment succeeded after the kill");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let took = outcome.first_after.lock().unwrap().unwrap();
        eprintln!("{kind:?}: from kill -9 of a primary to the first increment on its replica: {took:?}");
        outcome.check(&client, "{f}:counter", kind).await;
        let new_owner = set.owner_of(slot, (primary + 1) % 3).unwrap();
        assert_eq!(new_owner, set.port(primary + 3), "the replica should serve the slot now");
    }

    async fn a_graceful_failover_is_followed(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let slot = key_slot(b"g");
        let primary = (0..3).find(|&i| set.owner_of(slot, 0) == Some(set.port(i))).unwrap();
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("after-failover").await.unwrap();
        let outcome = Arc::new(Outcome::default());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (client, outcome, stop) = (client.clone(), outcome.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        outcome.record(increment(&client, "{g}:counter").await, tokio::time::Instant::now(), None);
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The replica asks its primary to hand over.
        let replica = direct(set.port(primary + 3)).await;
        replica.cmd("CLUSTER").arg("FAILOVER").exec().await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while set.owner_of(slot, primary) != Some(set.port(primary + 3)) {
            assert!(tokio::time::Instant::now() < deadline, "the failover did not happen");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let acked_before = outcome.acked.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while outcome.acked.load(Ordering::Relaxed) < acked_before + 50 {
            assert!(tokio::time::Instant::now() < deadline, "increments did not go on after the failover");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        outcome.check(&client, "{g}:counter", kind).await;
        // The subscriber still receives.
        client.publish("after-failover", "yes").await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(Event::Message(m)) = sub.next().await {
                    return m;
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got.payload_as::<String>().unwrap(), "yes");
    }
}

/// What became of one INCR (followed by WAIT 1 on the same connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// It ran and a replica has it.
    Acked,
    /// It ran; no replica confirmed it in time.
    Applied,
    /// The server refused it: it did not run.
    Refused,
    /// The connection failed around it: it may or may not have run.
    Unknown,
}

async fn increment(client: &Client, key: &str) -> Fate {
    let pipe = client.pipeline();
    pipe.incr(key);
    pipe.cmd(cmd("WAIT").arg(1).arg(100));
    match pipe.run().await {
        Ok(r) => match (&r[0], &r[1]) {
            (Ok(_), Ok(Value::Int(n))) if *n >= 1 => Fate::Acked,
            (Ok(_), _) => Fate::Applied,
            (Err(e), _) if e.is_server() => Fate::Refused,
            _ => Fate::Unknown,
        },
        Err(_) => Fate::Unknown,
    }
}

/// What increments came to, to check the counter against.
#[derive(Default)]
struct Outcome {
    acked: AtomicU64,
    /// Applied or unknown: counted at most.
    maybe: AtomicU64,
    refused: AtomicU64,
    first_after: std::sync::Mutex<Option<Duration>>,
}

impl Outcome {
    fn record(
        &self,
        fate: Fate,
        started: tokio::time::Instant,
        killed_at: Option<tokio::time::Instant>,
    ) {
        match fate {
            Fate::Acked => self.acked.fetch_add(1, Ordering::Relaxed),
            Fate::Applied | Fate::Unknown => self.maybe.fetch_add(1, Ordering::Relaxed),
            Fate::Refused => self.refused.fetch_add(1, Ordering::Relaxed),
        };
        // Sent after the old primary's process was gone, and it ran: on the promoted replica.
        if let Some(at) = killed_at
            && started > at
            && matches!(fate, Fate::Acked | Fate::Applied)
        {
            self.first_after.lock().unwrap().get_or_insert(at.elapsed());
        }
    }

    async fn check(&self, client: &Client, key: &str, kind: kermes::testing::ServerKind) {
        let (acked, maybe, refused) = (
            self.acked.load(Ordering::Relaxed),
            self.maybe.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        );
        let counter: i64 = common::eventually(Duration::from_secs(10), || {
            client.get(key).to::<Option<i64>>()
        })
        .await
        .unwrap_or(0);
        eprintln!(
            "{kind:?}: counter {counter}, acknowledged {acked}, ran or unknown {maybe}, refused {refused}"
        );
        assert!(
            counter as u64 >= acked,
            "an acknowledged increment was lost: {counter} < {acked}"
        );
        assert!(
            counter as u64 <= acked + maybe,
            "an increment ran twice: {counter} > {acked} + {maybe}"
        );
    }
}
