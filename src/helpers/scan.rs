//! SCAN, SSCAN, HSCAN and ZSCAN as streams that yield each key or member once.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use futures::Stream;

use crate::client::Client;
use crate::cmd::{Cmd, cmd};
use crate::config::Addr;
use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::FromValue;

/// How many elements SCAN is asked for per call.
const COUNT: usize = 1000;

struct Scan<'a> {
    client: &'a Client,
    /// The command up to the cursor: `SCAN`, or `HSCAN key`.
    head: Cmd,
    pattern: Option<String>,
    /// Elements per item: 1 for keys and members, 2 for field/value and member/score.
    width: usize,
    cursor: Option<u64>,
    buffer: VecDeque<Vec<Value>>,
    /// SCAN may return an element more than once (while the table is rehashed); the stream
    /// does not. The set grows with the elements seen.
    seen: HashSet<Bytes>,
    /// SCAN on a cluster: a cursor belongs to one node, so the primaries are scanned one
    /// after another (the first is the node being scanned).
    nodes: Option<VecDeque<Addr>>,
}

impl Scan<'_> {
    async fn next_item(&mut self) -> Result<Option<Vec<Value>>> {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                let key = item
                    .first()
                    .and_then(Value::as_bytes)
                    .cloned()
                    .unwrap_or_default();
                if self.seen.insert(key) {
                    return Ok(Some(item));
                }
                continue;
            }
            let cursor = match (self.cursor, &mut self.nodes) {
                (Some(cursor), _) => cursor,
                // This node is done: the next one, from the start.
                (None, Some(nodes)) if nodes.len() > 1 => {
                    nodes.pop_front();
                    0
                }
                (None, _) => return Ok(None),
            };
            let mut c = self.head.clone().arg(cursor);
            if let Some(p) = &self.pattern {
                c = c.arg("MATCH").arg(p);
            }
            let c = c.arg("COUNT").arg(COUNT);
            let (next, page): (String, Vec<Value>) = match (&self.nodes, self.client.router()) {
                (Some(nodes), Some(router)) => {
                    let node = nodes
                        .front()
                        .cloned()
                        .ok_or_else(|| Error::closed("no node"))?;
                    crate::query::into_result(router.on_node(node, c).await?)?
                }
                _ => self.client.query(c).await?,
            };
            let next: u64 = next
                .parse()
                .map_err(|_| Error::type_error(format!("bad SCAN cursor {next:?}")))?;
            self.cursor = (next != 0).then_some(next);
            if page.len() % self.width != 0 {
                return Err(Error::protocol("SCAN page of odd length"));
            }
            let mut it = page.into_iter();
            while let Some(first) = it.next() {
                let mut item = vec![first];
                item.extend(it.by_ref().take(self.width - 1));
                self.buffer.push_back(item);
            }
        }
    }
}

fn stream<'a, T: FromValue + 'a>(
    client: &'a Client,
    head: Cmd,
    pattern: Option<&str>,
    width: usize,
) -> impl Stream<Item = Result<T>> + 'a {
    // Only SCAN itself walks the keyspace of every node; HSCAN and friends follow their key.
    let nodes = match client.router() {
        Some(router) if head.name().eq_ignore_ascii_case("SCAN") => Some(
            router
                .all(false)
                .into_iter()
                .map(|(addr, _)| addr)
                .collect(),
        ),
        _ => None,
    };
    let state = Scan {
        client,
        head,
        pattern: pattern.map(str::to_string),
        width,
        cursor: Some(0),
        buffer: VecDeque::new(),
        seen: HashSet::new(),
        nodes,
    };
    futures::stream::try_unfold(state, |mut s| async move {
        match s.next_item().await? {
            None => Ok(None),
            Some(mut item) if item.len() == 1 => Ok(Some((T::from_value(item.remove(0))?, s))),
            Some(item) => Ok(Some((T::from_value(Value::Array(item))?, s))),
        }
    })
}

/// Every key (matching `pattern`, e.g. `Some("user:*")`), each once, as a stream. On a
/// cluster, every primary's keys, one primary after another.
pub fn scan_stream<'a, T: FromValue + 'a>(
    client: &'a Client,
    pattern: Option<&str>,
) -> impl Stream<Item = Result<T>> + 'a {
    stream(client, cmd("SCAN"), pattern, 1)
}

/// Every member of a set, each once.
pub fn sscan_stream<'a, T: FromValue + 'a>(
    client: &'a Client,
    key: &str,
    pattern: Option<&str>,
) -> impl Stream<Item = Result<T>> + 'a {
    stream(client, cmd("SSCAN").arg(key), pattern, 1)
}

/// Every field and value of a hash, as `(field, value)` pairs, each field once.
pub fn hscan_stream<'a, F: FromValue + 'a, V: FromValue + 'a>(
    client: &'a Client,
    key: &str,
    pattern: Option<&str>,
) -> impl Stream<Item = Result<(F, V)>> + 'a {
    stream(client, cmd("HSCAN").arg(key), pattern, 2)
}

/// Every member of a sorted set with its score, as `(member, score)` pairs, each once.
pub fn zscan_stream<'a, M: FromValue + 'a>(
    client: &'a Client,
    key: &str,
    pattern: Option<&str>,
) -> impl Stream<Item = Result<(M, f64)>> + 'a {
    stream(client, cmd("ZSCAN").arg(key), pattern, 2)
}
