//! Conversions between Rust values and Redis: [`ToArgs`] for arguments, [`FromValue`] for
//! replies.

mod arg_pool;
mod from_value;
mod serialized;
mod to_args;

pub use from_value::FromValue;
pub use serialized::{Cipher, Compression, Format, Frozen, Raw, Serde, ValueCodec};
pub(crate) use to_args::one_arg;
pub use to_args::{ArgBuf, ToArgs};
