//! Where a command's keys are, from the key specs of the generated table: the same search
//! the server runs (`getKeysUsingKeySpecs`), so the client routes a command to the node that
//! holds its keys.

use smallvec::SmallVec;

use crate::commands::{BeginSearch, CommandInfo, FindKeys};
use crate::value::ArgBuf;

/// Argument positions of keys (the command name is 0).
pub(crate) type KeyPositions = SmallVec<[usize; 4]>;

/// The positions of every key of `args` per `info`'s key specs. A spec the arguments do not
/// satisfy (a missing keyword, a bad count) finds no keys; the server will say what is wrong.
pub(crate) fn key_positions(info: &CommandInfo, args: &ArgBuf) -> KeyPositions {
    let argc = args.len() as i64;
    let mut keys = KeyPositions::new();
    for spec in info.key_specs {
        let first = match spec.begin {
            BeginSearch::Index(pos) => pos as i64,
            BeginSearch::Keyword {
                keyword,
                start_from,
            } => match find_keyword(args, keyword, start_from as i64, argc) {
                Some(i) => i + 1,
                None => continue,
            },
            BeginSearch::Unknown => continue,
        };
        let (first, last, step) = match spec.find {
            FindKeys::Range {
                last_key,
                step,
                limit,
            } => {
                let last = if last_key >= 0 {
                    first + last_key as i64
                } else if limit == 0 {
                    argc + last_key as i64
                } else {
                    first + ((argc - first) / limit as i64 + last_key as i64)
                };
                (first, last, step as i64)
            }
            FindKeys::Keynum {
                key_num_idx,
                first_key,
                step,
            } => {
                let Some(count) = args
                    .get((first + key_num_idx as i64) as usize)
                    .and_then(|n| std::str::from_utf8(n).ok()?.parse::<i64>().ok())
                    .filter(|n| *n >= 0)
                else {
                    continue;
                };
                let first = first + first_key as i64;
                (first, first + count - 1, step as i64)
            }
            FindKeys::Unknown => continue,
        };
        if step <= 0 {
            continue;
        }
        let mut i = first;
        while i <= last && i < argc && i >= 1 {
            keys.push(i as usize);
            i += step;
        }
    }
    keys
}

/// The position of `keyword` searching from `start_from` (negative: from the end, backwards).
fn find_keyword(args: &ArgBuf, keyword: &str, start_from: i64, argc: i64) -> Option<i64> {
    let (start, end, forward) = if start_from > 0 {
        (start_from, argc - 1, true)
    } else {
        (argc + start_from, 1, false)
    };
    let mut i = start;
    loop {
        if i >= argc || i < 1 {
            return None;
        }
        if args
            .get(i as usize)
            .is_some_and(|a| a.eq_ignore_ascii_case(keyword.as_bytes()))
        {
            return Some(i);
        }
        if i == end {
            return None;
        }
        i += if forward { 1 } else { -1 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    fn keys(c: crate::Cmd) -> Vec<String> {
        let name = String::from_utf8_lossy(c.args.get(0).unwrap()).into_owned();
        let info = match c
            .args
            .get(1)
            .and_then(|sub| crate::commands::lookup_subcommand(name.as_bytes(), sub))
        {
            Some(info) => info,
            None => crate::commands::command_info(&name).unwrap(),
        };
        key_positions(info, &c.args)
            .iter()
            .map(|&i| String::from_utf8_lossy(c.args.get(i).unwrap()).into_owned())
            .collect()
    }

    #[test]
    fn keys_are_found_as_the_server_finds_them() {
        assert_eq!(keys(cmd("GET").arg("k")), ["k"]);
        assert_eq!(keys(cmd("MSET").arg(["a", "1", "b", "2"])), ["a", "b"]);
        assert_eq!(keys(cmd("MGET").arg(["a", "b", "c"])), ["a", "b", "c"]);
        assert_eq!(keys(cmd("DEL").arg(["a", "b"])), ["a", "b"]);
        assert_eq!(
            keys(cmd("EVAL").arg(["return 1", "2", "k1", "k2", "arg"])),
            ["k1", "k2"]
        );
        assert_eq!(
            keys(cmd("EVALSHA").arg(["abc", "0", "arg"])),
            Vec::<String>::new()
        );
        assert_eq!(
            keys(cmd("XREAD").arg(["COUNT", "1", "STREAMS", "s1", "s2", "0", "0"])),
            ["s1", "s2"]
        );
        assert_eq!(
            keys(cmd("XREADGROUP").arg(["GROUP", "g", "c", "STREAMS", "s1", ">"])),
            ["s1"]
        );
        assert_eq!(keys(cmd("XINFO").arg(["STREAM", "s"])), ["s"]);
        assert_eq!(keys(cmd("OBJECT").arg(["ENCODING", "k"])), ["k"]);
        assert_eq!(
            keys(cmd("ZUNIONSTORE").arg(["d", "2", "a", "b"])),
            ["d", "a", "b"]
        );
        assert_eq!(keys(cmd("BLPOP").arg(["a", "b", "0"])), ["a", "b"]);
        assert_eq!(
            keys(cmd("LMOVE").arg(["a", "b", "LEFT", "RIGHT"])),
            ["a", "b"]
        );
        // SORT's STORE key has no spec the client can follow (the server finds it with a
        // procedure of its own): the command goes to the node of its first key, and the
        // server refuses a STORE key of another slot.
        assert_eq!(keys(cmd("SORT").arg(["k", "STORE", "d"])), ["k"]);
        assert_eq!(keys(cmd("PING")), Vec::<String>::new());
        // A count that is not a number finds no keys rather than guessing.
        assert_eq!(
            keys(cmd("EVAL").arg(["return 1", "x", "k"])),
            Vec::<String>::new()
        );
    }
}
