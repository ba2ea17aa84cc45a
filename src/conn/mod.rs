//! Connections: a cheap handle ([`Connection`]) that queues requests for the task that owns
//! the socket, and that task ([`task`]), which drives the socket, reconnects when it dies and
//! restores what the connection must have (handshake, subscriptions, MONITOR).
//!
//! One engine serves every connection kind ([`Mode`]): shared multiplexed connections,
//! exclusive ones from the pool, subscribers and monitors. Where a connection goes is asked
//! of its [`Endpoint`] at every connect.

mod driver;
mod endpoint;
mod events;
mod handshake;
mod subscriptions;
mod task;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::{Config, Protocol};
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::tls::TlsConnector;
use crate::value::ArgBuf;
pub(crate) use endpoint::{Endpoint, Fixed, Role};
pub(crate) use events::BroadcastStream;
pub use events::{ConnectionEvent, ConnectionEvents, Push};
pub(crate) use handshake::check as check_handshake;
pub(crate) use handshake::replay as replay_handshake;
pub(crate) use subscriptions::{Family, SubChange};
use transport::ShutdownHandle;

/// What a request writes.
pub(crate) enum Payload {
    /// One command's arguments; the driver writes the array header.
    Args(ArgBuf),
    /// Fully encoded commands (a pipeline). Cheap to keep a copy of, to send it again.
    Encoded(Bytes),
    /// A subscription change: the driver records it, and sends it when connected.
    Subscription(Box<SubChange>),
}

pub(crate) struct Request {
    payload: Payload,
    /// Replies the payload produces; more than one come back as one array.
    replies: usize,
    /// A blocking command: its reply may take as long as it blocks.
    blocking: bool,
    tx: oneshot::Sender<Result<Value>>,
}

/// How a connection is used, which decides how its frames are told apart from replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Multiplexed, shared by every caller; RESP3 push frames go to the push channel.
    Shared,
    /// One caller at a time, from the pool; a reply its caller abandoned closes it at once,
    /// and it never reconnects (WATCH or a SELECT must not vanish behind its holder).
    Exclusive,
    /// A pub/sub subscriber: messages (RESP2 arrays or RESP3 pushes) go to the push channel.
    Subscriber,
    /// MONITOR, sent at every connect: every line goes to the push channel.
    Monitor,
}

/// Everything a connection needs to live: where it goes, how it hand-shakes, how its health
/// is checked.
#[derive(Clone)]
pub(crate) struct Options {
    pub(crate) config: Arc<Config>,
    pub(crate) endpoint: Arc<dyn Endpoint>,
    pub(crate) mode: Mode,
    /// Re-establish a dead connection (with the config's backoff policy).
    pub(crate) reconnect: bool,
    /// PING a connection idle this long.
    pub(crate) idle_ping: Option<Duration>,
    /// Fail a connection whose oldest request waited this long with nothing read.
    pub(crate) unresponsive: Option<Duration>,
    /// Out-of-band frames kept for a slow reader before it is told it lagged.
    pub(crate) push_buffer: usize,
    /// Where lifecycle events go, if anywhere.
    pub(crate) events: Option<broadcast::Sender<ConnectionEvent>>,
    /// TLS for every connect, if configured.
    pub(crate) tls: Option<TlsConnector>,
    /// Send READONLY in the handshake (a cluster replica serving reads).
    pub(crate) readonly: bool,
    /// Told of each subscription the server dropped by itself (a cluster moving a shard
    /// channel's slot) or refused when it was made again after a reconnect.
    pub(crate) on_dropped: Option<DroppedHook>,
    /// The client-side cache: a shared connection turns tracking on in its handshake,
    /// hands it every invalidation, and flushes it when invalidations may have been missed
    /// (the connection died or came back).
    pub(crate) tracking: Option<Arc<crate::cache::LocalCache>>,
    /// The client's counters, where this connection registers its own.
    pub(crate) stats: Option<Arc<crate::stats::Registry>>,
}

/// See [`Options::on_dropped`].
pub(crate) type DroppedHook = Arc<dyn Fn(Family, Bytes) + Send + Sync>;

impl Options {
    /// The config's health settings and reconnect policy, for a connection of `mode`.
    pub(crate) fn new(
        config: Arc<Config>,
        endpoint: Arc<dyn Endpoint>,
        tls: Option<TlsConnector>,
        mode: Mode,
    ) -> Options {
        Options {
            reconnect: mode != Mode::Exclusive && config.reconnect.enabled,
            // A MONITOR connection would see its own PINGs in its feed; TCP keepalive and
            // the bound on MONITOR's own reply watch it instead.
            idle_ping: if mode == Mode::Monitor {
                None
            } else {
                config.idle_ping
            },
            unresponsive: config.unresponsive_timeout,
            push_buffer: PUSH_BUFFER,
            events: None,
            tls,
            readonly: false,
            on_dropped: None,
            tracking: None,
            stats: None,
            config,
            endpoint,
            mode,
        }
    }
}

impl Options {
    /// The same options for a connection of another mode (its reconnect rule and health
    /// checks follow the mode).
    pub(crate) fn with_mode(&self, mode: Mode) -> Options {
        let mut opts = Options::new(
            self.config.clone(),
            self.endpoint.clone(),
            self.tls.clone(),
            mode,
        );
        opts.readonly = self.readonly;
        opts.tracking = self.tracking.clone();
        opts.stats = self.stats.clone();
        opts
    }
}

/// Where a request's reply arrives.
pub(crate) type ReplyRx = oneshot::Receiver<Result<Value>>;

/// Why a request was not queued at once.
pub(crate) enum TryRequest {
    /// The queue is full; the request and its reply receiver come back (boxed: this is the
    /// rare path, and a request holds its arguments inline).
    Full(Box<(Request, ReplyRx)>),
    /// The connection has shut down for good.
    Closed,
}

pub(crate) fn shut_down() -> Error {
    Error::unsent("the connection has shut down")
}

/// The reply from a receiver, or a closed error if the connection dropped the request.
pub(crate) async fn wait_reply(reply: ReplyRx) -> Result<Value> {
    reply.await.unwrap_or_else(|_| Err(shut_down()))
}

/// Queue depth between callers and the connection task; callers wait when it is full.
const QUEUE: usize = 4096;
/// Push frames kept for a slow push consumer before it is told it lagged.
pub(crate) const PUSH_BUFFER: usize = 4096;

/// Numbers connections for events and logs.
static CONNECTIONS: AtomicU64 = AtomicU64::new(0);

/// A handle to one connection. Clones share the connection; the task and the socket go away
/// when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Connection {
    tx: mpsc::Sender<Request>,
    push: broadcast::Sender<Push>,
    /// True while the socket is connected (false while reconnecting).
    up: Arc<AtomicBool>,
    protocol: Protocol,
    /// Exclusive connections: closes the socket from the caller's thread.
    shutdown: Option<Arc<ShutdownHandle>>,
}

/// A handle that does not keep its connection alive.
#[derive(Clone)]
pub(crate) struct WeakConnection {
    tx: mpsc::WeakSender<Request>,
    push: broadcast::Sender<Push>,
    up: Arc<AtomicBool>,
    protocol: Protocol,
}

impl WeakConnection {
    /// The connection, if a strong handle still keeps it.
    pub(crate) fn upgrade(&self) -> Option<Connection> {
        Some(Connection {
            tx: self.tx.upgrade()?,
            push: self.push.clone(),
            up: self.up.clone(),
            protocol: self.protocol,
            shutdown: None,
        })
    }
}

impl Connection {
    /// Connects (handshake included) and spawns the task that owns the socket. A first
    /// connect that fails is an error; later ones are retried as the options say.
    pub(crate) async fn open(opts: Options) -> Result<Connection> {
        Ok(Connection::open_with_push(opts).await?.0)
    }

    /// Like [`open`](Self::open), with a receiver of out-of-band frames that sees every frame
    /// from the first one on (a subscriber or a monitor must not miss the first lines).
    pub(crate) async fn open_with_push(
        opts: Options,
    ) -> Result<(Connection, broadcast::Receiver<Push>)> {
        let connected = handshake::connect(&opts).await?;
        let id = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        tracing::info!(connection = id, addr = %connected.addr, protocol = ?connected.protocol, mode = ?opts.mode, "connected");
        let (tx, rx) = mpsc::channel(QUEUE);
        let (push, frames) = broadcast::channel(opts.push_buffer.max(1));
        let protocol = connected.protocol;
        let shutdown = connected.shutdown.map(Arc::new);
        if let Some(events) = &opts.events {
            let _ = events.send(ConnectionEvent::Connected {
                connection: id,
                addr: connected.addr.clone(),
            });
        }
        let up = Arc::new(AtomicBool::new(true));
        let stats = crate::stats::ConnStats::new(
            id,
            opts.mode,
            connected.addr.clone(),
            up.clone(),
            tx.downgrade(),
            opts.stats.clone(),
        );
        tokio::spawn(task::run(
            id,
            connected.socket,
            opts,
            rx,
            push.clone(),
            up.clone(),
            stats,
        ));
        let conn = Connection {
            tx,
            push,
            up,
            protocol,
            shutdown,
        };
        Ok((conn, frames))
    }

    /// Sends a payload that yields `replies` replies and waits for them (as an array when
    /// more than one). Dropping the future is safe at any point: on a multiplexed
    /// connection a reply nobody waits for any more is read and discarded; an exclusive
    /// connection closes.
    pub(crate) async fn request(&self, payload: Payload, replies: usize) -> Result<Value> {
        self.send(payload, replies, false).await
    }

    /// Like [`request`](Self::request); a `blocking` request is exempt from the health
    /// check's bound on replies.
    pub(crate) async fn send(
        &self,
        payload: Payload,
        replies: usize,
        blocking: bool,
    ) -> Result<Value> {
        let (tx, rx) = oneshot::channel();
        let request = Request {
            payload,
            replies,
            blocking,
            tx,
        };
        self.queue_and_wait(request, rx).await
    }

    /// Queues a request if the queue has room, without waiting; the receiver yields the
    /// reply. A full queue hands the request back for [`queue_and_wait`](Self::queue_and_wait).
    pub(crate) fn try_request(
        &self,
        payload: Payload,
        replies: usize,
    ) -> Result<ReplyRx, TryRequest> {
        let (tx, rx) = oneshot::channel();
        let request = Request {
            payload,
            replies,
            blocking: false,
            tx,
        };
        match self.tx.try_send(request) {
            Ok(()) => Ok(rx),
            Err(mpsc::error::TrySendError::Full(request)) => {
                Err(TryRequest::Full(Box::new((request, rx))))
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TryRequest::Closed),
        }
    }

    /// Waits for room in the queue (backpressure), then for the reply.
    pub(crate) async fn queue_and_wait(&self, request: Request, reply: ReplyRx) -> Result<Value> {
        if self.tx.send(request).await.is_err() {
            return Err(shut_down());
        }
        wait_reply(reply).await
    }

    /// Queues a subscription change, waiting for room in the queue but not for the reply:
    /// changes queued by one caller are sent in the order they were queued.
    pub(crate) async fn queue_change(&self, change: SubChange) -> Result<ReplyRx> {
        let (tx, rx) = oneshot::channel();
        let request = Request {
            payload: Payload::Subscription(Box::new(change)),
            replies: 0,
            blocking: false,
            tx,
        };
        self.tx.send(request).await.map_err(|_| shut_down())?;
        Ok(rx)
    }

    /// Makes a subscription change and waits until the server confirmed it. The change is
    /// recorded even when the connection is down (the error says so): it is made on
    /// reconnect.
    pub(crate) async fn change_subscription(&self, change: SubChange) -> Result<()> {
        let reply = wait_reply(self.queue_change(change).await?).await?;
        match reply {
            Value::Error(e) => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Out-of-band frames received from now on, and reconnects in order among them. A
    /// receiver that falls more than the push buffer behind gets `Lagged` with the count.
    pub(crate) fn push_frames(&self) -> broadcast::Receiver<Push> {
        self.push.subscribe()
    }

    /// The protocol the server agreed to at the first connect.
    pub(crate) fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// True once the task has stopped for good (reconnect off, or gave up).
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// True while the socket is connected: false from a failure until the reconnect.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed) && !self.is_closed()
    }

    /// Closes an exclusive connection's socket at once, from this thread: the server drops
    /// whatever the connection was blocked in before anything else reaches it.
    pub(crate) fn kill(&self) {
        if let Some(shutdown) = &self.shutdown {
            shutdown.shutdown();
        }
    }

    /// A handle that does not keep the connection alive.
    pub(crate) fn downgrade(&self) -> WeakConnection {
        WeakConnection {
            tx: self.tx.downgrade(),
            push: self.push.clone(),
            up: self.up.clone(),
            protocol: self.protocol,
        }
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests;
