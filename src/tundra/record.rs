//! What a store holds for one key: the key's `DUMP`, the generation it was dumped at and the
//! key's own expiry, in a small versioned binary layout, optionally through a
//! [`ValueCodec`](crate::ValueCodec) (compression, encryption).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::TundraError;
use crate::ValueCodec;

const MAGIC: &[u8; 4] = b"KTR1";

/// One key's replicated version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The Redis key.
    pub key: Bytes,
    /// Orders the versions of one key: a later dump has a higher generation.
    pub generation: u64,
    /// The key's own expiry, milliseconds since the Unix epoch (0: none). Tundra's TTL is
    /// not recorded: a restored key gets it afresh.
    pub expire_at_ms: u64,
    /// The key's value as `DUMP` serialized it (RDB format, with its checksum).
    pub dump: Bytes,
}

impl Record {
    pub(crate) fn encode(&self, codec: Option<&ValueCodec>) -> Result<Bytes, TundraError> {
        let mut out = BytesMut::with_capacity(24 + self.key.len() + self.dump.len());
        out.put_slice(MAGIC);
        out.put_u64(self.generation);
        out.put_u64(self.expire_at_ms);
        out.put_u32(self.key.len() as u32);
        out.put_slice(&self.key);
        out.put_slice(&self.dump);
        let plain = out.freeze();
        match codec {
            None => Ok(plain),
            Some(codec) => Ok(codec
                .freeze(&plain)
                .map_err(TundraError::Redis)?
                .as_bytes()
                .clone()),
        }
    }

    pub(crate) fn decode(bytes: Bytes, codec: Option<&ValueCodec>) -> Result<Record, TundraError> {
        let mut b = match codec {
            None => bytes,
            Some(codec) => codec
                .thaw::<Bytes>(&bytes)
                .map_err(|e| TundraError::Corrupt(format!("the record does not thaw: {e}")))?,
        };
        if b.len() < 24 || &b[..4] != MAGIC {
            return Err(TundraError::Corrupt(
                "not a Tundra record (bad magic or too short; written with another codec?)".into(),
            ));
        }
        b.advance(4);
        let generation = b.get_u64();
        let expire_at_ms = b.get_u64();
        let key_len = b.get_u32() as usize;
        if b.len() < key_len {
            return Err(TundraError::Corrupt("a Tundra record is truncated".into()));
        }
        let key = b.split_to(key_len);
        Ok(Record {
            key,
            generation,
            expire_at_ms,
            dump: b,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_garbage_is_refused() {
        let r = Record {
            key: Bytes::from_static(b"k\x00{x}"),
            generation: 1_764_000_000_000_123,
            expire_at_ms: 42,
            dump: Bytes::from_static(b"\x00\x03abc\x0b\x00"),
        };
        assert_eq!(Record::decode(r.encode(None).unwrap(), None).unwrap(), r);
        assert!(matches!(
            Record::decode(Bytes::from_static(b"nope"), None),
            Err(TundraError::Corrupt(_))
        ));
        let mut cut = r.encode(None).unwrap().to_vec();
        cut.truncate(26);
        assert!(Record::decode(Bytes::from(cut), None).is_err());
    }
}
