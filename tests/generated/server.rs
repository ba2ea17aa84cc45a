//! Generated server commands (the cluster-less ones).

use std::collections::HashMap;

use kermes::prelude::*;

crate::group_tests! {
    async fn keyspace_config_and_introspection(t) {
        let c = &t.c;
        c.mset([("a", 1), ("b", 2)]).await.unwrap();
        assert_eq!(c.dbsize().await.unwrap(), 2);
        c.config_set([("maxmemory-policy", "allkeys-lru")]).await.unwrap();
        let policy: HashMap<String, String> = c.config_get("maxmemory-policy").to().await.unwrap();
        assert_eq!(policy["maxmemory-policy"], "allkeys-lru");
        let (secs, micros): (i64, i64) = c.time().to().await.unwrap();
        assert!(secs > 1_700_000_000 && micros < 1_000_000);
        assert!(c.memory_usage("a").await.unwrap().unwrap() > 0);
        assert!(c.command_count().await.unwrap() > 200);
        let keys: Vec<String> = c.command_getkeys("MSET", ["k1", "v1", "k2", "v2"]).to().await.unwrap();
        assert_eq!(keys, ["k1", "k2"]);
        if !t.skip_on_cluster("INFO keyspace is per node, and a cluster has no database 1 to swap") {
            let info: String = c.info("keyspace").to().await.unwrap();
            assert!(info.contains("db0:keys=2"), "{info}");
            c.swapdb(0, 1).await.unwrap();
            assert_eq!(c.dbsize().await.unwrap(), 0);
        }
        c.slowlog_reset().await.unwrap();
        assert_eq!(c.slowlog_len().await.unwrap(), 0);
        assert!(c.lastsave().await.unwrap() > 0);
    }

    async fn acl_users_round_trip(t) {
        let c = &t.c;
        assert_eq!(c.acl_whoami().to::<String>().await.unwrap(), "default");
        c.acl_setuser("bob", ["on", ">pw", "~bob:*", "+get"]).await.unwrap();
        let users: Vec<String> = c.acl_list().to().await.unwrap();
        assert!(users.iter().any(|u| u.starts_with("user bob on")), "{users:?}");
        let cats: Vec<String> = c.acl_cat().to().await.unwrap();
        assert!(cats.contains(&"string".to_string()));
        assert_eq!(c.acl_deluser("bob").await.unwrap(), 1);
        c.flushall().await.unwrap();
    }
}
