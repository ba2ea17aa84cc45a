//! Subscriber: routing, dynamic changes, volume, lag, resubscribe after faults, sharded.

#[macro_use]
mod common;

use std::time::Duration;

use futures::StreamExt;
use kermes::prelude::*;
use kermes::pubsub::{Event, Message, MessageKind, Subscriber, SubscriberOptions};
use kermes::testing::TestServer;

/// The next message, skipping notices; fails after 5 s.
async fn next_message(sub: &mut Subscriber) -> Message {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), sub.next())
            .await
            .expect("no event within 5 s")
            .expect("stream ended");
        if let Event::Message(m) = event {
            return m;
        }
    }
}

/// Publishes until a subscriber on `channel` exists, for subscriptions made in the
/// background after a reconnect.
async fn publish_when_subscribed(client: &Client, channel: &str, payload: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.publish(channel, payload).await.unwrap_or(0) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nobody resubscribed to {channel}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

server_tests! {
    async fn channel_and_pattern_subscriptions_both_receive_a_message(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("news.tech").await.unwrap();
        sub.psubscribe("news.*").await.unwrap();
        assert_eq!(client.publish("news.tech", "rust 2.0").await.unwrap(), 2);
        let first = next_message(&mut sub).await;
        let second = next_message(&mut sub).await;
        assert_eq!((first.kind, second.kind), (MessageKind::Channel, MessageKind::Pattern));
        assert_eq!(second.pattern.as_deref(), Some(&b"news.*"[..]));
        assert_eq!(second.channel_str(), "news.tech");
        assert_eq!(first.payload_as::<String>().unwrap(), "rust 2.0");
    }

    async fn subscriptions_change_while_messages_flow(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.subscriber().await.unwrap();
        let handle = sub.handle();
        sub.subscribe(["a", "b"]).await.unwrap();
        sub.subscribe("a").await.unwrap(); // twice is harmless
        let publisher = client.clone();
        let flow = tokio::spawn(async move {
            for i in 0..200 {
                publisher.publish("a", i).await.unwrap();
            }
        });
        // Changed from another task while the stream is being read.
        let changer = tokio::spawn(async move {
            handle.unsubscribe("b").await.unwrap();
            handle.subscribe("c").await.unwrap();
        });
        let mut last = -1;
        while last < 199 {
            let m = next_message(&mut sub).await;
            assert_eq!(m.channel_str(), "a");
            let n: i64 = m.payload_as().unwrap();
            assert_eq!(n, last + 1, "messages arrive in order");
            last = n;
        }
        flow.await.unwrap();
        changer.await.unwrap();
        assert_eq!(client.publish("b", "gone").await.unwrap(), 0);
        assert_eq!(client.publish("c", "new").await.unwrap(), 1);
        assert_eq!(next_message(&mut sub).await.channel_str(), "c");
        sub.unsubscribe(()).await.unwrap();
        assert_eq!(client.publish("a", "x").await.unwrap(), 0);
    }

    async fn a_fast_consumer_gets_100_000_messages_in_order(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("firehose").await.unwrap();
        let publisher = client.clone();
        tokio::spawn(async move {
            for chunk in 0..100 {
                let sends = (0..1000).map(|i| publisher.publish("firehose", chunk * 1000 + i));
                // Concurrent within a chunk would reorder nothing: one connection, FIFO.
                for r in futures::future::join_all(sends).await {
                    r.unwrap();
                }
            }
        });
        for expected in 0..100_000i64 {
            let event = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
            let Event::Message(m) = event else { panic!("unexpected {event:?} at {expected}") };
            assert_eq!(m.payload_as::<i64>().unwrap(), expected);
        }
    }

    async fn a_slow_consumer_is_told_how_many_events_it_lost(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.subscriber_with(SubscriberOptions::default().buffer(16)).await.unwrap();
        sub.subscribe("busy").await.unwrap();
        for i in 0..500 {
            client.publish("busy", i).await.unwrap();
        }
        // Let the task read everything while nobody consumes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (mut messages, mut lost) = (0u64, 0u64);
        while messages + lost < 500 {
            match tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap() {
                Event::Message(_) => messages += 1,
                Event::Lagged(n) => lost += n,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(messages + lost, 500, "every message is either delivered or counted");
        assert!(lost > 0 && messages >= 16, "messages {messages}, lost {lost}");
    }

    async fn client_kill_resubscribes_and_reports_the_gap(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("ch").await.unwrap();
        sub.psubscribe("p.*").await.unwrap();
        let killed: i64 = client.cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query().await.unwrap();
        assert_eq!(killed, 1);
        let first = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        assert_eq!(first, Event::Reconnected);
        publish_when_subscribed(&client, "ch", "after").await;
        assert_eq!(next_message(&mut sub).await.payload_as::<String>().unwrap(), "after");
        publish_when_subscribed(&client, "p.x", "pattern-after").await;
        assert_eq!(next_message(&mut sub).await.kind, MessageKind::Pattern);
    }

    async fn a_server_restart_is_survived(kind) {
        let mut server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.subscriber().await.unwrap();
        sub.subscribe("ch").await.unwrap();
        server.restart();
        let first = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap();
        assert_eq!(first, Event::Reconnected);
        publish_when_subscribed(&client, "ch", "back").await;
        assert_eq!(next_message(&mut sub).await.payload_as::<String>().unwrap(), "back");
    }

    async fn keepalive_detects_a_silently_dead_connection(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client
            .subscriber_with(SubscriberOptions::default().keepalive(Duration::from_millis(200)))
            .await
            .unwrap();
        sub.subscribe("ch").await.unwrap();
        // The server stops answering for a while; the unanswered PING ends the connection.
        client.cmd("DEBUG").arg("SLEEP").arg(1).timeout(Duration::from_secs(5)).exec().await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), sub.next()).await.unwrap().unwrap();
        assert_eq!(first, Event::Reconnected);
        publish_when_subscribed(&client, "ch", "alive").await;
        assert_eq!(next_message(&mut sub).await.payload_as::<String>().unwrap(), "alive");
    }

    async fn sharded_pubsub_works_on_a_single_node(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let mut sub = client.subscriber().await.unwrap();
        sub.ssubscribe("orders{eu}").await.unwrap();
        assert_eq!(client.spublish("orders{eu}", "o-1").await.unwrap(), 1);
        let m = next_message(&mut sub).await;
        assert_eq!((m.kind, m.channel_str().into_owned()), (MessageKind::Shard, "orders{eu}".to_string()));
        sub.sunsubscribe(()).await.unwrap();
        assert_eq!(client.spublish("orders{eu}", "o-2").await.unwrap(), 0);
    }
}
