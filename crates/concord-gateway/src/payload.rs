//! Outbound frames, encoded once.
//!
//! A server-to-client WebSocket frame is never masked, so the bytes of a frame are the
//! same for every recipient. A [`Payload`] is the complete text frame — header and
//! JSON — built once when the event is serialized; each session's writer hands those
//! shared bytes to the socket as they are, with no per-recipient encoding or copy.

use bytes::Bytes;
use concord_protocol::{Event, Intents};

/// Longest header of an unmasked frame: 2 bytes + 8 bytes of extended length.
const MAX_HEADER: usize = 10;

/// FIN bit set, opcode 1 (text).
const FIN_TEXT: u8 = 0x81;

/// The start of every v1 dispatch, `{"op":"DISPATCH",`: a v2 session replaces it with
/// its own, which adds `"s"`, and keeps the rest of the shared bytes.
pub(crate) const DISPATCH_PREFIX: &[u8] = br#"{"op":"DISPATCH","#;

/// What kind of frame a payload is, for the sessions that filter or wrap it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Meta {
    /// A dispatch (starts with [`DISPATCH_PREFIX`]): v2 numbers it.
    dispatch: bool,
    /// Only v2 sessions receive it.
    v2_only: bool,
    /// The intents of which a v2 session must hold one to receive it (none: all get it).
    intent: u8,
}

/// One complete server → client text frame. Cloning shares the bytes.
///
/// A dispatch built by [`Payload::dispatch`] is the v1 frame; it also knows its
/// event's intent and whether v1 sessions may see it, and a v2 session sends the
/// same bytes behind an envelope start of its own, with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    frame: Bytes,
    header: u8,
    meta: Meta,
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

    /// Serializes a dispatch of `event` with payload `d` once: the v1 frame
    /// `{"op":"DISPATCH","t":…,"d":…}`, tagged with the event's intent and v2-only flag.
    ///
    /// # Errors
    /// When `d` cannot be serialized.
    pub fn dispatch<T: serde::Serialize + ?Sized>(
        event: Event,
        d: &T,
    ) -> Result<Self, serde_json::Error> {
        Self::dispatch_named(event.as_str(), event.intent(), event.v2_only(), d)
    }

    /// [`Payload::dispatch`] for an event by name (one this crate's protocol version
    /// does not know yet, say).
    ///
    /// # Errors
    /// When `d` cannot be serialized.
    pub fn dispatch_named<T: serde::Serialize + ?Sized>(
        name: &str,
        intent: Option<Intents>,
        v2_only: bool,
        d: &T,
    ) -> Result<Self, serde_json::Error> {
        let mut buffer = Vec::with_capacity(256);
        buffer.extend_from_slice(&[0; MAX_HEADER]);
        buffer.extend_from_slice(DISPATCH_PREFIX);
        buffer.extend_from_slice(b"\"t\":");
        serde_json::to_writer(&mut buffer, name)?;
        buffer.extend_from_slice(b",\"d\":");
        serde_json::to_writer(&mut buffer, d)?;
        buffer.push(b'}');
        let mut payload = Self::framed(buffer);
        payload.meta = Meta {
            dispatch: true,
            v2_only,
            intent: intent.map_or(0, Intents::bits),
        };
        Ok(payload)
    }

    /// A dispatch from its v1 JSON text (as [`Payload::as_str`] gave it), for a
    /// session restored after a restart; `None` unless the text is a dispatch.
    pub(crate) fn dispatch_from_json(text: &str) -> Option<Self> {
        if !text.as_bytes().starts_with(DISPATCH_PREFIX) {
            return None;
        }
        let mut payload = Self::text(text);
        payload.meta.dispatch = true;
        Some(payload)
    }

    /// A dispatch of `event` from its v1 JSON text as another node's
    /// [`Payload::json_bytes`] gave it, tagged with the event's intent and v2-only
    /// flag; `None` unless the text is a dispatch of that event.
    pub fn dispatch_json(event: Event, text: &str) -> Option<Self> {
        let rest = text.as_bytes().strip_prefix(DISPATCH_PREFIX)?;
        let named = rest
            .strip_prefix(b"\"t\":\"")?
            .strip_prefix(event.as_str().as_bytes())?;
        if !named.starts_with(b"\",") {
            return None;
        }
        let mut payload = Self::text(text);
        payload.meta = Meta {
            dispatch: true,
            v2_only: event.v2_only(),
            intent: event.intent().map_or(0, Intents::bits),
        };
        Some(payload)
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
            meta: Meta::default(),
        }
    }

    /// The JSON text as bytes.
    pub fn json_bytes(&self) -> &[u8] {
        &self.frame[usize::from(self.header)..]
    }

    /// The JSON text, sharing the frame's buffer (no copy): what another node needs
    /// to rebuild the frame ([`Payload::dispatch_json`]).
    pub fn json_shared(&self) -> Bytes {
        self.frame.slice(usize::from(self.header)..)
    }

    /// For a dispatch, what follows [`DISPATCH_PREFIX`]: `"t":…,"d":…}`.
    pub(crate) fn dispatch_rest(&self) -> Option<&[u8]> {
        self.meta
            .dispatch
            .then(|| &self.json_bytes()[DISPATCH_PREFIX.len()..])
    }

    /// Whether a session of this protocol version with these intents receives it.
    #[inline]
    pub fn wanted_by(&self, v2: bool, intents: Intents) -> bool {
        (v2 || !self.meta.v2_only)
            && (self.meta.intent == 0 || intents.intersects(Intents::from_bits(self.meta.intent)))
    }

    /// The whole encoded frame, as written to the socket.
    pub fn frame(&self) -> &[u8] {
        &self.frame
    }

    /// The frame's text (the JSON).
    pub fn as_str(&self) -> &str {
        // Built from a `&str` or from serde_json's output: always UTF-8.
        std::str::from_utf8(self.json_bytes()).unwrap_or_default()
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
    fn a_dispatch_is_the_v1_frame_and_knows_its_audience() {
        let p = Payload::dispatch(Event::TypingStart, &serde_json::json!({"a": 1})).unwrap();
        assert_eq!(
            p.as_str(),
            r#"{"op":"DISPATCH","t":"TYPING_START","d":{"a":1}}"#
        );
        assert_eq!(
            p.dispatch_rest(),
            Some(&br#""t":"TYPING_START","d":{"a":1}}"#[..])
        );
        assert!(p.wanted_by(false, Intents::ALL));
        assert!(p.wanted_by(true, Intents::TYPING));
        assert!(!p.wanted_by(true, Intents::MESSAGES | Intents::PRESENCE));
        let v2 = Payload::dispatch(Event::ChannelCreate, &serde_json::json!({})).unwrap();
        assert!(!v2.wanted_by(false, Intents::ALL));
        assert!(v2.wanted_by(true, Intents::SERVERS));
        let ready = Payload::dispatch(Event::Ready, &serde_json::json!({})).unwrap();
        assert!(ready.wanted_by(true, Intents::NONE));
        assert_eq!(Payload::text("{}").dispatch_rest(), None);
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
