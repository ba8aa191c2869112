use super::{Civil, days_from_civil, go_format, parse_go_duration, to_native};
use crate::eval::EvalError;
use crate::funcs::testing::call_converter;
use crate::value::Value;

const NS: i64 = 1_000_000_000;

fn s(v: &str) -> Option<Value> {
    Some(Value::String(v.into()))
}

/// Unix nanoseconds of a UTC wall-clock reading.
fn utc(y: i64, mo: i64, d: i64, h: i64, mi: i64, sec: i64, ns: i64) -> i64 {
    (days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec) * NS + ns
}

fn parse(
    value: &str,
    format: &str,
    location: Option<&str>,
    locale: Option<&str>,
) -> Result<Value, EvalError> {
    call_converter("Time", vec![s(value), s(format), location.and_then(s), locale.and_then(s)])
}

fn err_msg(r: Result<Value, EvalError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// Scenario: the Collector's Time table (func_time_test.go) without location or locale, the local zone
/// being UTC.
/// Guarantees: each string parses to the expected instant, zone abbreviations resolved as Go does
/// (HST -10h, MST -7h, GMT 0, a numeric offset winning over EST).
#[test]
fn time_table() {
    let cases: &[(&str, &str, i64)] = &[
        ("2023-04-12", "%Y-%m-%d", utc(2023, 4, 12, 0, 0, 0, 0)),
        ("11/11/11", "%d/%m/%y", utc(2011, 11, 11, 0, 0, 0, 0)),
        ("02/04/2023", "%m/%d/%Y", utc(2023, 2, 4, 0, 0, 0, 0)),
        ("July 31, 1993", "%B %d, %Y", utc(1993, 7, 31, 0, 0, 0, 0)),
        ("Mar 14 2023 17:02:59", "%b %d %Y %H:%M:%S", utc(2023, 3, 14, 17, 2, 59, 0)),
        ("Monday, May 01, 2023", "%A, %B %d, %Y", utc(2023, 5, 1, 0, 0, 0, 0)),
        ("Sat, May 20, 2023", "%a, %b %d, %Y", utc(2023, 5, 20, 0, 0, 0, 0)),
        ("Feb 15, 2023", "%b %d, %Y", utc(2023, 2, 15, 0, 0, 0, 0)),
        ("2023-05-26 12:34:56 HST", "%Y-%m-%d %H:%M:%S %Z", utc(2023, 5, 26, 22, 34, 56, 0)),
        ("2023-05-26T12:34:56 GMT", "%Y-%m-%dT%H:%M:%S %Z", utc(2023, 5, 26, 12, 34, 56, 0)),
        ("2012-11-01T22:08:41+0000 EST", "%Y-%m-%dT%H:%M:%S%z %Z", utc(2012, 11, 1, 22, 8, 41, 0)),
        ("1986-10-01T00:17:33 MST", "%Y-%m-%dT%H:%M:%S %Z", utc(1986, 10, 1, 7, 17, 33, 0)),
        ("2022/01/01", "%Y/%m/%d", utc(2022, 1, 1, 0, 0, 0, 0)),
    ];
    for (value, format, want) in cases {
        assert_eq!(parse(value, format, None, None), Ok(Value::Time(*want)), "{value} as {format}");
    }
}

/// Scenario: Time with a default location (America/New_York, Asia/Shanghai), also when the value names
/// its own zone.
/// Guarantees: the location applies to zone-less values (DST included); an abbreviation in the value wins.
#[test]
fn time_with_location() {
    let v = "2023-05-26 12:34:56";
    let f = "%Y-%m-%d %H:%M:%S";
    assert_eq!(parse(v, f, Some("America/New_York"), None), Ok(Value::Time(utc(2023, 5, 26, 16, 34, 56, 0))));
    assert_eq!(parse(v, f, Some("Asia/Shanghai"), None), Ok(Value::Time(utc(2023, 5, 26, 4, 34, 56, 0))));
    assert_eq!(
        parse("1986-10-01T00:17:33 MST", "%Y-%m-%dT%H:%M:%S %Z", Some("Asia/Shanghai"), None),
        Ok(Value::Time(utc(1986, 10, 1, 7, 17, 33, 0)))
    );
    // An abbreviation the default location knows resolves there: EDT in New York.
    assert_eq!(
        parse("2023-05-26 12:34:56 EDT", "%Y-%m-%d %H:%M:%S %Z", Some("America/New_York"), None),
        Ok(Value::Time(utc(2023, 5, 26, 16, 34, 56, 0)))
    );
    assert_eq!(parse(v, f, Some("UTC"), None), Ok(Value::Time(utc(2023, 5, 26, 12, 34, 56, 0))));
}

/// Scenario: Time with locales es-ES and it, alone and with a location (func_time_test.go).
/// Guarantees: localized month, weekday and day-period names parse.
#[test]
fn time_with_locale() {
    let f = "%B %d %A, %Y, %r";
    let v = "Febrero 25 lunes, 2002, 02:03:04 p.m.";
    assert_eq!(parse(v, f, None, Some("es-ES")), Ok(Value::Time(utc(2002, 2, 25, 14, 3, 4, 0))));
    assert_eq!(
        parse("mercoledì set 4 2024", "%A %h %e %Y", None, Some("it")),
        Ok(Value::Time(utc(2024, 9, 4, 0, 0, 0, 0)))
    );
    assert_eq!(
        parse(v, f, Some("America/New_York"), Some("es-ES")),
        Ok(Value::Time(utc(2002, 2, 25, 19, 3, 4, 0)))
    );
    assert_eq!(
        parse("3. März 2024", "%e. %B %Y", None, Some("de-DE")),
        Ok(Value::Time(utc(2024, 3, 3, 0, 0, 0, 0)))
    );
}

/// Scenario: Time's run-time errors: a value not matching the format, an empty value, a non-string.
/// Guarantees: Go's parse error reported against the strptime format and directive; "time cannot be nil".
#[test]
fn time_errors() {
    assert_eq!(
        err_msg(parse("11/11/11", "%Y/%m/%d", None, None)),
        r#"parsing time "11/11/11" as "%Y/%m/%d": cannot parse "11/11/11" as "%Y""#
    );
    assert_eq!(err_msg(parse("", "%Y-%m-%dT%H:%M:%S", None, None)), "time cannot be nil");
    assert_eq!(
        err_msg(call_converter("Time", vec![Some(Value::Int(1)), s("%Y")])),
        "expected string but got int64"
    );
    assert_eq!(
        err_msg(parse("2023-13-01", "%Y-%m-%d", None, None)),
        r#"parsing time "2023-13-01": month out of range"#
    );
    assert_eq!(
        err_msg(parse("2023-02-30", "%Y-%m-%d", None, None)),
        r#"parsing time "2023-02-30": day out of range"#
    );
    assert_eq!(
        err_msg(parse("2023-01-01 extra", "%Y-%m-%d", None, None)),
        r#"parsing time "2023-01-01 extra": extra text: " extra""#
    );
    assert_eq!(
        err_msg(parse("2023-01-01", "%Y/%m/%d", None, None)),
        r#"parsing time "2023-01-01" as "%Y/%m/%d": cannot parse "-01-01" as "/""#
    );
    assert_eq!(
        err_msg(parse("12:00 XYZT", "%H:%M %Z", None, None)),
        "failed to load location XYZT: unknown time zone XYZT"
    );
}

/// Scenario: Time's bind-time checks (Test_TimeFormatError): empty format, unknown location, unsupported
/// locale, and the strptime validation.
/// Guarantees: the Collector's messages, raised before any value is parsed.
#[test]
fn time_prepare_errors() {
    let v = "2023-05-26 12:34:56";
    let f = "%Y-%m-%d %H:%M:%S";
    assert_eq!(err_msg(parse(v, "", None, None)), "format cannot be nil");
    assert_eq!(
        err_msg(parse(v, f, Some("Jupiter/Ganymede"), None)),
        "failed to load location Jupiter/Ganymede: unknown time zone Jupiter/Ganymede"
    );
    assert_eq!(
        err_msg(parse(v, f, None, Some("foo-bar"))),
        "unsupported locale 'foo-bar', value must be a supported BCP 47 language tag"
    );
    assert_eq!(err_msg(parse(v, "%Y-%m-%d 10", None, None)), "format string should not contain decimals");
    assert_eq!(
        err_msg(parse(v, "%H:%M:%S%L", None, None)),
        "invalid fractional seconds directive: 'S%L'. must be preceded with '.' or ','"
    );
    assert_eq!(
        err_msg(parse(v, "%Y %E %Q", None, None)),
        "invalid strptime format: [unsupported ctimefmt.toNative() directive: %E unsupported ctimefmt.toNative() directive: %Q]"
    );
}

/// Scenario: the lenient parsing the Collector adds (ctimefmt): missing leading zeros, space-padded
/// numbers, the three %z shapes, %D with a two- or four-digit year, fractions with and without a
/// directive, 12-hour clocks.
/// Guarantees: each value parses to the expected instant.
#[test]
fn time_lenient_parsing() {
    let cases: &[(&str, &str, i64)] = &[
        ("2023-4-5", "%Y-%m-%d", utc(2023, 4, 5, 0, 0, 0, 0)),
        ("2023- 4- 5", "%Y-%m-%d", utc(2023, 4, 5, 0, 0, 0, 0)),
        ("Jan  5 2023", "%b %e %Y", utc(2023, 1, 5, 0, 0, 0, 0)),
        ("2023-01-02T03:04:05Z", "%Y-%m-%dT%H:%M:%S%z", utc(2023, 1, 2, 3, 4, 5, 0)),
        ("2023-01-02T03:04:05+05:30", "%Y-%m-%dT%H:%M:%S%z", utc(2023, 1, 1, 21, 34, 5, 0)),
        ("2023-01-02T03:04:05-0700", "%Y-%m-%dT%H:%M:%S%z", utc(2023, 1, 2, 10, 4, 5, 0)),
        ("2023-01-02T03:04:05-07", "%Y-%m-%dT%H:%M:%S%z", utc(2023, 1, 2, 10, 4, 5, 0)),
        ("02/03/2024", "%D", utc(2024, 2, 3, 0, 0, 0, 0)),
        ("02/03/24", "%D", utc(2024, 2, 3, 0, 0, 0, 0)),
        ("2024-02-03 04:05:06.123", "%F %T.%L", utc(2024, 2, 3, 4, 5, 6, 123_000_000)),
        ("2024-02-03 04:05:06,123456", "%F %T,%f", utc(2024, 2, 3, 4, 5, 6, 123_456_000)),
        ("2024-02-03 04:05:06", "%F %T.%s", utc(2024, 2, 3, 4, 5, 6, 0)),
        ("2024-02-03 04:05:06.5", "%Y-%m-%d %H:%M:%S", utc(2024, 2, 3, 4, 5, 6, 500_000_000)),
        ("2024-02-03 04:05:06 PM", "%Y-%m-%d %I:%M:%S %p", utc(2024, 2, 3, 16, 5, 6, 0)),
        ("2024-02-03 12:05:06 am", "%Y-%m-%d %I:%M:%S %P", utc(2024, 2, 3, 0, 5, 6, 0)),
        ("Sat Feb 03 04:05:06 2024", "%c", utc(2024, 2, 3, 4, 5, 6, 0)),
        ("2024-02-03 04:05:06 +03:00", "%Y-%m-%d %H:%M:%S %j", utc(2024, 2, 3, 1, 5, 6, 0)),
        ("2024-02-03 04:05:06 UTC", "%Y-%m-%d %H:%M:%S %Z", utc(2024, 2, 3, 4, 5, 6, 0)),
        ("2024-02-03T04:05:06Z", "%Y-%m-%dT%H:%M:%SZ", utc(2024, 2, 3, 4, 5, 6, 0)),
    ];
    for (value, format, want) in cases {
        assert_eq!(parse(value, format, None, None), Ok(Value::Time(*want)), "{value} as {format}");
    }
}

/// Scenario: Time with formats lacking the year or the whole date.
/// Guarantees: a year-less date lands within the last year (or up to a week ahead); a time-only value
/// gets today's date (bounds checks around the current time).
#[test]
fn time_fills_missing_date() {
    let now = super::now_nanos();
    let Ok(Value::Time(t)) = parse("Mar 14 17:02:59", "%b %d %H:%M:%S", None, None) else {
        panic!("year-less")
    };
    assert!(t <= now + 8 * 86_400 * NS && t >= now - 367 * 86_400 * NS, "{t} vs {now}");
    let Ok(Value::Time(t)) = parse("10:20:30", "%H:%M:%S", None, None) else { panic!("time-only") };
    assert!((t - now).abs() <= 86_400 * NS, "{t} vs {now}");
    assert_eq!(Civil::from_unix_nanos(t).hour, 10);
}

/// Scenario: the Collector's FormatTime table (func_formattime_test.go), times in UTC.
/// Guarantees: the same strings as the Collector.
#[test]
fn format_time_table() {
    let cases: &[(i64, &str, &str)] = &[
        (utc(2023, 4, 12, 0, 0, 0, 0), "%Y-%m-%d", "2023-04-12"),
        (utc(2011, 11, 11, 0, 0, 0, 0), "%d/%m/%y", "11/11/11"),
        (utc(2023, 2, 4, 0, 0, 0, 0), "%m/%d/%Y", "02/04/2023"),
        (utc(1993, 7, 31, 0, 0, 0, 0), "%B %d, %Y", "July 31, 1993"),
        (utc(2023, 3, 14, 17, 2, 59, 0), "%b %d %Y %H:%M:%S", "Mar 14 2023 17:02:59"),
        (utc(2023, 5, 1, 0, 0, 0, 0), "%A, %B %d, %Y", "Monday, May 01, 2023"),
        (utc(2023, 5, 20, 0, 0, 0, 0), "%a, %b %d, %Y", "Sat, May 20, 2023"),
        (utc(2023, 2, 15, 0, 0, 0, 0), "%b %d, %Y", "Feb 15, 2023"),
        (utc(2023, 5, 26, 12, 34, 56, 0), "%Y-%m-%d %H:%M:%S", "2023-05-26 12:34:56"),
        (utc(2012, 11, 1, 22, 8, 41, 0), "%Y-%m-%dT%H:%M:%S", "2012-11-01T22:08:41"),
        (utc(1986, 10, 1, 0, 17, 33, 0), "%Y-%m-%dT%H:%M:%S", "1986-10-01T00:17:33"),
    ];
    for (t, format, want) in cases {
        assert_eq!(
            call_converter("FormatTime", vec![Some(Value::Time(*t)), s(format)]),
            Ok(Value::String((*want).into()))
        );
    }
}

/// Scenario: FormatTime with the remaining directives: zones, fractions, 12-hour clock, padding.
/// Guarantees: Go's layout output for a UTC time (ISO zones print Z, fractions drop trailing zeros).
#[test]
fn format_time_directives() {
    let t = utc(2024, 3, 5, 14, 7, 9, 120_000_000);
    let cases: &[(&str, &str)] = &[
        ("%z %Z", "Z UTC"),
        ("%i|%j|%k|%w", "+00|+00:00|+00:00:00|+000000"),
        ("%H:%M:%S.%L", "14:07:09.12"),
        ("%H:%M:%S,%f", "14:07:09,12"),
        ("%I:%M %p / %l %P", "02:07 PM / 2 pm"),
        ("[%e] [%g] [%q] [%o]", "[ 5] [5] [3] [_3]"),
        ("%F %T", "2024-03-05 14:07:09"),
        ("%D|%x|%R|%r", "03/05/2024|03/05/2024|14:07|02:07:09 pm"),
        ("%c", "Tue Mar 05 14:07:09 2024"),
        ("%h %B %a %A", "Mar March Tue Tuesday"),
        ("100%%%n%t", "100%\n\t"),
    ];
    for (format, want) in cases {
        let got = call_converter("FormatTime", vec![Some(Value::Time(t)), s(format)]);
        if format.starts_with("100") {
            // Digits are refused in formats.
            assert!(got.is_err());
            continue;
        }
        assert_eq!(got, Ok(Value::String((*want).into())), "{format}");
    }
    assert_eq!(go_format(&to_native("%%%n%t"), t), "%\n\t");
    // A whole second drops the fraction and its separator.
    assert_eq!(
        call_converter("FormatTime", vec![Some(Value::Time(utc(2024, 1, 1, 0, 0, 1, 0))), s("%S.%L")]),
        Ok(Value::String("01".into()))
    );
}

/// Scenario: FormatTime with an empty format, a non-time value and an invalid directive.
/// Guarantees: bind-time errors for the format, a type error for the value.
#[test]
fn format_time_errors() {
    assert_eq!(
        err_msg(call_converter("FormatTime", vec![Some(Value::Time(0)), s("")])),
        "format cannot be nil"
    );
    assert_eq!(
        err_msg(call_converter("FormatTime", vec![s("something"), s("%Y-%m-%d")])),
        "expected time.Time but got string"
    );
    assert_eq!(
        err_msg(call_converter("FormatTime", vec![Some(Value::Time(0)), s("%Y %E")])),
        "invalid strptime format: [unsupported ctimefmt.toNative() directive: %E]"
    );
}

/// Scenario: Now called once.
/// Guarantees: a time between two readings of the system clock taken around the call.
#[test]
fn now_bounds() {
    let before = super::now_nanos();
    let Ok(Value::Time(t)) = call_converter("Now", vec![]) else { panic!("Now") };
    let after = super::now_nanos();
    assert!(before <= t && t <= after);
}

/// Scenario: Unix with seconds only, with nanoseconds, negative, and non-int arguments.
/// Guarantees: time.Unix semantics; strict int typing.
#[test]
fn unix_table() {
    assert_eq!(
        call_converter("Unix", vec![Some(Value::Int(1_700_000_000))]),
        Ok(Value::Time(1_700_000_000 * NS))
    );
    assert_eq!(
        call_converter("Unix", vec![Some(Value::Int(1_700_000_000)), Some(Value::Int(5))]),
        Ok(Value::Time(1_700_000_000 * NS + 5))
    );
    assert_eq!(
        call_converter("Unix", vec![Some(Value::Int(-1)), Some(Value::Int(2 * NS))]),
        Ok(Value::Time(NS))
    );
    assert_eq!(err_msg(call_converter("Unix", vec![s("1")])), "expected int64 but got string");
    assert!(call_converter("Unix", vec![Some(Value::Int(i64::MAX))]).is_err());
}

/// Scenario: UnixSeconds, UnixMilli, UnixMicro and UnixNano of a time after and a time before the epoch.
/// Guarantees: Go's floor division for times before 1970; strict time typing.
#[test]
fn unix_getters() {
    let t = utc(2023, 5, 26, 12, 34, 56, 123_456_789);
    let int = |f: &str, t: i64| call_converter(f, vec![Some(Value::Time(t))]);
    assert_eq!(int("UnixSeconds", t), Ok(Value::Int(1_685_104_496)));
    assert_eq!(int("UnixMilli", t), Ok(Value::Int(1_685_104_496_123)));
    assert_eq!(int("UnixMicro", t), Ok(Value::Int(1_685_104_496_123_456)));
    assert_eq!(int("UnixNano", t), Ok(Value::Int(1_685_104_496_123_456_789)));
    assert_eq!(int("UnixSeconds", -1), Ok(Value::Int(-1)));
    assert_eq!(int("UnixMilli", -1), Ok(Value::Int(-1)));
    assert_eq!(int("UnixMicro", -1_500), Ok(Value::Int(-2)));
    for f in ["UnixSeconds", "UnixMilli", "UnixMicro", "UnixNano"] {
        assert_eq!(err_msg(call_converter(f, vec![s("x")])), "expected time.Time but got string");
    }
}

/// Scenario: the calendar getters (Year … Nanosecond, Weekday) on a fixed time, and on a non-time.
/// Guarantees: UTC fields, Sunday = 0; strict time typing (nil included).
#[test]
fn calendar_getters() {
    let t = Some(Value::Time(utc(2023, 5, 28, 13, 14, 15, 16)));
    let cases: &[(&str, i64)] = &[
        ("Year", 2023),
        ("Month", 5),
        ("Day", 28),
        ("Hour", 13),
        ("Minute", 14),
        ("Second", 15),
        ("Nanosecond", 16),
        ("Weekday", 0),
    ];
    for (f, want) in cases {
        assert_eq!(call_converter(f, vec![t.clone()]), Ok(Value::Int(*want)), "{f}");
        assert_eq!(err_msg(call_converter(f, vec![None])), "expected time.Time but got nil");
    }
    assert_eq!(
        call_converter("Weekday", vec![Some(Value::Time(utc(1969, 12, 31, 23, 0, 0, 0)))]),
        Ok(Value::Int(3))
    );
    assert_eq!(
        call_converter("Year", vec![Some(Value::Time(utc(1900, 3, 1, 0, 0, 0, 0)))]),
        Ok(Value::Int(1900))
    );
}

/// Scenario: Duration on Go duration strings (func_duration_test.go style rows).
/// Guarantees: time.ParseDuration's values, units ns/us/µs/ms/s/m/h, fractions and signs.
#[test]
fn duration_table() {
    let cases: &[(&str, i64)] = &[
        ("100ns", 100),
        ("1us", 1_000),
        ("1µs", 1_000),
        ("1μs", 1_000),
        ("1ms", 1_000_000),
        ("1s", NS),
        ("1m", 60 * NS),
        ("1h", 3600 * NS),
        ("1h2m3s", 3723 * NS),
        ("333ms", 333_000_000),
        ("1.5h", 5400 * NS),
        (".5s", NS / 2),
        ("1.s", NS),
        ("-5m", -300 * NS),
        ("+5s", 5 * NS),
        ("0", 0),
        ("-0", 0),
        ("2562047h47m16.854775807s", i64::MAX),
        ("-2562047h47m16.854775808s", i64::MIN),
    ];
    for (input, want) in cases {
        assert_eq!(call_converter("Duration", vec![s(input)]), Ok(Value::Duration(*want)), "{input}");
    }
}

/// Scenario: Duration on malformed strings and a non-string.
/// Guarantees: Go's messages (invalid duration, missing unit, unknown unit, overflow).
#[test]
fn duration_errors() {
    let cases: &[(&str, &str)] = &[
        ("", r#"time: invalid duration """#),
        ("one second", r#"time: invalid duration "one second""#),
        ("1", r#"time: missing unit in duration "1""#),
        ("1k", r#"time: unknown unit "k" in duration "1k""#),
        (".s", r#"time: invalid duration ".s""#),
        ("2562047h47m16.854775808s", r#"time: invalid duration "2562047h47m16.854775808s""#),
        ("9223372036854775808ns", r#"time: invalid duration "9223372036854775808ns""#),
    ];
    for (input, want) in cases {
        assert_eq!(parse_go_duration(input).err().as_deref(), Some(*want), "{input}");
        assert_eq!(err_msg(call_converter("Duration", vec![s(input)])), *want);
    }
    assert_eq!(
        err_msg(call_converter("Duration", vec![Some(Value::Int(3))])),
        "expected string but got int64"
    );
}

/// Scenario: Hours, Minutes, Seconds, Milliseconds, Microseconds, Nanoseconds on durations
/// (func_duration_to_*_test.go), including negative ones, and on a non-duration.
/// Guarantees: Go's float conversions and truncating integer divisions; strict duration typing.
#[test]
fn duration_converters() {
    let d = |v: i64| Some(Value::Duration(v));
    assert_eq!(call_converter("Hours", vec![d(5400 * NS)]), Ok(Value::Float(1.5)));
    assert_eq!(call_converter("Minutes", vec![d(90 * NS)]), Ok(Value::Float(1.5)));
    assert_eq!(call_converter("Seconds", vec![d(1_500_000_000)]), Ok(Value::Float(1.5)));
    assert_eq!(call_converter("Hours", vec![d(-1800 * NS)]), Ok(Value::Float(-0.5)));
    assert_eq!(call_converter("Milliseconds", vec![d(1_500_000_000)]), Ok(Value::Int(1500)));
    assert_eq!(call_converter("Microseconds", vec![d(1_500_000_000)]), Ok(Value::Int(1_500_000)));
    assert_eq!(call_converter("Nanoseconds", vec![d(1_500_000_000)]), Ok(Value::Int(1_500_000_000)));
    assert_eq!(call_converter("Milliseconds", vec![d(-1_999_999)]), Ok(Value::Int(-1)));
    for f in ["Hours", "Minutes", "Seconds", "Milliseconds", "Microseconds", "Nanoseconds"] {
        assert_eq!(err_msg(call_converter(f, vec![s("1s")])), "expected time.Duration but got string");
    }
}

/// Scenario: TruncateTime to a second, an hour, a day and by a non-positive duration
/// (func_truncate_time_test.go).
/// Guarantees: time.Truncate: multiples since year 1, unchanged for d <= 0; strict typing.
#[test]
fn truncate_time_table() {
    let t = utc(2022, 1, 1, 1, 1, 1, 1);
    let tr = |d: i64| call_converter("TruncateTime", vec![Some(Value::Time(t)), Some(Value::Duration(d))]);
    assert_eq!(tr(NS), Ok(Value::Time(utc(2022, 1, 1, 1, 1, 1, 0))));
    assert_eq!(tr(3600 * NS), Ok(Value::Time(utc(2022, 1, 1, 1, 0, 0, 0))));
    assert_eq!(tr(86_400 * NS), Ok(Value::Time(utc(2022, 1, 1, 0, 0, 0, 0))));
    assert_eq!(tr(0), Ok(Value::Time(t)));
    assert_eq!(tr(-NS), Ok(Value::Time(t)));
    // Before the epoch, still rounding down.
    let before = utc(1969, 12, 31, 23, 59, 59, 500_000_000);
    assert_eq!(
        call_converter("TruncateTime", vec![Some(Value::Time(before)), Some(Value::Duration(NS))]),
        Ok(Value::Time(utc(1969, 12, 31, 23, 59, 59, 0)))
    );
    assert_eq!(
        err_msg(call_converter("TruncateTime", vec![Some(Value::Time(t)), s("1s")])),
        "expected time.Duration but got string"
    );
}
