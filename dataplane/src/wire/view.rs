//! Typed, zero-copy readers of the OTLP messages that stages read, with named field numbers.
//!
//! Every stage (enrichment, the Istio noise filter, OTTL) reads spans, resources and attributes through
//! these views instead of walking fields by number itself. They read buffers that [`super::scan`] has
//! validated with prost's rules, so a malformed field cannot occur; a reader that meets one anyway
//! stops there, as if the message ended.
//!
//! Decoder semantics the views keep: the last occurrence of a singular field wins, and a repeated
//! singular message field merges (for `KeyValue.value`: a later `AnyValue` with a value replaces the
//! earlier one's value, an empty one leaves it).

use super::{Field, Fields, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT};

/// Field numbers of the OTLP messages, as `opentelemetry-proto` defines them.
pub mod field {
    /// `opentelemetry.proto.common.v1.KeyValue`.
    pub mod key_value {
        pub const KEY: u32 = 1;
        pub const VALUE: u32 = 2;
    }
    /// `opentelemetry.proto.common.v1.AnyValue` (a oneof).
    pub mod any_value {
        pub const STRING: u32 = 1;
        pub const BOOL: u32 = 2;
        pub const INT: u32 = 3;
        pub const DOUBLE: u32 = 4;
        pub const ARRAY: u32 = 5;
        pub const KVLIST: u32 = 6;
        pub const BYTES: u32 = 7;
    }
    /// `ArrayValue` and `KeyValueList`: both hold their items in field 1.
    pub mod list {
        pub const VALUES: u32 = 1;
    }
    /// `opentelemetry.proto.resource.v1.Resource`.
    pub mod resource {
        pub const ATTRIBUTES: u32 = 1;
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 2;
    }
    /// `opentelemetry.proto.common.v1.InstrumentationScope`.
    pub mod scope {
        pub const NAME: u32 = 1;
        pub const VERSION: u32 = 2;
        pub const ATTRIBUTES: u32 = 3;
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 4;
    }
    /// `opentelemetry.proto.trace.v1.ResourceSpans`.
    pub mod resource_spans {
        pub const RESOURCE: u32 = 1;
        pub const SCOPE_SPANS: u32 = 2;
        pub const SCHEMA_URL: u32 = 3;
    }
    /// `opentelemetry.proto.trace.v1.ScopeSpans`.
    pub mod scope_spans {
        pub const SCOPE: u32 = 1;
        pub const SPANS: u32 = 2;
        pub const SCHEMA_URL: u32 = 3;
    }
    /// `opentelemetry.proto.trace.v1.Span`.
    pub mod span {
        pub const TRACE_ID: u32 = 1;
        pub const SPAN_ID: u32 = 2;
        pub const TRACE_STATE: u32 = 3;
        pub const PARENT_SPAN_ID: u32 = 4;
        pub const NAME: u32 = 5;
        pub const KIND: u32 = 6;
        pub const START_TIME_UNIX_NANO: u32 = 7;
        pub const END_TIME_UNIX_NANO: u32 = 8;
        pub const ATTRIBUTES: u32 = 9;
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 10;
        pub const EVENTS: u32 = 11;
        pub const DROPPED_EVENTS_COUNT: u32 = 12;
        pub const LINKS: u32 = 13;
        pub const DROPPED_LINKS_COUNT: u32 = 14;
        pub const STATUS: u32 = 15;
        pub const FLAGS: u32 = 16;
    }
    /// `Span.Event`.
    pub mod event {
        pub const TIME_UNIX_NANO: u32 = 1;
        pub const NAME: u32 = 2;
        pub const ATTRIBUTES: u32 = 3;
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 4;
    }
    /// `Span.Link`.
    pub mod link {
        pub const TRACE_ID: u32 = 1;
        pub const SPAN_ID: u32 = 2;
        pub const TRACE_STATE: u32 = 3;
        pub const ATTRIBUTES: u32 = 4;
        pub const DROPPED_ATTRIBUTES_COUNT: u32 = 5;
        pub const FLAGS: u32 = 6;
    }
    /// `opentelemetry.proto.trace.v1.Status`.
    pub mod status {
        pub const MESSAGE: u32 = 2;
        pub const CODE: u32 = 3;
    }
}

/// An `AnyValue` as encoded. Nested arrays and maps stay encoded until someone reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum AnyValueView<'a> {
    /// No value: the field is absent or the `AnyValue` has none of its oneof fields.
    #[default]
    Empty,
    String(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    /// Encoded `ArrayValue` content.
    Array(&'a [u8]),
    /// Encoded `KeyValueList` content.
    KvList(&'a [u8]),
    Bytes(&'a [u8]),
}

/// A `KeyValue` as encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KeyValueView<'a> {
    /// The key; empty when absent.
    pub key: &'a str,
    pub value: AnyValueView<'a>,
}

/// One attribute of a message: the `KeyValue` and the byte range of its whole field (key and length
/// included) in that message, so a stage can cut it out.
#[derive(Clone, Copy, Debug)]
pub struct Attribute<'a> {
    pub kv: KeyValueView<'a>,
    pub start: usize,
    pub end: usize,
}

/// The `KeyValue`s in one repeated field of a message, in order.
pub struct Attributes<'a> {
    buf: &'a [u8],
    fields: Fields<'a>,
    number: u32,
}

// === impl AnyValueView ===

impl<'a> AnyValueView<'a> {
    /// Reads the content of an `AnyValue`; the last oneof field wins, as in a decoder.
    pub fn parse(buf: &'a [u8]) -> Self {
        let mut value = Self::Empty;
        let mut fields = Fields::new(buf);
        while let Ok(Some(f)) = fields.next_field() {
            if let Some(v) = Self::from_field(buf, f) {
                value = v;
            }
        }
        value
    }

    fn from_field(buf: &'a [u8], f: Field) -> Option<Self> {
        use field::any_value::*;
        let raw = &buf[f.value_start..f.end];
        Some(match (f.number, f.wire) {
            (STRING, WIRE_LEN) => Self::String(std::str::from_utf8(raw).ok()?),
            (BOOL, WIRE_VARINT) => Self::Bool(varint(raw) != 0),
            (INT, WIRE_VARINT) => Self::Int(varint(raw) as i64),
            (DOUBLE, WIRE_FIXED64) => Self::Double(f64::from_le_bytes(raw.try_into().ok()?)),
            (ARRAY, WIRE_LEN) => Self::Array(raw),
            (KVLIST, WIRE_LEN) => Self::KvList(raw),
            (BYTES, WIRE_LEN) => Self::Bytes(raw),
            _ => return None,
        })
    }

    /// The string, for a string value.
    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// Whether there is no value or an empty string: what Kyma's "not set" means for attributes.
    pub fn is_unset(&self) -> bool {
        matches!(self, Self::Empty | Self::String(""))
    }
}

// === impl KeyValueView ===

impl<'a> KeyValueView<'a> {
    /// Reads the content of a `KeyValue`.
    pub fn parse(buf: &'a [u8]) -> Self {
        let mut kv = Self::default();
        let mut fields = Fields::new(buf);
        while let Ok(Some(f)) = fields.next_field() {
            match (f.number, f.wire) {
                (field::key_value::KEY, WIRE_LEN) => {
                    kv.key = std::str::from_utf8(&buf[f.value_start..f.end]).unwrap_or("");
                }
                (field::key_value::VALUE, WIRE_LEN) => {
                    // Occurrences merge: an empty later `AnyValue` keeps the earlier value.
                    let value = AnyValueView::parse(&buf[f.value_start..f.end]);
                    if value != AnyValueView::Empty {
                        kv.value = value;
                    }
                }
                _ => {}
            }
        }
        kv
    }
}

// === impl Attributes ===

impl<'a> Attributes<'a> {
    /// The `KeyValue`s of field `number` of the encoded message `buf`.
    pub fn new(buf: &'a [u8], number: u32) -> Self {
        Self { buf, fields: Fields::new(buf), number }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        loop {
            let f = self.fields.next_field().ok()??;
            if f.number == self.number && f.wire == WIRE_LEN {
                let kv = KeyValueView::parse(&self.buf[f.value_start..f.end]);
                return Some(Attribute { kv, start: f.start, end: f.end });
            }
        }
    }
}

// === free functions ===

/// The payloads of every occurrence of LEN field `number` in `buf`, in order.
pub fn len_fields(buf: &[u8], number: u32) -> impl Iterator<Item = &[u8]> {
    let mut fields = Fields::new(buf);
    std::iter::from_fn(move || {
        loop {
            let f = fields.next_field().ok()??;
            if f.number == number && f.wire == WIRE_LEN {
                return Some(&buf[f.value_start..f.end]);
            }
        }
    })
}

/// A varint that the scan has already validated.
fn varint(raw: &[u8]) -> u64 {
    let mut pos = 0;
    super::read_varint(raw, &mut pos).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use proptest::prelude::*;
    use prost::Message;

    use super::*;

    /// Whether a view reads as the prost-decoded value (absent and empty values are both `Empty`).
    fn same_value(view: AnyValueView<'_>, value: Option<&AnyValue>) -> bool {
        match (view, value.and_then(|v| v.value.as_ref())) {
            (AnyValueView::Empty, None) => true,
            (AnyValueView::String(a), Some(Value::StringValue(b))) => a == b,
            (AnyValueView::Bool(a), Some(Value::BoolValue(b))) => a == *b,
            (AnyValueView::Int(a), Some(Value::IntValue(b))) => a == *b,
            (AnyValueView::Double(a), Some(Value::DoubleValue(b))) => a.to_bits() == b.to_bits(),
            (AnyValueView::Bytes(a), Some(Value::BytesValue(b))) => a == &b[..],
            (AnyValueView::Array(raw), Some(Value::ArrayValue(b))) => {
                let items: Vec<_> = len_fields(raw, field::list::VALUES).map(AnyValueView::parse).collect();
                items.len() == b.values.len()
                    && items.into_iter().zip(&b.values).all(|(a, b)| same_value(a, Some(b)))
            }
            (AnyValueView::KvList(raw), Some(Value::KvlistValue(b))) => {
                same_attributes(Attributes::new(raw, field::list::VALUES), &b.values)
            }
            _ => false,
        }
    }

    fn same_attributes<'a>(views: impl Iterator<Item = Attribute<'a>>, kvs: &[KeyValue]) -> bool {
        let views: Vec<_> = views.collect();
        views.len() == kvs.len()
            && views
                .iter()
                .zip(kvs)
                .all(|(a, b)| a.kv.key == b.key && same_value(a.kv.value, b.value.as_ref()))
    }

    proptest! {
        /// Scenario: random requests; every span's, event's and resource's attributes read through the views.
        /// Guarantees: the views see exactly what prost decodes (keys, value types, nested arrays and maps),
        /// and each attribute's byte range is its whole field.
        #[test]
        fn views_agree_with_prost(request in crate::testing::request_strategy()) {
            for rs in &request.resource_spans {
                if let Some(resource) = &rs.resource {
                    let encoded = resource.encode_to_vec();
                    prop_assert!(same_attributes(Attributes::new(&encoded, field::resource::ATTRIBUTES), &resource.attributes));
                    for (a, kv) in Attributes::new(&encoded, field::resource::ATTRIBUTES).zip(&resource.attributes) {
                        let alone = Resource::decode(&encoded[a.start..a.end]).map(|r| r.attributes);
                        prop_assert_eq!(alone.ok(), Some(vec![kv.clone()]));
                    }
                }
                for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
                    let encoded = span.encode_to_vec();
                    prop_assert!(same_attributes(Attributes::new(&encoded, field::span::ATTRIBUTES), &span.attributes));
                    let events: Vec<_> = len_fields(&encoded, field::span::EVENTS).collect();
                    prop_assert_eq!(events.len(), span.events.len());
                    for (raw, event) in events.iter().zip(&span.events) {
                        prop_assert!(same_attributes(Attributes::new(raw, field::event::ATTRIBUTES), &event.attributes));
                    }
                }
            }
        }
    }
}
