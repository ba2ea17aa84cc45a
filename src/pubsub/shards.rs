//! Shard channels on a cluster. SSUBSCRIBE must reach the primary of the channel's slot, so
//! a cluster subscriber keeps a connection per primary for them, opened when first needed
//! and closed when it holds no channel any more.
//!
//! Channels follow their slot by themselves:
//! - a slot that moves (resharding, or a graceful failover that demotes the primary): the
//!   server drops the subscriptions with an `sunsubscribe` frame nobody asked for; they are
//!   made again on the slot's new primary;
//! - a primary that dies: its connection reconnects to whoever serves the slot it was opened
//!   for and restores its subscriptions there; a channel the new node refuses (its slot is
//!   elsewhere) comes back as a dropped one, and is moved the same way.
//!
//! Either way the subscriber reads [`Event::Reconnected`](super::Event::Reconnected) once
//! the channels are subscribed again: messages published in between were missed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::cluster::{Router, key_slot, redirected_to};
use crate::config::Addr;
use crate::conn::{BroadcastStream, Connection, Family, Options, Push, SubChange};
use crate::error::{Error, Result};

/// Times one subscription change follows `MOVED` before giving up.
const MAX_REDIRECTS: usize = 5;

/// What the shard connections tell the subscriber's stream.
pub(crate) enum Notice {
    /// A new shard connection's frames.
    Opened(BroadcastStream<Push>),
    /// Dropped channels are subscribed again on their slot's primary.
    Moved,
}

pub(crate) struct Shards {
    router: Arc<Router>,
    /// The subscriber's connection settings; each shard connection gets its own endpoint.
    template: Options,
    /// Held across the round trips of a change, so changes never interleave.
    state: tokio::sync::Mutex<State>,
    notices: mpsc::UnboundedSender<Notice>,
    /// Channels the server dropped, waiting to be subscribed again (by one task at a time).
    dropped: Mutex<Dropped>,
    me: Weak<Shards>,
}

#[derive(Default)]
struct State {
    /// The shard channels the user subscribed to.
    wanted: BTreeSet<Bytes>,
    conns: Vec<ShardConn>,
    next_id: u64,
}

struct ShardConn {
    id: u64,
    /// The primary it was opened to (a failover may have moved it since).
    addr: Addr,
    conn: Connection,
    /// The channels subscribed (or recorded to be) on it.
    channels: BTreeSet<Bytes>,
}

#[derive(Default)]
struct Dropped {
    channels: Vec<(u64, Bytes)>,
    following: bool,
}

impl State {
    fn placed(&self, name: &Bytes) -> bool {
        self.conns.iter().any(|c| c.channels.contains(name))
    }
}

impl Shards {
    pub(crate) fn new(
        router: Arc<Router>,
        template: Options,
    ) -> (Arc<Shards>, mpsc::UnboundedReceiver<Notice>) {
        let (notices, rx) = mpsc::unbounded_channel();
        let shards = Arc::new_cyclic(|me| Shards {
            router,
            template,
            state: Default::default(),
            notices,
            dropped: Default::default(),
            me: me.clone(),
        });
        (shards, rx)
    }

    /// (Un)subscribes shard channels, each on the primary of its slot. Unsubscribing from
    /// no names means from every shard channel. A change that could not be sent because a
    /// connection is down is recorded (and made on reconnect); the error says so.
    pub(crate) async fn change(&self, subscribe: bool, names: Vec<Bytes>) -> Result<()> {
        let mut state = self.state.lock().await;
        if subscribe {
            state.wanted.extend(names.iter().cloned());
            let unplaced: BTreeSet<Bytes> =
                names.into_iter().filter(|n| !state.placed(n)).collect();
            return self.place(&mut state, unplaced).await;
        }
        let names: BTreeSet<Bytes> = match names.is_empty() {
            true => std::mem::take(&mut state.wanted),
            false => names.into_iter().collect(),
        };
        let mut first_error = None;
        for shard in &mut state.conns {
            let mine: Vec<Bytes> = names
                .iter()
                .filter(|n| shard.channels.remove(*n))
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            let change = SubChange {
                family: Family::Shard,
                subscribe: false,
                names: mine,
            };
            if let Err(e) = shard.conn.change_subscription(change).await {
                first_error.get_or_insert(e);
            }
        }
        for name in &names {
            state.wanted.remove(name);
        }
        state.conns.retain(|c| !c.channels.is_empty());
        first_error.map_or(Ok(()), Err)
    }

    /// Subscribes `names` on the primaries of their slots, following `MOVED`.
    async fn place(&self, state: &mut State, names: BTreeSet<Bytes>) -> Result<()> {
        let mut by_slot: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
        for name in names {
            by_slot.entry(key_slot(&name)).or_default().push(name);
        }
        let mut first_error = None;
        for (slot, names) in by_slot {
            if let Err(e) = self.place_slot(state, slot, names).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn place_slot(&self, state: &mut State, slot: u16, names: Vec<Bytes>) -> Result<()> {
        let mut addr = self.router.addr_for(slot, false)?.0;
        for _ in 0..=MAX_REDIRECTS {
            let i = self.conn_for(state, &addr, slot).await?;
            let change = SubChange {
                family: Family::Shard,
                subscribe: true,
                names: names.clone(),
            };
            let result = state.conns[i].conn.change_subscription(change).await;
            if let Err(e) = &result
                && let Some(refusal) = e.server_error()
                && refusal.code() == "MOVED"
                && let Some((slot, to)) = redirected_to(refusal, &addr)
            {
                // Refused, so not recorded on that connection: try where the server says.
                self.router.moved(slot, to.clone());
                addr = to;
                continue;
            }
            // Sent, or recorded to be made when the connection is back.
            if result.is_ok() || result.as_ref().is_err_and(Error::is_unsent) {
                state.conns[i].channels.extend(names);
            }
            return result;
        }
        Err(Error::unsent(format!(
            "SSUBSCRIBE: hash slot {slot} was redirected more than {MAX_REDIRECTS} times"
        )))
    }

    /// The index of a connection to the primary at `addr`, opened (following the primary of
    /// `slot` from then on) when there is none.
    async fn conn_for(&self, state: &mut State, addr: &Addr, slot: u16) -> Result<usize> {
        if let Some(i) = state
            .conns
            .iter()
            .position(|c| c.addr == *addr && !c.conn.is_closed())
        {
            return Ok(i);
        }
        let id = state.next_id;
        state.next_id += 1;
        let mut opts = self.template.clone();
        opts.endpoint = self.router.slot_endpoint(slot);
        let me = self.me.clone();
        opts.on_dropped = Some(Arc::new(move |family, name| {
            if family == Family::Shard
                && let Some(shards) = me.upgrade()
            {
                shards.dropped(id, name);
            }
        }));
        let (conn, frames) = Connection::open_with_push(opts).await?;
        let _ = self
            .notices
            .send(Notice::Opened(BroadcastStream::new(frames)));
        state.conns.push(ShardConn {
            id,
            addr: addr.clone(),
            conn,
            channels: BTreeSet::new(),
        });
        Ok(state.conns.len() - 1)
    }

    /// The server behind connection `id` dropped `name` (its slot moved): subscribe it again
    /// where its slot is now, in the background. Called by the connection's driver, so it
    /// happens whether or not anyone reads the stream.
    pub(crate) fn dropped(&self, id: u64, name: Bytes) {
        let mut dropped = self.dropped.lock().unwrap_or_else(PoisonError::into_inner);
        dropped.channels.push((id, name));
        if dropped.following {
            return;
        }
        dropped.following = true;
        tokio::spawn(follow(self.me.clone()));
    }

    /// Subscribes dropped channels again on the primaries of their slots (after reading the
    /// slot map again); ones the user gave up meanwhile are left alone.
    async fn resubscribe(&self, batch: Vec<(u64, Bytes)>) -> Result<()> {
        let mut state = self.state.lock().await;
        if let Err(e) = self.router.refresh_now(false).await {
            tracing::warn!(error = %e, "reading the cluster's slot map failed");
        }
        for (id, name) in &batch {
            if let Some(shard) = state.conns.iter_mut().find(|c| c.id == *id) {
                shard.channels.remove(name);
            }
        }
        let names: BTreeSet<Bytes> = batch
            .into_iter()
            .map(|(_, name)| name)
            .filter(|n| state.wanted.contains(n) && !state.placed(n))
            .collect();
        state.conns.retain(|c| !c.channels.is_empty());
        self.place(&mut state, names).await
    }
}

/// Follows dropped channels until none is left or the subscriber is gone; a failure is tried
/// again with backoff, for as long as the channels are wanted.
async fn follow(me: Weak<Shards>) {
    let mut failures = 0;
    loop {
        // A slot's channels are dropped one frame each: take them in one go.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let Some(shards) = me.upgrade() else { return };
        let batch = {
            let mut dropped = shards
                .dropped
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if dropped.channels.is_empty() {
                dropped.following = false;
                return;
            }
            std::mem::take(&mut dropped.channels)
        };
        match shards.resubscribe(batch.clone()).await {
            Ok(()) => {
                failures = 0;
                let _ = shards.notices.send(Notice::Moved);
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, attempt = failures, "subscribing moved shard channels again failed");
                shards
                    .dropped
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .channels
                    .extend(batch);
                drop(shards);
                tokio::time::sleep(crate::config::exponential_delay(
                    Duration::from_millis(50),
                    Duration::from_secs(2),
                    failures - 1,
                    true,
                ))
                .await;
            }
        }
    }
}
