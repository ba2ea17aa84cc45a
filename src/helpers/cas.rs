//! Compare-and-set (Lua) and swap (WATCH) on string keys.

use std::sync::LazyLock;

use bytes::Bytes;

use crate::atomic::{Transaction, gave_up};
use crate::client::Client;
use crate::commands::{GenericPipeline, StringCommands, StringPipeline};
use crate::error::Result;
use crate::script::Script;
use crate::value::ToArgs;

static CAS: LazyLock<Script> = LazyLock::new(|| Script::new(CAS_LUA));

const CAS_LUA: &str = r"
local current = redis.call('GET', KEYS[1])
local expected = ARGV[1] == '1' and ARGV[2] or false
if current == expected then
  redis.call('SET', KEYS[1], ARGV[3])
  return 1
end
return 0";

/// Sets `key` to `new` only if it currently holds `expected` (`None`: only if it does not
/// exist), atomically, in one round trip (Lua). Returns whether it was set.
pub async fn compare_and_set(
    client: &Client,
    key: impl ToArgs,
    expected: Option<&[u8]>,
    new: impl ToArgs,
) -> Result<bool> {
    let (present, value): (&str, &[u8]) = match expected {
        Some(v) => ("1", v),
        None => ("0", b""),
    };
    let mut args = crate::value::ArgBuf::default();
    present.write_args(&mut args);
    value.write_args(&mut args);
    new.write_args(&mut args);
    let set: i64 = CAS.run(client, key, &args).await?;
    Ok(set == 1)
}

/// Replaces the value of `key` with `f(current)` (`None` in, the key is missing; `None` out,
/// the key is deleted), as Carmine's `swap`: WATCH, GET, then SET or DEL in MULTI/EXEC,
/// retried up to `max_attempts` times while another client changes the key. Returns what
/// `f` returned on the attempt that took effect.
pub async fn swap<F>(
    client: &Client,
    key: &str,
    max_attempts: usize,
    mut f: F,
) -> Result<Option<Bytes>>
where
    F: FnMut(Option<Bytes>) -> Option<Bytes>,
{
    for _ in 0..max_attempts {
        let tx = Transaction::begin(client).await?;
        tx.watch(key).await?;
        let new = f(tx.get(key).await?);
        match &new {
            Some(v) => {
                tx.writes().set(key, v);
            }
            None => {
                tx.writes().del(key);
            }
        }
        match tx.commit().await {
            Ok(_) => return Ok(new),
            Err(e) if e.is_aborted() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(gave_up(max_attempts.max(1)))
}
