//! The slot map: which shard (a primary and its replicas) serves each hash slot, read from
//! `CLUSTER SHARDS` (or `CLUSTER SLOTS` on servers before Redis 7) and agreed between nodes.

use std::collections::HashMap;

use super::slot::SLOTS;
use crate::config::Addr;
use crate::error::{Error, Result};
use crate::resp::Value;

/// A primary and its replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) primary: Addr,
    pub(crate) replicas: Vec<Addr>,
}

/// No shard serves the slot.
const UNASSIGNED: u16 = u16::MAX;

/// Which shard serves each slot.
#[derive(Clone)]
pub(crate) struct SlotMap {
    owner: Box<[u16]>,
    shards: Vec<Shard>,
}

impl std::fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotMap")
            .field("shards", &self.shards)
            .field("covered", &self.covered())
            .finish()
    }
}

impl PartialEq for SlotMap {
    /// Same owner (primary and replicas) for every slot, however the shards are numbered.
    fn eq(&self, other: &Self) -> bool {
        (0..SLOTS).all(|s| self.shard(s as u16) == other.shard(s as u16))
    }
}

impl SlotMap {
    /// A map from slot ranges and the shard serving each.
    pub(crate) fn from_ranges(ranges: Vec<(u16, u16, Shard)>) -> SlotMap {
        let mut map = SlotMap {
            owner: vec![UNASSIGNED; SLOTS].into_boxed_slice(),
            shards: Vec::new(),
        };
        for (start, end, shard) in ranges {
            let i = map.index_of(shard);
            for slot in start..=end.min(SLOTS as u16 - 1) {
                map.owner[slot as usize] = i;
            }
        }
        map
    }

    fn index_of(&mut self, shard: Shard) -> u16 {
        match self.shards.iter().position(|s| s.primary == shard.primary) {
            Some(i) => {
                // The same primary listed twice (CLUSTER SLOTS lists it per range): one shard.
                let known = &mut self.shards[i];
                for r in shard.replicas {
                    if !known.replicas.contains(&r) {
                        known.replicas.push(r);
                    }
                }
                i as u16
            }
            None => {
                self.shards.push(shard);
                (self.shards.len() - 1) as u16
            }
        }
    }

    /// The index (in [`shards`](Self::shards)) of the shard serving `slot`.
    pub(crate) fn shard_index(&self, slot: u16) -> Option<usize> {
        match self.owner.get(slot as usize) {
            Some(&i) if i != UNASSIGNED => Some(i as usize),
            _ => None,
        }
    }

    /// The shard serving `slot`.
    pub(crate) fn shard(&self, slot: u16) -> Option<&Shard> {
        match self.owner.get(slot as usize) {
            Some(&i) if i != UNASSIGNED => self.shards.get(i as usize),
            _ => None,
        }
    }

    /// Every shard.
    pub(crate) fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// How many slots have an owner.
    pub(crate) fn covered(&self) -> usize {
        self.owner.iter().filter(|&&i| i != UNASSIGNED).count()
    }

    /// Records a `MOVED`: `slot` is now served by the primary at `addr`.
    pub(crate) fn moved(&mut self, slot: u16, addr: Addr) {
        let i = match self.shards.iter().position(|s| s.primary == addr) {
            Some(i) => i as u16,
            None => self.index_of(Shard {
                primary: addr,
                replicas: Vec::new(),
            }),
        };
        if let Some(owner) = self.owner.get_mut(slot as usize) {
            *owner = i;
        }
    }
}

/// The map most nodes agree on; between equally many, the one covering most slots.
pub(crate) fn agree(views: Vec<SlotMap>) -> Option<SlotMap> {
    let mut groups: Vec<(SlotMap, usize)> = Vec::new();
    for view in views {
        match groups.iter_mut().find(|(m, _)| *m == view) {
            Some((_, n)) => *n += 1,
            None => groups.push((view, 1)),
        }
    }
    groups
        .into_iter()
        .max_by_key(|(m, n)| (*n, m.covered()))
        .map(|(m, _)| m)
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::Int(n) => Some(n.to_string()),
        other => other
            .as_bytes()
            .map(|b| String::from_utf8_lossy(b).into_owned()),
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

/// A map (RESP3) or a flat array of field, value pairs (RESP2), by field name.
fn fields(v: &Value) -> HashMap<String, &Value> {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .filter_map(|(k, v)| Some((text(k)?, v)))
            .collect(),
        Value::Array(flat) => flat
            .chunks(2)
            .filter_map(|kv| Some((text(kv.first()?)?, kv.get(1)?)))
            .collect(),
        _ => HashMap::new(),
    }
}

/// Where a node is reached: its endpoint (or ip), and its TLS port over TLS. `asked` stands
/// in for an endpoint the node does not know (`?`, empty): the node answering is that one.
fn node_addr(f: &HashMap<String, &Value>, tls: bool, asked: &Addr) -> Option<Addr> {
    let port = if tls {
        f.get("tls-port").and_then(|v| int(v))
    } else {
        None
    }
    .or_else(|| f.get("port").and_then(|v| int(v)))
    .filter(|p| *p > 0)?;
    let host = ["endpoint", "ip"]
        .iter()
        .find_map(|k| f.get(*k).and_then(|v| text(v)));
    Some(Addr::Tcp {
        host: known_host(host, asked)?,
        port: u16::try_from(port).ok()?,
    })
}

/// A node's host as reported, or the host of the node asked when it reports none (`?`, or
/// empty: the node answering is that one).
fn known_host(reported: Option<String>, asked: &Addr) -> Option<String> {
    match (reported.filter(|h| !h.is_empty() && h != "?"), asked) {
        (Some(h), _) => Some(h),
        (None, Addr::Tcp { host, .. }) => Some(host.clone()),
        (None, Addr::Unix(_)) => None,
    }
}

/// Parses `CLUSTER SHARDS`. Nodes whose health is not `online` are left out.
pub(crate) fn parse_shards(reply: &Value, tls: bool, asked: &Addr) -> Result<SlotMap> {
    let bad = |why: &str| Error::protocol(format!("unexpected CLUSTER SHARDS reply: {why}"));
    let Value::Array(shards) = reply else {
        return Err(bad("not an array"));
    };
    let mut ranges = Vec::new();
    for shard in shards {
        let f = fields(shard);
        let slots: Vec<i64> = match f.get("slots") {
            Some(Value::Array(s)) => s.iter().filter_map(int).collect(),
            _ => return Err(bad("a shard without slots")),
        };
        let Some(Value::Array(nodes)) = f.get("nodes") else {
            return Err(bad("a shard without nodes"));
        };
        let (mut primary, mut replicas) = (None, Vec::new());
        for node in nodes {
            let n = fields(node);
            let healthy = n
                .get("health")
                .and_then(|v| text(v))
                .is_none_or(|h| h == "online");
            let Some(addr) = node_addr(&n, tls, asked) else {
                continue;
            };
            match n.get("role").and_then(|v| text(v)).as_deref() {
                Some("master" | "primary") => primary = Some(addr),
                _ if healthy => replicas.push(addr),
                _ => {}
            }
        }
        let Some(primary) = primary else {
            continue;
        };
        let shard = Shard { primary, replicas };
        for pair in slots.chunks(2) {
            if let [start, end] = pair {
                ranges.push((*start as u16, *end as u16, shard.clone()));
            }
        }
    }
    Ok(SlotMap::from_ranges(ranges))
}

/// Parses `CLUSTER SLOTS`: `[start, end, [ip, port, id, ...], replicas ...]` per range.
pub(crate) fn parse_slots(reply: &Value, asked: &Addr) -> Result<SlotMap> {
    let bad = |why: &str| Error::protocol(format!("unexpected CLUSTER SLOTS reply: {why}"));
    let Value::Array(ranges) = reply else {
        return Err(bad("not an array"));
    };
    let node = |v: &Value| -> Option<Addr> {
        let Value::Array(items) = v else {
            return None;
        };
        Some(Addr::Tcp {
            host: known_host(items.first().and_then(text), asked)?,
            port: u16::try_from(items.get(1).and_then(int)?).ok()?,
        })
    };
    let mut out = Vec::new();
    for range in ranges {
        let Value::Array(items) = range else {
            return Err(bad("a range that is not an array"));
        };
        let (Some(start), Some(end), Some(primary)) = (
            items.first().and_then(int),
            items.get(1).and_then(int),
            items.get(2).and_then(node),
        ) else {
            return Err(bad("a range without its bounds or primary"));
        };
        let replicas = items.iter().skip(3).filter_map(node).collect();
        out.push((start as u16, end as u16, Shard { primary, replicas }));
    }
    Ok(SlotMap::from_ranges(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn b(s: &str) -> Value {
        Value::Bulk(Bytes::from(s.to_string()))
    }
    fn addr(port: u16) -> Addr {
        Addr::Tcp {
            host: "127.0.0.1".into(),
            port,
        }
    }
    fn node(port: i64, role: &str, health: &str) -> Value {
        Value::Array(vec![
            b("id"),
            b("abc"),
            b("port"),
            Value::Int(port),
            b("ip"),
            b("127.0.0.1"),
            b("endpoint"),
            b("127.0.0.1"),
            b("role"),
            b(role),
            b("health"),
            b(health),
        ])
    }

    #[test]
    fn cluster_shards_are_read_with_health() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                b("slots"),
                Value::Array(vec![Value::Int(0), Value::Int(8191)]),
                b("nodes"),
                Value::Array(vec![
                    node(7000, "master", "online"),
                    node(7003, "replica", "online"),
                ]),
            ]),
            Value::Array(vec![
                b("slots"),
                Value::Array(vec![Value::Int(8192), Value::Int(16383)]),
                b("nodes"),
                Value::Array(vec![
                    node(7001, "master", "online"),
                    node(7004, "replica", "failed"),
                ]),
            ]),
        ]);
        let map = parse_shards(&reply, false, &addr(7000)).unwrap();
        assert_eq!(map.covered(), SLOTS);
        assert_eq!(map.shard(0).unwrap().primary, addr(7000));
        assert_eq!(map.shard(0).unwrap().replicas, [addr(7003)]);
        assert_eq!(map.shard(16383).unwrap().primary, addr(7001));
        assert!(
            map.shard(16383).unwrap().replicas.is_empty(),
            "a failed replica is left out"
        );
    }

    #[test]
    fn cluster_slots_are_read_and_maps_agree_by_majority() {
        let range = |start, end, primary: u16, replica: u16| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![b("127.0.0.1"), Value::Int(primary as i64), b("id")]),
                Value::Array(vec![b(""), Value::Int(replica as i64), b("id2")]),
            ])
        };
        let a = parse_slots(
            &Value::Array(vec![
                range(0, 100, 7000, 7003),
                range(101, 16383, 7001, 7004),
            ]),
            &addr(7000),
        )
        .unwrap();
        assert_eq!(
            a.shard(50).unwrap().replicas,
            [addr(7003)],
            "an empty host is the node asked"
        );
        let stale = parse_slots(
            &Value::Array(vec![range(0, 16383, 7000, 7003)]),
            &addr(7000),
        )
        .unwrap();
        let agreed = agree(vec![a.clone(), stale, a.clone()]).unwrap();
        assert_eq!(agreed, a);
        let mut moved = a.clone();
        moved.moved(50, addr(7001));
        assert_eq!(moved.shard(50).unwrap().primary, addr(7001));
        assert_ne!(moved, a);
    }
}
