//! Values as OTTL sees them, and the Collector's comparison rules.
//!
//! A path, literal or converter yields a [`Value`]; editors take them. The variants are the Go types the
//! Collector's getters return (`string`, `int64`, `float64`, `bool`, `[]byte`, `pcommon.Map`,
//! `pcommon.Slice`, `pcommon.TraceID`, `pcommon.SpanID`, `time.Time`, `time.Duration`, `nil`), so that
//! comparisons and type checks behave as there.

use std::cmp::Ordering;

/// A value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Value {
    /// `nil`, and an attribute that is absent or has no value.
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Bytes(Vec<u8>),
    /// An attribute map; keys keep their order, and lookups take the first match (as `pcommon.Map`).
    Map(Vec<(String, Value)>),
    List(Vec<Value>),
    TraceId([u8; 16]),
    SpanId([u8; 8]),
    /// A profile id (`ProfileID(0x…)`), a 16-byte array of its own type in the Collector.
    ProfileId([u8; 16]),
    /// Nanoseconds since the Unix epoch.
    Time(i64),
    /// Nanoseconds.
    Duration(i64),
}

pub use crate::ast::CompareOp;

// === impl Value ===

/// A time as RFC 3339 with nanoseconds and trailing zeros dropped, in UTC (Go's `time.RFC3339Nano`).
pub fn rfc3339_nano(unix_nanos: i64) -> String {
    let Ok(t) = ::time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_nanos)) else {
        return unix_nanos.to_string();
    };
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

impl Value {
    /// The type's name as the Collector's messages spell it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Nil => "nil",
            Self::Bool(_) => "bool",
            Self::Int(_) => "int64",
            Self::Float(_) => "float64",
            Self::String(_) => "string",
            Self::Bytes(_) => "[]byte",
            Self::Map(_) => "pcommon.Map",
            Self::List(_) => "pcommon.Slice",
            Self::TraceId(_) => "pcommon.TraceID",
            Self::SpanId(_) => "pcommon.SpanID",
            Self::ProfileId(_) => "pprofile.ProfileID",
            Self::Time(_) => "time.Time",
            Self::Duration(_) => "time.Duration",
        }
    }

    /// Whether the value can be stored in an attribute (`ctxutil.SetValue` leaves an attribute as it was
    /// for the others: times, durations and ids).
    pub fn is_attribute_value(&self) -> bool {
        !matches!(
            self,
            Self::Time(_) | Self::Duration(_) | Self::TraceId(_) | Self::SpanId(_) | Self::ProfileId(_)
        )
    }

    /// The first value under `key` of a map.
    pub fn map_get<'a>(entries: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
        entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Compares two values with the Collector's rules: `nil` equals only `nil`; integers and floats
    /// compare across types; strings, bytes, bools, times and durations order within their type; maps
    /// and lists only compare for equality; any other pair is unequal and unordered (`!=` is true,
    /// every other operator false).
    pub fn compare(&self, other: &Value, op: CompareOp) -> bool {
        use Value::*;
        if let String(a) = self {
            return compare_str(a, other, op);
        }
        let ordering = match (self, other) {
            (Nil, Nil) => Some(Ordering::Equal),
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Int(a), Float(b)) => (*a as f64).partial_cmp(b),
            (Float(a), Int(b)) => a.partial_cmp(&(*b as f64)),
            (Float(a), Float(b)) => a.partial_cmp(b),
            (Bytes(a), Bytes(b)) => Some(a.cmp(b)),
            (Time(a), Time(b)) | (Duration(a), Duration(b)) => Some(a.cmp(b)),
            // Equality only.
            (Map(_), Map(_))
            | (List(_), List(_))
            | (TraceId(_), TraceId(_))
            | (SpanId(_), SpanId(_))
            | (ProfileId(_), ProfileId(_)) => {
                return match op {
                    CompareOp::Eq => deep_equal(self, other),
                    CompareOp::Ne => !deep_equal(self, other),
                    _ => false,
                };
            }
            _ => None,
        };
        verdict(ordering, op)
    }
}

// === free functions ===

/// `Value::String(a).compare(other, op)` for a borrowed string: what accessors over encoded data
/// use to compare a field in place, without copying it out.
pub fn compare_str(a: &str, other: &Value, op: CompareOp) -> bool {
    compare_utf8(a.as_bytes(), other, op)
}

/// [`compare_str`] for a string's UTF-8 encoding, for accessors whose input was checked to be UTF-8
/// already: strings order as their bytes do (as Go's do), so nothing needs decoding.
pub fn compare_utf8(a: &[u8], other: &Value, op: CompareOp) -> bool {
    // Equality, the usual test, compares the lengths before any byte.
    match (other, op) {
        (Value::String(b), CompareOp::Eq) => return a == b.as_bytes(),
        (Value::String(b), CompareOp::Ne) => return a != b.as_bytes(),
        _ => {}
    }
    let ordering = match other {
        Value::String(b) => Some(a.cmp(b.as_bytes())),
        _ => None,
    };
    verdict(ordering, op)
}

/// `Value::Int(a).compare(other, op)` without making the value: for accessors that read an int
/// (an enum, a count) where it lies.
pub fn compare_int(a: i64, other: &Value, op: CompareOp) -> bool {
    let ordering = match other {
        Value::Int(b) => Some(a.cmp(b)),
        Value::Float(b) => (a as f64).partial_cmp(b),
        _ => None,
    };
    verdict(ordering, op)
}

/// `Value::Nil.compare(other, op)`: what an absent attribute compares as.
pub fn compare_nil(other: &Value, op: CompareOp) -> bool {
    verdict(matches!(other, Value::Nil).then_some(Ordering::Equal), op)
}

/// What `op` says of two values that compared as `ordering` (`None`: not comparable).
fn verdict(ordering: Option<Ordering>, op: CompareOp) -> bool {
    match ordering {
        // A NaN compares unequal to everything, as in Go; so do values of different types.
        None => op == CompareOp::Ne,
        Some(o) => match op {
            CompareOp::Eq => o == Ordering::Equal,
            CompareOp::Ne => o != Ordering::Equal,
            CompareOp::Lt => o == Ordering::Less,
            CompareOp::Le => o != Ordering::Greater,
            CompareOp::Gt => o == Ordering::Greater,
            CompareOp::Ge => o != Ordering::Less,
        },
    }
}

/// Equality of maps and lists as `pcommon.Map.Equal` / `Slice.Equal`: same size, each key's (first)
/// value equal whatever the order of keys, list items equal in order, values of the same type (an int
/// never equals a float here).
fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter().all(|(k, v)| Value::map_get(b, k).is_some_and(|w| deep_equal(v, w)))
        }
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| deep_equal(v, w))
        }
        (Value::Float(a), Value::Float(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::CompareOp::*;
    use super::Value::*;
    use super::*;

    /// Scenario: the Collector's comparison table (compare_test.go) over every pair of kinds.
    /// Guarantees: nil equals only nil, numbers compare across int and float, mismatched types are
    /// unequal and unordered, maps and lists compare by content for equality only, bools order false
    /// before true.
    #[test]
    fn comparison_rules() {
        let map = |v: i64| Map(vec![("a".into(), Int(v))]);
        let cases: &[(Value, Value, CompareOp, bool)] = &[
            (Nil, Nil, Eq, true),
            (Nil, Nil, Le, true),
            (Nil, Nil, Lt, false),
            (Nil, String("".into()), Eq, false),
            (Nil, String("".into()), Ne, true),
            (String("".into()), Nil, Ge, false),
            (Int(1), Float(1.0), Eq, true),
            (Float(0.5), Int(1), Lt, true),
            (Int(2), Int(10), Lt, true),
            (String("2".into()), String("10".into()), Lt, false),
            (String("a".into()), Int(1), Eq, false),
            (String("a".into()), Int(1), Ne, true),
            (String("a".into()), Int(1), Lt, false),
            (Bool(false), Bool(true), Lt, true),
            (Bool(true), Bool(true), Ge, true),
            (Bytes(vec![1]), Bytes(vec![1, 0]), Lt, true),
            (map(1), map(1), Eq, true),
            (map(1), map(2), Ne, true),
            (map(1), map(1), Le, false),
            (Map(vec![("a".into(), Int(1))]), Map(vec![("a".into(), Float(1.0))]), Eq, false),
            (List(vec![Int(1)]), List(vec![Int(1)]), Eq, true),
            (TraceId([1; 16]), TraceId([1; 16]), Eq, true),
            (TraceId([1; 16]), Bytes(vec![1; 16]), Eq, false),
            (SpanId([1; 8]), SpanId([2; 8]), Lt, false),
            (Time(5), Time(6), Lt, true),
            (Duration(5), Time(6), Lt, false),
            (Float(f64::NAN), Float(f64::NAN), Eq, false),
            (Float(f64::NAN), Float(f64::NAN), Ne, true),
        ];
        for (a, b, op, want) in cases {
            assert_eq!(a.compare(b, *op), *want, "{a:?} {op:?} {b:?}");
        }
    }

    /// Scenario: an int and nil compared against every kind of value under every operator, by the
    /// borrowed helpers and as values. Guarantees: `compare_int` and `compare_nil` say what
    /// `Value::compare` says, so accessors may use them in its place.
    #[test]
    fn int_and_nil_helpers_agree_with_values() {
        let others = [
            Nil,
            Int(-3),
            Int(2),
            Float(2.0),
            Float(2.5),
            Float(f64::NAN),
            String("2".into()),
            Bool(true),
            Bytes(vec![2]),
            Map(Vec::new()),
            List(Vec::new()),
            Time(2),
        ];
        for other in &others {
            for op in [Eq, Ne, Lt, Le, Gt, Ge] {
                for a in [-3, 0, 2, i64::MAX] {
                    assert_eq!(compare_int(a, other, op), Int(a).compare(other, op), "{a} {op:?} {other:?}");
                }
                assert_eq!(compare_nil(other, op), Nil.compare(other, op), "nil {op:?} {other:?}");
            }
        }
    }
}
