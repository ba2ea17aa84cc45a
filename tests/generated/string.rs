//! Generated string commands: SET and its options, counters, ranges, multi-key commands.

use kermes::prelude::*;

crate::group_tests! {
    async fn set_get_with_options_read_like_redis_cli(t) {
        let c = &t.c;
        c.set("k", "v1").await.unwrap();
        assert_eq!(c.get("k").to::<String>().await.unwrap(), "v1");
        // NX refuses an existing key; GET returns the old value.
        let refused: bool = c.set_with("k", "v2", SetOptions::new().nx()).to().await.unwrap();
        assert!(!refused);
        let old: Option<String> = c.set_with("k", "v3", SetOptions::new().get().ex(100)).to().await.unwrap();
        assert_eq!(old.as_deref(), Some("v1"));
        let ttl = c.ttl("k").await.unwrap();
        assert!((1..=100).contains(&ttl), "{ttl}");
        let kept: bool = c.set_with("k", "v4", SetOptions::new().xx().keepttl()).to().await.unwrap();
        assert!(kept);
        assert!(c.ttl("k").await.unwrap() > 0);
        assert_eq!(c.getdel("k").to::<Option<String>>().await.unwrap().as_deref(), Some("v4"));
        assert_eq!(c.get::<Option<Bytes>>("k").await.unwrap(), None);
    }

    async fn counters_ranges_and_multi_key_commands(t) {
        let c = &t.c;
        assert_eq!(c.incr("n").await.unwrap(), 1);
        assert_eq!(c.incrby("n", 41).await.unwrap(), 42);
        assert_eq!(c.decrby("n", 2).await.unwrap(), 40);
        let f: f64 = c.incrbyfloat("f", 2.5).to().await.unwrap();
        assert_eq!(f, 2.5);
        assert_eq!(c.append("s", "hello").await.unwrap(), 5);
        assert_eq!(c.setrange("s", 5, " world").await.unwrap(), 11);
        assert_eq!(c.getrange::<String>("s", 0, 4).await.unwrap(), "hello");
        assert_eq!(c.strlen("s").await.unwrap(), 11);
        // MSET and MGET split per slot on a cluster; MSETNX and LCS need one slot.
        c.mset([("a", "1"), ("b", "2")]).await.unwrap();
        let both: Vec<Option<i64>> = c.mget(["a", "b", "missing"]).to().await.unwrap();
        assert_eq!(both, vec![Some(1), Some(2), None]);
        c.mset([("{s}a", "1"), ("{s}b", "2")]).await.unwrap();
        assert_eq!(c.msetnx([("{s}a", "x"), ("{s}c", "3")]).await.unwrap(), 0);
        let ex: Option<String> = c.getex_with("a", GetexOptions::new().px(50_000)).to().await.unwrap();
        assert_eq!(ex.as_deref(), Some("1"));
        assert!(c.pttl("a").await.unwrap() > 0);
        c.set("{s}l1", "ohmytext").await.unwrap();
        c.set("{s}l2", "mynewtext").await.unwrap();
        let lcs: String = c.lcs("{s}l1", "{s}l2").to().await.unwrap();
        assert_eq!(lcs, "mytext");
        let len: i64 = c.lcs_with("{s}l1", "{s}l2", LcsOptions::new().len()).to().await.unwrap();
        assert_eq!(len, 6);
    }
}
