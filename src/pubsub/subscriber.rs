//! [`Subscriber`]: pub/sub on a connection of its own, as a `Stream` of [`Event`]s.

use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};

use super::message::{Event, Message};
use super::outbox::Outbox;
use crate::cmd::Cmd;
use crate::config::Config;
use crate::conn::{Socket, connect, is_confirmation};
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::{ArgBuf, ToArgs};

/// Options for [`Client::subscriber_with`](crate::Client::subscriber_with).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscriberOptions {
    /// Events held for a slow consumer before newer ones are dropped and counted in an
    /// [`Event::Lagged`]. Default 4,096.
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

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Channel,
    Pattern,
    Shard,
}

impl Family {
    pub(crate) const ALL: [Family; 3] = [Family::Channel, Family::Pattern, Family::Shard];

    pub(crate) fn command(self, subscribe: bool) -> &'static str {
        match (self, subscribe) {
            (Family::Channel, true) => "SUBSCRIBE",
            (Family::Pattern, true) => "PSUBSCRIBE",
            (Family::Shard, true) => "SSUBSCRIBE",
            (Family::Channel, false) => "UNSUBSCRIBE",
            (Family::Pattern, false) => "PUNSUBSCRIBE",
            (Family::Shard, false) => "SUNSUBSCRIBE",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Applies a (un)subscription to the recorded set and returns the names it concerns: an
/// unsubscribe naming nothing means every name in the set.
pub(crate) fn update(set: &mut BTreeSet<Bytes>, subscribe: bool, names: Vec<Bytes>) -> Vec<Bytes> {
    let names = if !subscribe && names.is_empty() {
        set.iter().cloned().collect()
    } else {
        names
    };
    for name in &names {
        if subscribe {
            set.insert(name.clone());
        } else {
            set.remove(name);
        }
    }
    names
}

/// The names an argument list holds, one per argument.
pub(crate) fn names(list: impl ToArgs) -> Vec<Bytes> {
    let mut args = ArgBuf::default();
    list.write_args(&mut args);
    args.iter().map(Bytes::copy_from_slice).collect()
}

struct Change {
    family: Family,
    subscribe: bool,
    names: Vec<Bytes>,
    ack: oneshot::Sender<Result<()>>,
}

/// Changes the subscriptions of a [`Subscriber`] from anywhere; cheap to clone.
#[derive(Clone)]
pub struct SubscriberHandle {
    control: mpsc::Sender<Change>,
}

impl SubscriberHandle {
    async fn change(&self, family: Family, subscribe: bool, list: impl ToArgs) -> Result<()> {
        let (ack, done) = oneshot::channel();
        let change = Change {
            family,
            subscribe,
            names: names(list),
            ack,
        };
        if self.control.send(change).await.is_err() {
            return Err(Error::closed("the subscriber has stopped"));
        }
        done.await
            .unwrap_or_else(|_| Err(Error::closed("the subscriber has stopped")))
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
    events: mpsc::Receiver<Event>,
    handle: SubscriberHandle,
}

impl Subscriber {
    pub(crate) async fn open(
        config: Arc<Config>,
        options: SubscriberOptions,
    ) -> Result<Subscriber> {
        let (socket, _) = connect(&config).await?;
        let (outbox, events) = Outbox::new(options.buffer);
        let (control_tx, control) = mpsc::channel(64);
        let task = Task {
            config,
            options,
            outbox,
            control,
            control_open: true,
            subscriptions: Default::default(),
            acks: VecDeque::new(),
        };
        tokio::spawn(task.run(socket));
        Ok(Subscriber {
            events,
            handle: SubscriberHandle {
                control: control_tx,
            },
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
        self.events.poll_recv(cx)
    }
}

/// What woke the session loop.
enum Step {
    Frame(Option<Result<Value>>),
    Change(Option<Change>),
    Keepalive,
    Notice(Option<mpsc::OwnedPermit<Event>>),
}

struct PendingAck {
    confirmations: usize,
    ack: Option<oneshot::Sender<Result<()>>>,
}

struct Task {
    config: Arc<Config>,
    options: SubscriberOptions,
    outbox: Outbox,
    control: mpsc::Receiver<Change>,
    control_open: bool,
    subscriptions: [BTreeSet<Bytes>; 3],
    /// Changes sent and not yet fully confirmed, in order.
    acks: VecDeque<PendingAck>,
}

impl Task {
    async fn run(mut self, mut socket: Socket) {
        loop {
            let cause = match self.session(&mut socket).await {
                None => return,
                Some(cause) => cause,
            };
            tracing::warn!(addr = %self.config.addr, error = %cause, "subscriber connection lost");
            for p in self.acks.drain(..) {
                if let Some(ack) = p.ack {
                    let _ = ack.send(Err(Error::closed(format!(
                        "connection lost before the server confirmed ({cause}); the change is recorded and made again on reconnect"
                    ))));
                }
            }
            match self.reconnect(cause).await {
                Some(s) => socket = s,
                None => return,
            }
            self.outbox.reconnected();
            for family in Family::ALL {
                let names: Vec<Bytes> =
                    self.subscriptions[family.index()].iter().cloned().collect();
                if !names.is_empty() {
                    write(&mut socket, family.command(true), &names);
                    self.acks.push_back(PendingAck {
                        confirmations: names.len(),
                        ack: None,
                    });
                }
            }
        }
    }

    /// Reads and writes until the connection fails (`Some(cause)`) or the consumer is gone.
    async fn session(&mut self, socket: &mut Socket) -> Option<Error> {
        let mut keepalive = tokio::time::interval(self.options.keepalive);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.tick().await;
        let mut awaiting_pong = false;
        loop {
            if !socket.write_buffer().is_empty() {
                if let Err(e) = SinkExt::<&Value>::flush(&mut *socket).await {
                    return Some(e);
                }
            }
            let notice = self.outbox.notice_pending();
            let events = self.outbox.sender();
            let step = tokio::select! {
                frame = socket.next() => Step::Frame(frame),
                change = self.control.recv(), if self.control_open => Step::Change(change),
                _ = keepalive.tick() => Step::Keepalive,
                permit = events.clone().reserve_owned(), if notice => Step::Notice(permit.ok()),
                _ = events.closed() => return None,
            };
            match step {
                Step::Frame(Some(Ok(value))) => {
                    awaiting_pong = false;
                    self.on_frame(value);
                }
                Step::Frame(Some(Err(e))) => return Some(e),
                Step::Frame(None) => return Some(Error::closed("server closed the connection")),
                Step::Change(Some(change)) => self.apply(change, Some(&mut *socket)),
                Step::Change(None) => self.control_open = false,
                Step::Keepalive => {
                    if awaiting_pong {
                        return Some(Error::timeout("no reply to the keepalive PING"));
                    }
                    Cmd::new("PING").args.encode_into(socket.write_buffer_mut());
                    awaiting_pong = true;
                }
                Step::Notice(Some(permit)) => {
                    permit.send(self.outbox.take_notice());
                }
                Step::Notice(None) => return None,
            }
        }
    }

    /// Reconnects with the client's backoff policy. Changes asked for meanwhile are recorded
    /// and answered at once. `None` when the consumer is gone or the policy gives up.
    async fn reconnect(&mut self, mut last: Error) -> Option<Socket> {
        let mut failures: u32 = 0;
        loop {
            if !self.config.reconnect.enabled
                || self
                    .config
                    .reconnect
                    .max_attempts
                    .is_some_and(|m| failures >= m)
            {
                return None;
            }
            if failures > 0 {
                let events = self.outbox.sender();
                let pause = tokio::time::sleep(self.config.reconnect.delay(failures - 1));
                tokio::pin!(pause);
                loop {
                    tokio::select! {
                        _ = &mut pause => break,
                        change = self.control.recv(), if self.control_open => match change {
                            Some(change) => self.apply(change, None),
                            None => self.control_open = false,
                        },
                        _ = events.closed() => return None,
                    }
                }
            }
            match connect(&self.config).await {
                Ok((socket, _)) => {
                    tracing::info!(addr = %self.config.addr, "subscriber reconnected");
                    return Some(socket);
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(addr = %self.config.addr, error = %e, previous = %last, "subscriber reconnect failed");
                    last = e;
                }
            }
        }
    }

    fn on_frame(&mut self, value: Value) {
        let items = match value {
            Value::Push(items) | Value::Array(items) => items,
            Value::Error(e) => {
                // A refused (un)subscription: the server sends no confirmation for it.
                if let Some(p) = self.acks.pop_front()
                    && let Some(ack) = p.ack
                {
                    let _ = ack.send(Err(e.into()));
                }
                return;
            }
            // +PONG (RESP3, or RESP2 with no subscription) and anything else.
            _ => return,
        };
        if let Some(message) = Message::from_frame(&items) {
            self.outbox.deliver(Event::Message(message));
        } else if is_confirmation(&items)
            && let Some(front) = self.acks.front_mut()
        {
            front.confirmations -= 1;
            if front.confirmations == 0
                && let Some(done) = self.acks.pop_front()
                && let Some(ack) = done.ack
            {
                let _ = ack.send(Ok(()));
            }
        }
    }

    /// Records a change and, when connected, sends it.
    fn apply(&mut self, change: Change, socket: Option<&mut Socket>) {
        let set = &mut self.subscriptions[change.family.index()];
        let names = update(set, change.subscribe, change.names);
        if names.is_empty() {
            let _ = change.ack.send(Ok(()));
            return;
        }
        match socket {
            Some(socket) => {
                write(socket, change.family.command(change.subscribe), &names);
                self.acks.push_back(PendingAck {
                    confirmations: names.len(),
                    ack: Some(change.ack),
                });
            }
            None => {
                let _ = change.ack.send(Err(Error::closed(
                    "not connected; the change is recorded and made on reconnect",
                )));
            }
        }
    }
}

fn write(socket: &mut Socket, command: &'static str, names: &[Bytes]) {
    let mut cmd = Cmd::new(command);
    cmd.push_arg(names);
    let out: &mut BytesMut = socket.write_buffer_mut();
    cmd.args.encode_into(out);
}
