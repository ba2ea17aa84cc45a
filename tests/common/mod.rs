//! Shared by the integration tests: one test per server kind, and a scripted fake server.
#![allow(dead_code, unused_macros)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use kermes::resp::RespCodec;
use kermes::testing::ServerKind;
use kermes::{FromValue, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::codec::FramedRead;

/// No test may take longer than this; a hang fails the test instead of stalling the suite.
pub const TEST_LIMIT: Duration = Duration::from_secs(180);

/// Runs `body` for one server kind unless `KERMES_TEST_SERVERS` excludes it.
pub async fn run_on<F, Fut>(kind: ServerKind, body: F)
where
    F: FnOnce(ServerKind) -> Fut,
    Fut: Future<Output = ()>,
{
    if !ServerKind::under_test().contains(&kind) {
        eprintln!("{kind:?} excluded by KERMES_TEST_SERVERS; not run");
        return;
    }
    tokio::time::timeout(TEST_LIMIT, body(kind))
        .await
        .expect("test hung");
}

/// `server_tests! { async fn name(kind) { ... } }` makes `name::redis` and `name::valkey`.
macro_rules! server_tests {
    ($(async fn $name:ident($kind:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($kind: kermes::testing::ServerKind) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                crate::common::run_on(kermes::testing::ServerKind::Redis, body).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn valkey() {
                crate::common::run_on(kermes::testing::ServerKind::Valkey, body).await
            }
        }
    )*};
}

/// A throwaway server of `kind` and a client connected to it.
pub async fn server_and_client(kind: ServerKind) -> (kermes::testing::TestServer, kermes::Client) {
    let server = kermes::testing::TestServer::start(kind);
    let client = kermes::Client::connect(&server.url()).await.unwrap();
    (server, client)
}

/// How many times the server ran each of `commands` (INFO commandstats), summed.
pub async fn command_calls(client: &kermes::Client, commands: &[&str]) -> u64 {
    let info = kermes::helpers::info_map(client, "commandstats")
        .await
        .unwrap();
    commands
        .iter()
        .map(|name| {
            info.get("commandstats", &format!("cmdstat_{name}"))
                .map_or(0u64, |v| {
                    v.split(',')
                        .next()
                        .unwrap()
                        .trim_start_matches("calls=")
                        .parse()
                        .unwrap()
                })
        })
        .sum()
}

/// Where message `id` of `queue` is, if anywhere.
pub async fn message_state(
    client: &kermes::Client,
    queue: &str,
    id: &str,
) -> Option<kermes::mq::MessageState> {
    kermes::mq::message_status(client, queue, id)
        .await
        .unwrap()
        .map(|s| s.state)
}

/// Runs `tasks` spawned copies of `body` (given their index) and waits for all; a panic in
/// one fails the caller.
pub async fn in_tasks<F, Fut>(tasks: usize, body: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let handles: Vec<_> = (0..tasks).map(|i| tokio::spawn(body(i))).collect();
    for h in handles {
        h.await.unwrap();
    }
}

/// Polls `f` every 20 ms until it returns `Ok`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = kermes::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("still failing after {within:?}: {e}"),
        }
    }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `within`.
pub async fn wait_until(within: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the async `condition` holds, checking every 20 ms, for at most `within`.
pub async fn wait_until_async<F, Fut>(within: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A TCP server that answers the handshake as an old RESP2 server would, then answers each
/// command with the bytes `script` returns for (connection number, command arguments).
pub struct FakeServer {
    pub port: u16,
    pub connections: Arc<AtomicUsize>,
}

impl FakeServer {
    pub async fn start<F>(script: F) -> FakeServer
    where
        F: Fn(usize, &[Bytes]) -> Vec<u8> + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let script = Arc::new(script);
        let counter = connections.clone();
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut frames = FramedRead::new(read, RespCodec::default());
                    while let Some(Ok(frame)) = frames.next().await {
                        let args: Vec<Bytes> = Vec::from_value(frame).unwrap();
                        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
                        let reply: Vec<u8> = match name.as_str() {
                            "HELLO" => b"-ERR unknown command 'HELLO'\r\n".to_vec(),
                            "CLIENT" => b"+OK\r\n".to_vec(),
                            _ => script(n, &args),
                        };
                        if reply == b"CLOSE" {
                            return;
                        }
                        if write.write_all(&reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeServer { port, connections }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// RESP encoding of a value, for fake replies.
pub fn resp(value: &Value) -> Vec<u8> {
    let mut b = BytesMut::new();
    kermes::resp::encode_value(value, &mut b);
    b.to_vec()
}
