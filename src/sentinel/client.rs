//! [`SentinelClient`]: a connection to one sentinel, for the SENTINEL commands.

use std::sync::Arc;

use crate::cmd::Cmd;
use crate::commands::CommandSink;
use crate::config::Config;
use crate::conn::{Connection, Fixed, Mode, Options, Payload};
use crate::error::Result;
use crate::query::BoxedQuery;
use crate::value::FromValue;

/// A connection to one sentinel. The generated [`SentinelCommands`] are its methods
/// (`sentinel_masters`, `sentinel_replicas`, `sentinel_failover` ...), and
/// [`query`](SentinelClient::query) sends anything else.
///
/// ```no_run
/// # async fn demo() -> kermes::Result<()> {
/// use kermes::prelude::*;
/// use kermes::sentinel::SentinelClient;
///
/// let sentinel = SentinelClient::connect("redis://127.0.0.1:26379").await?;
/// let id = sentinel.sentinel_myid().await?;
/// sentinel.sentinel_failover("mymaster").await?;
/// # Ok(()) }
/// ```
///
/// [`SentinelCommands`]: crate::commands::SentinelCommands
pub struct SentinelClient {
    conn: Connection,
}

impl SentinelClient {
    /// Connects to the sentinel at `url` (`redis://[[user]:password@]host:port`, or
    /// `rediss://`); it reconnects like any connection.
    pub async fn connect(url: &str) -> Result<SentinelClient> {
        let config = Config::from_url(url)?;
        config.validate()?;
        let tls = config.tls.as_ref().map(|t| t.connector()).transpose()?;
        let endpoint = Arc::new(Fixed(config.addr.clone()));
        Self::open(Options::new(Arc::new(config), endpoint, tls, Mode::Shared)).await
    }

    pub(crate) async fn open(opts: Options) -> Result<SentinelClient> {
        Ok(SentinelClient {
            conn: Connection::open(opts).await?,
        })
    }

    /// Sends a command and converts its reply.
    pub async fn query<T: FromValue>(&self, cmd: Cmd) -> Result<T> {
        self.send::<T>(cmd).await
    }
}

impl CommandSink for SentinelClient {
    type Reply<'a, T: FromValue + 'a> = BoxedQuery<'a, T>;

    fn send<'a, T: FromValue + 'a>(&'a self, mut cmd: Cmd) -> Self::Reply<'a, T> {
        BoxedQuery::new(Box::pin(async move {
            if let Some(e) = cmd.args.take_error() {
                return Err(e);
            }
            self.conn.request(Payload::Args(cmd.args), 1).await
        }))
    }
}

impl crate::commands::ReplySink for SentinelClient {}

impl std::fmt::Debug for SentinelClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentinelClient")
    }
}
