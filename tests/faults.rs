//! Faults for real: a killed server, a killed connection, malformed and oversized replies,
//! a server that dies mid-reply.

#[macro_use]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{FakeServer, eventually, resp, wait_until};
use futures::StreamExt;
use kermes::testing::TestServer;
use kermes::{Client, Limits, Value};

server_tests! {
    async fn kill_9_under_load_fails_in_flight_commands_and_recovers_after_restart(kind) {
        let mut server = TestServer::start(kind);
        let timeout = Duration::from_secs(2);
        let client = Client::builder()
            .url(&server.url())
            .response_timeout(timeout)
            .connect()
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (oks, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let load: Vec<_> = (0..50)
            .map(|_| {
                let (client, stop, oks, errors) = (client.clone(), stop.clone(), oks.clone(), errors.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        match client.cmd("INCR").arg("hits").query::<i64>().await {
                            Ok(_) => oks.fetch_add(1, Ordering::Relaxed),
                            Err(e) => {
                                assert!(e.is_closed() || e.is_io() || e.is_timeout(), "unexpected error kind: {e}");
                                // Every failure comes within the response timeout: nothing hangs.
                                assert!(started.elapsed() < timeout + Duration::from_millis(500), "{e} after {:?}", started.elapsed());
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                errors.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before_kill = oks.load(Ordering::Relaxed);
        assert!(before_kill > 0);
        server.kill();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(errors.load(Ordering::Relaxed) > 0, "no command failed while the server was dead");
        server.restart();
        // No action from the user: the client reconnects by itself.
        let after = oks.load(Ordering::Relaxed);
        wait_until(Duration::from_secs(10), "commands succeed after the restart", || {
            oks.load(Ordering::Relaxed) > after + 100
        })
        .await;
        stop.store(true, Ordering::Relaxed);
        for t in load {
            t.await.unwrap();
        }
        let pong: String = client.cmd("PING").query().await.unwrap();
        assert_eq!(pong, "PONG");
    }

    async fn client_kill_reconnects_transparently_keeping_db_and_name(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&format!("{}/7?client_name=survivor", server.url())).await.unwrap();
        client.cmd("SET").arg("k").arg("in-db-7").exec().await.unwrap();
        let id: i64 = client.cmd("CLIENT").arg("ID").query().await.unwrap();
        let admin = Client::connect(&server.url()).await.unwrap();
        let killed: i64 = admin.cmd("CLIENT").arg("KILL").arg("ID").arg(id).query().await.unwrap();
        assert_eq!(killed, 1);
        // A command racing the kill may fail (never silently replayed); the client recovers
        // on its own and the handshake state is restored.
        let v: String = eventually(Duration::from_secs(5), || client.cmd("GET").arg("k").query()).await;
        assert_eq!(v, "in-db-7");
        let new_id: i64 = client.cmd("CLIENT").arg("ID").query().await.unwrap();
        assert_ne!(new_id, id);
        let name: String = client.cmd("CLIENT").arg("GETNAME").query().await.unwrap();
        assert_eq!(name, "survivor");
    }

    async fn with_reconnect_disabled_a_dead_connection_fails_fast(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder()
            .url(&server.url())
            .reconnect(kermes::ReconnectPolicy::disabled())
            .shared_connections(1)
            .connect()
            .await
            .unwrap();
        let id: i64 = client.cmd("CLIENT").arg("ID").query().await.unwrap();
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.cmd("CLIENT").arg("KILL").arg("ID").arg(id).exec().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Whether the task saw the close first or the write did, the command fails at once.
        let err = client.cmd("PING").exec().await.unwrap_err();
        assert!(err.is_closed() || err.is_io(), "{err}");
        let err = client.cmd("PING").exec().await.unwrap_err();
        assert!(err.is_closed(), "{err}");
    }

    async fn with_one_shared_connection_per_worker_the_others_serve_while_one_is_dead(kind) {
        let server = TestServer::start(kind);
        // Two workers in this runtime: two shared connections by default.
        let client = Client::builder()
            .url(&server.url())
            .client_name("pair")
            .reconnect(kermes::ReconnectPolicy::disabled())
            .connect()
            .await
            .unwrap();
        let admin = Client::connect(&server.url()).await.unwrap();
        let list: String = admin.cmd("CLIENT").arg("LIST").query().await.unwrap();
        let ids: Vec<i64> = list
            .lines()
            .filter(|l| l.contains(" name=pair "))
            .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
            .collect();
        assert_eq!(ids.len(), 2, "{list}");
        let mut events = client.events();
        admin.cmd("CLIENT").arg("KILL").arg("ID").arg(ids[0]).exec().await.unwrap();
        // Once the killed connection knows it is dead, no command may be sent through it.
        tokio::time::timeout(Duration::from_secs(5), async {
            while !matches!(events.next().await, Some(kermes::ConnectionEvent::Disconnected { .. })) {}
        })
        .await
        .expect("the killed connection noticed");
        // From every thread, every command reaches the server through the one left.
        let alive = ids[1];
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    for _ in 0..10 {
                        let id: i64 = client.cmd("CLIENT").arg("ID").query().await.unwrap();
                        assert_eq!(id, alive);
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_malformed_reply_is_a_protocol_error_and_the_connection_is_rebuilt() {
    let server = FakeServer::start(|conn, args| match (conn, &args[0][..]) {
        (0, b"GET") => b"$abc\r\n".to_vec(),
        (_, b"GET") => resp(&Value::Bulk("fine".into())),
        _ => b"+PONG\r\n".to_vec(),
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();
    let err = client
        .cmd("GET")
        .arg("k")
        .query::<String>()
        .await
        .unwrap_err();
    assert!(err.is_protocol(), "{err}");
    let v: String = eventually(Duration::from_secs(5), || {
        client.cmd("GET").arg("k").query()
    })
    .await;
    assert_eq!(v, "fine");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_oversized_reply_is_refused_before_it_is_buffered() {
    let server = FakeServer::start(|conn, args| match (conn, &args[0][..]) {
        // Announces 100 MiB, sends none of it: the limit must trip on the header alone.
        (0, b"GET") => b"$104857600\r\n".to_vec(),
        (_, b"GET") => resp(&Value::Bulk("small".into())),
        _ => b"+PONG\r\n".to_vec(),
    })
    .await;
    let mut limits = Limits::default();
    limits.max_bulk_len = 1024 * 1024;
    let client = Client::builder()
        .url(&server.url())
        .limits(limits)
        .connect()
        .await
        .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        client.cmd("GET").arg("k").query::<String>(),
    )
    .await
    .expect("the limit must trip without waiting for the payload")
    .unwrap_err();
    assert!(
        err.is_protocol() && err.to_string().contains("limit"),
        "{err}"
    );
    let v: String = eventually(Duration::from_secs(5), || {
        client.cmd("GET").arg("k").query()
    })
    .await;
    assert_eq!(v, "small");
}

#[tokio::test]
async fn a_server_dying_mid_reply_fails_the_command_and_loses_nothing_after() {
    let server = FakeServer::start(|conn, args| match (conn, &args[0][..]) {
        (0, b"GET") => b"$100\r\nonly part of it".to_vec(),
        (0, b"DIE") => b"CLOSE".to_vec(),
        (_, b"GET") => resp(&Value::Bulk("whole".into())),
        _ => b"+PONG\r\n".to_vec(),
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();
    let pending = {
        let client = client.clone();
        tokio::spawn(async move { client.cmd("GET").arg("k").query::<String>().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The fake closes the socket on the next command, cutting the reply short.
    let closer = client.clone();
    tokio::spawn(async move { closer.cmd("DIE").exec().await });
    let err = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(err.is_closed(), "{err}");
    let v: String = eventually(Duration::from_secs(5), || {
        client.cmd("GET").arg("k").query()
    })
    .await;
    assert_eq!(v, "whole");
}

#[tokio::test]
async fn a_reply_nobody_asked_for_is_a_protocol_error() {
    let server = FakeServer::start(|conn, args| match (conn, &args[0][..]) {
        (0, b"ECHO") => b"+one\r\n+two\r\n".to_vec(),
        (_, b"ECHO") => resp(&Value::Bulk(args[1].clone())),
        _ => b"+PONG\r\n".to_vec(),
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();
    // The first reply answers the ECHO; the second has no request and must not be given to
    // the next caller.
    let first: String = client.cmd("ECHO").arg("x").query().await.unwrap();
    assert_eq!(first, "one");
    let v: String = eventually(Duration::from_secs(5), || {
        client.cmd("ECHO").arg("again").query()
    })
    .await;
    assert_eq!(v, "again");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}
