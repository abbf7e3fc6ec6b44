//! How to reach the gateway and how to behave on it.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use concord_protocol::Intents;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Backoff, TokenProvider};

/// The protocol version to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    /// The Together protocol (`gateway.md`): no sequence numbers, no RESUME; the token
    /// goes in the URL.
    V1,
    /// Concord's v2 (`extensions.md`): HELLO, IDENTIFY (the token stays out of the
    /// URL), sequence numbers, RESUME, compression, intents.
    #[default]
    V2,
}

/// Transport compression of server frames (v2 only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// `compress=zlib-stream`.
    ZlibStream,
    /// `compress=zstd-stream`.
    ZstdStream,
}

impl Compression {
    /// The query value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ZlibStream => "zlib-stream",
            Self::ZstdStream => "zstd-stream",
        }
    }
}

/// A byte stream to run the WebSocket over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}

/// A boxed byte stream, as a [`Connector`] gives it.
pub type BoxedStream = Box<dyn AsyncStream>;

/// Opens the byte stream a connection runs over: TCP by default ([`TcpConnector`]);
/// tests put an in-memory pipe here.
pub trait Connector: Send + Sync + 'static {
    /// Opens a stream to `host:port`.
    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<BoxedStream>> + Send + 'a>>;
}

/// Plain TCP (with `TCP_NODELAY`).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpConnector;

impl Connector for TcpConnector {
    fn connect<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<BoxedStream>> + Send + 'a>> {
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            Ok(Box::new(tcp) as BoxedStream)
        })
    }
}

/// Everything a [`crate::Gateway`] needs. Built with [`GatewayConfig::new`] and
/// adjusted field by field or with the `with_*` methods.
#[derive(Clone)]
pub struct GatewayConfig {
    /// The gateway URL, e.g. `ws://127.0.0.1:8080/ws` or `wss://chat.example.org/ws`
    /// (no query).
    pub url: String,
    /// Where credentials come from, asked on every connection.
    pub token: Arc<dyn TokenProvider>,
    /// Protocol version (default v2).
    pub version: Version,
    /// Transport compression (v2 only; default none).
    pub compression: Option<Compression>,
    /// Event groups to receive (v2 IDENTIFY `intents`; `None`: every group).
    pub intents: Option<Intents>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// The heartbeat interval of a v1 connection (v2 takes HELLO's).
    pub v1_heartbeat: Duration,
    /// How long to wait for the upgrade, HELLO, and READY or RESUMED before giving
    /// the attempt up.
    pub handshake_timeout: Duration,
    /// How long after losing a working connection the gateway keeps trying to RESUME;
    /// after that the server has dropped the session, and it IDENTIFYs afresh
    /// (default 120 s, the server's default replay window).
    pub resume_timeout: Duration,
    /// The largest message accepted (compressed or not); larger ones end the
    /// connection, which is then replaced.
    pub max_message_size: usize,
    /// How many events the stream of [`crate::Gateway::events`] holds before the
    /// connection stops reading (and the server's queue fills instead).
    pub event_buffer: usize,
    /// Seed of the jitter (heartbeat and backoff); `None`: from the OS. For tests.
    pub jitter_seed: Option<u64>,
    /// How the byte stream is opened.
    pub connector: Arc<dyn Connector>,
    /// Certificate authorities trusted for a `wss://` URL (default: the Mozilla set).
    pub tls: crate::Tls,
    /// How many chunks of one speaker stream wait for the application
    /// ([`crate::audio::SpeakerStream`]) before newer ones are dropped (default 500,
    /// 10 s of audio).
    pub audio_buffer: usize,
    /// How far ahead of real time [`crate::Gateway::send_audio`] pushes chunks: the
    /// server buffers them and paces them out (default 5 s; the server holds 10 s by
    /// default, `[audio] buffer_secs`).
    pub audio_lead: Duration,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("url", &self.url)
            .field("version", &self.version)
            .field("compression", &self.compression)
            .field("intents", &self.intents)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl GatewayConfig {
    /// v2 at `url` with credentials from `token`, and the defaults: no compression,
    /// every intent, backoff from 1 s to 30 s, 10 s handshake timeout, 16 MiB messages,
    /// 1,024 buffered events.
    pub fn new(url: impl Into<String>, token: impl TokenProvider) -> Self {
        Self {
            url: url.into(),
            token: Arc::new(token),
            version: Version::V2,
            compression: None,
            intents: None,
            backoff: Backoff::default(),
            v1_heartbeat: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            resume_timeout: Duration::from_secs(120),
            max_message_size: 16 << 20,
            event_buffer: 1024,
            jitter_seed: None,
            connector: Arc::new(TcpConnector),
            tls: crate::Tls::default(),
            audio_buffer: 500,
            audio_lead: Duration::from_secs(5),
        }
    }

    /// With protocol `version`.
    #[must_use]
    pub fn with_version(mut self, version: Version) -> Self {
        self.version = version;
        self
    }

    /// With transport compression.
    #[must_use]
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = Some(compression);
        self
    }

    /// With these intents.
    #[must_use]
    pub fn with_intents(mut self, intents: Intents) -> Self {
        self.intents = Some(intents);
        self
    }

    /// With this backoff.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// With this connector.
    #[must_use]
    pub fn with_connector(mut self, connector: impl Connector) -> Self {
        self.connector = Arc::new(connector);
        self
    }

    /// Trusting these certificate authorities for a `wss://` URL.
    #[must_use]
    pub fn with_tls(mut self, tls: crate::Tls) -> Self {
        self.tls = tls;
        self
    }
}
