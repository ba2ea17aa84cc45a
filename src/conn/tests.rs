//! The engine against real servers: the endpoint seam and resendable requests.

use std::sync::atomic::AtomicUsize;

use bytes::BytesMut;
use futures::future::BoxFuture;

use super::*;
use crate::cmd::cmd;
use crate::config::Addr;
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
