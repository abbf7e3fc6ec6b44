#![doc = include_str!("../README.md")]

mod compress;
mod hub;
mod linger;
mod outbox;
mod payload;
mod rate;
mod session;
mod socket;

pub use compress::{
    Compression, CompressionConfig, StreamCompressor, UnknownCompression, ZlibConfig, ZstdConfig,
};
pub use hub::{Delivery, Hub, SessionEntry, SessionId};
pub use outbox::{
    BatchExcept, CloseReason, FrameBatch, Frames, Outbox, Pushed, QueueLimits, Taken,
};
pub use payload::Payload;
pub use rate::RateWindow;
pub use session::{
    Ending, GatewaySocket, ReadyError, SessionConfig, SessionHandler, run_session, v1_close_code,
};
pub use socket::WsSocket;
