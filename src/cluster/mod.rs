//! Redis Cluster: hash slots, where keys are among a command's arguments, and the slot map
//! the client routes by.

mod exec;
mod keys;
mod map;
mod plan;
mod router;
mod slot;

use std::time::Duration;

pub(crate) use exec::{PipePlan, redirected_to};
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
}
