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
/// `pubsub::wake`), what to publish (`released` wakes one waiter, `all` every one). 1 when
/// released by its owner (waiters are told), 0 when the caller no longer held it.
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
           redis.call('DEL', KEYS[1])
           redis.call(ARGV[3], ARGV[2], ARGV[4])
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

/// How a guard's token is held in its `lock` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// The key's value is the token (a lock, a write lock, a fair lock).
    Key,
    /// The token is a member of a sorted set scored by its lease's end in server
    /// milliseconds (a semaphore's permits, a read lock's readers).
    Member,
}

/// The keys and channel of a lock, and how its guard holds it.
#[derive(Debug, Clone)]
pub(crate) struct LockKeys {
    pub(crate) lock: String,
    pub(crate) fence: String,
    pub(crate) channel: String,
    pub(crate) held: Held,
    /// What a release publishes: `released` wakes one waiter, `all` every waiter.
    pub(crate) wake: &'static str,
}

impl LockKeys {
    pub(crate) fn new(name: &str) -> Self {
        Self::family("lock", name, Held::Key, "released")
    }

    /// Keys `kermes:<kind>:{name}`, `...:fence`, `...:released`.
    pub(crate) fn family(kind: &str, name: &str, held: Held, wake: &'static str) -> Self {
        LockKeys {
            lock: format!("kermes:{kind}:{{{name}}}"),
            fence: format!("kermes:{kind}:{{{name}}}:fence"),
            channel: format!("kermes:{kind}:{{{name}}}:released"),
            held,
            wake,
        }
    }

    /// Another key of the same lock (same hash tag).
    pub(crate) fn sibling(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.lock)
    }
}

const NOW_MS: &str = "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- A set of leased members expires after its last lease.
local function expire_after_last(set)
  local last = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
  if last[2] then redis.call('PEXPIREAT', set, last[2]) end
end
";

fn timed(body: &str) -> Script {
    Script::new(format!("{NOW_MS}{body}"))
}

/// KEYS: set. ARGV: token, lease ms. 1 when the member's lease (still running) was reset.
pub(crate) static MEMBER_EXTEND: LazyLock<Script> = LazyLock::new(|| {
    timed(
        "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
         if not s or tonumber(s) <= now then
           redis.call('ZREM', KEYS[1], ARGV[1])
           return 0
         end
         redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
         expire_after_last(KEYS[1])
         return 1",
    )
});

/// KEYS: set. ARGV: token, channel, publish command, what to publish. 1 when the member's
/// lease was still running; waiters are told whenever a member left.
pub(crate) static MEMBER_RELEASE: LazyLock<Script> = LazyLock::new(|| {
    timed(
        "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
         if not s then return 0 end
         redis.call('ZREM', KEYS[1], ARGV[1])
         redis.call(ARGV[3], ARGV[2], ARGV[4])
         if tonumber(s) > now then return 1 end
         return 0",
    )
});

/// KEYS: set. ARGV: token. 1 while the member's lease runs.
pub(crate) static MEMBER_HELD: LazyLock<Script> = LazyLock::new(|| {
    timed(
        "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
         if s and tonumber(s) > now then return 1 end
         return 0",
    )
});

/// KEYS: permits set, fence. ARGV: token, lease ms, permits. `{1, fence}` when a permit was
/// taken, else `{0, ms until the first lease ends}`.
pub(crate) static SEMAPHORE_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    timed(
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
         if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
           redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
           expire_after_last(KEYS[1])
           return {1, redis.call('INCR', KEYS[2])}
         end
         local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
         return {0, tonumber(first[2]) - now}",
    )
});

/// KEYS: readers, writer, writers waiting, fence. ARGV: token, lease ms. A reader gets in
/// when no writer holds the lock or waits for it (writers are not starved): `{1, fence}`,
/// else `{0, ms to wait at most}`.
pub(crate) static READ_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    timed(
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
         redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
         local w = redis.call('PTTL', KEYS[2])
         if w > 0 then return {0, w} end
         local waiting = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
         if waiting[2] then return {0, tonumber(waiting[2]) - now} end
         redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
         expire_after_last(KEYS[1])
         return {1, redis.call('INCR', KEYS[4])}",
    )
});

/// KEYS: readers, writer, writers waiting, fence. ARGV: token, lease ms, how long a waiting
/// writer's claim holds off new readers (ms). `{1, fence}` when taken, else the writer's
/// claim is (re)registered and `{0, ms to wait at most}`.
pub(crate) static WRITE_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    timed(
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
         redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
         local w = redis.call('PTTL', KEYS[2])
         local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
         if w > 0 or last[2] then
           redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
           expire_after_last(KEYS[3])
           local left = w
           if last[2] and tonumber(last[2]) - now > left then left = tonumber(last[2]) - now end
           return {0, left}
         end
         redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
         redis.call('ZREM', KEYS[3], ARGV[1])
         return {1, redis.call('INCR', KEYS[4])}",
    )
});

/// KEYS: lock, queue (token by arrival), alive (token by the end of its waiting lease),
/// tickets, fence. ARGV: token, lease ms, waiting lease ms. Waiters are served in arrival
/// order; one that stopped renewing its place (a dead process) is skipped once its waiting
/// lease ends. `{1, fence}` when taken, else `{0, ms to wait at most}`.
pub(crate) static FAIR_ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    timed(
        "for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)) do
           redis.call('ZREM', KEYS[2], dead)
           redis.call('ZREM', KEYS[3], dead)
         end
         if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
           redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[4]), ARGV[1])
         end
         redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
         expire_after_last(KEYS[3])
         redis.call('PEXPIRE', KEYS[2], ARGV[3])
         local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
         if head == ARGV[1] and redis.call('EXISTS', KEYS[1]) == 0 then
           redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
           redis.call('ZREM', KEYS[2], ARGV[1])
           redis.call('ZREM', KEYS[3], ARGV[1])
           return {1, redis.call('INCR', KEYS[5])}
         end
         local left = redis.call('PTTL', KEYS[1])
         if left < 1 then left = 1 end
         return {0, left}",
    )
});

/// KEYS: waiting writers. ARGV: token. A writer that stopped waiting withdraws its claim.
pub(crate) static ZREM_WAITING: LazyLock<Script> =
    LazyLock::new(|| Script::new("return redis.call('ZREM', KEYS[1], ARGV[1])"));

/// KEYS: queue, alive. ARGV: token. A waiter gives up its place.
pub(crate) static FAIR_LEAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('ZREM', KEYS[1], ARGV[1])
         return redis.call('ZREM', KEYS[2], ARGV[1])",
    )
});
