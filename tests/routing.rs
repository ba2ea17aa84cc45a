//! Commands are routed by name, subcommand and arguments: what would break a shared
//! connection is refused on it, XREAD without BLOCK is an ordinary command, and pipelines
//! refuse what they cannot run.

#[macro_use]
mod common;

use std::time::Duration;

use kermes::prelude::*;
use kermes::testing::TestServer;
use kermes::{Client, Value, cmd};

/// No step of these tests may hang: a refused command fails at once.
async fn soon<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

/// Commands that change the state of their connection by subcommand or by name.
fn state_changing() -> Vec<kermes::Cmd> {
    vec![
        cmd("CLIENT").arg(["CACHING", "yes"]),
        cmd("CLIENT").arg(["SETNAME", "x"]),
        cmd("CLIENT").arg(["TRACKING", "on"]),
        cmd("CLIENT").arg(["NO-EVICT", "on"]),
        cmd("client").arg(["no-touch", "on"]),
        cmd("ASKING"),
        cmd("READONLY"),
        cmd("READWRITE"),
        cmd("SELECT").arg(1),
    ]
}

server_tests! {
    async fn client_reply_is_refused_and_later_replies_stay_matched(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        for mode in ["SKIP", "OFF"] {
            let err = soon("CLIENT REPLY", client.cmd("CLIENT").arg("REPLY").arg(mode).exec())
                .await
                .unwrap_err();
            assert!(err.is_usage(), "{err}");
            assert!(err.to_string().contains("CLIENT REPLY"), "{err}");
            assert!(!err.to_string().contains("exclusive()"), "exclusive() refuses it too: {err}");
        }
        let err = soon("client_reply", client.client_reply(ClientReplyAction::Skip)).await.unwrap_err();
        assert!(err.is_usage(), "{err}");
        for i in 0..100 {
            client.set(format!("k{i}"), i).await.unwrap();
        }
        let gets = futures::future::join_all((0..100).map(|i| client.get(format!("k{i}")).to::<i64>()));
        let values = soon("100 GETs", gets).await;
        for (i, v) in values.into_iter().enumerate() {
            assert_eq!(v.unwrap(), i as i64, "GET k{i} got another key's reply");
        }
    }

    async fn state_changing_subcommands_are_refused_on_the_shared_connection(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        for c in state_changing() {
            let name = format!("{c:?}");
            let err = soon(&name, client.query::<Value>(c)).await.unwrap_err();
            assert!(err.is_usage(), "{name}: {err}");
            assert!(err.to_string().contains("exclusive()"), "{name}: {err}");
        }
        // The generated methods route the same way.
        let err = soon("client_setname", client.client_setname("x")).await.unwrap_err();
        assert!(err.is_usage(), "{err}");
        let err = soon("client_tracking", client.client_tracking(Switch::On)).await.unwrap_err();
        assert!(err.is_usage(), "{err}");
        let err = soon("readonly", client.readonly()).await.unwrap_err();
        assert!(err.is_usage(), "{err}");
        // The shared connection kept its name and works.
        let name: Option<String> = soon("GETNAME", client.cmd("CLIENT").arg("GETNAME").query()).await.unwrap();
        assert_eq!(name, None);
        // Read-only subcommands of the same containers stay on the shared connection.
        let _: i64 = soon("CLIENT ID", client.cmd("CLIENT").arg("ID").query()).await.unwrap();
        let _: Value = soon("CLIENT TRACKINGINFO", client.cmd("CLIENT").arg("TRACKINGINFO").query()).await.unwrap();
    }

    async fn state_changing_subcommands_run_on_an_exclusive_connection(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let ex = client.exclusive().await.unwrap();
        for c in state_changing() {
            let name = format!("{c:?}");
            // READONLY, READWRITE and ASKING are for cluster nodes: a standalone server
            // answers with its own error, which proves the command was sent.
            if let Err(err) = soon(&name, ex.query::<Value>(c)).await {
                assert!(err.is_server(), "{name}: {err}");
            }
        }
        let name: String = ex.query(cmd("CLIENT").arg("GETNAME")).await.unwrap();
        assert_eq!(name, "x");
    }

    async fn xread_without_block_is_an_ordinary_command(kind) {
        let server = TestServer::start(kind);
        let client = Client::builder()
            .url(&server.url())
            .pool_max_size(1)
            .pool_wait_timeout(Duration::from_millis(200))
            .connect()
            .await
            .unwrap();
        let _: String = client.cmd("XADD").arg(["s", "*", "f", "v"]).query().await.unwrap();
        client.cmd("XGROUP").arg(["CREATE", "s", "g", "0"]).exec().await.unwrap();
        // The only exclusive connection is taken: a command that needs one cannot run.
        let held = client.exclusive().await.unwrap();
        let read: Value = soon("XREAD", client.cmd("XREAD").arg(["COUNT", "1", "STREAMS", "s", "0"]).query())
            .await
            .expect("XREAD without BLOCK must not need an exclusive connection");
        assert_ne!(read, Value::Nil);
        let _: Value = soon("xread", client.xread("s", "0"))
            .await
            .expect("the generated xread without BLOCK must not need one either");
        let group: Value = soon("XREADGROUP", client.cmd("XREADGROUP").arg(["GROUP", "g", "c", "STREAMS", "s", ">"]).query())
            .await
            .expect("XREADGROUP without BLOCK must not need an exclusive connection");
        assert_ne!(group, Value::Nil);
        // With BLOCK they block, so they need the pool.
        let err = soon("XREAD BLOCK", client.cmd("XREAD").arg(["BLOCK", "10", "STREAMS", "s", "$"]).query::<Value>())
            .await
            .unwrap_err();
        assert!(err.is_pool(), "{err}");
        let err = soon("xread_with block", client.xread_with::<Value>("s", "$", XreadOptions::new().block(10)))
            .await
            .unwrap_err();
        assert!(err.is_pool(), "{err}");
        // A key named BLOCK after STREAMS is a key, not the option.
        let _: Value = soon("XREAD key BLOCK", client.cmd("XREAD").arg(["STREAMS", "BLOCK", "0"]).query())
            .await
            .expect("a stream named BLOCK is not the BLOCK option");
        drop(held);
        assert!(!kermes::cmd("XREAD").arg(["STREAMS", "s", "0"]).is_blocking());
        assert!(kermes::cmd("xread").arg(["block", "0", "STREAMS", "s", "0"]).is_blocking());
    }

    async fn pipelines_refuse_pub_sub_and_connection_state_commands(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let refused = [
            cmd("SUBSCRIBE").arg("ch"),
            cmd("MONITOR"),
            cmd("SELECT").arg(2),
            cmd("CLIENT").arg(["REPLY", "OFF"]),
            cmd("CLIENT").arg(["TRACKING", "on"]),
            cmd("MULTI"),
        ];
        for c in refused {
            let name = format!("{c:?}");
            let pipe = client.pipeline();
            pipe.set("before", 1);
            pipe.cmd(c);
            pipe.get("after");
            let err = soon(&name, pipe.run()).await.unwrap_err();
            assert!(err.is_usage(), "{name}: {err}");
        }
        // Nothing of a refused pipeline was sent.
        let before: Option<i64> = client.get("before").to().await.unwrap();
        assert_eq!(before, None);
        // Transactions refuse them too.
        let tx = client.transaction();
        tx.cmd(cmd("SUBSCRIBE").arg("ch"));
        let err = soon("transaction SUBSCRIBE", tx.run()).await.unwrap_err();
        assert!(err.is_usage(), "{err}");
    }

    async fn pub_sub_commands_point_to_the_subscriber_not_to_exclusive(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        for c in [cmd("SUBSCRIBE").arg("ch"), cmd("MONITOR"), cmd("ssubscribe").arg("x")] {
            let err = soon("pub/sub", client.query::<Value>(c)).await.unwrap_err();
            assert!(err.is_usage(), "{err}");
            assert!(!err.to_string().contains("exclusive()"), "exclusive() refuses it too: {err}");
            assert!(err.to_string().contains("subscriber()") || err.to_string().contains("monitor()"), "{err}");
        }
    }
}
