//! [`Subscriber`]: pub/sub on a connection of its own, as a `Stream` of [`Event`]s.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;

use super::message::{Event, Message};
use crate::conn::{BroadcastStream, Connection, Family, Options, Push, SubChange, WeakConnection};
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::{ArgBuf, ToArgs};

/// Options for [`Client::subscriber_with`](crate::Client::subscriber_with).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscriberOptions {
    /// Events held for a slow consumer; past it the oldest are dropped, and the consumer
    /// reads [`Event::Lagged`] with their count before the rest. Default 4,096.
    pub buffer: usize,
    /// How often an idle connection is checked with PING; a PING unanswered by the next
    /// check counts as a dead connection. Default 30 s.
    pub keepalive: Duration,
}

impl Default for SubscriberOptions {
    fn default() -> Self {
        SubscriberOptions {
            buffer: 4096,
            keepalive: Duration::from_secs(30),
        }
    }
}

impl SubscriberOptions {
    /// Sets [`buffer`](Self::buffer).
    pub fn buffer(mut self, events: usize) -> Self {
        self.buffer = events.max(1);
        self
    }

    /// Sets [`keepalive`](Self::keepalive).
    pub fn keepalive(mut self, every: Duration) -> Self {
        self.keepalive = every;
        self
    }
}

/// The names an argument list holds, one per argument.
pub(crate) fn names(list: impl ToArgs) -> Vec<Bytes> {
    let mut args = ArgBuf::default();
    list.write_args(&mut args);
    args.iter().map(Bytes::copy_from_slice).collect()
}

/// Changes the subscriptions of a [`Subscriber`] from anywhere; cheap to clone. It does not
/// keep the subscriber alive: once the subscriber is dropped, changes fail with
/// `is_closed()`.
#[derive(Clone)]
pub struct SubscriberHandle {
    conn: WeakConnection,
}

impl SubscriberHandle {
    async fn change(&self, family: Family, subscribe: bool, list: impl ToArgs) -> Result<()> {
        let Some(conn) = self.conn.upgrade() else {
            return Err(Error::closed("the subscriber has stopped"));
        };
        conn.change_subscription(SubChange {
            family,
            subscribe,
            names: names(list),
        })
        .await
    }

    /// Subscribes to channels; returns once the server confirmed. Subscribing twice is
    /// harmless.
    pub async fn subscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Channel, true, channels).await
    }

    /// Subscribes to glob-style patterns (`news.*`).
    pub async fn psubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.change(Family::Pattern, true, patterns).await
    }

    /// Subscribes to shard channels (Redis 7+).
    pub async fn ssubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Shard, true, channels).await
    }

    /// Unsubscribes from channels; `()` for all of them.
    pub async fn unsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Channel, false, channels).await
    }

    /// Unsubscribes from patterns; `()` for all of them.
    pub async fn punsubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.change(Family::Pattern, false, patterns).await
    }

    /// Unsubscribes from shard channels; `()` for all of them.
    pub async fn sunsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Shard, false, channels).await
    }
}

/// A stream of pub/sub [`Event`]s on a connection of its own.
///
/// Subscribe and unsubscribe at any time, through the subscriber itself between reads or
/// through a [`SubscriberHandle`] from another task. If a change is attempted while the
/// connection is down, it fails with `is_closed()` but is recorded, and made when the
/// connection comes back. Dropping the subscriber closes its connection.
///
/// ```no_run
/// use futures::StreamExt;
/// use kermes::pubsub::Event;
///
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// let mut sub = client.subscriber().await?;
/// sub.subscribe(["news", "alerts"]).await?;
/// sub.psubscribe("user.*").await?;
/// while let Some(event) = sub.next().await {
///     match event {
///         Event::Message(m) => println!("{}: {:?}", m.channel_str(), m.payload_as::<String>()),
///         Event::Reconnected => println!("reconnected: messages may have been missed"),
///         Event::Lagged(n) => println!("too slow: {n} events dropped"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Subscriber {
    /// Keeps the connection alive; handles hold weak references.
    _conn: Connection,
    frames: BroadcastStream<Push>,
    handle: SubscriberHandle,
}

impl Subscriber {
    pub(crate) async fn open(mut opts: Options, options: SubscriberOptions) -> Result<Subscriber> {
        opts.push_buffer = options.buffer;
        // An idle subscriber is PINGed every `keepalive`; a PING unanswered by the next
        // check ends the connection.
        opts.idle_ping = Some(options.keepalive);
        opts.unresponsive = Some(options.keepalive);
        let (conn, frames) = Connection::open_with_push(opts).await?;
        Ok(Subscriber {
            handle: SubscriberHandle {
                conn: conn.downgrade(),
            },
            _conn: conn,
            frames: BroadcastStream::new(frames),
        })
    }

    /// A handle for changing subscriptions from other tasks.
    pub fn handle(&self) -> SubscriberHandle {
        self.handle.clone()
    }

    /// See [`SubscriberHandle::subscribe`].
    pub async fn subscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.handle.subscribe(channels).await
    }

    /// See [`SubscriberHandle::psubscribe`].
    pub async fn psubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.handle.psubscribe(patterns).await
    }

    /// See [`SubscriberHandle::ssubscribe`].
    pub async fn ssubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.handle.ssubscribe(channels).await
    }

    /// See [`SubscriberHandle::unsubscribe`].
    pub async fn unsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.handle.unsubscribe(channels).await
    }

    /// See [`SubscriberHandle::punsubscribe`].
    pub async fn punsubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.handle.punsubscribe(patterns).await
    }

    /// See [`SubscriberHandle::sunsubscribe`].
    pub async fn sunsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.handle.sunsubscribe(channels).await
    }

    /// Unsubscribes from everything, waits for the server to confirm, and closes the
    /// connection: once it returns, publishers no longer count this subscriber. (Dropping
    /// the subscriber also closes it, without waiting.)
    pub async fn close(self) -> Result<()> {
        self.handle.unsubscribe(()).await?;
        self.handle.punsubscribe(()).await?;
        self.handle.sunsubscribe(()).await
    }
}

impl Stream for Subscriber {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            let event = match ready!(Pin::new(&mut self.frames).poll_next(cx)) {
                None => return Poll::Ready(None),
                Some(Err(missed)) => Event::Lagged(missed),
                Some(Ok(Push::Reconnected { .. })) => Event::Reconnected,
                Some(Ok(Push::Frame(Value::Push(items) | Value::Array(items)))) => {
                    match Message::from_frame(&items) {
                        Some(m) => Event::Message(m),
                        // Confirmations the server sent by itself, and the like.
                        None => continue,
                    }
                }
                Some(Ok(_)) => continue,
            };
            return Poll::Ready(Some(event));
        }
    }
}
