//! Lua: [`Script`] (EVALSHA with a transparent fallback), [`lua`] with named variables, and
//! [`Library`] for Redis 7 functions.

mod rewrite;

use std::fmt::Write;
use std::future::IntoFuture;

use sha1::{Digest, Sha1};

use crate::cmd::{Cmd, cmd};
use crate::commands::CommandSink;
use crate::error::Result;
use crate::pipeline::{Pipeline, Queued};
use crate::resp::Value;
use crate::value::{ArgBuf, FromValue, ToArgs};

/// A Lua script, called by its SHA1 with EVALSHA; when the server does not have it
/// (NOSCRIPT, e.g. after SCRIPT FLUSH or a restart), it is sent with EVAL, which also caches
/// it, transparently.
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// let incr_by = kermes::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
/// let n: i64 = incr_by.run(&client, "counter", 5).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Script {
    code: String,
    sha1: String,
}

pub(crate) fn sha1_hex(data: impl AsRef<[u8]>) -> String {
    Sha1::digest(data.as_ref())
        .iter()
        .fold(String::with_capacity(40), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn call(name: &'static str, first: &str, keys: &ArgBuf, args: &ArgBuf) -> Cmd {
    let mut c = cmd(name).arg(first).arg(keys.len());
    c.args.append(keys);
    c.args.append(args);
    c
}

fn encode(values: impl ToArgs) -> ArgBuf {
    let mut buf = ArgBuf::default();
    values.write_args(&mut buf);
    buf
}

impl Script {
    /// A script; its SHA1 is computed once here.
    pub fn new(code: impl Into<String>) -> Script {
        let code = code.into();
        let sha1 = sha1_hex(&code);
        Script { code, sha1 }
    }

    /// The SHA1 the server knows the script by.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }

    /// The Lua source.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Runs the script with `keys` (KEYS) and `args` (ARGV) on a client or an exclusive
    /// connection, returning its reply as `T`.
    pub async fn run<S, T>(&self, sink: &S, keys: impl ToArgs, args: impl ToArgs) -> Result<T>
    where
        S: CommandSink,
        T: FromValue,
        for<'a> S::Reply<'a, Value>: IntoFuture<Output = Result<Value>>,
    {
        let (keys, args) = (encode(keys), encode(args));
        let reply = match sink
            .send::<Value>(call("EVALSHA", &self.sha1, &keys, &args))
            .await
        {
            Err(e) if e.server_error().is_some_and(|s| s.code() == "NOSCRIPT") => {
                tracing::debug!(sha1 = %self.sha1, "NOSCRIPT: sending the script with EVAL");
                sink.send::<Value>(call("EVAL", &self.code, &keys, &args))
                    .await?
            }
            other => other?,
        };
        T::from_value(reply)
    }

    /// Queues the script in a pipeline. A pipeline cannot retry, so this sends the source
    /// (EVAL), which works whether or not the server has the script cached.
    pub fn queue<'p>(
        &self,
        pipeline: &'p Pipeline,
        keys: impl ToArgs,
        args: impl ToArgs,
    ) -> Queued<'p> {
        pipeline.cmd(call("EVAL", &self.code, &encode(keys), &encode(args)))
    }
}

/// Runs Lua with named variables, as Carmine's `lua` does: `_:name` in the code becomes
/// `KEYS[i]` for the i-th name of `keys`, or `ARGV[i]` for the i-th of `args`. Unlike
/// Carmine's textual replace, names inside string literals and comments are left alone, and
/// a name that is neither key nor argument is an error.
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// let moved: i64 = kermes::lua(
///     &client,
///     "local v = redis.call('GET', _:from)
///      if v then redis.call('SET', _:to, v .. _:suffix) return 1 end
///      return 0",
///     &[("from", &"a"), ("to", &"b")],
///     &[("suffix", &"!")],
/// )
/// .await?;
/// # Ok(()) }
/// ```
pub async fn lua<S, T>(
    sink: &S,
    code: &str,
    keys: &[(&str, &dyn ToArgs)],
    args: &[(&str, &dyn ToArgs)],
) -> Result<T>
where
    S: CommandSink,
    T: FromValue,
    for<'a> S::Reply<'a, Value>: IntoFuture<Output = Result<Value>>,
{
    let key_names: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
    let arg_names: Vec<&str> = args.iter().map(|(n, _)| *n).collect();
    let script = Script::new(rewrite::rewrite(code, &key_names, &arg_names)?);
    let key_values: Vec<&dyn ToArgs> = keys.iter().map(|(_, v)| *v).collect();
    let arg_values: Vec<&dyn ToArgs> = args.iter().map(|(_, v)| *v).collect();
    script.run(sink, key_values, arg_values).await
}

/// A Redis 7 function library: loaded with FUNCTION LOAD and called with FCALL, loading it
/// again transparently when the server does not have it (after FUNCTION FLUSH or a restart).
///
/// ```no_run
/// # async fn demo(client: kermes::Client) -> kermes::Result<()> {
/// let lib = kermes::Library::new(
///     "#!lua name=counters\nredis.register_function('bump', function(keys, args) return redis.call('INCR', keys[1]) end)",
/// );
/// let n: i64 = lib.call(&client, "bump", "hits", ()).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Library {
    code: String,
}

impl Library {
    /// A library from its source (which starts with `#!lua name=...`).
    pub fn new(code: impl Into<String>) -> Library {
        Library { code: code.into() }
    }

    /// The library's source.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Loads (or replaces) the library on the server.
    pub async fn load<S>(&self, sink: &S) -> Result<()>
    where
        S: CommandSink,
        for<'a> S::Reply<'a, Value>: IntoFuture<Output = Result<Value>>,
    {
        sink.send::<Value>(cmd("FUNCTION").arg("LOAD").arg("REPLACE").arg(&self.code))
            .await
            .map(drop)
    }

    /// Calls a function of the library with FCALL, loading the library first if the server
    /// does not know the function.
    pub async fn call<S, T>(
        &self,
        sink: &S,
        function: &str,
        keys: impl ToArgs,
        args: impl ToArgs,
    ) -> Result<T>
    where
        S: CommandSink,
        T: FromValue,
        for<'a> S::Reply<'a, Value>: IntoFuture<Output = Result<Value>>,
    {
        let (keys, args) = (encode(keys), encode(args));
        let reply = match sink
            .send::<Value>(call("FCALL", function, &keys, &args))
            .await
        {
            Err(e)
                if e.server_error()
                    .is_some_and(|s| s.message().contains("Function not found")) =>
            {
                self.load(sink).await?;
                sink.send::<Value>(call("FCALL", function, &keys, &args))
                    .await?
            }
            other => other?,
        };
        T::from_value(reply)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha1_matches_redis() {
        // SCRIPT LOAD "return 1" answers this digest.
        assert_eq!(
            super::sha1_hex("return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}
