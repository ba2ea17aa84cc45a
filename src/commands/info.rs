//! What the spec says about each command, as data: flags, routing, key positions.

use crate::route::Route;

/// The spec's facts about one command or subcommand.
#[derive(Debug)]
#[non_exhaustive]
pub struct CommandInfo {
    /// Full name, upper case: `GET`, `CLIENT KILL`.
    pub name: &'static str,
    /// Group: `string`, `sorted_set`, `server` ...
    pub group: &'static str,
    /// Server version that introduced it.
    pub since: &'static str,
    /// Arity as `COMMAND INFO` gives it: positive is exact, negative is a minimum.
    pub arity: i32,
    /// The spec's command flags.
    pub flags: CommandFlags,
    pub(crate) route: Route,
    /// Where the keys are among the arguments.
    pub key_specs: &'static [KeySpec],
    /// Which nodes of a cluster run it (the spec's `REQUEST_POLICY` tip).
    pub request_policy: RequestPolicy,
    /// How the replies of several nodes make one (the spec's `RESPONSE_POLICY` tip).
    pub response_policy: ResponsePolicy,
    /// Whether kermes generated a method for it (see [`SKIPPED`](super::SKIPPED) for the rest).
    pub has_method: bool,
    /// Whether the client-side cache may keep its replies: read-only, one key (the first
    /// argument), and a reply that depends on nothing but that key's value (not `TTL`,
    /// `SRANDMEMBER`, `DUMP` ...).
    pub cacheable: bool,
}

impl CommandInfo {
    /// True when the command blocks its connection (BLPOP, XREAD, WAIT ...).
    pub fn is_blocking(&self) -> bool {
        self.flags.contains(CommandFlags::BLOCKING)
    }
}

/// A set of command flags (READONLY, WRITE, BLOCKING ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandFlags(pub(crate) u32);

impl CommandFlags {
    /// No flags.
    pub const fn empty() -> Self {
        CommandFlags(0)
    }

    pub(crate) const fn from_bits(bits: u32) -> Self {
        CommandFlags(bits)
    }

    /// The bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every flag of `other` is set.
    pub const fn contains(self, other: CommandFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// How to find one range of keys among a command's arguments (the spec's `key_specs`).
#[derive(Debug)]
#[non_exhaustive]
pub struct KeySpec {
    /// Where the search starts.
    pub begin: BeginSearch,
    /// How the keys are laid out from there.
    pub find: FindKeys,
    /// Access flags: RO, RW, OW, RM, ACCESS, UPDATE, INSERT, DELETE ...
    pub flags: &'static [&'static str],
}

/// Where the search for keys starts.
#[derive(Debug)]
#[non_exhaustive]
pub enum BeginSearch {
    /// At this argument index (the command name is 0).
    Index(i32),
    /// After this keyword, searching from `start_from` (negative: from the end).
    Keyword {
        /// The keyword, e.g. `STREAMS`.
        keyword: &'static str,
        /// Where to start looking for it.
        start_from: i32,
    },
    /// Not described by the spec.
    Unknown,
}

/// How keys are laid out after the start.
#[derive(Debug)]
#[non_exhaustive]
pub enum FindKeys {
    /// A range: up to `last_key` (negative: from the end), every `step`-th argument.
    Range {
        /// Last key, relative to the start.
        last_key: i32,
        /// Distance between keys.
        step: i32,
        /// With `last_key` -1: divide the remaining arguments by this to find the end.
        limit: i32,
    },
    /// A count of keys given by an argument (EVAL's numkeys).
    Keynum {
        /// Index of the count, relative to the start.
        key_num_idx: i32,
        /// Index of the first key, relative to the start.
        first_key: i32,
        /// Distance between keys.
        step: i32,
    },
    /// Not described by the spec.
    Unknown,
}

/// Which nodes of a cluster a command goes to, from the spec's `REQUEST_POLICY` tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestPolicy {
    /// No tip: the node of its keys, or any node for a keyless command.
    Default,
    /// Every node, primaries and replicas (CONFIG SET, SCRIPT LOAD ...).
    AllNodes,
    /// Every primary (DBSIZE, FLUSHALL, KEYS, FUNCTION LOAD ...).
    AllShards,
    /// Split by the slots of its keys (MGET, DEL, EXISTS ...).
    MultiShard,
    /// The command needs handling of its own (SCAN).
    Special,
}

/// How the replies of several nodes make one, from the spec's `RESPONSE_POLICY` tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResponsePolicy {
    /// No tip: arrays are concatenated (KEYS), else the replies must agree.
    Default,
    /// The first success, if any.
    OneSucceeded,
    /// Every node must succeed; the reply is one of theirs.
    AllSucceeded,
    /// Element-wise AND of integer arrays (SCRIPT EXISTS).
    AggLogicalAnd,
    /// Element-wise OR of integer arrays.
    AggLogicalOr,
    /// The smallest integer (WAIT).
    AggMin,
    /// The largest integer.
    AggMax,
    /// The sum of integers (DBSIZE, DEL).
    AggSum,
    /// The command needs handling of its own (INFO).
    Special,
}
