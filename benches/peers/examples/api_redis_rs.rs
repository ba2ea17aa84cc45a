use std::collections::HashMap;

use bytes::Bytes;
use redis::{AsyncCommands, aio::MultiplexedConnection};

async fn greet(con: &mut MultiplexedConnection, name: &str) -> redis::RedisResult<()> {
    let _: () = con.set_ex("greeting", format!("hello, {name}"), 60).await?;
    con.set("greeted", name).await
}

#[tokio::main]
async fn main() -> redis::RedisResult<()> {
    let url = std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    let mut con = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    greet(&mut con, "ada").await?;
    let greeting: Option<String> = con.get("greeting").await?;
    let visits: i64 = con.incr("visits", 1).await?;
    let _: () = con
        .hset_multiple("user:1", &[("name", "ada"), ("lang", "rust")])
        .await?;
    let user: HashMap<String, String> = con.hgetall("user:1").await?;
    let _: () = con.rpush("jobs", &["a", "b", "c"]).await?;
    let jobs: Vec<Bytes> = con.lrange("jobs", 0, -1).await?;
    let mut pipe = redis::pipe();
    pipe.incr("visits", 1);
    pipe.get("greeting");
    let (after, again): (i64, Option<String>) = pipe.query_async(&mut con).await?;
    println!("{greeting:?} {visits} {user:?} {jobs:?} {after} {again:?}");
    Ok(())
}
