//! [`Subscriber`]: pub/sub on a connection of its own, as a `Stream` of [`Event`]s.

use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::stream::SelectAll;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::message::{Event, Message};
use super::shards::{Notice, Shards};
use crate::cluster::Router;
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
    /// On a cluster: the shard channels' connections.
    shards: Option<Weak<Shards>>,
}

fn stopped() -> Error {
    Error::closed("the subscriber has stopped")
}

impl SubscriberHandle {
    async fn change(&self, family: Family, subscribe: bool, list: impl ToArgs) -> Result<()> {
        if family == Family::Shard
            && let Some(shards) = &self.shards
        {
            let shards = shards.upgrade().ok_or_else(stopped)?;
            return shards.change(subscribe, names(list)).await;
        }
        let Some(conn) = self.conn.upgrade() else {
            return Err(stopped());
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

    /// Subscribes to shard channels (Redis 7+). On a cluster each channel is subscribed on
    /// the primary of its slot, and follows the slot when it moves or fails over.
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
/// On a cluster, channels and patterns are subscribed on one primary (classic pub/sub
/// reaches every node), and shard channels on the primary of their slot, each node's on a
/// connection of its own; a shard channel whose slot moves (resharding, failover) is
/// subscribed again where the slot went, and the stream says [`Event::Reconnected`].
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
    /// On a cluster: the shard channels' connections and their frames.
    shards: Option<ShardFeed>,
}

/// The frames of a cluster subscriber's shard connections, merged.
struct ShardFeed {
    /// Keeps the shard connections alive; handles hold weak references.
    shards: Arc<Shards>,
    notices: mpsc::UnboundedReceiver<Notice>,
    streams: SelectAll<BroadcastStream<Push>>,
    /// Which side is polled first next time, so neither starves the other.
    shards_first: bool,
}

impl Subscriber {
    /// A subscriber on a connection of its own; on a cluster (`router`), shard channels go to
    /// the primaries of their slots.
    pub(crate) async fn open(
        mut opts: Options,
        options: SubscriberOptions,
        router: Option<Arc<Router>>,
    ) -> Result<Subscriber> {
        opts.push_buffer = options.buffer;
        // An idle subscriber is PINGed every `keepalive`; a PING unanswered by the next
        // check ends the connection.
        opts.idle_ping = Some(options.keepalive);
        opts.unresponsive = Some(options.keepalive);
        let shards = router.map(|router| {
            let (shards, notices) = Shards::new(router, opts.clone());
            ShardFeed {
                shards,
                notices,
                streams: SelectAll::new(),
                shards_first: false,
            }
        });
        let (conn, frames) = Connection::open_with_push(opts).await?;
        Ok(Subscriber {
            handle: SubscriberHandle {
                conn: conn.downgrade(),
                shards: shards.as_ref().map(|s| Arc::downgrade(&s.shards)),
            },
            _conn: conn,
            frames: BroadcastStream::new(frames),
            shards,
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
        let this = &mut *self;
        let Some(feed) = &mut this.shards else {
            return poll_main(&mut this.frames, cx);
        };
        while let Poll::Ready(Some(notice)) = feed.notices.poll_recv(cx) {
            match notice {
                Notice::Opened(frames) => feed.streams.push(frames),
                Notice::Moved => return Poll::Ready(Some(Event::Reconnected)),
            }
        }
        feed.shards_first = !feed.shards_first;
        if feed.shards_first
            && let Poll::Ready(event) = feed.poll(cx)
        {
            return Poll::Ready(Some(event));
        }
        match poll_main(&mut this.frames, cx) {
            Poll::Pending if !feed.shards_first => feed.poll(cx).map(Some),
            other => other,
        }
    }
}

/// The next event of the main connection; it ends the stream when it ends.
fn poll_main(frames: &mut BroadcastStream<Push>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
    loop {
        let Some(frame) = std::task::ready!(frames.poll_next_unpin(cx)) else {
            return Poll::Ready(None);
        };
        if let Some(event) = event_of(frame) {
            return Poll::Ready(Some(event));
        }
    }
}

/// The event a frame makes, if any (confirmations the server sent by itself make none).
fn event_of(frame: Result<Push, u64>) -> Option<Event> {
    match frame {
        Err(missed) => Some(Event::Lagged(missed)),
        Ok(Push::Reconnected { .. }) => Some(Event::Reconnected),
        Ok(Push::Frame(Value::Push(items) | Value::Array(items))) => {
            Message::from_frame(&items).map(Event::Message)
        }
        Ok(_) => None,
    }
}

impl ShardFeed {
    /// The next event of the shard connections.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        loop {
            // No connection yet (an empty set ends at once): new ones come as notices.
            let Poll::Ready(Some(frame)) = self.streams.poll_next_unpin(cx) else {
                return Poll::Pending;
            };
            if let Some(event) = event_of(frame) {
                return Poll::Ready(event);
            }
        }
    }
}
