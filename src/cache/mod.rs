//! Caching, in two layers.
//!
//! - **Client-side caching** ([`ClientCacheOptions`], turned on with
//!   [`ClientBuilder::client_cache`](crate::ClientBuilder::client_cache)): replies of
//!   cacheable reads (`GET`, `HGET`, `HGETALL`, `SMEMBERS`, `ZRANGE` ...: read-only, one key,
//!   a reply that depends only on that key's value, as the generated
//!   [`CommandInfo::cacheable`](crate::commands::CommandInfo::cacheable) says) are kept in
//!   the process, in front of the shared connections, and answered with no network. The
//!   server's RESP3 tracking (`CLIENT TRACKING`, turned on in every shared connection's
//!   handshake, so also after a reconnect) invalidates them when their keys change.
//! - **Cache-aside** ([`Cache`]): values loaded from the source of truth and kept in Redis
//!   with a TTL, under a namespace, with stampede protection and statistics.
//!
//! The two combine: a [`Cache`] over a client with a client-side cache reads hot keys from
//! the process.

mod aside;
mod aside_options;
mod coalesce;
mod flight;
mod local;
mod options;
mod stats;

pub use aside::Cache;
pub use aside_options::{CacheOptions, LoadError};
pub(crate) use local::{LocalCache, Plan};
pub use options::{ClientCacheOptions, ClientCacheStats, KeyFilter, TrackingMode};
pub use stats::{CacheStats, LatencySummary};
