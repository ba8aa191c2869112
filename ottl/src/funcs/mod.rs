//! The function library: each editor and converter with its signature, the check of its literal
//! arguments at bind time, and its implementation.
//!
//! A function sees its arguments through [`Call`], which converts each one the way the Collector's
//! typed getters do (`StringGetter` strict, `StringLikeGetter` converting, and so on), evaluates it only
//! when asked (as Go getters are lazy), and writes editor targets back through the context. The
//! families live in their own modules; [`registry`] lists them and which contexts offer which.

pub mod registry;

mod convert;
mod editors;
mod hashing;
mod strings;
mod time;
mod xml;

use std::any::Any;
use std::fmt::Write as _;

use crate::context::Target;
use crate::eval::EvalError;
use crate::value::Value;

/// Editors change telemetry; converters compute values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FnKind {
    Editor,
    Converter,
}

/// A parameter's type, as the Collector's `Arguments` struct field declares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// Any value, unconverted.
    Getter,
    StringGetter,
    StringLikeGetter,
    IntGetter,
    IntLikeGetter,
    FloatGetter,
    FloatLikeGetter,
    BoolGetter,
    BoolLikeGetter,
    PMapGetter,
    PSliceGetter,
    ByteSliceLikeGetter,
    DurationGetter,
    TimeGetter,
    /// A path the function reads and writes (`GetSetter`, `PMapGetSetter`, `PSliceGetSetter`).
    GetSetter,
    PMapGetSetter,
    PSliceGetSetter,
    /// A path the function only writes.
    Setter,
    /// A converter passed by name.
    FunctionGetter,
    /// A list literal of values (`[]Getter`, `[]StringGetter`, `[]StringLikeGetter`), each converted as
    /// the element type says.
    GetterList,
    StringGetterList,
    StringLikeGetterList,
    /// Literals fixed at parse time.
    String,
    Int,
    Float,
    Bool,
    StringList,
    /// A lambda expression; lambdas only parse behind a feature gate that Kyma leaves off.
    Lambda,
}

/// One parameter.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    /// The lower-camel name a named argument uses (`regexPattern`); `regex_pattern` binds too.
    pub name: &'static str,
    pub ty: ParamType,
    pub optional: bool,
}

/// What [`FunctionDef::prepare`] keeps for the calls: compiled regexes and the like.
pub type Prepared = Box<dyn Any + Send + Sync>;

/// Checks literal arguments at bind time; see [`FunctionDef::prepare`].
pub type PrepareFn = fn(&[Option<&Value>]) -> Result<Option<Prepared>, String>;

/// Runs a converter.
pub type ConverterFn = fn(&mut Call<'_>) -> Result<Value, EvalError>;
/// Runs an editor.
pub type EditorFn = fn(&mut Call<'_>) -> Result<(), EvalError>;

/// A function's implementation.
#[derive(Clone, Copy)]
pub enum Run {
    Converter(ConverterFn),
    Editor(EditorFn),
}

/// One function.
#[derive(Clone, Copy)]
pub struct FunctionDef {
    pub name: &'static str,
    pub params: &'static [Param],
    /// Checks the arguments that are literals at bind time, in parameter order (`None` where the
    /// argument is absent or not a literal), and returns what calls keep, e.g. a compiled regex. An
    /// error becomes the Collector's "couldn't create function: …".
    pub prepare: Option<PrepareFn>,
    pub run: Run,
}

/// How a call reaches its arguments: the evaluator implements it over bound expressions, the unit
/// tests over plain values.
pub trait ArgSource {
    /// Whether argument `i` was given (optional parameters may be absent).
    fn present(&self, i: usize) -> bool;
    /// Evaluates argument `i` (for a path: reads it).
    fn value(&mut self, i: usize) -> Result<Value, EvalError>;
    /// Evaluates each item of list argument `i`.
    fn items(&mut self, i: usize) -> Result<Vec<Value>, EvalError>;
    /// Argument `i` when it is a literal.
    fn literal(&self, i: usize) -> Option<&Value>;
    /// Writes `value` to path argument `i`.
    fn set(&mut self, i: usize, value: Value) -> Result<(), EvalError>;
    /// Calls the converter named by argument `i` with `args`.
    fn call(&mut self, i: usize, args: Vec<Value>) -> Result<Value, EvalError>;
    /// Reads a field of the item the statement runs on, for functions that read their context rather
    /// than an argument (`IsRootSpan`).
    fn read(&mut self, target: Target) -> Result<Value, EvalError>;
    /// Writes a field of that item (`set_semconv_span_name`).
    fn write(&mut self, target: Target, value: Value) -> Result<(), EvalError>;
    /// Tests argument `i` with `test` where it lies, when it is a string read by a path:
    /// `Some(Some(verdict))`, `Some(None)` for nil, `None` when it must be read as a [`Value`]
    /// ([`crate::eval::Accessor::test_key_str`]).
    fn test_str(
        &mut self,
        i: usize,
        test: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Option<bool>>, EvalError> {
        let _ = (i, test);
        Ok(None)
    }
    /// Removes the first entry under `key` from the map at path argument `i` (`pcommon.Map.Remove`:
    /// the last entry moves into its place); `false` when there was none.
    fn remove_key(&mut self, i: usize, key: &str) -> Result<bool, EvalError> {
        crate::eval::remove_through(self, i, key)
    }
}

/// One call of a function: its arguments, typed as the Collector's getters type them.
pub struct Call<'a> {
    name: &'static str,
    args: &'a mut dyn ArgSource,
    prepared: Option<&'a (dyn Any + Send + Sync)>,
}

// === impl FunctionDef ===

impl FunctionDef {
    /// Editor or converter.
    pub fn kind(&self) -> FnKind {
        match self.run {
            Run::Converter(_) => FnKind::Converter,
            Run::Editor(_) => FnKind::Editor,
        }
    }

    /// How many arguments must be given.
    pub fn required(&self) -> usize {
        self.params.iter().filter(|p| !p.optional).count()
    }
}

impl std::fmt::Debug for FunctionDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionDef").field("name", &self.name).field("params", &self.params).finish()
    }
}

// === impl Call ===

impl<'a> Call<'a> {
    /// A call of function `name`.
    pub fn new(
        name: &'static str,
        args: &'a mut dyn ArgSource,
        prepared: Option<&'a (dyn Any + Send + Sync)>,
    ) -> Self {
        Self { name, args, prepared }
    }

    /// The function's name, for messages.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// What `prepare` kept, if it kept a `T`.
    pub fn prepared<T: 'static>(&self) -> Option<&'a T> {
        self.prepared.and_then(|p| p.downcast_ref::<T>())
    }

    /// Whether optional argument `i` was given.
    pub fn present(&self, i: usize) -> bool {
        self.args.present(i)
    }

    /// Argument `i` when it is a literal (for literal parameters: always).
    pub fn literal(&self, i: usize) -> Option<&Value> {
        self.args.literal(i)
    }

    /// A literal string parameter.
    pub fn literal_str(&self, i: usize) -> Option<&str> {
        match self.args.literal(i) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// `Getter`: any value.
    pub fn get(&mut self, i: usize) -> Result<Value, EvalError> {
        self.args.value(i)
    }

    /// `[]Getter` and friends: each item of a list argument.
    pub fn items(&mut self, i: usize) -> Result<Vec<Value>, EvalError> {
        self.args.items(i)
    }

    /// `StringGetter`: a string and nothing else.
    pub fn string(&mut self, i: usize) -> Result<String, EvalError> {
        match self.args.value(i)? {
            Value::String(s) => Ok(s),
            other => Err(EvalError::expected("string", &other)),
        }
    }

    /// `IntGetter`: an integer and nothing else.
    pub fn int(&mut self, i: usize) -> Result<i64, EvalError> {
        match self.args.value(i)? {
            Value::Int(v) => Ok(v),
            other => Err(EvalError::expected("int64", &other)),
        }
    }

    /// `FloatGetter`: a float and nothing else.
    pub fn float(&mut self, i: usize) -> Result<f64, EvalError> {
        match self.args.value(i)? {
            Value::Float(v) => Ok(v),
            other => Err(EvalError::expected("float64", &other)),
        }
    }

    /// `BoolGetter`: a bool and nothing else.
    pub fn bool(&mut self, i: usize) -> Result<bool, EvalError> {
        match self.args.value(i)? {
            Value::Bool(v) => Ok(v),
            other => Err(EvalError::expected("bool", &other)),
        }
    }

    /// `PMapGetter`: a map.
    pub fn map(&mut self, i: usize) -> Result<Vec<(String, Value)>, EvalError> {
        match self.args.value(i)? {
            Value::Map(m) => Ok(m),
            other => Err(EvalError::expected("pcommon.Map", &other)),
        }
    }

    /// `PSliceGetter`: a list.
    pub fn list(&mut self, i: usize) -> Result<Vec<Value>, EvalError> {
        match self.args.value(i)? {
            Value::List(l) => Ok(l),
            other => Err(EvalError::expected("pcommon.Slice", &other)),
        }
    }

    /// `TimeGetter`: nanoseconds since the epoch.
    pub fn time(&mut self, i: usize) -> Result<i64, EvalError> {
        match self.args.value(i)? {
            Value::Time(t) => Ok(t),
            other => Err(EvalError::expected("time.Time", &other)),
        }
    }

    /// `DurationGetter`: nanoseconds.
    pub fn duration(&mut self, i: usize) -> Result<i64, EvalError> {
        match self.args.value(i)? {
            Value::Duration(d) => Ok(d),
            other => Err(EvalError::expected("time.Duration", &other)),
        }
    }

    /// `StringLikeGetter`: `None` for nil; numbers and bools as JSON writes them, bytes as hex, maps
    /// and lists as JSON.
    pub fn string_like(&mut self, i: usize) -> Result<Option<String>, EvalError> {
        Ok(string_like(self.args.value(i)?))
    }

    /// [`Call::string_like`] tested with `test` without a copy where the argument allows
    /// ([`ArgSource::test_str`]): `Some(None)` for nil; `None` when it must be read.
    pub fn test_str(
        &mut self,
        i: usize,
        test: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<Option<bool>>, EvalError> {
        self.args.test_str(i, test)
    }

    /// `IntLikeGetter`: `None` for nil and for a string that is no base-10 integer; floats truncated,
    /// bools 1 or 0.
    pub fn int_like(&mut self, i: usize) -> Result<Option<i64>, EvalError> {
        int_like(self.args.value(i)?)
    }

    /// `FloatLikeGetter`: `None` for nil; integers widened, bools 1 or 0, strings parsed (an error when
    /// they are no number).
    pub fn float_like(&mut self, i: usize) -> Result<Option<f64>, EvalError> {
        float_like(self.args.value(i)?)
    }

    /// `BoolLikeGetter`: `None` for nil; numbers true when not zero, strings as Go's `ParseBool`.
    pub fn bool_like(&mut self, i: usize) -> Result<Option<bool>, EvalError> {
        bool_like(self.args.value(i)?)
    }

    /// `ByteSliceLikeGetter`: `None` for nil; strings as their bytes, numbers as 8 big-endian bytes,
    /// bools as one byte.
    pub fn bytes_like(&mut self, i: usize) -> Result<Option<Vec<u8>>, EvalError> {
        bytes_like(self.args.value(i)?)
    }

    /// Writes to path argument `i` (editors' targets).
    pub fn set(&mut self, i: usize, value: Value) -> Result<(), EvalError> {
        self.args.set(i, value)
    }

    /// Calls the converter passed by name as argument `i`.
    pub fn call_function(&mut self, i: usize, args: Vec<Value>) -> Result<Value, EvalError> {
        self.args.call(i, args)
    }

    /// Removes `key` from the map at path argument `i` (`delete_key`), without reading the map where
    /// the context can avoid it.
    pub fn remove_key(&mut self, i: usize, key: &str) -> Result<bool, EvalError> {
        self.args.remove_key(i, key)
    }

    /// Reads a field of the item the statement runs on (`span.parent_span_id` for `IsRootSpan`).
    pub fn read_context(&mut self, target: Target) -> Result<Value, EvalError> {
        self.args.read(target)
    }

    /// Writes a field of the item the statement runs on.
    pub fn write_context(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        self.args.write(target, value)
    }
}

// === free functions: the typed getters' conversions ===

/// `StringLikeGetter`'s conversion.
pub fn string_like(value: Value) -> Option<String> {
    match value {
        Value::Nil => None,
        Value::String(s) => Some(s),
        Value::Bytes(b) => Some(hex(&b)),
        other => Some(to_json(&other)),
    }
}

/// `IntLikeGetter`'s conversion.
pub fn int_like(value: Value) -> Result<Option<i64>, EvalError> {
    Ok(match value {
        Value::Nil => None,
        Value::Int(v) => Some(v),
        Value::Float(v) => Some(v as i64),
        Value::Bool(b) => Some(i64::from(b)),
        Value::String(s) => s.parse().ok(),
        other => return Err(EvalError::unsupported(&other)),
    })
}

/// `FloatLikeGetter`'s conversion.
pub fn float_like(value: Value) -> Result<Option<f64>, EvalError> {
    Ok(match value {
        Value::Nil => None,
        Value::Float(v) => Some(v),
        Value::Int(v) => Some(v as f64),
        Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
        Value::String(s) => Some(parse_go_float(&s).ok_or_else(|| {
            EvalError::Function(format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
        })?),
        other => return Err(EvalError::unsupported(&other)),
    })
}

/// `BoolLikeGetter`'s conversion.
pub fn bool_like(value: Value) -> Result<Option<bool>, EvalError> {
    Ok(match value {
        Value::Nil => None,
        Value::Bool(b) => Some(b),
        Value::Int(v) => Some(v != 0),
        Value::Float(v) => Some(v != 0.0),
        Value::String(s) => Some(parse_go_bool(&s).ok_or_else(|| {
            EvalError::Function(format!("strconv.ParseBool: parsing {s:?}: invalid syntax"))
        })?),
        other => return Err(EvalError::unsupported(&other)),
    })
}

/// `ByteSliceLikeGetter`'s conversion.
pub fn bytes_like(value: Value) -> Result<Option<Vec<u8>>, EvalError> {
    Ok(match value {
        Value::Nil => None,
        Value::Bytes(b) => Some(b),
        Value::String(s) => Some(s.into_bytes()),
        Value::Int(v) => Some(v.to_be_bytes().to_vec()),
        Value::Float(v) => Some(v.to_bits().to_be_bytes().to_vec()),
        Value::Bool(b) => Some(vec![u8::from(b)]),
        other => return Err(EvalError::unsupported(&other)),
    })
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseFloat` for the forms OTTL users write (decimal, exponent, `inf`, `nan`).
pub fn parse_go_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let unsigned = lower.trim_start_matches(['+', '-']);
    if matches!(unsigned, "inf" | "infinity" | "nan") {
        return lower.parse().ok();
    }
    // Rust accepts forms Go does not ("inf" spelled out is handled above); underscores Go rejects too.
    s.parse().ok()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A value as Go's `encoding/json` writes its raw form: map keys sorted, bytes in base64, times in
/// RFC 3339, durations as nanoseconds.
pub fn to_json(value: &Value) -> String {
    let mut out = String::new();
    write_json(value, &mut out);
    out
}

fn write_json(value: &Value, out: &mut String) {
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(v) => {
            let _ = write!(out, "{v}");
        }
        Value::Float(v) => out.push_str(&go_json_float(*v)),
        Value::String(s) => out.push_str(&go_json_string(s)),
        Value::Bytes(b) => {
            use base64::Engine as _;
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        }
        Value::Map(entries) => {
            let mut sorted: Vec<&(String, Value)> = Vec::with_capacity(entries.len());
            for entry in entries {
                // The first value of a key is the map's value.
                if !sorted.iter().any(|(k, _)| *k == entry.0) {
                    sorted.push(entry);
                }
            }
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            out.push('{');
            for (n, (k, v)) in sorted.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(&go_json_string(k));
                out.push(':');
                write_json(v, out);
            }
            out.push('}');
        }
        Value::List(items) => {
            out.push('[');
            for (n, v) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_json(v, out);
            }
            out.push(']');
        }
        Value::TraceId(id) => {
            write_json(&Value::List(id.iter().map(|b| Value::Int(i64::from(*b))).collect()), out)
        }
        Value::SpanId(id) => {
            write_json(&Value::List(id.iter().map(|b| Value::Int(i64::from(*b))).collect()), out)
        }
        Value::ProfileId(id) => {
            write_json(&Value::List(id.iter().map(|b| Value::Int(i64::from(*b))).collect()), out)
        }
        Value::Time(t) => {
            out.push('"');
            out.push_str(&crate::value::rfc3339_nano(*t));
            out.push('"');
        }
        Value::Duration(d) => {
            let _ = write!(out, "{d}");
        }
    }
}

/// A string as Go's `encoding/json` quotes it: `<`, `>`, `&` and the line separators escaped too.
pub fn go_json_string(s: &str) -> String {
    let quoted = serde_json::Value::String(s.to_string()).to_string();
    if !quoted.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return quoted;
    }
    quoted
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A float as Go's `encoding/json` writes it: the shortest form that reads back, in exponent form
/// below 1e-6 and from 1e21.
pub fn go_json_float(v: f64) -> String {
    if !v.is_finite() {
        // encoding/json refuses these; the getters that call it report the value as Go's %v would.
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go writes `1e-7` and `1e+21`: a sign always, two digits for positive exponents.
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((mantissa, exp)) => match exp.strip_prefix('-') {
                Some(digits) => format!("{mantissa}e-{digits}"),
                None => format!("{mantissa}e+{exp:0>2}"),
            },
            None => s,
        }
    } else {
        let s = format!("{v}");
        s
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Calling a function on plain values, for the families' unit tests.

    use super::*;

    /// Arguments given as values; path arguments are slots whose writes are recorded.
    #[derive(Default)]
    pub struct Values {
        pub args: Vec<Option<Value>>,
        /// What editors wrote, by argument index.
        pub written: Vec<(usize, Value)>,
        /// The item's fields that context-reading functions see, and what they write there.
        pub context: Vec<(Target, Value)>,
    }

    impl ArgSource for Values {
        fn present(&self, i: usize) -> bool {
            self.args.get(i).is_some_and(Option::is_some)
        }
        fn value(&mut self, i: usize) -> Result<Value, EvalError> {
            // A slot written earlier in the same call reads back what was written.
            if let Some((_, v)) = self.written.iter().rev().find(|(n, _)| *n == i) {
                return Ok(v.clone());
            }
            Ok(self.args.get(i).cloned().flatten().unwrap_or(Value::Nil))
        }
        fn items(&mut self, i: usize) -> Result<Vec<Value>, EvalError> {
            match self.value(i)? {
                Value::List(items) => Ok(items),
                other => Err(EvalError::expected("list", &other)),
            }
        }
        fn literal(&self, i: usize) -> Option<&Value> {
            self.args.get(i).and_then(Option::as_ref)
        }
        fn set(&mut self, i: usize, value: Value) -> Result<(), EvalError> {
            self.written.push((i, value));
            Ok(())
        }
        fn call(&mut self, i: usize, args: Vec<Value>) -> Result<Value, EvalError> {
            let Some(Value::String(name)) = self.args.get(i).cloned().flatten() else {
                return Err(EvalError::Function("no function argument".into()));
            };
            let def =
                registry::lookup(&name).ok_or_else(|| EvalError::Function(format!("no function {name}")))?;
            call_converter(def.name, args.into_iter().map(Some).collect())
        }
        fn read(&mut self, target: Target) -> Result<Value, EvalError> {
            Ok(self.context.iter().rev().find(|(t, _)| *t == target).map_or(Value::Nil, |(_, v)| v.clone()))
        }
        fn write(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
            self.context.push((target, value));
            Ok(())
        }
    }

    /// Runs function `name` on prepared argument values (for context-reading functions and tests
    /// that look at more than one written argument).
    pub fn run(name: &str, values: &mut Values) -> Result<Option<Value>, EvalError> {
        let def = registry::lookup(name).ok_or_else(|| EvalError::Function(format!("no function {name}")))?;
        let literals: Vec<Option<&Value>> = values.args.iter().map(Option::as_ref).collect();
        let prepared = match def.prepare {
            Some(prepare) => prepare(&literals).map_err(EvalError::Function)?,
            None => None,
        };
        let mut call = Call::new(def.name, values, prepared.as_deref());
        match def.run {
            Run::Converter(f) => f(&mut call).map(Some),
            Run::Editor(f) => f(&mut call).map(|()| None),
        }
    }

    /// Runs converter `name` on `args` (`None` for an absent optional argument; a `FunctionGetter`
    /// argument is the function's name as a string).
    pub fn call_converter(name: &str, args: Vec<Option<Value>>) -> Result<Value, EvalError> {
        let mut values = Values { args, ..Values::default() };
        run(name, &mut values).map(Option::unwrap_or_default)
    }

    /// Runs editor `name` with its target (argument 0) holding `target`; returns the target after the
    /// call (unchanged when the editor wrote nothing).
    pub fn call_editor(name: &str, target: Value, mut args: Vec<Option<Value>>) -> Result<Value, EvalError> {
        args.insert(0, Some(target.clone()));
        let mut values = Values { args, ..Values::default() };
        run(name, &mut values)?;
        Ok(values.written.into_iter().rev().find(|(n, _)| *n == 0).map_or(target, |(_, v)| v))
    }
}
