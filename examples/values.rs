//! Rich values through serde: a struct stored and read back, compressed and encrypted values,
//! and plain strings beside them.
//!
//!     cargo run --example values --all-features

use kermes::prelude::*;
use kermes::{Cipher, Compression, Raw, Serde, ValueCodec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Order {
    id: u64,
    items: Vec<(String, u32)>,
    note: Option<String>,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _server) = kermes::testing::url_from_env_or_start()?;
    let client = Client::connect(&url).await?;

    // Any Serialize type, with the installed codec (MessagePack by default).
    let order = Order {
        id: 7,
        items: vec![("tea".into(), 2)],
        note: None,
    };
    client.set("order:7", Serde(&order)).await?;
    let Serde(back): Serde<Order> = client.get("order:7").await?;
    println!("read back {back:?}");

    // Plain strings stay plain, and read as strings.
    client.set("greeting", "hello").await?;
    println!("plain string: {}", client.get::<String>("greeting").await?);

    // An explicit codec: zstd-compressed and AES-256-GCM encrypted.
    let codec = ValueCodec::new()
        .compression(Compression::Zstd(3))
        .encryption(Cipher::aes256gcm([42; 32]));
    let big: Vec<u64> = (0..100_000).collect();
    client.set("big", codec.freeze(&big)?).await?;
    let Raw(stored) = client.get("big").await?;
    println!(
        "100,000 numbers stored in {} bytes (compressed, then encrypted)",
        stored.len()
    );
    let back: Vec<u64> = codec.thaw(&stored)?;
    assert_eq!(back, big);

    // The wrong key is a clear error, never garbage.
    let wrong = ValueCodec::new().encryption(Cipher::aes256gcm([0; 32]));
    println!(
        "with the wrong key: {}",
        wrong.thaw::<Vec<u64>>(&stored).unwrap_err()
    );
    Ok(())
}
