//! MONITOR as a stream: entries, reconnects reported like a subscriber's, and bad input
//! from the network turned into errors.

#[macro_use]
mod common;

use std::time::Duration;

use common::FakeServer;
use futures::StreamExt;
use kermes::prelude::*;
use kermes::pubsub::{Monitor, MonitorEntry, MonitorEvent};
use kermes::testing::TestServer;

/// The next entry for `command`, skipping others; fails after 5 s.
async fn next_entry(monitor: &mut Monitor, command: &str) -> MonitorEntry {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), monitor.next())
            .await
            .expect("no MONITOR event within 5 s")
            .expect("the MONITOR stream ended")
            .expect("a MONITOR line failed to parse");
        if let MonitorEvent::Entry(entry) = event
            && entry.command.eq_ignore_ascii_case(command)
        {
            return entry;
        }
    }
}

server_tests! {
    async fn monitor_sees_commands_from_another_client(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut monitor = client.monitor().await.unwrap();
        let other = Client::connect(&format!("{}/4", server.url())).await.unwrap();
        other.set("watched key", "a \"quoted\"\nvalue").await.unwrap();
        let entry = next_entry(&mut monitor, "SET").await;
        assert_eq!(entry.db, 4);
        assert_eq!(entry.args[0], "watched key");
        assert_eq!(entry.args[1], "a \"quoted\"\nvalue");
        assert!(entry.client.starts_with("127.0.0.1:"), "{}", entry.client);
    }

    async fn monitor_reconnects_and_reports_the_gap(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut monitor = client.monitor().await.unwrap();
        client.set("before", 1).await.unwrap();
        next_entry(&mut monitor, "SET").await;
        // Find the MONITOR connection (flag O) and kill it.
        let list: String = client.cmd("CLIENT").arg("LIST").query().await.unwrap();
        let id = list
            .lines()
            .find(|l| l.split(' ').any(|f| f == "flags=O"))
            .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .expect("a MONITOR connection in CLIENT LIST")
            .to_string();
        client.cmd("CLIENT").arg("KILL").arg("ID").arg(&id).exec().await.unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match monitor.next().await.expect("the MONITOR stream ended") {
                    Ok(MonitorEvent::Reconnected) => return,
                    Ok(_) => continue,
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await;
        assert!(event.is_ok(), "no Reconnected within 10 s");
        // Entries flow again once MONITOR is back on.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            client.set("after", 2).await.unwrap();
            match tokio::time::timeout(Duration::from_millis(200), monitor.next()).await {
                Ok(Some(Ok(MonitorEvent::Entry(e)))) if e.args.first().is_some_and(|a| a == "after") => break,
                _ => assert!(tokio::time::Instant::now() < deadline, "MONITOR did not come back"),
            }
        }
    }
}

#[tokio::test]
async fn bad_timestamps_from_the_network_are_errors_not_panics() {
    let server = FakeServer::start(|_, args| match &args[0].to_ascii_uppercase()[..] {
        b"MONITOR" => [
            "+OK\r\n",
            "+inf [0 1.2.3.4:5] \"GET\" \"a\"\r\n",
            "+NaN [0 1.2.3.4:5] \"GET\" \"b\"\r\n",
            "+-1.5 [0 1.2.3.4:5] \"GET\" \"c\"\r\n",
            "+1e300 [0 1.2.3.4:5] \"GET\" \"d\"\r\n",
            "+1700000000.5 [0 1.2.3.4:5] \"GET\" \"e\"\r\n",
        ]
        .concat()
        .into_bytes(),
        _ => b"+PONG\r\n".to_vec(),
    })
    .await;
    let client = Client::connect(&server.url()).await.unwrap();
    let mut monitor = client.monitor().await.unwrap();
    for _ in 0..4 {
        let item = tokio::time::timeout(Duration::from_secs(5), monitor.next())
            .await
            .unwrap()
            .unwrap();
        let err = item.expect_err("a timestamp that is not a time is an error");
        assert!(err.is_protocol(), "{err}");
    }
    let item = tokio::time::timeout(Duration::from_secs(5), monitor.next())
        .await
        .unwrap()
        .unwrap();
    let MonitorEvent::Entry(entry) = item.unwrap() else {
        panic!("expected an entry")
    };
    assert_eq!(entry.args[0], "e");
}
