//! gzip, zstd and snappy for both directions. Decompression is bounded while it runs, so a small
//! compressed body that inflates past the limit (a decompression bomb) is stopped after `limit` bytes.
//!
//! Snappy comes in two formats, and the Collector uses each in one place: OTLP/HTTP's
//! `Content-Encoding: snappy` is one raw block (`snappy.Encode`, confighttp's `rawSnappyWriter`), and
//! gRPC's `grpc-encoding: snappy` is the framing format (`snappy.NewBufferedWriter`, configgrpc's
//! snappy compressor), which HTTP also names `x-snappy-framed`. [`Encoding::Snappy`] writes a raw
//! block and reads either (the framing format is told apart by its stream identifier, as confighttp's
//! receiver does); [`Encoding::SnappyFramed`] writes and reads the framing format only. A raw block
//! states its decoded length first, so it is refused before any output is allocated when that passes
//! the limit.
//!
//! Export batches are compressed whole, from one buffer into another. gzip level 1, the default,
//! uses ISA-L (Intel's assembly deflate) when the crate is built with the `isal` feature, as the
//! image, the quick start and PERF.md's figures are: on realistic spans it takes less than half the
//! CPU of libdeflate's level 1 for 1.6 % more output (PERF-HISTORY.md, "Export compression"). Without
//! the feature (the default build, which needs no assembler or autotools) level 1 is libdeflate's
//! too, and a gzip-exporting pipeline costs more CPU per span (PERF.md, "ISA-L as a build option").
//! Every other level uses libdeflate, which compresses better as the level rises and is about twice
//! as fast as zlib at level 6. Each worker thread keeps one libdeflate compressor per level, since a compressor's state
//! is hundreds of kilobytes to set up.
//! Decompression of received bodies stays streaming (flate2), because only a stream can stop a
//! bomb after `limit` bytes.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};

use crate::budget::Reservation;
use crate::buffer::{BufferPool, MAX_POOLED_BUFFER_BYTES};

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
    /// Snappy, `snappy`: written as one raw block, read as a raw block or the framing format.
    Snappy,
    /// Snappy's framing format: `x-snappy-framed` on HTTP, what gRPC's `snappy` carries.
    SnappyFramed,
}

/// The first bytes of every stream in snappy's framing format: the stream identifier chunk.
const SNAPPY_STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Why a body could not be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum DecompressError {
    /// It inflates past the limit.
    #[error("decompressed body exceeds {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The memory budget has no room for the output (see [`decompress_charged`]).
    #[error("the gateway is short of memory for requests: retry later")]
    OverBudget,
    /// It is not valid data for its encoding.
    #[error("cannot decompress {encoding} body: {message}")]
    Corrupt {
        /// `gzip`, `zstd` or `snappy`.
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
            "snappy" => Some(Self::Snappy),
            "x-snappy-framed" => Some(Self::SnappyFramed),
            _ => None,
        }
    }

    /// Parses a `grpc-encoding` value: the names gRPC registers, so `x-snappy-framed` (an HTTP
    /// content coding) is not one.
    pub fn parse_grpc(value: &str) -> Option<Self> {
        match Self::parse(value)? {
            Self::SnappyFramed => None,
            other => Some(other),
        }
    }

    /// The `Content-Encoding` token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Zstd => "zstd",
            Self::Snappy => "snappy",
            Self::SnappyFramed => "x-snappy-framed",
        }
    }

    /// The `grpc-encoding` token: gRPC calls its framed snappy `snappy`.
    pub fn grpc_name(self) -> &'static str {
        match self {
            Self::SnappyFramed => "snappy",
            other => other.as_str(),
        }
    }

    /// The format a gRPC message compressed under this encoding's name is in: gRPC's `snappy` is
    /// the framing format.
    pub fn for_grpc(self) -> Self {
        match self {
            Self::Snappy => Self::SnappyFramed,
            other => other,
        }
    }
}

impl From<tracegw_contract::Compression> for Encoding {
    fn from(c: tracegw_contract::Compression) -> Self {
        match c {
            tracegw_contract::Compression::None => Self::Identity,
            tracegw_contract::Compression::Gzip => Self::Gzip,
            tracegw_contract::Compression::Zstd => Self::Zstd,
            tracegw_contract::Compression::Snappy => Self::Snappy,
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

/// Decompresses a received body into a buffer from `pool`, failing as soon as the output would pass
/// `limit` bytes. The buffer is sized for a typical 4× ratio, within what the pool keeps.
pub fn decompress_pooled(
    encoding: Encoding,
    input: &[u8],
    limit: usize,
    pool: &Arc<BufferPool>,
) -> Result<Bytes, DecompressError> {
    let mut out = pool.take((input.len() * 4).min(limit).min(MAX_POOLED_BUFFER_BYTES));
    decompress_to(encoding, input, limit, &mut out)?;
    Ok(out.freeze())
}

/// [`decompress_pooled`], with the output then counted against the memory budget through
/// `reservation` until its last slice is dropped. The output is bounded by `limit` while it is
/// made, so what is uncounted is at most that, for the moment decompression takes.
pub fn decompress_charged(
    encoding: Encoding,
    input: &[u8],
    limit: usize,
    pool: &Arc<BufferPool>,
    mut reservation: Reservation,
) -> Result<Bytes, DecompressError> {
    let mut out = pool.take((input.len() * 4).min(limit).min(MAX_POOLED_BUFFER_BYTES));
    decompress_to(encoding, input, limit, &mut out)?;
    if !reservation.try_grow_to(out.len()) {
        return Err(DecompressError::OverBudget);
    }
    out.charge(reservation);
    Ok(out.freeze())
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
        // snappy's framing writer writes nothing for an empty message, and grpc-go's framed reader
        // (the Collector's gRPC snappy) reads nothing back as an empty message (found by fuzzing).
        Encoding::Snappy | Encoding::SnappyFramed if input.is_empty() => Ok(()),
        Encoding::Snappy if !input.starts_with(SNAPPY_STREAM_IDENTIFIER) => {
            snappy_block_to(input, limit, out)
        }
        Encoding::Snappy | Encoding::SnappyFramed => {
            copy_limited(snap::read::FrameDecoder::new(input), limit, out)
                .map_err(|e| e.or(corrupt("snappy")))
        }
    }
}

/// One raw snappy block: its stated length is checked against `limit` before anything is decoded.
fn snappy_block_to(input: &[u8], limit: usize, out: &mut impl Write) -> Result<(), DecompressError> {
    let corrupt =
        |e: &dyn std::fmt::Display| DecompressError::Corrupt { encoding: "snappy", message: e.to_string() };
    let len = snap::raw::decompress_len(input).map_err(|e| corrupt(&e))?;
    if len > limit {
        return Err(DecompressError::TooLarge { limit });
    }
    let mut decoded = vec![0; len];
    let written = snap::raw::Decoder::new().decompress(input, &mut decoded).map_err(|e| corrupt(&e))?;
    out.write_all(&decoded[..written]).map_err(|e| corrupt(&e))
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
    let mut out = Vec::with_capacity(len);
    compress_into(encoding, chunks, &mut out, gzip_level, zstd_level)?;
    Ok(Bytes::from(out))
}

/// Appends the compressed concatenation of `chunks` to `out`.
pub fn compress_into(
    encoding: Encoding,
    chunks: &[Bytes],
    out: &mut Vec<u8>,
    gzip_level: u32,
    zstd_level: i32,
) -> std::io::Result<()> {
    match encoding {
        Encoding::Identity => {
            out.reserve(chunks.iter().map(Bytes::len).sum());
            for c in chunks {
                out.extend_from_slice(c);
            }
            Ok(())
        }
        Encoding::Gzip => gzip_into(chunks, out, gzip_level),
        Encoding::Snappy => with_joined(chunks, |input| snappy_block_into(input, out)),
        Encoding::SnappyFramed => {
            let mut enc = snap::write::FrameEncoder::new(out);
            for c in chunks {
                enc.write_all(c)?;
            }
            enc.flush()
        }
        Encoding::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(out, zstd_level)?;
            enc.include_checksum(false)?;
            for c in chunks {
                enc.write_all(c)?;
            }
            enc.finish()?;
            Ok(())
        }
    }
}

/// One thread's gzip compressors, one per level used.
type GzipState = Vec<(i32, libdeflater::Compressor)>;

thread_local! {
    static GZIP: RefCell<GzipState> = const { RefCell::new(Vec::new()) };
    /// A scratch buffer for joining chunks, for the compressors that need one input buffer.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with the concatenation of `chunks`: the one chunk itself, or the chunks joined in this
/// thread's scratch buffer.
fn with_joined<T>(chunks: &[Bytes], f: impl FnOnce(&[u8]) -> T) -> T {
    if let [only] = chunks {
        return f(only);
    }
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        scratch.clear();
        for c in chunks {
            scratch.extend_from_slice(c);
        }
        let result = f(&scratch);
        // A batch far above the usual size should not pin its buffer in every thread forever.
        if scratch.capacity() > MAX_RETAINED_SCRATCH_BYTES {
            *scratch = Vec::new();
        }
        result
    })
}

/// The library that compresses gzip level 1 (the default) in this build: `"isal"` with the `isal`
/// feature, else `"libdeflate"`.
pub const GZIP_LEVEL1_COMPRESSOR: &str = if cfg!(feature = "isal") { "isal" } else { "libdeflate" };

/// gzip: the chunks are joined (both libraries need one input buffer), then compressed straight
/// into `out`, by ISA-L at level 1 when built with it and by libdeflate at any other level.
fn gzip_into(chunks: &[Bytes], out: &mut Vec<u8>, level: u32) -> std::io::Result<()> {
    let level = i32::try_from(level.clamp(0, 12)).unwrap_or(1);
    with_joined(chunks, |input| {
        #[cfg(feature = "isal")]
        if level == ISAL_GZIP_LEVEL && isal_gzip_into(input, out) {
            return Ok(());
        }
        GZIP.with(|cell| libdeflate_gzip_into(&mut cell.borrow_mut(), input, out, level))
    })
}

/// One raw snappy block of `input`, appended to `out`: what OTLP/HTTP's `Content-Encoding: snappy`
/// carries.
fn snappy_block_into(input: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    let start = out.len();
    out.resize(start + snap::raw::max_compress_len(input.len()), 0);
    let written = snap::raw::Encoder::new()
        .compress(input, &mut out[start..])
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    out.truncate(start + written);
    Ok(())
}

/// libdeflate at `level`, with this thread's compressor for it.
fn libdeflate_gzip_into(
    compressors: &mut Vec<(i32, libdeflater::Compressor)>,
    input: &[u8],
    out: &mut Vec<u8>,
    level: i32,
) -> std::io::Result<()> {
    let index = match compressors.iter().position(|(l, _)| *l == level) {
        Some(i) => i,
        None => {
            let lvl = libdeflater::CompressionLvl::new(level).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("gzip level {level}: {e:?}"))
            })?;
            compressors.push((level, libdeflater::Compressor::new(lvl)));
            compressors.len() - 1
        }
    };
    let compressor = &mut compressors[index].1;
    let start = out.len();
    out.resize(start + compressor.gzip_compress_bound(input.len()), 0);
    let written = compressor
        .gzip_compress(input, &mut out[start..])
        .map_err(|e| std::io::Error::other(format!("gzip: {e:?}")))?;
    out.truncate(start + written);
    Ok(())
}

/// ISA-L's level 1, straight into `out`'s spare capacity; `false` when the output did not fit the
/// room given or ISA-L refused the input (the caller then uses libdeflate, which computes an exact
/// bound). Each thread sets up ISA-L's stream (82 KB) and level 1's working buffer (276 KB) once;
/// a batch only resets the stream's fields, since allocating and zeroing them per batch cost more
/// than the copies around the compressor.
#[cfg(feature = "isal")]
fn isal_gzip_into(input: &[u8], out: &mut Vec<u8>) -> bool {
    use isal_sys::igzip_lib as isal;
    let Ok(avail_in) = u32::try_from(input.len()) else {
        return false;
    };
    // Deflate's worst case, stored blocks, adds a few bytes per 64 KiB; this leaves ample room.
    out.reserve(input.len() + input.len() / 16 + ISAL_ROOM_BYTES);
    let start = out.len();
    let spare = out.spare_capacity_mut();
    let avail_out = u32::try_from(spare.len()).unwrap_or(u32::MAX);
    let written = ISAL.with(|cell| {
        let mut cell = cell.borrow_mut();
        let state = cell.get_or_insert_with(|| IsalState {
            // SAFETY: `isal_zstream` is a C struct of integers, raw pointers and arrays of them, for
            // which all zero bytes is a valid value.
            stream: Box::new(unsafe { std::mem::zeroed::<isal::isal_zstream>() }),
            level_buf: vec![0; isal::ISAL_DEF_LVL1_DEFAULT as usize],
        });
        let stream: &mut isal::isal_zstream = &mut state.stream;
        // SAFETY: the stream is a valid, exclusively borrowed struct; init only writes its fields.
        unsafe { isal::isal_deflate_stateless_init(stream) };
        stream.level = 1;
        stream.level_buf = state.level_buf.as_mut_ptr();
        stream.level_buf_size = u32::try_from(state.level_buf.len()).unwrap_or(0);
        stream.gzip_flag = isal::IGZIP_GZIP as u16;
        stream.end_of_stream = 1;
        stream.flush = isal::NO_FLUSH as u16;
        // ISA-L never writes through next_in; the C API just lacks the const.
        stream.next_in = input.as_ptr().cast_mut();
        stream.avail_in = avail_in;
        stream.next_out = spare.as_mut_ptr().cast::<u8>();
        stream.avail_out = avail_out;
        // SAFETY: every pointer in the stream is valid for its stated length for the duration of the
        // call: the input slice, `out`'s spare capacity and the thread's level buffer; ISA-L writes
        // at most `avail_out` bytes to `next_out` and reads `avail_in` bytes from `next_in`.
        let code = unsafe { isal::isal_deflate_stateless(stream) };
        (code == isal::COMP_OK as i32).then_some(stream.total_out as usize)
    });
    match written {
        Some(n) if n <= avail_out as usize => {
            // SAFETY: ISA-L initialised the first `n` bytes of the spare capacity.
            unsafe { out.set_len(start + n) };
            true
        }
        _ => false,
    }
}

/// One thread's ISA-L stream and level buffer.
#[cfg(feature = "isal")]
struct IsalState {
    stream: Box<isal_sys::igzip_lib::isal_zstream>,
    level_buf: Vec<u8>,
}

#[cfg(feature = "isal")]
thread_local! {
    static ISAL: RefCell<Option<IsalState>> = const { RefCell::new(None) };
}

/// The gzip level compressed by ISA-L.
#[cfg(feature = "isal")]
const ISAL_GZIP_LEVEL: i32 = 1;
/// Output room beyond the input's length for ISA-L: header, trailer and block overhead.
#[cfg(feature = "isal")]
const ISAL_ROOM_BYTES: usize = 1024;

/// The largest joining buffer a thread keeps between batches.
const MAX_RETAINED_SCRATCH_BYTES: usize = 8 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: libdeflate's gzip at every level, read back by flate2 (what backends use), from one
    /// chunk and from many.
    /// Guarantees: the output is standard gzip holding exactly the input.
    #[test]
    fn libdeflate_gzip_is_standard_gzip() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let data = Bytes::from(data);
        for level in [0, 1, 6, 9, 12] {
            let parts = [data.slice(..1), data.slice(1..77_777), data.slice(77_777..)];
            for chunks in [&[data.clone()][..], &parts[..]] {
                let packed = compress(Encoding::Gzip, chunks, data.len(), level, 1).unwrap();
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut back).unwrap();
                assert_eq!(back, data, "level {level}");
            }
        }
    }

    /// Scenario: a realistic-looking batch compressed at level 1 by the gateway and by libdeflate's
    /// level 1 directly.
    /// Guarantees: the build compresses level 1 with the library [`GZIP_LEVEL1_COMPRESSOR`] names:
    /// ISA-L's output (which differs from libdeflate's) with the `isal` feature, libdeflate's
    /// byte for byte without it. CI runs this both ways, so the ISA-L path cannot silently fall
    /// back to libdeflate.
    #[test]
    fn level1_uses_the_compressor_of_the_build() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| {
                format!("span-{} attr={};", i % 977, i.wrapping_mul(2654435761) % 10_007).into_bytes()
            })
            .collect();
        let data = Bytes::from(data);
        let ours = compress(Encoding::Gzip, std::slice::from_ref(&data), data.len(), 1, 1).unwrap();
        let mut compressor = libdeflater::Compressor::new(libdeflater::CompressionLvl::new(1).unwrap());
        let mut theirs = vec![0; compressor.gzip_compress_bound(data.len())];
        let n = compressor.gzip_compress(&data, &mut theirs).unwrap();
        theirs.truncate(n);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&ours[..]).read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        match GZIP_LEVEL1_COMPRESSOR {
            "isal" => assert_ne!(&ours[..], &theirs[..], "level 1 fell back to libdeflate"),
            _ => assert_eq!(&ours[..], &theirs[..]),
        }
        assert_eq!(GZIP_LEVEL1_COMPRESSOR == "isal", cfg!(feature = "isal"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Scenario: level 1 (the default; ISA-L with the `isal` feature, libdeflate without) on
        /// compressible and incompressible inputs of any size, split into any chunks.
        /// Guarantees: flate2 reads back exactly the input, so backends see standard gzip.
        #[test]
        fn level1_gzip_is_standard_gzip(
            text in proptest::collection::vec(proptest::sample::select(b"abcdef \n\"=:0123".to_vec()), 0..50_000),
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..70_000),
            cut in proptest::prelude::any::<usize>(),
        ) {
            for data in [text, noise] {
                let data = Bytes::from(data);
                let cut = cut % (data.len() + 1);
                let chunks = [data.slice(..cut), data.slice(cut..)];
                let packed = compress(Encoding::Gzip, &chunks, data.len(), 1, 1).unwrap();
                let mut back = Vec::new();
                flate2::read::GzDecoder::new(&packed[..]).read_to_end(&mut back).unwrap();
                proptest::prop_assert_eq!(back, data.to_vec());
            }
        }
    }

    /// Scenario: round trips in every encoding, and a 1 MiB body of zeros against a 64 KiB limit.
    /// Guarantees: data survives; the bomb is refused as TooLarge, not read whole.
    #[test]
    fn round_trip_and_bomb() {
        let data = Bytes::from(vec![7u8; 100_000]);
        for enc in
            [Encoding::Identity, Encoding::Gzip, Encoding::Zstd, Encoding::Snappy, Encoding::SnappyFramed]
        {
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

    /// Scenario: the same data written as `snappy` (raw block) and as the framing format, more than
    /// one 64 KiB frame of it, read back under both names; a corrupted frame checksum; a raw block
    /// whose header states more than the limit.
    /// Guarantees: `snappy` writes one raw block (no stream identifier) and reads both formats, as
    /// the Collector's HTTP receiver does; `x-snappy-framed` writes the framing format (stream
    /// identifier first) and refuses a raw block; a checksum mismatch is Corrupt; a raw block is
    /// refused from its stated length alone.
    #[test]
    fn snappy_formats() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8 ^ (i / 1000) as u8).collect();
        let chunks = [Bytes::copy_from_slice(&data[..70_000]), Bytes::copy_from_slice(&data[70_000..])];
        let raw = compress(Encoding::Snappy, &chunks, data.len(), 1, 1).unwrap();
        let framed = compress(Encoding::SnappyFramed, &chunks, data.len(), 1, 1).unwrap();
        assert!(!raw.starts_with(SNAPPY_STREAM_IDENTIFIER));
        assert_eq!(snap::raw::decompress_len(&raw).unwrap(), data.len());
        assert!(framed.starts_with(SNAPPY_STREAM_IDENTIFIER));
        for body in [&raw, &framed] {
            assert_eq!(decompress(Encoding::Snappy, body, data.len()).unwrap(), data);
        }
        assert_eq!(decompress(Encoding::SnappyFramed, &framed, data.len()).unwrap(), data);
        assert!(matches!(
            decompress(Encoding::SnappyFramed, &raw, data.len()),
            Err(DecompressError::Corrupt { encoding: "snappy", .. })
        ));
        // The first chunk's checksum follows the identifier and the chunk's 4-byte header.
        let mut broken = framed.to_vec();
        broken[SNAPPY_STREAM_IDENTIFIER.len() + 4] ^= 0xff;
        assert!(matches!(
            decompress(Encoding::Snappy, &broken, data.len()),
            Err(DecompressError::Corrupt { .. })
        ));
        // A header claiming 1 GiB, with nothing behind it.
        let claim = [0x80, 0x80, 0x80, 0x80, 0x04];
        assert!(matches!(
            decompress(Encoding::Snappy, &claim, 64 * 1024 * 1024),
            Err(DecompressError::TooLarge { .. })
        ));
        assert_eq!(Encoding::parse("x-snappy-framed"), Some(Encoding::SnappyFramed));
        assert_eq!(Encoding::parse_grpc("x-snappy-framed"), None);
        assert_eq!(Encoding::Snappy.for_grpc().grpc_name(), "snappy");
    }
}
