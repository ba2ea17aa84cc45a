//! Expirations as [`Duration`] and [`SystemTime`]: the argument forms the generated option
//! builders use (`SetOptions::expire_in`, `GetexOptions::expire_at` ...), and
//! [`ExpiryCommands`] for EXPIRE and EXPIREAT, each choosing the seconds or the
//! milliseconds form by the value's precision.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cmd::{Cmd, Route};
use crate::commands::CommandSink;
use crate::error::Error;
use crate::value::{ArgBuf, ToArgs};

/// Whole milliseconds, rounded up, so a positive duration never becomes 0.
fn ceil_millis(d: Duration) -> u128 {
    d.as_nanos().div_ceil(1_000_000)
}

/// `<secs> n` when `ttl` is whole seconds, else `<millis> n` (rounded up to the
/// millisecond). Returns whether the seconds form was used.
pub(crate) fn relative(a: &mut ArgBuf, ttl: Duration, secs: &[u8], millis: &[u8]) -> bool {
    if ttl.subsec_nanos() == 0 && !ttl.is_zero() {
        a.push(secs);
        a.push_int(ttl.as_secs());
        true
    } else {
        a.push(millis);
        a.push_int(ceil_millis(ttl).min(u64::MAX as u128) as u64);
        false
    }
}

/// `<secs> t` when `at` is a whole second since the epoch, else `<millis> t` (rounded up).
/// A time before 1970 fails the command before it is sent.
pub(crate) fn absolute(a: &mut ArgBuf, at: SystemTime, secs: &[u8], millis: &[u8]) -> bool {
    match at.duration_since(UNIX_EPOCH) {
        Ok(since) => relative(a, since, secs, millis),
        Err(_) => {
            a.fail(Error::config("an expiration time before 1970"));
            false
        }
    }
}

/// EXPIRE / PEXPIRE and EXPIREAT / PEXPIREAT from a `Duration` or a `SystemTime`: whole
/// seconds go as the seconds command, anything finer as the milliseconds one (rounded up to
/// the millisecond). Implemented for every [`CommandSink`], in the
/// [`prelude`](crate::prelude).
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// use std::time::Duration;
/// use kermes::prelude::*;
///
/// client.set_with("session", "abc", SetOptions::new().expire_in(Duration::from_millis(1500))).await?;
/// let set: i64 = client.expire_in("session", Duration::from_secs(60)).await?; // EXPIRE 60
/// # Ok(()) }
/// ```
pub trait ExpiryCommands: CommandSink {
    /// Sets a key's time to live: `EXPIRE key secs` for whole seconds, else
    /// `PEXPIRE key millis`. 1 when set, 0 when the key does not exist.
    fn expire_in<'a>(&'a self, key: impl ToArgs, ttl: Duration) -> Self::Reply<'a, i64> {
        let mut time = ArgBuf::default();
        let secs = relative(&mut time, ttl, b"EXPIRE", b"PEXPIRE");
        self.send(timed(["EXPIRE", "PEXPIRE"], secs, key, time))
    }

    /// Sets when a key expires: `EXPIREAT key secs` for a whole second, else
    /// `PEXPIREAT key millis`. 1 when set, 0 when the key does not exist.
    fn expire_at<'a>(&'a self, key: impl ToArgs, at: SystemTime) -> Self::Reply<'a, i64> {
        let mut time = ArgBuf::default();
        let secs = absolute(&mut time, at, b"EXPIREAT", b"PEXPIREAT");
        self.send(timed(["EXPIREAT", "PEXPIREAT"], secs, key, time))
    }
}

/// The seconds or milliseconds command (`names`) for `key` with the number `relative` or
/// `absolute` wrote after their token (or their failure).
fn timed(names: [&'static str; 2], secs: bool, key: impl ToArgs, mut time: ArgBuf) -> Cmd {
    let mut cmd = Cmd::with_route(names[usize::from(!secs)], Route::Shared);
    key.write_args(&mut cmd.args);
    if let Some(e) = time.take_error() {
        cmd.args.fail(e);
    } else if let Some(n) = time.get(1) {
        cmd.args.push(n);
    }
    cmd
}

impl<S: CommandSink + ?Sized> ExpiryCommands for S {}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut ArgBuf) -> bool) -> (bool, Vec<String>) {
        let mut a = ArgBuf::default();
        let secs = f(&mut a);
        let out = (0..a.len())
            .map(|i| String::from_utf8(a.get(i).unwrap().to_vec()).unwrap())
            .collect();
        (secs, out)
    }

    #[test]
    fn whole_seconds_go_as_seconds_and_the_rest_as_rounded_up_millis() {
        let d = |d| args(|a| relative(a, d, b"EX", b"PX"));
        assert_eq!(
            d(Duration::from_secs(60)),
            (true, vec!["EX".into(), "60".into()])
        );
        assert_eq!(
            d(Duration::from_millis(1500)),
            (false, vec!["PX".into(), "1500".into()])
        );
        assert_eq!(
            d(Duration::from_micros(1)),
            (false, vec!["PX".into(), "1".into()])
        );
        assert_eq!(
            d(Duration::from_micros(2001)),
            (false, vec!["PX".into(), "3".into()])
        );
        assert_eq!(d(Duration::ZERO), (false, vec!["PX".into(), "0".into()]));
        let at = |t| args(|a| absolute(a, t, b"EXAT", b"PXAT"));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(at(t), (true, vec!["EXAT".into(), "1700000000".into()]));
        let t = t + Duration::from_millis(5);
        assert_eq!(at(t), (false, vec!["PXAT".into(), "1700000000005".into()]));
        let mut a = ArgBuf::default();
        absolute(
            &mut a,
            UNIX_EPOCH - Duration::from_secs(1),
            b"EXAT",
            b"PXAT",
        );
        assert!(a.take_error().unwrap().is_config());
    }
}
