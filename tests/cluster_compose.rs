//! The cluster `docker-compose.yml` describes, without Docker: six `redis-server` processes
//! started with the arguments its `cluster-*` services give, formed with the
//! `redis-cli --cluster create` command its `cluster-init` service runs, and reached through
//! the URL its comment shows, each with the ports of this run put in place of 7000-7005.

mod common;

use std::time::Duration;

use kermes::prelude::*;
use kermes::testing::{ServerKind, ServerOptions, TestServer};

const COMPOSE: &str = include_str!("../docker-compose.yml");

/// The line of the compose file that contains `needle`, trimmed.
fn line_with(needle: &str) -> &'static str {
    COMPOSE
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("docker-compose.yml has no line with {needle:?}"))
        .trim()
}

/// `text` with the compose file's ports 7000-7005 replaced by this run's.
fn with_ports(text: &str, ports: &[u16]) -> String {
    let mut out = text.to_string();
    for (i, port) in ports.iter().enumerate() {
        out = out.replace(&format!("700{i}"), &port.to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_files_cluster_forms_and_serves_kermes() {
    common::run_on(ServerKind::Redis, |kind| async move {
        // `exec redis-server --port $$NODE_PORT --bind 127.0.0.1 <the node's arguments>`:
        // the harness picks the port and binds loopback itself.
        let node_line = line_with("exec redis-server --port $$NODE_PORT");
        let args: Vec<String> = node_line
            .split_once("--bind 127.0.0.1")
            .expect("cluster nodes bind 127.0.0.1")
            .1
            .split_whitespace()
            .map(|a| a.replace("''", "").replace("$$NODE_PORT", "node"))
            .collect();
        assert!(args.contains(&"--cluster-enabled".to_string()), "{args:?}");
        let nodes: Vec<TestServer> = (0..6)
            .map(|_| TestServer::start_with(kind, ServerOptions::default().args(args.clone())))
            .collect();
        let ports: Vec<u16> = nodes.iter().map(TestServer::port).collect();

        let create = with_ports(line_with("redis-cli --cluster create"), &ports);
        let words: Vec<&str> = create.split_whitespace().collect();
        let status = tokio::process::Command::new(words[0])
            .args(&words[1..])
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .expect("redis-cli runs (bash scripts/install-servers.sh installs it)");
        assert!(status.success(), "{create}");

        let url_line = line_with("redis+cluster://127.0.0.1:7000");
        let url = with_ports(url_line.trim_start_matches('#').trim(), &ports);
        // redis-cli returns once the nodes agree; each takes a moment to say `ok`.
        let client = common::eventually(Duration::from_secs(30), || async {
            let client = Client::connect(&url).await?;
            client.set("probe", 1).await?;
            Ok(client)
        })
        .await;
        let keys: Vec<String> = (0..100).map(|i| format!("compose:{i}")).collect();
        let pairs: Vec<(&String, usize)> = keys.iter().zip(0..).collect();
        client.mset(&pairs).await.unwrap();
        let values: Vec<usize> = client.mget(&keys).to().await.unwrap();
        assert_eq!(values, (0..100).collect::<Vec<_>>());
        assert_eq!(client.dbsize().await.unwrap(), 101);
        let masters: usize = {
            let mut n = 0;
            for port in &ports {
                let node = Client::connect(&format!("redis://127.0.0.1:{port}"))
                    .await
                    .unwrap();
                let role: Vec<kermes::Value> = node.cmd("ROLE").query().await.unwrap();
                n += usize::from(role[0].as_bytes().is_some_and(|r| &r[..] == b"master"));
            }
            n
        };
        assert_eq!(masters, 3, "three primaries and three replicas");
    })
    .await
}
