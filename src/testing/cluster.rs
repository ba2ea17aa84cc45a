//! [`ClusterSet`]: a cluster of three primaries and three replicas, for cluster tests.

use std::time::Duration;

use super::wire::{info, query, wait_for};
use super::{ServerKind, ServerOptions, TestServer};
use crate::resp::Value;

/// The slot ranges of the three primaries.
const RANGES: [(u16, u16); 3] = [(0, 5460), (5461, 10922), (10923, 16383)];

/// Six servers in cluster mode: nodes 0-2 are primaries serving a third of the slots each,
/// nodes 3-5 their replicas (3 of 0, 4 of 1, 5 of 2). A node is considered failed after one
/// second (`cluster-node-timeout 1000`), so a failover takes seconds. `start` returns once
/// every node reports the cluster `ok` and every replica is in sync.
pub struct ClusterSet {
    kind: ServerKind,
    nodes: Vec<TestServer>,
}

/// The server arguments of every cluster node.
const NODE_ARGS: [&str; 6] = [
    "--cluster-enabled",
    "yes",
    "--cluster-node-timeout",
    "1000",
    // Any replica may take over, however long since it last heard its primary.
    "--cluster-replica-validity-factor",
    "0",
];

impl ClusterSet {
    /// Starts the cluster; panics with the reason when it cannot.
    pub fn start(kind: ServerKind) -> ClusterSet {
        Self::try_start(kind).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the cluster, or says why it could not.
    pub fn try_start(kind: ServerKind) -> Result<ClusterSet, String> {
        let mut nodes = Vec::new();
        for _ in 0..6 {
            nodes.push(TestServer::try_start(
                kind,
                ServerOptions::default().args(NODE_ARGS),
            )?);
        }
        let set = ClusterSet { kind, nodes };
        let first = set.port(0);
        for i in 1..6 {
            ok(query(
                first,
                &["CLUSTER", "MEET", "127.0.0.1", &set.port(i).to_string()],
            ))?;
        }
        for (i, (start, end)) in RANGES.iter().enumerate() {
            ok(query(
                set.port(i),
                &[
                    "CLUSTER",
                    "ADDSLOTSRANGE",
                    &start.to_string(),
                    &end.to_string(),
                ],
            ))?;
        }
        set.wait_known(Duration::from_secs(30))?;
        for i in 3..6 {
            let primary = set.node_id(i - 3)?;
            wait_for(
                Duration::from_secs(10),
                "a replica takes its primary",
                || ok(query(set.port(i), &["CLUSTER", "REPLICATE", &primary])).is_ok(),
            )?;
        }
        set.wait_ready(Duration::from_secs(60))?;
        Ok(set)
    }

    /// Waits until every running node knows every other.
    fn wait_known(&self, within: Duration) -> Result<(), String> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].is_running())
            .collect();
        let mut checks = 0u32;
        wait_for(within, "every node knows the others", || {
            let known = running
                .iter()
                .all(|&i| self.cluster_nodes(i).lines().count() == running.len());
            // A MEET's handshake can be lost on a loaded machine, and gossip never retries
            // it: ask again now and then (meeting a known node changes nothing).
            checks += 1;
            if !known && checks % 20 == 0 {
                self.meet_all(&running);
            }
            known
        })
    }

    /// Every running node told of every other, through the first.
    fn meet_all(&self, running: &[usize]) {
        let Some((&first, rest)) = running.split_first() else {
            return;
        };
        for &j in rest {
            let _ = query(
                self.port(first),
                &["CLUSTER", "MEET", "127.0.0.1", &self.port(j).to_string()],
            );
        }
    }

    /// Starts one more node and joins it to the cluster as a primary serving no slot (move
    /// slots to it with [`migrate_slot`](Self::migrate_slot)); returns its index.
    pub fn add_node(&mut self) -> Result<usize, String> {
        let node = TestServer::try_start(self.kind, ServerOptions::default().args(NODE_ARGS))?;
        let port = node.port().to_string();
        self.nodes.push(node);
        let first = self.primaries()[0];
        ok(query(
            self.port(first),
            &["CLUSTER", "MEET", "127.0.0.1", &port],
        ))?;
        self.wait_known(Duration::from_secs(30))?;
        self.wait_ready(Duration::from_secs(30))?;
        Ok(self.nodes.len() - 1)
    }

    /// Takes node `i` out of the cluster, as `redis-cli --cluster del-node` does: every other
    /// node forgets it, then it is stopped. Move its slots away first.
    pub fn remove_node(&mut self, i: usize) -> Result<(), String> {
        let id = self.node_id(i)?;
        for j in 0..self.nodes.len() {
            if j != i && self.nodes[j].is_running() {
                ok(query(self.port(j), &["CLUSTER", "FORGET", &id]))?;
            }
        }
        self.nodes[i].kill();
        self.wait_known(Duration::from_secs(30))
    }

    /// The running nodes that are primaries now.
    pub fn primaries(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i].is_running()
                    && info(self.port(i), "replication").contains("role:master")
            })
            .collect()
    }

    /// Waits until every running node says the cluster is `ok` and every running replica is
    /// in sync.
    pub fn wait_ready(&self, within: Duration) -> Result<(), String> {
        wait_for(within, "the cluster is ok and the replicas in sync", || {
            self.nodes.iter().enumerate().all(|(i, n)| {
                !n.is_running()
                    || (info(self.port(i), "cluster").contains("cluster_enabled:1")
                        && cluster_info(self.port(i)).contains("cluster_state:ok")
                        && {
                            let repl = info(self.port(i), "replication");
                            repl.contains("role:master") || repl.contains("master_link_status:up")
                        })
            })
        })
    }

    /// `redis+cluster://127.0.0.1:P0,127.0.0.1:P1,127.0.0.1:P2` (the primaries as seeds).
    pub fn url(&self) -> String {
        let seeds: Vec<String> = (0..3)
            .map(|i| format!("127.0.0.1:{}", self.port(i)))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    /// The port of node `i`.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port()
    }

    /// Node `i`.
    pub fn node(&mut self, i: usize) -> &mut TestServer {
        &mut self.nodes[i]
    }

    /// Node `i`'s cluster id.
    pub fn node_id(&self, i: usize) -> Result<String, String> {
        match query(self.port(i), &["CLUSTER", "MYID"]) {
            Ok(Value::Bulk(id)) => Ok(String::from_utf8_lossy(&id).into_owned()),
            other => Err(format!("CLUSTER MYID: {other:?}")),
        }
    }

    /// `CLUSTER NODES` as node `i` sees it ("" when it does not answer).
    pub fn cluster_nodes(&self, i: usize) -> String {
        match query(self.port(i), &["CLUSTER", "NODES"]) {
            Ok(Value::Bulk(b) | Value::Verbatim { text: b, .. }) => {
                String::from_utf8_lossy(&b).into_owned()
            }
            _ => String::new(),
        }
    }

    /// The port of the primary serving `slot`, as node `asked` sees it.
    pub fn owner_of(&self, slot: u16, asked: usize) -> Option<u16> {
        self.cluster_nodes(asked).lines().find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            if !fields.get(2)?.contains("master") {
                return None;
            }
            let serves = fields.iter().skip(8).any(|r| match r.split_once('-') {
                Some((a, b)) => {
                    a.parse::<u16>().is_ok_and(|a| a <= slot)
                        && b.parse::<u16>().is_ok_and(|b| slot <= b)
                }
                None => r.parse::<u16>().ok() == Some(slot),
            });
            let port = fields.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
            serves.then_some(port)
        })
    }

    /// Moves `slot` from node `from` to node `to` the way resharding does: IMPORTING on the
    /// target, MIGRATING on the source, every key MIGRATEd in batches of `batch` (with
    /// `pause` between batches, so clients meet ASK and TRYAGAIN), then SETSLOT NODE on
    /// every primary. Blocking; run it on a thread of its own while clients work.
    pub fn migrate_slot(
        &self,
        slot: u16,
        from: usize,
        to: usize,
        batch: usize,
        pause: Duration,
    ) -> Result<(), String> {
        let (source, target) = (self.port(from), self.port(to));
        let (from_id, to_id) = (self.node_id(from)?, self.node_id(to)?);
        let s = slot.to_string();
        ok(query(
            target,
            &["CLUSTER", "SETSLOT", &s, "IMPORTING", &from_id],
        ))?;
        ok(query(
            source,
            &["CLUSTER", "SETSLOT", &s, "MIGRATING", &to_id],
        ))?;
        loop {
            let keys = match query(
                source,
                &["CLUSTER", "GETKEYSINSLOT", &s, &batch.to_string()],
            ) {
                Ok(Value::Array(keys)) => keys,
                other => return Err(format!("GETKEYSINSLOT: {other:?}")),
            };
            if keys.is_empty() {
                break;
            }
            let mut migrate = vec![
                "MIGRATE".to_string(),
                "127.0.0.1".into(),
                target.to_string(),
                String::new(),
                "0".into(),
                "5000".into(),
                "KEYS".into(),
            ];
            for k in &keys {
                if let Some(k) = k.as_bytes() {
                    migrate.push(String::from_utf8_lossy(k).into_owned());
                }
            }
            let args: Vec<&str> = migrate.iter().map(String::as_str).collect();
            ok(query(source, &args))?;
            std::thread::sleep(pause);
        }
        for i in [to, from].into_iter().chain(self.primaries()) {
            match ok(query(
                self.port(i),
                &["CLUSTER", "SETSLOT", &s, "NODE", &to_id],
            )) {
                // A primary that gave its last slot away becomes a replica of the new owner.
                Err(e) if e.contains("only with masters") => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }
}

fn cluster_info(port: u16) -> String {
    match query(port, &["CLUSTER", "INFO"]) {
        Ok(Value::Bulk(b) | Value::Verbatim { text: b, .. }) => {
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => String::new(),
    }
}

/// An error reply (or no reply) as an error.
fn ok(reply: Result<Value, String>) -> Result<Value, String> {
    match reply? {
        Value::Error(e) => Err(e.to_string()),
        v => Ok(v),
    }
}
