//! `atomic`: read-modify-write under WATCH, retried while others write. Twenty tasks move
//! money between two accounts; the total never changes.
//!
//!     cargo run --example atomic

use kermes::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;
    client.mset([("acct:a", 1_000), ("acct:b", 1_000)]).await?;

    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let (from, to) = if i % 2 == 0 {
                    ("acct:a", "acct:b")
                } else {
                    ("acct:b", "acct:a")
                };
                kermes::atomic(&client, 100, move |tx| async move {
                    tx.watch([from, to]).await?;
                    let a: i64 = tx.get(from).await?;
                    let b: i64 = tx.get(to).await?;
                    tx.writes().set(from, a - 10);
                    tx.writes().set(to, b + 10);
                    Ok(())
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let a: i64 = client.get("acct:a").await?;
    let b: i64 = client.get("acct:b").await?;
    println!("a = {a}, b = {b}, total = {} (always 2000)", a + b);
    assert_eq!(a + b, 2_000);
    Ok(())
}
