//! The client-side cache's store: replies of cacheable reads by key, bounded in bytes and
//! in keys (on `quick_cache`), kept fresh by the server's invalidations, and guarded
//! against the race of an invalidation arriving while a read of its key is in flight.
//!
//! The race: a read is sent, the key changes, the server's invalidation arrives and is
//! applied, and only then does the read's (old) reply come back to be stored. Each key
//! hashes to one of [`STRIPES`] counters; an invalidation bumps its key's counter before it
//! removes the key, and a flush bumps the epoch. A read samples both before it is sent; its
//! reply is stored, then the samples are checked again, and if either moved the entry is
//! removed. Whichever order the two sides run in, no reply read before an invalidation
//! survives it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use quick_cache::Lifecycle;
use quick_cache::sync::Cache as Store;

use super::coalesce::{Joined, Lead, ReadFlight, ReadFlights};
use super::options::{ClientCacheOptions, ClientCacheStats, TrackingMode};
use crate::cluster::key_positions;
use crate::commands::{CommandFlags, lookup_args};
use crate::resp::Value;
use crate::value::ArgBuf;

/// Invalidation counters: a key maps to one of them.
const STRIPES: usize = 4096;

/// What each entry costs beyond its bytes (the entry, its `Arc`, the store's slot).
const ENTRY_OVERHEAD: usize = 96;

/// The cached replies of one key: one per distinct command read (`HGET h a`, `HGET h b`,
/// `HGETALL h`), all invalidated together.
pub(crate) struct KeyEntry {
    reads: Box<[Read]>,
    weight: u64,
    /// Set when a newer entry of the key takes this one's place: the store reports
    /// replacements as evictions, and they are not.
    replaced: std::sync::atomic::AtomicBool,
}

struct Read {
    /// The command as encoded (its arguments' RESP bulk strings): what a lookup compares.
    command: Bytes,
    value: Value,
    /// When the TTL cap ends this reply, if there is one.
    expires: Option<Instant>,
}

#[derive(Clone)]
struct Weigh;

impl quick_cache::Weighter<Bytes, Arc<KeyEntry>> for Weigh {
    fn weight(&self, _: &Bytes, entry: &Arc<KeyEntry>) -> u64 {
        entry.weight
    }
}

#[derive(Clone)]
struct CountEvictions(Arc<AtomicU64>);

impl Lifecycle<Bytes, Arc<KeyEntry>> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _: Bytes, entry: Arc<KeyEntry>) {
        if !entry.replaced.load(Ordering::Relaxed) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The client-side cache of one client.
pub(crate) struct LocalCache {
    store: Store<Bytes, Arc<KeyEntry>, Weigh, quick_cache::DefaultHashBuilder, CountEvictions>,
    options: ClientCacheOptions,
    /// The weight of the smallest entry: `max_bytes / max_entries`, so that the byte bound
    /// also bounds the number of keys.
    floor: u64,
    epoch: AtomicU64,
    stripes: Box<[AtomicU64]>,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    refused: AtomicU64,
    invalidations: AtomicU64,
    flushes: AtomicU64,
    evictions: Arc<AtomicU64>,
    expired: AtomicU64,
    coalesced: AtomicU64,
    /// Reads on their way, for misses of the same command to wait for.
    flights: ReadFlights,
}

/// What a command through the client does with the cache.
pub(crate) enum Plan {
    /// Answered from the cache.
    Hit(Value),
    /// A cacheable read to send; its reply is offered back with the ticket.
    Miss(Ticket),
    /// The same read is on its way (and nothing of its key was invalidated since it was
    /// sent): wait for its reply; `None` from it means read again.
    Join(Arc<ReadFlight>),
    /// A command that may change these keys: they are invalidated when its reply
    /// arrives, before the caller sees it, so the caller reads its own write.
    Write(Vec<Bytes>),
    /// `MGET` with some keys not cached: their values come from the server (one `MGET` of
    /// those keys), the others from the cache.
    Gather(Box<Gather>),
    /// Nothing to do with the cache.
    Pass,
}

/// An `MGET` answered partly from the cache: each key's cached value, or the ticket of its
/// read (as `GET key`, which shares its entry).
pub(crate) struct Gather {
    pub(crate) slots: Vec<std::result::Result<Value, Ticket>>,
}

impl Gather {
    /// The keys to ask the server for, in order.
    pub(crate) fn missing(&self) -> impl Iterator<Item = &Bytes> {
        self.slots
            .iter()
            .filter_map(|s| s.as_ref().err().map(|t| &t.key))
    }
}

/// A read in flight: what it was, and the invalidation counters when it was sent.
pub(crate) struct Ticket {
    command: Bytes,
    key: Bytes,
    stripe: usize,
    stamp: u64,
    epoch: u64,
    /// Others may wait for this read (not for an MGET's keys).
    lead: Option<Lead>,
}

impl LocalCache {
    pub(crate) fn new(options: ClientCacheOptions) -> LocalCache {
        let evictions = Arc::new(AtomicU64::new(0));
        let floor = options
            .max_bytes
            .div_ceil(options.max_entries as u64)
            .max(1);
        let store = Store::with(
            options.max_entries,
            options.max_bytes,
            Weigh,
            Default::default(),
            CountEvictions(evictions.clone()),
        );
        LocalCache {
            store,
            floor,
            options,
            epoch: AtomicU64::new(0),
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            inserts: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
            evictions,
            expired: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            flights: ReadFlights::default(),
        }
    }

    pub(crate) fn options(&self) -> &ClientCacheOptions {
        &self.options
    }

    /// True in OPTIN mode: a cached read must follow `CLIENT CACHING yes`.
    pub(crate) fn opt_in(&self) -> bool {
        self.options.mode == TrackingMode::OptIn
    }

    /// What `args` does with the cache. A hit costs a lookup and a clone of the reply (its
    /// `Bytes` are shared, not copied); only a miss or a write allocates.
    pub(crate) fn plan(&self, args: &ArgBuf) -> Plan {
        let Some(info) = lookup_args(args) else {
            return Plan::Pass;
        };
        // In OPTIN mode the server tracks only reads sent behind CLIENT CACHING yes: a plain
        // MGET's replies would never be invalidated.
        if info.name == "MGET" {
            return match self.opt_in() {
                true => Plan::Pass,
                false => self.plan_mget(args),
            };
        }
        if info.cacheable {
            let Some(key) = args.get(1) else {
                return Plan::Pass;
            };
            if !self.options.accepts(key) {
                return Plan::Pass;
            }
            if let Some(value) = self.lookup(key, args) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Plan::Hit(value);
            }
            let mut ticket = self.ticket(args);
            return match self
                .flights
                .join(&ticket.command, (ticket.epoch, ticket.stamp))
            {
                Joined::Wait(flight) => {
                    self.coalesced.fetch_add(1, Ordering::Relaxed);
                    Plan::Join(flight)
                }
                Joined::Lead(lead) => {
                    self.misses.fetch_add(1, Ordering::Relaxed);
                    ticket.lead = Some(lead);
                    Plan::Miss(ticket)
                }
            };
        }
        match written_keys(info, args) {
            Some(keys) => Plan::Write(keys),
            None => Plan::Pass,
        }
    }

    /// The keys a command may change (it is not read-only), to be invalidated once it is
    /// answered (a pipeline's). Not before: until then the write has not happened for
    /// anyone, and a read that misses meanwhile would only be refused.
    pub(crate) fn writing(&self, args: &ArgBuf) -> Option<Vec<Bytes>> {
        written_keys(lookup_args(args)?, args)
    }

    /// MGET, per key, through the entries of `GET key`.
    fn plan_mget(&self, args: &ArgBuf) -> Plan {
        let mut slots = Vec::with_capacity(args.len().saturating_sub(1));
        let mut all_hit = true;
        for key in args.iter().skip(1) {
            if !self.options.accepts(key) {
                return Plan::Pass;
            }
            let mut get = ArgBuf::with_capacity(key.len() + 16);
            get.push(b"GET");
            get.push(key);
            match self.lookup(key, &get) {
                Some(v) => slots.push(Ok(v)),
                None => {
                    all_hit = false;
                    slots.push(Err(self.ticket(&get)));
                }
            }
        }
        if slots.is_empty() {
            return Plan::Pass;
        }
        let hits = slots.iter().filter(|s| s.is_ok()).count() as u64;
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses
            .fetch_add(slots.len() as u64 - hits, Ordering::Relaxed);
        if all_hit {
            return Plan::Hit(Value::Array(
                slots.into_iter().map(|s| s.unwrap_or(Value::Nil)).collect(),
            ));
        }
        Plan::Gather(Box::new(Gather { slots }))
    }

    /// Completes an MGET from the server's reply to the missing keys: stores each value
    /// (a nil is not stored: `GET` of a key of another type is an error, not nil).
    pub(crate) fn fill_gather(&self, gather: Gather, reply: Value) -> crate::Result<Value> {
        let Value::Array(fetched) = reply else {
            return Err(crate::Error::protocol(format!(
                "unexpected {} reply to MGET",
                reply.kind_name()
            )));
        };
        let mut fetched = fetched.into_iter();
        let mut out = Vec::with_capacity(gather.slots.len());
        for slot in gather.slots {
            out.push(match slot {
                Ok(v) => v,
                Err(ticket) => {
                    let v = fetched.next().unwrap_or(Value::Nil);
                    if !matches!(v, Value::Nil) {
                        self.fill(ticket, &v);
                    }
                    v
                }
            });
        }
        Ok(Value::Array(out))
    }

    fn lookup(&self, key: &[u8], args: &ArgBuf) -> Option<Value> {
        let entry = self.store.get(key)?;
        let read = entry.reads.iter().find(|r| args.encoded_eq(&r.command))?;
        if let Some(expires) = read.expires
            && Instant::now() >= expires
        {
            self.expired.fetch_add(1, Ordering::Relaxed);
            self.store.remove(key);
            return None;
        }
        Some(read.value.clone())
    }

    /// Samples the counters for a read about to be sent.
    fn ticket(&self, args: &ArgBuf) -> Ticket {
        let command = args.encoded();
        let key = nth_arg(&command, 1)
            .map(|r| command.slice(r))
            .unwrap_or_default();
        let stripe = stripe_of(&key);
        // The epoch first: a flush bumps it before it clears.
        let epoch = self.epoch.load(Ordering::SeqCst);
        let stamp = self.stripes[stripe].load(Ordering::SeqCst);
        Ticket {
            command,
            key,
            stripe,
            stamp,
            epoch,
            lead: None,
        }
    }

    fn unchanged(&self, t: &Ticket) -> bool {
        self.epoch.load(Ordering::SeqCst) == t.epoch
            && self.stripes[t.stripe].load(Ordering::SeqCst) == t.stamp
    }

    /// Offers the reply of a read sent with `ticket`. Stored unless its key was
    /// invalidated (or the cache flushed) since the read was sent.
    pub(crate) fn fill(&self, mut ticket: Ticket, reply: &Value) {
        let stored = self.store_reply(&ticket, reply);
        if let Some(lead) = ticket.lead.take() {
            self.flights.remove(&ticket.command, &lead);
            lead.finish(stored);
        }
    }

    /// Stores a reply unless its key was invalidated since the read was sent; what was
    /// stored, for the reads waiting on this one.
    fn store_reply(&self, ticket: &Ticket, reply: &Value) -> Option<Value> {
        if matches!(reply, Value::Error(_)) {
            return None;
        }
        if !self.unchanged(ticket) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let value = detach(reply);
        let expires = self.options.ttl.map(|t| Instant::now() + t);
        let mut reads: Vec<Read> = Vec::with_capacity(1);
        if let Some(old) = self.store.peek(&ticket.key[..]) {
            old.replaced.store(true, Ordering::Relaxed);
            reads.extend(
                old.reads
                    .iter()
                    .filter(|r| r.command != ticket.command)
                    .map(|r| Read {
                        command: r.command.clone(),
                        value: r.value.clone(),
                        expires: r.expires,
                    }),
            );
        }
        reads.push(Read {
            command: ticket.command.clone(),
            value: value.clone(),
            expires,
        });
        let bytes: usize = ENTRY_OVERHEAD
            + reads
                .iter()
                .map(|r| std::mem::size_of::<Read>() + r.command.len() + heap_size(&r.value))
                .sum::<usize>();
        let entry = Arc::new(KeyEntry {
            reads: reads.into_boxed_slice(),
            weight: (bytes as u64).max(self.floor),
            replaced: Default::default(),
        });
        self.store.insert(ticket.key.clone(), entry);
        // Checked again after storing: an invalidation that ran between the first check
        // and the insert found nothing to remove, but moved the counter.
        if self.unchanged(ticket) {
            self.inserts.fetch_add(1, Ordering::Relaxed);
            Some(value)
        } else {
            self.store.remove(&ticket.key[..]);
            self.refused.fetch_add(1, Ordering::Relaxed);
            None
        }
    }

    /// Drops these keys' replies; reads of them in flight will not be stored.
    pub(crate) fn invalidate_keys<K: AsRef<[u8]>>(&self, keys: &[K]) {
        for key in keys {
            let key = key.as_ref();
            self.stripes[stripe_of(key)].fetch_add(1, Ordering::SeqCst);
            self.store.remove(key);
        }
        self.invalidations
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
    }

    /// Drops everything; reads in flight will not be stored.
    pub(crate) fn flush(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.store.clear();
        self.flushes.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies an out-of-band frame if it is an invalidation (`invalidate` with keys, or
    /// with null for FLUSHALL/FLUSHDB).
    pub(crate) fn on_push(&self, frame: &Value) {
        let Value::Push(items) = frame else {
            return;
        };
        let [kind, keys] = &items[..] else {
            return;
        };
        if !kind
            .as_bytes()
            .is_some_and(|k| k.eq_ignore_ascii_case(b"invalidate"))
        {
            return;
        }
        match keys {
            Value::Array(keys) | Value::Set(keys) => {
                let keys: smallvec::SmallVec<[&[u8]; 8]> = keys
                    .iter()
                    .filter_map(|k| k.as_bytes().map(|b| &b[..]))
                    .collect();
                self.invalidate_keys(&keys);
            }
            Value::Nil => self.flush(),
            _ => {}
        }
    }

    pub(crate) fn stats(&self) -> ClientCacheStats {
        ClientCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            inserts: self.inserts.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            invalidations: self.invalidations.load(Ordering::Relaxed),
            flushes: self.flushes.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            expired: self.expired.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
            entries: self.store.len() as u64,
            bytes: self.store.weight(),
        }
    }
}

/// The keys of a command that is not read-only, if it has any.
fn written_keys(info: &crate::commands::CommandInfo, args: &ArgBuf) -> Option<Vec<Bytes>> {
    if info.flags.contains(CommandFlags::READONLY) {
        return None;
    }
    let positions = key_positions(info, args);
    if positions.is_empty() {
        return None;
    }
    Some(
        args.iter()
            .enumerate()
            .filter(|(i, _)| positions.contains(i))
            .map(|(_, k)| Bytes::copy_from_slice(k))
            .collect(),
    )
}

/// Where the `n`-th argument's bytes are in an encoded command (RESP bulk strings).
fn nth_arg(encoded: &[u8], n: usize) -> Option<std::ops::Range<usize>> {
    let mut pos = 0;
    for i in 0..=n {
        let header = encoded.get(pos..)?;
        let end = header.iter().position(|&b| b == b'\r')?;
        let len: usize = std::str::from_utf8(header.get(1..end)?)
            .ok()?
            .parse()
            .ok()?;
        let start = pos + end + 2;
        if i == n {
            return (start + len <= encoded.len()).then_some(start..start + len);
        }
        pos = start + len + 2;
    }
    None
}

/// FNV-1a: which counter a key bumps.
fn stripe_of(key: &[u8]) -> usize {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    h as usize % STRIPES
}

/// A copy of a reply that owns its bytes: a reply's `Bytes` point into the connection's
/// read buffer, which a cached 10-byte value would otherwise keep alive whole.
fn detach(v: &Value) -> Value {
    let own = |b: &Bytes| Bytes::copy_from_slice(b);
    match v {
        Value::Simple(b) => Value::Simple(own(b)),
        Value::Bulk(b) => Value::Bulk(own(b)),
        Value::BigNumber(b) => Value::BigNumber(own(b)),
        Value::Verbatim { format, text } => Value::Verbatim {
            format: *format,
            text: own(text),
        },
        Value::Array(xs) => Value::Array(xs.iter().map(detach).collect()),
        Value::Set(xs) => Value::Set(xs.iter().map(detach).collect()),
        Value::Push(xs) => Value::Push(xs.iter().map(detach).collect()),
        Value::Map(kv) => Value::Map(kv.iter().map(|(k, v)| (detach(k), detach(v))).collect()),
        Value::Attribute { attributes, value } => Value::Attribute {
            attributes: attributes
                .iter()
                .map(|(k, v)| (detach(k), detach(v)))
                .collect(),
            value: Box::new(detach(value)),
        },
        other => other.clone(),
    }
}

/// What a reply holds: its variants and the bytes they own.
fn heap_size(v: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match v {
            Value::Simple(b) | Value::Bulk(b) | Value::BigNumber(b) => b.len(),
            Value::Verbatim { text, .. } => text.len(),
            Value::Array(xs) | Value::Set(xs) | Value::Push(xs) => xs.iter().map(heap_size).sum(),
            Value::Map(kv) => kv.iter().map(|(k, v)| heap_size(k) + heap_size(v)).sum(),
            Value::Attribute { attributes, value } => {
                attributes
                    .iter()
                    .map(|(k, v)| heap_size(k) + heap_size(v))
                    .sum::<usize>()
                    + heap_size(value)
            }
            Value::Error(_) => 64,
            _ => 0,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(parts: &[&str]) -> ArgBuf {
        let mut a = ArgBuf::default();
        for p in parts {
            a.push(p.as_bytes());
        }
        a
    }

    fn cache() -> LocalCache {
        LocalCache::new(ClientCacheOptions::new())
    }

    fn miss(c: &LocalCache, parts: &[&str]) -> Ticket {
        match c.plan(&args(parts)) {
            Plan::Miss(t) => t,
            _ => panic!("expected a miss for {parts:?}"),
        }
    }

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn a_reply_is_served_until_its_key_is_invalidated() {
        let c = cache();
        let t = miss(&c, &["GET", "k"]);
        c.fill(t, &bulk("v"));
        assert!(
            matches!(c.plan(&args(&["get", "k"])), Plan::Miss(_)),
            "the name is part of the command"
        );
        assert!(matches!(c.plan(&args(&["GET", "k"])), Plan::Hit(v) if v == bulk("v")));
        c.on_push(&Value::Push(vec![
            bulk("invalidate"),
            Value::Array(vec![bulk("k")]),
        ]));
        assert!(matches!(c.plan(&args(&["GET", "k"])), Plan::Miss(_)));
        assert_eq!(c.stats().invalidations, 1);
    }

    #[test]
    fn an_invalidation_during_the_read_keeps_its_reply_out() {
        let c = cache();
        let t = miss(&c, &["GET", "k"]);
        c.invalidate_keys(&[b"k"]);
        c.fill(t, &bulk("old"));
        assert!(matches!(c.plan(&args(&["GET", "k"])), Plan::Miss(_)));
        let t = miss(&c, &["GET", "k"]);
        c.flush();
        c.fill(t, &bulk("old"));
        assert!(matches!(c.plan(&args(&["GET", "k"])), Plan::Miss(_)));
        assert_eq!(c.stats().refused, 2);
    }

    #[test]
    fn reads_of_one_key_are_invalidated_together() {
        let c = cache();
        let a = miss(&c, &["HGET", "h", "a"]);
        let b = miss(&c, &["HGET", "h", "b"]);
        c.fill(a, &bulk("1"));
        c.fill(b, &bulk("2"));
        assert!(matches!(c.plan(&args(&["HGET", "h", "a"])), Plan::Hit(v) if v == bulk("1")));
        assert!(matches!(c.plan(&args(&["HGET", "h", "b"])), Plan::Hit(v) if v == bulk("2")));
        let Plan::Write(keys) = c.plan(&args(&["HSET", "h", "a", "9"])) else {
            panic!("HSET writes");
        };
        assert_eq!(keys, [Bytes::from_static(b"h")]);
        // Invalidated when its reply arrives.
        c.invalidate_keys(&keys);
        assert!(matches!(c.plan(&args(&["HGET", "h", "b"])), Plan::Miss(_)));
    }

    #[test]
    fn uncacheable_commands_pass() {
        let c = cache();
        for parts in [
            &["SRANDMEMBER", "s"][..],
            &["TTL", "k"],
            &["TIME"],
            &["EXISTS", "a", "b"],
        ] {
            assert!(matches!(c.plan(&args(parts)), Plan::Pass), "{parts:?}");
        }
    }

    #[test]
    fn mget_shares_the_entries_of_get() {
        let c = cache();
        let t = miss(&c, &["GET", "a"]);
        c.fill(t, &bulk("1"));
        let Plan::Gather(g) = c.plan(&args(&["MGET", "a", "b", "c"])) else {
            panic!("expected a partial hit");
        };
        assert_eq!(
            g.missing().collect::<Vec<_>>(),
            [&Bytes::from_static(b"b"), &Bytes::from_static(b"c")]
        );
        let v = c
            .fill_gather(*g, Value::Array(vec![bulk("2"), Value::Nil]))
            .unwrap();
        assert_eq!(v, Value::Array(vec![bulk("1"), bulk("2"), Value::Nil]));
        assert!(matches!(c.plan(&args(&["GET", "b"])), Plan::Hit(v) if v == bulk("2")));
        assert!(
            matches!(c.plan(&args(&["GET", "c"])), Plan::Miss(_)),
            "nil is not stored"
        );
        c.fill(miss(&c, &["GET", "c"]), &bulk("3"));
        assert!(
            matches!(c.plan(&args(&["MGET", "c", "a"])), Plan::Hit(Value::Array(v)) if v == [bulk("3"), bulk("1")])
        );
    }

    #[tokio::test]
    async fn a_second_miss_waits_for_the_read_in_flight_unless_its_key_changed() {
        let c = cache();
        let lead = miss(&c, &["GET", "k"]);
        let Plan::Join(flight) = c.plan(&args(&["GET", "k"])) else {
            panic!("the same read is in flight");
        };
        c.fill(lead, &bulk("v"));
        assert_eq!(flight.outcome().await, Some(bulk("v")));
        assert_eq!(c.stats().coalesced, 1);

        c.invalidate_keys(&[b"k"]);
        let lead = miss(&c, &["GET", "k"]);
        c.invalidate_keys(&[b"k"]);
        // Sent before the change: not to be waited for.
        let second = miss(&c, &["GET", "k"]);
        let Plan::Join(flight) = c.plan(&args(&["GET", "k"])) else {
            panic!("the newer read is in flight");
        };
        c.fill(lead, &bulk("old"));
        c.fill(second, &bulk("new"));
        assert_eq!(flight.outcome().await, Some(bulk("new")));

        // A cancelled leader sends its waiters back to read.
        c.invalidate_keys(&[b"k"]);
        let lead = miss(&c, &["GET", "k"]);
        let Plan::Join(flight) = c.plan(&args(&["GET", "k"])) else {
            panic!("in flight");
        };
        drop(lead);
        assert_eq!(flight.outcome().await, None);
        assert!(matches!(c.plan(&args(&["GET", "k"])), Plan::Miss(_)));
    }

    #[test]
    fn a_null_invalidation_flushes_everything() {
        let c = cache();
        let t = miss(&c, &["GET", "k"]);
        c.fill(t, &bulk("v"));
        c.on_push(&Value::Push(vec![bulk("invalidate"), Value::Nil]));
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.stats().flushes, 1);
    }
}
