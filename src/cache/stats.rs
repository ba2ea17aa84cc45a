//! What a cache-aside [`Cache`](super::Cache) has done: counters, and the latency of its
//! loads as percentiles (an HDR histogram, 3 significant digits).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// A snapshot of a [`Cache`](super::Cache)'s statistics, from
/// [`Cache::stats`](super::Cache::stats).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads that found a value in Redis.
    pub hits: u64,
    /// Reads that found a cached "not found" (negative caching).
    pub negative_hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Loader calls.
    pub loads: u64,
    /// Loader calls that failed (nothing was cached).
    pub load_errors: u64,
    /// Callers that waited for a load another caller of this process had started, instead
    /// of calling the loader themselves.
    pub coalesced: u64,
    /// Loads started early, before the value expired (probabilistic early refresh).
    pub early_refreshes: u64,
    /// Misses that found another process loading the key (the stampede lock) and waited.
    pub lock_waits: u64,
    /// Values written to Redis.
    pub stores: u64,
    /// Redis errors while reading or writing (a read error falls back to the loader).
    pub redis_errors: u64,
    /// Loader latency.
    pub load_latency: LatencySummary,
}

impl CacheStats {
    /// Hits (negative ones included) over all reads; 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        let reads = self.hits + self.negative_hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            (self.hits + self.negative_hits) as f64 / reads as f64
        }
    }
}

/// Percentiles of the loader's latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Loads measured.
    pub count: u64,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) negative_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) coalesced: AtomicU64,
    pub(crate) early_refreshes: AtomicU64,
    pub(crate) lock_waits: AtomicU64,
    pub(crate) stores: AtomicU64,
    pub(crate) redis_errors: AtomicU64,
    latency: Mutex<Option<Histogram<u64>>>,
}

/// Loads slower than this are recorded as this (an hour, in microseconds).
const LATENCY_MAX_US: u64 = 3_600_000_000;

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// Records one load's latency (loads are rare next to reads: a lock is fine here).
    pub(crate) fn record_load(&self, took: Duration) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = h.get_or_insert_with(|| {
            Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
        });
        h.saturating_record((took.as_micros() as u64).clamp(1, LATENCY_MAX_US));
    }

    /// The median load latency so far, if any load was measured.
    pub(crate) fn typical_load(&self) -> Option<Duration> {
        let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        h.as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| Duration::from_micros(h.value_at_quantile(0.5)))
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let latency = {
            let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
            match h.as_ref() {
                Some(h) if !h.is_empty() => {
                    let q = |q: f64| Duration::from_micros(h.value_at_quantile(q));
                    LatencySummary {
                        count: h.len(),
                        p50: q(0.5),
                        p90: q(0.9),
                        p99: q(0.99),
                        max: Duration::from_micros(h.max()),
                    }
                }
                _ => LatencySummary::default(),
            }
        };
        CacheStats {
            hits: get(&self.hits),
            negative_hits: get(&self.negative_hits),
            misses: get(&self.misses),
            loads: get(&self.loads),
            load_errors: get(&self.load_errors),
            coalesced: get(&self.coalesced),
            early_refreshes: get(&self.early_refreshes),
            lock_waits: get(&self.lock_waits),
            stores: get(&self.stores),
            redis_errors: get(&self.redis_errors),
            load_latency: latency,
        }
    }
}
