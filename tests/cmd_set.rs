//! Generated set commands.

#[macro_use]
mod common;

use std::collections::HashSet;

use kermes::prelude::*;
use kermes::testing::TestServer;

server_tests! {
    async fn members_algebra_and_cardinality(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        assert_eq!(c.sadd("s1", ["a", "b", "c"]).await.unwrap(), 3);
        assert_eq!(c.sadd("s2", ["b", "c", "d"]).await.unwrap(), 3);
        assert_eq!(c.sismember("s1", "a").await.unwrap(), 1);
        assert_eq!(c.smismember("s1", ["a", "z"]).await.unwrap(), [1, 0]);
        let inter: HashSet<String> = c.sinter(["s1", "s2"]).to().await.unwrap();
        assert_eq!(inter, ["b", "c"].into_iter().map(String::from).collect());
        assert_eq!(c.sintercard(["s1", "s2"]).await.unwrap(), 2);
        assert_eq!(c.sintercard_with(["s1", "s2"], SintercardOptions::new().limit(1)).await.unwrap(), 1);
        assert_eq!(c.sunionstore("u", ["s1", "s2"]).await.unwrap(), 4);
        assert_eq!(c.smove("s1", "s2", "a").await.unwrap(), 1);
        let some: Vec<String> = c.srandmember_with("u", SrandmemberOptions::new().count(2)).to().await.unwrap();
        assert_eq!(some.len(), 2);
        let popped: Vec<String> = c.spop_with("u", SpopOptions::new().count(4)).to().await.unwrap();
        assert_eq!(popped.len(), 4);
        assert_eq!(c.scard("u").await.unwrap(), 0);
    }
}
