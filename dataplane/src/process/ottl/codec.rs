//! OTTL values to and from encoded OTLP: `AnyValue`s read into [`Value`]s, and attributes written back.
//!
//! Writes follow the Collector's `SetValue`: strings, numbers, bools, bytes, maps and lists become the
//! matching `AnyValue`, `nil` an empty one; times, durations and ids are not attribute values and leave
//! the attribute as it was.

use bytes::BufMut;
use ottl::value::Value;

use crate::wire::view::{AnyValueView, Attributes, KeyValueView, field, len_fields};
use crate::wire::{len_field_size, put_len_header, put_varint, varint_len};

/// Key of a varint field, for the numbers below 16 that attributes use.
const fn varint_key(number: u32) -> u8 {
    (number as u8) << 3
}

/// Key of a fixed64 field.
const fn fixed64_key(number: u32) -> u8 {
    (number as u8) << 3 | 1
}

// === reading ===

/// A decoded `AnyValue`, nested arrays and maps included.
pub fn value_of(view: AnyValueView<'_>) -> Value {
    match view {
        AnyValueView::Empty => Value::Nil,
        AnyValueView::String(s) => Value::String(s.to_string()),
        AnyValueView::Bool(b) => Value::Bool(b),
        AnyValueView::Int(i) => Value::Int(i),
        AnyValueView::Double(d) => Value::Float(d),
        AnyValueView::Bytes(b) => Value::Bytes(b.to_vec()),
        AnyValueView::Array(raw) => Value::List(
            len_fields(raw, field::list::VALUES).map(|item| value_of(AnyValueView::parse(item))).collect(),
        ),
        AnyValueView::KvList(raw) => Value::Map(map_of(raw, field::list::VALUES)),
    }
}

/// The `KeyValue`s of field `number` of a message, as an ordered map.
pub fn map_of(message: &[u8], number: u32) -> Vec<(String, Value)> {
    Attributes::new(message, number).map(|a| (a.kv.key.to_string(), value_of(a.kv.value))).collect()
}

/// The first attribute with `key` among the `KeyValue`s of field `number` (`pcommon.Map.Get`); only
/// the matching one has its value read.
pub fn lookup<'a>(message: &'a [u8], number: u32, key: &str) -> Option<KeyValueView<'a>> {
    len_fields(message, number).find(|kv| super::work::key_of(kv) == key).map(KeyValueView::parse)
}

// === writing ===

/// Encoded size of an `AnyValue` holding `value`.
pub fn any_value_len(value: &Value) -> usize {
    use field::any_value::*;
    match value {
        Value::Nil
        | Value::Time(_)
        | Value::Duration(_)
        | Value::TraceId(_)
        | Value::SpanId(_)
        | Value::ProfileId(_) => 0,
        Value::String(s) => len_field_size(STRING, s.len()),
        Value::Bool(_) => 2,
        Value::Int(i) => 1 + varint_len(*i as u64),
        Value::Float(_) => 9,
        Value::Bytes(b) => len_field_size(BYTES, b.len()),
        Value::List(items) => {
            len_field_size(ARRAY, items.iter().map(|v| len_field_size(1, any_value_len(v))).sum())
        }
        Value::Map(entries) => len_field_size(KVLIST, map_len(entries, field::list::VALUES)),
    }
}

/// Encoded size of a `KeyValue`.
pub fn key_value_len(key: &str, value: &Value) -> usize {
    len_field_size(field::key_value::KEY, key.len())
        + len_field_size(field::key_value::VALUE, any_value_len(value))
}

/// Encoded size of a map as repeated `KeyValue` field `number`.
pub fn map_len(entries: &[(String, Value)], number: u32) -> usize {
    entries.iter().map(|(k, v)| len_field_size(number, key_value_len(k, v))).sum()
}

/// Writes an `AnyValue`'s content.
pub fn put_any_value(out: &mut impl BufMut, value: &Value) {
    use field::any_value::*;
    match value {
        Value::Nil
        | Value::Time(_)
        | Value::Duration(_)
        | Value::TraceId(_)
        | Value::SpanId(_)
        | Value::ProfileId(_) => {}
        Value::String(s) => {
            put_len_header(out, STRING, s.len());
            out.put_slice(s.as_bytes());
        }
        Value::Bool(b) => {
            out.put_u8(varint_key(BOOL));
            out.put_u8(u8::from(*b));
        }
        Value::Int(i) => {
            out.put_u8(varint_key(INT));
            put_varint(out, *i as u64);
        }
        Value::Float(f) => {
            out.put_u8(fixed64_key(DOUBLE));
            out.put_f64_le(*f);
        }
        Value::Bytes(b) => {
            put_len_header(out, BYTES, b.len());
            out.put_slice(b);
        }
        Value::List(items) => {
            put_len_header(out, ARRAY, items.iter().map(|v| len_field_size(1, any_value_len(v))).sum());
            for item in items {
                put_len_header(out, field::list::VALUES, any_value_len(item));
                put_any_value(out, item);
            }
        }
        Value::Map(entries) => {
            put_len_header(out, KVLIST, map_len(entries, field::list::VALUES));
            put_map(out, entries, field::list::VALUES);
        }
    }
}

/// Writes one `KeyValue` as field `number`.
pub fn put_key_value(out: &mut impl BufMut, number: u32, key: &str, value: &Value) {
    put_len_header(out, number, key_value_len(key, value));
    put_key_value_body(out, key, value);
}

/// Writes a `KeyValue`'s content (without a field header).
pub fn put_key_value_body(out: &mut impl BufMut, key: &str, value: &Value) {
    put_len_header(out, field::key_value::KEY, key.len());
    out.put_slice(key.as_bytes());
    put_len_header(out, field::key_value::VALUE, any_value_len(value));
    put_any_value(out, value);
}

/// Writes a map as repeated `KeyValue` field `number`.
pub fn put_map(out: &mut impl BufMut, entries: &[(String, Value)], number: u32) {
    for (k, v) in entries {
        put_key_value(out, number, k, v);
    }
}
