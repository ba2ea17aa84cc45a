//! `Client::stats()`: every counter checked against what the test did, exactly where the
//! protocol makes it knowable (commands and bytes of known frames).

#[macro_use]
mod common;

use std::time::Duration;

use futures::StreamExt;
use kermes::prelude::*;
use kermes::testing::{ClusterSet, TestServer};
use kermes::{ConnectionEvent, Stats};

use common::wait_until;

async fn one_connection(server: &TestServer) -> Client {
    Client::builder()
        .url(&server.url())
        .shared_connections(1)
        .connect()
        .await
        .unwrap()
}

fn shared(stats: &Stats) -> Vec<&kermes::stats::ConnectionStats> {
    stats
        .connections
        .iter()
        .filter(|c| c.kind == "shared")
        .collect()
}

server_tests! {
    async fn commands_bytes_and_errors_are_counted_exactly(kind) {
        let server = TestServer::start(kind);
        let client = one_connection(&server).await;
        // The handshake is not counted: a new client has sent nothing.
        let fresh = client.stats();
        assert_eq!((fresh.commands_sent, fresh.commands_completed), (0, 0), "{fresh:?}");
        assert_eq!(shared(&fresh).len(), 1, "{fresh:?}");

        // `SET k v` is 27 bytes (*3 $3 SET $1 k $1 v) answered by `+OK` (5 bytes);
        // `GET k` is 20 bytes answered by `$1 v` (7 bytes).
        for _ in 0..10 {
            client.set("k", "v").await.unwrap();
            let v: Option<String> = client.get("k").await.unwrap();
            assert_eq!(v.as_deref(), Some("v"));
        }
        // A server error: INCR of a string.
        let err = client.incr("k").await.unwrap_err();
        assert!(err.server_error().is_some(), "{err}");
        // A pipeline counts each of its commands.
        let pipe = client.pipeline();
        for _ in 0..5 {
            pipe.get("k");
        }
        let replies: Vec<Option<String>> = pipe.query().await.unwrap();
        assert_eq!(replies.len(), 5);

        let s = client.stats();
        assert_eq!(s.commands_sent, 10 + 10 + 1 + 5, "{s:?}");
        assert_eq!(s.commands_completed, s.commands_sent, "{s:?}");
        assert_eq!((s.in_flight, s.queued), (0, 0), "{s:?}");
        assert_eq!(s.server_errors, 1, "{s:?}");
        assert_eq!(s.errors.get("server"), Some(&1), "{s:?}");
        assert_eq!(s.errors.len(), 1, "{s:?}");
        // INCR k: 21 bytes; its error reply is counted with the others below.
        assert_eq!(s.bytes_written, 10 * 27 + 10 * 20 + 21 + 5 * 20, "{s:?}");
        let incr_error = b"-ERR value is not an integer or out of range\r\n".len() as u64;
        assert_eq!(s.bytes_read, 10 * 5 + 10 * 7 + incr_error + 5 * 7, "{s:?}");
        let conn = shared(&s)[0];
        assert!(conn.up);
        assert_eq!(conn.commands_sent, s.commands_sent);
        assert_eq!(conn.bytes_read, s.bytes_read);
        assert_eq!(conn.addr, format!("127.0.0.1:{}", server.port()));

        // A timed-out command is counted by kind, and is in flight until its reply comes.
        let err = client
            .cmd("DEBUG")
            .arg("SLEEP")
            .arg(0.3)
            .timeout(Duration::from_millis(50))
            .exec()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        let s = client.stats();
        assert_eq!(s.errors.get("timeout"), Some(&1), "{s:?}");
        assert_eq!(s.in_flight, 1, "{s:?}");
        wait_until(Duration::from_secs(5), "the late reply is read", || {
            client.stats().in_flight == 0
        })
        .await;
    }

    async fn reconnects_and_closed_connections_keep_their_counts(kind) {
        let server = TestServer::start(kind);
        let client = one_connection(&server).await;
        let admin = Client::connect(&server.url()).await.unwrap();
        let id: i64 = client.cmd("CLIENT").arg("ID").query().await.unwrap();
        let mut events = client.events();
        admin.cmd("CLIENT").arg("KILL").arg("ID").arg(id).exec().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while !matches!(events.next().await, Some(ConnectionEvent::Reconnected { .. })) {}
        })
        .await
        .expect("the killed connection came back");
        client.set("after", 1).await.unwrap();
        let s = client.stats();
        assert_eq!(s.reconnects, 1, "{s:?}");
        assert_eq!(shared(&s)[0].reconnects, 1, "{s:?}");
        assert!(shared(&s)[0].up, "{s:?}");
        // CLIENT ID and SET; nothing was in flight when the socket died.
        assert_eq!(s.commands_sent, 2, "{s:?}");

        // A subscriber is a connection of its own: listed while it lives, its commands
        // still counted once it closed.
        let sub = client.subscriber().await.unwrap();
        sub.subscribe(["news"]).await.unwrap();
        let s = client.stats();
        assert_eq!(s.connections.iter().filter(|c| c.kind == "subscriber").count(), 1, "{s:?}");
        assert_eq!(s.commands_sent, 3, "{s:?}");
        drop(sub);
        wait_until(Duration::from_secs(5), "the subscriber's connection closed", || {
            client.stats().connections.iter().all(|c| c.kind != "subscriber")
        })
        .await;
        let s = client.stats();
        assert_eq!(s.commands_sent, 3, "{s:?}");
        assert_eq!(s.commands_completed, 3, "{s:?}");
    }

    async fn an_exhausted_pool_is_counted_and_told(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder()
            .url(&server.url())
            .pool_max_size(1)
            .pool_wait_timeout(Duration::from_millis(100))
            .connect()
            .await
            .unwrap();
        let mut events = client.events();
        let held = client.exclusive().await.unwrap();
        let s = client.stats();
        assert_eq!(s.pools.len(), 1, "{s:?}");
        let pool = &s.pools[0];
        assert_eq!((pool.max_size, pool.size, pool.in_use, pool.idle), (1, 1, 1, 0), "{s:?}");
        assert_eq!(s.connections.iter().filter(|c| c.kind == "exclusive").count(), 1);

        // A blocking command needs an exclusive connection too: none comes free.
        let err = client.blpop("nothing", 0.1).to::<Value>().await.unwrap_err();
        assert!(err.is_pool(), "{err}");
        let s = client.stats();
        assert_eq!(s.pool_timeouts, 1, "{s:?}");
        assert_eq!(s.errors.get("pool"), Some(&1), "{s:?}");
        let told = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                if let Some(ConnectionEvent::PoolExhausted { max_size, .. }) = events.next().await {
                    return max_size;
                }
            }
        })
        .await
        .expect("a PoolExhausted event");
        assert_eq!(told, 1);

        drop(held);
        wait_until(Duration::from_secs(5), "the connection went back to the pool", || {
            let s = client.stats();
            s.pools[0].in_use == 0 && s.pools[0].idle == 1
        })
        .await;
    }

    async fn a_cluster_client_counts_every_node(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let before = client.stats().commands_sent;
        for i in 0..60 {
            client.set(format!("key:{i}"), i).await.unwrap();
        }
        let s = client.stats();
        assert_eq!(s.commands_sent - before, 60, "{s:?}");
        let nodes: std::collections::BTreeSet<&str> =
            shared(&s).iter().map(|c| c.addr.as_str()).collect();
        assert_eq!(nodes.len(), 3, "the keys reached three primaries: {s:?}");
        assert_eq!(s.pools.len(), 3, "{s:?}");
    }
}
