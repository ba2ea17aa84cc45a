//! [`Client`]: the handle applications share, and its builder.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use crate::cache::{ClientCacheOptions, ClientCacheStats, LocalCache};
use crate::cluster::Router;
use crate::cmd::Cmd;
use crate::config::{Config, Password, Protocol, ReconnectPolicy};
use crate::conn::{ConnectionEvent, ConnectionEvents, Endpoint, Fixed, Mode, Options, Push, Role};
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
    topology: Topology,
    events: broadcast::Sender<ConnectionEvent>,
    /// Who subscribed to what on the shared connection, across shared subscribers.
    shared_subscriptions: Arc<crate::pubsub::SharedRegistry>,
    /// With sentinels: what they said, and the task following failovers.
    sentinel: Option<(Arc<SentinelState>, AbortOnDrop)>,
    /// The client-side cache, when turned on.
    cache: Option<Arc<LocalCache>>,
    /// Every connection's counters.
    stats: Arc<crate::stats::Registry>,
    /// Set once the server refused Redis functions (FUNCTION LOAD or FCALL unknown or not
    /// permitted): the queue's steps then run as EVAL scripts.
    no_functions: std::sync::atomic::AtomicBool,
    /// State that parts of the crate keep per client (one value per type), such as the
    /// queue's enqueues waiting for their step.
    extensions: std::sync::Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
}

/// What the client talks to. One per client, inside its `Arc`: the size of the variants
/// does not matter, a pointer hop on every command would.
#[allow(clippy::large_enum_variant)]
enum Topology {
    /// One server (with sentinels: the master).
    Single {
        node: Node,
        /// With sentinels and `read_from` replicas: a replica, for read-only commands.
        replicas: Option<Node>,
    },
    /// A cluster, through its router; the task that keeps the slot map fresh.
    Cluster {
        router: Arc<Router>,
        _fresh: AbortOnDrop,
    },
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
    /// response timeout. Commands that change connection state (MULTI, WATCH, SELECT ...)
    /// are refused here: run them on [`exclusive`](Client::exclusive), or use
    /// [`transaction`](Client::transaction) and [`atomic`](crate::atomic). SUBSCRIBE and
    /// its kin are refused too: use [`subscriber`](Client::subscriber).
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
    ///
    /// On a cluster the connection goes to a primary chosen in turn; use
    /// [`exclusive_for_key`](Client::exclusive_for_key) to reach the node of a key.
    pub async fn exclusive(&self) -> Result<Exclusive> {
        self.exclusive_for_slot(None).await
    }

    /// An exclusive connection to the server holding `key` (on a cluster, the primary of its
    /// slot; elsewhere the one server).
    pub async fn exclusive_for_key(&self, key: impl AsRef<[u8]>) -> Result<Exclusive> {
        self.exclusive_for_slot(Some(crate::cluster::key_slot(key.as_ref())))
            .await
    }

    pub(crate) async fn exclusive_for_slot(&self, slot: Option<u16>) -> Result<Exclusive> {
        match &self.inner.topology {
            Topology::Single { node, .. } => node.exclusive().await,
            Topology::Cluster { router, .. } => router.exclusive_for(slot).await,
        }
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
        crate::pubsub::Subscriber::open(
            self.options_for(Mode::Subscriber),
            options,
            self.router().cloned(),
        )
        .await
    }

    /// Pub/sub over the shared connection through RESP3 push frames (no extra connection);
    /// fails with `is_config()` on a RESP2 connection. Buffers up to 4,096 frames.
    /// Not on a cluster (whose nodes change): use [`subscriber`](Client::subscriber) there.
    pub fn shared_subscriber(&self) -> Result<crate::pubsub::SharedSubscriber> {
        let Topology::Single { node, .. } = &self.inner.topology else {
            return Err(crate::Error::config(
                "pub/sub on the shared connection is for one server; on a cluster use \
                 Client::subscriber()",
            ));
        };
        crate::pubsub::SharedSubscriber::open(
            node.all_shared()[0].clone(),
            self.inner.shared_subscriptions.clone(),
        )
    }

    /// A [`Monitor`](crate::pubsub::Monitor) stream of every command the server runs
    /// (`MONITOR`), on a connection of its own that reconnects like a subscriber. On a
    /// cluster it watches one primary, chosen in turn.
    pub async fn monitor(&self) -> Result<crate::pubsub::Monitor> {
        crate::pubsub::Monitor::open(self.options_for(Mode::Monitor)).await
    }

    /// Options for a connection of its own: to the server, or to any primary of a cluster.
    fn options_for(&self, mode: Mode) -> Options {
        match &self.inner.topology {
            Topology::Single { node, .. } => node.options(mode),
            Topology::Cluster { router, .. } => router.options(router.any_primary_endpoint(), mode),
        }
    }

    /// A snapshot of the client's counters: commands sent, completed and in flight, errors
    /// by kind, reconnects, bytes, each pool's size and waiters, and every connection's own.
    /// The counters cost a few plain stores per batch on the connection's task; reading
    /// them takes a lock for the connection list, so poll it (every few seconds), not per
    /// command.
    ///
    /// ```no_run
    /// # async fn demo(client: kermes::Client) {
    /// let stats = client.stats();
    /// println!("{} sent, {} in flight, {:?} errors", stats.commands_sent, stats.in_flight, stats.errors);
    /// # }
    /// ```
    pub fn stats(&self) -> crate::stats::Stats {
        let pools = match &self.inner.topology {
            Topology::Single { node, replicas } => {
                let addr = self.inner.config.addr.to_string();
                let mut pools = vec![node.pool_stats(addr.clone())];
                if let Some(r) = replicas {
                    pools.push(r.pool_stats(format!("{addr} (replica)")));
                }
                pools
            }
            Topology::Cluster { router, .. } => router.pool_stats(),
        };
        self.inner.stats.snapshot(pools)
    }

    /// Where commands count their failures.
    pub(crate) fn registry(&self) -> &crate::stats::Registry {
        &self.inner.stats
    }

    /// The settings this client runs with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The protocol the server agreed to on the shared connections (on a cluster, the one
    /// asked for).
    pub fn protocol(&self) -> Protocol {
        match &self.inner.topology {
            Topology::Single { node, .. } => node.all_shared()[0].protocol(),
            Topology::Cluster { .. } => self.inner.config.protocol,
        }
    }

    /// What the cluster router has done (redirections, retries, refreshes); `None` for a
    /// client that is not on a cluster.
    pub fn cluster_stats(&self) -> Option<crate::cluster::ClusterStats> {
        self.router().map(|r| r.stats())
    }

    /// Whether the server refused Redis functions (see `mq::library`).
    pub(crate) fn no_functions(&self) -> &std::sync::atomic::AtomicBool {
        &self.inner.no_functions
    }

    /// This client's value of type `T`, made on first use.
    pub(crate) fn extension<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut all = self
            .inner
            .extensions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(found) = all.iter().find_map(|e| e.clone().downcast::<T>().ok()) {
            return found;
        }
        let made = Arc::new(T::default());
        all.push(made.clone());
        made
    }

    /// The cluster router, on a cluster.
    pub(crate) fn router(&self) -> Option<&Arc<Router>> {
        match &self.inner.topology {
            Topology::Cluster { router, .. } => Some(router),
            Topology::Single { .. } => None,
        }
    }

    /// Out-of-band frames (RESP3 push: client-side caching invalidations, pub/sub messages)
    /// that arrive on the shared connections from now on, one receiver per connection, with
    /// [`Push::Reconnected`] in order among them when a connection was re-established (and
    /// frames may have been missed). They are never mistaken for replies.
    ///
    /// A receiver keeps up to 4,096 items for a slow reader; past that it gets
    /// `RecvError::Lagged(n)` saying how many it missed, so nothing is lost silently and
    /// memory stays bounded.
    ///
    /// On a cluster there are none: its nodes come and go; use a subscriber.
    pub fn push_frames(&self) -> Vec<broadcast::Receiver<Push>> {
        match &self.inner.topology {
            Topology::Single { node, .. } => {
                node.all_shared().iter().map(|c| c.push_frames()).collect()
            }
            Topology::Cluster { .. } => Vec::new(),
        }
    }

    /// Lifecycle events of the shared connections from now on: disconnected (with why),
    /// reconnected (with a generation number), for logs, metrics or a cache that must be
    /// flushed when invalidations may have been missed.
    pub fn events(&self) -> ConnectionEvents {
        ConnectionEvents::new(self.inner.events.subscribe())
    }

    /// What the client-side cache has done, and holds now; `None` when it is off.
    pub fn client_cache_stats(&self) -> Option<ClientCacheStats> {
        self.inner.cache.as_ref().map(|c| c.stats())
    }

    /// Empties the client-side cache (when it is on): every later read goes to the server
    /// once.
    pub fn flush_client_cache(&self) {
        if let Some(cache) = &self.inner.cache {
            cache.flush();
        }
    }

    /// The client-side cache, when it is on.
    #[inline]
    pub(crate) fn local_cache(&self) -> Option<&Arc<LocalCache>> {
        self.inner.cache.as_ref()
    }

    /// The shared connection of a one-server client (`None` on a cluster).
    pub(crate) fn shared(&self) -> Option<&crate::conn::Connection> {
        match &self.inner.topology {
            Topology::Single { node, .. } => Some(node.shared()),
            Topology::Cluster { .. } => None,
        }
    }

    /// The shared connection for `cmd` on a one-server client: a replica's for read-only
    /// commands when the client reads from replicas (and, with `PreferReplica`, one is
    /// connected), else the master's. `None` on a cluster.
    pub(crate) fn shared_for(&self, cmd: &Cmd) -> Option<&crate::conn::Connection> {
        let Topology::Single { node, replicas } = &self.inner.topology else {
            return None;
        };
        if let Some(replicas) = replicas
            && cmd.is_readonly()
        {
            let conn = replicas.shared();
            if self.inner.config.read_from == ReadFrom::Replica || conn.is_up() {
                return Some(conn);
            }
        }
        Some(node.shared())
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

impl crate::commands::ReplySink for Client {}

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
                if u.sentinel.is_some() || u.cluster.is_some() {
                    c.sentinel = u.sentinel;
                    c.cluster = u.cluster;
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

    /// Command spans ([`trace`](crate::trace)) also record `db.query.text`: the command
    /// and its subcommand with every argument replaced by `?` (`SET ? ?`,
    /// `CLIENT SETNAME ?`), never a key or a value. Default off: the command name only.
    pub fn trace_statements(self, on: bool) -> Self {
        self.with(|c| c.trace_statements = on)
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

    /// Number of shared multiplexed connections, used round-robin. Default: one per worker
    /// thread of the runtime the client connects on, each thread using its own (see
    /// [`Config::shared_connections`]).
    pub fn shared_connections(self, n: usize) -> Self {
        self.with(|c| c.shared_connections = Some(n))
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

    /// A Redis Cluster through these seed nodes (as `redis+cluster://` URLs do).
    pub fn cluster(self, options: crate::cluster::ClusterOptions) -> Self {
        self.with(|c| c.cluster = Some(options))
    }

    /// Where read-only commands go (with sentinels or a cluster). Default
    /// [`ReadFrom::Primary`].
    pub fn read_from(self, read_from: ReadFrom) -> Self {
        self.with(|c| c.read_from = read_from)
    }

    /// A client-side cache of cacheable reads (`GET`, `HGET`, `HGETALL`, `SMEMBERS` ...) in
    /// front of the shared connections, kept fresh by the server's invalidations (RESP3
    /// tracking). See [`cache`](crate::cache). Default off.
    pub fn client_cache(self, options: ClientCacheOptions) -> Self {
        self.with(|c| c.client_cache = Some(options))
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
        let (events, _) = broadcast::channel(EVENTS_BUFFER);
        Client::open(Arc::new(config), events, Default::default()).await
    }
}

impl Client {
    /// A client of its own connections with this one's settings, sharing its lifecycle
    /// events and its statistics: for a task whose commands must not queue behind the
    /// application's on the shared connections (a queue worker's acks and claims).
    pub(crate) async fn sibling(&self) -> Result<Client> {
        let i = &self.inner;
        Client::open(i.config.clone(), i.events.clone(), i.stats.clone()).await
    }

    async fn open(
        config: Arc<Config>,
        events: broadcast::Sender<ConnectionEvent>,
        stats: Arc<crate::stats::Registry>,
    ) -> Result<Client> {
        let tls = config.tls.as_ref().map(|t| t.connector()).transpose()?;
        let cache = config
            .client_cache
            .clone()
            .map(|options| Arc::new(LocalCache::new(options)));
        if config.cluster.is_some() {
            let router = Router::connect(
                config.clone(),
                tls,
                events.clone(),
                cache.clone(),
                stats.clone(),
            )
            .await?;
            let fresh = AbortOnDrop(router.keep_fresh());
            return Ok(Client {
                inner: Arc::new(Inner {
                    stats,
                    config,
                    topology: Topology::Cluster {
                        router,
                        _fresh: fresh,
                    },
                    events,
                    shared_subscriptions: Default::default(),
                    sentinel: None,
                    cache,
                    no_functions: Default::default(),
                    extensions: Default::default(),
                }),
            });
        }
        let state = SentinelState::new(&config, tls.clone());
        let endpoint: Arc<dyn Endpoint> = match &state {
            Some(state) => Arc::new(SentinelEndpoint::new(state.clone(), Role::Primary)),
            None => Arc::new(Fixed(config.addr.clone())),
        };
        let mut template = Options::new(config.clone(), endpoint, tls.clone(), Mode::Shared);
        template.tracking = cache.clone();
        template.stats = Some(stats.clone());
        let node = Node::connect(template, events.clone()).await?;
        let replicas = match (&state, config.read_from) {
            (Some(state), ReadFrom::Replica | ReadFrom::PreferReplica) => {
                let endpoint = Arc::new(SentinelEndpoint::new(state.clone(), Role::Replica));
                let mut template = Options::new(config.clone(), endpoint, tls, Mode::Shared);
                template.tracking = cache.clone();
                template.stats = Some(stats.clone());
                match Node::connect(template, events.clone()).await {
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
                topology: Topology::Single { node, replicas },
                events,
                shared_subscriptions: Default::default(),
                sentinel,
                cache,
                stats,
                no_functions: Default::default(),
                extensions: Default::default(),
            }),
        })
    }
}
