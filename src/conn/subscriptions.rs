//! A connection's pub/sub subscriptions: what the driver sends for a change, which frames
//! confirm it, and what it subscribes again after a reconnect.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};

use crate::cmd::Cmd;
use crate::resp::Value;

/// The three kinds of subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Channel,
    Pattern,
    Shard,
}

impl Family {
    pub(crate) const ALL: [Family; 3] = [Family::Channel, Family::Pattern, Family::Shard];

    pub(crate) fn command(self, subscribe: bool) -> &'static str {
        match (self, subscribe) {
            (Family::Channel, true) => "SUBSCRIBE",
            (Family::Pattern, true) => "PSUBSCRIBE",
            (Family::Shard, true) => "SSUBSCRIBE",
            (Family::Channel, false) => "UNSUBSCRIBE",
            (Family::Pattern, false) => "PUNSUBSCRIBE",
            (Family::Shard, false) => "SUNSUBSCRIBE",
        }
    }

    /// The first word of the frames that confirm the command.
    fn confirmation(self, subscribe: bool) -> &'static [u8] {
        match (self, subscribe) {
            (Family::Channel, true) => b"subscribe",
            (Family::Pattern, true) => b"psubscribe",
            (Family::Shard, true) => b"ssubscribe",
            (Family::Channel, false) => b"unsubscribe",
            (Family::Pattern, false) => b"punsubscribe",
            (Family::Shard, false) => b"sunsubscribe",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A change asked of a connection: (un)subscribe these names. Unsubscribing from no names
/// means from every name of the family.
#[derive(Debug, Clone)]
pub(crate) struct SubChange {
    pub(crate) family: Family,
    pub(crate) subscribe: bool,
    pub(crate) names: Vec<Bytes>,
}

impl SubChange {
    /// Writes the command for this change.
    pub(crate) fn encode_into(&self, out: &mut BytesMut) {
        let mut cmd = Cmd::new(self.family.command(self.subscribe));
        cmd.push_arg(&self.names[..]);
        cmd.args.encode_into(out);
    }

    /// True when `items` is a frame confirming one name of this change.
    pub(crate) fn is_confirmed_by(&self, items: &[Value]) -> bool {
        first_word(items) == Some(self.family.confirmation(self.subscribe))
    }
}

fn first_word(items: &[Value]) -> Option<&[u8]> {
    items.first().and_then(Value::as_bytes).map(|b| &b[..])
}

/// True for `message`, `pmessage` and `smessage` frames.
pub(crate) fn is_message(items: &[Value]) -> bool {
    matches!(
        first_word(items),
        Some(b"message" | b"pmessage" | b"smessage")
    )
}

/// The family and direction a confirmation frame is for, with its name.
fn confirmation(items: &[Value]) -> Option<(Family, bool, Option<&Bytes>)> {
    let (family, subscribe) = match first_word(items)? {
        b"subscribe" => (Family::Channel, true),
        b"psubscribe" => (Family::Pattern, true),
        b"ssubscribe" => (Family::Shard, true),
        b"unsubscribe" => (Family::Channel, false),
        b"punsubscribe" => (Family::Pattern, false),
        b"sunsubscribe" => (Family::Shard, false),
        _ => return None,
    };
    Some((family, subscribe, items.get(1).and_then(Value::as_bytes)))
}

/// True for any (un)subscribe confirmation frame.
pub(crate) fn is_confirmation(items: &[Value]) -> bool {
    confirmation(items).is_some()
}

/// What a connection is subscribed to, or asked to be: a change is recorded when the driver
/// takes it (sent, or refused while the connection is down), so the set is what the
/// connection must have after a reconnect.
#[derive(Debug, Default)]
pub(crate) struct Subscriptions {
    sets: [BTreeSet<Bytes>; 3],
}

impl Subscriptions {
    /// Records a change and returns it with the names to send: duplicates removed, and an
    /// unsubscribe of nothing expanded to every name of the family. No names: nothing to send.
    pub(crate) fn apply(&mut self, change: &SubChange) -> SubChange {
        let set = &mut self.sets[change.family.index()];
        let mut names: Vec<Bytes> = if !change.subscribe && change.names.is_empty() {
            set.iter().cloned().collect()
        } else {
            let mut seen = BTreeSet::new();
            change
                .names
                .iter()
                .filter(|n| seen.insert((*n).clone()))
                .cloned()
                .collect()
        };
        for name in &names {
            if change.subscribe {
                set.insert(name.clone());
            } else {
                set.remove(name);
            }
        }
        names.shrink_to_fit();
        SubChange {
            family: change.family,
            subscribe: change.subscribe,
            names,
        }
    }

    /// The server refused a subscription: forget it, so it is not made again on reconnect.
    pub(crate) fn refused(&mut self, change: &SubChange) {
        if change.subscribe {
            let set = &mut self.sets[change.family.index()];
            for name in &change.names {
                set.remove(name);
            }
        }
    }

    /// A confirmation nobody asked for: the server dropped a subscription by itself (a
    /// cluster moving a shard channel's slot).
    /// Returns what was dropped.
    pub(crate) fn unsolicited(&mut self, items: &[Value]) -> Option<(Family, Bytes)> {
        let (family, false, Some(name)) = confirmation(items)? else {
            return None;
        };
        self.sets[family.index()]
            .remove(name)
            .then(|| (family, name.clone()))
    }

    /// The changes that make every recorded subscription again on a new connection. Shard
    /// channels go one slot per command: a cluster refuses an SSUBSCRIBE across slots.
    pub(crate) fn restore(&self) -> Vec<SubChange> {
        let mut changes = Vec::new();
        for family in Family::ALL {
            let set = &self.sets[family.index()];
            if set.is_empty() {
                continue;
            }
            if family != Family::Shard {
                changes.push(SubChange {
                    family,
                    subscribe: true,
                    names: set.iter().cloned().collect(),
                });
                continue;
            }
            let mut by_slot: std::collections::BTreeMap<u16, Vec<Bytes>> = Default::default();
            for name in set {
                by_slot
                    .entry(crate::cluster::key_slot(name))
                    .or_default()
                    .push(name.clone());
            }
            changes.extend(by_slot.into_values().map(|names| SubChange {
                family,
                subscribe: true,
                names,
            }));
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(family: Family, subscribe: bool, names: &[&str]) -> SubChange {
        SubChange {
            family,
            subscribe,
            names: names.iter().map(|n| Bytes::from(n.to_string())).collect(),
        }
    }

    #[test]
    fn changes_are_recorded_deduplicated_and_restored() {
        let mut subs = Subscriptions::default();
        let sent = subs.apply(&change(Family::Channel, true, &["a", "b", "a"]));
        assert_eq!(sent.names.len(), 2);
        subs.apply(&change(Family::Pattern, true, &["p.*"]));
        let all = subs.apply(&change(Family::Channel, false, &[]));
        assert_eq!(all.names, [Bytes::from("a"), Bytes::from("b")]);
        assert!(
            subs.apply(&change(Family::Channel, false, &[]))
                .names
                .is_empty()
        );
        let restore = subs.restore();
        assert_eq!(restore.len(), 1);
        assert_eq!(restore[0].family, Family::Pattern);
        subs.refused(&change(Family::Pattern, true, &["p.*"]));
        assert!(subs.restore().is_empty());
    }

    #[test]
    fn frames_are_told_apart() {
        let frame = |words: &[&str]| -> Vec<Value> {
            words
                .iter()
                .map(|w| Value::Bulk(Bytes::from(w.to_string())))
                .collect()
        };
        assert!(is_message(&frame(&["message", "ch", "x"])));
        assert!(is_message(&frame(&["pmessage", "p", "ch", "x"])));
        assert!(!is_message(&frame(&["pong", ""])));
        let sub = change(Family::Shard, true, &["s"]);
        assert!(sub.is_confirmed_by(&frame(&["ssubscribe", "s"])));
        assert!(!sub.is_confirmed_by(&frame(&["sunsubscribe", "s"])));
        let mut subs = Subscriptions::default();
        subs.apply(&sub);
        subs.unsolicited(&frame(&["sunsubscribe", "s"]));
        assert!(subs.restore().is_empty());
    }
}
