//! The client-side cache on a Redis Cluster: every node's shared connections track reads and
//! deliver invalidations, MGET across slots is answered per key, and a key whose slot moves
//! to another node is never served stale from the process.

#[macro_use]
mod common;

use std::time::Duration;

use kermes::Client;
use kermes::cache::ClientCacheOptions;
use kermes::cluster::key_slot;
use kermes::prelude::*;
use kermes::testing::ClusterSet;

async fn cached(set: &ClusterSet) -> Client {
    Client::builder()
        .url(&set.url())
        .client_cache(ClientCacheOptions::new())
        .connect()
        .await
        .unwrap()
}

/// Reads `key` through `client` until it gives `expected`.
async fn reads_as(client: &Client, key: &str, expected: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let v: i64 = client.get(key).to().await.unwrap();
        if v == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} still reads {v}, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

server_tests! {
    async fn reads_on_every_node_are_cached_and_invalidated(kind) {
        let set = ClusterSet::start(kind);
        let client = cached(&set).await;
        let writer = Client::connect(&set.url()).await.unwrap();
        let keys: Vec<String> = (0..30).map(|i| format!("spread:{i}")).collect();
        for (i, k) in keys.iter().enumerate() {
            writer.set(k, i as i64).await.unwrap();
        }
        for _ in 0..2 {
            for (i, k) in keys.iter().enumerate() {
                let v: i64 = client.get(k).to().await.unwrap();
                assert_eq!(v, i as i64);
            }
        }
        let stats = client.client_cache_stats().unwrap();
        assert_eq!((stats.misses, stats.hits), (30, 30), "{stats:?}");
        // MGET across slots: from the process.
        let all: Vec<i64> = client.mget(&keys).to().await.unwrap();
        assert_eq!(all, (0..30).collect::<Vec<i64>>());
        for (i, k) in keys.iter().enumerate() {
            writer.set(k, 100 + i as i64).await.unwrap();
        }
        for (i, k) in keys.iter().enumerate() {
            reads_as(&client, k, 100 + i as i64).await;
        }
    }

    async fn a_key_whose_slot_moves_is_not_served_stale(kind) {
        let set = ClusterSet::start(kind);
        let client = cached(&set).await;
        let key = "{mv}:1";
        let slot = key_slot(key.as_bytes());
        client.set(key, 1).await.unwrap();
        let _: i64 = client.get(key).to().await.unwrap();
        let v: i64 = client.get(key).to().await.unwrap();
        assert_eq!(v, 1);
        assert!(client.client_cache_stats().unwrap().hits >= 1);
        let owner_port = set.owner_of(slot, 0).unwrap();
        let primaries = set.primaries();
        let from = *primaries.iter().find(|&&i| set.port(i) == owner_port).unwrap();
        let to = *primaries.iter().find(|&&i| i != from).unwrap();
        set.migrate_slot(slot, from, to, 10, Duration::ZERO).unwrap();
        // Written on the new owner, by a client that does not go through this one.
        let direct = Client::connect(&format!("redis://127.0.0.1:{}", set.port(to))).await.unwrap();
        direct.set(key, 2).await.unwrap();
        reads_as(&client, key, 2).await;
        // And tracked on the new owner from then on.
        let _: i64 = client.get(key).to().await.unwrap();
        direct.set(key, 3).await.unwrap();
        reads_as(&client, key, 3).await;
    }
}
