//! Sharded pub/sub on real clusters: each shard channel subscribed on the primary of its
//! slot, and kept there when the slot moves, when a replica takes over gracefully and when
//! a primary is killed.

#[macro_use]
mod common;

use std::time::Duration;

use futures::StreamExt;
use kermes::Client;
use kermes::cluster::key_slot;
use kermes::prelude::*;
use kermes::pubsub::{Event, MessageKind, Subscriber};
use kermes::testing::ClusterSet;
use tokio::time::Instant;

/// A channel name served by each of the three primaries, in node order.
fn channel_per_primary(set: &ClusterSet) -> Vec<String> {
    (0..3)
        .map(|node| {
            (0..)
                .map(|i| format!("events:{i}"))
                .find(|c| set.owner_of(key_slot(c.as_bytes()), 0) == Some(set.port(node)))
                .unwrap()
        })
        .collect()
}

/// The index (0-2) of the primary serving `channel`'s slot now.
fn primary_of(set: &ClusterSet, channel: &str, asked: usize) -> usize {
    let port = set.owner_of(key_slot(channel.as_bytes()), asked).unwrap();
    (0..6).find(|&i| set.port(i) == port).unwrap()
}

/// The next message, skipping other events; `Reconnected` events are counted.
async fn next_message(sub: &mut Subscriber, reconnects: &mut usize) -> kermes::pubsub::Message {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match sub.next().await.expect("the subscriber ended") {
                Event::Message(m) => return m,
                Event::Reconnected => *reconnects += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await
    .expect("no message within 10 s")
}

/// The next message with `payload`, skipping earlier ones: a publish that counted no
/// subscriber while one was moving may still have reached it (a demoted primary relays its
/// shard's messages until it drops the subscription).
async fn message_with(sub: &mut Subscriber, payload: &str, reconnects: &mut usize) {
    while next_message(sub, reconnects)
        .await
        .payload_as::<String>()
        .unwrap()
        != payload
    {}
}

/// Publishes to `channel` until a subscriber on its shard counts it (the subscriber may be
/// moving), for at most `within`.
async fn publish_until_heard(client: &Client, channel: &str, payload: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match client.spublish(channel, payload).await {
            Ok(1) => return,
            Ok(n) => assert_eq!(n, 0, "{n} subscribers of {channel}: subscribed twice"),
            Err(e) => eprintln!("SPUBLISH {channel}: {e}"),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no subscriber of {channel} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

server_tests! {
    async fn shard_channels_are_subscribed_on_the_node_of_their_slot(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let channels = channel_per_primary(&set);
        let mut sub = client.subscriber().await.unwrap();
        sub.ssubscribe(&channels).await.unwrap();
        sub.subscribe("classic").await.unwrap();
        let mut reconnects = 0;
        for ch in &channels {
            // SPUBLISH counts the subscribers of the node it ran on: 1 means ours is there.
            assert_eq!(client.spublish(ch, ch).await.unwrap(), 1, "{ch}");
            let m = next_message(&mut sub, &mut reconnects).await;
            assert_eq!((m.kind, m.channel_str().into_owned()), (MessageKind::Shard, ch.clone()));
            assert_eq!(m.payload_as::<String>().unwrap(), *ch);
        }
        client.publish("classic", "c").await.unwrap();
        let m = next_message(&mut sub, &mut reconnects).await;
        assert_eq!(m.kind, MessageKind::Channel);
        // Subscribing again is harmless: still one subscription per channel.
        sub.ssubscribe(&channels[0]).await.unwrap();
        assert_eq!(client.spublish(&channels[0], "again").await.unwrap(), 1);
        next_message(&mut sub, &mut reconnects).await;
        sub.sunsubscribe(&channels[0]).await.unwrap();
        assert_eq!(client.spublish(&channels[0], "gone").await.unwrap(), 0);
        assert_eq!(client.spublish(&channels[1], "kept").await.unwrap(), 1);
        assert_eq!(next_message(&mut sub, &mut reconnects).await.payload_as::<String>().unwrap(), "kept");
        // A handle changes the shard subscriptions from another task.
        let handle = sub.handle();
        tokio::spawn(async move { handle.ssubscribe(["events:other"]).await }).await.unwrap().unwrap();
        assert_eq!(client.spublish("events:other", "x").await.unwrap(), 1);
        sub.close().await.unwrap();
        for ch in &channels {
            assert_eq!(client.spublish(ch, "after close").await.unwrap(), 0, "{ch}");
        }
        assert_eq!(client.publish("classic", "after close").await.unwrap(), 0);
        assert_eq!(reconnects, 0);
    }

    async fn a_sharded_subscriber_follows_a_slot_move_and_a_graceful_failover(kind) {
        let set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let channels = channel_per_primary(&set);
        let mut sub = client.subscriber().await.unwrap();
        sub.ssubscribe(&channels).await.unwrap();
        let mut reconnects = 0;
        // The slot of the first channel moves to the second primary.
        let slot = key_slot(channels[0].as_bytes());
        set.migrate_slot(slot, 0, 1, 10, Duration::ZERO).unwrap();
        publish_until_heard(&client, &channels[0], "moved", Duration::from_secs(10)).await;
        message_with(&mut sub, "moved", &mut reconnects).await;
        assert!(reconnects >= 1, "the move was not reported with Event::Reconnected");
        assert_eq!(primary_of(&set, &channels[0], 1), 1);
        // The third primary's replica takes over; the old primary stays up as a replica.
        let replica = Client::connect(&format!("redis://127.0.0.1:{}", set.port(5))).await.unwrap();
        replica.cmd("CLUSTER").arg("FAILOVER").exec().await.unwrap();
        common::wait_until(Duration::from_secs(30), "the failover", || {
            set.owner_of(key_slot(channels[2].as_bytes()), 2) == Some(set.port(5))
        })
        .await;
        let before = reconnects;
        publish_until_heard(&client, &channels[2], "failed over", Duration::from_secs(15)).await;
        message_with(&mut sub, "failed over", &mut reconnects).await;
        assert!(reconnects > before, "the failover was not reported with Event::Reconnected");
        // The channel that never moved kept its one subscription throughout.
        assert_eq!(client.spublish(&channels[1], "still").await.unwrap(), 1);
        message_with(&mut sub, "still", &mut reconnects).await;
    }

    async fn a_sharded_subscriber_follows_a_killed_primary(kind) {
        let mut set = ClusterSet::start(kind);
        let client = Client::connect(&set.url()).await.unwrap();
        let channels = channel_per_primary(&set);
        let mut sub = client.subscriber().await.unwrap();
        sub.ssubscribe(&channels).await.unwrap();
        let mut reconnects = 0;
        let killed = Instant::now();
        set.node(0).kill();
        publish_until_heard(&client, &channels[0], "after kill", Duration::from_secs(30)).await;
        eprintln!("{kind:?}: from kill -9 to a shard subscriber on the promoted replica: {:?}", killed.elapsed());
        message_with(&mut sub, "after kill", &mut reconnects).await;
        assert!(reconnects >= 1, "the failover was not reported with Event::Reconnected");
        assert_eq!(primary_of(&set, &channels[0], 1), 3, "the replica serves the slot");
        for ch in &channels[1..] {
            assert_eq!(client.spublish(ch, ch).await.unwrap(), 1, "{ch}");
            message_with(&mut sub, ch, &mut reconnects).await;
        }
    }
}
