//! Settings of the client-side cache ([`ClientCacheOptions`], [`TrackingMode`]) and what it
//! reports ([`ClientCacheStats`]).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::error::{Error, Result};

/// How the server tells the client which cached keys changed (`CLIENT TRACKING`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackingMode {
    /// The server remembers which keys each connection read and invalidates those when they
    /// change. Costs server memory per key read (bounded by `tracking-table-max-keys`).
    Default,
    /// Like `Default`, but the server remembers only the reads the client asks it to:
    /// each cached read goes out right behind `CLIENT CACHING yes`, in the same write. Use
    /// with a [`filter`](ClientCacheOptions::filter) to cache a few hot keys and keep the
    /// server's tracking table small. One server only (not a cluster).
    OptIn,
    /// The server remembers nothing per client and announces every change of a key under
    /// one of the prefixes (all keys when there are none); only keys under the prefixes are
    /// cached.
    Broadcast {
        /// Key prefixes to follow.
        prefixes: Vec<Bytes>,
    },
}

/// A predicate on keys: which ones the client-side cache may keep.
pub type KeyFilter = Arc<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// Settings of the client-side cache, turned on with
/// [`ClientBuilder::client_cache`](crate::ClientBuilder::client_cache).
///
/// ```
/// use std::time::Duration;
/// use kermes::cache::ClientCacheOptions;
///
/// let options = ClientCacheOptions::new()
///     .max_bytes(16 << 20)
///     .max_entries(50_000)
///     .ttl(Duration::from_secs(300))
///     .filter(|key| key.starts_with(b"user:"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct ClientCacheOptions {
    /// How invalidations are asked for. Default [`TrackingMode::Default`].
    pub mode: TrackingMode,
    /// The most bytes the cached replies, their commands and keys may take (an estimate of
    /// what they hold on the heap). Default 64 MiB.
    pub max_bytes: u64,
    /// The most keys cached at once. Default 100,000.
    pub max_entries: usize,
    /// The longest a reply is served from the cache, invalidated or not: a bound on
    /// staleness if an invalidation were ever lost. Default none (invalidations, and the
    /// flushes after a reconnect, keep the cache fresh).
    pub ttl: Option<Duration>,
    /// Which keys may be cached. Default: every key (in broadcast mode, every key under
    /// the prefixes).
    pub filter: Option<KeyFilter>,
}

impl ClientCacheOptions {
    /// Default tracking, 64 MiB, 100,000 keys, no TTL cap, every key.
    pub fn new() -> Self {
        ClientCacheOptions {
            mode: TrackingMode::Default,
            max_bytes: 64 << 20,
            max_entries: 100_000,
            ttl: None,
            filter: None,
        }
    }

    /// Sets [`mode`](Self::mode).
    pub fn mode(mut self, mode: TrackingMode) -> Self {
        self.mode = mode;
        self
    }

    /// Broadcast mode for keys under these prefixes (see [`TrackingMode::Broadcast`]).
    pub fn broadcast<P: AsRef<[u8]>>(self, prefixes: impl IntoIterator<Item = P>) -> Self {
        self.mode(TrackingMode::Broadcast {
            prefixes: prefixes
                .into_iter()
                .map(|p| Bytes::copy_from_slice(p.as_ref()))
                .collect(),
        })
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets [`max_entries`](Self::max_entries).
    pub fn max_entries(mut self, entries: usize) -> Self {
        self.max_entries = entries;
        self
    }

    /// Sets [`ttl`](Self::ttl).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Sets [`filter`](Self::filter).
    pub fn filter(mut self, filter: impl Fn(&[u8]) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(Arc::new(filter));
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_bytes < 1024 {
            return Err(Error::config(
                "client cache max_bytes must be at least 1,024",
            ));
        }
        if self.max_entries == 0 {
            return Err(Error::config("client cache max_entries must be at least 1"));
        }
        if self.ttl.is_some_and(|t| t.is_zero()) {
            return Err(Error::config("client cache ttl must be more than zero"));
        }
        if let TrackingMode::Broadcast { prefixes } = &self.mode
            && prefixes.iter().any(|p| p.is_empty())
        {
            return Err(Error::config(
                "client cache broadcast prefixes must not be empty (no prefixes at all \
                 follows every key)",
            ));
        }
        Ok(())
    }

    /// True when `key` may be cached.
    pub(crate) fn accepts(&self, key: &[u8]) -> bool {
        if let TrackingMode::Broadcast { prefixes } = &self.mode
            && !prefixes.is_empty()
            && !prefixes.iter().any(|p| key.starts_with(p))
        {
            return false;
        }
        self.filter.as_ref().is_none_or(|f| f(key))
    }

    /// `CLIENT TRACKING ON ...` for this mode: sent in every shared connection's handshake.
    pub(crate) fn tracking_command(&self) -> crate::Cmd {
        let cmd = crate::cmd("CLIENT").arg("TRACKING").arg("ON");
        match &self.mode {
            TrackingMode::Default => cmd,
            TrackingMode::OptIn => cmd.arg("OPTIN"),
            TrackingMode::Broadcast { prefixes } => {
                let mut cmd = cmd.arg("BCAST");
                for p in prefixes {
                    cmd = cmd.arg("PREFIX").arg(p);
                }
                cmd
            }
        }
    }
}

impl Default for ClientCacheOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClientCacheOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCacheOptions")
            .field("mode", &self.mode)
            .field("max_bytes", &self.max_bytes)
            .field("max_entries", &self.max_entries)
            .field("ttl", &self.ttl)
            .field("filter", &self.filter.as_ref().map(|_| "fn"))
            .finish()
    }
}

/// What the client-side cache has done since the client connected, from
/// [`Client::client_cache_stats`](crate::Client::client_cache_stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ClientCacheStats {
    /// Reads answered from the cache, with no network.
    pub hits: u64,
    /// Cacheable reads that went to the server.
    pub misses: u64,
    /// Cacheable reads that waited for the same read already on its way to the server
    /// (nothing of its key invalidated since it was sent) instead of sending their own.
    pub coalesced: u64,
    /// Replies stored.
    pub inserts: u64,
    /// Replies not stored because their key was invalidated (or the cache flushed) while
    /// the read was in flight: the race the cache must not lose.
    pub refused: u64,
    /// Keys invalidated, by the server or by this client's own writes.
    pub invalidations: u64,
    /// Whole-cache flushes: a connection lost or re-established, `FLUSHALL`/`FLUSHDB`.
    pub flushes: u64,
    /// Keys evicted to stay within the bounds.
    pub evictions: u64,
    /// Entries that outlived the TTL cap and were dropped when read.
    pub expired: u64,
    /// Keys cached now.
    pub entries: u64,
    /// Estimated bytes cached now (what the bound counts).
    pub bytes: u64,
}
