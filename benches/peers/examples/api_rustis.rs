use std::collections::HashMap;

use rustis::client::{BatchPreparedCommand, Client};
use rustis::commands::{HashCommands, ListCommands, SetExpiration, StringCommands};
use rustis::resp::BulkString;

async fn greet(client: &Client, name: &str) -> rustis::Result<()> {
    client
        .set_with_options(
            "greeting",
            format!("hello, {name}"),
            None,
            SetExpiration::Ex(60),
        )
        .await?;
    client.set("greeted", name).await
}

#[tokio::main]
async fn main() -> rustis::Result<()> {
    let url = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    let client = Client::connect(url).await?;
    greet(&client, "ada").await?;
    let greeting: Option<String> = client.get("greeting").await?;
    let visits: i64 = client.incr("visits").await?;
    client
        .hset("user:1", [("name", "ada"), ("lang", "rust")])
        .await?;
    let user: HashMap<String, String> = client.hgetall("user:1").await?;
    client.rpush("jobs", ["a", "b", "c"]).await?;
    let jobs: Vec<BulkString> = client.lrange("jobs", 0, -1).await?;
    let mut pipe = client.create_pipeline();
    pipe.incr("visits").queue();
    pipe.get::<()>("greeting").queue();
    let (after, again): (i64, Option<String>) = pipe.execute().await?;
    println!("{greeting:?} {visits} {user:?} {jobs:?} {after} {again:?}");
    Ok(())
}
