//! Generated sorted-set commands.

use kermes::prelude::*;

crate::group_tests! {
    async fn scores_ranges_and_options(t) {
        let c = &t.c;
        let added: i64 = c.zadd("z", [(1.0, "a"), (2.0, "b"), (3.0, "c")]).to().await.unwrap();
        assert_eq!(added, 3);
        // GT only raises scores; CH counts changed members.
        let changed: i64 = c.zadd_with("z", [(0.5, "a"), (5.0, "b")], ZaddOptions::new().gt().ch()).to().await.unwrap();
        assert_eq!(changed, 1);
        let incr: f64 = c.zadd_with("z", (1.5, "c"), ZaddOptions::new().incr()).to().await.unwrap();
        assert_eq!(incr, 4.5);
        assert_eq!(c.zscore("z", "b").await.unwrap(), Some(5.0));
        assert_eq!(c.zmscore("z", ["a", "nope"]).await.unwrap(), [Some(1.0), None]);
        assert_eq!(c.zcount("z", "(1", "+inf").await.unwrap(), 2);
        let top: Vec<(String, f64)> = c
            .zrange_with("z", "+inf", "-inf", ZrangeOptions::new().byscore().rev().limit(0, 2).withscores())
            .to()
            .await
            .unwrap();
        assert_eq!(top, [("b".to_string(), 5.0), ("c".to_string(), 4.5)]);
        let rank: i64 = c.zrank("z", "c").to().await.unwrap();
        assert_eq!(rank, 1);
        assert_eq!(c.zincrby("z", 10.0, "a").to::<f64>().await.unwrap(), 11.0);
        assert_eq!(c.zcard("z").await.unwrap(), 3);
        let low: Vec<(String, f64)> = c.zpopmin_with("z", ZpopminOptions::new().count(1)).to().await.unwrap();
        assert_eq!(low, [("c".to_string(), 4.5)]);
    }

    async fn store_commands_count_their_keys_and_aggregate(t) {
        let c = &t.c;
        c.zadd("{z}x", [(1.0, "m"), (5.0, "n")]).await.unwrap();
        c.zadd("{z}y", [(3.0, "m")]).await.unwrap();
        // numkeys is written by the generated method.
        assert_eq!(c.zunionstore("{z}u", ["{z}x", "{z}y"]).await.unwrap(), 2);
        assert_eq!(c.zscore("{z}u", "m").await.unwrap(), Some(4.0));
        assert_eq!(c.zunionstore_with("{z}mx", ["{z}x", "{z}y"], ZunionstoreOptions::new().weights([1, 10]).max()).await.unwrap(), 2);
        assert_eq!(c.zscore("{z}mx", "m").await.unwrap(), Some(30.0));
        assert_eq!(c.zinterstore("{z}i", ["{z}x", "{z}y"]).await.unwrap(), 1);
        let stored: i64 = c.zrangestore_with("{z}r", "{z}x", 0, 0, ZrangestoreOptions::new()).to().await.unwrap();
        assert_eq!(stored, 1);
        let popped: Option<(String, String, f64)> = c.bzpopmin("{z}x", 0.1).to().await.unwrap();
        assert_eq!(popped, Some(("{z}x".into(), "m".into(), 1.0)));
    }
}
