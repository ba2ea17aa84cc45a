//! Generated generic (keyspace) commands.

use std::collections::HashSet;

use futures::TryStreamExt;
use kermes::prelude::*;

crate::group_tests! {
    async fn existence_expiry_and_renaming(t) {
        let c = &t.c;
        c.mset([("{g}a", "1"), ("{g}b", "2"), ("{g}c", "3")]).await.unwrap();
        assert_eq!(c.exists(["{g}a", "{g}b", "{g}nope"]).await.unwrap(), 2);
        assert_eq!(c.expire("{g}a", 100).await.unwrap(), 1);
        // NX: only when no expiry is set yet.
        assert_eq!(c.expire_with("{g}a", 5, ExpireOptions::new().nx()).await.unwrap(), 0);
        assert!(c.ttl("{g}a").await.unwrap() > 5);
        assert_eq!(c.persist("{g}a").await.unwrap(), 1);
        assert_eq!(c.ttl("{g}a").await.unwrap(), -1);
        assert_eq!(c.type_("{g}b").to::<String>().await.unwrap(), "string");
        c.rename("{g}b", "{g}b2").await.unwrap();
        assert_eq!(c.renamenx("{g}b2", "{g}c").await.unwrap(), 0);
        assert_eq!(c.copy_with("{g}c", "{g}c2", CopyOptions::new().replace()).await.unwrap(), 1);
        assert_eq!(c.del(["{g}a", "{g}b2"]).await.unwrap(), 2);
        assert_eq!(c.unlink("{g}c2").await.unwrap(), 1);
        let keys: HashSet<String> = c.keys("{g}*").to().await.unwrap();
        assert_eq!(keys, ["{g}c".to_string()].into());
    }

    async fn scan_sort_dump_and_restore(t) {
        let c = &t.c;
        for i in 0..30 {
            c.set(format!("user:{i}"), i).await.unwrap();
        }
        c.set("other", 1).await.unwrap();
        let mut found = HashSet::new();
        if t.cluster {
            // A cursor belongs to one node: refused before sending, with the way out.
            let err = c.scan::<Value>(0).await.unwrap_err();
            assert!(err.is_config() && err.to_string().contains("scan_stream"), "{err}");
            let keys: Vec<String> = kermes::helpers::scan_stream(c, Some("user:*")).try_collect().await.unwrap();
            found.extend(keys);
        } else {
            let mut cursor = 0i64;
            loop {
                let (next, page): (i64, Vec<String>) = c.scan_with(cursor, ScanOptions::new().match_("user:*").count(7).type_("string")).to().await.unwrap();
                found.extend(page);
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        assert_eq!(found.len(), 30);
        c.rpush("{n}nums", [3, 1, 2]).await.unwrap();
        let sorted: Vec<i64> = c.sort_with("{n}nums", SortOptions::new().desc().limit(0, 2)).to().await.unwrap();
        assert_eq!(sorted, [3, 2]);
        let sorted_ro: Vec<Option<String>> = c.sort_ro("{n}nums").to().await.unwrap();
        assert_eq!(sorted_ro.len(), 3);
        let dumped = c.dump("{n}nums").await.unwrap().unwrap();
        c.restore_with("{n}copy", 0, dumped, RestoreOptions::new().replace()).await.unwrap();
        let copy: Vec<i64> = c.lrange("{n}copy", 0, -1).to().await.unwrap();
        assert_eq!(copy, [3, 1, 2]);
        // Lists are listpack-encoded from Redis 7.2 (and Valkey); quicklist before.
        let encoding: String = c.object_encoding("{n}copy").to().await.unwrap();
        assert!(["listpack", "quicklist"].contains(&encoding.as_str()), "{encoding}");
    }
}
