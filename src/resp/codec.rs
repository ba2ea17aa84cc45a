//! [`RespCodec`]: the `tokio_util::codec` adapter over the decoder and encoder.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::decode::{ScanState, decode_flat, parse, scan};
use super::{Limits, Value, encode_value};
use crate::error::Error;

/// Decodes RESP2/RESP3 frames into [`Value`]s and encodes values, within [`Limits`].
///
/// Cancel safety and partial input: a frame split across any number of reads decodes the same
/// as one read whole; the scan resumes where it stopped rather than starting over.
#[derive(Debug, Default)]
pub struct RespCodec {
    limits: Limits,
    scan: ScanState,
    /// Bytes of the frames decoded so far.
    consumed: u64,
}

impl RespCodec {
    /// A codec with the given limits.
    pub fn new(limits: Limits) -> Self {
        RespCodec {
            limits,
            scan: ScanState::default(),
            consumed: 0,
        }
    }

    /// Bytes of the frames decoded so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }
}

impl Decoder for RespCodec {
    type Item = Value;
    type Error = Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Value>, Error> {
        let before = src.len();
        if self.scan.is_fresh()
            && let Some(value) = decode_flat(src, &self.limits)?
        {
            self.consumed += (before - src.len()) as u64;
            return Ok(Some(value));
        }
        match scan(src, &mut self.scan, &self.limits)? {
            None => Ok(None),
            Some(len) => {
                self.consumed += len as u64;
                parse(&src.split_to(len).freeze()).map(Some)
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Value>, Error> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => Err(Error::closed(format!(
                "connection closed in the middle of a reply ({} bytes of it received)",
                buf.len()
            ))),
        }
    }
}

impl Encoder<&Value> for RespCodec {
    type Error = Error;

    fn encode(&mut self, item: &Value, dst: &mut BytesMut) -> Result<(), Error> {
        encode_value(item, dst);
        Ok(())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io("socket", e)
    }
}
