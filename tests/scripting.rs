//! Script (EVALSHA with fallback), lua with named variables, function libraries.

#[macro_use]
mod common;

use kermes::prelude::*;
use kermes::testing::TestServer;
use kermes::{Library, Script, Value, lua};

server_tests! {
    async fn scripts_fall_back_to_eval_after_script_flush(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
        assert_eq!(script.run::<_, i64>(&c, "n", 5).await.unwrap(), 5);
        let cached: Vec<i64> = c.script_exists(script.sha1()).to().await.unwrap();
        assert_eq!(cached, [1]);
        c.script_flush().await.unwrap();
        // NOSCRIPT now: the call still succeeds, and caches the script again.
        assert_eq!(script.run::<_, i64>(&c, "n", 5).await.unwrap(), 10);
        assert_eq!(c.script_exists(script.sha1()).to::<Vec<i64>>().await.unwrap(), [1]);
        let stats: String = c.info_with("commandstats").to().await.unwrap();
        // Both runs met NOSCRIPT (first: never loaded; second: flushed) and fell back once each.
        assert!(stats.contains("cmdstat_eval:calls=2,"), "{stats}");
        let evalsha = stats.lines().find(|l| l.starts_with("cmdstat_evalsha:")).unwrap();
        assert!(evalsha.starts_with("cmdstat_evalsha:calls=2,") && evalsha.contains("failed_calls=2"), "{evalsha}");
        // On an exclusive connection, and queued in a pipeline.
        let ex = c.exclusive().await.unwrap();
        assert_eq!(script.run::<_, i64>(&ex, "n", 1).await.unwrap(), 11);
        let pipe = c.pipeline();
        script.queue(&pipe, "n", 1);
        script.queue(&pipe, "n", 1);
        assert_eq!(pipe.query::<(i64, i64)>().await.unwrap(), (12, 13));
        // A script error is the server's error.
        let bad = Script::new("return redis.call('NOPE')");
        assert!(bad.run::<_, Value>(&c, (), ()).await.unwrap_err().server_error().is_some());
    }

    async fn lua_rewrites_names_in_code_but_not_in_strings(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        c.set("src", "v").await.unwrap();
        let out: Vec<String> = lua(
            &c,
            r#"
            -- copy _:from to _:to, with a suffix
            local v = redis.call('GET', _:from)
            redis.call('SET', _:to, v .. _:suffix)
            return { "_:from stays literal", _:from, _:to, _:suffix }
            "#,
            &[("from", &"src"), ("to", &"dst")],
            &[("suffix", &"!")],
        )
        .await
        .unwrap();
        assert_eq!(out, ["_:from stays literal", "src", "dst", "!"]);
        assert_eq!(c.get("dst").to::<String>().await.unwrap(), "v!");
        let err = lua::<_, Value>(&c, "return _:missing", &[], &[]).await.unwrap_err();
        assert!(err.is_config(), "{err}");
    }

    async fn libraries_load_themselves_when_missing(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let lib = Library::new(
            "#!lua name=kermestest\nredis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)",
        );
        assert_eq!(lib.call::<_, i64>(&c, "bump", "hits", 2).await.unwrap(), 2);
        c.function_flush().await.unwrap();
        assert_eq!(lib.call::<_, i64>(&c, "bump", "hits", 3).await.unwrap(), 5);
    }
}
