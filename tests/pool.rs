//! Exclusive connections from the pool: recycling, abandonment, exhaustion.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use kermes::prelude::*;
use kermes::testing::TestServer;
use kermes::{Client, Value, cmd};

server_tests! {
    async fn recycling_clears_watch_so_the_next_holder_starts_clean(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder().url(&server.url()).pool_max_size(1).connect().await.unwrap();
        let first = client.exclusive().await.unwrap();
        // The generated command methods work on an exclusive connection too.
        let id = first.client_id().await.unwrap();
        first.watch("watched").await.unwrap();
        drop(first);
        // Had WATCH survived, this write would abort the next holder's transaction.
        client.cmd("SET").arg("watched").arg("changed").exec().await.unwrap();
        let second = client.exclusive().await.unwrap();
        let same: i64 = second.query(cmd("CLIENT").arg("ID")).await.unwrap();
        assert_eq!(same, id, "the pool should have reused the connection");
        second.query::<()>(cmd("MULTI")).await.unwrap();
        second.query::<()>(cmd("SET").arg("tx").arg(1)).await.unwrap();
        let exec: Value = second.query(cmd("EXEC")).await.unwrap();
        assert!(matches!(exec, Value::Array(ref r) if r.len() == 1), "EXEC aborted: {exec:?}");
    }

    async fn a_connection_with_an_abandoned_blocking_command_is_discarded(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder().url(&server.url()).pool_max_size(1).connect().await.unwrap();
        let ex = client.exclusive().await.unwrap();
        let id: i64 = ex.query(cmd("CLIENT").arg("ID")).await.unwrap();
        let abandoned = tokio::time::timeout(
            Duration::from_millis(100),
            ex.query::<Option<Vec<String>>>(cmd("BLPOP").arg("nothing").arg(30)),
        )
        .await;
        assert!(abandoned.is_err(), "BLPOP should still have been blocking");
        drop(ex);
        let started = Instant::now();
        let next = client.exclusive().await.unwrap();
        let new_id: i64 = next.query(cmd("CLIENT").arg("ID")).await.unwrap();
        assert_ne!(new_id, id, "a connection still blocked in BLPOP was handed out again");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    async fn an_exhausted_pool_waits_then_reports_a_pool_error(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder()
            .url(&server.url())
            .pool_max_size(1)
            .pool_wait_timeout(Duration::from_millis(200))
            .connect()
            .await
            .unwrap();
        let held = client.exclusive().await.unwrap();
        let err = client.exclusive().await.err().expect("pool of one is taken");
        assert!(err.is_pool(), "{err}");
        // Blocking commands need the pool too, and report the same way.
        let err = client.cmd("BLPOP").arg("q").arg(1).query::<Value>().await.unwrap_err();
        assert!(err.is_pool(), "{err}");
        drop(held);
        let none: Option<Vec<String>> = client.cmd("BLPOP").arg("q").arg(0.1).query().await.unwrap();
        assert_eq!(none, None);
    }

    async fn pub_sub_commands_on_an_exclusive_connection_point_to_the_subscriber(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let ex = client.exclusive().await.unwrap();
        let err = ex.query::<Value>(cmd("SUBSCRIBE").arg("ch")).await.unwrap_err();
        assert!(err.is_usage() && err.to_string().contains("subscriber()"), "{err}");
        let pong: String = ex.query(cmd("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
    }
}

/// A pool of one connection, so the next checkout gets the same socket (or a new one, never
/// a dirty one). The client names its connections `app`.
async fn pool_of_one(url: &str) -> Client {
    Client::builder()
        .url(url)
        .client_name("app")
        .pool_max_size(1)
        .connect()
        .await
        .unwrap()
}

server_tests! {
    async fn select_on_a_checkout_does_not_reach_the_next_holder(kind) {
        let server = TestServer::start(kind);
        let client = pool_of_one(&server.url()).await;
        client.set("k", "db0").await.unwrap();
        let first = client.exclusive().await.unwrap();
        first.query::<()>(cmd("SELECT").arg(3)).await.unwrap();
        let in_3: Option<String> = first.query(cmd("GET").arg("k")).await.unwrap();
        assert_eq!(in_3, None);
        drop(first);
        let second = client.exclusive().await.unwrap();
        let v: Option<String> = second.query(cmd("GET").arg("k")).await.unwrap();
        assert_eq!(v.as_deref(), Some("db0"), "the next holder ran in the previous holder's db");
        // atomic() and blocking commands use the same pool.
        drop(second);
        let (read, _) = kermes::atomic(&client, 3, |tx| async move {
            tx.watch("k").await?;
            tx.get("k").to::<Option<String>>().await
        })
        .await
        .unwrap();
        assert_eq!(read.as_deref(), Some("db0"));
    }

    async fn auth_as_another_user_does_not_reach_the_next_holder(kind) {
        let server = TestServer::start(kind);
        let client = pool_of_one(&server.url()).await;
        client
            .cmd("ACL")
            .arg(["SETUSER", "other", "on", ">pw", "~other:*", "+@all"])
            .exec()
            .await
            .unwrap();
        let first = client.exclusive().await.unwrap();
        first.query::<()>(cmd("AUTH").arg("other").arg("pw")).await.unwrap();
        let who: String = first.query(cmd("ACL").arg("WHOAMI")).await.unwrap();
        assert_eq!(who, "other");
        drop(first);
        let second = client.exclusive().await.unwrap();
        let who: String = second.query(cmd("ACL").arg("WHOAMI")).await.unwrap();
        assert_eq!(who, "default", "the next holder ran as the previous holder's user");
    }

    async fn hello_2_does_not_reach_the_next_holder(kind) {
        let server = TestServer::start(kind);
        let client = pool_of_one(&server.url()).await;
        assert_eq!(client.protocol(), kermes::Protocol::Resp3);
        let first = client.exclusive().await.unwrap();
        let _: Value = first.query(cmd("HELLO").arg(2)).await.unwrap();
        drop(first);
        let second = client.exclusive().await.unwrap();
        let info: String = second.query(cmd("CLIENT").arg("INFO")).await.unwrap();
        assert!(info.contains("resp=3"), "the next holder got a RESP2 connection: {info}");
        let map: Value = second.query(cmd("HGETALL").arg("nothing")).await.unwrap();
        assert!(matches!(map, Value::Map(_)), "RESP3 replies expected, got {map:?}");
    }

    async fn client_tracking_does_not_reach_the_next_holder(kind) {
        let server = TestServer::start(kind);
        let client = pool_of_one(&server.url()).await;
        let first = client.exclusive().await.unwrap();
        first.query::<()>(cmd("CLIENT").arg(["TRACKING", "on"])).await.unwrap();
        drop(first);
        let second = client.exclusive().await.unwrap();
        let info: Value = second.query(cmd("CLIENT").arg("TRACKINGINFO")).await.unwrap();
        let text = format!("{info:?}");
        assert!(text.contains("\"off\""), "tracking carried over to the next holder: {text}");
    }

    async fn client_setname_does_not_reach_the_next_holder(kind) {
        let server = TestServer::start(kind);
        let client = pool_of_one(&server.url()).await;
        let first = client.exclusive().await.unwrap();
        first.query::<()>(cmd("CLIENT").arg(["SETNAME", "x"])).await.unwrap();
        drop(first);
        let second = client.exclusive().await.unwrap();
        let name: String = second.query(cmd("CLIENT").arg("GETNAME")).await.unwrap();
        assert_eq!(name, "app", "the next holder kept the previous holder's name");
    }

    async fn client_reply_is_refused_even_on_an_exclusive_connection(kind) {
        let server = TestServer::start(kind);
        let client = pool_of_one(&server.url()).await;
        let ex = client.exclusive().await.unwrap();
        for mode in ["OFF", "SKIP", "ON"] {
            let err = ex.query::<Value>(cmd("CLIENT").arg(["REPLY", mode])).await.unwrap_err();
            assert!(err.is_usage(), "{err}");
            assert!(!err.to_string().contains("exclusive()"), "{err}");
        }
        let pong: String = ex.query(cmd("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
    }

    async fn an_open_multi_does_not_reach_the_next_holder(kind) {
        let server = TestServer::start(kind);
        let client = pool_of_one(&server.url()).await;
        let first = client.exclusive().await.unwrap();
        first.query::<()>(cmd("MULTI")).await.unwrap();
        first.query::<Value>(cmd("SET").arg("k").arg(1)).await.unwrap();
        drop(first);
        let second = client.exclusive().await.unwrap();
        let v: Value = second.query(cmd("GET").arg("k")).await.unwrap();
        assert_eq!(v, Value::Nil, "the next holder's command was queued in the old MULTI");
    }
}
