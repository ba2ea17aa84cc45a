//! Explicit pipelines: one write for many commands, typed replies or errors as values.
//!
//!     cargo run --example pipeline

use std::time::Duration;

use kermes::prelude::*;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;

    // Typed: the replies as a tuple, failing on the first error.
    let pipe = client.pipeline();
    pipe.set("visits", 10);
    pipe.incr("visits");
    pipe.get("visits");
    let (_, after_incr, read): (Value, i64, String) = pipe.query().await?;
    println!("incremented to {after_incr}, read back {read:?}");

    // Errors as values: one bad command does not hide the others' replies.
    let pipe = client.pipeline();
    pipe.incr("visits");
    pipe.lpush("visits", "not a list");
    pipe.get("visits")
        .parse(|v| Ok(Value::Int(i64::from_value(v)? * 100)));
    for (i, reply) in pipe.run().await?.into_iter().enumerate() {
        println!("reply {i}: {reply:?}");
    }

    // 10,000 commands, one write.
    let pipe = client.pipeline();
    for i in 0..10_000 {
        pipe.set(format!("bulk:{i}"), i);
    }
    let started = std::time::Instant::now();
    let replies = pipe.run().await?;
    println!("{} SETs in {:?}", replies.len(), started.elapsed());

    // A MULTI/EXEC transaction.
    let tx = client.transaction();
    tx.incrby("visits", 5);
    tx.expire_in("visits", Duration::from_secs(60));
    println!("transaction replies: {:?}", tx.run().await?);
    Ok(())
}
