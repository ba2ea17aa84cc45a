//! Commands newer than Redis 7.0 (hash-field expiry, HGETEX, HSETEX, DELIFEQ, MSETEX): they
//! work on Valkey 9.1 and fail on Redis 7.0 with the server's own clear error.

use kermes::prelude::*;
use kermes::testing::ServerKind;

crate::group_tests! {
    async fn newer_commands_work_on_valkey_and_fail_clearly_on_redis_7_0(t) {
        let c = &t.c;
        if t.kind == ServerKind::Valkey {
            c.hset("h", [("a", "1"), ("b", "2"), ("c", "3")])
                .await
                .unwrap();
            let set: Vec<i64> = c.hexpire("h", 100, ["a", "nope"]).to().await.unwrap();
            assert_eq!(set, [1, -2]);
            let ttl: Vec<i64> = c.httl("h", ["a", "b"]).to().await.unwrap();
            assert!(ttl[0] > 0 && ttl[1] == -1, "{ttl:?}");
            let again: Vec<i64> = c
                .hexpire_with("h", 5, "a", HexpireOptions::new().nx())
                .to()
                .await
                .unwrap();
            assert_eq!(again, [0]);
            let persisted: Vec<i64> = c.hpersist("h", "a").to().await.unwrap();
            assert_eq!(persisted, [1]);
            let got: Vec<Option<String>> = c
                .hgetex_with("h", ["b"], HgetexOptions::new().ex(50))
                .to()
                .await
                .unwrap();
            assert_eq!(got, [Some("2".to_string())]);
            let pttl: Vec<i64> = c.hpttl("h", "b").to().await.unwrap();
            assert!(pttl[0] > 0);
            let added: i64 = c
                .hsetex_with("h2", [("x", "1")], HsetexOptions::new().fnx().px(60_000))
                .to()
                .await
                .unwrap();
            assert_eq!(added, 1);
            let gone: Vec<Option<String>> = c.hgetdel("h", ["c"]).to().await.unwrap();
            assert_eq!(gone, [Some("3".to_string())]);
            assert_eq!(c.hexists("h", "c").await.unwrap(), 0);
            let msetex: i64 = c
                .msetex_with([("{m}1", "v"), ("{m}2", "v")], MsetexOptions::new().nx().ex(30))
                .to()
                .await
                .unwrap();
            assert_eq!(msetex, 1);
            assert!(c.ttl("{m}1").await.unwrap() > 0);
            c.set("lock", "me").await.unwrap();
            assert_eq!(c.delifeq("lock", "other").to::<i64>().await.unwrap(), 0);
            assert_eq!(c.delifeq("lock", "me").to::<i64>().await.unwrap(), 1);
        } else {
            c.hset("h", [("a", "1")]).await.unwrap();
            let errors = [
                c.hexpire("h", 100, "a").await.unwrap_err(),
                c.hgetex_with::<Value>("h", "a", HgetexOptions::new().persist())
                    .await
                    .unwrap_err(),
                c.hsetex("h", [("a", "2")]).await.unwrap_err(),
                c.delifeq("h", "x").await.unwrap_err(),
                c.msetex([("k", "v")]).await.unwrap_err(),
            ];
            for err in errors {
                let se = err
                    .server_error()
                    .unwrap_or_else(|| panic!("not a server error: {err}"));
                assert_eq!(se.code(), "ERR");
                assert!(se.message().starts_with("unknown command"), "{se}");
            }
            // The connection is unharmed.
            assert_eq!(
                c.hget("h", "a")
                    .to::<Option<String>>()
                    .await
                    .unwrap()
                    .as_deref(),
                Some("1")
            );
        }
    }
}
