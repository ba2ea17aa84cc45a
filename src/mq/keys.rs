//! The keys of one queue. Every key carries the hash tag `{queue}`, so a queue lives on one
//! cluster slot and its scripts never touch another queue.

use crate::error::{Error, Result};
use crate::value::{ArgBuf, ToArgs};

/// The suffixes of a queue's keys, in the order the steps name them (the first is the key
/// each step is called with).
pub(crate) const SUFFIXES: [&str; 26] = [
    "msg",          // HASH id -> payload
    "meta",         // HASH id -> "born,lock_ms,priority,due,attempts" (times in server ms)
    "lock",         // HASH id -> fencing token of the current holder
    "ready",        // ZSET id by priority, then FIFO
    "delayed",      // ZSET id by due time
    "locked",       // ZSET id by lease deadline
    "requeue",      // SET ids to run again once their current handling ends
    "done",         // ZSET id by end of its de-duplication window
    "dead",         // ZSET id by when it was dead-lettered
    "errors",       // HASH id -> last error of a dead letter
    "seq",          // STRING counter: FIFO order and fencing tokens
    "paused",       // STRING present while the queue is paused
    "limit",        // STRING "max,per_ms": the queue's rate limit
    "window",       // STRING messages taken in the current rate-limit window (expires with it)
    "progress",     // HASH id -> the handler's last reported progress
    "events",       // STREAM the queue's events, when turned on
    "config", // HASH queue settings: events (how many to keep), metrics (minutes kept); idle (a worker waits for a wake-up)
    "metrics", // HASH "c:<minute>" / "f:<minute>" -> completed / failed in that minute
    "schedules", // HASH schedule id -> its spec
    "schedule-due", // ZSET schedule id by its next run (server ms)
    "schedule-msg", // HASH schedule id -> the message it enqueues; "#<id>" -> runs so far
    "parent", // HASH flow child id -> its parent: token, on-failure, queue, id, index
    "outbox", // HASH "<token>:<child id>" -> a child's end, to hand to its parent
    "outbox-due", // ZSET outbox fields by when to hand them over (again)
    "waiting", // HASH flow parent id -> its flow token, while children are pending
    "extras", // SET ids whose outcome needs more than the plain path: a pending
              //     requeue, a flow role (parent or child), a log or progress
];

/// The prefix every queue key starts with; `queue_names` scans for it.
pub(crate) const PREFIX: &str = "kermes:mq:";

/// A queue's name, the key its steps are called with, and its wake-up channel.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    pub(crate) name: String,
    /// The `msg` key: the one a step declares (the others are named from it).
    first: String,
    pub(crate) channel: String,
}

impl QueueKeys {
    /// Checks the name: it becomes a hash tag, so it must be non-empty and free of braces.
    pub(crate) fn new(name: &str) -> Result<QueueKeys> {
        if name.is_empty() || name.contains(['{', '}']) || name.len() > 1024 {
            return Err(Error::config(format!(
                "invalid queue name {name:?}: it must be 1 to 1024 bytes without '{{' or '}}'"
            )));
        }
        Ok(QueueKeys {
            name: name.to_owned(),
            first: key(name, SUFFIXES[0]),
            channel: key(name, "wake"),
        })
    }

    /// The queue's event stream.
    pub(crate) fn events(&self) -> String {
        key(&self.name, "events")
    }

    /// Every key name (for DEL and for tests of the hash tag).
    pub(crate) fn names(&self) -> Vec<String> {
        SUFFIXES.iter().map(|s| key(&self.name, s)).collect()
    }
}

/// The one key a step is called with.
impl ToArgs for QueueKeys {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push(self.first.as_bytes())
    }
}

fn key(queue: &str, suffix: &str) -> String {
    format!("{PREFIX}{{{queue}}}:{suffix}")
}

/// The queue a key belongs to, when it is a queue key.
pub(crate) fn queue_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?.strip_prefix('{')?;
    let end = rest.find('}')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_shares_the_queue_hash_tag() {
        let keys = QueueKeys::new("jobs").unwrap();
        for k in keys.names().iter().chain([&keys.channel]) {
            assert_eq!(queue_of(k), Some("jobs"), "{k}");
            assert!(k.contains("{jobs}"), "{k}");
        }
        assert_eq!(keys.names().len(), SUFFIXES.len());
        assert_eq!(keys.names()[0], keys.first);
    }

    #[test]
    fn names_that_break_the_hash_tag_are_refused() {
        for bad in ["", "a{b", "a}b"] {
            assert!(QueueKeys::new(bad).unwrap_err().is_config(), "{bad:?}");
        }
    }
}
