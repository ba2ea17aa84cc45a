//! Carmine's helpers: INFO maps, scan streams, compare-and-set, swap.

#[macro_use]
mod common;

use std::collections::HashSet;

use bytes::Bytes;
use futures::TryStreamExt;
use kermes::helpers::{
    compare_and_set, hscan_stream, info_map, scan_stream, sscan_stream, swap, zscan_stream,
};
use kermes::prelude::*;
use kermes::testing::TestServer;

server_tests! {
    async fn info_is_parsed_into_sections(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        c.set("k", 1).await.unwrap();
        let info = info_map(&c, "all").await.unwrap();
        assert!(info.get("server", "tcp_port").unwrap().parse::<u16>().unwrap() > 0);
        assert!(info.get("keyspace", "db0").unwrap().starts_with("keys=1,"));
        assert!(info.section("memory").unwrap().contains_key("used_memory"));
    }

    async fn scan_streams_return_every_key_once(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let pipe = c.pipeline();
        for i in 0..10_000 {
            pipe.set(format!("key:{i}"), i);
        }
        pipe.set("other", 0);
        pipe.run().await.unwrap();
        let keys: Vec<String> = scan_stream(&c, Some("key:*")).try_collect().await.unwrap();
        assert_eq!(keys.len(), 10_000);
        assert_eq!(keys.iter().collect::<HashSet<_>>().len(), 10_000, "no duplicates");
        let members: Vec<i64> = (0..3000).collect();
        c.sadd("set", &members).await.unwrap();
        let got: HashSet<i64> = sscan_stream::<i64>(&c, "set", None).try_collect().await.unwrap();
        assert_eq!(got.len(), 3000);
        let fields: Vec<(String, i64)> = (0..2000).map(|i| (format!("f{i}"), i)).collect();
        c.hset("hash", &fields).await.unwrap();
        let mut pairs: Vec<(String, i64)> = hscan_stream(&c, "hash", Some("f1*")).try_collect().await.unwrap();
        pairs.sort();
        assert_eq!(pairs.len(), 1 + 10 + 100 + 1000);
        assert!(pairs.iter().all(|(f, v)| *f == format!("f{v}")));
        let scored: Vec<(f64, String)> = (0..1500).map(|i| (i as f64, format!("m{i}"))).collect();
        c.zadd("z", &scored).await.unwrap();
        let z: Vec<(String, f64)> = zscan_stream(&c, "z", None).try_collect().await.unwrap();
        assert_eq!(z.len(), 1500);
        assert!(z.iter().all(|(m, s)| *m == format!("m{s}")));
    }

    async fn compare_and_set_and_swap(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        assert!(compare_and_set(&c, "cas", None, "v1").await.unwrap());
        assert!(!compare_and_set(&c, "cas", None, "v2").await.unwrap());
        assert!(!compare_and_set(&c, "cas", Some(b"wrong"), "v2").await.unwrap());
        assert!(compare_and_set(&c, "cas", Some(b"v1"), "v2").await.unwrap());
        assert_eq!(c.get("cas").to::<String>().await.unwrap(), "v2");

        let new = swap(&c, "sw", 10, |old| {
            let n: i64 = old.map_or(0, |b| std::str::from_utf8(&b).unwrap().parse().unwrap());
            Some(Bytes::from((n + 5).to_string()))
        })
        .await
        .unwrap();
        assert_eq!(new.as_deref(), Some(&b"5"[..]));
        let gone = swap(&c, "sw", 10, |_| None).await.unwrap();
        assert_eq!(gone, None);
        assert_eq!(c.exists("sw").await.unwrap(), 0);
    }
}
