//! Running commands on a cluster: to the node the plan names, following `MOVED` and `ASK`,
//! retrying what provably did not run, fanning out and splitting where the spec says, and
//! pipelines split per node.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;

use super::plan::{Plan, combine, cross_slot, encode_sub_command, join_split, node_cursor, plan};
use super::router::LazyNode;
use super::router::Router;
use crate::cmd::{Cmd, Route, cmd};
use crate::config::Addr;
use crate::conn::Payload;
use crate::error::{Error, Result, ServerError};
use crate::pool::Exclusive;
use crate::query::with_timeout;
use crate::resp::Value;
use crate::value::ArgBuf;

/// Redirections followed for one command before its error is returned.
const MAX_REDIRECTS: u32 = 5;
/// Retries of a command that did not run (TRYAGAIN, CLUSTERDOWN, a node not reachable):
/// with the backoff below, about 5 s in all, long enough for a failover.
const MAX_RETRIES: u32 = 8;

fn backoff(retry: u32) -> Duration {
    crate::config::exponential_delay(
        Duration::from_millis(50),
        Duration::from_secs(1),
        retry.saturating_sub(1),
        true,
    )
}

/// Where one command is sent.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    Slot(u16),
    Any,
    Node(Addr, bool),
}

/// What an error reply asks of the client.
enum Redirect {
    Moved(u16, Addr),
    Ask(Addr),
    /// The command did not run; it may succeed shortly (TRYAGAIN, CLUSTERDOWN, LOADING).
    Retry,
}

impl Redirect {
    fn parse(e: &ServerError, from: &Addr) -> Option<Redirect> {
        match e.code() {
            "MOVED" => redirected_to(e, from).map(|(slot, addr)| Redirect::Moved(slot, addr)),
            "ASK" => redirected_to(e, from).map(|(_, addr)| Redirect::Ask(addr)),
            "TRYAGAIN" | "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" => Some(Redirect::Retry),
            _ => None,
        }
    }
}

/// The slot and node a `MOVED` or `ASK` error names (`MOVED 3999 127.0.0.1:6381`); an empty
/// host means the host of the node that answered.
pub(crate) fn redirected_to(e: &ServerError, from: &Addr) -> Option<(u16, Addr)> {
    let (slot, endpoint) = e.message().split_once(' ')?;
    let (host, port) = endpoint.rsplit_once(':')?;
    let host = match (host, from) {
        ("", Addr::Tcp { host, .. }) => host.clone(),
        (h, _) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
    };
    Some((
        slot.parse().ok()?,
        Addr::Tcp {
            host,
            port: port.parse().ok()?,
        },
    ))
}

fn encode(args: &ArgBuf) -> Bytes {
    let mut out = BytesMut::with_capacity(args.len() * 16 + 16);
    args.encode_into(&mut out);
    out.freeze()
}

impl Router {
    /// Runs one command where its plan says; the reply is the server's (an error reply as
    /// `Value::Error`). The plan is made here, at once; the future holds only what its plan
    /// needs (the encoded command, not the arguments), since it is what every command in
    /// flight keeps on the heap.
    pub(crate) fn execute(self: &Arc<Self>, cmd: Cmd) -> BoxFuture<'static, Result<Value>> {
        let blocking = cmd.resolved_route() == Route::Blocking;
        let readonly = !blocking && cmd.is_readonly();
        let timeout = match blocking {
            true => cmd.timeout,
            false => cmd.timeout.or(self.config.response_timeout),
        };
        let me = self.clone();
        match plan(&cmd) {
            Plan::Slot(slot) => {
                let bytes = encode(&cmd.args);
                Box::pin(async move {
                    with_timeout(
                        timeout,
                        me.send(Target::Slot(slot), bytes, blocking, readonly),
                    )
                    .await
                })
            }
            Plan::Any => {
                let bytes = encode(&cmd.args);
                Box::pin(async move {
                    with_timeout(timeout, me.send(Target::Any, bytes, blocking, false)).await
                })
            }
            Plan::CrossSlot => Box::pin(std::future::ready(Err(cross_slot(&cmd)))),
            Plan::NodeCursor => Box::pin(std::future::ready(Err(node_cursor(&cmd)))),
            Plan::Fanout {
                all_nodes,
                response,
            } => {
                let bytes = encode(&cmd.args);
                Box::pin(async move {
                    let sends = me.all(all_nodes).into_iter().map(|(addr, replica)| {
                        me.send(Target::Node(addr, replica), bytes.clone(), blocking, false)
                    });
                    let all = futures::future::join_all(sends);
                    combine(
                        with_timeout(timeout, async { Ok(all.await) }).await?,
                        response,
                    )
                })
            }
            Plan::Split {
                groups,
                unit,
                response,
            } => {
                // One command per slot, every node's in one write, as a pipeline.
                let args: Vec<&[u8]> = cmd.args.iter().collect();
                let mut buf = BytesMut::new();
                let mut ends = Vec::with_capacity(groups.len());
                let mut plans = Vec::with_capacity(groups.len());
                for (slot, positions) in groups.iter() {
                    encode_sub_command(&args, positions, unit, &mut buf);
                    ends.push(buf.len());
                    plans.push(PipePlan::Slot(slot, blocking));
                }
                let buf = buf.freeze();
                Box::pin(async move {
                    let replies = me
                        .pipeline_reading(&buf, &ends, &plans, timeout, readonly)
                        .await?;
                    join_split(&groups, replies, response)
                })
            }
        }
    }

    /// Sends one encoded command to `target`, following redirections and retrying what did
    /// not run.
    pub(crate) async fn send(
        &self,
        target: Target,
        bytes: Bytes,
        blocking: bool,
        readonly: bool,
    ) -> Result<Value> {
        let (mut redirected, mut redirects, mut retries) = (None::<(Addr, bool)>, 0, 0);
        loop {
            let destination = match (&redirected, &target) {
                (Some((addr, ask)), _) => Ok((self.lazy(addr, false), *ask)),
                (None, Target::Slot(slot)) => self.node_for(*slot, readonly).map(|n| (n, false)),
                (None, Target::Any) => self.any_primary_node().map(|n| (n, false)),
                (None, Target::Node(addr, replica)) => Ok((self.lazy(addr, *replica), false)),
            };
            let result = match destination {
                Ok((node, ask)) => self
                    .send_once(&node, ask, &bytes, blocking)
                    .await
                    .map(|v| (v, node)),
                Err(e) => Err(e),
            };
            match result {
                Ok((Value::Error(e), from)) => match Redirect::parse(&e, &from.addr) {
                    Some(Redirect::Moved(slot, to)) if redirects < MAX_REDIRECTS => {
                        redirects += 1;
                        self.moved(slot, to.clone());
                        redirected = Some((to, false));
                    }
                    Some(Redirect::Ask(to)) if redirects < MAX_REDIRECTS => {
                        redirects += 1;
                        self.counters.asked.fetch_add(1, Ordering::Relaxed);
                        redirected = Some((to, true));
                    }
                    Some(Redirect::Retry) if retries < MAX_RETRIES => {
                        retries += 1;
                        self.counters.retried.fetch_add(1, Ordering::Relaxed);
                        self.schedule_refresh();
                        tokio::time::sleep(backoff(retries)).await;
                        redirected = None;
                    }
                    _ => return Ok(Value::Error(e)),
                },
                Ok((value, _)) => return Ok(value),
                // Something is wrong with the node: the map may be stale. A command that was
                // never sent (the node is down, or no node serves the slot yet) may go
                // elsewhere after a fresh map; one sent to a named node stays there.
                Err(e) if !e.is_server() && !e.is_config() && !e.is_usage() && !e.is_type() => {
                    self.schedule_refresh();
                    if !(e.is_unsent()
                        && retries < MAX_RETRIES
                        && !matches!(target, Target::Node(..)))
                    {
                        return Err(e);
                    }
                    retries += 1;
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(backoff(retries)).await;
                    redirected = None;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt on one node; with `ask`, `ASKING` goes first in the same write.
    async fn send_once(
        &self,
        node: &LazyNode,
        ask: bool,
        bytes: &Bytes,
        blocking: bool,
    ) -> Result<Value> {
        let connected = node.connected().await?;
        let (payload, replies) = if ask {
            let mut both = BytesMut::with_capacity(bytes.len() + 20);
            cmd("ASKING").args.encode_into(&mut both);
            both.extend_from_slice(bytes);
            (both.freeze(), 2)
        } else {
            (bytes.clone(), 1)
        };
        let reply = send_on(connected, payload, replies, blocking).await?;
        Ok(match (ask, reply) {
            (true, Value::Array(mut both)) if both.len() == 2 => both.pop().unwrap_or(Value::Nil),
            (_, reply) => reply,
        })
    }

    /// Runs `cmd` on the node at `addr` (a primary), whatever its keys: SCAN walking the
    /// nodes, administration of one node.
    pub(crate) async fn on_node(&self, addr: Addr, cmd: Cmd) -> Result<Value> {
        let timeout = cmd.timeout.or(self.config.response_timeout);
        with_timeout(
            timeout,
            self.send(Target::Node(addr, false), encode(&cmd.args), false, false),
        )
        .await
    }

    /// An exclusive connection to the primary of `slot` (any primary for `None`).
    pub(crate) async fn exclusive_for(&self, slot: Option<u16>) -> Result<Exclusive> {
        let node = match slot {
            Some(slot) => self.node_for(slot, false)?,
            None => self.any_primary_node()?,
        };
        node.connected().await?.exclusive().await
    }

    /// Runs pipelined commands (encoded back to back in `buf`, the `i`th ending at
    /// `ends[i]`, planned as `plans[i]`): split per node, sent concurrently, replies put back
    /// in order; a command redirected inside a pipeline is sent again on its own. Every
    /// command goes to a primary (a pipeline may read what it wrote).
    pub(crate) async fn pipeline(
        &self,
        buf: &Bytes,
        ends: &[usize],
        plans: &[PipePlan],
        timeout: Option<Duration>,
    ) -> Result<Vec<Result<Value>>> {
        self.pipeline_reading(buf, ends, plans, timeout, false)
            .await
    }

    /// [`pipeline`](Self::pipeline); with `readonly`, commands go to replicas when the client
    /// reads from them (the parts of a split read-only command).
    async fn pipeline_reading(
        &self,
        buf: &Bytes,
        ends: &[usize],
        plans: &[PipePlan],
        timeout: Option<Duration>,
        readonly: bool,
    ) -> Result<Vec<Result<Value>>> {
        let parts: Vec<Bytes> = ends
            .iter()
            .scan(0, |start, &end| {
                let part = buf.slice(*start..end);
                *start = end;
                Some(part)
            })
            .collect();
        // A node per command: its slot's, else the previous command's, else any primary.
        let mut groups: Vec<(Arc<LazyNode>, Vec<usize>, bool)> = Vec::new();
        let mut previous: Option<Arc<LazyNode>> = None;
        let mut replies: Vec<Option<Result<Value>>> = (0..parts.len()).map(|_| None).collect();
        for (i, p) in plans.iter().enumerate() {
            let node = match p {
                PipePlan::CrossSlot(why) => {
                    replies[i] = Some(Err(ServerError::new(why.clone()).into()));
                    continue;
                }
                PipePlan::NodeCursor(why) => {
                    replies[i] = Some(Err(Error::config(why.clone())));
                    continue;
                }
                PipePlan::Slot(slot, blocking) => self.node_for(*slot, readonly && !blocking)?,
                PipePlan::Any(_) => match &previous {
                    Some(n) => n.clone(),
                    None => self.any_primary_node()?,
                },
            };
            let blocking = p.blocking();
            match groups.iter_mut().find(|(n, _, _)| Arc::ptr_eq(n, &node)) {
                Some((_, members, any_blocking)) => {
                    members.push(i);
                    *any_blocking |= blocking;
                }
                None => groups.push((node.clone(), vec![i], blocking)),
            }
            previous = Some(node);
        }
        let sends = groups.iter().map(|(node, members, blocking)| {
            let payload = match members[..] {
                [only] => parts[only].clone(),
                _ => {
                    let mut payload =
                        BytesMut::with_capacity(members.iter().map(|&i| parts[i].len()).sum());
                    for &i in members {
                        payload.extend_from_slice(&parts[i]);
                    }
                    payload.freeze()
                }
            };
            let slot = members.iter().find_map(|&i| plans[i].slot());
            self.send_group(
                slot,
                node.clone(),
                payload,
                members.len(),
                *blocking,
                readonly,
            )
        });
        let batches = with_timeout(timeout, async {
            Ok(futures::future::join_all(sends).await)
        })
        .await?;
        for ((_, members, _), batch) in groups.iter().zip(batches) {
            match batch {
                Ok(values) => {
                    for (&i, v) in members.iter().zip(values) {
                        replies[i] = Some(Ok(v));
                    }
                }
                Err(e) => {
                    self.schedule_refresh();
                    for &i in members {
                        replies[i] = Some(Err(e.duplicate()));
                    }
                }
            }
        }
        // Redirected (or refused for now) commands go again, each on its own.
        for (i, reply) in replies.iter_mut().enumerate() {
            let redirected = matches!(reply, Some(Ok(Value::Error(e)))
                if matches!(e.code(), "MOVED" | "ASK" | "TRYAGAIN" | "CLUSTERDOWN"));
            if redirected && let PipePlan::Slot(slot, blocking) = plans[i] {
                *reply = Some(
                    self.send(
                        Target::Slot(slot),
                        parts[i].clone(),
                        blocking,
                        readonly && !blocking,
                    )
                    .await,
                );
            }
        }
        Ok(replies
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(Error::protocol("a pipelined command got no reply"))))
            .map(|r| match r {
                Ok(Value::Error(e)) => Err(e.into()),
                other => other,
            })
            .collect())
    }

    /// One node's share of a pipeline, sent again whole (after a fresh map and a pause) while
    /// it provably was not sent: its keyless commands (a WAIT) stay with the keyed ones.
    async fn send_group(
        &self,
        slot: Option<u16>,
        mut node: Arc<LazyNode>,
        payload: Bytes,
        count: usize,
        blocking: bool,
        readonly: bool,
    ) -> Result<Vec<Value>> {
        let mut retries = 0;
        loop {
            match send_batch(&node, payload.clone(), count, blocking).await {
                Err(e) if e.is_unsent() && retries < MAX_RETRIES => {
                    retries += 1;
                    self.counters.retried.fetch_add(1, Ordering::Relaxed);
                    self.schedule_refresh();
                    tokio::time::sleep(backoff(retries)).await;
                    node = match slot {
                        Some(slot) => self.node_for(slot, readonly && !blocking),
                        None => self.any_primary_node(),
                    }
                    .unwrap_or(node);
                }
                other => return other,
            }
        }
    }
}

/// One node's share of a pipeline, in one write.
async fn send_batch(
    node: &LazyNode,
    payload: Bytes,
    count: usize,
    blocking: bool,
) -> Result<Vec<Value>> {
    let reply = send_on(node.connected().await?, payload, count, blocking).await?;
    Ok(match (count, reply) {
        (1, v) => vec![v],
        (_, Value::Array(items)) => items,
        (_, other) => vec![other],
    })
}

/// Sends encoded commands to a node: on its shared connection, or on an exclusive one when
/// one of them blocks (no timeout of its own: the caller's applies).
async fn send_on(
    node: &crate::node::Node,
    payload: Bytes,
    replies: usize,
    blocking: bool,
) -> Result<Value> {
    if blocking {
        // Boxed: the exclusive path's future is large, and the shared path is the hot one.
        Box::pin(async move {
            let exclusive = node.exclusive().await?;
            exclusive
                .request_payload(Payload::Encoded(payload), replies, None, true)
                .await
        })
        .await
    } else {
        node.shared()
            .send(Payload::Encoded(payload), replies, false)
            .await
    }
}

/// Where a pipelined command goes.
#[derive(Debug, Clone)]
pub(crate) enum PipePlan {
    /// The node of this slot; blocking or not.
    Slot(u16, bool),
    /// With the command before it (keyless); blocking or not.
    Any(bool),
    /// Keys of several slots: this error in its place, nothing sent.
    CrossSlot(String),
    /// A node's cursor with no node (SCAN): this error in its place, nothing sent.
    NodeCursor(String),
}

impl PipePlan {
    /// How a command goes into a pipeline.
    pub(crate) fn of(cmd: &Cmd) -> PipePlan {
        let blocking = cmd.resolved_route() == Route::Blocking;
        match plan(cmd) {
            Plan::Slot(slot) => PipePlan::Slot(slot, blocking),
            Plan::Any | Plan::Fanout { .. } => PipePlan::Any(blocking),
            Plan::NodeCursor => PipePlan::NodeCursor(node_cursor(cmd).to_string()),
            Plan::Split { .. } | Plan::CrossSlot => PipePlan::CrossSlot(format!(
                "CROSSSLOT Keys in request don't hash to the same slot ({} in a pipeline: \
                 keys of one command must share a slot; give them one hash tag)",
                cmd.full_name()
            )),
        }
    }

    fn blocking(&self) -> bool {
        matches!(self, PipePlan::Slot(_, true) | PipePlan::Any(true))
    }

    /// The slot, when the command has keys.
    pub(crate) fn slot(&self) -> Option<u16> {
        match self {
            PipePlan::Slot(slot, _) => Some(*slot),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn a_cluster_command_in_flight_holds_little_memory() {
        let router = Router::unconnected(Config::default());
        let get = router.execute(cmd("GET").arg("k"));
        let split = router.execute(cmd("MGET").arg(["a", "b", "c"]));
        let sent = router.send(Target::Slot(1), Bytes::new(), false, false);
        // What a command in flight keeps on the heap is its boxed future: one for a GET.
        let boxed = |f: &BoxFuture<'_, Result<Value>>| std::mem::size_of_val(&**f);
        eprintln!(
            "boxed GET: {} bytes, boxed MGET: {} bytes, send: {} bytes",
            boxed(&get),
            boxed(&split),
            std::mem::size_of_val(&sent)
        );
        assert!(
            boxed(&get) <= 1536,
            "a GET in flight holds {} bytes",
            boxed(&get)
        );
        assert!(
            boxed(&split) <= 4096,
            "an MGET in flight holds {} bytes",
            boxed(&split)
        );
    }
}
