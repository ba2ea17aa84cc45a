//! RESP2 and RESP3: frames, the decoder with its limits, the encoder. No I/O happens here.

mod codec;
mod decode;
mod encode;
mod limits;
mod value;

pub use codec::RespCodec;
pub use encode::encode_value;
pub(crate) use encode::{array_header, bulk_string};
pub use limits::Limits;
pub use value::Value;

#[cfg(test)]
mod tests;
