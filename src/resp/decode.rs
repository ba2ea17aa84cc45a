//! The RESP2/RESP3 decoder: a resumable scan checks that a whole frame is buffered (and within
//! limits) without allocating, then one pass builds the [`Value`] from zero-copy slices.

use bytes::{Bytes, BytesMut};

use super::{Limits, Value};
use crate::error::{Error, Result, ServerError};

/// The least a buffer grows by for an incomplete bulk string: several replies' worth.
const READ_AHEAD: usize = 64 * 1024;

/// Where the scan of a partly received frame stopped, so the next call resumes there instead
/// of rescanning the elements it already checked.
#[derive(Debug, Default)]
pub(crate) struct ScanState {
    /// Offset of the first element not yet known to be complete.
    pos: usize,
    /// Children still expected by each open aggregate, innermost last.
    open: Vec<usize>,
}

impl ScanState {
    /// True between frames: no partial frame has been scanned.
    pub(crate) fn is_fresh(&self) -> bool {
        self.pos == 0 && self.open.is_empty()
    }
}

/// Decodes in one pass the replies most commands get (a whole bulk string, simple string or
/// integer at the front of `buf`), without scanning first. `Ok(None)` when the frame is of
/// another kind or not complete yet: the resumable scan takes those.
pub(crate) fn decode_flat(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Value>> {
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    if !matches!(tag, b'$' | b'+' | b':') {
        return Ok(None);
    }
    let Some(line_end) = find_crlf(&buf[1..]).map(|i| 1 + i) else {
        return Ok(None);
    };
    let after = line_end + 2;
    match tag {
        b':' => {
            let n = parse_int(&buf[1..line_end])?;
            bytes::Buf::advance(buf, after);
            Ok(Some(Value::Int(n)))
        }
        b'+' => {
            let frame = buf.split_to(after).freeze();
            Ok(Some(Value::Simple(frame.slice(1..line_end))))
        }
        _ => match parse_len(&buf[1..line_end], true)? {
            None => {
                bytes::Buf::advance(buf, after);
                Ok(Some(Value::Nil))
            }
            Some(len) => {
                let end = after + len + 2;
                if len > limits.max_bulk_len || buf.len() < end {
                    // Too long (the scan reports it) or incomplete (the scan reserves room).
                    return Ok(None);
                }
                if &buf[end - 2..end] != b"\r\n" {
                    return Err(Error::protocol("bulk string not terminated by CRLF"));
                }
                let frame = buf.split_to(end).freeze();
                Ok(Some(Value::Bulk(frame.slice(after..after + len))))
            }
        },
    }
}

/// Checks whether `buf` holds one whole frame. Returns its length once it does.
pub(crate) fn scan(
    buf: &mut BytesMut,
    state: &mut ScanState,
    limits: &Limits,
) -> Result<Option<usize>> {
    loop {
        let pos = state.pos;
        if pos >= buf.len() {
            return Ok(None);
        }
        let Some(line_end) = find_crlf(&buf[pos + 1..]).map(|i| pos + 1 + i) else {
            // A header line longer than any legal one means the peer is not speaking RESP.
            if buf.len() - pos > limits.max_bulk_len.saturating_add(64) {
                return Err(Error::protocol("line too long"));
            }
            return Ok(None);
        };
        let line = &buf[pos + 1..line_end];
        let after = line_end + 2;
        let tag = buf[pos];
        let end = match tag {
            b'+' | b'-' | b':' | b',' | b'#' | b'(' | b'_' => after,
            b'$' | b'=' | b'!' => {
                let len = parse_len(line, tag == b'$')?;
                match len {
                    None => after,
                    Some(len) => {
                        if len > limits.max_bulk_len {
                            return Err(Error::protocol(format!(
                                "bulk string of {len} bytes exceeds the limit of {}",
                                limits.max_bulk_len
                            )));
                        }
                        let end = after + len + 2;
                        check_frame_size(end, limits)?;
                        if buf.len() < end {
                            // Grow once to the whole payload instead of doubling per read,
                            // with room for the replies behind it: replies handed out keep
                            // their part of the buffer alive, so a buffer sized for one
                            // frame is reallocated (and the partial frame copied) per frame.
                            buf.reserve((end - buf.len()).max(READ_AHEAD));
                            return Ok(None);
                        }
                        if &buf[end - 2..end] != b"\r\n" {
                            return Err(Error::protocol("bulk string not terminated by CRLF"));
                        }
                        end
                    }
                }
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = parse_len(line, tag == b'*')?;
                let children = match n {
                    None => 0,
                    Some(n) => match tag {
                        b'%' => n.saturating_mul(2),
                        // An attribute's pairs are followed by the value they describe.
                        b'|' => n.saturating_mul(2).saturating_add(1),
                        _ => n,
                    },
                };
                if children > limits.max_aggregate_len {
                    return Err(Error::protocol(format!(
                        "aggregate of {children} elements exceeds the limit of {}",
                        limits.max_aggregate_len
                    )));
                }
                check_frame_size(after, limits)?;
                if children > 0 {
                    if state.open.len() >= limits.max_depth {
                        return Err(Error::protocol(format!(
                            "nesting deeper than the limit of {}",
                            limits.max_depth
                        )));
                    }
                    state.open.push(children);
                    state.pos = after;
                    continue;
                }
                after
            }
            other => {
                return Err(Error::protocol(format!(
                    "unknown RESP type byte 0x{other:02x}"
                )));
            }
        };
        check_frame_size(end, limits)?;
        state.pos = end;
        // One element is complete: close every aggregate it completes.
        loop {
            match state.open.last_mut() {
                None => {
                    let total = state.pos;
                    state.pos = 0;
                    return Ok(Some(total));
                }
                Some(remaining) => {
                    *remaining -= 1;
                    if *remaining > 0 {
                        break;
                    }
                    state.open.pop();
                }
            }
        }
    }
}

fn check_frame_size(end: usize, limits: &Limits) -> Result<()> {
    if end > limits.max_frame_size {
        return Err(Error::protocol(format!(
            "frame larger than the limit of {} bytes",
            limits.max_frame_size
        )));
    }
    Ok(())
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'\r', &buf[from..]) {
        let at = from + i;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

/// A length: digits, or `-1` (null) where allowed.
fn parse_len(line: &[u8], null_allowed: bool) -> Result<Option<usize>> {
    if line == b"-1" && null_allowed {
        return Ok(None);
    }
    if line.is_empty() || line.len() > 19 || !line.iter().all(u8::is_ascii_digit) {
        return Err(Error::protocol(format!(
            "invalid length {:?}",
            String::from_utf8_lossy(line)
        )));
    }
    Ok(Some(
        line.iter()
            .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')),
    ))
}

/// Builds the value of a frame that [`scan`] found complete.
pub(crate) fn parse(frame: &Bytes) -> Result<Value> {
    let mut pos = 0;
    let value = parse_at(frame, &mut pos)?;
    if pos != frame.len() {
        return Err(Error::protocol("trailing bytes after frame"));
    }
    Ok(value)
}

fn parse_at(frame: &Bytes, pos: &mut usize) -> Result<Value> {
    let start = *pos;
    let line_end = find_crlf(&frame[start + 1..])
        .map(|i| start + 1 + i)
        .ok_or_else(|| Error::protocol("truncated frame"))?;
    let line = frame.slice(start + 1..line_end);
    *pos = line_end + 2;
    let tag = frame[start];
    Ok(match tag {
        b'+' => Value::Simple(line),
        b'-' => Value::Error(server_error(&line)),
        b':' => Value::Int(parse_int(&line)?),
        b',' => Value::Double(parse_double(&line)?),
        b'#' => match &line[..] {
            b"t" => Value::Bool(true),
            b"f" => Value::Bool(false),
            _ => return Err(Error::protocol("invalid boolean")),
        },
        b'(' => {
            let digits = line
                .strip_prefix(b"-")
                .or(line.strip_prefix(b"+"))
                .unwrap_or(&line);
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
                return Err(Error::protocol("invalid big number"));
            }
            Value::BigNumber(line)
        }
        b'_' => {
            if !line.is_empty() {
                return Err(Error::protocol("invalid null"));
            }
            Value::Nil
        }
        b'$' | b'=' | b'!' => match parse_len(&line, tag == b'$')? {
            None => Value::Nil,
            Some(len) => {
                let data = frame.slice(*pos..*pos + len);
                *pos += len + 2;
                match tag {
                    b'$' => Value::Bulk(data),
                    b'!' => Value::Error(server_error(&data)),
                    _ => {
                        if data.len() < 4 || data[3] != b':' {
                            return Err(Error::protocol("invalid verbatim string"));
                        }
                        Value::Verbatim {
                            format: [data[0], data[1], data[2]],
                            text: data.slice(4..),
                        }
                    }
                }
            }
        },
        b'*' | b'~' | b'>' => match parse_len(&line, tag == b'*')? {
            None => Value::Nil,
            Some(n) => {
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(parse_at(frame, pos)?);
                }
                match tag {
                    b'*' => Value::Array(items),
                    b'~' => Value::Set(items),
                    _ => Value::Push(items),
                }
            }
        },
        b'%' | b'|' => {
            let n = parse_len(&line, false)?.unwrap_or(0);
            let mut pairs = Vec::with_capacity(n);
            for _ in 0..n {
                let k = parse_at(frame, pos)?;
                let v = parse_at(frame, pos)?;
                pairs.push((k, v));
            }
            if tag == b'%' {
                Value::Map(pairs)
            } else {
                Value::Attribute {
                    attributes: pairs,
                    value: Box::new(parse_at(frame, pos)?),
                }
            }
        }
        other => {
            return Err(Error::protocol(format!(
                "unknown RESP type byte 0x{other:02x}"
            )));
        }
    })
}

fn server_error(text: &[u8]) -> ServerError {
    ServerError::new(String::from_utf8_lossy(text).into_owned())
}

fn parse_int(line: &[u8]) -> Result<i64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| {
            Error::protocol(format!(
                "invalid integer {:?}",
                String::from_utf8_lossy(line)
            ))
        })
}

fn parse_double(line: &[u8]) -> Result<f64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| {
            Error::protocol(format!(
                "invalid double {:?}",
                String::from_utf8_lossy(line)
            ))
        })
}
