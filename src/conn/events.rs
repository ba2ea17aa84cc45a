//! What connections tell the layers above them: lifecycle events ([`ConnectionEvent`]) and
//! out-of-band frames ([`Push`]), each through a bounded broadcast that reports lag instead
//! of growing.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::ReusableBoxFuture;

use crate::config::Addr;
use crate::resp::Value;

/// A change in the life of a connection: published to
/// [`Client::events`](crate::Client::events) for the client's shared connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// A connection was established for the first time.
    Connected {
        /// Which connection: unique within the process.
        connection: u64,
        /// Where it went.
        addr: Addr,
    },
    /// A connection died; the commands in flight on it failed, none is resent. A reconnect
    /// follows unless reconnecting is off.
    Disconnected {
        /// Which connection.
        connection: u64,
        /// How many times it had been re-established before (0 for the first socket).
        generation: u64,
        /// Why it died.
        reason: String,
    },
    /// The connection is back, with its handshake (and subscriptions) restored. Anything
    /// pushed by the server meanwhile (messages, invalidations) was missed.
    Reconnected {
        /// Which connection.
        connection: u64,
        /// How many times it has been re-established (1 for the first reconnect).
        generation: u64,
        /// Where it went (a failover may have moved it).
        addr: Addr,
    },
    /// No exclusive connection (for a blocking command, a transaction, `exclusive()`) came
    /// free within the pool's wait timeout: the caller failed with
    /// [`is_pool()`](crate::Error::is_pool). Also a `warn` tracing event.
    PoolExhausted {
        /// The pool's size limit ([`ClientBuilder::pool_max_size`](crate::ClientBuilder::pool_max_size)).
        max_size: usize,
        /// Callers still waiting for a connection.
        waiting: usize,
    },
    /// This receiver fell behind and missed this many events.
    Lagged(u64),
}

/// What a connection received outside of replies, in order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Push {
    /// An out-of-band frame: a RESP3 push (pub/sub message, client-side caching
    /// invalidation) or, on a subscriber's RESP2 connection, a message.
    Frame(Value),
    /// The connection was re-established (`generation` counts reconnects); frames pushed
    /// while it was down were missed. Comes before any frame of the new connection.
    Reconnected {
        /// How many times the connection has been re-established.
        generation: u64,
    },
}

/// A broadcast receiver as a stream: `Err(n)` when this receiver missed `n` items.
pub(crate) struct BroadcastStream<T> {
    next: ReusableBoxFuture<'static, (Result<T, RecvError>, broadcast::Receiver<T>)>,
}

async fn receive<T: Clone + Send + 'static>(
    mut rx: broadcast::Receiver<T>,
) -> (Result<T, RecvError>, broadcast::Receiver<T>) {
    let item = rx.recv().await;
    (item, rx)
}

impl<T: Clone + Send + 'static> BroadcastStream<T> {
    pub(crate) fn new(rx: broadcast::Receiver<T>) -> Self {
        BroadcastStream {
            next: ReusableBoxFuture::new(receive(rx)),
        }
    }
}

impl<T: Clone + Send + 'static> Stream for BroadcastStream<T> {
    type Item = Result<T, u64>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let (item, rx) = ready!(self.next.poll(cx));
        self.next.set(receive(rx));
        Poll::Ready(match item {
            Ok(v) => Some(Ok(v)),
            Err(RecvError::Lagged(n)) => Some(Err(n)),
            Err(RecvError::Closed) => None,
        })
    }
}

/// A stream of [`ConnectionEvent`]s, from [`Client::events`](crate::Client::events). Keeps up
/// to 256 events for a slow reader; past that it yields [`ConnectionEvent::Lagged`]. Ends
/// when the client is gone.
pub struct ConnectionEvents {
    inner: BroadcastStream<ConnectionEvent>,
}

impl ConnectionEvents {
    pub(crate) fn new(rx: broadcast::Receiver<ConnectionEvent>) -> Self {
        ConnectionEvents {
            inner: BroadcastStream::new(rx),
        }
    }
}

impl Stream for ConnectionEvents {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner)
            .poll_next(cx)
            .map(|item| item.map(|r| r.unwrap_or_else(ConnectionEvent::Lagged)))
    }
}

impl std::fmt::Debug for ConnectionEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnectionEvents")
    }
}
