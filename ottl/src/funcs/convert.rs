//! Conversion and inspection converters: `String`, `Int`, `Double`, `Bool`, `ParseInt`, `Hex`, the
//! `Is*` type checks, `Coalesce`, `ContainsValue`, `Keys`, `Values`, `SliceToMap`, `Sort`, `Log`,
//! `ParseJSON`, `ParseSeverity`, and the lambda converters (`All`, `Any`, `Filter`, `Find`,
//! `MapEach`, `MapKeys`, `Reduce`, `When`), which only exist behind a feature gate Kyma leaves off.

use std::cmp::Ordering;

use super::strings::{
    fail, go_quote, lit_string, lit_string_list, map_put, pcommon_as_string, prep_arg, prep_str, sprint_v,
};
use super::{Call, FunctionDef, Param, ParamType, Prepared, Run, hex};
use crate::ast::CompareOp;
use crate::eval::EvalError;
use crate::value::Value;

use ParamType as T;

const fn req(name: &'static str, ty: ParamType) -> Param {
    Param { name, ty, optional: false }
}

const fn opt(name: &'static str, ty: ParamType) -> Param {
    Param { name, ty, optional: true }
}

const fn converter(name: &'static str, params: &'static [Param], run: super::ConverterFn) -> FunctionDef {
    FunctionDef { name, params, prepare: None, run: Run::Converter(run) }
}

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    converter("String", &[req("target", T::StringLikeGetter)], string_fn),
    converter("Int", &[req("target", T::IntLikeGetter)], int_fn),
    converter("Double", &[req("target", T::FloatLikeGetter)], double_fn),
    converter("Bool", &[req("target", T::BoolLikeGetter)], bool_fn),
    converter("ParseInt", &[req("target", T::StringGetter), req("base", T::IntGetter)], parse_int),
    converter("Hex", &[req("target", T::ByteSliceLikeGetter)], hex_fn),
    converter("IsBool", &[req("target", T::BoolGetter)], is_bool),
    converter("IsDouble", &[req("target", T::FloatGetter)], is_double),
    converter("IsEmpty", &[req("target", T::Getter)], is_empty),
    converter("IsList", &[req("target", T::Getter)], is_list),
    converter("IsInt", &[req("target", T::IntGetter)], is_int),
    converter("IsMap", &[req("target", T::PMapGetter)], is_map),
    converter("IsString", &[req("target", T::StringGetter)], is_string),
    converter("Coalesce", &[req("values", T::GetterList)], coalesce),
    converter("ContainsValue", &[req("target", T::PSliceGetter), req("item", T::Getter)], contains_value),
    converter("Keys", &[req("target", T::PMapGetter)], keys),
    converter("Values", &[req("target", T::PMapGetter)], values),
    converter(
        "SliceToMap",
        &[req("target", T::PSliceGetter), opt("keyPath", T::StringList), opt("valuePath", T::StringList)],
        slice_to_map,
    ),
    FunctionDef {
        name: "Sort",
        params: &[req("target", T::Getter), opt("order", T::String)],
        prepare: Some(prepare_sort),
        run: Run::Converter(sort),
    },
    converter("Log", &[req("target", T::FloatLikeGetter)], log),
    converter("ParseJSON", &[req("target", T::StringGetter)], parse_json),
    FunctionDef {
        name: "ParseSeverity",
        params: &[req("target", T::Getter), req("mapping", T::PMapGetter)],
        prepare: Some(prepare_parse_severity),
        run: Run::Converter(parse_severity),
    },
    converter("All", &[req("source", T::Getter), req("predicate", T::Lambda)], lambda_gated),
    converter("Any", &[req("source", T::Getter), req("predicate", T::Lambda)], lambda_gated),
    converter("Filter", &[req("source", T::Getter), req("predicate", T::Lambda)], lambda_gated),
    converter(
        "Find",
        &[req("source", T::Getter), req("predicate", T::Lambda), opt("mapper", T::Lambda)],
        lambda_gated,
    ),
    converter("MapEach", &[req("source", T::Getter), req("mapper", T::Lambda)], lambda_gated),
    converter("MapKeys", &[req("source", T::PMapGetter), req("keyMapper", T::Lambda)], lambda_gated),
    converter(
        "Reduce",
        &[req("source", T::Getter), req("seed", T::Getter), req("accumulator", T::Lambda)],
        lambda_gated,
    ),
    converter(
        "When",
        &[req("condition", T::Lambda), req("trueValue", T::Getter), req("falseValue", T::Getter)],
        lambda_gated,
    ),
];

// === conversions ===

fn string_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(call.string_like(0)?.map_or(Value::Nil, Value::String))
}

fn int_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(call.int_like(0)?.map_or(Value::Nil, Value::Int))
}

fn double_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(call.float_like(0)?.map_or(Value::Nil, Value::Float))
}

fn bool_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(call.bool_like(0)?.map_or(Value::Nil, Value::Bool))
}

/// Go's `strconv` rule for underscores in a base-prefixed literal: only between digits.
fn underscores_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut saw = b'^';
    let mut i = 0;
    let mut hex = false;
    if b.len() >= 2 && b[0] == b'0' && matches!(b[1].to_ascii_lowercase(), b'b' | b'o' | b'x') {
        i = 2;
        saw = b'0';
        hex = b[1].eq_ignore_ascii_case(&b'x');
    }
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || hex && c.is_ascii_hexdigit() {
            saw = b'0';
        } else if c == b'_' {
            if saw != b'0' {
                return false;
            }
            saw = b'_';
        } else {
            if saw == b'_' {
                return false;
            }
            saw = b'!';
        }
        i += 1;
    }
    saw != b'_'
}

/// Go's `strconv.ParseInt(s, base, 64)`, with its error messages.
pub(crate) fn go_parse_int(s: &str, base: i64) -> Result<i64, String> {
    let error = |why: &str| format!("strconv.ParseInt: parsing {}: {why}", go_quote(s));
    if s.is_empty() {
        return Err(error("invalid syntax"));
    }
    let (negative, unsigned) = match s.as_bytes()[0] {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if unsigned.is_empty() {
        return Err(error("invalid syntax"));
    }
    let base_zero = base == 0;
    let (base, digits) = if base_zero {
        let b = unsigned.as_bytes();
        if b[0] == b'0' {
            match b.get(1).map(u8::to_ascii_lowercase) {
                Some(b'b') if b.len() >= 3 => (2, &unsigned[2..]),
                Some(b'o') if b.len() >= 3 => (8, &unsigned[2..]),
                Some(b'x') if b.len() >= 3 => (16, &unsigned[2..]),
                _ => (8, &unsigned[1..]),
            }
        } else {
            (10, unsigned)
        }
    } else if (2..=36).contains(&base) {
        (u64::try_from(base).unwrap_or(10), unsigned)
    } else {
        return Err(error(&format!("invalid base {base}")));
    };
    let mut n: u64 = 0;
    let mut out_of_range = false;
    let mut underscores = false;
    for c in digits.bytes() {
        let d = match c {
            b'_' if base_zero => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u64::from(c - b'0'),
            c if c.is_ascii_alphabetic() => u64::from(c.to_ascii_lowercase() - b'a') + 10,
            _ => return Err(error("invalid syntax")),
        };
        if d >= base {
            return Err(error("invalid syntax"));
        }
        if !out_of_range {
            match n.checked_mul(base).and_then(|v| v.checked_add(d)) {
                Some(v) => n = v,
                None => out_of_range = true,
            }
        }
    }
    if underscores && !underscores_ok(unsigned) {
        return Err(error("invalid syntax"));
    }
    let cutoff = 1u64 << 63;
    if out_of_range || (!negative && n >= cutoff) || (negative && n > cutoff) {
        return Err(error("value out of range"));
    }
    Ok(if negative { 0i64.wrapping_sub_unsigned(n) } else { i64::try_from(n).unwrap_or(i64::MAX) })
}

fn parse_int(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    if target.is_empty() {
        return Err(fail("invalid target value for ParseInt function, target cannot be empty"));
    }
    let base = call.int(1)?;
    if base < 0 {
        return Err(fail(format!(
            "invalid base value: {base} for ParseInt function, base cannot be negative"
        )));
    }
    go_parse_int(&target, base).map(Value::Int).map_err(fail)
}

fn hex_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::String(call.bytes_like(0)?.map_or_else(String::new, |b| hex(&b))))
}

// === type checks ===

/// The verdict of a strict getter: a type mismatch is `false`, any other failure propagates.
fn type_check<V>(result: Result<V, EvalError>) -> Result<Value, EvalError> {
    match result {
        Ok(_) => Ok(Value::Bool(true)),
        Err(EvalError::Type { .. }) => Ok(Value::Bool(false)),
        Err(e) => Err(e),
    }
}

fn is_bool(call: &mut Call<'_>) -> Result<Value, EvalError> {
    type_check(call.bool(0))
}

fn is_double(call: &mut Call<'_>) -> Result<Value, EvalError> {
    type_check(call.float(0))
}

fn is_int(call: &mut Call<'_>) -> Result<Value, EvalError> {
    type_check(call.int(0))
}

fn is_map(call: &mut Call<'_>) -> Result<Value, EvalError> {
    type_check(call.map(0))
}

fn is_string(call: &mut Call<'_>) -> Result<Value, EvalError> {
    type_check(call.string(0))
}

fn is_list(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(matches!(call.get(0)?, Value::List(_))))
}

/// Go's zero-value test as `IsEmpty` applies it.
fn is_empty(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Bool(match call.get(0)? {
        Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) => i == 0,
        // Only +0.0 is Go's zero value (reflect compares the bits).
        Value::Float(f) => f.to_bits() == 0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::TraceId(id) => id.iter().all(|&b| b == 0),
        Value::SpanId(id) => id.iter().all(|&b| b == 0),
        Value::ProfileId(id) => id.iter().all(|&b| b == 0),
        // Go's zero time (year 1) cannot occur here.
        Value::Time(_) => false,
        Value::Duration(d) => d == 0,
    }))
}

// === maps and lists ===

fn coalesce(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(call.items(0)?.into_iter().find(|v| !matches!(v, Value::Nil)).unwrap_or(Value::Nil))
}

fn contains_value(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let list = call.list(0)?;
    let item = call.get(1)?;
    Ok(Value::Bool(list.iter().any(|v| v.compare(&item, CompareOp::Eq))))
}

/// A map's entries with the first value of each key (as `pcommon.Map` reads them).
fn distinct_entries(entries: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        if !out.iter().any(|(seen, _)| *seen == k) {
            out.push((k, v));
        }
    }
    out
}

fn keys(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let entries = distinct_entries(call.map(0)?);
    Ok(Value::List(entries.into_iter().map(|(k, _)| Value::String(k)).collect()))
}

fn values(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let entries = distinct_entries(call.map(0)?);
    Ok(Value::List(entries.into_iter().map(|(_, v)| v).collect()))
}

/// The `pcommon.ValueType` name of an element.
fn pcommon_type(value: &Value) -> &'static str {
    match value {
        Value::Nil => "Empty",
        Value::String(_) => "Str",
        Value::Int(_) => "Int",
        Value::Float(_) => "Double",
        Value::Bool(_) => "Bool",
        Value::Map(_) => "Map",
        Value::List(_) => "Slice",
        _ => "Bytes",
    }
}

/// The value at `path` inside a map, each step but the last a map.
fn extract<'a>(map: &'a [(String, Value)], path: &[String]) -> Result<&'a Value, String> {
    let not_found = || format!("provided object does not contain the path [{}]", path.join(" "));
    let (first, rest) = path.split_first().ok_or("must provide at least one path item")?;
    let value = Value::map_get(map, first).ok_or_else(not_found)?;
    if rest.is_empty() {
        return Ok(value);
    }
    match value {
        Value::Map(inner) => extract(inner, rest),
        _ => Err(not_found()),
    }
}

fn slice_to_map(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let list = call.list(0)?;
    let key_path = lit_string_list(call, 1)?;
    let value_path = lit_string_list(call, 2)?;
    let mut out: Vec<(String, Value)> = Vec::with_capacity(list.len());
    for (i, element) in list.into_iter().enumerate() {
        if key_path.is_none() && value_path.is_none() {
            map_put(&mut out, i.to_string(), element);
            continue;
        }
        let Value::Map(entries) = &element else {
            return Err(fail(format!(
                "could not cast element of type `{}` to a map",
                pcommon_type(&element)
            )));
        };
        let key = match &key_path {
            Some(path) => match extract(entries, path) {
                Ok(Value::String(k)) => k.clone(),
                Ok(_) => return Err(fail("extracted key attribute is not of type string")),
                Err(e) => return Err(fail(format!("could not extract key from element {i}: {e}"))),
            },
            None => i.to_string(),
        };
        let value = match &value_path {
            Some(path) => extract(entries, path)
                .map_err(|e| fail(format!("could not extract value from element {i}: {e}")))?
                .clone(),
            None => element.clone(),
        };
        map_put(&mut out, key, value);
    }
    Ok(Value::Map(out))
}

fn invalid_order(order: &str) -> String {
    format!("invalid arguments: {order}. Order should be either \"asc\" or \"desc\"")
}

fn prepare_sort(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    match prep_str(args, 1) {
        Some(order) if order != "asc" && order != "desc" => Err(invalid_order(order)),
        _ => Ok(None),
    }
}

/// Go's `cmp.Compare` on floats: NaN first, and equal to itself.
fn go_cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn sort(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let order = lit_string(call, 1)?.unwrap_or_else(|| "asc".to_owned());
    if order != "asc" && order != "desc" {
        return Err(fail(invalid_order(&order)));
    }
    let target = call.get(0)?;
    let Value::List(mut items) = target else {
        return Err(fail(format!("sort with unsupported type: '{}'", target.type_name())));
    };
    // One kind of comparison for all: integers, numbers as doubles, or text.
    let (mut ints, mut floats, mut text) = (false, false, false);
    for item in &items {
        match item {
            Value::Int(_) => ints = true,
            Value::Float(_) => floats = true,
            Value::String(_) | Value::Bool(_) | Value::Nil => text = true,
            other => return Err(fail(format!("sort with unsupported type: '{}'", other.type_name()))),
        }
    }
    let desc = order == "desc";
    let directed = |o: Ordering| if desc { o.reverse() } else { o };
    if text {
        // Compared by their string forms; the values keep their types.
        let mut keyed: Vec<(String, Value)> = items.into_iter().map(|v| (pcommon_as_string(&v), v)).collect();
        keyed.sort_by(|a, b| directed(a.0.cmp(&b.0)));
        items = keyed.into_iter().map(|(_, v)| v).collect();
    } else if floats {
        let as_f64 = |v: &Value| match v {
            Value::Int(i) => *i as f64,
            Value::Float(f) => *f,
            _ => 0.0,
        };
        items.sort_by(|a, b| directed(go_cmp_f64(as_f64(a), as_f64(b))));
    } else if ints {
        items.sort_by(|a, b| match (a, b) {
            (Value::Int(x), Value::Int(y)) => directed(x.cmp(y)),
            _ => Ordering::Equal,
        });
    }
    Ok(Value::List(items))
}

fn log(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let Some(value) = call.float_like(0)? else {
        return Err(fail("invalid input: <nil>"));
    };
    if value <= 0.0 {
        return Err(fail(format!(
            "invalid input: expected number greater than zero but got {}",
            sprint_v(&Value::Float(value))
        )));
    }
    Ok(Value::Float(value.ln()))
}

// === ParseJSON ===

/// A JSON document read into values as the Collector reads it: numbers become doubles, `null` an
/// empty value, object keys keep their order (a repeated key keeps its first place, last value).
struct Json(Value);

struct JsonVisitor;

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor).map(Json)
    }
}

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Json(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, Json(value))) = map.next_entry::<String, Json>()? {
            map_put(&mut entries, key, value);
        }
        Ok(Value::Map(entries))
    }
}

/// Parses a JSON object or array.
pub(crate) fn parse_json_document(text: &str) -> Result<Value, String> {
    use serde::Deserialize as _;
    match text.trim_start().as_bytes().first() {
        Some(b'{' | b'[') => {}
        _ => {
            // A scalar parses, then is refused by its Go type, as the Collector words it.
            let scalar: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("could not parse JSON: {e}"))?;
            let go_type = match scalar {
                serde_json::Value::Null => "<nil>",
                serde_json::Value::Bool(_) => "bool",
                serde_json::Value::Number(_) => "float64",
                _ => "string",
            };
            return Err(format!("could not convert parsed value of type {go_type} to JSON object"));
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let Json(value) = Json::deserialize(&mut de).map_err(|e| format!("could not parse JSON: {e}"))?;
    de.end().map_err(|e| format!("could not parse JSON: {e}"))?;
    Ok(value)
}

fn parse_json(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    parse_json_document(&target).map_err(fail)
}

// === ParseSeverity ===

/// One criterion of a severity level: strings it equals, or an inclusive range of integers.
struct Criterion {
    equals: Vec<String>,
    range: Option<(i64, i64)>,
}

/// The mapping, level by level in the order given; or why it is malformed (reported when called,
/// as the Collector does).
type Severities = Result<Vec<(String, Vec<Criterion>)>, String>;

fn criterion(map: &[(String, Value)]) -> Result<Criterion, String> {
    let mut c = Criterion { equals: Vec::new(), range: None };
    if let Some(equals) = Value::map_get(map, "equals") {
        let Value::List(items) = equals else {
            return Err("equals must be a list".into());
        };
        for item in items {
            match item {
                Value::String(s) => c.equals.push(s.clone()),
                _ => return Err("equals values must be strings".into()),
            }
        }
    }
    if let Some(range) = Value::map_get(map, "range") {
        c.range = Some(match range {
            Value::Map(bounds) => {
                let min = Value::map_get(bounds, "min").ok_or("range must have a min value")?;
                let max = Value::map_get(bounds, "max").ok_or("range must have a max value")?;
                let Value::Int(min) = min else {
                    return Err("min must be an int64".into());
                };
                let Value::Int(max) = max else {
                    return Err("max must be an int64".into());
                };
                (*min, *max)
            }
            Value::String(placeholder) => match placeholder.as_str() {
                "2xx" => (200, 299),
                "3xx" => (300, 399),
                "4xx" => (400, 499),
                "5xx" => (500, 599),
                other => return Err(format!("unknown range placeholder: {other}")),
            },
            _ => return Err("range must be a map or a known placeholder string".into()),
        });
    }
    Ok(c)
}

fn severities(mapping: &[(String, Value)]) -> Severities {
    let mut out = Vec::new();
    for (level, criteria) in distinct_entries(mapping.to_vec()) {
        let Value::List(items) = criteria else {
            return Err("severity mapping criteria must be []any".into());
        };
        let mut parsed = Vec::with_capacity(items.len());
        for item in &items {
            let Value::Map(map) = item else {
                return Err("severity mapping criteria items must be map[string]any".into());
            };
            parsed.push(criterion(map).map_err(|e| format!("invalid severity mapping criteria: {e}"))?);
        }
        out.push((level, parsed));
    }
    Ok(out)
}

fn prepare_parse_severity(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    match prep_arg(args, 1) {
        Some(Value::Map(mapping)) => Ok(Some(Box::new(severities(mapping)))),
        _ => Ok(None),
    }
}

/// The Go type name a value shows in `%T`.
fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "<nil>",
        Value::Bytes(_) => "[]uint8",
        other => other.type_name(),
    }
}

fn evaluate_severity(value: &Value, levels: &[(String, Vec<Criterion>)]) -> Result<String, String> {
    for (level, criteria) in levels {
        for c in criteria {
            let matched = match value {
                Value::String(s) => c.equals.contains(s),
                Value::Int(i) => c.range.is_some_and(|(min, max)| (min..=max).contains(i)),
                other => {
                    return Err(format!(
                        "could not evaluate log level of value '{}': unsupported value type: {}",
                        sprint_v(other),
                        go_type_name(other)
                    ));
                }
            };
            if matched {
                return Ok(level.clone());
            }
        }
    }
    Err(format!("no matching log level found for value '{}'", sprint_v(value)))
}

fn parse_severity(call: &mut Call<'_>) -> Result<Value, EvalError> {
    // A literal mapping was checked at bind time; any other is read and checked per call.
    let prepared_error = match call.prepared::<Severities>() {
        Some(Err(e)) => Some(e.clone()),
        _ => None,
    };
    if let Some(e) = prepared_error {
        return Err(fail(e));
    }
    let dynamic = if call.prepared::<Severities>().is_none() {
        let mapping = call.map(1).map_err(|e| fail(format!("cannot get severity mapping: {e}")))?;
        Some(severities(&mapping).map_err(fail)?)
    } else {
        None
    };
    let value = call.get(0).map_err(|e| fail(format!("could not get log level: {e}")))?;
    let levels = match (&dynamic, call.prepared::<Severities>()) {
        (Some(levels), _) => levels.as_slice(),
        (None, Some(Ok(levels))) => levels.as_slice(),
        _ => &[],
    };
    evaluate_severity(&value, levels)
        .map(Value::String)
        .map_err(|e| fail(format!("could not map log level: {e}")))
}

// === lambdas ===

/// The lambda converters are registered with their signatures so calls are recognised, but lambda
/// expressions only exist behind a Collector feature gate that Kyma does not enable.
fn lambda_gated(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Err(fail(format!(
        "{} takes a lambda expression, which requires the ottl.functions.enableLambda feature gate",
        call.name()
    )))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
