//! [`Client`]: the handle applications share, and its builder.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::cmd::Cmd;
use crate::config::{Config, Password, Protocol, ReconnectPolicy};
use crate::conn::{ConnectionEvent, ConnectionEvents, Endpoint, Fixed, Mode, Push, Role};
use crate::error::Result;
use crate::node::Node;
use crate::pool::Exclusive;
use crate::query::Query;
use crate::resp::Limits;
use crate::sentinel::{ReadFrom, SentinelClient, SentinelEndpoint, SentinelOptions, SentinelState};
use crate::task::AbortOnDrop;
use crate::tls::TlsOptions;
use crate::value::{FromValue, ToArgs};

/// A Redis client: shared multiplexed connections for ordinary commands, and a pool of
/// exclusive connections for what must not share one.
///
/// `Client` is cheap to clone (an `Arc` inside) and meant to be shared by every task of a
/// service; do not wrap it in another `Arc`. Commands issued concurrently from many tasks are
/// written to the socket together, in one write per batch.
///
/// ```no_run
/// # async fn demo() -> kermes::Result<()> {
/// let client = kermes::Client::connect("redis://127.0.0.1:6379").await?;
/// client.cmd("SET").arg("greeting").arg("hello").exec().await?;
/// let v: String = client.cmd("GET").arg("greeting").query().await?;
/// assert_eq!(v, "hello");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<Config>,
    /// The server (with sentinels: the master).
    node: Node,
    /// With sentinels and `read_from` replicas: a replica, for read-only commands.
    replicas: Option<Node>,
    events: broadcast::Sender<ConnectionEvent>,
    /// Who subscribed to what on the shared connection, across shared subscribers.
    shared_subscriptions: Arc<crate::pubsub::SharedRegistry>,
    /// With sentinels: what they said, and the task following failovers.
    sentinel: Option<(Arc<SentinelState>, AbortOnDrop)>,
}

/// Lifecycle events kept for a slow reader of [`Client::events`].
const EVENTS_BUFFER: usize = 256;

impl Client {
    /// Connects with the settings of a URL (see [`Config::from_url`]) and defaults for the
    /// rest.
    pub async fn connect(url: &str) -> Result<Client> {
        Client::builder().url(url).connect().await
    }

    /// A builder for every setting.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: Ok(Config::default()),
        }
    }

    /// Starts a command bound to this client; add arguments, then `query` or `exec` it.
    pub fn cmd(&self, name: &str) -> BoundCmd<'_> {
        BoundCmd {
            client: self,
            cmd: Cmd::new(name),
        }
    }

    /// Sends a command and converts its reply.
    ///
    /// Ordinary commands share a multiplexed connection and fall under the response timeout.
    /// Blocking commands (BLPOP, XREAD, WAIT ...) run on an exclusive connection with no
    /// response timeout. Commands that change connection state (MULTI, WATCH, SELECT,
    /// SUBSCRIBE ...) are refused here: run them on [`exclusive`](Client::exclusive).
    pub fn query<T: FromValue>(&self, cmd: Cmd) -> Query<'_, T> {
        Query::new(self, cmd)
    }

    /// An explicit pipeline: queue commands, then send them in one write.
    pub fn pipeline(&self) -> crate::Pipeline {
        crate::Pipeline::new(self, false)
    }

    /// A MULTI/EXEC transaction: queued commands run atomically on an exclusive connection.
    /// See also [`atomic`](crate::atomic) for WATCH-based read-modify-write.
    pub fn transaction(&self) -> crate::Pipeline {
        crate::Pipeline::new(self, true)
    }

    /// Checks a connection out of the pool for this caller alone (WATCH/MULTI/EXEC, SELECT,
    /// a run of blocking commands). It returns to the pool when dropped, with whatever its
    /// holder changed undone; if a command on it was abandoned, it is closed instead.
    pub async fn exclusive(&self) -> Result<Exclusive> {
        self.inner.node.exclusive().await
    }

    /// A pub/sub [`Subscriber`](crate::pubsub::Subscriber) on a connection of its own, with
    /// default options.
    pub async fn subscriber(&self) -> Result<crate::pubsub::Subscriber> {
        self.subscriber_with(crate::pubsub::SubscriberOptions::default())
            .await
    }

    /// A pub/sub subscriber with options (buffer size, keepalive).
    pub async fn subscriber_with(
        &self,
        options: crate::pubsub::SubscriberOptions,
    ) -> Result<crate::pubsub::Subscriber> {
        crate::pubsub::Subscriber::open(self.inner.node.options(Mode::Subscriber), options).await
    }

    /// Pub/sub over the shared connection through RESP3 push frames (no extra connection);
    /// fails with `is_config()` on a RESP2 connection. Buffers up to 4,096 frames.
    pub fn shared_subscriber(&self) -> Result<crate::pubsub::SharedSubscriber> {
        crate::pubsub::SharedSubscriber::open(
            self.inner.node.all_shared()[0].clone(),
            self.inner.shared_subscriptions.clone(),
        )
    }

    /// A [`Monitor`](crate::pubsub::Monitor) stream of every command the server runs
    /// (`MONITOR`), on a connection of its own that reconnects like a subscriber.
    pub async fn monitor(&self) -> Result<crate::pubsub::Monitor> {
        crate::pubsub::Monitor::open(self.inner.node.options(Mode::Monitor)).await
    }

    /// The settings this client runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The protocol the server agreed to on the shared connections.
    pub fn protocol(&self) -> Protocol {
        self.inner.node.all_shared()[0].protocol()
    }

    /// Out-of-band frames (RESP3 push: client-side caching invalidations, pub/sub messages)
    /// that arrive on the shared connections from now on, one receiver per connection, with
    /// [`Push::Reconnected`] in order among them when a connection was re-established (and
    /// frames may have been missed). They are never mistaken for replies.
    ///
    /// A receiver keeps up to 4,096 items for a slow reader; past that it gets
    /// `RecvError::Lagged(n)` saying how many it missed, so nothing is lost silently and
    /// memory stays bounded.
    pub fn push_frames(&self) -> Vec<broadcast::Receiver<Push>> {
        self.inner
            .node
            .all_shared()
            .iter()
            .map(|c| c.push_frames())
            .collect()
    }

    /// Lifecycle events of the shared connections from now on: disconnected (with why),
    /// reconnected (with a generation number), for logs, metrics or a cache that must be
    /// flushed when invalidations may have been missed.
    pub fn events(&self) -> ConnectionEvents {
        ConnectionEvents::new(self.inner.events.subscribe())
    }

    pub(crate) fn shared(&self) -> &crate::conn::Connection {
        self.inner.node.shared()
    }

    /// The shared connection for `cmd`: a replica's for read-only commands when the client
    /// reads from replicas (and, with `PreferReplica`, one is connected), else the master's.
    pub(crate) fn shared_for(&self, cmd: &Cmd) -> &crate::conn::Connection {
        if let Some(replicas) = &self.inner.replicas
            && cmd.is_readonly()
        {
            let conn = replicas.shared();
            if self.inner.config.read_from == ReadFrom::Replica || conn.is_up() {
                return conn;
            }
        }
        self.inner.node.shared()
    }

    /// With sentinels: a connection to one of them (the next that answers), for the
    /// SENTINEL commands. Fails with `is_config()` for a client without sentinels.
    pub async fn sentinel(&self) -> Result<SentinelClient> {
        let Some((state, _)) = &self.inner.sentinel else {
            return Err(crate::Error::config(
                "this client was not made with sentinels (redis+sentinel://)",
            ));
        };
        state
            .connect_any(|| SentinelClient::open(state.sentinel_options(None, Mode::Shared)))
            .await
    }
}

impl crate::commands::CommandSink for Client {
    type Reply<'a, T: FromValue + 'a> = Query<'a, T>;

    fn send<'a, T: FromValue + 'a>(&'a self, cmd: Cmd) -> Query<'a, T> {
        self.query(cmd)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .finish()
    }
}

/// A command bound to a [`Client`]: `client.cmd("GET").arg("k").query::<String>().await`.
#[must_use = "a command does nothing until it is queried"]
pub struct BoundCmd<'a> {
    client: &'a Client,
    cmd: Cmd,
}

impl<'a> BoundCmd<'a> {
    /// Appends arguments (see [`ToArgs`]).
    pub fn arg(mut self, arg: impl ToArgs) -> Self {
        self.cmd.push_arg(arg);
        self
    }

    /// Overrides the response timeout for this command.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.cmd = self.cmd.timeout(timeout);
        self
    }

    /// Sends the command and converts the reply to `T`.
    pub fn query<T: FromValue>(self) -> Query<'a, T> {
        self.client.query(self.cmd)
    }

    /// Sends the command and ignores a successful reply.
    pub fn exec(self) -> Query<'a, ()> {
        self.client.query(self.cmd)
    }
}

/// Builds a [`Client`]. Setters take and return the builder; an invalid value is reported by
/// [`connect`](ClientBuilder::connect).
#[must_use = "a builder does nothing until connect() is called"]
pub struct ClientBuilder {
    config: Result<Config>,
}

impl ClientBuilder {
    fn with(mut self, f: impl FnOnce(&mut Config)) -> Self {
        if let Ok(c) = &mut self.config {
            f(c);
        }
        self
    }

    /// Address, credentials, database, protocol and client name from a URL (see
    /// [`Config::from_url`]); other settings keep their values. Default `redis://127.0.0.1:6379`.
    pub fn url(mut self, url: &str) -> Self {
        match (Config::from_url(url), &mut self.config) {
            (Ok(u), Ok(c)) => {
                // rediss:// turns TLS on; TLS options already set are kept.
                if u.tls.is_some() && c.tls.is_none() {
                    c.tls = u.tls;
                }
                c.addr = u.addr;
                if u.sentinel.is_some() {
                    c.sentinel = u.sentinel;
                    c.read_from = u.read_from;
                }
                c.username = u.username;
                c.password = u.password;
                c.db = u.db;
                c.protocol = u.protocol;
                c.client_name = u.client_name;
            }
            (Err(e), Ok(_)) => self.config = Err(e),
            (_, Err(_)) => {}
        }
        self
    }

    /// Starts from a complete [`Config`].
    pub fn config(mut self, config: Config) -> Self {
        if self.config.is_ok() {
            self.config = Ok(config);
        }
        self
    }

    /// ACL user name. Default none (the `default` user).
    pub fn username(self, user: impl Into<String>) -> Self {
        let user = user.into();
        self.with(|c| c.username = Some(user))
    }

    /// Password for AUTH. Default none.
    pub fn password(self, password: impl Into<String>) -> Self {
        let password = Password::new(password);
        self.with(|c| c.password = Some(password))
    }

    /// Database selected on every connection. Default 0.
    pub fn db(self, db: u32) -> Self {
        self.with(|c| c.db = db)
    }

    /// `CLIENT SETNAME` on every connection. Default none.
    pub fn client_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with(|c| c.client_name = Some(name))
    }

    /// RESP version to negotiate. Default RESP3 (falls back to RESP2 on old servers).
    pub fn protocol(self, protocol: Protocol) -> Self {
        self.with(|c| c.protocol = protocol)
    }

    /// Time allowed to connect and handshake. Default 4 s.
    pub fn connect_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.connect_timeout = timeout)
    }

    /// Time allowed for a reply to a non-blocking command. Default none.
    pub fn response_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.response_timeout = Some(timeout))
    }

    /// How dead shared connections are re-established. Default: on, 50 ms doubling to 5 s,
    /// with jitter.
    pub fn reconnect(self, policy: ReconnectPolicy) -> Self {
        self.with(|c| c.reconnect = policy)
    }

    /// Number of shared multiplexed connections. Default 1.
    pub fn shared_connections(self, n: usize) -> Self {
        self.with(|c| c.shared_connections = n)
    }

    /// Most exclusive connections open at once. Default 16.
    pub fn pool_max_size(self, n: usize) -> Self {
        self.with(|c| c.pool_max_size = n)
    }

    /// Time to wait for a free exclusive connection. Default 10 s.
    pub fn pool_wait_timeout(self, timeout: Duration) -> Self {
        self.with(|c| c.pool_wait_timeout = timeout)
    }

    /// Most commands in flight on one connection before callers wait. Default 100,000.
    pub fn max_in_flight(self, n: usize) -> Self {
        self.with(|c| c.max_in_flight = n)
    }

    /// Decoder limits on replies. Default [`Limits::default`].
    pub fn limits(self, limits: Limits) -> Self {
        self.with(|c| c.limits = limits)
    }

    /// TLS settings for every connection (turns TLS on, as `rediss://` does).
    pub fn tls(self, options: TlsOptions) -> Self {
        self.with(|c| c.tls = Some(options))
    }

    /// TLS: trusts the certificate authorities of a PEM file as well as the roots (turns TLS
    /// on). See [`TlsOptions::ca_file`].
    pub fn tls_ca_file(self, path: impl AsRef<std::path::Path>) -> Self {
        self.with_tls(|tls| tls.ca_file(path))
    }

    /// TLS: presents a client certificate chain and key from PEM files (turns TLS on). See
    /// [`TlsOptions::client_cert_files`].
    pub fn tls_client_cert_files(
        self,
        chain: impl AsRef<std::path::Path>,
        key: impl AsRef<std::path::Path>,
    ) -> Self {
        self.with_tls(|tls| tls.client_cert_files(chain, key))
    }

    /// TLS: the name the server's certificate must carry, sent as SNI (turns TLS on).
    /// Default: the host connected to.
    pub fn tls_server_name(self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.with_tls(|tls| Ok(tls.server_name(name)))
    }

    /// Changes the TLS options (turning TLS on); an error is kept for `connect`.
    fn with_tls(mut self, f: impl FnOnce(TlsOptions) -> Result<TlsOptions>) -> Self {
        if let Ok(c) = &mut self.config {
            match f(c.tls.clone().unwrap_or_default()) {
                Ok(tls) => c.tls = Some(tls),
                Err(e) => self.config = Err(e),
            }
        }
        self
    }

    /// Finds the master through sentinels (as `redis+sentinel://` URLs do) and follows its
    /// failovers. The client's own credentials, database and TLS apply to the data nodes.
    pub fn sentinel(self, options: SentinelOptions) -> Self {
        self.with(|c| c.sentinel = Some(options))
    }

    /// Where read-only commands go (with sentinels). Default [`ReadFrom::Primary`].
    pub fn read_from(self, read_from: ReadFrom) -> Self {
        self.with(|c| c.read_from = read_from)
    }

    /// Health checks: TCP keepalive probes after this long idle (every third of it after
    /// that; three unanswered probes end the connection). `None` turns them off. Default
    /// 30 s.
    pub fn tcp_keepalive(self, idle: impl Into<Option<Duration>>) -> Self {
        let idle = idle.into();
        self.with(|c| c.tcp_keepalive = idle)
    }

    /// Health checks: PING a connection that has had nothing in flight and no traffic for
    /// this long. `None` turns it off. Default 30 s.
    pub fn idle_ping(self, after: impl Into<Option<Duration>>) -> Self {
        let after = after.into();
        self.with(|c| c.idle_ping = after)
    }

    /// Health checks: the longest the oldest command in flight on a connection may wait
    /// while nothing at all is read; past it the connection is declared dead (its commands
    /// fail with `is_timeout()`) and reconnects. Blocking commands are exempt. `None` turns
    /// it off. Default 30 s.
    pub fn unresponsive_timeout(self, bound: impl Into<Option<Duration>>) -> Self {
        let bound = bound.into();
        self.with(|c| c.unresponsive_timeout = bound)
    }

    /// Validates the settings, opens the shared connections (handshake included) and
    /// returns the client. Must run inside a Tokio runtime.
    pub async fn connect(self) -> Result<Client> {
        let config = self.config?;
        config.validate()?;
        let config = Arc::new(config);
        let tls = config.tls.as_ref().map(|t| t.connector()).transpose()?;
        let (events, _) = broadcast::channel(EVENTS_BUFFER);
        let state = SentinelState::new(&config, tls.clone());
        let endpoint: Arc<dyn Endpoint> = match &state {
            Some(state) => Arc::new(SentinelEndpoint::new(state.clone(), Role::Primary)),
            None => Arc::new(Fixed(config.addr.clone())),
        };
        let node = Node::connect(config.clone(), endpoint, tls.clone(), events.clone()).await?;
        let replicas = match (&state, config.read_from) {
            (Some(state), ReadFrom::Replica | ReadFrom::PreferReplica) => {
                let endpoint = Arc::new(SentinelEndpoint::new(state.clone(), Role::Replica));
                match Node::connect(config.clone(), endpoint, tls, events.clone()).await {
                    Ok(node) => Some(node),
                    Err(e) if config.read_from == ReadFrom::PreferReplica => {
                        tracing::warn!(error = %e, "no replica to read from; reading from the master");
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        let sentinel = state.map(|s| {
            let watcher = AbortOnDrop(crate::sentinel::watch(s.clone()));
            (s, watcher)
        });
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                node,
                replicas,
                events,
                shared_subscriptions: Default::default(),
                sentinel,
            }),
        })
    }
}
