//! Tundra: cold keys leave Redis memory for a secondary datastore and come back on demand,
//! as in Carmine, built on kermes's message queue, and with Carmine's gap closed: a key is
//! never dropped from Redis unless the store holds its latest version.
//!
//! - [`Tundra::dirty`] after writing keys: each key is queued for replication (once, however
//!   often it is marked before the worker gets to it) and any Tundra TTL on it is lifted,
//!   so it cannot expire before its new version is stored.
//! - [`Tundra::worker`] replicates: it `DUMP`s each dirty key, puts the dump in the
//!   [`DataStore`], then, in one script, applies the [`redis_ttl`](TundraOptions::redis_ttl)
//!   only when the key is still exactly what was dumped (same content, same own expiry, no
//!   later dump); a key changed meanwhile is dumped again. A worker killed mid-run loses
//!   nothing: the queue hands the key to another worker when the lease runs out, and no
//!   TTL was applied.
//! - [`Tundra::ensure`] before using keys: every key missing from Redis is `RESTORE`d from
//!   the store, concurrently and idempotently (a key already there is left as it is and its
//!   Tundra TTL is pushed back), with its own expiry; each key's [`Ensured`] says what was
//!   done, [`Ensured::Missing`] when neither Redis nor the store has it.
//! - Versions are ordered by a generation taken on the server with the dump, and a store
//!   never lets an older generation replace a newer one ([`DataStore`]'s contract), so two
//!   overlapping replications of one key cannot leave the older version stored.
//! - The key's own TTL is kept: recorded with the dump, restored with the key (a key whose
//!   own expiry has passed is [`Ensured::Expired`], not resurrected), and never lengthened
//!   by Tundra's.
//!
//! Stores: [`DiskStore`] (one file per key and generation, atomic writes) and, with the
//! `object-store` feature, `ObjectStoreBackend` (S3, GCS, Azure through `object_store`).
//! Records can be compressed and encrypted by a [`ValueCodec`]
//! ([`TundraOptions::codec`]).
//!
//! What Tundra does not do: it does not see writes by itself (call `dirty` after writing, as
//! in Carmine), and [`Tundra::delete`] is how a key leaves both places (a key deleted only
//! in Redis keeps its last version in the store, since Tundra cannot tell a deletion from
//! its own expiry).
//!
//! ```no_run
//! # async fn demo(client: kermes::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use kermes::prelude::*;
//! use std::time::Duration;
//! use kermes::mq::WorkerOptions;
//! use kermes::tundra::{DiskStore, Ensured, Tundra, TundraOptions};
//!
//! let store = DiskStore::new("/var/lib/myapp/tundra")?;
//! let tundra = Tundra::new(&client, store,
//!     TundraOptions::new().redis_ttl(Some(Duration::from_secs(24 * 3600))))?;
//! let worker = tundra.worker(WorkerOptions::new().concurrency(4)).await?;
//!
//! client.hset("user:1", &[("name", "Ada")]).await?;
//! tundra.dirty(["user:1"]).await?;          // replicated soon, expires from Redis in a day
//! // ... later, maybe after it expired:
//! let ensured = tundra.ensure(["user:1"]).await?;
//! assert!(ensured[0].is_available());
//! worker.stop().await?;
//! # Ok(()) }
//! ```

mod disk;
mod keys;
#[cfg(feature = "object-store")]
mod object;
mod record;
mod scripts;
mod store;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};

use crate::mq::{self, EnqueueOptions, Job, Outcome, Worker, WorkerOptions};
use crate::{Client, ValueCodec};

pub use disk::DiskStore;
pub use keys::safe_name;
#[cfg(feature = "object-store")]
pub use object::ObjectStoreBackend;
pub use record::Record;
pub use store::{DataStore, StoreError};

/// What failed in a Tundra operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum TundraError {
    /// Redis (a command, a script, the queue) failed.
    Redis(crate::Error),
    /// The datastore failed.
    Store(StoreError),
    /// A record in the store could not be read (another codec or key, or damage).
    Corrupt(String),
}

impl fmt::Display for TundraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TundraError::Redis(e) => write!(f, "tundra: {e}"),
            TundraError::Store(e) => write!(f, "tundra: the datastore failed: {e}"),
            TundraError::Corrupt(why) => write!(f, "tundra: {why}"),
        }
    }
}

impl std::error::Error for TundraError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TundraError::Redis(e) => Some(e),
            TundraError::Store(e) => Some(&**e),
            TundraError::Corrupt(_) => None,
        }
    }
}

impl From<crate::Error> for TundraError {
    fn from(e: crate::Error) -> Self {
        TundraError::Redis(e)
    }
}

/// How a [`Tundra`] behaves.
#[derive(Clone, Debug)]
pub struct TundraOptions {
    name: String,
    redis_ttl: Option<Duration>,
    codec: Option<Arc<ValueCodec>>,
    batch: usize,
    replicate_attempts: u32,
}

impl Default for TundraOptions {
    fn default() -> Self {
        TundraOptions {
            name: "default".into(),
            redis_ttl: None,
            codec: None,
            batch: 256,
            replicate_attempts: 5,
        }
    }
}

impl TundraOptions {
    /// Defaults: name `default`, no Redis TTL (keys are replicated and stay), records as
    /// they are, batches of 256 keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names this Tundra: its queue (`kermes-tundra-<name>`) and bookkeeping keys. Letters,
    /// digits, `-`, `_` and `.`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// How long a replicated key stays in Redis before it expires (None: it stays; the store
    /// is then a replica). A key's own shorter TTL is kept. Restored keys get it afresh.
    pub fn redis_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.redis_ttl = ttl;
        self
    }

    /// Records go through this codec (compression and encryption of the value transforms);
    /// the same codec must read them back.
    pub fn codec(mut self, codec: ValueCodec) -> Self {
        self.codec = Some(Arc::new(codec));
        self
    }

    /// Keys per store fetch and per round of restores in [`Tundra::ensure`].
    pub fn batch(mut self, keys: usize) -> Self {
        self.batch = keys.max(1);
        self
    }

    /// How many times a worker dumps a key that keeps changing under it before it gives the
    /// message back to the queue to try later (default 5).
    pub fn replicate_attempts(mut self, n: u32) -> Self {
        self.replicate_attempts = n.max(1);
        self
    }
}

/// What [`Tundra::ensure`] found or did for one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ensured {
    /// The key was in Redis; it was left as it is.
    Present,
    /// The key was restored from the store.
    Restored,
    /// The store holds the key, but its own expiry has passed: it is not restored.
    Expired,
    /// Neither Redis nor the store has the key.
    Missing,
}

impl Ensured {
    /// True when the key is in Redis now.
    pub fn is_available(self) -> bool {
        matches!(self, Ensured::Present | Ensured::Restored)
    }
}

/// Cold-key replication to a [`DataStore`]; see the [module docs](self). Cheap to clone.
pub struct Tundra<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for Tundra<S> {
    fn clone(&self) -> Self {
        Tundra {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<S> {
    client: Client,
    store: S,
    options: TundraOptions,
    queue: String,
}

fn millis(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
    })
}

impl<S: DataStore> Tundra<S> {
    /// A Tundra over `client`, replicating to `store`.
    pub fn new(client: &Client, store: S, options: TundraOptions) -> crate::Result<Tundra<S>> {
        let ok = !options.name.is_empty()
            && options
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !ok {
            return Err(crate::Error::config(format!(
                "tundra name {:?}: use letters, digits, '-', '_' and '.'",
                options.name
            )));
        }
        let queue = format!("kermes-tundra-{}", options.name);
        Ok(Tundra {
            inner: Arc::new(Inner {
                client: client.clone(),
                store,
                options,
                queue,
            }),
        })
    }

    /// The queue replication runs on (for [`mq`] monitoring: `mq::queue_status`).
    pub fn queue(&self) -> &str {
        &self.inner.queue
    }

    /// The datastore.
    pub fn store(&self) -> &S {
        &self.inner.store
    }

    /// Marks keys dirty after they were written: each existing key is queued for replication
    /// (a key already queued is not queued twice; one being replicated is queued again) and
    /// Tundra's TTL on it, if any, is lifted. Returns how many of the keys exist (a missing
    /// key is not queued: Tundra cannot tell a deleted key from one it let expire).
    pub async fn dirty<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<usize, TundraError> {
        let inner = &*self.inner;
        let keys: Vec<Bytes> = keys
            .into_iter()
            .map(|k| Bytes::copy_from_slice(k.as_ref()))
            .collect();
        let marked = futures::stream::iter(keys.iter().map(|key| async move {
            let companion = keys::companion(&inner.options.name, key);
            let exists: i64 = scripts::DIRTY
                .run(&inner.client, (&key[..], &companion[..]), ())
                .await?;
            if exists == 0 {
                return Ok::<_, crate::Error>(0usize);
            }
            let sent = mq::enqueue(
                &inner.client,
                &inner.queue,
                key,
                EnqueueOptions::new().id(keys::message_id(key)).can_requeue(true),
            )
            .await?;
            tracing::trace!(key = %String::from_utf8_lossy(key), result = ?sent.result, "tundra: dirty");
            Ok(1)
        }))
        .buffer_unordered(inner.options.batch)
        .try_fold(0, |n, one| async move { Ok(n + one) })
        .await?;
        Ok(marked)
    }

    /// Makes sure keys are in Redis before they are used: a missing key is restored from the
    /// store (with its own expiry, and Tundra's TTL), a present one is left as it is (its
    /// Tundra TTL pushed back to a full `redis_ttl`). Concurrent and idempotent: two
    /// `ensure`s of one key restore it once. One [`Ensured`] per key, in order.
    pub async fn ensure<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<Vec<Ensured>, TundraError> {
        let inner = &*self.inner;
        let keys: Vec<Bytes> = keys
            .into_iter()
            .map(|k| Bytes::copy_from_slice(k.as_ref()))
            .collect();
        let ttl = millis(inner.options.redis_ttl);
        let mut result = vec![Ensured::Missing; keys.len()];
        for (chunk_no, chunk) in keys.chunks(inner.options.batch).enumerate() {
            let base = chunk_no * inner.options.batch;
            let present: Vec<i64> = futures::future::try_join_all(chunk.iter().map(|key| {
                let companion = keys::companion(&inner.options.name, key);
                async move {
                    scripts::TOUCH
                        .run::<_, i64>(&inner.client, (&key[..], &companion[..]), ttl)
                        .await
                }
            }))
            .await?;
            let missing: Vec<usize> = (0..chunk.len()).filter(|&i| present[i] == 0).collect();
            for (i, p) in present.iter().enumerate() {
                if *p == 1 {
                    result[base + i] = Ensured::Present;
                }
            }
            if missing.is_empty() {
                continue;
            }
            let wanted: Vec<Bytes> = missing.iter().map(|&i| chunk[i].clone()).collect();
            let records = inner
                .store
                .fetch(&wanted)
                .await
                .map_err(TundraError::Store)?;
            if records.len() != wanted.len() {
                return Err(TundraError::Store(
                    format!(
                        "asked for {} records, the store gave {}",
                        wanted.len(),
                        records.len()
                    )
                    .into(),
                ));
            }
            let restored = futures::future::try_join_all(missing.iter().zip(records).map(
                |(&i, record)| async move {
                    let Some(bytes) = record else {
                        return Ok((i, Ensured::Missing));
                    };
                    let record = Record::decode(bytes, inner.options.codec.as_deref())?;
                    if record.key != chunk[i] {
                        return Err(TundraError::Corrupt(format!(
                            "the store's record for {:?} is of another key ({:?})",
                            String::from_utf8_lossy(&chunk[i]),
                            String::from_utf8_lossy(&record.key)
                        )));
                    }
                    let companion = keys::companion(&inner.options.name, &chunk[i]);
                    let done: String = scripts::RESTORE
                        .run(
                            &inner.client,
                            (&chunk[i][..], &companion[..]),
                            (&record.dump, record.generation, record.expire_at_ms, ttl),
                        )
                        .await?;
                    Ok((
                        i,
                        match done.as_str() {
                            "present" => Ensured::Present,
                            "expired" => Ensured::Expired,
                            _ => Ensured::Restored,
                        },
                    ))
                },
            ))
            .await?;
            for (i, e) in restored {
                result[base + i] = e;
            }
        }
        Ok(result)
    }

    /// Deletes keys from Redis and from the store (their bookkeeping too).
    pub async fn delete<K: AsRef<[u8]>>(
        &self,
        keys: impl IntoIterator<Item = K>,
    ) -> Result<(), TundraError> {
        let inner = &*self.inner;
        let keys: Vec<Bytes> = keys
            .into_iter()
            .map(|k| Bytes::copy_from_slice(k.as_ref()))
            .collect();
        futures::future::try_join_all(keys.iter().map(|key| {
            let companion = keys::companion(&inner.options.name, key);
            async move {
                inner
                    .client
                    .cmd("DEL")
                    .arg(&key[..])
                    .arg(&companion[..])
                    .query::<i64>()
                    .await
            }
        }))
        .await?;
        inner.store.delete(&keys).await.map_err(TundraError::Store)
    }

    /// Starts a replication worker (a [`mq::Worker`] on [`queue`](Self::queue); run as many
    /// as you like, in as many processes). Stop it with [`Worker::stop`].
    pub async fn worker(&self, options: WorkerOptions) -> crate::Result<Worker> {
        let tundra = self.clone();
        Worker::start(
            &self.inner.client,
            &self.inner.queue,
            options,
            move |job: Job<Bytes>| {
                let tundra = tundra.clone();
                async move { tundra.replicate(&job).await }
            },
        )
        .await
    }

    /// One dirty key: dump, store, and let it expire only if it is still what was stored.
    async fn replicate(&self, job: &Job<Bytes>) -> Outcome {
        let inner = &*self.inner;
        let key = job.message();
        let companion = keys::companion(&inner.options.name, key);
        let ttl = millis(inner.options.redis_ttl);
        for _ in 0..inner.options.replicate_attempts {
            let dumped: Option<(Bytes, String, u64)> = match scripts::DUMP
                .run(&inner.client, (&key[..], &companion[..]), ())
                .await
            {
                Ok(d) => d,
                Err(e) => return Outcome::error(format_args!("tundra: dump failed: {e}")),
            };
            let Some((dump, generation, expire_at_ms)) = dumped else {
                tracing::debug!(key = %String::from_utf8_lossy(key), "tundra: a dirty key is gone; nothing to replicate");
                return Outcome::success();
            };
            let Ok(generation_n) = generation.parse::<u64>() else {
                return Outcome::error(format_args!("tundra: bad generation {generation:?}"));
            };
            let record = Record {
                key: key.clone(),
                generation: generation_n,
                expire_at_ms,
                dump,
            };
            let encoded = match record.encode(inner.options.codec.as_deref()) {
                Ok(b) => b,
                Err(e) => return Outcome::error(e),
            };
            if let Err(e) = inner.store.put(key, generation_n, encoded).await {
                return Outcome::error(format_args!("tundra: the datastore failed: {e}"));
            }
            if job.is_lease_lost() {
                // Another worker has the key now; it dumps afresh.
                return Outcome::Retry(Duration::from_millis(100));
            }
            let sha = crate::script::sha1_hex(&record.dump);
            let committed: String = match scripts::COMMIT
                .run(
                    &inner.client,
                    (&key[..], &companion[..]),
                    (sha.as_str(), generation.as_str(), ttl, expire_at_ms),
                )
                .await
            {
                Ok(c) => c,
                Err(e) => return Outcome::error(format_args!("tundra: commit failed: {e}")),
            };
            match committed.as_str() {
                "changed" => {
                    tracing::debug!(key = %String::from_utf8_lossy(key), "tundra: the key changed while it was replicated; again");
                    continue;
                }
                _ => return Outcome::success(),
            }
        }
        Outcome::Retry(Duration::from_millis(50))
    }
}
