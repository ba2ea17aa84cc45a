//! Pub/sub, chat style: a room subscriber reading a stream, a pattern listener auditing every
//! room, and publishers.
//!
//! Uses `REDIS_URL` when set; otherwise starts a throwaway server from a local binary.
//!
//!     cargo run --example pubsub

use std::time::Duration;

use futures::StreamExt;
use kermes::prelude::*;
use kermes::pubsub::{Event, Listener};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;

    // Alice reads room:rust as a stream, on a connection of her own.
    let mut alice = client.subscriber().await?;
    alice.subscribe("room:rust").await?;

    // A moderator listens to every room through a pattern handler (Carmine's listener).
    let moderator = Listener::new(&client).await?;
    moderator
        .on_pattern("room:*", |m| async move {
            println!(
                "[moderator] {} said {:?}",
                m.channel_str(),
                m.payload_as::<String>().unwrap_or_default()
            );
        })
        .await?;
    moderator.on_event(|e| async move { println!("[moderator] connection event: {e:?}") });

    // Bob and Carol publish.
    for (who, room, text) in [
        ("bob", "room:rust", "anyone tried kermes?"),
        ("carol", "room:rust", "yes, pub/sub is a Stream"),
        ("carol", "room:go", "wrong room, sorry"),
    ] {
        let receivers = client.publish(room, format!("{who}: {text}")).await?;
        println!("[{who}] published to {room}, {receivers} receivers");
    }

    // Alice sees only room:rust, in order.
    for _ in 0..2 {
        match tokio::time::timeout(Duration::from_secs(5), alice.next()).await? {
            Some(Event::Message(m)) => println!("[alice] {}", m.payload_as::<String>()?),
            Some(other) => println!("[alice] {other:?}"),
            None => break,
        }
    }

    // Give the moderator's handler a moment, then shut down cleanly.
    tokio::time::sleep(Duration::from_millis(100)).await;
    moderator.close().await;
    println!("done");
    Ok(())
}
