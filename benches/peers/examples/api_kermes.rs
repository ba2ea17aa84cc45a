use std::{collections::HashMap, time::Duration};

use kermes::prelude::*;

async fn greet(client: &Client, name: &str) -> kermes::Result<()> {
    client
        .set_expiring("greeting", format!("hello, {name}"), Duration::from_mins(1))
        .await?;
    client.set("greeted", name).await
}

#[tokio::main]
async fn main() -> kermes::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    let client = Client::connect(&url).await?;
    greet(&client, "ada").await?;
    let greeting: Option<String> = client.get("greeting").await?;
    let visits: i64 = client.incr("visits").await?;
    client
        .hset("user:1", [("name", "ada"), ("lang", "rust")])
        .await?;
    let user: HashMap<String, String> = client.hgetall("user:1").await?;
    client.rpush("jobs", ["a", "b", "c"]).await?;
    let jobs: Vec<Bytes> = client.lrange("jobs", 0, -1).await?;
    let pipe = client.pipeline();
    pipe.incr("visits");
    pipe.get("greeting");
    let (after, again): (i64, Option<String>) = pipe.query().await?;
    println!("{greeting:?} {visits} {user:?} {jobs:?} {after} {again:?}");
    Ok(())
}
