//! [`SharedSubscriber`]: RESP3 pub/sub on the client's shared multiplexed connection.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::Stream;

use super::message::{Event, Message, MessageKind};
use super::subscriber::names;
use crate::config::Protocol;
use crate::conn::{BroadcastStream, Connection, Family, Push, ReplyRx, SubChange, wait_reply};
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::ToArgs;

/// How many shared subscribers of one client hold each subscription of the shared
/// connection: the server is asked to unsubscribe only when the last one leaves.
#[derive(Default)]
pub(crate) struct SharedRegistry {
    counts: tokio::sync::Mutex<HashMap<(usize, Bytes), usize>>,
}

type Mine = Arc<Mutex<[BTreeSet<Bytes>; 3]>>;

/// Pub/sub on the client's shared connection (RESP3 only): messages arrive as push frames
/// between ordinary replies, so no connection is spent on subscribing. A `Stream` of
/// [`Event`]s like [`Subscriber`](super::Subscriber), with a bounded buffer, lag events and
/// resubscription after a reconnect.
///
/// Each shared subscriber receives only messages for what it subscribed to. Several may
/// subscribe to the same channel: the subscription lasts until the last of them
/// unsubscribes or is dropped. Dropping one unsubscribes what only it held.
pub struct SharedSubscriber {
    conn: Connection,
    registry: Arc<SharedRegistry>,
    mine: Mine,
    frames: BroadcastStream<Push>,
}

impl SharedSubscriber {
    pub(crate) fn open(
        conn: Connection,
        registry: Arc<SharedRegistry>,
    ) -> Result<SharedSubscriber> {
        if conn.protocol() != Protocol::Resp3 {
            return Err(Error::config(
                "pub/sub on the shared connection needs RESP3; use Client::subscriber() on RESP2",
            ));
        }
        Ok(SharedSubscriber {
            frames: BroadcastStream::new(conn.push_frames()),
            conn,
            registry,
            mine: Mine::default(),
        })
    }

    async fn subscribe_to(&self, family: Family, list: impl ToArgs) -> Result<()> {
        let names = names(list);
        if names.is_empty() {
            return Ok(());
        }
        let reply = {
            let mut counts = self.registry.counts.lock().await;
            {
                let mut mine = lock(&self.mine);
                for name in &names {
                    if mine[family.index()].insert(name.clone()) {
                        *counts.entry((family.index(), name.clone())).or_default() += 1;
                    }
                }
            }
            // Sent even for names already subscribed: the confirmation tells this caller
            // the subscription is in place. Queued under the registry's lock, so it cannot
            // pass another subscriber's unsubscribe of the same name.
            self.conn
                .queue_change(SubChange {
                    family,
                    subscribe: true,
                    names,
                })
                .await?
        };
        confirmed(reply).await
    }

    async fn unsubscribe_from(&self, family: Family, list: impl ToArgs) -> Result<()> {
        let names = names(list);
        let reply = {
            let mut counts = self.registry.counts.lock().await;
            let leaving = {
                let mut mine = lock(&self.mine);
                let set = &mut mine[family.index()];
                let leaving: Vec<Bytes> = if names.is_empty() {
                    std::mem::take(set).into_iter().collect()
                } else {
                    names.into_iter().filter(|n| set.remove(n)).collect()
                };
                leaving
            };
            let last = release(&mut counts, family, leaving);
            queue_unsubscribe(&self.conn, family, last).await?
        };
        match reply {
            Some(reply) => confirmed(reply).await,
            None => Ok(()),
        }
    }

    /// Subscribes to channels; returns once the server confirmed.
    pub async fn subscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.subscribe_to(Family::Channel, channels).await
    }

    /// Subscribes to patterns.
    pub async fn psubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.subscribe_to(Family::Pattern, patterns).await
    }

    /// Subscribes to shard channels.
    pub async fn ssubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.subscribe_to(Family::Shard, channels).await
    }

    /// Unsubscribes from channels; `()` for all of this subscriber's. Other shared
    /// subscribers of the same channels keep receiving.
    pub async fn unsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.unsubscribe_from(Family::Channel, channels).await
    }

    /// Unsubscribes from patterns; `()` for all of this subscriber's.
    pub async fn punsubscribe(&self, patterns: impl ToArgs) -> Result<()> {
        self.unsubscribe_from(Family::Pattern, patterns).await
    }

    /// Unsubscribes from shard channels; `()` for all of this subscriber's.
    pub async fn sunsubscribe(&self, channels: impl ToArgs) -> Result<()> {
        self.unsubscribe_from(Family::Shard, channels).await
    }
}

fn lock(mine: &Mine) -> std::sync::MutexGuard<'_, [BTreeSet<Bytes>; 3]> {
    mine.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Gives up this subscriber's hold on `leaving`; returns the names nobody holds any more.
fn release(
    counts: &mut HashMap<(usize, Bytes), usize>,
    family: Family,
    leaving: Vec<Bytes>,
) -> Vec<Bytes> {
    leaving
        .into_iter()
        .filter(|name| {
            let key = (family.index(), name.clone());
            match counts.get_mut(&key) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    counts.remove(&key);
                    true
                }
            }
        })
        .collect()
}

/// Queues an unsubscribe of exactly `names` (never of "everything": other subscribers'
/// subscriptions live on the same connection).
async fn queue_unsubscribe(
    conn: &Connection,
    family: Family,
    names: Vec<Bytes>,
) -> Result<Option<ReplyRx>> {
    if names.is_empty() {
        return Ok(None);
    }
    let change = SubChange {
        family,
        subscribe: false,
        names,
    };
    Ok(Some(conn.queue_change(change).await?))
}

async fn confirmed(reply: ReplyRx) -> Result<()> {
    match wait_reply(reply).await? {
        Value::Error(e) => Err(e.into()),
        _ => Ok(()),
    }
}

impl Stream for SharedSubscriber {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            let event = match ready!(Pin::new(&mut self.frames).poll_next(cx)) {
                None => return Poll::Ready(None),
                // The connection's push buffer overflowed for this reader.
                Some(Err(missed)) => Event::Lagged(missed),
                Some(Ok(Push::Reconnected { .. })) => Event::Reconnected,
                Some(Ok(Push::Frame(Value::Push(items)))) => match Message::from_frame(&items) {
                    Some(m) if wanted(&self.mine, &m) => Event::Message(m),
                    _ => continue,
                },
                Some(Ok(_)) => continue,
            };
            return Poll::Ready(Some(event));
        }
    }
}

impl Drop for SharedSubscriber {
    fn drop(&mut self) {
        let mine = std::mem::take(&mut *lock(&self.mine));
        if mine.iter().all(BTreeSet::is_empty) {
            return;
        }
        let (conn, registry) = (self.conn.clone(), self.registry.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut counts = registry.counts.lock().await;
                for family in Family::ALL {
                    let leaving = mine[family.index()].iter().cloned().collect();
                    let last = release(&mut counts, family, leaving);
                    if let Err(e) = queue_unsubscribe(&conn, family, last).await {
                        tracing::debug!(error = %e, "unsubscribing a dropped shared subscriber failed");
                    }
                }
            });
        }
    }
}

fn wanted(mine: &Mine, m: &Message) -> bool {
    let mine = lock(mine);
    match m.kind {
        MessageKind::Channel => mine[Family::Channel.index()].contains(&m.channel),
        MessageKind::Pattern => m
            .pattern
            .as_ref()
            .is_some_and(|p| mine[Family::Pattern.index()].contains(p)),
        MessageKind::Shard => mine[Family::Shard.index()].contains(&m.channel),
    }
}
