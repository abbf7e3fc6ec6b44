#![doc = include_str!("../README.md")]

mod hub;
mod outbox;
mod rate;
mod session;

pub use hub::{Delivery, Hub, SessionEntry, SessionId};
pub use outbox::{CloseReason, FrameBatch, Frames, Outbox, Payload, Pushed, QueueLimits};
pub use rate::RateWindow;
pub use session::{Ending, ReadyError, SessionConfig, SessionHandler, run_session, v1_close_code};
