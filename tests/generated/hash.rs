//! Generated hash commands.

use std::collections::HashMap;

use kermes::prelude::*;

crate::group_tests! {
    async fn fields_counters_and_whole_hash_reads(t) {
        let c = &t.c;
        assert_eq!(c.hset("h", [("a", "1"), ("b", "2")]).await.unwrap(), 2);
        assert_eq!(c.hsetnx("h", "a", "9").await.unwrap(), 0);
        assert_eq!(c.hget("h", "a").to::<Option<i64>>().await.unwrap(), Some(1));
        assert_eq!(c.hincrby("h", "a", 10).await.unwrap(), 11);
        let f: f64 = c.hincrbyfloat("h", "f", 0.25).to().await.unwrap();
        assert_eq!(f, 0.25);
        let all: HashMap<String, String> = c.hgetall("h").to().await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all["b"], "2");
        let got: Vec<Option<String>> = c.hmget("h", ["a", "nope"]).to().await.unwrap();
        assert_eq!(got, vec![Some("11".into()), None]);
        assert_eq!(c.hlen("h").await.unwrap(), 3);
        assert_eq!(c.hexists("h", "b").await.unwrap(), 1);
        assert_eq!(c.hdel("h", ["b", "nope"]).await.unwrap(), 1);
        let mut keys: Vec<String> = c.hkeys("h").to().await.unwrap();
        keys.sort();
        assert_eq!(keys, ["a", "f"]);
    }

    async fn hscan_and_hrandfield_take_their_options(t) {
        let c = &t.c;
        let fields: Vec<(String, i64)> = (0..50).map(|i| (format!("f{i}"), i)).collect();
        c.hset("big", &fields).await.unwrap();
        let mut cursor = 0i64;
        let mut seen = 0;
        loop {
            let (next, page): (i64, Vec<(String, i64)>) = c
                .hscan_with("big", cursor, HscanOptions::new().match_("f1*").count(10))
                .to()
                .await
                .unwrap();
            seen += page.len();
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, 11); // f1, f10..f19
        let picked: Vec<String> = c.hrandfield_with("big", HrandfieldOptions::new().options(3, false)).to().await.unwrap();
        assert_eq!(picked.len(), 3);
    }
}
