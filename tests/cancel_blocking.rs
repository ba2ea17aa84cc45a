//! A blocking command that is cancelled (select!, timeout, a per-command timeout) must not
//! leave its connection blocked on the server, where it would take the next element pushed
//! and throw it away, and must not leak a connection or a task.

#[macro_use]
mod common;

use std::time::Duration;

use common::wait_until_async;
use kermes::testing::TestServer;
use kermes::{Client, Cmd, Value, cmd};

/// `(connected_clients, blocked_clients)` from INFO clients.
async fn clients(admin: &Client) -> (i64, i64) {
    let info: String = admin.cmd("INFO").arg("clients").query().await.unwrap();
    let field = |name: &str| -> i64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in INFO clients: {info}"))
    };
    (field("connected_clients"), field("blocked_clients"))
}

/// How a caller gives up on a command.
#[derive(Clone, Copy, Debug)]
enum Cancel {
    Select,
    Timeout,
    CommandTimeout,
}

/// Starts `blocking`, gives up on it after it has blocked for a while, as `how` says.
async fn cancel(client: &Client, blocking: Cmd, how: Cancel) {
    let wait = Duration::from_millis(150);
    match how {
        Cancel::Select => {
            tokio::select! {
                r = client.query::<Value>(blocking) => panic!("the command returned: {r:?}"),
                _ = tokio::time::sleep(wait) => {}
            }
        }
        Cancel::Timeout => {
            let r = tokio::time::timeout(wait, client.query::<Value>(blocking)).await;
            assert!(r.is_err(), "the command returned: {r:?}");
        }
        Cancel::CommandTimeout => {
            let err = client
                .query::<Value>(blocking.timeout(wait))
                .await
                .unwrap_err();
            assert!(err.is_timeout(), "{err}");
        }
    }
}

server_tests! {
    async fn a_cancelled_blocking_pop_leaves_the_next_pushed_element_in_place(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let admin = Client::connect(&server.url()).await.unwrap();
        // One blocking command first, so the pool holds its idle connection in the baseline.
        let _: Value = client.query(cmd("BLPOP").arg("warm").arg(0.01)).await.unwrap();
        let baseline = clients(&admin).await;
        assert_eq!(baseline.1, 0);

        let hows = [Cancel::Select, Cancel::Timeout, Cancel::CommandTimeout];
        for (i, how) in hows.iter().cycle().take(6).enumerate() {
            // BLPOP, BRPOP, BLMOVE: a push right after the cancel must stay in the list.
            for (name, blocking) in [
                ("BLPOP", cmd("BLPOP").arg("jobs").arg(0)),
                ("BRPOP", cmd("BRPOP").arg("jobs").arg(0)),
                ("BLMOVE", cmd("BLMOVE").arg("jobs").arg("taken").arg("LEFT").arg("RIGHT").arg(0)),
            ] {
                cancel(&client, blocking, *how).await;
                let pushed: i64 = client.cmd("RPUSH").arg("jobs").arg(i).query().await.unwrap();
                assert_eq!(pushed, 1, "{name} cancelled by {how:?}: the list should hold the new element");
                let left: Vec<String> = client.cmd("LRANGE").arg("jobs").arg(0).arg(-1).query().await.unwrap();
                assert_eq!(left, [i.to_string()], "{name} cancelled by {how:?} took the element");
                let taken: i64 = client.cmd("LLEN").arg("taken").query().await.unwrap();
                assert_eq!(taken, 0, "{name} cancelled by {how:?} moved the element");
                client.cmd("DEL").arg("jobs").exec().await.unwrap();
            }
            // BZPOPMIN likewise for a sorted set.
            cancel(&client, cmd("BZPOPMIN").arg("scores").arg(0), *how).await;
            client.cmd("ZADD").arg("scores").arg(1).arg("m").exec().await.unwrap();
            let card: i64 = client.cmd("ZCARD").arg("scores").query().await.unwrap();
            assert_eq!(card, 1, "BZPOPMIN cancelled by {how:?} took the member");
            client.cmd("DEL").arg("scores").exec().await.unwrap();
        }

        // No blocked client and no extra connection stays behind.
        wait_until_async(Duration::from_secs(5), "no blocked client and no extra connection stays behind", || async {
            let (connected, blocked) = clients(&admin).await;
            blocked == 0 && connected <= baseline.0
        })
        .await;
    }

    async fn a_cancelled_xreadgroup_block_lets_the_group_read_the_next_entry(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let admin = Client::connect(&server.url()).await.unwrap();
        client.cmd("XGROUP").arg(["CREATE", "events", "g", "$", "MKSTREAM"]).exec().await.unwrap();
        let _: Value = client.query(cmd("BLPOP").arg("warm").arg(0.01)).await.unwrap();
        let baseline = clients(&admin).await;

        let read = || cmd("XREADGROUP").arg(["GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "events", ">"]);
        cancel(&client, read(), Cancel::Select).await;
        let id: String = client.cmd("XADD").arg(["events", "*", "n", "1"]).query().await.unwrap();
        // The entry must not have been delivered to the abandoned read.
        let pending: Vec<Value> = client.cmd("XPENDING").arg(["events", "g"]).query().await.unwrap();
        assert_eq!(pending[0], Value::Int(0), "the cancelled XREADGROUP received the entry: {pending:?}");
        let got: Value = client
            .query(cmd("XREADGROUP").arg(["GROUP", "g", "c2", "COUNT", "1", "STREAMS", "events", ">"]))
            .await
            .unwrap();
        assert!(format!("{got:?}").contains(&id), "{got:?}");

        // XREAD BLOCK, cancelled, leaves nothing blocked either.
        cancel(&client, cmd("XREAD").arg(["BLOCK", "0", "STREAMS", "events", "$"]), Cancel::Timeout).await;
        wait_until_async(Duration::from_secs(5), "no blocked client and no extra connection stays behind", || async {
            let (connected, blocked) = clients(&admin).await;
            blocked == 0 && connected <= baseline.0
        })
        .await;
    }

    async fn twenty_cancels_leave_no_blocked_client_and_no_connection_behind(kind) {
        let server = TestServer::start(kind);
        let client = Client::connect(&server.url()).await.unwrap();
        let admin = Client::connect(&server.url()).await.unwrap();
        let baseline = clients(&admin).await;
        for _ in 0..20 {
            cancel(&client, cmd("BLPOP").arg("nothing").arg(0), Cancel::Timeout).await;
        }
        wait_until_async(Duration::from_secs(5), "no connection stays blocked", || async {
            let (connected, blocked) = clients(&admin).await;
            blocked == 0 && connected <= baseline.0
        })
        .await;
        // And the pool still serves blocking commands.
        client.cmd("RPUSH").arg("q").arg("x").exec().await.unwrap();
        let got: Option<(String, String)> = client.cmd("BLPOP").arg("q").arg(1).query().await.unwrap();
        assert_eq!(got, Some(("q".into(), "x".into())));
    }
}
