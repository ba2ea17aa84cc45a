//! One server as the client sees it: shared multiplexed connections for ordinary commands
//! and a pool of exclusive ones, all reaching the server through one endpoint.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::conn::{Connection, ConnectionEvent, Mode, Options};
use crate::error::{Error, Result};
use crate::pool::{Exclusive, Manager, Pool, pool_error};

pub(crate) struct Node {
    /// What every connection to this server starts from; the mode differs.
    template: Options,
    shared: Box<[Connection]>,
    /// How a command picks its shared connection when there are several.
    pick: Pick,
    next: AtomicUsize,
    pool: Pool,
    events: broadcast::Sender<ConnectionEvent>,
}

enum Pick {
    /// One per worker thread (the default): each thread's callers use their own.
    Thread,
    /// A number the user set: round-robin.
    RoundRobin,
}

/// Nodes a thread remembers its number for (a cluster client has one node per server).
const SLOTS_REMEMBERED: usize = 8;

thread_local! {
    /// The number this thread was given by each node it sent a command through lately:
    /// (the node's address, the number), newest last.
    static SLOTS: RefCell<Vec<(usize, usize)>> = const { RefCell::new(Vec::new()) };
}

/// The number of shared connections opened when the user did not say: one per worker
/// thread of the runtime `connect` runs on.
fn per_worker() -> usize {
    tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_workers())
        .unwrap_or(1)
        .clamp(1, crate::config::MAX_AUTO_SHARED)
}

impl Node {
    /// Opens the shared connections (handshake included); exclusive ones open on demand.
    /// `template` says where and how (config, endpoint, TLS, READONLY); lifecycle events of
    /// the shared connections go to `events`.
    pub(crate) async fn connect(
        template: Options,
        events: broadcast::Sender<ConnectionEvent>,
    ) -> Result<Node> {
        let config = template.config.clone();
        let mut opts = template.with_mode(Mode::Shared);
        opts.events = Some(events.clone());
        let (count, pick) = match config.shared_connections {
            Some(n) => (n, Pick::RoundRobin),
            None => (per_worker(), Pick::Thread),
        };
        let mut shared = Vec::with_capacity(count);
        for _ in 0..count {
            shared.push(Connection::open(opts.clone()).await?);
        }
        let manager = Manager::new(template.with_mode(Mode::Exclusive));
        let pool = Pool::builder(manager)
            .max_size(config.pool_max_size)
            .wait_timeout(Some(config.pool_wait_timeout))
            .create_timeout(Some(config.connect_timeout + Duration::from_millis(100)))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::config(format!("connection pool: {e}")))?;
        Ok(Node {
            template,
            shared: shared.into_boxed_slice(),
            pick,
            next: AtomicUsize::new(0),
            pool,
            events,
        })
    }

    /// A shared connection: the calling thread's own, or round-robin when the user set
    /// how many; one that is up when that one is reconnecting.
    pub(crate) fn shared(&self) -> &Connection {
        let shared = &self.shared;
        if shared.len() == 1 {
            return &shared[0];
        }
        let i = match self.pick {
            Pick::Thread => self.thread_slot(),
            Pick::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed),
        };
        let picked = &shared[i % shared.len()];
        if picked.is_up() {
            return picked;
        }
        // Down (reconnecting): another that is up serves instead of failing the command.
        shared.iter().find(|c| c.is_up()).unwrap_or(picked)
    }

    /// This thread's number at this node, given in the order threads first send through
    /// it: the worker threads of a runtime get consecutive numbers, so with one connection
    /// per worker each uses its own, and a thread keeps its connection, which keeps the
    /// commands a task issues at once in order.
    fn thread_slot(&self) -> usize {
        let key = self as *const Node as usize;
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if let Some(&(_, slot)) = slots.iter().find(|(node, _)| *node == key) {
                return slot;
            }
            let slot = self.next.fetch_add(1, Ordering::Relaxed);
            if slots.len() == SLOTS_REMEMBERED {
                slots.remove(0);
            }
            slots.push((key, slot));
            slot
        })
    }

    /// Every shared connection.
    pub(crate) fn all_shared(&self) -> &[Connection] {
        &self.shared
    }

    /// An exclusive connection from the pool, for this caller alone.
    pub(crate) async fn exclusive(&self) -> Result<Exclusive> {
        let obj = match self.pool.get().await {
            Ok(obj) => obj,
            Err(e) => {
                let e = pool_error(e);
                if e.is_pool() {
                    self.exhausted(&e);
                }
                return Err(e);
            }
        };
        Ok(Exclusive::new(obj, self.template.config.response_timeout))
    }

    /// No exclusive connection came free in time: counted, and told as a warning and an
    /// event, since callers are waiting on a pool too small for them.
    #[cold]
    fn exhausted(&self, e: &Error) {
        let status = self.pool.status();
        tracing::warn!(
            max_size = status.max_size,
            in_use = status.size.saturating_sub(status.available),
            waiting = status.waiting,
            error = %e,
            "connection pool exhausted"
        );
        if let Some(stats) = &self.template.stats {
            stats.pool_timed_out();
        }
        let _ = self.events.send(ConnectionEvent::PoolExhausted {
            max_size: status.max_size,
            waiting: status.waiting,
        });
    }

    /// Its exclusive-connection pool, for `Client::stats`.
    pub(crate) fn pool_stats(&self, addr: String) -> crate::stats::PoolStats {
        crate::stats::PoolStats::of(addr, self.pool.status())
    }

    /// Options for a connection of its own (subscriber, monitor) to this server.
    pub(crate) fn options(&self, mode: Mode) -> Options {
        self.template.with_mode(mode)
    }
}
