//! Values through serde: every format and transform, mixed reads, bad keys and corrupt data.
//! Needs every format and transform: run with `--all-features` (as the README's test command does).
#![cfg(all(
    feature = "msgpack",
    feature = "bincode",
    feature = "json",
    feature = "lz4",
    feature = "zstd",
    feature = "aes-gcm",
    feature = "chacha20poly1305"
))]

#[macro_use]
mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use kermes::prelude::*;
use kermes::testing::TestServer;
use kermes::{Cipher, Compression, Format, Raw, Serde, ValueCodec};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Role {
    Admin,
    Guest { until: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    tags: Vec<String>,
    scores: BTreeMap<String, f64>,
    manager: Option<Box<User>>,
    role: Role,
    avatar: Bytes,
}

fn user() -> User {
    User {
        name: "ann".into(),
        tags: vec!["a".into(), "b".into()],
        scores: [("x".to_string(), 1.5), ("y".to_string(), -2.0)].into(),
        manager: Some(Box::new(User {
            name: "bo".into(),
            tags: vec![],
            scores: BTreeMap::new(),
            manager: None,
            role: Role::Admin,
            avatar: Bytes::new(),
        })),
        role: Role::Guest { until: 42 },
        avatar: Bytes::from_static(&[0, 1, 2, 255]),
    }
}

fn codecs() -> Vec<ValueCodec> {
    let mut all = Vec::new();
    for format in [Format::MessagePack, Format::Bincode, Format::Json] {
        for compression in [None, Some(Compression::Lz4), Some(Compression::Zstd(3))] {
            for cipher in [
                None,
                Some(Cipher::aes256gcm([7; 32])),
                Some(Cipher::chacha20poly1305([9; 32])),
            ] {
                let mut c = ValueCodec::new().format(format).compress_above(0);
                if let Some(z) = compression {
                    c = c.compression(z);
                }
                if let Some(k) = cipher {
                    c = c.encryption(k);
                }
                all.push(c);
            }
        }
    }
    all
}

#[test]
fn every_format_compression_and_cipher_round_trips() {
    for codec in codecs() {
        let frozen = codec.freeze(&user()).unwrap();
        assert_eq!(
            codec.thaw::<User>(frozen.as_bytes()).unwrap(),
            user(),
            "{codec:?}"
        );
    }
}

#[test]
fn wrong_keys_and_corrupt_values_are_clear_errors() {
    let sealed = ValueCodec::new().encryption(Cipher::aes256gcm([1; 32]));
    let frozen = sealed.freeze(&user()).unwrap();
    for reader in [
        ValueCodec::new(),
        ValueCodec::new().encryption(Cipher::aes256gcm([2; 32])),
        ValueCodec::new().encryption(Cipher::chacha20poly1305([1; 32])),
    ] {
        let err = reader.thaw::<User>(frozen.as_bytes()).unwrap_err();
        assert!(err.is_type(), "{err}");
    }
    // Every single-byte corruption of every kind of value fails cleanly, never panics.
    for codec in [
        ValueCodec::new(),
        ValueCodec::new()
            .compression(Compression::Lz4)
            .compress_above(0),
        sealed,
    ] {
        let good = codec.freeze(&user()).unwrap().as_bytes().to_vec();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x5a;
            let _ = codec.thaw::<User>(&bad);
        }
        let _ = codec.thaw::<User>(&good[..good.len() / 2]);
    }
}

#[test]
fn a_reader_with_the_key_reads_any_mix() {
    let key = Cipher::chacha20poly1305([3; 32]);
    let reader = ValueCodec::new().encryption(key.clone());
    let values = [
        ValueCodec::new().freeze(&user()).unwrap(),
        ValueCodec::new()
            .format(Format::Json)
            .compression(Compression::Zstd(1))
            .compress_above(0)
            .freeze(&user())
            .unwrap(),
        ValueCodec::new()
            .format(Format::Bincode)
            .encryption(key)
            .freeze(&user())
            .unwrap(),
    ];
    for v in values {
        assert_eq!(reader.thaw::<User>(v.as_bytes()).unwrap(), user());
    }
}

struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this type refuses"))
    }
}

server_tests! {
    async fn serde_values_round_trip_through_the_server(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        c.set("user", Serde(user())).await.unwrap();
        let Serde(back): Serde<User> = c.get("user").to().await.unwrap();
        assert_eq!(back, user());
        // Serde freezes strings and numbers too, so they read back typed.
        c.set("n", Serde(42u64)).await.unwrap();
        assert_eq!(c.get("n").to::<Serde<u64>>().await.unwrap().0, 42);
        // Read as plain text or a number, a serialized value says how to read it.
        for err in [
            c.get("user").to::<String>().await.unwrap_err(),
            c.get("n").to::<u64>().await.unwrap_err(),
            c.get("n").to::<String>().await.unwrap_err(),
        ] {
            assert!(err.is_type() && err.to_string().contains("read it as Serde<T>"), "{err}");
        }
        // A 16 MiB blob, compressed and encrypted, through an explicit codec.
        let codec = ValueCodec::new().compression(Compression::Lz4).encryption(Cipher::aes256gcm([5; 32]));
        let blob = Bytes::from((0..16 * 1024 * 1024).map(|i| (i % 7) as u8).collect::<Vec<u8>>());
        c.set("blob", codec.freeze(&blob).unwrap()).await.unwrap();
        let stored: Bytes = c.get("blob").to().await.unwrap();
        assert!(stored.len() < blob.len() / 10, "compressed: {}", stored.len());
        assert_eq!(codec.thaw::<Bytes>(&stored).unwrap(), blob);
    }

    async fn plain_strings_and_the_marker_byte(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        for plain in ["hello", "\0starts with NUL", "\0KR almost the marker", ""] {
            c.set("plain", plain).await.unwrap();
            assert_eq!(c.get("plain").to::<Serde<String>>().await.unwrap().0, plain);
            assert_eq!(c.get("plain").to::<String>().await.unwrap(), plain);
        }
        // A plain string is not a struct: a clear error, not garbage.
        c.set("plain", "not a user").await.unwrap();
        let err = c.get("plain").to::<Serde<User>>().await.unwrap_err();
        assert!(err.is_type() && err.to_string().contains("not written by kermes"), "{err}");
        // Raw reads the stored bytes, header and all.
        c.set("user", Serde(user())).await.unwrap();
        let Raw(raw) = c.get("user").to().await.unwrap();
        assert_eq!(&raw[..4], b"\0KRM");
    }

    async fn a_value_that_cannot_be_serialized_fails_its_command_unsent(kind) {
        let server = TestServer::start(kind);
        let c = Client::connect(&server.url()).await.unwrap();
        let err = c.set("bad", Serde(Unserializable)).await.unwrap_err();
        assert!(err.is_type() && err.to_string().contains("refuses"), "{err}");
        assert_eq!(c.exists("bad").await.unwrap(), 0);
        let pipe = c.pipeline();
        pipe.set("ok", 1);
        pipe.set("bad", Serde(Unserializable));
        assert!(pipe.run().await.unwrap_err().is_type());
        assert_eq!(c.exists("ok").await.unwrap(), 0, "nothing of the pipeline was sent");
    }
}
