//! Generated server commands (the cluster-less ones).

use std::collections::HashMap;

use kermes::prelude::*;

crate::group_tests! {
    async fn server_structures_read_as_their_types(t) {
        let c = &t.c;
        let config = c.config_get("maxmemory*").await.unwrap();
        assert!(config.contains_key("maxmemory"), "{config:?}");
        let stats = c.memory_stats().await.unwrap();
        assert!(stats.contains_key("peak.allocated"), "{stats:?}");
        let docs = c.command_docs_with(["get"]).await.unwrap();
        assert!(docs.contains_key("get"), "{docs:?}");
        let user = c.acl_getuser("default").await.unwrap().expect("the default user");
        assert!(user.contains_key("flags"), "{user:?}");
        assert!(c.acl_getuser("nobody-here").await.unwrap().is_none());
        let tracking = c.client_trackinginfo().await.unwrap();
        assert!(tracking.contains_key("flags"), "{tracking:?}");
        assert_eq!(c.latency_history("command").await.unwrap(), []);
        let subs = c.pubsub_numsub_with(["a", "b"]).await.unwrap();
        assert_eq!(subs, [(Bytes::from("a"), 0), (Bytes::from("b"), 0)]);
        let shard = c.pubsub_shardnumsub_with(["a"]).await.unwrap();
        assert_eq!(shard, [(Bytes::from("a"), 0)]);
        c.function_load_with("#!lua name=structlib\nredis.register_function('one', function() return 1 end)", FunctionLoadOptions::new().replace()).await.unwrap();
        let libs = c.function_list().await.unwrap();
        assert!(libs.iter().any(|l| l.get("library_name") == Some(&Value::Bulk("structlib".into()))), "{libs:?}");
        c.function_delete("structlib").await.unwrap();
        let fstats = c.function_stats().await.unwrap();
        assert!(fstats.contains_key("engines"), "{fstats:?}");
        let keys = c.command_getkeysandflags("SET", ["k", "v"]).await.unwrap();
        assert_eq!(keys[0].0, "k");
        assert!(!keys[0].1.is_empty(), "{keys:?}");
        assert_eq!(c.acl_dryrun("default", "get", "k").await.unwrap(), "OK");
        let modules = c.module_list().await.unwrap(); // Valkey 9 may bundle some
        assert!(modules.iter().all(|m| m.contains_key("name")), "{modules:?}");
        if !t.skip_on_cluster("the slow log and latency monitor are per node") {
            // CONFIG GET ran at the start, so the latency histogram counts it.
            let histogram = c.latency_histogram().await.unwrap();
            assert!(histogram.contains_key("config|get"), "{histogram:?}");
            // On a connection of its own: HELLO's properties, and EXEC's replies; a refused
            // AUTH, which the ACL log records.
            let x = c.exclusive().await.unwrap();
            let refused = x.query::<()>(kermes::cmd("AUTH").arg("nobody").arg("wrong")).await.unwrap_err();
            assert!(refused.is_server(), "{refused}");
            let log = c.acl_log().await.unwrap();
            assert!(log.iter().any(|e| e.get("username") == Some(&Value::Bulk("nobody".into()))), "{log:?}");
            let props = x.hello().await.unwrap();
            assert!(props.contains_key("version"), "{props:?}");
            x.multi().await.unwrap();
            x.set("{x}t", 1).await.unwrap(); // QUEUED
            let replies = x.exec().await.unwrap().expect("not aborted");
            assert_eq!(replies.len(), 1);
            drop(x);
            c.config_set([("slowlog-log-slower-than", "0")]).await.unwrap();
            c.set("slow", 1).await.unwrap();
            let log = c.slowlog_get().await.unwrap();
            c.config_set([("slowlog-log-slower-than", "10000")]).await.unwrap();
            let (_, at, _, args, _, _) = log.iter().find(|e| e.3.first().is_some_and(|a| a.eq_ignore_ascii_case(b"set"))).expect("SET in the slow log");
            assert!(*at > 1_700_000_000);
            assert_eq!(args[1], "slow");
            c.config_set([("latency-monitor-threshold", "1")]).await.unwrap();
            c.cmd("DEBUG").arg("SLEEP").arg(0.01).exec().await.unwrap();
            let latest: Vec<Vec<Value>> = c.latency_latest().to().await.unwrap();
            c.config_set([("latency-monitor-threshold", "0")]).await.unwrap();
            assert!(latest.iter().any(|e| e.first() == Some(&Value::Bulk("command".into()))), "{latest:?}");
        } else {
            let shards = c.cluster_shards().await.unwrap();
            assert_eq!(shards.len(), 3, "{shards:?}");
            assert!(shards[0].contains_key("slots"), "{shards:?}");
            assert!(!c.cluster_links().await.unwrap().is_empty());
        }

        // A stream with a group and a pending entry.
        c.xgroup_create_with("{x}s", "g", StreamId::Id("0".into()), XgroupCreateOptions::new().mkstream()).await.unwrap();
        c.xadd("{x}s", XaddIdSelector::AutoId, [("f", "v")]).await.unwrap();
        let _: Value = c.xreadgroup("g", "alice", "{x}s", ">").await.unwrap();
        let info = c.xinfo_stream("{x}s").await.unwrap();
        assert_eq!(info.get("length"), Some(&Value::Int(1)), "{info:?}");
        let full = c.xinfo_stream_with("{x}s", XinfoStreamOptions::new().full_block(Some(10))).await.unwrap();
        assert!(full.contains_key("groups") && full.contains_key("entries"), "{full:?}");
        let groups = c.xinfo_groups("{x}s").await.unwrap();
        assert_eq!(groups[0].get("pending"), Some(&Value::Int(1)), "{groups:?}");
        let consumers = c.xinfo_consumers("{x}s", "g").await.unwrap();
        assert_eq!(consumers.len(), 1);
        let (count, first, last, per_consumer) = c.xpending("{x}s", "g").await.unwrap();
        assert_eq!(count, 1);
        assert!(first.is_some() && first == last);
        assert_eq!(per_consumer, Some(vec![(Bytes::from("alice"), 1)]));
        let entries = c.xpending_with("{x}s", "g", XpendingOptions::new().filters(None, "-", "+", 10, None)).await.unwrap();
        assert_eq!((entries.len(), &entries[0].1[..], entries[0].3), (1, &b"alice"[..], 1));
    }

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
            let info: String = c.info_with("keyspace").to().await.unwrap();
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
