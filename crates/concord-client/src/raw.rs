//! The low-level gateway connection: one WebSocket, frames in and out, the server's
//! compressed stream decoded, and nothing else — no heartbeats, no IDENTIFY, no
//! reconnects. [`crate::Gateway`] is built on it; use it directly to speak the
//! protocol by hand (test suites, load generators, protocol experiments).
//!
//! ```no_run
//! # async fn demo() -> Result<(), concord_client::raw::RawError> {
//! use concord_client::{Compression, Version, protocol::{Op, ServerMessage}};
//! use concord_client::raw::{ConnectOptions, Connection, gateway_url};
//!
//! let url = gateway_url("ws://127.0.0.1:8080/ws", Version::V2, Some(Compression::ZstdStream), &[]);
//! let options = ConnectOptions::new().with_compression(Compression::ZstdStream);
//! let mut conn = Connection::connect(&url, &options).await?;
//! if let ServerMessage::Hello(hello) = conn.next_message().await? {
//!     println!("beat every {} ms", hello.heartbeat_interval);
//! }
//! conn.send_op(Op::Identify, Some(serde_json::json!({"token": "…"}))).await?;
//! let ready = conn.next_message().await?;
//! conn.close(1000, "bye").await?;
//! # let _ = ready;
//! # Ok(())
//! # }
//! ```
//!
//! Decoding is split in two steps so that callers can stop after the first: the
//! [`Decoder`] turns one WebSocket data frame into the bytes of one JSON message
//! (inflating `zlib-stream` / `zstd-stream`), and [`decode`] reads those bytes as a
//! typed [`ServerMessage`].
//!
//! **Audio.** A binary frame may also be an audio chunk (`protocol-v2.md` §15.3): on a
//! connection without compression every binary frame is one; on a compressed one a
//! binary frame whose first byte is [`AUDIO_MAGIC`] is one, and it is never fed to
//! the inflater. [`Decoder::data`] and [`Connection::next_data`] tell the two apart;
//! [`Connection::next_payload`] and [`Connection::next_message`] skip audio chunks.
//! [`Connection::send_audio`] sends a client chunk.

use concord_protocol::{
    AUDIO_MAGIC, ClientFrame, GatewayEvent, Op, RelayedHeader, ServerMessage, UplinkHeader,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        Message, Utf8Bytes,
        http::Uri,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

/// The WebSocket library underneath, for [`Connection::send_message`] and the
/// errors of a refused upgrade.
pub use tokio_tungstenite::tungstenite;

use crate::{BoxedStream, Compression, Version, compress::Inflate};

pub use crate::compress::InflateError;

/// The end of every `zlib-stream` message: the empty stored block of a sync flush.
pub const ZLIB_SUFFIX: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The HEARTBEAT frame, as the SDK sends it.
pub const HEARTBEAT: &str = r#"{"op":"HEARTBEAT","t":null,"d":null}"#;

/// A close frame: its code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The close code (1005 is never sent; a close frame without a body is `None`
    /// where a [`Close`] is optional).
    pub code: u16,
    /// The reason text (possibly empty).
    pub reason: String,
}

/// Why a frame could not be turned into a message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// A binary frame on a connection without compression.
    #[error("a binary frame on an uncompressed connection")]
    UnexpectedBinary,
    /// A text frame on a compressed connection (every data frame is binary there).
    #[error("a text frame on a compressed connection")]
    UnexpectedText,
    /// A `zlib-stream` frame that does not end with the sync flush `00 00 ff ff`.
    #[error("a zlib-stream message without the 00 00 ff ff sync-flush suffix")]
    MissingSyncFlush,
    /// A decoded message that is not UTF-8 ([`Connection::next_text`]).
    #[error("a message that is not UTF-8")]
    NotUtf8,
    /// The compressed stream is broken, or a message is too large.
    #[error(transparent)]
    Inflate(#[from] InflateError),
    /// An audio chunk given to [`Decoder::binary`], which decodes messages only
    /// (see [`Decoder::data`]).
    #[error("an audio chunk, not a message")]
    Audio,
}

/// One data frame of the server, told apart by [`Decoder::data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data<'a> {
    /// The bytes of one JSON message (inflated where the connection is compressed).
    Message(&'a [u8]),
    /// An audio chunk: the whole binary frame, header included (read it with
    /// [`RelayedHeader::parse`], or [`Data::relayed`]).
    Audio(&'a [u8]),
}

impl<'a> Data<'a> {
    /// An audio chunk's header and payload; `None` for a message or a chunk whose
    /// header does not read as a relayed chunk's.
    pub fn relayed(&self) -> Option<(RelayedHeader, &'a [u8])> {
        match self {
            Self::Audio(frame) => RelayedHeader::parse(frame).ok(),
            Self::Message(_) => None,
        }
    }
}

/// What went wrong on a [`Connection`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RawError {
    /// The URL is not a `ws://host[:port]/path` URL.
    #[error("bad gateway URL: {0}")]
    Url(String),
    /// The TCP connection could not be opened.
    #[error("connect: {0}")]
    Io(#[source] std::io::Error),
    /// The WebSocket upgrade failed; [`RawError::status`] gives the HTTP status of a
    /// refusal, and `tungstenite::Error::Http` holds the whole answer (body included).
    #[error("upgrade: {0}")]
    Handshake(#[source] tungstenite::Error),
    /// The server closed the connection with this close frame (`None`: a close frame
    /// without a code). Also kept in [`Connection::close_frame`].
    #[error("closed by the server: {0:?}")]
    Closed(Option<Close>),
    /// The connection ended without a close frame, or a read or write failed.
    #[error("connection lost: {0}")]
    Lost(#[source] tungstenite::Error),
    /// A frame could not be decoded (the connection cannot go on: the compressed
    /// stream is out of step).
    #[error("undecodable frame: {0}")]
    Decode(#[from] DecodeError),
    /// A message that is not a gateway frame, or a known op whose payload does not
    /// have the protocol's shape (the connection can go on).
    #[error("unreadable message: {0}")]
    Message(#[from] concord_protocol::DecodeError),
    /// A client frame could not be serialized.
    #[error("command not encodable: {0}")]
    Encode(#[source] serde_json::Error),
}

impl RawError {
    /// The HTTP status of a refused upgrade.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Handshake(tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
            _ => None,
        }
    }
}

/// Turns the server's data frames into the bytes of JSON messages: text frames as
/// they are, binary frames through the connection's one inflate context (`extensions.md`:
/// one compressed stream for the connection's life, each frame exactly one message).
/// Feed it every data frame of a connection, in order.
pub struct Decoder {
    inflate: Option<Inflate>,
    out: Vec<u8>,
    limit: usize,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("compressed", &self.inflate.is_some())
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    /// A decoder for a connection with this compression (none: text frames only),
    /// refusing messages that inflate past `limit` bytes.
    pub fn new(compression: Option<Compression>, limit: usize) -> Self {
        Self {
            inflate: compression.map(Inflate::new),
            out: Vec::new(),
            limit,
        }
    }

    /// Whether the connection's frames are compressed.
    pub fn is_compressed(&self) -> bool {
        self.inflate.is_some()
    }

    /// Checks a text frame: on an uncompressed connection it is the message itself.
    ///
    /// # Errors
    /// [`DecodeError::UnexpectedText`] on a compressed connection.
    pub fn text<'a>(&self, text: &'a [u8]) -> Result<&'a [u8], DecodeError> {
        if self.inflate.is_some() {
            return Err(DecodeError::UnexpectedText);
        }
        Ok(text)
    }

    /// Whether a binary frame is an audio chunk (`protocol-v2.md` §15.3): every
    /// binary frame on an uncompressed connection, one starting with
    /// [`AUDIO_MAGIC`] on a compressed one.
    pub fn is_audio(&self, frame: &[u8]) -> bool {
        self.inflate.is_none() || frame.first() == Some(&AUDIO_MAGIC)
    }

    /// Tells a binary frame apart: an audio chunk is returned as it is (and the
    /// compressed stream is left alone), anything else is inflated into one message
    /// (valid until the next call).
    ///
    /// # Errors
    /// Those of [`Decoder::binary`] for a frame that is not audio.
    pub fn data<'a>(&'a mut self, frame: &'a [u8]) -> Result<Data<'a>, DecodeError> {
        if self.is_audio(frame) {
            return Ok(Data::Audio(frame));
        }
        self.binary(frame).map(Data::Message)
    }

    /// Inflates one binary frame into one message (valid until the next call).
    ///
    /// # Errors
    /// A binary frame on an uncompressed connection, an audio chunk
    /// ([`DecodeError::Audio`], see [`Decoder::data`]), a `zlib-stream` frame without
    /// the sync-flush suffix, a broken stream, or a message over the limit.
    pub fn binary(&mut self, frame: &[u8]) -> Result<&[u8], DecodeError> {
        let Some(inflate) = self.inflate.as_mut() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        if frame.first() == Some(&AUDIO_MAGIC) {
            return Err(DecodeError::Audio);
        }
        if inflate.is_zlib() && !frame.ends_with(&ZLIB_SUFFIX) {
            return Err(DecodeError::MissingSyncFlush);
        }
        inflate.message(frame, &mut self.out, self.limit)?;
        Ok(&self.out)
    }
}

/// Reads one message as a typed server frame. A dispatch of a known event whose
/// payload does not type (a newer server's shape) is kept as
/// [`GatewayEvent::Unknown`], with its sequence number, rather than lost.
///
/// # Errors
/// Not a gateway frame, or a known non-dispatch op with a malformed payload.
pub fn decode(message: &[u8]) -> Result<ServerMessage, concord_protocol::DecodeError> {
    match ServerMessage::from_slice(message) {
        Ok(message) => Ok(message),
        Err(err) => as_unknown(message).ok_or(err),
    }
}

/// A dispatch whose payload did not type, as [`GatewayEvent::Unknown`].
fn as_unknown(bytes: &[u8]) -> Option<ServerMessage> {
    let mut frame: serde_json::Map<String, Value> = serde_json::from_slice(bytes).ok()?;
    if frame.get("op")?.as_str()? != Op::Dispatch.as_str() {
        return None;
    }
    let name = frame.get("t")?.as_str()?.to_string();
    Some(ServerMessage::Dispatch {
        seq: frame.get("s").and_then(Value::as_u64),
        event: GatewayEvent::Unknown {
            name,
            raw: frame.remove("d").unwrap_or(Value::Null),
        },
    })
}

/// Encodes a client frame (`{"op":…,"t":null,"d":…}`) as the text to send.
///
/// # Errors
/// A payload serde cannot write as JSON.
pub fn encode(op: Op, d: Option<Value>) -> Result<String, serde_json::Error> {
    serde_json::to_string(&ClientFrame { op, t: None, d })
}

/// The gateway URL with its query: `v` (`v=1` / `v=2`), `compress` where asked
/// (v2 only; v1 has none and the server refuses it there), then `extra` pairs
/// percent-encoded (e.g. `("token", …)` on v1).
pub fn gateway_url(
    base: &str,
    version: Version,
    compression: Option<Compression>,
    extra: &[(&str, &str)],
) -> String {
    let mut query = vec![match version {
        Version::V1 => "v=1".to_string(),
        Version::V2 => "v=2".to_string(),
    }];
    if version == Version::V2
        && let Some(compression) = compression
    {
        query.push(format!("compress={}", compression.as_str()));
    }
    for (key, value) in extra {
        query.push(format!("{}={}", percent(key), percent(value)));
    }
    format!("{base}?{}", query.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub(crate) fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How to open a [`Connection`].
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The compression the URL's `compress` asks for: it decides how binary frames
    /// are decoded (the URL itself is not read for it).
    pub compression: Option<Compression>,
    /// The largest message accepted, compressed (WebSocket message and frame limit)
    /// and inflated (default 16 MiB).
    pub max_message_size: usize,
    /// The WebSocket read buffer (default: tungstenite's, 128 KiB); small values
    /// save memory on connections that are mostly idle.
    pub read_buffer_size: Option<usize>,
    /// The WebSocket write buffer (default: tungstenite's); 0 writes every frame
    /// through at once.
    pub write_buffer_size: Option<usize>,
    /// Certificate authorities trusted for a `wss://` URL by [`Connection::connect`]
    /// (default: the Mozilla set).
    pub tls: crate::Tls,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl ConnectOptions {
    /// No compression, 16 MiB messages, tungstenite's buffers.
    pub fn new() -> Self {
        Self {
            compression: None,
            max_message_size: 16 << 20,
            read_buffer_size: None,
            write_buffer_size: None,
            tls: crate::Tls::default(),
        }
    }

    /// Trusting these certificate authorities for a `wss://` URL.
    #[must_use]
    pub fn with_tls(mut self, tls: crate::Tls) -> Self {
        self.tls = tls;
        self
    }

    /// With this compression (or none).
    #[must_use]
    pub fn with_compression(mut self, compression: impl Into<Option<Compression>>) -> Self {
        self.compression = compression.into();
        self
    }

    /// With this message size limit.
    #[must_use]
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    fn ws_config(&self) -> WebSocketConfig {
        let mut config = WebSocketConfig::default()
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size));
        if let Some(size) = self.read_buffer_size {
            config = config.read_buffer_size(size);
        }
        if let Some(size) = self.write_buffer_size {
            config = config.write_buffer_size(size);
        }
        config
    }
}

/// Host and port of a `ws://` or `wss://` URL (default ports 80 and 443).
///
/// # Errors
/// Not a `ws://` or `wss://` URL with a host.
pub fn host_port(url: &str) -> Result<(String, u16), RawError> {
    let uri: Uri = url.parse().map_err(|e| RawError::Url(format!("{e}")))?;
    let default_port = match uri.scheme_str() {
        Some("ws") => 80,
        Some("wss") => 443,
        _ => {
            return Err(RawError::Url(
                "only ws:// and wss:// URLs are supported".to_string(),
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| RawError::Url("no host in the gateway URL".to_string()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, uri.port_u16().unwrap_or(default_port)))
}

/// Whether `url` asks for TLS (`wss://`).
pub fn is_secure(url: &str) -> bool {
    url.get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("wss://"))
}

/// The message a frame held, without copying a text frame.
enum Held {
    None,
    Text(Utf8Bytes),
    Decoded,
    Audio(tokio_tungstenite::tungstenite::Bytes),
}

/// One gateway WebSocket. Reading is cancel-safe: a frame taken from the socket is
/// decoded and returned without another await.
pub struct Connection {
    ws: WebSocketStream<BoxedStream>,
    decoder: Decoder,
    held: Held,
    close: Option<Option<Close>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("decoder", &self.decoder)
            .field("close", &self.close)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens TCP (with `TCP_NODELAY`) to the host of `url` and upgrades. `url` is the
    /// whole gateway URL, query included (see [`gateway_url`]).
    ///
    /// # Errors
    /// A bad URL, a failed TCP connection, or a failed or refused upgrade.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, RawError> {
        let (host, port) = host_port(url)?;
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(RawError::Io)?;
        tcp.set_nodelay(true).map_err(RawError::Io)?;
        let stream: BoxedStream = if is_secure(url) {
            options
                .tls
                .wrap(&host, Box::new(tcp))
                .await
                .map_err(RawError::Io)?
        } else {
            Box::new(tcp)
        };
        Self::connect_over(stream, url, options).await
    }

    /// Upgrades over a stream already open to the server (a custom [`crate::Connector`],
    /// a socket bound to a chosen source address, an in-memory pipe).
    ///
    /// # Errors
    /// A failed or refused upgrade.
    pub async fn connect_over(
        stream: BoxedStream,
        url: &str,
        options: &ConnectOptions,
    ) -> Result<Self, RawError> {
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(url, stream, Some(options.ws_config()))
                .await
                .map_err(RawError::Handshake)?;
        Ok(Self {
            ws,
            decoder: Decoder::new(options.compression, options.max_message_size),
            held: Held::None,
            close: None,
        })
    }

    /// Sends text as one text frame.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), RawError> {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(RawError::Lost)
    }

    /// Sends `{"op": op, "t": null, "d": d}`.
    ///
    /// # Errors
    /// The payload cannot be encoded, or the connection is gone.
    pub async fn send_op(&mut self, op: Op, d: Option<Value>) -> Result<(), RawError> {
        let text = encode(op, d).map_err(RawError::Encode)?;
        self.send_text(text).await
    }

    /// Sends one audio chunk (`protocol-v2.md` §15.3) as a binary frame: the client
    /// header, then `payload` (one 20 ms chunk of the stream's format).
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn send_audio(
        &mut self,
        header: UplinkHeader,
        payload: &[u8],
    ) -> Result<(), RawError> {
        self.send_binary(header.frame(payload)).await
    }

    /// Sends bytes as one binary frame.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) -> Result<(), RawError> {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .map_err(RawError::Lost)
    }

    /// Sends a HEARTBEAT.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn heartbeat(&mut self) -> Result<(), RawError> {
        self.send_text(HEARTBEAT).await
    }

    /// Sends any WebSocket message as is (binary frames, oversized frames, pings:
    /// what a test of the server's refusals needs).
    ///
    /// # Errors
    /// tungstenite's error.
    pub async fn send_message(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        self.ws.send(message).await
    }

    /// The next data frame: a message's bytes (one JSON document) or an audio chunk
    /// (see [`Data`]); pings and pongs skipped.
    ///
    /// # Errors
    /// [`RawError::Closed`] with the server's close frame, [`RawError::Lost`] when
    /// the connection ends without one, [`RawError::Decode`] for a frame of the wrong
    /// kind or a broken compressed stream.
    pub async fn next_data(&mut self) -> Result<Data<'_>, RawError> {
        loop {
            let message = match self.ws.next().await {
                Some(Ok(message)) => message,
                Some(Err(err)) => return Err(RawError::Lost(err)),
                None => {
                    return Err(match &self.close {
                        Some(close) => RawError::Closed(close.clone()),
                        None => RawError::Lost(tungstenite::Error::ConnectionClosed),
                    });
                }
            };
            match message {
                Message::Text(text) => {
                    self.decoder.text(text.as_bytes())?;
                    self.held = Held::Text(text);
                }
                Message::Binary(data) => {
                    if self.decoder.is_audio(&data) {
                        self.held = Held::Audio(data);
                    } else {
                        self.decoder.binary(&data)?;
                        self.held = Held::Decoded;
                    }
                }
                Message::Close(frame) => {
                    let close = frame.map(|f| Close {
                        code: u16::from(f.code),
                        reason: f.reason.as_str().to_string(),
                    });
                    self.close = Some(close.clone());
                    return Err(RawError::Closed(close));
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
            return Ok(match &self.held {
                Held::Audio(frame) => Data::Audio(frame),
                _ => Data::Message(self.held()),
            });
        }
    }

    /// The next message's bytes (one JSON document), skipping pings, pongs and audio
    /// chunks (read those with [`Connection::next_data`]).
    ///
    /// # Errors
    /// Those of [`Connection::next_data`].
    pub async fn next_payload(&mut self) -> Result<&[u8], RawError> {
        loop {
            let message = matches!(self.next_data().await?, Data::Message(_));
            if message {
                return Ok(self.held());
            }
        }
    }

    fn held(&self) -> &[u8] {
        match &self.held {
            Held::Text(text) => text.as_bytes(),
            Held::Decoded => &self.decoder.out,
            Held::Audio(frame) => frame,
            Held::None => &[],
        }
    }

    /// The next message as text: a text frame as tungstenite checked it, a decoded
    /// binary frame checked here; pings and pongs skipped.
    ///
    /// # Errors
    /// Those of [`Connection::next_payload`], and [`DecodeError::NotUtf8`].
    pub async fn next_text(&mut self) -> Result<&str, RawError> {
        self.next_payload().await?;
        match &self.held {
            Held::Text(text) => Ok(text.as_str()),
            _ => std::str::from_utf8(&self.decoder.out)
                .map_err(|_| RawError::Decode(DecodeError::NotUtf8)),
        }
    }

    /// The next message, typed (see [`decode`]).
    ///
    /// # Errors
    /// Those of [`Connection::next_payload`], and [`RawError::Message`] for a message
    /// that does not read as a server frame (the connection can go on).
    pub async fn next_message(&mut self) -> Result<ServerMessage, RawError> {
        let bytes = self.next_payload().await?;
        Ok(decode(bytes)?)
    }

    /// The close frame the server sent, once one has been read: `Some(None)` for a
    /// close frame without a code.
    pub fn close_frame(&self) -> Option<&Option<Close>> {
        self.close.as_ref()
    }

    /// Sends a close frame with this code and reason, without waiting for the answer.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn send_close(&mut self, code: u16, reason: &str) -> Result<(), RawError> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        self.ws.close(Some(frame)).await.map_err(RawError::Lost)
    }

    /// Sends a close frame with this code and reason, then reads (and drops) what
    /// the server still sends until its close frame or the end of the connection;
    /// returns the server's close frame, if one came. Bound it with a timeout.
    ///
    /// # Errors
    /// The close frame could not be sent.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<Option<Close>, RawError> {
        self.send_close(code, reason).await?;
        while let Some(Ok(message)) = self.ws.next().await {
            if let Message::Close(frame) = message {
                let close = frame.map(|f| Close {
                    code: u16::from(f.code),
                    reason: f.reason.as_str().to_string(),
                });
                self.close = Some(close);
            }
        }
        Ok(self.close.clone().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACK: &[u8] = br#"{"op":"HEARTBEAT_ACK"}"#;

    /// One zlib stream, each message sync-flushed, as the server writes it.
    fn zlib_frames(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut deflate = flate2::Compress::new(flate2::Compression::fast(), true);
        messages
            .iter()
            .map(|m| {
                let mut out = Vec::with_capacity(m.len() + 64);
                deflate
                    .compress_vec(m, &mut out, flate2::FlushCompress::Sync)
                    .unwrap();
                out
            })
            .collect()
    }

    #[test]
    fn zlib_messages_decode_in_order_and_need_the_sync_flush_suffix() {
        let frames = zlib_frames(&[ACK, br#"{"op":"RECONNECT"}"#]);
        assert!(frames.iter().all(|f| f.ends_with(&ZLIB_SUFFIX)));
        let mut decoder = Decoder::new(Some(Compression::ZlibStream), 1 << 20);
        assert_eq!(decoder.binary(&frames[0]).unwrap(), ACK);
        assert!(matches!(
            decode(decoder.binary(&frames[1]).unwrap()).unwrap(),
            ServerMessage::Reconnect
        ));
        // The same stream with the suffix cut off the second message: refused.
        let mut decoder = Decoder::new(Some(Compression::ZlibStream), 1 << 20);
        decoder.binary(&frames[0]).unwrap();
        let cut = &frames[1][..frames[1].len() - 4];
        assert!(matches!(
            decoder.binary(cut),
            Err(DecodeError::MissingSyncFlush)
        ));
    }

    /// Each message flushed to a block boundary of one zstd stream, as the server does.
    fn zstd_frames(messages: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut cctx = zstd_safe::CCtx::create();
        messages
            .iter()
            .map(|message| {
                let mut buf = vec![0u8; message.len() + 1024];
                let mut out = zstd_safe::OutBuffer::around(&mut buf[..]);
                let mut input = zstd_safe::InBuffer::around(message);
                cctx.compress_stream2(
                    &mut out,
                    &mut input,
                    zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_flush,
                )
                .unwrap();
                let n = out.pos();
                buf.truncate(n);
                buf
            })
            .collect()
    }

    #[test]
    fn zstd_messages_decode_and_the_limit_holds() {
        let frames = zstd_frames(&[ACK, &[b' '; 5000][..]]);
        let mut decoder = Decoder::new(Some(Compression::ZstdStream), 1000);
        assert_eq!(decoder.binary(&frames[0]).unwrap(), ACK);
        assert!(matches!(
            decoder.binary(&frames[1]),
            Err(DecodeError::Inflate(InflateError::TooBig(1000)))
        ));
    }

    /// A relayed chunk as the server sends it.
    fn chunk(sequence: u32) -> Vec<u8> {
        let mut frame = Vec::new();
        concord_protocol::RelayedHeader {
            format: concord_protocol::AudioFormat::Pcm16k,
            sequence,
            timestamp: sequence * 20,
            speaker: concord_protocol::UserId::new(),
        }
        .write(&mut frame);
        // A payload that starts like a zlib header, to show it is never inflated.
        frame.extend_from_slice(&[0x78; 640]);
        frame
    }

    /// Audio chunks between the messages of a compressed stream come out as audio
    /// and leave the stream intact for the messages after them.
    fn audio_between_messages(mut decoder: Decoder, frames: &[Vec<u8>]) {
        let audio = chunk(7);
        match decoder.data(&audio).unwrap() {
            Data::Audio(bytes) => assert_eq!(bytes, &audio[..]),
            other => panic!("{other:?}"),
        }
        assert_eq!(decoder.data(&frames[0]).unwrap(), Data::Message(ACK));
        let (header, payload) = decoder.data(&audio).unwrap().relayed().unwrap();
        assert_eq!((header.sequence, header.timestamp), (7, 140));
        assert_eq!(payload.len(), 640);
        assert!(matches!(decoder.binary(&audio), Err(DecodeError::Audio)));
        assert_eq!(
            decoder.data(&frames[1]).unwrap(),
            Data::Message(br#"{"op":"RECONNECT"}"#)
        );
    }

    #[test]
    fn audio_chunks_on_a_zlib_connection_are_not_inflated() {
        let frames = zlib_frames(&[ACK, br#"{"op":"RECONNECT"}"#]);
        assert!(frames.iter().all(|f| f[0] != AUDIO_MAGIC));
        audio_between_messages(
            Decoder::new(Some(Compression::ZlibStream), 1 << 20),
            &frames,
        );
    }

    #[test]
    fn audio_chunks_on_a_zstd_connection_are_not_inflated() {
        let frames = zstd_frames(&[ACK, br#"{"op":"RECONNECT"}"#]);
        assert!(frames.iter().all(|f| f[0] != AUDIO_MAGIC));
        audio_between_messages(
            Decoder::new(Some(Compression::ZstdStream), 1 << 20),
            &frames,
        );
    }

    #[test]
    fn every_binary_frame_of_an_uncompressed_connection_is_audio() {
        let mut plain = Decoder::new(None, 1 << 20);
        assert_eq!(plain.data(b"\x01\x02").unwrap(), Data::Audio(b"\x01\x02"));
        let audio = chunk(1);
        assert!(plain.data(&audio).unwrap().relayed().is_some());
        assert_eq!(Data::Message(ACK).relayed(), None);
    }

    #[test]
    fn frames_of_the_wrong_kind_are_refused() {
        let plain = Decoder::new(None, 1 << 20);
        assert_eq!(plain.text(ACK).unwrap(), ACK);
        let mut plain = plain;
        assert!(matches!(
            plain.binary(ACK),
            Err(DecodeError::UnexpectedBinary)
        ));
        let zlib = Decoder::new(Some(Compression::ZlibStream), 1 << 20);
        assert!(matches!(zlib.text(ACK), Err(DecodeError::UnexpectedText)));
        let mut zlib = zlib;
        assert!(zlib.binary(b"not zlib\x00\x00\xff\xff").is_err());
    }

    #[test]
    fn decode_keeps_an_odd_payload_of_a_known_event_as_unknown() {
        let frame = br#"{"op":"DISPATCH","s":7,"t":"MESSAGE_CREATE","d":{"id":5}}"#;
        match decode(frame).unwrap() {
            ServerMessage::Dispatch {
                seq: Some(7),
                event: GatewayEvent::Unknown { name, raw },
            } => {
                assert_eq!(name, "MESSAGE_CREATE");
                assert_eq!(raw["id"], 5);
            }
            other => panic!("{other:?}"),
        }
        assert!(decode(b"[1,2]").is_err());
    }

    #[test]
    fn encode_and_gateway_url() {
        assert_eq!(encode(Op::Heartbeat, None).unwrap(), HEARTBEAT);
        assert_eq!(
            gateway_url(
                "ws://h:1/ws",
                Version::V2,
                Some(Compression::ZlibStream),
                &[]
            ),
            "ws://h:1/ws?v=2&compress=zlib-stream"
        );
        assert_eq!(
            gateway_url(
                "ws://h:1/ws",
                Version::V1,
                Some(Compression::ZlibStream),
                &[("token", "a b")]
            ),
            "ws://h:1/ws?v=1&token=a%20b"
        );
        assert!(matches!(host_port("http://h/ws"), Err(RawError::Url(_))));
        assert_eq!(
            host_port("ws://[::1]:9/ws").unwrap(),
            ("::1".to_string(), 9)
        );
        assert_eq!(
            host_port("wss://chat.example.org/ws").unwrap(),
            ("chat.example.org".to_string(), 443)
        );
        assert_eq!(host_port("ws://h/ws").unwrap(), ("h".to_string(), 80));
        assert!(is_secure("wss://h/ws") && is_secure("WSS://h/ws"));
        assert!(!is_secure("ws://h/ws") && !is_secure("ws"));
    }
}
