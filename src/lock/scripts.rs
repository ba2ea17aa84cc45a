//! The lock's server-side steps, each one atomic Lua script. Keys of one lock share the hash
//! tag `{name}`, so a lock lives on one cluster slot.

use std::sync::LazyLock;

use crate::script::Script;

/// KEYS: lock, fence. ARGV: token, lease ms. `{1, fence}` when taken, else `{0, pttl}`.
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
           return {1, redis.call('INCR', KEYS[2])}
         end
         return {0, redis.call('PTTL', KEYS[1])}",
    )
});

/// KEYS: lock. ARGV: token, release channel, the command to publish with (see
/// `pubsub::wake`). 1 when released by its owner (waiters are told), 0 when the caller no
/// longer held it.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
           redis.call('DEL', KEYS[1])
           redis.call(ARGV[3], ARGV[2], 'released')
           return 1
         end
         return 0",
    )
});

/// KEYS: lock. ARGV: token, lease ms. 1 when the owner's lease was reset, else 0.
pub(crate) static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
           return redis.call('PEXPIRE', KEYS[1], ARGV[2])
         end
         return 0",
    )
});

/// The keys and channel of the lock `name`.
#[derive(Debug, Clone)]
pub(crate) struct LockKeys {
    pub(crate) lock: String,
    pub(crate) fence: String,
    pub(crate) channel: String,
}

impl LockKeys {
    pub(crate) fn new(name: &str) -> Self {
        LockKeys {
            lock: format!("kermes:lock:{{{name}}}"),
            fence: format!("kermes:lock:{{{name}}}:fence"),
            channel: format!("kermes:lock:{{{name}}}:released"),
        }
    }
}
