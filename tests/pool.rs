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
        assert!(err.is_config() && err.to_string().contains("subscriber()"), "{err}");
        let pong: String = ex.query(cmd("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
    }
}
