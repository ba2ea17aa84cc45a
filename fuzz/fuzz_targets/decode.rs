//! Feeds arbitrary bytes to the RESP decoder, whole and split in two at a chosen point.
//! The decoder must never panic, and a split must decode exactly as the whole input does.
//!
//!     cargo +nightly fuzz run decode
#![no_main]

use bytes::BytesMut;
use kermes::resp::{Limits, RespCodec};
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fn decode(chunks: &[&[u8]]) -> Vec<Result<kermes::Value, String>> {
    let mut limits = Limits::default();
    limits.max_bulk_len = 1 << 20;
    limits.max_frame_size = 4 << 20;
    let mut codec = RespCodec::new(limits);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(v)) => out.push(Ok(v)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let at = usize::from(cut) % (rest.len() + 1);
    let whole = decode(&[rest]);
    let split = decode(&[&rest[..at], &rest[at..]]);
    // An error may surface later when the input is split, but every frame decoded from the
    // whole input comes out the same, in the same order.
    let ok_whole: Vec<_> = whole.iter().filter_map(|r| r.as_ref().ok()).collect();
    let ok_split: Vec<_> = split.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(ok_whole, ok_split);
});
