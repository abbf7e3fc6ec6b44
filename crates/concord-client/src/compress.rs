//! Decoders of the server's compressed stream (`extensions.md`): one context for the
//! connection's life, each binary frame exactly one message.

use crate::Compression;

/// Why a compressed frame could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The zlib stream is broken.
    #[error("zlib: {0}")]
    Zlib(#[from] flate2::DecompressError),
    /// The zstd stream is broken (zstd's error code).
    #[error("zstd: error code {0}")]
    Zstd(usize),
    /// The message inflates past this many bytes.
    #[error("message larger than {0} bytes")]
    TooBig(usize),
}

/// The client's decoder for one connection.
pub(crate) enum Inflate {
    Zlib(Box<flate2::Decompress>),
    Zstd(zstd_safe::DCtx<'static>),
}

impl Inflate {
    pub(crate) fn new(compression: Compression) -> Self {
        match compression {
            Compression::ZlibStream => Self::Zlib(Box::new(flate2::Decompress::new(true))),
            Compression::ZstdStream => Self::Zstd(zstd_safe::DCtx::create()),
        }
    }

    /// Whether this is the zlib stream (whose messages end with a sync flush).
    pub(crate) fn is_zlib(&self) -> bool {
        matches!(self, Self::Zlib(_))
    }

    /// Decodes one binary frame into `out` (cleared first), refusing to grow it past
    /// `limit` bytes.
    pub(crate) fn message(
        &mut self,
        frame: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        out.clear();
        match self {
            Self::Zlib(inflate) => {
                let mut input = frame;
                loop {
                    if out.len() >= limit {
                        return Err(InflateError::TooBig(limit));
                    }
                    let room = limit - out.len();
                    out.reserve((4 * input.len()).max(4096).min(room));
                    let before = inflate.total_in();
                    inflate.decompress_vec(input, out, flate2::FlushDecompress::Sync)?;
                    let used = usize::try_from(inflate.total_in() - before).unwrap_or(input.len());
                    input = &input[used.min(input.len())..];
                    if input.is_empty() && out.len() < out.capacity() {
                        return Ok(());
                    }
                }
            }
            Self::Zstd(dctx) => {
                let mut input = zstd_safe::InBuffer::around(frame);
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    let mut output = zstd_safe::OutBuffer::around(&mut chunk[..]);
                    dctx.decompress_stream(&mut output, &mut input)
                        .map_err(InflateError::Zstd)?;
                    let written = output.pos();
                    if out.len() + written > limit {
                        return Err(InflateError::TooBig(limit));
                    }
                    out.extend_from_slice(&chunk[..written]);
                    if input.pos() == frame.len() && written < chunk.len() {
                        return Ok(());
                    }
                }
            }
        }
    }
}
