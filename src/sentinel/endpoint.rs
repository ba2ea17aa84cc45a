//! Asking the sentinels: where the master (or a replica) is, which sentinels exist, and the
//! signal that moves every connection when the master changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::watch;
use tokio::time::Instant;

use super::SentinelOptions;
use crate::cmd::{Cmd, cmd};
use crate::config::{Addr, Config};
use crate::conn::{Connection, Endpoint, Fixed, Mode, Options, Payload, Role};
use crate::error::{Error, Kind, Result};
use crate::resp::Value;
use crate::tls::TlsConnector;

/// How long an answer about the master is trusted without asking again: long enough that a
/// wave of reconnects asks the sentinels once, short enough that a failover is seen.
const FRESH: Duration = Duration::from_millis(200);

/// What a client knows from its sentinels, shared by its endpoints and its watcher.
pub(crate) struct SentinelState {
    options: SentinelOptions,
    /// Settings for connections to a sentinel: the client's, with the sentinels'
    /// credentials, database 0 and no name.
    sentinel_config: Arc<Config>,
    tls: Option<TlsConnector>,
    /// The sentinels, the last one that answered first.
    known: Mutex<Vec<Addr>>,
    /// The master as last reported, and when.
    primary: Mutex<Option<(Addr, Instant)>>,
    /// One lookup at a time; the others use its answer.
    lookup: tokio::sync::Mutex<()>,
    /// Bumped when the master moves: every connection leaves and resolves again.
    moved: watch::Sender<u64>,
    /// Round-robin over replicas.
    next_replica: AtomicUsize,
    /// Round-robin over sentinels, for the watcher's subscription.
    next_sentinel: AtomicUsize,
}

impl std::fmt::Debug for SentinelState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelState")
            .field("master_name", &self.options.master_name)
            .field("known", &lock(&self.known))
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SentinelState {
    pub(crate) fn new(config: &Config, tls: Option<TlsConnector>) -> Option<Arc<SentinelState>> {
        let options = config.sentinel.clone()?;
        let sentinel_config = Config {
            addr: options.sentinels[0].clone(),
            username: options.username.clone(),
            password: options.password.clone(),
            db: 0,
            client_name: None,
            sentinel: None,
            read_from: Default::default(),
            ..config.clone()
        };
        let (moved, _) = watch::channel(0);
        Some(Arc::new(SentinelState {
            known: Mutex::new(options.sentinels.clone()),
            options,
            sentinel_config: Arc::new(sentinel_config),
            tls,
            primary: Mutex::new(None),
            lookup: tokio::sync::Mutex::new(()),
            moved,
            next_replica: AtomicUsize::new(0),
            next_sentinel: AtomicUsize::new(0),
        }))
    }

    pub(crate) fn options(&self) -> &SentinelOptions {
        &self.options
    }

    /// Options for a connection to the sentinel at `addr` (fixed), or to the sentinels in
    /// turn (`None`: each reconnect tries the next one).
    pub(crate) fn sentinel_options(self: &Arc<Self>, addr: Option<Addr>, mode: Mode) -> Options {
        let endpoint: Arc<dyn Endpoint> = match addr {
            Some(addr) => Arc::new(Fixed(addr)),
            None => Arc::new(Rotation(self.clone())),
        };
        let mut opts = Options::new(
            self.sentinel_config.clone(),
            endpoint,
            self.tls.clone(),
            mode,
        );
        opts.reconnect = true;
        opts
    }

    /// Opens `open` against the sentinels in turn until one connects (each connect of a
    /// rotating endpoint goes to the next sentinel): a dead sentinel is skipped.
    pub(crate) async fn connect_any<T, F, Fut>(&self, mut open: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let tries = lock(&self.known).len().max(1);
        let mut last = None;
        for _ in 0..tries {
            match open().await {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::config("no sentinel configured")))
    }

    /// The master's address: the cached one if fresh (and `fresh` is not asked for), else
    /// the sentinels' answer. A changed address moves every connection.
    pub(crate) async fn primary(&self, fresh: bool) -> Result<Addr> {
        let cached = |state: &Self| {
            lock(&state.primary)
                .as_ref()
                .filter(|(_, at)| !fresh && at.elapsed() < FRESH)
                .map(|(addr, _)| addr.clone())
        };
        if let Some(addr) = cached(self) {
            return Ok(addr);
        }
        let _one = self.lookup.lock().await;
        if let Some(addr) = cached(self) {
            return Ok(addr);
        }
        let name = self.options.master_name.clone();
        let addr = self
            .ask(|conn| {
                let name = name.clone();
                Box::pin(async move {
                    let reply = request(
                        conn,
                        cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(&name),
                    )
                    .await?;
                    address(&reply).ok_or_else(|| {
                        Error::new(
                            Kind::Connect,
                            format!("the sentinel does not know a master named {name:?}"),
                        )
                    })
                })
            })
            .await?;
        self.set_primary(addr.clone());
        Ok(addr)
    }

    /// Records where the master is; a change moves every connection.
    pub(crate) fn set_primary(&self, addr: Addr) {
        let changed = {
            let mut primary = lock(&self.primary);
            let changed = primary.as_ref().is_some_and(|(old, _)| *old != addr);
            *primary = Some((addr.clone(), Instant::now()));
            changed
        };
        if changed {
            tracing::info!(master = %self.options.master_name, addr = %addr, "the master moved");
            self.moved.send_modify(|n| *n += 1);
        }
    }

    /// Forgets the master's address: the next connect asks the sentinels.
    pub(crate) fn forget_primary(&self) {
        if let Some((_, at)) = lock(&self.primary).as_mut() {
            *at = Instant::now() - FRESH;
        }
    }

    /// A healthy replica, in turn.
    async fn replica(&self) -> Result<Addr> {
        let name = self.options.master_name.clone();
        let replicas = self
            .ask(|conn| {
                let name = name.clone();
                Box::pin(async move {
                    let reply = request(conn, cmd("SENTINEL").arg("REPLICAS").arg(&name)).await?;
                    Ok(healthy(&reply))
                })
            })
            .await?;
        if replicas.is_empty() {
            return Err(Error::new(
                Kind::Connect,
                format!(
                    "the sentinels know no healthy replica of {:?}",
                    self.options.master_name
                ),
            ));
        }
        let i = self.next_replica.fetch_add(1, Ordering::Relaxed) % replicas.len();
        Ok(replicas[i].clone())
    }

    /// Asks the sentinels in turn until one answers `query`; that one is asked first next
    /// time, and the sentinels it knows are added to the list.
    async fn ask<T>(&self, query: impl Fn(&Connection) -> BoxFuture<'_, Result<T>>) -> Result<T> {
        let sentinels = lock(&self.known).clone();
        let mut failures = Vec::new();
        for addr in sentinels {
            let opts = self.sentinel_options_for(addr.clone());
            let answer = async {
                let conn = Connection::open(opts).await?;
                let answer = query(&conn).await?;
                Ok::<_, Error>((answer, conn))
            };
            match tokio::time::timeout(self.sentinel_config.connect_timeout * 2, answer).await {
                Ok(Ok((answer, conn))) => {
                    self.answered(&addr);
                    self.learn(&conn).await;
                    return Ok(answer);
                }
                Ok(Err(e)) => failures.push(format!("{addr}: {e}")),
                Err(_) => failures.push(format!("{addr}: no answer in time")),
            }
        }
        Err(Error::new(
            Kind::Connect,
            format!(
                "no sentinel could say where {:?} is: {}",
                self.options.master_name,
                failures.join("; ")
            ),
        ))
    }

    fn sentinel_options_for(&self, addr: Addr) -> Options {
        let mut opts = Options::new(
            self.sentinel_config.clone(),
            Arc::new(Fixed(addr)),
            self.tls.clone(),
            Mode::Shared,
        );
        opts.reconnect = false;
        opts
    }

    /// Puts the sentinel that answered first.
    fn answered(&self, addr: &Addr) {
        let mut known = lock(&self.known);
        if let Some(i) = known.iter().position(|a| a == addr) {
            let a = known.remove(i);
            known.insert(0, a);
        }
    }

    /// Adds the sentinels the answering one knows of (`SENTINEL SENTINELS`).
    async fn learn(&self, conn: &Connection) {
        let ask = cmd("SENTINEL")
            .arg("SENTINELS")
            .arg(&self.options.master_name);
        let Ok(reply) = request(conn, ask).await else {
            return;
        };
        let mut known = lock(&self.known);
        for entry in entries(&reply) {
            if let Some(addr) = entry_addr(&entry)
                && !known.contains(&addr)
            {
                tracing::debug!(sentinel = %addr, "learned a sentinel");
                known.push(addr);
            }
        }
    }

    /// A receiver of the "every connection must move" signal.
    pub(crate) fn moved(&self) -> watch::Receiver<u64> {
        self.moved.subscribe()
    }

    fn next_sentinel(&self) -> Addr {
        let known = lock(&self.known);
        known[self.next_sentinel.fetch_add(1, Ordering::Relaxed) % known.len()].clone()
    }
}

/// One command on a sentinel connection, within the connect timeout.
async fn request(conn: &Connection, cmd: Cmd) -> Result<Value> {
    match conn.request(Payload::Args(cmd.args), 1).await? {
        Value::Error(e) => Err(e.into()),
        v => Ok(v),
    }
}

/// `[ip, port]` from GET-MASTER-ADDR-BY-NAME (nil when the name is unknown).
fn address(reply: &Value) -> Option<Addr> {
    let Value::Array(items) = reply else {
        return None;
    };
    let text = |i: usize| {
        items
            .get(i)
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    Some(Addr::Tcp {
        host: text(0)?,
        port: text(1)?.parse().ok()?,
    })
}

/// The entries of SENTINEL SENTINELS / REPLICAS: each a map (RESP3) or a flat array of
/// field, value pairs (RESP2).
fn entries(reply: &Value) -> Vec<HashMap<String, String>> {
    let text = |v: &Value| {
        v.as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    let Value::Array(list) = reply else {
        return Vec::new();
    };
    list.iter()
        .map(|entry| match entry {
            Value::Map(pairs) => pairs
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v)?)))
                .collect(),
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|kv| Some((text(kv.first()?)?, text(kv.get(1)?)?)))
                .collect(),
            _ => HashMap::new(),
        })
        .collect()
}

fn entry_addr(entry: &HashMap<String, String>) -> Option<Addr> {
    Some(Addr::Tcp {
        host: entry.get("ip")?.clone(),
        port: entry.get("port")?.parse().ok()?,
    })
}

/// Replicas the sentinels consider up and in sync with their master.
fn healthy(reply: &Value) -> Vec<Addr> {
    entries(reply)
        .iter()
        .filter(|e| {
            let flags = e.get("flags").map_or("", String::as_str);
            !flags
                .split(',')
                .any(|f| matches!(f, "s_down" | "o_down" | "disconnected"))
                && e.get("master-link-status").is_none_or(|s| s == "ok")
        })
        .filter_map(entry_addr)
        .collect()
}

/// The master (or a replica) of a sentinel-watched set, for data-node connections.
#[derive(Debug)]
pub(crate) struct SentinelEndpoint {
    state: Arc<SentinelState>,
    role: Role,
}

impl SentinelEndpoint {
    pub(crate) fn new(state: Arc<SentinelState>, role: Role) -> Self {
        SentinelEndpoint { state, role }
    }
}

impl Endpoint for SentinelEndpoint {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        Box::pin(async move {
            match self.role {
                Role::Primary => self.state.primary(false).await,
                Role::Replica => self.state.replica().await,
            }
        })
    }

    fn role(&self) -> Option<Role> {
        Some(self.role)
    }

    fn invalidate(&self) {
        if self.role == Role::Primary {
            self.state.forget_primary();
        }
    }

    fn moved(&self) -> Option<watch::Receiver<u64>> {
        Some(self.state.moved())
    }
}

/// The sentinels in turn: each connect tries the next one, so a dead sentinel is skipped.
#[derive(Debug)]
struct Rotation(Arc<SentinelState>);

impl Endpoint for Rotation {
    fn resolve(&self) -> BoxFuture<'_, Result<Addr>> {
        Box::pin(async move { Ok(self.0.next_sentinel()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::from(s.to_string()))
    }

    #[test]
    fn replies_of_both_protocols_are_read() {
        assert_eq!(
            address(&Value::Array(vec![bulk("10.0.0.1"), bulk("6380")])),
            Some(Addr::Tcp {
                host: "10.0.0.1".into(),
                port: 6380
            })
        );
        assert_eq!(address(&Value::Nil), None);
        let resp2 = Value::Array(vec![
            Value::Array(
                [
                    "ip",
                    "10.0.0.2",
                    "port",
                    "6379",
                    "flags",
                    "slave",
                    "master-link-status",
                    "ok",
                ]
                .map(bulk)
                .to_vec(),
            ),
            Value::Array(
                ["ip", "10.0.0.3", "port", "6379", "flags", "slave,s_down"]
                    .map(bulk)
                    .to_vec(),
            ),
        ]);
        let resp3 = Value::Array(vec![Value::Map(vec![
            (bulk("ip"), bulk("10.0.0.4")),
            (bulk("port"), bulk("6381")),
            (bulk("flags"), bulk("slave")),
            (bulk("master-link-status"), bulk("err")),
        ])]);
        assert_eq!(
            healthy(&resp2),
            [Addr::Tcp {
                host: "10.0.0.2".into(),
                port: 6379
            }]
        );
        assert!(healthy(&resp3).is_empty(), "a replica whose link is down");
        assert_eq!(entries(&resp3)[0]["port"], "6381");
    }
}
