//! A [`tower_sessions`](https://docs.rs/tower-sessions) session store on Redis: Carmine's
//! Ring session store, for Rust's web stack (axum, and anything on tower). Feature
//! `tower-sessions`.
//!
//! ```no_run
//! # async fn demo(client: kermes::Client) {
//! use kermes::session::RedisStore;
//! use tower_sessions::{Expiry, SessionManagerLayer};
//!
//! let store = RedisStore::new(&client);
//! let layer = SessionManagerLayer::new(store)
//!     .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::hours(1)));
//! // axum::Router::new().route(...).layer(layer)
//! # }
//! ```
//!
//! Each session is one string key, `tower-sessions:{<id>}` (the id is its own hash tag, so
//! on a cluster a session and anything you keep beside it share a slot), holding the
//! session's data and expiry through the [`ValueCodec`] (MessagePack by default;
//! compression and encryption if you set them), expiring when the session does.
//!
//! What it does that a plain `SET` store does not:
//! - `create` writes with `SET NX PXAT`, and picks a new id if that one is taken (never
//!   overwrites another session).
//! - `save` checks what it finds: a session that expired in Redis while a request held it
//!   is written again (the request's session is live), so the save is not silently dropped
//!   as with a bare `SET XX`; a session deleted meanwhile (a logout in another request) is
//!   not brought back: `delete` leaves a short-lived tombstone
//!   ([`tombstone`](RedisStore::tombstone)) that a later `save` of that id respects; a
//!   record already past its expiry is deleted, not written.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use time::OffsetDateTime;
use tower_sessions_core::SessionStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{Error as StoreError, Result as StoreResult};

use crate::script::Script;
use crate::{Client, ValueCodec};

/// A session's data, as tower-sessions holds it.
type Data = HashMap<String, serde_json::Value>;

/// `save`'s checks and write, in one step. KEYS: the session. ARGV: the encoded session, its
/// expiry (Unix ms). `deleted` (a tombstone is there: nothing written), `expired` (the
/// expiry has passed: the key is removed), `recreated` (the key had gone: written again),
/// `saved`.
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local exists = redis.call('EXISTS', KEYS[1]) == 1
         if exists and redis.call('STRLEN', KEYS[1]) == 0 then return 'deleted' end
         local t = redis.call('TIME')
         local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
         if tonumber(ARGV[2]) <= now then
           redis.call('DEL', KEYS[1])
           return 'expired'
         end
         redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
         if exists then return 'saved' end
         return 'recreated'",
    )
});

/// How many ids `create` tries before it gives up (each is 128 random bits: a second try
/// is already a curiosity).
const CREATE_TRIES: usize = 8;

/// A [`SessionStore`] on Redis. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisStore {
    client: Client,
    prefix: Arc<str>,
    codec: Option<Arc<ValueCodec>>,
    tombstone: Duration,
}

impl RedisStore {
    /// Sessions under `tower-sessions:`, through the installed [`ValueCodec`], tombstones
    /// of 5 minutes.
    pub fn new(client: &Client) -> RedisStore {
        RedisStore {
            client: client.clone(),
            prefix: Arc::from("tower-sessions:"),
            codec: None,
            tombstone: Duration::from_secs(300),
        }
    }

    /// Keys are `<prefix>{<id>}`. A prefix with a brace is refused (it would change the
    /// hash tag).
    pub fn prefix(mut self, prefix: &str) -> crate::Result<RedisStore> {
        if prefix.contains(['{', '}']) {
            return Err(crate::Error::config(format!(
                "session key prefix {prefix:?} must not contain braces: the session id is the hash tag"
            )));
        }
        self.prefix = Arc::from(prefix);
        Ok(self)
    }

    /// Sessions go through this codec (format, compression, encryption) instead of the
    /// installed one.
    pub fn codec(mut self, codec: ValueCodec) -> RedisStore {
        self.codec = Some(Arc::new(codec));
        self
    }

    /// How long a deleted session's id refuses a `save` (a request still holding the
    /// session after a logout elsewhere). Zero deletes outright.
    pub fn tombstone(mut self, how_long: Duration) -> RedisStore {
        self.tombstone = how_long;
        self
    }

    /// The Redis key of session `id`.
    pub fn key(&self, id: &Id) -> String {
        format!("{}{{{id}}}", self.prefix)
    }

    fn value_codec(&self) -> Arc<ValueCodec> {
        self.codec.clone().unwrap_or_else(ValueCodec::installed)
    }

    fn encode(&self, record: &Record) -> StoreResult<(Bytes, i64)> {
        let at = expiry_ms(record.expiry_date);
        let frozen = self
            .value_codec()
            .freeze(&(&record.data, at))
            .map_err(|e| StoreError::Encode(e.to_string()))?;
        Ok((frozen.as_bytes().clone(), at))
    }

    fn decode(&self, id: Id, bytes: &[u8]) -> StoreResult<Record> {
        let (data, at): (Data, i64) = self
            .value_codec()
            .thaw(bytes)
            .map_err(|e| StoreError::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
            .map_err(|e| StoreError::Decode(format!("session expiry {at} ms: {e}")))?;
        Ok(Record {
            id,
            data,
            expiry_date,
        })
    }
}

fn expiry_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn backend(e: crate::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, record: &mut Record) -> StoreResult<()> {
        let (value, at) = self.encode(record)?;
        for _ in 0..CREATE_TRIES {
            let set: Option<String> = self
                .client
                .cmd("SET")
                .arg(self.key(&record.id))
                .arg(&value)
                .arg(("NX", "PXAT", at.max(1)))
                .query()
                .await
                .map_err(backend)?;
            if set.is_some() {
                return Ok(());
            }
            tracing::debug!("session id taken; creating with another");
            record.id = Id::default();
        }
        Err(StoreError::Backend(format!(
            "no free session id in {CREATE_TRIES} tries"
        )))
    }

    async fn save(&self, record: &Record) -> StoreResult<()> {
        let (value, at) = self.encode(record)?;
        let key = self.key(&record.id);
        let outcome: String = SAVE
            .run(&self.client, key.as_str(), (&value, at))
            .await
            .map_err(backend)?;
        match outcome.as_str() {
            "recreated" => {
                tracing::info!("session had expired in Redis while a request held it; saved again")
            }
            "deleted" => tracing::debug!("session was deleted meanwhile; the save is dropped"),
            _ => {}
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> StoreResult<Option<Record>> {
        let found: Option<Bytes> = self
            .client
            .cmd("GET")
            .arg(self.key(id))
            .query()
            .await
            .map_err(backend)?;
        match found {
            // Absent, or a deleted session's tombstone.
            None => Ok(None),
            Some(b) if b.is_empty() => Ok(None),
            // The key expires with the session, on the server's clock.
            Some(b) => self.decode(*id, &b).map(Some),
        }
    }

    async fn delete(&self, id: &Id) -> StoreResult<()> {
        let key = self.key(id);
        let ms = u64::try_from(self.tombstone.as_millis()).unwrap_or(u64::MAX);
        let cmd = if ms == 0 {
            self.client.cmd("DEL").arg(key)
        } else {
            self.client.cmd("SET").arg(key).arg(("", "PX", ms))
        };
        cmd.query::<crate::Value>().await.map_err(backend)?;
        Ok(())
    }
}
