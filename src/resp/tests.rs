use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

use super::*;
use crate::error::ServerError;

fn decode_all(codec: &mut RespCodec, buf: &mut BytesMut) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(v) = codec.decode(buf).expect("valid input") {
        out.push(v);
    }
    out
}

fn encoded(v: &Value) -> BytesMut {
    let mut b = BytesMut::new();
    encode_value(v, &mut b);
    b
}

fn arb_value() -> impl Strategy<Value = Value> {
    let text = "[a-zA-Z0-9 :._-]{0,16}";
    let leaf = prop_oneof![
        Just(Value::Nil),
        text.prop_map(|s| Value::Simple(Bytes::from(s))),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|b| Value::Bulk(b.into())),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("NaN never equals itself", |d| !d.is_nan())
            .prop_map(Value::Double),
        any::<bool>().prop_map(Value::Bool),
        "-?[1-9][0-9]{0,40}".prop_map(|s| Value::BigNumber(Bytes::from(s))),
        ("[A-Z]{1,10}", text).prop_map(|(c, m)| Value::Error(ServerError::new(format!("{c} {m}")))),
        "[A-Z]{1,4}( [^\r\n]{0,4}\r\n[a-z]{0,4})".prop_map(|s| Value::Error(ServerError::new(s))),
        ("[a-z]{3}", "[^\u{0}]{0,20}").prop_map(|(f, t)| Value::Verbatim {
            format: f.as_bytes().try_into().unwrap(),
            text: Bytes::from(t),
        }),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Set),
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Push),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            (
                proptest::collection::vec((inner.clone(), inner.clone()), 0..3),
                inner
            )
                .prop_map(|(attributes, value)| Value::Attribute {
                    attributes,
                    value: Box::new(value)
                }),
        ]
    })
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(v in arb_value()) {
        let mut buf = encoded(&v);
        let mut codec = RespCodec::default();
        prop_assert_eq!(decode_all(&mut codec, &mut buf), vec![v]);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn any_split_decodes_the_same(vs in proptest::collection::vec(arb_value(), 1..4), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut whole = BytesMut::new();
        for v in &vs { encode_value(v, &mut whole); }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(whole.len() + 1)).collect();
        points.push(whole.len());
        points.sort_unstable();
        let mut codec = RespCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut at = 0;
        for p in points {
            buf.extend_from_slice(&whole[at..p]);
            at = p;
            out.extend(decode_all(&mut codec, &mut buf));
        }
        prop_assert_eq!(out, vs);
    }

    #[test]
    fn every_byte_boundary_of_one_frame_decodes_the_same(v in arb_value()) {
        let whole = encoded(&v);
        for split in 0..=whole.len() {
            let mut codec = RespCodec::default();
            let mut buf = BytesMut::from(&whole[..split]);
            let mut out = decode_all(&mut codec, &mut buf);
            buf.extend_from_slice(&whole[split..]);
            out.extend(decode_all(&mut codec, &mut buf));
            prop_assert_eq!(&out, &vec![v.clone()]);
        }
    }

    #[test]
    fn hostile_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut codec = RespCodec::new(Limits { max_bulk_len: 1 << 20, ..Limits::default() });
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = codec.decode(&mut buf) {}
    }

    #[test]
    fn mutated_frames_never_panic(v in arb_value(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encoded(&v);
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let mut codec = RespCodec::default();
        while let Ok(Some(_)) = codec.decode(&mut bytes) {}
    }
}

fn decode_one(input: &[u8]) -> crate::Result<Option<Value>> {
    RespCodec::default().decode(&mut BytesMut::from(input))
}

#[test]
fn decodes_every_resp2_and_resp3_type() {
    let cases: Vec<(&[u8], Value)> = vec![
        (b"+OK\r\n", Value::Simple("OK".into())),
        (b"-ERR bad\r\n", Value::Error(ServerError::new("ERR bad"))),
        (b":-42\r\n", Value::Int(-42)),
        (b"$3\r\na\r\n\r\n", Value::Bulk("a\r\n".into())),
        (b"$-1\r\n", Value::Nil),
        (b"*-1\r\n", Value::Nil),
        (b"_\r\n", Value::Nil),
        (
            b"*2\r\n:1\r\n$0\r\n\r\n",
            Value::Array(vec![Value::Int(1), Value::Bulk("".into())]),
        ),
        (b",3.5\r\n", Value::Double(3.5)),
        (b",-inf\r\n", Value::Double(f64::NEG_INFINITY)),
        (b"#t\r\n", Value::Bool(true)),
        (
            b"(12345678901234567890123\r\n",
            Value::BigNumber("12345678901234567890123".into()),
        ),
        (
            b"=8\r\ntxt:abcd\r\n",
            Value::Verbatim {
                format: *b"txt",
                text: "abcd".into(),
            },
        ),
        (
            b"!8\r\nERR x\r\ny\r\n",
            Value::Error(ServerError::new("ERR x\r\ny")),
        ),
        (
            b"%1\r\n+k\r\n:1\r\n",
            Value::Map(vec![(Value::Simple("k".into()), Value::Int(1))]),
        ),
        (b"~1\r\n:1\r\n", Value::Set(vec![Value::Int(1)])),
        (
            b">2\r\n+a\r\n+b\r\n",
            Value::Push(vec![Value::Simple("a".into()), Value::Simple("b".into())]),
        ),
        (
            b"|1\r\n+ttl\r\n:3\r\n+v\r\n",
            Value::Attribute {
                attributes: vec![(Value::Simple("ttl".into()), Value::Int(3))],
                value: Box::new(Value::Simple("v".into())),
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(
            decode_one(input).unwrap(),
            Some(want),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn malformed_input_is_a_protocol_error() {
    for bad in [
        &b"?x\r\n"[..],
        b":12a\r\n",
        b"$abc\r\n",
        b"$-2\r\n",
        b"%-1\r\n",
        b"$3\r\nabcXY",
        b"#x\r\n",
        b",1.2.3\r\n",
        b"=2\r\nab\r\n",
        b"_x\r\n",
        b"$99999999999999999999\r\n",
    ] {
        let err = decode_one(bad).expect_err(&String::from_utf8_lossy(bad));
        assert!(err.is_protocol(), "{err}");
    }
}

#[test]
fn limits_reject_oversized_and_deep_frames_before_buffering_them() {
    let limits = Limits {
        max_bulk_len: 10,
        max_aggregate_len: 3,
        max_depth: 2,
        max_frame_size: 40,
    };
    for bad in [
        &b"$11\r\n"[..],
        b"*4\r\n",
        b"%2\r\n",
        b"*1\r\n*1\r\n*1\r\n",
        b"*3\r\n$10\r\n0123456789\r\n$10\r\n0123456789\r\n$10\r\n",
    ] {
        let err = RespCodec::new(limits)
            .decode(&mut BytesMut::from(bad))
            .expect_err("over a limit");
        assert!(err.is_protocol(), "{err}");
    }
    let ok = RespCodec::new(limits).decode(&mut BytesMut::from(
        &b"*2\r\n*1\r\n:1\r\n$10\r\n0123456789\r\n"[..],
    ));
    assert!(ok.unwrap().is_some());
}

#[test]
fn truncated_reply_at_eof_is_a_closed_error() {
    let err = RespCodec::default()
        .decode_eof(&mut BytesMut::from(&b"*2\r\n:1\r\n"[..]))
        .unwrap_err();
    assert!(err.is_closed(), "{err}");
}

#[test]
fn large_bulk_reserves_its_whole_length_once() {
    let mut codec = RespCodec::default();
    let mut buf = BytesMut::from(&b"$1000000\r\nab"[..]);
    assert!(codec.decode(&mut buf).unwrap().is_none());
    assert!(buf.capacity() >= 1_000_000 + 12);
}
