//! # kermes
//!
//! An async, Tokio-native Redis client. Commands issued concurrently share multiplexed
//! connections and are written together, one write per batch, with replies matched in order.
//! RESP2 and RESP3, reconnect with backoff that restores the handshake (AUTH, SELECT,
//! CLIENT SETNAME), cancellation safety, and real-server test support.
//!
//! ```no_run
//! use kermes::Client;
//!
//! # async fn demo() -> kermes::Result<()> {
//! let client = Client::connect("redis://127.0.0.1:6379/0").await?;
//!
//! client.cmd("SET").arg("counter").arg(1).exec().await?;
//! let n: i64 = client.cmd("INCRBY").arg("counter").arg(41).query().await?;
//! assert_eq!(n, 42);
//!
//! // Concurrent commands from any number of tasks are pipelined automatically.
//! let replies = futures::future::join_all(
//!     (0..100).map(|i| client.cmd("ECHO").arg(i).query::<i64>()),
//! ).await;
//! assert_eq!(replies.len(), 100);
//!
//! // Blocking commands run on an exclusive connection, never the shared one.
//! let popped: Option<(String, String)> =
//!     client.cmd("BLPOP").arg("jobs").arg(0.1).query().await?;
//! # Ok(()) }
//! ```
//!
//! ## Layers
//!
//! - [`resp`]: RESP2/RESP3 frames ([`Value`]), the codec and its [`Limits`]. No I/O.
//! - connections: one task per socket; callers queue requests, the task batches writes,
//!   matches replies, routes RESP3 push frames apart, and reconnects.
//! - [`Client`]: shared multiplexed connections plus a deadpool of [`Exclusive`] ones.
//! - [`Cmd`], [`ToArgs`], [`FromValue`]: building commands and reading replies.
//!
//! ## Feature flags
//!
//! - `testing`: [`testing`] spawns throwaway `redis-server` / `valkey-server` processes.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod client;
mod cmd;
pub mod commands;
mod config;
mod conn;
mod error;
mod pool;
mod query;
pub mod resp;
#[cfg(feature = "testing")]
pub mod testing;
mod value;

pub use client::{BoundCmd, Client, ClientBuilder};
pub use cmd::{Cmd, cmd};
pub use config::{Addr, Config, Password, Protocol, ReconnectPolicy};
pub use error::{Error, Result, ServerError};
pub use pool::Exclusive;
pub use query::Query;
pub use resp::{Limits, Value};
pub use value::{ArgBuf, FromValue, ToArgs};

/// Everything needed to call commands: `use kermes::prelude::*;`.
pub mod prelude {
    pub use crate::commands::*;
    pub use crate::{Client, Cmd, FromValue, Query, ToArgs, Value, cmd};
}
