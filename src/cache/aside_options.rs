//! Settings of a cache-aside [`Cache`](super::Cache), and its loader's error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::value::ValueCodec;

/// How a [`Cache`](super::Cache) stores values and protects the source of truth.
///
/// ```
/// use std::time::Duration;
/// use kermes::cache::CacheOptions;
///
/// let options = CacheOptions::new("profiles")
///     .jitter(0.1)
///     .negative_ttl(Duration::from_secs(30))
///     .lock(Duration::from_secs(5), Duration::from_secs(2))
///     .early_refresh(1.0);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CacheOptions {
    /// Prefix of every key: `namespace:key`. Required (may be empty: no prefix).
    pub namespace: String,
    /// How values are serialized (format, compression, encryption). Default: the installed
    /// codec ([`ValueCodec::installed`]) when the cache is made.
    pub codec: Option<ValueCodec>,
    /// TTLs are spread by up to this fraction either way (0.1: ±10%), so keys written
    /// together do not expire together. Default 0.
    pub jitter: f64,
    /// Cache "not found" from the loader for this long. Default none (not cached).
    pub negative_ttl: Option<Duration>,
    /// Across processes: a miss takes a short lock (of [`lock`](crate::lock)) with this
    /// lease, so one process loads while the others wait up to `lock_wait` for its value.
    /// Default none.
    pub lock_lease: Option<Duration>,
    /// How long a miss waits for another process's load (with `lock_lease`). Default 5 s.
    pub lock_wait: Duration,
    /// Probabilistic early refresh (XFetch): a read reloads a value before it expires with
    /// a probability that rises as expiry nears, scaled by this factor (1.0 is the paper's
    /// choice; more refreshes earlier) and by how long loads take. Default none.
    pub early_refresh: Option<f64>,
    /// Values per pipelined write when warming. Default 500.
    pub warm_batch: usize,
}

impl CacheOptions {
    /// Defaults, under `namespace`.
    pub fn new(namespace: impl Into<String>) -> Self {
        CacheOptions {
            namespace: namespace.into(),
            codec: None,
            jitter: 0.0,
            negative_ttl: None,
            lock_lease: None,
            lock_wait: Duration::from_secs(5),
            early_refresh: None,
            warm_batch: 500,
        }
    }

    /// Sets [`codec`](Self::codec).
    pub fn codec(mut self, codec: ValueCodec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Sets [`jitter`](Self::jitter).
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction;
        self
    }

    /// Sets [`negative_ttl`](Self::negative_ttl).
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = Some(ttl);
        self
    }

    /// Sets [`lock_lease`](Self::lock_lease) and [`lock_wait`](Self::lock_wait).
    pub fn lock(mut self, lease: Duration, wait: Duration) -> Self {
        self.lock_lease = Some(lease);
        self.lock_wait = wait;
        self
    }

    /// Sets [`early_refresh`](Self::early_refresh).
    pub fn early_refresh(mut self, beta: f64) -> Self {
        self.early_refresh = Some(beta);
        self
    }

    /// Sets [`warm_batch`](Self::warm_batch).
    pub fn warm_batch(mut self, values: usize) -> Self {
        self.warm_batch = values;
        self
    }

    pub(crate) fn validate(&self) -> crate::Result<()> {
        let bad = |what: &str| Err(crate::Error::config(what.to_string()));
        if !(0.0..1.0).contains(&self.jitter) {
            return bad("cache jitter must be at least 0 and below 1");
        }
        if self
            .negative_ttl
            .is_some_and(|t| t < Duration::from_millis(1))
        {
            return bad("cache negative_ttl must be at least 1 ms");
        }
        if self
            .lock_lease
            .is_some_and(|t| t < Duration::from_millis(1))
        {
            return bad("cache lock lease must be at least 1 ms");
        }
        if self
            .early_refresh
            .is_some_and(|b| !(b > 0.0 && b.is_finite()))
        {
            return bad("cache early_refresh factor must be a positive number");
        }
        if self.warm_batch == 0 {
            return bad("cache warm_batch must be at least 1");
        }
        Ok(())
    }
}

/// Why [`Cache::get_or_load`](super::Cache::get_or_load) failed.
#[non_exhaustive]
pub enum LoadError<E> {
    /// The loader failed: this caller's, or the one it waited for (every caller waiting on
    /// one load gets the same error). Nothing was cached.
    Loader(Arc<E>),
    /// Redis failed where the value could not be had without it (a stored value that
    /// cannot be read back as the type asked for, an invalid key or TTL).
    Redis(crate::Error),
}

impl<E> LoadError<E> {
    /// The loader's error, if that is what failed.
    pub fn loader(&self) -> Option<&E> {
        match self {
            LoadError::Loader(e) => Some(e),
            LoadError::Redis(_) => None,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Loader(e) => f.debug_tuple("Loader").field(e).finish(),
            LoadError::Redis(e) => f.debug_tuple("Redis").field(e).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for LoadError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Loader(e) => write!(f, "the cache's loader failed: {e}"),
            LoadError::Redis(e) => write!(f, "the cache could not use Redis: {e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for LoadError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Loader(e) => Some(&**e),
            LoadError::Redis(e) => Some(e),
        }
    }
}

impl<E> From<crate::Error> for LoadError<E> {
    fn from(e: crate::Error) -> Self {
        LoadError::Redis(e)
    }
}
