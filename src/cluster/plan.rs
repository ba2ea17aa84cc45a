//! Where a command goes in a cluster, decided from the generated table: the slot of its
//! keys, every primary or every node for the commands the spec tips so, split per slot for
//! the multi-key commands that allow it; and how the replies of several nodes make one.

use super::keys::key_positions;
use super::slot::key_slot;
use crate::cmd::Cmd;
use crate::commands::{CommandInfo, RequestPolicy, ResponsePolicy};
use crate::error::{Error, Result, ServerError};
use crate::resp::Value;
use bytes::BytesMut;

/// Where a command runs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The node serving this slot.
    Slot(u16),
    /// Any primary (a keyless command).
    Any,
    /// Every primary, or every node, with the replies combined.
    Fanout {
        all_nodes: bool,
        response: ResponsePolicy,
    },
    /// One command per slot, each with the keys (and their values) of that slot.
    Split {
        groups: SlotGroups,
        /// Arguments that belong to each key (2 for MSET's key and value).
        unit: usize,
        response: ResponsePolicy,
    },
    /// Keys of several slots in a command that cannot be split.
    CrossSlot,
    /// A command whose state lives on one node (SCAN's cursor) sent to no node in
    /// particular: refused, since each call could reach another primary.
    NodeCursor,
}

/// A split command's keys by slot: each slot's key positions, in the caller's order within
/// the slot. Three vectors, however many slots.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SlotGroups {
    slots: Vec<u16>,
    /// Where each slot's positions end in `positions`.
    ends: Vec<usize>,
    positions: Vec<usize>,
}

impl SlotGroups {
    /// Groups (slot, position) pairs by slot.
    pub(crate) fn new(mut keyed: Vec<(u16, usize)>) -> SlotGroups {
        keyed.sort_unstable();
        let mut groups = SlotGroups {
            slots: Vec::new(),
            ends: Vec::new(),
            positions: Vec::with_capacity(keyed.len()),
        };
        for (slot, position) in keyed {
            if groups.slots.last() != Some(&slot) {
                if !groups.positions.is_empty() {
                    groups.ends.push(groups.positions.len());
                }
                groups.slots.push(slot);
            }
            groups.positions.push(position);
        }
        if !groups.positions.is_empty() {
            groups.ends.push(groups.positions.len());
        }
        groups
    }

    /// How many slots.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// Each slot with its key positions.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u16, &[usize])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.slots
            .iter()
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(&slot, (start, end))| (slot, &self.positions[start..end]))
    }
}

/// The table's entry for a command (its subcommand's, for containers).
pub(crate) fn info_of(cmd: &Cmd) -> Option<&'static CommandInfo> {
    crate::commands::lookup_args(&cmd.args)
}

/// Decides where `cmd` runs.
pub(crate) fn plan(cmd: &Cmd) -> Plan {
    let Some(info) = info_of(cmd) else {
        // A command the spec does not know (a module's): its first argument is taken for a
        // key, as most module commands put one there.
        return match cmd.args.get(1) {
            Some(key) => Plan::Slot(key_slot(key)),
            None => Plan::Any,
        };
    };
    let keys = key_positions(info, &cmd.args);
    if keys.is_empty() {
        return match info.request_policy {
            RequestPolicy::AllShards => Plan::Fanout {
                all_nodes: false,
                response: info.response_policy,
            },
            RequestPolicy::AllNodes => Plan::Fanout {
                all_nodes: true,
                response: info.response_policy,
            },
            RequestPolicy::Special => Plan::NodeCursor,
            _ => Plan::Any,
        };
    }
    if let [only] = keys[..] {
        return Plan::Slot(key_slot(cmd.args.get(only).unwrap_or_default()));
    }
    // Several keys: the arguments decoded once (finding each on its own is linear).
    let args: Vec<&[u8]> = cmd.args.iter().collect();
    let slot_of = |i: usize| key_slot(args.get(i).copied().unwrap_or_default());
    let first = slot_of(keys[0]);
    if keys.iter().all(|&i| slot_of(i) == first) {
        return Plan::Slot(first);
    }
    if info.request_policy != RequestPolicy::MultiShard {
        return Plan::CrossSlot;
    }
    let unit = if keys.len() > 1 { keys[1] - keys[0] } else { 1 };
    // Only an evenly laid out run of keys to the end can be cut into per-slot commands.
    let even = keys.windows(2).all(|w| w[1] - w[0] == unit)
        && keys[keys.len() - 1] + unit == cmd.args.len();
    if !even {
        return Plan::CrossSlot;
    }
    Plan::Split {
        groups: SlotGroups::new(keys.iter().map(|&i| (slot_of(i), i)).collect()),
        unit,
        response: info.response_policy,
    }
}

/// The error for keys of several slots, as the server would say it, before anything is sent.
pub(crate) fn cross_slot(cmd: &Cmd) -> Error {
    ServerError::new(format!(
        "CROSSSLOT Keys in request don't hash to the same slot (found by kermes before \
         sending {}: give the keys one hash tag, such as {{user:1}}, to keep them together)",
        cmd.full_name()
    ))
    .into()
}

/// The error for a command whose cursor belongs to one node, before anything is sent.
pub(crate) fn node_cursor(cmd: &Cmd) -> Error {
    Error::config(format!(
        "{} on a cluster: its cursor belongs to one node, and each call could reach another \
         primary; use kermes::helpers::scan_stream (every primary in turn), or run it on one \
         node with Client::exclusive_for_key",
        cmd.full_name()
    ))
}

/// Encodes the command for one slot of a split into `out`: the name, and the keys (with
/// their values) at `positions` of `args`.
pub(crate) fn encode_sub_command(
    args: &[&[u8]],
    positions: &[usize],
    unit: usize,
    out: &mut BytesMut,
) {
    crate::resp::array_header(out, 1 + positions.len() * unit);
    crate::resp::bulk_string(out, args.first().copied().unwrap_or_default());
    for &p in positions {
        for arg in args.iter().skip(p).take(unit) {
            crate::resp::bulk_string(out, arg);
        }
    }
}

/// Puts the replies of a split back together: MGET's values in the caller's key order, sums
/// for counts, one `OK` when all succeeded.
pub(crate) fn join_split(
    groups: &SlotGroups,
    replies: Vec<Result<Value>>,
    response: ResponsePolicy,
) -> Result<Value> {
    let mut replies = replies.into_iter().collect::<Result<Vec<Value>>>()?;
    if let Some(e) = replies.iter().find_map(|r| match r {
        Value::Error(e) => Some(e.clone()),
        _ => None,
    }) {
        return Ok(Value::Error(e));
    }
    match response {
        ResponsePolicy::AggSum => Ok(Value::Int(
            replies.iter().map(|r| int(r).unwrap_or(0)).sum(),
        )),
        ResponsePolicy::AllSucceeded => Ok(replies.pop().unwrap_or(Value::Nil)),
        _ => {
            // Arrays of one element per key (MGET): back in the order the keys were given.
            let mut placed: Vec<(usize, Value)> = Vec::with_capacity(groups.positions.len());
            for ((_, positions), reply) in groups.iter().zip(replies) {
                let Value::Array(items) = reply else {
                    return Err(Error::protocol(format!(
                        "a split command answered {} instead of an array",
                        reply.kind_name()
                    )));
                };
                placed.extend(positions.iter().copied().zip(items));
            }
            placed.sort_by_key(|(p, _)| *p);
            Ok(Value::Array(placed.into_iter().map(|(_, v)| v).collect()))
        }
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        other => std::str::from_utf8(other.as_bytes()?).ok()?.parse().ok(),
    }
}

/// Combines the replies of every primary (or node) as the command's response policy says.
pub(crate) fn combine(replies: Vec<Result<Value>>, response: ResponsePolicy) -> Result<Value> {
    let first_error = || {
        replies.iter().find_map(|r| match r {
            Err(e) => Some(Err(e.duplicate())),
            Ok(Value::Error(e)) => Some(Ok(Value::Error(e.clone()))),
            Ok(_) => None,
        })
    };
    if response == ResponsePolicy::OneSucceeded {
        return replies
            .iter()
            .find_map(|r| match r {
                Ok(v) if !matches!(v, Value::Error(_)) => Some(Ok(v.clone())),
                _ => None,
            })
            .or_else(first_error)
            .unwrap_or(Ok(Value::Nil));
    }
    if let Some(err) = first_error() {
        return err;
    }
    let values: Vec<Value> = replies.into_iter().filter_map(Result::ok).collect();
    let ints = || values.iter().filter_map(int);
    Ok(match response {
        ResponsePolicy::AggSum => Value::Int(ints().sum()),
        ResponsePolicy::AggMin => Value::Int(ints().min().unwrap_or(0)),
        ResponsePolicy::AggMax => Value::Int(ints().max().unwrap_or(0)),
        ResponsePolicy::AggLogicalAnd | ResponsePolicy::AggLogicalOr => {
            let and = response == ResponsePolicy::AggLogicalAnd;
            let mut acc: Option<Vec<i64>> = None;
            for v in &values {
                let Value::Array(items) = v else { continue };
                let row: Vec<i64> = items.iter().map(|i| int(i).unwrap_or(0)).collect();
                acc = Some(match acc {
                    None => row,
                    Some(a) => a
                        .iter()
                        .zip(row)
                        .map(|(x, y)| {
                            i64::from(if and {
                                *x != 0 && y != 0
                            } else {
                                *x != 0 || y != 0
                            })
                        })
                        .collect(),
                });
            }
            Value::Array(
                acc.unwrap_or_default()
                    .into_iter()
                    .map(Value::Int)
                    .collect(),
            )
        }
        // KEYS and the like: one array of everything.
        ResponsePolicy::Default if values.iter().all(|v| matches!(v, Value::Array(_))) => {
            Value::Array(
                values
                    .into_iter()
                    .flat_map(|v| match v {
                        Value::Array(items) => items,
                        _ => Vec::new(),
                    })
                    .collect(),
            )
        }
        _ => values.into_iter().next().unwrap_or(Value::Nil),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::cmd;

    #[test]
    fn commands_are_planned_by_keys_and_tips() {
        assert_eq!(plan(&cmd("GET").arg("foo")), Plan::Slot(12182));
        assert_eq!(
            plan(&cmd("MGET").arg(["{a}1", "{a}2"])),
            Plan::Slot(key_slot(b"a"))
        );
        assert_eq!(
            plan(&cmd("PING")),
            Plan::Fanout {
                all_nodes: false,
                response: ResponsePolicy::AllSucceeded
            }
        );
        assert_eq!(plan(&cmd("ECHO").arg("x")), Plan::Any);
        assert_eq!(
            plan(&cmd("SCRIPT").arg(["LOAD", "return 1"])),
            Plan::Fanout {
                all_nodes: true,
                response: ResponsePolicy::AllSucceeded
            }
        );
        assert_eq!(plan(&cmd("SUNION").arg(["a", "b"])), Plan::CrossSlot);
        assert_eq!(plan(&cmd("SCAN").arg(0)), Plan::NodeCursor);
        let Plan::Split { groups, unit, .. } =
            plan(&cmd("MSET").arg(["a", "1", "b", "2", "{a}x", "3"]))
        else {
            panic!("MSET across slots splits")
        };
        assert_eq!(unit, 2);
        assert_eq!(groups.len(), 2);
        let a = groups.iter().find(|(s, _)| *s == key_slot(b"a")).unwrap();
        assert_eq!(groups.iter().map(|(_, p)| p.len()).sum::<usize>(), 3);
        assert_eq!(a.1, [1, 5]);
    }

    #[test]
    fn replies_combine_as_the_tips_say() {
        let ints = |v: &[i64]| v.iter().map(|&n| Ok(Value::Int(n))).collect::<Vec<_>>();
        assert_eq!(
            combine(ints(&[1, 2, 3]), ResponsePolicy::AggSum).unwrap(),
            Value::Int(6)
        );
        assert_eq!(
            combine(ints(&[4, 2, 3]), ResponsePolicy::AggMin).unwrap(),
            Value::Int(2)
        );
        let arr = |v: &[i64]| Ok(Value::Array(v.iter().map(|&n| Value::Int(n)).collect()));
        assert_eq!(
            combine(
                vec![arr(&[1, 1, 0]), arr(&[1, 0, 0])],
                ResponsePolicy::AggLogicalAnd
            )
            .unwrap(),
            Value::Array(vec![Value::Int(1), Value::Int(0), Value::Int(0)])
        );
        let err = || Ok(Value::Error(ServerError::new("ERR no")));
        assert!(matches!(
            combine(vec![Ok(Value::Int(1)), err()], ResponsePolicy::AllSucceeded).unwrap(),
            Value::Error(_)
        ));
        assert_eq!(
            combine(vec![err(), Ok(Value::Int(1))], ResponsePolicy::OneSucceeded).unwrap(),
            Value::Int(1)
        );
        let joined = join_split(
            &SlotGroups::new(vec![(2, 1), (1, 3), (1, 2)]),
            vec![arr(&[20, 30]), arr(&[10])],
            ResponsePolicy::Default,
        )
        .unwrap();
        assert_eq!(
            joined,
            Value::Array(vec![Value::Int(10), Value::Int(20), Value::Int(30)])
        );
    }
}
