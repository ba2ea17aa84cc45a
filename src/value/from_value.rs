//! [`FromValue`]: how replies become Rust values.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, Hash};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::resp::Value;

/// A type a reply can be converted into.
///
/// Implemented for [`Value`] (anything), `()` (ignores the reply), `String`, `Bytes`,
/// `Vec<u8>`, integers, floats, `bool`, `Option<T>` (nil is `None`), `Vec<T>`, `HashSet`,
/// `BTreeSet`, `HashMap`, `BTreeMap` (from a RESP3 map or a RESP2 flat array of pairs) and
/// tuples. An error value nested in the reply becomes [`Error`] with
/// [`server_error`](Error::server_error) set. RESP3 attributes are skipped.
pub trait FromValue: Sized {
    /// Converts a reply.
    fn from_value(value: Value) -> Result<Self>;

    /// Converts the elements of an array reply. Pairs override this to also accept a flat
    /// `[k1, v1, k2, v2]` array, the RESP2 shape of maps.
    #[doc(hidden)]
    fn from_items(items: Vec<Value>) -> Result<Vec<Self>> {
        items.into_iter().map(Self::from_value).collect()
    }

    /// Converts the pairs of a RESP3 map. Pairs take them as they are; other types read
    /// them flattened, as RESP2 would have sent them.
    #[doc(hidden)]
    fn from_pairs(pairs: Vec<(Value, Value)>) -> Result<Vec<Self>> {
        pairs
            .into_iter()
            .flat_map(|(k, v)| [k, v])
            .map(Self::from_value)
            .collect()
    }
}

pub(crate) fn unexpected<T>(value: &Value, wanted: &str) -> Result<T> {
    if let Value::Error(e) = value {
        return Err(e.clone().into());
    }
    Err(Error::type_error(format!(
        "cannot read {} reply as {wanted}",
        value.kind_name()
    )))
}

/// Strips attributes, which annotate a value without changing it.
fn plain(value: Value) -> Value {
    match value {
        Value::Attribute { value, .. } => plain(*value),
        v => v,
    }
}

impl FromValue for Value {
    fn from_value(value: Value) -> Result<Self> {
        Ok(value)
    }
}

impl FromValue for () {
    fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Error(e) => Err(e.into()),
            _ => Ok(()),
        }
    }
}

fn text_bytes(value: Value, wanted: &str) -> Result<Bytes> {
    match plain(value) {
        Value::Bulk(b)
        | Value::Simple(b)
        | Value::BigNumber(b)
        | Value::Verbatim { text: b, .. } => Ok(b),
        Value::Int(n) => Ok(Bytes::from(n.to_string())),
        Value::Double(d) => Ok(Bytes::from(ryu::Buffer::new().format(d).to_owned())),
        other => unexpected(&other, wanted),
    }
}

impl FromValue for Bytes {
    fn from_value(value: Value) -> Result<Self> {
        text_bytes(value, "bytes")
    }
}

impl FromValue for Vec<u8> {
    fn from_value(value: Value) -> Result<Self> {
        text_bytes(value, "bytes").map(Vec::from)
    }
}

impl FromValue for String {
    fn from_value(value: Value) -> Result<Self> {
        let bytes = text_bytes(value, "a string")?;
        if super::serialized::looks_serialized(&bytes) {
            return Err(super::serialized::read_as_plain("a String"));
        }
        String::from_utf8(bytes.into())
            .map_err(|_| Error::type_error("reply is not valid UTF-8; read it as Bytes or Vec<u8>"))
    }
}

fn parse_text<T: std::str::FromStr>(bytes: &[u8], wanted: &str) -> Result<T> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            if super::serialized::looks_serialized(bytes) {
                return super::serialized::read_as_plain(wanted);
            }
            Error::type_error(format!(
                "cannot read {:?} as {wanted}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
            ))
        })
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self> {
                match plain(value) {
                    Value::Int(n) => <$t>::try_from(n).map_err(|_| {
                        Error::type_error(format!("{n} does not fit in {}", stringify!($t)))
                    }),
                    Value::Bulk(b) | Value::Simple(b) | Value::BigNumber(b) => {
                        parse_text(&b, stringify!($t))
                    }
                    Value::Bool(b) => Ok(<$t>::from(b)),
                    other => unexpected(&other, stringify!($t)),
                }
            }
        }
    )*};
}
int_from_value!(i8, i16, i32, i64, i128, isize, u16, u32, u64, u128, usize);

macro_rules! float_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> Result<Self> {
                match plain(value) {
                    Value::Double(d) => Ok(d as $t),
                    Value::Int(n) => Ok(n as $t),
                    Value::Bulk(b) | Value::Simple(b) | Value::BigNumber(b) => {
                        parse_text(&b, stringify!($t))
                    }
                    other => unexpected(&other, stringify!($t)),
                }
            }
        }
    )*};
}
float_from_value!(f32, f64);

impl FromValue for bool {
    fn from_value(value: Value) -> Result<Self> {
        match plain(value) {
            Value::Bool(b) => Ok(b),
            // OK-or-nil replies (SET NX, ...): nil means the command did nothing.
            Value::Nil => Ok(false),
            Value::Int(0) => Ok(false),
            Value::Int(1) => Ok(true),
            Value::Simple(s) if &s[..] == b"OK" => Ok(true),
            Value::Bulk(b) | Value::Simple(b) if &b[..] == b"1" => Ok(true),
            Value::Bulk(b) | Value::Simple(b) if &b[..] == b"0" => Ok(false),
            other => unexpected(&other, "bool"),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(value: Value) -> Result<Self> {
        match plain(value) {
            Value::Nil => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// The elements of any sequence-shaped reply.
fn seq<T: FromValue>(value: Value, wanted: &str) -> Result<Vec<T>> {
    match plain(value) {
        Value::Array(items) | Value::Set(items) | Value::Push(items) => T::from_items(items),
        Value::Map(pairs) => T::from_pairs(pairs),
        Value::Nil => Ok(Vec::new()),
        other => unexpected(&other, wanted),
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> Result<Self> {
        seq(value, "a list")
    }
}

impl<T: FromValue + Eq + Hash, S: BuildHasher + Default> FromValue for HashSet<T, S> {
    fn from_value(value: Value) -> Result<Self> {
        seq::<T>(value, "a set").map(|v| v.into_iter().collect())
    }
}

impl<T: FromValue + Ord> FromValue for BTreeSet<T> {
    fn from_value(value: Value) -> Result<Self> {
        seq::<T>(value, "a set").map(|v| v.into_iter().collect())
    }
}

impl<K: FromValue + Eq + Hash, V: FromValue, S: BuildHasher + Default> FromValue
    for HashMap<K, V, S>
{
    fn from_value(value: Value) -> Result<Self> {
        seq::<(K, V)>(value, "a map").map(|v| v.into_iter().collect())
    }
}

impl<K: FromValue + Ord, V: FromValue> FromValue for BTreeMap<K, V> {
    fn from_value(value: Value) -> Result<Self> {
        seq::<(K, V)>(value, "a map").map(|v| v.into_iter().collect())
    }
}

impl<A: FromValue, B: FromValue> FromValue for (A, B) {
    fn from_value(value: Value) -> Result<Self> {
        match plain(value) {
            Value::Array(items) if items.len() == 2 => {
                let mut it = items.into_iter();
                Ok((
                    A::from_value(it.next().unwrap_or(Value::Nil))?,
                    B::from_value(it.next().unwrap_or(Value::Nil))?,
                ))
            }
            Value::Map(pairs) if pairs.len() == 1 => {
                let (k, v) = pairs.into_iter().next().unwrap_or((Value::Nil, Value::Nil));
                Ok((A::from_value(k)?, B::from_value(v)?))
            }
            other => unexpected(&other, "a pair"),
        }
    }

    fn from_items(items: Vec<Value>) -> Result<Vec<Self>> {
        let nested = items
            .iter()
            .all(|v| matches!(v, Value::Array(a) if a.len() == 2));
        if nested {
            return items.into_iter().map(Self::from_value).collect();
        }
        if items.len() % 2 != 0 {
            return Err(Error::type_error(format!(
                "cannot read an array of {} elements as pairs",
                items.len()
            )));
        }
        let mut out = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((A::from_value(k)?, B::from_value(v)?));
        }
        Ok(out)
    }

    fn from_pairs(pairs: Vec<(Value, Value)>) -> Result<Vec<Self>> {
        pairs
            .into_iter()
            .map(|(k, v)| Ok((A::from_value(k)?, B::from_value(v)?)))
            .collect()
    }
}

macro_rules! tuple_from_value {
    ($n:literal: $($name:ident)+) => {
        impl<$($name: FromValue),+> FromValue for ($($name,)+) {
            fn from_value(value: Value) -> Result<Self> {
                match plain(value) {
                    Value::Array(items) if items.len() == $n => {
                        let mut it = items.into_iter();
                        Ok(($($name::from_value(it.next().unwrap_or(Value::Nil))?,)+))
                    }
                    other => unexpected(&other, concat!("a tuple of ", $n)),
                }
            }
        }
    };
}
tuple_from_value!(1: A);
tuple_from_value!(3: A B C);
tuple_from_value!(4: A B C D);
tuple_from_value!(5: A B C D E);
tuple_from_value!(6: A B C D E F);
tuple_from_value!(7: A B C D E F G);
tuple_from_value!(8: A B C D E F G H);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServerError;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn scalars_convert_from_every_reasonable_shape() {
        assert_eq!(i64::from_value(bulk("42")).unwrap(), 42);
        assert_eq!(
            u8::try_from(u16::from_value(Value::Int(7)).unwrap()).unwrap(),
            7
        );
        assert!(u16::from_value(Value::Int(-1)).unwrap_err().is_type());
        assert_eq!(f64::from_value(bulk("1.5")).unwrap(), 1.5);
        assert_eq!(f64::from_value(Value::Double(2.0)).unwrap(), 2.0);
        assert!(bool::from_value(Value::Simple("OK".into())).unwrap());
        assert_eq!(String::from_value(Value::Int(3)).unwrap(), "3");
        assert_eq!(Option::<String>::from_value(Value::Nil).unwrap(), None);
        assert!(String::from_value(Value::Nil).unwrap_err().is_type());
        assert!(i64::from_value(bulk("x")).unwrap_err().is_type());
        assert!(
            String::from_value(Value::Bulk(vec![0xff].into()))
                .unwrap_err()
                .is_type()
        );
    }

    #[test]
    fn maps_read_from_resp3_maps_and_resp2_flat_arrays() {
        let flat = Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]);
        let map = Value::Map(vec![(bulk("a"), Value::Int(1)), (bulk("b"), Value::Int(2))]);
        let want: BTreeMap<String, i64> = [("a".into(), 1), ("b".into(), 2)].into();
        assert_eq!(
            BTreeMap::<String, i64>::from_value(flat.clone()).unwrap(),
            want
        );
        assert_eq!(
            BTreeMap::<String, i64>::from_value(map.clone()).unwrap(),
            want
        );
        assert_eq!(
            HashMap::<String, i64>::from_value(map).unwrap(),
            want.clone().into_iter().collect()
        );
        assert_eq!(
            Vec::<(String, i64)>::from_value(flat).unwrap(),
            want.into_iter().collect::<Vec<_>>()
        );
    }

    #[test]
    fn nested_errors_surface_as_server_errors() {
        let v = Value::Array(vec![
            Value::Int(1),
            Value::Error(ServerError::new("WRONGTYPE x")),
        ]);
        let err = Vec::<i64>::from_value(v).unwrap_err();
        assert_eq!(err.server_error().unwrap().code(), "WRONGTYPE");
    }

    #[test]
    fn tuples_and_sets() {
        let v = Value::Array(vec![bulk("a"), Value::Int(1), Value::Nil]);
        let t: (String, i64, Option<String>) = FromValue::from_value(v).unwrap();
        assert_eq!(t, ("a".into(), 1, None));
        let s = HashSet::<String>::from_value(Value::Set(vec![bulk("x"), bulk("y")])).unwrap();
        assert_eq!(s.len(), 2);
    }
}
