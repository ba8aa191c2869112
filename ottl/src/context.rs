//! Contexts and their paths: which item a statement runs on, which paths it can read and write there,
//! and how a statement group's context is inferred from the paths, functions and enums it uses.
//!
//! The trace contexts are here; logs and metrics add their own [`Context`] variants and path tables
//! without changing the binder or the evaluator, which only see [`Target`].

use std::fmt;

/// The item statements run on. Each context can also read the contexts above it (a span its scope and
/// resource).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Resource,
    Scope,
    Span,
    SpanEvent,
}

/// A path resolved against a context: the field it reads or writes. Keys (`attributes["k"][0]`) are
/// kept beside it by the binder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Resource(ResourceField),
    Scope(ScopeField),
    Span(SpanField),
    SpanEvent(SpanEventField),
    /// The statement context's scratch map (`span.cache["k"]`), cleared for each item.
    Cache,
}

/// Fields of a `Resource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceField {
    Attributes,
    DroppedAttributesCount,
    SchemaUrl,
}

/// Fields of an `InstrumentationScope` (and its `ScopeSpans`' schema URL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScopeField {
    Name,
    Version,
    Attributes,
    DroppedAttributesCount,
    SchemaUrl,
}

/// Fields of a `Span`, with the Collector's derived views (`.string`, `start_time`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanField {
    TraceId,
    TraceIdString,
    SpanId,
    SpanIdString,
    ParentSpanId,
    ParentSpanIdString,
    TraceState,
    /// One key of the W3C trace state (`span.trace_state["k"]`).
    TraceStateKey,
    Name,
    Kind,
    KindString,
    KindDeprecatedString,
    StartTimeUnixNano,
    EndTimeUnixNano,
    StartTime,
    EndTime,
    Attributes,
    DroppedAttributesCount,
    Events,
    DroppedEventsCount,
    Links,
    DroppedLinksCount,
    Status,
    StatusCode,
    StatusMessage,
}

/// Fields of a `Span.Event`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanEventField {
    TimeUnixNano,
    Time,
    Name,
    Attributes,
    DroppedAttributesCount,
    /// The event's position in its span (read-only).
    EventIndex,
}

/// What a path segment may carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// No keys allowed.
    None,
    /// Any number of keys into a map or list (`attributes["a"]["b"][0]`).
    Any,
    /// None for the whole value, or one string key (`trace_state`, `trace_state["k"]`).
    AtMostOne,
}

/// A path that names nothing in its context.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "segment \"{segment}\" from path \"{path}\" is not a valid path nor a valid OTTL keyword for the {context} context - review https://github.com/open-telemetry/opentelemetry-collector-contrib/tree/main/pkg/ottl/contexts/ottl{context} to see all valid paths"
)]
pub struct UnknownPath {
    pub segment: String,
    pub path: String,
    pub context: &'static str,
}

// === impl Context ===

impl Context {
    /// Every trace context, highest inference priority first (the Collector's default order:
    /// `spanevent`, `span`, `resource`, `scope`).
    pub const TRACE_PRIORITY: [Context; 4] =
        [Context::SpanEvent, Context::Span, Context::Resource, Context::Scope];

    /// The name used as a path prefix.
    pub fn name(self) -> &'static str {
        match self {
            Self::Resource => "resource",
            Self::Scope => "scope",
            Self::Span => "span",
            Self::SpanEvent => "spanevent",
        }
    }

    /// The context a path prefix names; `instrumentation_scope` is the scope's other name.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        Some(match prefix {
            "resource" => Self::Resource,
            "scope" | "instrumentation_scope" => Self::Scope,
            "span" => Self::Span,
            "spanevent" => Self::SpanEvent,
            _ => return None,
        })
    }

    /// Inference priority: lower is preferred.
    pub fn priority(self) -> usize {
        Self::TRACE_PRIORITY.iter().position(|c| *c == self).unwrap_or(usize::MAX)
    }

    /// The path prefixes a statement running in this context may use, its own first.
    pub fn path_contexts(self) -> &'static [Context] {
        match self {
            Self::Resource => &[Self::Resource],
            Self::Scope => &[Self::Scope, Self::Resource],
            Self::Span => &[Self::Span, Self::Resource, Self::Scope],
            Self::SpanEvent => &[Self::SpanEvent, Self::Span, Self::Resource, Self::Scope],
        }
    }

    /// The prefix names a parser for this context accepts, as the Collector lists them in errors.
    pub fn prefix_names(self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for c in self.path_contexts() {
            names.push(c.name());
            if *c == Self::Scope {
                names.push("instrumentation_scope");
            }
        }
        names
    }

    /// The contexts below this one (which can read it), tried in priority order when this one lacks a
    /// function or enum the statements use.
    pub fn lower_contexts(self) -> &'static [Context] {
        match self {
            Self::Resource => &[Self::SpanEvent, Self::Span, Self::Scope],
            Self::Scope => &[Self::SpanEvent, Self::Span],
            Self::Span => &[Self::SpanEvent],
            Self::SpanEvent => &[],
        }
    }

    /// Resolves the fields of a path with prefix `self`: each segment's name and whether it carries
    /// keys. Returns the target and what keys its last segment may take. `text` is the path as written,
    /// for the error.
    pub fn resolve(self, segments: &[&str], text: &str) -> Result<(Target, KeyUse), UnknownPath> {
        let unknown = |segment: &str| UnknownPath {
            segment: segment.to_string(),
            path: text.to_string(),
            context: self.name(),
        };
        let (first, rest) = match segments {
            [first, rest @ ..] => (*first, rest),
            [] => return Err(unknown("")),
        };
        if first == "cache" {
            return leaf(Target::Cache, KeyUse::Any, rest, unknown);
        }
        match self {
            Self::Resource => {
                let (field, keys) = match first {
                    "attributes" => (ResourceField::Attributes, KeyUse::Any),
                    "dropped_attributes_count" => (ResourceField::DroppedAttributesCount, KeyUse::None),
                    "schema_url" => (ResourceField::SchemaUrl, KeyUse::None),
                    _ => return Err(unknown(first)),
                };
                leaf(Target::Resource(field), keys, rest, unknown)
            }
            Self::Scope => {
                let (field, keys) = match first {
                    "name" => (ScopeField::Name, KeyUse::None),
                    "version" => (ScopeField::Version, KeyUse::None),
                    "attributes" => (ScopeField::Attributes, KeyUse::Any),
                    "dropped_attributes_count" => (ScopeField::DroppedAttributesCount, KeyUse::None),
                    "schema_url" => (ScopeField::SchemaUrl, KeyUse::None),
                    _ => return Err(unknown(first)),
                };
                leaf(Target::Scope(field), keys, rest, unknown)
            }
            Self::Span => resolve_span(first, rest, unknown),
            Self::SpanEvent => {
                let (field, keys) = match first {
                    "time_unix_nano" => (SpanEventField::TimeUnixNano, KeyUse::None),
                    "time" => (SpanEventField::Time, KeyUse::None),
                    "name" => (SpanEventField::Name, KeyUse::None),
                    "attributes" => (SpanEventField::Attributes, KeyUse::Any),
                    "dropped_attributes_count" => (SpanEventField::DroppedAttributesCount, KeyUse::None),
                    "event_index" => (SpanEventField::EventIndex, KeyUse::None),
                    _ => return Err(unknown(first)),
                };
                leaf(Target::SpanEvent(field), keys, rest, unknown)
            }
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// === impl Target ===

impl Target {
    /// The context whose item holds the field.
    pub fn context(self, statement_context: Context) -> Context {
        match self {
            Self::Resource(_) => Context::Resource,
            Self::Scope(_) => Context::Scope,
            Self::Span(_) => Context::Span,
            Self::SpanEvent(_) => Context::SpanEvent,
            Self::Cache => statement_context,
        }
    }

    /// The error a write to a read-only field gives at run time (the Collector binds such a `set` and
    /// fails when it runs).
    pub fn read_only(self) -> Option<&'static str> {
        match self {
            Self::SpanEvent(SpanEventField::EventIndex) => Some("the 'event_index' path cannot be modified"),
            _ => None,
        }
    }
}

// === free functions ===

/// A field with no further segments.
fn leaf(
    target: Target,
    keys: KeyUse,
    rest: &[&str],
    unknown: impl Fn(&str) -> UnknownPath,
) -> Result<(Target, KeyUse), UnknownPath> {
    match rest.first() {
        None => Ok((target, keys)),
        Some(extra) => Err(unknown(extra)),
    }
}

fn resolve_span(
    first: &str,
    rest: &[&str],
    unknown: impl Fn(&str) -> UnknownPath,
) -> Result<(Target, KeyUse), UnknownPath> {
    use SpanField::*;
    // Fields with a second segment: ids as hex strings, the kind's names, the status's parts.
    let sub = |plain: SpanField, subs: &[(&str, SpanField)]| -> Result<(Target, KeyUse), UnknownPath> {
        match rest {
            [] => Ok((Target::Span(plain), KeyUse::None)),
            [second] => subs
                .iter()
                .find(|(name, _)| name == second)
                .map(|(_, field)| (Target::Span(*field), KeyUse::None))
                .ok_or_else(|| unknown(second)),
            [_, extra, ..] => Err(unknown(extra)),
        }
    };
    match first {
        "trace_id" => sub(TraceId, &[("string", TraceIdString)]),
        "span_id" => sub(SpanId, &[("string", SpanIdString)]),
        "parent_span_id" => sub(ParentSpanId, &[("string", ParentSpanIdString)]),
        "kind" => sub(Kind, &[("string", KindString), ("deprecated_string", KindDeprecatedString)]),
        "status" => sub(Status, &[("code", StatusCode), ("message", StatusMessage)]),
        "trace_state" => leaf(Target::Span(TraceState), KeyUse::AtMostOne, rest, unknown),
        _ => {
            let (field, keys) = match first {
                "name" => (Name, KeyUse::None),
                "start_time_unix_nano" => (StartTimeUnixNano, KeyUse::None),
                "end_time_unix_nano" => (EndTimeUnixNano, KeyUse::None),
                "start_time" => (StartTime, KeyUse::None),
                "end_time" => (EndTime, KeyUse::None),
                "attributes" => (Attributes, KeyUse::Any),
                "dropped_attributes_count" => (DroppedAttributesCount, KeyUse::None),
                "events" => (Events, KeyUse::None),
                "dropped_events_count" => (DroppedEventsCount, KeyUse::None),
                "links" => (Links, KeyUse::None),
                "dropped_links_count" => (DroppedLinksCount, KeyUse::None),
                _ => return Err(unknown(first)),
            };
            leaf(Target::Span(field), keys, rest, unknown)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: every path the Collector's span context defines, and near misses. Guarantees: each
    /// resolves to its own field with the right key rule; unknown and extra segments are refused with
    /// the segment named.
    #[test]
    fn span_paths_resolve() {
        let ok: &[(&[&str], Target, KeyUse)] = &[
            (&["name"], Target::Span(SpanField::Name), KeyUse::None),
            (&["trace_id", "string"], Target::Span(SpanField::TraceIdString), KeyUse::None),
            (&["kind", "deprecated_string"], Target::Span(SpanField::KindDeprecatedString), KeyUse::None),
            (&["status", "code"], Target::Span(SpanField::StatusCode), KeyUse::None),
            (&["attributes"], Target::Span(SpanField::Attributes), KeyUse::Any),
            (&["trace_state"], Target::Span(SpanField::TraceState), KeyUse::AtMostOne),
            (&["cache"], Target::Cache, KeyUse::Any),
        ];
        for (segments, target, keys) in ok {
            assert_eq!(Context::Span.resolve(segments, "p"), Ok((*target, *keys)), "{segments:?}");
        }
        for (segments, bad) in [(&["nmae"][..], "nmae"), (&["name", "x"], "x"), (&["kind", "str"], "str")] {
            let err = Context::Span.resolve(segments, "span.p").map(|_| ()).unwrap_err();
            assert_eq!(err.segment, bad);
            assert!(err.to_string().contains("for the span context"), "{err}");
        }
    }

    /// Scenario: inference order and reach of the trace contexts. Guarantees: spanevent is preferred
    /// over span over resource over scope, and each context reads only the ones above it.
    #[test]
    fn context_order_and_reach() {
        let mut by_priority = vec![Context::Scope, Context::Resource, Context::SpanEvent, Context::Span];
        by_priority.sort_by_key(|c| c.priority());
        assert_eq!(by_priority, Context::TRACE_PRIORITY);
        assert!(!Context::Resource.path_contexts().contains(&Context::Scope));
        assert!(Context::SpanEvent.path_contexts().contains(&Context::Span));
        assert_eq!(Context::from_prefix("instrumentation_scope"), Some(Context::Scope));
        assert_eq!(Context::Span.prefix_names(), ["span", "resource", "scope", "instrumentation_scope"]);
    }
}

/// The W3C trace state as the Collector's span context reads and writes it (Go's
/// `go.opentelemetry.io/otel/trace.TraceState`): `span.trace_state["k"]`.
pub mod trace_state {
    /// At most this many members.
    const MAX_MEMBERS: usize = 32;

    /// The members of a trace state, `None` when it does not parse (then keys read as nil and writes
    /// change nothing).
    pub fn parse(text: &str) -> Option<Vec<(String, String)>> {
        let mut members = Vec::new();
        for member in text.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=')?;
            if !valid_key(key) || !valid_value(value) || members.iter().any(|(k, _)| k == key) {
                return None;
            }
            members.push((key.to_string(), value.to_string()));
        }
        (members.len() <= MAX_MEMBERS).then_some(members)
    }

    /// One member's value: `""` when absent, `None` when the trace state does not parse.
    pub fn get(text: &str, key: &str) -> Option<String> {
        let members = parse(text)?;
        Some(members.into_iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_default())
    }

    /// The trace state with `key` set to `value` and moved to the front; `None` (no change) when the
    /// trace state does not parse or the member is invalid.
    pub fn insert(text: &str, key: &str, value: &str) -> Option<String> {
        let mut members = parse(text)?;
        if !valid_key(key) || !valid_value(value) {
            return None;
        }
        members.retain(|(k, _)| k != key);
        if members.len() >= MAX_MEMBERS {
            return None;
        }
        members.insert(0, (key.to_string(), value.to_string()));
        Some(members.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
    }

    fn simple_key(key: &str, max: usize) -> bool {
        let mut chars = key.chars();
        key.len() <= max
            && chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && chars
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '*' | '/'))
    }

    fn valid_key(key: &str) -> bool {
        match key.split_once('@') {
            None => simple_key(key, 256) && key.starts_with(|c: char| c.is_ascii_lowercase()),
            Some((tenant, system)) => {
                simple_key(tenant, 241)
                    && simple_key(system, 14)
                    && system.starts_with(|c: char| c.is_ascii_lowercase())
            }
        }
    }

    fn valid_value(value: &str) -> bool {
        !value.is_empty()
            && value.len() <= 256
            && !value.ends_with(' ')
            && value.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
    }
}
