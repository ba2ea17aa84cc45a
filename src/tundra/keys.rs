//! Where Tundra keeps what it knows about a key: a small hash beside it (the key's
//! "companion"), always on the key's cluster slot, so one script sees both.

use std::fmt::Write as _;
use std::sync::LazyLock;

use crate::cluster::{SLOTS, key_slot};
use crate::script::sha1_hex;

/// For each slot, a short digit string that hashes to it: `{tag}` in a companion's name
/// puts it on the slot of the key it describes, whatever that key's bytes are (braces,
/// binary, a hash tag of its own).
static SLOT_TAGS: LazyLock<Vec<u32>> = LazyLock::new(|| {
    let mut tags = vec![u32::MAX; SLOTS];
    let mut left = SLOTS;
    let mut n = 0u32;
    let mut buf = itoa::Buffer::new();
    while left > 0 {
        let slot = key_slot(buf.format(n).as_bytes()) as usize;
        if tags[slot] == u32::MAX {
            tags[slot] = n;
            left -= 1;
        }
        n += 1;
    }
    tags
});

/// The companion of `key` in the Tundra `name`: `kermes:tundra:{T}:<name>:<key>`, T chosen
/// so the companion shares the key's slot. Fields: `g` the last generation dumped or
/// restored, `ux` the key's own expiry (ms, 0 for none), `t` 1 when the key's current TTL
/// is Tundra's (set at `ta`) rather than the user's.
pub(crate) fn companion(name: &str, key: &[u8]) -> Vec<u8> {
    let tag = SLOT_TAGS[key_slot(key) as usize];
    let mut out = Vec::with_capacity(24 + name.len() + key.len());
    out.extend_from_slice(b"kermes:tundra:{");
    out.extend_from_slice(itoa::Buffer::new().format(tag).as_bytes());
    out.extend_from_slice(b"}:");
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    out.extend_from_slice(key);
    out
}

/// The message id of `key` on the replication queue (ids are strings; keys are bytes).
pub(crate) fn message_id(key: &[u8]) -> String {
    if key.len() <= 128 {
        let mut id = String::with_capacity(1 + key.len() * 2);
        id.push('k');
        for b in key {
            let _ = write!(id, "{b:02x}");
        }
        id
    } else {
        format!("h{}", sha1_hex(key))
    }
}

/// A name for `key` that is safe as one file name or object path segment on every
/// platform: `a-z 0-9 _ - .` stay (a leading `.` does not), every other byte is `=XX`
/// (upper-case hex, so case-insensitive file systems cannot merge two keys); the empty key
/// is `=`; a name longer than 200 bytes becomes `==` and the SHA-1 of the key (the record
/// holds the key, and a fetch checks it). Distinct keys get distinct names.
pub fn safe_name(key: &[u8]) -> String {
    if key.is_empty() {
        return "=".to_owned();
    }
    let mut out = String::with_capacity(key.len());
    for (i, &b) in key.iter().enumerate() {
        let keep = b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || b == b'_'
            || b == b'-'
            || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "={b:02X}");
        }
        if out.len() > 200 {
            return format!("=={}", sha1_hex(key));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_companion_lives_on_its_keys_slot() {
        for key in [
            &b"plain"[..],
            b"{user:1}:profile",
            b"a}b{",
            b"",
            b"\xff\x00{}",
            b"{}x}",
        ] {
            assert_eq!(
                key_slot(&companion("t", key)),
                key_slot(key),
                "{:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn safe_names_are_distinct_and_plain() {
        let keys: [&[u8]; 9] = [b"a", b"A", b"=41", b".x", b"x.", b"", b"=", b"a/b", b"\x00"];
        let names: Vec<String> = keys.iter().map(|k| safe_name(k)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
        for n in &names {
            assert!(
                !n.starts_with('.') && !n.contains('/') && !n.is_empty(),
                "{n}"
            );
            assert!(
                n.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b"_-.=ABCDEF".contains(&b)),
                "{n}"
            );
        }
        let long = vec![b'Z'; 300];
        assert!(safe_name(&long).starts_with("==") && safe_name(&long).len() == 42);
    }
}
