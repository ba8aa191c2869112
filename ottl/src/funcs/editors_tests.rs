//! The Collector's unit-test tables for the editors (func_*_test.go) and the transform processor's
//! `set_semconv_span_name` tests, ported, plus the Go-compatibility helpers they rest on.

use super::*;
use crate::funcs::testing::{self, Values};
use crate::funcs::{ArgSource, Call};

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn m(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect())
}

fn l(items: &[Value]) -> Value {
    Value::List(items.to_vec())
}

fn strs(items: &[&str]) -> Value {
    Value::List(items.iter().map(|i| s(i)).collect())
}

fn edit(name: &str, target: Value, args: &[Option<Value>]) -> Result<Value, EvalError> {
    testing::call_editor(name, target, args.to_vec())
}

fn edit_ok(name: &str, target: Value, args: &[Option<Value>]) -> Value {
    match edit(name, target, args) {
        Ok(v) => v,
        Err(e) => panic!("{name}: unexpected error {e}"),
    }
}

fn edit_err(name: &str, target: Value, args: &[Option<Value>]) -> String {
    match edit(name, target, args) {
        Ok(v) => panic!("{name}: expected an error, got {v:?}"),
        Err(e) => e.to_string(),
    }
}

/// Arguments for what the shared harness cannot express: arguments that are not literals (patterns
/// compiled per call), and converters passed by name that exist only here: `Test` tags its input
/// (`hash(x)`, as the Collector's test factory does), `IsString` answers a bool, `Fail` fails.
struct Harness {
    args: Vec<Option<Value>>,
    /// Indexes that are not literals.
    dynamic: Vec<usize>,
    written: Vec<(usize, Value)>,
    context: Vec<(Target, Value)>,
}

impl Harness {
    fn new(args: Vec<Option<Value>>, dynamic: &[usize]) -> Self {
        Self { args, dynamic: dynamic.to_vec(), written: Vec::new(), context: Vec::new() }
    }
}

impl ArgSource for Harness {
    fn present(&self, i: usize) -> bool {
        self.args.get(i).is_some_and(Option::is_some)
    }
    fn value(&mut self, i: usize) -> Result<Value, EvalError> {
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
        if self.dynamic.contains(&i) { None } else { self.args.get(i).and_then(Option::as_ref) }
    }
    fn set(&mut self, i: usize, value: Value) -> Result<(), EvalError> {
        self.written.push((i, value));
        Ok(())
    }
    fn call(&mut self, i: usize, args: Vec<Value>) -> Result<Value, EvalError> {
        let Some(Value::String(name)) = self.args.get(i).cloned().flatten() else {
            return Err(EvalError::Function("no function argument".into()));
        };
        match (name.as_str(), args.first()) {
            ("Test", Some(Value::String(x))) => Ok(Value::String(format!("hash({x})"))),
            ("IsString", Some(v)) => Ok(Value::Bool(matches!(v, Value::String(_)))),
            ("Fail", _) => Err(EvalError::Function("the function failed".into())),
            _ => testing::call_converter(&name, args.into_iter().map(Some).collect()),
        }
    }
    fn read(&mut self, target: Target) -> Result<Value, EvalError> {
        Ok(self.context.iter().rev().find(|(t, _)| *t == target).map_or(Value::Nil, |(_, v)| v.clone()))
    }
    fn write(&mut self, target: Target, value: Value) -> Result<(), EvalError> {
        self.context.push((target, value));
        Ok(())
    }
}

/// Runs function `name` of this family on the harness, preparing it with the literal arguments.
fn run_harness(name: &str, h: &mut Harness) -> Result<Option<Value>, EvalError> {
    let Some(def) = FUNCTIONS.iter().find(|f| f.name == name) else { panic!("no function {name}") };
    let prepared = {
        let literals: Vec<Option<&Value>> = (0..h.args.len()).map(|i| h.literal(i)).collect();
        match def.prepare {
            Some(prepare) => prepare(&literals).map_err(EvalError::Function)?,
            None => None,
        }
    };
    let mut call = Call::new(def.name, h, prepared.as_deref());
    match def.run {
        Run::Converter(f) => f(&mut call).map(Some),
        Run::Editor(f) => f(&mut call).map(|()| None),
    }
}

/// Runs editor `name` with `target` and `args` (argument 0 is the target) on the harness, with the
/// arguments at `dynamic` evaluated rather than literal; returns the target after the call.
fn edit_with(
    name: &str,
    target: Value,
    args: &[Option<Value>],
    dynamic: &[usize],
) -> Result<Value, EvalError> {
    let mut all = vec![Some(target.clone())];
    all.extend(args.iter().cloned());
    // The target is a path, never a literal.
    let mut not_literal = vec![0];
    not_literal.extend_from_slice(dynamic);
    let mut h = Harness::new(all, &not_literal);
    run_harness(name, &mut h)?;
    Ok(h.written.into_iter().rev().find(|(n, _)| *n == 0).map_or(target, |(_, v)| v))
}

fn edit_with_ok(name: &str, target: Value, args: &[Option<Value>], dynamic: &[usize]) -> Value {
    match edit_with(name, target, args, dynamic) {
        Ok(v) => v,
        Err(e) => panic!("{name}: unexpected error {e}"),
    }
}

// === set ===

/// Scenario: Test_set: a value, and nil, set on a string target. Guarantees: the value is written;
/// nil writes nothing (v0.158.0 without `ottl.set.allowNil`).
#[test]
fn set_writes_values_and_skips_nil() {
    assert_eq!(edit_ok("set", s("original name"), &[Some(s("new name"))]), s("new name"));
    let mut values = Values { args: vec![Some(s("original name")), Some(Value::Nil)], ..Values::default() };
    assert_eq!(testing::run("set", &mut values), Ok(None));
    assert!(values.written.is_empty());
}

// === delete_key ===

fn three() -> Value {
    m(&[("test", s("hello world")), ("test2", Value::Int(3)), ("test3", Value::Bool(true))])
}

/// Scenario: Test_deleteKey: deleting each kind of key from a three-key map. Guarantees: the key
/// goes and pdata's swap-remove moves the last entry into its place; absent keys change nothing.
#[test]
fn delete_key_table() {
    let cases = [
        ("test", m(&[("test3", Value::Bool(true)), ("test2", Value::Int(3))])),
        ("test2", m(&[("test", s("hello world")), ("test3", Value::Bool(true))])),
        ("not a valid key", three()),
    ];
    for (key, want) in cases {
        assert_eq!(edit_ok("delete_key", three(), &[Some(s(key))]), want, "{key}");
    }
}

/// Scenario: Test_deleteKey_bad_input / _get_nil, and a key that is no string. Guarantees: a target
/// that is no map (nil included) and a non-string key are type errors.
#[test]
fn delete_key_errors() {
    assert_eq!(
        edit_err("delete_key", s("not a map"), &[Some(s("k"))]),
        "expected pcommon.Map but got string"
    );
    assert_eq!(edit_err("delete_key", Value::Nil, &[Some(s("k"))]), "expected pcommon.Map but got nil");
    assert_eq!(edit_err("delete_key", three(), &[Some(Value::Int(1))]), "expected string but got int64");
}

// === delete_matching_keys, keep_matching_keys ===

/// Scenario: Test_deleteMatchingKeys: patterns matching all keys, keys ending in a digit, none.
/// Guarantees: matching keys (unanchored match) are removed, the rest keep their order.
#[test]
fn delete_matching_keys_table() {
    let cases =
        [("test.*", m(&[])), ("\\d$", m(&[("test", s("hello world"))])), ("not a matching pattern", three())];
    for (pattern, want) in cases {
        assert_eq!(edit_ok("delete_matching_keys", three(), &[Some(s(pattern))]), want, "{pattern}");
        assert_eq!(
            edit_with_ok("delete_matching_keys", three(), &[Some(s(pattern))], &[1]),
            want,
            "{pattern}"
        );
    }
}

/// Scenario: Test_deleteMatchingKeys_bad_input / _get_nil / _invalid_pattern. Guarantees: non-map
/// targets are type errors; an invalid literal pattern fails at bind time with the Collector's
/// message, a dynamic one per call.
#[test]
fn delete_matching_keys_errors() {
    assert!(
        edit_err("delete_matching_keys", Value::Int(1), &[Some(s("anything"))])
            .contains("expected pcommon.Map")
    );
    assert!(edit_err("delete_matching_keys", Value::Nil, &[Some(s("anything"))]).contains("but got nil"));
    let err = edit_err("delete_matching_keys", three(), &[Some(s("*"))]);
    assert!(
        err.starts_with("the regex pattern supplied to delete_matching_keys '\"*\"' is not a valid pattern: error parsing regexp:"),
        "{err}"
    );
    let Err(EvalError::Function(dynamic)) = edit_with("delete_matching_keys", three(), &[Some(s("*"))], &[1])
    else {
        panic!("dynamic invalid pattern must fail");
    };
    assert!(dynamic.contains("error parsing regexp: missing argument to repetition operator"), "{dynamic}");
}

/// Scenario: Test_keepMatchingKeys: keep keys ending in a digit, none, all; an invalid pattern.
/// Guarantees: only matching keys stay; "*" is refused at bind time.
#[test]
fn keep_matching_keys_table() {
    let input = || m(&[("foo", s("bar")), ("foo1", s("bar")), ("foo2", Value::Int(3))]);
    let cases =
        [("\\d$", m(&[("foo1", s("bar")), ("foo2", Value::Int(3))])), ("bar.*", m(&[])), ("foo.*", input())];
    for (pattern, want) in cases {
        assert_eq!(edit_ok("keep_matching_keys", input(), &[Some(s(pattern))]), want, "{pattern}");
    }
    let err = edit_err("keep_matching_keys", input(), &[Some(s("*"))]);
    assert!(err.starts_with("the regex pattern supplied to keep_matching_keys"), "{err}");
    assert!(edit_err("keep_matching_keys", s("x"), &[Some(s("a"))]).contains("expected pcommon.Map"));
}

// === keep_keys ===

/// Scenario: Test_keepKeys: keep one, two, none, a key that does not exist; a non-string key.
/// Guarantees: exactly the listed keys stay, in map order; elements must be strings.
#[test]
fn keep_keys_table() {
    let cases = [
        (strs(&["test"]), m(&[("test", s("hello world"))])),
        (strs(&["test", "test2"]), m(&[("test", s("hello world")), ("test2", Value::Int(3))])),
        (strs(&[]), m(&[])),
        (strs(&["no match"]), m(&[])),
    ];
    for (keys, want) in cases {
        assert_eq!(edit_ok("keep_keys", three(), &[Some(keys.clone())]), want, "{keys:?}");
    }
    assert_eq!(edit_err("keep_keys", three(), &[Some(l(&[Value::Int(1)]))]), "expected string but got int64");
    assert!(edit_err("keep_keys", Value::Nil, &[Some(strs(&["a"]))]).contains("expected pcommon.Map"));
}

// === limit ===

/// Scenario: Test_limit: limits of 1, 0, 100, exactly the size, with priority keys present and
/// absent. Guarantees: at most `limit` entries remain, priority keys first, the others in map order.
#[test]
fn limit_table() {
    let cases: [(i64, &[&str], Value); 8] = [
        (1, &[], m(&[("test", s("hello world"))])),
        (0, &[], m(&[])),
        (100, &[], three()),
        (3, &[], three()),
        (2, &["test3"], m(&[("test", s("hello world")), ("test3", Value::Bool(true))])),
        (2, &["test", "test3"], m(&[("test", s("hello world")), ("test3", Value::Bool(true))])),
        (1, &["te"], m(&[("test", s("hello world"))])),
        (2, &["te", "test3"], m(&[("test", s("hello world")), ("test3", Value::Bool(true))])),
    ];
    for (limit, keep, want) in cases {
        assert_eq!(
            edit_ok("limit", three(), &[Some(Value::Int(limit)), Some(strs(keep))]),
            want,
            "{limit} {keep:?}"
        );
    }
}

/// Scenario: Test_limit_validation / _bad_input / _get_nil. Guarantees: a negative limit and one
/// below the number of priority keys are refused at bind time; non-map targets are type errors.
#[test]
fn limit_errors() {
    assert_eq!(
        edit_err("limit", three(), &[Some(Value::Int(-1)), Some(strs(&[]))]),
        "invalid limit for limit function, -1 cannot be negative"
    );
    assert_eq!(
        edit_err("limit", three(), &[Some(Value::Int(1)), Some(strs(&["test", "test"]))]),
        "invalid limit for limit function, 1 cannot be less than number of priority attributes 2"
    );
    assert!(
        edit_err("limit", s("not a map"), &[Some(Value::Int(1)), Some(strs(&[]))]).contains("pcommon.Map")
    );
    assert!(edit_err("limit", Value::Nil, &[Some(Value::Int(1)), Some(strs(&[]))]).contains("pcommon.Map"));
}

// === merge_maps ===

/// Scenario: Test_MergeMaps: each strategy with and without conflicting keys, and a nested map.
/// Guarantees: insert adds only new keys, update changes only existing ones, upsert does both.
#[test]
fn merge_maps_table() {
    let target = || m(&[("attr1", s("value1"))]);
    let no_conflict = m(&[("attr2", s("value2"))]);
    let conflict = m(&[("attr1", s("value3")), ("attr2", s("value2"))]);
    let cases = [
        (no_conflict.clone(), "upsert", m(&[("attr1", s("value1")), ("attr2", s("value2"))])),
        (conflict.clone(), "upsert", m(&[("attr1", s("value3")), ("attr2", s("value2"))])),
        (no_conflict.clone(), "insert", m(&[("attr1", s("value1")), ("attr2", s("value2"))])),
        (conflict.clone(), "insert", m(&[("attr1", s("value1")), ("attr2", s("value2"))])),
        (no_conflict, "update", m(&[("attr1", s("value1"))])),
        (m(&[("attr1", s("value3"))]), "update", m(&[("attr1", s("value3"))])),
        (
            m(&[("attr3", m(&[("nested", s("v"))]))]),
            "upsert",
            m(&[("attr1", s("value1")), ("attr3", m(&[("nested", s("v"))]))]),
        ),
    ];
    for (source, strategy, want) in cases {
        assert_eq!(
            edit_ok("merge_maps", target(), &[Some(source.clone()), Some(s(strategy))]),
            want,
            "{strategy}"
        );
    }
}

/// Scenario: Test_MergeMaps_bad_target / _bad_source / an unknown strategy. Guarantees: both maps
/// must be maps (nil included); the strategy is checked at bind time.
#[test]
fn merge_maps_errors() {
    let src = m(&[("a", s("b"))]);
    assert!(
        edit_err("merge_maps", Value::Int(1), &[Some(src.clone()), Some(s("upsert"))])
            .contains("pcommon.Map")
    );
    assert!(edit_err("merge_maps", m(&[]), &[Some(Value::Nil), Some(s("upsert"))]).contains("but got nil"));
    assert_eq!(
        edit_err("merge_maps", m(&[]), &[Some(src), Some(s("merge"))]),
        "invalid value for strategy, merge, must be 'insert', 'update' or 'upsert'"
    );
}

// === replace_all_matches ===

fn glob_input() -> Value {
    m(&[
        ("test", s("hello world")),
        ("test2", s("hello")),
        ("test3", s("goodbye")),
        ("test4", s("")),
        ("test5", Value::Int(123)),
    ])
}

/// Scenario: Test_replaceAllMatches: a glob matching two values (with and without a function and
/// format), none, and the empty pattern. Guarantees: matching string values are replaced whole,
/// others (and non-strings) untouched; the function's result is formatted.
#[test]
fn replace_all_matches_table() {
    let with = |entries: [(&str, &str); 4]| {
        let mut map: Vec<(&str, Value)> = entries.iter().map(|(k, v)| (*k, s(v))).collect();
        map.push(("test5", Value::Int(123)));
        m(&map)
    };
    let hashed = edit_with_ok(
        "replace_all_matches",
        glob_input(),
        &[Some(s("hello*")), Some(s("hello {universe}")), Some(s("Test")), Some(s("prefix=%s"))],
        &[],
    );
    let h = "prefix=hash(hello {universe})";
    assert_eq!(hashed, with([("test", h), ("test2", h), ("test3", "goodbye"), ("test4", "")]));
    let cases = [
        (
            "hello*",
            "hello {universe}",
            [
                ("test", "hello {universe}"),
                ("test2", "hello {universe}"),
                ("test3", "goodbye"),
                ("test4", ""),
            ],
        ),
        (
            "nothing*",
            "nothing {matches}",
            [("test", "hello world"), ("test2", "hello"), ("test3", "goodbye"), ("test4", "")],
        ),
        (
            "",
            "empty_string_replacement",
            [
                ("test", "hello world"),
                ("test2", "hello"),
                ("test3", "goodbye"),
                ("test4", "empty_string_replacement"),
            ],
        ),
    ];
    for (pattern, replacement, want) in cases {
        assert_eq!(
            edit_ok("replace_all_matches", glob_input(), &[Some(s(pattern)), Some(s(replacement))]),
            with(want)
        );
        let dynamic = edit_with_ok(
            "replace_all_matches",
            glob_input(),
            &[Some(s(pattern)), Some(s(replacement))],
            &[1],
        );
        assert_eq!(dynamic, with(want), "dynamic {pattern}");
    }
}

/// Scenario: Test_replaceAllMatches_bad_input / _bad_function_input / _bad_function_result /
/// _get_nil, and an invalid glob. Guarantees: non-map targets are type errors; a function result
/// that is no string is refused; a bad literal glob fails at bind time with the Collector's message.
#[test]
fn replace_all_matches_errors() {
    let args = [Some(s("*")), Some(s("{replacement}"))];
    assert!(edit_err("replace_all_matches", s("not a map"), &args).contains("expected pcommon.Map"));
    assert!(edit_err("replace_all_matches", Value::Nil, &args).contains("expected pcommon.Map"));
    let err = edit_with(
        "replace_all_matches",
        glob_input(),
        &[Some(s("*")), Some(s("x")), Some(s("IsString"))],
        &[],
    );
    assert_eq!(err, Err(EvalError::Function("replacement value is not a string".into())));
    assert_eq!(
        edit_err("replace_all_matches", glob_input(), &[Some(s("[a")), Some(s("x"))]),
        "the regex pattern supplied to replace_all_matches '\"[a\"' is not a valid pattern: unexpected end of input"
    );
}

// === replace_match ===

/// Scenario: Test_replaceMatch: "hello world" against "hello*" (with a function and format),
/// "goodbye*". Guarantees: a whole-string glob match replaces the target; no match leaves it.
#[test]
fn replace_match_table() {
    let hashed = edit_with_ok(
        "replace_match",
        s("hello world"),
        &[Some(s("hello*")), Some(s("hello {universe}")), Some(s("Test")), Some(s("passwd=%s"))],
        &[],
    );
    assert_eq!(hashed, s("passwd=hash(hello {universe})"));
    assert_eq!(
        edit_ok("replace_match", s("hello world"), &[Some(s("hello*")), Some(s("hello {universe}"))]),
        s("hello {universe}")
    );
    assert_eq!(
        edit_ok("replace_match", s("hello world"), &[Some(s("goodbye*")), Some(s("goodbye {universe}"))]),
        s("hello world")
    );
    let dynamic = edit_with_ok("replace_match", s("hello world"), &[Some(s("hello*")), Some(s("x"))], &[1]);
    assert_eq!(dynamic, s("x"));
}

/// Scenario: Test_replaceMatch_bad_input / _bad_function_input / _bad_function_result / _get_nil.
/// Guarantees: a non-string or nil target is left alone without error; a nil replacement is a type
/// error even then; a function result that is no string is refused.
#[test]
fn replace_match_edge_cases() {
    assert_eq!(
        edit_ok("replace_match", Value::Int(1), &[Some(s("*")), Some(s("{replacement}"))]),
        Value::Int(1)
    );
    assert_eq!(edit_ok("replace_match", Value::Nil, &[Some(s("*")), Some(s("{anything}"))]), Value::Nil);
    assert_eq!(
        edit_with("replace_match", Value::Int(1), &[Some(s("*")), Some(Value::Nil)], &[]),
        Err(EvalError::Type { expected: "string", got: "nil" })
    );
    assert_eq!(
        edit_with("replace_match", Value::Int(1), &[Some(s("*")), Some(s("x")), Some(s("IsString"))], &[]),
        Err(EvalError::Function("replacement value is not a string".into()))
    );
}

// === replace_pattern ===

const PASSWD: &str = "application passwd=sensitivedtata otherarg=notsensitive key1 key2";

/// Scenario: Test_replacePattern: the Collector's table (hash function with and without groups and
/// formats, static text, multiple matches, group expansion, literal `$`). Guarantees: identical
/// results, including `$1` with no such group expanding to nothing and `$$` to `$`.
#[test]
fn replace_pattern_table() {
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, &'a str);
    let cases: [Case<'_>; 10] = [
        (
            r"passwd\=([^\s]*)\s?",
            "$1",
            Some("Test"),
            Some("passwd=%s"),
            "application passwd=hash(sensitivedtata)otherarg=notsensitive key1 key2",
        ),
        (
            r"passwd\=([^\s]*)",
            "passwd",
            Some("Test"),
            None,
            "application hash(passwd) otherarg=notsensitive key1 key2",
        ),
        (r"passwd\=[^\s]*\s?", "$1", Some("Test"), None, "application hash()otherarg=notsensitive key1 key2"),
        (r"passwd\=[^\s]*\s?", "$1", None, None, "application otherarg=notsensitive key1 key2"),
        (
            r"passwd\=[^\s]*",
            "passwd=***",
            Some("Test"),
            Some("%s (passwd)"),
            "application hash(passwd=***) (passwd) otherarg=notsensitive key1 key2",
        ),
        (
            r"passwd\=[^\s]*(\s?)",
            "passwd=*** ",
            None,
            None,
            "application passwd=*** otherarg=notsensitive key1 key2",
        ),
        (r"nomatch\=[^\s]*(\s?)", "shouldnotbeinoutput", None, None, PASSWD),
        (
            r"key[^\s]*(\s?)",
            "**** ",
            None,
            None,
            "application passwd=sensitivedtata otherarg=notsensitive **** **** ",
        ),
        (
            r"(\w+)=(\w+)",
            "$1:$2",
            None,
            None,
            "application passwd:sensitivedtata otherarg:notsensitive key1 key2",
        ),
        (
            r"passwd\=[^\s]*(\s?)",
            "passwd=$$$$$$ ",
            None,
            None,
            "application passwd=$$$ otherarg=notsensitive key1 key2",
        ),
    ];
    for (pattern, replacement, function, format, want) in cases {
        let args = [Some(s(pattern)), Some(s(replacement)), function.map(s), format.map(s)];
        assert_eq!(
            edit_with_ok("replace_pattern", s(PASSWD), &args, &[]),
            s(want),
            "{pattern} -> {replacement}"
        );
        assert_eq!(edit_with_ok("replace_pattern", s(PASSWD), &args, &[1]), s(want), "dynamic {pattern}");
    }
}

/// Scenario: Test_replacePattern_bad_input / _bad_function_input / _bad_function_result / _get_nil /
/// _invalid_pattern / _bad_format_string. Guarantees: non-string targets are left alone, nil
/// targets before the replacement is even read; a nil replacement is a type error; a bad pattern
/// fails at bind time; a bad format string is refused.
#[test]
fn replace_pattern_errors() {
    assert_eq!(
        edit_ok("replace_pattern", Value::Int(1), &[Some(s("regexp")), Some(s("{replacement}"))]),
        Value::Int(1)
    );
    assert_eq!(
        edit_with("replace_pattern", Value::Int(1), &[Some(s("regexp")), Some(Value::Nil)], &[]),
        Err(EvalError::Type { expected: "string", got: "nil" })
    );
    assert_eq!(
        edit_with(
            "replace_pattern",
            Value::Int(1),
            &[Some(s("regexp")), Some(Value::Nil), Some(s("IsString"))],
            &[]
        ),
        Err(EvalError::Type { expected: "string", got: "nil" })
    );
    assert_eq!(
        edit_ok("replace_pattern", Value::Nil, &[Some(s(r"nomatch\=[^\s]*(\s?)")), Some(Value::Nil)]),
        Value::Nil
    );
    let err = edit_err("replace_pattern", s("x"), &[Some(s("*")), Some(s("{anything}"))]);
    assert_eq!(
        err,
        "the regex pattern supplied to replace_pattern '\"*\"' is not a valid pattern: \
         error parsing regexp: missing argument to repetition operator: `*`"
    );
    let bad_format = edit_with(
        "replace_pattern",
        s(PASSWD),
        &[Some(s(r"passwd\=[^\s]*")), Some(s("passwd=*** ")), Some(s("Test")), Some(s("passwd="))],
        &[],
    );
    let Err(EvalError::Function(msg)) = bad_format else { panic!("bad format must fail") };
    assert!(msg.contains("replacementFormat must be format string containing a single %s"), "{msg}");
    let not_string =
        edit_with("replace_pattern", s("abc"), &[Some(s("b")), Some(s("x")), Some(s("IsString"))], &[]);
    assert_eq!(not_string, Err(EvalError::Function("the replacement value must be a string".into())));
}

/// Scenario: the function path with a real converter of the registry (SHA256, written by another
/// family). Guarantees: each match's expansion is hashed and put in its place.
#[test]
fn replace_pattern_with_sha256() {
    let got = edit_with(
        "replace_pattern",
        s("id=abc;"),
        &[Some(s("id=([a-z]+)")), Some(s("$1")), Some(s("SHA256"))],
        &[],
    );
    assert_eq!(got, Ok(s("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad;")));
}

// === replace_all_patterns ===

fn pattern_input() -> Vec<(&'static str, Value)> {
    vec![
        ("test", s("hello world")),
        ("test2", s("hello")),
        ("test3", s("goodbye world1 and world2")),
        ("test4", Value::Int(1234)),
        ("test5", Value::Float(1234.0)),
        ("test6", Value::Bool(true)),
        ("test7", s("")),
    ]
}

/// The input with the given entries replaced (by key) or renamed (`(old, new)` in `renames`).
fn pattern_want(changes: &[(&str, &str)], renames: &[(&str, &str)]) -> Value {
    let entries: Vec<(&str, Value)> = pattern_input()
        .into_iter()
        .map(|(k, v)| {
            let v = changes.iter().find(|(c, _)| *c == k).map_or(v, |(_, n)| s(n));
            let k = renames.iter().find(|(old, _)| *old == k).map_or(k, |(_, new)| new);
            (k, v)
        })
        .collect();
    m(&entries)
}

/// Scenario: Test_replaceAllPatterns: the Collector's table for mode value and mode key (functions,
/// formats, groups, literal `$`, the empty-string pattern, renamed keys). Guarantees: identical maps.
#[test]
fn replace_all_patterns_table() {
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>, Value);
    let cases: Vec<Case<'_>> = vec![
        (
            "value",
            "hello",
            "hello {universe}",
            Some("Test"),
            None,
            pattern_want(
                &[("test", "hash(hello {universe}) world"), ("test2", "hash(hello {universe})")],
                &[],
            ),
        ),
        (
            "value",
            "(hello)",
            "$1",
            Some("Test"),
            None,
            pattern_want(&[("test", "hash(hello) world"), ("test2", "hash(hello)")], &[]),
        ),
        (
            "value",
            "hello",
            "$1",
            Some("Test"),
            None,
            pattern_want(&[("test", "hash() world"), ("test2", "hash()")], &[]),
        ),
        ("value", "hello", "$1", None, None, pattern_want(&[("test", " world"), ("test2", "")], &[])),
        (
            "value",
            "hello",
            "hello {universe}",
            Some("Test"),
            Some("prefix=%s"),
            pattern_want(
                &[
                    ("test", "prefix=hash(hello {universe}) world"),
                    ("test2", "prefix=hash(hello {universe})"),
                ],
                &[],
            ),
        ),
        // v0.158.0 leaves a value the function or format fails on unchanged.
        ("value", "hello", "hello {universe}", Some("Test"), Some("prefix="), pattern_want(&[], &[])),
        (
            "value",
            "hello",
            "hello {universe}",
            None,
            None,
            pattern_want(&[("test", "hello {universe} world"), ("test2", "hello {universe}")], &[]),
        ),
        ("value", "nothing", "nothing {matches}", None, None, pattern_want(&[], &[])),
        (
            "value",
            r"world[^\s]*(\s?)",
            "**** ",
            None,
            None,
            pattern_want(&[("test", "hello **** "), ("test3", "goodbye **** and **** ")], &[]),
        ),
        (
            "value",
            "(world1) and (world2)",
            "blue-$1 and blue-$2",
            None,
            None,
            pattern_want(&[("test3", "goodbye blue-world1 and blue-world2")], &[]),
        ),
        (
            "value",
            r"(world\d)",
            "blue-$1",
            None,
            None,
            pattern_want(&[("test3", "goodbye blue-world1 and blue-world2")], &[]),
        ),
        (
            "value",
            "(world1) and (world2)",
            "$1",
            Some("Test"),
            None,
            pattern_want(&[("test3", "goodbye hash(world1)")], &[]),
        ),
        (
            "value",
            "(world1) and (world2)",
            "$2",
            Some("Test"),
            None,
            pattern_want(&[("test3", "goodbye hash(world2)")], &[]),
        ),
        (
            "value",
            r"(world\d)",
            "$1",
            Some("Test"),
            None,
            pattern_want(&[("test3", "goodbye hash(world1) and hash(world2)")], &[]),
        ),
        ("key", "test2", "foo", None, None, pattern_want(&[], &[("test2", "foo")])),
        ("key", "nothing", "nothing {matches}", None, None, pattern_want(&[], &[])),
        (
            "key",
            "test",
            "test.",
            None,
            None,
            pattern_want(
                &[],
                &[
                    ("test", "test."),
                    ("test2", "test.2"),
                    ("test3", "test.3"),
                    ("test4", "test.4"),
                    ("test5", "test.5"),
                    ("test6", "test.6"),
                    ("test7", "test.7"),
                ],
            ),
        ),
        (
            "value",
            r"world(\d)",
            "world-$1",
            None,
            None,
            pattern_want(&[("test3", "goodbye world-1 and world-2")], &[]),
        ),
        (
            "key",
            r"test(\d)",
            "test-$1",
            None,
            None,
            pattern_want(
                &[],
                &[
                    ("test2", "test-2"),
                    ("test3", "test-3"),
                    ("test4", "test-4"),
                    ("test5", "test-5"),
                    ("test6", "test-6"),
                    ("test7", "test-7"),
                ],
            ),
        ),
        (
            "value",
            r"world(\d)",
            "$$world-$1",
            None,
            None,
            pattern_want(&[("test3", "goodbye $world-1 and $world-2")], &[]),
        ),
        (
            "value",
            "^$",
            "empty_string_replacement",
            None,
            None,
            pattern_want(&[("test7", "empty_string_replacement")], &[]),
        ),
        (
            "key",
            r"test(\d)",
            "$1",
            Some("Test"),
            None,
            pattern_want(
                &[],
                &[
                    ("test2", "hash(2)"),
                    ("test3", "hash(3)"),
                    ("test4", "hash(4)"),
                    ("test5", "hash(5)"),
                    ("test6", "hash(6)"),
                    ("test7", "hash(7)"),
                ],
            ),
        ),
    ];
    let input = m(&pattern_input());
    for (mode, pattern, replacement, function, format, want) in cases {
        let args = [Some(s(mode)), Some(s(pattern)), Some(s(replacement)), function.map(s), format.map(s)];
        assert_eq!(
            edit_with_ok("replace_all_patterns", input.clone(), &args, &[]),
            want,
            "{mode} {pattern} {replacement}"
        );
        assert_eq!(
            edit_with_ok("replace_all_patterns", input.clone(), &args, &[2]),
            want,
            "dynamic {pattern}"
        );
    }
}

/// Scenario: renamed keys colliding, and a key the function fails on (mode key). Guarantees: the
/// first key keeps its place and takes the later value; a failing key is dropped.
#[test]
fn replace_all_patterns_key_collisions() {
    let input = m(&[("a1", Value::Int(1)), ("b", Value::Int(2)), ("a2", Value::Int(3))]);
    let got =
        edit_ok("replace_all_patterns", input.clone(), &[Some(s("key")), Some(s(r"a\d")), Some(s("a"))]);
    assert_eq!(got, m(&[("a", Value::Int(3)), ("b", Value::Int(2))]));
    let args = [Some(s("key")), Some(s(r"a\d")), Some(s("x")), Some(s("Fail"))];
    assert_eq!(edit_with_ok("replace_all_patterns", input, &args, &[]), m(&[("b", Value::Int(2))]));
}

/// Scenario: Test_replaceAllPatterns_bad_input / _bad_function_input / _get_nil / _invalid_pattern /
/// _invalid_model. Guarantees: non-map targets are type errors; a bad pattern fails at bind time (a
/// dynamic one per call); an unknown mode is refused at bind time.
#[test]
fn replace_all_patterns_errors() {
    let args = |mode: &str, pattern: &str| [Some(s(mode)), Some(s(pattern)), Some(s("{replacement}"))];
    assert!(
        edit_err("replace_all_patterns", s("not a map"), &args("value", "regexpattern"))
            .contains("pcommon.Map")
    );
    assert!(
        edit_err("replace_all_patterns", Value::Int(1), &args("value", "regexp"))
            .contains("expected pcommon.Map")
    );
    assert!(
        edit_err("replace_all_patterns", Value::Nil, &args("value", "regexp"))
            .contains("expected pcommon.Map")
    );
    assert!(edit_err("replace_all_patterns", m(&[]), &args("value", "*")).contains("error parsing regexp:"));
    let dynamic = edit_with("replace_all_patterns", m(&[]), &args("value", "*"), &[2]);
    assert!(
        matches!(dynamic, Err(EvalError::Function(ref e)) if e.contains("error parsing regexp:")),
        "{dynamic:?}"
    );
    assert_eq!(
        edit_err("replace_all_patterns", m(&[]), &args("invalid", "regex")),
        "invalid mode invalid, must be either 'key' or 'value'"
    );
}

// === stringify_all ===

/// Scenario: stringify_all over every value type (the Collector's README list). Guarantees: strings
/// stay; numbers as JSON writes them, bools, base64 bytes, maps and lists as JSON with sorted keys
/// and HTML escaping, empty as "".
#[test]
fn stringify_all_converts_every_type() {
    let input = m(&[
        ("s", s("text")),
        ("i", Value::Int(42)),
        ("f", Value::Float(2.5)),
        ("big", Value::Float(1e21)),
        ("small", Value::Float(1.5e-7)),
        ("whole", Value::Float(1234.0)),
        ("b", Value::Bool(false)),
        ("bytes", Value::Bytes(vec![1, 2, 3])),
        ("map", m(&[("z", Value::Int(1)), ("a", l(&[s("<x>"), Value::Float(0.5), Value::Nil]))])),
        ("list", l(&[Value::Int(1), s("two"), Value::Bytes(b"hi".to_vec())])),
        ("empty", Value::Nil),
    ]);
    let want = m(&[
        ("s", s("text")),
        ("i", s("42")),
        ("f", s("2.5")),
        ("big", s("1e+21")),
        ("small", s("1.5e-7")),
        ("whole", s("1234")),
        ("b", s("false")),
        ("bytes", s("AQID")),
        ("map", s(r#"{"a":["\u003cx\u003e",0.5,null],"z":1}"#)),
        ("list", s(r#"[1,"two","aGk="]"#)),
        ("empty", s("")),
    ]);
    assert_eq!(edit_ok("stringify_all", input, &[]), want);
    assert!(edit_err("stringify_all", s("x"), &[]).contains("expected pcommon.Map"));
}

// === truncate_all ===

/// Scenario: Test_truncateAll: limits 1, 0, 100 and exact on a map with non-string values.
/// Guarantees: strings are cut to the limit in bytes; other values are untouched.
#[test]
fn truncate_all_table() {
    let want = |v: &str| m(&[("test", s(v)), ("test2", Value::Int(3)), ("test3", Value::Bool(true))]);
    for (limit, expected) in [(1, "h"), (0, ""), (100, "hello world"), (11, "hello world")] {
        assert_eq!(edit_ok("truncate_all", three(), &[Some(Value::Int(limit))]), want(expected), "{limit}");
    }
}

/// Scenario: multi-byte characters cut with utf8Safe on (the default) and off, and a truncation
/// marker. Guarantees: the safe cut backs up to a character boundary; the unsafe one cuts at the
/// byte (the partial character reads as U+FFFD); the marker counts toward the limit.
#[test]
fn truncate_all_utf8_and_marker() {
    let input = || m(&[("k", s("一二三"))]);
    assert_eq!(edit_ok("truncate_all", input(), &[Some(Value::Int(4))]), m(&[("k", s("一"))]));
    assert_eq!(
        edit_ok("truncate_all", input(), &[Some(Value::Int(4)), Some(Value::Bool(false))]),
        m(&[("k", s("一\u{fffd}"))])
    );
    let marked =
        edit_ok("truncate_all", m(&[("k", s("hello world"))]), &[Some(Value::Int(8)), None, Some(s("..."))]);
    assert_eq!(marked, m(&[("k", s("hello..."))]));
    let short =
        edit_ok("truncate_all", m(&[("k", s("hello"))]), &[Some(Value::Int(8)), None, Some(s("..."))]);
    assert_eq!(short, m(&[("k", s("hello"))]));
}

/// Scenario: Test_truncateAll_validation / _bad_input / _get_nil, and a marker longer than the
/// limit. Guarantees: a negative limit and an oversized marker are refused at bind time; non-map
/// targets are type errors.
#[test]
fn truncate_all_errors() {
    assert_eq!(
        edit_err("truncate_all", three(), &[Some(Value::Int(-1))]),
        "invalid limit for truncate_all function, -1 cannot be negative"
    );
    assert!(
        edit_err("truncate_all", three(), &[Some(Value::Int(2)), None, Some(s("(truncated)"))])
            .contains("marker")
    );
    assert!(edit_err("truncate_all", s("not a map"), &[Some(Value::Int(1))]).contains("pcommon.Map"));
    assert!(edit_err("truncate_all", Value::Nil, &[Some(Value::Int(1))]).contains("pcommon.Map"));
}

// === flatten ===

fn flat(target: Value, prefix: Option<&str>, depth: Option<i64>, conflicts: bool) -> Value {
    edit_ok("flatten", target, &[prefix.map(s), depth.map(Value::Int), Some(Value::Bool(conflicts))])
}

/// Scenario: Test_flatten: simple, nested map, nested slice, combinations, deep nesting, prefix,
/// max depth (also stopping at a slice). Guarantees: the Collector's keys and values, in order.
#[test]
fn flatten_table() {
    let address = || m(&[("street", s("first")), ("house", Value::Int(1234))]);
    let occupants = || l(&[s("user 1"), s("user 2")]);
    let combination = || m(&[("name", s("test")), ("address", address()), ("occupants", occupants())]);
    assert_eq!(flat(m(&[("name", s("test"))]), None, None, false), m(&[("name", s("test"))]));
    assert_eq!(
        flat(m(&[("address", address())]), None, None, false),
        m(&[("address.street", s("first")), ("address.house", Value::Int(1234))])
    );
    assert_eq!(
        flat(m(&[("occupants", occupants())]), None, None, false),
        m(&[("occupants.0", s("user 1")), ("occupants.1", s("user 2"))])
    );
    assert_eq!(
        flat(combination(), None, None, false),
        m(&[
            ("name", s("test")),
            ("address.street", s("first")),
            ("address.house", Value::Int(1234)),
            ("occupants.0", s("user 1")),
            ("occupants.1", s("user 2")),
        ])
    );
    let mixed = m(&[
        ("name", s("test")),
        ("address", address()),
        ("occupants", l(&[s("user 1"), m(&[("name", s("user 2"))])])),
    ]);
    assert_eq!(
        flat(mixed, None, None, false),
        m(&[
            ("name", s("test")),
            ("address.street", s("first")),
            ("address.house", Value::Int(1234)),
            ("occupants.0", s("user 1")),
            ("occupants.1.name", s("user 2")),
        ])
    );
    let deep = || m(&[("1", m(&[("2", m(&[("3", m(&[("4", s("5"))]))]))]))]);
    assert_eq!(flat(deep(), None, None, false), m(&[("1.2.3.4", s("5"))]));
    assert_eq!(
        flat(combination(), Some("app"), None, false),
        m(&[
            ("app.name", s("test")),
            ("app.address.street", s("first")),
            ("app.address.house", Value::Int(1234)),
            ("app.occupants.0", s("user 1")),
            ("app.occupants.1", s("user 2")),
        ])
    );
    let levels = || m(&[("0", m(&[("1", m(&[("2", m(&[("3", s("value"))]))]))]))]);
    assert_eq!(flat(levels(), None, Some(2), false), m(&[("0.1.2", m(&[("3", s("value"))]))]));
    let with_slice = m(&[
        ("0", m(&[("1", m(&[("2", m(&[("3", s("value"))]))]))])),
        ("1", m(&[("1", l(&[m(&[("1", s("value"))])]))])),
    ]);
    assert_eq!(
        flat(with_slice, None, Some(1), false),
        m(&[("0.1", m(&[("2", m(&[("3", s("value"))]))])), ("1.1", l(&[m(&[("1", s("value"))])]))])
    );
}

/// Scenario: Test_flatten with resolveConflicts on, and Test_flatten_undeterministic's conflicting
/// maps and slices. Guarantees: a taken key gets `.0`, `.1`… in arrival order; slice elements go
/// under the slice's own key first.
#[test]
fn flatten_resolving_conflicts() {
    let occupants = || l(&[s("user 1"), s("user 2")]);
    assert_eq!(
        flat(m(&[("occupants", occupants())]), None, None, true),
        m(&[("occupants", s("user 1")), ("occupants.0", s("user 2"))])
    );
    let levels = m(&[("0", m(&[("1", m(&[("2", m(&[("3", s("value"))]))]))]))]);
    assert_eq!(flat(levels, None, Some(2), true), m(&[("0.1.2", m(&[("3", s("value"))]))]));
    let maps = m(&[
        ("address", m(&[("street", m(&[("house", Value::Int(1234))]))])),
        ("address.street", m(&[("house", Value::Int(1235))])),
    ]);
    assert_eq!(
        flat(maps, None, None, true),
        m(&[("address.street.house", Value::Int(1234)), ("address.street.house.0", Value::Int(1235))])
    );
    let readme = m(&[
        ("address", m(&[("street", m(&[("number", s("first"))])), ("house", s("1234"))])),
        ("address.street", m(&[("number", l(&[s("second"), s("third")]))])),
        ("address.street.number", s("fourth")),
        ("occupants", occupants()),
    ]);
    assert_eq!(
        flat(readme, None, None, true),
        m(&[
            ("address.street.number", s("first")),
            ("address.house", s("1234")),
            ("address.street.number.0", s("second")),
            ("address.street.number.1", s("third")),
            ("address.street.number.2", s("fourth")),
            ("occupants", s("user 1")),
            ("occupants.0", s("user 2")),
        ])
    );
}

/// Scenario: a list inside a list, with conflict resolution off. Guarantees: the Collector's keys,
/// where the inner index follows the outer one without a dot (`a.1` then `0` gives `a.10`).
#[test]
fn flatten_nested_lists_keep_collector_keys() {
    let got = flat(m(&[("a", l(&[s("x"), l(&[s("y"), s("z")])]))]), None, None, false);
    assert_eq!(got, m(&[("a.0", s("x")), ("a.10", s("y")), ("a.11", s("z"))]));
}

/// Scenario: Test_flatten_bad_target / _bad_depth. Guarantees: a non-map target is a type error;
/// depths below 1 are refused at bind time.
#[test]
fn flatten_errors() {
    assert!(
        edit_err("flatten", Value::Int(1), &[None, None, Some(Value::Bool(false))]).contains("pcommon.Map")
    );
    for depth in [-1, 0] {
        assert_eq!(
            edit_err("flatten", m(&[]), &[None, Some(Value::Int(depth)), None]),
            format!("invalid depth '{depth}' for flatten function, must be greater than 0")
        );
    }
}

// === append ===

/// Scenario: Test_Append: single and multiple values onto nil, empty, list and scalar targets, with
/// mixed types. Guarantees: the result is a list of the old item(s) then `value` then `values`,
/// types unconverted.
#[test]
fn append_table() {
    let a = || Some(s("a"));
    let ab = || Some(strs(&["a", "b"]));
    let cases = [
        (Value::Nil, [a(), None], l(&[s("a")])),
        (Value::Nil, [Some(Value::Int(66)), None], l(&[Value::Int(66)])),
        (l(&[]), [a(), None], l(&[s("a")])),
        (l(&[]), [None, ab()], l(&[s("a"), s("b")])),
        (l(&[s("5")]), [a(), None], l(&[s("5"), s("a")])),
        (l(&[s("5")]), [None, ab()], l(&[s("5"), s("a"), s("b")])),
        (l(&[s("5")]), [a(), ab()], l(&[s("5"), s("a"), s("a"), s("b")])),
        (l(&[Value::Int(5)]), [a(), None], l(&[Value::Int(5), s("a")])),
        (s("5"), [a(), None], l(&[s("5"), s("a")])),
        (s("5"), [None, ab()], l(&[s("5"), s("a"), s("b")])),
        (Value::Int(5), [Some(Value::Int(66)), None], l(&[Value::Int(5), Value::Int(66)])),
        (Value::Int(5), [None, ab()], l(&[Value::Int(5), s("a"), s("b")])),
        (Value::Bool(true), [Some(Value::Int(5)), None], l(&[Value::Bool(true), Value::Int(5)])),
        (Value::Float(2.5), [Some(Value::Int(5)), None], l(&[Value::Float(2.5), Value::Int(5)])),
    ];
    for (target, args, want) in cases {
        assert_eq!(edit_ok("append", target.clone(), &args), want, "{target:?} {args:?}");
    }
}

/// Scenario: TestTargetType's map target, Test_ArgumentsArePresent's missing arguments, and a value
/// pdata cannot hold. Guarantees: each is refused.
#[test]
fn append_errors() {
    assert!(edit_err("append", m(&[]), &[Some(Value::Int(5)), None]).contains("pcommon.Map"));
    assert_eq!(
        edit_err("append", l(&[]), &[None, None]),
        "at least one of the optional arguments ('value' or 'values') must be provided"
    );
    assert!(edit_err("append", l(&[]), &[Some(Value::Time(0)), None]).contains("time.Time"));
}

// === delete_index ===

/// Scenario: Test_deleteIndex: first, last, middle, ranges, the whole slice, start == end.
/// Guarantees: elements [start, end) go; the rest keep their order.
#[test]
fn delete_index_table() {
    let abc = || strs(&["a", "b", "c", "d"]);
    let cases: [(i64, Option<i64>, Value); 7] = [
        (0, None, strs(&["b", "c", "d"])),
        (3, None, strs(&["a", "b", "c"])),
        (1, None, strs(&["a", "c", "d"])),
        (1, Some(3), strs(&["a", "d"])),
        (0, Some(4), strs(&[])),
        (2, Some(2), abc()),
        (0, Some(3), strs(&["d"])),
    ];
    for (start, end, want) in cases {
        let got = edit_ok("delete_index", abc(), &[Some(Value::Int(start)), end.map(Value::Int)]);
        assert_eq!(got, want, "{start} {end:?}");
    }
    // Deleting everything from an empty slice is checked before the bounds.
    assert_eq!(edit_ok("delete_index", l(&[]), &[Some(Value::Int(0)), Some(Value::Int(0))]), l(&[]));
}

/// Scenario: Test_deleteIndex errors: out-of-range start, end before start, end past the length, a
/// target that is no slice, an index that is no int. Guarantees: the Collector's messages.
#[test]
fn delete_index_errors() {
    let abc = || strs(&["a", "b", "c"]);
    let cases = [
        (-1, None, "startIndex -1 out of bounds for slice of length 3"),
        (3, None, "startIndex 3 out of bounds for slice of length 3"),
        (2, Some(1), "endIndex 1 cannot be less than startIndex 2"),
        (1, Some(5), "deletion range [1:5] out of bounds for slice of length 3"),
    ];
    for (start, end, want) in cases {
        assert_eq!(edit_err("delete_index", abc(), &[Some(Value::Int(start)), end.map(Value::Int)]), want);
    }
    assert!(edit_err("delete_index", s("x"), &[Some(Value::Int(0)), None]).contains("pcommon.Slice"));
    assert_eq!(edit_err("delete_index", abc(), &[Some(s("0")), None]), "expected int64 but got string");
}

// === IsRootSpan ===

/// Scenario: Test_IsRootSpan: a span without and with a parent span id. Guarantees: true only for
/// an empty (all-zero) parent.
#[test]
fn is_root_span() {
    for (parent, want) in
        [(Value::SpanId([0; 8]), true), (Value::SpanId([1, 2, 3, 4, 5, 6, 7, 8]), false), (Value::Nil, true)]
    {
        let mut values = Values {
            context: vec![(Target::Span(SpanField::ParentSpanId), parent.clone())],
            ..Values::default()
        };
        assert_eq!(testing::run("IsRootSpan", &mut values), Ok(Some(Value::Bool(want))), "{parent:?}");
    }
}

// === set_semconv_span_name ===

fn span_attrs(pairs: &[(&str, Value)]) -> Map {
    pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
}

/// Runs set_semconv_span_name on a span; returns its name and attributes afterwards.
fn semconv(kind: i64, name: &str, attrs: &[(&str, Value)], original_attr: Option<&str>) -> (String, Map) {
    let mut h = Harness::new(vec![Some(s("1.40.0")), original_attr.map(s)], &[]);
    h.context = vec![
        (Target::Span(SpanField::Name), s(name)),
        (Target::Span(SpanField::Kind), Value::Int(kind)),
        (Target::Span(SpanField::Attributes), Value::Map(span_attrs(attrs))),
    ];
    if let Err(e) = run_harness("set_semconv_span_name", &mut h) {
        panic!("set_semconv_span_name failed: {e}");
    }
    let name = match h.read(Target::Span(SpanField::Name)) {
        Ok(Value::String(n)) => n,
        other => panic!("no name: {other:?}"),
    };
    let attrs = match h.read(Target::Span(SpanField::Attributes)) {
        Ok(Value::Map(a)) => a,
        other => panic!("no attributes: {other:?}"),
    };
    (name, attrs)
}

/// Scenario: TestSemconvSpanName: the transform processor's table of HTTP, DB, gRPC and messaging
/// spans from the OTel demo and instrumentations, with an original-name attribute. Guarantees: each
/// span gets the expected name; the old name is kept in the attribute only when it changed.
#[test]
fn semconv_span_name_table() {
    const SERVER: i64 = 2;
    const CLIENT: i64 = 3;
    const PRODUCER: i64 = 4;
    const CONSUMER: i64 = 5;
    let i = Value::Int;
    type Case<'a> = (i64, &'a str, Vec<(&'a str, Value)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            SERVER,
            "GET /users/123",
            vec![("http.request.method", s("GET")), ("http.route", s("/users/:id"))],
            "GET /users/:id",
        ),
        (
            SERVER,
            "GET /users/123",
            vec![("http.method", s("GET")), ("http.route", s("/users/:id"))],
            "GET /users/:id",
        ),
        (SERVER, "GET /users/123", vec![("http.request.method", s("GET"))], "GET"),
        (SERVER, "GET /users/123", vec![("http.method", s("GET"))], "GET"),
        (
            SERVER,
            "GET /app/workspaces/7?_rsc=hn5g2",
            vec![
                ("http.method", s("GET")),
                ("next.span_name", s("GET /app/workspaces/7?_rsc=hn5g2")),
                ("next.span_type", s("BaseServer.handleRequest")),
                ("http.target", s("/app/workspaces/7?_rsc=hn5g2")),
                ("http.status", s("200")),
            ],
            "GET",
        ),
        (
            SERVER,
            "GET /resource/9ea43cd7",
            vec![("http.method", s("GET")), ("http.target", s("/resource/9ea43cd7"))],
            "GET",
        ),
        (
            CLIENT,
            "GET /users/123",
            vec![("http.request.method", s("GET")), ("url.template", s("/users/:id"))],
            "GET /users/:id",
        ),
        (
            CLIENT,
            "GET /users/123",
            vec![("http.method", s("GET")), ("url.template", s("/users/:id"))],
            "GET /users/:id",
        ),
        (CLIENT, "GET /users/123", vec![("http.request.method", s("GET"))], "GET"),
        (
            CLIENT,
            "INSERT webshop.orders",
            vec![
                ("db.system.name", s("postgresql")),
                ("db.namespace", s("webshop")),
                ("db.operation.name", s("INSERT")),
                ("db.collection.name", s("orders")),
                ("db.query.text", s("insert into orders (date_created,status) values (?,?)")),
            ],
            "INSERT webshop.orders",
        ),
        (
            CLIENT,
            "HGET",
            vec![
                ("db.redis.database_index", i(0)),
                ("db.redis.flags", s("None")),
                ("db.statement", s("HGET 7175d9c6")),
                ("db.system", s("redis")),
                ("server.address", s("valkey-cart")),
            ],
            "valkey-cart",
        ),
        (
            CLIENT,
            "otel",
            vec![
                ("db.system", s("postgresql")),
                ("db.connection_id", i(54)),
                ("db.name", s("otel")),
                ("db.statement", s("INSERT INTO \"order\" (order_id) VALUES (@p0);")),
                ("net.peer.name", s("postgresql")),
            ],
            "otel",
        ),
        (
            CLIENT,
            "oteldemo.CartService/GetCart",
            vec![
                ("rpc.grpc.status_code", i(0)),
                ("rpc.grpc.method", s("GetCart")),
                ("rpc.grpc.service", s("oteldemo.CartService")),
                ("rpc.system", s("grpc")),
                ("server.address", s("127.18.0.18")),
            ],
            "oteldemo.CartService/GetCart",
        ),
        (
            SERVER,
            "oteldemo.AdService/GetAds",
            vec![
                ("rpc.grpc.status_code", i(0)),
                ("rpc.grpc.method", s("GetAds")),
                ("rpc.grpc.service", s("oteldemo.AdService")),
                ("rpc.system", s("grpc")),
                ("server.address", s("ad")),
            ],
            "oteldemo.AdService/GetAds",
        ),
        (
            CONSUMER,
            "orders receive",
            vec![
                ("messaging.client_id", s("rdkafka#consumer-1")),
                ("messaging.destination.name", s("orders")),
                ("messaging.kafka.consumer.group", s("accounting")),
                ("messaging.kafka.destination.partition", i(0)),
                ("messaging.operation", s("receive")),
                ("messaging.system", s("kafka")),
            ],
            "receive orders",
        ),
        (
            CONSUMER,
            "orders process",
            vec![
                ("kafka.record.queue_time_ms", i(3_176_788)),
                ("messaging.destination.name", s("orders")),
                ("messaging.destination.partition.id", s("0")),
                ("messaging.operation", s("process")),
                ("messaging.system", s("kafka")),
            ],
            "process orders",
        ),
        (
            PRODUCER,
            "orders publish",
            vec![
                ("messaging.destination.name", s("orders")),
                ("messaging.kafka.producer.success", Value::Bool(true)),
                ("messaging.operation", s("publish")),
                ("messaging.system", s("kafka")),
            ],
            "publish orders",
        ),
        (
            CONSUMER,
            "process ecommerce-exchange",
            vec![
                ("messaging.system", s("rabbitmq")),
                ("messaging.destination.name", s("ecommerce-exchange")),
                ("messaging.operation", s("process")),
                ("messaging.rabbitmq.destination.routing_key", s("queue.order")),
            ],
            "process ecommerce-exchange",
        ),
        (
            PRODUCER,
            "publish ecommerce-exchange",
            vec![
                ("messaging.system", s("rabbitmq")),
                ("messaging.destination.name", s("ecommerce-exchange")),
                ("messaging.operation", s("publish")),
            ],
            "publish ecommerce-exchange",
        ),
        (1, "internal work", vec![("http.request.method", s("GET"))], "internal work"),
    ];
    for (kind, current, attrs, want) in cases {
        let (name, after) = semconv(kind, current, &attrs, Some("original_span_name"));
        assert_eq!(name, want, "{current}");
        let original = Value::map_get(&after, "original_span_name");
        if want == current {
            assert_eq!(original, None, "{current}");
        } else {
            assert_eq!(original, Some(&s(current)), "{current}");
        }
        let (plain, plain_attrs) = semconv(kind, current, &attrs, None);
        assert_eq!(
            (plain, plain_attrs),
            (want.to_string(), span_attrs(&attrs)),
            "{current} without attribute"
        );
    }
}

/// Scenario: Test_messagingDestination, Test_dbSpanName: templated, temporary and anonymous
/// destinations; JPA spans, a query summary, a namespace without collection, the server fallback.
/// Guarantees: the Collector's names.
#[test]
fn semconv_destination_and_db_rules() {
    let producer = |attrs: Vec<(&str, Value)>| semconv(4, "x", &attrs, None).0;
    let base = || vec![("messaging.system", s("rabbitmq")), ("messaging.operation.name", s("send"))];
    let mut templated = base();
    templated.extend([
        ("messaging.destination.template", s("/customers/{customerId}")),
        ("messaging.destination.name", s("/customers/123456")),
    ]);
    assert_eq!(producer(templated), "send /customers/{customerId}");
    let mut temporary = base();
    temporary.extend([
        ("messaging.destination.name", s("amq.gen-JzTY")),
        ("messaging.destination.temporary", Value::Bool(true)),
    ]);
    assert_eq!(producer(temporary), "send (temporary)");
    let mut anonymous = base();
    anonymous.extend([
        ("messaging.destination.name", s("amq.gen-3j8J")),
        ("messaging.destination.anonymous", Value::Bool(true)),
    ]);
    assert_eq!(producer(anonymous), "send (anonymous)");

    let client = |attrs: Vec<(&str, Value)>| semconv(3, "x", &attrs, None).0;
    let db = |extra: &[(&'static str, Value)]| {
        let mut attrs = vec![
            ("db.operation.name", s("INSERT")),
            ("db.system.name", s("postgresql")),
            ("server.address", s("pg_ecommerce_db")),
            ("server.port", Value::Int(5432)),
        ];
        attrs.extend(extra.iter().cloned());
        attrs
    };
    let collection = [("db.collection.name", s("product")), ("db.namespace", s("ecommerce_db"))];
    assert_eq!(client(db(&collection)), "INSERT ecommerce_db.product");
    let mut summary = db(&collection);
    summary.push(("db.query.summary", s("insert product")));
    assert_eq!(client(summary), "insert product");
    assert_eq!(client(db(&[("db.namespace", s("ecommerce_db"))])), "INSERT ecommerce_db");
    assert_eq!(client(db(&[])), "INSERT pg_ecommerce_db:5432");
}

/// Scenario: the factory's checks of its literal arguments. Guarantees: versions outside
/// [1.37.0, 1.40.0], unparsable ones and an empty attribute name are refused at bind time;
/// `v`-prefixed and short versions inside the range are accepted.
#[test]
fn semconv_arguments() {
    let prepare = |version: &str, attr: Option<&str>| {
        let (v, a) = (s(version), attr.map(s));
        prepare_set_semconv_span_name(&[Some(&v), a.as_ref()]).map(|_| ())
    };
    for ok in ["1.37.0", "1.40.0", "v1.38", "1.39.1", "1.40.0+build"] {
        assert_eq!(prepare(ok, None), Ok(()), "{ok}");
    }
    assert_eq!(
        prepare("1.36.0", None),
        Err("unsupported semconv version \"1.36.0\": must be between 1.37.0 and 1.40.0".into())
    );
    assert!(prepare("1.41.0", None).is_err_and(|e| e.starts_with("unsupported semconv version")));
    assert!(prepare("1.37.0-rc.1", None).is_err());
    assert_eq!(
        prepare("latest", None),
        Err("failed to parse semconv version \"latest\": Invalid Semantic Version".into())
    );
    assert_eq!(
        prepare("1.40.0", Some("")),
        Err("originalSpanNameAttribute cannot be an empty string".into())
    );
}

// === Go compatibility helpers ===

/// Scenario: Go's `Regexp.Expand` corner cases. Guarantees: `$1a` names group `1a` (empty), `${1}a`
/// is group 1 then `a`, named groups, `$$`, a lone `$` kept, leading zeros not an index.
#[test]
fn go_expand_rules() {
    let Ok(re) = compile_go_regex("(?P<word>a)(b)") else { panic!("compile") };
    let Some(caps) = re.captures("ab") else { panic!("match") };
    let cases = [
        ("$1a", ""),
        ("${1}a", "aa"),
        ("$word-$2", "a-b"),
        ("$$1", "$1"),
        ("x$", "x$"),
        ("$01", ""),
        ("${word", "${word"),
        ("$9", ""),
    ];
    for (template, want) in cases {
        let mut out = String::new();
        go_expand(&mut out, template, &re, &caps);
        assert_eq!(out, want, "{template}");
    }
}

/// Scenario: patterns that match both empty and non-empty text. Guarantees: Go's rule: an empty
/// match right after a match is neither replaced nor reported.
#[test]
fn go_empty_match_rules() {
    let Ok(re) = compile_go_regex("a*") else { panic!("compile") };
    assert_eq!(go_replace_all(&re, "baaac", "X"), "XbXcX");
    let found: Vec<&str> =
        go_find_all(&re, "baaac").iter().filter_map(|c| c.get(0)).map(|m| m.as_str()).collect();
    assert_eq!(found, ["", "aaa", ""]);
    let Ok(empty) = compile_go_regex("") else { panic!("compile") };
    assert_eq!(go_replace_all(&empty, "héllo", "-"), "-h-é-l-l-o-");
}

/// Scenario: Go's ASCII-only Perl classes and word boundaries, `\Q…\E`, literal braces, and classes
/// with characters Rust would read as operators. Guarantees: Go's matches.
#[test]
fn go_regex_dialect() {
    let is = |p: &str, s: &str| match compile_go_regex(p) {
        Ok(re) => re.is_match(s),
        Err(e) => panic!("{p}: {e}"),
    };
    assert!(!is(r"^\d$", "٣"));
    assert!(!is(r"^\w$", "é"));
    assert!(!is(r"^\s$", "\u{b}"));
    assert!(is(r"\bfoo\b", "éfoo"));
    assert!(is(r"^[\d\s]+$", "1 2"));
    assert!(is(r"^[^\D]$", "7"));
    assert!(is(r"^\Qa.b\E$", "a.b"));
    assert!(!is(r"^\Qa.b\E$", "axb"));
    assert!(is(r"^a{x}$", "a{x}"));
    assert!(is(r"^a{2}$", "aa"));
    assert!(is(r"^[a&&b]+$", "&&"));
    assert!(is(r"^[[:alpha:]]+$", "abc"));
    assert!(is(r"^\x{41}\p{Greek}$", "Aλ"));
    assert!(is(r"^\<a\>$", "<a>"));
    assert!(is(r"^[\<]$", "<"));
    assert!(compile_go_regex("a{1001}").is_err_and(|e| e.contains("invalid repeat count")));
}

/// Scenario: gobwas/glob syntax: stars, single characters, lists, ranges, negations, alternatives,
/// escapes, and its lenient and strict corners. Guarantees: whole-string matching as gobwas does;
/// its lexer's errors.
#[test]
fn glob_syntax() {
    let matches = |p: &str, s: &str| match Glob::compile(p) {
        Ok(g) => g.matches(s),
        Err(e) => panic!("{p}: {e}"),
    };
    let cases = [
        ("/user/*/list/*", "/user/7/list/3", true),
        ("hello*", "hello world", true),
        ("hello*", "say hello", false),
        ("h?llo", "héllo", true),
        ("h?llo", "hllo", false),
        ("[abc]x", "bx", true),
        ("[!abc]x", "bx", false),
        ("[a-c]x", "cx", true),
        ("[!a-c]x", "dx", true),
        ("{foo,bar}.txt", "bar.txt", true),
        ("{foo,bar}.txt", "baz.txt", false),
        ("{a,b", "b", true),
        ("a\\*b", "a*b", true),
        ("a\\*b", "axb", false),
        ("**", "any/thing", true),
        ("", "", true),
        ("a,b}", "a,b}", true),
        ("*.{jpg,png}", "x.png", true),
        ("{*.a,b?}", "bc", true),
    ];
    for (pattern, text, want) in cases {
        assert_eq!(matches(pattern, text), want, "{pattern} ~ {text}");
    }
    for (pattern, err) in [
        ("[a", "unexpected end of input"),
        ("[]", "could not parse range"),
        ("[a-zA-Z]", "expected close range character"),
        ("[z-a]", "hi character 'a' should be greater than lo 'z'"),
    ] {
        assert_eq!(Glob::compile(pattern).map(|_| ()), Err(err.to_string()), "{pattern}");
    }
}

/// Scenario: the replacement-format check and Go's `Sprintf` on what it lets through. Guarantees:
/// exactly the Collector's accepted formats; extra `%s` report MISSING as Go does.
#[test]
fn replacement_format_rules() {
    for (fmt, ok) in [
        ("prefix=%s", true),
        ("%s", true),
        ("passwd=", false),
        ("%d %s", false),
        ("a\n%s", false),
        ("%s%%", false),
    ] {
        assert_eq!(valid_format(fmt), ok, "{fmt}");
    }
    assert_eq!(go_sprintf_s("<%s>", "x"), "<x>");
    assert_eq!(go_sprintf_s("%s-%s", "x"), "x-%!s(MISSING)");
    assert_eq!(go_sprintf_s("%s%", "x"), "x%!(NOVERB)");
}

/// Scenario: Go's `strconv.Quote` on what patterns may hold. Guarantees: quotes, backslashes and
/// control characters escaped as Go does.
#[test]
fn go_quote_rules() {
    assert_eq!(go_quote(r#"a"b\c"#), r#""a\"b\\c""#);
    assert_eq!(go_quote("\t\u{1}é"), "\"\\t\\x01é\"");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Scenario: arbitrary pattern text, weighted toward the characters that carry syntax, used as a
    /// regex, a glob and a replacement template. Guarantees: compiling never panics, and whatever
    /// compiles replaces and expands without panicking.
    #[test]
    fn patterns_never_panic(
        pattern in "[\\\\\\[\\]{}()*?!,a-c^$.|:&~<>QEdwsbDx0-9-]{0,14}|.{0,10}",
        text in ".{0,12}",
        template in "[$a-c{}0-9_]{0,8}",
    ) {
        if let Ok(re) = compile_go_regex(&pattern) {
            let _ = go_replace_all(&re, &text, &template);
            let _ = go_find_all(&re, &text);
        }
        if let Ok(glob) = Glob::compile(&pattern) {
            let _ = glob.matches(&text);
        }
    }
}
