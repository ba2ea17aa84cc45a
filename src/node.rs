//! One server as the client sees it: shared multiplexed connections for ordinary commands
//! and a pool of exclusive ones, all reaching the server through one endpoint.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::conn::{Connection, ConnectionEvent, Mode, Options};
use crate::error::{Error, Result};
use crate::pool::{Exclusive, Manager, Pool, pool_error};

pub(crate) struct Node {
    /// What every connection to this server starts from; the mode differs.
    template: Options,
    shared: Box<[Connection]>,
    next: AtomicUsize,
    pool: Pool,
}

impl Node {
    /// Opens the shared connections (handshake included); exclusive ones open on demand.
    /// `template` says where and how (config, endpoint, TLS, READONLY); lifecycle events of
    /// the shared connections go to `events`.
    pub(crate) async fn connect(
        template: Options,
        events: broadcast::Sender<ConnectionEvent>,
    ) -> Result<Node> {
        let config = template.config.clone();
        let mut opts = template.with_mode(Mode::Shared);
        opts.events = Some(events);
        let mut shared = Vec::with_capacity(config.shared_connections);
        for _ in 0..config.shared_connections {
            shared.push(Connection::open(opts.clone()).await?);
        }
        let manager = Manager::new(template.with_mode(Mode::Exclusive));
        let pool = Pool::builder(manager)
            .max_size(config.pool_max_size)
            .wait_timeout(Some(config.pool_wait_timeout))
            .create_timeout(Some(config.connect_timeout + Duration::from_millis(100)))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::config(format!("connection pool: {e}")))?;
        Ok(Node {
            template,
            shared: shared.into_boxed_slice(),
            next: AtomicUsize::new(0),
            pool,
        })
    }

    /// A shared connection, round-robin when there are several.
    pub(crate) fn shared(&self) -> &Connection {
        let shared = &self.shared;
        if shared.len() == 1 {
            return &shared[0];
        }
        &shared[self.next.fetch_add(1, Ordering::Relaxed) % shared.len()]
    }

    /// Every shared connection.
    pub(crate) fn all_shared(&self) -> &[Connection] {
        &self.shared
    }

    /// An exclusive connection from the pool, for this caller alone.
    pub(crate) async fn exclusive(&self) -> Result<Exclusive> {
        let obj = self.pool.get().await.map_err(pool_error)?;
        Ok(Exclusive::new(obj, self.template.config.response_timeout))
    }

    /// Options for a connection of its own (subscriber, monitor) to this server.
    pub(crate) fn options(&self, mode: Mode) -> Options {
        self.template.with_mode(mode)
    }
}
