//! [`Monitor`]: the `MONITOR` feed as a `Stream` of parsed entries.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::Stream;

use crate::conn::{BroadcastStream, Connection, Options, Push};
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

/// An item of a [`Monitor`] stream.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A command the server ran.
    Entry(MonitorEntry),
    /// The connection was lost and re-established, with MONITOR sent again: commands run
    /// during the gap were not seen.
    Reconnected,
    /// The consumer fell behind: this many lines were dropped.
    Lagged(u64),
}

impl MonitorEvent {
    /// The entry, if this event is one.
    pub fn into_entry(self) -> Option<MonitorEntry> {
        match self {
            MonitorEvent::Entry(e) => Some(e),
            _ => None,
        }
    }
}

/// A stream of [`MonitorEvent`]s on a connection of its own. MONITOR costs the server
/// throughput; use it for debugging. The connection reconnects with the client's backoff,
/// sends MONITOR again and yields [`MonitorEvent::Reconnected`]; a line that cannot be
/// parsed is an `Err` item, and the stream goes on. It ends when reconnecting gives up.
/// Lines beyond the buffer (4,096) are dropped and counted in [`MonitorEvent::Lagged`].
pub struct Monitor {
    _conn: Connection,
    frames: BroadcastStream<Push>,
}

impl Monitor {
    pub(crate) async fn open(opts: Options) -> Result<Monitor> {
        let (conn, frames) = Connection::open_with_push(opts).await?;
        Ok(Monitor {
            _conn: conn,
            frames: BroadcastStream::new(frames),
        })
    }
}

impl Stream for Monitor {
    type Item = Result<MonitorEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = match ready!(Pin::new(&mut self.frames).poll_next(cx)) {
            None => return Poll::Ready(None),
            Some(Err(missed)) => Ok(MonitorEvent::Lagged(missed)),
            Some(Ok(Push::Reconnected { .. })) => Ok(MonitorEvent::Reconnected),
            Some(Ok(Push::Frame(Value::Simple(line)))) => parse(&line).map(MonitorEvent::Entry),
            Some(Ok(Push::Frame(other))) => Err(Error::protocol(format!(
                "unexpected MONITOR frame: {other:?}"
            ))),
        };
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
    // A time from the network may be anything (`inf`, `NaN`, `-1`, `1e300`).
    let since_epoch = time
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .and_then(|d| SystemTime::UNIX_EPOCH.checked_add(d))
        .ok_or_else(bad)?;
    let rest = rest.strip_prefix('[').ok_or_else(bad)?;
    let (origin, rest) = rest.split_once("] ").ok_or_else(bad)?;
    let (db, client) = origin.split_once(' ').ok_or_else(bad)?;
    let mut args = unquote_all(rest.as_bytes()).ok_or_else(bad)?;
    if args.is_empty() {
        return Err(bad());
    }
    let command = String::from_utf8_lossy(&args.remove(0)).into_owned();
    Ok(MonitorEntry {
        time: since_epoch,
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
        for time in ["inf", "-inf", "NaN", "-1.5", "1e300", ""] {
            let line = format!(r#"{time} [0 1.2.3.4:5] "GET" "k""#);
            assert!(parse(line.as_bytes()).unwrap_err().is_protocol(), "{time}");
        }
    }
}
