//! The editors: the functions that change the item a statement runs on (`set`, the map editors, the
//! `replace_*` family, `truncate_all`, `flatten`, `append`, `delete_index`, `set_semconv_span_name`),
//! and the `IsRootSpan` converter, which reads the span rather than an argument.
//!
//! Each follows the Collector's implementation (pkg/ottl/ottlfuncs and the transform processor's
//! span functions, v0.158.0), quirks included where they show in the result: pdata's swap-remove when
//! one key is deleted, Go's regexp syntax (ASCII `\d`, `\w`, `\s`, `\b`), its replacement template
//! syntax and its rule for empty matches, gobwas/glob patterns, and how `flatten` builds keys.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use base64::Engine as _;
use regex::{Captures, Regex};

use super::{Call, FunctionDef, Param, ParamType, Prepared, Run};
use crate::context::{SpanField, Target};
use crate::eval::EvalError;
use crate::value::Value;

/// A map value's entries, in order; the first entry of a key is its value.
type Map = Vec<(String, Value)>;

const fn req(name: &'static str, ty: ParamType) -> Param {
    Param { name, ty, optional: false }
}

const fn opt(name: &'static str, ty: ParamType) -> Param {
    Param { name, ty, optional: true }
}

use ParamType as T;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "set",
        params: &[req("target", T::Setter), req("value", T::Getter)],
        prepare: None,
        run: Run::Editor(set),
    },
    FunctionDef {
        name: "delete_key",
        params: &[req("target", T::PMapGetSetter), req("key", T::StringGetter)],
        prepare: None,
        run: Run::Editor(delete_key),
    },
    FunctionDef {
        name: "delete_matching_keys",
        params: &[req("target", T::PMapGetSetter), req("pattern", T::StringGetter)],
        prepare: Some(prepare_delete_matching_keys),
        run: Run::Editor(delete_matching_keys),
    },
    FunctionDef {
        name: "keep_matching_keys",
        params: &[req("target", T::PMapGetSetter), req("pattern", T::StringGetter)],
        prepare: Some(prepare_keep_matching_keys),
        run: Run::Editor(keep_matching_keys),
    },
    FunctionDef {
        name: "flatten",
        params: &[
            req("target", T::PMapGetSetter),
            opt("prefix", T::String),
            opt("depth", T::Int),
            opt("resolveConflicts", T::Bool),
        ],
        prepare: Some(prepare_flatten),
        run: Run::Editor(flatten),
    },
    FunctionDef {
        name: "keep_keys",
        params: &[req("target", T::PMapGetSetter), req("keys", T::StringGetterList)],
        prepare: None,
        run: Run::Editor(keep_keys),
    },
    FunctionDef {
        name: "limit",
        params: &[req("target", T::PMapGetSetter), req("limit", T::Int), req("priorityKeys", T::StringList)],
        prepare: Some(prepare_limit),
        run: Run::Editor(limit),
    },
    FunctionDef {
        name: "merge_maps",
        params: &[req("target", T::PMapGetSetter), req("source", T::PMapGetter), req("strategy", T::String)],
        prepare: Some(prepare_merge_maps),
        run: Run::Editor(merge_maps),
    },
    FunctionDef {
        name: "replace_all_matches",
        params: &[
            req("target", T::PMapGetSetter),
            req("pattern", T::StringGetter),
            req("replacement", T::StringGetter),
            opt("function", T::FunctionGetter),
            opt("replacementFormat", T::StringGetter),
        ],
        prepare: Some(prepare_replace_all_matches),
        run: Run::Editor(replace_all_matches),
    },
    FunctionDef {
        name: "replace_all_patterns",
        params: &[
            req("target", T::PMapGetSetter),
            req("mode", T::String),
            req("regexPattern", T::StringGetter),
            req("replacement", T::StringGetter),
            opt("function", T::FunctionGetter),
            opt("replacementFormat", T::StringGetter),
        ],
        prepare: Some(prepare_replace_all_patterns),
        run: Run::Editor(replace_all_patterns),
    },
    FunctionDef {
        name: "replace_match",
        params: &[
            req("target", T::GetSetter),
            req("pattern", T::StringGetter),
            req("replacement", T::StringGetter),
            opt("function", T::FunctionGetter),
            opt("replacementFormat", T::StringGetter),
        ],
        prepare: Some(prepare_replace_match),
        run: Run::Editor(replace_match),
    },
    FunctionDef {
        name: "replace_pattern",
        params: &[
            req("target", T::GetSetter),
            req("regexPattern", T::StringGetter),
            req("replacement", T::StringGetter),
            opt("function", T::FunctionGetter),
            opt("replacementFormat", T::StringGetter),
        ],
        prepare: Some(prepare_replace_pattern),
        run: Run::Editor(replace_pattern),
    },
    FunctionDef {
        name: "stringify_all",
        params: &[req("target", T::PMapGetSetter)],
        prepare: None,
        run: Run::Editor(stringify_all),
    },
    FunctionDef {
        name: "truncate_all",
        params: &[
            req("target", T::PMapGetSetter),
            req("limit", T::Int),
            opt("utf8Safe", T::Bool),
            opt("truncationMarker", T::String),
        ],
        prepare: Some(prepare_truncate_all),
        run: Run::Editor(truncate_all),
    },
    FunctionDef {
        name: "append",
        params: &[req("target", T::GetSetter), opt("value", T::Getter), opt("values", T::GetterList)],
        prepare: None,
        run: Run::Editor(append),
    },
    FunctionDef {
        name: "delete_index",
        params: &[
            req("target", T::PSliceGetSetter),
            req("startIndex", T::IntGetter),
            opt("endIndex", T::IntGetter),
        ],
        prepare: None,
        run: Run::Editor(delete_index),
    },
    FunctionDef { name: "IsRootSpan", params: &[], prepare: None, run: Run::Converter(is_root_span) },
    FunctionDef {
        name: "set_semconv_span_name",
        params: &[req("semconvVersion", T::String), opt("originalSpanNameAttribute", T::String)],
        prepare: Some(prepare_set_semconv_span_name),
        run: Run::Editor(set_semconv_span_name),
    },
];

// === set ===

fn set(call: &mut Call<'_>) -> Result<(), EvalError> {
    let value = call.get(1)?;
    // v0.158.0 leaves the `ottl.set.allowNil` gate off: a nil value writes nothing.
    if matches!(value, Value::Nil) {
        return Ok(());
    }
    call.set(0, value)
}

// === delete_key, delete_matching_keys, keep_matching_keys, keep_keys ===

fn delete_key(call: &mut Call<'_>) -> Result<(), EvalError> {
    let key = call.string(1)?;
    // pdata removes one key by moving the last entry into its place; the context does it in place.
    call.remove_key(0, &key)?;
    Ok(())
}

fn prepare_delete_matching_keys(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_regex("delete_matching_keys", args, 1)
}

fn prepare_keep_matching_keys(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_regex("keep_matching_keys", args, 1)
}

fn delete_matching_keys(call: &mut Call<'_>) -> Result<(), EvalError> {
    retain_matching_keys(call, "delete_matching_keys", false)
}

fn keep_matching_keys(call: &mut Call<'_>) -> Result<(), EvalError> {
    retain_matching_keys(call, "keep_matching_keys", true)
}

/// Keeps the keys that match the pattern (`keep`) or those that do not.
fn retain_matching_keys(call: &mut Call<'_>, name: &str, keep: bool) -> Result<(), EvalError> {
    let dynamic = dynamic_regex(call, name, 1)?;
    let mut map = call.map(0)?;
    let before = map.len();
    {
        let re = regex_in_use(call, dynamic.as_ref())?;
        map.retain(|(k, _)| re.is_match(k) == keep);
    }
    if map.len() != before {
        call.set(0, Value::Map(map))?;
    }
    Ok(())
}

fn keep_keys(call: &mut Call<'_>) -> Result<(), EvalError> {
    let mut map = call.map(0)?;
    let mut keys = Vec::new();
    for item in call.items(1)? {
        match item {
            Value::String(s) => keys.push(s),
            other => return Err(EvalError::expected("string", &other)),
        }
    }
    let before = map.len();
    map.retain(|(k, _)| keys.contains(k));
    if map.len() != before {
        call.set(0, Value::Map(map))?;
    }
    Ok(())
}

// === limit ===

fn prepare_limit(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    let Some(Value::Int(limit)) = arg(args, 1) else { return Ok(None) };
    check_limit(
        *limit,
        arg(args, 2).map_or(0, |v| match v {
            Value::List(items) => items.len(),
            _ => 0,
        }),
    )?;
    Ok(None)
}

fn check_limit(limit: i64, priority: usize) -> Result<(), String> {
    if limit < 0 {
        return Err(format!("invalid limit for limit function, {limit} cannot be negative"));
    }
    if i64::try_from(priority).unwrap_or(i64::MAX) > limit {
        return Err(format!(
            "invalid limit for limit function, {limit} cannot be less than number of priority attributes {priority}"
        ));
    }
    Ok(())
}

fn limit(call: &mut Call<'_>) -> Result<(), EvalError> {
    let mut map = call.map(0)?;
    let limit = literal_int(call, 1)?.unwrap_or(0);
    let priority: Vec<String> = literal_list(call, 2)?
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(EvalError::expected("string", &other)),
        })
        .collect::<Result<_, _>>()?;
    check_limit(limit, priority.len()).map_err(EvalError::Function)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if map.len() <= limit {
        return Ok(());
    }
    // Priority keys present in the map count against the limit first (each listed key once per
    // listing, as the Collector counts); the other keys fill what is left, in map order.
    let mut kept = priority.iter().filter(|k| map.iter().any(|(m, _)| m == *k)).count();
    map.retain(|(k, _)| {
        if priority.contains(k) {
            return true;
        }
        if kept < limit {
            kept += 1;
            return true;
        }
        false
    });
    call.set(0, Value::Map(map))
}

// === merge_maps ===

const STRATEGIES: [&str; 3] = ["insert", "update", "upsert"];

fn prepare_merge_maps(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    if let Some(Value::String(strategy)) = arg(args, 2) {
        check_strategy(strategy)?;
    }
    Ok(None)
}

fn check_strategy(strategy: &str) -> Result<(), String> {
    if STRATEGIES.contains(&strategy) {
        Ok(())
    } else {
        Err(format!("invalid value for strategy, {strategy}, must be 'insert', 'update' or 'upsert'"))
    }
}

fn merge_maps(call: &mut Call<'_>) -> Result<(), EvalError> {
    let mut target = call.map(0)?;
    let source = call.map(1)?;
    let strategy = literal_str(call, 2)?.unwrap_or_default();
    check_strategy(&strategy).map_err(EvalError::Function)?;
    for (k, v) in source {
        let existing = target.iter().position(|(t, _)| *t == k);
        match (strategy.as_str(), existing) {
            ("insert", None) | ("upsert", None) => target.push((k, v)),
            ("update", Some(i)) | ("upsert", Some(i)) => target[i].1 = v,
            _ => {}
        }
    }
    call.set(0, Value::Map(target))
}

// === replace_all_matches, replace_match (glob patterns) ===

fn prepare_replace_all_matches(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_glob("replace_all_matches", args, 1)
}

fn prepare_replace_match(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_glob("replace_match", args, 1)
}

fn replace_all_matches(call: &mut Call<'_>) -> Result<(), EvalError> {
    let dynamic = dynamic_glob(call, "replace_all_matches", 1)?;
    let mut map = call.map(0)?;
    let replacement = replacement_value(call, 2, 3, 4)?;
    let changed = {
        let glob = glob_in_use(call, dynamic.as_ref())?;
        let mut changed = false;
        for (_, v) in &mut map {
            if let Value::String(s) = v
                && glob.matches(s)
            {
                *s = replacement.clone();
                changed = true;
            }
        }
        changed
    };
    if changed {
        call.set(0, Value::Map(map))?;
    }
    Ok(())
}

fn replace_match(call: &mut Call<'_>) -> Result<(), EvalError> {
    let dynamic = dynamic_glob(call, "replace_match", 1)?;
    let target = call.get(0)?;
    // The replacement (and the function) is evaluated before the target's type is looked at.
    let replacement = replacement_value(call, 2, 3, 4)?;
    let Value::String(s) = target else { return Ok(()) };
    let matched = glob_in_use(call, dynamic.as_ref())?.matches(&s);
    if matched {
        call.set(0, Value::String(replacement))?;
    }
    Ok(())
}

/// The replacement of the glob editors: the string itself, or the function's result on it formatted
/// with `replacementFormat` (which is ignored without a function).
fn replacement_value(
    call: &mut Call<'_>,
    repl: usize,
    func: usize,
    format: usize,
) -> Result<String, EvalError> {
    let replacement = call.string(repl)?;
    if !call.present(func) {
        return Ok(replacement);
    }
    match call.call_function(func, vec![Value::String(replacement)])? {
        Value::String(s) => apply_format(call, format, s),
        _ => Err(EvalError::Function("replacement value is not a string".into())),
    }
}

// === replace_all_patterns, replace_pattern (regex patterns) ===

fn prepare_replace_pattern(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_regex("replace_pattern", args, 1)
}

fn prepare_replace_all_patterns(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    let prepared = prepare_regex("replace_all_patterns", args, 2)?;
    if let Some(Value::String(mode)) = arg(args, 1) {
        check_mode(mode)?;
    }
    Ok(prepared)
}

fn check_mode(mode: &str) -> Result<(), String> {
    if mode == "key" || mode == "value" {
        Ok(())
    } else {
        Err(format!("invalid mode {mode}, must be either 'key' or 'value'"))
    }
}

/// What replacing in one string comes to, worked out while the regex is borrowed.
enum Plan {
    /// Without a function: the replaced string.
    Replaced(String),
    /// With a function: each match's text and its expanded replacement, to pass through the
    /// function (which needs the call) afterwards.
    Calls(Vec<(String, String)>),
}

/// The plan for `s`, or `None` when the regex does not match it.
fn plan(re: &Regex, s: &str, template: &str, with_function: bool) -> Option<Plan> {
    if !re.is_match(s) {
        return None;
    }
    Some(if with_function {
        Plan::Calls(
            go_find_all(re, s)
                .iter()
                .map(|caps| {
                    let mut expanded = String::new();
                    go_expand(&mut expanded, template, re, caps);
                    (caps.get(0).map_or("", |m| m.as_str()).to_string(), expanded)
                })
                .collect(),
        )
    } else {
        Plan::Replaced(go_replace_all(re, s, template))
    })
}

/// Carries out a plan on `original`. With a function, each match's expanded replacement goes through
/// the function and the format, and then every occurrence of the match's text in the string so far is
/// replaced (Go's `strings.ReplaceAll`), as the Collector does.
fn carry_out(
    call: &mut Call<'_>,
    plan: Plan,
    original: &str,
    func: usize,
    format: usize,
) -> Result<String, EvalError> {
    match plan {
        Plan::Replaced(s) => Ok(s),
        Plan::Calls(matches) => {
            let mut updated = original.to_string();
            for (text, expanded) in matches {
                let Value::String(result) = call.call_function(func, vec![Value::String(expanded)])? else {
                    return Err(EvalError::Function("the replacement value must be a string".into()));
                };
                let result = apply_format(call, format, result)?;
                updated = updated.replace(&text, &result);
            }
            Ok(updated)
        }
    }
}

fn replace_pattern(call: &mut Call<'_>) -> Result<(), EvalError> {
    let target = call.get(0)?;
    if matches!(target, Value::Nil) {
        return Ok(());
    }
    let replacement = call.string(2)?;
    let Value::String(original) = target else { return Ok(()) };
    let with_function = call.present(3);
    let dynamic = dynamic_regex(call, "replace_pattern", 1)?;
    let planned = plan(regex_in_use(call, dynamic.as_ref())?, &original, &replacement, with_function);
    let Some(planned) = planned else { return Ok(()) };
    let updated = carry_out(call, planned, &original, 3, 4)?;
    call.set(0, Value::String(updated))
}

fn replace_all_patterns(call: &mut Call<'_>) -> Result<(), EvalError> {
    let map = call.map(0)?;
    let replacement = call.string(3)?;
    let mode = literal_str(call, 1)?.unwrap_or_default();
    check_mode(&mode).map_err(EvalError::Function)?;
    let by_key = mode == "key";
    let with_function = call.present(4);
    let dynamic = dynamic_regex(call, "replace_all_patterns", 2)?;
    let plans: Vec<Option<Plan>> = {
        let re = regex_in_use(call, dynamic.as_ref())?;
        map.iter()
            .map(|(k, v)| match (by_key, v) {
                (true, _) => plan(re, k, &replacement, with_function),
                (false, Value::String(s)) => plan(re, s, &replacement, with_function),
                (false, _) => None,
            })
            .collect()
    };
    if plans.iter().all(Option::is_none) {
        return Ok(());
    }
    let mut updated: Map = Vec::with_capacity(map.len());
    for ((k, v), planned) in map.into_iter().zip(plans) {
        let Some(planned) = planned else {
            if by_key {
                map_put(&mut updated, k, v);
            } else {
                updated.push((k, v));
            }
            continue;
        };
        if by_key {
            // A key the function fails on is dropped; renamed keys that collide keep the first one's
            // place and the last one's value.
            if let Ok(key) = carry_out(call, planned, &k, 4, 5) {
                map_put(&mut updated, key, v);
            }
        } else {
            // A value the function fails on is left as it was.
            let value = match carry_out(call, planned, value_str(&v), 4, 5) {
                Ok(s) => Value::String(s),
                Err(_) => v,
            };
            updated.push((k, value));
        }
    }
    call.set(0, Value::Map(updated))
}

fn value_str(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        _ => "",
    }
}

/// Applies `replacementFormat` (argument `format`, when given) to a function's result: Go's
/// `Sprintf` with the one `%s` the format must hold.
fn apply_format(call: &mut Call<'_>, format: usize, value: String) -> Result<String, EvalError> {
    if !call.present(format) {
        return Ok(value);
    }
    let fmt = call.string(format)?;
    if !valid_format(&fmt) {
        return Err(EvalError::Function(
            "replacementFormat must be format string containing a single %s and no other format specifiers"
                .into(),
        ));
    }
    Ok(go_sprintf_s(&fmt, &value))
}

/// The Collector's check: a `%s` somewhere on a single line, and no `%` followed by anything but `s`.
fn valid_format(fmt: &str) -> bool {
    if !fmt.contains("%s") || fmt.contains('\n') {
        return false;
    }
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '%'
            && let Some(&next) = chars.peek()
            && next != 's'
        {
            return false;
        }
    }
    true
}

/// `fmt.Sprintf(fmt, arg)` for a format whose only verbs are `%s`: the first takes the argument,
/// later ones report it missing, a trailing `%` reports no verb.
fn go_sprintf_s(fmt: &str, arg: &str) -> String {
    let mut out = String::with_capacity(fmt.len() + arg.len());
    let mut used = false;
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') if !used => {
                out.push_str(arg);
                used = true;
            }
            Some('s') => out.push_str("%!s(MISSING)"),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push_str("%!(NOVERB)"),
        }
    }
    out
}

// === stringify_all ===

fn stringify_all(call: &mut Call<'_>) -> Result<(), EvalError> {
    let mut map = call.map(0)?;
    let mut changed = false;
    for (_, v) in &mut map {
        if !matches!(v, Value::String(_)) {
            *v = Value::String(as_string(v));
            changed = true;
        }
    }
    if changed {
        call.set(0, Value::Map(map))?;
    }
    Ok(())
}

/// A value as pdata's `Value.AsString` writes it: numbers as JSON would, bytes in base64, maps and
/// lists as JSON, empty as "".
fn as_string(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => go_float(*f).unwrap_or_else(|| {
            let g = if f.is_nan() {
                "NaN"
            } else if *f > 0.0 {
                "+Inf"
            } else {
                "-Inf"
            };
            format!("json: unsupported value: {g}")
        }),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::Map(_) | Value::List(_) => {
            let mut out = String::new();
            // encoding/json refuses NaN and infinities; pdata then yields "".
            if go_json(v, &mut out) { out } else { String::new() }
        }
        Value::TraceId(id) => super::hex(id),
        Value::SpanId(id) => super::hex(id),
        Value::ProfileId(id) => super::hex(id),
        Value::Time(t) => crate::value::rfc3339_nano(*t),
        Value::Duration(d) => d.to_string(),
    }
}

/// A float as Go's JSON encoder (and pdata) writes it: shortest round-trip digits, exponent form
/// below 1e-6 and from 1e21 (`1e+21`, `1e-7`); `None` for NaN and infinities.
fn go_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        Some(match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        })
    } else {
        Some(format!("{f}"))
    }
}

/// Writes `v` as Go's `json.Marshal` writes the raw form of a pdata value: map keys sorted (the last
/// of duplicate keys wins, as `AsRaw` keeps it), bytes in base64, HTML characters escaped. Returns
/// false where Go fails (NaN, infinities).
fn go_json(v: &Value, out: &mut String) -> bool {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => match go_float(*f) {
            Some(s) => out.push_str(&s),
            None => return false,
        },
        Value::String(s) => go_json_string(s, out),
        Value::Bytes(b) => go_json_string(&base64::engine::general_purpose::STANDARD.encode(b), out),
        Value::Map(entries) => {
            let mut sorted: BTreeMap<&str, &Value> = BTreeMap::new();
            for (k, v) in entries {
                sorted.insert(k, v);
            }
            out.push('{');
            for (n, (k, v)) in sorted.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                if !go_json(v, out) {
                    return false;
                }
            }
            out.push('}');
        }
        Value::List(items) => {
            out.push('[');
            for (n, v) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                if !go_json(v, out) {
                    return false;
                }
            }
            out.push(']');
        }
        other => go_json_string(&as_string(other), out),
    }
    true
}

/// A JSON string as `encoding/json` escapes it (`<`, `>`, `&`, U+2028 and U+2029 included).
fn go_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// === truncate_all ===

fn prepare_truncate_all(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    if let Some(Value::Int(limit)) = arg(args, 1) {
        let marker = match arg(args, 3) {
            Some(Value::String(m)) => m.len(),
            _ => 0,
        };
        check_truncate_limit(*limit, marker)?;
    }
    Ok(None)
}

fn check_truncate_limit(limit: i64, marker: usize) -> Result<(), String> {
    if limit < 0 {
        return Err(format!("invalid limit for truncate_all function, {limit} cannot be negative"));
    }
    if i64::try_from(marker).unwrap_or(i64::MAX) > limit {
        return Err(format!(
            "invalid truncation marker for truncate_all function, its length {marker} is greater than the limit {limit}"
        ));
    }
    Ok(())
}

fn truncate_all(call: &mut Call<'_>) -> Result<(), EvalError> {
    let mut map = call.map(0)?;
    let limit = literal_int(call, 1)?.unwrap_or(0);
    let utf8_safe = literal_bool(call, 2)?.unwrap_or(true);
    let marker = literal_str(call, 3)?.unwrap_or_default();
    check_truncate_limit(limit, marker.len()).map_err(EvalError::Function)?;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut changed = false;
    for (_, v) in &mut map {
        let Value::String(s) = v else { continue };
        if s.len() <= limit {
            continue;
        }
        // The marker counts toward the limit.
        let mut cut = limit - marker.len();
        let mut out = if utf8_safe {
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s[..cut].to_string()
        } else {
            // Go cuts at the byte even inside a character; a Rust string cannot hold the partial
            // character, so it reads back as U+FFFD.
            String::from_utf8_lossy(&s.as_bytes()[..cut]).into_owned()
        };
        out.push_str(&marker);
        *s = out;
        changed = true;
    }
    if changed {
        call.set(0, Value::Map(map))?;
    }
    Ok(())
}

// === flatten ===

fn prepare_flatten(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    if let Some(Value::Int(depth)) = arg(args, 2) {
        check_depth(*depth)?;
    }
    Ok(None)
}

fn check_depth(depth: i64) -> Result<(), String> {
    if depth < 1 {
        return Err(format!("invalid depth '{depth}' for flatten function, must be greater than 0"));
    }
    Ok(())
}

fn flatten(call: &mut Call<'_>) -> Result<(), EvalError> {
    let map = call.map(0)?;
    let prefix = literal_str(call, 1)?.unwrap_or_default();
    let depth = literal_int(call, 2)?;
    if let Some(d) = depth {
        check_depth(d).map_err(EvalError::Function)?;
    }
    let resolve_conflicts = literal_bool(call, 3)?.unwrap_or(false);
    let mut flat = Flattener {
        result: Vec::with_capacity(map.len()),
        seen: HashMap::new(),
        resolve_conflicts,
        max_depth: depth.unwrap_or(i64::MAX),
    };
    flat.map(&map, &prefix, 0);
    call.set(0, Value::Map(flat.result))
}

/// The state of one `flatten` call.
struct Flattener {
    result: Map,
    /// With conflict resolution: the next suffix of each key that was already taken.
    seen: HashMap<String, usize>,
    resolve_conflicts: bool,
    max_depth: i64,
}

impl Flattener {
    fn map(&mut self, m: &Map, prefix: &str, depth: i64) {
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}.") };
        for (k, v) in m {
            self.value(k, v, depth, &prefix);
        }
    }

    /// A list nested in a list. Its elements' keys are appended to `prefix` without a dot (so the
    /// second element of `a.1` becomes `a.11`), as the Collector builds them.
    fn slice(&mut self, items: &[Value], prefix: &str, depth: i64) {
        for (i, v) in items.iter().enumerate() {
            self.value(&i.to_string(), v, depth + 1, prefix);
        }
    }

    fn value(&mut self, k: &str, v: &Value, depth: i64, prefix: &str) {
        match v {
            Value::Map(m) if depth < self.max_depth => self.map(m, &format!("{prefix}{k}"), depth + 1),
            Value::List(items) if depth < self.max_depth => {
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::Map(m) if depth + 1 < self.max_depth => {
                            self.map(m, &format!("{prefix}{k}.{i}"), depth + 2);
                        }
                        Value::List(s) if depth + 1 < self.max_depth => {
                            self.slice(s, &format!("{prefix}{k}.{i}"), depth + 2);
                        }
                        _ if self.resolve_conflicts => {
                            self.put_resolving(format!("{prefix}{k}"), item.clone())
                        }
                        _ => map_put(&mut self.result, format!("{prefix}{k}.{i}"), item.clone()),
                    }
                }
            }
            _ if self.resolve_conflicts => self.put_resolving(format!("{prefix}{k}"), v.clone()),
            _ => map_put(&mut self.result, format!("{prefix}{k}"), v.clone()),
        }
    }

    /// Puts `v` under `key`, or under `key.<n>` (n counting from 0) when the key is taken.
    fn put_resolving(&mut self, key: String, v: Value) {
        if Value::map_get(&self.result, &key).is_some() {
            let n = self.seen.entry(key.clone()).or_insert(0);
            let suffixed = format!("{key}.{n}");
            *n += 1;
            map_put(&mut self.result, suffixed, v);
        } else {
            self.seen.insert(key.clone(), 0);
            map_put(&mut self.result, key, v);
        }
    }
}

// === append, delete_index ===

/// The Collector refuses a call with neither `value` nor `values` when it builds the function; here
/// `prepare` cannot tell an absent argument from a non-literal one, so the call refuses instead.
fn append(call: &mut Call<'_>) -> Result<(), EvalError> {
    if !call.present(1) && !call.present(2) {
        return Err(EvalError::Function(
            "at least one of the optional arguments ('value' or 'values') must be provided".into(),
        ));
    }
    let mut items = match call.get(0)? {
        Value::Nil => Vec::new(),
        Value::List(items) => items,
        Value::Map(_) => {
            return Err(EvalError::Function("<Invalid value type pcommon.Map>".into()));
        }
        other => vec![other],
    };
    if call.present(1) {
        items.push(call.get(1)?);
    }
    if call.present(2) {
        items.extend(call.items(2)?);
    }
    // A slice holds what pdata values can hold.
    if let Some(bad) = items
        .iter()
        .find(|v| matches!(v, Value::TraceId(_) | Value::SpanId(_) | Value::Time(_) | Value::Duration(_)))
    {
        return Err(EvalError::Function(format!("<Invalid value type {}>", bad.type_name())));
    }
    call.set(0, Value::List(items))
}

fn delete_index(call: &mut Call<'_>) -> Result<(), EvalError> {
    let mut items = call.list(0)?;
    let start = call.int(1)?;
    let end = if call.present(2) { call.int(2)? } else { start.wrapping_add(1) };
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    if start == 0 && end == len {
        return call.set(0, Value::List(Vec::new()));
    }
    if start < 0 || start >= len {
        return Err(EvalError::Function(format!(
            "startIndex {start} out of bounds for slice of length {len}"
        )));
    }
    if end < start {
        return Err(EvalError::Function(format!("endIndex {end} cannot be less than startIndex {start}")));
    }
    if end > len {
        return Err(EvalError::Function(format!(
            "deletion range [{start}:{end}] out of bounds for slice of length {len}"
        )));
    }
    if start == end {
        return Ok(());
    }
    // Both bounds are within 0..=len here.
    let (from, to) = (usize::try_from(start).unwrap_or(0), usize::try_from(end).unwrap_or(0));
    items.drain(from..to);
    call.set(0, Value::List(items))
}

// === IsRootSpan ===

fn is_root_span(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let parent = call.read_context(Target::Span(SpanField::ParentSpanId))?;
    let root = match &parent {
        Value::Nil => true,
        Value::SpanId(id) => id.iter().all(|b| *b == 0),
        Value::Bytes(b) => b.iter().all(|b| *b == 0),
        Value::String(s) => s.chars().all(|c| c == '0'),
        _ => false,
    };
    Ok(Value::Bool(root))
}

// === set_semconv_span_name ===

/// The semantic-convention versions v0.158.0 knows.
const MIN_SEMCONV: (u64, u64, u64) = (1, 37, 0);
const MAX_SEMCONV: (u64, u64, u64) = (1, 40, 0);

fn prepare_set_semconv_span_name(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    if let Some(Value::String(version)) = arg(args, 0) {
        check_semconv_version(version)?;
    }
    if let Some(Value::String(attr)) = arg(args, 1)
        && attr.is_empty()
    {
        return Err("originalSpanNameAttribute cannot be an empty string".into());
    }
    Ok(None)
}

fn check_semconv_version(version: &str) -> Result<(), String> {
    let quoted = go_quote(version);
    let (core, prerelease) = parse_semver(version)
        .ok_or_else(|| format!("failed to parse semconv version {quoted}: Invalid Semantic Version"))?;
    // A pre-release sorts below its release.
    let cmp = |bound: (u64, u64, u64)| {
        core.cmp(&bound).then(if prerelease { Ordering::Less } else { Ordering::Equal })
    };
    if cmp(MIN_SEMCONV) == Ordering::Less || cmp(MAX_SEMCONV) == Ordering::Greater {
        let (a, b) = (MIN_SEMCONV, MAX_SEMCONV);
        return Err(format!(
            "unsupported semconv version {quoted}: must be between {}.{}.{} and {}.{}.{}",
            a.0, a.1, a.2, b.0, b.1, b.2
        ));
    }
    Ok(())
}

/// A version as Masterminds/semver's `NewVersion` reads it: an optional `v`, one to three numbers,
/// an optional `-pre.release` and `+build.metadata`. Returns the numbers and whether it is a
/// pre-release.
fn parse_semver(s: &str) -> Option<((u64, u64, u64), bool)> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let ident_list = |part: &str| {
        part.split('.').all(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let (rest, metadata) = match s.split_once('+') {
        Some((rest, meta)) => (rest, Some(meta)),
        None => (s, None),
    };
    if metadata.is_some_and(|m| !ident_list(m)) {
        return None;
    }
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    if pre.is_some_and(|p| !ident_list(p)) {
        return None;
    }
    let mut numbers = [0u64; 3];
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    for (slot, part) in numbers.iter_mut().zip(&parts) {
        if part.is_empty() || !part.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    Some(((numbers[0], numbers[1], numbers[2]), pre.is_some()))
}

fn set_semconv_span_name(call: &mut Call<'_>) -> Result<(), EvalError> {
    let original = match call.read_context(Target::Span(SpanField::Name))? {
        Value::String(s) => s,
        Value::Nil => String::new(),
        other => return Err(EvalError::expected("string", &other)),
    };
    let kind = match call.read_context(Target::Span(SpanField::Kind))? {
        Value::Int(k) => k,
        _ => 0,
    };
    let mut attributes = match call.read_context(Target::Span(SpanField::Attributes))? {
        Value::Map(m) => m,
        _ => Vec::new(),
    };
    let name = semconv_span_name(kind, &attributes);
    if name.is_empty() || name == original {
        return Ok(());
    }
    call.write_context(Target::Span(SpanField::Name), Value::String(name))?;
    if let Some(attr) = literal_str(call, 1)? {
        map_put(&mut attributes, attr, Value::String(original));
        call.write_context(Target::Span(SpanField::Attributes), Value::Map(attributes))?;
    }
    Ok(())
}

const SPAN_KIND_SERVER: i64 = 2;
const SPAN_KIND_CLIENT: i64 = 3;
const SPAN_KIND_PRODUCER: i64 = 4;
const SPAN_KIND_CONSUMER: i64 = 5;

/// The low-cardinality name the semantic conventions give a span of this kind with these
/// attributes, or "" when they define none. The first rule that yields a name wins.
fn semconv_span_name(kind: i64, attrs: &Map) -> String {
    let rules: &[fn(&Map) -> String] = match kind {
        SPAN_KIND_SERVER => &[|a| http_span_name(a, "http.route"), rpc_span_name, messaging_span_name],
        SPAN_KIND_CLIENT => {
            &[|a| http_span_name(a, "url.template"), rpc_span_name, db_span_name, messaging_span_name]
        }
        SPAN_KIND_PRODUCER | SPAN_KIND_CONSUMER => &[messaging_span_name],
        _ => &[],
    };
    rules.iter().map(|rule| rule(attrs)).find(|name| !name.is_empty()).unwrap_or_default()
}

/// An attribute under its current name, else under its deprecated one.
fn attr_or<'a>(attrs: &'a Map, name: &str, deprecated: &str) -> Option<&'a Value> {
    Value::map_get(attrs, name).or_else(|| Value::map_get(attrs, deprecated))
}

fn attr_string(attrs: &Map, name: &str) -> Option<String> {
    Value::map_get(attrs, name).map(as_string)
}

/// `{method} {subject}` or `{method}` (HTTP spans).
fn http_span_name(attrs: &Map, subject: &str) -> String {
    let Some(method) = attr_or(attrs, "http.request.method", "http.method") else { return String::new() };
    let method = as_string(method);
    match attr_string(attrs, subject) {
        Some(s) => format!("{method} {s}"),
        None => method,
    }
}

/// `{service}/{method}`, `{method}`, `{service}/*` or the RPC system (RPC spans).
fn rpc_span_name(attrs: &Map) -> String {
    let Some(system) = attr_or(attrs, "rpc.system.name", "rpc.system") else { return String::new() };
    let method = attr_or(attrs, "rpc.method", "rpc.grpc.method").map(as_string);
    let service = attr_or(attrs, "rpc.service", "rpc.grpc.service").map(as_string);
    match (service, method) {
        (Some(s), Some(m)) => format!("{s}/{m}"),
        (None, Some(m)) => m,
        (Some(s), None) => format!("{s}/*"),
        (None, None) => as_string(system),
    }
}

/// The query summary, `{operation} {target}`, either alone, or the database system (DB spans).
fn db_span_name(attrs: &Map) -> String {
    let Some(system) = attr_or(attrs, "db.system.name", "db.system") else { return String::new() };
    if let Some(summary) = attr_string(attrs, "db.query.summary") {
        return summary;
    }
    let operation = attr_or(attrs, "db.operation.name", "db.operation").map(as_string).unwrap_or_default();
    let target = db_target(attrs);
    match (operation.is_empty(), target.is_empty()) {
        (false, false) => format!("{operation} {target}"),
        (false, true) => operation,
        (true, false) => target,
        (true, true) => as_string(system),
    }
}

fn db_target(attrs: &Map) -> String {
    let namespace = attr_or(attrs, "db.namespace", "db.name").map(as_string).unwrap_or_default();
    let qualified = |name: String| if namespace.is_empty() { name } else { format!("{namespace}.{name}") };
    if let Some(collection) = attr_string(attrs, "db.collection.name") {
        return qualified(collection);
    }
    if let Some(procedure) = attr_string(attrs, "db.stored_procedure.name") {
        return qualified(procedure);
    }
    if !namespace.is_empty() {
        return namespace;
    }
    server_address(attrs)
}

/// `{address}:{port}` or `{address}`, or "".
fn server_address(attrs: &Map) -> String {
    let Some(address) = attr_string(attrs, "server.address") else { return String::new() };
    match attr_string(attrs, "server.port") {
        Some(port) => format!("{address}:{port}"),
        None => address,
    }
}

/// `{operation} {destination}`, either alone, or the messaging system (messaging spans).
fn messaging_span_name(attrs: &Map) -> String {
    let Some(system) = Value::map_get(attrs, "messaging.system") else { return String::new() };
    let operation = attr_or(attrs, "messaging.operation.name", "messaging.operation").map(as_string);
    let destination = messaging_destination(attrs);
    match (operation, destination.is_empty()) {
        (Some(op), false) => format!("{op} {destination}"),
        (None, false) => destination,
        (Some(op), true) => op,
        (None, true) => as_string(system),
    }
}

fn messaging_destination(attrs: &Map) -> String {
    let flag = |name| matches!(Value::map_get(attrs, name), Some(Value::Bool(true)));
    if flag("messaging.destination.temporary") {
        return "(temporary)".into();
    }
    if flag("messaging.destination.anonymous") {
        return "(anonymous)".into();
    }
    if let Some(template) = attr_string(attrs, "messaging.destination.template") {
        return template;
    }
    if let Some(name) = attr_or(attrs, "messaging.destination.name", "messaging.destination") {
        return as_string(name);
    }
    server_address(attrs)
}

// === arguments ===

/// Argument `i` of what `prepare` receives.
fn arg<'a>(args: &[Option<&'a Value>], i: usize) -> Option<&'a Value> {
    args.get(i).copied().flatten()
}

/// A literal parameter at run time: the literal, else (were it bound otherwise) its value; `None`
/// when an optional one is absent.
fn literal_value(call: &mut Call<'_>, i: usize) -> Result<Option<Value>, EvalError> {
    if let Some(v) = call.literal(i) {
        return Ok(Some(v.clone()));
    }
    if call.present(i) { call.get(i).map(Some) } else { Ok(None) }
}

fn literal_int(call: &mut Call<'_>, i: usize) -> Result<Option<i64>, EvalError> {
    match literal_value(call, i)? {
        None => Ok(None),
        Some(Value::Int(n)) => Ok(Some(n)),
        Some(other) => Err(EvalError::expected("int64", &other)),
    }
}

fn literal_bool(call: &mut Call<'_>, i: usize) -> Result<Option<bool>, EvalError> {
    match literal_value(call, i)? {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(EvalError::expected("bool", &other)),
    }
}

fn literal_str(call: &mut Call<'_>, i: usize) -> Result<Option<String>, EvalError> {
    match literal_value(call, i)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(EvalError::expected("string", &other)),
    }
}

fn literal_list(call: &mut Call<'_>, i: usize) -> Result<Vec<Value>, EvalError> {
    match literal_value(call, i)? {
        None => Ok(Vec::new()),
        Some(Value::List(items)) => Ok(items),
        Some(other) => Err(EvalError::expected("list", &other)),
    }
}

/// Puts `value` under `key` as pdata's `PutEmpty` does: in the first entry of that key, else at the
/// end.
fn map_put(map: &mut Map, key: String, value: Value) {
    match map.iter_mut().find(|(k, _)| *k == key) {
        Some(entry) => entry.1 = value,
        None => map.push((key, value)),
    }
}

// === patterns: compile at bind time when literal, else per call ===

/// The Collector's message for a pattern that does not compile.
fn invalid_pattern(function: &str, pattern: &str, reason: &str) -> String {
    format!(
        "the regex pattern supplied to {function} '{}' is not a valid pattern: {reason}",
        go_quote(pattern)
    )
}

fn prepare_regex(function: &str, args: &[Option<&Value>], i: usize) -> Result<Option<Prepared>, String> {
    match arg(args, i) {
        Some(Value::String(pattern)) => {
            let re =
                compile_go_regex(pattern).map_err(|reason| invalid_pattern(function, pattern, &reason))?;
            Ok(Some(Box::new(re)))
        }
        _ => Ok(None),
    }
}

/// The regex of argument `i` compiled now, unless `prepare` compiled it.
fn dynamic_regex(call: &mut Call<'_>, function: &str, i: usize) -> Result<Option<Regex>, EvalError> {
    if call.prepared::<Regex>().is_some() {
        return Ok(None);
    }
    let pattern = call.string(i)?;
    compile_go_regex(&pattern)
        .map(Some)
        .map_err(|reason| EvalError::Function(invalid_pattern(function, &pattern, &reason)))
}

fn regex_in_use<'r>(call: &'r Call<'_>, dynamic: Option<&'r Regex>) -> Result<&'r Regex, EvalError> {
    dynamic
        .or_else(|| call.prepared::<Regex>())
        .ok_or_else(|| EvalError::Function(format!("{}: no pattern", call.name())))
}

fn prepare_glob(function: &str, args: &[Option<&Value>], i: usize) -> Result<Option<Prepared>, String> {
    match arg(args, i) {
        Some(Value::String(pattern)) => {
            let glob =
                Glob::compile(pattern).map_err(|reason| invalid_pattern(function, pattern, &reason))?;
            Ok(Some(Box::new(glob)))
        }
        _ => Ok(None),
    }
}

fn dynamic_glob(call: &mut Call<'_>, function: &str, i: usize) -> Result<Option<Glob>, EvalError> {
    if call.prepared::<Glob>().is_some() {
        return Ok(None);
    }
    let pattern = call.string(i)?;
    Glob::compile(&pattern)
        .map(Some)
        .map_err(|reason| EvalError::Function(invalid_pattern(function, &pattern, &reason)))
}

fn glob_in_use<'r>(call: &'r Call<'_>, dynamic: Option<&'r Glob>) -> Result<&'r Glob, EvalError> {
    dynamic
        .or_else(|| call.prepared::<Glob>())
        .ok_or_else(|| EvalError::Function(format!("{}: no pattern", call.name())))
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// === Go regexp ===

/// Compiles an RE2 pattern with Go's meaning. The `regex` crate reads nearly the same syntax; the
/// differences that change matches are rewritten first: Go's `\d`, `\w`, `\s`, `\b` and `\B` are
/// ASCII-only, `\Q…\E` quotes, a `{` that starts no repetition is a literal, and `[`, `&`, `~` inside
/// a class are plain characters. Errors read as Go's do ("error parsing regexp: …").
fn compile_go_regex(pattern: &str) -> Result<Regex, String> {
    let source = translate_go_regex(pattern)?;
    Regex::new(&source).map_err(|e| go_regex_error(pattern, &e))
}

fn go_regex_error(pattern: &str, e: &regex::Error) -> String {
    let text = e.to_string();
    let detail = text.lines().rev().find_map(|l| l.trim().strip_prefix("error: ")).unwrap_or(text.trim());
    let code = if detail.contains("repetition operator missing expression") {
        "missing argument to repetition operator"
    } else if detail.contains("unclosed group") {
        "missing closing )"
    } else if detail.contains("unopened group") {
        "unexpected )"
    } else if detail.contains("unclosed character class") {
        "missing closing ]"
    } else if detail.contains("invalid character class range") {
        "invalid character class range"
    } else if detail.contains("incomplete escape sequence") {
        "trailing backslash at end of expression"
    } else if detail.contains("unrecognized escape sequence") {
        "invalid escape sequence"
    } else if detail.contains("look-around") || detail.contains("unrecognized flag") {
        "invalid or unsupported Perl syntax"
    } else if detail.contains("repetition") || detail.contains("decimal") {
        "invalid repeat count"
    } else {
        detail
    };
    format!("error parsing regexp: {code}: `{pattern}`")
}

/// Go's `\s` (no vertical tab) and `\w`, for use inside a class.
const GO_SPACE: &str = "\\t\\n\\f\\r ";
const GO_WORD: &str = "0-9A-Za-z_";

fn translate_go_regex(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    out.push('\\');
                    i += 1;
                    continue;
                };
                match next {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[0-9A-Za-z_]"),
                    'W' => out.push_str("[^0-9A-Za-z_]"),
                    's' => {
                        let _ = write!(out, "[{GO_SPACE}]");
                    }
                    'S' => {
                        let _ = write!(out, "[^{GO_SPACE}]");
                    }
                    'b' => out.push_str("(?-u:\\b)"),
                    // Escaped punctuation in Go; word-boundary assertions in Rust.
                    c @ ('<' | '>') => out.push(c),
                    'B' => out.push_str("(?-u:\\B)"),
                    'Q' => {
                        // Literal text up to `\E` or the end.
                        let rest: String = chars[i + 2..].iter().collect();
                        let (literal, consumed) = match rest.find("\\E") {
                            Some(end) => (&rest[..end], end + 2),
                            None => (rest.as_str(), rest.len()),
                        };
                        out.push_str(&regex::escape(literal));
                        i += 2 + rest[..consumed].chars().count();
                        continue;
                    }
                    c @ ('x' | 'p' | 'P') if chars.get(i + 2) == Some(&'{') => {
                        // `\x{…}`, `\p{…}`: copied through the closing brace.
                        let close = chars[i + 2..]
                            .iter()
                            .position(|c| *c == '}')
                            .map_or(chars.len(), |n| i + 2 + n + 1);
                        out.push('\\');
                        out.push(c);
                        out.extend(&chars[i + 2..close]);
                        i = close;
                        continue;
                    }
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                i += 2;
            }
            '[' => i = translate_class(&chars, i, &mut out),
            '{' => match repeat_len(&chars[i..])? {
                Some(n) => {
                    out.extend(&chars[i..i + n]);
                    i += n;
                }
                None => {
                    out.push_str("\\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The length of a repetition `{n}`, `{n,}` or `{n,m}` at the start of `chars`, `None` when there
/// is none there (Go then reads the brace literally). Counts above 1000 are Go's error.
fn repeat_len(chars: &[char]) -> Result<Option<usize>, String> {
    let mut i = 1;
    let digits = |from: usize| chars[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let min_len = digits(i);
    if min_len == 0 {
        return Ok(None);
    }
    let min: String = chars[i..i + min_len].iter().collect();
    i += min_len;
    let mut max = None;
    if chars.get(i) == Some(&',') {
        i += 1;
        let max_len = digits(i);
        if max_len > 0 {
            max = Some(chars[i..i + max_len].iter().collect::<String>());
        }
        i += max_len;
    }
    if chars.get(i) != Some(&'}') {
        return Ok(None);
    }
    let too_big = |s: &str| s.parse::<u32>().map_or(true, |n| n > 1000);
    let min_big = too_big(&min);
    if min_big || max.as_deref().is_some_and(too_big) {
        let text: String = chars[..=i].iter().collect();
        return Err(format!("error parsing regexp: invalid repeat count: `{text}`"));
    }
    Ok(Some(i + 1))
}

/// Copies the class that opens at `chars[start]`, rewriting what Go reads differently; returns the
/// index after it.
fn translate_class(chars: &[char], start: usize, out: &mut String) -> usize {
    out.push('[');
    let mut i = start + 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first in a class is a literal.
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            ']' => {
                out.push(']');
                return i + 1;
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                // A POSIX class `[:name:]`, read alike by both.
                let rest: String = chars[i..].iter().collect();
                match rest.find(":]") {
                    Some(end) => {
                        out.push_str(&rest[..end + 2]);
                        i += rest[..end + 2].chars().count();
                    }
                    None => {
                        out.push_str("\\[");
                        i += 1;
                    }
                }
            }
            c @ ('[' | '&' | '~') => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '\\' => {
                let Some(&next) = chars.get(i + 1) else {
                    out.push('\\');
                    return i + 1;
                };
                match next {
                    'd' => out.push_str("0-9"),
                    c @ ('<' | '>') => out.push(c),
                    'w' => out.push_str(GO_WORD),
                    's' => out.push_str(GO_SPACE),
                    'D' => out.push_str("\\x{0}-\\x{2f}\\x{3a}-\\x{10ffff}"),
                    'W' => {
                        out.push_str("\\x{0}-\\x{2f}\\x{3a}-\\x{40}\\x{5b}-\\x{5e}\\x{60}\\x{7b}-\\x{10ffff}")
                    }
                    'S' => out.push_str("\\x{0}-\\x{8}\\x{b}\\x{e}-\\x{1f}\\x{21}-\\x{10ffff}"),
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    i
}

/// The matches of `re` in `s` as Go's `FindAll…` reports them: an empty match right where the
/// previous match ended is skipped.
fn go_find_all<'h>(re: &Regex, s: &'h str) -> Vec<Captures<'h>> {
    let mut found = Vec::new();
    let mut pos = 0;
    let mut prev_end = None;
    while pos <= s.len() {
        let Some(caps) = re.captures_at(s, pos) else { break };
        let Some(m) = caps.get(0) else { break };
        let mut accept = true;
        if m.end() == pos {
            // An empty match here: step over one character.
            if prev_end == Some(m.start()) {
                accept = false;
            }
            pos += s[pos..].chars().next().map_or(1, char::len_utf8);
        } else {
            pos = m.end();
        }
        prev_end = Some(m.end());
        if accept {
            found.push(caps);
        }
    }
    found
}

/// Go's `Regexp.ReplaceAllString`: every match replaced by `template` expanded, except an empty
/// match right after the previous match.
fn go_replace_all(re: &Regex, s: &str, template: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= s.len() {
        let Some(caps) = re.captures_at(s, search) else { break };
        let Some(m) = caps.get(0) else { break };
        out.push_str(&s[last_end..m.start()]);
        if m.end() > last_end || m.start() == 0 {
            go_expand(&mut out, template, re, &caps);
        }
        last_end = m.end();
        let width = s[search..].chars().next().map_or(0, char::len_utf8);
        search = if search + width > m.end() {
            search + width
        } else if search + 1 > m.end() {
            search + 1
        } else {
            m.end()
        };
    }
    out.push_str(&s[last_end..]);
    out
}

/// Go's `Regexp.Expand`: `$name` or `${name}` with the longest name of letters, digits and `_`
/// (`$1a` is the group named `1a`), a number naming a group by index (no leading zeros), `$$` for
/// `$`; an unknown or unmatched group expands to nothing, a `$` starting no name is kept.
fn go_expand(out: &mut String, template: &str, re: &Regex, caps: &Captures<'_>) {
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
            continue;
        }
        let Some((name, after)) = group_ref(rest) else {
            out.push('$');
            continue;
        };
        rest = after;
        let index = match name.parse::<usize>() {
            Ok(n)
                if name.bytes().all(|b| b.is_ascii_digit())
                    && (name.len() == 1 || !name.starts_with('0')) =>
            {
                Some(n)
            }
            _ => None,
        };
        let group = match index {
            Some(n) => caps.get(n),
            None => re.capture_names().position(|n| n == Some(name)).and_then(|n| caps.get(n)),
        };
        if let Some(g) = group {
            out.push_str(g.as_str());
        }
    }
    out.push_str(rest);
}

/// The group name at the start of `s` (just after a `$`) and what follows it.
fn group_ref(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphabetic() || c.is_numeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced { after.strip_prefix('}').map(|after| (name, after)) } else { Some((name, after)) }
}

// === gobwas/glob ===

/// A glob pattern as github.com/gobwas/glob compiles it without separators: `*` (and `**`) any
/// text, `?` one character, `[abc]`, `[a-z]` and their `[!…]` negations one character, `{a,b}`
/// alternatives, `\` escaping the next character. The whole string must match.
#[derive(Debug)]
struct Glob(Regex);

impl Glob {
    fn compile(pattern: &str) -> Result<Self, String> {
        let mut source = String::from("\\A(?s:");
        GlobParser { chars: pattern.chars().take_while(|c| *c != '\0').collect(), pos: 0 }
            .parse(&mut source)?;
        source.push_str(")\\z");
        Regex::new(&source).map(Glob).map_err(|e| e.to_string())
    }

    fn matches(&self, s: &str) -> bool {
        self.0.is_match(s)
    }
}

/// Reads a glob as gobwas's lexer and parser do, writing the equivalent regex.
struct GlobParser {
    chars: Vec<char>,
    pos: usize,
}

impl GlobParser {
    fn parse(&mut self, out: &mut String) -> Result<(), String> {
        let mut open_terms = 0usize;
        while let Some(&c) = self.chars.get(self.pos) {
            match c {
                '{' => {
                    self.pos += 1;
                    open_terms += 1;
                    out.push_str("(?:");
                }
                ',' if open_terms > 0 => {
                    self.pos += 1;
                    out.push('|');
                }
                '}' if open_terms > 0 => {
                    self.pos += 1;
                    open_terms -= 1;
                    out.push(')');
                }
                '[' => {
                    self.pos += 1;
                    self.range(out)?;
                }
                '?' => {
                    self.pos += 1;
                    out.push('.');
                }
                '*' => {
                    self.pos += 1;
                    if self.chars.get(self.pos) == Some(&'*') {
                        self.pos += 1;
                    }
                    out.push_str(".*");
                }
                _ => {
                    let breakers: &[char] =
                        if open_terms > 0 { &['?', '*', '[', '{', '}', ','] } else { &['?', '*', '[', '{'] };
                    let text = self.text(breakers);
                    out.push_str(&regex::escape(&text));
                }
            }
        }
        // gobwas accepts unclosed alternatives as if closed at the end.
        for _ in 0..open_terms {
            out.push(')');
        }
        Ok(())
    }

    /// Text up to a breaker, with `\` escaping the next character (a trailing `\` is dropped).
    fn text(&mut self, breakers: &[char]) -> String {
        let mut text = String::new();
        let mut escaped = false;
        while let Some(&c) = self.chars.get(self.pos) {
            if !escaped {
                if c == '\\' {
                    escaped = true;
                    self.pos += 1;
                    continue;
                }
                if breakers.contains(&c) {
                    break;
                }
            }
            escaped = false;
            text.push(c);
            self.pos += 1;
        }
        text
    }

    /// The rest of a `[…]` after its `[`.
    fn range(&mut self, out: &mut String) -> Result<(), String> {
        let mut negated = false;
        let mut seen_not = false;
        let (mut lo, mut hi, mut chars) = (None, None, String::new());
        let mut want_hi = false;
        let mut want_close = false;
        loop {
            let Some(&c) = self.chars.get(self.pos) else { return Err("unexpected end of input".into()) };
            self.pos += 1;
            if want_close {
                if c != ']' {
                    return Err("expected close range character".into());
                }
                break;
            }
            if want_hi {
                hi = Some(c);
                want_close = true;
                continue;
            }
            if !seen_not && c == '!' {
                negated = true;
                seen_not = true;
                continue;
            }
            if self.chars.get(self.pos) == Some(&'-') {
                self.pos += 1;
                lo = Some(c);
                want_hi = true;
                continue;
            }
            self.pos -= 1;
            chars = self.text(&[']']);
            want_close = true;
        }
        out.push('[');
        if negated {
            out.push('^');
        }
        match (lo, hi, chars.is_empty()) {
            (Some(lo), Some(hi), true) => {
                if hi < lo {
                    return Err(format!("hi character '{hi}' should be greater than lo '{lo}'"));
                }
                let _ = write!(out, "\\x{{{:x}}}-\\x{{{:x}}}", u32::from(lo), u32::from(hi));
            }
            (None, None, false) => {
                for c in chars.chars() {
                    let _ = write!(out, "\\x{{{:x}}}", u32::from(c));
                }
            }
            _ => return Err("could not parse range".into()),
        }
        out.push(']');
        Ok(())
    }
}

#[cfg(test)]
#[path = "editors_tests.rs"]
mod tests;
