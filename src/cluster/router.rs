//! The cluster router: the slot map, one [`Node`] per server (opened when first needed),
//! and the refreshes that keep the map true.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{OnceCell, broadcast, watch};
use tokio::time::Instant;

use super::ClusterOptions;
use super::map::{SlotMap, agree, parse_shards, parse_slots};
use crate::cmd::cmd;
use crate::config::{Addr, Config};
use crate::conn::{Connection, ConnectionEvent, Endpoint, Fixed, Mode, Options, Payload};
use crate::error::{Error, Kind, Result};
use crate::node::Node;
use crate::resp::Value;
use crate::sentinel::ReadFrom;
use crate::tls::TlsConnector;

/// Refreshes closer together than this are served by the one that just ran.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);

/// What a cluster client has seen, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterStats {
    /// `MOVED` redirections followed.
    pub moved: u64,
    /// `ASK` redirections followed.
    pub asked: u64,
    /// Commands tried again after `TRYAGAIN`, `CLUSTERDOWN`, or a node that could not be
    /// reached (the command had not been sent).
    pub retried: u64,
    /// Slot map refreshes.
    pub refreshes: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) moved: AtomicU64,
    pub(crate) asked: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) refreshes: AtomicU64,
}

/// A node's connections, opened on first use.
pub(crate) struct LazyNode {
    pub(crate) addr: Addr,
    /// A replica, reached with READONLY.
    pub(crate) replica: bool,
    /// What its connections start from (READONLY for a replica).
    template: Options,
    events: broadcast::Sender<ConnectionEvent>,
    node: OnceCell<Node>,
}

impl LazyNode {
    /// The node's connections, opened on first use. A node that cannot be reached fails
    /// with an error that proves nothing was sent.
    pub(crate) async fn connected(&self) -> Result<&Node> {
        match self.node.get() {
            Some(node) => Ok(node),
            // Connecting is rare and its future large: boxed, so a command in flight to a
            // connected node does not carry it.
            None => {
                Box::pin(
                    self.node.get_or_try_init(|| {
                        Node::connect(self.template.clone(), self.events.clone())
                    }),
                )
                .await
            }
        }
    }

    /// The node's connections, if they are open.
    fn if_connected(&self) -> Option<&Node> {
        self.node.get()
    }
}

/// The slot map in force, with the node of each shard's primary and replicas (in the map's
/// shard order): routing a command is a lookup and a reference count, nothing more.
pub(crate) struct Routes {
    pub(crate) map: SlotMap,
    primaries: Vec<Arc<LazyNode>>,
    replicas: Vec<Vec<Arc<LazyNode>>>,
}

pub(crate) struct Router {
    pub(crate) config: Arc<Config>,
    options: ClusterOptions,
    tls: Option<TlsConnector>,
    events: broadcast::Sender<ConnectionEvent>,
    routes: RwLock<Arc<Routes>>,
    /// Bumped whenever the map changes, so connections waiting to reconnect resolve again.
    map_version: watch::Sender<u64>,
    /// Every node known, by address and kind; a node the map stops naming is dropped.
    nodes: Mutex<HashMap<(Addr, bool), Arc<LazyNode>>>,
    /// One refresh at a time; when the last one finished.
    refresh: tokio::sync::Mutex<Option<Instant>>,
    /// A background refresh is on its way.
    refresh_scheduled: AtomicBool,
    next_primary: AtomicUsize,
    pub(crate) counters: Counters,
    /// The client-side cache, kept fresh by every node's shared connections.
    cache: Option<Arc<crate::cache::LocalCache>>,
    me: Weak<Router>,
    /// Every connection's counters, for `Client::stats`.
    pub(crate) stats: Arc<crate::stats::Registry>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Router {
    /// Reads the slot map from the seeds; fails when none answers with one.
    pub(crate) async fn connect(
        config: Arc<Config>,
        tls: Option<TlsConnector>,
        events: broadcast::Sender<ConnectionEvent>,
        cache: Option<Arc<crate::cache::LocalCache>>,
        stats: Arc<crate::stats::Registry>,
    ) -> Result<Arc<Router>> {
        let options = config
            .cluster
            .clone()
            .ok_or_else(|| Error::config("not a cluster configuration"))?;
        let router = Arc::new_cyclic(|me| Router {
            config,
            options,
            tls,
            events,
            cache,
            routes: RwLock::new(Arc::new(Routes {
                map: SlotMap::from_ranges(Vec::new()),
                primaries: Vec::new(),
                replicas: Vec::new(),
            })),
            map_version: watch::channel(0).0,
            nodes: Mutex::new(HashMap::new()),
            refresh: tokio::sync::Mutex::new(None),
            refresh_scheduled: AtomicBool::new(false),
            next_primary: AtomicUsize::new(0),
            counters: Counters::default(),
            stats,
            me: me.clone(),
        });
        router.refresh_now(true).await?;
        Ok(router)
    }

    /// The map in force, with its nodes.
    pub(crate) fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The node to send a command for `slot` to: its primary, or a replica for a read-only
    /// command when the client reads from replicas.
    pub(crate) fn node_for(&self, slot: u16, readonly: bool) -> Result<Arc<LazyNode>> {
        let routes = self.routes();
        let Some(i) = routes.map.shard_index(slot) else {
            self.schedule_refresh();
            return Err(Error::unsent(format!(
                "no node serves hash slot {slot} in the slot map (the cluster may be \
                 resharding or down); the map is being read again"
            )));
        };
        let replicas = &routes.replicas[i];
        if readonly && self.config.read_from != ReadFrom::Primary && !replicas.is_empty() {
            let n = self.next_primary.fetch_add(1, Ordering::Relaxed) % replicas.len();
            return Ok(replicas[n].clone());
        }
        Ok(routes.primaries[i].clone())
    }

    /// Where [`node_for`](Self::node_for) sends a command: the address, and whether it is a
    /// replica.
    pub(crate) fn addr_for(&self, slot: u16, readonly: bool) -> Result<(Addr, bool)> {
        self.node_for(slot, readonly)
            .map(|n| (n.addr.clone(), n.replica))
    }

    /// A primary, in turn.
    pub(crate) fn any_primary_node(&self) -> Result<Arc<LazyNode>> {
        let routes = self.routes();
        if routes.primaries.is_empty() {
            return Err(Error::unsent("the cluster's slot map has no primary"));
        }
        let i = self.next_primary.fetch_add(1, Ordering::Relaxed) % routes.primaries.len();
        Ok(routes.primaries[i].clone())
    }

    /// The address of a primary, in turn.
    pub(crate) fn any_primary(&self) -> Result<Addr> {
        self.any_primary_node().map(|n| n.addr.clone())
    }

    /// Every primary, or every node.
    pub(crate) fn all_nodes(&self, with_replicas: bool) -> Vec<Arc<LazyNode>> {
        let routes = self.routes();
        let mut out = routes.primaries.clone();
        if with_replicas {
            out.extend(routes.replicas.iter().flatten().cloned());
        }
        out
    }

    /// The addresses of every primary, or of every node.
    pub(crate) fn all(&self, with_replicas: bool) -> Vec<(Addr, bool)> {
        self.all_nodes(with_replicas)
            .iter()
            .map(|n| (n.addr.clone(), n.replica))
            .collect()
    }

    /// The node at `addr` (a replica connection sends READONLY); its connections open when
    /// first used.
    pub(crate) fn lazy(&self, addr: &Addr, replica: bool) -> Arc<LazyNode> {
        lock(&self.nodes)
            .entry((addr.clone(), replica))
            .or_insert_with(|| {
                let mut template = Options::new(
                    self.config.clone(),
                    Arc::new(Fixed(addr.clone())),
                    self.tls.clone(),
                    Mode::Shared,
                );
                template.readonly = replica;
                template.tracking = self.cache.clone();
                template.stats = Some(self.stats.clone());
                Arc::new(LazyNode {
                    addr: addr.clone(),
                    replica,
                    template,
                    events: self.events.clone(),
                    node: OnceCell::new(),
                })
            })
            .clone()
    }

    /// The routes of `map`: its shards' nodes, made known.
    fn routes_of(&self, map: SlotMap) -> Routes {
        let primaries = map
            .shards()
            .iter()
            .map(|s| self.lazy(&s.primary, false))
            .collect();
        let replicas = map
            .shards()
            .iter()
            .map(|s| s.replicas.iter().map(|r| self.lazy(r, true)).collect())
            .collect();
        Routes {
            map,
            primaries,
            replicas,
        }
    }

    /// Records a `MOVED` at once (the slot's new owner) and reads the whole map again in
    /// the background.
    pub(crate) fn moved(&self, slot: u16, addr: Addr) {
        self.counters.moved.fetch_add(1, Ordering::Relaxed);
        {
            let mut routes = self.routes.write().unwrap_or_else(PoisonError::into_inner);
            let mut updated = routes.map.clone();
            updated.moved(slot, addr);
            *routes = Arc::new(self.routes_of(updated));
        }
        self.slots_moved();
        self.schedule_refresh();
    }

    /// Reads the map again in the background, unless a refresh is already on its way.
    pub(crate) fn schedule_refresh(&self) {
        if self.refresh_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(me) = self.me.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            if let Err(e) = me.refresh_now(false).await {
                tracing::warn!(error = %e, "reading the cluster's slot map failed");
            }
            me.refresh_scheduled.store(false, Ordering::Release);
        });
    }

    /// Reads the map from several nodes and keeps the one most agree on. Refreshes asked for
    /// within [`MIN_REFRESH_GAP`] of the last one are served by it (never a stampede).
    pub(crate) async fn refresh_now(&self, first: bool) -> Result<()> {
        let mut last = self.refresh.lock().await;
        if !first && last.is_some_and(|at| at.elapsed() < MIN_REFRESH_GAP) {
            return Ok(());
        }
        let mut candidates: Vec<Addr> = self.all(true).into_iter().map(|(a, _)| a).collect();
        for seed in &self.options.seeds {
            if !candidates.contains(seed) {
                candidates.push(seed.clone());
            }
        }
        // Start from a different node each time, so one stale node does not always speak.
        let skip = self.next_primary.fetch_add(1, Ordering::Relaxed) % candidates.len().max(1);
        candidates.rotate_left(skip);
        let quorum = self.options.map_quorum.max(1);
        let mut views = Vec::new();
        let mut failures = Vec::new();
        for chunk in candidates.chunks(quorum) {
            let asked = futures::future::join_all(chunk.iter().map(|a| self.view_of(a))).await;
            for (addr, view) in chunk.iter().zip(asked) {
                match view {
                    Ok(map) if map.covered() > 0 => views.push(map),
                    Ok(_) => failures.push(format!("{addr}: serves no slot")),
                    Err(e) => failures.push(format!("{addr}: {e}")),
                }
            }
            if views.len() >= quorum {
                break;
            }
        }
        let Some(map) = agree(views) else {
            return Err(Error::new(
                Kind::Connect,
                format!("no cluster node gave a slot map: {}", failures.join("; ")),
            ));
        };
        self.counters.refreshes.fetch_add(1, Ordering::Relaxed);
        self.install(map);
        *last = Some(Instant::now());
        Ok(())
    }

    /// The slot map as the node at `addr` sees it.
    async fn view_of(&self, addr: &Addr) -> Result<SlotMap> {
        let within = self.config.connect_timeout;
        let ask = async {
            // A primary already open answers on its shared connection; any other node on a
            // connection opened for the question.
            let open = lock(&self.nodes)
                .get(&(addr.clone(), false))
                .and_then(|lazy| lazy.if_connected().map(|n| n.shared().clone()));
            let conn = match open {
                Some(conn) => conn,
                None => {
                    let mut opts = self.options(Arc::new(Fixed(addr.clone())), Mode::Shared);
                    opts.reconnect = false;
                    opts.idle_ping = None;
                    Connection::open(opts).await?
                }
            };
            let shards = cmd("CLUSTER").arg("SHARDS");
            match conn.request(Payload::Args(shards.args), 1).await? {
                Value::Error(e) if e.code() == "ERR" && e.message().contains("unknown") => {
                    let slots = cmd("CLUSTER").arg("SLOTS");
                    match conn.request(Payload::Args(slots.args), 1).await? {
                        Value::Error(e) => Err(e.into()),
                        reply => parse_slots(&reply, addr),
                    }
                }
                Value::Error(e) => Err(e.into()),
                reply => parse_shards(&reply, self.tls.is_some(), addr),
            }
        };
        tokio::time::timeout(within, ask)
            .await
            .unwrap_or_else(|_| Err(Error::timeout(format!("no slot map from {addr} in time"))))
    }

    /// Installs a new map; nodes it no longer names are closed (once nothing in flight
    /// holds them).
    fn install(&self, map: SlotMap) {
        let routes = self.routes_of(map);
        let named: Vec<(Addr, bool)> = routes
            .primaries
            .iter()
            .chain(routes.replicas.iter().flatten())
            .map(|n| (n.addr.clone(), n.replica))
            .collect();
        let seeds = &self.options.seeds;
        lock(&self.nodes).retain(|(addr, replica), _| {
            named.contains(&(addr.clone(), *replica)) || (!*replica && seeds.contains(addr))
        });
        let changed = {
            let mut current = self.routes.write().unwrap_or_else(PoisonError::into_inner);
            let changed = current.map != routes.map;
            *current = Arc::new(routes);
            changed
        };
        if changed {
            self.slots_moved();
        }
    }

    /// The slot map changed: connections waiting to reconnect resolve again, and the
    /// client-side cache is flushed (a key that moved to another node changes there, where
    /// nobody tracks this client's reads of it).
    fn slots_moved(&self) {
        if let Some(cache) = &self.cache {
            cache.flush();
        }
        self.map_version.send_modify(|v| *v += 1);
    }

    /// Statistics so far.
    pub(crate) fn stats(&self) -> ClusterStats {
        let c = &self.counters;
        ClusterStats {
            moved: c.moved.load(Ordering::Relaxed),
            asked: c.asked.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            refreshes: c.refreshes.load(Ordering::Relaxed),
        }
    }

    /// Reads the map every `refresh_interval` until the router is gone.
    pub(crate) fn keep_fresh(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        let every = self.options.refresh_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(router) = me.upgrade() else { return };
                if let Err(e) = router.refresh_now(false).await {
                    tracing::warn!(error = %e, "reading the cluster's slot map failed");
                }
            }
        })
    }

    /// An endpoint for connections that may go to any primary (classic pub/sub, MONITOR),
    /// asked again at every reconnect.
    pub(crate) fn any_primary_endpoint(self: &Arc<Self>) -> Arc<dyn Endpoint> {
        Arc::new(AnyPrimary(Arc::downgrade(self)))
    }

    /// An endpoint that follows the primary of `slot` (sharded pub/sub).
    pub(crate) fn slot_endpoint(self: &Arc<Self>, slot: u16) -> Arc<dyn Endpoint> {
        Arc::new(SlotOwner(Arc::downgrade(self), slot))
    }

    /// Changes whenever the slot map does.
    fn map_changed(&self) -> watch::Receiver<u64> {
        self.map_version.subscribe()
    }

    /// Options for a connection of its own to the cluster, through `endpoint`.
    pub(crate) fn options(&self, endpoint: Arc<dyn Endpoint>, mode: Mode) -> Options {
        let mut opts = Options::new(self.config.clone(), endpoint, self.tls.clone(), mode);
        opts.stats = Some(self.stats.clone());
        opts
    }

    /// The exclusive-connection pools of the nodes connected so far.
    pub(crate) fn pool_stats(&self) -> Vec<crate::stats::PoolStats> {
        let mut nodes: Vec<Arc<LazyNode>> = lock(&self.nodes).values().cloned().collect();
        nodes.sort_by_key(|n| (n.addr.to_string(), n.replica));
        nodes
            .iter()
            .filter_map(|n| Some(n.node.get()?.pool_stats(n.addr.to_string())))
            .collect()
    }
}

fn gone() -> Error {
    Error::unsent("the cluster client is gone")
}

/// Any primary, in turn; a node that cannot be reached makes the map be read again.
#[derive(Debug)]
struct AnyPrimary(Weak<Router>);

impl Endpoint for AnyPrimary {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        Box::pin(async move { self.0.upgrade().ok_or_else(gone)?.any_primary() })
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.0.upgrade()?.map_changed())
    }

    fn invalidate(&self) {
        if let Some(router) = self.0.upgrade() {
            router.schedule_refresh();
        }
    }
}

/// The primary of one slot, as the map says at each connect.
#[derive(Debug)]
struct SlotOwner(Weak<Router>, u16);

impl Endpoint for SlotOwner {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        Box::pin(async move {
            let router = self.0.upgrade().ok_or_else(gone)?;
            Ok(router.addr_for(self.1, false)?.0)
        })
    }

    fn changed(&self) -> Option<watch::Receiver<u64>> {
        Some(self.0.upgrade()?.map_changed())
    }

    fn invalidate(&self) {
        if let Some(router) = self.0.upgrade() {
            router.schedule_refresh();
        }
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("map", &self.routes().map)
            .finish()
    }
}

#[cfg(test)]
impl Router {
    /// A router that has read no map, for tests that need one without a cluster.
    pub(crate) fn unconnected(config: Config) -> Arc<Router> {
        let options = config
            .cluster
            .clone()
            .unwrap_or_else(|| ClusterOptions::with_seeds(Vec::new()));
        Arc::new_cyclic(|me| Router {
            config: Arc::new(config),
            options,
            tls: None,
            events: broadcast::channel(1).0,
            cache: None,
            routes: RwLock::new(Arc::new(Routes {
                map: SlotMap::from_ranges(Vec::new()),
                primaries: Vec::new(),
                replicas: Vec::new(),
            })),
            map_version: watch::channel(0).0,
            nodes: Mutex::new(HashMap::new()),
            refresh: tokio::sync::Mutex::new(None),
            refresh_scheduled: AtomicBool::new(false),
            next_primary: AtomicUsize::new(0),
            counters: Counters::default(),
            stats: Default::default(),
            me: me.clone(),
        })
    }
}
