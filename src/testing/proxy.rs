//! [`FaultProxy`]: a TCP proxy inside the test process that injects network faults between a
//! client and a server: delays, dropped connections, a black hole, truncated or corrupt
//! replies.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the proxy does to the traffic it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Forwards every byte at once (the default).
    Pass,
    /// Forwards every chunk, in both directions, after this delay.
    Delay(Duration),
    /// Closes every open connection, and every new one as soon as it is accepted.
    DropConnections,
    /// Accepts connections and keeps them open, but forwards nothing in either direction:
    /// what a NAT or load balancer that forgot the flow looks like to both ends. When the
    /// black hole ends, connections whose bytes it swallowed are closed, as such a device
    /// resets a flow it no longer knows.
    BlackHole,
}

/// A one-shot fault applied to the next chunk a server sends to its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NextReply {
    Intact,
    /// Forward its first half, then close both sides: a server dying mid-reply.
    Truncate,
    /// Replace its first byte with one no RESP frame starts with.
    Corrupt,
}

struct Shared {
    next_reply: Mutex<NextReply>,
    accepted: AtomicUsize,
}

/// A proxy between clients and one server, in the test process. Point the client at
/// [`url`](FaultProxy::url), then change the [`Fault`] at any time; it applies to open
/// connections at once. Stops when dropped (open connections are closed).
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use kermes::testing::{Fault, FaultProxy, ServerKind, TestServer};
///
/// let server = TestServer::start(ServerKind::Redis);
/// let proxy = FaultProxy::start(server.port()).await?;
/// let client = kermes::Client::connect(&proxy.url()).await.unwrap();
/// proxy.set(Fault::BlackHole); // the network goes silent
/// proxy.set(Fault::Pass); // and heals
/// # Ok(()) }
/// ```
pub struct FaultProxy {
    port: u16,
    fault: watch::Sender<Fault>,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy on a free local port, forwarding to `127.0.0.1:server_port`.
    pub async fn start(server_port: u16) -> io::Result<FaultProxy> {
        Self::start_to(SocketAddr::from(([127, 0, 0, 1], server_port))).await
    }

    /// Starts a proxy on a free local port, forwarding to `target`.
    pub async fn start_to(target: SocketAddr) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (fault, faults) = watch::channel(Fault::Pass);
        let shared = Arc::new(Shared {
            next_reply: Mutex::new(NextReply::Intact),
            accepted: AtomicUsize::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, target, faults, shared.clone()));
        Ok(FaultProxy {
            port,
            fault,
            shared,
            accept,
        })
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Changes what the proxy does, for open and new connections alike.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        *self.fault.borrow()
    }

    /// The next chunk a server sends is cut in half and both sides are closed.
    pub fn truncate_next_reply(&self) {
        *self.next_reply() = NextReply::Truncate;
    }

    /// The next chunk a server sends has its first byte replaced (`@`), which no RESP2 or RESP3 frame
    /// starts with.
    pub fn corrupt_next_reply(&self) {
        *self.next_reply() = NextReply::Corrupt;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    fn next_reply(&self) -> std::sync::MutexGuard<'_, NextReply> {
        self.shared
            .next_reply
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Open connections see the sender go and close.
        self.fault.send_replace(Fault::DropConnections);
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    faults: watch::Receiver<Fault>,
    shared: Arc<Shared>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        if *faults.borrow() == Fault::DropConnections {
            drop(client);
            continue;
        }
        let (faults, shared) = (faults.clone(), shared.clone());
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(target).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            // Either direction ending (a close, or a fault that closes) ends both.
            tokio::select! {
                _ = pump(client_read, server_write, faults.clone(), None) => {}
                _ = pump(server_read, client_write, faults, Some(shared)) => {}
            }
        });
    }
}

/// Copies one direction under the current fault. `replies` is set for the server-to-client
/// direction, where the one-shot reply faults apply.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut faults: watch::Receiver<Fault>,
    replies: Option<Arc<Shared>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut swallowed = false;
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = faults.changed() => {
                let fault = *faults.borrow();
                if changed.is_err()
                    || fault == Fault::DropConnections
                    || (swallowed && fault != Fault::BlackHole)
                {
                    return;
                }
                continue;
            }
        };
        let fault = *faults.borrow();
        let chunk = &mut buf[..n];
        match fault {
            Fault::DropConnections => return,
            Fault::BlackHole => {
                swallowed = true;
                continue;
            }
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Pass => {}
        }
        let once = replies.as_ref().map_or(NextReply::Intact, |s| {
            std::mem::replace(
                &mut *s.next_reply.lock().unwrap_or_else(PoisonError::into_inner),
                NextReply::Intact,
            )
        });
        match once {
            NextReply::Intact => {}
            NextReply::Corrupt => chunk[0] = b'@',
            NextReply::Truncate => {
                let _ = to
                    .write_all(&chunk[..n.div_ceil(2).min(n - 1).max(1)])
                    .await;
                let _ = to.flush().await;
                return;
            }
        }
        if to.write_all(chunk).await.is_err() {
            return;
        }
    }
}
