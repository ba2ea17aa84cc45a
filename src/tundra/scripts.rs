//! Tundra's server-side steps, each one Lua script over a key (KEYS[1]) and its companion
//! (KEYS[2], see `keys::companion`), which share a slot.
//!
//! The companion's `t`/`ta` fields tell Tundra's TTL apart from the user's: the key's TTL is
//! Tundra's only while `t` is 1 and the key's expiry still equals `ta` (a user who set
//! another TTL since made it theirs). `ux` is the user's own expiry, kept while Tundra's
//! shorter one runs.

use std::sync::LazyLock;

use crate::script::Script;

const PRELUDE: &str = "
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function field(name)
  return tonumber(redis.call('HGET', KEYS[2], name) or 0)
end
-- Whether the key's current TTL is the one Tundra set.
local function tundra_ttl()
  return redis.call('HGET', KEYS[2], 't') == '1'
    and field('ta') == redis.call('PEXPIRETIME', KEYS[1])
end
-- The user's own expiry of the key (0 for none).
local function user_expiry()
  if tundra_ttl() then return field('ux') end
  local e = redis.call('PEXPIRETIME', KEYS[1])
  if e > 0 then return e end
  return 0
end
local function expire_both_at(at)
  if at > 0 then
    redis.call('PEXPIREAT', KEYS[1], at)
    redis.call('PEXPIREAT', KEYS[2], at)
  else
    redis.call('PERSIST', KEYS[1])
    redis.call('PERSIST', KEYS[2])
  end
end
";

fn script(body: &str) -> Script {
    Script::new(format!("{PRELUDE}{body}"))
}

/// Marks the key dirty: Tundra's TTL, if it runs, gives way to the user's (or none), so the
/// key cannot expire before its new version is replicated. 1 when the key exists.
pub(crate) static DIRTY: LazyLock<Script> = LazyLock::new(|| {
    script(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
         if redis.call('HGET', KEYS[2], 't') == '1' then
           if tundra_ttl() then expire_both_at(field('ux')) end
           redis.call('HSET', KEYS[2], 't', '0')
         end
         return 1",
    )
});

/// `{dump, generation, user expiry}`, or nil when the key does not exist. The generation
/// is above every earlier one of this key (the companion's last plus one, or the server's
/// clock in microseconds when that is higher, so a lost companion cannot go back).
pub(crate) static DUMP: LazyLock<Script> = LazyLock::new(|| {
    script(
        "local d = redis.call('DUMP', KEYS[1])
         if not d then return false end
         local t = redis.call('TIME')
         local g = field('g') + 1
         local us = tonumber(t[1]) * 1000000 + tonumber(t[2])
         if us > g then g = us end
         local ux = user_expiry()
         local gs = string.format('%.0f', g)
         redis.call('HSET', KEYS[2], 'g', gs)
         local e = redis.call('PEXPIRETIME', KEYS[1])
         if e > 0 then redis.call('PEXPIREAT', KEYS[2], e) else redis.call('PERSIST', KEYS[2]) end
         return {d, gs, ux}",
    )
});

/// After the store holds a dump: ARGV sha1 of the dump, its generation, Tundra's TTL in ms
/// (0: none), the user expiry dumped. When the key is still exactly what was dumped (same
/// content, no dump since, same user expiry), Tundra's TTL is applied (unless the user's
/// own expiry comes first) and `expiring` or `kept` is returned; `changed` when it is not
/// (replicate again); `gone` when the key no longer exists.
pub(crate) static COMMIT: LazyLock<Script> = LazyLock::new(|| {
    script(
        "local d = redis.call('DUMP', KEYS[1])
         if not d then return 'gone' end
         if redis.sha1hex(d) ~= ARGV[1] then return 'changed' end
         if redis.call('HGET', KEYS[2], 'g') ~= ARGV[2] then return 'changed' end
         local ux = tonumber(ARGV[4])
         if user_expiry() ~= ux then return 'changed' end
         local ttl = tonumber(ARGV[3])
         if ttl == 0 then return 'kept' end
         local at = now_ms() + ttl
         if ux > 0 and ux <= at then
           if tundra_ttl() then expire_both_at(ux) end
           redis.call('HSET', KEYS[2], 'ux', ARGV[4], 't', '0')
           return 'kept'
         end
         expire_both_at(at)
         redis.call('HSET', KEYS[2], 'ux', ARGV[4], 't', '1', 'ta', string.format('%.0f', at))
         return 'expiring'",
    )
});

/// The first step of `ensure`: 1 when the key exists (a Tundra TTL on it is pushed to at
/// least ARGV[1] ms from now, as the user asked for the key), 0 when it must be restored.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    script(
        "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
         local ttl = tonumber(ARGV[1])
         if ttl > 0 and tundra_ttl() then
           local at = now_ms() + ttl
           local ux = field('ux')
           if ux > 0 and ux < at then at = ux end
           if at > redis.call('PEXPIRETIME', KEYS[1]) then
             expire_both_at(at)
             redis.call('HSET', KEYS[2], 'ta', string.format('%.0f', at))
           end
         end
         return 1",
    )
});

/// Restores a key from its record: ARGV dump, generation, user expiry (0: none), Tundra's
/// TTL in ms (0: none). `present` when the key exists (left as it is), `expired` when its
/// own expiry has passed, else `restored`, with the earlier of its own expiry and Tundra's
/// TTL.
pub(crate) static RESTORE: LazyLock<Script> = LazyLock::new(|| {
    script(
        "if redis.call('EXISTS', KEYS[1]) == 1 then return 'present' end
         local now = now_ms()
         local ux = tonumber(ARGV[3])
         if ux > 0 and ux <= now then return 'expired' end
         local ttl = tonumber(ARGV[4])
         local at = ux
         local mine = '0'
         if ttl > 0 and (ux == 0 or now + ttl < ux) then
           at = now + ttl
           mine = '1'
         end
         redis.call('RESTORE', KEYS[1], string.format('%.0f', at), ARGV[1], 'ABSTTL')
         if tonumber(ARGV[2]) > field('g') then redis.call('HSET', KEYS[2], 'g', ARGV[2]) end
         redis.call('HSET', KEYS[2], 'ux', ARGV[3], 't', mine, 'ta', string.format('%.0f', at))
         if at > 0 then redis.call('PEXPIREAT', KEYS[2], at) else redis.call('PERSIST', KEYS[2]) end
         return 'restored'",
    )
});
