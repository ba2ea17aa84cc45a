//! `Value`: one RESP2 or RESP3 frame, decoded.

use bytes::Bytes;

use crate::error::ServerError;

/// A reply from the server: any RESP2 or RESP3 frame.
///
/// Strings are [`Bytes`] that share the connection's read buffer, so reading a reply copies
/// nothing. Convert to Rust types with [`FromValue`](crate::FromValue), or match on it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// RESP2 null bulk string or null array, RESP3 null (`_`).
    Nil,
    /// A simple string (`+OK`).
    Simple(Bytes),
    /// A bulk string (`$`): binary-safe.
    Bulk(Bytes),
    /// An integer (`:`).
    Int(i64),
    /// An array (`*`).
    Array(Vec<Value>),
    /// An error reply (`-` or RESP3 blob error `!`). A failed command returns it as
    /// [`Error`](crate::Error); inside arrays (EXEC, pipelines) it stays a value.
    Error(ServerError),
    /// RESP3 map (`%`), in the order the server sent it.
    Map(Vec<(Value, Value)>),
    /// RESP3 set (`~`).
    Set(Vec<Value>),
    /// RESP3 double (`,`).
    Double(f64),
    /// RESP3 boolean (`#t` / `#f`).
    Bool(bool),
    /// RESP3 big number (`(`), as its decimal digits.
    BigNumber(Bytes),
    /// RESP3 verbatim string (`=`): a three-letter format (`txt`, `mkd`) and the text.
    Verbatim {
        /// The format, e.g. `txt`.
        format: [u8; 3],
        /// The text.
        text: Bytes,
    },
    /// RESP3 push (`>`): out-of-band data such as pub/sub messages and invalidations.
    Push(Vec<Value>),
    /// RESP3 attribute (`|`): metadata the server attached to the value that follows.
    Attribute {
        /// Key/value pairs of metadata.
        attributes: Vec<(Value, Value)>,
        /// The value the attributes describe.
        value: Box<Value>,
    },
}

impl Value {
    /// A short name of the variant, for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Simple(_) => "simple string",
            Value::Bulk(_) => "bulk string",
            Value::Int(_) => "integer",
            Value::Array(_) => "array",
            Value::Error(_) => "error",
            Value::Map(_) => "map",
            Value::Set(_) => "set",
            Value::Double(_) => "double",
            Value::Bool(_) => "boolean",
            Value::BigNumber(_) => "big number",
            Value::Verbatim { .. } => "verbatim string",
            Value::Push(_) => "push",
            Value::Attribute { .. } => "attribute",
        }
    }

    /// True for [`Value::Nil`].
    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// The string payload of a simple, bulk or verbatim string.
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match self {
            Value::Simple(b) | Value::Bulk(b) | Value::Verbatim { text: b, .. } => Some(b),
            _ => None,
        }
    }
}
