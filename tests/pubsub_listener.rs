//! Listener routing, and pub/sub over the shared RESP3 connection.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::wait_until;
use futures::StreamExt;
use kermes::prelude::*;
use kermes::pubsub::{Event, Listener, MessageKind, handler};
use kermes::testing::TestServer;

type Seen = Arc<Mutex<Vec<String>>>;

fn recorder(seen: &Seen, tag: &'static str) -> kermes::pubsub::Handler {
    let seen = seen.clone();
    handler(move |m| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(format!(
                "{tag}:{}:{}",
                m.channel_str(),
                m.payload_as::<String>().unwrap()
            ))
        }
    })
}

fn count(seen: &Seen) -> usize {
    seen.lock().unwrap().len()
}

server_tests! {
    async fn channel_and_pattern_handlers_both_fire_for_one_message(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let seen: Seen = Default::default();
        let handlers = HashMap::from([
            ("orders".to_string(), recorder(&seen, "channel")),
            ("ord*".to_string(), recorder(&seen, "pattern")),
        ]);
        let listener = Listener::from_map(&client, handlers).await.unwrap();
        assert_eq!(client.publish("orders", "o1").await.unwrap(), 2);
        wait_until(Duration::from_secs(5), "both handlers ran", || count(&seen) == 2).await;
        let mut got = seen.lock().unwrap().clone();
        got.sort();
        assert_eq!(got, ["channel:orders:o1", "pattern:orders:o1"]);
        listener.close().await;
        assert_eq!(client.publish("orders", "o2").await.unwrap(), 0, "close() unsubscribes");
    }

    async fn handlers_change_while_running_and_events_reach_their_handler(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let seen: Seen = Default::default();
        let events: Arc<Mutex<Vec<Event>>> = Default::default();
        let listener = Listener::new(&client).await.unwrap();
        let log = events.clone();
        listener.on_event(move |e| {
            let log = log.clone();
            async move { log.lock().unwrap().push(e) }
        });
        let s = seen.clone();
        listener.on_channel("a", move |m| {
            let s = s.clone();
            async move { s.lock().unwrap().push(m.channel_str().into_owned()) }
        }).await.unwrap();
        // A handler that panics is contained.
        listener.on_channel("boom", |_| async { panic!("handler bug") }).await.unwrap();
        client.publish("boom", "x").await.unwrap();
        client.publish("a", "1").await.unwrap();
        wait_until(Duration::from_secs(5), "a handled after the panic", || count(&seen) == 1).await;
        listener.remove("a").await.unwrap();
        assert_eq!(client.publish("a", "2").await.unwrap(), 0);
        let s = seen.clone();
        listener.on_pattern("b.*", move |m| {
            let s = s.clone();
            async move { s.lock().unwrap().push(m.channel_str().into_owned()) }
        }).await.unwrap();
        client.publish("b.1", "3").await.unwrap();
        wait_until(Duration::from_secs(5), "pattern handled", || count(&seen) == 2).await;
        // A dropped connection reaches the event handler.
        client.cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").exec().await.unwrap();
        wait_until(Duration::from_secs(5), "reconnect reported", || events.lock().unwrap().contains(&Event::Reconnected)).await;
        listener.close().await;
    }

    async fn shared_connection_pubsub_interleaves_with_commands(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.shared_subscriber().unwrap();
        sub.subscribe("feed").await.unwrap();
        let publisher = Client::connect(&server.url()).await.unwrap();
        let publishing = tokio::spawn(async move {
            for i in 0..10_000i64 {
                publisher.publish("feed", i).await.unwrap();
            }
        });
        // Ordinary commands on the same connection as the push frames, all matched.
        let commands = {
            let client = client.clone();
            tokio::spawn(async move {
                for i in 0..10_000i64 {
                    let v: i64 = client.echo(i.to_string()).to().await.unwrap();
                    assert_eq!(v, i);
                }
            })
        };
        for expected in 0..10_000i64 {
            let event = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
            let Event::Message(m) = event else { panic!("{event:?}") };
            assert_eq!((m.kind, m.payload_as::<i64>().unwrap()), (MessageKind::Channel, expected));
        }
        publishing.await.unwrap();
        commands.await.unwrap();
        sub.unsubscribe(()).await.unwrap();
        assert_eq!(client.publish("feed", "x").await.unwrap(), 0);
    }

    async fn shared_subscriptions_come_back_after_a_reconnect(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.shared_subscriber().unwrap();
        sub.psubscribe("s.*").await.unwrap();
        let id = client.client_id().await.unwrap();
        let admin = Client::connect(&server.url()).await.unwrap();
        admin.cmd("CLIENT").arg("KILL").arg("ID").arg(id).exec().await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
        assert_eq!(first, Event::Reconnected);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while admin.publish("s.1", "back").await.unwrap() == 0 {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let Event::Message(m) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap() else { panic!() };
        assert_eq!(m.payload_as::<String>().unwrap(), "back");
    }

    async fn shared_subscriber_needs_resp3(kind) {
        let server = TestServer::start(kind);
        let resp2 = Client::connect(&format!("{}?protocol=resp2", server.url())).await.unwrap();
        assert!(resp2.shared_subscriber().err().unwrap().is_config());
    }

    async fn one_shared_subscriber_leaving_does_not_cancel_another(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let publisher = Client::connect(&server.url()).await.unwrap();
        let mut a = client.shared_subscriber().unwrap();
        let mut b = client.shared_subscriber().unwrap();
        a.subscribe("ch").await.unwrap();
        b.subscribe("ch").await.unwrap();
        a.psubscribe("p.*").await.unwrap();
        b.psubscribe("p.*").await.unwrap();
        // A unsubscribes: B still receives, and A does not.
        a.unsubscribe("ch").await.unwrap();
        a.punsubscribe(()).await.unwrap();
        assert_eq!(publisher.publish("ch", "1").await.unwrap(), 1, "B's subscription was cancelled by A's unsubscribe");
        let Event::Message(m) = tokio::time::timeout(Duration::from_secs(5), b.next()).await.unwrap().unwrap() else { panic!() };
        assert_eq!(m.payload_as::<String>().unwrap(), "1");
        assert_eq!(publisher.publish("p.x", "2").await.unwrap(), 1, "B's pattern was cancelled by A's punsubscribe");
        let Event::Message(m) = tokio::time::timeout(Duration::from_secs(5), b.next()).await.unwrap().unwrap() else { panic!() };
        assert_eq!(m.payload_as::<String>().unwrap(), "2");
        assert!(tokio::time::timeout(Duration::from_millis(200), a.next()).await.is_err(), "A still receives");
        // A subscribes again, then is dropped: B still receives.
        a.subscribe("ch").await.unwrap();
        drop(a);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(publisher.publish("ch", "3").await.unwrap(), 1, "dropping A cancelled B's subscription");
        let Event::Message(m) = tokio::time::timeout(Duration::from_secs(5), b.next()).await.unwrap().unwrap() else { panic!() };
        assert_eq!(m.payload_as::<String>().unwrap(), "3");
        // The last one leaving ends the subscription on the server.
        b.unsubscribe(()).await.unwrap();
        b.punsubscribe(()).await.unwrap();
        assert_eq!(publisher.publish("ch", "4").await.unwrap(), 0);
        assert_eq!(publisher.publish("p.x", "5").await.unwrap(), 0);
    }
}
