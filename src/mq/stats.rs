//! Per-worker statistics, readable while the worker runs: counts by outcome and latency
//! percentiles over the most recent messages.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How many recent samples the percentiles are computed over.
const SAMPLES: usize = 4096;

/// A snapshot of a worker's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerStats {
    /// Messages taken from the queue.
    pub claimed: u64,
    /// Handled successfully (and acknowledged).
    pub succeeded: u64,
    /// Handlers that asked for a retry.
    pub retried: u64,
    /// Failed attempts (errors, panics, undecodable messages), retried or not.
    pub failed: u64,
    /// Of the failures, panics.
    pub panicked: u64,
    /// Messages moved to the dead letters after their last attempt.
    pub dead_lettered: u64,
    /// Messages dropped after their last attempt.
    pub dropped: u64,
    /// Outcomes the server refused because the lease had been lost and the message taken
    /// over by another worker: that worker's handling stands.
    pub rejected_acks: u64,
    /// Leases lost while a handler ran.
    pub leases_lost: u64,
    /// Messages put back unfinished by `stop()` after its grace period.
    pub released: u64,
    /// Messages put back by their handler as rate limited ([`Outcome::RateLimited`](super::Outcome::RateLimited)).
    pub rate_limited: u64,
    /// Handlers running now.
    pub running: u64,
    /// From runnable to taken by this worker.
    pub queue_wait: Percentiles,
    /// From handler start to its outcome.
    pub handling: Percentiles,
}

/// Percentiles over the most recent samples (up to 4,096).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// How many samples these are computed over.
    pub samples: usize,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) claimed: AtomicU64,
    pub(crate) succeeded: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) rejected_acks: AtomicU64,
    pub(crate) leases_lost: AtomicU64,
    pub(crate) released: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) running: AtomicU64,
    queue_wait: Window,
    handling: Window,
}

/// The most recent samples, in microseconds, as a ring.
#[derive(Default)]
struct Window(Mutex<(Vec<u64>, usize)>);

impl Window {
    fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let (samples, next) = &mut *w;
        if samples.len() < SAMPLES {
            samples.push(us);
        } else {
            samples[*next] = us;
        }
        *next = (*next + 1) % SAMPLES;
    }

    fn percentiles(&self) -> Percentiles {
        let mut sorted = self.0.lock().unwrap_or_else(|p| p.into_inner()).0.clone();
        if sorted.is_empty() {
            return Percentiles::default();
        }
        sorted.sort_unstable();
        let at = |q: f64| {
            let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            Duration::from_micros(sorted[i])
        };
        Percentiles {
            samples: sorted.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: Duration::from_micros(sorted[sorted.len() - 1]),
        }
    }
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_wait(&self, d: Duration) {
        self.queue_wait.record(d)
    }

    pub(crate) fn record_handling(&self, d: Duration) {
        self.handling.record(d)
    }

    pub(crate) fn snapshot(&self) -> WorkerStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        WorkerStats {
            claimed: get(&self.claimed),
            succeeded: get(&self.succeeded),
            retried: get(&self.retried),
            failed: get(&self.failed),
            panicked: get(&self.panicked),
            dead_lettered: get(&self.dead_lettered),
            dropped: get(&self.dropped),
            rejected_acks: get(&self.rejected_acks),
            leases_lost: get(&self.leases_lost),
            released: get(&self.released),
            rate_limited: get(&self.rate_limited),
            running: get(&self.running),
            queue_wait: self.queue_wait.percentiles(),
            handling: self.handling.percentiles(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_cover_the_most_recent_samples() {
        let w = Window::default();
        for ms in 1..=100 {
            w.record(Duration::from_millis(ms));
        }
        let p = w.percentiles();
        assert_eq!(p.samples, 100);
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        for _ in 0..SAMPLES {
            w.record(Duration::from_millis(1));
        }
        assert_eq!(w.percentiles().max, Duration::from_millis(1));
    }
}
