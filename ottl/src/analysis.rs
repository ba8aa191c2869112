//! What a bound group reads, for hosts that prepare for it.
//!
//! Which items share a transform group's verdict on its conditions. A span group whose conditions
//! read only its resource (Kyma's `resource.attributes["service.name"] != nil`) selects all spans of
//! one resource alike, so a host can evaluate them once per resource instead of once per span
//! ([`crate::eval::Selection`]). Sound only when nothing can change that verdict between the items:
//! the conditions read no field of the item itself, nor its cache, nor call a converter whose result
//! changes from call to call, and no statement of the group writes at that level.

use crate::bind::{
    BoundArg, BoundBool, BoundCall, BoundCondition, BoundKey, BoundPath, BoundStatement, BoundValue,
};
use crate::context::{Context, Target};

/// Converters whose result changes from one call to the next: a condition calling one is evaluated
/// for every item, as the Collector does.
const VARYING_CONVERTERS: &[&str] = &["Now", "UUID", "UUIDv7"];

/// The context whose items (all items under one resource, or one scope) share the verdict of
/// `conditions` in a group of `context` with these statements; `None` when each item needs its own.
pub(crate) fn shared_selection(
    context: Context,
    conditions: &[&BoundBool],
    statements: &[BoundStatement],
) -> Option<Context> {
    if conditions.is_empty() {
        return None;
    }
    let mut deepest = Context::Resource;
    for condition in conditions {
        deepest = deepest.max(bool_depth(condition)?);
    }
    if deepest >= context {
        return None;
    }
    let writes_there = statements.iter().any(|s| {
        s.editor.args.iter().any(|arg| match arg {
            BoundArg::Path(path) => target_context(path.target).is_none_or(|written| written <= deepest),
            _ => false,
        })
    });
    (!writes_there).then_some(deepest)
}

/// Whether every write of `statements`, run in a group of `context`, lands in the item itself: a
/// field of its own context or of one below it (a span's events), or its cache. A host may then run
/// the group's items one after another with any other such work in between, since no item's write
/// can reach what another item reads.
pub(crate) fn writes_only_items(context: Context, statements: &[BoundStatement]) -> bool {
    statements.iter().all(|s| {
        s.editor.args.iter().all(|arg| match arg {
            BoundArg::Path(path) => target_context(path.target).is_none_or(|written| written >= context),
            _ => true,
        })
    })
}

/// The context a target lies in; `None` for the item's cache.
fn target_context(target: Target) -> Option<Context> {
    match target {
        Target::Resource(_) => Some(Context::Resource),
        Target::Scope(_) => Some(Context::Scope),
        Target::Span(_) => Some(Context::Span),
        Target::SpanEvent(_) => Some(Context::SpanEvent),
        Target::Cache => None,
    }
}

/// The innermost context an expression reads (`Resource` for one that reads nothing); `None` when
/// it reads the cache or calls a varying converter.
fn bool_depth(e: &BoundBool) -> Option<Context> {
    match e {
        BoundBool::Or(items) | BoundBool::And(items) => deepest(items.iter().map(bool_depth)),
        BoundBool::Not(inner) => bool_depth(inner),
        BoundBool::Compare(left, _, right) => Some(value_depth(left)?.max(value_depth(right)?)),
        BoundBool::Call(call) => call_depth(call),
        BoundBool::Const(_) => Some(Context::Resource),
        BoundBool::PathCompare(c) => path_depth(&c.path),
        BoundBool::KeyMatch(m) => call_depth(&m.call),
    }
}

fn value_depth(v: &BoundValue) -> Option<Context> {
    match v {
        BoundValue::Literal(_) => Some(Context::Resource),
        BoundValue::Path(path) => path_depth(path),
        BoundValue::Call(call) => call_depth(call),
        BoundValue::List(items) => deepest(items.iter().map(value_depth)),
        BoundValue::Map(entries) => deepest(entries.iter().map(|(_, v)| value_depth(v))),
        BoundValue::Math(first, rest) => {
            Some(value_depth(first)?.max(deepest(rest.iter().map(|(_, v)| value_depth(v)))?))
        }
        BoundValue::Negate(inner) => value_depth(inner),
    }
}

fn path_depth(path: &BoundPath) -> Option<Context> {
    Some(target_context(path.target)?.max(deepest(path.keys.iter().map(key_depth))?))
}

fn key_depth(key: &BoundKey) -> Option<Context> {
    match key {
        BoundKey::String(_) | BoundKey::Int(_) => Some(Context::Resource),
        BoundKey::Expr(v) => value_depth(v),
    }
}

fn call_depth(call: &BoundCall) -> Option<Context> {
    if VARYING_CONVERTERS.contains(&call.def.name) {
        return None;
    }
    let args = deepest(call.args.iter().map(|arg| match arg {
        BoundArg::Absent => Some(Context::Resource),
        BoundArg::Value(v) => value_depth(v),
        BoundArg::Path(path) => path_depth(path),
        BoundArg::Function(def) => (!VARYING_CONVERTERS.contains(&def.name)).then_some(Context::Resource),
        BoundArg::List(items) => deepest(items.iter().map(value_depth)),
    }))?;
    Some(args.max(deepest(call.keys.iter().map(key_depth))?))
}

/// The innermost of several depths; `None` when any is.
fn deepest(mut depths: impl Iterator<Item = Option<Context>>) -> Option<Context> {
    depths.try_fold(Context::Resource, |acc, d| Some(acc.max(d?)))
}

/// Calls `f` with every path a group's conditions and statements name, read or written.
fn for_each_path<'a>(
    conditions: &'a [BoundCondition],
    statements: &'a [BoundStatement],
    f: &mut dyn FnMut(&'a BoundPath),
) {
    for c in conditions {
        bool_paths(&c.expr, f);
    }
    for s in statements {
        call_paths(&s.editor, f);
        if let Some(c) = &s.condition {
            bool_paths(c, f);
        }
    }
}

fn bool_paths<'a>(e: &'a BoundBool, f: &mut dyn FnMut(&'a BoundPath)) {
    match e {
        BoundBool::Or(items) | BoundBool::And(items) => items.iter().for_each(|i| bool_paths(i, f)),
        BoundBool::Not(inner) => bool_paths(inner, f),
        BoundBool::Compare(left, _, right) => {
            value_paths(left, f);
            value_paths(right, f);
        }
        BoundBool::Call(call) => call_paths(call, f),
        BoundBool::Const(_) => {}
        BoundBool::PathCompare(c) => path_paths(&c.path, f),
        BoundBool::KeyMatch(m) => call_paths(&m.call, f),
    }
}

fn value_paths<'a>(v: &'a BoundValue, f: &mut dyn FnMut(&'a BoundPath)) {
    match v {
        BoundValue::Literal(_) => {}
        BoundValue::Path(path) => path_paths(path, f),
        BoundValue::Call(call) => call_paths(call, f),
        BoundValue::List(items) => items.iter().for_each(|i| value_paths(i, f)),
        BoundValue::Map(entries) => entries.iter().for_each(|(_, v)| value_paths(v, f)),
        BoundValue::Math(first, rest) => {
            value_paths(first, f);
            rest.iter().for_each(|(_, v)| value_paths(v, f));
        }
        BoundValue::Negate(inner) => value_paths(inner, f),
    }
}

fn path_paths<'a>(path: &'a BoundPath, f: &mut dyn FnMut(&'a BoundPath)) {
    f(path);
    for key in &path.keys {
        if let BoundKey::Expr(v) = key {
            value_paths(v, f);
        }
    }
}

fn call_paths<'a>(call: &'a BoundCall, f: &mut dyn FnMut(&'a BoundPath)) {
    for arg in &call.args {
        match arg {
            BoundArg::Value(v) => value_paths(v, f),
            BoundArg::Path(path) => path_paths(path, f),
            BoundArg::List(items) => items.iter().for_each(|i| value_paths(i, f)),
            BoundArg::Absent | BoundArg::Function(_) => {}
        }
    }
    for key in &call.keys {
        if let BoundKey::Expr(v) = key {
            value_paths(v, f);
        }
    }
}

/// The literal first keys of the paths into `target` that a group names (`"k"` of
/// `span.attributes["k"]`), in order of appearance: each path's own (shared) string, so a key named
/// by two paths comes twice, once for each.
pub(crate) fn literal_keys<'a>(
    conditions: &'a [BoundCondition],
    statements: &'a [BoundStatement],
    target: Target,
) -> Vec<&'a std::sync::Arc<str>> {
    let mut keys = Vec::new();
    for_each_path(conditions, statements, &mut |path| {
        if path.target == target
            && let Some(BoundKey::String(key)) = path.keys.first()
        {
            keys.push(key);
        }
    });
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bind::bind_transform;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// Scenario: span groups with conditions on the resource, the scope, the span, the cache and
    /// `Now()`, and statements writing at different levels.
    /// Guarantees: the verdict is shared by a resource's (scope's) spans exactly when the conditions
    /// read nothing below it, nothing varying, and no statement writes at or above that level.
    #[test]
    fn a_verdict_is_shared_only_where_nothing_can_change_it() {
        let set_span = r#"set(span.attributes["env"], "prod")"#;
        let cases: &[(&[&str], &[&str], Option<Context>)] = &[
            (&[r#"resource.attributes["service.name"] != nil"#], &[set_span], Some(Context::Resource)),
            (
                &[r#"IsMatch(resource.attributes["k8s.namespace.name"], ".*-system") and scope.name == "x""#],
                &[set_span],
                Some(Context::Scope),
            ),
            (&[r#"resource.attributes["a"] == "b""#, r#"span.name == "x""#], &[set_span], None),
            (&[r#"span.name == "x""#], &[set_span], None),
            (
                &[r#"resource.attributes["a"] == "b""#],
                &[set_span, r#"set(resource.attributes["a"], "c")"#],
                None,
            ),
            (
                &[r#"resource.attributes["a"] == "b""#],
                &[r#"set(scope.attributes["a"], "c")"#, set_span],
                Some(Context::Resource),
            ),
            (&[r#"scope.name == "x""#], &[set_span, r#"set(scope.attributes["a"], "c")"#], None),
            (
                &[r#"resource.attributes["a"] == "b""#],
                &[r#"delete_key(resource.attributes, "a")"#, set_span],
                None,
            ),
            (&[r#"resource.attributes[span.name] == "b""#], &[set_span], None),
            (&[r#"resource.attributes["t"] == String(Now())"#], &[set_span], None),
            (&[r#"Len(resource.attributes) > 2"#], &[set_span], Some(Context::Resource)),
            (&[], &[set_span], None),
        ];
        for (conditions, statements, expected) in cases {
            let group = bind_transform(&strings(statements), &strings(conditions)).unwrap();
            assert_eq!(group.context, Context::Span, "{conditions:?}");
            assert_eq!(group.shared_selection, *expected, "{conditions:?} / {statements:?}");
        }
        // A resource group's own conditions are its items' own.
        let group = bind_transform(
            &strings(&[r#"set(resource.attributes["a"], "c")"#]),
            &strings(&[r#"resource.attributes["a"] == "b""#]),
        )
        .unwrap();
        assert_eq!((group.context, group.shared_selection), (Context::Resource, None));
    }

    /// Scenario: a group naming span attributes in its conditions, a statement's target, its
    /// `where`, a converter's argument and a key expression, some twice.
    /// Guarantees: each path's literal first key into `span.attributes` is listed, in order, as the path's own
    /// string; other targets' keys and computed keys are not.
    #[test]
    fn literal_keys_lists_each_paths_key() {
        use crate::context::SpanField;
        let group = bind_transform(
            &strings(&[
                r#"set(span.attributes["a"], Concat([span.attributes["b"], resource.attributes["r"]], "-")) where span.attributes["c"] != nil"#,
                r#"delete_key(span.attributes, "d")"#,
                r#"set(span.attributes[span.attributes["e"]], "x")"#,
            ]),
            &strings(&[r#"span.attributes["a"] == "1" or IsMatch(span.attributes["f"], "x")"#]),
        )
        .unwrap();
        let keys = group.literal_keys(Target::Span(SpanField::Attributes));
        let texts: Vec<&str> = keys.iter().map(|k| &***k).collect();
        assert_eq!(texts, vec!["a", "f", "a", "b", "c", "e"]);
        assert!(!std::sync::Arc::ptr_eq(keys[0], keys[2]), "each path keeps its own string");
    }

    /// Scenario: span groups writing the span's attributes, name, cache and events; one writing its
    /// resource's attributes; one writing its scope's name.
    /// Guarantees: only the groups whose every write lands in the span (its fields, events and
    /// cache) are item-local.
    #[test]
    fn writes_only_items_tells_writes_above_the_item() {
        let local =
            |statements: &[&str]| bind_transform(&strings(statements), &[]).unwrap().writes_only_items();
        assert!(local(&[
            r#"set(span.attributes["a"], "b") where resource.attributes["r"] == "x""#,
            r#"set(span.name, "n")"#,
            r#"set(span.cache["c"], span.name)"#,
            r#"delete_key(span.attributes, "d")"#,
        ]));
        assert!(!local(&[r#"set(span.name, "n")"#, r#"set(resource.attributes["a"], span.name)"#]));
        assert!(!local(&[r#"set(scope.name, span.name)"#]));
        let events = bind_transform(&strings(&[r#"set(spanevent.name, "e")"#]), &[]).unwrap();
        assert!(events.writes_only_items(), "an event group writes its events only");
    }
}
