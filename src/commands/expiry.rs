//! Expirations as [`Duration`] and [`SystemTime`]: the argument forms the generated option
//! builders use (`SetOptions::expire_in`, `GetexOptions::expire_at` ...), and
//! [`ExpiryCommands`] for EXPIRE, EXPIREAT and SET with an expiry, each choosing the seconds or the
//! milliseconds form by the value's precision.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cmd::{Cmd, Route};
use crate::commands::CommandSink;
use crate::error::Error;
use crate::value::{ArgBuf, ToArgs};

/// `(true, seconds)` when `ttl` is whole seconds, else `(false, milliseconds)` rounded up,
/// so a positive duration never becomes 0.
fn precision(ttl: Duration) -> (bool, u64) {
    if ttl.subsec_nanos() == 0 && !ttl.is_zero() {
        (true, ttl.as_secs())
    } else {
        let ms = ttl.as_nanos().div_ceil(1_000_000);
        (false, u64::try_from(ms).unwrap_or(u64::MAX))
    }
}

/// Time since the epoch; a time before 1970 is an error.
fn since_epoch(at: SystemTime) -> Result<Duration, Error> {
    at.duration_since(UNIX_EPOCH)
        .map_err(|_| Error::config("an expiration time before 1970"))
}

/// `<secs> n` when `ttl` is whole seconds, else `<millis> n` (rounded up to the
/// millisecond).
pub(crate) fn relative(a: &mut ArgBuf, ttl: Duration, secs: &[u8], millis: &[u8]) {
    let (whole, n) = precision(ttl);
    a.push(if whole { secs } else { millis });
    a.push_int(n);
}

/// `<secs> t` when `at` is a whole second since the epoch, else `<millis> t` (rounded up).
/// A time before 1970 fails the command before it is sent.
pub(crate) fn absolute(a: &mut ArgBuf, at: SystemTime, secs: &[u8], millis: &[u8]) {
    match since_epoch(at) {
        Ok(since) => relative(a, since, secs, millis),
        Err(e) => a.fail(e),
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
        self.send(timed(["EXPIRE", "PEXPIRE"], key, Ok(ttl)))
    }

    /// Sets when a key expires: `EXPIREAT key secs` for a whole second, else
    /// `PEXPIREAT key millis`. 1 when set, 0 when the key does not exist.
    fn expire_at<'a>(&'a self, key: impl ToArgs, at: SystemTime) -> Self::Reply<'a, i64> {
        self.send(timed(["EXPIREAT", "PEXPIREAT"], key, since_epoch(at)))
    }

    /// Sets a key that expires: `SET key value EX secs` for whole seconds, else
    /// `PX millis` (what redis-rs calls `set_ex`). For NX, XX, GET or KEEPTTL, use
    /// `set_with` and [`SetOptions::expire_in`](crate::commands::SetOptions::expire_in).
    fn set_expiring<'a>(
        &'a self,
        key: impl ToArgs,
        value: impl ToArgs,
        ttl: Duration,
    ) -> Self::Reply<'a, ()> {
        let mut cmd = Cmd::with_route("SET", Route::Shared);
        key.write_args(&mut cmd.args);
        value.write_args(&mut cmd.args);
        relative(&mut cmd.args, ttl, b"EX", b"PX");
        self.send(cmd)
    }
}

impl<S: CommandSink + ?Sized> ExpiryCommands for S {}

/// The seconds or the milliseconds command of `names` for `key` and `time`.
fn timed(names: [&'static str; 2], key: impl ToArgs, time: Result<Duration, Error>) -> Cmd {
    let (whole, n) = time.as_ref().map_or((true, 0), |t| precision(*t));
    let mut cmd = Cmd::with_route(names[usize::from(!whole)], Route::Shared);
    key.write_args(&mut cmd.args);
    match time {
        Ok(_) => cmd.args.push_int(n),
        Err(e) => cmd.args.fail(e),
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut ArgBuf)) -> Vec<String> {
        let mut a = ArgBuf::default();
        f(&mut a);
        (0..a.len())
            .map(|i| String::from_utf8(a.get(i).unwrap().to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn whole_seconds_go_as_seconds_and_the_rest_as_rounded_up_millis() {
        let d = |d| args(|a| relative(a, d, b"EX", b"PX"));
        assert_eq!(d(Duration::from_secs(60)), ["EX", "60"]);
        assert_eq!(d(Duration::from_millis(1500)), ["PX", "1500"]);
        assert_eq!(d(Duration::from_micros(1)), ["PX", "1"]);
        assert_eq!(d(Duration::from_micros(2001)), ["PX", "3"]);
        assert_eq!(d(Duration::ZERO), ["PX", "0"]);
        let at = |t| args(|a| absolute(a, t, b"EXAT", b"PXAT"));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(at(t), ["EXAT", "1700000000"]);
        let t = t + Duration::from_millis(5);
        assert_eq!(at(t), ["PXAT", "1700000000005"]);
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
