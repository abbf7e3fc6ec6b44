#![doc = include_str!("../README.md")]

mod audio;
mod compress;
mod gateway;
mod hub;
mod linger;
mod outbox;
mod payload;
mod rate;
mod relay;
mod replay;
mod resume;
mod session;
mod socket;
mod stats;
mod wire;

pub use audio::{AUDIO_CHUNKS_DROPPED, AudioItem, AudioLane, AudioPushed, relayed_frame};
pub use compress::{
    Compression, CompressionConfig, StreamCompressor, UnknownCompression, ZlibConfig, ZstdConfig,
};
pub use gateway::{
    AuthFailure, Authenticator, Credential, Gateway, GatewayConfig, Parked, Principal,
    SavedSession, Shadow, codec_config,
};
pub use hub::{Census, Delivery, Hub, SessionEntry, SessionId, SessionKind, UserWatch};
pub use outbox::{
    BatchExcept, CloseReason, FrameBatch, Frames, Outbox, Pushed, QueueLimits, Taken,
};
pub use payload::Payload;
pub use rate::RateWindow;
pub use relay::{DROPPED, Found, RelayLink, RelayedSocket, RemoteSessions, ToClient, ToOwner};
pub use replay::{ReplayBudget, ReplayLimits};
pub use session::{
    CommandError, Ending, GatewaySocket, ReadyError, SessionConfig, SessionHandler,
    close_on_read_error, read_error_close, run_session, v1_close_code, v2_close_code,
};
pub use socket::WsSocket;
pub use stats::{OpenSocket, PROTOCOL_VIOLATIONS, SocketCounts, SocketStats};
