//! Network faults between a client and a real server, injected by the in-process
//! `FaultProxy`: truncated and corrupt replies, dropped connections, delays, and a
//! subscriber on a network that goes silent.

#[macro_use]
mod common;

use std::time::Duration;

use common::eventually;
use futures::StreamExt;
use kermes::pubsub::{Event, SubscriberOptions};
use kermes::testing::{Fault, FaultProxy, TestServer};
use kermes::{Client, Value};
use tokio::time::Instant;

async fn setup(kind: kermes::testing::ServerKind) -> (TestServer, FaultProxy, Client) {
    let server = TestServer::start(kind);
    let proxy = FaultProxy::start(server.port()).await.unwrap();
    let client = Client::builder()
        .url(&proxy.url())
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    client.cmd("SET").arg("k").arg("v").exec().await.unwrap();
    (server, proxy, client)
}

/// The client answers again, by itself, within 10 s.
async fn recovers(client: &Client) {
    let v: String = eventually(Duration::from_secs(10), || {
        client.cmd("GET").arg("k").query()
    })
    .await;
    assert_eq!(v, "v");
}

server_tests! {
    async fn a_truncated_reply_fails_its_command_and_the_client_recovers(kind) {
        let (_server, proxy, client) = setup(kind).await;
        proxy.truncate_next_reply();
        let err = tokio::time::timeout(Duration::from_secs(5), client.cmd("GET").arg("k").query::<String>())
            .await
            .expect("a reply cut short must fail its command, not hang")
            .unwrap_err();
        assert!(err.is_closed() || err.is_io(), "{err}");
        recovers(&client).await;
        assert!(proxy.accepted() >= 2, "the client should have reconnected");
    }

    async fn a_corrupt_reply_is_a_protocol_error_and_the_client_recovers(kind) {
        let (_server, proxy, client) = setup(kind).await;
        proxy.corrupt_next_reply();
        let err = tokio::time::timeout(Duration::from_secs(5), client.cmd("GET").arg("k").query::<String>())
            .await
            .expect("a corrupt reply must fail its command, not hang")
            .unwrap_err();
        assert!(err.is_protocol(), "{err}");
        recovers(&client).await;
    }

    async fn dropped_connections_fail_fast_while_they_last_and_the_client_recovers(kind) {
        let (_server, proxy, client) = setup(kind).await;
        proxy.set(Fault::DropConnections);
        let started = Instant::now();
        for _ in 0..5 {
            let err = client.cmd("GET").arg("k").query::<String>().await.unwrap_err();
            assert!(err.is_closed() || err.is_io() || err.is_connect(), "{err}");
        }
        assert!(started.elapsed() < Duration::from_secs(3), "failing took {:?}", started.elapsed());
        proxy.set(Fault::Pass);
        recovers(&client).await;
    }

    async fn a_slow_network_delays_replies_within_the_response_timeout_and_fails_past_it(kind) {
        let (_server, proxy, client) = setup(kind).await;
        proxy.set(Fault::Delay(Duration::from_millis(100)));
        let started = Instant::now();
        let v: String = client.cmd("GET").arg("k").query().await.unwrap();
        assert_eq!(v, "v");
        assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
        let err = client
            .cmd("GET")
            .arg("k")
            .timeout(Duration::from_millis(50))
            .query::<String>()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        // The late reply is read and dropped; the next command gets its own.
        let echo: String = client.cmd("ECHO").arg("mine").query().await.unwrap();
        assert_eq!(echo, "mine");
    }

    async fn a_subscriber_on_a_silent_network_reconnects_and_resubscribes_when_it_heals(kind) {
        let (server, proxy, client) = setup(kind).await;
        let publisher = Client::connect(&server.url()).await.unwrap();
        let mut sub = client
            .subscriber_with(SubscriberOptions::default().keepalive(Duration::from_millis(200)))
            .await
            .unwrap();
        sub.subscribe("ch").await.unwrap();
        proxy.set(Fault::BlackHole);
        // Nothing arrives while the network is silent; the keepalive notices.
        tokio::time::sleep(Duration::from_millis(800)).await;
        proxy.set(Fault::Pass);
        let event = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
        assert_eq!(event, Event::Reconnected);
        let deadline = Instant::now() + Duration::from_secs(10);
        while publisher.cmd("PUBLISH").arg("ch").arg("back").query::<i64>().await.unwrap() == 0 {
            assert!(Instant::now() < deadline, "the subscriber did not resubscribe");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let event = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        let Event::Message(m) = event else { panic!("{event:?}") };
        assert_eq!(m.payload_as::<String>().unwrap(), "back");
        let _: Value = client.cmd("PING").query().await.unwrap();
    }
}
