//! Generated HyperLogLog commands.

use kermes::prelude::*;

crate::group_tests! {
    async fn add_count_and_merge(t) {
        let c = &t.c;
        let members: Vec<String> = (0..1000).map(|i| format!("m{i}")).collect();
        assert_eq!(c.pfadd("{h}h1", &members).await.unwrap(), 1);
        assert_eq!(c.pfadd("{h}h2", ["m1", "other"]).await.unwrap(), 1);
        let n = c.pfcount("{h}h1").await.unwrap();
        assert!((970..=1030).contains(&n), "estimate {n}");
        c.pfmerge("{h}merged", ["{h}h1", "{h}h2"]).await.unwrap();
        let merged = c.pfcount(["{h}merged"]).await.unwrap();
        assert!(merged > n, "{merged} vs {n}");
        assert_eq!(c.pfadd("empty", ()).await.unwrap(), 1);
    }
}
