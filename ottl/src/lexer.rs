//! The OTTL lexer: source text to tokens, with the Collector's token rules (pkg/ottl `buildLexer`).
//!
//! The Collector's lexer tries its rules in a fixed order at each position and takes the first that
//! matches (not the longest); this one does the same, rule for rule:
//!
//! | rule | pattern |
//! |---|---|
//! | `Bytes` | `0x[a-fA-F0-9]+` (an even number of digits, else an error) |
//! | `Float` | `(\d+\.\d*\|\d*\.\d+)([eE][-+]?\d+)?` (`1.5`, `3.`, `.5`, `1.0e-3`) |
//! | `Int` | `\d+`, read as Go's `strconv.ParseInt(s, 0, 64)` reads it: a leading `0` means octal |
//! | `String` | `"(\\.\|[^\\"])*"`, escapes decoded as Go's `strconv.UnquoteChar` decodes them |
//! | `Nil`, `OpNot`, `OpOr`, `OpAnd` | `nil`, `not`, `or`, `and` not followed by a word character |
//! | `OpComparison` | `==`, `!=`, `>=`, `<=`, `>`, `<` |
//! | `OpAddSub`, `OpMultDiv` | `+ -`, `/ *` (signs are never part of a number: the parser reads them) |
//! | `Boolean` | `true`, `false` not followed by a word character |
//! | `Equal`, `LParen`, `RParen`, `LBrace`, `RBrace`, `Colon`, `Punct` | `=`, `(`, `)`, `{`, `}`, `:`, `, . [ ]` |
//! | `Uppercase` | `[A-Z][A-Z0-9_]*` |
//! | `Lowercase` | `[a-z][a-z0-9_]*` |
//! | whitespace | `[ \t\n\r\f]+`, dropped |
//!
//! Two consequences worth knowing: a name is split wherever its case changes (`IsMatch` is `I`, `s`, `M`,
//! `atch`; the parser joins them again), and a keyword ends a token early (`Xor` is `X` then `or`).
//! Numbers, bytes and escapes are checked here, so every token the parser sees is well-formed.

use crate::ast::{CompareOp, MathOp, Span};
use crate::parser::ParseError;

/// One token: what it is, its source text and where it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Token<'src> {
    /// The token's kind, with its decoded value for literals.
    pub kind: TokenKind,
    /// The token's source text (a string token's text includes its quotes and escapes).
    pub text: &'src str,
    /// Where the token is.
    pub span: Span,
}

/// The kinds of token, with the decoded value of literals.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    /// `0x0102`: the bytes.
    Bytes(Vec<u8>),
    /// `1.5`: the float.
    Float(f64),
    /// `15`: the integer (never negative: signs are separate tokens).
    Int(i64),
    /// `"a\n"`: the string, escapes decoded.
    String(String),
    /// `nil`.
    Nil,
    /// `not`.
    Not,
    /// `or`.
    Or,
    /// `and`.
    And,
    /// A comparison operator.
    Comparison(CompareOp),
    /// `+` or `-`.
    AddSub(MathOp),
    /// `*` or `/`.
    MulDiv(MathOp),
    /// `true` or `false`.
    Boolean(bool),
    /// `=`.
    Equal,
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// `{`.
    LBrace,
    /// `}`.
    RBrace,
    /// `:`.
    Colon,
    /// `,`.
    Comma,
    /// `.`.
    Dot,
    /// `[`.
    LBracket,
    /// `]`.
    RBracket,
    /// An identifier starting with an upper-case letter: `[A-Z][A-Z0-9_]*`.
    Uppercase,
    /// An identifier starting with a lower-case letter: `[a-z][a-z0-9_]*`.
    Lowercase,
}

// === impl Token ===

impl Token<'_> {
    /// The token's value as the Collector's parser compares it with grammar literals such as `(` or
    /// `where`: a string's decoded content, any other token's text.
    pub fn value(&self) -> &str {
        match &self.kind {
            TokenKind::String(s) => s,
            _ => self.text,
        }
    }
}

// === impl TokenKind ===

impl TokenKind {
    /// The name of the Collector's lexer rule that produces this kind (`Lowercase`, `Punct`, ...).
    pub fn collector_name(&self) -> &'static str {
        match self {
            TokenKind::Bytes(_) => "Bytes",
            TokenKind::Float(_) => "Float",
            TokenKind::Int(_) => "Int",
            TokenKind::String(_) => "String",
            TokenKind::Nil => "Nil",
            TokenKind::Not => "OpNot",
            TokenKind::Or => "OpOr",
            TokenKind::And => "OpAnd",
            TokenKind::Comparison(_) => "OpComparison",
            TokenKind::AddSub(_) => "OpAddSub",
            TokenKind::MulDiv(_) => "OpMultDiv",
            TokenKind::Boolean(_) => "Boolean",
            TokenKind::Equal => "Equal",
            TokenKind::LParen => "LParen",
            TokenKind::RParen => "RParen",
            TokenKind::LBrace => "LBrace",
            TokenKind::RBrace => "RBrace",
            TokenKind::Colon => "Colon",
            TokenKind::Comma | TokenKind::Dot | TokenKind::LBracket | TokenKind::RBracket => "Punct",
            TokenKind::Uppercase => "Uppercase",
            TokenKind::Lowercase => "Lowercase",
        }
    }
}

/// Splits `src` into tokens, dropping whitespace.
///
/// Fails on text no rule matches (`|`, `'a'`, `_x`), an unterminated string, an invalid escape, an
/// integer that does not fit 64 bits (or has an 8 or 9 after a leading 0), a float out of range and a
/// bytes literal with an odd number of hex digits, as the Collector does.
pub fn tokenize(src: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while let Some(rest) = src.get(pos..).filter(|rest| !rest.is_empty()) {
        // Whitespace is the Collector's last rule, but no other rule can start with it.
        let spaces = count(rest.as_bytes(), is_space);
        if spaces > 0 {
            pos += spaces;
            continue;
        }
        let (kind, len) = next_token(src, pos, rest)?;
        let end = pos + len;
        tokens.push(Token { kind, text: src.get(pos..end).unwrap_or_default(), span: Span::new(pos, end) });
        pos = end;
    }
    Ok(tokens)
}

/// The token at the start of `rest` (`src[pos..]`, not empty) and its length in bytes.
fn next_token(src: &str, pos: usize, rest: &str) -> Result<(TokenKind, usize), ParseError> {
    let b = rest.as_bytes();
    if let Some(digits) = b.strip_prefix(b"0x").map(|after| count(after, |c| c.is_ascii_hexdigit()))
        && digits > 0
    {
        let len = 2 + digits;
        return decode_hex(rest.get(2..len).unwrap_or_default())
            .map(|bytes| (TokenKind::Bytes(bytes), len))
            .ok_or_else(|| {
                let text = rest.get(..len).unwrap_or_default();
                ParseError::at(src, pos, format!("bytes literal {text:?} has an odd number of hex digits"))
            });
    }
    if let Some(len) = float_len(b) {
        let text = rest.get(..len).unwrap_or_default();
        return match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok((TokenKind::Float(x), len)),
            _ => Err(ParseError::at(
                src,
                pos,
                format!("float literal {text:?} is out of range for a 64-bit float"),
            )),
        };
    }
    let digits = count(b, |c| c.is_ascii_digit());
    if digits > 0 {
        let text = rest.get(..digits).unwrap_or_default();
        return parse_int(text)
            .map(|n| (TokenKind::Int(n), digits))
            .map_err(|msg| ParseError::at(src, pos, msg));
    }
    if b.first() == Some(&b'"') {
        return lex_string(src, pos, rest);
    }
    let keywords =
        [("nil", TokenKind::Nil), ("not", TokenKind::Not), ("or", TokenKind::Or), ("and", TokenKind::And)];
    for (word, kind) in keywords {
        if is_keyword(b, word) {
            return Ok((kind, word.len()));
        }
    }
    let comparisons = [
        ("==", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        (">=", CompareOp::Ge),
        ("<=", CompareOp::Le),
        (">", CompareOp::Gt),
        ("<", CompareOp::Lt),
    ];
    for (text, op) in comparisons {
        if rest.starts_with(text) {
            return Ok((TokenKind::Comparison(op), text.len()));
        }
    }
    let single = match b.first() {
        Some(b'+') => Some(TokenKind::AddSub(MathOp::Add)),
        Some(b'-') => Some(TokenKind::AddSub(MathOp::Sub)),
        Some(b'/') => Some(TokenKind::MulDiv(MathOp::Div)),
        Some(b'*') => Some(TokenKind::MulDiv(MathOp::Mul)),
        _ => None,
    };
    if let Some(kind) = single {
        return Ok((kind, 1));
    }
    for (word, value) in [("true", true), ("false", false)] {
        if is_keyword(b, word) {
            return Ok((TokenKind::Boolean(value), word.len()));
        }
    }
    let single = match b.first() {
        Some(b'=') => Some(TokenKind::Equal),
        Some(b'(') => Some(TokenKind::LParen),
        Some(b')') => Some(TokenKind::RParen),
        Some(b'{') => Some(TokenKind::LBrace),
        Some(b'}') => Some(TokenKind::RBrace),
        Some(b':') => Some(TokenKind::Colon),
        Some(b',') => Some(TokenKind::Comma),
        Some(b'.') => Some(TokenKind::Dot),
        Some(b'[') => Some(TokenKind::LBracket),
        Some(b']') => Some(TokenKind::RBracket),
        _ => None,
    };
    if let Some(kind) = single {
        return Ok((kind, 1));
    }
    match b.first() {
        Some(c) if c.is_ascii_uppercase() => {
            let tail = count(b.get(1..).unwrap_or_default(), |c| {
                c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_'
            });
            Ok((TokenKind::Uppercase, 1 + tail))
        }
        Some(c) if c.is_ascii_lowercase() => {
            let tail = count(b.get(1..).unwrap_or_default(), |c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'
            });
            Ok((TokenKind::Lowercase, 1 + tail))
        }
        _ => Err(invalid_text(src, pos, rest)),
    }
}

/// The error for text no token rule matches.
fn invalid_text(src: &str, pos: usize, rest: &str) -> ParseError {
    let mut sample: String = rest.chars().take(16).collect();
    if rest.chars().nth(16).is_some() {
        sample.push_str("...");
    }
    let hint = match rest.chars().next() {
        Some('\'') => " (strings are written in double quotes)",
        Some('!') => " (`!` is only part of `!=`; negate with `not`)",
        Some('&' | '|') => " (use `and` and `or`)",
        _ => "",
    };
    ParseError::at(src, pos, format!("invalid input text {sample:?}{hint}"))
}

/// Lexes the string literal at the start of `rest` (which starts with `"`).
fn lex_string(src: &str, pos: usize, rest: &str) -> Result<(TokenKind, usize), ParseError> {
    let body = rest.get(1..).unwrap_or_default();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = unquote(body.get(..i).unwrap_or_default())
                    .map_err(|(at, msg)| ParseError::at(src, pos + 1 + at, msg))?;
                return Ok((TokenKind::String(value), i + 2));
            }
            '\\' => match chars.next() {
                Some((_, '\n')) => {
                    let msg = "a backslash in a string literal must not be followed by a line break";
                    return Err(ParseError::at(src, pos + 1 + i, msg));
                }
                Some(_) => {}
                None => break,
            },
            _ => {}
        }
    }
    Err(ParseError::at(src, pos, "unterminated string literal (no closing '\"')"))
}

/// Decodes the escapes of a string literal's content as Go's `strconv.UnquoteChar` does; on failure,
/// the offset of the bad escape in `s` and a message.
fn unquote(s: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let invalid = |escape: &str| {
            (
                i,
                format!(
                    "invalid escape sequence {escape:?} in string literal (valid: \\a \\b \\f \\n \\r \\t \\v \\\\ \\\" \
                     \\xHH \\OOO \\uHHHH \\UHHHHHHHH)"
                ),
            )
        };
        let Some((_, e)) = chars.next() else { return Err(invalid("\\")) };
        let decoded = match e {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            '"' => '"',
            'x' | 'u' | 'U' => {
                let width = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut code = 0u32;
                let mut digits = String::new();
                for _ in 0..width {
                    let digit = chars.next().map(|(_, d)| d);
                    match digit.and_then(|d| d.to_digit(16)) {
                        Some(v) => code = code << 4 | v,
                        None => {
                            digits.extend(digit);
                            return Err(invalid(&format!("\\{e}{digits}")));
                        }
                    }
                    digits.extend(digit);
                }
                // `\x` is any code point below 256; `\u` and `\U` must be a valid Unicode scalar value.
                char::from_u32(code).ok_or_else(|| invalid(&format!("\\{e}{digits}")))?
            }
            '0'..='7' => {
                let mut code = u32::from(e) - u32::from('0');
                let mut digits = String::from(e);
                for _ in 0..2 {
                    let digit = chars.next().map(|(_, d)| d);
                    match digit.and_then(|d| d.to_digit(8)) {
                        Some(v) => code = code << 3 | v,
                        None => {
                            digits.extend(digit);
                            return Err(invalid(&format!("\\{digits}")));
                        }
                    }
                    digits.extend(digit);
                }
                if code > 255 {
                    return Err(invalid(&format!("\\{digits}")));
                }
                char::from_u32(code).ok_or_else(|| invalid(&format!("\\{digits}")))?
            }
            other => return Err(invalid(&format!("\\{other}"))),
        };
        out.push(decoded);
    }
    Ok(out)
}

/// Reads an `Int` token as Go's `strconv.ParseInt(text, 0, 64)` does: a leading `0` means octal.
fn parse_int(text: &str) -> Result<i64, String> {
    let octal = text.len() > 1 && text.starts_with('0');
    let (digits, radix) = if octal { (text.get(1..).unwrap_or_default(), 8) } else { (text, 10) };
    i64::from_str_radix(digits, radix).map_err(|e| match e.kind() {
        std::num::IntErrorKind::InvalidDigit => format!(
            "integer literal {text:?} is invalid: a leading 0 makes the Collector read it as octal, which has \
             only the digits 0-7"
        ),
        _ => format!("integer literal {text:?} does not fit in a signed 64-bit integer"),
    })
}

/// The length of the `Float` rule's match at the start of `b`, if it matches.
fn float_len(b: &[u8]) -> Option<usize> {
    let whole = count(b, |c| c.is_ascii_digit());
    if b.get(whole) != Some(&b'.') {
        return None;
    }
    let fraction = count(b.get(whole + 1..).unwrap_or_default(), |c| c.is_ascii_digit());
    // `\d+\.\d*` or `\d*\.\d+`: at least one digit on one side of the dot.
    if whole == 0 && fraction == 0 {
        return None;
    }
    let mantissa = whole + 1 + fraction;
    let mut exponent = mantissa;
    if matches!(b.get(exponent), Some(b'e' | b'E')) {
        exponent += 1;
        if matches!(b.get(exponent), Some(b'+' | b'-')) {
            exponent += 1;
        }
        let digits = count(b.get(exponent..).unwrap_or_default(), |c| c.is_ascii_digit());
        if digits > 0 {
            return Some(exponent + digits);
        }
    }
    Some(mantissa)
}

/// Decodes hex digits (all valid) into bytes; `None` for an odd count.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 == 1 {
        return None;
    }
    hex.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect()
}

/// Whether `b` starts with the keyword `word` and no word character follows it (Go's `\b`).
fn is_keyword(b: &[u8], word: &str) -> bool {
    b.starts_with(word.as_bytes())
        && !b.get(word.len()).is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Go's `\s`: `[\t\n\f\r ]`.
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

/// How many bytes at the start of `b` satisfy `pred`.
fn count(b: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    b.iter().take_while(|&&c| pred(c)).count()
}
