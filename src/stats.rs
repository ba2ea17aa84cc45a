//! [`Client::stats`](crate::Client::stats): counters kept by every connection and pool, read
//! as one snapshot.
//!
//! Each connection's counters are written by its own task alone (a plain load and store
//! per event, no lock, no contended cache line); a snapshot reads them all. A connection
//! that closes adds its counts to the client's retired totals, so the client's totals never
//! go down and can be exported as counters.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tokio::sync::mpsc;

use crate::config::Addr;
use crate::conn::Mode;
use crate::error::Error;

/// Adds to a counter that only one task writes: a load and a store, no locked instruction.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(n),
        Ordering::Relaxed,
    );
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// The counters a connection's task keeps.
#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    completed: AtomicU64,
    server_errors: AtomicU64,
    bytes_written: AtomicU64,
    bytes_read: AtomicU64,
    reconnects: AtomicU64,
}

/// One connection's counters. Written only by its task (see [`bump`]).
pub(crate) struct ConnStats {
    id: u64,
    mode: Mode,
    addr: Mutex<Addr>,
    up: Arc<AtomicBool>,
    counters: Counters,
    /// The request queue, to read how many wait to be written.
    queue: mpsc::WeakSender<crate::conn::Request>,
    registry: Option<Arc<Registry>>,
}

impl ConnStats {
    pub(crate) fn new(
        id: u64,
        mode: Mode,
        addr: Addr,
        up: Arc<AtomicBool>,
        queue: mpsc::WeakSender<crate::conn::Request>,
        registry: Option<Arc<Registry>>,
    ) -> Arc<ConnStats> {
        let stats = Arc::new(ConnStats {
            id,
            mode,
            addr: Mutex::new(addr),
            up,
            counters: Counters::default(),
            queue,
            registry,
        });
        if let Some(registry) = &stats.registry {
            registry.register(&stats);
        }
        stats
    }

    /// Commands written (a request of `n` commands counts `n`), with their bytes.
    pub(crate) fn wrote(&self, commands: u64, bytes: u64) {
        bump(&self.counters.sent, commands);
        bump(&self.counters.bytes_written, bytes);
    }

    /// `bytes` more bytes of frames read (pushes included).
    pub(crate) fn read(&self, bytes: u64) {
        bump(&self.counters.bytes_read, bytes);
    }

    /// Replies to `commands` commands read; `error` when the reply was an error.
    pub(crate) fn completed(&self, commands: u64, error: bool) {
        bump(&self.counters.completed, commands);
        if error {
            bump(&self.counters.server_errors, 1);
        }
    }

    /// The connection died: what was in flight will never complete.
    pub(crate) fn abandoned(&self, commands: u64) {
        bump(&self.counters.completed, commands);
    }

    /// The connection was re-established, maybe elsewhere.
    pub(crate) fn reconnected(&self, addr: &Addr) {
        bump(&self.counters.reconnects, 1);
        *self.addr.lock().unwrap_or_else(PoisonError::into_inner) = addr.clone();
    }

    fn snapshot(&self) -> ConnectionStats {
        let c = &self.counters;
        let (sent, completed) = (get(&c.sent), get(&c.completed));
        ConnectionStats {
            id: self.id,
            kind: match self.mode {
                Mode::Shared => "shared",
                Mode::Exclusive => "exclusive",
                Mode::Subscriber => "subscriber",
                Mode::Monitor => "monitor",
            },
            addr: self
                .addr
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .to_string(),
            up: self.up.load(Ordering::Relaxed),
            commands_sent: sent,
            commands_completed: completed,
            in_flight: sent.saturating_sub(completed),
            queued: self
                .queue
                .upgrade()
                .map_or(0, |tx| (tx.max_capacity() - tx.capacity()) as u64),
            server_errors: get(&c.server_errors),
            reconnects: get(&c.reconnects),
            bytes_written: get(&c.bytes_written),
            bytes_read: get(&c.bytes_read),
        }
    }
}

impl Drop for ConnStats {
    fn drop(&mut self) {
        if let Some(registry) = &self.registry {
            let (r, c) = (&registry.retired, &self.counters);
            for (to, from) in [
                (&r.sent, &c.sent),
                (&r.completed, &c.completed),
                (&r.server_errors, &c.server_errors),
                (&r.bytes_written, &c.bytes_written),
                (&r.bytes_read, &c.bytes_read),
                (&r.reconnects, &c.reconnects),
            ] {
                to.fetch_add(get(from), Ordering::Relaxed);
            }
        }
    }
}

/// The kinds [`Stats::errors`] counts, in [`Error::kind_index`] order.
pub(crate) const ERROR_KINDS: [&str; 11] = [
    "server", "io", "closed", "connect", "timeout", "protocol", "type", "config", "usage", "pool",
    "aborted",
];

/// A client's connections (shared, exclusive, subscriber, monitor; every node of a cluster)
/// and what the closed ones counted.
#[derive(Default)]
pub(crate) struct Registry {
    live: Mutex<Vec<Weak<ConnStats>>>,
    retired: Counters,
    errors: [AtomicU64; ERROR_KINDS.len()],
    pool_timeouts: AtomicU64,
}

impl Registry {
    fn register(&self, stats: &Arc<ConnStats>) {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(stats));
    }

    /// A command failed with `e` (counted where the caller sees it: a query, a pipeline).
    pub(crate) fn failed(&self, e: &Error) {
        self.errors[e.kind_index()].fetch_add(1, Ordering::Relaxed);
    }

    /// No exclusive connection came free in time.
    pub(crate) fn pool_timed_out(&self) {
        self.pool_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, pools: Vec<PoolStats>) -> Stats {
        let mut connections: Vec<ConnectionStats> = {
            let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
            live.iter()
                .filter_map(Weak::upgrade)
                .map(|s| s.snapshot())
                .collect()
        };
        connections.sort_by_key(|c| c.id);
        let r = &self.retired;
        let sum = |f: fn(&ConnectionStats) -> u64| connections.iter().map(f).sum::<u64>();
        let errors = ERROR_KINDS
            .iter()
            .zip(&self.errors)
            .map(|(k, n)| (*k, get(n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Stats {
            commands_sent: get(&r.sent) + sum(|c| c.commands_sent),
            commands_completed: get(&r.completed) + sum(|c| c.commands_completed),
            in_flight: sum(|c| c.in_flight),
            queued: sum(|c| c.queued),
            server_errors: get(&r.server_errors) + sum(|c| c.server_errors),
            errors,
            reconnects: get(&r.reconnects) + sum(|c| c.reconnects),
            bytes_written: get(&r.bytes_written) + sum(|c| c.bytes_written),
            bytes_read: get(&r.bytes_read) + sum(|c| c.bytes_read),
            pool_timeouts: get(&self.pool_timeouts),
            pools,
            connections,
        }
    }
}

/// A snapshot of a client's counters: [`Client::stats`](crate::Client::stats).
///
/// Totals (`commands_sent`, `errors`, `bytes_read`...) count since the client was made,
/// closed connections included; `in_flight`, `queued` and the pools are the moment's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Commands written to a socket (each command of a pipeline or transaction counts).
    pub commands_sent: u64,
    /// Commands whose reply was read, or that failed with their connection.
    pub commands_completed: u64,
    /// Commands written and waiting for their reply.
    pub in_flight: u64,
    /// Commands handed to a connection and not written yet.
    pub queued: u64,
    /// Error replies from the server (a pipeline's or a transaction's included).
    pub server_errors: u64,
    /// Commands that failed as their caller saw it, by kind (`"server"`, `"timeout"`,
    /// `"closed"`, `"pool"`...: [`Error`]'s kinds); kinds with none are left out.
    pub errors: BTreeMap<&'static str, u64>,
    /// Connections re-established after they died.
    pub reconnects: u64,
    /// Bytes written to the sockets.
    pub bytes_written: u64,
    /// Bytes of replies and pushes read from the sockets.
    pub bytes_read: u64,
    /// Times no exclusive connection came free within the pool's wait timeout.
    pub pool_timeouts: u64,
    /// The exclusive-connection pool of each server.
    pub pools: Vec<PoolStats>,
    /// Every open connection, oldest first.
    pub connections: Vec<ConnectionStats>,
}

/// One open connection's counters: see [`Stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// The connection's number, as in [`ConnectionEvent`](crate::ConnectionEvent)s.
    pub id: u64,
    /// `"shared"`, `"exclusive"`, `"subscriber"` or `"monitor"`.
    pub kind: &'static str,
    /// Where it is connected (it may move on a failover).
    pub addr: String,
    /// Connected now (false while it reconnects).
    pub up: bool,
    /// Commands written.
    pub commands_sent: u64,
    /// Commands completed.
    pub commands_completed: u64,
    /// Commands written and waiting for their reply.
    pub in_flight: u64,
    /// Commands waiting to be written.
    pub queued: u64,
    /// Error replies read.
    pub server_errors: u64,
    /// Times it was re-established.
    pub reconnects: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes read.
    pub bytes_read: u64,
}

/// One server's pool of exclusive connections.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// The server.
    pub addr: String,
    /// The most connections it opens.
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open and idle.
    pub idle: usize,
    /// Held by a caller.
    pub in_use: usize,
    /// Callers waiting for one.
    pub waiting: usize,
}

impl PoolStats {
    pub(crate) fn of(addr: String, status: deadpool::Status) -> PoolStats {
        PoolStats {
            addr,
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            in_use: status.size.saturating_sub(status.available),
            waiting: status.waiting,
        }
    }
}
