//! [`Monitor`]: the `MONITOR` feed as a `Stream` of parsed entries.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{SinkExt, Stream, StreamExt};

use crate::cmd::Cmd;
use crate::config::Config;
use crate::conn::{Socket, connect};
use crate::error::{Error, Result};
use crate::resp::Value;

/// One command the server executed, as MONITOR reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MonitorEntry {
    /// When the server ran it.
    pub time: SystemTime,
    /// The database it ran in.
    pub db: u32,
    /// Who sent it: `127.0.0.1:52110`, `unix:/path.sock`, or `lua` for scripts.
    pub client: String,
    /// The command name as sent (e.g. `SET`).
    pub command: String,
    /// Its arguments, unescaped.
    pub args: Vec<Bytes>,
}

/// A stream of [`MonitorEntry`]s on a connection of its own. MONITOR costs the server
/// throughput; use it for debugging. The stream ends after a connection error (it does not
/// reconnect: entries missed meanwhile could not be reported).
pub struct Monitor {
    socket: Option<Socket>,
}

impl Monitor {
    pub(crate) async fn open(config: &Config) -> Result<Monitor> {
        let (mut socket, _) = connect(config).await?;
        Cmd::new("MONITOR")
            .args
            .encode_into(socket.write_buffer_mut());
        SinkExt::<&Value>::flush(&mut socket).await?;
        match socket.next().await {
            Some(Ok(Value::Simple(ok))) if &ok[..] == b"OK" => Ok(Monitor {
                socket: Some(socket),
            }),
            Some(Ok(Value::Error(e))) => Err(e.into()),
            Some(Ok(other)) => Err(Error::protocol(format!(
                "unexpected reply to MONITOR: {other:?}"
            ))),
            Some(Err(e)) => Err(e),
            None => Err(Error::closed("server closed the connection")),
        }
    }
}

impl Stream for Monitor {
    type Item = Result<MonitorEntry>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(socket) = self.socket.as_mut() else {
            return Poll::Ready(None);
        };
        let item = match futures::ready!(socket.poll_next_unpin(cx)) {
            Some(Ok(Value::Simple(line))) => parse(&line),
            Some(Ok(other)) => Err(Error::protocol(format!(
                "unexpected MONITOR frame: {other:?}"
            ))),
            Some(Err(e)) => Err(e),
            None => Err(Error::closed("server closed the MONITOR connection")),
        };
        if matches!(&item, Err(e) if e.is_closed() || e.is_io() || e.is_protocol()) {
            self.socket = None;
        }
        Poll::Ready(Some(item))
    }
}

/// Parses `1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`.
pub(crate) fn parse(line: &[u8]) -> Result<MonitorEntry> {
    let bad = || {
        Error::protocol(format!(
            "unparsable MONITOR line: {:?}",
            String::from_utf8_lossy(line)
        ))
    };
    let text = std::str::from_utf8(line).map_err(|_| bad())?;
    let (time, rest) = text.split_once(' ').ok_or_else(bad)?;
    let secs: f64 = time.parse().map_err(|_| bad())?;
    let rest = rest.strip_prefix('[').ok_or_else(bad)?;
    let (origin, rest) = rest.split_once("] ").ok_or_else(bad)?;
    let (db, client) = origin.split_once(' ').ok_or_else(bad)?;
    let mut args = unquote_all(rest.as_bytes()).ok_or_else(bad)?;
    if args.is_empty() {
        return Err(bad());
    }
    let command = String::from_utf8_lossy(&args.remove(0)).into_owned();
    Ok(MonitorEntry {
        time: SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs),
        db: db.parse().map_err(|_| bad())?,
        client: client.to_string(),
        command,
        args,
    })
}

/// Splits `"a" "b\"c" "\x00"` into its unescaped strings (redis's `sdscatrepr` format).
fn unquote_all(mut s: &[u8]) -> Option<Vec<Bytes>> {
    let mut out = Vec::new();
    loop {
        while s.first() == Some(&b' ') {
            s = &s[1..];
        }
        if s.is_empty() {
            return Some(out);
        }
        if s[0] != b'"' {
            return None;
        }
        let mut i = 1;
        let mut arg = Vec::new();
        loop {
            match *s.get(i)? {
                b'"' => break,
                b'\\' => {
                    let esc = *s.get(i + 1)?;
                    i += 2;
                    arg.push(match esc {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'a' => 0x07,
                        b'b' => 0x08,
                        b'x' => {
                            let hex = std::str::from_utf8(s.get(i..i + 2)?).ok()?;
                            i += 2;
                            u8::from_str_radix(hex, 16).ok()?
                        }
                        other => other,
                    });
                }
                c => {
                    arg.push(c);
                    i += 1;
                }
            }
        }
        out.push(Bytes::from(arg));
        s = &s[i + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_unix_and_lua_lines_with_escapes() {
        let e =
            parse(br#"1339518083.107412 [3 127.0.0.1:60866] "SET" "k" "a \"b\"\x00\n""#).unwrap();
        assert_eq!(e.db, 3);
        assert_eq!(e.client, "127.0.0.1:60866");
        assert_eq!(e.command, "SET");
        assert_eq!(
            e.args,
            vec![Bytes::from("k"), Bytes::from(&b"a \"b\"\x00\n"[..])]
        );
        let t = e.time.duration_since(SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(t.as_secs(), 1339518083);
        let lua = parse(br#"1.5 [0 lua] "get" "x""#).unwrap();
        assert_eq!((lua.client.as_str(), lua.command.as_str()), ("lua", "get"));
        let unix = parse(br#"2.0 [0 unix:/tmp/r.sock] "PING""#).unwrap();
        assert_eq!(unix.client, "unix:/tmp/r.sock");
        assert!(parse(b"garbage").unwrap_err().is_protocol());
        assert!(
            parse(br#"1.0 [0 x] "unterminated"#)
                .unwrap_err()
                .is_protocol()
        );
    }
}
