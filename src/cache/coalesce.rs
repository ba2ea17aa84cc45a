//! Coalescing of the client-side cache's misses: when a read of a command is already on its
//! way to the server and nothing of its key was invalidated since it was sent, a second read
//! of the same command waits for that reply instead of sending its own. Right after a write,
//! every reader of a hot key misses at once: without this, each of them would go to the
//! server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::resp::Value;

/// Finished entries are swept when the map grows past this (entries are removed when
/// their read is answered; a cancelled read leaves one behind).
const SWEEP_ABOVE: usize = 1024;

/// One read on its way, which others may wait for.
pub(crate) struct ReadFlight {
    /// The invalidation counters its read was sent under (epoch, key's counter): a later
    /// read may wait for it only while they have not moved.
    sent_under: (u64, u64),
    /// The reply, once stored by the cache (`Some`); `None` when it was not (an
    /// invalidation came in, an error reply, the read was cancelled): waiters read again.
    result: OnceLock<Option<Value>>,
    done: Notify,
}

impl ReadFlight {
    fn finish(&self, result: Option<Value>) {
        if self.result.set(result).is_ok() {
            self.done.notify_waiters();
        }
    }

    /// The leader's reply, or `None`: read again.
    pub(crate) async fn outcome(&self) -> Option<Value> {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = self.result.get() {
                return result.clone();
            }
            notified.await;
        }
    }
}

/// The leader's hold on its flight: finishing it, or (dropped unfinished) telling the
/// waiters to read for themselves.
pub(crate) struct Lead(Arc<ReadFlight>);

impl Lead {
    pub(crate) fn finish(self, result: Option<Value>) {
        self.0.finish(result);
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.0.finish(None);
    }
}

/// Reads in flight, by command.
#[derive(Default)]
pub(crate) struct ReadFlights {
    map: Mutex<HashMap<Bytes, Weak<ReadFlight>>>,
}

/// Joining the reads in flight.
pub(crate) enum Joined {
    /// Send the read, and finish the flight with its reply.
    Lead(Lead),
    /// Wait for this one.
    Wait(Arc<ReadFlight>),
}

impl ReadFlights {
    /// Leads a read of `command` sent under the counters `now`, or waits for the one in
    /// flight if it was sent under the same ones (nothing of its key was invalidated since).
    pub(crate) fn join(&self, command: &Bytes, now: (u64, u64)) -> Joined {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(flight) = map.get(&command[..]).and_then(Weak::upgrade)
            && flight.result.get().is_none()
            && flight.sent_under == now
        {
            return Joined::Wait(flight);
        }
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, f| f.upgrade().is_some_and(|f| f.result.get().is_none()));
        }
        let flight = Arc::new(ReadFlight {
            sent_under: now,
            result: OnceLock::new(),
            done: Notify::new(),
        });
        map.insert(command.clone(), Arc::downgrade(&flight));
        Joined::Lead(Lead(flight))
    }

    /// The read of `command` led by `lead` is answered: it no longer takes waiters.
    pub(crate) fn remove(&self, command: &[u8], lead: &Lead) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map
            .get(command)
            .is_some_and(|f| std::ptr::eq(f.as_ptr(), Arc::as_ptr(&lead.0)))
        {
            map.remove(command);
        }
    }
}
