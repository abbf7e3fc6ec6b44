//! Protocol v2 on the wire: each session's own envelope around the shared bytes.
//!
//! The fan-out queues one shared payload per event: the v1 frame. A v1 session writes
//! it as it is. A v2 session numbers each dispatch and writes a short envelope start
//! of its own, the frame header and `{"op":"DISPATCH","s":N,`, followed by the shared
//! bytes after the v1 start (`"t":…,"d":…}`): no copy of the event, one small buffer
//! per write. With stream compression every frame is the session's own: the message
//! is compressed into the connection's stream and sent as a binary frame.

use std::io;

use tokio::time::Instant;

use crate::{Frames, Payload, StreamCompressor, payload::DISPATCH_PREFIX, replay::Replay};

/// FIN + text, FIN + binary.
const FIN_TEXT: u8 = 0x81;
const FIN_BINARY: u8 = 0x82;

/// A v2 session's outbound state: its numbering, what it sent (for RESUME), and its
/// compression stream if it asked for one.
#[derive(Debug)]
pub(crate) struct V2Stream {
    /// The last sequence number sent.
    pub(crate) seq: u64,
    pub(crate) replay: Replay,
}

/// One write's bytes: whole frames, contiguous, written with one write. Copying the
/// shared body of each event here (a few hundred bytes) measured cheaper than a
/// vectored write of a header and a body slice per frame, and it needs one buffer per
/// write instead of a list of pieces.
#[derive(Debug, Default)]
pub(crate) struct Encoded {
    buf: Vec<u8>,
    /// Reused across the messages of one encoding (compression only).
    message: Vec<u8>,
    compressed: Vec<u8>,
}

impl Encoded {
    /// The bytes to write.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Appends bytes that are already whole frames (a relayed audio chunk).
    pub(crate) fn raw(&mut self, frames: &[u8]) {
        self.buf.extend_from_slice(frames);
    }

    /// Empties it for the next write (its buffers stay).
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// One frame: text uncompressed, or compressed into the stream as binary.
    /// `small`: a frame an idle connection also gets (not an event), which does not
    /// bring a released compression context back.
    pub(crate) fn message(
        &mut self,
        compressor: Option<&mut StreamCompressor>,
        head: &[u8],
        rest: &[u8],
        small: bool,
    ) -> io::Result<()> {
        match compressor {
            None => {
                self.buf.reserve(10 + head.len() + rest.len());
                push_header(&mut self.buf, FIN_TEXT, head.len() + rest.len());
                self.buf.extend_from_slice(head);
                self.buf.extend_from_slice(rest);
            }
            Some(compressor) => {
                self.message.clear();
                self.message.extend_from_slice(head);
                self.message.extend_from_slice(rest);
                self.compressed.clear();
                if small {
                    compressor.compress_small(&self.message, &mut self.compressed)?;
                } else {
                    compressor.compress(&self.message, &mut self.compressed)?;
                }
                if self.compressed.is_empty() {
                    // zstd may have nothing to send for an empty message.
                    return Ok(());
                }
                push_header(&mut self.buf, FIN_BINARY, self.compressed.len());
                self.buf.extend_from_slice(&self.compressed);
            }
        }
        Ok(())
    }
}

/// An unmasked frame header for a payload of `len` bytes.
pub(crate) fn push_header(out: &mut Vec<u8>, first: u8, len: usize) {
    out.push(first);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// `{"op":"DISPATCH","s":N,` into `head`.
fn dispatch_head(head: &mut Vec<u8>, seq: u64) {
    head.clear();
    head.extend_from_slice(DISPATCH_PREFIX);
    head.extend_from_slice(b"\"s\":");
    head.extend_from_slice(itoa(seq, &mut [0; 20]));
    head.push(b',');
}

fn itoa(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

impl V2Stream {
    /// Encodes queued entries: each dispatch with the next number (from the last one
    /// sent), other frames (HELLO, HEARTBEAT_ACK, ERROR, …) as they are. Numbers are
    /// taken, and the dispatches kept for replay, by [`V2Stream::keep`] once written.
    /// Returns how many dispatches it numbered.
    pub(crate) fn encode(
        &self,
        entries: &[Frames],
        mut compressor: Option<&mut StreamCompressor>,
        out: &mut Encoded,
    ) -> io::Result<u64> {
        let mut head = Vec::with_capacity(40);
        let mut seq = self.seq;
        if compressor.is_none() {
            // One allocation for the write: each frame grows by its header and `"s":N,`.
            let (bytes, count) = entries
                .iter()
                .fold((0, 0), |(b, c), e| (b + e.bytes(), c + e.count()));
            out.buf.reserve(bytes + 32 * count);
        }
        for payload in entries.iter().flat_map(Frames::iter) {
            match payload.dispatch_rest() {
                Some(rest) => {
                    seq += 1;
                    dispatch_head(&mut head, seq);
                    out.message(compressor.as_deref_mut(), &head, rest, false)?;
                }
                None => encode_plain(payload, compressor.as_deref_mut(), out)?,
            }
        }
        Ok(seq - self.seq)
    }

    /// Takes the numbers [`V2Stream::encode`] gave these entries and keeps their
    /// dispatches for replay. The entries move into the buffer: a delivery costs no
    /// more reference counting on the shared bytes than in v1, where they are dropped.
    pub(crate) fn keep<I: IntoIterator<Item = Frames>>(&mut self, entries: I, now: Instant) {
        for entry in entries {
            match entry {
                Frames::One(payload) => {
                    if payload.dispatch_rest().is_some() {
                        self.seq += 1;
                        self.replay.push(self.seq, payload, now);
                    }
                }
                batch => {
                    for payload in batch.iter() {
                        if payload.dispatch_rest().is_some() {
                            self.seq += 1;
                            self.replay.push(self.seq, payload.clone(), now);
                        }
                    }
                }
            }
        }
        self.replay.settle();
    }

    /// Encodes events being replayed, with the numbers they were first sent with.
    pub(crate) fn encode_replayed(
        events: &[(u64, Payload)],
        mut compressor: Option<&mut StreamCompressor>,
        out: &mut Encoded,
    ) -> io::Result<()> {
        let mut head = Vec::with_capacity(40);
        for (seq, payload) in events {
            if let Some(rest) = payload.dispatch_rest() {
                dispatch_head(&mut head, *seq);
                out.message(compressor.as_deref_mut(), &head, rest, false)?;
            }
        }
        Ok(())
    }
}

/// A frame that is not numbered: as it is, or compressed.
pub(crate) fn encode_plain(
    payload: &Payload,
    compressor: Option<&mut StreamCompressor>,
    out: &mut Encoded,
) -> io::Result<()> {
    match compressor {
        None => {
            out.buf.extend_from_slice(payload.frame());
            Ok(())
        }
        Some(compressor) => out.message(Some(compressor), payload.json_bytes(), &[], true),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use concord_protocol::Event;

    use super::*;
    use crate::{ReplayBudget, ReplayLimits};

    fn stream() -> V2Stream {
        V2Stream {
            seq: 0,
            replay: Replay::new(
                ReplayLimits::default(),
                Arc::new(ReplayBudget::new(usize::MAX)),
            ),
        }
    }

    /// Reads every frame of `bytes` with tungstenite's own parser.
    fn frames(bytes: &[u8]) -> Vec<(bool, Vec<u8>)> {
        use tungstenite::protocol::frame::{
            FrameHeader,
            coding::{Data, OpCode},
        };
        let mut cursor = std::io::Cursor::new(bytes);
        let mut out = Vec::new();
        while (cursor.position() as usize) < bytes.len() {
            let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.is_final && header.mask.is_none());
            let start = cursor.position() as usize;
            let body = bytes[start..start + len as usize].to_vec();
            cursor.set_position((start + len as usize) as u64);
            out.push((header.opcode == OpCode::Data(Data::Text), body));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn dispatches_are_numbered_around_the_shared_bytes() {
        let mut s = stream();
        let big = "y".repeat(300);
        let entries = vec![
            Frames::One(
                Payload::dispatch(Event::TypingStart, &serde_json::json!({"a": 1})).unwrap(),
            ),
            Frames::One(Payload::text(concord_protocol::HEARTBEAT_ACK)),
            Frames::One(
                Payload::dispatch(Event::MessageCreate, &serde_json::json!({"b": big})).unwrap(),
            ),
        ];
        let mut out = Encoded::default();
        s.encode(&entries, None, &mut out).unwrap();
        s.keep(entries, Instant::now());
        let wire: Vec<u8> = out.bytes().to_vec();
        let texts: Vec<String> = frames(&wire)
            .into_iter()
            .map(|(text, body)| {
                assert!(text);
                String::from_utf8(body).unwrap()
            })
            .collect();
        assert_eq!(
            texts[0],
            r#"{"op":"DISPATCH","s":1,"t":"TYPING_START","d":{"a":1}}"#
        );
        assert_eq!(texts[1], r#"{"op":"HEARTBEAT_ACK"}"#);
        let third: serde_json::Value = serde_json::from_str(&texts[2]).unwrap();
        assert_eq!(third["s"], 2);
        assert_eq!(third["d"]["b"], big);
        assert_eq!(s.seq, 2);
        let replayed = s.replay.after(0, 2).unwrap();
        let mut again = Encoded::default();
        V2Stream::encode_replayed(&replayed, None, &mut again).unwrap();
        let wire: Vec<u8> = again.bytes().to_vec();
        assert_eq!(frames(&wire).len(), 2);
    }

    #[test]
    fn numbers_print_like_json() {
        for n in [0, 7, 10, 99, 12_345, u64::MAX] {
            assert_eq!(itoa(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn compressed_frames_decode_with_flate2() {
        use std::io::Write;
        let s = stream();
        let mut zlib = StreamCompressor::new(
            crate::Compression::Zlib,
            crate::CompressionConfig::default(),
        )
        .unwrap();
        let entries = vec![
            Frames::One(
                Payload::dispatch(Event::TypingStart, &serde_json::json!({"a": 1})).unwrap(),
            ),
            Frames::One(
                Payload::dispatch(Event::TypingStart, &serde_json::json!({"a": 2})).unwrap(),
            ),
        ];
        let mut out = Encoded::default();
        s.encode(&entries, Some(&mut zlib), &mut out).unwrap();
        let wire: Vec<u8> = out.bytes().to_vec();
        let mut inflate = flate2::write::ZlibDecoder::new(Vec::new());
        let mut texts = Vec::new();
        for (text, body) in frames(&wire) {
            assert!(!text, "compressed frames are binary");
            assert!(body.ends_with(&[0, 0, 0xff, 0xff]));
            inflate.write_all(&body).unwrap();
            inflate.flush().unwrap();
            texts.push(String::from_utf8(std::mem::take(inflate.get_mut())).unwrap());
        }
        assert_eq!(
            texts,
            [
                r#"{"op":"DISPATCH","s":1,"t":"TYPING_START","d":{"a":1}}"#,
                r#"{"op":"DISPATCH","s":2,"t":"TYPING_START","d":{"a":2}}"#
            ]
        );
    }
}
