//! Times and durations: `Time`, `FormatTime`, `Now`, `Unix`, the `Unix*` and calendar-field getters,
//! `Duration` and the duration converters, and `TruncateTime`.
//!
//! `Time` and `FormatTime` take the Collector's strptime-like formats (its `ctimefmt` directives:
//! `%Y %y %m %o %q %b %h %B %d %e %g %a %A %H %l %I %p %P %M %S %L %f %s %Z %z %w %i %j %k %D %x %F %T %X
//! %r %R %n %t %%` and `%c`). As in the Collector, each directive stands for a Go layout element, and
//! parsing and formatting follow Go's `time.Parse` and `Time.Format` rules, including the Collector's
//! lenient parsing (optional leading zeros, leading spaces before numbers, several `%z` shapes, `%D` with
//! two- or four-digit years) and its error messages (`parsing time "…" as "%Y/%m/%d": cannot parse "…"
//! as "%Y"`).
//!
//! Time zones: `UTC`, the empty name and `Local` mean UTC (this process treats its local zone as UTC, as a
//! container usually is); any other name is looked up in the system's IANA database (/usr/share/zoneinfo),
//! which also serves the abbreviations `%Z` meets (`EST`, `MST`, `HST` …). Numeric offsets (`%z`) need no
//! database. Time values carry no zone here, so `FormatTime` and the calendar getters work in UTC.
//!
//! Locales (`Time`'s fourth argument): month and weekday names and AM/PM markers of en, de, es, fr, it
//! and pt (any region); other tags are refused as unsupported.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{Call, FunctionDef, Param, ParamType, Prepared, Run};
use crate::eval::EvalError;
use crate::value::Value;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "Time",
        params: &[
            Param { name: "time", ty: ParamType::StringGetter, optional: false },
            Param { name: "format", ty: ParamType::String, optional: false },
            Param { name: "location", ty: ParamType::String, optional: true },
            Param { name: "locale", ty: ParamType::String, optional: true },
        ],
        prepare: Some(prepare_time),
        run: Run::Converter(time_fn),
    },
    FunctionDef {
        name: "FormatTime",
        params: &[
            Param { name: "time", ty: ParamType::TimeGetter, optional: false },
            Param { name: "format", ty: ParamType::String, optional: false },
        ],
        prepare: Some(prepare_format_time),
        run: Run::Converter(format_time_fn),
    },
    FunctionDef { name: "Now", params: &[], prepare: None, run: Run::Converter(now_fn) },
    FunctionDef {
        name: "Unix",
        params: &[
            Param { name: "seconds", ty: ParamType::IntGetter, optional: false },
            Param { name: "nanoseconds", ty: ParamType::IntGetter, optional: true },
        ],
        prepare: None,
        run: Run::Converter(unix_fn),
    },
    FunctionDef { name: "UnixMicro", params: TIME, prepare: None, run: Run::Converter(unix_micro_fn) },
    FunctionDef { name: "UnixMilli", params: TIME, prepare: None, run: Run::Converter(unix_milli_fn) },
    FunctionDef { name: "UnixNano", params: TIME, prepare: None, run: Run::Converter(unix_nano_fn) },
    FunctionDef { name: "UnixSeconds", params: TIME, prepare: None, run: Run::Converter(unix_seconds_fn) },
    FunctionDef {
        name: "Duration",
        params: &[Param { name: "duration", ty: ParamType::StringGetter, optional: false }],
        prepare: None,
        run: Run::Converter(duration_fn),
    },
    FunctionDef { name: "Day", params: TIME, prepare: None, run: Run::Converter(day_fn) },
    FunctionDef { name: "Hour", params: TIME, prepare: None, run: Run::Converter(hour_fn) },
    FunctionDef { name: "Hours", params: DURATION, prepare: None, run: Run::Converter(hours_fn) },
    FunctionDef { name: "Minute", params: TIME, prepare: None, run: Run::Converter(minute_fn) },
    FunctionDef { name: "Minutes", params: DURATION, prepare: None, run: Run::Converter(minutes_fn) },
    FunctionDef { name: "Month", params: TIME, prepare: None, run: Run::Converter(month_fn) },
    FunctionDef { name: "Nanosecond", params: TIME, prepare: None, run: Run::Converter(nanosecond_fn) },
    FunctionDef { name: "Nanoseconds", params: DURATION, prepare: None, run: Run::Converter(nanoseconds_fn) },
    FunctionDef {
        name: "Microseconds",
        params: DURATION,
        prepare: None,
        run: Run::Converter(microseconds_fn),
    },
    FunctionDef {
        name: "Milliseconds",
        params: DURATION,
        prepare: None,
        run: Run::Converter(milliseconds_fn),
    },
    FunctionDef { name: "Second", params: TIME, prepare: None, run: Run::Converter(second_fn) },
    FunctionDef { name: "Seconds", params: DURATION, prepare: None, run: Run::Converter(seconds_fn) },
    FunctionDef {
        name: "TruncateTime",
        params: &[
            Param { name: "time", ty: ParamType::TimeGetter, optional: false },
            Param { name: "duration", ty: ParamType::DurationGetter, optional: false },
        ],
        prepare: None,
        run: Run::Converter(truncate_time_fn),
    },
    FunctionDef { name: "Weekday", params: TIME, prepare: None, run: Run::Converter(weekday_fn) },
    FunctionDef { name: "Year", params: TIME, prepare: None, run: Run::Converter(year_fn) },
];

const TIME: &[Param] = &[Param { name: "time", ty: ParamType::TimeGetter, optional: false }];
const DURATION: &[Param] = &[Param { name: "duration", ty: ParamType::DurationGetter, optional: false }];

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

// === calendar arithmetic (proleptic Gregorian, days counted from 1970-01-01) ===

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Months may be out of 1..=12 and days out of the month: they roll over as Go's time.Date does.
    let (year, month) = (year + (month - 1).div_euclid(12), (month - 1).rem_euclid(12) + 1);
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468 + (day - 1)
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A wall-clock reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
    nanos: i64,
}

impl Civil {
    /// The reading of a UTC clock at `secs` since the epoch (plus `nanos`).
    fn from_secs(secs: i64, nanos: i64) -> Self {
        let days = secs.div_euclid(SECS_PER_DAY);
        let rem = secs.rem_euclid(SECS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self { year, month, day, hour: rem / 3600, minute: rem % 3600 / 60, second: rem % 60, nanos }
    }

    fn from_unix_nanos(nanos: i64) -> Self {
        Self::from_secs(nanos.div_euclid(NANOS_PER_SEC), nanos.rem_euclid(NANOS_PER_SEC))
    }

    /// Seconds since the epoch if this reading were UTC.
    fn as_utc_secs(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * SECS_PER_DAY
            + self.hour * 3600
            + self.minute * 60
            + self.second
    }

    /// 0 for Sunday.
    fn weekday(&self) -> i64 {
        (days_from_civil(self.year, self.month, self.day) + 4).rem_euclid(7)
    }

    /// 1 for January 1st.
    fn year_day(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) - days_from_civil(self.year, 1, 1) + 1
    }
}

fn now_nanos() -> i64 {
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

// === zones ===

/// A time's location, as Go's `*time.Location`.
#[derive(Clone, Debug)]
enum Zone {
    Utc,
    Tz(TimeZone),
    /// Go's `FixedZone(name, offset)`.
    Fixed(String, i32),
}

impl Zone {
    /// Go's `time.LoadLocation`.
    fn load(name: &str) -> Result<Self, String> {
        match name {
            "" | "UTC" | "Local" => Ok(Self::Utc),
            _ => TimeZone::get(name).map(Self::Tz).map_err(|_| format!("unknown time zone {name}")),
        }
    }

    fn timestamp(secs: i64) -> Option<Timestamp> {
        Timestamp::from_second(secs).ok()
    }

    fn offset_at(&self, secs: i64) -> i32 {
        match self {
            Self::Utc => 0,
            Self::Fixed(_, off) => *off,
            Self::Tz(tz) => Self::timestamp(secs).map_or(0, |ts| tz.to_offset(ts).seconds()),
        }
    }

    fn abbreviation_at(&self, secs: i64) -> String {
        match self {
            Self::Utc => "UTC".into(),
            Self::Fixed(name, _) => name.clone(),
            Self::Tz(tz) => Self::timestamp(secs)
                .map_or_else(String::new, |ts| tz.to_offset_info(ts).abbreviation().into()),
        }
    }

    /// The instant at which this zone's clocks read `civil` (Go's `time.Date` choice in gaps and overlaps).
    fn resolve(&self, civil: &Civil) -> i64 {
        let unix = civil.as_utc_secs();
        let offset = self.offset_at(unix);
        if offset == 0 {
            return unix;
        }
        let utc = unix - i64::from(offset);
        let corrected = self.offset_at(utc);
        unix - i64::from(if corrected != offset { corrected } else { offset })
    }

    /// Go's `Location.lookupName`: the offset of a zone abbreviation, preferring one in effect near `unix`.
    fn lookup_name(&self, name: &str, unix: i64) -> Option<i32> {
        match self {
            Self::Utc => (name == "UTC").then_some(0),
            Self::Fixed(n, off) => (n == name).then_some(*off),
            Self::Tz(tz) => {
                let now = Self::timestamp(unix)?;
                let mut zones: Vec<(String, i32)> = Vec::new();
                let mut preceding: Vec<(String, i32)> =
                    tz.preceding(now).map(|t| (t.abbreviation().to_owned(), t.offset().seconds())).collect();
                preceding.reverse();
                let current = tz.to_offset_info(now);
                let following =
                    tz.following(now).take(64).map(|t| (t.abbreviation().to_owned(), t.offset().seconds()));
                for z in preceding
                    .into_iter()
                    .chain(std::iter::once((current.abbreviation().to_owned(), current.offset().seconds())))
                    .chain(following)
                {
                    if !zones.contains(&z) {
                        zones.push(z);
                    }
                }
                let named = zones.iter().filter(|(n, _)| n == name);
                for (_, off) in named.clone() {
                    if self.abbreviation_at(unix - i64::from(*off)) == name {
                        return Some(*off);
                    }
                }
                named.map(|(_, off)| *off).next()
            }
        }
    }
}

// === Go layouts ===

/// One element of a Go layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    PmLower,
    Tz,
    Iso8601Tz,
    Iso8601SecondsTz,
    Iso8601ShortTz,
    Iso8601ColonTz,
    Iso8601ColonSecondsTz,
    NumTz,
    NumSecondsTz,
    NumShortTz,
    NumColonTz,
    NumColonSecondsTz,
    /// Fractional seconds with trailing zeros kept: separator and digit count.
    Frac0(u8, usize),
    /// Fractional seconds with trailing zeros dropped.
    Frac9(u8, usize),
}

/// Splits `layout` at its first element: the literal text before it, the element, the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let at = |i: usize, s: &str| layout.get(i..).is_some_and(|rest| rest.starts_with(s));
    let starts_lower = |i: usize| b.get(i).is_some_and(u8::is_ascii_lowercase);
    for i in 0..b.len() {
        let found: Option<(Std, usize)> = match b[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    Some((Std::LongMonth, 7))
                } else if !starts_lower(i + 3) {
                    Some((Std::Month, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    Some((Std::LongWeekDay, 6))
                } else if !starts_lower(i + 3) {
                    Some((Std::WeekDay, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "MST") => Some((Std::Tz, 3)),
            b'0' if matches!(b.get(i + 1), Some(b'1'..=b'6')) => {
                let std = match b[i + 1] {
                    b'1' => Std::ZeroMonth,
                    b'2' => Std::ZeroDay,
                    b'3' => Std::ZeroHour12,
                    b'4' => Std::ZeroMinute,
                    b'5' => Std::ZeroSecond,
                    _ => Std::Year,
                };
                Some((std, 2))
            }
            b'0' if at(i, "002") => Some((Std::ZeroYearDay, 3)),
            b'1' if at(i, "15") => Some((Std::Hour, 2)),
            b'1' => Some((Std::NumMonth, 1)),
            b'2' if at(i, "2006") => Some((Std::LongYear, 4)),
            b'2' => Some((Std::Day, 1)),
            b'_' if at(i, "_2") => {
                if at(i, "_2006") {
                    // A literal underscore before a four-digit year.
                    return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                }
                Some((Std::UnderDay, 2))
            }
            b'_' if at(i, "__2") => Some((Std::UnderYearDay, 3)),
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if at(i, "PM") => Some((Std::Pm, 2)),
            b'p' if at(i, "pm") => Some((Std::PmLower, 2)),
            b'-' if at(i, "-070000") => Some((Std::NumSecondsTz, 7)),
            b'-' if at(i, "-07:00:00") => Some((Std::NumColonSecondsTz, 9)),
            b'-' if at(i, "-0700") => Some((Std::NumTz, 5)),
            b'-' if at(i, "-07:00") => Some((Std::NumColonTz, 6)),
            b'-' if at(i, "-07") => Some((Std::NumShortTz, 3)),
            b'Z' if at(i, "Z070000") => Some((Std::Iso8601SecondsTz, 7)),
            b'Z' if at(i, "Z07:00:00") => Some((Std::Iso8601ColonSecondsTz, 9)),
            b'Z' if at(i, "Z0700") => Some((Std::Iso8601Tz, 5)),
            b'Z' if at(i, "Z07:00") => Some((Std::Iso8601ColonTz, 6)),
            b'Z' if at(i, "Z07") => Some((Std::Iso8601ShortTz, 3)),
            sep @ (b'.' | b',') if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let ch = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == ch {
                    j += 1;
                }
                // Only a run of one repeated digit, not followed by another digit, is a fraction.
                if b.get(j).is_some_and(u8::is_ascii_digit) {
                    None
                } else {
                    let n = j - (i + 1);
                    let std = if ch == b'0' { Std::Frac0(sep, n) } else { Std::Frac9(sep, n) };
                    return (&layout[..i], Some(std), &layout[j..]);
                }
            }
            _ => None,
        };
        if let Some((std, len)) = found {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
    }
    (layout, None, "")
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

/// Go's `appendInt`: zero-padded to `width`, a minus sign first.
fn push_int(out: &mut String, v: i64, width: usize) {
    if v < 0 {
        out.push('-');
    }
    let _ = write!(out, "{:0width$}", v.unsigned_abs());
}

/// Go's `Time.Format` for a UTC time.
fn go_format(layout: &str, unix_nanos: i64) -> String {
    let c = Civil::from_unix_nanos(unix_nanos);
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout;
    loop {
        let (prefix, std, suffix) = next_std_chunk(rest);
        out.push_str(prefix);
        let Some(std) = std else { break };
        rest = suffix;
        let hour12 = if c.hour % 12 == 0 { 12 } else { c.hour % 12 };
        match std {
            Std::Year => push_int(&mut out, c.year.abs() % 100, 2),
            Std::LongYear => push_int(&mut out, c.year, 4),
            Std::Month => out.push_str(&LONG_MONTHS[(c.month - 1) as usize][..3]),
            Std::LongMonth => out.push_str(LONG_MONTHS[(c.month - 1) as usize]),
            Std::NumMonth => push_int(&mut out, c.month, 0),
            Std::ZeroMonth => push_int(&mut out, c.month, 2),
            Std::WeekDay => out.push_str(&LONG_DAYS[c.weekday() as usize][..3]),
            Std::LongWeekDay => out.push_str(LONG_DAYS[c.weekday() as usize]),
            Std::Day => push_int(&mut out, c.day, 0),
            Std::UnderDay => {
                if c.day < 10 {
                    out.push(' ');
                }
                push_int(&mut out, c.day, 0);
            }
            Std::ZeroDay => push_int(&mut out, c.day, 2),
            Std::UnderYearDay => {
                let yd = c.year_day();
                if yd < 100 {
                    out.push(' ');
                    if yd < 10 {
                        out.push(' ');
                    }
                }
                push_int(&mut out, yd, 0);
            }
            Std::ZeroYearDay => push_int(&mut out, c.year_day(), 3),
            Std::Hour => push_int(&mut out, c.hour, 2),
            Std::Hour12 => push_int(&mut out, hour12, 0),
            Std::ZeroHour12 => push_int(&mut out, hour12, 2),
            Std::Minute => push_int(&mut out, c.minute, 0),
            Std::ZeroMinute => push_int(&mut out, c.minute, 2),
            Std::Second => push_int(&mut out, c.second, 0),
            Std::ZeroSecond => push_int(&mut out, c.second, 2),
            Std::Pm => out.push_str(if c.hour >= 12 { "PM" } else { "AM" }),
            Std::PmLower => out.push_str(if c.hour >= 12 { "pm" } else { "am" }),
            // The time is UTC: the ISO 8601 forms print "Z", the numeric ones a zero offset.
            Std::Iso8601Tz
            | Std::Iso8601SecondsTz
            | Std::Iso8601ShortTz
            | Std::Iso8601ColonTz
            | Std::Iso8601ColonSecondsTz => out.push('Z'),
            Std::NumTz => out.push_str("+0000"),
            Std::NumSecondsTz => out.push_str("+000000"),
            Std::NumShortTz => out.push_str("+00"),
            Std::NumColonTz => out.push_str("+00:00"),
            Std::NumColonSecondsTz => out.push_str("+00:00:00"),
            Std::Tz => out.push_str("UTC"),
            Std::Frac0(sep, n) | Std::Frac9(sep, n) => {
                let trim = matches!(std, Std::Frac9(..));
                if trim && (n == 0 || c.nanos == 0) {
                    continue;
                }
                let digits = format!("{:09}", c.nanos);
                let mut frac: String = digits.chars().take(n.min(9)).collect();
                if trim {
                    while frac.ends_with('0') {
                        frac.pop();
                    }
                    if frac.is_empty() {
                        continue;
                    }
                }
                out.push(char::from(sep));
                out.push_str(&frac);
            }
        }
    }
    out
}

/// Go's `time.ParseError`.
#[derive(Clone, Debug, PartialEq)]
struct ParseError {
    layout: String,
    value: String,
    layout_elem: String,
    value_elem: String,
    message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.message.is_empty() {
            write!(
                f,
                "parsing time {} as {}: cannot parse {} as {}",
                go_quote(&self.value),
                go_quote(&self.layout),
                go_quote(&self.value_elem),
                go_quote(&self.layout_elem)
            )
        } else {
            write!(f, "parsing time {}{}", go_quote(&self.value), self.message)
        }
    }
}

/// Why a parse failed: Go's `ParseError`, or another error (an unknown zone abbreviation).
#[derive(Clone, Debug)]
enum ParseFailure {
    Layout(ParseError),
    Other(String),
}

impl std::fmt::Display for ParseFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Layout(e) => e.fmt(f),
            Self::Other(e) => f.write_str(e),
        }
    }
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
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A parse that Go would accept: the instant and the location the time carries.
#[derive(Clone, Debug)]
struct Parsed {
    secs: i64,
    nanos: i64,
    zone: Zone,
}

impl Parsed {
    /// The wall clock in the time's own location.
    fn civil(&self) -> Civil {
        Civil::from_secs(self.secs + i64::from(self.zone.offset_at(self.secs)), self.nanos)
    }

    fn unix_nanos(&self) -> Option<i64> {
        self.secs.checked_mul(NANOS_PER_SEC)?.checked_add(self.nanos)
    }
}

fn is_digit(v: &[u8], i: usize) -> bool {
    v.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(v: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    if !is_digit(v, 0) {
        return None;
    }
    if !is_digit(v, 1) {
        if fixed {
            return None;
        }
        return Some((i64::from(v[0] - b'0'), &v[1..]));
    }
    Some((i64::from(v[0] - b'0') * 10 + i64::from(v[1] - b'0'), &v[2..]))
}

/// Go's `getnum3`: one to three digits (exactly three when `fixed`).
fn getnum3(v: &[u8], fixed: bool) -> Option<(i64, &[u8])> {
    let mut n = 0;
    let mut i = 0;
    while i < 3 && is_digit(v, i) {
        n = n * 10 + i64::from(v[i] - b'0');
        i += 1;
    }
    if i == 0 || (fixed && i != 3) {
        return None;
    }
    Some((n, &v[i..]))
}

/// Go's `atoi`: an optional sign and digits, nothing else.
fn go_atoi(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut x: i64 = 0;
    for &d in digits {
        x = x.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if neg { -x } else { x })
}

/// Go's `parseNanoseconds`: the separator and up to nine digits of `v[..n]`.
fn parse_nanos(v: &[u8], n: usize) -> Result<i64, ()> {
    if !matches!(v.first(), Some(b'.' | b',')) {
        return Err(());
    }
    let n = n.min(10);
    let mut ns = go_atoi(&v[1..n]).ok_or(())?;
    if ns < 0 {
        return Err(());
    }
    for _ in 0..10 - n {
        ns *= 10;
    }
    Ok(ns)
}

/// Go's `parseTimeZone`: the length of a zone abbreviation at the start of `v`.
fn parse_time_zone(v: &[u8]) -> Option<usize> {
    if v.len() < 3 {
        return None;
    }
    if v.starts_with(b"ChST") || v.starts_with(b"MeST") {
        return Some(4);
    }
    if v.starts_with(b"GMT") {
        return Some(3 + parse_signed_offset(&v[3..]));
    }
    if v[0] == b'+' || v[0] == b'-' {
        let n = parse_signed_offset(v);
        return (n > 0).then_some(n);
    }
    let upper = v.iter().take(6).take_while(|c| c.is_ascii_uppercase()).count();
    match upper {
        3 => Some(3),
        4 if v[3] == b'T' || v.starts_with(b"WITA") => Some(4),
        5 if v[4] == b'T' => Some(5),
        _ => None,
    }
}

/// Go's `parseSignedOffset`: `+h`/`-h` with an hour up to 12.
fn parse_signed_offset(v: &[u8]) -> usize {
    if !matches!(v.first(), Some(b'+' | b'-')) {
        return 0;
    }
    let digits = v[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return 0;
    }
    match go_atoi(&v[1..1 + digits]) {
        Some(x) if x <= 12 => 1 + digits,
        _ => 0,
    }
}

/// Go's `skip`: matches the literal `prefix`, a space matching any run of spaces. Returns the rest of
/// the value, or the value where matching failed.
fn skip<'v>(mut value: &'v [u8], prefix: &str) -> Result<&'v [u8], &'v [u8]> {
    let mut prefix = prefix.as_bytes();
    while let Some(&p) = prefix.first() {
        if p == b' ' {
            if value.first().is_some_and(|&c| c != b' ') {
                return Err(value);
            }
            prefix = trim_spaces(prefix);
            value = trim_spaces(value);
            continue;
        }
        if value.first() != Some(&p) {
            return Err(value);
        }
        prefix = &prefix[1..];
        value = &value[1..];
    }
    Ok(value)
}

fn trim_spaces(v: &[u8]) -> &[u8] {
    let n = v.iter().take_while(|&&c| c == b' ').count();
    &v[n..]
}

/// Case-insensitive ASCII match of the first name of `tab` that prefixes `v`.
fn lookup_name(tab: &[&str], v: &[u8]) -> Option<(usize, usize)> {
    tab.iter()
        .position(|name| v.len() >= name.len() && v[..name.len()].eq_ignore_ascii_case(name.as_bytes()))
        .map(|i| (i, tab[i].len()))
}

fn lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// Go's `time.ParseInLocation(layout, value, loc)`, with localized names when `locale` is given.
fn go_parse(layout: &str, value: &str, loc: &Zone, locale: Option<&Locale>) -> Result<Parsed, ParseFailure> {
    let err = |layout_elem: &str, value_elem: &[u8], message: String| {
        ParseFailure::Layout(ParseError {
            layout: layout.to_owned(),
            value: value.to_owned(),
            layout_elem: layout_elem.to_owned(),
            value_elem: lossy(value_elem),
            message,
        })
    };
    let short_months: Vec<&str> = LONG_MONTHS.iter().map(|m| &m[..3]).collect();
    let short_days: Vec<&str> = LONG_DAYS.iter().map(|d| &d[..3]).collect();

    let mut rest = layout;
    let mut v = value.as_bytes();
    let (mut am, mut pm) = (false, false);
    let (mut year, mut month, mut day, mut yday) = (0i64, -1i64, -1i64, -1i64);
    let (mut hour, mut minute, mut second, mut nanos) = (0i64, 0i64, 0i64, 0i64);
    let mut utc = false;
    let mut zone_offset: Option<i64> = None;
    let mut zone_name = String::new();

    loop {
        let (prefix, std, suffix) = next_std_chunk(rest);
        let std_str = &rest[prefix.len()..rest.len() - suffix.len()];
        v = skip(v, prefix).map_err(|at| err(prefix, at, String::new()))?;
        let Some(std) = std else {
            if !v.is_empty() {
                return Err(err("", v, format!(": extra text: {}", go_quote(&lossy(v)))));
            }
            break;
        };
        rest = suffix;
        let hold = v;
        let mut range: Option<&str> = None;
        let ok: Option<()> = (|| {
            match std {
                Std::Year => {
                    let p = v.get(..2)?;
                    year = go_atoi(p)?;
                    year += if year >= 69 { 1900 } else { 2000 };
                    v = &v[2..];
                }
                Std::LongYear => {
                    if v.len() < 4 || !is_digit(v, 0) {
                        return None;
                    }
                    year = go_atoi(&v[..4])?;
                    v = &v[4..];
                }
                Std::Month | Std::LongMonth => {
                    let (i, n) = match locale {
                        Some(l) => {
                            let alts = if std == Std::Month { l.short_months } else { l.long_months };
                            l.lookup(alts, v)?
                        }
                        None if std == Std::Month => lookup_name(&short_months, v)?,
                        None => lookup_name(&LONG_MONTHS, v)?,
                    };
                    month = i as i64 + 1;
                    v = &v[n..];
                }
                Std::NumMonth | Std::ZeroMonth => {
                    let (m, r) = getnum(v, std == Std::ZeroMonth)?;
                    month = m;
                    v = r;
                    if !(1..=12).contains(&month) {
                        range = Some("month");
                    }
                }
                Std::WeekDay | Std::LongWeekDay => {
                    let (_, n) = match locale {
                        Some(l) => {
                            let alts = if std == Std::WeekDay { l.short_days } else { l.long_days };
                            l.lookup(alts, v)?
                        }
                        None if std == Std::WeekDay => lookup_name(&short_days, v)?,
                        None => lookup_name(&LONG_DAYS, v)?,
                    };
                    v = &v[n..];
                }
                Std::Day | Std::UnderDay | Std::ZeroDay => {
                    if std == Std::UnderDay && v.first() == Some(&b' ') {
                        v = &v[1..];
                    }
                    let (d, r) = getnum(v, std == Std::ZeroDay)?;
                    day = d;
                    v = r;
                }
                Std::UnderYearDay | Std::ZeroYearDay => {
                    for _ in 0..2 {
                        if std == Std::UnderYearDay && v.first() == Some(&b' ') {
                            v = &v[1..];
                        }
                    }
                    let (d, r) = getnum3(v, std == Std::ZeroYearDay)?;
                    yday = d;
                    v = r;
                }
                Std::Hour => {
                    let (h, r) = getnum(v, false)?;
                    hour = h;
                    v = r;
                    if !(0..24).contains(&hour) {
                        range = Some("hour");
                    }
                }
                Std::Hour12 | Std::ZeroHour12 => {
                    let (h, r) = getnum(v, std == Std::ZeroHour12)?;
                    hour = h;
                    v = r;
                    if !(0..=12).contains(&hour) {
                        range = Some("hour");
                    }
                }
                Std::Minute | Std::ZeroMinute => {
                    let (m, r) = getnum(v, std == Std::ZeroMinute)?;
                    minute = m;
                    v = r;
                    if !(0..60).contains(&minute) {
                        range = Some("minute");
                    }
                }
                Std::Second | Std::ZeroSecond => {
                    let (s, r) = getnum(v, std == Std::ZeroSecond)?;
                    second = s;
                    v = r;
                    if !(0..60).contains(&second) {
                        range = Some("second");
                        return Some(());
                    }
                    // A fraction in the value that the layout does not spell out is taken anyway.
                    if v.len() >= 2 && matches!(v[0], b'.' | b',') && is_digit(v, 1) {
                        let (_, next, _) = next_std_chunk(rest);
                        if !matches!(next, Some(Std::Frac0(..) | Std::Frac9(..))) {
                            let mut n = 2;
                            while is_digit(v, n) {
                                n += 1;
                            }
                            nanos = parse_nanos(v, n).ok()?;
                            v = &v[n..];
                        }
                    }
                }
                Std::Pm | Std::PmLower => {
                    if let Some(l) = locale {
                        let (i, n) = l.lookup(&[l.am, l.pm], v)?;
                        if i == 1 {
                            pm = true;
                        } else {
                            am = true;
                        }
                        v = &v[n..];
                    } else {
                        let p = v.get(..2)?;
                        let (am_s, pm_s): (&[u8], &[u8]) =
                            if std == Std::Pm { (b"AM", b"PM") } else { (b"am", b"pm") };
                        if p == pm_s {
                            pm = true;
                        } else if p == am_s {
                            am = true;
                        } else {
                            return None;
                        }
                        v = &v[2..];
                    }
                }
                Std::Iso8601Tz
                | Std::Iso8601SecondsTz
                | Std::Iso8601ShortTz
                | Std::Iso8601ColonTz
                | Std::Iso8601ColonSecondsTz
                | Std::NumTz
                | Std::NumSecondsTz
                | Std::NumShortTz
                | Std::NumColonTz
                | Std::NumColonSecondsTz => {
                    let iso = matches!(
                        std,
                        Std::Iso8601Tz
                            | Std::Iso8601SecondsTz
                            | Std::Iso8601ShortTz
                            | Std::Iso8601ColonTz
                            | Std::Iso8601ColonSecondsTz
                    );
                    if iso && v.first() == Some(&b'Z') {
                        v = &v[1..];
                        utc = true;
                        return Some(());
                    }
                    let (sign, hh, mm, ss, r): (u8, &[u8], &[u8], &[u8], &[u8]) = match std {
                        Std::Iso8601ColonTz | Std::NumColonTz => {
                            if v.len() < 6 || v[3] != b':' {
                                return None;
                            }
                            (v[0], &v[1..3], &v[4..6], b"00", &v[6..])
                        }
                        Std::NumShortTz | Std::Iso8601ShortTz => {
                            if v.len() < 3 {
                                return None;
                            }
                            (v[0], &v[1..3], b"00", b"00", &v[3..])
                        }
                        Std::Iso8601ColonSecondsTz | Std::NumColonSecondsTz => {
                            if v.len() < 9 || v[3] != b':' || v[6] != b':' {
                                return None;
                            }
                            (v[0], &v[1..3], &v[4..6], &v[7..9], &v[9..])
                        }
                        Std::Iso8601SecondsTz | Std::NumSecondsTz => {
                            if v.len() < 7 {
                                return None;
                            }
                            (v[0], &v[1..3], &v[3..5], &v[5..7], &v[7..])
                        }
                        _ => {
                            if v.len() < 5 {
                                return None;
                            }
                            (v[0], &v[1..3], &v[3..5], b"00", &v[5..])
                        }
                    };
                    let (h, _) = getnum(hh, true)?;
                    let (m, _) = getnum(mm, true)?;
                    let (s, _) = getnum(ss, true)?;
                    if h > 24 {
                        range = Some("time zone offset hour");
                    }
                    if m > 60 {
                        range = Some("time zone offset minute");
                    }
                    if s > 60 {
                        range = Some("time zone offset second");
                    }
                    let off = (h * 60 + m) * 60 + s;
                    zone_offset = Some(match sign {
                        b'+' => off,
                        b'-' => -off,
                        _ => return None,
                    });
                    v = r;
                }
                Std::Tz => {
                    if v.starts_with(b"UTC") {
                        utc = true;
                        v = &v[3..];
                        return Some(());
                    }
                    let n = parse_time_zone(v)?;
                    zone_name = lossy(&v[..n]);
                    v = &v[n..];
                }
                Std::Frac0(_, digits) => {
                    let n = 1 + digits;
                    if v.len() < n {
                        return None;
                    }
                    nanos = parse_nanos(v, n).ok()?;
                    v = &v[n..];
                }
                Std::Frac9(..) => {
                    if v.len() < 2 || !matches!(v[0], b'.' | b',') || !is_digit(v, 1) {
                        return Some(());
                    }
                    let mut i = 0;
                    while is_digit(v, i + 1) {
                        i += 1;
                    }
                    nanos = parse_nanos(v, 1 + i).ok()?;
                    v = &v[1 + i..];
                }
            }
            Some(())
        })();
        if let Some(r) = range {
            return Err(err(std_str, v, format!(": {r} out of range")));
        }
        if ok.is_none() {
            return Err(err(std_str, hold, String::new()));
        }
    }

    if pm && hour < 12 {
        hour += 12;
    } else if am && hour == 12 {
        hour = 0;
    }
    if yday >= 0 {
        let mut m = 0;
        let mut d = 0;
        let mut yd = yday;
        if is_leap(year) {
            if yd == 31 + 29 {
                m = 2;
                d = 29;
            } else if yd > 31 + 29 {
                yd -= 1;
            }
        }
        if !(1..=365).contains(&yd) {
            return Err(err("", v, ": day-of-year out of range".into()));
        }
        if m == 0 {
            let before = |month: i64| days_from_civil(2001, month, 1) - days_from_civil(2001, 1, 1);
            m = (yd - 1) / 31 + 1;
            if m < 12 && before(m + 1) < yd {
                m += 1;
            }
            d = yd - before(m);
        }
        if month >= 0 && month != m {
            return Err(err("", v, ": day-of-year does not match month".into()));
        }
        month = m;
        if day >= 0 && day != d {
            return Err(err("", v, ": day-of-year does not match day".into()));
        }
        day = d;
    } else {
        if month < 0 {
            month = 1;
        }
        if day < 0 {
            day = 1;
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(err("", v, ": day out of range".into()));
    }

    let civil = Civil { year, month, day, hour, minute, second, nanos };
    if utc {
        return Ok(Parsed { secs: civil.as_utc_secs(), nanos, zone: Zone::Utc });
    }
    if let Some(off) = zone_offset {
        let secs = civil.as_utc_secs() - off;
        if i64::from(loc.offset_at(secs)) == off
            && (zone_name.is_empty() || loc.abbreviation_at(secs) == zone_name)
        {
            return Ok(Parsed { secs, nanos, zone: loc.clone() });
        }
        let off = i32::try_from(off).unwrap_or_default();
        return Ok(Parsed { secs, nanos, zone: Zone::Fixed(zone_name, off) });
    }
    if !zone_name.is_empty() {
        let as_utc = civil.as_utc_secs();
        if let Some(off) = loc.lookup_name(&zone_name, as_utc) {
            return Ok(Parsed { secs: as_utc - i64::from(off), nanos, zone: loc.clone() });
        }
        // An unknown abbreviation: Go records the clock reading as UTC in a made-up zone.
        let mut off = 0;
        if zone_name.len() > 3 && zone_name.starts_with("GMT") {
            off = go_atoi(&zone_name.as_bytes()[3..]).unwrap_or_default() * 3600;
        }
        let off = i32::try_from(off).unwrap_or_default();
        return Ok(Parsed { secs: as_utc, nanos, zone: Zone::Fixed(zone_name, off) });
    }
    Ok(Parsed { secs: loc.resolve(&civil), nanos, zone: loc.clone() })
}

/// The Collector's `parseGotime`: a time whose zone abbreviation came out with a zero offset is parsed
/// again in the location of that name.
fn parse_gotime_in(
    layout: &str,
    value: &str,
    loc: &Zone,
    locale: Option<&Locale>,
) -> Result<Parsed, ParseFailure> {
    let result = go_parse(layout, value, loc, locale)?;
    let zone = result.zone.abbreviation_at(result.secs);
    let offset = result.zone.offset_at(result.secs);
    if offset != 0 || zone == "UTC" || zone == loc.abbreviation_at(result.secs) {
        return Ok(result);
    }
    let named =
        Zone::load(&zone).map_err(|e| ParseFailure::Other(format!("failed to load location {zone}: {e}")))?;
    Ok(go_parse(layout, value, &named, locale).unwrap_or(result))
}

/// Layout elements that make a layout carry a date.
const DATE_ELEMENTS: [&str; 11] =
    ["2006", "06", "January", "Jan", "01", "_1", "02", "_2", "Monday", "Mon", "002"];

/// The Collector's `ParseGotime`: a time-only layout gets today's date, a year-less one this year.
fn parse_gotime(layout: &str, value: &str, loc: &Zone, locale: Option<&Locale>) -> Result<i64, ParseFailure> {
    let parsed = parse_gotime_in(layout, value, loc, locale)?;
    let clock = parsed.civil();
    let now = now_nanos();
    let today = Civil::from_unix_nanos(now);
    let resolved = if !DATE_ELEMENTS.iter().any(|e| layout.contains(e)) {
        let civil = Civil { year: today.year, month: today.month, day: today.day, ..clock };
        Parsed { secs: parsed.zone.resolve(&civil), ..parsed }
    } else if clock.year > 0 {
        parsed
    } else {
        let mut civil = Civil { year: today.year, ..clock };
        let mut secs = parsed.zone.resolve(&normalized(civil));
        // A date more than a week ahead is taken to be last year's.
        if secs.saturating_mul(NANOS_PER_SEC).saturating_add(clock.nanos)
            > now.saturating_add(7 * SECS_PER_DAY * NANOS_PER_SEC)
        {
            civil.year -= 1;
            secs = parsed.zone.resolve(&normalized(civil));
        }
        Parsed { secs, ..parsed }
    };
    resolved.unix_nanos().ok_or_else(|| {
        ParseFailure::Other(format!(
            "parsing time {}: the time is outside the representable range (years 1678 to 2262)",
            go_quote(value)
        ))
    })
}

/// A reading with its day rolled into the following month where the month is shorter (Go's `Date`).
fn normalized(c: Civil) -> Civil {
    let (year, month, day) = civil_from_days(days_from_civil(c.year, c.month, c.day));
    Civil { year, month, day, ..c }
}

// === strptime directives (the Collector's ctimefmt) ===

/// The Go layout a directive stands for.
fn substitute(directive: &str) -> Option<&'static str> {
    Some(match directive {
        "%Y" => "2006",
        "%y" => "06",
        "%m" => "01",
        "%o" => "_1",
        "%q" => "1",
        "%b" | "%h" => "Jan",
        "%B" => "January",
        "%d" => "02",
        "%e" => "_2",
        "%g" => "2",
        "%a" => "Mon",
        "%A" => "Monday",
        "%H" => "15",
        "%l" => "3",
        "%I" => "03",
        "%p" => "PM",
        "%P" => "pm",
        "%M" => "04",
        "%S" => "05",
        "%L" => "999",
        "%f" => "999999",
        "%s" => "999999999",
        "%Z" => "MST",
        "%z" => "Z0700",
        "%w" => "-070000",
        "%i" => "-07",
        "%j" => "-07:00",
        "%k" => "-07:00:00",
        "%D" | "%x" => "01/02/2006",
        "%F" => "2006-01-02",
        "%T" | "%X" => "15:04:05",
        "%r" => "03:04:05 pm",
        "%R" => "15:04",
        "%n" => "\n",
        "%t" => "\t",
        "%%" => "%",
        "%c" => "Mon Jan 02 15:04:05 2006",
        _ => return None,
    })
}

/// The lenient alternatives tried when parsing, each split into its layout elements.
fn parse_alternatives(directive: &str) -> Option<&'static [&'static [&'static str]]> {
    const MDY: &[&[&str]] = &[&["1", "/", "2", "/", "2006"], &["1", "/", "2", "/", "06"]];
    Some(match directive {
        "%m" | "%o" | "%q" => &[&["1"]],
        "%d" | "%e" | "%g" => &[&["2"]],
        "%I" => &[&["3"]],
        "%M" => &[&["4"]],
        "%S" => &[&["5"]],
        "%D" | "%x" => MDY,
        "%F" => &[&["2006", "-", "1", "-", "2"]],
        "%T" | "%X" => &[&["15", ":", "4", ":", "5"]],
        "%r" => &[&["3", ":", "4", ":", "5", " ", "pm"]],
        "%R" => &[&["15", ":", "4"]],
        "%c" => &[&["Mon", " ", "Jan", " ", "2", " ", "15", ":", "4", ":", "5", " ", "2006"]],
        _ => return None,
    })
}

/// The byte ranges of the directives: `%` and the character after it (not a line break).
fn directives(format: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut chars = format.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        if let Some(&(j, next)) = chars.peek()
            && next != '\n'
        {
            out.push((i, j + next.len_utf8()));
            chars.next();
        }
    }
    out
}

/// The Collector's checks of a strptime format.
fn validate_strptime(format: &str) -> Result<(), String> {
    if format.chars().any(|c| c.is_ascii_digit()) {
        return Err("format string should not contain decimals".into());
    }
    let chars: Vec<char> = format.chars().collect();
    for w in chars.windows(3) {
        if !matches!(w[0], '.' | ',') && w[1] == '%' && matches!(w[2], 'L' | 'f' | 's') {
            let found: String = w.iter().collect();
            return Err(format!(
                "invalid fractional seconds directive: '{found}'. must be preceded with '.' or ','"
            ));
        }
    }
    let unsupported: Vec<String> = directives(format)
        .into_iter()
        .map(|(a, b)| &format[a..b])
        .filter(|d| substitute(d).is_none())
        .map(|d| format!("unsupported ctimefmt.toNative() directive: {d}"))
        .collect();
    if !unsupported.is_empty() {
        return Err(format!("invalid strptime format: [{}]", unsupported.join(" ")));
    }
    Ok(())
}

/// The Go layout of a validated strptime format.
fn to_native(format: &str) -> String {
    let mut out = String::with_capacity(format.len() + 8);
    let mut last = 0;
    for (a, b) in directives(format) {
        out.push_str(&format[last..a]);
        out.push_str(substitute(&format[a..b]).unwrap_or_default());
        last = b;
    }
    out.push_str(&format[last..]);
    out
}

/// The Collector's lenient strptime parse: tries the directives' alternatives (and spaces before
/// numbers) until one whole layout parses, and reports failures against the strptime format.
fn strptime_parse(format: &str, value: &str, loc: &Zone, locale: Option<&Locale>) -> Result<i64, String> {
    let dirs = directives(format);
    let mut parse = |layout: &str| parse_gotime(layout, value, loc, locale);
    match iterative_parse(String::new(), format, 0, &dirs, &mut parse) {
        Ok(t) => Ok(t),
        Err(ParseFailure::Layout(mut e)) => {
            e.layout = format.to_owned();
            Err(e.to_string())
        }
        Err(ParseFailure::Other(e)) => Err(e),
    }
}

type LayoutParse<'a> = dyn FnMut(&str) -> Result<i64, ParseFailure> + 'a;

fn iterative_parse(
    partial: String,
    format: &str,
    start: usize,
    dirs: &[(usize, usize)],
    parse: &mut LayoutParse<'_>,
) -> Result<i64, ParseFailure> {
    let Some(&(a, b)) = dirs.first() else {
        return parse(&format!("{partial}{}", &format[start..]));
    };
    let partial = format!("{partial}{}", &format[start..a]);
    let directive = &format[a..b];

    // Parses with `elements` for this directive; on failure, whether one of them failed (its index and
    // the unparsed value), with the error re-attributed to the directive.
    let mut try_elements = |elements: &[String]| -> (Result<i64, ParseFailure>, Option<(usize, String)>) {
        let mut res =
            iterative_parse(format!("{partial}{}", elements.concat()), format, b, &dirs[1..], &mut *parse);
        let mut culprit = None;
        // An element with an empty name (extra text, a day out of range) is never this directive's.
        if let Err(ParseFailure::Layout(e)) = &mut res
            && !e.layout_elem.is_empty()
            && let Some(i) = elements.iter().position(|el| *el == e.layout_elem)
        {
            e.layout_elem = directive.to_owned();
            culprit = Some((i, e.value_elem.clone()));
        }
        (res, culprit)
    };
    // Also retries with the whitespace found before a failing number.
    let mut attempt = |elements: &[&str]| -> (Result<i64, ParseFailure>, bool) {
        let mut elements: Vec<String> = elements.iter().map(|s| (*s).to_owned()).collect();
        for _ in 0..8 {
            let (res, culprit) = try_elements(&elements);
            let Some((i, remainder)) = culprit else { return (res, false) };
            if elements[i].starts_with(|c: char| c.is_ascii_digit() || c == 'Z') {
                let space: String = remainder
                    .chars()
                    .take_while(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0c'))
                    .collect();
                if !space.is_empty() {
                    elements.insert(i, space);
                    continue;
                }
            }
            return (res, true);
        }
        (try_elements(&elements).0, true)
    };

    if directive == "%z" {
        let mut last = None;
        for layout in ["Z0700", "Z07:00", "Z07"] {
            let (res, failed_here) = attempt(&[layout]);
            if !failed_here {
                return res;
            }
            last = Some(res);
        }
        return last.unwrap_or_else(|| Err(ParseFailure::Other("no layout".into())));
    }
    if let Some(alternatives) = parse_alternatives(directive) {
        let mut last = None;
        for alt in alternatives {
            let (res, failed_here) = attempt(alt);
            if !failed_here {
                return res;
            }
            last = Some(res);
        }
        return last.unwrap_or_else(|| Err(ParseFailure::Other("no layout".into())));
    }
    match substitute(directive) {
        Some(sub) => attempt(&["", sub]).0,
        None => {
            Err(ParseFailure::Other(format!("unsupported ctimefmt.FlexibleParse() directive: {directive}")))
        }
    }
}

// === locales ===

/// Month and weekday names and day-period markers of a language, each with accepted spellings.
struct Locale {
    long_months: &'static [&'static [&'static str]],
    short_months: &'static [&'static [&'static str]],
    long_days: &'static [&'static [&'static str]],
    short_days: &'static [&'static [&'static str]],
    am: &'static [&'static str],
    pm: &'static [&'static str],
}

impl Locale {
    /// The entry of `table` whose longest spelling prefixes `v` (case-insensitive): index and length.
    fn lookup(&self, table: &[&[&str]], v: &[u8]) -> Option<(usize, usize)> {
        let text = String::from_utf8_lossy(v);
        let mut best: Option<(usize, usize)> = None;
        for (i, spellings) in table.iter().enumerate() {
            for s in spellings.iter() {
                if let Some(n) = prefix_len_ci(&text, s)
                    && best.is_none_or(|(_, m)| n > m)
                {
                    best = Some((i, n));
                }
            }
        }
        best
    }
}

/// The byte length of the prefix of `text` that equals `word` ignoring case.
fn prefix_len_ci(text: &str, word: &str) -> Option<usize> {
    let mut t = text.char_indices();
    let mut end = 0;
    for w in word.chars() {
        let (i, c) = t.next()?;
        if !c.to_lowercase().eq(w.to_lowercase()) {
            return None;
        }
        end = i + c.len_utf8();
    }
    Some(end)
}

const EN: Locale = Locale {
    long_months: &[
        &["January"],
        &["February"],
        &["March"],
        &["April"],
        &["May"],
        &["June"],
        &["July"],
        &["August"],
        &["September"],
        &["October"],
        &["November"],
        &["December"],
    ],
    short_months: &[
        &["Jan"],
        &["Feb"],
        &["Mar"],
        &["Apr"],
        &["May"],
        &["Jun"],
        &["Jul"],
        &["Aug"],
        &["Sep"],
        &["Oct"],
        &["Nov"],
        &["Dec"],
    ],
    long_days: &[
        &["Sunday"],
        &["Monday"],
        &["Tuesday"],
        &["Wednesday"],
        &["Thursday"],
        &["Friday"],
        &["Saturday"],
    ],
    short_days: &[&["Sun"], &["Mon"], &["Tue"], &["Wed"], &["Thu"], &["Fri"], &["Sat"]],
    am: &["AM", "a.m."],
    pm: &["PM", "p.m."],
};

const ES: Locale = Locale {
    long_months: &[
        &["enero"],
        &["febrero"],
        &["marzo"],
        &["abril"],
        &["mayo"],
        &["junio"],
        &["julio"],
        &["agosto"],
        &["septiembre", "setiembre"],
        &["octubre"],
        &["noviembre"],
        &["diciembre"],
    ],
    short_months: &[
        &["ene", "ene."],
        &["feb", "feb."],
        &["mar", "mar."],
        &["abr", "abr."],
        &["may", "may."],
        &["jun", "jun."],
        &["jul", "jul."],
        &["ago", "ago."],
        &["sept", "sept.", "sep", "sep."],
        &["oct", "oct."],
        &["nov", "nov."],
        &["dic", "dic."],
    ],
    long_days: &[
        &["domingo"],
        &["lunes"],
        &["martes"],
        &["miércoles"],
        &["jueves"],
        &["viernes"],
        &["sábado"],
    ],
    short_days: &[
        &["dom", "dom."],
        &["lun", "lun."],
        &["mar", "mar."],
        &["mié", "mié."],
        &["jue", "jue."],
        &["vie", "vie."],
        &["sáb", "sáb."],
    ],
    am: &["a. m.", "a.\u{a0}m.", "a.m.", "am"],
    pm: &["p. m.", "p.\u{a0}m.", "p.m.", "pm"],
};

const IT: Locale = Locale {
    long_months: &[
        &["gennaio"],
        &["febbraio"],
        &["marzo"],
        &["aprile"],
        &["maggio"],
        &["giugno"],
        &["luglio"],
        &["agosto"],
        &["settembre"],
        &["ottobre"],
        &["novembre"],
        &["dicembre"],
    ],
    short_months: &[
        &["gen"],
        &["feb"],
        &["mar"],
        &["apr"],
        &["mag"],
        &["giu"],
        &["lug"],
        &["ago"],
        &["set"],
        &["ott"],
        &["nov"],
        &["dic"],
    ],
    long_days: &[
        &["domenica"],
        &["lunedì", "lunedi"],
        &["martedì", "martedi"],
        &["mercoledì", "mercoledi"],
        &["giovedì", "giovedi"],
        &["venerdì", "venerdi"],
        &["sabato"],
    ],
    short_days: &[&["dom"], &["lun"], &["mar"], &["mer"], &["gio"], &["ven"], &["sab"]],
    am: &["AM", "a.m."],
    pm: &["PM", "p.m."],
};

const DE: Locale = Locale {
    long_months: &[
        &["Januar"],
        &["Februar"],
        &["März", "Maerz"],
        &["April"],
        &["Mai"],
        &["Juni"],
        &["Juli"],
        &["August"],
        &["September"],
        &["Oktober"],
        &["November"],
        &["Dezember"],
    ],
    short_months: &[
        &["Jan", "Jan."],
        &["Feb", "Feb."],
        &["März", "Mär", "Mär."],
        &["Apr", "Apr."],
        &["Mai"],
        &["Juni", "Jun", "Jun."],
        &["Juli", "Jul", "Jul."],
        &["Aug", "Aug."],
        &["Sept", "Sept.", "Sep", "Sep."],
        &["Okt", "Okt."],
        &["Nov", "Nov."],
        &["Dez", "Dez."],
    ],
    long_days: &[
        &["Sonntag"],
        &["Montag"],
        &["Dienstag"],
        &["Mittwoch"],
        &["Donnerstag"],
        &["Freitag"],
        &["Samstag", "Sonnabend"],
    ],
    short_days: &[
        &["So", "So."],
        &["Mo", "Mo."],
        &["Di", "Di."],
        &["Mi", "Mi."],
        &["Do", "Do."],
        &["Fr", "Fr."],
        &["Sa", "Sa."],
    ],
    am: &["AM", "vorm."],
    pm: &["PM", "nachm."],
};

const FR: Locale = Locale {
    long_months: &[
        &["janvier"],
        &["février", "fevrier"],
        &["mars"],
        &["avril"],
        &["mai"],
        &["juin"],
        &["juillet"],
        &["août", "aout"],
        &["septembre"],
        &["octobre"],
        &["novembre"],
        &["décembre", "decembre"],
    ],
    short_months: &[
        &["janv.", "janv"],
        &["févr.", "févr", "fevr"],
        &["mars"],
        &["avr.", "avr"],
        &["mai"],
        &["juin"],
        &["juil.", "juil"],
        &["août", "aout"],
        &["sept.", "sept"],
        &["oct.", "oct"],
        &["nov.", "nov"],
        &["déc.", "déc", "dec"],
    ],
    long_days: &[
        &["dimanche"],
        &["lundi"],
        &["mardi"],
        &["mercredi"],
        &["jeudi"],
        &["vendredi"],
        &["samedi"],
    ],
    short_days: &[
        &["dim.", "dim"],
        &["lun.", "lun"],
        &["mar.", "mar"],
        &["mer.", "mer"],
        &["jeu.", "jeu"],
        &["ven.", "ven"],
        &["sam.", "sam"],
    ],
    am: &["AM"],
    pm: &["PM"],
};

const PT: Locale = Locale {
    long_months: &[
        &["janeiro"],
        &["fevereiro"],
        &["março", "marco"],
        &["abril"],
        &["maio"],
        &["junho"],
        &["julho"],
        &["agosto"],
        &["setembro"],
        &["outubro"],
        &["novembro"],
        &["dezembro"],
    ],
    short_months: &[
        &["jan.", "jan"],
        &["fev.", "fev"],
        &["mar.", "mar"],
        &["abr.", "abr"],
        &["mai.", "mai"],
        &["jun.", "jun"],
        &["jul.", "jul"],
        &["ago.", "ago"],
        &["set.", "set"],
        &["out.", "out"],
        &["nov.", "nov"],
        &["dez.", "dez"],
    ],
    long_days: &[
        &["domingo"],
        &["segunda-feira"],
        &["terça-feira", "terca-feira"],
        &["quarta-feira"],
        &["quinta-feira"],
        &["sexta-feira"],
        &["sábado", "sabado"],
    ],
    short_days: &[
        &["dom.", "dom"],
        &["seg.", "seg"],
        &["ter.", "ter"],
        &["qua.", "qua"],
        &["qui.", "qui"],
        &["sex.", "sex"],
        &["sáb.", "sáb", "sab"],
    ],
    am: &["AM", "a.m."],
    pm: &["PM", "p.m."],
};

/// The locale of a BCP 47 tag, by its language subtag.
fn locale_for(tag: &str) -> Result<&'static Locale, String> {
    let well_formed = !tag.is_empty()
        && tag
            .split(['-', '_'])
            .all(|sub| !sub.is_empty() && sub.len() <= 8 && sub.chars().all(|c| c.is_ascii_alphanumeric()));
    let language = tag.split(['-', '_']).next().unwrap_or_default().to_ascii_lowercase();
    let found = match language.as_str() {
        "en" => Some(&EN),
        "es" => Some(&ES),
        "it" => Some(&IT),
        "de" => Some(&DE),
        "fr" => Some(&FR),
        "pt" => Some(&PT),
        _ => None,
    };
    match found {
        Some(l) if well_formed => Ok(l),
        _ => Err(format!("unsupported locale '{tag}', value must be a supported BCP 47 language tag")),
    }
}

// === Time and FormatTime ===

/// What `Time` keeps from its literal arguments.
struct TimeSpec {
    format: String,
    location: Zone,
    locale: Option<&'static Locale>,
}

fn time_spec(format: Option<&str>, location: Option<&str>, locale: Option<&str>) -> Result<TimeSpec, String> {
    let format = format.unwrap_or_default();
    if format.is_empty() {
        return Err("format cannot be nil".into());
    }
    let location = match location {
        Some(name) if !name.is_empty() => {
            Zone::load(name).map_err(|e| format!("failed to load location {name}: {e}"))?
        }
        // A format ending in a literal Z means UTC; the local zone is UTC here anyway.
        _ => Zone::Utc,
    };
    let locale = locale.map(locale_for).transpose()?;
    validate_strptime(format)?;
    Ok(TimeSpec { format: format.to_owned(), location, locale })
}

fn literal_str<'a>(args: &[Option<&'a Value>], i: usize) -> Option<&'a str> {
    match args.get(i).copied().flatten() {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn prepare_time(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    let spec = time_spec(literal_str(args, 1), literal_str(args, 2), literal_str(args, 3))?;
    Ok(Some(Box::new(spec)))
}

fn time_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let owned;
    let spec = match call.prepared::<TimeSpec>() {
        Some(spec) => spec,
        None => {
            owned = time_spec(call.literal_str(1), call.literal_str(2), call.literal_str(3))
                .map_err(EvalError::Function)?;
            &owned
        }
    };
    let (format, location, locale) = (spec.format.clone(), spec.location.clone(), spec.locale);
    let input = call.string(0)?;
    if input.is_empty() {
        return Err(EvalError::Function("time cannot be nil".into()));
    }
    strptime_parse(&format, &input, &location, locale).map(Value::Time).map_err(EvalError::Function)
}

fn format_spec(format: Option<&str>) -> Result<String, String> {
    let format = format.unwrap_or_default();
    if format.is_empty() {
        return Err("format cannot be nil".into());
    }
    validate_strptime(format)?;
    Ok(to_native(format))
}

fn prepare_format_time(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    Ok(Some(Box::new(format_spec(literal_str(args, 1))?)))
}

fn format_time_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let layout = match call.prepared::<String>() {
        Some(layout) => layout.clone(),
        None => format_spec(call.literal_str(1)).map_err(EvalError::Function)?,
    };
    let t = call.time(0)?;
    Ok(Value::String(go_format(&layout, t)))
}

// === Duration ===

/// Go's `time.ParseDuration`.
fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_quote(orig));
    let mut s = orig.as_bytes();
    let mut neg = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        neg = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // The integer part.
        let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &d in &s[..digits] {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(d - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        let pre = digits > 0;
        s = &s[digits..];
        // The fraction.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
            let mut overflow = false;
            for &d in &s[..digits] {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(d - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = digits > 0;
            s = &s[digits..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        // The unit.
        let unit_len = s.iter().take_while(|&&c| c != b'.' && !c.is_ascii_digit()).count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", go_quote(orig)));
        }
        let unit_text = &s[..unit_len];
        s = &s[unit_len..];
        let unit: u64 = match unit_text {
            b"ns" => 1,
            b"us" => 1_000,
            u if u == "µs".as_bytes() || u == "μs".as_bytes() => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_quote(&String::from_utf8_lossy(unit_text)),
                    go_quote(orig)
                ));
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((total as i64).wrapping_neg());
    }
    i64::try_from(total).map_err(|_| invalid())
}

fn duration_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    parse_go_duration(&s).map(Value::Duration).map_err(EvalError::Function)
}

/// Go's `Duration.Hours` and friends: whole units plus the remainder as a fraction.
fn duration_in(d: i64, unit: i64) -> f64 {
    (d / unit) as f64 + (d % unit) as f64 / unit as f64
}

fn hours_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Float(duration_in(call.duration(0)?, 3600 * NANOS_PER_SEC)))
}

fn minutes_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Float(duration_in(call.duration(0)?, 60 * NANOS_PER_SEC)))
}

fn seconds_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Float(duration_in(call.duration(0)?, NANOS_PER_SEC)))
}

fn milliseconds_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(call.duration(0)? / 1_000_000))
}

fn microseconds_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(call.duration(0)? / 1_000))
}

fn nanoseconds_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(call.duration(0)?))
}

// === instants ===

fn now_fn(_call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Time(now_nanos()))
}

fn unix_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let secs = call.int(0)?;
    let nanos = if call.present(1) { call.int(1)? } else { 0 };
    i128::from(secs)
        .checked_mul(i128::from(NANOS_PER_SEC))
        .and_then(|n| n.checked_add(i128::from(nanos)))
        .and_then(|n| i64::try_from(n).ok())
        .map(Value::Time)
        .ok_or_else(|| {
            EvalError::Function(format!("Unix: time {secs}s {nanos}ns is outside the representable range"))
        })
}

fn unix_seconds_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(call.time(0)?.div_euclid(NANOS_PER_SEC)))
}

fn unix_milli_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let t = call.time(0)?;
    Ok(Value::Int(t.div_euclid(NANOS_PER_SEC) * 1_000 + t.rem_euclid(NANOS_PER_SEC) / 1_000_000))
}

fn unix_micro_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let t = call.time(0)?;
    Ok(Value::Int(t.div_euclid(NANOS_PER_SEC) * 1_000_000 + t.rem_euclid(NANOS_PER_SEC) / 1_000))
}

fn unix_nano_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(call.time(0)?))
}

fn civil_of(call: &mut Call<'_>) -> Result<Civil, EvalError> {
    Ok(Civil::from_unix_nanos(call.time(0)?))
}

fn year_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.year))
}

fn month_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.month))
}

fn day_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.day))
}

fn hour_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.hour))
}

fn minute_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.minute))
}

fn second_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.second))
}

fn nanosecond_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.nanos))
}

fn weekday_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::Int(civil_of(call)?.weekday()))
}

/// Go's `Time.Truncate`: rounds down to a multiple of the duration since January 1st of year 1.
fn truncate_time_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let t = call.time(0)?;
    let d = call.duration(1)?;
    if d <= 0 {
        return Ok(Value::Time(t));
    }
    // Seconds from 0001-01-01T00:00:00Z to the Unix epoch.
    const YEAR_ONE_TO_UNIX: i128 = 62_135_596_800;
    let since_year_one = i128::from(t) + YEAR_ONE_TO_UNIX * i128::from(NANOS_PER_SEC);
    let rem = since_year_one.rem_euclid(i128::from(d));
    Ok(Value::Time(t.saturating_sub(i64::try_from(rem).unwrap_or_default())))
}

#[cfg(test)]
#[path = "time_tests.rs"]
mod tests;
