//! # kermes
//!
//! An async, Tokio-native Redis client. Commands issued concurrently share multiplexed
//! connections and are written together, one write per batch, with replies matched in order.
//! RESP2 and RESP3, reconnect with backoff that restores the handshake (AUTH, SELECT,
//! CLIENT SETNAME), cancellation safety, and real-server test support.
//!
//! ```no_run
//! use std::time::Duration;
//! use kermes::prelude::*;
//!
//! # async fn demo() -> kermes::Result<()> {
//! let client = Client::connect("redis://127.0.0.1:6379/0").await?;
//!
//! // Every command of the spec is a generated, documented method.
//! client.set("counter", 1).await?;
//! let n = client.incrby("counter", 41).await?;
//! assert_eq!(n, 42);
//! client.set_with("session", "abc", SetOptions::new().expire_in(Duration::from_secs(60)).nx()).await?;
//! // A reply that holds stored data takes its type from the binding.
//! let name: Option<String> = client.get("user:1:name").await?;
//!
//! // Concurrent commands from any number of tasks are pipelined automatically.
//! let replies = futures::future::join_all((0..100).map(|i| client.echo::<String>(i.to_string()))).await;
//! assert_eq!(replies.len(), 100);
//!
//! // Blocking commands run on an exclusive connection, never the shared one.
//! let popped: Option<(String, String)> = client.blpop("jobs", 0.1).await?;
//!
//! // Raw commands for anything else.
//! let v: i64 = client.cmd("INCR").arg("counter").query().await?;
//! # Ok(()) }
//! ```
//!
//! ## Replies
//!
//! A reply that holds what you stored (values, members, fields, keys, a script's result)
//! takes its type from the binding: `let v: Option<String> = client.get("k").await?`,
//! `let m: HashMap<String, i64> = client.hgetall("h").await?`, or any [`FromValue`] type
//! (`Bytes`, numbers, tuples, maps, [`Serde`] for serialized values). A reply the server
//! makes keeps its one type and needs no annotation: `set` gives `()`, counters `i64`,
//! `xadd` the entry's ID. Each method's docs name the reply's natural type
//! ([`commands::StreamEntry`] for XRANGE, [`commands::GeoMember`] for GEOSEARCH);
//! `.to::<T>()` re-reads any reply as another type.
//!
//! ## Choosing how to run a command
//!
//! | you want | write | it runs on | replies |
//! |---|---|---|---|
//! | one command | `client.get("k").await` (a [`Query`]) | a shared connection; commands from every task are pipelined into common writes | typed by the binding |
//! | several commands in one round trip | [`Client::pipeline`] | the shared connection (an exclusive one if a command blocks) | [`Pipeline::run`]: each reply, errors as values; [`Pipeline::query`]: one typed tuple |
//! | several commands all or nothing | [`Client::transaction`] (MULTI/EXEC) | an exclusive connection | like a pipeline; an aborted EXEC is an error |
//! | read, decide, write, retried on conflict | [`atomic`] (WATCH + MULTI/EXEC) | an exclusive connection | the body's value and the writes' replies |
//! | connection state (SELECT, WATCH by hand, CLIENT SETNAME) | [`Client::exclusive`] | a pooled connection, yours until dropped | like the client |
//! | a blocking command (BLPOP, XREAD BLOCK) | the method, as any other | an exclusive connection, taken and returned for you; never timed out early | typed by the binding |
//! | SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE | [`Client::subscriber`] | a connection of its own, resubscribed after a reconnect | a `Stream` of messages ([`pubsub`]) |
//! | a Lua script | [`lua`], [`Script`], [`Library`] | the shared connection | EVALSHA, EVAL when the server lacks it |
//! | anything not generated | [`Client::cmd`] | wherever its routing says | [`BoundCmd::query`] typed by the binding |
//!
//! ## Connecting
//!
//! - `redis://[[user]:password@]host[:port][/db]`, `unix:///path.sock`: one server.
//! - `rediss://...`: TLS ([`TlsOptions`] for a private CA, a client certificate, the server
//!   name; the platform's roots by default).
//! - `redis+sentinel://[[user]:password@]s1,s2/MASTER[/db]`: the master found through
//!   sentinels, followed across failovers ([`sentinel`], [`SentinelOptions`]); reads from
//!   replicas with [`ReadFrom`].
//! - `redis+cluster://[[user]:password@]h1[:port],h2[:port]`: a Redis Cluster behind the
//!   same [`Client`] ([`cluster`], [`cluster::ClusterOptions`]): commands routed by slot,
//!   redirections followed, multi-key commands and pipelines split per node.
//!
//! [`ClientBuilder`] sets everything the URL does and more; every setter documents its
//! default.
//!
//! ## Layers
//!
//! - [`resp`]: RESP2/RESP3 frames ([`Value`]), the codec and its [`Limits`]. No I/O.
//! - connections: one engine for every kind (shared, exclusive, subscriber, monitor): one
//!   task per socket; callers queue requests, the task batches writes, matches replies,
//!   routes push frames apart, watches the connection's health, and reconnects, restoring
//!   the handshake and subscriptions. Lifecycle changes are [`ConnectionEvent`]s
//!   ([`Client::events`]).
//! - routing: each command goes where it can run, decided from the generated table by name,
//!   subcommand and arguments: the shared connection, an exclusive one (blocking commands),
//!   or a clear error (state-changing commands on a shared connection, `CLIENT REPLY`).
//! - [`Client`]: shared multiplexed connections (one per worker thread of the runtime by
//!   default, each thread's tasks keeping to their own) plus a deadpool of [`Exclusive`]
//!   ones, which return to the pool in the state their handshake made.
//!
//! ## Watching it run
//!
//! - [`Client::stats`]: commands sent, completed, in flight, errors by kind, reconnects,
//!   bytes, pools, and every connection's own counters ([`stats`]).
//! - [`trace`]: a `debug` span per command and per batch, after OpenTelemetry's database
//!   conventions; connection events (`info`/`warn`) and [`Client::events`].
//! - The `metrics` feature: the stats as `kermes_*` metrics for any `metrics` recorder.
//!
//! ## Behaviour worth knowing
//!
//! - Cancelling a command (dropping its future) never desynchronises a connection; a
//!   cancelled *blocking* command closes its exclusive connection at once, so the server
//!   stops blocking for it and never hands it the next element pushed.
//! - A silent network is noticed by default: TCP keepalive (30 s), a PING on idle
//!   connections (30 s), and a bound (30 s) on how long the oldest command in flight may wait
//!   while nothing is read. See [`ClientBuilder::tcp_keepalive`],
//!   [`ClientBuilder::idle_ping`], [`ClientBuilder::unresponsive_timeout`].
//! - Lock and queue leases are timed from when their request was sent, and renewals may take
//!   only what is left of the lease, so a lease is never believed held after the server let
//!   it go.
//! - [`Cmd`], [`ToArgs`], [`FromValue`]: building commands and reading replies.
//! - [`cache`]: cache-aside ([`cache::Cache`]: single flight, a load lock across
//!   processes, early refresh, negative caching) and RESP3 client-side caching
//!   ([`ClientBuilder::client_cache`]).
//! - [`lock`]: distributed locks with fencing, renewal and waiting without spinning; read-write
//!   and fair locks, leased semaphores, countdown latches, a rate limiter.
//! - [`mq`]: a durable message queue with workers as spawned tasks, fenced acks and lease
//!   renewal; schedules, rate limits, pause, events, metrics, progress and logs.
//! - [`pubsub`]: subscribers and MONITOR as `Stream`s, Carmine's listener.
//! - [`tundra`]: cold keys replicated to a datastore (disk, object stores) and evicted from
//!   Redis only when the store holds their latest version; `ensure` restores them.
//! - `session` (feature `tower-sessions`): a tower-sessions store for axum and tower apps.
//! - [`commands`]: every command of the spec as trait methods (generated by `codegen/`),
//!   and the command table; [`prelude`] imports them.
//!
//! ## Feature flags
//!
//! - `tls` (default): `rediss://` through rustls ([`TlsOptions`]), no OpenSSL.
//! - `tls-webpki-roots`: Mozilla's roots compiled in ([`TlsRoots::WebPki`]).
//! - `msgpack` (default), `bincode`, `json`: serialized value formats.
//! - `lz4`, `zstd`, `aes-gcm`, `chacha20poly1305`: value compression and encryption.
//! - `mq-cron`: cron schedules for the queue ([`mq::Schedule`]'s `cron`, with IANA time
//!   zones).
//! - `object-store`: Tundra's `ObjectStoreBackend` (S3, GCS, Azure through `object_store`).
//! - `tower-sessions`: `session::RedisStore`, a `tower_sessions::SessionStore`.
//! - `metrics`: `metrics::report` sets `kermes_*` metrics from [`Client::stats`] for any
//!   `metrics` recorder (Prometheus through `metrics-exporter-prometheus`).
//! - `testing`: [`testing`] spawns throwaway `redis-server` / `valkey-server` processes
//!   (plain or TLS), a fault-injecting proxy and a TLS terminator.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod atomic;
pub mod cache;
mod client;
pub mod cluster;
mod cmd;
pub mod commands;
mod config;
mod conn;
mod error;
pub mod helpers;
mod lease;
pub mod lock;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod mq;
mod node;
mod pipeline;
mod pool;
pub mod pubsub;
mod query;
pub mod resp;
mod route;
mod script;
pub mod sentinel;
#[cfg(feature = "tower-sessions")]
pub mod session;
pub mod stats;
mod task;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;
pub mod trace;
pub mod tundra;
mod value;

pub use atomic::{Transaction, atomic};
pub use client::{BoundCmd, Client, ClientBuilder};
pub use cmd::{Cmd, cmd};
pub use config::{Addr, Config, MAX_AUTO_SHARED, Password, Protocol, ReconnectPolicy};
pub use conn::{ConnectionEvent, ConnectionEvents, Push};
pub use error::{Error, Result, ServerError};
pub use pipeline::{Pipeline, Queued};
pub use pool::Exclusive;
pub use query::{BoxedQuery, Query, Retype};
pub use resp::{Limits, Value};
pub use script::{Library, Script, lua};
pub use sentinel::{ReadFrom, SentinelOptions};
pub use stats::Stats;
pub use tls::{TlsOptions, TlsRoots};
pub use value::{
    ArgBuf, Cipher, Compression, Format, FromValue, Frozen, Raw, Serde, ToArgs, ValueCodec,
};

/// Everything needed to call commands: `use kermes::prelude::*;`.
pub mod prelude {
    pub use crate::commands::*;
    pub use crate::{Client, Cmd, FromValue, Query, Retype, ToArgs, Value, cmd};
    pub use bytes::Bytes;
}

/// Compiles README.md's Rust examples as doctests, so the README stays true to the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
