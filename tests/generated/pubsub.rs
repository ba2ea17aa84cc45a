//! Generated pub/sub commands: publishing and introspection (subscribing is the Subscriber's).

use std::time::Duration;

use kermes::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

crate::group_tests! {
    async fn publish_reaches_subscribers_and_introspection_sees_them(t) {
        let c = &t.c;
        if t.skip_on_cluster("classic subscriptions and PUBSUB CHANNELS are per node (tests/cluster_pubsub.rs covers a cluster)") {
            return;
        }
        assert_eq!(c.publish("news", "nobody listens").await.unwrap(), 0);
        // A bare subscriber speaking RESP by hand.
        let mut sub = tokio::net::TcpStream::connect(("127.0.0.1", t.port)).await.unwrap();
        sub.write_all(b"SUBSCRIBE news\r\nPSUBSCRIBE n*\r\n").await.unwrap();
        let mut buf = vec![0u8; 256];
        let mut got = 0;
        while !String::from_utf8_lossy(&buf[..got]).contains("psubscribe") {
            got += tokio::time::timeout(Duration::from_secs(5), sub.read(&mut buf[got..])).await.unwrap().unwrap();
        }
        let channels: Vec<String> = c.pubsub_channels().to().await.unwrap();
        assert_eq!(channels, ["news"]);
        let counts: Vec<(String, i64)> = c.pubsub_numsub_with(["news", "none"]).to().await.unwrap();
        assert_eq!(counts, [("news".into(), 1), ("none".into(), 0)]);
        assert_eq!(c.pubsub_numpat().await.unwrap(), 1);
        // Channel and pattern subscription both receive it.
        assert_eq!(c.publish("news", "hello").await.unwrap(), 2);
        assert_eq!(c.spublish("shard", "x").await.unwrap(), 0);
    }
}
