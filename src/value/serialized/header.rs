//! The header that marks a serialized value and records how to read it back.
//!
//! ```text
//! 0x00 'K' 'R' 'M' | version (1) | format | transforms | payload
//! ```
//! `transforms` holds the compression in bits 0-1 and the cipher in bits 2-3. The leading
//! zero byte keeps plain text from ever looking like a header by accident in practice.

use crate::error::{Error, Result};

pub(crate) const MAGIC: &[u8; 4] = b"\0KRM";
const VERSION: u8 = 1;
pub(crate) const LEN: usize = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) format: u8,
    pub(crate) compression: u8,
    pub(crate) cipher: u8,
}

/// True when `bytes` starts like a value written through [`Serde`](crate::Serde), for the
/// error that tells a reader of plain text or numbers to read it as `Serde<T>`.
pub(crate) fn looks_serialized(bytes: &[u8]) -> bool {
    bytes.len() >= LEN && &bytes[..4] == MAGIC
}

/// The error for reading a serialized value as `wanted`.
pub(crate) fn read_as_plain(wanted: &str) -> Error {
    Error::type_error(format!(
        "cannot read a serialized value as {wanted}: this value was written by Serde<T> \
         (through the client's ValueCodec); read it as Serde<T>"
    ))
}

impl Header {
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[VERSION, self.format, self.compression | (self.cipher << 2)]);
    }

    /// The header and the payload after it, or `None` when `bytes` is not a serialized value.
    pub(crate) fn read(bytes: &[u8]) -> Result<Option<(Header, &[u8])>> {
        if bytes.len() < LEN || &bytes[..4] != MAGIC {
            return Ok(None);
        }
        if bytes[4] != VERSION {
            return Err(Error::type_error(format!(
                "serialized value of version {} (this kermes reads version {VERSION})",
                bytes[4]
            )));
        }
        let header = Header {
            format: bytes[5],
            compression: bytes[6] & 0b11,
            cipher: (bytes[6] >> 2) & 0b11,
        };
        Ok(Some((header, &bytes[LEN..])))
    }
}
