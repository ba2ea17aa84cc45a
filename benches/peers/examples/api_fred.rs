use std::collections::HashMap;

use bytes::Bytes;
use fred::prelude::*;

async fn greet(client: &Client, name: &str) -> FredResult<()> {
    let _: () = client
        .set(
            "greeting",
            format!("hello, {name}"),
            Some(Expiration::EX(60)),
            None,
            false,
        )
        .await?;
    client.set("greeted", name, None, None, false).await
}

#[tokio::main]
async fn main() -> FredResult<()> {
    let url = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    let client = Builder::from_config(Config::from_url(&url)?).build()?;
    client.init().await?;
    greet(&client, "ada").await?;
    let greeting: Option<String> = client.get("greeting").await?;
    let visits: i64 = client.incr("visits").await?;
    let _: () = client
        .hset("user:1", [("name", "ada"), ("lang", "rust")])
        .await?;
    let user: HashMap<String, String> = client.hgetall("user:1").await?;
    let _: () = client.rpush("jobs", vec!["a", "b", "c"]).await?;
    let jobs: Vec<Bytes> = client.lrange("jobs", 0, -1).await?;
    let pipe = client.pipeline();
    let _: () = pipe.incr("visits").await?;
    let _: () = pipe.get("greeting").await?;
    let (after, again): (i64, Option<String>) = pipe.all().await?;
    println!("{greeting:?} {visits} {user:?} {jobs:?} {after} {again:?}");
    Ok(())
}
