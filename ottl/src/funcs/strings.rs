//! String converters: joining, splitting, casing, matching and parsing text (`Concat`, `Format`,
//! `IsMatch`, `ExtractGrokPatterns`, `ParseKeyValue`, `ParseCSV`, `URL`, `UserAgent`, ...).
//!
//! Regular expressions are written for Go's RE2; [`compile_go_regex`] reads them with Go's meaning
//! (`\d`, `\w`, `\s` and `\b` are ASCII-only there) before handing them to the `regex` crate.

use std::fmt::Write as _;
use std::net::IpAddr;

use regex::{Regex, RegexBuilder};

use super::{Call, FunctionDef, Param, ParamType, Prepared, Run, string_like, to_json};
use crate::ast::CompareOp;
use crate::eval::EvalError;
use crate::value::Value;

pub(crate) use gofmt::{go_quote, sprint_v};

use ParamType as T;

const fn req(name: &'static str, ty: ParamType) -> Param {
    Param { name, ty, optional: false }
}

const fn opt(name: &'static str, ty: ParamType) -> Param {
    Param { name, ty, optional: true }
}

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "Concat",
        params: &[req("vals", T::StringLikeGetterList), req("delimiter", T::StringGetter)],
        prepare: None,
        run: Run::Converter(concat),
    },
    FunctionDef {
        name: "ConvertCase",
        params: &[req("target", T::StringGetter), req("toCase", T::String)],
        prepare: Some(prepare_convert_case),
        run: Run::Converter(convert_case),
    },
    FunctionDef {
        name: "Format",
        params: &[req("format", T::String), req("vals", T::GetterList)],
        prepare: None,
        run: Run::Converter(format),
    },
    FunctionDef {
        name: "HasPrefix",
        params: &[req("target", T::StringGetter), req("prefix", T::StringGetter)],
        prepare: None,
        run: Run::Converter(has_prefix),
    },
    FunctionDef {
        name: "HasSuffix",
        params: &[req("target", T::StringGetter), req("suffix", T::StringGetter)],
        prepare: None,
        run: Run::Converter(has_suffix),
    },
    FunctionDef {
        name: "Index",
        params: &[req("target", T::Getter), req("value", T::Getter)],
        prepare: None,
        run: Run::Converter(index),
    },
    FunctionDef {
        name: "IsMatch",
        params: &[req("target", T::StringLikeGetter), req("pattern", T::StringGetter)],
        prepare: Some(prepare_is_match),
        run: Run::Converter(is_match),
    },
    FunctionDef { name: "Len", params: &[req("target", T::Getter)], prepare: None, run: Run::Converter(len) },
    FunctionDef {
        name: "Split",
        params: &[req("target", T::StringGetter), req("delimiter", T::StringGetter)],
        prepare: None,
        run: Run::Converter(split),
    },
    FunctionDef {
        name: "Substring",
        params: &[
            req("target", T::StringGetter),
            req("start", T::IntGetter),
            req("length", T::IntGetter),
            opt("utf8Safe", T::Bool),
        ],
        prepare: None,
        run: Run::Converter(substring),
    },
    FunctionDef {
        name: "Trim",
        params: &[req("target", T::StringGetter), opt("replacement", T::String)],
        prepare: None,
        run: Run::Converter(trim),
    },
    FunctionDef {
        name: "TrimPrefix",
        params: &[req("target", T::StringGetter), req("prefix", T::StringGetter)],
        prepare: None,
        run: Run::Converter(trim_prefix),
    },
    FunctionDef {
        name: "TrimSuffix",
        params: &[req("target", T::StringGetter), req("suffix", T::StringGetter)],
        prepare: None,
        run: Run::Converter(trim_suffix),
    },
    FunctionDef {
        name: "ToCamelCase",
        params: &[req("target", T::StringGetter)],
        prepare: None,
        run: Run::Converter(to_camel_case),
    },
    FunctionDef {
        name: "ToLowerCase",
        params: &[req("target", T::StringGetter)],
        prepare: None,
        run: Run::Converter(to_lower_case),
    },
    FunctionDef {
        name: "ToSnakeCase",
        params: &[req("target", T::StringGetter)],
        prepare: None,
        run: Run::Converter(to_snake_case),
    },
    FunctionDef {
        name: "ToUpperCase",
        params: &[req("target", T::StringGetter)],
        prepare: None,
        run: Run::Converter(to_upper_case),
    },
    FunctionDef {
        name: "ExtractPatterns",
        params: &[req("target", T::StringGetter), req("pattern", T::StringGetter)],
        prepare: Some(prepare_extract_patterns),
        run: Run::Converter(extract_patterns),
    },
    FunctionDef {
        name: "ExtractGrokPatterns",
        params: &[
            req("target", T::StringGetter),
            req("pattern", T::StringGetter),
            opt("namedCapturesOnly", T::Bool),
            opt("patternDefinitions", T::StringList),
        ],
        prepare: Some(grok::prepare),
        run: Run::Converter(grok::run),
    },
    FunctionDef {
        name: "ParseKeyValue",
        params: &[
            req("target", T::StringGetter),
            opt("delimiter", T::String),
            opt("pairDelimiter", T::String),
        ],
        prepare: Some(prepare_parse_key_value),
        run: Run::Converter(parse_key_value),
    },
    FunctionDef {
        name: "ToKeyValueString",
        params: &[
            req("target", T::PMapGetter),
            opt("delimiter", T::String),
            opt("pairDelimiter", T::String),
            opt("sortOutput", T::Bool),
        ],
        prepare: Some(prepare_to_key_value_string),
        run: Run::Converter(to_key_value_string),
    },
    FunctionDef {
        name: "ParseCSV",
        params: &[
            req("target", T::StringGetter),
            req("header", T::StringGetter),
            opt("delimiter", T::String),
            opt("headerDelimiter", T::String),
            opt("mode", T::String),
        ],
        prepare: Some(prepare_parse_csv),
        run: Run::Converter(parse_csv),
    },
    FunctionDef {
        name: "IsValidLuhn",
        params: &[req("target", T::StringLikeGetter)],
        prepare: None,
        run: Run::Converter(is_valid_luhn),
    },
    FunctionDef {
        name: "UserAgent",
        params: &[req("userAgent", T::StringGetter)],
        prepare: None,
        run: Run::Converter(user_agent),
    },
    FunctionDef {
        name: "URL",
        params: &[req("uRI", T::StringGetter)],
        prepare: None,
        run: Run::Converter(url_fn),
    },
    FunctionDef {
        name: "CommunityID",
        params: &[
            req("sourceIP", T::StringGetter),
            req("sourcePort", T::IntGetter),
            req("destinationIP", T::StringGetter),
            req("destinationPort", T::IntGetter),
            opt("protocol", T::StringGetter),
            opt("seed", T::IntGetter),
        ],
        prepare: None,
        run: Run::Converter(community_id),
    },
    FunctionDef {
        name: "IsInCIDR",
        params: &[req("target", T::StringGetter), req("networks", T::StringGetterList)],
        prepare: Some(prepare_is_in_cidr),
        run: Run::Converter(is_in_cidr),
    },
];

// === shared helpers ===

/// A function's own failure.
pub(crate) fn fail(msg: impl Into<String>) -> EvalError {
    EvalError::Function(msg.into())
}

/// The literal argument `i` in `prepare`'s view.
pub(crate) fn prep_arg<'v>(args: &[Option<&'v Value>], i: usize) -> Option<&'v Value> {
    args.get(i).copied().flatten()
}

/// A literal string parameter `i` (absent: `None`). Reads the literal, or evaluates the argument
/// when the binder passed something else.
pub(crate) fn lit_string(call: &mut Call<'_>, i: usize) -> Result<Option<String>, EvalError> {
    if !call.present(i) {
        return Ok(None);
    }
    if let Some(s) = call.literal_str(i) {
        return Ok(Some(s.to_owned()));
    }
    call.string(i).map(Some)
}

/// A literal bool parameter `i` (absent: `None`).
pub(crate) fn lit_bool(call: &mut Call<'_>, i: usize) -> Result<Option<bool>, EvalError> {
    if !call.present(i) {
        return Ok(None);
    }
    if let Some(Value::Bool(b)) = call.literal(i) {
        return Ok(Some(*b));
    }
    call.bool(i).map(Some)
}

/// A literal `[]string` parameter `i` (absent: `None`).
pub(crate) fn lit_string_list(call: &mut Call<'_>, i: usize) -> Result<Option<Vec<String>>, EvalError> {
    if !call.present(i) {
        return Ok(None);
    }
    let items = match call.literal(i) {
        Some(Value::List(items)) => items.clone(),
        _ => call.items(i)?,
    };
    string_items(items).map(Some)
}

/// The strings of a list, or the Collector's type error for the first item that is none.
fn string_items(items: Vec<Value>) -> Result<Vec<String>, EvalError> {
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(EvalError::expected("string", &other)),
        })
        .collect()
}

/// The strings of a literal list in `prepare` (`None` when it is not a list of string literals).
pub(crate) fn prep_string_list(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::List(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// Sets `key` in a map: replaces the value in place when the key exists (as `pcommon.Map.Put*`),
/// appends it otherwise.
pub(crate) fn map_put(map: &mut Vec<(String, Value)>, key: String, value: Value) {
    match map.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => map.push((key, value)),
    }
}

/// A float as `pcommon.Value.AsString` and `encoding/json` write it: the shortest form that reads
/// back, in exponent form below 1e-6 and from 1e21 (`1e-7`, `1e+21`).
pub(crate) fn go_float_string(v: f64) -> String {
    if v.is_nan() {
        return "json: unsupported value: NaN".into();
    }
    if v.is_infinite() {
        return format!("json: unsupported value: {}", if v > 0.0 { "+Inf" } else { "-Inf" });
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) if !exp.starts_with('-') => format!("{mantissa}e+{exp}"),
            _ => s,
        }
    } else {
        format!("{v}")
    }
}

/// `pcommon.Value.AsString`: strings as they are, numbers and bools as text, bytes in base64, maps
/// and lists as JSON, an empty value as "".
pub(crate) fn pcommon_as_string(value: &Value) -> String {
    use base64::Engine as _;
    match value {
        Value::Nil => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => go_float_string(*f),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        other => {
            let json = to_json(other);
            // Times serialise as a JSON string; AsString has no quotes.
            match other {
                Value::Time(_) => json.trim_matches('"').to_owned(),
                _ => json,
            }
        }
    }
}

/// Go's `strings.ToLower`: each rune by its simple lowercase mapping.
fn go_to_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\u{130}' {
                return 'i';
            }
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: each rune by its simple uppercase mapping (`ß` stays `ß`).
fn go_to_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        })
        .collect()
}

/// iancoleman/strcase v0.3.0 `ToCamel`: words split at `_`, ` `, `-`, `.` and after digits, each
/// capitalised; a capital that follows a capital is lowered; bytes that are neither ASCII letters
/// nor digits are dropped.
pub(crate) fn strcase_camel(s: &str) -> String {
    let s = s.trim();
    let mut out = String::with_capacity(s.len());
    let mut cap_next = true;
    let mut prev_is_cap = false;
    for (i, b) in s.bytes().enumerate() {
        let is_cap = b.is_ascii_uppercase();
        let is_low = b.is_ascii_lowercase();
        let mut c = b;
        if cap_next {
            if is_low {
                c = b.to_ascii_uppercase();
            }
        } else if i == 0 {
            if is_cap {
                c = b.to_ascii_lowercase();
            }
        } else if prev_is_cap && is_cap {
            c = b.to_ascii_lowercase();
        }
        prev_is_cap = is_cap;
        if is_cap || is_low {
            out.push(char::from(c));
            cap_next = false;
        } else if b.is_ascii_digit() {
            out.push(char::from(c));
            cap_next = true;
        } else {
            cap_next = matches!(b, b'_' | b' ' | b'-' | b'.');
        }
    }
    out
}

/// iancoleman/strcase v0.3.0 `ToSnake`: lower-cases ASCII letters, puts `_` where the kind of
/// character changes (`JSONData` -> `json_data`, `A1B` -> `a_1_b`) and in place of ` `, `-`, `.`.
pub(crate) fn strcase_snake(s: &str) -> String {
    let src = s.trim().as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(src.len() + 2);
    for (i, &b) in src.iter().enumerate() {
        let is_cap = b.is_ascii_uppercase();
        let is_low = b.is_ascii_lowercase();
        let v = if is_cap { b.to_ascii_lowercase() } else { b };
        if let Some(&next) = src.get(i + 1) {
            let is_num = v.is_ascii_digit();
            let next_cap = next.is_ascii_uppercase();
            let next_low = next.is_ascii_lowercase();
            let next_num = next.is_ascii_digit();
            if (is_cap && (next_low || next_num))
                || (is_low && (next_cap || next_num))
                || (is_num && (next_cap || next_low))
            {
                if is_cap && next_low && i > 0 && src[i - 1].is_ascii_uppercase() {
                    out.push(b'_');
                }
                out.push(v);
                if is_low || is_num || next_num {
                    out.push(b'_');
                }
                continue;
            }
        }
        if matches!(v, b' ' | b'_' | b'-' | b'.') {
            out.push(b'_');
        } else {
            out.push(v);
        }
    }
    // Only ASCII bytes were changed or inserted between ASCII bytes, so the text stays UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

// === Go regular expressions ===

/// The Collector's message for a pattern that does not compile.
fn invalid_regex_msg(func: &str, pattern: &str, err: &str) -> String {
    format!("the regex pattern supplied to {func} '{}' is not a valid pattern: {err}", go_quote(pattern))
}

/// The last line of a `regex` error ("error: ..."), without the caret diagram.
fn regex_error_text(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or(&text);
    format!("error parsing regexp: {}", line.trim().trim_start_matches("error: "))
}

/// A Go (RE2) pattern with the capture groups it names, by group index (0 is the whole match).
pub(crate) struct NamedRegex {
    pub re: Regex,
    pub names: Vec<Option<String>>,
}

/// Compiles a pattern written for Go's `regexp`.
pub(crate) fn compile_go_regex(pattern: &str) -> Result<Regex, String> {
    let translated = translate_go_regex(pattern, false)?.0;
    build_regex(&translated)
}

/// Compiles a Go pattern whose group names may repeat (Go allows it; the `regex` crate does not):
/// groups are renamed internally and their Go names kept by index.
pub(crate) fn compile_go_regex_named(pattern: &str) -> Result<NamedRegex, String> {
    let (translated, names) = translate_go_regex(pattern, true)?;
    let re = build_regex(&translated)?;
    Ok(NamedRegex { re, names })
}

fn build_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern).size_limit(1 << 26).build().map_err(|e| regex_error_text(&e))
}

/// Rewrites Go's syntax where the `regex` crate reads it differently: Perl classes and word
/// boundaries are ASCII in Go, `\Q...\E` quotes, `\123` is octal; with `rename`, capture groups get
/// unique internal names and the Go names are returned by group index.
fn translate_go_regex(pattern: &str, rename: bool) -> Result<(String, Vec<Option<String>>), String> {
    const DIGIT: &str = "0-9";
    const WORD: &str = "0-9A-Za-z_";
    const SPACE: &str = r"\t\n\f\r ";
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut names: Vec<Option<String>> = vec![None];
    let mut in_class = false;
    let mut class_start = 0usize;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&e) = chars.get(i + 1) else {
                return Err("error parsing regexp: trailing backslash at end of expression: ``".into());
            };
            i += 2;
            let class = match e {
                'd' => Some((false, DIGIT)),
                'D' => Some((true, DIGIT)),
                'w' => Some((false, WORD)),
                'W' => Some((true, WORD)),
                's' => Some((false, SPACE)),
                'S' => Some((true, SPACE)),
                _ => None,
            };
            if let Some((negated, set)) = class {
                match (in_class, negated) {
                    (true, false) => out.push_str(set),
                    (true, true) | (false, true) => {
                        let _ = write!(out, "[^{set}]");
                    }
                    (false, false) => {
                        let _ = write!(out, "[{set}]");
                    }
                }
                continue;
            }
            match e {
                'b' | 'B' if !in_class => {
                    let _ = write!(out, "(?-u:\\{e})");
                }
                'Q' => {
                    // Literal text up to \E (or the end).
                    let mut lit = String::new();
                    while i < chars.len() {
                        if chars[i] == '\\' && chars.get(i + 1) == Some(&'E') {
                            i += 2;
                            break;
                        }
                        lit.push(chars[i]);
                        i += 1;
                    }
                    for ch in lit.chars() {
                        if ch.is_ascii_punctuation() || ch == ' ' {
                            out.push('\\');
                        }
                        out.push(ch);
                    }
                }
                '0'..='7' => {
                    // Octal: \0 or \1.. with a following digit (a lone \1 is a backreference Go refuses).
                    if e != '0' && !chars.get(i).is_some_and(char::is_ascii_digit) {
                        return Err(format!("error parsing regexp: invalid escape sequence: `\\{e}`"));
                    }
                    let mut value = e.to_digit(8).unwrap_or(0);
                    let mut n = 1;
                    while n < 3 {
                        match chars.get(i).and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                value = value * 8 + d;
                                i += 1;
                                n += 1;
                            }
                            None => break,
                        }
                    }
                    let _ = write!(out, "\\x{{{value:x}}}");
                }
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        if in_class {
            if c == '[' && chars.get(i + 1) == Some(&':') {
                // A POSIX class [:name:] inside a class.
                if let Some(end) =
                    (i + 2..chars.len().saturating_sub(1)).find(|&j| chars[j] == ':' && chars[j + 1] == ']')
                {
                    out.extend(&chars[i..end + 2]);
                    i = end + 2;
                    continue;
                }
            }
            if c == '[' {
                // A literal '[' inside a class (Go has no nested classes).
                out.push_str("\\[");
                i += 1;
                continue;
            }
            if c == '&' || c == '~' || c == '-' && chars.get(i + 1) == Some(&'-') {
                // Set operators in the regex crate; plain characters in Go.
                out.push('\\');
                out.push(c);
                i += 1;
                continue;
            }
            if c == ']' && i > class_start {
                in_class = false;
            }
            out.push(c);
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                // A ']' right at the start is a literal.
                if chars.get(i) == Some(&']') {
                    out.push_str("\\]");
                    i += 1;
                }
                class_start = i;
            }
            '(' => {
                let rest: String = chars[i..chars.len().min(i + 4)].iter().collect();
                let named_prefix = if rest.starts_with("(?P<") {
                    Some(4)
                } else if rest.starts_with("(?<") {
                    Some(3)
                } else {
                    None
                };
                if let Some(skip) = named_prefix {
                    let name_start = i + skip;
                    let Some(name_end) = (name_start..chars.len()).find(|&j| chars[j] == '>') else {
                        return Err("error parsing regexp: invalid named capture".into());
                    };
                    let name: String = chars[name_start..name_end].iter().collect();
                    if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                        return Err(format!("error parsing regexp: invalid named capture: `{name}`"));
                    }
                    if rename {
                        let _ = write!(out, "(?P<g{}>", names.len());
                    } else {
                        let _ = write!(out, "(?P<{name}>");
                    }
                    names.push(Some(name));
                    i = name_end + 1;
                } else if chars.get(i + 1) == Some(&'?') {
                    out.push('(');
                    i += 1;
                } else {
                    names.push(None);
                    out.push('(');
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok((out, names))
}

// === converters ===

fn concat(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let delimiter = call.string(1)?;
    let items = call.items(0)?;
    let mut out = String::new();
    for (n, item) in items.into_iter().enumerate() {
        if n > 0 {
            out.push_str(&delimiter);
        }
        match string_like(item) {
            Some(s) => out.push_str(&s),
            None => out.push_str("<nil>"),
        }
    }
    Ok(Value::String(out))
}

const CASES: [&str; 4] = ["lower", "upper", "snake", "camel"];

fn invalid_case(case: &str) -> String {
    format!("invalid case: {case}, allowed cases are: lower, upper, snake, camel")
}

fn prepare_convert_case(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    match prep_arg(args, 1) {
        Some(Value::String(case)) if !CASES.contains(&case.as_str()) => Err(invalid_case(case)),
        _ => Ok(None),
    }
}

fn convert_case(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let case = lit_string(call, 1)?.unwrap_or_default();
    if !CASES.contains(&case.as_str()) {
        return Err(fail(invalid_case(&case)));
    }
    let target = call.string(0)?;
    if target.is_empty() {
        return Ok(Value::String(target));
    }
    Ok(Value::String(match case.as_str() {
        "lower" => go_to_lower(&target),
        "upper" => go_to_upper(&target),
        "snake" => strcase_snake(&target),
        _ => strcase_camel(&target),
    }))
}

fn format(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let format = lit_string(call, 0)?.unwrap_or_default();
    let args = call.items(1)?;
    Ok(Value::String(gofmt::sprintf(&format, &args)))
}

fn has_prefix(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    let prefix = call.string(1)?;
    Ok(Value::Bool(target.starts_with(&prefix)))
}

fn has_suffix(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    let suffix = call.string(1)?;
    Ok(Value::Bool(target.ends_with(&suffix)))
}

fn index(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.get(0)?;
    let value = call.get(1)?;
    let position = match target {
        Value::String(s) => match value {
            Value::String(v) => s.find(&v),
            _ => return Err(fail("invalid value type for Index function, value must be a string")),
        },
        Value::List(items) => items.iter().position(|item| item.compare(&value, CompareOp::Eq)),
        other => return Err(EvalError::expected("pcommon.Slice", &other)),
    };
    Ok(Value::Int(position.map_or(-1, |p| i64::try_from(p).unwrap_or(i64::MAX))))
}

fn prepare_is_match(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    match prep_arg(args, 1) {
        Some(Value::String(pattern)) => {
            let re = compile_go_regex(pattern).map_err(|e| invalid_regex_msg("IsMatch", pattern, &e))?;
            Ok(Some(Box::new(re)))
        }
        _ => Ok(None),
    }
}

fn is_match(call: &mut Call<'_>) -> Result<Value, EvalError> {
    if let Some(re) = call.prepared::<Regex>() {
        // A string attribute is matched where it lies; nil never matches.
        if let Some(verdict) = call.test_str(0, &mut |t| re.is_match(t))? {
            return Ok(Value::Bool(verdict.unwrap_or(false)));
        }
        let target = call.string_like(0)?;
        return Ok(Value::Bool(target.is_some_and(|t| re.is_match(&t))));
    }
    let target = call.string_like(0)?;
    let pattern = call.string(1)?;
    let re = compile_go_regex(&pattern).map_err(|e| fail(invalid_regex_msg("IsMatch", &pattern, &e)))?;
    Ok(Value::Bool(target.is_some_and(|t| re.is_match(&t))))
}

const LEN_TYPE_ERROR: &str = "target arg must be of type string, []any, map[string]any, pcommon.Map, pcommon.Slice, \
     pcommon.Value (of type String, Map, Slice) or a supported slice type from the plog, pmetric or ptrace packages";

fn len(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let n = match call.get(0)? {
        Value::String(s) => s.len(),
        Value::List(items) => items.len(),
        Value::Map(entries) => {
            let mut keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.len()
        }
        _ => return Err(fail(LEN_TYPE_ERROR)),
    };
    Ok(Value::Int(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// Go's `strings.Split`: an empty separator splits into characters, an empty string with an empty
/// separator gives nothing.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(str::to_owned).collect()
}

fn split(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    let delimiter = call.string(1)?;
    Ok(Value::List(go_split(&target, &delimiter).into_iter().map(Value::String).collect()))
}

fn substring(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let start = call.int(1)?;
    if start < 0 {
        return Err(fail(format!("invalid start for substring function, {start} cannot be negative")));
    }
    let length = call.int(2)?;
    if length <= 0 {
        return Err(fail(format!(
            "invalid length for substring function, {length} cannot be negative or zero"
        )));
    }
    let target = call.string(0)?;
    let utf8_safe = lit_bool(call, 3)?.unwrap_or(false);
    let byte_len = i64::try_from(target.len()).unwrap_or(i64::MAX);
    if utf8_safe {
        // Start and length count characters; the end can never lie beyond the byte length.
        let end = start.checked_add(length).filter(|&e| e <= byte_len).ok_or_else(|| {
            fail(format!(
                "invalid range for substring function, start({start})+length({length}) exceeds byte length({byte_len}) of target string"
            ))
        })?;
        let runes = i64::try_from(target.chars().count()).unwrap_or(i64::MAX);
        if end > runes {
            return Err(fail(format!(
                "invalid range for substring function, start({start})+length({length}) cannot be greater than the rune length of target string({runes})"
            )));
        }
        let skip = usize::try_from(start).unwrap_or(usize::MAX);
        let take = usize::try_from(length).unwrap_or(usize::MAX);
        return Ok(Value::String(target.chars().skip(skip).take(take).collect()));
    }
    if start > byte_len || length > byte_len - start {
        return Err(fail(format!(
            "invalid range for substring function, start({start})+length({length}) cannot be greater than the length of target string({byte_len})"
        )));
    }
    let from = usize::try_from(start).unwrap_or(0);
    let to = usize::try_from(start + length).unwrap_or(0);
    let bytes = target.as_bytes().get(from..to).unwrap_or_default();
    // A cut inside a multi-byte character gives bytes that are no UTF-8; those become U+FFFD.
    Ok(Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn trim(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let cutset = lit_string(call, 1)?.unwrap_or_else(|| " ".to_owned());
    let target = call.string(0)?;
    Ok(Value::String(target.trim_matches(|c| cutset.contains(c)).to_owned()))
}

fn trim_prefix(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    let prefix = call.string(1)?;
    Ok(Value::String(target.strip_prefix(prefix.as_str()).map_or_else(|| target.clone(), str::to_owned)))
}

fn trim_suffix(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    let suffix = call.string(1)?;
    Ok(Value::String(target.strip_suffix(suffix.as_str()).map_or_else(|| target.clone(), str::to_owned)))
}

fn to_camel_case(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    Ok(Value::String(if target.is_empty() { target } else { strcase_camel(&target) }))
}

fn to_snake_case(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    Ok(Value::String(if target.is_empty() { target } else { strcase_snake(&target) }))
}

fn to_lower_case(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    Ok(Value::String(go_to_lower(&target)))
}

fn to_upper_case(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    Ok(Value::String(go_to_upper(&target)))
}

const NO_NAMED_GROUP: &str = "at least 1 named capture group must be supplied in the given regex";

fn compile_extract_pattern(pattern: &str) -> Result<NamedRegex, String> {
    let named =
        compile_go_regex_named(pattern).map_err(|e| invalid_regex_msg("ExtractPatterns", pattern, &e))?;
    if named.names.iter().all(Option::is_none) {
        return Err(NO_NAMED_GROUP.into());
    }
    Ok(named)
}

fn prepare_extract_patterns(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    match prep_arg(args, 1) {
        Some(Value::String(pattern)) => Ok(Some(Box::new(compile_extract_pattern(pattern)?))),
        _ => Ok(None),
    }
}

fn extract_with(named: &NamedRegex, target: &str) -> Value {
    let mut out = Vec::new();
    if let Some(caps) = named.re.captures(target) {
        for (i, name) in named.names.iter().enumerate().skip(1) {
            if let Some(name) = name {
                let text = caps.get(i).map_or("", |m| m.as_str());
                map_put(&mut out, name.clone(), Value::String(text.to_owned()));
            }
        }
    }
    Value::Map(out)
}

fn extract_patterns(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    if let Some(named) = call.prepared::<NamedRegex>() {
        return Ok(extract_with(named, &target));
    }
    let pattern = call.string(1)?;
    let named = compile_extract_pattern(&pattern).map_err(fail)?;
    Ok(extract_with(&named, &target))
}

// --- ParseKeyValue / ToKeyValueString ---

/// The delimiters of `ParseKeyValue` and `ToKeyValueString`, checked as the Collector checks them.
fn kv_delimiters(delimiter: Option<&str>, pair_delimiter: Option<&str>) -> Result<(String, String), String> {
    let delimiter = match delimiter {
        Some("") => return Err("delimiter cannot be set to an empty string".into()),
        Some(d) => d.to_owned(),
        None => "=".to_owned(),
    };
    let pair = match pair_delimiter {
        Some("") => return Err("pair delimiter cannot be set to an empty string".into()),
        Some(p) => p.to_owned(),
        None => " ".to_owned(),
    };
    if pair == delimiter {
        return Err(format!(
            "pair delimiter {} cannot be equal to delimiter {}",
            go_quote(&pair),
            go_quote(&delimiter)
        ));
    }
    Ok((delimiter, pair))
}

pub(crate) fn prep_str<'v>(args: &[Option<&'v Value>], i: usize) -> Option<&'v str> {
    match prep_arg(args, i) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn prepare_parse_key_value(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    kv_delimiters(prep_str(args, 1), prep_str(args, 2)).map(|_| None)
}

/// Splits on `delimiter` outside single or double quotes; the quotes are dropped, a backslash
/// escapes a quote or a backslash, and empty pieces are skipped.
fn split_respecting_quotes(input: &str, delimiter: &str) -> Result<Vec<String>, String> {
    let bytes = input.as_bytes();
    let delim = delimiter.as_bytes();
    let mut result = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let mut i = 0;
    let finish = |piece: Vec<u8>| {
        String::from_utf8(piece).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    };
    while i < bytes.len() {
        if quote.is_none() && !delim.is_empty() && bytes[i..].starts_with(delim) {
            if !current.is_empty() {
                result.push(finish(std::mem::take(&mut current)));
            }
            i += delim.len();
            continue;
        }
        let c = bytes[i];
        i += 1;
        if escaped {
            if Some(c) != quote && c != b'\\' {
                current.push(b'\\');
            }
            escaped = false;
        } else {
            if quote.is_none() && (c == b'"' || c == b'\'') {
                quote = Some(c);
                continue;
            }
            if Some(c) == quote {
                quote = None;
                continue;
            }
            if c == b'\\' {
                escaped = true;
                continue;
            }
        }
        current.push(c);
    }
    if escaped {
        return Err("found a trailing escape character".into());
    }
    if quote.is_some() {
        return Err("never reached the end of a quoted value".into());
    }
    if !current.is_empty() {
        result.push(finish(current));
    }
    Ok(result)
}

fn parse_key_value(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let delimiter = lit_string(call, 1)?;
    let pair_delimiter = lit_string(call, 2)?;
    let (delimiter, pair_delimiter) =
        kv_delimiters(delimiter.as_deref(), pair_delimiter.as_deref()).map_err(fail)?;
    let source = call.string(0)?;
    if source.is_empty() {
        return Err(fail("cannot parse from empty target"));
    }
    let pairs = split_respecting_quotes(&source, &pair_delimiter)
        .map_err(|e| fail(format!("splitting source {} into pairs failed: {e}", go_quote(&source))))?;
    let mut parsed: Vec<(String, Value)> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once(delimiter.as_str()) else {
            errors.push(format!("cannot split {} into 2 items, got 1 item(s)", go_quote(&pair)));
            continue;
        };
        let key = key.trim().to_owned();
        let value = Value::String(value.trim().to_owned());
        // A key given more than once collects its values in a list.
        match parsed.iter_mut().find(|(k, _)| *k == key) {
            Some((_, Value::List(values))) => values.push(value),
            Some((_, existing)) => {
                let first = std::mem::take(existing);
                *existing = Value::List(vec![first, value]);
            }
            None => parsed.push((key, value)),
        }
    }
    if !errors.is_empty() {
        return Err(fail(format!("failed to split pairs into key-values: {}", errors.join("; "))));
    }
    Ok(Value::Map(parsed))
}

fn prepare_to_key_value_string(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    kv_delimiters(prep_str(args, 1), prep_str(args, 2)).map(|_| None)
}

/// Backslashes and double quotes escaped; the whole quoted when it holds a delimiter.
fn escape_and_quote_kv(s: &str, delimiter: &str, pair_delimiter: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    if escaped.contains(pair_delimiter) || escaped.contains(delimiter) {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

fn to_key_value_string(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let delimiter = lit_string(call, 1)?;
    let pair_delimiter = lit_string(call, 2)?;
    let (delimiter, pair_delimiter) =
        kv_delimiters(delimiter.as_deref(), pair_delimiter.as_deref()).map_err(fail)?;
    let sort_output = lit_bool(call, 3)?.unwrap_or(false);
    let source = call.map(0)?;
    let mut entries: Vec<&(String, Value)> = Vec::with_capacity(source.len());
    for entry in &source {
        if !entries.iter().any(|(k, _)| *k == entry.0) {
            entries.push(entry);
        }
    }
    if sort_output {
        entries.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let parts: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| {
            let key = escape_and_quote_kv(k, &delimiter, &pair_delimiter);
            let value = escape_and_quote_kv(&pcommon_as_string(v), &delimiter, &pair_delimiter);
            format!("{key}{delimiter}{value}")
        })
        .collect();
    Ok(Value::String(parts.join(&pair_delimiter)))
}

// --- ParseCSV ---

#[derive(Clone, Copy, PartialEq, Eq)]
enum CsvMode {
    Strict,
    LazyQuotes,
    IgnoreQuotes,
}

struct CsvOptions {
    delimiter: char,
    header_delimiter: char,
    mode: CsvMode,
}

fn csv_options(
    delimiter: Option<&str>,
    header_delimiter: Option<&str>,
    mode: Option<&str>,
) -> Result<CsvOptions, String> {
    let single = |s: &str| {
        let mut chars = s.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        }
    };
    let delimiter = match delimiter {
        Some(d) => single(d).ok_or("invalid arguments: delimiter must be a single character")?,
        None => ',',
    };
    let header_delimiter = match header_delimiter {
        Some(d) => single(d).ok_or("invalid arguments: header_delimiter must be a single character")?,
        None => delimiter,
    };
    let mode = match mode.unwrap_or("strict") {
        "strict" => CsvMode::Strict,
        "lazyQuotes" => CsvMode::LazyQuotes,
        "ignoreQuotes" => CsvMode::IgnoreQuotes,
        other => return Err(format!("unknown mode: {other}")),
    };
    Ok(CsvOptions { delimiter, header_delimiter, mode })
}

fn prepare_parse_csv(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    csv_options(prep_str(args, 2), prep_str(args, 3), prep_str(args, 4)).map(|_| None)
}

fn parse_csv(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let delimiter = lit_string(call, 2)?;
    let header_delimiter = lit_string(call, 3)?;
    let mode = lit_string(call, 4)?;
    let options =
        csv_options(delimiter.as_deref(), header_delimiter.as_deref(), mode.as_deref()).map_err(fail)?;
    let target = call.string(0)?;
    let header = call.string(1)?;
    if header.is_empty() {
        return Err(fail("headers must not be an empty string"));
    }
    let headers = go_split(&header, options.header_delimiter.encode_utf8(&mut [0; 4]));
    let fields = match options.mode {
        CsvMode::IgnoreQuotes => go_split(&target, options.delimiter.encode_utf8(&mut [0; 4])),
        mode => read_csv_row(&target, options.delimiter, headers.len(), mode == CsvMode::LazyQuotes)
            .map_err(fail)?,
    };
    if fields.len() != headers.len() {
        return Err(fail(format!(
            "map csv headers: wrong number of fields: expected {}, found {}",
            headers.len(),
            fields.len()
        )));
    }
    let mut out = Vec::with_capacity(headers.len());
    for (h, f) in headers.into_iter().zip(fields) {
        map_put(&mut out, h, Value::String(f));
    }
    Ok(Value::Map(out))
}

/// A failure of Go's `encoding/csv` reader.
struct CsvError {
    start_line: usize,
    line: usize,
    column: usize,
    kind: &'static str,
}

impl CsvError {
    fn message(&self) -> String {
        if self.kind == "wrong number of fields" {
            return format!("record on line {}: {}", self.line, self.kind);
        }
        if self.start_line != self.line {
            return format!(
                "record on line {}; parse error on line {}, column {}: {}",
                self.start_line, self.line, self.column, self.kind
            );
        }
        format!("parse error on line {}, column {}: {}", self.line, self.column, self.kind)
    }
}

const ERR_BARE_QUOTE: &str = "bare \" in non-quoted-field";
const ERR_QUOTE: &str = "extraneous or missing \" in quoted-field";

/// Go's `encoding/csv` reader over one string.
struct CsvReader<'a> {
    rest: &'a str,
    line_no: usize,
    comma: char,
    lazy: bool,
}

fn ends_nl(s: &str) -> usize {
    usize::from(s.ends_with('\n'))
}

impl CsvReader<'_> {
    /// The next line including its '\n' (`\r\n` normalised to `\n`), `None` at the end.
    fn read_line(&mut self) -> Option<String> {
        if self.rest.is_empty() {
            return None;
        }
        let mut line = match self.rest.find('\n') {
            Some(i) => {
                let (l, r) = self.rest.split_at(i + 1);
                self.rest = r;
                l.to_owned()
            }
            None => {
                let mut l = std::mem::take(&mut self.rest).to_owned();
                if l.ends_with('\r') {
                    l.pop();
                }
                l
            }
        };
        self.line_no += 1;
        if line.ends_with("\r\n") {
            line.truncate(line.len() - 2);
            line.push('\n');
        }
        Some(line)
    }

    /// One record: its fields and the error the reader reports with them, `None` at the end.
    fn read_record(&mut self) -> Option<(Vec<String>, Option<CsvError>)> {
        // Skip empty lines.
        let mut line = loop {
            let line = self.read_line()?;
            if line.len() != ends_nl(&line) {
                break line;
            }
        };
        let rec_line = self.line_no;
        let comma_len = self.comma.len_utf8();
        let mut fields: Vec<String> = Vec::new();
        let mut field = String::new();
        let mut pos_line = self.line_no;
        let mut col = 1usize;
        let mut err: Option<CsvError> = None;
        'fields: loop {
            if !line.starts_with('"') {
                // An unquoted field.
                let i = line.find(self.comma);
                let text = match i {
                    Some(i) => &line[..i],
                    None => &line[..line.len() - ends_nl(&line)],
                };
                if !self.lazy
                    && let Some(j) = text.find('"')
                {
                    err = Some(CsvError {
                        start_line: rec_line,
                        line: self.line_no,
                        column: col + j,
                        kind: ERR_BARE_QUOTE,
                    });
                    break 'fields;
                }
                fields.push(text.to_owned());
                match i {
                    Some(i) => {
                        line = line[i + comma_len..].to_owned();
                        col += i + comma_len;
                        continue 'fields;
                    }
                    None => break 'fields,
                }
            }
            // A quoted field.
            line = line[1..].to_owned();
            col += 1;
            field.clear();
            loop {
                if let Some(i) = line.find('"') {
                    field.push_str(&line[..i]);
                    line = line[i + 1..].to_owned();
                    col += i + 1;
                    let next = line.chars().next();
                    if next == Some('"') {
                        field.push('"');
                        line = line[1..].to_owned();
                        col += 1;
                    } else if next == Some(self.comma) {
                        line = line[comma_len..].to_owned();
                        col += comma_len;
                        fields.push(std::mem::take(&mut field));
                        continue 'fields;
                    } else if ends_nl(&line) == line.len() {
                        fields.push(std::mem::take(&mut field));
                        break 'fields;
                    } else if self.lazy {
                        field.push('"');
                    } else {
                        err = Some(CsvError {
                            start_line: rec_line,
                            line: self.line_no,
                            column: col - 1,
                            kind: ERR_QUOTE,
                        });
                        break 'fields;
                    }
                } else if !line.is_empty() {
                    field.push_str(&line);
                    col += line.len();
                    line = self.read_line().unwrap_or_default();
                    if !line.is_empty() {
                        pos_line += 1;
                        col = 1;
                    }
                } else {
                    if !self.lazy {
                        err = Some(CsvError {
                            start_line: rec_line,
                            line: pos_line,
                            column: col,
                            kind: ERR_QUOTE,
                        });
                        break 'fields;
                    }
                    fields.push(std::mem::take(&mut field));
                    break 'fields;
                }
            }
        }
        Some((fields, err))
    }
}

/// Reads one CSV row that may span lines: Go's reader splits records at newlines, so each further
/// record continues the last field of the one before (how the Collector keeps newlines in fields).
fn read_csv_row(row: &str, comma: char, expected: usize, lazy: bool) -> Result<Vec<String>, String> {
    if matches!(comma, '\0' | '"' | '\r' | '\n' | '\u{FFFD}') {
        return Err("read csv line: csv: invalid field or comment delimiter".into());
    }
    let mut reader = CsvReader { rest: row, line_no: 0, comma, lazy };
    let mut lines: Vec<Vec<String>> = Vec::new();
    while let Some((fields, err)) = reader.read_record() {
        let err = err.or_else(|| {
            (fields.len() != expected).then_some(CsvError {
                start_line: reader.line_no,
                line: reader.line_no,
                column: 1,
                kind: "wrong number of fields",
            })
        });
        if let Some(e) = err
            && fields.is_empty()
        {
            return Err(format!("read csv line: {}", e.message()));
        }
        lines.push(fields);
    }
    let mut iter = lines.into_iter();
    let Some(mut joined) = iter.next() else {
        return Err("no csv lines found".into());
    };
    for next in iter {
        let mut next = next.into_iter();
        if let (Some(last), Some(first)) = (joined.last_mut(), next.next()) {
            last.push('\n');
            last.push_str(&first);
        }
        joined.extend(next);
    }
    Ok(joined)
}

// --- IsValidLuhn ---

fn is_valid_luhn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let Some(value) = call.string_like(0)? else {
        return Err(fail("invalid input: <nil>"));
    };
    let number: Vec<char> = value.chars().filter(|&c| c != ' ').collect();
    let Some((&check, rest)) = number.split_last() else {
        return Ok(Value::Bool(false));
    };
    let digit = |c: char| {
        c.to_digit(10).ok_or_else(|| {
            fail(format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(c.encode_utf8(&mut [0; 4]))))
        })
    };
    let check = digit(check)?;
    let mut sum = 0;
    let mut double = true;
    for &c in rest.iter().rev() {
        let mut n = digit(c)?;
        if double {
            n *= 2;
            if n > 9 {
                n -= 9;
            }
        }
        sum += n;
        double = !double;
    }
    Ok(Value::Bool((10 - sum % 10) % 10 == check))
}

// --- UserAgent, URL ---

fn user_agent(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let original = call.string(0)?;
    Ok(useragent::parse(&original))
}

fn url_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let raw = call.string(0)?;
    if raw.is_empty() {
        return Err(fail("url cannot be empty"));
    }
    url::parse_uri(&raw).map_err(fail)
}

// --- CommunityID ---

/// Go's `net.ParseIP` then `To4`/`To16`: 4 bytes for IPv4 (also IPv4-mapped IPv6), 16 otherwise.
fn ip_bytes(s: &str) -> Option<Vec<u8>> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.octets().to_vec()),
        IpAddr::V6(v6) => Some(match v6.to_ipv4_mapped() {
            Some(v4) => v4.octets().to_vec(),
            None => v6.octets().to_vec(),
        }),
    }
}

fn community_id(call: &mut Call<'_>) -> Result<Value, EvalError> {
    use base64::Engine as _;
    use sha1::Digest as _;

    let src_ip = call.string(0).map_err(|e| fail(format!("failed to get source IP: {e}")))?;
    let dst_ip = call.string(2).map_err(|e| fail(format!("failed to get destination IP: {e}")))?;
    let src_port = call.int(1).map_err(|e| fail(format!("failed to get source port: {e}")))?;
    if !(1..=65535).contains(&src_port) {
        return Err(fail(format!("source port must be between 1 and 65535, got {src_port}")));
    }
    let dst_port = call.int(3).map_err(|e| fail(format!("failed to get destination port: {e}")))?;
    if !(1..=65535).contains(&dst_port) {
        return Err(fail(format!("destination port must be between 1 and 65535, got {dst_port}")));
    }
    let protocol: u8 = if call.present(4) {
        let name = call.string(4).map_err(|e| fail(format!("failed to get protocol: {e}")))?;
        match name.as_str() {
            "ICMP" => 1,
            "TCP" => 6,
            "UDP" => 17,
            "RSVP" => 46,
            "ICMP6" => 58,
            "SCTP" => 132,
            _ => return Err(fail(format!("unsupported protocol: {name}"))),
        }
    } else {
        6
    };
    let src = ip_bytes(&src_ip).ok_or_else(|| fail(format!("invalid source IP: {src_ip}")))?;
    let dst = ip_bytes(&dst_ip).ok_or_else(|| fail(format!("invalid destination IP: {dst_ip}")))?;
    let seed = if call.present(5) {
        let seed = call.int(5).map_err(|e| fail(format!("failed to get seed: {e}")))?;
        u16::try_from(seed).map_err(|_| fail(format!("seed must be between 0 and 65535, got {seed}")))?
    } else {
        0
    };
    // Both ranges were checked above.
    let (mut src_port, mut dst_port) =
        (u16::try_from(src_port).unwrap_or(0), u16::try_from(dst_port).unwrap_or(0));
    let (mut src, mut dst) = (src, dst);
    // The flow is ordered so that both directions hash alike: shorter address, then smaller
    // address, then smaller port first.
    let swap = if src.len() != dst.len() {
        src.len() > dst.len()
    } else {
        match src.cmp(&dst) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => src_port > dst_port,
            std::cmp::Ordering::Less => false,
        }
    };
    if swap {
        std::mem::swap(&mut src, &mut dst);
        std::mem::swap(&mut src_port, &mut dst_port);
    }
    let mut tuple = Vec::with_capacity(2 + src.len() + dst.len() + 6);
    tuple.extend_from_slice(&seed.to_be_bytes());
    tuple.extend_from_slice(&src);
    tuple.extend_from_slice(&dst);
    tuple.extend_from_slice(&[protocol, 0]);
    tuple.extend_from_slice(&src_port.to_be_bytes());
    tuple.extend_from_slice(&dst_port.to_be_bytes());
    let digest = sha1::Sha1::digest(&tuple);
    Ok(Value::String(format!("1:{}", base64::engine::general_purpose::STANDARD.encode(digest))))
}

// --- IsInCIDR ---

/// A parsed network: its address bytes (4 for IPv4) and mask of the same length.
struct Network {
    ip: Vec<u8>,
    mask: Vec<u8>,
}

/// Go's `net.ParseCIDR`.
fn parse_cidr(s: &str) -> Result<Network, String> {
    let invalid = || format!("invalid CIDR address: {s}");
    let (addr, bits) = s.split_once('/').ok_or_else(invalid)?;
    let ip: IpAddr = addr.parse().map_err(|_| invalid())?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let ones: u32 = bits.parse().map_err(|_| invalid())?;
    let (full, ones) = match ip {
        IpAddr::V4(v4) => {
            if ones > 32 {
                return Err(invalid());
            }
            (v4.octets().to_vec(), ones)
        }
        IpAddr::V6(v6) => {
            if ones > 128 {
                return Err(invalid());
            }
            (v6.octets().to_vec(), ones)
        }
    };
    let mut mask = vec![0u8; full.len()];
    for (n, m) in mask.iter_mut().enumerate() {
        let start = u32::try_from(n * 8).unwrap_or(u32::MAX);
        let left = ones.saturating_sub(start).min(8);
        *m = if left == 0 { 0 } else { 0xffu8 << (8 - left) };
    }
    let mut ip: Vec<u8> = full.iter().zip(&mask).map(|(a, m)| a & m).collect();
    // Go keeps an IPv4-mapped network as 4 bytes with the last 4 bytes of its mask.
    if ip.len() == 16 && ip[..10].iter().all(|&b| b == 0) && ip[10] == 0xff && ip[11] == 0xff {
        ip = ip[12..].to_vec();
        mask = mask[12..].to_vec();
    }
    Ok(Network { ip, mask })
}

impl Network {
    fn contains(&self, ip: &[u8]) -> bool {
        ip.len() == self.ip.len() && ip.iter().zip(&self.mask).zip(&self.ip).all(|((a, m), n)| a & m == *n)
    }
}

fn prepare_is_in_cidr(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    let Some(networks) = prep_string_list(prep_arg(args, 1)) else {
        return Ok(None);
    };
    let parsed = networks.iter().map(|n| parse_cidr(n)).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Box::new(parsed)))
}

fn is_in_cidr(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.string(0)?;
    let Some(ip) = ip_bytes(&target) else {
        return Ok(Value::Bool(false));
    };
    if let Some(networks) = call.prepared::<Vec<Network>>() {
        return Ok(Value::Bool(networks.iter().any(|n| n.contains(&ip))));
    }
    // A dynamic list is resolved only for a valid address, network by network.
    for network in string_items(call.items(1)?)? {
        if parse_cidr(&network).map_err(fail)?.contains(&ip) {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

/// Go's `fmt.Sprintf` over OTTL values (Go's `int64`, `float64`, `string`, `bool`, `[]byte`, maps and
/// slices, `pcommon.TraceID`/`SpanID` (Stringers: hex), `time.Time` and `time.Duration`), with the
/// verbs, flags, widths, precisions and `%!` error markers of Go's `fmt`.
mod gofmt {
    use std::fmt::Write as _;

    use super::super::hex;
    use crate::value::{Value, rfc3339_nano};

    #[derive(Clone, Copy, Default)]
    struct Flags {
        plus: bool,
        minus: bool,
        sharp: bool,
        space: bool,
        zero: bool,
        sharp_v: bool,
        wid: Option<usize>,
        prec: Option<usize>,
    }

    #[derive(Default)]
    struct Printer {
        buf: String,
        f: Flags,
    }

    /// Go's `fmt.Sprintf(format, args...)`.
    pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
        let mut p = Printer::default();
        let b = format.as_bytes();
        let end = b.len();
        let mut arg_num = 0usize;
        let mut reordered = false;
        let mut i = 0;
        while i < end {
            let mut good_arg_num = true;
            let last = i;
            while i < end && b[i] != b'%' {
                i += 1;
            }
            if i > last {
                p.buf.push_str(&format[last..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            p.f = Flags::default();
            while i < end {
                match b[i] {
                    b'#' => p.f.sharp = true,
                    b'0' => p.f.zero = !p.f.minus,
                    b'+' => p.f.plus = true,
                    b'-' => {
                        p.f.minus = true;
                        p.f.zero = false;
                    }
                    b' ' => p.f.space = true,
                    _ => break,
                }
                i += 1;
            }
            let mut after_index;
            (arg_num, i, after_index) =
                arg_number(arg_num, format, i, args.len(), &mut good_arg_num, &mut reordered);
            // Width.
            if i < end && b[i] == b'*' {
                i += 1;
                let (num, ok, next) = int_from_arg(args, arg_num);
                arg_num = next;
                if ok {
                    if num < 0 {
                        p.f.minus = true;
                        p.f.zero = false;
                    }
                    p.f.wid = Some(num.unsigned_abs() as usize);
                } else {
                    p.buf.push_str("%!(BADWIDTH)");
                }
                after_index = false;
            } else {
                let (num, ok, next) = parse_num(b, i, end);
                i = next;
                if ok {
                    p.f.wid = Some(num);
                    if after_index {
                        good_arg_num = false;
                    }
                }
            }
            // Precision.
            if i + 1 < end && b[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg_num = false;
                }
                (arg_num, i, after_index) =
                    arg_number(arg_num, format, i, args.len(), &mut good_arg_num, &mut reordered);
                if i < end && b[i] == b'*' {
                    i += 1;
                    let (num, ok, next) = int_from_arg(args, arg_num);
                    arg_num = next;
                    if ok && num >= 0 {
                        p.f.prec = Some(num as usize);
                    } else {
                        p.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (num, ok, next) = parse_num(b, i, end);
                    i = next;
                    p.f.prec = Some(if ok { num } else { 0 });
                }
            }
            if !after_index {
                (arg_num, i, _) =
                    arg_number(arg_num, format, i, args.len(), &mut good_arg_num, &mut reordered);
            }
            if i >= end {
                p.buf.push_str("%!(NOVERB)");
                break;
            }
            let Some(verb) = format[i..].chars().next() else {
                break;
            };
            i += verb.len_utf8();
            if verb == '%' {
                p.buf.push('%');
            } else if !good_arg_num {
                let _ = write!(p.buf, "%!{verb}(BADINDEX)");
            } else if arg_num >= args.len() {
                let _ = write!(p.buf, "%!{verb}(MISSING)");
            } else {
                if verb == 'v' {
                    p.f.sharp_v = p.f.sharp;
                    p.f.sharp = false;
                    p.f.plus = false;
                }
                p.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }
        if !reordered && arg_num < args.len() {
            p.f = Flags::default();
            p.buf.push_str("%!(EXTRA ");
            for (n, arg) in args[arg_num..].iter().enumerate() {
                if n > 0 {
                    p.buf.push_str(", ");
                }
                if matches!(arg, Value::Nil) {
                    p.buf.push_str("<nil>");
                } else {
                    p.buf.push_str(go_type(arg));
                    p.buf.push('=');
                    p.print_arg(arg, 'v');
                }
            }
            p.buf.push(')');
        }
        p.buf
    }

    /// Go's `fmt.Sprint(v)` for one value (`%v`).
    pub(crate) fn sprint_v(value: &Value) -> String {
        let mut p = Printer::default();
        p.print_arg(value, 'v');
        p.buf
    }

    /// An explicit argument index `[n]` at `i`, as Go's `argNumber`.
    fn arg_number(
        arg_num: usize,
        format: &str,
        i: usize,
        num_args: usize,
        good: &mut bool,
        reordered: &mut bool,
    ) -> (usize, usize, bool) {
        let b = format.as_bytes();
        if b.len() <= i || b[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        let rest = &b[i..];
        let (index, wid, ok) = match rest.iter().position(|&c| c == b']') {
            Some(close) if rest.len() >= 3 => {
                let (num, isnum, next) = parse_num(rest, 1, close);
                if !isnum || next != close {
                    (None, close + 1, false)
                } else {
                    (num.checked_sub(1), close + 1, true)
                }
            }
            _ => (None, 1, false),
        };
        if let Some(index) = index.filter(|&ix| ok && ix < num_args) {
            return (index, i + wid, true);
        }
        *good = false;
        (arg_num, i + wid, ok)
    }

    fn parse_num(b: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
        let mut i = start;
        let mut num = 0usize;
        while i < end && b[i].is_ascii_digit() {
            if num > 1_000_000 {
                return (0, false, end);
            }
            num = num * 10 + usize::from(b[i] - b'0');
            i += 1;
        }
        (num, i > start, i)
    }

    fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
        match args.get(arg_num) {
            Some(Value::Int(n)) if n.unsigned_abs() <= 1_000_000 => (*n, true, arg_num + 1),
            Some(_) => (0, false, arg_num + 1),
            None => (0, false, arg_num),
        }
    }

    /// The Go type a value has when a function receives it, as `%T` prints it.
    fn go_type(value: &Value) -> &'static str {
        match value {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int64",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::Bytes(_) => "[]uint8",
            Value::Map(_) => "map[string]interface {}",
            Value::List(_) => "[]interface {}",
            Value::TraceId(_) => "pcommon.TraceID",
            Value::SpanId(_) => "pcommon.SpanID",
            Value::ProfileId(_) => "pprofile.ProfileID",
            Value::Time(_) => "time.Time",
            Value::Duration(_) => "time.Duration",
        }
    }

    /// `time.Time.String()` for a UTC time.
    fn go_time_string(nanos: i64) -> String {
        let rfc = rfc3339_nano(nanos);
        format!("{} +0000 UTC", rfc.trim_end_matches('Z').replacen('T', " ", 1))
    }

    /// `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
    pub(crate) fn go_duration_string(d: i64) -> String {
        fn frac(v: u64, prec: usize) -> String {
            if v == 0 {
                return String::new();
            }
            let digits = format!("{v:0prec$}");
            format!(".{}", digits.trim_end_matches('0'))
        }
        let neg = d < 0;
        let u = d.unsigned_abs();
        let body = if u < 1_000_000_000 {
            if u == 0 {
                return "0s".into();
            }
            let (unit, prec, scale) = if u < 1_000 {
                ("ns", 0, 1)
            } else if u < 1_000_000 {
                ("µs", 3, 1_000)
            } else {
                ("ms", 6, 1_000_000)
            };
            format!("{}{}{unit}", u / scale, frac(u % scale, prec))
        } else {
            let fraction = frac(u % 1_000_000_000, 9);
            let secs = u / 1_000_000_000;
            let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
            if h > 0 {
                format!("{h}h{m}m{s}{fraction}s")
            } else if secs >= 60 {
                format!("{m}m{s}{fraction}s")
            } else {
                format!("{s}{fraction}s")
            }
        };
        if neg { format!("-{body}") } else { body }
    }

    /// Go's `unicode.IsPrint`, closely enough: letters, marks, numbers, punctuation, symbols and
    /// the ASCII space.
    fn is_print(c: char) -> bool {
        if c == ' ' {
            return true;
        }
        if c.is_control() || c.is_whitespace() {
            return false;
        }
        !matches!(c,
            '\u{AD}' | '\u{600}'..='\u{605}' | '\u{61C}' | '\u{6DD}' | '\u{70F}' | '\u{180E}'
            | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}'
            | '\u{E000}'..='\u{F8FF}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}'
            | '\u{F0000}'..='\u{10FFFF}')
    }

    fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
        let mut out = String::with_capacity(s.len() + 2);
        out.push(quote);
        for c in s.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{b}' => out.push_str("\\v"),
                c if is_print(c) && (!ascii_only || c.is_ascii()) => out.push(c),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                c if (c as u32) < 0x10000 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
        }
        out.push(quote);
        out
    }

    /// Go's `strconv.Quote` (what `%q` prints).
    pub(crate) fn go_quote(s: &str) -> String {
        quote_with(s, '"', false)
    }

    fn can_backquote(s: &str) -> bool {
        s.chars().all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !c.is_control()))
    }

    /// A decimal rendering of a non-negative finite float: digits without trailing zeros and the
    /// position of the decimal point (as Go's `decimal`).
    struct Digits {
        d: Vec<u8>,
        dp: i32,
    }

    fn digits_from_exp(s: &str) -> Digits {
        let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let mut d: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            return Digits { d, dp: 0 };
        }
        Digits { d, dp: exp + 1 }
    }

    /// Shortest digits that read back.
    fn shortest(v: f64) -> Digits {
        digits_from_exp(&format!("{v:e}"))
    }

    /// `n` significant digits, correctly rounded.
    fn significant(v: f64, n: usize) -> Digits {
        digits_from_exp(&format!("{v:.*e}", n.saturating_sub(1)))
    }

    /// Rounded to `frac` digits after the point.
    fn fixed(v: f64, frac: usize) -> Digits {
        let s = format!("{v:.frac$}");
        let (int, fraction) = s.split_once('.').unwrap_or((&s, ""));
        let int = int.trim_start_matches('0');
        let mut d: Vec<u8> = int.bytes().chain(fraction.bytes()).collect();
        let mut dp = i32::try_from(int.len()).unwrap_or(0);
        while d.first() == Some(&b'0') {
            d.remove(0);
            dp -= 1;
        }
        while d.last() == Some(&b'0') {
            d.pop();
        }
        if d.is_empty() {
            dp = 0;
        }
        Digits { d, dp }
    }

    fn fmt_e(out: &mut String, digs: &Digits, prec: usize, e: char) {
        out.push(digs.d.first().map_or('0', |&c| char::from(c)));
        if prec > 0 {
            out.push('.');
            for i in 1..=prec {
                out.push(digs.d.get(i).map_or('0', |&c| char::from(c)));
            }
        }
        out.push(e);
        let exp = if digs.d.is_empty() { 0 } else { digs.dp - 1 };
        out.push(if exp < 0 { '-' } else { '+' });
        let exp = exp.unsigned_abs();
        if exp < 10 {
            out.push('0');
        }
        let _ = write!(out, "{exp}");
    }

    fn fmt_f(out: &mut String, digs: &Digits, prec: usize) {
        let nd = i32::try_from(digs.d.len()).unwrap_or(i32::MAX);
        if digs.dp > 0 {
            for i in 0..digs.dp {
                out.push(if i < nd { char::from(digs.d[i as usize]) } else { '0' });
            }
        } else {
            out.push('0');
        }
        if prec > 0 {
            out.push('.');
            for i in 1..=i32::try_from(prec).unwrap_or(i32::MAX) {
                let j = digs.dp + i - 1;
                out.push(if (0..nd).contains(&j) { char::from(digs.d[j as usize]) } else { '0' });
            }
        }
    }

    /// Go's `strconv.FormatFloat(v, fmt, prec, 64)` (`prec` `None`: shortest).
    pub(crate) fn format_float(v: f64, fmt: char, prec: Option<usize>) -> String {
        if v.is_nan() {
            return "NaN".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
        }
        let mut out = String::new();
        if v.is_sign_negative() {
            out.push('-');
        }
        let abs = v.abs();
        match fmt {
            'b' => {
                let bits = abs.to_bits();
                let mut exp = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
                let mut mant = bits & ((1 << 52) - 1);
                if exp == 0 {
                    exp += 1;
                } else {
                    mant |= 1 << 52;
                }
                exp -= 1023 + 52;
                let _ = write!(out, "{mant}p{}{exp}", if exp >= 0 { "+" } else { "" });
            }
            'x' | 'X' => format_hex_float(&mut out, abs, fmt, prec),
            'e' | 'E' => {
                let digs = match prec {
                    None => shortest(abs),
                    Some(p) => significant(abs, p + 1),
                };
                let p = prec.unwrap_or(digs.d.len().saturating_sub(1));
                fmt_e(&mut out, &digs, p, fmt);
            }
            'f' | 'F' => match prec {
                None => {
                    let digs = shortest(abs);
                    let p = usize::try_from((i32::try_from(digs.d.len()).unwrap_or(0) - digs.dp).max(0))
                        .unwrap_or(0);
                    fmt_f(&mut out, &digs, p);
                }
                Some(p) => fmt_f(&mut out, &fixed(abs, p), p),
            },
            _ => {
                // 'g' / 'G'
                let shortest_mode = prec.is_none();
                let digs = match prec {
                    None => shortest(abs),
                    Some(p) => significant(abs, p.max(1)),
                };
                let nd = i32::try_from(digs.d.len()).unwrap_or(0);
                let mut p = match prec {
                    None => nd,
                    Some(p) => i32::try_from(p.max(1)).unwrap_or(i32::MAX),
                };
                let mut eprec = p;
                if eprec > nd && nd >= digs.dp {
                    eprec = nd;
                }
                if shortest_mode {
                    eprec = 6;
                }
                let exp = digs.dp - 1;
                let e = if fmt == 'G' { 'E' } else { 'e' };
                if exp < -4 || exp >= eprec {
                    if p > nd {
                        p = nd;
                    }
                    fmt_e(&mut out, &digs, usize::try_from(p - 1).unwrap_or(0), e);
                } else {
                    if p > digs.dp {
                        p = nd;
                    }
                    fmt_f(&mut out, &digs, usize::try_from((p - digs.dp).max(0)).unwrap_or(0));
                }
            }
        }
        out
    }

    /// The `#` flag on a float: always a decimal point, and for `%g` the trailing zeros up to the
    /// precision (6 by default).
    fn sharp_float(num: &str, digits: Option<usize>) -> String {
        let (body, tail) = match num.find(['e', 'E', 'p', 'P']) {
            Some(i) if !num.starts_with("0x") && !num.starts_with("-0x") => num.split_at(i),
            _ => (num, ""),
        };
        let mut out = body.to_owned();
        let mut digits = digits.map(|d| i64::try_from(d).unwrap_or(0));
        let mut has_point = false;
        for c in body.chars() {
            match c {
                '.' => has_point = true,
                '-' | '+' => {}
                _ => {
                    if let Some(d) = digits.as_mut() {
                        *d -= 1;
                    }
                }
            }
        }
        if !has_point {
            out.push('.');
        }
        for _ in 0..digits.unwrap_or(0).max(0) {
            out.push('0');
        }
        out.push_str(tail);
        out
    }

    fn format_hex_float(out: &mut String, abs: f64, fmt: char, prec: Option<usize>) {
        let bits = abs.to_bits();
        let mut exp = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
        let mut mant = bits & ((1 << 52) - 1);
        if exp == 0 {
            exp += 1;
        } else {
            mant |= 1 << 52;
        }
        exp -= 1023;
        if mant == 0 {
            exp = 0;
        }
        mant <<= 60 - 52;
        while mant != 0 && mant & (1 << 60) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        if let Some(p) = prec.filter(|&p| p < 15) {
            let shift = u32::try_from(p * 4).unwrap_or(0);
            let extra = (mant << shift) & ((1 << 60) - 1);
            mant >>= 60 - shift;
            if extra | (mant & 1) > 1 << 59 {
                mant += 1;
            }
            mant <<= 60 - shift;
            if mant & (1 << 61) != 0 {
                mant >>= 1;
                exp += 1;
            }
        }
        let hexdigits: &[u8; 16] = if fmt == 'X' { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
        out.push('0');
        out.push(fmt);
        out.push(if (mant >> 60) & 1 == 1 { '1' } else { '0' });
        mant <<= 4;
        match prec {
            None if mant != 0 => {
                out.push('.');
                while mant != 0 {
                    out.push(char::from(hexdigits[usize::try_from((mant >> 60) & 15).unwrap_or(0)]));
                    mant <<= 4;
                }
            }
            Some(p) if p > 0 => {
                out.push('.');
                for _ in 0..p {
                    out.push(char::from(hexdigits[usize::try_from((mant >> 60) & 15).unwrap_or(0)]));
                    mant <<= 4;
                }
            }
            _ => {}
        }
        out.push(if fmt == 'X' { 'P' } else { 'p' });
        out.push(if exp < 0 { '-' } else { '+' });
        let exp = exp.unsigned_abs();
        if exp < 10 {
            out.push('0');
        }
        let _ = write!(out, "{exp}");
    }

    impl Printer {
        fn write_padding(&mut self, n: usize, zero: bool) {
            let pad = if zero { '0' } else { ' ' };
            self.buf.extend(std::iter::repeat_n(pad, n));
        }

        /// Pads to the width (zeros on the left when asked for).
        fn pad(&mut self, s: &str) {
            self.pad_with(s, self.f.zero);
        }

        fn pad_string(&mut self, s: &str) {
            self.pad_with(s, self.f.zero);
        }

        fn pad_with(&mut self, s: &str, zero: bool) {
            let width = self.f.wid.unwrap_or(0);
            let len = s.chars().count();
            if width <= len {
                self.buf.push_str(s);
                return;
            }
            if self.f.minus {
                self.buf.push_str(s);
                self.write_padding(width - len, false);
            } else {
                self.write_padding(width - len, zero);
                self.buf.push_str(s);
            }
        }

        fn bad_verb(&mut self, arg: &Value, verb: char) {
            let _ = write!(self.buf, "%!{verb}(");
            if matches!(arg, Value::Nil) {
                self.buf.push_str("<nil>");
            } else {
                self.buf.push_str(go_type(arg));
                self.buf.push('=');
                self.print_arg(arg, 'v');
            }
            self.buf.push(')');
        }

        fn print_arg(&mut self, arg: &Value, verb: char) {
            if matches!(arg, Value::Nil) {
                match verb {
                    'T' | 'v' => self.pad_string("<nil>"),
                    _ => self.bad_verb(arg, verb),
                }
                return;
            }
            if verb == 'T' {
                self.fmt_s(go_type(arg));
                return;
            }
            let stringer_verb = matches!(verb, 'v' | 's' | 'x' | 'X' | 'q');
            match arg {
                Value::Nil => {}
                Value::Bool(b) => match verb {
                    't' | 'v' => self.pad_string(if *b { "true" } else { "false" }),
                    _ => self.bad_verb(arg, verb),
                },
                Value::Int(i) => self.fmt_integer(i.unsigned_abs(), *i < 0, verb, arg),
                Value::Float(f) => self.fmt_float(*f, verb, arg),
                Value::String(s) => self.fmt_string(s, verb, arg),
                Value::Bytes(b) => self.fmt_bytes(b, verb),
                Value::TraceId(id) => self.fmt_id(id, verb, arg),
                Value::SpanId(id) => self.fmt_id(id, verb, arg),
                Value::ProfileId(id) => self.fmt_id(id, verb, arg),
                Value::Time(t) => {
                    if stringer_verb {
                        self.fmt_string(&go_time_string(*t), verb, arg);
                    } else {
                        self.bad_verb(arg, verb);
                    }
                }
                Value::Duration(d) => {
                    if stringer_verb {
                        self.fmt_string(&go_duration_string(*d), verb, arg);
                    } else {
                        self.fmt_integer(d.unsigned_abs(), *d < 0, verb, arg);
                    }
                }
                Value::List(items) => {
                    self.buf.push('[');
                    for (n, item) in items.iter().enumerate() {
                        if n > 0 {
                            self.buf.push(' ');
                        }
                        self.print_element(item, verb);
                    }
                    self.buf.push(']');
                }
                Value::Map(entries) => {
                    let mut sorted: Vec<&(String, Value)> = Vec::with_capacity(entries.len());
                    for entry in entries {
                        if !sorted.iter().any(|(k, _)| *k == entry.0) {
                            sorted.push(entry);
                        }
                    }
                    sorted.sort_by(|a, b| a.0.cmp(&b.0));
                    self.buf.push_str("map[");
                    for (n, (k, v)) in sorted.into_iter().enumerate() {
                        if n > 0 {
                            self.buf.push(' ');
                        }
                        self.fmt_string(k, verb, &Value::String(k.clone()));
                        self.buf.push(':');
                        self.print_element(v, verb);
                    }
                    self.buf.push(']');
                }
            }
        }

        /// An element of a slice or map: a nil interface prints as `<nil>` whatever the verb.
        fn print_element(&mut self, item: &Value, verb: char) {
            if matches!(item, Value::Nil) {
                self.pad_string("<nil>");
            } else {
                self.print_arg(item, verb);
            }
        }

        fn fmt_id(&mut self, id: &[u8], verb: char, arg: &Value) {
            if matches!(verb, 'v' | 's' | 'x' | 'X' | 'q') {
                // pcommon.TraceID and SpanID are Stringers: their hex form.
                self.fmt_string(&hex(id), verb, arg);
                return;
            }
            self.buf.push('[');
            for (n, b) in id.iter().enumerate() {
                if n > 0 {
                    self.buf.push(' ');
                }
                self.fmt_integer(u64::from(*b), false, verb, &Value::Int(i64::from(*b)));
            }
            self.buf.push(']');
        }

        fn fmt_integer(&mut self, u: u64, negative: bool, verb: char, arg: &Value) {
            match verb {
                'v' | 'd' => self.fmt_int_base(u, negative, 10, verb, false),
                'b' => self.fmt_int_base(u, negative, 2, verb, false),
                'o' | 'O' => self.fmt_int_base(u, negative, 8, verb, false),
                'x' => self.fmt_int_base(u, negative, 16, verb, false),
                'X' => self.fmt_int_base(u, negative, 16, verb, true),
                'c' => {
                    let c = if negative { None } else { u32::try_from(u).ok().and_then(char::from_u32) };
                    let s = c.unwrap_or('\u{FFFD}').to_string();
                    self.pad(&s);
                }
                'q' => {
                    let c = if negative { None } else { u32::try_from(u).ok().and_then(char::from_u32) };
                    let c = c.unwrap_or('\u{FFFD}');
                    let s = quote_with(c.encode_utf8(&mut [0; 4]), '\'', self.f.plus);
                    self.pad(&s);
                }
                'U' => {
                    // Go prints the value as unsigned: a negative one in two's complement.
                    let u = if negative { u.wrapping_neg() } else { u };
                    let prec = self.f.prec.filter(|&p| p > 4).unwrap_or(4);
                    let mut s = format!("U+{u:0prec$X}");
                    if self.f.sharp
                        && let Some(c) =
                            u32::try_from(u).ok().and_then(char::from_u32).filter(|&c| is_print(c))
                    {
                        let _ = write!(s, " '{c}'");
                    }
                    let zero = self.f.zero;
                    self.f.zero = false;
                    self.pad(&s);
                    self.f.zero = zero;
                }
                _ => self.bad_verb(arg, verb),
            }
        }

        fn fmt_int_base(&mut self, mut u: u64, negative: bool, base: u64, verb: char, upper: bool) {
            let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
            let mut prec = 0usize;
            if let Some(p) = self.f.prec {
                prec = p;
                if p == 0 && u == 0 {
                    let zero = self.f.zero;
                    self.f.zero = false;
                    let width = self.f.wid.unwrap_or(0);
                    self.write_padding(width, false);
                    self.f.zero = zero;
                    return;
                }
            } else if self.f.zero
                && !self.f.minus
                && let Some(w) = self.f.wid
            {
                prec = w;
                if negative || self.f.plus || self.f.space {
                    prec = prec.saturating_sub(1);
                }
            }
            let mut out: Vec<u8> = Vec::with_capacity(24);
            loop {
                out.push(digits[usize::try_from(u % base).unwrap_or(0)]);
                u /= base;
                if u == 0 {
                    break;
                }
            }
            while out.len() < prec {
                out.push(b'0');
            }
            if self.f.sharp {
                match base {
                    2 => out.extend_from_slice(b"b0"),
                    8 if out.last() != Some(&b'0') => out.push(b'0'),
                    16 => {
                        out.push(if upper { b'X' } else { b'x' });
                        out.push(b'0');
                    }
                    _ => {}
                }
            }
            if verb == 'O' {
                out.extend_from_slice(b"o0");
            }
            if negative {
                out.push(b'-');
            } else if self.f.plus {
                out.push(b'+');
            } else if self.f.space {
                out.push(b' ');
            }
            out.reverse();
            let s = String::from_utf8(out).unwrap_or_default();
            let zero = self.f.zero;
            self.f.zero = false;
            self.pad(&s);
            self.f.zero = zero;
        }

        fn fmt_float(&mut self, v: f64, verb: char, arg: &Value) {
            let (fmt, default_prec) = match verb {
                'v' => ('g', None),
                'b' | 'g' | 'G' | 'x' | 'X' => (verb, None),
                'f' | 'F' | 'e' | 'E' => (verb, Some(6)),
                _ => {
                    self.bad_verb(arg, verb);
                    return;
                }
            };
            let prec = if fmt == 'b' { None } else { self.f.prec.or(default_prec) };
            let mut formatted = format_float(v, if fmt == 'F' { 'f' } else { fmt }, prec);
            if self.f.sharp && fmt != 'b' && v.is_finite() {
                formatted = sharp_float(
                    &formatted,
                    if matches!(fmt, 'g' | 'G') { Some(prec.unwrap_or(6)) } else { None },
                );
            }
            let mut num = if formatted.starts_with('-') || formatted.starts_with('+') {
                formatted
            } else {
                format!("+{formatted}")
            };
            if self.f.space && num.starts_with('+') && !self.f.plus {
                num.replace_range(0..1, " ");
            }
            if num[1..].starts_with("Inf") || num[1..].starts_with("NaN") {
                if num[1..].starts_with('N') && !self.f.space && !self.f.plus {
                    num.remove(0);
                }
                self.pad_with(&num, false);
                return;
            }
            if self.f.plus || !num.starts_with('+') {
                if self.f.zero && !self.f.minus && self.f.wid.is_some_and(|w| w > num.len()) {
                    let w = self.f.wid.unwrap_or(0);
                    self.buf.push_str(&num[..1]);
                    self.write_padding(w - num.len(), true);
                    self.buf.push_str(&num[1..]);
                    return;
                }
                self.pad(&num);
                return;
            }
            let unsigned = num[1..].to_owned();
            self.pad(&unsigned);
        }

        fn truncate<'s>(&self, s: &'s str) -> &'s str {
            match self.f.prec {
                Some(p) => s.char_indices().nth(p).map_or(s, |(i, _)| &s[..i]),
                None => s,
            }
        }

        fn fmt_s(&mut self, s: &str) {
            let s = self.truncate(s).to_owned();
            self.pad_string(&s);
        }

        fn fmt_q(&mut self, s: &str) {
            let s = self.truncate(s);
            let quoted = if self.f.sharp && can_backquote(s) {
                format!("`{s}`")
            } else {
                quote_with(s, '"', self.f.plus)
            };
            self.pad_string(&quoted);
        }

        fn fmt_string(&mut self, s: &str, verb: char, arg: &Value) {
            match verb {
                'v' if self.f.sharp_v => self.fmt_q(s),
                'v' | 's' => self.fmt_s(s),
                'x' => self.fmt_sx(s.as_bytes(), false),
                'X' => self.fmt_sx(s.as_bytes(), true),
                'q' => self.fmt_q(s),
                _ => self.bad_verb(arg, verb),
            }
        }

        fn fmt_bytes(&mut self, b: &[u8], verb: char) {
            match verb {
                's' => self.fmt_s(&String::from_utf8_lossy(b)),
                'x' => self.fmt_sx(b, false),
                'X' => self.fmt_sx(b, true),
                'q' => self.fmt_q(&String::from_utf8_lossy(b)),
                _ => {
                    self.buf.push('[');
                    for (n, c) in b.iter().enumerate() {
                        if n > 0 {
                            self.buf.push(' ');
                        }
                        self.fmt_integer(u64::from(*c), false, verb, &Value::Int(i64::from(*c)));
                    }
                    self.buf.push(']');
                }
            }
        }

        fn fmt_sx(&mut self, b: &[u8], upper: bool) {
            let digits: &[u8; 16] = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
            let length = self.f.prec.map_or(b.len(), |p| p.min(b.len()));
            let mut width = 2 * length;
            if width > 0 {
                if self.f.space {
                    if self.f.sharp {
                        width *= 2;
                    }
                    width += length - 1;
                } else if self.f.sharp {
                    width += 2;
                }
            } else {
                let w = self.f.wid.unwrap_or(0);
                self.write_padding(w, false);
                return;
            }
            let wid = self.f.wid.unwrap_or(0);
            if wid > width && !self.f.minus {
                self.write_padding(wid - width, false);
            }
            let prefix = if upper { "0X" } else { "0x" };
            if self.f.sharp {
                self.buf.push_str(prefix);
            }
            for (i, c) in b[..length].iter().enumerate() {
                if self.f.space && i > 0 {
                    self.buf.push(' ');
                    if self.f.sharp {
                        self.buf.push_str(prefix);
                    }
                }
                self.buf.push(char::from(digits[usize::from(c >> 4)]));
                self.buf.push(char::from(digits[usize::from(c & 0xf)]));
            }
            if wid > width && self.f.minus {
                self.write_padding(wid - width, false);
            }
        }
    }
}

/// `ExtractGrokPatterns`: grok patterns (`%{SYNTAX:ID:TYPE}`) expanded into a Go regular expression
/// as elastic/go-grok expands them, with go-grok's pattern library for the common log formats.
///
/// Covered: go-grok's default set (numbers, network, paths, dates, syslog basics, log levels) and
/// its AWS (S3, ELB, CloudFront), HTTPd (common/combined/error log), Java/Tomcat, MongoDB,
/// PostgreSQL, Redis and Syslog sets. Not covered: the Bind9, Bro, Exim, firewall, HAProxy, Junos,
/// Maven, MCollective, Rails, Ruby and Squid sets (a pattern from those is "unknown" unless given
/// in `patternDefinitions`).
mod grok {
    use std::sync::OnceLock;

    use regex::Regex;

    use super::super::{Call, Prepared, parse_go_bool, parse_go_float};
    use super::{
        NO_NAMED_GROUP, compile_go_regex_named, fail, go_quote, invalid_regex_msg, lit_bool, lit_string_list,
        map_put, prep_arg, prep_string_list,
    };
    use crate::eval::EvalError;
    use crate::value::Value;

    /// go-grok's default patterns.
    const DEFAULT: &[(&str, &str)] = &[
        ("WORD", r#"\b\w+\b"#),
        ("NOTSPACE", r#"\S+"#),
        ("SPACE", r#"\s*"#),
        ("DATA", r#".*?"#),
        ("INT", r#"(?:[+-]?(?:[0-9]+))"#),
        ("NUMBER", r#"(?:%{BASE10NUM})"#),
        ("BOOL", r#"true|false"#),
        ("BASE10NUM", r#"([+-]?(?:[0-9]+(?:\.[0-9]+)?)|\.[0-9]+)"#),
        ("BASE16NUM", r#"[+-]?(?:0x)?[0-9A-Fa-f]+"#),
        ("BASE16FLOAT", r#"[+-]?(?:0x)?[0-9A-Fa-f]+(?:\.[0-9A-Fa-f]*)?"#),
        ("POSINT", r#"\b[1-9][0-9]*\b"#),
        ("NONNEGINT", r#"\b[0-9]+\b"#),
        ("GREEDYDATA", r#".*"#),
        ("QUOTEDSTRING", r#""([^"\\]*(\\.[^"\\]*)*)"|\'([^\'\\]*(\\.[^\'\\]*)*)\'"#),
        ("UUID", r#"[A-Fa-f0-9]{8}-(?:[A-Fa-f0-9]{4}-){3}[A-Fa-f0-9]{12}"#),
        ("URN", r#"urn:[0-9A-Za-z][0-9A-Za-z-]{0,31}:[0-9A-Za-z()+,.:=@;$_!*'/?#-]+"#),
        ("IP", r#"(?:%{IPV6}|%{IPV4})"#),
        (
            "IPV6",
            r#"((([0-9A-Fa-f]{1,4}:){7}([0-9A-Fa-f]{1,4}|:))|(([0-9A-Fa-f]{1,4}:){6}(:[0-9A-Fa-f]{1,4}|((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})|:))|(([0-9A-Fa-f]{1,4}:){5}(((:[0-9A-Fa-f]{1,4}){1,2})|:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})|:))|(([0-9A-Fa-f]{1,4}:){4}(((:[0-9A-Fa-f]{1,4}){1,3})|((:[0-9A-Fa-f]{1,4})?:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:))|(([0-9A-Fa-f]{1,4}:){3}(((:[0-9A-Fa-f]{1,4}){1,4})|((:[0-9A-Fa-f]{1,4}){0,2}:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:))|(([0-9A-Fa-f]{1,4}:){2}(((:[0-9A-Fa-f]{1,4}){1,5})|((:[0-9A-Fa-f]{1,4}){0,3}:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:))|(([0-9A-Fa-f]{1,4}:){1}(((:[0-9A-Fa-f]{1,4}){1,6})|((:[0-9A-Fa-f]{1,4}){0,4}:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:))|(:(((:[0-9A-Fa-f]{1,4}){1,7})|((:[0-9A-Fa-f]{1,4}){0,5}:((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}))|:)))(%.+)?"#,
        ),
        (
            "IPV4",
            r#"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"#,
        ),
        ("IPORHOST", r#"(?:%{IP}|%{HOSTNAME})"#),
        (
            "HOSTNAME",
            r#"\b(?:[0-9A-Za-z][0-9A-Za-z-]{0,62})(?:\.(?:[0-9A-Za-z][0-9A-Za-z-]{0,62}))*(\.?|\b)"#,
        ),
        ("EMAILLOCALPART", r#"[a-zA-Z][a-zA-Z0-9_.+-=:]+"#),
        ("EMAILADDRESS", r#"%{EMAILLOCALPART}@%{HOSTNAME}"#),
        ("USERNAME", r#"[a-zA-Z0-9._-]+"#),
        ("USER", r#"%{USERNAME}"#),
        ("MAC", r#"(?:%{CISCOMAC}|%{WINDOWSMAC}|%{COMMONMAC})"#),
        ("CISCOMAC", r#"(?:(?:[A-Fa-f0-9]{4}\.){2}[A-Fa-f0-9]{4})"#),
        ("WINDOWSMAC", r#"(?:(?:[A-Fa-f0-9]{2}-){5}[A-Fa-f0-9]{2})"#),
        ("COMMONMAC", r#"(?:(?:[A-Fa-f0-9]{2}:){5}[A-Fa-f0-9]{2})"#),
        ("HOSTPORT", r#"%{IPORHOST}:%{POSINT}"#),
        ("UNIXPATH", r#"(/[\w_%!$@:.,+~-]+)+"#),
        ("TTY", r#"/dev/(pts|tty([pq])?)(\w+)?/?(?:[0-9]+)"#),
        ("WINPATH", r#"[A-Za-z]+:(\\[^\\?*]+)+"#),
        ("URIPROTO", r#"[A-Za-z][A-Za-z0-9+\.-]+"#),
        ("URIHOST", r#"%{IPORHOST}(?::%{POSINT})?"#),
        ("URIPATH", r#"(/[A-Za-z0-9$.+!*'(){},~:;=@#%&_\-]+)+"#),
        ("URIQUERY", r#"[A-Za-z0-9$.+!*'|(){},~@#%&/=:;_?\-\[\]<>]*"#),
        ("URIPARAM", r#"\?%{URIQUERY}"#),
        ("URIPATHPARAM", r#"%{URIPATH}(?:\?%{URIQUERY})?"#),
        ("URI", r#"%{URIPROTO}://(?:%{USER}(?::[^@]*)?@)?%{URIHOST}(?:%{URIPATH}(?:\?%{URIQUERY})?)?"#),
        ("PATH", r#"(?:%{UNIXPATH}|%{WINPATH})"#),
        (
            "MONTH",
            r#"\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b"#,
        ),
        ("MONTHNUM", r#"(?:0[1-9]|1[0-2])"#),
        ("MONTHDAY", r#"(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])"#),
        (
            "DAY",
            r#"\b(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)\b"#,
        ),
        ("YEAR", r#"(\d\d){1,2}"#),
        ("HOUR", r#"(?:2[0123]|[01]?[0-9])"#),
        ("MINUTE", r#"(?:[0-5][0-9])"#),
        ("SECOND", r#"(?:(?:[0-5][0-9]|60)(?:[:.,][0-9]+)?)"#),
        ("TIME", r#"%{HOUR}:%{MINUTE}(?::%{SECOND})?"#),
        ("DATE_US", r#"%{MONTHNUM}[/-]%{MONTHDAY}[/-]%{YEAR}"#),
        ("DATE_EU", r#"%{MONTHDAY}[./-]%{MONTHNUM}[./-]%{YEAR}"#),
        ("ISO8601_TIMEZONE", r#"(?:Z|[+-]%{HOUR}(?::?%{MINUTE}))"#),
        ("ISO8601_SECOND", r#"%{SECOND}"#),
        (
            "TIMESTAMP_ISO8601",
            r#"%{YEAR}-%{MONTHNUM}-%{MONTHDAY}[T ]%{HOUR}:?%{MINUTE}(?::?%{SECOND})?%{ISO8601_TIMEZONE}?"#,
        ),
        ("DATE", r#"%{DATE_US}|%{DATE_EU}"#),
        ("DATESTAMP", r#"%{DATE}[- ]%{TIME}"#),
        ("TZ", r#"(?:[PMACE][SED]T|UTC)"#),
        ("DATESTAMP_RFC822", r#"%{DAY} %{MONTH} %{MONTHDAY} %{YEAR} %{TIME} %{TZ}"#),
        ("DATESTAMP_RFC2822", r#"%{DAY}, %{MONTHDAY} %{MONTH} %{YEAR} %{TIME} %{ISO8601_TIMEZONE}"#),
        ("DATESTAMP_OTHER", r#"%{DAY} %{MONTH} %{MONTHDAY} %{TIME} %{TZ} %{YEAR}"#),
        ("DATESTAMP_EVENTLOG", r#"%{YEAR}%{MONTHNUM}%{MONTHDAY}%{HOUR}%{MINUTE}%{SECOND}"#),
        ("SYSLOGTIMESTAMP", r#"%{MONTH} +%{MONTHDAY} %{TIME}"#),
        ("PROG", r#"[!-Z\\^-~]+"#),
        ("SYSLOGPROG", r#"%{PROG}(?:\[\d+\])?"#),
        ("SYSLOGHOST", r#"%{IPORHOST}"#),
        ("SYSLOGFACILITY", r#"<%{NONNEGINT}.%{NONNEGINT}>"#),
        ("HTTPDATE", r#"%{MONTHDAY}/%{MONTH}/%{YEAR}:%{TIME} %{INT}"#),
        ("QS", r#"%{QUOTEDSTRING}"#),
        (
            "SYSLOGBASE",
            r#"%{SYSLOGTIMESTAMP:timestamp} (?:%{SYSLOGFACILITY} )?%{SYSLOGHOST:host.name} %{SYSLOGPROG}:"#,
        ),
        (
            "LOGLEVEL",
            r#"(?i)(alert|trace|debug|notice|info(?:rmation)?|warn(?:ing)?|err(?:or)?|crit(?:ical)?|fatal|severe|emerg(?:ency)?)"#,
        ),
    ];

    /// go-grok's per-format sets covered here, in the order its complete parser adds them (a later
    /// definition of a name replaces an earlier one).
    const SETS: &[(&str, &str)] = &[
        (
            "S3_REQUEST_LINE",
            r#"(?:%{WORD:http.request.method} %{NOTSPACE:url.original}(?: HTTP/%{NUMBER:http.version})?)"#,
        ),
        (
            "S3_ACCESS_LOG",
            r#"%{WORD:aws.s3access.bucket_owner} %{NOTSPACE:aws.s3access.bucket} \[%{HTTPDATE:timestamp}\] (?:-|%{IP:client.address}) (?:-|%{NOTSPACE:client.user.id}) %{NOTSPACE:aws.s3access.request_id} %{NOTSPACE:aws.s3access.operation} (?:-|%{NOTSPACE:aws.s3access.key}) (?:-|"%{S3_REQUEST_LINE:aws.s3access.request_uri}") (?:-|%{INT:http.response.status_code:int}) (?:-|%{NOTSPACE:aws.s3access.error_code}) (?:-|%{INT:aws.s3access.bytes_sent:long}) (?:-|%{INT:aws.s3access.object_size:long}) (?:-|%{INT:aws.s3access.total_time:int}) (?:-|%{INT:aws.s3access.turn_around_time:int}) "(?:-|%{DATA:http.request.referrer})" "(?:-|%{DATA:user_agent.original})" (?:-|%{NOTSPACE:aws.s3access.version_id})(?: (?:-|%{NOTSPACE:aws.s3access.host_id}) (?:-|%{NOTSPACE:aws.s3access.signature_version}) (?:-|%{NOTSPACE:tls.cipher}) (?:-|%{NOTSPACE:aws.s3access.authentication_type}) (?:-|%{NOTSPACE:aws.s3access.host_header}) (?:-|%{NOTSPACE:aws.s3access.tls_version}))?"#,
        ),
        ("ELB_URIHOST", r#"%{IPORHOST:url.domain}(?::%{POSINT:url.port:int})?"#),
        ("ELB_URIPATHQUERY", r#"%{URIPATH:url.path}(?:\?%{URIQUERY:url.query})?"#),
        ("ELB_URIPATHPARAM", r#"%{ELB_URIPATHQUERY}"#),
        (
            "ELB_URI",
            r#"%{URIPROTO:url.scheme}://(?:%{USER:url.username}(?::[^@]*)?@)?(?:%{ELB_URIHOST})?(?:%{ELB_URIPATHQUERY})?"#,
        ),
        (
            "ELB_REQUEST_LINE",
            r#"(?:%{WORD:http.request.method} %{ELB_URI:url.original}(?: HTTP/%{NUMBER:http.version})?)"#,
        ),
        (
            "ELB_V1_HTTP_LOG",
            r#"%{TIMESTAMP_ISO8601:timestamp} %{NOTSPACE:aws.elb.name} %{IP:source.address}:%{INT:source.port:int} (?:-|(?:%{IP:aws.elb.backend.ip}:%{INT:aws.elb.backend.port:int})) (?:-1|%{NUMBER:aws.elb.request_processing_time.sec:float}) (?:-1|%{NUMBER:aws.elb.backend_processing_time.sec:float}) (?:-1|%{NUMBER:aws.elb.response_processing_time.sec:float}) %{INT:http.response.status_code:int} (?:-|%{INT:aws.elb.backend.http.response.status_code:int}) %{INT:http.request.body.size:long} %{INT:http.response.body.size:long} "%{ELB_REQUEST_LINE}"(?: "(?:-|%{DATA:user_agent.original})" (?:-|%{NOTSPACE:tls.cipher}) (?:-|%{NOTSPACE:aws.elb.ssl_protocol}))?"#,
        ),
        ("ELB_ACCESS_LOG", r#"%{ELB_V1_HTTP_LOG}"#),
        (
            "CLOUDFRONT_ACCESS_LOG",
            r#"(?<timestamp>%{YEAR}[-]%{MONTHNUM}[-]%{MONTHDAY}\t%{TIME})\t%{WORD:aws.cloudfront.x_edge_location}\t(?:-|%{INT:destination.bytes:long})\t%{IPORHOST:source.address}\t%{WORD:http.request.method}\t%{HOSTNAME:url.domain}\t%{NOTSPACE:url.path}\t(?:(?:000)|%{INT:http.response.status_code:int})\t(?:-|%{DATA:http.request.referrer})\t%{DATA:user_agent.original}\t(?:-|%{DATA:url.query})\t(?:-|%{DATA:aws.cloudfront.http.request.cookie})\t%{WORD:aws.cloudfront.x_edge_result_type}\t%{NOTSPACE:aws.cloudfront.x_edge_request_id}\t%{HOSTNAME:aws.cloudfront.http.request.host}\t%{URIPROTO:network.protocol.name}\t(?:-|%{INT:source.bytes:long})\t%{NUMBER:aws.cloudfront.time_taken:float}\t(?:-|%{IP:network.forwarded_ip})\t(?:-|%{DATA:aws.cloudfront.ssl_protocol})\t(?:-|%{NOTSPACE:tls.cipher})\t%{WORD:aws.cloudfront.x_edge_response_result_type}(?:\t(?:-|HTTP/%{NUMBER:http.version})\t(?:-|%{DATA:aws.cloudfront.fle_status})\t(?:-|%{DATA:aws.cloudfront.fle_encrypted_fields})\t%{INT:source.port:int}\t%{NUMBER:aws.cloudfront.time_to_first_byte:float}\t(?:-|%{DATA:aws.cloudfront.x_edge_detailed_result_type})\t(?:-|%{NOTSPACE:http.request.mime_type})\t(?:-|%{INT:aws.cloudfront.http.request.size:long})\t(?:-|%{INT:aws.cloudfront.http.request.range.start:long})\t(?:-|%{INT:aws.cloudfront.http.request.range.end:long}))?"#,
        ),
        ("HTTPDUSER", r#"%{EMAILADDRESS}|%{USER}"#),
        ("HTTPDERROR_DATE", r#"%{DAY} %{MONTH} %{MONTHDAY} %{TIME} %{YEAR}"#),
        (
            "HTTPD_COMMONLOG",
            r#"%{IPORHOST:source.address} (?:-|%{HTTPDUSER:apache.access.user.identity}) (?:-|%{HTTPDUSER:user.name}) \[%{HTTPDATE:timestamp}\] "(?:%{WORD:http.request.method} %{NOTSPACE:url.original}(?: HTTP/%{NUMBER:http.version})?|%{DATA})" (?:-|%{INT:http.response.status_code:int}) (?:-|%{INT:http.response.body.size:long})"#,
        ),
        (
            "HTTPD_COMBINEDLOG",
            r#"%{HTTPD_COMMONLOG} "(?:-|%{DATA:http.request.referrer})" "(?:-|%{DATA:user_agent.original})""#,
        ),
        (
            "HTTPD20_ERRORLOG",
            r#"\[%{HTTPDERROR_DATE:timestamp}\] \[%{LOGLEVEL:log.level}\] (?:\[client %{IPORHOST:source.address}\] )?%{GREEDYDATA:message}"#,
        ),
        (
            "HTTPD24_ERRORLOG",
            r#"\[%{HTTPDERROR_DATE:timestamp}\] \[(?:%{WORD:apache.error.module})?:%{LOGLEVEL:log.level}\] \[pid %{POSINT:process.pid:long}(:tid %{INT:process.thread.id:int})?\](?: \(%{POSINT:apache.error.proxy.error.code}\)?%{DATA:apache.error.proxy.error.message}:)?(?: \[client %{IPORHOST:source.address}(?::%{POSINT:source.port:int})?\])?(?: %{DATA:error.code}:)? %{GREEDYDATA:message}"#,
        ),
        ("HTTPD_ERRORLOG", r#"%{HTTPD20_ERRORLOG}|%{HTTPD24_ERRORLOG}"#),
        ("COMMONAPACHELOG", r#"%{HTTPD_COMMONLOG}"#),
        ("COMBINEDAPACHELOG", r#"%{HTTPD_COMBINEDLOG}"#),
        ("JAVACLASS", r#"(?:[a-zA-Z$_][a-zA-Z$_0-9]*\.)*[a-zA-Z$_][a-zA-Z$_0-9]*"#),
        ("JAVAFILE", r#"(?:[a-zA-Z$_0-9. -]+)"#),
        ("JAVAMETHOD", r#"(?:(<(?:cl)?init>)|[a-zA-Z$_][a-zA-Z$_0-9]*)"#),
        (
            "JAVASTACKTRACEPART",
            r#"%{SPACE}at %{JAVACLASS:java.log.origin.class.name}\.%{JAVAMETHOD:log.origin.function}\(%{JAVAFILE:log.origin.file.name}(?::%{INT:log.origin.file.line:int})?\)"#,
        ),
        ("JAVATHREAD", r#"(?:[A-Z]{2}-Processor[\d]+)"#),
        ("JAVALOGMESSAGE", r#"(?:.*)"#),
        ("CATALINA7_DATESTAMP", r#"%{MONTH} %{MONTHDAY}, %{YEAR} %{HOUR}:%{MINUTE}:%{SECOND} (?:AM|PM)"#),
        (
            "CATALINA7_LOG",
            r#"%{CATALINA7_DATESTAMP:timestamp} %{JAVACLASS:java.log.origin.class.name}(?: %{JAVAMETHOD:log.origin.function})?\s*(?:%{LOGLEVEL:log.level}:)? %{JAVALOGMESSAGE:message}"#,
        ),
        ("CATALINA8_DATESTAMP", r#"%{MONTHDAY}-%{MONTH}-%{YEAR} %{HOUR}:%{MINUTE}:%{SECOND}"#),
        (
            "CATALINA8_LOG",
            r#"%{CATALINA8_DATESTAMP:timestamp} %{LOGLEVEL:log.level} \[%{DATA:java.log.origin.thread.name}\] %{JAVACLASS:java.log.origin.class.name}\.(?:%{JAVAMETHOD:log.origin.function})? %{JAVALOGMESSAGE:message}"#,
        ),
        ("CATALINA_DATESTAMP", r#"(?:%{CATALINA8_DATESTAMP})|(?:%{CATALINA7_DATESTAMP})"#),
        ("CATALINALOG", r#"(?:%{CATALINA8_LOG})|(?:%{CATALINA7_LOG})"#),
        ("TOMCAT7_LOG", r#"%{CATALINA7_LOG}"#),
        ("TOMCAT8_LOG", r#"%{CATALINA8_LOG}"#),
        (
            "TOMCATLEGACY_DATESTAMP",
            r#"%{YEAR}-%{MONTHNUM}-%{MONTHDAY} %{HOUR}:%{MINUTE}:%{SECOND}(?: %{ISO8601_TIMEZONE})?"#,
        ),
        (
            "TOMCATLEGACY_LOG",
            r#"%{TOMCATLEGACY_DATESTAMP:timestamp} \| %{LOGLEVEL:log.level} \| %{JAVACLASS:java.log.origin.class.name} - %{JAVALOGMESSAGE:message}"#,
        ),
        (
            "TOMCAT_DATESTAMP",
            r#"(?:%{CATALINA8_DATESTAMP})|(?:%{CATALINA7_DATESTAMP})|(?:%{TOMCATLEGACY_DATESTAMP})"#,
        ),
        ("TOMCATLOG", r#"(?:%{TOMCAT8_LOG})|(?:%{TOMCAT7_LOG})|(?:%{TOMCATLEGACY_LOG})"#),
        (
            "MONGO_LOG",
            r#"%{SYSLOGTIMESTAMP:timestamp} \[%{WORD:db.mongodb.component}\] %{GREEDYDATA:message}"#,
        ),
        ("MONGO_QUERY_CONTENT", r#"(.*?)"#),
        ("MONGO_QUERY", r#"\{ %{MONGO_QUERY_CONTENT:MONGO_QUERY} \} ntoreturn:"#),
        (
            "MONGO_SLOWQUERY",
            r#"%{WORD:db.mongodb.profile.op} %{MONGO_WORDDASH:db.mongodb.database}\.%{MONGO_WORDDASH:db.mongodb.collection} %{WORD}: \{ %{MONGO_QUERY_CONTENT:db.mongodb.query.original} \} ntoreturn:%{NONNEGINT:db.mongodb.profile.ntoreturn:int} ntoskip:%{NONNEGINT:db.mongodb.profile.ntoskip:int} nscanned:%{NONNEGINT:db.mongodb.profile.nscanned:int}.*? nreturned:%{NONNEGINT:db.mongodb.profile.nreturned:int}.*? %{INT:db.mongodb.profile.duration:int}ms"#,
        ),
        ("MONGO_WORDDASH", r#"\b[\w-]+\b"#),
        ("MONGO3_SEVERITY", r#"\w"#),
        ("MONGO3_COMPONENT", r#"%{WORD}"#),
        (
            "MONGO3_LOG",
            r#"%{TIMESTAMP_ISO8601:timestamp} %{MONGO3_SEVERITY:log.level} (?:-|%{MONGO3_COMPONENT:db.mongodb.component})%{SPACE}(?:\[%{DATA:db.mongodb.context}\])? %{GREEDYDATA:message}"#,
        ),
        (
            "POSTGRESQL",
            r#"%{DATESTAMP:timestamp} %{TZ:event.timezone} %{DATA:user.name} %{GREEDYDATA:postgresql.log.connection_id} %{POSINT:process.pid:int}"#,
        ),
        ("REDISTIMESTAMP", r#"%{MONTHDAY} %{MONTH} %{TIME}"#),
        ("REDISLOG", r#"\[%{POSINT:process.pid:int}\] %{REDISTIMESTAMP:timestamp} \*"#),
        (
            "REDISMONLOG",
            r#"%{NUMBER:timestamp} \[%{INT:redis.database.id} %{IP:client.address}:%{POSINT:client.port:int}\] "%{WORD:redis.command.name}"\s?%{GREEDYDATA:redis.command.args}"#,
        ),
        ("SYSLOG5424PRINTASCII", r#"[!-~]+"#),
        (
            "SYSLOGBASE2",
            r#"(?:%{SYSLOGTIMESTAMP:timestamp}|%{TIMESTAMP_ISO8601:timestamp})(?: %{SYSLOGFACILITY})?(?: %{SYSLOGHOST:host.name})?(?: %{SYSLOGPROG}:)?"#,
        ),
        (
            "SYSLOGPAMSESSION",
            r#"%{SYSLOGBASE} (%{GREEDYDATA:message})%{WORD:system.auth.pam.module}\(%{DATA:system.auth.pam.origin}\): session %{WORD:system.auth.pam.session_state} for user %{USERNAME:user.name}(?: by %{GREEDYDATA})?"#,
        ),
        ("CRON_ACTION", r#"[A-Z ]+"#),
        (
            "CRONLOG",
            r#"%{SYSLOGBASE} \(%{USER:user.name}\) %{CRON_ACTION:system.cron.action} \(%{DATA:message}\)"#,
        ),
        ("SYSLOGLINE", r#"%{SYSLOGBASE2} %{GREEDYDATA:message}"#),
        ("SYSLOG5424PRI", r#"<%{NONNEGINT:log.syslog.priority:int}>"#),
        ("SYSLOG5424SD", r#"\[%{DATA}\]+"#),
        (
            "SYSLOG5424BASE",
            r#"%{SYSLOG5424PRI}%{NONNEGINT:system.syslog.version} +(?:-|%{TIMESTAMP_ISO8601:timestamp}) +(?:-|%{IPORHOST:host.name}) +(?:-|%{SYSLOG5424PRINTASCII:process.command}) +(?:-|%{POSINT:process.pid:int}) +(?:-|%{SYSLOG5424PRINTASCII:event.code}) +(?:-|%{SYSLOG5424SD:system.syslog.structured_data})?"#,
        ),
        ("SYSLOG5424LINE", r#"%{SYSLOG5424BASE} +%{GREEDYDATA:message}"#),
    ];

    /// A compiled grok pattern: the regex and, by group index, the output name and type hint of
    /// each named group.
    pub(crate) struct GrokRegex {
        re: Regex,
        groups: Vec<Option<(String, String, Option<String>)>>,
    }

    /// What binding keeps: the options, the extra definitions and, for a literal pattern, the
    /// compiled pattern.
    pub(crate) struct GrokPrepared {
        named_only: bool,
        defs: Vec<(String, String)>,
        compiled: Option<GrokRegex>,
    }

    fn reference_pattern() -> Option<&'static Regex> {
        static RE: OnceLock<Option<Regex>> = OnceLock::new();
        RE.get_or_init(|| Regex::new(r"%\{([0-9A-Za-z_]+(?::[0-9A-Za-z_+.]+(?::[0-9A-Za-z_]+)?)?)\}").ok())
            .as_ref()
    }

    fn lookup<'a>(defs: &'a [(String, String)], id: &str) -> Option<&'a str> {
        if let Some((_, p)) = defs.iter().rev().find(|(n, _)| n == id) {
            return Some(p);
        }
        SETS.iter().rev().chain(DEFAULT.iter()).find(|(n, _)| *n == id).map(|(_, p)| *p)
    }

    /// Checks `NAME=pattern` definitions as the Collector checks them.
    fn parse_definitions(defs: &[String]) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::with_capacity(defs.len());
        for (i, def) in defs.iter().enumerate() {
            let Some((name, pattern)) = def.split_once('=') else {
                let shown = if def.len() > 20 {
                    let cut = (0..=17).rev().find(|&n| def.is_char_boundary(n)).unwrap_or(0);
                    format!("{}...", &def[..cut])
                } else {
                    def.clone()
                };
                return Err(format!(
                    "pattern {} supplied to ExtractGrokPatterns at index {i} has incorrect format, expecting PATTERNNAME=pattern definition",
                    go_quote(&shown)
                ));
            };
            if name.contains(':') {
                return Err(format!("pattern ID {} should not contain ':'", go_quote(name)));
            }
            out.push((name.to_owned(), pattern.to_owned()));
        }
        Ok(out)
    }

    /// Expands every `%{...}` reference until none is left (at most 1000 rounds, which also stops
    /// cyclic definitions); returns the regex and the type hints by group name.
    fn expand(
        pattern: &str,
        defs: &[(String, String)],
        named_only: bool,
    ) -> Result<(String, Vec<(String, String)>), String> {
        let reference = reference_pattern().ok_or("grok reference pattern does not compile")?;
        let mut expanded = pattern.to_owned();
        let mut hints: Vec<(String, String)> = Vec::new();
        for _ in 0..1000 {
            let found: Vec<(String, String)> =
                reference.captures_iter(&expanded).map(|c| (c[0].to_owned(), c[1].to_owned())).collect();
            if found.is_empty() {
                break;
            }
            for (whole, inner) in found {
                let parts: Vec<&str> = inner.split(':').collect();
                let id = parts[0];
                let target = match parts.get(1) {
                    Some(name) => name.replace('.', "___"),
                    None => id.to_owned(),
                };
                if let Some(hint) = parts.get(2) {
                    match hints.iter_mut().find(|(n, _)| *n == target) {
                        Some(slot) => slot.1 = (*hint).to_owned(),
                        None => hints.push((target.clone(), (*hint).to_owned())),
                    }
                }
                let known = lookup(defs, id)
                    .ok_or_else(|| format!("pattern definition {} unknown: parsing failed", go_quote(id)))?;
                let replacement = if named_only && parts.len() == 1 {
                    format!("({known})")
                } else {
                    format!("(?P<{target}>{known})")
                };
                expanded = expanded.replace(&whole, &replacement);
            }
        }
        Ok((expanded, hints))
    }

    fn compile(pattern: &str, defs: &[(String, String)], named_only: bool) -> Result<GrokRegex, String> {
        let (expanded, hints) = expand(pattern, defs, named_only)?;
        let named = compile_go_regex_named(&expanded)?;
        let groups = named
            .names
            .into_iter()
            .map(|name| {
                name.map(|raw| {
                    let hint = hints.iter().find(|(n, _)| *n == raw).map(|(_, h)| h.clone());
                    (raw.replace("___", "."), raw, hint)
                })
            })
            .collect();
        Ok(GrokRegex { re: named.re, groups })
    }

    fn compile_checked(
        pattern: &str,
        defs: &[(String, String)],
        named_only: bool,
    ) -> Result<GrokRegex, String> {
        let grok = compile(pattern, defs, named_only)
            .map_err(|e| invalid_regex_msg("ExtractGrokPatterns", pattern, &e))?;
        if named_only && grok.groups.iter().all(Option::is_none) {
            return Err(NO_NAMED_GROUP.into());
        }
        Ok(grok)
    }

    pub(super) fn prepare(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
        let named_only = matches!(prep_arg(args, 2), Some(Value::Bool(true)));
        let defs = match prep_arg(args, 3) {
            Some(value) => prep_string_list(Some(value)).unwrap_or_default(),
            None => Vec::new(),
        };
        let defs = parse_definitions(&defs)?;
        let compiled = match prep_arg(args, 1) {
            Some(Value::String(pattern)) => Some(compile_checked(pattern, &defs, named_only)?),
            _ => None,
        };
        Ok(Some(Box::new(GrokPrepared { named_only, defs, compiled })))
    }

    /// A capture converted by its type hint (`int`/`long`, `float`/`double`, `bool`/`boolean`,
    /// `string`).
    fn convert(text: &str, raw_name: &str, hint: Option<&str>) -> Result<Value, EvalError> {
        Ok(match hint {
            None | Some("string") => Value::String(text.to_owned()),
            Some("int" | "long") => Value::Int(text.parse::<i64>().map_err(|e| {
                let why = if matches!(
                    e.kind(),
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow
                ) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                fail(format!("strconv.Atoi: parsing {}: {why}", go_quote(text)))
            })?),
            Some("float" | "double") => Value::Float(parse_go_float(text).ok_or_else(|| {
                fail(format!("strconv.ParseFloat: parsing {}: invalid syntax", go_quote(text)))
            })?),
            Some("bool" | "boolean") => Value::Bool(parse_go_bool(text).ok_or_else(|| {
                fail(format!("strconv.ParseBool: parsing {}: invalid syntax", go_quote(text)))
            })?),
            Some(_) => return Err(fail(format!("invalid type for {raw_name}: type not specified"))),
        })
    }

    fn parse(grok: &GrokRegex, text: &str) -> Result<Value, EvalError> {
        let mut out = Vec::new();
        let Some(caps) = grok.re.captures(text) else {
            return Ok(Value::Map(out));
        };
        for (i, group) in grok.groups.iter().enumerate() {
            let Some((name, raw, hint)) = group else {
                continue;
            };
            let Some(m) = caps.get(i).filter(|m| !m.as_str().is_empty()) else {
                continue;
            };
            map_put(&mut out, name.clone(), convert(m.as_str(), raw, hint.as_deref())?);
        }
        Ok(Value::Map(out))
    }

    pub(super) fn run(call: &mut Call<'_>) -> Result<Value, EvalError> {
        let (named_only, defs) = match call.prepared::<GrokPrepared>() {
            Some(prepared) => {
                if prepared.compiled.is_some() {
                    let target = call.string(0)?;
                    let grok = call.prepared::<GrokPrepared>().and_then(|p| p.compiled.as_ref());
                    return match grok {
                        Some(grok) => parse(grok, &target),
                        None => Err(fail("ExtractGrokPatterns: pattern not compiled")),
                    };
                }
                (prepared.named_only, prepared.defs.clone())
            }
            None => {
                let named_only = lit_bool(call, 2)?.unwrap_or(false);
                let defs = parse_definitions(&lit_string_list(call, 3)?.unwrap_or_default()).map_err(fail)?;
                (named_only, defs)
            }
        };
        let pattern = call.string(1)?;
        let grok = compile_checked(&pattern, &defs, named_only).map_err(fail)?;
        let target = call.string(0)?;
        parse(&grok, &target)
    }
}

/// `URL`: Go's `net/url.Parse` (not WHATWG: no normalisation, an empty path stays empty, default
/// ports stay) and the Collector's mapping of its parts to `url.*` attributes.
mod url {
    use super::{go_quote, map_put};
    use crate::value::Value;

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Mode {
        Path,
        Host,
        UserPassword,
        QueryComponent,
        Fragment,
    }

    /// Go's `shouldEscape`.
    fn should_escape(c: u8, mode: Mode) -> bool {
        if c.is_ascii_alphanumeric() {
            return false;
        }
        if mode == Mode::Host
            && matches!(
                c,
                b'!' | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
                    | b'<'
                    | b'>'
                    | b'"'
            )
        {
            return false;
        }
        match c {
            b'-' | b'_' | b'.' | b'~' => return false,
            b'$' | b'&' | b'+' | b',' | b'/' | b':' | b';' | b'=' | b'?' | b'@' => {
                return match mode {
                    Mode::Path => c == b'?',
                    Mode::UserPassword => matches!(c, b'@' | b'/' | b'?' | b':'),
                    Mode::QueryComponent => true,
                    Mode::Fragment => false,
                    Mode::Host => true,
                };
            }
            _ => {}
        }
        if mode == Mode::Fragment && matches!(c, b'!' | b'(' | b')' | b'*') {
            return false;
        }
        true
    }

    /// Go's `unescape`.
    fn unescape(s: &str, mode: Mode) -> Result<String, String> {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' => {
                    if i + 2 >= b.len() || !b[i + 1].is_ascii_hexdigit() || !b[i + 2].is_ascii_hexdigit() {
                        let end = (i + 3).min(b.len());
                        return Err(format!(
                            "invalid URL escape {}",
                            go_quote(&String::from_utf8_lossy(&b[i..end]))
                        ));
                    }
                    if mode == Mode::Host && hex_value(b[i + 1]) < 8 && &b[i..i + 3] != b"%25" {
                        return Err(format!(
                            "invalid URL escape {}",
                            go_quote(&String::from_utf8_lossy(&b[i..i + 3]))
                        ));
                    }
                    i += 3;
                }
                c => {
                    if mode == Mode::Host && c < 0x80 && should_escape(c, mode) {
                        return Err(format!(
                            "invalid character {} in host name",
                            go_quote(&char::from(c).to_string())
                        ));
                    }
                    i += 1;
                }
            }
        }
        let mut out: Vec<u8> = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'%' => {
                    out.push(hex_value(b[i + 1]) << 4 | hex_value(b[i + 2]));
                    i += 3;
                }
                b'+' if mode == Mode::QueryComponent => {
                    out.push(b' ');
                    i += 1;
                }
                c => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        Ok(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn hex_value(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0,
        }
    }

    /// Go's `escape`.
    fn escape(s: &str, mode: Mode) -> String {
        let mut out = String::with_capacity(s.len());
        for &c in s.as_bytes() {
            if should_escape(c, mode) {
                if c == b' ' && mode == Mode::QueryComponent {
                    out.push('+');
                } else {
                    out.push('%');
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(c >> 4)]));
                    out.push(char::from(b"0123456789ABCDEF"[usize::from(c & 15)]));
                }
            } else {
                out.push(char::from(c));
            }
        }
        // Only ASCII bytes are left unescaped, so `out` is the same text when `s` had no escapes.
        out
    }

    struct User {
        username: String,
        password: Option<String>,
    }

    #[derive(Default)]
    struct Url {
        scheme: String,
        opaque: String,
        user: Option<User>,
        host: String,
        path: String,
        raw_path: String,
        omit_host: bool,
        force_query: bool,
        raw_query: String,
        fragment: String,
        raw_fragment: String,
    }

    fn valid_optional_port(port: &str) -> bool {
        port.is_empty() || (port.starts_with(':') && port[1..].bytes().all(|b| b.is_ascii_digit()))
    }

    fn parse_host(host: &str) -> Result<String, String> {
        if host.starts_with('[') {
            let i = host.rfind(']').ok_or("missing ']' in host")?;
            let colon_port = &host[i + 1..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {} after host", go_quote(colon_port)));
            }
        } else if let Some(i) = host.rfind(':') {
            let colon_port = &host[i..];
            if !valid_optional_port(colon_port) {
                return Err(format!("invalid port {} after host", go_quote(colon_port)));
            }
        }
        unescape(host, Mode::Host)
    }

    fn valid_userinfo(s: &str) -> bool {
        s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '-' | '.'
                        | '_'
                        | ':'
                        | '~'
                        | '!'
                        | '$'
                        | '&'
                        | '\''
                        | '('
                        | ')'
                        | '*'
                        | '+'
                        | ','
                        | ';'
                        | '='
                        | '%'
                        | '@'
                )
        })
    }

    fn parse_authority(authority: &str) -> Result<(Option<User>, String), String> {
        let at = authority.rfind('@');
        let host = parse_host(at.map_or(authority, |i| &authority[i + 1..]))?;
        let Some(i) = at else {
            return Ok((None, host));
        };
        let userinfo = &authority[..i];
        if !valid_userinfo(userinfo) {
            return Err("net/url: invalid userinfo".into());
        }
        let user = match userinfo.split_once(':') {
            None => User { username: unescape(userinfo, Mode::UserPassword)?, password: None },
            Some((name, password)) => User {
                username: unescape(name, Mode::UserPassword)?,
                password: Some(unescape(password, Mode::UserPassword)?),
            },
        };
        Ok((Some(user), host))
    }

    /// Go's `getScheme`: the scheme and the rest, or no scheme when the text does not start with one.
    fn get_scheme(raw: &str) -> Result<(&str, &str), String> {
        for (i, c) in raw.bytes().enumerate() {
            match c {
                b'a'..=b'z' | b'A'..=b'Z' => {}
                b'0'..=b'9' | b'+' | b'-' | b'.' => {
                    if i == 0 {
                        return Ok(("", raw));
                    }
                }
                b':' => {
                    if i == 0 {
                        return Err("missing protocol scheme".into());
                    }
                    return Ok((&raw[..i], &raw[i + 1..]));
                }
                _ => return Ok(("", raw)),
            }
        }
        Ok(("", raw))
    }

    fn parse_without_fragment(raw: &str) -> Result<Url, String> {
        if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
            return Err("net/url: invalid control character in URL".into());
        }
        let mut url = Url::default();
        if raw == "*" {
            url.path = "*".into();
            return Ok(url);
        }
        let (scheme, rest) = get_scheme(raw)?;
        url.scheme = scheme.to_ascii_lowercase();
        let mut rest = rest.to_owned();
        if rest.ends_with('?') && rest.matches('?').count() == 1 {
            url.force_query = true;
            rest.pop();
        } else if let Some((before, query)) = rest.clone().split_once('?') {
            url.raw_query = query.to_owned();
            rest = before.to_owned();
        }
        if !rest.starts_with('/') {
            if !url.scheme.is_empty() {
                url.opaque = rest;
                return Ok(url);
            }
            let segment = rest.split('/').next().unwrap_or_default();
            if segment.contains(':') {
                return Err("first path segment in URL cannot contain colon".into());
            }
        }
        if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
            let authority_and_path = &rest[2..];
            let (authority, path) = match authority_and_path.find('/') {
                Some(i) => authority_and_path.split_at(i),
                None => (authority_and_path, ""),
            };
            let (user, host) = parse_authority(authority)?;
            url.user = user;
            url.host = host;
            rest = path.to_owned();
        } else if !url.scheme.is_empty() && rest.starts_with('/') {
            url.omit_host = true;
        }
        url.path = unescape(&rest, Mode::Path)?;
        if escape(&url.path, Mode::Path) != rest {
            url.raw_path = rest;
        }
        Ok(url)
    }

    /// Go's `url.Parse`.
    fn parse(raw: &str) -> Result<Url, String> {
        let (without, fragment) = raw.split_once('#').unwrap_or((raw, ""));
        let mut url =
            parse_without_fragment(without).map_err(|e| format!("parse {}: {e}", go_quote(without)))?;
        if !fragment.is_empty() {
            url.fragment =
                unescape(fragment, Mode::Fragment).map_err(|e| format!("parse {}: {e}", go_quote(raw)))?;
            if escape(&url.fragment, Mode::Fragment) != fragment {
                url.raw_fragment = fragment.to_owned();
            }
        }
        Ok(url)
    }

    fn valid_encoded(s: &str, mode: Mode) -> bool {
        s.bytes().all(|c| {
            matches!(
                c,
                b'!' | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'@'
                    | b'['
                    | b']'
                    | b'%'
            ) || !should_escape(c, mode)
        })
    }

    impl Url {
        fn escaped_path(&self) -> String {
            if !self.raw_path.is_empty()
                && valid_encoded(&self.raw_path, Mode::Path)
                && unescape(&self.raw_path, Mode::Path).is_ok_and(|p| p == self.path)
            {
                return self.raw_path.clone();
            }
            if self.path == "*" {
                return "*".into();
            }
            escape(&self.path, Mode::Path)
        }

        fn escaped_fragment(&self) -> String {
            if !self.raw_fragment.is_empty()
                && valid_encoded(&self.raw_fragment, Mode::Fragment)
                && unescape(&self.raw_fragment, Mode::Fragment).is_ok_and(|f| f == self.fragment)
            {
                return self.raw_fragment.clone();
            }
            escape(&self.fragment, Mode::Fragment)
        }

        fn user_string(user: &User) -> String {
            let mut s = escape(&user.username, Mode::UserPassword);
            if let Some(p) = &user.password {
                s.push(':');
                s.push_str(&escape(p, Mode::UserPassword));
            }
            s
        }

        /// Go's `URL.String`.
        fn to_go_string(&self) -> String {
            let mut buf = String::new();
            if !self.scheme.is_empty() {
                buf.push_str(&self.scheme);
                buf.push(':');
            }
            if !self.opaque.is_empty() {
                buf.push_str(&self.opaque);
            } else {
                let has_authority = !self.scheme.is_empty() || !self.host.is_empty() || self.user.is_some();
                let omitted = self.omit_host && self.host.is_empty() && self.user.is_none();
                if has_authority && !omitted {
                    if !self.host.is_empty() || !self.path.is_empty() || self.user.is_some() {
                        buf.push_str("//");
                    }
                    if let Some(user) = &self.user {
                        buf.push_str(&Self::user_string(user));
                        buf.push('@');
                    }
                    if !self.host.is_empty() {
                        buf.push_str(&escape(&self.host, Mode::Host));
                    }
                }
                let path = self.escaped_path();
                if !path.is_empty() && !path.starts_with('/') && !self.host.is_empty() {
                    buf.push('/');
                }
                if buf.is_empty() && path.split('/').next().is_some_and(|seg| seg.contains(':')) {
                    buf.push_str("./");
                }
                buf.push_str(&path);
            }
            if self.force_query || !self.raw_query.is_empty() {
                buf.push('?');
                buf.push_str(&self.raw_query);
            }
            if !self.fragment.is_empty() {
                buf.push('#');
                buf.push_str(&self.escaped_fragment());
            }
            buf
        }

        /// Go's `splitHostPort` on the host: the name without brackets, and the port.
        fn host_and_port(&self) -> (String, String) {
            let mut host = self.host.as_str();
            let mut port = "";
            if let Some(colon) = host.rfind(':')
                && valid_optional_port(&host[colon..])
            {
                port = &host[colon + 1..];
                host = &host[..colon];
            }
            if host.starts_with('[') && host.ends_with(']') && host.len() >= 2 {
                host = &host[1..host.len() - 1];
            }
            (host.to_owned(), port.to_owned())
        }
    }

    /// Go's `url.ParseQuery` as the Collector maps it: `{"query": {name: [values]}}`.
    fn parse_query(query: &str) -> Result<Value, String> {
        let mut params: Vec<(String, Value)> = Vec::new();
        let mut first_err: Option<String> = None;
        for part in query.split('&') {
            if part.contains(';') {
                first_err.get_or_insert_with(|| "invalid semicolon separator in query".into());
                continue;
            }
            if part.is_empty() {
                continue;
            }
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let key = match unescape(key, Mode::QueryComponent) {
                Ok(k) => k,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let value = match unescape(value, Mode::QueryComponent) {
                Ok(v) => v,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            match params.iter_mut().find(|(k, _)| *k == key) {
                Some((_, Value::List(values))) => values.push(Value::String(value)),
                _ => params.push((key, Value::List(vec![Value::String(value)]))),
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let mut out = Vec::new();
        if !params.is_empty() {
            out.push(("query".to_owned(), Value::Map(params)));
        }
        Ok(Value::Map(out))
    }

    /// The Collector's `ParseURI(value, semconv=true)`.
    pub(super) fn parse_uri(raw: &str) -> Result<Value, String> {
        if let Some(query) = raw.strip_prefix('?') {
            return parse_query(query);
        }
        let url = parse(raw)?;
        let (domain, port) = url.host_and_port();
        let mut out: Vec<(String, Value)> = Vec::new();
        map_put(&mut out, "url.original".into(), Value::String(url.to_go_string()));
        map_put(&mut out, "url.domain".into(), Value::String(domain));
        map_put(&mut out, "url.scheme".into(), Value::String(url.scheme.clone()));
        map_put(&mut out, "url.path".into(), Value::String(url.path.clone()));
        if !port.is_empty() {
            let n: i64 = port.parse().map_err(|e: std::num::ParseIntError| {
                let why = if matches!(e.kind(), std::num::IntErrorKind::PosOverflow) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                format!("strconv.Atoi: parsing {}: {why}", go_quote(&port))
            })?;
            map_put(&mut out, "url.port".into(), Value::Int(n));
        }
        if !url.fragment.is_empty() {
            map_put(&mut out, "url.fragment".into(), Value::String(url.fragment.clone()));
        }
        if let Some(user) = &url.user {
            map_put(&mut out, "url.user_info".into(), Value::String(Url::user_string(user)));
            if !user.username.is_empty() {
                map_put(&mut out, "url.username".into(), Value::String(user.username.clone()));
            }
            if let Some(password) = &user.password {
                map_put(&mut out, "url.password".into(), Value::String(password.clone()));
            }
        }
        if !url.raw_query.is_empty() {
            map_put(&mut out, "url.query".into(), Value::String(url.raw_query.clone()));
        }
        if let Some(dot) = url.path.rfind('.')
            && dot < url.path.len() - 1
        {
            map_put(&mut out, "url.extension".into(), Value::String(url.path[dot + 1..].to_owned()));
        }
        Ok(Value::Map(out))
    }
}

/// `UserAgent`: a hand-written parser in the spirit of uap-core's rules (which the Collector loads
/// through uap-go). It knows the common browsers, crawlers, HTTP client libraries and operating
/// systems, and returns uap's family names and `major.minor.patch` versions for them; anything
/// else is "Other" with an empty version, as uap reports an unknown agent.
mod useragent {
    use std::sync::OnceLock;

    use regex::Regex;

    use super::map_put;
    use crate::value::Value;

    /// A version from the first three numeric parts after `token` (separated by `sep`), as uap
    /// joins them: `major[.minor[.patch]]`.
    fn version_after(ua: &str, token: &str, sep: char) -> Option<String> {
        let start = ua.find(token)? + token.len();
        let rest = &ua[start..];
        let mut parts: Vec<&str> = Vec::with_capacity(3);
        let mut s = rest;
        while parts.len() < 3 {
            let digits = s.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                break;
            }
            parts.push(&s[..digits]);
            s = &s[digits..];
            match s.strip_prefix(sep) {
                Some(next) if next.starts_with(|c: char| c.is_ascii_digit()) => s = next,
                _ => break,
            }
        }
        (!parts.is_empty()).then(|| parts.join("."))
    }

    fn regex(cell: &'static OnceLock<Option<Regex>>, pattern: &str) -> Option<&'static Regex> {
        cell.get_or_init(|| Regex::new(pattern).ok()).as_ref()
    }

    /// A version from the numeric capture groups 2..=4 of a rule.
    fn version_from(caps: &regex::Captures<'_>, first: usize) -> String {
        (first..first + 3).filter_map(|i| caps.get(i)).map(|m| m.as_str()).collect::<Vec<_>>().join(".")
    }

    const CRAWLERS: [&str; 10] = [
        "Googlebot",
        "bingbot",
        "YandexBot",
        "DuckDuckBot",
        "Baiduspider",
        "Applebot",
        "facebookexternalhit",
        "Twitterbot",
        "Slackbot",
        "AhrefsBot",
    ];

    /// HTTP clients: (token, uap family).
    const CLIENTS: [(&str, &str); 12] = [
        ("curl/", "curl"),
        ("Wget/", "Wget"),
        ("python-requests/", "Python Requests"),
        ("Python-urllib/", "Python-urllib"),
        ("Go-http-client/", "Go-http-client"),
        ("okhttp/", "okhttp"),
        ("PostmanRuntime/", "PostmanRuntime"),
        ("Apache-HttpClient/", "Apache-HttpClient"),
        ("axios/", "axios"),
        ("node-fetch/", "node-fetch"),
        ("aiohttp/", "aiohttp"),
        ("Java/", "Java"),
    ];

    fn agent(ua: &str) -> (String, String) {
        let has = |t: &str| ua.contains(t);
        let found = |family: &str, v: Option<String>| v.map(|v| (family.to_owned(), v));
        for bot in CRAWLERS {
            if has(bot) {
                return (bot.to_owned(), version_after(ua, &format!("{bot}/"), '.').unwrap_or_default());
            }
        }
        let browsers = [
            found(
                "Edge Mobile",
                version_after(ua, "EdgA/", '.').or_else(|| version_after(ua, "EdgiOS/", '.')),
            ),
            found("Edge", version_after(ua, "Edg/", '.').or_else(|| version_after(ua, "Edge/", '.'))),
            found(if has("Mobile") { "Opera Mobile" } else { "Opera" }, version_after(ua, "OPR/", '.')),
            found("Opera", if has("Opera") { version_after(ua, "Version/", '.') } else { None }),
            found("Samsung Internet", version_after(ua, "SamsungBrowser/", '.')),
            found("Yandex Browser", version_after(ua, "YaBrowser/", '.')),
            found("Vivaldi", version_after(ua, "Vivaldi/", '.')),
            found("UC Browser", version_after(ua, "UCBrowser/", '.')),
            found("Firefox iOS", version_after(ua, "FxiOS/", '.')),
            found(
                if has("Mobile") || has("Tablet") { "Firefox Mobile" } else { "Firefox" },
                version_after(ua, "Firefox/", '.'),
            ),
            found("Chrome Mobile iOS", version_after(ua, "CriOS/", '.')),
            found("HeadlessChrome", version_after(ua, "HeadlessChrome/", '.')),
            found(
                if has("; wv)") {
                    "Chrome Mobile WebView"
                } else if has("Mobile") {
                    "Chrome Mobile"
                } else {
                    "Chrome"
                },
                version_after(ua, "Chrome/", '.'),
            ),
            found("Chromium", version_after(ua, "Chromium/", '.')),
            found("IE", version_after(ua, "MSIE ", '.')),
            found("IE", if has("Trident/") { version_after(ua, "rv:", '.') } else { None }),
        ];
        if let Some(hit) = browsers.into_iter().flatten().next() {
            return hit;
        }
        let apple_mobile = has("iPhone") || has("iPad") || has("iPod");
        if has("Safari/")
            && let Some(v) = version_after(ua, "Version/", '.')
        {
            return ((if has("Mobile") && apple_mobile { "Mobile Safari" } else { "Safari" }).to_owned(), v);
        }
        if apple_mobile && has("AppleWebKit") && !has("Safari") {
            return ("Mobile Safari UI/WKWebView".to_owned(), String::new());
        }
        static SDK: OnceLock<Option<Regex>> = OnceLock::new();
        if let Some(caps) = regex(
            &SDK,
            r"^([A-Za-z0-9]+(?:-[A-Za-z0-9]+)*-sdk(?:-[A-Za-z0-9]+)*)/(\d+)(?:\.(\d+))?(?:\.(\d+))?",
        )
        .and_then(|re| re.captures(ua))
        {
            return (caps[1].to_owned(), version_from(&caps, 2));
        }
        static ALAMOFIRE: OnceLock<Option<Regex>> = OnceLock::new();
        if let Some(caps) = regex(
            &ALAMOFIRE,
            r"^([A-Za-z0-9]+)(?:-[A-Za-z0-9]+)?/(\d+)(?:\.(\d+))?(?:\.(\d+))? \(.*\) Alamofire",
        )
        .and_then(|re| re.captures(ua))
        {
            return (caps[1].to_owned(), version_from(&caps, 2));
        }
        for (token, family) in CLIENTS {
            if let Some(v) = version_after(ua, token, '.') {
                return (family.to_owned(), v);
            }
        }
        ("Other".to_owned(), String::new())
    }

    fn windows_version(nt: &str) -> String {
        match nt {
            "10.0" => "10".into(),
            "6.3" => "8.1".into(),
            "6.2" => "8".into(),
            "6.1" => "7".into(),
            "6.0" => "Vista".into(),
            "5.1" | "5.2" => "XP".into(),
            "5.0" => "2000".into(),
            other => other.into(),
        }
    }

    fn os(ua: &str) -> (String, String) {
        let has = |t: &str| ua.contains(t);
        if let Some(v) = version_after(ua, "Windows Phone ", '.') {
            return ("Windows Phone".into(), v);
        }
        if let Some(v) = version_after(ua, "Windows NT ", '.') {
            return ("Windows".into(), windows_version(&v));
        }
        if has("Windows") {
            return ("Windows".into(), String::new());
        }
        static IOS: OnceLock<Option<Regex>> = OnceLock::new();
        if let Some(caps) =
            regex(&IOS, r"(?:iPhone|iPad|iPod).*?\bOS (\d+)_(\d+)(?:_(\d+))?").and_then(|re| re.captures(ua))
        {
            return ("iOS".into(), version_from(&caps, 1));
        }
        if let Some(v) = version_after(ua, "iOS ", '.') {
            return ("iOS".into(), v);
        }
        if has("iPhone") || has("iPad") || has("iPod") {
            return ("iOS".into(), String::new());
        }
        if has("Mac OS X") {
            let v = version_after(ua, "Mac OS X ", '_').or_else(|| version_after(ua, "Mac OS X ", '.'));
            return ("Mac OS X".into(), v.unwrap_or_default());
        }
        if has("Android") {
            return ("Android".into(), version_after(ua, "Android ", '.').unwrap_or_default());
        }
        if has("CrOS") {
            return ("Chrome OS".into(), String::new());
        }
        if has("Ubuntu") {
            return ("Ubuntu".into(), String::new());
        }
        static LINUX: OnceLock<Option<Regex>> = OnceLock::new();
        if let Some(caps) =
            regex(&LINUX, r"(?i)\blinux[ /](\d+)\.(\d+)(?:\.(\d+))?").and_then(|re| re.captures(ua))
        {
            return ("Linux".into(), version_from(&caps, 1));
        }
        if ua.to_ascii_lowercase().contains("linux") {
            return ("Linux".into(), String::new());
        }
        if has("FreeBSD") {
            return ("FreeBSD".into(), String::new());
        }
        ("Other".into(), String::new())
    }

    /// `{user_agent.original, user_agent.name, user_agent.version, os.name[, os.version]}`.
    pub(super) fn parse(ua: &str) -> Value {
        let (name, version) = agent(ua);
        let (os_name, os_version) = os(ua);
        let mut out = Vec::with_capacity(5);
        map_put(&mut out, "user_agent.original".into(), Value::String(ua.to_owned()));
        map_put(&mut out, "user_agent.name".into(), Value::String(name));
        map_put(&mut out, "user_agent.version".into(), Value::String(version));
        map_put(&mut out, "os.name".into(), Value::String(os_name));
        if !os_version.is_empty() {
            map_put(&mut out, "os.version".into(), Value::String(os_version));
        }
        Value::Map(out)
    }
}

#[cfg(test)]
#[path = "strings_tests.rs"]
mod tests;
