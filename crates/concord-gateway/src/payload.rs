//! Outbound frames, encoded once.
//!
//! A server-to-client WebSocket frame is never masked, so the bytes of a frame are the
//! same for every recipient. A [`Payload`] is the complete text frame — header and
//! JSON — built once when the event is serialized; each session's writer hands those
//! shared bytes to the socket as they are, with no per-recipient encoding or copy.

use bytes::Bytes;

/// Longest header of an unmasked frame: 2 bytes + 8 bytes of extended length.
const MAX_HEADER: usize = 10;

/// FIN bit set, opcode 1 (text).
const FIN_TEXT: u8 = 0x81;

/// One complete server → client text frame. Cloning shares the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    frame: Bytes,
    header: u8,
}

impl Payload {
    /// Serializes `value` once into a ready-to-send frame.
    ///
    /// # Errors
    /// When `value` cannot be serialized (a map with non-string keys, say).
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        let mut buffer = Vec::with_capacity(256);
        buffer.extend_from_slice(&[0; MAX_HEADER]);
        serde_json::to_writer(&mut buffer, value)?;
        Ok(Self::framed(buffer))
    }

    /// A frame carrying `text`.
    pub fn text(text: &str) -> Self {
        let mut buffer = Vec::with_capacity(MAX_HEADER + text.len());
        buffer.extend_from_slice(&[0; MAX_HEADER]);
        buffer.extend_from_slice(text.as_bytes());
        Self::framed(buffer)
    }

    /// Writes the header into the space reserved in front of the payload.
    fn framed(mut buffer: Vec<u8>) -> Self {
        let len = buffer.len() - MAX_HEADER;
        let mut header = [0u8; MAX_HEADER];
        header[0] = FIN_TEXT;
        let header_len = if len < 126 {
            header[1] = len as u8;
            2
        } else if let Ok(short) = u16::try_from(len) {
            header[1] = 126;
            header[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            header[1] = 127;
            header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        let start = MAX_HEADER - header_len;
        buffer[start..MAX_HEADER].copy_from_slice(&header[..header_len]);
        Self {
            frame: Bytes::from(buffer).slice(start..),
            header: header_len as u8,
        }
    }

    /// The whole encoded frame, as written to the socket.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The frame's text (the JSON).
    pub fn as_str(&self) -> &str {
        // Built from a `&str` or from serde_json's output: always UTF-8.
        std::str::from_utf8(&self.frame[usize::from(self.header)..]).unwrap_or_default()
    }

    /// Bytes on the wire (header included), which is what queue bounds count.
    pub fn len(&self) -> usize {
        self.frame.len()
    }

    /// Never true: a frame has at least its header.
    pub fn is_empty(&self) -> bool {
        self.frame.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_frames_have_a_two_byte_header() {
        let p = Payload::text(r#"{"op":"HEARTBEAT_ACK"}"#);
        assert_eq!(&p.frame()[..2], &[0x81, 22]);
        assert_eq!(p.as_str(), r#"{"op":"HEARTBEAT_ACK"}"#);
        assert_eq!(p.len(), 24);
    }

    #[test]
    fn lengths_past_125_and_65535_use_extended_headers() {
        let medium = Payload::text(&"m".repeat(126));
        assert_eq!(&medium.frame()[..4], &[0x81, 126, 0, 126]);
        assert_eq!(medium.as_str().len(), 126);
        let large = Payload::text(&"l".repeat(70_000));
        assert_eq!(large.frame()[1], 127);
        assert_eq!(&large.frame()[2..10], &70_000u64.to_be_bytes());
        assert_eq!(large.as_str().len(), 70_000);
    }

    #[test]
    fn json_frames_decode_with_a_real_codec() {
        let value = serde_json::json!({"op": "DISPATCH", "t": "X", "d": {"k": "v".repeat(300)}});
        let p = Payload::json(&value).unwrap();
        let mut cursor = std::io::Cursor::new(p.frame());
        let (header, len) = tungstenite::protocol::frame::FrameHeader::parse(&mut cursor)
            .unwrap()
            .unwrap();
        assert!(header.is_final);
        assert_eq!(
            header.opcode,
            tungstenite::protocol::frame::coding::OpCode::Data(
                tungstenite::protocol::frame::coding::Data::Text
            )
        );
        assert!(header.mask.is_none());
        let body = &p.frame()[cursor.position() as usize..];
        assert_eq!(len as usize, body.len());
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(body).unwrap(),
            value
        );
    }
}
