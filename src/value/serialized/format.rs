//! Serialization formats, each behind its feature.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// How values are serialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Format {
    /// MessagePack (feature `msgpack`, on by default): compact, with a stable wire spec
    /// readable from every language, and self-describing, so any serde type round-trips
    /// (postcard, the other candidate, cannot read self-describing types such as untagged
    /// enums or `serde_json::Value`).
    #[default]
    MessagePack,
    /// bincode 2.0 with its standard configuration (feature `bincode`).
    Bincode,
    /// JSON (feature `json`), for data other languages must read as text.
    Json,
}

impl Format {
    pub(crate) fn id(self) -> u8 {
        match self {
            Format::MessagePack => 1,
            Format::Bincode => 2,
            Format::Json => 3,
        }
    }

    pub(crate) fn from_id(id: u8) -> Result<Format> {
        match id {
            1 => Ok(Format::MessagePack),
            2 => Ok(Format::Bincode),
            3 => Ok(Format::Json),
            other => Err(Error::type_error(format!(
                "unknown serialization format {other}"
            ))),
        }
    }

    fn missing(self) -> Error {
        Error::config(format!(
            "{self:?} values need kermes's `{}` feature",
            self.feature()
        ))
    }

    fn feature(self) -> &'static str {
        match self {
            Format::MessagePack => "msgpack",
            Format::Bincode => "bincode",
            Format::Json => "json",
        }
    }

    pub(crate) fn serialize<T: Serialize + ?Sized>(self, value: &T) -> Result<Vec<u8>> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::type_error(format!("cannot serialize as {self:?}: {e}"))
        };
        match self {
            #[cfg(feature = "msgpack")]
            Format::MessagePack => rmp_serde::to_vec_named(value).map_err(|e| failed(&e)),
            #[cfg(feature = "bincode")]
            Format::Bincode => bincode::serde::encode_to_vec(value, bincode::config::standard())
                .map_err(|e| failed(&e)),
            #[cfg(feature = "json")]
            Format::Json => serde_json::to_vec(value).map_err(|e| failed(&e)),
            #[allow(unreachable_patterns)]
            _ => Err(self.missing()),
        }
    }

    pub(crate) fn deserialize<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T> {
        let failed = |e: &dyn std::fmt::Display| {
            Error::type_error(format!("cannot deserialize {self:?} value: {e}"))
        };
        match self {
            #[cfg(feature = "msgpack")]
            Format::MessagePack => rmp_serde::from_slice(bytes).map_err(|e| failed(&e)),
            #[cfg(feature = "bincode")]
            Format::Bincode => {
                let (value, read) =
                    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                        .map_err(|e| failed(&e))?;
                if read != bytes.len() {
                    return Err(failed(&"trailing bytes"));
                }
                Ok(value)
            }
            #[cfg(feature = "json")]
            Format::Json => serde_json::from_slice(bytes).map_err(|e| failed(&e)),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = bytes;
                Err(self.missing())
            }
        }
    }
}
