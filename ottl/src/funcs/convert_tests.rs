//! The Collector's unit-test tables for the conversion converters (pkg/ottl/ottlfuncs/func_*_test.go),
//! ported to values, and a check of this family's and the string family's signatures against the
//! function catalogue (tests/data/functions.yaml).

use super::super::testing::call_converter;
use super::super::{ArgSource, Call, ParamType, Run, registry};
use crate::ast::CompareOp;
use crate::context::Target;
use crate::eval::EvalError;
use crate::value::Value;

fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}

fn i(n: i64) -> Value {
    Value::Int(n)
}

fn f(x: f64) -> Value {
    Value::Float(x)
}

fn b(x: bool) -> Value {
    Value::Bool(x)
}

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, EvalError> {
    call_converter(name, args.into_iter().map(Some).collect())
}

fn ok(name: &str, args: Vec<Value>) -> Value {
    call(name, args).unwrap_or_else(|e| panic!("{name}: unexpected error {e}"))
}

fn err(name: &str, args: Vec<Value>) -> String {
    match call(name, args) {
        Ok(v) => panic!("{name}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

fn assert_same(got: &Value, want: &Value, what: &str) {
    assert!(got.compare(want, CompareOp::Eq), "{what}: got {got:?}, want {want:?}");
}

/// Arguments that are never literals, so nothing is prepared at bind time.
struct Dynamic(Vec<Value>);

impl ArgSource for Dynamic {
    fn present(&self, i: usize) -> bool {
        i < self.0.len()
    }
    fn value(&mut self, i: usize) -> Result<Value, EvalError> {
        Ok(self.0.get(i).cloned().unwrap_or_default())
    }
    fn items(&mut self, i: usize) -> Result<Vec<Value>, EvalError> {
        match self.value(i)? {
            Value::List(items) => Ok(items),
            other => Err(EvalError::expected("list", &other)),
        }
    }
    fn literal(&self, _: usize) -> Option<&Value> {
        None
    }
    fn set(&mut self, _: usize, _: Value) -> Result<(), EvalError> {
        Ok(())
    }
    fn call(&mut self, _: usize, _: Vec<Value>) -> Result<Value, EvalError> {
        Err(EvalError::Function("no function arguments here".into()))
    }
    fn read(&mut self, _: Target) -> Result<Value, EvalError> {
        Ok(Value::Nil)
    }
    fn write(&mut self, _: Target, _: Value) -> Result<(), EvalError> {
        Ok(())
    }
}

fn call_dynamic(name: &str, args: Vec<Value>) -> Result<Value, EvalError> {
    let def = registry::lookup(name).unwrap_or_else(|| panic!("no function {name}"));
    let mut source = Dynamic(args);
    let mut call = Call::new(def.name, &mut source, None);
    match def.run {
        Run::Converter(f) => f(&mut call),
        Run::Editor(_) => panic!("{name} is an editor"),
    }
}

// === String, Int, Double, Bool ===

/// Scenario: func_string_test.go's table. Guarantees: strings as they are, numbers and bools as
/// text, bytes as hex, maps and lists as JSON, nil stays nil.
#[test]
fn string_table() {
    let cases: Vec<(Value, Value)> = vec![
        (s("test"), s("test")),
        (s(""), s("")),
        (s("333"), s("333")),
        (i(333), s("333")),
        (f(2.7), s("2.7")),
        (f(55.0), s("55")),
        (b(true), s("true")),
        (b(false), s("false")),
        (Value::Nil, Value::Nil),
        (Value::Bytes(vec![123]), s("7b")),
        (map(&[("1", b(true)), ("2", b(false))]), s(r#"{"1":true,"2":false}"#)),
        (list(vec![i(1), i(2), i(3)]), s("[1,2,3]")),
    ];
    for (value, want) in cases {
        assert_eq!(ok("String", vec![value.clone()]), want, "String({value:?})");
    }
}

/// Scenario: func_int_test.go's table. Guarantees: base-10 strings parsed, floats truncated, bools
/// 1/0; an empty or non-numeric string and nil give nil without error; a map is an error.
#[test]
fn int_table() {
    let cases: Vec<(Value, Value)> = vec![
        (s("50"), i(50)),
        (s(""), Value::Nil),
        (s("test"), Value::Nil),
        (i(333), i(333)),
        (f(2.7), i(2)),
        (f(55.0), i(55)),
        (b(true), i(1)),
        (b(false), i(0)),
        (Value::Nil, Value::Nil),
    ];
    for (value, want) in cases {
        assert_eq!(ok("Int", vec![value.clone()]), want, "Int({value:?})");
    }
    assert!(err("Int", vec![map(&[])]).contains("unsupported type"));
}

/// Scenario: func_double_test.go's table. Guarantees: numeric strings parsed, ints widened, bools
/// 1/0, nil stays nil; empty and non-numeric strings and maps are errors.
#[test]
fn double_table() {
    let cases: Vec<(Value, Value)> = vec![
        (s("50"), f(50.0)),
        (i(333), f(333.0)),
        (f(2.7), f(2.7)),
        (f(55.0), f(55.0)),
        (b(true), f(1.0)),
        (b(false), f(0.0)),
        (Value::Nil, Value::Nil),
    ];
    for (value, want) in cases {
        assert_eq!(ok("Double", vec![value.clone()]), want, "Double({value:?})");
    }
    for bad in [s(""), s("test"), map(&[])] {
        assert!(call("Double", vec![bad.clone()]).is_err(), "{bad:?}");
    }
}

/// Scenario: func_bool_test.go's table. Guarantees: Go's `strconv.ParseBool` spellings, numbers
/// true when not zero, nil stays nil; other strings and slices are errors.
#[test]
fn bool_table() {
    let cases: Vec<(Value, Value)> = vec![
        (s("true"), b(true)),
        (s("false"), b(false)),
        (s("TRUE"), b(true)),
        (s("FALSE"), b(false)),
        (s("True"), b(true)),
        (s("False"), b(false)),
        (s("t"), b(true)),
        (s("f"), b(false)),
        (s("T"), b(true)),
        (s("F"), b(false)),
        (s("1"), b(true)),
        (s("0"), b(false)),
        (i(5), b(true)),
        (i(0), b(false)),
        (f(2.7), b(true)),
        (f(0.0), b(false)),
        (b(true), b(true)),
        (b(false), b(false)),
        (Value::Nil, Value::Nil),
    ];
    for (value, want) in cases {
        assert_eq!(ok("Bool", vec![value.clone()]), want, "Bool({value:?})");
    }
    for bad in [s("TrUe"), s("FaLsE"), s("6"), s(""), s("test"), list(vec![])] {
        assert!(call("Bool", vec![bad.clone()]).is_err(), "{bad:?}");
    }
}

// === ParseInt, Hex ===

/// Scenario: func_parse_int_test.go's table plus Go's prefix, sign and underscore rules.
/// Guarantees: `strconv.ParseInt` results; out of range, non-numeric, empty and negative bases are
/// errors with Go's messages.
#[test]
fn parse_int_table() {
    let cases: Vec<(&str, i64, i64)> = vec![
        ("123456789", 10, 123_456_789),
        ("01010101", 2, 85),
        ("AF", 16, 175),
        ("0XAF", 0, 175),
        ("-0x10", 0, -16),
        ("0b101", 0, 5),
        ("0o17", 0, 15),
        ("017", 0, 15),
        ("1_000", 0, 1000),
        ("+42", 10, 42),
        ("zz", 36, 1295),
        ("-9223372036854775808", 10, i64::MIN),
    ];
    for (target, base, want) in cases {
        assert_eq!(ok("ParseInt", vec![s(target), i(base)]), i(want), "ParseInt({target}, {base})");
    }
    let errors: Vec<(Value, i64, &str)> = vec![
        (
            s("18446744073709551615"),
            10,
            "strconv.ParseInt: parsing \"18446744073709551615\": value out of range",
        ),
        (s("test"), 10, "strconv.ParseInt: parsing \"test\": invalid syntax"),
        (s(""), 10, "target cannot be empty"),
        (s("12345"), -10, "invalid base value: -10 for ParseInt function, base cannot be negative"),
        (s("12"), 1, "invalid base 1"),
        (s("1_000"), 10, "invalid syntax"),
        (s("0x_1_"), 0, "invalid syntax"),
        (i(1), 10, "expected string"),
    ];
    for (target, base, want) in errors {
        let e = err("ParseInt", vec![target.clone(), i(base)]);
        assert!(e.contains(want), "ParseInt({target:?}, {base}): {e}");
    }
}

/// Scenario: func_hex_test.go's table plus strings and bytes. Guarantees: ints as 8 big-endian
/// bytes in hex, nil as "", a map is the getter's unsupported-type error.
#[test]
fn hex_table() {
    assert_eq!(ok("Hex", vec![i(12)]), s("000000000000000c"));
    assert_eq!(ok("Hex", vec![Value::Nil]), s(""));
    assert_eq!(ok("Hex", vec![s("hi")]), s("6869"));
    assert_eq!(ok("Hex", vec![Value::Bytes(vec![0xde, 0xad])]), s("dead"));
    assert_eq!(ok("Hex", vec![b(true)]), s("01"));
    assert_eq!(err("Hex", vec![map(&[("hi", s("hi"))])]), "unsupported type: pcommon.Map");
}

// === type checks ===

/// Scenario: func_is_bool/is_double/is_int/is_map/is_string/is_list_test.go shapes: each type
/// against every other and nil. Guarantees: true only for the exact type (an int is no double),
/// false (no error) otherwise.
#[test]
fn is_type_tables() {
    let samples = [
        ("bool", b(true)),
        ("double", f(1.5)),
        ("int", i(1)),
        ("map", map(&[("a", i(1))])),
        ("string", s("a")),
        ("list", list(vec![i(1)])),
        ("bytes", Value::Bytes(vec![1])),
        ("nil", Value::Nil),
    ];
    let checks = [
        ("IsBool", "bool"),
        ("IsDouble", "double"),
        ("IsInt", "int"),
        ("IsMap", "map"),
        ("IsString", "string"),
        ("IsList", "list"),
    ];
    for (func, kind) in checks {
        for (sample_kind, value) in &samples {
            let want = *sample_kind == kind;
            assert_eq!(ok(func, vec![value.clone()]), b(want), "{func}({sample_kind})");
        }
    }
    assert_eq!(ok("IsMap", vec![map(&[])]), b(true));
    assert_eq!(ok("IsList", vec![list(vec![])]), b(true));
}

/// Scenario: func_is_empty_test.go's table. Guarantees: nil, empty strings/maps/lists/bytes,
/// zero numbers, false and all-zero IDs are empty; anything else is not.
#[test]
fn is_empty_table() {
    let cases: Vec<(Value, bool)> = vec![
        (Value::Nil, true),
        (s(""), true),
        (s("hello"), false),
        (i(0), true),
        (i(1), false),
        (f(0.0), true),
        (f(1.5), false),
        (b(false), true),
        (b(true), false),
        (map(&[]), true),
        (map(&[("k", s("v"))]), false),
        (list(vec![]), true),
        (list(vec![s("v")]), false),
        (Value::Bytes(vec![]), true),
        (Value::Bytes(b"v".to_vec()), false),
        (Value::TraceId([0; 16]), true),
        (Value::TraceId([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]), false),
        (Value::SpanId([0; 8]), true),
        (Value::SpanId([1, 2, 3, 4, 5, 6, 7, 8]), false),
        (Value::Duration(0), true),
    ];
    for (value, want) in cases {
        assert_eq!(ok("IsEmpty", vec![value.clone()]), b(want), "IsEmpty({value:?})");
    }
}

// === Coalesce, ContainsValue, Keys, Values ===

/// Scenario: func_coalesce_test.go's table. Guarantees: the first value that is not nil (of any
/// type), nil when all are nil; empty strings count as values.
#[test]
fn coalesce_table() {
    let cases: Vec<(Vec<Value>, Value)> = vec![
        (vec![s("first"), s("second")], s("first")),
        (vec![Value::Nil, s("second")], s("second")),
        (vec![Value::Nil, Value::Nil, s("third")], s("third")),
        (vec![Value::Nil, Value::Nil], Value::Nil),
        (vec![s("only")], s("only")),
        (vec![Value::Nil], Value::Nil),
        (vec![Value::Nil, i(42)], i(42)),
        (vec![Value::Nil, b(true)], b(true)),
        (vec![Value::Nil, f(3.17)], f(3.17)),
        (vec![s(""), s("x")], s("")),
    ];
    for (values, want) in cases {
        assert_eq!(ok("Coalesce", vec![list(values.clone())]), want, "Coalesce({values:?})");
    }
}

/// Scenario: func_contains_value_test.go's table. Guarantees: OTTL equality (numbers across int
/// and double); a target that is no slice is an error.
#[test]
fn contains_value_table() {
    let cases: Vec<(Value, Value, bool)> = vec![
        (list(vec![s("hello"), s("world")]), s("hello"), true),
        (list(vec![s("hello"), s("world")]), s("unknown"), false),
        (list(vec![i(0), i(1)]), i(1), true),
        (list(vec![i(0), f(3.17159)]), f(3.17159), true),
        (list(vec![b(true), b(false)]), b(true), true),
        (list(vec![i(1), i(2)]), i(4), false),
        (list(vec![s("test1"), s("test2")]), s("test1"), true),
        (list(vec![i(1)]), f(1.0), true),
    ];
    for (target, item, want) in cases {
        assert_eq!(
            ok("ContainsValue", vec![target.clone(), item.clone()]),
            b(want),
            "{target:?} contains {item:?}"
        );
    }
    assert!(err("ContainsValue", vec![s("x"), s("x")]).contains("expected pcommon.Slice"));
}

/// Scenario: func_keys_test.go and func_values_test.go. Guarantees: the keys and the values of a
/// map in its order (empty for an empty map); a non-map is an error.
#[test]
fn keys_and_values() {
    let m = map(&[
        ("ke1", s("test")),
        ("key2", s("test2")),
        ("key3", i(4)),
        ("key4", b(true)),
        ("key5", list(vec![i(1), i(2), i(3)])),
        ("key6", f(3.17)),
        ("key7", map(&[("subkey", s("subvalue"))])),
    ]);
    assert_eq!(
        ok("Keys", vec![m.clone()]),
        list(["ke1", "key2", "key3", "key4", "key5", "key6", "key7"].into_iter().map(s).collect())
    );
    assert_eq!(
        ok("Values", vec![m]),
        list(vec![
            s("test"),
            s("test2"),
            i(4),
            b(true),
            list(vec![i(1), i(2), i(3)]),
            f(3.17),
            map(&[("subkey", s("subvalue"))]),
        ])
    );
    assert_eq!(ok("Keys", vec![map(&[])]), list(vec![]));
    assert_eq!(ok("Values", vec![map(&[])]), list(vec![]));
    assert!(err("Keys", vec![s("x")]).contains("expected pcommon.Map"));
    assert!(err("Values", vec![Value::Nil]).contains("expected pcommon.Map but got nil"));
}

// === SliceToMap ===

fn paths(items: &[&str]) -> Value {
    list(items.iter().map(|x| s(x)).collect())
}

/// A SliceToMap case: target, key path, value path, and the expectation.
type SliceCase<'a, W> = (Value, Option<&'a [&'a str]>, Option<&'a [&'a str]>, W);

fn slice_to_map(target: Value, key: Option<&[&str]>, value: Option<&[&str]>) -> Result<Value, EvalError> {
    call_converter("SliceToMap", vec![Some(target), key.map(paths), value.map(paths)])
}

/// Scenario: func_slice_to_map_test.go's table. Guarantees: keys from the key path (or the index),
/// values from the value path (or the whole element); its error messages for missing paths,
/// non-string keys and elements that are no maps.
#[test]
fn slice_to_map_table() {
    let flat =
        list(vec![map(&[("name", s("foo")), ("value", i(2))]), map(&[("name", s("bar")), ("value", i(5))])]);
    let nested = list(vec![
        map(&[("name", s("foo")), ("value", map(&[("test", s("x"))]))]),
        map(&[("name", s("bar")), ("value", map(&[("test", s("y"))]))]),
    ]);
    let cases: Vec<SliceCase<'_, Value>> = vec![
        (
            flat.clone(),
            Some(&["name"]),
            None,
            map(&[
                ("foo", map(&[("name", s("foo")), ("value", i(2))])),
                ("bar", map(&[("name", s("bar")), ("value", i(5))])),
            ]),
        ),
        (flat.clone(), Some(&["name"]), Some(&["value"]), map(&[("foo", i(2)), ("bar", i(5))])),
        (
            nested.clone(),
            Some(&["value", "test"]),
            None,
            map(&[
                ("x", map(&[("name", s("foo")), ("value", map(&[("test", s("x"))]))])),
                ("y", map(&[("name", s("bar")), ("value", map(&[("test", s("y"))]))])),
            ]),
        ),
        (nested.clone(), Some(&["value", "test"]), Some(&["name"]), map(&[("x", s("foo")), ("y", s("bar"))])),
        (
            list(vec![
                map(&[("name", s("foo")), ("value", map(&[("test", s("value"))]))]),
                map(&[("name", s("bar")), ("value", i(5))]),
            ]),
            Some(&["name"]),
            Some(&["value"]),
            map(&[("foo", map(&[("test", s("value"))])), ("bar", i(5))]),
        ),
        (
            flat.clone(),
            None,
            None,
            map(&[
                ("0", map(&[("name", s("foo")), ("value", i(2))])),
                ("1", map(&[("name", s("bar")), ("value", i(5))])),
            ]),
        ),
        (flat, None, Some(&["value"]), map(&[("0", i(2)), ("1", i(5))])),
        (
            nested,
            None,
            Some(&["value"]),
            map(&[("0", map(&[("test", s("x"))])), ("1", map(&[("test", s("y"))]))]),
        ),
        (list(vec![s("a"), s("b")]), None, None, map(&[("0", s("a")), ("1", s("b"))])),
        (
            list(vec![s("a"), i(123), b(true), s("val")]),
            None,
            None,
            map(&[("0", s("a")), ("1", i(123)), ("2", b(true)), ("3", s("val"))]),
        ),
    ];
    for (target, key, value, want) in cases {
        let got = slice_to_map(target.clone(), key, value).unwrap_or_else(|e| panic!("{target:?}: {e}"));
        assert_same(&got, &want, &format!("{key:?} {value:?}"));
    }
}

/// Scenario: func_slice_to_map_test.go's error cases. Guarantees: the same messages.
#[test]
fn slice_to_map_errors() {
    let flat =
        list(vec![map(&[("name", s("foo")), ("value", i(2))]), map(&[("name", s("bar")), ("value", i(5))])]);
    let nested = list(vec![map(&[("name", s("foo")), ("value", map(&[("test", s("x"))]))])]);
    let cases: Vec<SliceCase<'_, &str>> = vec![
        (
            flat.clone(),
            Some(&["notfound"]),
            None,
            "could not extract key from element 0: provided object does not contain the path [notfound]",
        ),
        (flat.clone(), Some(&["value"]), None, "extracted key attribute is not of type string"),
        (
            nested.clone(),
            Some(&["value", "test"]),
            Some(&["notfound"]),
            "could not extract value from element 0: provided object does not contain the path [notfound]",
        ),
        (
            nested,
            Some(&["value", "test"]),
            Some(&["name", "nothing"]),
            "could not extract value from element 0: provided object does not contain the path [name nothing]",
        ),
        (map(&[]), Some(&["name"]), None, "expected pcommon.Slice but got pcommon.Map"),
        (
            list(vec![s("unsupported")]),
            Some(&["name"]),
            None,
            "could not cast element of type `Str` to a map",
        ),
        (
            list(vec![map(&[("name", s("foo")), ("value", i(2))]), s("nothingToSeeHere")]),
            Some(&["name"]),
            Some(&["value"]),
            "could not cast element of type `Str` to a map",
        ),
    ];
    for (target, key, value, want) in cases {
        let e = slice_to_map(target, key, value).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }
}

// === Sort ===

fn sort(target: Value, order: &str) -> Result<Value, EvalError> {
    call("Sort", vec![target, s(order)])
}

/// Scenario: func_sort_test.go's table. Guarantees: ints and doubles numerically, strings
/// lexically, mixed kinds by their string forms with the original values kept, desc reversed.
#[test]
fn sort_table() {
    let cases: Vec<(Value, &str, Value)> = vec![
        (list(vec![i(9), i(6), i(3)]), "asc", list(vec![i(3), i(6), i(9)])),
        (list(vec![i(3), i(6), i(9)]), "desc", list(vec![i(9), i(6), i(3)])),
        (
            list(["i", "am", "awesome", "slice"].into_iter().map(s).collect()),
            "asc",
            list(["am", "awesome", "i", "slice"].into_iter().map(s).collect()),
        ),
        (list(vec![f(1.5), f(10.2), f(2.3), f(0.5)]), "asc", list(vec![f(0.5), f(1.5), f(2.3), f(10.2)])),
        (list(vec![]), "asc", list(vec![])),
        (
            list(vec![b(true), b(false), b(true), b(false)]),
            "asc",
            list(vec![b(false), b(false), b(true), b(true)]),
        ),
        (list(vec![i(1), s("two"), f(3.33), b(false)]), "asc", list(vec![i(1), f(3.33), b(false), s("two")])),
        (list(vec![f(1.5), s("10.2"), f(2.3), f(0.5)]), "asc", list(vec![f(0.5), f(1.5), s("10.2"), f(2.3)])),
        (list(vec![i(0), i(2), f(3.33), i(0)]), "asc", list(vec![i(0), i(0), i(2), f(3.33)])),
        (list(vec![f(3.17), i(2), f(3.33), i(0)]), "desc", list(vec![f(3.33), f(3.17), i(2), i(0)])),
        (
            list(["A", "a", "aa"].into_iter().map(s).collect()),
            "asc",
            list(["A", "a", "aa"].into_iter().map(s).collect()),
        ),
        (list(vec![s("a"), s("slice"), s("a")]), "asc", list(vec![s("a"), s("a"), s("slice")])),
    ];
    for (target, order, want) in cases {
        assert_eq!(sort(target.clone(), order).unwrap(), want, "Sort({target:?}, {order})");
    }
    assert_eq!(
        call_converter("Sort", vec![Some(list(vec![i(2), i(1)])), None]).unwrap(),
        list(vec![i(1), i(2)])
    );
}

/// Scenario: func_sort_test.go's error cases and a bad order. Guarantees: nil, maps, bytes,
/// strings and lists holding maps are errors; an order other than asc/desc fails at bind time.
#[test]
fn sort_errors() {
    for bad in [
        Value::Nil,
        map(&[("k", s("v"))]),
        Value::Bytes(b"still fine".to_vec()),
        s("no change"),
        list(vec![map(&[("some", s("invalid kv"))])]),
    ] {
        assert!(sort(bad.clone(), "asc").is_err(), "{bad:?}");
    }
    assert!(
        sort(list(vec![i(1)]), "sideways")
            .unwrap_err()
            .to_string()
            .contains("invalid arguments: sideways. Order should be either \"asc\" or \"desc\"")
    );
}

// === Log ===

/// Scenario: func_log_test.go's tables. Guarantees: the natural logarithm of the float-like value;
/// non-numbers, false, zero, negatives, nil and unsupported types are errors.
#[test]
fn log_table() {
    for (value, want) in [
        (s("50"), 50f64.ln()),
        (i(333), 333f64.ln()),
        (f(2.7), 2.7f64.ln()),
        (f(55.0), 55f64.ln()),
        (b(true), 0.0),
    ] {
        assert_eq!(ok("Log", vec![value.clone()]), f(want), "Log({value:?})");
    }
    let errors: Vec<(Value, &str)> = vec![
        (s("test"), "invalid"),
        (b(false), "invalid"),
        (f(0.0), "greater than zero"),
        (f(-30.3), "expected number greater than zero but got -30.3"),
        (Value::Nil, "invalid input: <nil>"),
        (map(&[]), "unsupported"),
    ];
    for (value, want) in errors {
        let e = err("Log", vec![value.clone()]);
        assert!(e.contains(want), "Log({value:?}): {e}");
    }
}

// === ParseJSON ===

/// Scenario: func_parse_json_test.go's table: strings, bools, numbers, null, arrays (also at the
/// top), nested objects, a complex document. Guarantees: maps and slices with numbers as doubles
/// and null as an empty value.
#[test]
fn parse_json_table() {
    let cases: Vec<(&str, Value)> = vec![
        (r#"{"test":"string value"}"#, map(&[("test", s("string value"))])),
        (r#"{"test":true}"#, map(&[("test", b(true))])),
        (r#"{"test":1}"#, map(&[("test", f(1.0))])),
        (r#"{"test":1.1}"#, map(&[("test", f(1.1))])),
        (r#"{"test":null}"#, map(&[("test", Value::Nil)])),
        (r#"{"test":["string","value"]}"#, map(&[("test", list(vec![s("string"), s("value")]))])),
        (r#"["string","value"]"#, list(vec![s("string"), s("value")])),
        (
            r#"[{"test":"value"},{"test":"value"}]"#,
            list(vec![map(&[("test", s("value"))]), map(&[("test", s("value"))])]),
        ),
        (r#"{"test":{"nested":"true"}}"#, map(&[("test", map(&[("nested", s("true"))]))])),
        (r#"{"existing":"pass"}"#, map(&[("existing", s("pass"))])),
        (
            r#"{"test1":{"nested":"true"},"test2":"string","test3":1,"test4":1.1,"test5":[[1], [2, 3],[]],"test6":null}"#,
            map(&[
                ("test1", map(&[("nested", s("true"))])),
                ("test2", s("string")),
                ("test3", f(1.0)),
                ("test4", f(1.1)),
                ("test5", list(vec![list(vec![f(1.0)]), list(vec![f(2.0), f(3.0)]), list(vec![])])),
                ("test6", Value::Nil),
            ]),
        ),
    ];
    for (text, want) in cases {
        assert_same(&ok("ParseJSON", vec![s(text)]), &want, text);
    }
}

/// Scenario: key order, repeated keys, and failures. Guarantees: keys keep their order, a repeated
/// key keeps its last value; a non-string target, invalid JSON, trailing text and a top-level
/// scalar are errors.
#[test]
fn parse_json_order_and_errors() {
    let got = ok("ParseJSON", vec![s(r#"{"b":1,"a":2,"b":3}"#)]);
    assert_eq!(got, map(&[("b", f(3.0)), ("a", f(2.0))]));
    assert!(err("ParseJSON", vec![i(1)]).contains("expected string"));
    for bad in ["{", r#"{"a":1} x"#, "42", "\"text\"", ""] {
        assert!(call("ParseJSON", vec![s(bad)]).is_err(), "{bad}");
    }
}

// === ParseSeverity ===

fn range(min: i64, max: i64) -> Value {
    map(&[("range", map(&[("min", i(min)), ("max", i(max))]))])
}

/// The mapping of func_parse_severity_test.go's `getTestSeverityMapping`.
fn severity_mapping() -> Value {
    map(&[
        ("error", list(vec![range(400, 499)])),
        ("debug", list(vec![range(100, 199)])),
        (
            "info",
            list(vec![map(&[("equals", list(vec![s("inf"), s("info")]))]), map(&[("range", s("2xx"))])]),
        ),
        ("warn", list(vec![range(300, 399)])),
        ("fatal", list(vec![range(500, 599)])),
    ])
}

/// Scenario: func_parse_severity_test.go's matching cases. Guarantees: status codes by range or
/// placeholder, strings by equality, the first level that matches.
#[test]
fn parse_severity_table() {
    let cases: Vec<(Value, Value, &str)> = vec![
        (i(400), severity_mapping(), "error"),
        (i(100), severity_mapping(), "debug"),
        (i(200), map(&[("info", list(vec![map(&[("range", s("2xx"))])]))]), "info"),
        (s("inf"), severity_mapping(), "info"),
        (i(200), severity_mapping(), "info"),
        (
            s("inf"),
            map(&[
                ("error", list(vec![map(&[("min", i(400)), ("max", i(599))])])),
                ("info", list(vec![map(&[("equals", list(vec![s("info"), s("inf")]))])])),
            ]),
            "info",
        ),
    ];
    for (target, mapping, want) in cases {
        assert_eq!(ok("ParseSeverity", vec![target.clone(), mapping]), s(want), "{target:?}");
    }
}

/// Scenario: func_parse_severity_test.go's error cases. Guarantees: the same messages for malformed
/// mappings, targets of other types, and values no level matches.
#[test]
fn parse_severity_errors() {
    let cases: Vec<(Value, Value, &str)> = vec![
        (
            s("foo"),
            map(&[("info", list(vec![s("info"), s("inf")]))]),
            "severity mapping criteria items must be map[string]any",
        ),
        (i(400), map(&[("error", s("invalid"))]), "severity mapping criteria must be []any"),
        (
            i(400),
            map(&[("error", list(vec![map(&[("range", map(&[("min", s("foo")), ("max", i(599))]))])]))]),
            "invalid severity mapping criteria: min must be an int64",
        ),
        (
            map(&[("foo", s("bar"))]),
            map(&[("warn", list(vec![range(400, 499)]))]),
            "could not map log level: could not evaluate log level of value 'map[foo:bar]'",
        ),
        (
            i(400),
            map(&[("error", list(vec![map(&[("range", map(&[("min", i(400)), ("max", s("foo"))]))])]))]),
            "invalid severity mapping criteria: max must be an int64",
        ),
        (
            i(400),
            map(&[("error", list(vec![map(&[("range", map(&[("max", i(599))]))])]))]),
            "invalid severity mapping criteria: range must have a min value",
        ),
        (
            i(400),
            map(&[("error", list(vec![map(&[("range", map(&[("min", i(400))]))])]))]),
            "invalid severity mapping criteria: range must have a max value",
        ),
        (i(700), severity_mapping(), "could not map log level: no matching log level found for value '700'"),
        (i(1), map(&[("info", list(vec![map(&[("range", s("9xx"))])]))]), "unknown range placeholder: 9xx"),
    ];
    for (target, mapping, want) in cases {
        let e = err("ParseSeverity", vec![target.clone(), mapping]);
        assert!(e.contains(want), "{target:?}: {e}");
    }
}

/// Scenario: ParseSeverity and Sort whose mapping and order are no literals (nothing prepared).
/// Guarantees: the mapping is read and checked per call with the same results and errors; the
/// order is checked per call.
#[test]
fn per_call_arguments() {
    assert_eq!(call_dynamic("ParseSeverity", vec![i(404), severity_mapping()]).unwrap(), s("error"));
    assert_eq!(call_dynamic("ParseSeverity", vec![s("info"), severity_mapping()]).unwrap(), s("info"));
    let e = call_dynamic("ParseSeverity", vec![i(1), map(&[("error", s("x"))])]).unwrap_err().to_string();
    assert!(e.contains("severity mapping criteria must be []any"), "{e}");
    let e = call_dynamic("ParseSeverity", vec![i(1), s("not a map")]).unwrap_err().to_string();
    assert!(e.contains("cannot get severity mapping"), "{e}");
    assert_eq!(
        call_dynamic("Sort", vec![list(vec![i(1), i(3)]), s("desc")]).unwrap(),
        list(vec![i(3), i(1)])
    );
    assert!(call_dynamic("Sort", vec![list(vec![i(1)]), s("up")]).is_err());
}

// === lambdas ===

/// Scenario: the lambda converters called directly. Guarantees: each is registered with a lambda
/// parameter and refuses to run, naming the feature gate.
#[test]
fn lambda_converters_need_the_feature_gate() {
    for name in ["All", "Any", "Filter", "Find", "MapEach", "MapKeys", "Reduce", "When"] {
        let def = registry::lookup(name).unwrap_or_else(|| panic!("{name} not registered"));
        assert!(def.params.iter().any(|p| p.ty == ParamType::Lambda), "{name}");
        let e = call(name, vec![list(vec![]), s("x"), s("y")]).unwrap_err().to_string();
        assert!(e.contains("ottl.functions.enableLambda"), "{name}: {e}");
    }
}

// === signatures against the catalogue ===

fn catalogue_type(ty: &str) -> Option<ParamType> {
    Some(match ty {
        "Getter" => ParamType::Getter,
        "StringGetter" => ParamType::StringGetter,
        "StringLikeGetter" => ParamType::StringLikeGetter,
        "IntGetter" => ParamType::IntGetter,
        "IntLikeGetter" => ParamType::IntLikeGetter,
        "FloatGetter" => ParamType::FloatGetter,
        "FloatLikeGetter" => ParamType::FloatLikeGetter,
        "BoolGetter" => ParamType::BoolGetter,
        "BoolLikeGetter" => ParamType::BoolLikeGetter,
        "PMapGetter" => ParamType::PMapGetter,
        "PSliceGetter" => ParamType::PSliceGetter,
        "ByteSliceLikeGetter" => ParamType::ByteSliceLikeGetter,
        "string" => ParamType::String,
        "bool" => ParamType::Bool,
        "int64" => ParamType::Int,
        "float64" => ParamType::Float,
        "[]string" => ParamType::StringList,
        "[]Getter" => ParamType::GetterList,
        "[]StringGetter" => ParamType::StringGetterList,
        "[]StringLikeGetter" => ParamType::StringLikeGetterList,
        "LambdaExpression" => ParamType::Lambda,
        _ => return None,
    })
}

/// Scenario: every function of the string and conversion families against functions.yaml.
/// Guarantees: the catalogue's parameter names, order, types and optionality, that each is a
/// converter, and that no other family registers the same name.
#[test]
fn signatures_match_the_catalogue() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/functions.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let functions = doc["functions"].as_sequence().unwrap();
    let names = super::FUNCTIONS.iter().chain(super::super::strings::FUNCTIONS).map(|d| d.name);
    let mut checked = 0;
    for name in names {
        let entry = functions
            .iter()
            .find(|f| f["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("{name} not in catalogue"));
        assert_eq!(entry["kind"].as_str(), Some("converter"), "{name}");
        assert_eq!(registry::names().filter(|n| *n == name).count(), 1, "{name} registered once");
        let def = registry::lookup(name).unwrap();
        let params = entry["params"].as_sequence().cloned().unwrap_or_default();
        assert_eq!(def.params.len(), params.len(), "{name}: parameter count");
        for (param, want) in def.params.iter().zip(&params) {
            assert_eq!(Some(param.name), want["name"].as_str(), "{name}: parameter name");
            let ty = want["type"].as_str().unwrap();
            assert_eq!(Some(param.ty), catalogue_type(ty), "{name}.{}: type {ty}", param.name);
            assert_eq!(
                param.optional,
                want["optional"].as_bool().unwrap_or(false),
                "{name}.{}: optional",
                param.name
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 57);
}
