//! Single flight: concurrent misses of one key in one process run its loader once; the
//! others wait for that outcome (value, "not found", or the loader's error).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

/// What a load produced, shareable with every waiter: the stored bytes (`None`: not
/// found), or the loader's error, type-erased.
pub(crate) type Outcome = Result<Option<Bytes>, Arc<dyn Any + Send + Sync>>;

#[derive(Clone)]
enum State {
    Running,
    Done(Outcome),
    /// The leader was dropped before it finished: a waiter takes over.
    Abandoned,
}

struct Flight {
    rx: watch::Receiver<State>,
    /// The key was invalidated or updated while the load ran: its result must not be
    /// stored (it may predate the change).
    stale: Arc<AtomicBool>,
}

#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, Flight>>,
}

/// Joining a key's flight: lead it (call the loader) or follow the one under way.
pub(crate) enum Join<'a> {
    Lead(Leader<'a>),
    Follow(Follower),
}

/// The caller running the loader. Dropping it unfinished hands the load to a waiter.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: String,
    tx: Option<watch::Sender<State>>,
    stale: Arc<AtomicBool>,
}

/// A caller waiting for another's load.
pub(crate) struct Follower {
    rx: watch::Receiver<State>,
}

impl Flights {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Flight>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn join(&self, key: &str) -> Join<'_> {
        let mut map = self.map();
        if let Some(f) = map.get(key) {
            return Join::Follow(Follower { rx: f.rx.clone() });
        }
        let (tx, rx) = watch::channel(State::Running);
        let stale = Arc::new(AtomicBool::new(false));
        map.insert(
            key.to_string(),
            Flight {
                rx,
                stale: stale.clone(),
            },
        );
        Join::Lead(Leader {
            flights: self,
            key: key.to_string(),
            tx: Some(tx),
            stale,
        })
    }

    /// A load of `key` under way must not store what it read.
    pub(crate) fn mark_stale(&self, key: &str) {
        if let Some(f) = self.map().get(key) {
            f.stale.store(true, Ordering::SeqCst);
        }
    }
}

impl Leader<'_> {
    /// True when the key changed while this load ran.
    pub(crate) fn is_stale(&self) -> bool {
        self.stale.load(Ordering::SeqCst)
    }

    /// Hands the outcome to every waiter.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.end(State::Done(outcome));
    }

    fn end(&mut self, state: State) {
        if let Some(tx) = self.tx.take() {
            self.flights.map().remove(&self.key);
            let _ = tx.send(state);
        }
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.end(State::Abandoned);
    }
}

impl Follower {
    /// The leader's outcome; `None` when it gave up (was cancelled) before finishing.
    pub(crate) async fn outcome(mut self) -> Option<Outcome> {
        loop {
            match &*self.rx.borrow_and_update() {
                State::Running => {}
                State::Done(outcome) => return Some(outcome.clone()),
                State::Abandoned => return None,
            }
            if self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}
