//! Connection settings: URLs and the values behind [`ClientBuilder`](crate::ClientBuilder).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::ClusterOptions;
use crate::error::{Error, Result};
use crate::resp::Limits;
use crate::sentinel::{ReadFrom, SentinelOptions};
use crate::tls::TlsOptions;

/// Where the server listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// A TCP host and port.
    Tcp {
        /// Host name or IP address (IPv6 without brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A unix domain socket.
    Unix(PathBuf),
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Addr::Tcp { host, port } => write!(f, "{host}:{port}"),
            Addr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// The RESP version to ask for in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Protocol {
    /// RESP2: what every server speaks.
    Resp2,
    /// RESP3 (`HELLO 3`), with a fallback to RESP2 on servers older than Redis 6.
    #[default]
    Resp3,
}

/// A password that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(p: impl Into<String>) -> Self {
        Password(p.into())
    }

    /// The password itself, for the AUTH command.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How a connection that died is re-established.
///
/// The delay before attempt `n` (from 0) is `initial_delay * 2^n`, capped at `max_delay`, with
/// jitter that takes it down by up to half, so many clients do not reconnect in lockstep.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// Reconnect at all. Default true.
    pub enabled: bool,
    /// The first retry's delay; the first attempt after a connection dies is immediate.
    /// Default 50 ms.
    pub initial_delay: Duration,
    /// The cap on the delay. Default 5 s.
    pub max_delay: Duration,
    /// Give up after this many failed attempts in a row (commands then fail with
    /// `is_closed()`). Default `None`: keep trying.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            enabled: true,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(5),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// A policy that never reconnects: a dead connection fails every later command.
    pub fn disabled() -> Self {
        ReconnectPolicy {
            enabled: false,
            ..ReconnectPolicy::default()
        }
    }

    /// The delay before retry `attempt` (0-based), jitter included.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        exponential_delay(self.initial_delay, self.max_delay, attempt, true)
    }
}

/// `base * 2^doublings`, at most `max`; with `jitter`, a random share up to half of it is
/// taken off, so many clients do not retry in lockstep. Shared by reconnects and queue
/// retries.
pub(crate) fn exponential_delay(
    base: Duration,
    max: Duration,
    doublings: u32,
    jitter: bool,
) -> Duration {
    let d = base
        .saturating_mul(1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX))
        .min(max);
    if jitter {
        d - (d / 2).mul_f64(jitter_fraction())
    } else {
        d
    }
}

/// A number in [0, 1) that differs between calls and processes; jitter needs no better.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Most shared connections opened by default, one per worker thread, on a runtime with
/// many workers.
pub const MAX_AUTO_SHARED: usize = 16;

/// Everything a client needs to connect. Built from a URL, a builder, or both.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Server address. Default `127.0.0.1:6379`.
    pub addr: Addr,
    /// ACL user name (Redis 6+); `None` authenticates as `default`.
    pub username: Option<String>,
    /// Password; `None` skips AUTH.
    pub password: Option<Password>,
    /// Database index, selected at every (re)connect. Default 0.
    pub db: u32,
    /// `CLIENT SETNAME` at every (re)connect. Default none.
    pub client_name: Option<String>,
    /// Command spans also record `db.query.text`: the command (and a container's
    /// subcommand) with every argument replaced by `?`, options included (`SET ? ? ? ?` for
    /// `SET k v EX 10`). Default off: spans name the command only.
    pub trace_statements: bool,
    /// RESP version to negotiate. Default RESP3.
    pub protocol: Protocol,
    /// Time allowed to connect and complete the handshake. Default 4 s.
    pub connect_timeout: Duration,
    /// Time allowed for a reply; `None` waits as long as the connection lives. Blocking
    /// commands are never subject to it. Default `None`.
    pub response_timeout: Option<Duration>,
    /// Reconnect behaviour of shared connections. Default: on, exponential with jitter.
    pub reconnect: ReconnectPolicy,
    /// How many shared multiplexed connections commands are spread over. `None` (the
    /// default) opens one per worker thread of the runtime the client connects on (one on
    /// the current-thread runtime, at most [`MAX_AUTO_SHARED`]), and each thread's tasks use
    /// their own: one connection task is not left to serve every core. A number set here
    /// is used round-robin by every thread.
    pub shared_connections: Option<usize>,
    /// Most exclusive connections (blocking commands, transactions, subscriptions) open at
    /// once. Default 16.
    pub pool_max_size: usize,
    /// Time to wait for a free exclusive connection. Default 10 s.
    pub pool_wait_timeout: Duration,
    /// Most commands awaiting replies on one connection; past it, callers wait. Default
    /// 100,000.
    pub max_in_flight: usize,
    /// Most bytes gathered into one write before it is flushed. Default 1 MiB.
    pub max_batch_bytes: usize,
    /// Decoder limits on replies.
    pub limits: Limits,
    /// TCP keepalive: probes start after this long without traffic and repeat every third
    /// of it; three unanswered probes end the connection. Finds a dead peer or a dropped
    /// NAT flow even on a connection blocked in BLPOP. `None` turns it off. Default 30 s.
    pub tcp_keepalive: Option<Duration>,
    /// A connection with nothing in flight and no traffic for this long is sent a PING,
    /// which falls under [`unresponsive_timeout`](Self::unresponsive_timeout). `None` turns
    /// it off. Default 30 s.
    pub idle_ping: Option<Duration>,
    /// The longest the oldest command in flight on a connection may wait while nothing at
    /// all is read from it; past it the connection is declared dead, its commands fail with
    /// `is_timeout()`, and it reconnects. Blocking commands (BLPOP ...) are exempt. `None`
    /// turns it off. Default 30 s.
    pub unresponsive_timeout: Option<Duration>,
    /// TLS for every connection; `None` is plaintext. `rediss://` URLs set it. Default none.
    pub tls: Option<TlsOptions>,
    /// Find the master through these sentinels (`redis+sentinel://` URLs set it); `addr` is
    /// then not used. Default none.
    pub sentinel: Option<SentinelOptions>,
    /// Where read-only commands go (with sentinels or a cluster). Default
    /// [`ReadFrom::Primary`].
    pub read_from: ReadFrom,
    /// A Redis Cluster reached through these seed nodes (`redis+cluster://` URLs set it);
    /// `addr` is then not used. Default none.
    pub cluster: Option<ClusterOptions>,
    /// A client-side cache of cacheable reads, kept fresh by the server's RESP3 tracking
    /// (see [`cache`](crate::cache)). Needs RESP3. Default none.
    pub client_cache: Option<crate::cache::ClientCacheOptions>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: Addr::Tcp {
                host: "127.0.0.1".into(),
                port: 6379,
            },
            username: None,
            password: None,
            db: 0,
            client_name: None,
            trace_statements: false,
            protocol: Protocol::default(),
            connect_timeout: Duration::from_secs(4),
            response_timeout: None,
            reconnect: ReconnectPolicy::default(),
            shared_connections: None,
            pool_max_size: 16,
            pool_wait_timeout: Duration::from_secs(10),
            max_in_flight: 100_000,
            max_batch_bytes: 1024 * 1024,
            limits: Limits::default(),
            tcp_keepalive: Some(Duration::from_secs(30)),
            idle_ping: Some(Duration::from_secs(30)),
            unresponsive_timeout: Some(Duration::from_secs(30)),
            tls: None,
            sentinel: None,
            read_from: ReadFrom::Primary,
            cluster: None,
            client_cache: None,
        }
    }
}

impl Config {
    /// Parses a URL:
    ///
    /// - `redis://[[user]:password@]host[:port][/db][?protocol=resp2|resp3&client_name=NAME]`
    /// - `rediss://...`: the same over TLS (feature `tls`), with the platform's roots and the
    ///   host's name; see [`TlsOptions`] for the rest
    /// - `unix:///path/to/redis.sock[?db=N&protocol=...&client_name=...]` (also
    ///   `redis+unix://`)
    /// - `redis+cluster://[[user]:password@]host1[:port],host2[:port][?read_from=...]`: a
    ///   Redis Cluster, through these seed nodes; `rediss+cluster://` for TLS.
    /// - `redis+sentinel://[[user]:password@]host1[:port],host2[:port]/MASTER[/db][?...]`:
    ///   the master `MASTER` found through these sentinels (port 26379 by default); the
    ///   credentials are the data nodes'. Parameters `sentinel_username`,
    ///   `sentinel_password` and `read_from=primary|replica|prefer_replica`;
    ///   `rediss+sentinel://` for TLS to sentinels and nodes alike.
    ///
    /// User and password are percent-decoded. Certificate checks cannot be turned off from a
    /// URL.
    pub fn from_url(url: &str) -> Result<Config> {
        let bad = |why: String| Error::config(format!("invalid URL {}: {why}", redact(url)));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected scheme://...".into()))?;
        let mut config = Config::default();
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        match scheme {
            "redis" => parse_tcp(body, &mut config).map_err(bad)?,
            "unix" | "redis+unix" => {
                let (auth, path) = match body.rsplit_once('@') {
                    Some((a, p)) => (Some(a), p),
                    None => (None, body),
                };
                if let Some(auth) = auth {
                    parse_auth(auth, &mut config).map_err(bad)?;
                }
                if !path.starts_with('/') {
                    return Err(bad("a unix socket path must be absolute".into()));
                }
                config.addr = Addr::Unix(PathBuf::from(path));
            }
            "rediss" => {
                parse_tcp(body, &mut config).map_err(bad)?;
                config.tls = Some(TlsOptions::default());
            }
            "redis+sentinel" => parse_sentinel(body, &mut config).map_err(bad)?,
            "redis+cluster" => parse_cluster(body, &mut config).map_err(bad)?,
            "rediss+cluster" => {
                parse_cluster(body, &mut config).map_err(bad)?;
                config.tls = Some(TlsOptions::default());
            }
            "rediss+sentinel" => {
                parse_sentinel(body, &mut config).map_err(bad)?;
                config.tls = Some(TlsOptions::default());
            }
            other => {
                return Err(bad(format!(
                    "unknown scheme {other:?}; use redis://, rediss://, unix:// or \
                     redis+sentinel://"
                )));
            }
        }
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value).map_err(bad)?;
            match key {
                "db" => config.db = parse_db(&value).map_err(bad)?,
                "protocol" => {
                    config.protocol = match value.to_ascii_lowercase().as_str() {
                        "resp2" | "2" => Protocol::Resp2,
                        "resp3" | "3" => Protocol::Resp3,
                        _ => {
                            return Err(bad(format!(
                                "protocol must be resp2 or resp3, not {value:?}"
                            )));
                        }
                    }
                }
                "client_name" => config.client_name = Some(value),
                "sentinel_username" | "sentinel_password" if config.sentinel.is_none() => {
                    return Err(bad(format!("{key} is for redis+sentinel:// URLs")));
                }
                "read_from" if config.sentinel.is_none() && config.cluster.is_none() => {
                    return Err(bad(
                        "read_from is for redis+sentinel:// and redis+cluster:// URLs".into(),
                    ));
                }
                "sentinel_username" => {
                    if let Some(s) = &mut config.sentinel {
                        s.username = Some(value);
                    }
                }
                "sentinel_password" => {
                    if let Some(s) = &mut config.sentinel {
                        s.password = Some(Password(value));
                    }
                }
                "read_from" => {
                    config.read_from = match value.to_ascii_lowercase().as_str() {
                        "primary" | "master" => ReadFrom::Primary,
                        "replica" => ReadFrom::Replica,
                        "prefer_replica" => ReadFrom::PreferReplica,
                        _ => {
                            return Err(bad(format!(
                                "read_from must be primary, replica or prefer_replica, not \
                                 {value:?}"
                            )));
                        }
                    }
                }
                other => return Err(bad(format!("unknown parameter {other:?}"))),
            }
        }
        Ok(config)
    }

    /// Checks option values that cannot work.
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::config(what.to_string()));
        if self.shared_connections == Some(0) {
            return bad("shared_connections must be at least 1");
        }
        if self.pool_max_size == 0 {
            return bad("pool_max_size must be at least 1");
        }
        if self.max_in_flight == 0 {
            return bad("max_in_flight must be at least 1");
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must be more than zero");
        }
        if self.response_timeout.is_some_and(|t| t.is_zero()) {
            return bad("response_timeout must be more than zero");
        }
        if self
            .tcp_keepalive
            .is_some_and(|t| t < Duration::from_secs(1))
        {
            return bad("tcp_keepalive must be at least 1 s (the kernel counts in seconds)");
        }
        if self.idle_ping.is_some_and(|t| t.is_zero()) {
            return bad("idle_ping must be more than zero");
        }
        if self.unresponsive_timeout.is_some_and(|t| t.is_zero()) {
            return bad("unresponsive_timeout must be more than zero");
        }
        if let Some(cache) = &self.client_cache {
            cache.validate()?;
            if self.protocol != Protocol::Resp3 {
                return bad(
                    "the client-side cache needs RESP3 (its invalidations are push frames on \
                     the connection that read the key); this client asks for RESP2",
                );
            }
            if self.cluster.is_some() && cache.mode == crate::cache::TrackingMode::OptIn {
                return bad(
                    "the client-side cache's OPTIN mode is for one server; on a cluster use \
                     the default or broadcast mode",
                );
            }
        }
        if self.tls.is_some() && matches!(self.addr, Addr::Unix(_)) {
            return bad("TLS is for TCP connections, not unix sockets");
        }
        match &self.sentinel {
            Some(s) if s.sentinels.is_empty() => return bad("sentinel: no sentinel address"),
            Some(s) if s.master_name.is_empty() => return bad("sentinel: no master name"),
            Some(s) if s.poll_interval.is_zero() => {
                return bad("sentinel: poll_interval must be more than zero");
            }
            None if self.read_from != ReadFrom::Primary && self.cluster.is_none() => {
                return bad("read_from replicas needs sentinels or a cluster");
            }
            _ => {}
        }
        match &self.cluster {
            Some(_) if self.sentinel.is_some() => {
                return bad("a client is for a cluster or for sentinels, not both");
            }
            Some(c) if c.seeds.is_empty() => return bad("cluster: no seed node"),
            Some(_) if self.db != 0 => return bad("cluster: only database 0 exists"),
            _ => {}
        }
        if let Some(name) = &self.client_name
            && (name.is_empty() || name.bytes().any(|b| b <= b' ' || b == 0x7f))
        {
            return bad("client_name must be non-empty, without spaces or control characters");
        }
        Ok(())
    }
}

fn parse_tcp(body: &str, config: &mut Config) -> std::result::Result<(), String> {
    let (authority, path) = match body.find('/') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, ""),
    };
    let host_port = match authority.rsplit_once('@') {
        Some((auth, hp)) => {
            parse_auth(auth, config)?;
            hp
        }
        None => authority,
    };
    config.addr = parse_host_port(host_port, 6379)?;
    if !path.is_empty() {
        config.db = parse_db(path)?;
    }
    Ok(())
}

/// `h1:26379,h2:26379/mymaster[/db]`, with credentials for the data nodes before `@`.
fn parse_sentinel(body: &str, config: &mut Config) -> std::result::Result<(), String> {
    let (authority, path) = body
        .split_once('/')
        .ok_or("expected the master name after the sentinels (/MASTER_NAME)")?;
    let hosts = match authority.rsplit_once('@') {
        Some((auth, hosts)) => {
            parse_auth(auth, config)?;
            hosts
        }
        None => authority,
    };
    let sentinels = hosts
        .split(',')
        .map(|h| parse_host_port(h, 26379))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (name, db) = match path.split_once('/') {
        Some((name, db)) => (name, Some(db)),
        None => (path, None),
    };
    if name.is_empty() {
        return Err("missing the master name after the sentinels".into());
    }
    if let Some(db) = db.filter(|d| !d.is_empty()) {
        config.db = parse_db(db)?;
    }
    config.addr = sentinels[0].clone();
    config.sentinel = Some(SentinelOptions {
        sentinels,
        master_name: percent_decode(name)?,
        username: None,
        password: None,
        poll_interval: Duration::from_secs(5),
    });
    Ok(())
}

/// `h1:7000,h2:7001[/]` with credentials before `@`.
fn parse_cluster(body: &str, config: &mut Config) -> std::result::Result<(), String> {
    let authority = body.strip_suffix('/').unwrap_or(body);
    if authority.contains('/') {
        return Err("a cluster has only database 0; nothing may follow the nodes".into());
    }
    let hosts = match authority.rsplit_once('@') {
        Some((auth, hosts)) => {
            parse_auth(auth, config)?;
            hosts
        }
        None => authority,
    };
    let seeds = hosts
        .split(',')
        .map(|h| parse_host_port(h, 6379))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    config.addr = seeds[0].clone();
    config.cluster = Some(ClusterOptions::with_seeds(seeds));
    Ok(())
}

/// `host[:port]` or `[v6]:port`, with `default_port` when none is given.
pub(crate) fn parse_host_port(
    host_port: &str,
    default_port: u16,
) -> std::result::Result<Addr, String> {
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or("unclosed '[' in IPv6 host")?;
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("expected ':' after IPv6 host")?),
            ),
        }
    } else {
        match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("port must be 1-65535, not {p:?}"))?,
    };
    Ok(Addr::Tcp {
        host: host.to_string(),
        port,
    })
}

fn parse_auth(auth: &str, config: &mut Config) -> std::result::Result<(), String> {
    let (user, pass) = match auth.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (auth, None),
    };
    let user = percent_decode(user)?;
    match pass {
        // `redis://secret@host` is a password alone, as redis-cli reads it.
        None if !user.is_empty() => config.password = Some(Password(user)),
        None => {}
        Some(p) => {
            if !user.is_empty() {
                config.username = Some(user);
            }
            config.password = Some(Password(percent_decode(p)?));
        }
    }
    Ok(())
}

fn parse_db(s: &str) -> std::result::Result<u32, String> {
    s.parse::<u32>()
        .map_err(|_| format!("database must be a non-negative integer, not {s:?}"))
}

fn percent_decode(s: &str) -> std::result::Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("invalid percent-encoding")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-encoding is not valid UTF-8".into())
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://<credentials redacted>{}", &rest[at..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_urls_with_credentials_db_and_options() {
        let c = Config::from_url(
            "redis://alice:p%40ss@example.com:6380/3?protocol=resp2&client_name=svc",
        )
        .unwrap();
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "example.com".into(),
                port: 6380
            }
        );
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_ref().unwrap().expose(), "p@ss");
        assert_eq!(c.db, 3);
        assert_eq!(c.protocol, Protocol::Resp2);
        assert_eq!(c.client_name.as_deref(), Some("svc"));

        let c = Config::from_url("redis://:secret@[::1]").unwrap();
        assert_eq!(
            c.addr,
            Addr::Tcp {
                host: "::1".into(),
                port: 6379
            }
        );
        assert_eq!(c.username, None);
        assert_eq!(c.password.unwrap().expose(), "secret");

        let c = Config::from_url("redis://localhost").unwrap();
        assert_eq!(c.db, 0);
        assert!(c.password.is_none());
    }

    #[test]
    fn parses_unix_urls() {
        let c = Config::from_url("unix:///tmp/redis.sock?db=2").unwrap();
        assert_eq!(c.addr, Addr::Unix("/tmp/redis.sock".into()));
        assert_eq!(c.db, 2);
        let c = Config::from_url("redis+unix://:pw@/var/run/r.sock").unwrap();
        assert_eq!(c.password.unwrap().expose(), "pw");
    }

    #[test]
    fn invalid_urls_say_what_is_wrong() {
        for (url, needle) in [
            ("localhost:6379", "scheme"),
            ("http://x", "unknown scheme"),
            ("redis://h:0", "port"),
            ("redis://h:99999", "port"),
            ("redis://h/abc", "database"),
            ("redis://h?bogus=1", "unknown parameter"),
            ("redis://h?protocol=4", "protocol"),
            ("redis://", "missing host"),
            ("unix://relative.sock", "absolute"),
            ("redis://u:%zz@h", "percent"),
        ] {
            let err = Config::from_url(url).unwrap_err();
            assert!(err.is_config());
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn rediss_urls_turn_tls_on_and_nothing_turns_checks_off() {
        let c = Config::from_url("rediss://u:p@cache.example.com:6380/2").unwrap();
        let tls = c.tls.as_ref().expect("TLS on");
        assert!(!tls.danger_accept_invalid_certificates);
        assert_eq!(c.db, 2);
        assert!(Config::from_url("redis://h").unwrap().tls.is_none());
        for url in [
            "rediss://h?insecure=1",
            "rediss://h?verify=none",
            "redis+tls://h",
        ] {
            assert!(Config::from_url(url).unwrap_err().is_config(), "{url}");
        }
    }

    #[test]
    fn sentinel_urls_name_the_sentinels_the_master_and_both_credentials() {
        let c = Config::from_url(
            "redis+sentinel://:nodepw@s1:26380,s2,[::1]:26381/mymaster/3?sentinel_password=sp&read_from=prefer_replica",
        )
        .unwrap();
        let s = c.sentinel.as_ref().unwrap();
        assert_eq!(
            s.sentinels,
            [
                Addr::Tcp {
                    host: "s1".into(),
                    port: 26380
                },
                Addr::Tcp {
                    host: "s2".into(),
                    port: 26379
                },
                Addr::Tcp {
                    host: "::1".into(),
                    port: 26381
                },
            ]
        );
        assert_eq!(s.master_name, "mymaster");
        assert_eq!(s.password.as_ref().unwrap().expose(), "sp");
        assert_eq!(c.password.as_ref().unwrap().expose(), "nodepw");
        assert_eq!(c.db, 3);
        assert_eq!(c.read_from, ReadFrom::PreferReplica);
        assert!(c.tls.is_none());
        let tls = Config::from_url("rediss+sentinel://s1/m").unwrap();
        assert!(tls.tls.is_some() && tls.sentinel.is_some());
        for (url, needle) in [
            ("redis+sentinel://s1", "master name"),
            ("redis+sentinel://s1/", "master name"),
            ("redis+sentinel://s1:0/m", "port"),
            ("redis+sentinel://s1/m?read_from=all", "read_from"),
            ("redis://h?read_from=replica", "redis+sentinel"),
        ] {
            let err = Config::from_url(url).unwrap_err();
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn cluster_urls_name_the_seed_nodes() {
        let c = Config::from_url("redis+cluster://:pw@n1:7000,n2,[::1]:7002?read_from=replica")
            .unwrap();
        let cluster = c.cluster.as_ref().unwrap();
        assert_eq!(
            cluster.seeds,
            [
                Addr::Tcp {
                    host: "n1".into(),
                    port: 7000
                },
                Addr::Tcp {
                    host: "n2".into(),
                    port: 6379
                },
                Addr::Tcp {
                    host: "::1".into(),
                    port: 7002
                },
            ]
        );
        assert_eq!(c.password.as_ref().unwrap().expose(), "pw");
        assert_eq!(c.read_from, ReadFrom::Replica);
        assert!(
            Config::from_url("rediss+cluster://n1")
                .unwrap()
                .tls
                .is_some()
        );
        for (url, needle) in [
            ("redis+cluster://n1/3", "database 0"),
            ("redis+cluster://n1:0", "port"),
            ("redis+cluster://", "missing host"),
        ] {
            let err = Config::from_url(url).unwrap_err();
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn passwords_never_show() {
        let c = Config::from_url("redis://bob:hunter2@h/0").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        let err = Config::from_url("redis://bob:hunter2@h/x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn health_checks_are_on_by_default_and_zero_is_refused() {
        let c = Config::default();
        assert_eq!(c.tcp_keepalive, Some(Duration::from_secs(30)));
        assert_eq!(c.idle_ping, Some(Duration::from_secs(30)));
        assert_eq!(c.unresponsive_timeout, Some(Duration::from_secs(30)));
        for bad in [
            Config {
                idle_ping: Some(Duration::ZERO),
                ..Config::default()
            },
            Config {
                unresponsive_timeout: Some(Duration::ZERO),
                ..Config::default()
            },
            Config {
                tcp_keepalive: Some(Duration::from_millis(10)),
                ..Config::default()
            },
        ] {
            assert!(bad.validate().unwrap_err().is_config());
        }
        let off = Config {
            tcp_keepalive: None,
            idle_ping: None,
            unresponsive_timeout: None,
            ..Config::default()
        };
        off.validate().unwrap();
    }

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        let p = ReconnectPolicy::default();
        for attempt in 0..40 {
            let base = p
                .initial_delay
                .saturating_mul(1 << attempt.min(20))
                .min(p.max_delay);
            let d = p.delay(attempt);
            assert!(
                d >= base / 2 && d <= base,
                "attempt {attempt}: {d:?} vs {base:?}"
            );
        }
    }
}
