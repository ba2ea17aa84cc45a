//! Lua: a cached script with EVALSHA fallback, Carmine-style named variables, and a
//! function library.
//!
//!     cargo run --example lua

use kermes::prelude::*;
use kermes::{Library, Script, lua};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;

    // EVALSHA, falling back to EVAL when the server does not have the script.
    let capped_incr = Script::new(
        "local n = redis.call('INCR', KEYS[1])
         if n > tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) return tonumber(ARGV[1]) end
         return n",
    );
    for _ in 0..3 {
        let n: i64 = capped_incr.run(&client, "capped", 2).await?;
        println!("capped counter: {n}");
    }
    client.script_flush().await?;
    let n: i64 = capped_incr.run(&client, "capped", 2).await?;
    println!("after SCRIPT FLUSH, still works: {n}");

    // Named variables: `_:name` becomes KEYS[i] / ARGV[i], never inside strings or comments.
    client.set("src", "payload").await?;
    let copied: String = lua(
        &client,
        "-- copies _:from into _:to
         local v = redis.call('GET', _:from)
         redis.call('SET', _:to, v .. _:suffix)
         return 'copied _:from: ' .. v",
        &[("from", &"src"), ("to", &"dst")],
        &[("suffix", &"!")],
    )
    .await?;
    println!("{copied}; dst = {}", client.get::<String>("dst").await?);

    // Redis 7 functions, loaded on first use.
    let lib = Library::new(
        "#!lua name=greet\nredis.register_function('hello', function(keys, args) return 'hello ' .. args[1] end)",
    );
    let greeting: String = lib.call(&client, "hello", (), "kermes").await?;
    println!("{greeting}");
    Ok(())
}
