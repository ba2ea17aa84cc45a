//! The raw command API: arguments, reply conversions, errors, routing and timeouts.

#[macro_use]
mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use kermes::testing::TestServer;
use kermes::{Client, Value, cmd};

server_tests! {
    async fn expirations_take_durations_and_times(kind) {
        use kermes::prelude::*;
        use std::time::UNIX_EPOCH;
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        client.set_with("fine", "v", SetOptions::new().expire_in(Duration::from_millis(1500))).await.unwrap();
        let left = client.pttl("fine").await.unwrap();
        assert!(left > 1300 && left <= 1500, "PTTL {left}");
        client.set_with("whole", "v", SetOptions::new().expire_in(Duration::from_secs(90))).await.unwrap();
        assert_eq!(client.ttl("whole").await.unwrap(), 90);
        let (set_ex, set_px) = ("set-ex", "set-px");
        client.set_expiring(set_ex, "v", Duration::from_secs(40)).await.unwrap();
        client.set_expiring(set_px, "v", Duration::from_millis(2500)).await.unwrap();
        assert_eq!(client.ttl(set_ex).await.unwrap(), 40);
        let left = client.pttl(set_px).await.unwrap();
        assert!(left > 2300 && left <= 2500, "PTTL {left}");
        assert_eq!(client.get::<String>(set_px).await.unwrap(), "v");
        // EXPIRE for whole seconds, PEXPIRE for anything finer.
        let (expire, pexpire) = (common::command_calls(&client, &["expire"]).await, common::command_calls(&client, &["pexpire"]).await);
        assert_eq!(client.expire_in("whole", Duration::from_secs(30)).await.unwrap(), 1);
        assert_eq!(client.expire_in("fine", Duration::from_micros(2_500_100)).await.unwrap(), 1);
        assert_eq!(client.expire_in("missing", Duration::from_secs(1)).await.unwrap(), 0);
        assert_eq!(common::command_calls(&client, &["expire"]).await - expire, 2);
        assert_eq!(common::command_calls(&client, &["pexpire"]).await - pexpire, 1);
        assert_eq!(client.ttl("whole").await.unwrap(), 30);
        let left = client.pttl("fine").await.unwrap();
        assert!(left > 2300 && left <= 2501, "PTTL {left}");
        // Absolute times, from the server's clock.
        let now_s = client.time().await.unwrap();
        let now: u64 = String::from_utf8(now_s[0].to_vec()).unwrap().parse().unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(now + 100);
        assert_eq!(client.expire_at("whole", at).await.unwrap(), 1);
        let left = client.ttl("whole").await.unwrap();
        assert!((99..=100).contains(&left), "TTL {left}");
        let v: Option<String> = client.getex_with("fine", GetexOptions::new().expire_at(at + Duration::from_millis(250))).to().await.unwrap();
        assert_eq!(v.as_deref(), Some("v"));
        let left = client.pttl("fine").await.unwrap();
        assert!(left > 99_000 && left <= 100_250, "PTTL {left}");
        let err = client.expire_at("whole", UNIX_EPOCH - Duration::from_secs(1)).await.unwrap_err();
        assert!(err.is_config(), "{err}");
    }

    async fn replies_with_one_meaning_have_their_type(kind) {
        use kermes::prelude::*;
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let () = client.set("k", "v").await.unwrap();
        let set: Value = client.set_with("k", "w", SetOptions::new().nx()).await.unwrap();
        assert_eq!(set, Value::Nil, "SET NX on an existing key");
        let f: f64 = client.incrbyfloat("f", 1.5).await.unwrap();
        assert_eq!(f, 1.5);
        let f: f64 = client.hincrbyfloat("h", "x", 2.25).await.unwrap();
        assert_eq!(f, 2.25);
        client.geoadd("g", [(13.361389, 38.115556, "Palermo"), (15.087269, 37.502669, "Catania")]).await.unwrap();
        let d: Option<f64> = client.geodist_with("g", "Palermo", "Catania", GeodistOptions::new().km()).await.unwrap();
        assert!((d.unwrap() - 166.27).abs() < 0.01, "{d:?}");
        assert_eq!(client.geodist("g", "Palermo", "Nowhere").await.unwrap(), None);
        client.zadd("z", [(1.0, "a"), (2.0, "b")]).await.unwrap();
        assert_eq!(client.zrank("z", "b").await.unwrap(), Some(1));
        assert_eq!(client.zrevrank("z", "b").await.unwrap(), Some(0));
        assert_eq!(client.zrank("z", "nope").await.unwrap(), None);
    }

    async fn values_round_trip_binary_safe(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let binary: Vec<u8> = (0..=255u8).chain(b"\r\n\0".iter().copied()).collect();
        client.cmd("SET").arg("bin").arg(&binary).exec().await.unwrap();
        let back: Vec<u8> = client.cmd("GET").arg("bin").query().await.unwrap();
        assert_eq!(back, binary);
        let back: Bytes = client.cmd("GET").arg("bin").query().await.unwrap();
        assert_eq!(&back[..], &binary[..]);

        client.cmd("SET").arg("f").arg(1.25f64).exec().await.unwrap();
        let f: f64 = client.cmd("INCRBYFLOAT").arg("f").arg(0.5).query().await.unwrap();
        assert_eq!(f, 1.75);
        let n: i64 = client.cmd("INCRBY").arg("n").arg(-5i32).query().await.unwrap();
        assert_eq!(n, -5);
        let missing: Option<String> = client.cmd("GET").arg("nope").query().await.unwrap();
        assert_eq!(missing, None);

        client.cmd("SADD").arg("s").arg(vec!["a", "b", "c"]).exec().await.unwrap();
        let members: HashSet<String> = client.cmd("SMEMBERS").arg("s").query().await.unwrap();
        assert_eq!(members, ["a", "b", "c"].into_iter().map(String::from).collect());
        let both: Vec<Option<Bytes>> = client.cmd("MGET").arg(["bin", "nope"]).query().await.unwrap();
        assert_eq!(both, vec![Some(Bytes::from(binary.clone())), None]);
        // The same reply read as text fails as a type error: the bytes are not UTF-8.
        let err = client.cmd("MGET").arg(["bin", "nope"]).query::<Vec<Option<String>>>().await.unwrap_err();
        assert!(err.is_type(), "{err}");
    }

    async fn server_errors_carry_code_and_message(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        client.cmd("RPUSH").arg("list").arg("x").exec().await.unwrap();
        let err = client.cmd("GET").arg("list").query::<Option<String>>().await.unwrap_err();
        let se = err.server_error().expect("server error");
        assert_eq!(se.code(), "WRONGTYPE");
        assert!(se.message().contains("wrong kind of value"));
        let err = client.cmd("NOSUCHCOMMAND").exec().await.unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "ERR");
        // The connection is fine afterwards.
        let pong: String = client.cmd("PING").query().await.unwrap();
        assert_eq!(pong, "PONG");
    }

    async fn type_mismatches_are_type_errors(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        client.cmd("SET").arg("word").arg("hello").exec().await.unwrap();
        let err = client.cmd("GET").arg("word").query::<i64>().await.unwrap_err();
        assert!(err.is_type(), "{err}");
        let v: Value = client.cmd("GET").arg("word").query().await.unwrap();
        assert_eq!(v, Value::Bulk(Bytes::from_static(b"hello")));
    }

    async fn connection_state_commands_are_refused_on_the_shared_connection(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        for name in ["MULTI", "WATCH", "SELECT", "hello"] {
            let err = client.query::<()>(cmd(name).arg("x")).await.unwrap_err();
            assert!(err.is_usage() && err.to_string().contains("exclusive"), "{name}: {err}");
        }
        let err = client.query::<()>(cmd("SUBSCRIBE").arg("x")).await.unwrap_err();
        assert!(err.is_usage() && err.to_string().contains("subscriber()"), "{err}");
    }

    async fn blocking_commands_run_on_exclusive_connections_without_the_response_timeout(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder()
            .url(&server.url())
            .response_timeout(Duration::from_millis(200))
            .connect()
            .await
            .unwrap();
        let pusher = client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            pusher.cmd("RPUSH").arg("jobs").arg("job-1").exec().await.unwrap();
        });
        // Meanwhile the shared connection keeps answering.
        let waiter = client.clone();
        let blpop = tokio::spawn(async move {
            waiter.cmd("BLPOP").arg("jobs").arg(5).query::<Option<(String, String)>>().await
        });
        for i in 0..20 {
            let v: i64 = client.cmd("ECHO").arg(i).query().await.unwrap();
            assert_eq!(v, i);
        }
        let popped = blpop.await.unwrap().unwrap();
        assert_eq!(popped, Some(("jobs".into(), "job-1".into())));
        let none: Option<(String, String)> = client.cmd("BLPOP").arg("empty").arg(0.3).query().await.unwrap();
        assert_eq!(none, None);
        // An explicit per-command timeout still applies to a blocking command.
        let err = client
            .cmd("BLPOP")
            .arg("empty")
            .arg(10)
            .timeout(Duration::from_millis(100))
            .query::<Option<(String, String)>>()
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
    }

    async fn response_timeout_fails_slow_commands_and_later_replies_still_match(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder()
            .url(&server.url())
            .response_timeout(Duration::from_millis(150))
            .connect()
            .await
            .unwrap();
        let err = client.cmd("DEBUG").arg("SLEEP").arg(0.5).exec().await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        // A per-command timeout overrides the client's.
        client.cmd("DEBUG").arg("SLEEP").arg(0.3).timeout(Duration::from_secs(2)).exec().await.unwrap();
        for i in 0..50 {
            let v: i64 = client.cmd("ECHO").arg(i).query().await.unwrap();
            assert_eq!(v, i);
        }
    }
}
