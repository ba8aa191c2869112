//! gzip and zstd for both directions. Decompression is bounded while it runs, so a small compressed
//! body that inflates past the limit (a decompression bomb) is stopped after `limit` bytes.

use std::io::{Read, Write};

use bytes::{Bytes, BytesMut};

/// Default gzip level for exports. Level 1 is chosen for CPU per span; PERF.md records the trade-off.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;
/// Default zstd level for exports.
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// A content / grpc encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// No compression.
    Identity,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// It inflates past the limit.
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// It is not valid data for its encoding.
    #[error("cannot decompress {encoding} body: {message}")]
    Corrupt {
        /// `gzip` or `zstd`.
        encoding: &'static str,
        /// Decoder message.
        message: String,
    },
}

// === impl Encoding ===

impl Encoding {
    /// Parses a `Content-Encoding` / `grpc-encoding` value; `None` for an unsupported one.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim() {
            "" | "identity" => Some(Self::Identity),
            "gzip" | "x-gzip" => Some(Self::Gzip),
            "zstd" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The header token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
        }
    }
}

impl From<tracegw_contract::Compression> for Encoding {
    fn from(c: tracegw_contract::Compression) -> Self {
        match c {
            tracegw_contract::Compression::None => Self::Identity,
            tracegw_contract::Compression::Gzip => Self::Gzip,
            tracegw_contract::Compression::Zstd => Self::Zstd,
        }
    }
}

// === free functions ===

/// Decompresses `input`, failing as soon as the output would pass `limit` bytes.
pub fn decompress(encoding: Encoding, input: &[u8], limit: usize) -> Result<Bytes, DecompressError> {
    if encoding == Encoding::Identity {
        if input.len() > limit {
            return Err(DecompressError::TooLarge { limit });
        }
        return Ok(Bytes::copy_from_slice(input));
    }
    let mut out = BytesMut::with_capacity((input.len() * 4).min(limit).max(1024)).writer();
    decompress_to(encoding, input, limit, &mut out)?;
    Ok(out.into_inner().freeze())
}

/// Decompresses `input` into `out`, failing as soon as the output would pass `limit` bytes.
pub fn decompress_to(
    encoding: Encoding,
    input: &[u8],
    limit: usize,
    out: &mut impl Write,
) -> Result<(), DecompressError> {
    let corrupt = |encoding: &'static str| {
        move |e: std::io::Error| DecompressError::Corrupt { encoding, message: e.to_string() }
    };
    match encoding {
        Encoding::Identity => {
            if input.len() > limit {
                return Err(DecompressError::TooLarge { limit });
            }
            out.write_all(input).map_err(corrupt("identity"))
        }
        Encoding::Gzip => copy_limited(flate2::read::MultiGzDecoder::new(input), limit, out)
            .map_err(|e| e.or(corrupt("gzip"))),
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt("zstd"))?;
            copy_limited(decoder, limit, out).map_err(|e| e.or(corrupt("zstd")))
        }
    }
}

/// Either the limit was hit, or the reader failed.
enum LimitedError {
    TooLarge(usize),
    Io(std::io::Error),
}

impl LimitedError {
    fn or(self, corrupt: impl FnOnce(std::io::Error) -> DecompressError) -> DecompressError {
        match self {
            Self::TooLarge(limit) => DecompressError::TooLarge { limit },
            Self::Io(e) => corrupt(e),
        }
    }
}

fn copy_limited(reader: impl Read, limit: usize, out: &mut impl Write) -> Result<(), LimitedError> {
    // One byte past the limit tells "exactly at the limit" from "over it".
    let copied = std::io::copy(&mut reader.take(limit as u64 + 1), out).map_err(LimitedError::Io)?;
    if copied > limit as u64 {
        return Err(LimitedError::TooLarge(limit));
    }
    Ok(())
}

/// Compresses the concatenation of `chunks`. Compressing into memory only fails if the compressor
/// cannot allocate its state.
pub fn compress(
    encoding: Encoding,
    chunks: &[Bytes],
    len: usize,
    gzip_level: u32,
    zstd_level: i32,
) -> std::io::Result<Bytes> {
    if encoding == Encoding::Identity
        && let [only] = chunks
    {
        return Ok(only.clone());
    }
    compress_into(encoding, chunks, BytesMut::with_capacity(len), gzip_level, zstd_level)
        .map(BytesMut::freeze)
}

/// Appends the compressed concatenation of `chunks` to `out`.
pub fn compress_into(
    encoding: Encoding,
    chunks: &[Bytes],
    mut out: BytesMut,
    gzip_level: u32,
    zstd_level: i32,
) -> std::io::Result<BytesMut> {
    match encoding {
        Encoding::Identity => {
            for c in chunks {
                out.extend_from_slice(c);
            }
            Ok(out)
        }
        Encoding::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(gzip_level));
            for c in chunks {
                enc.write_all(c)?;
            }
            Ok(enc.finish()?.into_inner())
        }
        Encoding::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out.writer(), zstd_level)?;
            enc.include_checksum(false)?;
            for c in chunks {
                enc.write_all(c)?;
            }
            Ok(enc.finish()?.into_inner())
        }
    }
}

use bytes::BufMut as _;

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: gzip and zstd round trips, and a 1 MiB body of zeros against a 64 KiB limit.
    /// Guarantees: data survives; the bomb is refused as TooLarge, not read whole.
    #[test]
    fn round_trip_and_bomb() {
        let data = Bytes::from(vec![7u8; 100_000]);
        for enc in [Encoding::Identity, Encoding::Gzip, Encoding::Zstd] {
            let packed =
                compress(enc, &[data.slice(..50_000), data.slice(50_000..)], data.len(), 6, 3).unwrap();
            assert_eq!(decompress(enc, &packed, 200_000).unwrap(), data);
            let bomb = compress(enc, &[Bytes::from(vec![0u8; 1 << 20])], 1 << 20, 9, 19).unwrap();
            assert!(
                matches!(decompress(enc, &bomb, 64 * 1024), Err(DecompressError::TooLarge { .. })),
                "{enc:?}"
            );
        }
        assert!(matches!(decompress(Encoding::Gzip, b"not gzip", 100), Err(DecompressError::Corrupt { .. })));
    }
}
