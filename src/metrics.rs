//! The `metrics` feature: a client's [`Stats`] reported to whatever `metrics` recorder the
//! application installed (Prometheus through `metrics-exporter-prometheus`, StatsD, ...).
//!
//! Nothing is added to the command path: a [`Reporter`] reads [`Client::stats`] every
//! interval and sets the metrics from the snapshot, counters with their absolute totals.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `kermes_commands_sent_total` | counter | `client` |
//! | `kermes_commands_completed_total` | counter | `client` |
//! | `kermes_commands_in_flight` | gauge | `client` |
//! | `kermes_commands_queued` | gauge | `client` |
//! | `kermes_server_errors_total` | counter | `client` |
//! | `kermes_errors_total` | counter | `client`, `kind` |
//! | `kermes_reconnects_total` | counter | `client` |
//! | `kermes_bytes_written_total`, `kermes_bytes_read_total` | counter | `client` |
//! | `kermes_connections` | gauge | `client`, `kind` (shared, exclusive...), `state` (up, down) |
//! | `kermes_pool_connections` | gauge | `client`, `server`, `state` (idle, in_use) |
//! | `kermes_pool_waiting`, `kermes_pool_max_size` | gauge | `client`, `server` |
//! | `kermes_pool_timeouts_total` | counter | `client` |
//!
//! ```no_run
//! # async fn demo(client: kermes::Client) {
//! use std::time::Duration;
//! // With a recorder installed (metrics_exporter_prometheus::PrometheusBuilder::install):
//! let _reporter = kermes::metrics::report(&client, "cache", Duration::from_secs(5));
//! // ... the metrics follow the client until `_reporter` is dropped.
//! # }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};

use crate::client::Client;
use crate::stats::Stats;
use crate::task::AbortOnDrop;

/// Reports a client's stats every interval until dropped: see [`report`].
#[must_use = "the reporting stops when the reporter is dropped"]
pub struct Reporter {
    _task: AbortOnDrop,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reporter")
    }
}

/// Sets the metrics from `client`'s stats now and then every `every`, with the label
/// `client = name`, until the returned [`Reporter`] is dropped (it keeps a handle to the
/// client meanwhile). Must run inside a Tokio runtime.
pub fn report(client: &Client, name: impl Into<String>, every: Duration) -> Reporter {
    let client = client.clone();
    let name = name.into();
    let every = every.max(Duration::from_millis(10));
    Reporter {
        _task: AbortOnDrop(tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                client.stats().record(&name);
            }
        })),
    }
}

/// Describes every metric (on each report: the recorder in force may have changed, and a
/// description costs nothing next to an interval).
fn describe() {
    {
        describe_counter!("kermes_commands_sent_total", "Commands written to a socket");
        describe_counter!(
            "kermes_commands_completed_total",
            "Commands whose reply was read, or that failed with their connection"
        );
        describe_gauge!(
            "kermes_commands_in_flight",
            "Commands written and waiting for their reply"
        );
        describe_gauge!(
            "kermes_commands_queued",
            "Commands handed to a connection, not written yet"
        );
        describe_counter!(
            "kermes_server_errors_total",
            "Error replies from the server"
        );
        describe_counter!(
            "kermes_errors_total",
            "Commands that failed as their caller saw it, by kind"
        );
        describe_counter!("kermes_reconnects_total", "Connections re-established");
        describe_counter!(
            "kermes_bytes_written_total",
            Unit::Bytes,
            "Bytes written to the sockets"
        );
        describe_counter!(
            "kermes_bytes_read_total",
            Unit::Bytes,
            "Bytes read from the sockets"
        );
        describe_gauge!("kermes_connections", "Open connections, by kind and state");
        describe_gauge!(
            "kermes_pool_connections",
            "Exclusive connections of a server's pool, idle or in use"
        );
        describe_gauge!(
            "kermes_pool_waiting",
            "Callers waiting for an exclusive connection"
        );
        describe_gauge!(
            "kermes_pool_max_size",
            "The most exclusive connections a pool opens"
        );
        describe_counter!(
            "kermes_pool_timeouts_total",
            "Times no exclusive connection came free in time"
        );
    }
}

impl Stats {
    /// Sets the metrics from this snapshot, labelled `client = name` (what a [`Reporter`]
    /// does every interval; call it yourself to report on your own schedule).
    pub fn record(&self, name: &str) {
        describe();
        let c = name.to_owned();
        let total =
            |metric: &'static str, n: u64| counter!(metric, "client" => c.clone()).absolute(n);
        total("kermes_commands_sent_total", self.commands_sent);
        total("kermes_commands_completed_total", self.commands_completed);
        total("kermes_server_errors_total", self.server_errors);
        total("kermes_reconnects_total", self.reconnects);
        total("kermes_bytes_written_total", self.bytes_written);
        total("kermes_bytes_read_total", self.bytes_read);
        total("kermes_pool_timeouts_total", self.pool_timeouts);
        gauge!("kermes_commands_in_flight", "client" => c.clone()).set(self.in_flight as f64);
        gauge!("kermes_commands_queued", "client" => c.clone()).set(self.queued as f64);
        for (kind, n) in &self.errors {
            counter!("kermes_errors_total", "client" => c.clone(), "kind" => *kind).absolute(*n);
        }
        let mut connections: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
        for kind in ["shared", "exclusive", "subscriber", "monitor"] {
            for state in ["up", "down"] {
                connections.insert((kind, state), 0);
            }
        }
        for conn in &self.connections {
            let state = if conn.up { "up" } else { "down" };
            *connections.entry((conn.kind, state)).or_default() += 1;
        }
        for ((kind, state), n) in connections {
            gauge!("kermes_connections", "client" => c.clone(), "kind" => kind, "state" => state)
                .set(n as f64);
        }
        for pool in &self.pools {
            let server = pool.addr.clone();
            for (state, n) in [("idle", pool.idle), ("in_use", pool.in_use)] {
                gauge!("kermes_pool_connections", "client" => c.clone(), "server" => server.clone(), "state" => state)
                    .set(n as f64);
            }
            gauge!("kermes_pool_waiting", "client" => c.clone(), "server" => server.clone())
                .set(pool.waiting as f64);
            gauge!("kermes_pool_max_size", "client" => c.clone(), "server" => server)
                .set(pool.max_size as f64);
        }
    }
}
