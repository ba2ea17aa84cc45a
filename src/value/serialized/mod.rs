//! Rich values through serde: [`Serde<T>`] and [`ValueCodec`], with a header that tells
//! serialized values from plain strings, and optional compression and encryption.

mod format;
mod header;
mod transform;

use std::sync::{Arc, LazyLock, RwLock};

use bytes::Bytes;
use serde::Serialize;
use serde::de::{DeserializeOwned, IntoDeserializer};

pub use format::Format;
use header::Header;
pub(crate) use header::{looks_serialized, read_as_plain};
pub use transform::{Cipher, Compression};

use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::{ArgBuf, FromValue, ToArgs};

/// How values are serialized, compressed and encrypted. Reading accepts any mix: plain,
/// compressed and encrypted values, in any format this build has, as recorded in each
/// value's header (an encrypted one needs this codec's key).
///
/// ```
/// use kermes::{ValueCodec, Format};
///
/// let codec = ValueCodec::new().format(Format::MessagePack);
/// let frozen = codec.freeze(&vec![1u32, 2, 3]).unwrap();
/// let back: Vec<u32> = codec.thaw(frozen.as_bytes()).unwrap();
/// assert_eq!(back, [1, 2, 3]);
/// ```
#[derive(Debug, Clone)]
pub struct ValueCodec {
    format: Format,
    compression: Option<Compression>,
    compress_above: usize,
    cipher: Option<Cipher>,
}

impl Default for ValueCodec {
    fn default() -> Self {
        ValueCodec {
            format: Format::default(),
            compression: None,
            compress_above: 1024,
            cipher: None,
        }
    }
}

static DEFAULT: LazyLock<RwLock<Arc<ValueCodec>>> = LazyLock::new(Default::default);

impl ValueCodec {
    /// MessagePack, no compression, no encryption.
    pub fn new() -> Self {
        Self::default()
    }

    /// The format new values are written in. Default MessagePack.
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Compresses payloads of at least [`compress_above`](Self::compress_above) bytes.
    /// Default none.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// The payload size from which compression applies. Default 1,024 bytes.
    pub fn compress_above(mut self, bytes: usize) -> Self {
        self.compress_above = bytes;
        self
    }

    /// Encrypts new values, and lets encrypted ones be read. Default none.
    pub fn encryption(mut self, cipher: Cipher) -> Self {
        self.cipher = Some(cipher);
        self
    }

    /// Makes this the codec [`Serde<T>`] uses, process-wide.
    pub fn install(self) {
        *DEFAULT.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(self);
    }

    /// The codec [`Serde<T>`] uses now.
    pub fn installed() -> Arc<ValueCodec> {
        DEFAULT.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serializes a value, with its header, ready to store.
    pub fn freeze<T: Serialize + ?Sized>(&self, value: &T) -> Result<Frozen> {
        let mut payload = self.format.serialize(value)?;
        let mut compression = 0;
        if let Some(c) = self.compression
            && payload.len() >= self.compress_above
        {
            payload = c.compress(&payload)?;
            compression = c.id();
        }
        let mut cipher = 0;
        if let Some(c) = &self.cipher {
            payload = c.encrypt(&payload)?;
            cipher = c.id();
        }
        let mut out = Vec::with_capacity(header::LEN + payload.len());
        Header {
            format: self.format.id(),
            compression,
            cipher,
        }
        .write(&mut out);
        out.extend_from_slice(&payload);
        Ok(Frozen(Bytes::from(out)))
    }

    /// Reads a stored value back. A value without the header is plain text: it reads as a
    /// `String`-like `T` (or a unit enum variant by name), and is an error otherwise.
    pub fn thaw<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        let Some((header, payload)) = Header::read(bytes)? else {
            let text = std::str::from_utf8(bytes).map_err(|_| not_serialized())?;
            let plain: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
                text.into_deserializer();
            return T::deserialize(plain).map_err(|_| not_serialized());
        };
        let decrypted;
        let payload = match (header.cipher, &self.cipher) {
            (0, _) => payload,
            (_, None) => {
                return Err(Error::type_error(
                    "value is encrypted, and this codec has no key",
                ));
            }
            (id, Some(c)) => {
                decrypted = c.decrypt(id, payload)?;
                &decrypted[..]
            }
        };
        let plain = transform::decompress(header.compression, payload)?;
        Format::from_id(header.format)?.deserialize(&plain)
    }
}

fn not_serialized() -> Error {
    Error::type_error(
        "value was not written by kermes's serializer (no header); read it as String or Bytes",
    )
}

/// A serialized value with its header, as [`ValueCodec::freeze`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen(Bytes);

impl Frozen {
    /// The stored bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }
}

impl ToArgs for Frozen {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push_bytes(&self.0)
    }
}

/// A value stored through serde with the [installed](ValueCodec::install) codec: any
/// `Serialize` type as an argument, any `DeserializeOwned` type as a reply. `Serde("text")`
/// freezes a string too, so it reads back as the same type.
///
/// ```no_run
/// use kermes::{Serde, prelude::*};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct User { name: String, tags: Vec<String> }
///
/// # async fn demo(client: Client) -> kermes::Result<()> {
/// client.set("user:1", Serde(User { name: "ann".into(), tags: vec![] })).await?;
/// let Serde(user): Serde<User> = client.get("user:1").to().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Serde<T>(pub T);

impl<T: Serialize> ToArgs for Serde<T> {
    fn write_args(&self, out: &mut ArgBuf) {
        match ValueCodec::installed().freeze(&self.0) {
            Ok(frozen) => out.push_bytes(&frozen.0),
            Err(e) => out.fail(e),
        }
    }
}

impl<T: DeserializeOwned> FromValue for Serde<T> {
    fn from_value(value: Value) -> Result<Self> {
        let bytes = Bytes::from_value(value)?;
        ValueCodec::installed().thaw(&bytes).map(Serde)
    }
}

/// Bytes exactly as stored, header or not: the escape hatch from [`Serde`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Raw(pub Bytes);

impl ToArgs for Raw {
    fn write_args(&self, out: &mut ArgBuf) {
        out.push_bytes(&self.0)
    }
}

impl FromValue for Raw {
    fn from_value(value: Value) -> Result<Self> {
        Bytes::from_value(value).map(Raw)
    }
}
