//! The engine against real servers: the endpoint seam and resendable requests.

use std::sync::atomic::AtomicUsize;

use bytes::BytesMut;
use futures::future::BoxFuture;

use super::*;
use crate::cmd::cmd;
use crate::config::{Addr, ReconnectPolicy};
use crate::testing::{ServerKind, TestServer};

/// Hands out its addresses in turn, then keeps the last.
#[derive(Debug)]
struct Switching {
    addrs: Vec<Addr>,
    asked: AtomicUsize,
}

impl Endpoint for Switching {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(self.addrs[n.min(self.addrs.len() - 1)].clone()) })
    }
}

fn addr(server: &TestServer) -> Addr {
    Addr::Tcp {
        host: "127.0.0.1".into(),
        port: server.port(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_asked_at_every_reconnect_and_encoded_requests_can_be_resent() {
    let kind = ServerKind::under_test()[0];
    let mut first = TestServer::start(kind);
    let second = TestServer::start(kind);
    let endpoint = Arc::new(Switching {
        addrs: vec![addr(&first), addr(&second)],
        asked: AtomicUsize::new(0),
    });
    let (events, mut seen) = broadcast::channel(16);
    let mut opts = Options::new(
        Arc::new(Config::default()),
        endpoint.clone(),
        None,
        Mode::Shared,
    );
    opts.events = Some(events);
    let conn = Connection::open(opts).await.unwrap();
    assert_eq!(endpoint.asked.load(Ordering::SeqCst), 1);

    // One encoded request, kept to be sent again (as a redirected command will be).
    let mut incr = BytesMut::new();
    cmd("INCR").arg("where").args.encode_into(&mut incr);
    let incr = incr.freeze();
    let n = conn
        .request(Payload::Encoded(incr.clone()), 1)
        .await
        .unwrap();
    assert_eq!(n, Value::Int(1));

    first.kill();
    // The connection asks its endpoint again and follows it to the second server, where
    // the same bytes run again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let n = loop {
        match conn.request(Payload::Encoded(incr.clone()), 1).await {
            Ok(v) => break v,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(n, Value::Int(1), "the second server starts from nothing");
    assert!(endpoint.asked.load(Ordering::SeqCst) >= 2);
    let mut reconnected = None;
    while let Ok(event) = seen.try_recv() {
        if let ConnectionEvent::Reconnected {
            generation, addr, ..
        } = event
        {
            reconnected = Some((generation, addr));
        }
    }
    assert_eq!(reconnected, Some((1, addr(&second))));
}

/// A primary endpoint over one fixed address that counts resolves and invalidations.
#[derive(Debug)]
struct CountingPrimary {
    addr: Addr,
    resolved: AtomicUsize,
    invalidated: AtomicUsize,
}

impl Endpoint for CountingPrimary {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        self.resolved.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move { Ok(self.addr.clone()) })
    }

    fn role(&self) -> Option<Role> {
        Some(Role::Primary)
    }

    fn invalidate(&self) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}

/// A server that says it is a master (ROLE) but answers writes with READONLY, as a demoted
/// master does; it counts connections.
async fn demoted_master() -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut codec = crate::resp::RespCodec::default();
                let mut buf = BytesMut::new();
                loop {
                    use tokio_util::codec::Decoder;
                    while let Ok(Some(frame)) = codec.decode(&mut buf) {
                        let args: Vec<bytes::Bytes> = crate::FromValue::from_value(frame).unwrap();
                        let reply: &[u8] = match &args[0].to_ascii_uppercase()[..] {
                            b"HELLO" => b"-ERR unknown command 'HELLO'\r\n",
                            b"ROLE" => b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n",
                            b"SET" => b"-READONLY You can't write against a read only replica.\r\n",
                            b"GET" => b"$1\r\nx\r\n",
                            b"PING" => b"+PONG\r\n",
                            _ => b"+OK\r\n",
                        };
                        if socket.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                    if socket.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return;
                    }
                }
            });
        }
    });
    (port, accepted)
}

#[tokio::test]
async fn a_readonly_reply_from_a_primary_moves_the_connection() {
    let (port, accepted) = demoted_master().await;
    let endpoint = Arc::new(CountingPrimary {
        addr: Addr::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        resolved: AtomicUsize::new(0),
        invalidated: AtomicUsize::new(0),
    });
    let opts = Options::new(
        Arc::new(Config::default()),
        endpoint.clone(),
        None,
        Mode::Shared,
    );
    let conn = Connection::open(opts).await.unwrap();
    let set = cmd("SET").arg("k").arg("v");
    // The caller gets the server's answer (never a silent retry)...
    let reply = conn.request(Payload::Args(set.args), 1).await.unwrap();
    assert!(
        matches!(&reply, Value::Error(e) if e.code() == "READONLY"),
        "{reply:?}"
    );
    // ...and the connection leaves that server and asks its endpoint again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while accepted.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reconnect after READONLY"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(endpoint.resolved.load(Ordering::SeqCst) >= 2);
    assert!(endpoint.invalidated.load(Ordering::SeqCst) >= 1);
    // A standalone connection (no role expected) keeps its socket on READONLY.
    let (port, accepted) = demoted_master().await;
    let fixed = Arc::new(Fixed(Addr::Tcp {
        host: "127.0.0.1".into(),
        port,
    }));
    let conn = Connection::open(Options::new(
        Arc::new(Config::default()),
        fixed,
        None,
        Mode::Shared,
    ))
    .await
    .unwrap();
    let set = cmd("SET").arg("k").arg("v");
    let _ = conn.request(Payload::Args(set.args), 1).await.unwrap();
    let get = cmd("GET").arg("k");
    let _ = conn.request(Payload::Args(get.args), 1).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

/// A dead address until told otherwise, then a live one; says so through `changed`.
#[derive(Debug)]
struct Announcing {
    dead: Addr,
    live: Addr,
    switched: std::sync::atomic::AtomicBool,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Endpoint for Announcing {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        let to = match self.switched.load(Ordering::SeqCst) {
            true => self.live.clone(),
            false => self.dead.clone(),
        };
        Box::pin(async move { Ok(to) })
    }

    fn changed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.changed.subscribe())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_waiting_out_its_backoff_goes_as_soon_as_the_endpoint_changes() {
    let kind = ServerKind::under_test()[0];
    let mut first = TestServer::start(kind);
    let second = TestServer::start(kind);
    let endpoint = Arc::new(Announcing {
        dead: addr(&first),
        live: addr(&second),
        switched: Default::default(),
        changed: tokio::sync::watch::channel(0).0,
    });
    // Backoff long enough that only the signal can explain a quick reconnect.
    let config = Config {
        reconnect: ReconnectPolicy {
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
            ..ReconnectPolicy::default()
        },
        ..Config::default()
    };
    let opts = Options::new(Arc::new(config), endpoint.clone(), None, Mode::Shared);
    let conn = Connection::open(opts).await.unwrap();
    first.kill();
    // The immediate attempt fails (the server is gone); the next waits 30 s.
    let ping = || conn.request(Payload::Args(cmd("PING").args), 1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ping().await.is_ok() || conn.is_up() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the connection noticed the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let told = tokio::time::Instant::now();
    endpoint.switched.store(true, Ordering::SeqCst);
    endpoint.changed.send_modify(|v| *v += 1);
    while !conn.is_up() {
        assert!(
            told.elapsed() < Duration::from_secs(5),
            "still waiting out the backoff"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ping().await.unwrap();
}
