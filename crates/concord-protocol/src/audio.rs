//! Audio over the gateway (protocol v2): formats, the binary chunk header, the media
//! commands and events (`docs/protocol-v2.md` §15).
//!
//! A sender in a voice channel names a format with `MEDIA_START`, then sends one
//! binary frame per 20 ms chunk; the server paces the chunks out to the channel's
//! subscribers, one per 20 ms per speaker, each behind a header that names the
//! speaker. Both headers start with [`AUDIO_MAGIC`], a byte no compressed piece of a
//! v2 stream can start with, so a client on a compressed connection tells audio from
//! events by the first byte.

use serde::{Deserialize, Serialize};

use crate::{ChannelId, UserId};

/// First byte of every audio frame, both ways. Its low three bits (`111`) read as a
/// final block of the reserved type in both deflate (RFC 1951 §3.2.3) and zstd
/// (RFC 8878 §3.1.1.2), and neither the zlib header (0x78) nor the zstd magic (0x28)
/// starts with it, so no piece of a compressed v2 stream ever starts with this byte.
pub const AUDIO_MAGIC: u8 = 0xA7;

/// Second byte of a client → server chunk.
pub const KIND_UPLINK: u8 = 0x01;
/// Second byte of a server → client (relayed) chunk.
pub const KIND_RELAYED: u8 = 0x02;

/// Bytes before the payload of a client → server chunk.
pub const UPLINK_HEADER_LEN: usize = 12;
/// Bytes before the payload of a server → client chunk.
pub const RELAYED_HEADER_LEN: usize = 28;

/// Every chunk is this long.
pub const CHUNK_MS: u32 = 20;

/// The largest Opus packet (RFC 6716 §3.4, R2–R5 allow at most 1275 bytes per frame;
/// a 20 ms chunk of several frames stays under this in practice).
pub const MAX_OPUS_CHUNK: usize = 1275 * 2;

/// An audio format a stream may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AudioFormat {
    /// PCM, signed 16-bit little-endian, mono, 16 kHz: 640 bytes per chunk.
    #[serde(rename = "pcm_s16le_16k")]
    Pcm16k,
    /// PCM, signed 16-bit little-endian, mono, 48 kHz: 1920 bytes per chunk.
    #[serde(rename = "pcm_s16le_48k")]
    Pcm48k,
    /// Opus at 48 kHz (mono or stereo): one Opus packet of 20 ms per chunk.
    #[serde(rename = "opus_48k")]
    Opus48k,
}

impl AudioFormat {
    /// Every format.
    pub const ALL: [Self; 3] = [Self::Pcm16k, Self::Pcm48k, Self::Opus48k];

    /// The wire spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pcm16k => "pcm_s16le_16k",
            Self::Pcm48k => "pcm_s16le_48k",
            Self::Opus48k => "opus_48k",
        }
    }

    /// The format spelled `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The format's code in a relayed chunk's header (byte 2).
    pub const fn code(self) -> u8 {
        match self {
            Self::Pcm16k => 1,
            Self::Pcm48k => 2,
            Self::Opus48k => 3,
        }
    }

    /// The format whose header code is `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.code() == code)
    }

    /// Samples per second.
    pub const fn sample_rate(self) -> u32 {
        match self {
            Self::Pcm16k => 16_000,
            Self::Pcm48k | Self::Opus48k => 48_000,
        }
    }

    /// The exact payload size of one chunk, for PCM; `None` for Opus (variable).
    pub const fn pcm_chunk_bytes(self) -> Option<usize> {
        match self {
            Self::Pcm16k => Some(16_000 / 50 * 2),
            Self::Pcm48k => Some(48_000 / 50 * 2),
            Self::Opus48k => None,
        }
    }

    /// Checks that `payload` is exactly one 20 ms chunk of this format.
    ///
    /// # Errors
    /// Why it is not, for the ERROR's message.
    pub fn check_chunk(self, payload: &[u8]) -> Result<(), String> {
        match self.pcm_chunk_bytes() {
            Some(size) if payload.len() == size => Ok(()),
            Some(size) => Err(format!(
                "a {} chunk is {size} bytes (20 ms), not {}",
                self.as_str(),
                payload.len()
            )),
            None => {
                if payload.is_empty() || payload.len() > MAX_OPUS_CHUNK {
                    return Err(format!(
                        "an opus_48k chunk is 1 to {MAX_OPUS_CHUNK} bytes, not {}",
                        payload.len()
                    ));
                }
                match opus_duration_us(payload) {
                    Some(20_000) => Ok(()),
                    Some(us) => Err(format!(
                        "an opus_48k chunk holds 20 ms of audio, this one {} ms",
                        f64::from(us) / 1000.0
                    )),
                    None => Err("not a well-formed Opus packet".to_string()),
                }
            }
        }
    }
}

/// The audio an Opus packet holds, in microseconds, read from its TOC byte and frame
/// count (RFC 6716 §3.1–3.2); `None` for a packet too short for its framing code.
pub fn opus_duration_us(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame_us: u32 = match config {
        // SILK-only: 10, 20, 40, 60 ms.
        0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
        // Hybrid: 10, 20 ms.
        12..=15 => [10_000, 20_000][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms.
        _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
    };
    let frames: u32 = match toc & 0b11 {
        0 => 1,
        1 | 2 => {
            if packet.len() < 2 {
                return None;
            }
            2
        }
        _ => {
            let count = u32::from(*packet.get(1)? & 0x3f);
            if count == 0 {
                return None;
            }
            count
        }
    };
    Some(frame_us * frames)
}

/// The header of a client → server chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UplinkHeader {
    /// The chunk's number in its stream: the first is 0, each later one higher than
    /// the one before (a gap says chunks were skipped).
    pub sequence: u32,
    /// Milliseconds since the stream's start on the sender's clock, relayed as is.
    pub timestamp: u32,
}

/// Why a binary frame is not an audio chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// It does not start with [`AUDIO_MAGIC`].
    #[error("a binary frame must be an audio chunk starting with 0xA7")]
    NotAudio,
    /// It is shorter than its header, or its kind byte is wrong.
    #[error("malformed audio chunk header")]
    Malformed,
}

impl UplinkHeader {
    /// Writes the header in front of a payload (`out` then takes the payload).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[AUDIO_MAGIC, KIND_UPLINK, 0, 0]);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
    }

    /// A whole client → server frame's bytes: header and payload.
    pub fn frame(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(UPLINK_HEADER_LEN + payload.len());
        self.write(&mut out);
        out.extend_from_slice(payload);
        out
    }

    /// Splits a client → server binary frame into its header and payload.
    ///
    /// # Errors
    /// See [`ChunkError`].
    pub fn parse(frame: &[u8]) -> Result<(Self, &[u8]), ChunkError> {
        if frame.first() != Some(&AUDIO_MAGIC) {
            return Err(ChunkError::NotAudio);
        }
        if frame.len() < UPLINK_HEADER_LEN || frame[1] != KIND_UPLINK {
            return Err(ChunkError::Malformed);
        }
        let header = Self {
            sequence: u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
            timestamp: u32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]),
        };
        Ok((header, &frame[UPLINK_HEADER_LEN..]))
    }
}

/// The header of a server → client (relayed) chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayedHeader {
    /// The stream's format.
    pub format: AudioFormat,
    /// The sender's sequence number.
    pub sequence: u32,
    /// The sender's timestamp.
    pub timestamp: u32,
    /// Who is speaking.
    pub speaker: UserId,
}

impl RelayedHeader {
    /// Writes the header (`out` then takes the payload).
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[AUDIO_MAGIC, KIND_RELAYED, self.format.code(), 0]);
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(self.speaker.get().as_bytes());
    }

    /// Splits a server → client binary frame into its header and payload.
    ///
    /// # Errors
    /// See [`ChunkError`].
    pub fn parse(frame: &[u8]) -> Result<(Self, &[u8]), ChunkError> {
        if frame.first() != Some(&AUDIO_MAGIC) {
            return Err(ChunkError::NotAudio);
        }
        if frame.len() < RELAYED_HEADER_LEN || frame[1] != KIND_RELAYED {
            return Err(ChunkError::Malformed);
        }
        let format = AudioFormat::from_code(frame[2]).ok_or(ChunkError::Malformed)?;
        let mut speaker = [0u8; 16];
        speaker.copy_from_slice(&frame[12..28]);
        let header = Self {
            format,
            sequence: u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
            timestamp: u32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]),
            speaker: UserId::from_uuid(uuid::Uuid::from_bytes(speaker)),
        };
        Ok((header, &frame[RELAYED_HEADER_LEN..]))
    }
}

/// `MEDIA_START.d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStart {
    /// The stream's format.
    pub format: AudioFormat,
}

/// `MEDIA_SUBSCRIBE.d`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MediaSubscribe {
    /// Only these speakers; absent or null: every speaker in the channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speakers: Option<Vec<UserId>>,
}

/// A media command (v2 only; a v1 client's is ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaCommand {
    /// Open a stream in the caller's voice channel.
    Start(MediaStart),
    /// End the stream once everything buffered has been released.
    Stop,
    /// Drop everything not yet released and end the stream at once.
    Clear,
    /// Receive the channel's audio (replaces an earlier subscription's filter).
    Subscribe(MediaSubscribe),
    /// Stop receiving it.
    Unsubscribe,
}

/// `MEDIA_STARTED.d`: a stream began (to its channel's subscribers and its sender).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaStarted {
    /// The speaker.
    pub user_id: UserId,
    /// The voice channel.
    pub channel_id: ChannelId,
    /// The stream's format.
    pub format: AudioFormat,
}

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaEndReason {
    /// `MEDIA_STOP`, and everything buffered was released.
    Stopped,
    /// The speaker left (or moved out of) the voice channel, or was server-muted.
    Left,
    /// The sending session's socket went away.
    Disconnected,
    /// `MEDIA_CLEAR`: what was buffered was dropped.
    Cleared,
}

/// `MEDIA_ENDED.d`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaEnded {
    /// The speaker.
    pub user_id: UserId,
    /// The voice channel.
    pub channel_id: ChannelId,
    /// Why.
    pub reason: MediaEndReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let up = UplinkHeader {
            sequence: 7,
            timestamp: 140,
        };
        let frame = up.frame(&[1, 2, 3]);
        assert_eq!(frame.len(), UPLINK_HEADER_LEN + 3);
        assert_eq!(UplinkHeader::parse(&frame), Ok((up, &[1u8, 2, 3][..])));
        let speaker = UserId::new();
        let relayed = RelayedHeader {
            format: AudioFormat::Opus48k,
            sequence: u32::MAX,
            timestamp: 99,
            speaker,
        };
        let mut out = Vec::new();
        relayed.write(&mut out);
        assert_eq!(out.len(), RELAYED_HEADER_LEN);
        out.push(9);
        assert_eq!(RelayedHeader::parse(&out), Ok((relayed, &[9u8][..])));
        assert_eq!(
            UplinkHeader::parse(b"{\"op\":1}"),
            Err(ChunkError::NotAudio)
        );
        assert_eq!(
            UplinkHeader::parse(&[AUDIO_MAGIC, KIND_UPLINK, 0]),
            Err(ChunkError::Malformed)
        );
        assert_eq!(
            UplinkHeader::parse(&out),
            Err(ChunkError::Malformed),
            "a relayed chunk is not an uplink chunk"
        );
    }

    #[test]
    fn the_magic_byte_is_a_reserved_block_in_deflate_and_zstd() {
        // BFINAL = 1, BTYPE = 11 (deflate); Last_Block = 1, Block_Type = 3 (zstd).
        assert_eq!(AUDIO_MAGIC & 0b111, 0b111);
        assert_ne!(AUDIO_MAGIC, 0x78);
        assert_ne!(AUDIO_MAGIC, 0x28);
    }

    #[test]
    fn pcm_chunks_are_exactly_20_ms() {
        assert!(AudioFormat::Pcm16k.check_chunk(&[0; 640]).is_ok());
        assert!(AudioFormat::Pcm16k.check_chunk(&[0; 642]).is_err());
        assert!(AudioFormat::Pcm48k.check_chunk(&[0; 1920]).is_ok());
        assert!(AudioFormat::Pcm48k.check_chunk(&[0; 640]).is_err());
    }

    #[test]
    fn opus_packets_are_measured_from_their_toc() {
        // config 31 (CELT 20 ms), code 0: one 20 ms frame.
        assert!(AudioFormat::Opus48k.check_chunk(&[31 << 3, 1, 2]).is_ok());
        // config 1 (SILK 20 ms), code 0.
        assert!(AudioFormat::Opus48k.check_chunk(&[1 << 3, 0]).is_ok());
        // config 0 (SILK 10 ms), code 1: two 10 ms frames.
        assert!(AudioFormat::Opus48k.check_chunk(&[1, 0, 0]).is_ok());
        // config 29 (CELT 5 ms), code 3 with 4 frames.
        assert!(
            AudioFormat::Opus48k
                .check_chunk(&[(29 << 3) | 3, 4])
                .is_ok()
        );
        // config 3 (SILK 60 ms): too long.
        assert!(AudioFormat::Opus48k.check_chunk(&[3 << 3]).is_err());
        // code 3 with zero frames, and an empty packet.
        assert!(
            AudioFormat::Opus48k
                .check_chunk(&[(31 << 3) | 3, 0])
                .is_err()
        );
        assert!(AudioFormat::Opus48k.check_chunk(&[]).is_err());
    }

    #[test]
    fn formats_spell_and_code() {
        for format in AudioFormat::ALL {
            assert_eq!(AudioFormat::parse(format.as_str()), Some(format));
            assert_eq!(AudioFormat::from_code(format.code()), Some(format));
            let json = serde_json::to_string(&format).unwrap();
            assert_eq!(json, format!("\"{}\"", format.as_str()));
        }
        assert_eq!(AudioFormat::parse("pcm"), None);
    }
}
