//! The client's view of a changing cluster, against real clusters of each server kind: a
//! node that joins and takes slots, a node that leaves, and reads served by replicas.

#[macro_use]
mod common;

use std::time::Duration;

use kermes::cluster::{ClusterOptions, key_slot};
use kermes::prelude::*;
use kermes::testing::ClusterSet;
use kermes::{Client, ReadFrom, Value};

/// A client of the cluster whose map is read again every 200 ms, named so its connections
/// can be told apart on the servers.
async fn watching_client(set: &ClusterSet, read_from: ReadFrom) -> Client {
    let seeds: Vec<String> = (0..3)
        .map(|i| format!("127.0.0.1:{}", set.port(i)))
        .collect();
    Client::builder()
        .cluster(
            ClusterOptions::new(seeds)
                .unwrap()
                .refresh_interval(Duration::from_millis(200)),
        )
        .client_name("watching")
        .read_from(read_from)
        .connect()
        .await
        .unwrap()
}

/// The connections named `watching` the node at `port` has open.
async fn watching_connections(port: u16) -> usize {
    let node = Client::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    let list: String = node.cmd("CLIENT").arg("LIST").query().await.unwrap();
    list.lines()
        .filter(|l| l.contains(" name=watching "))
        .count()
}

/// How many times `command` ran on the node at `port`.
async fn calls_on(port: u16, command: &str) -> u64 {
    let node = Client::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap();
    common::command_calls(&node, &[command]).await
}

async fn all_keys_read_back(client: &Client, keys: &[String]) {
    for (i, key) in keys.iter().enumerate() {
        let v: i64 = client.get(key).to().await.unwrap();
        assert_eq!(v, i as i64, "{key}");
    }
}

server_tests! {
    async fn a_node_that_joins_and_leaves_is_followed_by_the_slot_map(kind) {
        let mut set = ClusterSet::start(kind);
        let client = watching_client(&set, ReadFrom::Primary).await;
        let slot = key_slot(b"n");
        let owner = set.primaries().into_iter().find(|&i| set.owner_of(slot, 0) == Some(set.port(i))).unwrap();
        let keys: Vec<String> = (0..100).map(|i| format!("{{n}}:{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            client.set(key, i as i64).await.unwrap();
        }
        let spread: Vec<String> = (0..300).map(|i| format!("spread:{i}")).collect();
        for (i, key) in spread.iter().enumerate() {
            client.set(key, i as i64).await.unwrap();
        }

        // A seventh node joins and takes the slot. The client learns it from a MOVED, or
        // from a map refresh (every 200 ms) when the migration took longer than that, as it
        // can on a loaded machine: either way every key reads back.
        let refreshes = client.cluster_stats().unwrap().refreshes;
        let added = set.add_node().unwrap();
        set.migrate_slot(slot, owner, added, 20, Duration::ZERO).unwrap();
        all_keys_read_back(&client, &keys).await;
        let learned = client.cluster_stats().unwrap();
        assert!(learned.moved > 0 || learned.refreshes > refreshes, "the move was learned: {learned:?}");
        // Once the map is read again, commands go straight to the new node.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let before = client.cluster_stats().unwrap();
        all_keys_read_back(&client, &keys).await;
        let after = client.cluster_stats().unwrap();
        assert_eq!(after.moved, before.moved, "the map names the new node: no redirection");
        assert!(after.refreshes > before.refreshes || before.refreshes > 1);
        assert!(calls_on(set.port(added), "get").await >= 200, "the new node served the slot's GETs");
        assert!(watching_connections(set.port(added)).await >= 1);

        // It gives the slot back and leaves.
        set.migrate_slot(slot, added, owner, 20, Duration::ZERO).unwrap();
        all_keys_read_back(&client, &keys).await;
        // A node the map no longer names has its connections closed.
        let port = set.port(added);
        common::wait_until_async(Duration::from_secs(5), "the client closed its connections to the removed node", || async {
            watching_connections(port).await == 0
        })
        .await;
        set.remove_node(added).unwrap();
        let before = client.cluster_stats().unwrap();
        all_keys_read_back(&client, &keys).await;
        all_keys_read_back(&client, &spread).await;
        let after = client.cluster_stats().unwrap();
        assert_eq!((after.moved, after.retried), (before.moved, before.retried), "nothing goes to the removed node");
        assert_eq!(client.dbsize().await.unwrap(), 400);
    }

    async fn replica_reads_go_to_replicas_with_readonly(kind) {
        let set = ClusterSet::start(kind);
        let client = watching_client(&set, ReadFrom::Replica).await;
        let keys: Vec<String> = (0..60).map(|i| format!("r:{i}")).collect();
        for (i, key) in keys.iter().enumerate() {
            client.set(key, i as i64).await.unwrap();
        }
        // Replication is asynchronous: wait for the replicas to have every key.
        client.cmd("WAIT").arg(1).arg(1000).exec().await.ok();
        common::wait_until_async(Duration::from_secs(10), "the replicas have the keys", || async {
            let mut total = 0;
            for i in 3..6 {
                let node = Client::connect(&format!("redis://127.0.0.1:{}", set.port(i))).await.unwrap();
                total += node.dbsize().await.unwrap();
            }
            total == 60
        })
        .await;
        // Every node's view has the replicas online (a replica that has replicated nothing
        // yet shows as loading), and the client has read the map since.
        common::wait_until_async(Duration::from_secs(10), "replicas online in every view", || async {
            let mut online = true;
            for i in 0..3 {
                let node = Client::connect(&format!("redis://127.0.0.1:{}", set.port(i))).await.unwrap();
                let shards: Value = node.cmd("CLUSTER").arg("SHARDS").query().await.unwrap();
                online &= !format!("{shards:?}").contains("loading");
            }
            online
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let gets_before: Vec<u64> = futures::future::join_all((0..6).map(|i| calls_on(set.port(i), "get"))).await;
        all_keys_read_back(&client, &keys).await;
        let values: Vec<Option<i64>> = client.mget(&keys).to().await.unwrap();
        assert_eq!(values.len(), 60);
        assert!(values.iter().enumerate().all(|(i, v)| *v == Some(i as i64)));
        let gets_after: Vec<u64> = futures::future::join_all((0..6).map(|i| calls_on(set.port(i), "get"))).await;
        let served: Vec<u64> = gets_after.iter().zip(&gets_before).map(|(a, b)| a - b).collect();
        assert_eq!(&served[..3], [0, 0, 0], "primaries served no GET: {served:?}");
        assert_eq!(served[3..].iter().sum::<u64>(), 60, "replicas served every GET: {served:?}");
        for i in 3..6 {
            assert!(watching_connections(set.port(i)).await >= 1, "replica {i} has a connection");
        }
        // Writes still go to primaries.
        client.set("r:0", "written").await.unwrap();
        let direct = Client::connect(&format!("redis://127.0.0.1:{}", set.owner_of(key_slot(b"r:0"), 0).unwrap())).await.unwrap();
        assert_eq!(direct.get("r:0").to::<String>().await.unwrap(), "written");
        let _: Value = client.cmd("PING").query().await.unwrap();
    }
}
