#![doc = include_str!("../README.md")]

mod backoff;
mod compress;
mod config;
mod driver;
mod error;
mod event;
mod gateway;
mod token;

pub use backoff::Backoff;
pub use concord_protocol::{Event as EventName, GatewayEvent};
pub use config::{
    AsyncStream, BoxedStream, Compression, Connector, GatewayConfig, TcpConnector, Version,
};
pub use error::Error;
pub use event::{Event, EventKind, EventStream, ListenerHandle};
pub use gateway::{Gateway, ReadyState};
pub use token::{BotToken, Credential, RefreshToken, StaticToken, TokenError, TokenProvider};
