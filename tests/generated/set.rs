//! Generated set commands.

use std::collections::HashSet;

use kermes::prelude::*;

crate::group_tests! {
    async fn members_algebra_and_cardinality(t) {
        let c = &t.c;
        assert_eq!(c.sadd("{s}s1", ["a", "b", "c"]).await.unwrap(), 3);
        assert_eq!(c.sadd("{s}s2", ["b", "c", "d"]).await.unwrap(), 3);
        assert_eq!(c.sismember("{s}s1", "a").await.unwrap(), 1);
        assert_eq!(c.smismember("{s}s1", ["a", "z"]).await.unwrap(), [1, 0]);
        let inter: HashSet<String> = c.sinter(["{s}s1", "{s}s2"]).to().await.unwrap();
        assert_eq!(inter, ["b", "c"].into_iter().map(String::from).collect());
        assert_eq!(c.sintercard(["{s}s1", "{s}s2"]).await.unwrap(), 2);
        assert_eq!(c.sintercard_with(["{s}s1", "{s}s2"], SintercardOptions::new().limit(1)).await.unwrap(), 1);
        assert_eq!(c.sunionstore("{s}u", ["{s}s1", "{s}s2"]).await.unwrap(), 4);
        assert_eq!(c.smove("{s}s1", "{s}s2", "a").await.unwrap(), 1);
        let some: Vec<String> = c.srandmember_with("{s}u", SrandmemberOptions::new().count(2)).to().await.unwrap();
        assert_eq!(some.len(), 2);
        let popped: Vec<String> = c.spop_with("{s}u", SpopOptions::new().count(4)).to().await.unwrap();
        assert_eq!(popped.len(), 4);
        assert_eq!(c.scard("{s}u").await.unwrap(), 0);
    }
}
