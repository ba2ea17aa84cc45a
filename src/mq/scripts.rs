//! The queue's server-side steps, each one atomic Lua function over one queue's keys (each
//! call names its queue's `msg` key; the other keys, which share its hash tag, are named
//! from it in [`SUFFIXES`](super::keys::SUFFIXES) order). Every deadline is computed from
//! the server's clock (`TIME`), never a client's.
//!
//! The steps are the functions of one Redis function library ([`HELPERS`] and every
//! [`Step`]'s body; see `library.rs`), loaded once per server: the helpers are defined when
//! the library loads, not on every call, and each call starts with `begin(KEYS)`. The same
//! text also runs as one EVAL script per step where the server has no functions.

/// One step: a name (its function's, after the library's) and a Lua body run with `KEYS`
/// (the queue's keys) and `ARGV`, after `begin(KEYS)`.
#[derive(Debug)]
pub(crate) struct Step {
    pub(crate) name: &'static str,
    pub(crate) body: &'static str,
    /// Runs no write command: registered `no-writes`, so it still answers when the server
    /// is out of memory.
    pub(crate) reads_only: bool,
}

impl Step {
    const fn new(name: &'static str, body: &'static str) -> Step {
        Step {
            name,
            body,
            reads_only: false,
        }
    }

    const fn reader(name: &'static str, body: &'static str) -> Step {
        Step {
            name,
            body,
            reads_only: true,
        }
    }
}

/// Shared by every step: key names, the server's clock in ms, and the state helpers. The
/// `local`s at the top are the library's: `begin` sets them at the start of each call (a
/// server runs one call at a time). Preceded by `local SUFFIXES = {...}` (see
/// `library.rs`).
///
/// Numbers go to `redis.call` as numbers: the server writes them out exactly (every
/// integer below 2^53, the 16-digit scores of the ready set too). Lua's own conversion
/// (`..`, `tostring`) is `%.14g`, exact only below 10^14: it is used for times in ms,
/// lock ms and attempts, never for scores. Formatting a number costs about as much as a
/// command call, so the steps taken per message (enqueue, claim, ack) keep the record's
/// fields as the strings they were read as.
pub(crate) const HELPERS: &str = r#"
local K_MSG, K_META, K_LOCK, K_READY, K_DELAYED, K_LOCKED, K_REQUEUE, K_DONE
local K_DEAD, K_ERR, K_SEQ, K_PAUSED, K_LIMIT, K_WINDOW, K_PROGRESS
local K_EVENTS, K_CONFIG, K_METRICS, K_SCHED, K_SCHED_DUE, K_SCHED_MSG
local K_PARENT, K_OUTBOX, K_OUTBOX_DUE, K_WAITING, K_EXTRAS
-- The server's clock (ms) when the step began, and as a string.
local now, nows = 0, '0'
-- The queue's settings, read once per step at first use (see `setting`).
local settings = nil
-- Set when idle workers must look again (see `want_wake`).
local wake = false

-- Every key of the step's queue, in SUFFIXES order.
local ALL_KEYS = {}
-- Key names by queue (by its `msg` key), made once per queue while the library stays
-- loaded (a function library keeps its state between calls; a script does not, and makes
-- them on each call). Emptied when it holds a thousand queues.
local key_sets, key_sets_n = {}, 0

-- A step is called with one key, its queue's `msg` key: the others share its hash tag
-- (the same slot) and are named from it.
local function begin(keys)
  local k = key_sets[keys[1]]
  if not k then
    local base = string.sub(keys[1], 1, #keys[1] - #SUFFIXES[1])
    k = {}
    for i, suffix in ipairs(SUFFIXES) do k[i] = base .. suffix end
    if key_sets_n >= 1000 then key_sets, key_sets_n = {}, 0 end
    key_sets[keys[1]], key_sets_n = k, key_sets_n + 1
  end
  ALL_KEYS = k
  K_MSG, K_META, K_LOCK, K_READY = k[1], k[2], k[3], k[4]
  K_DELAYED, K_LOCKED, K_REQUEUE, K_DONE = k[5], k[6], k[7], k[8]
  K_DEAD, K_ERR, K_SEQ = k[9], k[10], k[11]
  K_PAUSED, K_LIMIT, K_WINDOW, K_PROGRESS = k[12], k[13], k[14], k[15]
  K_EVENTS, K_CONFIG, K_METRICS = k[16], k[17], k[18]
  K_SCHED, K_SCHED_DUE, K_SCHED_MSG = k[19], k[20], k[21]
  K_PARENT, K_OUTBOX, K_OUTBOX_DUE, K_WAITING = k[22], k[23], k[24], k[25]
  K_EXTRAS = k[26]
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  nows = tostring(now)
  settings, wake = nil, false
end


-- `command key` with the items of `list` as arguments, in chunks of at most 1000 (an even
-- number: pairs stay together; Lua's unpack has a limit). The replies, concatenated when
-- they are lists.
local function call_list(command, key, list)
  local out = {}
  for i = 1, #list, 1000 do
    local r = redis.call(command, key, unpack(list, i, math.min(#list, i + 999)))
    if type(r) == 'table' then
      for _, v in ipairs(r) do out[#out + 1] = v end
    end
  end
  return out
end

-- The queue's settings (config fields `events`: how many events to keep, `metrics`: minutes
-- of outcome counts kept, 0 when off; `idle`: present while a worker waits for a wake-up).
local function setting(name)
  if settings == nil then
    local v = redis.call('HMGET', K_CONFIG, 'events', 'metrics', 'idle')
    settings = {events = tonumber(v[1] or '0'), metrics = tonumber(v[2] or '0'), idle = v[3] ~= false}
  end
  return settings[name]
end

-- A message became runnable or its due time may now be the earliest: idle workers must
-- look again, when there are any. A worker is idle only after a claim that found nothing
-- more to take (which sets `idle`), and the first such change since then wakes it; busy
-- queues publish nothing.
local function want_wake()
  if setting('idle') then wake = true end
end

-- The wake-up, once per step, when one is wanted.
local function publish_wake(channel, command)
  if wake then
    redis.call('HDEL', K_CONFIG, 'idle')
    redis.call(command, channel, '')
    settings.idle, wake = false, false
  end
end

-- Per-minute counts of outcomes ('c' completed, 'f' failed attempts), when turned on. A
-- minute's first count drops the buckets that fell out of the window.
local function count_outcome(kind, by)
  local keep = setting('metrics')
  if keep == 0 then return end
  local minute = math.floor(now / 60000)
  if redis.call('HINCRBY', K_METRICS, kind .. ':' .. minute, by or 1) == (by or 1) then
    for _, f in ipairs(redis.call('HKEYS', K_METRICS)) do
      local m = tonumber(string.match(f, ':(%d+)$'))
      if m and m <= minute - keep then redis.call('HDEL', K_METRICS, f) end
    end
  end
end

-- The queue's event stream, when turned on.
local function event(name, id, ...)
  local kept = setting('events')
  if kept > 0 then
    redis.call('XADD', K_EVENTS, 'MAXLEN', '~', kept, '*', 'event', name, 'id', id, ...)
  end
end

-- A message's record: when it was enqueued, its lock ms (0: the worker's), priority, when
-- it became (or becomes) runnable, and attempts started. One field, so each step reads
-- and writes it once.
local function parse_meta(m)
  if m then
    local born, lockms, prio, due, att = string.match(m, '^(%d+),(%d+),(%-?%d+),(%d+),(%-?%d+)$')
    if born then
      return {born = tonumber(born), lockms = tonumber(lockms), prio = tonumber(prio),
              due = tonumber(due), att = tonumber(att)}
    end
  end
  return {born = now, lockms = 0, prio = 0, due = now, att = 0}
end

local function load(id)
  return parse_meta(redis.call('HGET', K_META, id))
end

local function encode_meta(m)
  return m.born .. ',' .. m.lockms .. ',' .. m.prio .. ',' .. m.due .. ',' .. m.att
end

local function store(id, m)
  redis.call('HSET', K_META, id, encode_meta(m))
end

-- Higher priority first; FIFO within a priority (seq < 2^44).
local function ready_score(prio, seq)
  return (127 - prio) * 17592186044416 + seq
end

local function make_ready(id, prio)
  redis.call('ZADD', K_READY, ready_score(prio, redis.call('INCR', K_SEQ)), id)
end

-- Runnable at `due` (server ms): ready now, or delayed until then. Stores the record.
local function schedule(id, m, due)
  m.due = due
  store(id, m)
  if due > now then
    redis.call('ZADD', K_DELAYED, due, id)
  else
    make_ready(id, m.prio)
  end
  want_wake()
end

-- A message starting over: no attempts, born now, runnable at `due`.
local function fresh(id, m, due)
  m.att, m.born = 0, now
  schedule(id, m, due)
end

-- A key of one message beside the queue's keys (same hash tag): `log` (its log lines),
-- `flow` (a waiting parent's pending children), `flow-results` (its children's ends).
local function side_key(kind, id)
  return string.sub(K_MSG, 1, #K_MSG - 3) .. kind .. ':' .. id
end
local function log_key(id) return side_key('log', id) end

-- Strings that may hold any byte, joined as `<length>:<bytes>` each, and split back.
local function pack(t)
  local o = {}
  for i, v in ipairs(t) do o[i] = #v .. ':' .. v end
  return table.concat(o)
end
local function unpack_fields(s)
  local t, i = {}, 1
  while i <= #s do
    local c = string.find(s, ':', i, true)
    local n = tonumber(string.sub(s, i, c - 1))
    t[#t + 1] = string.sub(s, c + 1, c + n)
    i = c + n + 1
  end
  return t
end

-- A flow child's end, written to the outbox for its parent (on another slot: the caller
-- hands it over). kind: 'ok' (detail: 'n', or 'v' and the returned value), 'dead' (a dead
-- letter, detail its error) or 'gone' (removed or dropped). The parent record says what a
-- failure does: 'fail' the parent, 'ignore' it, or 'wait' while the child is a dead letter
-- (requeued, it may still succeed). True when something is to hand over.
local function child_ended(id, kind, detail)
  local rec = redis.call('HGET', K_PARENT, id)
  if not rec then return false end
  local r = unpack_fields(rec)
  local outcome = 'ok'
  if kind ~= 'ok' then
    if r[2] == 'wait' and kind == 'dead' then return false end
    outcome = (r[2] == 'ignore') and 'ignored' or 'failed'
  end
  local field = r[1] .. ':' .. id
  if redis.call('HSETNX', K_OUTBOX, field, pack({outcome, rec, detail})) == 0 then return false end
  redis.call('ZADD', K_OUTBOX_DUE, now, field)
  return true
end

-- A held message's remains, once its lock entries are gone.
local function forget_held(id)
  redis.call('HDEL', K_MSG, id)
  redis.call('HDEL', K_META, id)
  redis.call('HDEL', K_PROGRESS, id)
  redis.call('DEL', log_key(id), side_key('flow', id), side_key('flow-results', id))
  redis.call('SREM', K_EXTRAS, id)
end

-- Every trace of a message but its de-dup entry; a flow child's parent hears of it.
local function forget(id)
  child_ended(id, 'gone', 'removed')
  forget_held(id)
  redis.call('HDEL', K_WAITING, id)
  redis.call('HDEL', K_LOCK, id)
  redis.call('HDEL', K_ERR, id)
  redis.call('SREM', K_REQUEUE, id)
  redis.call('ZREM', K_READY, id)
  redis.call('ZREM', K_DELAYED, id)
  redis.call('ZREM', K_LOCKED, id)
  redis.call('ZREM', K_DEAD, id)
end

local function bury(id, reason)
  redis.call('HDEL', K_LOCK, id)
  redis.call('ZREM', K_LOCKED, id)
  redis.call('ZADD', K_DEAD, now, id)
  redis.call('HSET', K_ERR, id, reason)
end

-- {state, attempts, ms, detail} or false. A lock whose lease ran out counts as queued: the
-- next claim takes it back.
local function describe(id)
  if redis.call('HEXISTS', K_MSG, id) == 1 then
    local att = load(id).att
    if redis.call('HEXISTS', K_WAITING, id) == 1 then
      return {'waiting', att, redis.call('SCARD', side_key('flow', id)), ''}
    end
    local lock = redis.call('ZSCORE', K_LOCKED, id)
    if lock and tonumber(lock) > now then
      return {'locked', att, tonumber(lock) - now, tostring(redis.call('SISMEMBER', K_REQUEUE, id))}
    end
    if lock or redis.call('ZSCORE', K_READY, id) then return {'queued', att, 0, ''} end
    local due = redis.call('ZSCORE', K_DELAYED, id)
    if due then
      if tonumber(due) > now then return {'delayed', att, tonumber(due) - now, ''} end
      return {'queued', att, 0, ''}
    end
    if redis.call('ZSCORE', K_DEAD, id) then
      return {'dead', att, 0, redis.call('HGET', K_ERR, id) or ''}
    end
  end
  local done = redis.call('ZSCORE', K_DONE, id)
  if done and tonumber(done) > now then return {'done', 0, tonumber(done) - now, ''} end
  return false
end

-- When a message to enqueue (9 fields from A[at + 1]) becomes runnable: now, after its
-- delay, or at its run-at time; as a number and as a string.
local function due_of(A, at)
  if A[at + 5] ~= '0' then return tonumber(A[at + 5]), A[at + 5] end
  if A[at + 4] ~= '0' then
    local due = now + tonumber(A[at + 4])
    return due, tostring(due)
  end
  return now, nows
end

-- One message's enqueue, from A[at + 1]: id, lock ms (0: the worker's), priority, delay ms,
-- run-at ms (0: none), can-update, can-requeue, reset-init-backoff (each '1' or '0'),
-- payload. Returns the result's name.
local function enqueue_one(A, at, payload_override)
  local id, payload = A[at + 1], payload_override or A[at + 9]
  local lockms, prio = tonumber(A[at + 2]), tonumber(A[at + 3])
  local due, dues = due_of(A, at)
  local can_update, can_requeue, reset = A[at + 6] == '1', A[at + 7] == '1', A[at + 8] == '1'

  -- The common case first: a new message (no payload stored) outside any de-dup window,
  -- its record written from the arguments as they came (no number formatted).
  if redis.call('HSETNX', K_MSG, id, payload) == 1 then
    local window = redis.call('ZSCORE', K_DONE, id)
    if not window or tonumber(window) <= now then
      if window then redis.call('ZREM', K_DONE, id) end
      redis.call('HSET', K_META, id, nows .. ',' .. A[at + 2] .. ',' .. A[at + 3] .. ',' .. dues .. ',0')
      if due > now then
        redis.call('ZADD', K_DELAYED, due, id)
      else
        make_ready(id, prio)
      end
      want_wake()
      event(due > now and 'delayed' or 'added', id)
      return 'added'
    end
    redis.call('HDEL', K_MSG, id)
  end

  local d = describe(id)
  local state = d and d[1]
  if not state then
    -- A payload without a state (left by an interrupted step): enqueued afresh.
    redis.call('ZREM', K_DONE, id)
    redis.call('HSET', K_MSG, id, payload)
    schedule(id, {born = now, lockms = lockms, prio = prio, att = 0}, due)
    event(due > now and 'delayed' or 'added', id)
    return 'added'
  elseif state == 'queued' or state == 'delayed' then
    if not can_update then return 'already-queued' end
    redis.call('HSET', K_MSG, id, payload)
    local m = load(id)
    m.lockms, m.prio = lockms, prio
    if reset and not redis.call('ZSCORE', K_LOCKED, id) then
      redis.call('ZREM', K_READY, id)
      redis.call('ZREM', K_DELAYED, id)
      schedule(id, m, due)
    else
      store(id, m)
    end
    return 'updated'
  elseif state == 'locked' then
    local requeued = d[4] == '1'
    if requeued and not can_update then return 'locked' end
    if not requeued and not can_requeue then return 'locked' end
    if can_update then
      redis.call('HSET', K_MSG, id, payload)
      local m = load(id)
      m.lockms, m.prio = lockms, prio
      store(id, m)
    end
    if requeued then return 'updated' end
    redis.call('SADD', K_REQUEUE, id)
    redis.call('SADD', K_EXTRAS, id)
    return 'requeued'
  elseif state == 'done' then
    if not can_requeue then return 'backoff' end
    local until_ms = tonumber(redis.call('ZSCORE', K_DONE, id))
    redis.call('ZREM', K_DONE, id)
    redis.call('HSET', K_MSG, id, payload)
    fresh(id, {lockms = lockms, prio = prio}, math.max(due, until_ms))
    event('added', id)
    return 'added'
  elseif state == 'waiting' then
    -- A flow parent waiting for its children: not changed by a plain enqueue.
    return 'already-queued'
  elseif state == 'dead' then
    if not can_requeue then return 'dead' end
    redis.call('ZREM', K_DEAD, id)
    redis.call('HDEL', K_ERR, id)
    redis.call('HSET', K_MSG, id, payload)
    fresh(id, {lockms = lockms, prio = prio}, due)
    event('added', id)
    return 'added'
  end
end

-- `count` messages of 9 fields each (as enqueue_one's) from A[at + 1]; returns each one's
-- result name, in order. The new ones (no payload stored, outside any de-dup window, the
-- first of their id here) are added together, one command per structure; the others go
-- one by one through enqueue_one, after them, so a repeated id sees its first.
local function enqueue_all(A, at, count)
  if count == 1 then return {enqueue_one(A, at)} end
  local results, ids, fresh, seen = {}, {}, {}, {}
  for i = 1, count do ids[i] = A[at + (i - 1) * 9 + 1] end
  local stored = call_list('HMGET', K_MSG, ids)
  local windows = call_list('ZMSCORE', K_DONE, ids)
  for i = 1, count do
    local id = ids[i]
    if not stored[i] and not seen[id] and (not windows[i] or tonumber(windows[i]) <= now) then
      fresh[#fresh + 1] = i
    end
    seen[id] = true
  end
  if #fresh > 0 then
    local payloads, records, ready, delayed, ended = {}, {}, {}, {}, {}
    local last = redis.call('INCRBY', K_SEQ, #fresh)
    for j, i in ipairs(fresh) do
      local o, id = at + (i - 1) * 9, ids[i]
      if windows[i] then ended[#ended + 1] = id end
      local due, dues = due_of(A, o)
      payloads[#payloads + 1] = id
      payloads[#payloads + 1] = A[o + 9]
      records[#records + 1] = id
      records[#records + 1] = nows .. ',' .. A[o + 2] .. ',' .. A[o + 3] .. ',' .. dues .. ',0'
      if due > now then
        delayed[#delayed + 1] = due
        delayed[#delayed + 1] = id
        event('delayed', id)
      else
        ready[#ready + 1] = ready_score(tonumber(A[o + 3]), last - #fresh + j)
        ready[#ready + 1] = id
        event('added', id)
      end
      results[i] = 'added'
    end
    if #ended > 0 then call_list('ZREM', K_DONE, ended) end
    call_list('HSET', K_MSG, payloads)
    call_list('HSET', K_META, records)
    if #ready > 0 then call_list('ZADD', K_READY, ready) end
    if #delayed > 0 then call_list('ZADD', K_DELAYED, delayed) end
    want_wake()
  end
  for i = 1, count do
    if not results[i] then results[i] = enqueue_one(A, at + (i - 1) * 9) end
  end
  return results
end

-- Taking up to `n` messages with the worker's lock ms and max attempts (0: no limit);
-- returns the claim reply described at CLAIM. `light`: for a claim riding on an ack, which
-- skips pruning de-dup entries and the next-due computation (the fetcher's claims do
-- those).
local function claim(n, deflock, maxatt, light)
  if not light then redis.call('ZREMRANGEBYSCORE', K_DONE, '-inf', now) end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_DELAYED, '-inf', now, 'LIMIT', 0, 256)) do
    redis.call('ZREM', K_DELAYED, id)
    make_ready(id, load(id).prio)
  end
  -- Leases that ran out: their worker died or stalled. Back to the queue, or to the
  -- dead letters when that was the last attempt.
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_LOCKED, '-inf', '(' .. nows, 'LIMIT', 0, 256)) do
    redis.call('ZREM', K_LOCKED, id)
    redis.call('HDEL', K_LOCK, id)
    event('stalled', id)
    local m = load(id)
    if redis.call('SREM', K_REQUEUE, id) == 1 then
      fresh(id, m, now)
    elseif maxatt > 0 and m.att >= maxatt then
      bury(id, 'the lease ran out during the last attempt (worker died or stalled)')
      event('dead', id, 'error', 'the lease ran out during the last attempt')
      child_ended(id, 'dead', 'the lease ran out during the last attempt')
    else
      schedule(id, m, now)
    end
  end

  -- Paused: nothing is taken (resuming wakes the workers). Rate-limited: at most what is
  -- left of the window's allowance, and when none is, the wait is the window's end.
  local asked = n
  local limited = -1
  local state = redis.call('MGET', K_PAUSED, K_LIMIT, K_WINDOW)
  local paused, limit_spec = state[1] ~= false, state[2]
  if paused then
    n = 0
  elseif limit_spec then
    local max, per = string.match(limit_spec, '^(%d+),(%d+)$')
    max, per = tonumber(max), tonumber(per)
    local left = max - tonumber(state[3] or '0')
    if left < n then n = math.max(left, 0) end
    if n == 0 then
      limited = redis.call('PTTL', K_WINDOW)
      if limited < 0 then limited = per end
    end
  end

  local out = {-1, 0, now}
  local popped = {}
  if n > 0 then popped = redis.call('ZPOPMIN', K_READY, n) end
  if #popped > 0 and limit_spec then
    if redis.call('INCRBY', K_WINDOW, #popped / 2) == #popped / 2 then
      redis.call('PEXPIRE', K_WINDOW, tonumber(string.match(limit_spec, ',(%d+)$')))
    end
  end
  -- All the messages taken at once: one command per structure, not per message.
  local ids = {}
  for i = 1, #popped, 2 do ids[#ids + 1] = popped[i] end
  local payloads, metas = {}, {}
  if #ids > 0 then
    payloads = call_list('HMGET', K_MSG, ids)
    metas = call_list('HMGET', K_META, ids)
  end
  local taken = {}
  for i, id in ipairs(ids) do
    if payloads[i] then taken[#taken + 1] = i else forget(id) end
  end
  if #taken > 0 then
    local last = redis.call('INCRBY', K_SEQ, #taken)
    local records, tokens, leases = {}, {}, {}
    for j, i in ipairs(taken) do
      local id = ids[i]
      -- The record's fields stay strings; only the attempts are counted up.
      local born, lockms, prio, due, att = string.match(metas[i] or '', '^(%d+),(%d+),(%-?%d+),(%d+),(%-?%d+)$')
      if not born then born, lockms, prio, due, att = nows, '0', '0', nows, '0' end
      att = tonumber(att) + 1
      local lock = tonumber(lockms)
      if lock == 0 then lock = deflock end
      local token = last - #taken + j
      records[#records + 1] = id
      records[#records + 1] = born .. ',' .. lockms .. ',' .. prio .. ',' .. due .. ',' .. att
      tokens[#tokens + 1] = id
      tokens[#tokens + 1] = token
      leases[#leases + 1] = now + lock
      leases[#leases + 1] = id
      local n_out = #out
      out[n_out + 1] = id
      out[n_out + 2] = payloads[i]
      out[n_out + 3] = att
      out[n_out + 4] = token
      out[n_out + 5] = lock
      out[n_out + 6] = born
      out[n_out + 7] = due
      event('active', id, 'attempt', att)
    end
    call_list('HSET', K_META, records)
    call_list('HSET', K_LOCK, tokens)
    call_list('ZADD', K_LOCKED, leases)
  end

  if light then
    out[1] = -1
    return out
  end
  -- Flow hand-offs due (a handing worker died, or a step here ended a child): the caller
  -- hands them over.
  out[2] = redis.call('ZCOUNT', K_OUTBOX_DUE, '-inf', now)
  local handoff = redis.call('ZRANGE', K_OUTBOX_DUE, 0, 0, 'WITHSCORES')
  if paused then
    out[1] = -1
  elseif limited >= 0 then
    out[1] = math.max(limited, 1)
  elseif redis.call('ZCARD', K_READY) > 0 then
    out[1] = 0
  else
    local next_ms = -1
    local first = redis.call('ZRANGE', K_DELAYED, 0, 0, 'WITHSCORES')
    if first[2] then next_ms = math.max(0, tonumber(first[2]) - now) end
    for _, f in ipairs({redis.call('ZRANGE', K_LOCKED, 0, 0, 'WITHSCORES'), handoff}) do
      if f[2] then
        local t = math.max(0, tonumber(f[2]) - now)
        if next_ms < 0 or t < next_ms then next_ms = t end
      end
    end
    out[1] = next_ms
    -- Nothing more to take: the worker waits for a wake-up, and the next message made
    -- runnable sends one.
    if #taken < asked then redis.call('HSET', K_CONFIG, 'idle', '1') end
  end
  return out
end

-- Recording one outcome: id, fencing token, action, ms, error, 'v' or 'n', value (see ACK).
-- 1 when applied, 2 when applied and a flow child's end waits in the outbox, 0 when the
-- token is stale.
local function ack(id, token, action, ms, err, kind, value)
  ms = tonumber(ms)
  if redis.call('HGET', K_LOCK, id) ~= token then return 0 end
  redis.call('HDEL', K_LOCK, id)
  redis.call('ZREM', K_LOCKED, id)
  local requeue = redis.call('SREM', K_REQUEUE, id) == 1
  if err ~= '' then
    event('failed', id, 'error', err)
    count_outcome('f')
  end
  if action == 'done' then
    event('completed', id)
    count_outcome('c')
  elseif action == 'retry' then event('retried', id, 'delay', ms)
  elseif action == 'bury' then event('dead', id, 'error', err)
  elseif action == 'drop' then event('removed', id)
  elseif action == 'limited' then event('rate-limited', id, 'delay', ms)
  else event('released', id) end
  -- A flow child's end goes to the outbox before its remains are forgotten.
  local handoff = false
  if action == 'done' then
    handoff = child_ended(id, 'ok', kind == 'v' and ('v' .. value) or 'n')
  elseif action == 'bury' then
    handoff = child_ended(id, 'dead', err)
  elseif action == 'drop' then
    handoff = child_ended(id, 'gone', err)
  end
  local m = nil
  if action ~= 'done' or requeue then m = load(id) end
  if action == 'retry' then
    schedule(id, m, now + ms)
  elseif action == 'release' or action == 'limited' then
    -- Stopped before it finished, or rate limited by the handler: this attempt does not
    -- count.
    m.att = math.max(0, m.att - 1)
    schedule(id, m, now + ms)
  elseif requeue then
    -- A requeue was asked for while this handling ran: the message runs again, afresh
    -- (after the de-dup window, if one was set).
    local due = now
    if action == 'done' and ms > 0 then
      redis.call('ZADD', K_DONE, now + ms, id)
      due = now + ms
    end
    fresh(id, m, due)
  elseif action == 'done' then
    forget_held(id)
    if ms > 0 then redis.call('ZADD', K_DONE, now + ms, id) end
  elseif action == 'bury' then
    bury(id, err)
  else
    forget_held(id)
  end
  return handoff and 2 or 1
end

-- `k` outcomes from A[at + 1], 8 fields each: ack's 7, then '1' when the handler takes the
-- next message. Returns each outcome's code (as ack's). Plain completions (a message
-- without extras: no requeue pending, flow role, log or progress) are applied together,
-- one command per structure; the others one by one.
local function ack_all(A, at, k)
  local ids, codes, live = {}, {}, {}
  for i = 1, k do ids[i] = A[at + (i - 1) * 8 + 1] end
  local held = call_list('HMGET', K_LOCK, ids)
  for i = 1, k do
    if held[i] == A[at + (i - 1) * 8 + 2] then live[#live + 1] = ids[i] else codes[i] = 0 end
  end
  if #live == 0 then return codes end
  local extras = call_list('SMISMEMBER', K_EXTRAS, live)
  -- A pending requeue or a flow child's parent record is also looked up where it is kept,
  -- whenever any exists (one EXISTS when none does), so a message marked before the
  -- `extras` set existed is never completed by the plain path.
  if redis.call('EXISTS', K_REQUEUE, K_PARENT) > 0 then
    local requeued = call_list('SMISMEMBER', K_REQUEUE, live)
    local parents = call_list('HMGET', K_PARENT, live)
    for n = 1, #live do
      if requeued[n] == 1 or parents[n] then extras[n] = 1 end
    end
  end
  local plain, windows, j = {}, {}, 0
  for i = 1, k do
    if codes[i] == nil then
      j = j + 1
      local o = at + (i - 1) * 8
      if A[o + 3] == 'done' and extras[j] == 0 then
        plain[#plain + 1] = ids[i]
        if A[o + 4] ~= '0' then
          windows[#windows + 1] = now + tonumber(A[o + 4])
          windows[#windows + 1] = ids[i]
        end
        event('completed', ids[i])
        codes[i] = 1
      else
        codes[i] = ack(A[o + 1], A[o + 2], A[o + 3], A[o + 4], A[o + 5], A[o + 6], A[o + 7])
      end
    end
  end
  if #plain > 0 then
    call_list('HDEL', K_LOCK, plain)
    call_list('ZREM', K_LOCKED, plain)
    call_list('HDEL', K_MSG, plain)
    call_list('HDEL', K_META, plain)
    if #windows > 0 then call_list('ZADD', K_DONE, windows) end
    count_outcome('c', #plain)
  end
  return codes
end
"#;

/// ARGV: wake channel, the command to publish with (see `pubsub::wake`), then 9 arguments
/// per message (see `enqueue_one`). Returns each message's result name, in order; idle
/// workers are woken once.
pub(crate) static ENQUEUE: Step = Step::new(
    "enqueue",
    r#"
local results = enqueue_all(ARGV, 2, (#ARGV - 2) / 9)
publish_wake(ARGV[1], ARGV[2])
return results
"#,
);

/// ARGV: how many to take, the worker's lock ms, max attempts (0: no limit). Returns
/// `{ms until the next due message, lease end or flow hand-off (-1: none), flow hand-offs
/// due now, the server's clock (ms), then per message: id, payload, attempt, fencing
/// token, lock ms, when it was enqueued (ms), when it became due (ms)}`. A claim that leaves the worker nothing more to take marks the queue
/// idle, so the next message made runnable wakes it.
pub(crate) static CLAIM: Step = Step::new(
    "claim",
    r#"
return claim(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), false)
"#,
);

/// ARGV: id, fencing token, lock ms. 1 when the holder's lease was renewed, 0 when the
/// message is no longer held with this token.
pub(crate) static RENEW: Step = Step::new(
    "renew",
    r#"
if redis.call('HGET', K_LOCK, ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', K_LOCKED, 'XX', now + tonumber(ARGV[3]), ARGV[1])
return 1
"#,
);

/// Outcomes, and the next messages for the handlers that take one, in one step. ARGV: wake
/// channel, the command to publish with, how many outcomes (k), then per outcome: id,
/// fencing token, action (done, retry, bury, drop, release, limited), ms (de-dup window for
/// done, backoff for retry, delay for limited), error text, 'v' when the handler returned a
/// value or 'n', the value, '1' when its handler takes the next message or '0'; then the
/// worker's lock ms and max attempts (those of [`CLAIM`]). Returns `{each outcome's code:
/// 1 applied, 2 applied and a flow child's end waits in the outbox for its parent, 0 the
/// token was stale (the lease was lost and the message taken over, or cleared); then a
/// light claim's reply (as [`CLAIM`]'s, its first two fields unused) of up to one message
/// per applied outcome that takes one}`.
pub(crate) static ACK: Step = Step::new(
    "ack",
    r#"
local k = tonumber(ARGV[3])
local codes = ack_all(ARGV, 3, k)
local want = 0
for i = 1, k do
  if codes[i] ~= 0 and ARGV[3 + i * 8] == '1' then want = want + 1 end
end
local out = {-1, 0, now}
local at = 3 + k * 8
if want > 0 then out = claim(want, tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2]), true) end
publish_wake(ARGV[1], ARGV[2])
local reply = {}
for i = 1, k do reply[i] = codes[i] end
for _, v in ipairs(out) do reply[#reply + 1] = v end
return reply
"#,
);

/// No ARGV. `{queued, delayed, locked, done, dead, requeue pending, paused, waiting for
/// children}`, exact and O(log n).
pub(crate) static STATUS: Step = Step::reader(
    "status",
    r#"
local due = redis.call('ZCOUNT', K_DELAYED, '-inf', now)
local live = redis.call('ZCOUNT', K_LOCKED, '(' .. nows, '+inf')
local expired = redis.call('ZCARD', K_LOCKED) - live
return {
  redis.call('ZCARD', K_READY) + due + expired,
  redis.call('ZCARD', K_DELAYED) - due,
  live,
  redis.call('ZCOUNT', K_DONE, '(' .. nows, '+inf'),
  redis.call('ZCARD', K_DEAD),
  redis.call('SCARD', K_REQUEUE),
  redis.call('EXISTS', K_PAUSED),
  redis.call('HLEN', K_WAITING),
}
"#,
);

/// ARGV: id. `describe(id)` or nil.
pub(crate) static MESSAGE_STATUS: Step = Step::reader(
    "message_status",
    r#"
return describe(ARGV[1])
"#,
);

/// ARGV: cursor, count. `{next cursor, then per message: id, payload, describe(id)}`.
pub(crate) static CONTENT: Step = Step::reader(
    "content",
    r#"
local page = redis.call('HSCAN', K_MSG, ARGV[1], 'COUNT', ARGV[2])
local out = {page[1]}
for i = 1, #page[2], 2 do
  local d = describe(page[2][i])
  if d then
    out[#out + 1] = page[2][i]
    out[#out + 1] = page[2][i + 1]
    out[#out + 1] = d
  end
end
return out
"#,
);

/// ARGV: start, stop (ZRANGE indexes). Per dead letter: `{id, payload, attempts, error,
/// when ms}`, oldest first.
pub(crate) static DEAD_LETTERS: Step = Step::reader(
    "dead_letters",
    r#"
local out = {}
local ids = redis.call('ZRANGE', K_DEAD, ARGV[1], ARGV[2], 'WITHSCORES')
for i = 1, #ids, 2 do
  local id = ids[i]
  out[#out + 1] = {id, redis.call('HGET', K_MSG, id) or '',
    load(id).att, redis.call('HGET', K_ERR, id) or '',
    tonumber(ids[i + 1])}
end
return out
"#,
);

/// ARGV: wake channel, the command to publish with, then ids (none: every dead letter). Requeues dead letters afresh
/// (no attempts); returns how many.
pub(crate) static REQUEUE_DEAD: Step = Step::new(
    "requeue_dead",
    r#"
local ids = {}
for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then ids = redis.call('ZRANGE', K_DEAD, 0, -1) end
local n = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', K_DEAD, id) == 1 then
    redis.call('HDEL', K_ERR, id)
    fresh(id, load(id), now)
    n = n + 1
  end
end
if n > 0 then redis.call(ARGV[2], ARGV[1], '') end
return n
"#,
);

/// ARGV: wake channel, the command to publish with. Deletes the queue; returns how many
/// messages it held. Workers waiting for a wake-up are woken, so that they mark the queue
/// idle again.
pub(crate) static CLEAR: Step = Step::new(
    "clear",
    r#"
local n = redis.call('HLEN', K_MSG)
for _, id in ipairs(redis.call('HKEYS', K_MSG)) do
  redis.call('DEL', log_key(id), side_key('flow', id), side_key('flow-results', id))
end
local idle = redis.call('HEXISTS', K_CONFIG, 'idle') == 1
redis.call('DEL', unpack(ALL_KEYS))
if idle then redis.call(ARGV[2], ARGV[1], '') end
return n
"#,
);

/// ARGV: '1' to pause, '0' to resume, wake channel, the command to publish with. Resuming
/// wakes idle workers. Returns 1 when the state changed.
pub(crate) static PAUSE: Step = Step::new(
    "pause",
    r#"
if ARGV[1] == '1' then
  return redis.call('SET', K_PAUSED, '1', 'NX') and 1 or 0
end
local was = redis.call('DEL', K_PAUSED)
if was == 1 then redis.call(ARGV[3], ARGV[2], '') end
return was
"#,
);

/// ARGV: max messages (0: no limit), per ms, wake channel, publish command. Sets or clears
/// the queue's rate limit.
pub(crate) static SET_LIMIT: Step = Step::new(
    "set_limit",
    r#"
if tonumber(ARGV[1]) == 0 then
  redis.call('DEL', K_LIMIT, K_WINDOW)
else
  redis.call('SET', K_LIMIT, ARGV[1] .. ',' .. ARGV[2])
end
redis.call(ARGV[4], ARGV[3], '')
return 1
"#,
);

/// ARGV: id. `removed`, `locked` (a worker holds it: not removed) or `missing`.
pub(crate) static REMOVE: Step = Step::new(
    "remove",
    r#"
local d = describe(ARGV[1])
if not d then return 'missing' end
if d[1] == 'locked' then return 'locked' end
forget(ARGV[1])
redis.call('ZREM', K_DONE, ARGV[1])
event('removed', ARGV[1])
return 'removed'
"#,
);

/// ARGV: 'dead' or 'done', age ms, limit. Removes dead letters buried at least `age` ago
/// (oldest first), or de-dup entries (soonest to end first); returns how many.
pub(crate) static CLEAN: Step = Step::new(
    "clean",
    r#"
local limit = tonumber(ARGV[3])
if ARGV[1] == 'dead' then
  local ids = redis.call('ZRANGEBYSCORE', K_DEAD, '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do forget(id) end
  return #ids
end
local ids = redis.call('ZRANGE', K_DONE, 0, limit - 1)
for _, id in ipairs(ids) do redis.call('ZREM', K_DONE, id) end
return #ids
"#,
);

/// ARGV: id, fencing token, progress. 1 when stored (the caller still holds the message).
pub(crate) static PROGRESS: Step = Step::new(
    "progress",
    r#"
if redis.call('HGET', K_LOCK, ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', K_PROGRESS, ARGV[1], ARGV[3])
redis.call('SADD', K_EXTRAS, ARGV[1])
event('progress', ARGV[1], 'progress', ARGV[3])
return 1
"#,
);

/// ARGV: id, fencing token, max lines kept, line. 1 when logged (the caller still holds the
/// message).
pub(crate) static LOG: Step = Step::new(
    "log",
    r#"
if redis.call('HGET', K_LOCK, ARGV[1]) ~= ARGV[2] then return 0 end
local key = log_key(ARGV[1])
redis.call('RPUSH', key, ARGV[4])
redis.call('SADD', K_EXTRAS, ARGV[1])
redis.call('LTRIM', key, -tonumber(ARGV[3]), -1)
return 1
"#,
);

/// ARGV: id. `{progress or false, log lines}`.
pub(crate) static JOB_DETAILS: Step = Step::reader(
    "job_details",
    r#"
return {redis.call('HGET', K_PROGRESS, ARGV[1]), redis.call('LRANGE', log_key(ARGV[1]), 0, -1)}
"#,
);

/// ARGV: how many events to keep (0: none, the stream is deleted).
pub(crate) static SET_EVENTS: Step = Step::new(
    "set_events",
    r#"
if tonumber(ARGV[1]) == 0 then
  redis.call('HDEL', K_CONFIG, 'events')
  redis.call('DEL', K_EVENTS)
else
  redis.call('HSET', K_CONFIG, 'events', ARGV[1])
end
return 1
"#,
);

/// ARGV: minutes of outcome counts to keep (0: none, the counts are deleted).
pub(crate) static SET_METRICS: Step = Step::new(
    "set_metrics",
    r#"
if tonumber(ARGV[1]) == 0 then
  redis.call('HDEL', K_CONFIG, 'metrics')
  redis.call('DEL', K_METRICS)
else
  redis.call('HSET', K_CONFIG, 'metrics', ARGV[1])
end
return 1
"#,
);

/// No ARGV. `{this minute, minutes kept, then per minute from the oldest: completed,
/// failed}`.
pub(crate) static METRICS: Step = Step::reader(
    "metrics",
    r#"
local keep = setting('metrics')
local minute = math.floor(now / 60000)
local out = {minute, keep}
for m = minute - keep + 1, minute do
  out[#out + 1] = tonumber(redis.call('HGET', K_METRICS, 'c:' .. m) or '0')
  out[#out + 1] = tonumber(redis.call('HGET', K_METRICS, 'f:' .. m) or '0')
end
return out
"#,
);

/// ARGV: schedule id, spec, first run (server ms), wake channel, publish command, payload.
/// Stores the schedule; its next run is set only when it is new or its spec changed, so
/// every instance of a service may upsert the same schedule at start without moving or
/// repeating a run. Returns `created`, `updated` or `unchanged`.
pub(crate) static UPSERT_SCHEDULE: Step = Step::new(
    "upsert_schedule",
    r#"
local old = redis.call('HGET', K_SCHED, ARGV[1])
redis.call('HSET', K_SCHED_MSG, ARGV[1], ARGV[6])
if old == ARGV[2] and redis.call('ZSCORE', K_SCHED_DUE, ARGV[1]) then return 'unchanged' end
redis.call('HSET', K_SCHED, ARGV[1], ARGV[2])
redis.call('ZADD', K_SCHED_DUE, ARGV[3], ARGV[1])
if not old then redis.call('HSET', K_SCHED_MSG, '#' .. ARGV[1], 0) end
redis.call(ARGV[5], ARGV[4], 'schedule')
if old then return 'updated' end
return 'created'
"#,
);

/// ARGV: schedule id. 1 when it existed.
pub(crate) static REMOVE_SCHEDULE: Step = Step::new(
    "remove_schedule",
    r#"
redis.call('ZREM', K_SCHED_DUE, ARGV[1])
redis.call('HDEL', K_SCHED_MSG, ARGV[1], '#' .. ARGV[1])
return redis.call('HDEL', K_SCHED, ARGV[1])
"#,
);

/// No ARGV. `{now, ms until the next run (-1: none), then per schedule due now (up to 32):
/// id, spec, due, runs so far}`.
pub(crate) static DUE_SCHEDULES: Step = Step::reader(
    "due_schedules",
    r#"
local out = {now, -1}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', K_SCHED_DUE, '-inf', now, 'LIMIT', 0, 32)) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', K_SCHED, id) or ''
  out[#out + 1] = tonumber(redis.call('ZSCORE', K_SCHED_DUE, id))
  out[#out + 1] = tonumber(redis.call('HGET', K_SCHED_MSG, '#' .. id) or '0')
end
if #out == 2 then
  local first = redis.call('ZRANGE', K_SCHED_DUE, 0, 0, 'WITHSCORES')
  if first[2] then out[2] = math.max(0, tonumber(first[2]) - now) end
end
return out
"#,
);

/// ARGV: wake channel, publish command, then the run's 9 enqueue arguments (its message
/// id `<schedule>@<due>`, lock ms, priority, 0, 0, flags, an empty payload: the stored one
/// is used), then schedule id, the due run (ms), the next run (ms, 0: the schedule is
/// finished). Fenced on the due run: only the first caller for that run enqueues it and
/// moves the schedule on, whatever the number of workers. Returns the enqueue result, or
/// `stale` when another got there first.
pub(crate) static FIRE_SCHEDULE: Step = Step::new(
    "fire_schedule",
    r#"
local sid, due, nxt = ARGV[12], ARGV[13], tonumber(ARGV[14])
local current = redis.call('ZSCORE', K_SCHED_DUE, sid)
if not current or tonumber(current) ~= tonumber(due) then return 'stale' end
local payload = redis.call('HGET', K_SCHED_MSG, sid)
if not payload then return 'stale' end
local result = enqueue_one(ARGV, 2, payload)
redis.call('HINCRBY', K_SCHED_MSG, '#' .. sid, 1)
if nxt > 0 then
  redis.call('ZADD', K_SCHED_DUE, nxt, sid)
else
  redis.call('ZREM', K_SCHED_DUE, sid)
end
publish_wake(ARGV[1], ARGV[2])
return result
"#,
);

/// No ARGV. Per schedule: `{id, spec, next run ms (-1: finished), runs so far}`.
pub(crate) static LIST_SCHEDULES: Step = Step::reader(
    "list_schedules",
    r#"
local out = {}
local all = redis.call('HGETALL', K_SCHED)
for i = 1, #all, 2 do
  local id = all[i]
  local due = redis.call('ZSCORE', K_SCHED_DUE, id)
  out[#out + 1] = {id, all[i + 1], due and tonumber(due) or -1,
    tonumber(redis.call('HGET', K_SCHED_MSG, '#' .. id) or '0')}
end
return out
"#,
);

/// ARGV: wake channel, publish command, a flow message's 9 enqueue arguments (its flags
/// ignored), its parent record (packed: flow token, on-failure, parent queue, parent id,
/// index; '' for the root), its own flow token ('' for a leaf), then its pending children
/// (each packed: index, queue, id). A leaf is queued as `enqueue` would; a parent waits for
/// its children. Returns `{'added', token}`, `{'exists', token}` when this node of the
/// same flow is already here (a repeated call), or `{'refused', state}`.
pub(crate) static ENQUEUE_FLOW_NODE: Step = Step::new(
    "enqueue_flow_node",
    r#"
local id = ARGV[3]
local lockms, prio = tonumber(ARGV[4]), tonumber(ARGV[5])
local due = now + tonumber(ARGV[6])
if tonumber(ARGV[7]) > 0 then due = tonumber(ARGV[7]) end
local rec, token = ARGV[12], ARGV[13]
local d = describe(id)
if d then
  local mine = rec == '' or redis.call('HGET', K_PARENT, id) == rec
  if mine and d[1] == 'waiting' then return {'exists', redis.call('HGET', K_WAITING, id)} end
  if mine and rec ~= '' and token == '' then return {'exists', ''} end
  return {'refused', d[1]}
end
redis.call('ZREM', K_DONE, id)
redis.call('HSET', K_MSG, id, ARGV[11])
if rec ~= '' then redis.call('HSET', K_PARENT, id, rec) end
if rec ~= '' or token ~= '' then redis.call('SADD', K_EXTRAS, id) end
local m = {born = now, lockms = lockms, prio = prio, att = 0, due = due}
if token ~= '' then
  store(id, m)
  redis.call('HSET', K_WAITING, id, token)
  local pending = side_key('flow', id)
  redis.call('DEL', pending, side_key('flow-results', id))
  for i = 14, #ARGV do redis.call('SADD', pending, ARGV[i]) end
  event('waiting-children', id)
else
  schedule(id, m, due)
  event(due > now and 'delayed' or 'added', id)
end
publish_wake(ARGV[1], ARGV[2])
return {'added', token}
"#,
);

/// ARGV: how many. Takes up to that many flow hand-offs due now and sets each due again in
/// 10 s (should the caller die before it is done). Per hand-off: `{field, child id,
/// outcome, flow token, parent queue, parent id, index, detail}`.
pub(crate) static OUTBOX_TAKE: Step = Step::new(
    "outbox_take",
    r#"
local out = {}
for _, field in ipairs(redis.call('ZRANGEBYSCORE', K_OUTBOX_DUE, '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))) do
  local v = redis.call('HGET', K_OUTBOX, field)
  if v then
    redis.call('ZADD', K_OUTBOX_DUE, now + 10000, field)
    local e = unpack_fields(v)
    local r = unpack_fields(e[2])
    local c = string.find(field, ':', 1, true)
    out[#out + 1] = {field, string.sub(field, c + 1), e[1], r[1], r[3], r[4], r[5], e[3]}
  else
    redis.call('ZREM', K_OUTBOX_DUE, field)
  end
end
return out
"#,
);

/// ARGV: outbox field, child id, flow token. The hand-off is done: the entry goes, and the
/// child's parent record too when it is still this flow's.
pub(crate) static OUTBOX_DONE: Step = Step::new(
    "outbox_done",
    r#"
redis.call('HDEL', K_OUTBOX, ARGV[1])
redis.call('ZREM', K_OUTBOX_DUE, ARGV[1])
local rec = redis.call('HGET', K_PARENT, ARGV[2])
if rec and unpack_fields(rec)[1] == ARGV[3] then redis.call('HDEL', K_PARENT, ARGV[2]) end
return 1
"#,
);

/// On the parent's queue. ARGV: wake channel, publish command, parent id, flow token, child
/// index, child queue, child id, outcome (ok, ignored, failed), detail ('n', 'v' and a
/// value, or an error). Idempotent: a child is counted once per flow (a repeat, or a child
/// of an earlier flow with this parent id, changes nothing). The last child makes the
/// parent runnable; a failed one (under `fail`) makes it a dead letter. Returns 0 when
/// nothing changed, 1 when counted, 2 when the parent failed and is itself a flow child
/// with a hand-off due here.
pub(crate) static FLOW_NOTIFY: Step = Step::new(
    "flow_notify",
    r#"
local pid, token = ARGV[3], ARGV[4]
if redis.call('HGET', K_WAITING, pid) ~= token then return 0 end
local pending = side_key('flow', pid)
local member = pack({ARGV[5], ARGV[6], ARGV[7]})
if redis.call('SREM', pending, member) == 0 then return 0 end
local results = side_key('flow-results', pid)
local outcome, detail = ARGV[8], ARGV[9]
if outcome == 'ok' then
  redis.call('HSET', results, member, detail)
else
  redis.call('HSET', results, member, 'f' .. detail)
end
if outcome == 'failed' then
  redis.call('HDEL', K_WAITING, pid)
  redis.call('DEL', pending)
  local why = 'child ' .. ARGV[7] .. ' on queue ' .. ARGV[6] .. ' failed: ' .. detail
  bury(pid, why)
  event('dead', pid, 'error', why)
  if child_ended(pid, 'dead', why) then return 2 end
  return 1
end
if redis.call('SCARD', pending) == 0 then
  redis.call('HDEL', K_WAITING, pid)
  redis.call('DEL', pending)
  local m = load(pid)
  schedule(pid, m, math.max(now, m.due))
  event('children-completed', pid)
  publish_wake(ARGV[1], ARGV[2])
end
return 1
"#,
);

/// ARGV: parent id. Per child that ended: `{index, queue, id, end}` (end: 'n', 'v' and the
/// returned value, or 'f' and the error).
pub(crate) static FLOW_RESULTS: Step = Step::reader(
    "flow_results",
    r#"
local out = {}
local all = redis.call('HGETALL', side_key('flow-results', ARGV[1]))
for i = 1, #all, 2 do
  local m = unpack_fields(all[i])
  out[#out + 1] = {m[1], m[2], m[3], all[i + 1]}
end
return out
"#,
);

/// Every step, for the library.
pub(crate) static ALL: &[&Step] = &[
    &ENQUEUE,
    &CLAIM,
    &RENEW,
    &ACK,
    &STATUS,
    &MESSAGE_STATUS,
    &CONTENT,
    &DEAD_LETTERS,
    &REQUEUE_DEAD,
    &CLEAR,
    &PAUSE,
    &SET_LIMIT,
    &REMOVE,
    &CLEAN,
    &PROGRESS,
    &LOG,
    &JOB_DETAILS,
    &SET_EVENTS,
    &SET_METRICS,
    &METRICS,
    &UPSERT_SCHEDULE,
    &REMOVE_SCHEDULE,
    &DUE_SCHEDULES,
    &FIRE_SCHEDULE,
    &LIST_SCHEDULES,
    &ENQUEUE_FLOW_NODE,
    &OUTBOX_TAKE,
    &OUTBOX_DONE,
    &FLOW_NOTIFY,
    &FLOW_RESULTS,
];
