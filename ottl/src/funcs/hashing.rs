//! Encodings, digests and identifiers: `Base64Decode`, `Base64Encode`, `Decode`, the hash converters
//! (`FNV`, `MD5`, `SHA1`, `SHA256`, `SHA512`, `Murmur3Hash`, `Murmur3Hash128`, `XXH3`, `XXH128`), the
//! random identifiers (`UUID`, `UUIDv7`) and the id constructors (`TraceID`, `SpanID`, `ProfileID`).
//!
//! `Decode` understands the four base64 variants and character sets: `utf-8`/`utf8`/`ascii`/`us-ascii`/
//! `nop`/empty (bytes passed through, invalid UTF-8 replaced by U+FFFD where Go would keep the raw bytes),
//! `utf-16`/`utf16` (little endian, a byte-order mark kept as U+FEFF), ISO-8859-1 and its aliases (true
//! Latin-1), and every other label the WHATWG Encoding Standard knows (windows-125x, ISO-8859-x, KOI8,
//! UTF-16BE/LE, Shift_JIS, EUC-JP, EUC-KR, GBK/GB18030, Big5, IBM866, macintosh ...). GB2312 and the
//! labels WHATWG maps to its "replacement" encoding report "no charmap defined" as Go's IANA index does;
//! IBM/EBCDIC code pages that Go knows are reported as unsupported here.

use base64::Engine as _;
use md5::Digest as _;

use super::{FunctionDef, Param, ParamType, Prepared, Run};
use crate::eval::EvalError;
use crate::funcs::{Call, bytes_like, hex};
use crate::value::Value;

pub(crate) static FUNCTIONS: &[FunctionDef] = &[
    FunctionDef {
        name: "Base64Decode",
        params: TARGET_STRING,
        prepare: None,
        run: Run::Converter(base64_decode_fn),
    },
    FunctionDef {
        name: "Base64Encode",
        params: &[
            Param { name: "target", ty: ParamType::StringGetter, optional: false },
            Param { name: "variant", ty: ParamType::StringGetter, optional: true },
        ],
        prepare: None,
        run: Run::Converter(base64_encode_fn),
    },
    FunctionDef {
        name: "Decode",
        params: &[
            Param { name: "target", ty: ParamType::Getter, optional: false },
            Param { name: "encoding", ty: ParamType::StringGetter, optional: false },
        ],
        prepare: Some(prepare_decode),
        run: Run::Converter(decode_fn),
    },
    FunctionDef { name: "FNV", params: TARGET_STRING, prepare: None, run: Run::Converter(fnv_fn) },
    FunctionDef { name: "MD5", params: TARGET_STRING, prepare: None, run: Run::Converter(md5_fn) },
    FunctionDef { name: "SHA1", params: TARGET_STRING, prepare: None, run: Run::Converter(sha1_fn) },
    FunctionDef { name: "SHA256", params: TARGET_STRING, prepare: None, run: Run::Converter(sha256_fn) },
    FunctionDef { name: "SHA512", params: TARGET_STRING, prepare: None, run: Run::Converter(sha512_fn) },
    FunctionDef {
        name: "Murmur3Hash",
        params: TARGET_STRING,
        prepare: None,
        run: Run::Converter(murmur3_fn),
    },
    FunctionDef {
        name: "Murmur3Hash128",
        params: TARGET_STRING,
        prepare: None,
        run: Run::Converter(murmur3_128_fn),
    },
    FunctionDef { name: "XXH3", params: TARGET_STRING, prepare: None, run: Run::Converter(xxh3_fn) },
    FunctionDef { name: "XXH128", params: TARGET_STRING, prepare: None, run: Run::Converter(xxh128_fn) },
    FunctionDef { name: "UUID", params: &[], prepare: None, run: Run::Converter(uuid_v4_fn) },
    FunctionDef { name: "UUIDv7", params: &[], prepare: None, run: Run::Converter(uuid_v7_fn) },
    FunctionDef {
        name: "TraceID",
        params: TARGET_BYTES,
        prepare: Some(prepare_trace_id),
        run: Run::Converter(trace_id_fn),
    },
    FunctionDef {
        name: "SpanID",
        params: TARGET_BYTES,
        prepare: Some(prepare_span_id),
        run: Run::Converter(span_id_fn),
    },
    FunctionDef {
        name: "ProfileID",
        params: TARGET_BYTES,
        prepare: Some(prepare_profile_id),
        run: Run::Converter(profile_id_fn),
    },
];

const TARGET_STRING: &[Param] = &[Param { name: "target", ty: ParamType::StringGetter, optional: false }];
const TARGET_BYTES: &[Param] =
    &[Param { name: "target", ty: ParamType::ByteSliceLikeGetter, optional: false }];

// === base64 ===

/// One of Go's four `encoding/base64` encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum B64 {
    Std,
    RawStd,
    Url,
    RawUrl,
}

impl B64 {
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "base64" => Some(Self::Std),
            "base64-raw" => Some(Self::RawStd),
            "base64-url" => Some(Self::Url),
            "base64-raw-url" => Some(Self::RawUrl),
            _ => None,
        }
    }

    fn padded(self) -> bool {
        matches!(self, Self::Std | Self::Url)
    }

    fn encode(self, data: &[u8]) -> String {
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        match self {
            Self::Std => STANDARD.encode(data),
            Self::RawStd => STANDARD_NO_PAD.encode(data),
            Self::Url => URL_SAFE.encode(data),
            Self::RawUrl => URL_SAFE_NO_PAD.encode(data),
        }
    }

    /// The 6-bit value of an alphabet byte.
    fn sextet(self, b: u8) -> Option<u8> {
        let url = matches!(self, Self::Url | Self::RawUrl);
        match b {
            b'A'..=b'Z' => Some(b - b'A'),
            b'a'..=b'z' => Some(b - b'a' + 26),
            b'0'..=b'9' => Some(b - b'0' + 52),
            b'+' if !url => Some(62),
            b'/' if !url => Some(63),
            b'-' if url => Some(62),
            b'_' if url => Some(63),
            _ => None,
        }
    }

    /// Decodes as Go's `Encoding.DecodeString` does: line breaks are skipped, padding is required for the
    /// padded variants and refused for the raw ones, trailing bits are tolerated, and an error names the
    /// input offset Go reports ("illegal base64 data at input byte N").
    fn decode(self, src: &[u8]) -> Result<Vec<u8>, String> {
        let corrupt = |at: usize| format!("illegal base64 data at input byte {at}");
        let is_break = |b: u8| b == b'\n' || b == b'\r';
        let mut out = Vec::with_capacity(src.len() / 4 * 3 + 3);
        let mut si = 0;
        while si < src.len() {
            let mut quantum = [0u8; 4];
            let mut len = 4;
            let mut j = 0;
            let mut trailing_garbage = None;
            while j < 4 {
                if si == src.len() {
                    if j == 0 {
                        return Ok(out);
                    }
                    if j == 1 || self.padded() {
                        return Err(corrupt(si - j));
                    }
                    len = j;
                    break;
                }
                let b = src[si];
                si += 1;
                if let Some(v) = self.sextet(b) {
                    quantum[j] = v;
                    j += 1;
                    continue;
                }
                if is_break(b) {
                    continue;
                }
                if b != b'=' || !self.padded() {
                    return Err(corrupt(si - 1));
                }
                // Padding: only after two or three data bytes.
                match j {
                    0 | 1 => return Err(corrupt(si - 1)),
                    2 => {
                        while si < src.len() && is_break(src[si]) {
                            si += 1;
                        }
                        if si == src.len() {
                            return Err(corrupt(src.len()));
                        }
                        if src[si] != b'=' {
                            return Err(corrupt(si - 1));
                        }
                        si += 1;
                    }
                    _ => {}
                }
                while si < src.len() && is_break(src[si]) {
                    si += 1;
                }
                if si < src.len() {
                    trailing_garbage = Some(si);
                }
                len = j;
                break;
            }
            let val = (u32::from(quantum[0]) << 18)
                | (u32::from(quantum[1]) << 12)
                | (u32::from(quantum[2]) << 6)
                | u32::from(quantum[3]);
            let bytes = [(val >> 16) as u8, (val >> 8) as u8, val as u8];
            out.extend_from_slice(&bytes[..len - 1]);
            if let Some(at) = trailing_garbage {
                return Err(corrupt(at));
            }
        }
        Ok(out)
    }
}

fn base64_decode_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    let bytes = B64::Std.decode(s.as_bytes()).map_err(EvalError::Function)?;
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

fn base64_encode_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    let variant = if call.present(1) {
        call.string(1).map_err(|e| EvalError::Function(format!("failed to get base64 variant: {e}")))?
    } else {
        "base64".to_owned()
    };
    let enc = B64::from_name(&variant)
        .ok_or_else(|| EvalError::Function(format!("unsupported base64 variant: {variant}")))?;
    Ok(Value::String(enc.encode(s.as_bytes())))
}

// === Decode ===

/// How `Decode` turns bytes into text.
#[derive(Clone, Copy, Debug)]
enum Decoder {
    Base64(B64),
    /// Bytes taken as UTF-8 (Go's `encoding.Nop`).
    Nop,
    /// ISO-8859-1: each byte is the code point of the same number.
    Latin1,
    /// A WHATWG encoding, decoded without byte-order-mark sniffing.
    Charset(&'static encoding_rs::Encoding),
}

impl Decoder {
    /// The decoder for an encoding name, or the Collector's error for an unknown one.
    fn lookup(name: &str) -> Result<Self, String> {
        if let Some(b) = B64::from_name(name) {
            return Ok(Self::Base64(b));
        }
        let lower = name.to_lowercase();
        match lower.as_str() {
            "utf-16" | "utf16" => return Ok(Self::Charset(encoding_rs::UTF_16LE)),
            "utf-8" | "utf8" | "ascii" | "us-ascii" | "nop" | "" => return Ok(Self::Nop),
            "iso-8859-1" | "iso_8859-1" | "iso_8859-1:1987" | "latin1" | "l1" | "ibm819" | "cp819"
            | "csisolatin1" | "iso-ir-100" => return Ok(Self::Latin1),
            // Registered with IANA, but Go's index has no decoder for them.
            "gb2312" | "csgb2312" => return Err(format!("no charmap defined for encoding '{name}'")),
            _ => {}
        }
        match encoding_rs::Encoding::for_label_no_replacement(name.trim().as_bytes()) {
            Some(enc) if enc != encoding_rs::X_USER_DEFINED => Ok(Self::Charset(enc)),
            _ if encoding_rs::Encoding::for_label(name.trim().as_bytes()).is_some() => {
                Err(format!("no charmap defined for encoding '{name}'"))
            }
            _ => Err(format!("unsupported encoding '{name}'")),
        }
    }

    fn decode(self, src: &[u8], from_string: bool) -> Result<String, String> {
        match self {
            Self::Base64(b) => {
                // Surrounding whitespace is ignored, as message bodies often carry a trailing newline.
                let trimmed = if from_string { trim_go_space(src) } else { trim_ascii_go(src) };
                let bytes = b.decode(trimmed).map_err(|e| format!("could not decode: {e}"))?;
                Ok(String::from_utf8_lossy(&bytes).into_owned())
            }
            Self::Nop => Ok(String::from_utf8_lossy(src).into_owned()),
            Self::Latin1 => Ok(src.iter().map(|&b| char::from(b)).collect()),
            Self::Charset(enc) => Ok(enc.decode_without_bom_handling(src).0.into_owned()),
        }
    }
}

/// `strings.TrimSpace` over UTF-8 text.
fn trim_go_space(src: &[u8]) -> &[u8] {
    match std::str::from_utf8(src) {
        Ok(s) => s.trim().as_bytes(),
        Err(_) => trim_ascii_go(src),
    }
}

/// `bytes.TrimSpace` for the ASCII whitespace Go trims.
fn trim_ascii_go(src: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = src.iter().position(|b| !is_space(b)).unwrap_or(src.len());
    let end = src.iter().rposition(|b| !is_space(b)).map_or(start, |p| p + 1);
    &src[start..end]
}

fn prepare_decode(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    match args.get(1).copied().flatten() {
        Some(Value::String(name)) => Ok(Some(Box::new(Decoder::lookup(name)?))),
        _ => Ok(None),
    }
}

fn decode_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let target = call.get(0)?;
    let decoder = match call.prepared::<Decoder>() {
        Some(d) => *d,
        None => {
            let name = call.string(1)?;
            Decoder::lookup(&name).map_err(EvalError::Function)?
        }
    };
    let out = match &target {
        Value::String(s) => decoder.decode(s.as_bytes(), true),
        Value::Bytes(b) => decoder.decode(b, false),
        Value::Nil => {
            return Err(EvalError::Function("unsupported type provided to Decode function: <nil>".into()));
        }
        other => {
            return Err(EvalError::Function(format!(
                "unsupported type provided to Decode function: {}",
                other.type_name()
            )));
        }
    };
    out.map(Value::String).map_err(EvalError::Function)
}

// === digests ===

fn fnv_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::Int(fnv1a_64(s.as_bytes()) as i64))
}

/// FNV-1a, 64 bit.
fn fnv1a_64(data: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    data.iter().fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

fn md5_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::String(hex(&md5::Md5::digest(s.as_bytes()))))
}

fn sha1_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::String(hex(&sha1::Sha1::digest(s.as_bytes()))))
}

fn sha256_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::String(hex(&sha2::Sha256::digest(s.as_bytes()))))
}

fn sha512_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::String(hex(&sha2::Sha512::digest(s.as_bytes()))))
}

fn murmur3_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::String(hex(&murmur3_32(s.as_bytes(), 0).to_le_bytes())))
}

fn murmur3_128_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    let (h1, h2) = murmur3_x64_128(s.as_bytes(), 0);
    let mut out = h1.to_le_bytes().to_vec();
    out.extend_from_slice(&h2.to_le_bytes());
    Ok(Value::String(hex(&out)))
}

/// MurmurHash3, x86 32-bit variant.
fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    let mut k = 0u32;
    for (i, &b) in tail.iter().enumerate() {
        k ^= u32::from(b) << (8 * i);
    }
    if !tail.is_empty() {
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    fmix32(h)
}

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// MurmurHash3, x64 128-bit variant: the two 64-bit halves.
fn murmur3_x64_128(data: &[u8], seed: u64) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let (mut h1, mut h2) = (seed, seed);
    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let mut k1 = u64::from_le_bytes(block[..8].try_into().unwrap_or_default());
        let mut k2 = u64::from_le_bytes(block[8..].try_into().unwrap_or_default());
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(27).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x52dc_e729);
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2.rotate_left(31).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }
    let tail = blocks.remainder();
    let (mut k1, mut k2) = (0u64, 0u64);
    for (i, &b) in tail.iter().enumerate() {
        if i < 8 {
            k1 ^= u64::from(b) << (8 * i);
        } else {
            k2 ^= u64::from(b) << (8 * (i - 8));
        }
    }
    if tail.len() > 8 {
        h2 ^= k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
    }
    if !tail.is_empty() {
        h1 ^= k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
    }
    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

fn xxh3_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::String(hex(&xxhash_rust::xxh3::xxh3_64(s.as_bytes()).to_be_bytes())))
}

fn xxh128_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    let s = call.string(0)?;
    Ok(Value::String(hex(&xxhash_rust::xxh3::xxh3_128(s.as_bytes()).to_be_bytes())))
}

// === random identifiers ===

fn uuid_v4_fn(_call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::String(uuid::Uuid::new_v4().to_string()))
}

fn uuid_v7_fn(_call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::String(uuid::Uuid::now_v7().to_string()))
}

// === TraceID, SpanID, ProfileID ===

/// Builds an id of `N` bytes from either `N` raw bytes or `2N` hex characters.
fn bytes_to_id<const N: usize>(func: &str, b: &[u8]) -> Result<[u8; N], String> {
    let mut id = [0u8; N];
    if b.len() == N {
        id.copy_from_slice(b);
        return Ok(id);
    }
    if b.len() != 2 * N {
        return Err(format!(
            "{func}: could not decode ID: invalid length: expected {N} or {} bytes, got {}",
            2 * N,
            b.len()
        ));
    }
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = hex_nibble(pair[0]);
        let lo = hex_nibble(pair[1]);
        match (hi, lo) {
            (Some(hi), Some(lo)) => id[i] = (hi << 4) | lo,
            _ => {
                let bad = if hi.is_none() { pair[0] } else { pair[1] };
                return Err(format!(
                    "{func}: could not decode ID: invalid hex: encoding/hex: invalid byte: {}",
                    go_quote_byte(bad)
                ));
            }
        }
    }
    Ok(id)
}

/// How Go's `hex.InvalidByteError` shows a byte: `U+005A 'Z'`.
fn go_quote_byte(b: u8) -> String {
    let c = char::from(b);
    let quoted = if b.is_ascii_graphic() || b == b' ' { format!("'{c}'") } else { format!("'\\x{b:02x}'") };
    format!("U+{:04X} {quoted}", u32::from(b))
}

fn hex_nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A literal target is converted once at bind time, so a wrong length fails there.
fn prepare_id<const N: usize>(func: &str, args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    let Some(lit) = args.first().copied().flatten() else { return Ok(None) };
    let bytes = bytes_like(lit.clone()).map_err(|e| e.to_string())?.unwrap_or_default();
    Ok(Some(Box::new(bytes_to_id::<N>(func, &bytes)?)))
}

fn prepare_trace_id(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_id::<16>("TraceID", args)
}

fn prepare_span_id(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_id::<8>("SpanID", args)
}

fn prepare_profile_id(args: &[Option<&Value>]) -> Result<Option<Prepared>, String> {
    prepare_id::<16>("ProfileID", args)
}

fn id_from_call<const N: usize>(func: &str, call: &mut Call<'_>) -> Result<[u8; N], EvalError> {
    if let Some(id) = call.prepared::<[u8; N]>() {
        return Ok(*id);
    }
    let bytes = call.bytes_like(0)?.unwrap_or_default();
    bytes_to_id::<N>(func, &bytes).map_err(EvalError::Function)
}

fn trace_id_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::TraceId(id_from_call::<16>("TraceID", call)?))
}

fn span_id_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::SpanId(id_from_call::<8>("SpanID", call)?))
}

/// A profile id has no value type of its own here: it is returned as its 16 bytes.
fn profile_id_fn(call: &mut Call<'_>) -> Result<Value, EvalError> {
    Ok(Value::ProfileId(id_from_call::<16>("ProfileID", call)?))
}

#[cfg(test)]
#[path = "hashing_tests.rs"]
mod tests;
