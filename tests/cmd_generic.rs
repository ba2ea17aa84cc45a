//! Generated generic (keyspace) commands.

#[macro_use]
mod common;

use std::collections::HashSet;

use kermes::prelude::*;
use kermes::testing::TestServer;

server_tests! {
    async fn existence_expiry_and_renaming(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        c.mset([("a", "1"), ("b", "2"), ("c", "3")]).await.unwrap();
        assert_eq!(c.exists(["a", "b", "nope"]).await.unwrap(), 2);
        assert_eq!(c.expire("a", 100).await.unwrap(), 1);
        // NX: only when no expiry is set yet.
        assert_eq!(c.expire_with("a", 5, ExpireOptions::new().nx()).await.unwrap(), 0);
        assert!(c.ttl("a").await.unwrap() > 5);
        assert_eq!(c.persist("a").await.unwrap(), 1);
        assert_eq!(c.ttl("a").await.unwrap(), -1);
        assert_eq!(c.type_("b").to::<String>().await.unwrap(), "string");
        c.rename("b", "b2").await.unwrap();
        assert_eq!(c.renamenx("b2", "c").await.unwrap(), 0);
        assert_eq!(c.copy_with("c", "c2", CopyOptions::new().replace()).await.unwrap(), 1);
        assert_eq!(c.del(["a", "b2"]).await.unwrap(), 2);
        assert_eq!(c.unlink("c2").await.unwrap(), 1);
        let keys: HashSet<String> = c.keys("*").to().await.unwrap();
        assert_eq!(keys, ["c".to_string()].into());
    }

    async fn scan_sort_dump_and_restore(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        for i in 0..30 {
            c.set(format!("user:{i}"), i).await.unwrap();
        }
        c.set("other", 1).await.unwrap();
        let mut cursor = 0i64;
        let mut found = HashSet::new();
        loop {
            let (next, page): (i64, Vec<String>) = c.scan_with(cursor, ScanOptions::new().match_("user:*").count(7).type_("string")).to().await.unwrap();
            found.extend(page);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(found.len(), 30);
        c.rpush("nums", [3, 1, 2]).await.unwrap();
        let sorted: Vec<i64> = c.sort_with("nums", SortOptions::new().desc().limit(0, 2)).to().await.unwrap();
        assert_eq!(sorted, [3, 2]);
        let sorted_ro: Vec<Option<String>> = c.sort_ro("nums").to().await.unwrap();
        assert_eq!(sorted_ro.len(), 3);
        let dumped = c.dump("nums").await.unwrap().unwrap();
        c.restore_with("copy", 0, dumped, RestoreOptions::new().replace()).await.unwrap();
        let copy: Vec<i64> = c.lrange("copy", 0, -1).to().await.unwrap();
        assert_eq!(copy, [3, 1, 2]);
        // Lists are listpack-encoded from Redis 7.2 (and Valkey); quicklist before.
        let encoding: String = c.object_encoding("copy").to().await.unwrap();
        assert!(["listpack", "quicklist"].contains(&encoding.as_str()), "{encoding}");
    }
}
