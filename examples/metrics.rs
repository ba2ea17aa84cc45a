//! Metrics: the client's counters served to Prometheus.
//!
//! Installs `metrics-exporter-prometheus` with its HTTP listener on `METRICS_ADDR`
//! (default 127.0.0.1:9091), reports the client's stats to it every second, runs some
//! traffic (with one server error and one blocking pop), then scrapes its own `/metrics`
//! once and prints the `kermes_` lines. Set `SERVE=1` to keep serving afterwards.
//!
//! Uses `REDIS_URL` when set; otherwise starts a throwaway redis-server.
//!
//!     cargo run --example metrics --features testing,metrics

use std::net::SocketAddr;
use std::time::Duration;

use kermes::prelude::*;
use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let addr: SocketAddr = std::env::var("METRICS_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:9091".into())
        .parse()?;
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()?;

    let client = Client::connect(&url).await?;
    let _reporter = kermes::metrics::report(&client, "example", Duration::from_secs(1));

    futures::future::try_join_all((0..1_000).map(|i| client.set(format!("k:{i}"), i))).await?;
    let _: Vec<Option<i64>> = client
        .mget((0..100).map(|i| format!("k:{i}")).collect::<Vec<_>>())
        .await?;
    client.set("text", "not a number").await?;
    let _ = client.incr("text").await; // a server error, counted by kind
    let _: Option<(String, String)> = client.blpop("queue", 0.1).await?; // an exclusive connection

    // Let the reporter run once more, then scrape what Prometheus would.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut page = String::new();
    conn.read_to_string(&mut page).await?;
    println!("scraped http://{addr}/metrics:");
    for line in page.lines().filter(|l| l.starts_with("kermes_")) {
        println!("  {line}");
    }

    if std::env::var_os("SERVE").is_some() {
        println!("serving on http://{addr}/metrics; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    Ok(())
}
