//! The Collector's unit-test tables for the string converters (pkg/ottl/ottlfuncs/func_*_test.go),
//! ported to values, plus checks of the Go behaviour they rely on (fmt verbs, RE2 classes, grok).

use super::super::testing::call_converter;
use super::super::{ArgSource, Call, Run, registry};
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

fn list(items: Vec<Value>) -> Value {
    Value::List(items)
}

fn map(entries: &[(&str, Value)]) -> Value {
    Value::Map(entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
}

fn strs(items: &[&str]) -> Value {
    list(items.iter().map(|x| s(x)).collect())
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

/// Arguments that are never literals, to exercise the per-call paths (dynamic patterns).
struct Dynamic(Vec<Option<Value>>);

impl ArgSource for Dynamic {
    fn present(&self, i: usize) -> bool {
        self.0.get(i).is_some_and(Option::is_some)
    }
    fn value(&mut self, i: usize) -> Result<Value, EvalError> {
        Ok(self.0.get(i).cloned().flatten().unwrap_or(Value::Nil))
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
    let mut source = Dynamic(args.into_iter().map(Some).collect());
    let mut call = Call::new(def.name, &mut source, None);
    match def.run {
        Run::Converter(f) => f(&mut call),
        Run::Editor(_) => panic!("{name} is an editor"),
    }
}

// === Concat ===

/// Scenario: func_concat_test.go's table: strings, nil, ints, floats, bools, bytes, slices, maps,
/// empty strings, one and no values. Guarantees: each value in its string-like form, nil as
/// `<nil>`, joined by the delimiter.
#[test]
fn concat_table() {
    let cases: Vec<(&str, Vec<Value>, &str, &str)> = vec![
        ("concat strings", vec![s("hello"), s("world")], " ", "hello world"),
        ("nil", vec![s("hello"), Value::Nil, s("world")], "", "hello<nil>world"),
        ("integers", vec![s("hello"), i(1)], "", "hello1"),
        ("floats", vec![s("hello"), Value::Float(3.17159)], "", "hello3.17159"),
        ("booleans", vec![s("hello"), Value::Bool(true)], " ", "hello true"),
        (
            "byte slices",
            vec![Value::Bytes(vec![0, 0, 0, 0, 0, 0, 0, 0, 0x0e, 0xd2, 0xe6, 0x3c, 0xbe, 0x71, 0xf5, 0xa8])],
            "",
            "00000000000000000ed2e63cbe71f5a8",
        ),
        ("slices", vec![list(vec![i(1), i(2)]), list(vec![i(3), i(4)])], ",", "[1,2],[3,4]"),
        ("maps", vec![map(&[("a", s("b"))]), map(&[("c", s("d"))])], ",", r#"{"a":"b"},{"c":"d"}"#),
        ("empty string values", vec![s(""), s(""), s("")], "__", "____"),
        ("single argument", vec![s("hello")], "-", "hello"),
        ("no arguments", vec![], "-", ""),
        ("no arguments with an empty delimiter", vec![], "", ""),
    ];
    for (name, vals, delimiter, want) in cases {
        assert_eq!(ok("Concat", vec![list(vals), s(delimiter)]), s(want), "{name}");
    }
}

/// Scenario: Concat with a delimiter that is no string. Guarantees: the StringGetter's type error.
#[test]
fn concat_delimiter_must_be_a_string() {
    assert!(err("Concat", vec![strs(&["a"]), i(1)]).contains("expected string but got int64"));
}

// === ConvertCase and the case converters ===

/// Scenario: func_convert_case_test.go's table for snake, camel, upper and lower. Guarantees:
/// strcase's snake and (upper) camel forms, Go's upper/lower, empty stays empty.
#[test]
fn convert_case_table() {
    let cases = [
        ("simpleString", "snake", "simple_string"),
        ("simple_string", "snake", "simple_string"),
        ("CPUUtilizationMetric", "snake", "cpu_utilization_metric"),
        ("simple-string", "snake", "simple_string"),
        ("", "snake", ""),
        ("simple_string", "camel", "SimpleString"),
        ("SimpleString", "camel", "SimpleString"),
        ("simple-string", "camel", "SimpleString"),
        ("", "camel", ""),
        ("simple", "upper", "SIMPLE"),
        ("complex_SET-of.WORDS1234", "upper", "COMPLEX_SET-OF.WORDS1234"),
        ("", "upper", ""),
        ("SIMPLE", "lower", "simple"),
        ("complex_SET-of.WORDS1234", "lower", "complex_set-of.words1234"),
        ("", "lower", ""),
    ];
    for (input, case, want) in cases {
        assert_eq!(ok("ConvertCase", vec![s(input), s(case)]), s(want), "{input} -> {case}");
    }
}

/// Scenario: ConvertCase with an unknown case, a number and nil. Guarantees: the bind-time
/// "invalid case" error and the StringGetter's type errors at run time.
#[test]
fn convert_case_errors() {
    assert!(
        err("ConvertCase", vec![s("simpleString"), s("unset")])
            .contains("invalid case: unset, allowed cases are: lower, upper, snake, camel")
    );
    assert!(err("ConvertCase", vec![i(10), s("upper")]).contains("expected string but got int64"));
    assert!(err("ConvertCase", vec![Value::Nil, s("snake")]).contains("expected string but got nil"));
}

/// Scenario: iancoleman/strcase v0.3.0's own ToCamel and ToSnake tables through ToCamelCase and
/// ToSnakeCase. Guarantees: byte-for-byte the library's word splitting.
#[test]
fn strcase_library_tables() {
    let camel = [
        ("test_case", "TestCase"),
        ("test.case", "TestCase"),
        ("test", "Test"),
        ("TestCase", "TestCase"),
        (" test  case ", "TestCase"),
        ("many_many_words", "ManyManyWords"),
        ("AnyKind of_string", "AnyKindOfString"),
        ("odd-fix", "OddFix"),
        ("numbers2And55with000", "Numbers2And55With000"),
        ("ID", "Id"),
        ("CONSTANT_CASE", "ConstantCase"),
    ];
    for (input, want) in camel {
        assert_eq!(ok("ToCamelCase", vec![s(input)]), s(want), "camel {input}");
    }
    let snake = [
        ("testCase", "test_case"),
        ("TestCase", "test_case"),
        ("Test Case", "test_case"),
        (" Test Case ", "test_case"),
        ("test", "test"),
        ("Test", "test"),
        ("ManyManyWords", "many_many_words"),
        ("AnyKind of_string", "any_kind_of_string"),
        ("numbers2and55with000", "numbers_2_and_55_with_000"),
        ("JSONData", "json_data"),
        ("userID", "user_id"),
        ("AAAbbb", "aa_abbb"),
        ("1A2", "1_a_2"),
        ("A1B", "a_1_b"),
        ("A1A2A3", "a_1_a_2_a_3"),
        ("A1 A2 A3", "a_1_a_2_a_3"),
        ("AB1AB2AB3", "ab_1_ab_2_ab_3"),
        ("some string", "some_string"),
    ];
    for (input, want) in snake {
        assert_eq!(ok("ToSnakeCase", vec![s(input)]), s(want), "snake {input}");
    }
}

/// Scenario: func_to_camel_case_test.go and func_to_snake_case_test.go, with their error cases.
/// Guarantees: the converters' outputs, and type errors for a number and nil.
#[test]
fn to_camel_and_snake_case() {
    for (input, want) in [
        ("simple_string", "SimpleString"),
        ("SimpleString", "SimpleString"),
        ("simple-string", "SimpleString"),
        ("", ""),
    ] {
        assert_eq!(ok("ToCamelCase", vec![s(input)]), s(want));
    }
    for (input, want) in [
        ("simpleString", "simple_string"),
        ("simple_string", "simple_string"),
        ("CPUUtilizationMetric", "cpu_utilization_metric"),
        ("simple-string", "simple_string"),
        ("", ""),
    ] {
        assert_eq!(ok("ToSnakeCase", vec![s(input)]), s(want));
    }
    for name in ["ToCamelCase", "ToSnakeCase", "ToUpperCase", "ToLowerCase"] {
        assert!(err(name, vec![i(10)]).contains("expected string but got int64"), "{name}");
        assert!(err(name, vec![Value::Nil]).contains("expected string but got nil"), "{name}");
    }
}

/// Scenario: func_to_upper_case_test.go / func_to_lower_case_test.go shapes, plus non-ASCII.
/// Guarantees: Go's per-rune simple case mapping (`ß` keeps its form, `İ` lowers to `i`).
#[test]
fn to_upper_and_lower_case() {
    assert_eq!(ok("ToUpperCase", vec![s("simple")]), s("SIMPLE"));
    assert_eq!(ok("ToUpperCase", vec![s("complex_SET-of.WORDS1234")]), s("COMPLEX_SET-OF.WORDS1234"));
    assert_eq!(ok("ToUpperCase", vec![s("")]), s(""));
    assert_eq!(ok("ToLowerCase", vec![s("SIMPLE")]), s("simple"));
    assert_eq!(ok("ToLowerCase", vec![s("complex_SET-of.WORDS1234")]), s("complex_set-of.words1234"));
    assert_eq!(ok("ToUpperCase", vec![s("straße")]), s("STRAßE"));
    assert_eq!(ok("ToLowerCase", vec![s("İSTANBUL")]), s("istanbul"));
}

// === Format ===

/// Scenario: func_format_test.go's table (plain text, padded int, two arguments). Guarantees:
/// Go's `fmt.Sprintf` output.
#[test]
fn format_table() {
    assert_eq!(ok("Format", vec![s("test"), list(vec![])]), s("test"));
    assert_eq!(ok("Format", vec![s("test-%04d"), list(vec![i(2)])]), s("test-0002"));
    assert_eq!(ok("Format", vec![s("test-%04d-%4s"), list(vec![i(2), s("te")])]), s("test-0002-  te"));
}

/// Scenario: Go fmt verbs, flags, widths and precisions users write, with outputs taken from Go.
/// Guarantees: the same text as Go's `fmt.Sprintf`, including `%!` markers for wrong verbs,
/// missing and extra arguments.
#[test]
fn format_go_verbs() {
    let f = |format: &str, args: Vec<Value>| ok("Format", vec![s(format), list(args)]);
    let cases: Vec<(&str, Vec<Value>, &str)> = vec![
        ("%v", vec![Value::Float(1e6)], "1e+06"),
        ("%v", vec![Value::Float(123456.0)], "123456"),
        ("%v", vec![Value::Float(0.000001)], "1e-06"),
        ("%v", vec![Value::Float(3.17)], "3.17"),
        ("%v", vec![Value::Float(1e20)], "1e+20"),
        ("%v", vec![Value::Float(-0.0)], "-0"),
        ("%v %v", vec![Value::Float(f64::INFINITY), Value::Float(f64::NAN)], "+Inf NaN"),
        ("%.2f", vec![Value::Float(3.17159)], "3.17"),
        ("%8.3f|", vec![Value::Float(3.17159)], "   3.172|"),
        ("%08.3f", vec![Value::Float(-3.17159)], "-003.172"),
        ("%+.1f", vec![Value::Float(2.0)], "+2.0"),
        ("%.0f %.0f", vec![Value::Float(2.5), Value::Float(3.5)], "2 4"),
        ("%e", vec![Value::Float(1234.5678)], "1.234568e+03"),
        ("%E", vec![Value::Float(0.000123)], "1.230000E-04"),
        ("%g", vec![Value::Float(1234.5678)], "1234.5678"),
        ("%.3g", vec![Value::Float(1234.5678)], "1.23e+03"),
        ("%.3g", vec![Value::Float(100.0)], "100"),
        ("%#g", vec![Value::Float(1.0)], "1.00000"),
        ("%x", vec![Value::Float(3.0)], "0x1.8p+01"),
        ("%b", vec![Value::Float(1.0)], "4503599627370496p-52"),
        ("%d", vec![i(-42)], "-42"),
        ("%05d", vec![i(-42)], "-0042"),
        ("%-5d|", vec![i(42)], "42   |"),
        ("%+d", vec![i(5)], "+5"),
        ("% d", vec![i(5)], " 5"),
        ("%.3d", vec![i(7)], "007"),
        (
            "%x %X %#x %o %#o %O %b",
            vec![i(255), i(255), i(255), i(8), i(8), i(8), i(5)],
            "ff FF 0xff 10 010 0o10 101",
        ),
        ("%c%c", vec![i(72), i(105)], "Hi"),
        ("%U %#U", vec![i(65), i(65)], "U+0041 U+0041 'A'"),
        ("%q", vec![i(97)], "'a'"),
        ("%s|%10s|%-10s|", vec![s("go"), s("go"), s("go")], "go|        go|go        |"),
        ("%.2s", vec![s("héllo")], "hé"),
        ("%x % X %#x", vec![s("hi"), s("hi"), s("hi")], "6869 68 69 0x6869"),
        ("%q", vec![s("a\"b\n")], "\"a\\\"b\\n\""),
        ("%#q", vec![s("ab")], "`ab`"),
        ("%+q", vec![s("é")], "\"\\u00e9\""),
        ("%t %v", vec![Value::Bool(true), Value::Bool(false)], "true false"),
        ("%v %s", vec![Value::Nil, Value::Nil], "<nil> %!s(<nil>)"),
        ("%s", vec![i(5)], "%!s(int64=5)"),
        ("%d", vec![s("x")], "%!d(string=x)"),
        ("%t", vec![i(1)], "%!t(int64=1)"),
        ("%d %d", vec![i(1)], "1 %!d(MISSING)"),
        ("%d", vec![i(1), i(2), s("a")], "1%!(EXTRA int64=2, string=a)"),
        ("%d%%", vec![i(50)], "50%"),
        ("%", vec![], "%!(NOVERB)"),
        ("%[2]d %[1]d", vec![i(1), i(2)], "2 1"),
        ("%[3]d", vec![i(1)], "%!d(BADINDEX)"),
        ("%*d|%-*d|", vec![i(5), i(42), i(4), i(7)], "   42|7   |"),
        ("%.*f", vec![i(2), Value::Float(3.17159)], "3.17"),
        ("%v", vec![list(vec![i(1), s("a"), Value::Nil])], "[1 a <nil>]"),
        ("%d", vec![list(vec![i(1), i(2)])], "[1 2]"),
        ("%v", vec![map(&[("b", i(1)), ("a", s("x"))])], "map[a:x b:1]"),
        (
            "%v %d %x",
            vec![Value::Bytes(vec![1, 2]), Value::Bytes(vec![1, 2]), Value::Bytes(vec![1, 255])],
            "[1 2] [1 2] 01ff",
        ),
        ("%s", vec![Value::Bytes(b"hi".to_vec())], "hi"),
        ("%v", vec![Value::SpanId([1, 2, 3, 4, 5, 6, 7, 8])], "0102030405060708"),
        ("%T %T %T", vec![i(1), Value::Float(1.0), s("")], "int64 float64 string"),
        ("%v", vec![Value::Duration(1_500_000_000)], "1.5s"),
        (
            "%v %v %v",
            vec![Value::Duration(3_723_000_000_000), Value::Duration(1500), Value::Duration(0)],
            "1h2m3s 1.5µs 0s",
        ),
        ("%d", vec![Value::Duration(1500)], "1500"),
        ("%v", vec![Value::Time(1_500_000_000)], "1970-01-01 00:00:01.5 +0000 UTC"),
    ];
    for (format, args, want) in cases {
        assert_eq!(f(format, args), s(want), "Format({format:?})");
    }
}

/// Scenario: Format with a value list that is no list. Guarantees: the error from reading the
/// arguments propagates (the Collector's getter errors do).
#[test]
fn format_error_propagates() {
    assert!(call("Format", vec![s("test-%d"), i(1)]).is_err());
}

// === HasPrefix / HasSuffix ===

/// Scenario: func_has_prefix_test.go / func_has_suffix_test.go shapes. Guarantees:
/// `strings.HasPrefix`/`HasSuffix`, and type errors for non-strings and nil.
#[test]
fn has_prefix_and_suffix() {
    assert_eq!(ok("HasPrefix", vec![s("hello world"), s("hello")]), Value::Bool(true));
    assert_eq!(ok("HasPrefix", vec![s("hello world"), s("world")]), Value::Bool(false));
    assert_eq!(ok("HasPrefix", vec![s("hello"), s("")]), Value::Bool(true));
    assert_eq!(ok("HasSuffix", vec![s("hello world"), s("world")]), Value::Bool(true));
    assert_eq!(ok("HasSuffix", vec![s("hello world"), s("hello")]), Value::Bool(false));
    assert!(err("HasPrefix", vec![i(1), s("a")]).contains("expected string but got int64"));
    assert!(err("HasSuffix", vec![s("a"), Value::Nil]).contains("expected string but got nil"));
}

// === Index ===

/// Scenario: func_index_test.go's table for strings and slices. Guarantees: the byte index of a
/// substring or the position of an equal element, -1 when absent.
#[test]
fn index_table() {
    let cases: Vec<(Value, Value, i64)> = vec![
        (s("hello world"), s("world"), 6),
        (s("hello world"), s("hello"), 0),
        (s("hello world"), s("universe"), -1),
        (s("hello world"), s(""), 0),
        (s("Hello World"), s("world"), -1),
        (strs(&["hello", "world", "opentelemetry"]), s("world"), 1),
        (list(vec![i(1), i(2), i(3)]), i(2), 1),
        (list(vec![s("hello"), i(42), Value::Bool(true)]), Value::Bool(true), 2),
        (list(vec![i(1), i(2), i(3)]), i(5), -1),
        (list(vec![]), s("anything"), -1),
        (list(vec![s("hello"), i(42), Value::Bool(true), Value::Float(3.17)]), Value::Bool(true), 2),
        (list(vec![Value::Float(1.1), Value::Float(2.2), Value::Float(3.3)]), Value::Float(2.2), 1),
        (list(vec![Value::Bool(false), Value::Bool(true)]), s("true"), -1),
    ];
    for (target, value, want) in cases {
        assert_eq!(ok("Index", vec![target.clone(), value.clone()]), i(want), "Index({target:?}, {value:?})");
    }
}

/// Scenario: func_index_test.go's error table. Guarantees: a non-string value for a string target
/// and a target that is neither string nor list are errors.
#[test]
fn index_errors() {
    assert!(err("Index", vec![i(123), s("test")]).contains("expected pcommon.Slice but got int64"));
    assert!(
        err("Index", vec![s("hello world"), i(123)])
            .contains("invalid value type for Index function, value must be a string")
    );
}

// === IsMatch ===

/// Scenario: func_is_match_test.go's table: strings, bools, ints, floats, nil. Guarantees: an
/// unanchored RE2 match on the string-like form; nil never matches.
#[test]
fn is_match_table() {
    let cases: Vec<(Value, &str, bool)> = vec![
        (s("hello world"), "hello.*", true),
        (s("goodbye world"), "hello.*", false),
        (s("-12.001"), r"[-+]?\d*\.\d+([eE][-+]?\d+)?", true),
        (Value::Bool(true), "true", true),
        (i(1), r"\d", true),
        (Value::Float(1.1), r"\d\.\d", true),
        (s("test"), "test", true),
        (Value::Nil, "impossible to match", false),
    ];
    for (target, pattern, want) in cases {
        assert_eq!(
            ok("IsMatch", vec![target.clone(), s(pattern)]),
            Value::Bool(want),
            "{target:?} ~ {pattern}"
        );
    }
}

/// Scenario: an invalid literal pattern (`\K`), as func_is_match_test.go's validation test.
/// Guarantees: the Collector's "is not a valid pattern" error, raised when binding.
#[test]
fn is_match_invalid_pattern() {
    let e = err("IsMatch", vec![s("anything"), s(r"\K")]);
    assert!(e.contains("the regex pattern supplied to IsMatch '\"\\\\K\"' is not a valid pattern"), "{e}");
}

/// Scenario: a pattern that is no literal (read per call), valid and invalid. Guarantees: it is
/// compiled at run time with the same meaning and the same error.
#[test]
fn is_match_dynamic_pattern() {
    assert_eq!(call_dynamic("IsMatch", vec![s("abc123"), s(r"\d+$")]).unwrap(), Value::Bool(true));
    let e = call_dynamic("IsMatch", vec![s("abc"), s("(")]).unwrap_err().to_string();
    assert!(e.contains("is not a valid pattern"), "{e}");
}

/// Scenario: RE2 classes on non-ASCII text. Guarantees: `\d`, `\w`, `\s` and `\b` are ASCII-only
/// as in Go (an Arabic-Indic digit is no `\d`, `é` is no `\w`).
#[test]
fn go_regex_classes_are_ascii() {
    assert_eq!(ok("IsMatch", vec![s("٣"), s(r"\d")]), Value::Bool(false));
    assert_eq!(ok("IsMatch", vec![s("é"), s(r"^\w$")]), Value::Bool(false));
    assert_eq!(ok("IsMatch", vec![s("\u{a0}"), s(r"\s")]), Value::Bool(false));
    assert_eq!(ok("IsMatch", vec![s("éa"), s(r"\ba")]), Value::Bool(true));
    assert_eq!(ok("IsMatch", vec![s("x1y"), s(r"[\d]")]), Value::Bool(true));
    assert_eq!(ok("IsMatch", vec![s("a.b"), s(r"\Qa.b\E")]), Value::Bool(true));
    assert_eq!(ok("IsMatch", vec![s("axb"), s(r"\Qa.b\E")]), Value::Bool(false));
    assert_eq!(ok("IsMatch", vec![s("A"), s(r"\101")]), Value::Bool(true));
}

// === Len ===

/// Scenario: func_len_test.go: strings (bytes, not characters), lists and maps, and types that
/// have no length. Guarantees: Go's `len`, and the Collector's error for other types.
#[test]
fn len_table() {
    assert_eq!(ok("Len", vec![s("a string")]), i(8));
    assert_eq!(ok("Len", vec![s("héllo")]), i(6));
    assert_eq!(ok("Len", vec![list(vec![i(1), i(2), i(3)])]), i(3));
    assert_eq!(ok("Len", vec![map(&[("a", i(1)), ("b", i(2))])]), i(2));
    assert_eq!(ok("Len", vec![s("")]), i(0));
    for bad in [i(1), Value::Bool(true), Value::Nil, Value::Float(1.0)] {
        assert!(err("Len", vec![bad]).contains("target arg must be of type string"));
    }
}

// === Split ===

/// Scenario: func_split_test.go's table. Guarantees: `strings.Split`: an empty string gives one
/// empty piece, an empty delimiter splits characters, both empty give nothing.
#[test]
fn split_table() {
    assert_eq!(ok("Split", vec![s("A|B|C"), s("|")]), strs(&["A", "B", "C"]));
    assert_eq!(ok("Split", vec![s(""), s("|")]), strs(&[""]));
    assert_eq!(ok("Split", vec![s("A|B|C"), s("")]), strs(&["A", "|", "B", "|", "C"]));
    assert_eq!(ok("Split", vec![s(""), s("")]), strs(&[]));
    assert!(call("Split", vec![i(1), s(",")]).is_err());
    assert!(call("Split", vec![s("str"), i(7)]).is_err());
}

// === Substring ===

/// Scenario: func_substring_test.go's table. Guarantees: byte offsets; a cut inside a multi-byte
/// character gives U+FFFD (Go would keep the lone byte, which a UTF-8 string cannot).
#[test]
fn substring_table() {
    assert_eq!(ok("Substring", vec![s("123456789"), i(3), i(3)]), s("456"));
    assert_eq!(ok("Substring", vec![s("123456789"), i(0), i(9)]), s("123456789"));
    assert_eq!(ok("Substring", vec![s("一二三"), i(0), i(1)]), s("\u{FFFD}"));
}

/// Scenario: func_substring_test.go's validation and error tables. Guarantees: zero length,
/// negative start, out-of-range (also overflowing) ranges, non-string and nil targets are errors.
#[test]
fn substring_errors() {
    let cases: Vec<(Value, i64, i64, &str)> = vec![
        (s("123456789"), 0, 0, "cannot be negative or zero"),
        (s("123456789"), -1, 6, "cannot be negative"),
        (s(""), 3, 6, "invalid range"),
        (s("123456789"), 3, 20, "invalid range"),
        (s("123456789"), i64::MAX - 2, 10, "invalid range"),
        (s("123456789"), 5, i64::MAX, "invalid range"),
        (i(123456789), 3, 6, "expected string"),
        (Value::Nil, 3, 6, "expected string"),
    ];
    for (target, start, length, want) in cases {
        let e = err("Substring", vec![target, i(start), i(length)]);
        assert!(e.contains(want), "{e}");
    }
}

/// Scenario: func_substring_test.go's utf8Safe tables. Guarantees: start and length count
/// characters; ranges beyond the characters are errors.
#[test]
fn substring_utf8_safe() {
    let safe =
        |t: &str, start: i64, len: i64| call("Substring", vec![s(t), i(start), i(len), Value::Bool(true)]);
    assert_eq!(safe("一二三", 0, 1).unwrap(), s("一"));
    assert_eq!(safe("一二三", 0, 3).unwrap(), s("一二三"));
    assert_eq!(safe("一二三", 1, 1).unwrap(), s("二"));
    assert_eq!(safe("🎉🎊🎈", 1, 2).unwrap(), s("🎊🎈"));
    assert_eq!(safe("12345", 1, 3).unwrap(), s("234"));
    assert_eq!(safe("ab一c", 1, 2).unwrap(), s("b一"));
    for (start, len) in [(4, 1), (0, 4), (2, 2)] {
        assert!(safe("一二三", start, len).is_err(), "{start}+{len}");
    }
}

// === Trim / TrimPrefix / TrimSuffix ===

/// Scenario: func_trim_test.go's table. Guarantees: `strings.Trim` with the cutset (default a
/// space); an empty cutset trims nothing.
#[test]
fn trim_table() {
    assert_eq!(ok("Trim", vec![s(" this is a test "), s(" ")]), s("this is a test"));
    assert_eq!(ok("Trim", vec![s(""), s(" ")]), s(""));
    assert_eq!(call_converter("Trim", vec![Some(s(" this is a test ")), None]).unwrap(), s("this is a test"));
    assert_eq!(ok("Trim", vec![s(" this is a test "), s("")]), s(" this is a test "));
    assert_eq!(ok("Trim", vec![s("!!this is a test!!"), s("!!")]), s("this is a test"));
}

/// Scenario: func_trim_prefix_test.go / func_trim_suffix_test.go shapes. Guarantees: one prefix
/// or suffix removed, the string unchanged without it, type errors otherwise.
#[test]
fn trim_prefix_and_suffix() {
    assert_eq!(ok("TrimPrefix", vec![s("prefix_value"), s("prefix_")]), s("value"));
    assert_eq!(ok("TrimPrefix", vec![s("value"), s("prefix_")]), s("value"));
    assert_eq!(ok("TrimPrefix", vec![s("aaab"), s("a")]), s("aab"));
    assert_eq!(ok("TrimSuffix", vec![s("value_suffix"), s("_suffix")]), s("value"));
    assert_eq!(ok("TrimSuffix", vec![s("value"), s("_suffix")]), s("value"));
    assert!(err("TrimPrefix", vec![i(1), s("a")]).contains("expected string"));
    assert!(err("TrimSuffix", vec![Value::Nil, s("a")]).contains("expected string but got nil"));
}

// === ExtractPatterns ===

/// Scenario: func_extract_patterns_test.go's table. Guarantees: the named groups of the first
/// match; no match gives an empty map.
#[test]
fn extract_patterns_table() {
    let got = ok("ExtractPatterns", vec![s("a=b c=d"), s(r"^a=(?P<a>\w+)\s+c=(?P<c>\w+)$")]);
    assert_same(&got, &map(&[("a", s("b")), ("c", s("d"))]), "extract");
    let got = ok("ExtractPatterns", vec![s("a=b c=d"), s(r"^a=(?P<a>\w+)$")]);
    assert_same(&got, &map(&[]), "no match");
}

/// Scenario: func_extract_patterns_test.go's validation and bad-input tables, and a repeated group
/// name. Guarantees: an invalid regex and a regex without named groups fail at bind time;
/// non-string and nil targets fail; a repeated name (allowed by Go) keeps the last group's text.
#[test]
fn extract_patterns_errors() {
    assert!(err("ExtractPatterns", vec![s("foobar"), s("(")]).contains("is not a valid pattern"));
    assert!(err("ExtractPatterns", vec![s("foobar"), s("(.*)")]).contains("at least 1 named capture group"));
    assert!(err("ExtractPatterns", vec![i(123), s("(?P<line>.*)")]).contains("expected string"));
    assert!(
        err("ExtractPatterns", vec![Value::Nil, s("(?P<line>.*)")]).contains("expected string but got nil")
    );
    let got = ok("ExtractPatterns", vec![s("ab"), s("(?P<x>a)(?P<x>b)")]);
    assert_same(&got, &map(&[("x", s("b"))]), "repeated name");
    let got = call_dynamic("ExtractPatterns", vec![s("k=v"), s(r"k=(?P<v>\w+)")]).unwrap();
    assert_same(&got, &map(&[("v", s("v"))]), "dynamic pattern");
}

// === ExtractGrokPatterns ===

fn grok(target: &str, pattern: &str, named_only: bool, defs: Option<&[&str]>) -> Result<Value, EvalError> {
    call_converter(
        "ExtractGrokPatterns",
        vec![Some(s(target)), Some(s(pattern)), Some(Value::Bool(named_only)), defs.map(strs)],
    )
}

fn assert_contains_entries(got: &Value, want: &[(&str, Value)], what: &str) {
    let Value::Map(entries) = got else { panic!("{what}: not a map: {got:?}") };
    for (k, v) in want {
        let found = Value::map_get(entries, k).unwrap_or_else(|| panic!("{what}: missing {k} in {got:?}"));
        assert_eq!(found, v, "{what}: {k}");
    }
}

/// Scenario: func_extract_grok_patterns_test.go's table: plain regex, no match, %{URI}, the AWS
/// ELB_URI with typed named captures, the PostgreSQL sample, custom definitions. Guarantees: the
/// captures as go-grok returns them (dots in names restored, `:int` converted).
#[test]
fn extract_grok_patterns_table() {
    let got = grok("a=b c=d", r"^a=(?P<a>\w+)\s+c=(?P<c>\w+)$", false, None).unwrap();
    assert_contains_entries(&got, &[("a", s("b")), ("c", s("d"))], "regex");
    let got = grok("a=b c=d", r"^a=(?P<a>\w+)$", false, None).unwrap();
    assert_same(&got, &map(&[]), "no match");
    let url = "http://user:password@example.com:80/path?query=string";
    let got = grok(url, "%{URI}", false, None).unwrap();
    assert_contains_entries(
        &got,
        &[
            ("URIPROTO", s("http")),
            ("USER", s("user")),
            ("URIHOST", s("example.com:80")),
            ("IPORHOST", s("example.com")),
            ("POSINT", s("80")),
            ("URIPATH", s("/path")),
            ("URIQUERY", s("query=string")),
        ],
        "URI",
    );
    let got = grok(url, "%{ELB_URI}", true, None).unwrap();
    assert_contains_entries(
        &got,
        &[
            ("url.scheme", s("http")),
            ("url.username", s("user")),
            ("url.domain", s("example.com")),
            ("url.port", i(80)),
            ("url.path", s("/path")),
            ("url.query", s("query=string")),
        ],
        "ELB_URI",
    );
    let got = grok(
        "2024-06-18 12:34:56 UTC johndoe 12345 67890",
        "%{DATESTAMP:timestamp} %{TZ:event.timezone} %{DATA:user.name} %{GREEDYDATA:postgresql.log.connection_id} %{POSINT:process.pid:int}",
        true,
        None,
    )
    .unwrap();
    assert_contains_entries(
        &got,
        &[
            ("timestamp", s("24-06-18 12:34:56")),
            ("event.timezone", s("UTC")),
            ("user.name", s("johndoe")),
            ("postgresql.log.connection_id", s("12345")),
            ("process.pid", i(67890)),
        ],
        "POSTGRES",
    );
    let got = grok(
        "2024-06-18 12:34:56 otel",
        "%{MYPATTERN}",
        true,
        Some(&["MYPATTERN=%{MYDATEPATTERN:timestamp} otel", "MYDATEPATTERN=%{DATE}[- ]%{TIME}"]),
    )
    .unwrap();
    assert_contains_entries(&got, &[("timestamp", s("24-06-18 12:34:56"))], "custom");
}

/// Scenario: func_extract_grok_patterns_test.go's validation and bad-input tables. Guarantees: a
/// bad regex and a definition name with ':' fail at bind time; no named group is fine without
/// namedCapturesOnly; non-string and nil targets fail.
#[test]
fn extract_grok_patterns_errors() {
    assert!(grok("foobar", "(", false, None).is_err());
    assert!(grok("foobar", "(.*)", false, None).is_ok());
    let e = grok("x", "%{URI}", false, Some(&["PAT:TERN=invalid"])).unwrap_err().to_string();
    assert!(e.contains("pattern ID \"PAT:TERN\" should not contain ':'"), "{e}");
    let e = grok("x", "%{URI}", false, Some(&["NOEQUALSSIGNINTHISDEFINITION"])).unwrap_err().to_string();
    assert!(
        e.contains(
            "\"NOEQUALSSIGNINTHI...\" supplied to ExtractGrokPatterns at index 0 has incorrect format"
        ),
        "{e}"
    );
    assert!(
        grok("foobar", "(.*)", true, None)
            .unwrap_err()
            .to_string()
            .contains("at least 1 named capture group")
    );
    let e = grok("x", "%{NOSUCHPATTERN}", false, None).unwrap_err().to_string();
    assert!(e.contains("pattern definition \"NOSUCHPATTERN\" unknown"), "{e}");
    for target in [i(123), Value::Nil] {
        for pattern in ["(?P<line>.*)", "%{URI}"] {
            let r = call_converter(
                "ExtractGrokPatterns",
                vec![Some(target.clone()), Some(s(pattern)), None, None],
            );
            assert!(r.is_err(), "{target:?} {pattern}");
        }
    }
}

/// Scenario: type hints and common log formats from the library (Apache combined log, syslog).
/// Guarantees: `:int`/`:long`/`:float`/`:bool` convert, a bad hint or value is an error, empty
/// captures are left out.
#[test]
fn extract_grok_patterns_types_and_library() {
    let got =
        grok("n=42 f=1.5 b=true", "n=%{INT:n:int} f=%{NUMBER:f:float} b=%{WORD:b:bool}", true, None).unwrap();
    assert_same(&got, &map(&[("n", i(42)), ("f", Value::Float(1.5)), ("b", Value::Bool(true))]), "hints");
    assert!(grok("n=x", "n=%{WORD:n:int}", true, None).unwrap_err().to_string().contains("strconv.Atoi"));
    assert!(
        grok("n=x", "n=%{WORD:n:weird}", true, None).unwrap_err().to_string().contains("invalid type for n")
    );
    let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08""#;
    let got = grok(line, "%{COMBINEDAPACHELOG}", true, None).unwrap();
    assert_contains_entries(
        &got,
        &[
            ("source.address", s("127.0.0.1")),
            ("user.name", s("frank")),
            ("timestamp", s("10/Oct/2000:13:55:36 -0700")),
            ("http.request.method", s("GET")),
            ("url.original", s("/apache_pb.gif")),
            ("http.version", s("1.0")),
            ("http.response.status_code", i(200)),
            ("http.response.body.size", i(2326)),
            ("http.request.referrer", s("http://www.example.com/start.html")),
            ("user_agent.original", s("Mozilla/4.08")),
        ],
        "COMBINEDAPACHELOG",
    );
    let got = grok("Jan  5 14:03:01 myhost sshd[123]: accepted", "%{SYSLOGLINE}", true, None).unwrap();
    assert_contains_entries(
        &got,
        &[("timestamp", s("Jan  5 14:03:01")), ("host.name", s("myhost")), ("message", s("accepted"))],
        "SYSLOGLINE",
    );
    let got = grok("level=WARN", "level=%{LOGLEVEL:level}", true, None).unwrap();
    assert_same(&got, &map(&[("level", s("WARN"))]), "LOGLEVEL is case-insensitive");
}

// === ParseKeyValue ===

/// A ParseKeyValue case: target, delimiter, pair delimiter, expected pairs.
type KvCase<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<(&'a str, &'a str)>);

/// Scenario: func_parse_key_value_test.go's table: defaults, quotes, custom and multi-character
/// delimiters, newlines, leading/trailing delimiters, a delimiter that never occurs. Guarantees:
/// the same map.
#[test]
fn parse_key_value_table() {
    let kv = |target: &str, d: Option<&str>, p: Option<&str>| {
        call_converter("ParseKeyValue", vec![Some(s(target)), d.map(s), p.map(s)])
            .unwrap_or_else(|e| panic!("{target}: {e}"))
    };
    let cases: Vec<KvCase<'_>> = vec![
        ("name=ottl func=key_value", None, None, vec![("name", "ottl"), ("func", "key_value")]),
        (
            r#"name=ottl age=1 job="software engineering" location="grand rapids michigan" src="10.3.3.76" dst=172.217.0.10 protocol=udp sport=57112 port=443 translated_src_ip=96.63.176.3 translated_port=57112"#,
            None,
            None,
            vec![
                ("age", "1"),
                ("port", "443"),
                ("dst", "172.217.0.10"),
                ("job", "software engineering"),
                ("location", "grand rapids michigan"),
                ("name", "ottl"),
                ("protocol", "udp"),
                ("sport", "57112"),
                ("src", "10.3.3.76"),
                ("translated_port", "57112"),
                ("translated_src_ip", "96.63.176.3"),
            ],
        ),
        (
            r#"a=b c='this is a "co ol" value'"#,
            None,
            None,
            vec![("a", "b"), ("c", r#"this is a "co ol" value"#)],
        ),
        (
            r#"requestClientApplication="Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.0""#,
            None,
            None,
            vec![(
                "requestClientApplication",
                "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.0",
            )],
        ),
        (
            "requestClientApplication='Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.0'",
            None,
            None,
            vec![(
                "requestClientApplication",
                "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:40.0) Gecko/20100101 Firefox/40.0",
            )],
        ),
        (
            r#"name="   ottl " func="  key_ value""#,
            None,
            None,
            vec![("name", "ottl"), ("func", "key_ value")],
        ),
        (
            "   name!ottl     func!key_value hello!world  ",
            Some("!"),
            None,
            vec![("name", "ottl"), ("func", "key_value"), ("hello", "world")],
        ),
        (
            "   \nname!!ottl     \nfunc!!key_value                      hello!!world  ",
            Some("!!"),
            None,
            vec![("name", "ottl"), ("func", "key_value"), ("hello", "world")],
        ),
        (
            "name!!ottl     \nfunc!!      key_value another!!pair\nhello!!world  ",
            Some("!!"),
            Some("\n"),
            vec![("name", "ottl"), ("func", "key_value another!!pair"), ("hello", "world")],
        ),
        (
            r#"name="ottl="_func="=key_value""#,
            None,
            Some("_"),
            vec![("name", "ottl="), ("func", "=key_value")],
        ),
        (
            "k1@*v1_!_k2@**v2_!__k3@@*v3__",
            Some("@*"),
            Some("_!_"),
            vec![("k1", "v1"), ("k2", "*v2"), ("_k3@", "v3__")],
        ),
        ("   k1=v1   k2==v2       k3=v3= ", None, None, vec![("k1", "v1"), ("k2", "=v2"), ("k3", "v3=")]),
        (r#"a=b c='this is a "co ol"'"#, None, None, vec![("a", "b"), ("c", r#"this is a "co ol""#)]),
        ("a=b c=d'='", None, None, vec![("a", "b"), ("c", "d=")]),
        ("a=b c=d", None, Some("aaaaaaaaaaaaaaaa"), vec![("a", "b c=d")]),
    ];
    for (target, d, p, want) in cases {
        let want = Value::Map(want.into_iter().map(|(k, v)| (k.to_owned(), s(v))).collect());
        assert_same(&kv(target, d, p), &want, target);
    }
}

/// Scenario: a key that appears more than once. Guarantees: its values are collected in a list in
/// order of appearance.
#[test]
fn parse_key_value_repeated_keys() {
    let got = ok("ParseKeyValue", vec![s("a=1 b=2 a=3 a=4")]);
    assert_same(&got, &map(&[("a", strs(&["1", "3", "4"])), ("b", s("2"))]), "repeated");
}

/// Scenario: func_parse_key_value_test.go's error tests: equal delimiters, empty delimiters, a
/// non-string or empty target, a pair without the delimiter, unbalanced quotes. Guarantees: the
/// Collector's messages.
#[test]
fn parse_key_value_errors() {
    let kv = |target: Value, d: Option<&str>, p: Option<&str>| {
        call_converter("ParseKeyValue", vec![Some(target), d.map(s), p.map(s)]).unwrap_err().to_string()
    };
    assert!(
        kv(s(""), Some("="), Some("=")).contains("pair delimiter \"=\" cannot be equal to delimiter \"=\"")
    );
    assert!(kv(s(""), Some(" "), None).contains("cannot be equal"));
    assert!(kv(i(1), Some("="), Some("!")).contains("expected string"));
    assert!(kv(s(""), Some("="), Some("!")).contains("cannot parse from empty target"));
    assert!(kv(s("name=ottl!hello_world"), Some("="), Some("!")).contains(
        "failed to split pairs into key-values: cannot split \"hello_world\" into 2 items, got 1 item(s)"
    ));
    assert!(kv(s(r#"k1=v1 k2='v2""#), None, None).contains("never reached the end of a quoted value"));
    assert!(
        kv(s("a=b c=d"), Some("============="), None).contains(
            "failed to split pairs into key-values: cannot split \"a=b\" into 2 items, got 1 item(s)"
        )
    );
    assert!(kv(s("a=b c=d"), Some(""), None).contains("delimiter cannot be set to an empty string"));
    assert!(kv(s("a=b c=d"), None, Some("")).contains("pair delimiter cannot be set to an empty string"));
}

// === ToKeyValueString ===

fn kv_string(target: Value, d: Option<&str>, p: Option<&str>, sort: bool) -> Result<Value, EvalError> {
    call_converter("ToKeyValueString", vec![Some(target), d.map(s), p.map(s), Some(Value::Bool(sort))])
}

/// Scenario: func_to_key_value_string_test.go's table (sorted output): delimiters, quoting, nested
/// maps and lists. Guarantees: the same string.
#[test]
fn to_key_value_string_table() {
    let cases: Vec<(Value, Option<&str>, Option<&str>, &str)> = vec![
        (map(&[("key1", s("value1")), ("key2", s("value2"))]), None, None, "key1=value1 key2=value2"),
        (map(&[("key1", s("value1")), ("key2", s("value2"))]), Some(":"), None, "key1:value1 key2:value2"),
        (map(&[("key1", s("value1")), ("key2", s("value2"))]), None, Some(","), "key1=value1,key2=value2"),
        (
            map(&[("key 1", s("value 1")), ("key2=", s("value2="))]),
            None,
            None,
            r#""key 1"="value 1" "key2="="value2=""#,
        ),
        (
            map(&[("key1", s("value1")), ("key2,,,", s("value2,,,,,,"))]),
            Some(",,,"),
            None,
            r#"key1,,,value1 "key2,,,",,,"value2,,,,,,""#,
        ),
        (
            map(&[("key 1", s("value 1")), ("key2\"=", s("value2\"=")), ("key\"3", s("value\"3"))]),
            None,
            None,
            r#""key 1"="value 1" key\"3=value\"3 "key2\"="="value2\"=""#,
        ),
        (
            map(&[
                ("key1", s("value1")),
                (
                    "key2",
                    map(&[
                        ("key3", s("value3")),
                        ("key4", map(&[("key5", s("value5")), ("key6", strs(&["value6a", "value6b"]))])),
                    ]),
                ),
                ("key7", list(vec![s("value7"), list(vec![s("value8a"), map(&[("key8b", s("value8b"))])])])),
            ]),
            None,
            None,
            r#"key1=value1 key2={\"key3\":\"value3\",\"key4\":{\"key5\":\"value5\",\"key6\":[\"value6a\",\"value6b\"]}} key7=[\"value7\",[\"value8a\",{\"key8b\":\"value8b\"}]]"#,
        ),
        (
            map(&[
                ("key1", s("value1")),
                (
                    "key2",
                    map(&[
                        ("key3", s("value3")),
                        ("key4", map(&[("key5", s("value=5")), ("key6", strs(&["value6a", "value6b"]))])),
                    ]),
                ),
                ("key7", list(vec![s("value7"), list(vec![s("value8a"), map(&[("key 8b", s("value8b"))])])])),
            ]),
            None,
            None,
            r#"key1=value1 key2="{\"key3\":\"value3\",\"key4\":{\"key5\":\"value=5\",\"key6\":[\"value6a\",\"value6b\"]}}" key7="[\"value7\",[\"value8a\",{\"key 8b\":\"value8b\"}]]""#,
        ),
        (
            map(&[
                ("key1", s("value1\"")),
                (
                    "key2",
                    map(&[
                        ("key3", s("value3")),
                        ("key4", map(&[("key5", s("value=5\"")), ("key6", strs(&["value6a", "value6b"]))])),
                    ]),
                ),
                (
                    "key7",
                    list(vec![s("value7"), list(vec![s("value8a"), map(&[("key 8b\"", s("value8b"))])])]),
                ),
            ]),
            None,
            None,
            r#"key1=value1\" key2="{\"key3\":\"value3\",\"key4\":{\"key5\":\"value=5\\\"\",\"key6\":[\"value6a\",\"value6b\"]}}" key7="[\"value7\",[\"value8a\",{\"key 8b\\\"\":\"value8b\"}]]""#,
        ),
    ];
    for (target, d, p, want) in cases {
        assert_eq!(kv_string(target, d, p, true).unwrap(), s(want), "{want}");
    }
}

/// Scenario: unsorted output and typed values. Guarantees: map order is kept; numbers, bools and
/// bytes print as `pcommon.Value.AsString` prints them (base64, quoted here for its `=`).
#[test]
fn to_key_value_string_order_and_types() {
    let m = map(&[
        ("z", i(1)),
        ("a", Value::Float(2.5)),
        ("m", Value::Bool(true)),
        ("b", Value::Bytes(vec![1, 2])),
    ]);
    assert_eq!(kv_string(m, None, None, false).unwrap(), s("z=1 a=2.5 m=true b=\"AQI=\""));
}

/// Scenario: func_to_key_value_string_test.go's error tests. Guarantees: equal or empty delimiters
/// fail at bind time; a non-map target fails when called.
#[test]
fn to_key_value_string_errors() {
    let m = map(&[("key1", s("value1"))]);
    assert!(kv_string(m.clone(), Some("="), Some("="), false).is_err());
    assert!(kv_string(m.clone(), Some(" "), None, false).is_err());
    assert!(
        kv_string(i(1), Some("="), Some("!"), false)
            .unwrap_err()
            .to_string()
            .contains("expected pcommon.Map")
    );
    assert!(kv_string(s(""), Some("="), Some("!"), false).is_err());
    let e = kv_string(m.clone(), Some(""), None, false).unwrap_err().to_string();
    assert!(e.contains("delimiter cannot be set to an empty string"));
    let e = kv_string(m, None, Some(""), false).unwrap_err().to_string();
    assert!(e.contains("pair delimiter cannot be set to an empty string"));
}

// === ParseCSV ===

/// A ParseCSV case: target, header, delimiter, header delimiter, mode, expectation.
type CsvCase<'a, W> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>, W);

fn csv(
    target: &str,
    header: &str,
    delimiter: Option<&str>,
    header_delimiter: Option<&str>,
    mode: Option<&str>,
) -> Result<Value, EvalError> {
    call_converter(
        "ParseCSV",
        vec![Some(s(target)), Some(s(header)), delimiter.map(s), header_delimiter.map(s), mode.map(s)],
    )
}

fn cols(values: &[&str]) -> Value {
    Value::Map(values.iter().enumerate().map(|(n, v)| (format!("col{}", n + 1), s(v))).collect())
}

/// Scenario: func_parse_csv_test.go's successful cases: commas, newlines inside fields at any
/// position, leading/trailing newlines, explicit mode, tabs, a different header delimiter, lazy
/// quotes and ignored quotes. Guarantees: the same header -> field maps.
#[test]
fn parse_csv_table() {
    let cases: Vec<CsvCase<'_, Value>> = vec![
        ("val1,val2,val3", "col1,col2,col3", None, None, None, cols(&["val1", "val2", "val3"])),
        (
            "val1\nnewline,val2,val3",
            "col1,col2,col3",
            None,
            None,
            None,
            cols(&["val1\nnewline", "val2", "val3"]),
        ),
        (
            "val1,val2\nnewline,val3",
            "col1,col2,col3",
            None,
            None,
            None,
            cols(&["val1", "val2\nnewline", "val3"]),
        ),
        (
            "val1,val2,val3\nnewline",
            "col1,col2,col3",
            None,
            None,
            None,
            cols(&["val1", "val2", "val3\nnewline"]),
        ),
        (
            "val1\nnewline1,val2\nnewline2,val3\nnewline3",
            "col1,col2,col3",
            None,
            None,
            None,
            cols(&["val1\nnewline1", "val2\nnewline2", "val3\nnewline3"]),
        ),
        ("\nval1,val2,val3", "col1,col2,col3", None, None, None, cols(&["val1", "val2", "val3"])),
        ("val1,val2,val3\n", "col1,col2,col3", None, None, None, cols(&["val1", "val2", "val3"])),
        ("val1\n,val2,val3", "col1,col2,col3", None, None, None, cols(&["val1\n", "val2", "val3"])),
        ("val1,val2,val3", "col1,col2,col3", None, None, Some("strict"), cols(&["val1", "val2", "val3"])),
        ("val1\tval2\tval3", "col1\tcol2\tcol3", Some("\t"), None, None, cols(&["val1", "val2", "val3"])),
        ("val1\tval2\tval3", "col1 col2 col3", Some("\t"), Some(" "), None, cols(&["val1", "val2", "val3"])),
        (
            "val1,val2,v\"al3",
            "col1,col2,col3",
            None,
            None,
            Some("lazyQuotes"),
            cols(&["val1", "val2", "v\"al3"]),
        ),
        (
            "val1,\"val2,\"val3,val4\"",
            "col1,col2,col3,col4",
            None,
            None,
            Some("ignoreQuotes"),
            cols(&["val1", "\"val2", "\"val3", "val4\""]),
        ),
        ("\"a,b\",\"c\"\"d\",e", "col1,col2,col3", None, None, None, cols(&["a,b", "c\"d", "e"])),
        ("\"multi\nline\",x", "col1,col2", None, None, None, cols(&["multi\nline", "x"])),
    ];
    for (target, header, d, hd, mode, want) in cases {
        let got = csv(target, header, d, hd, mode).unwrap_or_else(|e| panic!("{target:?}: {e}"));
        assert_same(&got, &want, target);
    }
}

/// Scenario: func_parse_csv_test.go's failing cases: column count mismatch, empty header, empty
/// row, bare quote in strict mode, lazy-quotes invalid CSV, bad delimiters and mode. Guarantees:
/// the Collector's messages.
#[test]
fn parse_csv_errors() {
    let cases: Vec<CsvCase<'_, &str>> = vec![
        ("val1,val2,val3", "col1,col2", None, None, None, "wrong number of fields: expected 2, found 3"),
        ("val1", "", None, None, None, "headers must not be an empty string"),
        ("", "col1,col2,col3", None, None, None, "no csv lines found"),
        (
            "val1,val2,v\"al3",
            "col1,col2,col3",
            None,
            None,
            None,
            "wrong number of fields: expected 3, found 2",
        ),
        (
            "val1,\"val2,\"val3,val4\"",
            "col1,col2,col3,col4",
            None,
            None,
            Some("lazyQuotes"),
            "wrong number of fields: expected 4, found 2",
        ),
        ("val1", "", None, None, Some("ignoreQuotes"), "headers must not be an empty string"),
        (
            "val1,val2,val3",
            "col1,col2,col3",
            Some("bad_delim"),
            None,
            None,
            "invalid arguments: delimiter must be a single character",
        ),
        (
            "val1,val2,val3",
            "col1,col2,col3",
            None,
            Some("bad_delim"),
            None,
            "invalid arguments: header_delimiter must be a single character",
        ),
        ("val1,val2,val3", "col1,col2,col3", None, None, Some("fake-mode"), "unknown mode: fake-mode"),
        (
            "a\"b,c",
            "col1,col2",
            None,
            None,
            None,
            "read csv line: parse error on line 1, column 2: bare \" in non-quoted-field",
        ),
    ];
    for (target, header, d, hd, mode, want) in cases {
        let e = csv(target, header, d, hd, mode).unwrap_err().to_string();
        assert!(e.contains(want), "{target:?}: {e}");
    }
    assert!(call("ParseCSV", vec![i(1), s("col1")]).unwrap_err().to_string().contains("expected string"));
}

// === IsValidLuhn ===

/// Scenario: func_is_valid_luhn_test.go's tables. Guarantees: the Luhn check on digits (spaces
/// ignored, an int converted); empty is false; non-digits, bools, floats and nil are errors.
#[test]
fn is_valid_luhn_table() {
    for (value, want) in [
        (s("17893729974"), true),
        (s("1789 3729 974"), true),
        (s(""), false),
        (s("0"), true),
        (i(17893729974), true),
        (s("17893729975"), false),
    ] {
        assert_eq!(ok("IsValidLuhn", vec![value.clone()]), Value::Bool(want), "{value:?}");
    }
    for value in [s("test"), Value::Bool(false), Value::Float(30.3), Value::Nil] {
        assert!(err("IsValidLuhn", vec![value.clone()]).contains("invalid"), "{value:?}");
    }
}

// === UserAgent ===

/// Scenario: func_useragent_test.go's table: Chrome Mobile on Android, Firefox, Chrome, Mobile
/// Safari, Edge, Opera, curl, unknown agents, the Collector's own agent, an Alamofire iOS app, an
/// SDK. Guarantees: the same name, version and OS fields as uap-go returns for them.
#[test]
fn user_agent_table() {
    let cases: Vec<(&str, &str, &str, &str, Option<&str>)> = vec![
        (
            "Mozilla/5.0 (Linux; Android 4.1.1; SPH-L710 Build/JRO03L) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.166 Mobile Safari/535.19",
            "Chrome Mobile",
            "18.0.1025",
            "Android",
            Some("4.1.1"),
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
            "Firefox",
            "126.0",
            "Linux",
            None,
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36",
            "Chrome",
            "51.0.2704",
            "Linux",
            None,
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 13_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1.1 Mobile/15E148 Safari/604.1",
            "Mobile Safari",
            "13.1.1",
            "iOS",
            Some("13.5.1"),
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36 Edg/91.0.864.59",
            "Edge",
            "91.0.864",
            "Windows",
            Some("10"),
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.106 Safari/537.36 OPR/38.0.2220.41",
            "Opera",
            "38.0.2220",
            "Linux",
            None,
        ),
        ("curl/7.81.0", "curl", "7.81.0", "Other", None),
        ("foobar/1.2.3 (foo; bar baz)", "Other", "", "Other", None),
        ("OpenTelemetry Collector Contrib/0.106.1 (linux/amd64)", "Other", "", "Linux", None),
        (
            "ViaFree-DK/3.8.3 (com.MTGx.ViaFree.dk; build:7383; iOS 12.1.0) Alamofire/4.7.0",
            "ViaFree",
            "3.8.3",
            "iOS",
            Some("12.1.0"),
        ),
        (
            "ibm-cos-sdk-java/2.3.0 Linux/4.9.0-8-amd64 Java_HotSpot(TM)_64-Bit_Server_VM/9.0.4+11/9.0.4'",
            "ibm-cos-sdk-java",
            "2.3.0",
            "Linux",
            Some("4.9.0"),
        ),
    ];
    for (ua, name, version, os, os_version) in cases {
        let mut want = vec![
            ("user_agent.original", s(ua)),
            ("user_agent.name", s(name)),
            ("user_agent.version", s(version)),
            ("os.name", s(os)),
        ];
        if let Some(v) = os_version {
            want.push(("os.version", s(v)));
        }
        assert_same(&ok("UserAgent", vec![s(ua)]), &map(&want), ua);
    }
    assert!(err("UserAgent", vec![i(1)]).contains("expected string"));
}

// === URL ===

/// Scenario: func_url_test.go's table: complete, simple, custom port, file, fragment, query, user
/// info with and without password, ftp and telnet. Guarantees: the same `url.*` map (Go's
/// `net/url`: no normalisation, empty path stays empty).
#[test]
fn url_table() {
    let cases: Vec<(&str, Vec<(&str, Value)>)> = vec![
        (
            "http://myusername:mypassword@www.example.com:80/foo.gif?key1=val1&key2=val2#fragment",
            vec![
                ("url.path", s("/foo.gif")),
                ("url.fragment", s("fragment")),
                ("url.extension", s("gif")),
                ("url.password", s("mypassword")),
                (
                    "url.original",
                    s("http://myusername:mypassword@www.example.com:80/foo.gif?key1=val1&key2=val2#fragment"),
                ),
                ("url.scheme", s("http")),
                ("url.port", i(80)),
                ("url.user_info", s("myusername:mypassword")),
                ("url.domain", s("www.example.com")),
                ("url.query", s("key1=val1&key2=val2")),
                ("url.username", s("myusername")),
            ],
        ),
        (
            "http://www.example.com",
            vec![
                ("url.original", s("http://www.example.com")),
                ("url.scheme", s("http")),
                ("url.domain", s("www.example.com")),
                ("url.path", s("")),
            ],
        ),
        (
            "http://www.example.com:77",
            vec![
                ("url.original", s("http://www.example.com:77")),
                ("url.scheme", s("http")),
                ("url.domain", s("www.example.com")),
                ("url.path", s("")),
                ("url.port", i(77)),
            ],
        ),
        (
            "http://www.example.com:77/file.png",
            vec![
                ("url.original", s("http://www.example.com:77/file.png")),
                ("url.scheme", s("http")),
                ("url.domain", s("www.example.com")),
                ("url.path", s("/file.png")),
                ("url.port", i(77)),
                ("url.extension", s("png")),
            ],
        ),
        (
            "http://www.example.com:77/foo#bar",
            vec![
                ("url.original", s("http://www.example.com:77/foo#bar")),
                ("url.scheme", s("http")),
                ("url.domain", s("www.example.com")),
                ("url.path", s("/foo")),
                ("url.port", i(77)),
                ("url.fragment", s("bar")),
            ],
        ),
        (
            "https://www.example.com:77/foo?key=val",
            vec![
                ("url.original", s("https://www.example.com:77/foo?key=val")),
                ("url.scheme", s("https")),
                ("url.domain", s("www.example.com")),
                ("url.path", s("/foo")),
                ("url.port", i(77)),
                ("url.query", s("key=val")),
            ],
        ),
        (
            "https://user:pw@www.example.com:77/foo",
            vec![
                ("url.original", s("https://user:pw@www.example.com:77/foo")),
                ("url.scheme", s("https")),
                ("url.domain", s("www.example.com")),
                ("url.path", s("/foo")),
                ("url.port", i(77)),
                ("url.user_info", s("user:pw")),
                ("url.username", s("user")),
                ("url.password", s("pw")),
            ],
        ),
        (
            "https://user:@www.example.com:77/foo",
            vec![
                ("url.original", s("https://user:@www.example.com:77/foo")),
                ("url.scheme", s("https")),
                ("url.domain", s("www.example.com")),
                ("url.path", s("/foo")),
                ("url.port", i(77)),
                ("url.user_info", s("user:")),
                ("url.username", s("user")),
                ("url.password", s("")),
            ],
        ),
        (
            "ftp://ftp.is.co.za/rfc/rfc1808.txt",
            vec![
                ("url.original", s("ftp://ftp.is.co.za/rfc/rfc1808.txt")),
                ("url.scheme", s("ftp")),
                ("url.path", s("/rfc/rfc1808.txt")),
                ("url.extension", s("txt")),
                ("url.domain", s("ftp.is.co.za")),
            ],
        ),
        (
            "telnet://192.0.2.16:80/",
            vec![
                ("url.original", s("telnet://192.0.2.16:80/")),
                ("url.scheme", s("telnet")),
                ("url.path", s("/")),
                ("url.port", i(80)),
                ("url.domain", s("192.0.2.16")),
            ],
        ),
    ];
    for (url, want) in cases {
        assert_same(&ok("URL", vec![s(url)]), &map(&want), url);
    }
}

/// Scenario: Go `net/url` details: escapes, IPv6 hosts, a query-only string, and malformed URLs.
/// Guarantees: decoded paths, bracket-less domains, the `query` map for "?a=1", and Go's
/// "parse ..." errors; an empty URL is refused.
#[test]
fn url_details_and_errors() {
    let got = ok("URL", vec![s("HTTPS://[::1]:8443/a%20b.tar.gz")]);
    assert_contains_entries(
        &got,
        &[
            ("url.scheme", s("https")),
            ("url.domain", s("::1")),
            ("url.port", i(8443)),
            ("url.path", s("/a b.tar.gz")),
            ("url.extension", s("gz")),
            ("url.original", s("https://[::1]:8443/a%20b.tar.gz")),
        ],
        "ipv6",
    );
    let got = ok("URL", vec![s("?a=1&b=x+y&a=2")]);
    assert_same(
        &got,
        &map(&[("query", map(&[("a", strs(&["1", "2"])), ("b", strs(&["x y"]))]))]),
        "query only",
    );
    assert!(err("URL", vec![s("")]).contains("url cannot be empty"));
    assert!(err("URL", vec![s("http://[::1")]).contains("missing ']' in host"));
    assert!(err("URL", vec![s("http://host:port/")]).contains("invalid port \":port\" after host"));
    assert!(err("URL", vec![s("http://a b.com/")]).contains("invalid character \" \" in host name"));
    assert!(err("URL", vec![s("http://x/%zz")]).contains("invalid URL escape \"%zz\""));
    assert!(err("URL", vec![s(":foo")]).contains("missing protocol scheme"));
    assert!(err("URL", vec![i(1)]).contains("expected string"));
}

// === CommunityID ===

fn community(
    src: &str,
    sport: i64,
    dst: &str,
    dport: i64,
    proto: &str,
    seed: i64,
) -> Result<Value, EvalError> {
    call("CommunityID", vec![s(src), i(sport), s(dst), i(dport), s(proto), i(seed)])
}

/// Scenario: func_community_id_test.go's table: TCP/UDP/ICMP/RSVP/ICMP6/SCTP, IPv6, a seed,
/// normalised directions, equal endpoints, mixed families. Guarantees: the same Community IDs.
#[test]
fn community_id_table() {
    let cases = [
        ("1.2.3.4", "5.6.7.8", 12345, 80, "TCP", 0, "1:0by3b/tE95hcOzccyt6d4kjgbZc="),
        ("5.6.7.8", "1.2.3.4", 80, 12345, "TCP", 0, "1:0by3b/tE95hcOzccyt6d4kjgbZc="),
        ("192.168.1.1", "10.10.10.10", 53, 53000, "UDP", 0, "1:gQ05/45srnixHs8V/2ejpkxhBwg="),
        ("10.10.10.10", "192.168.1.1", 53000, 53, "ICMP", 0, "1:9TGPWejPFuBlKrHuVcM3iaA8hf8="),
        ("10.10.10.10", "192.168.1.1", 53, 53000, "RSVP", 0, "1:rkXhRghBvx2yf3zgDnSHuJ35XaY="),
        ("192.168.1.1", "10.10.10.10", 53, 53000, "ICMP6", 0, "1:bchQ2SAoVf2Iq1XdGBXObLJ2i64="),
        ("192.168.1.1", "10.10.10.10", 53, 53000, "SCTP", 0, "1:zo1kfEyhghMaeU7tQDCE2G+ITQc="),
        ("2001:db8::1", "2001:db8::2", 8080, 443, "TCP", 0, "1:c5m26SNBLmvfaBQJNWKXZwUGGcM="),
        ("192.168.1.1", "192.168.1.2", 12345, 80, "TCP", 1234, "1:v1n8p4IZW9jXIJnFANLbRU2ahdU="),
        ("10.0.0.2", "10.0.0.1", 80, 12345, "TCP", 0, "1:CpuULklTENbGdRpvp7gNcQd5ZqA="),
        ("127.0.0.1", "127.0.0.1", 8080, 8080, "TCP", 0, "1:sG2vk7rcZ12ZxPg+nnwljgdVEGw="),
        ("2001:db8::1", "10.1.1.1", 8080, 443, "TCP", 0, "1:T1e3va6jTSWaSKkG3k4dnZq5VM8="),
        ("10.1.1.1", "10.1.1.2", 8080, 8079, "TCP", 0, "1:1fjNfFLjLTsO2WE9AY0TbTeSaBs="),
        ("10.1.1.2", "10.1.1.1", 8079, 8080, "TCP", 0, "1:1fjNfFLjLTsO2WE9AY0TbTeSaBs="),
        ("10.1.1.2", "10.1.1.2", 8081, 8080, "TCP", 0, "1:3byUvmBpOu8KHoTRr4eN5AjTQEU="),
        ("10.1.1.2", "10.1.1.2", 8080, 8081, "TCP", 0, "1:3byUvmBpOu8KHoTRr4eN5AjTQEU="),
    ];
    for (src, dst, sport, dport, proto, seed, want) in cases {
        assert_eq!(
            community(src, sport, dst, dport, proto, seed).unwrap(),
            s(want),
            "{src}:{sport} -> {dst}:{dport} {proto}"
        );
    }
}

/// Scenario: func_community_id_test.go's error cases and the range checks. Guarantees: invalid
/// IPs, unknown protocols, ports outside 1..65535 and seeds outside 0..65535 are errors; the
/// protocol and seed default to TCP and 0.
#[test]
fn community_id_errors_and_defaults() {
    assert!(
        community("invalid-ip", 80, "10.0.0.1", 12345, "TCP", 0)
            .unwrap_err()
            .to_string()
            .contains("invalid source IP")
    );
    assert!(
        community("10.0.0.1", 80, "10.0.0.2", 12345, "UNKNOWN", 0)
            .unwrap_err()
            .to_string()
            .contains("unsupported protocol")
    );
    assert!(
        community("10.0.0.1", 0, "10.0.0.2", 1, "TCP", 0)
            .unwrap_err()
            .to_string()
            .contains("source port must be between 1 and 65535")
    );
    assert!(
        community("10.0.0.1", 1, "10.0.0.2", 70000, "TCP", 0)
            .unwrap_err()
            .to_string()
            .contains("destination port")
    );
    assert!(
        community("10.0.0.1", 1, "10.0.0.2", 2, "TCP", 65536)
            .unwrap_err()
            .to_string()
            .contains("seed must be between 0 and 65535")
    );
    let defaulted = call_converter(
        "CommunityID",
        vec![Some(s("1.2.3.4")), Some(i(12345)), Some(s("5.6.7.8")), Some(i(80)), None, None],
    );
    assert_eq!(defaulted.unwrap(), s("1:0by3b/tE95hcOzccyt6d4kjgbZc="));
}

// === IsInCIDR ===

/// Scenario: func_is_in_cidr_test.go's tables: included and excluded addresses, non-IP and empty
/// strings, literal networks, invalid networks, non-string and nil targets. Guarantees: the same
/// verdicts and errors.
#[test]
fn is_in_cidr_table() {
    let cases: Vec<(&str, Vec<&str>, bool)> = vec![
        ("192.0.2.1", vec!["192.0.24.0/24", "192.0.2.0/24"], true),
        ("195.0.2.1", vec!["192.0.2.0/24"], false),
        ("hello world", vec!["192.0.2.0/24"], false),
        ("", vec!["192.0.2.0/24"], false),
        ("10.1.2.3", vec!["10.0.0.0/8"], true),
        ("192.168.0.1", vec!["10.0.0.0/8", "192.168.0.0/16"], true),
        ("2001:db8::1", vec!["2001:db8::/32"], true),
        ("2001:db9::1", vec!["2001:db8::/32"], false),
        ("::ffff:10.1.2.3", vec!["10.0.0.0/8"], true),
        ("10.1.2.3", vec!["2001:db8::/32"], false),
    ];
    for (target, networks, want) in cases {
        assert_eq!(
            ok("IsInCIDR", vec![s(target), strs(&networks)]),
            Value::Bool(want),
            "{target} in {networks:?}"
        );
        assert_eq!(
            call_dynamic("IsInCIDR", vec![s(target), strs(&networks)]).unwrap(),
            Value::Bool(want),
            "dynamic"
        );
    }
    assert!(err("IsInCIDR", vec![i(10), strs(&["192.0.2.0/24"])]).contains("expected string but got int64"));
    assert!(
        err("IsInCIDR", vec![Value::Nil, strs(&["192.0.2.0/24"])]).contains("expected string but got nil")
    );
    assert!(
        err("IsInCIDR", vec![s("192.0.0.1"), strs(&["192.0.2/24"])])
            .contains("invalid CIDR address: 192.0.2/24")
    );
    let e = call_dynamic("IsInCIDR", vec![s("192.0.0.1"), strs(&["192.0.2/24"])]).unwrap_err().to_string();
    assert!(e.contains("invalid CIDR address: 192.0.2/24"), "{e}");
}
