//! [`Cache`]: the cache-aside pattern over a [`Client`]. Read from Redis; on a miss load
//! from the source of truth (once per process however many ask, optionally once across
//! processes) and store with a TTL; invalidate or update when the source changes; warm at
//! start; watch the hit ratio and load latency.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::aside_options::{CacheOptions, LoadError};
use super::flight::{Flights, Join, Leader, Outcome};
use super::stats::{CacheStats, Counters, bump};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::lock::{LockGuard, Locks};
use crate::resp::Value;
use crate::value::ValueCodec;

/// What a cached "not found" holds: no serialized value starts like this (their header
/// starts `\0KRM`).
const ABSENT: &[u8] = b"\0kermes:absent";

/// A cache-aside cache: values of type `T` (any serde type, through the [`ValueCodec`])
/// under `namespace:key`, loaded on a miss by an async closure that reads the source of
/// truth.
///
/// Cheap to clone; clones share their statistics and in-flight loads.
///
/// ```no_run
/// use std::time::Duration;
/// use kermes::cache::{Cache, CacheOptions};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Profile { name: String }
///
/// # async fn load_from_db(id: u64) -> Result<Option<Profile>, std::io::Error> { Ok(None) }
/// # async fn demo(client: kermes::Client) -> Result<(), Box<dyn std::error::Error>> {
/// let profiles = Cache::new(&client, CacheOptions::new("profiles"))?;
/// let hour = Duration::from_secs(3600);
/// let p: Option<Profile> = profiles
///     .get_or_load("user:42", hour, || load_from_db(42))
///     .await?;
/// // The source changed: the next read loads again.
/// profiles.invalidate(["user:42"]).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    options: CacheOptions,
    codec: ValueCodec,
    flights: Flights,
    counters: Counters,
    locks: Option<Locks>,
}

/// What a read found.
enum Stored {
    /// A value, with its remaining TTL when it was asked for.
    Value(Bytes, Option<Duration>),
    /// A cached "not found".
    Absent,
    Missing,
}

impl Cache {
    /// A cache over `client`. Fails with `is_config()` on invalid options.
    pub fn new(client: &Client, options: CacheOptions) -> Result<Cache> {
        options.validate()?;
        let codec = options
            .codec
            .clone()
            .unwrap_or_else(|| (*ValueCodec::installed()).clone());
        let locks = options.lock_lease.map(|_| Locks::new(client));
        Ok(Cache {
            inner: Arc::new(Inner {
                client: client.clone(),
                options,
                codec,
                flights: Flights::default(),
                counters: Counters::default(),
                locks,
            }),
        })
    }

    /// The Redis key of `key`: `namespace:key` (just `key` with an empty namespace).
    pub fn key(&self, key: &str) -> String {
        let ns = &self.inner.options.namespace;
        if ns.is_empty() {
            key.to_string()
        } else {
            format!("{ns}:{key}")
        }
    }

    /// The cached value of `key`: `None` when nothing is cached (or "not found" is).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.read(&self.key(key), false).await? {
            Stored::Value(bytes, _) => {
                bump(&self.inner.counters.hits);
                self.inner.codec.thaw(&bytes).map(Some)
            }
            Stored::Absent => {
                bump(&self.inner.counters.negative_hits);
                Ok(None)
            }
            Stored::Missing => {
                bump(&self.inner.counters.misses);
                Ok(None)
            }
        }
    }

    /// Stores `value` under `key` for `ttl` (milliseconds on the wire: sub-second TTLs
    /// work; spread by the jitter option).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<()> {
        let frozen = self.inner.codec.freeze(value)?;
        let full = self.key(key);
        self.inner.flights.mark_stale(&full);
        self.store(&full, frozen.as_bytes(), ttl).await
    }

    /// The source of `key` changed to `value`: replaces the cached value if there is one,
    /// keeping its remaining TTL; `false` when nothing was cached (nothing to do: the next
    /// read loads). A load of the key in flight in this process does not store what it
    /// read.
    pub async fn update<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<bool> {
        let frozen = self.inner.codec.freeze(value)?;
        let full = self.key(key);
        self.inner.flights.mark_stale(&full);
        let reply: Value = self
            .inner
            .client
            .cmd("SET")
            .arg(&full)
            .arg(frozen.as_bytes())
            .arg(["XX", "KEEPTTL"])
            .query()
            .await?;
        let updated = !matches!(reply, Value::Nil);
        if updated {
            bump(&self.inner.counters.stores);
        }
        Ok(updated)
    }

    /// Drops the cached values of `keys` (their source changed); returns how many were
    /// cached. Loads of them in flight in this process do not store what they read.
    pub async fn invalidate<K: AsRef<str>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<u64> {
        let full: Vec<String> = keys.into_iter().map(|k| self.key(k.as_ref())).collect();
        if full.is_empty() {
            return Ok(0);
        }
        for k in &full {
            self.inner.flights.mark_stale(k);
        }
        self.inner.client.cmd("DEL").arg(&full).query().await
    }

    /// Stores many values at once (warming the cache at start), in pipelined batches of
    /// [`warm_batch`](CacheOptions::warm_batch); returns how many were stored. The first
    /// failure is returned after its batch.
    pub async fn warm<K, T, I>(&self, entries: I, ttl: Duration) -> Result<usize>
    where
        K: AsRef<str>,
        T: Serialize,
        I: IntoIterator<Item = (K, T)>,
    {
        let mut stored = 0;
        let mut entries = entries.into_iter().peekable();
        while entries.peek().is_some() {
            let pipe = self.inner.client.pipeline();
            for (key, value) in entries.by_ref().take(self.inner.options.warm_batch) {
                let frozen = self.inner.codec.freeze(&value)?;
                pipe.cmd(
                    crate::cmd("SET")
                        .arg(self.key(key.as_ref()))
                        .arg(frozen.as_bytes())
                        .arg("PX")
                        .arg(self.ttl_ms(ttl)?),
                );
            }
            for reply in pipe.run().await? {
                reply?;
                stored += 1;
            }
        }
        self.inner
            .counters
            .stores
            .fetch_add(stored as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(stored)
    }

    /// The value of `key`: from Redis, or on a miss from `loader` (the source of truth),
    /// then stored for `ttl`. `Ok(None)` when the loader found nothing (cached for
    /// [`negative_ttl`](CacheOptions::negative_ttl) when set).
    ///
    /// Concurrent misses of one key in this process call the loader once; the others get
    /// its outcome, its error included (nothing is cached then). With
    /// [`lock`](CacheOptions::lock), misses in other processes wait for this one's value
    /// instead of loading too. If Redis cannot be read, the loader is used and the error
    /// counted in [`CacheStats::redis_errors`].
    pub async fn get_or_load<T, F, Fut, E>(
        &self,
        key: &str,
        ttl: Duration,
        loader: F,
    ) -> Result<Option<T>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Option<T>, E>>,
        E: Send + Sync + 'static,
    {
        self.ttl_ms(ttl)?;
        let full = self.key(key);
        let counters = &self.inner.counters;
        loop {
            let current = match self
                .read(&full, self.inner.options.early_refresh.is_some())
                .await
            {
                Ok(Stored::Value(bytes, left)) => {
                    bump(&counters.hits);
                    if !self.refresh_early(left) {
                        return Ok(Some(self.inner.codec.thaw(&bytes)?));
                    }
                    bump(&counters.early_refreshes);
                    Some(bytes)
                }
                Ok(Stored::Absent) => {
                    bump(&counters.negative_hits);
                    return Ok(None);
                }
                Ok(Stored::Missing) => {
                    bump(&counters.misses);
                    None
                }
                Err(e) => {
                    bump(&counters.redis_errors);
                    tracing::warn!(key = %full, error = %e, "cache read failed; loading from the source");
                    None
                }
            };
            match self.inner.flights.join(&full) {
                Join::Lead(leader) => return self.lead(&full, ttl, loader, leader).await,
                // Refreshing early and another caller is on it: the value still holds.
                Join::Follow(_) if let Some(bytes) = current => {
                    return Ok(Some(self.inner.codec.thaw(&bytes)?));
                }
                Join::Follow(follower) => {
                    bump(&counters.coalesced);
                    match follower.outcome().await {
                        Some(Ok(Some(bytes))) => return Ok(Some(self.inner.codec.thaw(&bytes)?)),
                        Some(Ok(None)) => return Ok(None),
                        Some(Err(e)) => match e.downcast::<E>() {
                            Ok(e) => return Err(LoadError::Loader(e)),
                            // A loader of another error type for the same key: load here.
                            Err(_) => continue,
                        },
                        // The leader was cancelled: try again (maybe leading).
                        None => continue,
                    }
                }
            }
        }
    }

    /// Runs the loader for this process (and, with the lock, for every process).
    async fn lead<T, F, Fut, E>(
        &self,
        full: &str,
        ttl: Duration,
        loader: F,
        leader: Leader<'_>,
    ) -> Result<Option<T>, LoadError<E>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<Option<T>, E>>,
        E: Send + Sync + 'static,
    {
        let counters = &self.inner.counters;
        let guard = match self.cross_process_lock(full).await {
            Locked::Loaded(Some(bytes)) => {
                let value = self.inner.codec.thaw(&bytes)?;
                leader.finish(Ok(Some(bytes)));
                return Ok(Some(value));
            }
            Locked::Loaded(None) => {
                leader.finish(Ok(None));
                return Ok(None);
            }
            Locked::Held(guard) => guard,
            Locked::Unlocked => None,
        };
        bump(&counters.loads);
        let started = Instant::now();
        let loaded = loader().await;
        counters.record_load(started.elapsed());
        let result = match loaded {
            Ok(Some(value)) => {
                let frozen = self.inner.codec.freeze(&value)?;
                if !leader.is_stale() {
                    self.store_logged(full, frozen.as_bytes(), ttl).await;
                }
                leader.finish(Ok(Some(frozen.as_bytes().clone())));
                Ok(Some(value))
            }
            Ok(None) => {
                if let Some(negative) = self.inner.options.negative_ttl
                    && !leader.is_stale()
                {
                    self.store_logged(full, ABSENT, negative).await;
                }
                leader.finish(Ok(None));
                Ok(None)
            }
            Err(e) => {
                bump(&counters.load_errors);
                let e = Arc::new(e);
                let shared: Outcome = Err(e.clone());
                leader.finish(shared);
                Err(LoadError::Loader(e))
            }
        };
        if let Some(guard) = guard {
            let _ = guard.release().await;
        }
        result
    }

    /// With the lock option: takes the key's load lock, or waits for the process holding
    /// it and reads what it stored.
    async fn cross_process_lock(&self, full: &str) -> Locked {
        let (Some(locks), Some(lease)) = (&self.inner.locks, self.inner.options.lock_lease) else {
            return Locked::Unlocked;
        };
        let name = format!("kermes:cache-load:{full}");
        let counters = &self.inner.counters;
        match locks.try_acquire(&name, Some(lease)).await {
            Ok(Some(guard)) => return Locked::Held(Some(guard)),
            Ok(None) => bump(&counters.lock_waits),
            Err(e) => {
                bump(&counters.redis_errors);
                tracing::warn!(key = %full, error = %e, "cache load lock failed; loading");
                return Locked::Unlocked;
            }
        }
        // Another process is loading: wait for its release, then read what it stored.
        let guard = locks
            .acquire(&name, Some(lease), self.inner.options.lock_wait)
            .await
            .unwrap_or(None);
        match self.read(full, false).await {
            Ok(Stored::Value(bytes, _)) => {
                if let Some(g) = guard {
                    let _ = g.release().await;
                }
                Locked::Loaded(Some(bytes))
            }
            Ok(Stored::Absent) => {
                if let Some(g) = guard {
                    let _ = g.release().await;
                }
                Locked::Loaded(None)
            }
            // Nothing stored (its loader failed, or the wait ran out): load here.
            _ => Locked::Held(guard),
        }
    }

    /// XFetch: refresh now with probability rising as expiry nears, scaled by how long
    /// loads take.
    fn refresh_early(&self, left: Option<Duration>) -> bool {
        let (Some(beta), Some(left)) = (self.inner.options.early_refresh, left) else {
            return false;
        };
        let Some(delta) = self.inner.counters.typical_load() else {
            return false;
        };
        let draw = 1.0 - fastrand::f64(); // (0, 1]
        delta.as_secs_f64() * beta * -draw.ln() >= left.as_secs_f64()
    }

    async fn read(&self, full: &str, with_ttl: bool) -> Result<Stored> {
        let client = &self.inner.client;
        let (value, left) = if with_ttl {
            let pipe = client.pipeline();
            pipe.cmd(crate::cmd("GET").arg(full));
            pipe.cmd(crate::cmd("PTTL").arg(full));
            let mut replies = pipe.run().await?.into_iter();
            let value: Option<Bytes> =
                crate::FromValue::from_value(replies.next().transpose()?.unwrap_or(Value::Nil))?;
            let pttl: i64 = match replies.next().transpose()? {
                Some(v) => crate::FromValue::from_value(v)?,
                None => -2,
            };
            (
                value,
                (pttl >= 0).then(|| Duration::from_millis(pttl as u64)),
            )
        } else {
            (
                client.cmd("GET").arg(full).query::<Option<Bytes>>().await?,
                None,
            )
        };
        Ok(match value {
            Some(b) if b[..] == *ABSENT => Stored::Absent,
            Some(b) => Stored::Value(b, left),
            None => Stored::Missing,
        })
    }

    fn ttl_ms(&self, ttl: Duration) -> Result<u64> {
        if ttl < Duration::from_millis(1) {
            return Err(Error::config(format!(
                "cache TTL must be at least 1 ms (got {ttl:?})"
            )));
        }
        let ms = ttl.as_millis() as f64;
        let jitter = self.inner.options.jitter;
        let spread = if jitter > 0.0 {
            ms * (1.0 + jitter * (2.0 * fastrand::f64() - 1.0))
        } else {
            ms
        };
        Ok((spread.round() as u64).max(1))
    }

    async fn store(&self, full: &str, bytes: &[u8], ttl: Duration) -> Result<()> {
        let ms = self.ttl_ms(ttl)?;
        self.inner
            .client
            .cmd("SET")
            .arg(full)
            .arg(bytes)
            .arg("PX")
            .arg(ms)
            .exec()
            .await?;
        bump(&self.inner.counters.stores);
        Ok(())
    }

    /// Stores a loaded value; a failure is counted and logged, not returned (the caller
    /// has its value).
    async fn store_logged(&self, full: &str, bytes: &[u8], ttl: Duration) {
        if let Err(e) = self.store(full, bytes, ttl).await {
            bump(&self.inner.counters.redis_errors);
            tracing::warn!(key = %full, error = %e, "cache store failed");
        }
    }

    /// Statistics since the cache was made.
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// The client the cache reads and writes through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }
}

/// What taking the cross-process load lock came to.
enum Locked {
    /// Another process loaded while this one waited: its value (or "not found").
    Loaded(Option<Bytes>),
    /// This process loads, holding the lock if it got it.
    Held(Option<LockGuard>),
    /// No lock configured, or it could not be taken: load.
    Unlocked,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("namespace", &self.inner.options.namespace)
            .finish()
    }
}
