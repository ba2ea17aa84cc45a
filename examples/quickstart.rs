//! Quickstart: connect, SET/GET, then a burst of 1,000 concurrent commands.
//!
//! Uses `REDIS_URL` when set; otherwise starts a throwaway redis-server (or valkey-server)
//! from a local binary (see `scripts/install-servers.sh`).
//!
//!     cargo run --example quickstart --features testing

use std::time::Instant;

use kermes::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the throwaway server (if any) alive until the end of main.
    let (url, server) = kermes::testing::url_from_env_or_start()?;
    if let Some(server) = &server {
        println!(
            "started a throwaway {} at {}",
            server.kind().program(),
            server.url()
        );
    }

    let client = Client::connect(&url).await?;
    println!("connected to {url} over {:?}", client.protocol());

    client
        .cmd("SET")
        .arg("kermes:greeting")
        .arg("hello from kermes")
        .exec()
        .await?;
    let greeting: String = client.cmd("GET").arg("kermes:greeting").query().await?;
    println!("SET then GET kermes:greeting -> {greeting:?}");

    // 1,000 commands issued at once share one connection and go out in a few writes.
    let started = Instant::now();
    let replies = futures::future::try_join_all(
        (0..1_000).map(|_| client.cmd("INCR").arg("kermes:counter").query::<i64>()),
    )
    .await?;
    let elapsed = started.elapsed();
    let last = replies.iter().max().copied().unwrap_or_default();
    println!("1,000 concurrent INCRs in {elapsed:?}; counter is now {last}");

    client
        .cmd("DEL")
        .arg(["kermes:greeting", "kermes:counter"])
        .exec()
        .await?;
    println!("cleaned up; done");
    Ok(())
}
