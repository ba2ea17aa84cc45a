//! Micro-benchmarks: RESP decode (small replies, a 1,000-element array, a 1 MiB bulk) and
//! command encode, kermes beside redis-rs's public parser and packer.
//!
//!     cargo bench -p kermes-peers --bench codec

use bytes::BytesMut;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kermes::resp::{RespCodec, Value, encode_value};
use std::hint::black_box;
use tokio_util::codec::Decoder;

fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let enc = |v: &Value| {
        let mut b = BytesMut::new();
        encode_value(v, &mut b);
        b.to_vec()
    };
    vec![
        ("ok", b"+OK\r\n".to_vec()),
        ("int", b":123456\r\n".to_vec()),
        ("bulk-64", enc(&Value::Bulk(vec![b'v'; 64].into()))),
        (
            "array-1000",
            enc(&Value::Array(
                (0..1000)
                    .map(|i| Value::Bulk(format!("member:{i}").into()))
                    .collect(),
            )),
        ),
        ("bulk-1MiB", enc(&Value::Bulk(vec![b'x'; 1 << 20].into()))),
    ]
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, bytes) in frames() {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("kermes", name), &bytes, |b, bytes| {
            let mut codec = RespCodec::default();
            b.iter(|| {
                let mut buf = BytesMut::from(&bytes[..]);
                black_box(codec.decode(&mut buf).unwrap().unwrap())
            })
        });
        group.bench_with_input(BenchmarkId::new("redis-rs", name), &bytes, |b, bytes| {
            b.iter(|| black_box(redis::parse_redis_value(black_box(bytes)).unwrap()))
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let value = [b'v'; 64];
    let mut group = c.benchmark_group("encode SET key 64B");
    group.bench_function("kermes", |b| {
        let mut out = BytesMut::with_capacity(256);
        b.iter(|| {
            out.clear();
            kermes::cmd("SET")
                .arg(black_box("user:1000:name"))
                .arg(black_box(&value[..]))
                .write_to(&mut out);
            black_box(&out);
        })
    });
    group.bench_function("redis-rs", |b| {
        b.iter(|| {
            black_box(
                redis::cmd("SET")
                    .arg(black_box("user:1000:name"))
                    .arg(black_box(&value[..]))
                    .get_packed_command(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
