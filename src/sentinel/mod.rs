//! Redis Sentinel: find the master through the sentinels, follow failovers, read from
//! replicas if asked, and talk to a sentinel itself ([`SentinelClient`]).
//!
//! A client made from `redis+sentinel://h1:26379,h2:26379/mymaster` (or
//! [`ClientBuilder::sentinel`](crate::ClientBuilder::sentinel)) asks the sentinels in turn
//! where the master is before every connect, checks with `ROLE` that it really is the master,
//! and keeps a subscription to `+switch-master` on a sentinel (with polling as the backstop):
//! when the master moves, every connection (shared, exclusive, subscribers) leaves the old
//! one and reconnects to the new one. Commands in flight at that moment fail with
//! `is_closed()`; none is resent. A `-READONLY` reply (a demoted master) triggers the same.

mod client;
mod endpoint;
mod watcher;

use std::time::Duration;

pub use client::SentinelClient;
pub(crate) use endpoint::{SentinelEndpoint, SentinelState};
pub(crate) use watcher::watch;

use crate::config::{Addr, Password};

/// Where the sentinels are and what they watch.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SentinelOptions {
    /// The sentinels to ask, in order; more are learned from them (`SENTINEL SENTINELS`).
    pub sentinels: Vec<Addr>,
    /// The master's name in the sentinels' configuration (`sentinel monitor NAME ...`).
    pub master_name: String,
    /// ACL user for the sentinels (the data nodes' credentials are the client's own).
    /// Default none.
    pub username: Option<String>,
    /// Password for the sentinels. Default none.
    pub password: Option<Password>,
    /// How often the sentinels are asked where the master is, in case a `+switch-master`
    /// event was missed. Default 5 s.
    pub poll_interval: Duration,
}

impl SentinelOptions {
    /// Sentinels at `sentinels` (each `host:port`, port 26379 when left out) watching
    /// `master_name`.
    pub fn new<I, S>(sentinels: I, master_name: impl Into<String>) -> crate::Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let sentinels = sentinels
            .into_iter()
            .map(|s| crate::config::parse_host_port(s.as_ref(), 26379))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| crate::Error::config(format!("sentinel address: {why}")))?;
        Ok(SentinelOptions {
            sentinels,
            master_name: master_name.into(),
            username: None,
            password: None,
            poll_interval: Duration::from_secs(5),
        })
    }

    /// Sets the sentinels' [`username`](Self::username) and [`password`](Self::password).
    pub fn auth(mut self, username: Option<&str>, password: &str) -> Self {
        self.username = username.map(str::to_string);
        self.password = Some(Password::new(password));
        self
    }

    /// Sets [`poll_interval`](Self::poll_interval).
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }
}

/// Which servers read-only commands go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ReadFrom {
    /// The master, like every other command. The default.
    #[default]
    Primary,
    /// A replica (found through the sentinels): reads may lag behind writes. Fails when no
    /// replica can be reached.
    Replica,
    /// A replica when one is reachable, else the master.
    PreferReplica,
}
