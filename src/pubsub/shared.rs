//! [`SharedSubscriber`]: RESP3 pub/sub on the client's shared multiplexed connection.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};

use super::message::{Event, Message, MessageKind};
use super::outbox::Outbox;
use super::subscriber::{Family, names, update};
use crate::cmd::Cmd;
use crate::config::Protocol;
use crate::conn::{Connection, Payload};
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::ToArgs;

type Subscriptions = Arc<Mutex<[BTreeSet<Bytes>; 3]>>;

/// Pub/sub on the client's shared connection (RESP3 only): messages arrive as push frames
/// between ordinary replies, so no connection is spent on subscribing. A `Stream` of
/// [`Event`]s like [`Subscriber`](super::Subscriber), with the same bounded buffer, lag
/// events and resubscription after a reconnect.
///
/// Subscriptions belong to the connection: two shared subscribers of one client that
/// subscribe to the same channel share that subscription, and either unsubscribing ends it
/// for both. Each receives only messages for what it subscribed to. Dropping one
/// unsubscribes its channels.
pub struct SharedSubscriber {
    conn: Connection,
    subscriptions: Subscriptions,
    events: mpsc::Receiver<Event>,
}

impl SharedSubscriber {
    pub(crate) fn open(conn: Connection, buffer: usize) -> Result<SharedSubscriber> {
        if conn.protocol() != Protocol::Resp3 {
            return Err(Error::config(
                "pub/sub on the shared connection needs RESP3; use Client::subscriber() on RESP2",
            ));
        }
        let subscriptions: Subscriptions = Default::default();
        let (outbox, events) = Outbox::new(buffer);
        tokio::spawn(forward(
            conn.clone(),
            subscriptions.clone(),
            conn.push_frames(),
            conn.reconnects(),
            outbox,
        ));
        Ok(SharedSubscriber {
            conn,
            subscriptions,
            events,
        })
    }

    async fn change(&self, family: Family, subscribe: bool, list: impl ToArgs) -> Result<()> {
        let list = {
            let mut subs = self
                .subscriptions
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            update(&mut subs[family.index()], subscribe, names(list))
        };
        send(&self.conn, family, subscribe, &list).await
    }

    /// Subscribes to channels; returns once the server confirmed.
    pub async fn subscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Channel, true, channels).await
    }

    /// Subscribes to patterns.
    pub async fn psubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.change(Family::Pattern, true, patterns).await
    }

    /// Subscribes to shard channels.
    pub async fn ssubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Shard, true, channels).await
    }

    /// Unsubscribes from channels; `()` for all of this subscriber's.
    pub async fn unsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Channel, false, channels).await
    }

    /// Unsubscribes from patterns; `()` for all of this subscriber's.
    pub async fn punsubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.change(Family::Pattern, false, patterns).await
    }

    /// Unsubscribes from shard channels; `()` for all of this subscriber's.
    pub async fn sunsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.change(Family::Shard, false, channels).await
    }
}

/// Sends one (un)subscribe command and waits for its confirmations.
async fn send(conn: &Connection, family: Family, subscribe: bool, list: &[Bytes]) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let mut cmd = Cmd::new(family.command(subscribe));
    cmd.push_arg(list);
    conn.subscribe_request(Payload::Args(cmd.args), list.len())
        .await?;
    Ok(())
}

impl Stream for SharedSubscriber {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.events.poll_recv(cx)
    }
}

impl Drop for SharedSubscriber {
    fn drop(&mut self) {
        let subs = std::mem::take(
            &mut *self
                .subscriptions
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let conn = self.conn.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for family in Family::ALL {
                    let list: Vec<Bytes> = subs[family.index()].iter().cloned().collect();
                    let _ = send(&conn, family, false, &list).await;
                }
            });
        }
    }
}

fn wanted(subscriptions: &Subscriptions, m: &Message) -> bool {
    let subs = subscriptions.lock().unwrap_or_else(PoisonError::into_inner);
    match m.kind {
        MessageKind::Channel => subs[Family::Channel.index()].contains(&m.channel),
        MessageKind::Pattern => m
            .pattern
            .as_ref()
            .is_some_and(|p| subs[Family::Pattern.index()].contains(p)),
        MessageKind::Shard => subs[Family::Shard.index()].contains(&m.channel),
    }
}

enum Step {
    Push(std::result::Result<Value, RecvError>),
    Reconnected(bool),
    Notice(Option<mpsc::OwnedPermit<Event>>),
}

/// Moves this subscriber's messages from the connection's push frames to its consumer, and
/// resubscribes after the connection comes back.
async fn forward(
    conn: Connection,
    subscriptions: Subscriptions,
    mut push: broadcast::Receiver<Value>,
    mut reconnects: watch::Receiver<u64>,
    mut outbox: Outbox,
) {
    loop {
        let events = outbox.sender();
        let notice = outbox.notice_pending();
        let step = tokio::select! {
            frame = push.recv() => Step::Push(frame),
            changed = reconnects.changed() => Step::Reconnected(changed.is_ok()),
            permit = events.clone().reserve_owned(), if notice => Step::Notice(permit.ok()),
            _ = events.closed() => return,
        };
        match step {
            Step::Push(Ok(Value::Push(items))) => {
                if let Some(m) = Message::from_frame(&items)
                    && wanted(&subscriptions, &m)
                {
                    outbox.deliver(Event::Message(m));
                }
            }
            Step::Push(Ok(_)) => {}
            // The connection's push buffer overflowed: those frames are gone for everyone.
            Step::Push(Err(RecvError::Lagged(n))) => outbox.lost(n),
            Step::Push(Err(RecvError::Closed)) | Step::Reconnected(false) | Step::Notice(None) => {
                return;
            }
            Step::Reconnected(true) => {
                outbox.reconnected();
                let subs = subscriptions
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let conn = conn.clone();
                tokio::spawn(async move {
                    for family in Family::ALL {
                        let list: Vec<Bytes> = subs[family.index()].iter().cloned().collect();
                        if let Err(e) = send(&conn, family, true, &list).await {
                            tracing::warn!(error = %e, "resubscribing on the shared connection failed");
                        }
                    }
                });
            }
            Step::Notice(Some(permit)) => {
                permit.send(outbox.take_notice());
            }
        }
    }
}
