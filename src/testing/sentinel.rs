//! [`SentinelSet`]: a master, a replica and three sentinels, for failover tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wire::{count, info, query, wait_for};
use super::{ServerKind, ServerOptions, TestServer, free_port};
use crate::resp::Value;

/// The master name the sentinels of a [`SentinelSet`] monitor.
pub const MASTER_NAME: &str = "mymaster";

/// One sentinel process, killed on drop.
struct SentinelProcess {
    port: u16,
    dir: tempfile::TempDir,
    binary: PathBuf,
    child: Option<Child>,
}

impl SentinelProcess {
    fn start(kind: ServerKind, master_port: u16) -> Result<SentinelProcess, String> {
        let dir = tempfile::Builder::new()
            .prefix("kermes-sentinel-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut sentinel = SentinelProcess {
            port: free_port()?,
            dir,
            binary: kind.binary()?,
            child: None,
        };
        // Short timings so a failover takes seconds, not minutes.
        let conf = format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir {dir}\n\
             logfile {dir}/sentinel.log\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 5000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            port = sentinel.port,
            dir = sentinel.dir.path().display(),
        );
        std::fs::write(sentinel.conf(), conf).map_err(|e| e.to_string())?;
        sentinel.spawn()?;
        Ok(sentinel)
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("sentinel.conf")
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(&self.binary)
            .arg(self.conf())
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {} --sentinel: {e}", self.binary.display()))?;
        self.child = Some(child);
        wait_for(Duration::from_secs(15), "a sentinel answers PING", || {
            query(self.port, &["PING"]).is_ok()
        })
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A master, one replica of it and three sentinels monitoring it as [`MASTER_NAME`] (quorum
/// two, a master is down after one second), all of one server kind and killed on drop.
/// `start` returns once the replica is in sync and every sentinel knows the replica and the
/// other sentinels, so a failover can happen at once.
pub struct SentinelSet {
    /// The first master.
    pub master: TestServer,
    /// Its replica, promoted by a failover.
    pub replica: TestServer,
    sentinels: Vec<SentinelProcess>,
}

impl SentinelSet {
    /// Starts the set; panics with the reason when it cannot.
    pub fn start(kind: ServerKind) -> SentinelSet {
        Self::try_start(kind).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts the set, or says why it could not.
    pub fn try_start(kind: ServerKind) -> Result<SentinelSet, String> {
        let master = TestServer::try_start(kind, ServerOptions::default())?;
        let replica = TestServer::try_start(
            kind,
            ServerOptions::default().args(["--replicaof", "127.0.0.1", &master.port().to_string()]),
        )?;
        // In sync before the sentinels start: a sentinel's first INFO of the master then
        // lists the replica, instead of the next one ten seconds later.
        wait_for(Duration::from_secs(30), "the replica is in sync", || {
            info(replica.port(), "replication").contains("master_link_status:up")
        })?;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(SentinelProcess::start(kind, master.port())?);
        }
        let set = SentinelSet {
            master,
            replica,
            sentinels,
        };
        wait_for(
            Duration::from_secs(30),
            "every sentinel knows the replica and the other two sentinels",
            || {
                set.sentinels.iter().all(|s| {
                    count(s.port, &["SENTINEL", "SENTINELS", MASTER_NAME]) == Some(2)
                        && count(s.port, &["SENTINEL", "REPLICAS", MASTER_NAME]) == Some(1)
                })
            },
        )?;
        Ok(set)
    }

    /// `redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/mymaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinel_ports()
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// Kills sentinel `i` (SIGKILL).
    pub fn kill_sentinel(&mut self, i: usize) {
        self.sentinels[i].kill();
    }

    /// Starts sentinel `i` again.
    pub fn restart_sentinel(&mut self, i: usize) {
        self.sentinels[i].kill();
        self.sentinels[i]
            .spawn()
            .unwrap_or_else(|e| panic!("restarting a sentinel: {e}"));
    }

    /// The master's port as the first sentinel that answers reports it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            match query(
                s.port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
            ) {
                Ok(Value::Array(a)) => a
                    .get(1)
                    .and_then(Value::as_bytes)
                    .and_then(|p| std::str::from_utf8(p).ok()?.parse().ok()),
                _ => None,
            }
        })
    }

    /// Waits until the sentinels report a master other than `old_port`; returns its port.
    pub fn wait_for_new_master(&self, old_port: u16, within: Duration) -> Result<u16, String> {
        let mut found = None;
        wait_for(within, "the sentinels promote a new master", || {
            found = self.master_port().filter(|p| *p != old_port);
            found.is_some()
        })?;
        found.ok_or_else(|| "no new master".into())
    }
}
