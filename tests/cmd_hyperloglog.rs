//! Generated HyperLogLog commands.

#[macro_use]
mod common;

use kermes::prelude::*;
use kermes::testing::TestServer;

server_tests! {
    async fn add_count_and_merge(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        assert_eq!(c.pfadd("h1", &members).await.unwrap(), 1);
        assert_eq!(c.pfadd("h2", ["m1", "other"]).await.unwrap(), 1);
        let n = c.pfcount("h1").await.unwrap();
        assert!((970..=1030).contains(&n), "estimate {n}");
        c.pfmerge("merged", ["h1", "h2"]).await.unwrap();
        let merged = c.pfcount(["merged"]).await.unwrap();
        assert!(merged > n, "{merged} vs {n}");
        assert_eq!(c.pfadd("empty", ()).await.unwrap(), 1);
    }
}
