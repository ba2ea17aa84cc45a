//! Redis Cluster: hash slots, where keys are among a command's arguments, and the slot map
//! the client routes by.
//!
//! A cluster is one more way to connect: `Client::connect("redis+cluster://h1:7000,h2:7001")`
//! (or [`ClientBuilder::cluster`](crate::ClientBuilder::cluster) with [`ClusterOptions`])
//! gives the same [`Client`](crate::Client), and everything built on it (generated commands,
//! pipelines, transactions, scripts, helpers, pub/sub, the queue, locks) runs unchanged:
//!
//! - a command goes to the primary of its keys' slot (hash tags `{...}` respected); keyless
//!   ones to a primary in turn, or to every primary or node where the spec's tips say so
//!   (DBSIZE, KEYS, FLUSHALL, SCRIPT LOAD ...), with the replies combined as they say;
//! - MGET, MSET, DEL, UNLINK, EXISTS and TOUCH across slots are split per slot and put back
//!   in the caller's order; other commands across slots fail with `CROSSSLOT` before
//!   anything is sent; a raw SCAN is refused (use
//!   [`helpers::scan_stream`](crate::helpers::scan_stream), which walks every primary);
//! - `MOVED` and `ASK` are followed, `TRYAGAIN` and `CLUSTERDOWN` retried with backoff; a
//!   command is sent again only when it provably did not run;
//! - pipelines are split per node and sent concurrently; transactions stay in one slot;
//! - shard channels (`SSUBSCRIBE`) are subscribed on the primary of their slot and follow it
//!   when it moves or fails over; the queue's and the locks' wake-ups use them.

mod exec;
mod keys;
mod map;
mod plan;
mod router;
mod slot;

use std::time::Duration;

pub(crate) use exec::{PipePlan, redirected_to};
pub(crate) use keys::key_positions;
pub use router::ClusterStats;
pub(crate) use router::Router;
pub use slot::{SLOTS, key_slot};

use crate::config::Addr;

/// How to reach a cluster and keep its slot map fresh.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClusterOptions {
    /// Nodes to learn the cluster from (any node will do; several in case some are down).
    /// A DNS name that resolves to nodes (ElastiCache's configuration endpoint) is one seed.
    pub seeds: Vec<Addr>,
    /// How often the slot map is read again even when nothing suggests it changed.
    /// Default 30 s.
    pub refresh_interval: Duration,
    /// How many nodes are asked for the slot map; the map most of them agree on is used.
    /// Default 3.
    pub map_quorum: usize,
}

impl ClusterOptions {
    /// A cluster reached through `seeds` (each `host:port`, port 6379 when left out).
    pub fn new<I, S>(seeds: I) -> crate::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let seeds = seeds
            .into_iter()
            .map(|s| crate::config::parse_host_port(s.as_ref(), 6379))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| crate::Error::config(format!("cluster seed: {why}")))?;
        Ok(Self::with_seeds(seeds))
    }

    pub(crate) fn with_seeds(seeds: Vec<Addr>) -> Self {
        ClusterOptions {
            seeds,
            refresh_interval: Duration::from_secs(30),
            map_quorum: 3,
        }
    }

    /// Sets [`refresh_interval`](Self::refresh_interval).
    pub fn refresh_interval(mut self, every: Duration) -> Self {
        self.refresh_interval = every;
        self
    }

    /// Sets [`map_quorum`](Self::map_quorum) (at least 1).
    pub fn map_quorum(mut self, nodes: usize) -> Self {
        self.map_quorum = nodes.max(1);
        self
    }
}
