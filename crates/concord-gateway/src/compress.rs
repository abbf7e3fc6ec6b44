//! Per-connection stream compression of server-to-client frames (`compress=zlib-stream`
//! or `compress=zstd-stream`).
//!
//! A connection gets one [`StreamCompressor`] for its whole life. Every message is
//! compressed into the same stream and flushed, so a client that feeds every binary
//! frame in order into one inflate (zlib) or zstd streaming decoder gets each message
//! back exactly at its frame's end, and later messages may refer back to earlier ones.
//! That shared history is the point (a warm stream compresses a typical dispatch to a
//! fraction of a fresh one); its cost is one compression context held per connection,
//! idle or not, which [`StreamCompressor::context_bytes`] reports.
//!
//! zlib is compressed with `zlib-rs` (pure Rust, the backend `flate2` offers). It is
//! used directly rather than through `flate2` because `flate2` can set the window but
//! not `memLevel`, and `memLevel` 8 alone costs 112 KiB of buffers per connection.
//! zstd is the reference C library through `zstd-safe`.

use std::fmt;
use std::io;
use std::str::FromStr;

use zlib_rs::{Deflate, DeflateConfig, DeflateFlush, Status};
use zstd_safe::zstd_sys::ZSTD_EndDirective;
use zstd_safe::{CCtx, CParameter, InBuffer, OutBuffer};

/// A stream codec a client may ask for with the `compress` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// `zlib-stream`: one zlib stream, each message ending in a sync flush
    /// (`00 00 ff ff`).
    Zlib,
    /// `zstd-stream`: one zstd frame, each message ending in a flush (never an
    /// end of frame).
    Zstd,
}

impl Compression {
    /// Parses the value of the `compress` query parameter; `None` for anything but
    /// `zlib-stream` and `zstd-stream` (exact, case-sensitive, as the spec lists them).
    pub fn from_query(value: &str) -> Option<Self> {
        match value {
            "zlib-stream" => Some(Self::Zlib),
            "zstd-stream" => Some(Self::Zstd),
            _ => None,
        }
    }

    /// The query value naming this codec.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Zlib => "zlib-stream",
            Self::Zstd => "zstd-stream",
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `compress` query value named no codec this server knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compress value; expected zlib-stream or zstd-stream")]
pub struct UnknownCompression;

impl FromStr for Compression {
    type Err = UnknownCompression;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::from_query(value).ok_or(UnknownCompression)
    }
}

/// Compression settings for both codecs; the client picks the codec, the server
/// picks these. One value is built at startup and used for every connection.
///
/// The default is sized for a node holding 10k+ connections (see [`ZlibConfig`] and
/// [`ZstdConfig`] for the figures): the context is the whole per-connection cost of
/// compression, paid idle or not, next to about 6 KiB for an idle connection without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CompressionConfig {
    /// Settings for `zlib-stream`.
    pub zlib: ZlibConfig,
    /// Settings for `zstd-stream`.
    pub zstd: ZstdConfig,
}

impl CompressionConfig {
    /// The libraries' own defaults (zlib level 6, window 2^15, `memLevel` 8; zstd
    /// level 3 with the window it picks): the best ratio, at 374 KiB and 3.5 MiB per
    /// context.
    pub const fn library_defaults() -> Self {
        Self {
            zlib: ZlibConfig {
                level: 6,
                window_bits: 15,
                mem_level: 8,
            },
            zstd: ZstdConfig {
                level: 3,
                window_log: None,
                hash_log: None,
                chain_log: None,
            },
        }
    }
}

/// zlib (deflate) settings.
///
/// Default: level 1, window 2^12, `memLevel` 2: 152 KiB per context, and a warm
/// stream sends a ~510-byte MESSAGE_CREATE dispatch in 107 bytes. zlib-rs keeps a
/// fixed 64Ki-entry hash head (128 KiB) whatever the window and `memLevel`, so about
/// 137 KiB is the floor; zlib's own defaults (window 2^15, `memLevel` 8) take it to
/// 374 KiB for 78 bytes per message. Level 1 is zlib-rs's "quick" strategy (static
/// Huffman codes): since every message ends a block, the levels above it build
/// dynamic codes per message, 5x the CPU (level 6: 87 bytes per message).
/// The server compresses every event once per recipient, so CPU per message is the
/// cost that scales with fan-out. `memLevel` changes nothing at level 1; 2 keeps
/// larger messages reasonable if the level is raised. A standard inflate with the
/// default `windowBits` 15 decodes any smaller window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZlibConfig {
    /// Compression level, 0 (store) to 9.
    pub level: u8,
    /// Base-2 logarithm of the history window, 9 to 15.
    pub window_bits: u8,
    /// Internal buffer size, 1 to 9: the literal buffer is `2^(mem_level + 6)` symbols,
    /// so a smaller value emits more, smaller deflate blocks.
    pub mem_level: u8,
}

impl Default for ZlibConfig {
    fn default() -> Self {
        Self {
            level: 1,
            window_bits: 12,
            mem_level: 2,
        }
    }
}

/// zstd settings. `None` leaves a parameter to the level's own choice, which for a
/// stream of unknown size is sized for large inputs: level 3 alone takes a 2 MiB
/// window and a 3.5 MiB context (77 bytes per message).
///
/// Default: level 3, window 2^12, hash and chain tables 2^10: 60 KiB per context, and
/// a warm stream sends a ~510-byte MESSAGE_CREATE dispatch in 102 bytes. About 32 KiB
/// of any context is fixed (entropy tables, workspaces). Below 128 KiB a zstd block is
/// as large as the window, so the window costs about 7 bytes per byte (input buffer,
/// output buffer, sequence store): 2^13 is 88 KiB for 98 bytes per message. Each
/// table costs 4 bytes per entry. Level 1 at the same size sends 109 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZstdConfig {
    /// Compression level, from the negative "fast" levels up to 22; zstd clamps
    /// values outside its range.
    pub level: i32,
    /// Base-2 logarithm of the window, 10 to 27 (27 is the most a standard decoder
    /// accepts without being told otherwise).
    pub window_log: Option<u32>,
    /// Base-2 logarithm of the match-finder hash table, 6 to 30.
    pub hash_log: Option<u32>,
    /// Base-2 logarithm of the match-finder chain table, 6 to 30 (unused by the
    /// `fast` strategy of levels 1 and below).
    pub chain_log: Option<u32>,
}

impl Default for ZstdConfig {
    fn default() -> Self {
        Self {
            level: 3,
            window_log: Some(12),
            hash_log: Some(10),
            chain_log: Some(10),
        }
    }
}

/// One connection's compression context: every message goes into the same stream.
///
/// After an error the stream is unusable (the client's decoder state can no longer
/// be matched) and every later call fails; close the connection.
pub struct StreamCompressor {
    codec: Codec,
    broken: bool,
    config: CompressionConfig,
}

enum Codec {
    Zlib {
        deflate: Deflate,
        config: ZlibConfig,
    },
    Zstd(CCtx<'static>),
    /// The context was released while the connection was idle
    /// ([`StreamCompressor::release`]); the next message starts a fresh one that
    /// continues the same stream for the client's decoder.
    Released {
        compression: Compression,
        /// zstd: the released context's frame is still open in the client's decoder.
        frame_open: bool,
    },
}

impl fmt::Debug for StreamCompressor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamCompressor")
            .field("compression", &self.compression())
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// An empty, non-final stored deflate block on a byte boundary: what a sync flush
/// writes when the stream is already aligned.
const EMPTY_STORED_BLOCK: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];

/// A zstd block header: last block, raw, size 0. It ends an open frame whose content
/// checksum is off.
const ZSTD_LAST_EMPTY_BLOCK: [u8; 3] = [0x01, 0x00, 0x00];

/// A whole zstd frame holding `message` in raw blocks: no context needed. The window
/// descriptor names the smallest window (from 1 KiB) that holds a block, so a decoder
/// allocates no more than the message needs.
fn zstd_raw_frame(message: &[u8], out: &mut Vec<u8>) {
    const MAX_BLOCK: usize = 128 * 1024;
    out.extend_from_slice(&[0x28, 0xb5, 0x2f, 0xfd]); // magic number
    out.push(0x00); // no content size, not single-segment, no checksum, no dictionary
    let largest = message.len().clamp(1, MAX_BLOCK);
    let window_log = (usize::BITS - (largest - 1).leading_zeros()).max(10);
    out.push(((window_log - 10) as u8) << 3); // window descriptor: exponent, mantissa 0
    let mut blocks = message.chunks(MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&ZSTD_LAST_EMPTY_BLOCK);
    }
    while let Some(block) = blocks.next() {
        let last = u32::from(blocks.peek().is_none());
        // Last_Block, Block_Type 0 (raw), Block_Size: 3 bytes, little-endian.
        let header = last | ((block.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(block);
    }
}

/// zlib-rs's hash head: 64Ki 16-bit positions, whatever the window and `memLevel`.
const ZLIB_RS_HEAD_BYTES: usize = 65_536 * 2;
/// zlib-rs's deflate state (trees, heap, counters) outside the sized buffers,
/// rounded up; measured, not documented.
const ZLIB_RS_STATE_BYTES: usize = 6 * 1024;

impl StreamCompressor {
    /// Creates the context for one connection.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if a setting of `config` for this codec is out
    /// of range; [`io::ErrorKind::OutOfMemory`] if zstd cannot allocate its context.
    pub fn new(compression: Compression, config: CompressionConfig) -> io::Result<Self> {
        Ok(Self {
            codec: Self::context(compression, config, false)?,
            broken: false,
            config,
        })
    }

    /// A fresh context. `raw`: deflate without the zlib header, continuing a stream
    /// whose header an earlier context wrote.
    fn context(
        compression: Compression,
        config: CompressionConfig,
        raw: bool,
    ) -> io::Result<Codec> {
        let codec = match compression {
            Compression::Zlib => {
                let config = config.zlib;
                check(config.level <= 9, "zlib level must be 0..=9")?;
                check(
                    (9..=15).contains(&config.window_bits),
                    "zlib window_bits must be 9..=15",
                )?;
                check(
                    (1..=9).contains(&config.mem_level),
                    "zlib mem_level must be 1..=9",
                )?;
                // Checked above: zlib-rs asserts on an invalid configuration.
                let window_bits = i32::from(config.window_bits);
                let deflate = Deflate::new_with_config(DeflateConfig {
                    level: i32::from(config.level),
                    window_bits: if raw { -window_bits } else { window_bits },
                    mem_level: i32::from(config.mem_level),
                    ..DeflateConfig::default()
                });
                Codec::Zlib { deflate, config }
            }
            Compression::Zstd => Codec::Zstd(zstd_context(config.zstd)?),
        };
        Ok(codec)
    }

    /// Frees the context of an idle connection: its whole per-connection cost. The
    /// stream stays valid for the client's one decoder: every message so far ended
    /// flushed on a byte boundary, so the next message is compressed by a fresh
    /// context that continues it (zlib: raw deflate blocks, no second header; zstd:
    /// the open frame's end, then a new frame). What is lost is the history: the
    /// first message after a release compresses like the first of a connection.
    pub fn release(&mut self) {
        if !self.is_released() {
            self.codec = Codec::Released {
                compression: self.compression(),
                frame_open: true,
            };
        }
    }

    /// Whether the context is released (see [`StreamCompressor::release`]).
    pub fn is_released(&self) -> bool {
        matches!(self.codec, Codec::Released { .. })
    }

    /// Like [`StreamCompressor::compress`], but a released context stays released:
    /// the message goes into the stream stored, not compressed (zlib: a stored deflate
    /// block and the usual sync-flush end; zstd: a frame of raw blocks). For the small
    /// frames an idle connection still gets (HEARTBEAT_ACK), which would otherwise
    /// bring the whole context back every heartbeat.
    ///
    /// # Errors
    /// As [`StreamCompressor::compress`].
    pub fn compress_small(&mut self, message: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        let Codec::Released {
            compression,
            frame_open,
        } = &mut self.codec
        else {
            return self.compress(message, out);
        };
        match compression {
            Compression::Zlib => {
                // After a sync flush the stream is on a byte boundary between blocks.
                for block in message.chunks(usize::from(u16::MAX)) {
                    let len = block.len() as u16;
                    out.push(0x00); // BFINAL 0, BTYPE 00 (stored), padding
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(&(!len).to_le_bytes());
                    out.extend_from_slice(block);
                }
                out.extend_from_slice(&EMPTY_STORED_BLOCK);
            }
            Compression::Zstd => {
                if std::mem::take(frame_open) {
                    out.extend_from_slice(&ZSTD_LAST_EMPTY_BLOCK);
                }
                zstd_raw_frame(message, out);
            }
        }
        Ok(())
    }

    /// The codec of this stream.
    pub fn compression(&self) -> Compression {
        match self.codec {
            Codec::Zlib { .. } => Compression::Zlib,
            Codec::Zstd(_) => Compression::Zstd,
            Codec::Released { compression, .. } => compression,
        }
    }

    /// Appends to `out` the compressed bytes of one whole message, flushed: a client
    /// that has fed all earlier outputs of this stream to one decoder gets exactly
    /// `message` from these bytes. With zlib they end in `00 00 ff ff`. With zstd an
    /// empty message may add no bytes (nothing to send); zlib always adds some.
    ///
    /// # Errors
    ///
    /// The codec's error, as [`io::ErrorKind::Other`]; the stream is unusable
    /// afterwards. `out` may then hold a partial output after its original length.
    pub fn compress(&mut self, message: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "compression stream is broken by an earlier error",
            ));
        }
        if let Codec::Released {
            compression,
            frame_open,
        } = self.codec
        {
            self.codec = Self::context(compression, self.config, true).inspect_err(|_| {
                self.broken = true;
            })?;
            if frame_open && compression == Compression::Zstd {
                // The released context's frame is still open in the client's decoder:
                // end it with an empty last block (raw, size 0; no checksum is on),
                // and the new context's frame follows.
                out.extend_from_slice(&ZSTD_LAST_EMPTY_BLOCK);
            }
        }
        let result = match &mut self.codec {
            Codec::Zlib { deflate, .. } => deflate_sync(deflate, message, out),
            Codec::Zstd(cctx) => zstd_flush(cctx, message, out),
            Codec::Released { .. } => unreachable!("a context was just created"),
        };
        self.broken = result.is_err();
        result
    }

    /// Approximate bytes of memory this context holds, the per-connection cost.
    ///
    /// zstd: `ZSTD_sizeof_CCtx`, exact. It grows to its working size on the first
    /// message, so ask after one. zlib: computed from zlib-rs's allocation layout
    /// (window and `prev` chain of `2 * 2^window_bits` bytes each, the fixed 128 KiB
    /// hash head, `7 * 2^(mem_level + 6)` bytes of pending and symbol buffers) plus
    /// about 6 KiB of state; zlib-rs allocates all of it up front. This is not C
    /// zlib's documented `2^(windowBits+2) + 2^(memLevel+9)`: zlib-rs, like zlib-ng,
    /// sizes its hash table at 64Ki entries whatever `memLevel` says.
    pub fn context_bytes(&self) -> usize {
        match &self.codec {
            Codec::Zlib { config, .. } => {
                let window = 1usize << config.window_bits;
                let lit_bufsize = 1usize << (config.mem_level + 6);
                ZLIB_RS_STATE_BYTES + 4 * window + ZLIB_RS_HEAD_BYTES + 7 * lit_bufsize
            }
            Codec::Zstd(cctx) => cctx.sizeof(),
            Codec::Released { .. } => 0,
        }
    }
}

fn check(ok: bool, message: &'static str) -> io::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidInput, message))
    }
}

fn zstd_context(config: ZstdConfig) -> io::Result<CCtx<'static>> {
    let mut cctx = CCtx::try_create().ok_or_else(|| {
        io::Error::new(io::ErrorKind::OutOfMemory, "cannot allocate a zstd context")
    })?;
    let mut set = |param: CParameter, what: &'static str| {
        cctx.set_parameter(param)
            .map(drop)
            .map_err(|code| invalid_zstd(what, code))
    };
    set(CParameter::CompressionLevel(config.level), "zstd level")?;
    if let Some(log) = config.window_log {
        // Not zstd's own upper bound (31): above 27 a standard decoder refuses the
        // frame unless its caller raised the limit.
        check((10..=27).contains(&log), "zstd window_log must be 10..=27")?;
        set(CParameter::WindowLog(log), "zstd window_log")?;
    }
    if let Some(log) = config.hash_log {
        set(CParameter::HashLog(log), "zstd hash_log")?;
    }
    if let Some(log) = config.chain_log {
        set(CParameter::ChainLog(log), "zstd chain_log")?;
    }
    // A checksum is only written at the end of a frame, which this stream never has.
    set(CParameter::ChecksumFlag(false), "zstd checksum flag")?;
    Ok(cctx)
}

fn invalid_zstd(what: &'static str, code: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}: {}", zstd_safe::get_error_name(code)),
    )
}

/// Room for one deflate pass over `len` bytes: stored blocks cost 5 bytes per 64 KiB,
/// plus the header and the flush marker.
fn deflate_room(len: usize) -> usize {
    len + len / 1024 + 64
}

fn deflate_sync(deflate: &mut Deflate, message: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let start = out.len();
    let mut input = message;
    let mut room = deflate_room(message.len());
    loop {
        // zlib-rs writes into initialized bytes only; zero the room, trim after.
        let len = out.len();
        out.resize(len + room, 0);
        let (in_before, out_before) = (deflate.total_in(), deflate.total_out());
        let status = deflate.compress(input, &mut out[len..], DeflateFlush::SyncFlush);
        // Both are bounded by the slices handed in, so they fit in usize.
        let consumed = usize::try_from(deflate.total_in() - in_before).unwrap_or(input.len());
        let produced = usize::try_from(deflate.total_out() - out_before).unwrap_or(room);
        out.truncate(len + produced.min(room));
        input = input.get(consumed..).unwrap_or_default();
        match status {
            Err(e) => return Err(io::Error::other(format!("deflate: {}", e.as_str()))),
            // Nothing left to flush: a second flush in a row has nothing to add.
            Ok(Status::BufError) if consumed == 0 && produced == 0 => {
                if !input.is_empty() {
                    return Err(io::Error::other("deflate made no progress"));
                }
                break;
            }
            Ok(_) => {}
        }
        // Done once all input is in and the flush fit in the room it had.
        if input.is_empty() && produced < room {
            break;
        }
        room = deflate_room(input.len()).max(room);
    }
    // zlib refuses a flush right after a flush with no input in between, so an
    // empty message after another message writes nothing. The stream is aligned after
    // the previous sync flush, so write the empty stored block that flush would have.
    if out.len() == start {
        out.extend_from_slice(&EMPTY_STORED_BLOCK);
    }
    Ok(())
}

fn zstd_flush(cctx: &mut CCtx<'static>, message: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut input = InBuffer::around(message);
    let mut room = zstd_safe::compress_bound(message.len()).saturating_add(32);
    loop {
        out.reserve(room);
        let pos = out.len();
        let mut output = OutBuffer::around_pos(out, pos);
        let left = cctx
            .compress_stream2(&mut output, &mut input, ZSTD_EndDirective::ZSTD_e_flush)
            .map_err(|code| {
                io::Error::other(format!("zstd: {}", zstd_safe::get_error_name(code)))
            })?;
        if left == 0 && input.pos() == message.len() {
            return Ok(());
        }
        room = left.max(256);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};
    use zstd_safe::DCtx;

    fn dispatch(i: usize, content: &str) -> Vec<u8> {
        format!(
            concat!(
                r#"{{"op":0,"s":{i},"t":"MESSAGE_CREATE","d":{{"id":"01J{i:023}","#,
                r#""channel_id":"01J9ZK3V8Q6X2M4N7P1R5T0W3Y","author":{{"id":"01J9ZK2A4B6C8D0E2F4G6H8J0K","#,
                r#""username":"user{u}","display_name":"User {u}","avatar":null,"bot":false}},"#,
                r#""content":"{content}","timestamp":"2026-11-22T20:{m:02}:{s:02}.123Z","#,
                r#""edited_timestamp":null,"mentions":[],"attachments":[],"nonce":"{i}"}}}}"#
            ),
            i = i,
            u = i % 7,
            m = i % 60,
            s = (i * 7) % 60,
            content = content,
        )
        .into_bytes()
    }

    /// Deterministic, poorly compressible text (an LCG over a 64-letter alphabet).
    fn noise(len: usize, seed: u64) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .";
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                char::from(ALPHABET[usize::try_from(x >> 58).unwrap()])
            })
            .collect()
    }

    fn messages() -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new(), b"x".to_vec(), b"{}".to_vec()];
        for i in 0..20 {
            all.push(dispatch(
                i,
                &format!("message {i}: {}", noise(100, i as u64)),
            ));
        }
        let same = dispatch(100, &"hello there ".repeat(8));
        all.extend([same.clone(), same.clone(), Vec::new(), Vec::new(), same]);
        // 16 KiB: past a 4 KiB window and a 16 KiB zstd block.
        all.push(dispatch(200, &noise(16 * 1024, 7)));
        all.push(dispatch(201, &"a".repeat(16 * 1024)));
        all.push(b"\x00\xff\x00\xff binary".to_vec());
        for i in 0..20 {
            let content = if i % 3 == 0 {
                noise(40 + i * 30, 1000 + i as u64)
            } else {
                format!("short {i}")
            };
            all.push(dispatch(300 + i, &content));
        }
        all.push(b"y".to_vec());
        all
    }

    fn zlib_chunks(config: CompressionConfig, messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut compressor = StreamCompressor::new(Compression::Zlib, config).unwrap();
        messages
            .iter()
            .map(|m| {
                let mut chunk = Vec::new();
                compressor.compress(m, &mut chunk).unwrap();
                chunk
            })
            .collect()
    }

    /// Feeds one chunk to a long-lived inflate and returns everything it yields.
    fn inflate_chunk(inflate: &mut Decompress, chunk: &[u8]) -> Vec<u8> {
        let mut decoded = Vec::with_capacity(256);
        let mut pos = 0;
        loop {
            if decoded.len() == decoded.capacity() {
                decoded.reserve(decoded.len().max(256));
            }
            let (in_before, out_before) = (inflate.total_in(), inflate.total_out());
            inflate
                .decompress_vec(&chunk[pos..], &mut decoded, FlushDecompress::Sync)
                .expect("valid deflate data");
            let consumed = usize::try_from(inflate.total_in() - in_before).unwrap();
            let produced = inflate.total_out() - out_before;
            pos += consumed;
            if pos == chunk.len() && decoded.len() < decoded.capacity() {
                return decoded;
            }
            assert!(consumed > 0 || produced > 0, "inflate stalled");
        }
    }

    /// Feeds one chunk to a long-lived zstd decoder; returns what it yields and the
    /// decoder's last hint (0 only when a frame ended).
    fn zstd_decode_chunk(dctx: &mut DCtx<'static>, chunk: &[u8]) -> (Vec<u8>, usize) {
        let mut decoded: Vec<u8> = Vec::with_capacity(256);
        let mut input = InBuffer::around(chunk);
        loop {
            if decoded.len() == decoded.capacity() {
                decoded.reserve(decoded.len().max(256));
            }
            let pos = decoded.len();
            let hint = dctx
                .decompress_stream(&mut OutBuffer::around_pos(&mut decoded, pos), &mut input)
                .expect("valid zstd data");
            let full = decoded.len() == decoded.capacity();
            if input.pos() == chunk.len() && !full {
                return (decoded, hint);
            }
        }
    }

    fn zlib_round_trip(config: CompressionConfig, messages: &[Vec<u8>]) {
        let chunks = zlib_chunks(config, messages);
        // A standard inflate with the default 32 KiB window (miniz_oxide, not the
        // implementation that compressed).
        let mut inflate = Decompress::new(true);
        for (i, (message, chunk)) in messages.iter().zip(&chunks).enumerate() {
            assert!(
                chunk.ends_with(&[0x00, 0x00, 0xff, 0xff]),
                "chunk {i} does not end with a sync flush: {config:?}"
            );
            assert_eq!(
                &inflate_chunk(&mut inflate, chunk),
                message,
                "message {i} with {config:?}"
            );
        }
    }

    #[test]
    fn zlib_chunks_decode_one_by_one_in_one_inflate_stream() {
        let messages = messages();
        assert!(messages.len() >= 50);
        zlib_round_trip(CompressionConfig::default(), &messages);
        let large = ZlibConfig {
            level: 6,
            window_bits: 15,
            mem_level: 8,
        };
        zlib_round_trip(
            CompressionConfig {
                zlib: large,
                ..CompressionConfig::default()
            },
            &messages,
        );
    }

    #[test]
    fn zlib_every_window_and_mem_level_round_trips() {
        let messages: Vec<_> = messages().into_iter().skip(15).take(20).collect();
        for window_bits in 9..=15 {
            for mem_level in [1, 2, 5, 9] {
                for level in [0, 1, 9] {
                    let zlib = ZlibConfig {
                        level,
                        window_bits,
                        mem_level,
                    };
                    zlib_round_trip(
                        CompressionConfig {
                            zlib,
                            ..CompressionConfig::default()
                        },
                        &messages,
                    );
                }
            }
        }
    }

    #[test]
    fn zlib_empty_message_first_and_after_empty_decodes_to_nothing() {
        let messages = vec![
            Vec::new(),
            Vec::new(),
            b"a".to_vec(),
            Vec::new(),
            Vec::new(),
        ];
        zlib_round_trip(CompressionConfig::default(), &messages);
        // Right after a flush deflate has nothing to write; the stream still gets its
        // empty stored block, so the client sees the usual suffix.
        let chunks = zlib_chunks(CompressionConfig::default(), &messages);
        assert_eq!(chunks[1], EMPTY_STORED_BLOCK);
        assert_eq!(chunks[4], EMPTY_STORED_BLOCK);
    }

    fn zstd_round_trip(config: CompressionConfig, messages: &[Vec<u8>]) {
        let mut compressor = StreamCompressor::new(Compression::Zstd, config).unwrap();
        let mut dctx = DCtx::try_create().unwrap();
        let mut started = false;
        for (i, message) in messages.iter().enumerate() {
            let mut chunk = vec![0xAA]; // compress appends
            compressor.compress(message, &mut chunk).unwrap();
            assert_eq!(chunk[0], 0xAA);
            let chunk = &chunk[1..];
            started |= !chunk.is_empty();
            let (decoded, hint) = zstd_decode_chunk(&mut dctx, chunk);
            assert_eq!(&decoded, message, "message {i} with {config:?}");
            // Flushed, never ended: the decoder still waits for more of the frame.
            assert!(!started || hint > 0, "chunk {i} ended the frame");
        }
    }

    #[test]
    fn zstd_chunks_decode_one_by_one_in_one_decoder_stream() {
        let messages = messages();
        zstd_round_trip(CompressionConfig::default(), &messages);
        let large = ZstdConfig {
            level: 3,
            window_log: None,
            hash_log: None,
            chain_log: None,
        };
        zstd_round_trip(
            CompressionConfig {
                zstd: large,
                ..CompressionConfig::default()
            },
            &messages,
        );
        let tiny = ZstdConfig {
            level: -5,
            window_log: Some(10),
            hash_log: Some(6),
            chain_log: Some(6),
        };
        zstd_round_trip(
            CompressionConfig {
                zstd: tiny,
                ..CompressionConfig::default()
            },
            &messages,
        );
    }

    #[test]
    fn a_released_context_frees_its_memory_and_the_stream_goes_on_for_one_decoder() {
        let messages = messages();
        for compression in [Compression::Zlib, Compression::Zstd] {
            let mut stream =
                StreamCompressor::new(compression, CompressionConfig::default()).expect("context");
            let mut inflate = Decompress::new(true);
            let mut dctx = DCtx::try_create().unwrap();
            let mut decode = |chunk: &[u8]| match compression {
                Compression::Zlib => inflate_chunk(&mut inflate, chunk),
                Compression::Zstd => zstd_decode_chunk(&mut dctx, chunk).0,
            };
            for (i, message) in messages.iter().take(12).enumerate() {
                // Released after every third message, twice in a row once.
                if i % 3 == 2 || i == 9 {
                    stream.release();
                    assert!(stream.is_released());
                    assert_eq!(stream.context_bytes(), 0, "{compression}");
                    stream.release();
                }
                if stream.is_released() {
                    // Small frames while released stay stored; the context stays free.
                    for small in [&b"{\"op\":\"HEARTBEAT_ACK\"}"[..], b""] {
                        let mut chunk = Vec::new();
                        stream.compress_small(small, &mut chunk).unwrap();
                        assert!(stream.is_released());
                        assert_eq!(decode(&chunk), small, "{compression}, stored");
                    }
                }
                let mut chunk = Vec::new();
                stream.compress(message, &mut chunk).unwrap();
                assert!(!stream.is_released());
                assert_eq!(&decode(&chunk), message, "{compression}, message {i}");
            }
        }
    }

    #[test]
    fn zstd_empty_messages_decode_to_nothing() {
        let messages = vec![
            Vec::new(),
            Vec::new(),
            b"a".to_vec(),
            Vec::new(),
            b"b".to_vec(),
        ];
        zstd_round_trip(CompressionConfig::default(), &messages);
    }

    #[test]
    fn a_repeated_message_costs_less_than_the_first_time() {
        let message = dispatch(1, &noise(100, 42));
        for compression in [Compression::Zlib, Compression::Zstd] {
            let mut compressor =
                StreamCompressor::new(compression, CompressionConfig::default()).unwrap();
            let mut first = Vec::new();
            compressor.compress(&message, &mut first).unwrap();
            let mut again = Vec::new();
            compressor.compress(&message, &mut again).unwrap();
            assert!(
                again.len() * 4 < first.len(),
                "{compression}: {} then {} bytes",
                first.len(),
                again.len()
            );
            // A fresh context has no history to refer to.
            let mut fresh = Vec::new();
            StreamCompressor::new(compression, CompressionConfig::default())
                .unwrap()
                .compress(&message, &mut fresh)
                .unwrap();
            assert_eq!(fresh.len(), first.len(), "{compression}");
        }
    }

    #[test]
    fn out_of_range_settings_are_errors_not_panics() {
        let bad_zlib = [
            ZlibConfig {
                level: 10,
                ..ZlibConfig::default()
            },
            ZlibConfig {
                window_bits: 8,
                ..ZlibConfig::default()
            },
            ZlibConfig {
                window_bits: 16,
                ..ZlibConfig::default()
            },
            ZlibConfig {
                mem_level: 0,
                ..ZlibConfig::default()
            },
            ZlibConfig {
                mem_level: 10,
                ..ZlibConfig::default()
            },
        ];
        for zlib in bad_zlib {
            let config = CompressionConfig {
                zlib,
                ..CompressionConfig::default()
            };
            let err = StreamCompressor::new(Compression::Zlib, config).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{zlib:?}");
            // The other codec does not care.
            StreamCompressor::new(Compression::Zstd, config).unwrap();
        }
        let bad_zstd = [
            ZstdConfig {
                window_log: Some(9),
                ..ZstdConfig::default()
            },
            ZstdConfig {
                window_log: Some(28),
                ..ZstdConfig::default()
            },
            ZstdConfig {
                hash_log: Some(5),
                ..ZstdConfig::default()
            },
            ZstdConfig {
                chain_log: Some(99),
                ..ZstdConfig::default()
            },
        ];
        for zstd in bad_zstd {
            let config = CompressionConfig {
                zstd,
                ..CompressionConfig::default()
            };
            let err = StreamCompressor::new(Compression::Zstd, config).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{zstd:?}");
        }
        // zstd clamps levels rather than refusing them.
        let clamped = CompressionConfig {
            zstd: ZstdConfig {
                level: i32::MAX,
                ..ZstdConfig::default()
            },
            ..CompressionConfig::default()
        };
        zstd_round_trip(clamped, &messages()[..10]);
    }

    #[test]
    fn query_values_parse_and_print() {
        for compression in [Compression::Zlib, Compression::Zstd] {
            assert_eq!(
                Compression::from_query(compression.as_str()),
                Some(compression)
            );
            assert_eq!(compression.as_str().parse(), Ok(compression));
            assert_eq!(compression.to_string(), compression.as_str());
        }
        for bad in ["", "zlib", "zstd", "ZLIB-STREAM", "zlib-stream ", "gzip"] {
            assert_eq!(Compression::from_query(bad), None, "{bad:?}");
            assert_eq!(bad.parse::<Compression>(), Err(UnknownCompression));
        }
    }

    #[test]
    fn context_bytes_reflect_the_settings() {
        let small = CompressionConfig::default();
        let large = CompressionConfig::library_defaults();
        for compression in [Compression::Zlib, Compression::Zstd] {
            let sizes = [small, large].map(|config| {
                let mut c = StreamCompressor::new(compression, config).unwrap();
                c.compress(&dispatch(1, "hi"), &mut Vec::new()).unwrap();
                c.context_bytes()
            });
            assert!(
                sizes[0] > 1024 && sizes[0] * 2 < sizes[1],
                "{compression}: {sizes:?}"
            );
        }
    }

    #[test]
    fn a_compressor_can_move_to_another_task() {
        fn is_send<T: Send>() {}
        is_send::<StreamCompressor>();
    }
}
