//! Talking to test servers without a client: one command per fresh connection, for setup
//! code that must not depend on what it sets up.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio_util::codec::Decoder;

use crate::resp::{RespCodec, Value};

/// INFO `section` of a server, or "" when it does not answer.
pub(crate) fn info(port: u16, section: &str) -> String {
    match query(port, &["INFO", section]) {
        Ok(Value::Bulk(b) | Value::Verbatim { text: b, .. }) => {
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => String::new(),
    }
}

/// The length of an array reply.
pub(crate) fn count(port: u16, args: &[&str]) -> Option<usize> {
    match query(port, args) {
        Ok(Value::Array(a)) => Some(a.len()),
        _ => None,
    }
}

/// One command over a fresh plaintext connection, its reply decoded.
pub(crate) fn query(port: u16, args: &[&str]) -> Result<Value, String> {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    socket
        .write_all(out.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut codec = RespCodec::default();
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(v) = codec.decode(&mut buf).map_err(|e| e.to_string())? {
            return Ok(v);
        }
        let n = socket.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub(crate) fn wait_for(
    within: Duration,
    what: &str,
    mut done: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("not within {within:?}: {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}
