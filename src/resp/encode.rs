//! The RESP encoder: values (for tests, fake servers and fuzzing) and command arrays.

use bytes::{BufMut, BytesMut};

use super::Value;

/// Appends the RESP3 encoding of `value` to `out`.
///
/// Simple strings and errors that contain CR or LF cannot be encoded as lines; they are written
/// as a bulk string and a blob error instead.
pub fn encode_value(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Nil => out.put_slice(b"_\r\n"),
        Value::Simple(s) if !has_line_break(s) => line(out, b'+', s),
        Value::Simple(s) | Value::Bulk(s) => blob(out, b'$', s),
        Value::Error(e) if !has_line_break(e.as_str().as_bytes()) => {
            line(out, b'-', e.as_str().as_bytes())
        }
        Value::Error(e) => blob(out, b'!', e.as_str().as_bytes()),
        Value::Int(n) => line(out, b':', itoa::Buffer::new().format(*n).as_bytes()),
        Value::Double(d) => line(out, b',', ryu::Buffer::new().format(*d).as_bytes()),
        Value::Bool(b) => out.put_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Value::BigNumber(n) => line(out, b'(', n),
        Value::Verbatim { format, text } => {
            header(out, b'=', text.len() + 4);
            out.put_slice(format);
            out.put_u8(b':');
            out.put_slice(text);
            out.put_slice(b"\r\n");
        }
        Value::Array(items) => aggregate(out, b'*', items),
        Value::Set(items) => aggregate(out, b'~', items),
        Value::Push(items) => aggregate(out, b'>', items),
        Value::Map(pairs) => pairs_of(out, b'%', pairs),
        Value::Attribute { attributes, value } => {
            pairs_of(out, b'|', attributes);
            encode_value(value, out);
        }
    }
}

/// Appends a bulk string, `$<len>\r\n<bytes>\r\n`.
pub(crate) fn bulk_string(out: &mut BytesMut, s: &[u8]) {
    blob(out, b'$', s);
}

/// Appends an array header, `*<n>\r\n`.
pub(crate) fn array_header(out: &mut BytesMut, n: usize) {
    header(out, b'*', n);
}

fn has_line_break(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\r' || b == b'\n')
}

fn header(out: &mut impl BufMut, tag: u8, n: usize) {
    out.put_u8(tag);
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
    out.put_slice(b"\r\n");
}

fn line(out: &mut BytesMut, tag: u8, s: &[u8]) {
    out.put_u8(tag);
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

fn blob(out: &mut impl BufMut, tag: u8, s: &[u8]) {
    header(out, tag, s.len());
    out.put_slice(s);
    out.put_slice(b"\r\n");
}

fn aggregate(out: &mut BytesMut, tag: u8, items: &[Value]) {
    header(out, tag, items.len());
    for item in items {
        encode_value(item, out);
    }
}

fn pairs_of(out: &mut BytesMut, tag: u8, pairs: &[(Value, Value)]) {
    header(out, tag, pairs.len());
    for (k, v) in pairs {
        encode_value(k, out);
        encode_value(v, out);
    }
}
