//! Typed shapes of replies that tuples and maps do not read well: stream entries and GEO
//! search results. The generated docs name them as the natural type of XRANGE, XREAD,
//! XCLAIM, GEOSEARCH, GEORADIUS...; like any [`FromValue`] type they are chosen by the
//! binding: `let entries: Vec<StreamEntry> = client.xrange("s", "-", "+").await?`.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::resp::Value;
use crate::value::FromValue;

/// One entry of a stream: its ID and its field-value pairs in the order they were added.
/// A deleted entry that XCLAIM or XAUTOCLAIM still names has no fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEntry {
    /// The entry's ID (`1700000000000-0`).
    pub id: Bytes,
    /// Field-value pairs, in order.
    pub fields: Vec<(Bytes, Bytes)>,
}

impl StreamEntry {
    /// The value of `field`, if the entry has it.
    pub fn get(&self, field: &str) -> Option<&Bytes> {
        self.fields
            .iter()
            .find(|(f, _)| f == field.as_bytes())
            .map(|(_, v)| v)
    }
}

impl FromValue for StreamEntry {
    fn from_value(value: Value) -> Result<Self> {
        let (id, fields): (Bytes, Option<Vec<(Bytes, Bytes)>>) = FromValue::from_value(value)
            .map_err(|e| Error::type_error(format!("not a stream entry: {e}")))?;
        Ok(StreamEntry {
            id,
            fields: fields.unwrap_or_default(),
        })
    }
}

/// One member found by GEOSEARCH or GEORADIUS, with what the command was asked to add:
/// `WITHDIST` fills `distance` (in the query's unit), `WITHHASH` `hash`, `WITHCOORD`
/// `coordinates` (longitude, latitude). Without any of them the reply is the bare names,
/// which read as `GeoMember`s too (or as `Vec<Bytes>`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GeoMember {
    /// The member.
    pub name: Bytes,
    /// Its distance from the centre, with `WITHDIST`.
    pub distance: Option<f64>,
    /// Its geohash as an integer, with `WITHHASH`.
    pub hash: Option<i64>,
    /// Its longitude and latitude, with `WITHCOORD`.
    pub coordinates: Option<(f64, f64)>,
}

impl FromValue for GeoMember {
    fn from_value(value: Value) -> Result<Self> {
        let items = match value {
            Value::Array(items) => items,
            // A bare name: no WITH option.
            other => {
                return Ok(GeoMember {
                    name: Bytes::from_value(other)?,
                    distance: None,
                    hash: None,
                    coordinates: None,
                });
            }
        };
        let mut it = items.into_iter();
        let name = Bytes::from_value(it.next().unwrap_or(Value::Nil))?;
        let mut member = GeoMember {
            name,
            distance: None,
            hash: None,
            coordinates: None,
        };
        // The server adds them in this order, each only when asked for; their kinds tell
        // them apart (a distance is text in RESP2 and a double in RESP3, the hash an
        // integer, the coordinates a pair).
        for v in it {
            match v {
                Value::Int(h) => member.hash = Some(h),
                Value::Array(_) => member.coordinates = Some(FromValue::from_value(v)?),
                v => member.distance = Some(f64::from_value(v)?),
            }
        }
        Ok(member)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn entries_read_with_or_without_fields() {
        let e = StreamEntry::from_value(Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("a"), bulk("1"), bulk("b"), bulk("2")]),
        ]))
        .unwrap();
        assert_eq!(e.id, "1-0");
        assert_eq!(e.get("b").map(|v| &v[..]), Some(&b"2"[..]));
        let deleted = StreamEntry::from_value(Value::Array(vec![bulk("2-0"), Value::Nil])).unwrap();
        assert!(deleted.fields.is_empty());
        assert!(
            StreamEntry::from_value(Value::Int(1))
                .unwrap_err()
                .is_type()
        );
    }

    #[test]
    fn geo_members_read_each_option_by_its_kind() {
        let m = GeoMember::from_value(Value::Array(vec![
            bulk("rome"),
            bulk("12.5"),
            Value::Int(3479099956230698),
            Value::Array(vec![bulk("12.49"), bulk("41.89")]),
        ]))
        .unwrap();
        assert_eq!(m.name, "rome");
        assert_eq!(m.distance, Some(12.5));
        assert_eq!(m.hash, Some(3479099956230698));
        assert_eq!(m.coordinates, Some((12.49, 41.89)));
        let bare = GeoMember::from_value(bulk("paris")).unwrap();
        assert_eq!((bare.name, bare.distance), (Bytes::from("paris"), None));
        let resp3 =
            GeoMember::from_value(Value::Array(vec![bulk("x"), Value::Double(0.5)])).unwrap();
        assert_eq!(resp3.distance, Some(0.5));
    }
}
