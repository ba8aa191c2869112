use crate::eval::EvalError;
use crate::funcs::testing::call_converter;
use crate::value::Value;

fn s(v: &str) -> Option<Value> {
    Some(Value::String(v.into()))
}

fn ok_str(name: &str, args: Vec<Option<Value>>) -> String {
    match call_converter(name, args) {
        Ok(Value::String(s)) => s,
        other => panic!("{name}: expected a string, got {other:?}"),
    }
}

fn err_msg(name: &str, args: Vec<Option<Value>>) -> String {
    match call_converter(name, args) {
        Err(e) => e.to_string(),
        Ok(v) => panic!("{name}: expected an error, got {v:?}"),
    }
}

/// Scenario: Base64Decode on standard padded base64 and the empty string (func_base64decode_test.go).
/// Guarantees: the decoded bytes come back as a string.
#[test]
fn base64_decode_decodes() {
    assert_eq!(ok_str("Base64Decode", vec![s("aGVsbG8gd29ybGQ=")]), "hello world");
    assert_eq!(ok_str("Base64Decode", vec![s("")]), "");
}

/// Scenario: Base64Decode on a non-string, nil, invalid characters and missing padding.
/// Guarantees: the typed getter's errors and Go's "illegal base64 data at input byte N".
#[test]
fn base64_decode_errors() {
    assert_eq!(err_msg("Base64Decode", vec![Some(Value::Int(10))]), "expected string but got int64");
    assert_eq!(err_msg("Base64Decode", vec![None]), "expected string but got nil");
    assert_eq!(err_msg("Base64Decode", vec![s("!@#$%^&*()_+")]), "illegal base64 data at input byte 0");
    assert_eq!(
        err_msg("Base64Decode", vec![s("cmVtb3ZlZCBwYWRkaW5nCg")]),
        "illegal base64 data at input byte 20"
    );
}

/// Scenario: Base64Encode with the default and each explicit variant (func_base64encode_test.go).
/// Guarantees: padding and alphabet follow the variant; the empty string encodes to "".
#[test]
fn base64_encode_variants() {
    assert_eq!(ok_str("Base64Encode", vec![s("test string")]), "dGVzdCBzdHJpbmc=");
    assert_eq!(ok_str("Base64Encode", vec![s("test string\n")]), "dGVzdCBzdHJpbmcK");
    assert_eq!(ok_str("Base64Encode", vec![s("test string"), s("base64")]), "dGVzdCBzdHJpbmc=");
    let v = "data+values/items";
    assert_eq!(ok_str("Base64Encode", vec![s(v), s("base64")]), "ZGF0YSt2YWx1ZXMvaXRlbXM=");
    assert_eq!(ok_str("Base64Encode", vec![s(v), s("base64-raw")]), "ZGF0YSt2YWx1ZXMvaXRlbXM");
    assert_eq!(ok_str("Base64Encode", vec![s(v), s("base64-url")]), "ZGF0YSt2YWx1ZXMvaXRlbXM=");
    assert_eq!(ok_str("Base64Encode", vec![s(v), s("base64-raw-url")]), "ZGF0YSt2YWx1ZXMvaXRlbXM");
    assert_eq!(ok_str("Base64Encode", vec![s("")]), "");
    // Bytes that are not URL-safe in the standard alphabet.
    assert_eq!(ok_str("Base64Encode", vec![s("Go?/Z~x"), s("base64-url")]), "R28_L1p-eA==");
}

/// Scenario: Base64Encode on an int, a byte slice and an unknown variant.
/// Guarantees: strict string typing and "unsupported base64 variant: <v>" at run time.
#[test]
fn base64_encode_errors() {
    assert_eq!(err_msg("Base64Encode", vec![Some(Value::Int(10))]), "expected string but got int64");
    assert_eq!(
        err_msg("Base64Encode", vec![Some(Value::Bytes(vec![0, 1, 2, 0xff]))]),
        "expected string but got []byte"
    );
    assert_eq!(
        err_msg("Base64Encode", vec![s("test string"), s("invalid-variant")]),
        "unsupported base64 variant: invalid-variant"
    );
}

/// Scenario: Decode's success table (func_decode_test.go): base64 variants from strings and bytes,
/// us-ascii, ISO-8859-1, windows-1251/1252, UTF-8 and UTF-16 (both spellings).
/// Guarantees: each input decodes to the expected text.
#[test]
fn decode_table() {
    let utf16: Vec<u8> =
        vec![116, 0, 101, 0, 115, 0, 116, 0, 32, 0, 115, 0, 116, 0, 114, 0, 105, 0, 110, 0, 103, 0];
    let cases: Vec<(Value, &str, &str)> = vec![
        (Value::Bytes(b"dGVzdAo=".to_vec()), "base64", "test\n"),
        (Value::String("aGVsbG8gd29ybGQ=".into()), "base64", "hello world"),
        (Value::Bytes(b"aGVsbG8gd29ybGQ=".to_vec()), "base64", "hello world"),
        (Value::String("test string".into()), "us-ascii", "test string"),
        (Value::Bytes(b"test string".to_vec()), "us-ascii", "test string"),
        (Value::String("test string".into()), "ISO-8859-1", "test string"),
        (Value::String("test string".into()), "WINDOWS-1251", "test string"),
        (Value::String("test string".into()), "WINDOWS-1252", "test string"),
        (Value::String("test string".into()), "UTF-8", "test string"),
        (Value::Bytes(utf16.clone()), "UTF-16", "test string"),
        (Value::Bytes(utf16), "UTF16", "test string"),
        (Value::String("R28/L1p+eA==".into()), "base64", "Go?/Z~x"),
        (Value::String("R28/L1p+eA".into()), "base64-raw", "Go?/Z~x"),
        (Value::String("R28_L1p-eA==".into()), "base64-url", "Go?/Z~x"),
        (Value::String("R28_L1p-eA".into()), "base64-raw-url", "Go?/Z~x"),
        // Surrounding whitespace is trimmed before base64 decoding.
        (Value::String("\n aGVsbG8gd29ybGQ=\n".into()), "base64", "hello world"),
    ];
    for (value, enc, want) in cases {
        assert_eq!(ok_str("Decode", vec![Some(value.clone()), s(enc)]), want, "{value:?} as {enc}");
    }
}

/// Scenario: Decode of single-byte charsets where Latin-1 and windows-1252 differ.
/// Guarantees: ISO-8859-1 maps each byte to the same code point; windows-1252 maps 0x80 to the euro sign.
#[test]
fn decode_single_byte_charsets() {
    assert_eq!(ok_str("Decode", vec![Some(Value::Bytes(vec![0xe9, 0x80])), s("latin1")]), "é\u{80}");
    assert_eq!(ok_str("Decode", vec![Some(Value::Bytes(vec![0xe9, 0x80])), s("windows-1252")]), "é€");
    assert_eq!(ok_str("Decode", vec![Some(Value::Bytes(vec![0xcf, 0xf0, 0xe8])), s("windows-1251")]), "При");
}

/// Scenario: Decode's error rows: GB2312 (no decoder), non-string and nil targets, bad base64.
/// Guarantees: the Collector's messages.
#[test]
fn decode_errors() {
    assert_eq!(
        err_msg("Decode", vec![s("test string"), s("GB2312")]),
        "no charmap defined for encoding 'GB2312'"
    );
    assert_eq!(
        err_msg("Decode", vec![Some(Value::Int(10)), s("base64")]),
        "unsupported type provided to Decode function: int64"
    );
    assert_eq!(
        err_msg("Decode", vec![None, s("base64")]),
        "unsupported type provided to Decode function: <nil>"
    );
    assert!(
        err_msg("Decode", vec![s("!@#$%^&*()_+"), s("base64")]).contains("illegal base64 data at input byte")
    );
    assert!(
        err_msg("Decode", vec![s("cmVtb3ZlZCBwYWRkaW5nCg"), s("base64")])
            .contains("illegal base64 data at input byte")
    );
    assert_eq!(
        err_msg("Decode", vec![s("x"), s("no-such-charset")]),
        "unsupported encoding 'no-such-charset'"
    );
}

/// Scenario: a literal unknown encoding reaches Decode's bind-time check.
/// Guarantees: prepare rejects it with the lookup's message; a known literal passes.
#[test]
fn decode_prepare_checks_literal_encoding() {
    let def = crate::funcs::registry::lookup("Decode").expect("Decode");
    let prepare = def.prepare.expect("prepare");
    let bad = Value::String("klingon".into());
    assert_eq!(prepare(&[None, Some(&bad)]).err().as_deref(), Some("unsupported encoding 'klingon'"));
    let good = Value::String("base64".into());
    assert!(prepare(&[None, Some(&good)]).is_ok());
}

/// Scenario: FNV on "hello world" and "" (func_fnv_test.go), and on a non-string.
/// Guarantees: FNV-1a 64 as a signed int64; strict string typing.
#[test]
fn fnv_table() {
    assert_eq!(call_converter("FNV", vec![s("hello world")]), Ok(Value::Int(8618312879776256743)));
    assert_eq!(call_converter("FNV", vec![s("")]), Ok(Value::Int(-3750763034362895579)));
    assert_eq!(err_msg("FNV", vec![Some(Value::Int(10))]), "expected string but got int64");
    assert_eq!(err_msg("FNV", vec![None]), "expected string but got nil");
}

/// Scenario: MD5, SHA1, SHA256 and SHA512 of "hello world" and "" (func_md5/sha*_test.go).
/// Guarantees: lower-case hex digests; strict string typing.
#[test]
fn digest_tables() {
    assert_eq!(ok_str("MD5", vec![s("hello world")]), "5eb63bbbe01eeed093cb22bb8f5acdc3");
    assert_eq!(ok_str("MD5", vec![s("")]), "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(ok_str("SHA1", vec![s("hello world")]), "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed");
    assert_eq!(ok_str("SHA1", vec![s("")]), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(
        ok_str("SHA256", vec![s("hello world")]),
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    assert_eq!(
        ok_str("SHA256", vec![s("")]),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        ok_str("SHA512", vec![s("hello world")]),
        "309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f989dd35bc5ff499670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f"
    );
    assert_eq!(
        ok_str("SHA512", vec![s("")]),
        "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    );
    for f in ["MD5", "SHA1", "SHA256", "SHA512"] {
        assert_eq!(err_msg(f, vec![Some(Value::Int(10))]), "expected string but got int64");
        assert_eq!(err_msg(f, vec![None]), "expected string but got nil");
    }
}

/// Scenario: Murmur3Hash and Murmur3Hash128 on "Hello World" and "" (func_murmur3hash*_test.go).
/// Guarantees: little-endian hex of the 32-bit and the two 64-bit halves; strict typing.
#[test]
fn murmur3_tables() {
    assert_eq!(ok_str("Murmur3Hash", vec![s("Hello World")]), "ce837619");
    assert_eq!(ok_str("Murmur3Hash", vec![s("")]), "00000000");
    assert_eq!(ok_str("Murmur3Hash128", vec![s("Hello World")]), "dbc2a0c1ab26631a27b4c09fcf1fe683");
    assert_eq!(ok_str("Murmur3Hash128", vec![s("")]), "00000000000000000000000000000000");
    // Inputs whose length leaves a tail in every position.
    for n in 0..40 {
        let input = "x".repeat(n);
        assert_eq!(ok_str("Murmur3Hash", vec![s(&input)]).len(), 8);
        assert_eq!(ok_str("Murmur3Hash128", vec![s(&input)]).len(), 32);
    }
    for f in ["Murmur3Hash", "Murmur3Hash128"] {
        assert_eq!(err_msg(f, vec![Some(Value::Int(123))]), "expected string but got int64");
        assert_eq!(err_msg(f, vec![None]), "expected string but got nil");
    }
}

/// Scenario: the reference MurmurHash3 vectors for short and block-sized inputs.
/// Guarantees: the 32-bit variant matches the published values (seed 0).
#[test]
fn murmur3_reference_vectors() {
    assert_eq!(super::murmur3_32(b"", 0), 0);
    assert_eq!(super::murmur3_32(b"", 1), 0x514e_28b7);
    assert_eq!(super::murmur3_32(b"test", 0), 0xba6b_d213);
    assert_eq!(super::murmur3_32(b"Hello, world!", 0), 0xc036_3e43);
    assert_eq!(super::murmur3_32(b"The quick brown fox jumps over the lazy dog", 0), 0x2e4f_f723);
}

/// Scenario: XXH3 and XXH128 on "hello world" and "" (func_xxh3_test.go, func_xxh128_test.go).
/// Guarantees: big-endian hex of the digest; strict typing.
#[test]
fn xxh3_tables() {
    assert_eq!(ok_str("XXH3", vec![s("hello world")]), "d447b1ea40e6988b");
    assert_eq!(ok_str("XXH3", vec![s("")]), "2d06800538d394c2");
    assert_eq!(ok_str("XXH128", vec![s("hello world")]), "df8d09e93f874900a99b8775cc15b6c7");
    assert_eq!(ok_str("XXH128", vec![s("")]), "99aa06d3014798d86001c324468d497f");
    for f in ["XXH3", "XXH128"] {
        assert_eq!(err_msg(f, vec![Some(Value::Int(10))]), "expected string but got int64");
        assert_eq!(err_msg(f, vec![None]), "expected string but got nil");
    }
}

/// Scenario: UUID and UUIDv7 called twice each.
/// Guarantees: 8-4-4-4-12 lower-case hex with the right version nibble and RFC 4122 variant; fresh values.
#[test]
fn uuid_shapes() {
    for (f, version) in [("UUID", '4'), ("UUIDv7", '7')] {
        let a = ok_str(f, vec![]);
        let b = ok_str(f, vec![]);
        assert_ne!(a, b);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), vec![8, 4, 4, 4, 12], "{a}");
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)), "{a}");
        assert_eq!(groups[2].chars().next(), Some(version));
        assert!(matches!(groups[3].chars().next(), Some('8' | '9' | 'a' | 'b')));
    }
}

/// Scenario: TraceID from 16 raw bytes and from 32 hex characters (func_trace_id_test.go).
/// Guarantees: both give the same id.
#[test]
fn trace_id_success() {
    let raw: Vec<u8> = (1..=16).collect();
    let want = Value::TraceId(raw.clone().try_into().expect("16"));
    assert_eq!(call_converter("TraceID", vec![Some(Value::Bytes(raw))]), Ok(want.clone()));
    assert_eq!(call_converter("TraceID", vec![s("0102030405060708090a0b0c0d0e0f10")]), Ok(want.clone()));
    assert_eq!(
        call_converter("TraceID", vec![Some(Value::Bytes(b"0102030405060708090A0B0C0D0E0F10".to_vec()))]),
        Ok(want)
    );
}

/// Scenario: TraceID from 15, 17 and 33 bytes and from a bad hex string.
/// Guarantees: "could not decode ID: invalid length/invalid hex" with the function name and sizes.
#[test]
fn trace_id_errors() {
    for n in [15u8, 17, 33] {
        let raw: Vec<u8> = (1..=n).collect();
        assert_eq!(
            err_msg("TraceID", vec![Some(Value::Bytes(raw))]),
            format!("TraceID: could not decode ID: invalid length: expected 16 or 32 bytes, got {n}")
        );
    }
    assert_eq!(
        err_msg("TraceID", vec![s("ZZ02030405060708090a0b0c0d0e0f10")]),
        "TraceID: could not decode ID: invalid hex: encoding/hex: invalid byte: U+005A 'Z'"
    );
}

/// Scenario: SpanID and ProfileID from raw bytes, hex and wrong lengths (func_span_id_test.go,
/// func_profile_id_test.go).
/// Guarantees: 8-byte span ids, 16-byte profile ids (returned as bytes), the length error otherwise.
#[test]
fn span_and_profile_ids() {
    let raw: Vec<u8> = (1..=8).collect();
    let want = Value::SpanId(raw.clone().try_into().expect("8"));
    assert_eq!(call_converter("SpanID", vec![Some(Value::Bytes(raw))]), Ok(want.clone()));
    assert_eq!(call_converter("SpanID", vec![s("0102030405060708")]), Ok(want));
    assert_eq!(
        err_msg("SpanID", vec![Some(Value::Bytes(vec![1, 2, 3, 4, 5, 6, 7]))]),
        "SpanID: could not decode ID: invalid length: expected 8 or 16 bytes, got 7"
    );
    assert_eq!(
        err_msg("SpanID", vec![s("ZZ02030405060708")]),
        "SpanID: could not decode ID: invalid hex: encoding/hex: invalid byte: U+005A 'Z'"
    );
    let raw: Vec<u8> = (1..=16).collect();
    assert_eq!(
        call_converter("ProfileID", vec![Some(Value::Bytes(raw.clone()))]),
        Ok(Value::ProfileId(raw.clone().try_into().unwrap()))
    );
    assert_eq!(
        call_converter("ProfileID", vec![s("0102030405060708090a0b0c0d0e0f10")]),
        Ok(Value::ProfileId(raw.try_into().unwrap()))
    );
    assert_eq!(
        err_msg("ProfileID", vec![Some(Value::Bytes(vec![1; 15]))]),
        "ProfileID: could not decode ID: invalid length: expected 16 or 32 bytes, got 15"
    );
}

/// Scenario: a literal id of the wrong length, and a nil dynamic target.
/// Guarantees: prepare fails at bind time for the literal; nil is an empty byte slice (length 0 error).
#[test]
fn id_literal_checked_at_bind_time() {
    let def = crate::funcs::registry::lookup("SpanID").expect("SpanID");
    let prepare = def.prepare.expect("prepare");
    let bad = Value::Bytes(vec![1, 2, 3]);
    assert_eq!(
        prepare(&[Some(&bad)]).err().as_deref(),
        Some("SpanID: could not decode ID: invalid length: expected 8 or 16 bytes, got 3")
    );
    let good = Value::String("0102030405060708".into());
    assert!(prepare(&[Some(&good)]).is_ok());
    assert_eq!(
        call_converter("TraceID", vec![None]),
        Err(EvalError::Function(
            "TraceID: could not decode ID: invalid length: expected 16 or 32 bytes, got 0".into()
        ))
    );
}
