#![doc = include_str!("../README.md")]

pub mod audio;
mod backoff;
mod compress;
mod config;
mod driver;
mod error;
mod event;
mod gateway;
pub mod presence;
pub mod raw;
pub mod rest;
mod tls;
mod token;
pub mod typing;

pub use backoff::Backoff;
/// The wire types of the protocol crate, for requests and answers of [`rest::RestClient`].
pub use concord_protocol as protocol;
pub use concord_protocol::{Event as EventName, GatewayEvent};
pub use config::{
    AsyncStream, BoxedStream, Compression, Connector, GatewayConfig, TcpConnector, Version,
};
pub use error::Error;
pub use event::{Event, EventKind, EventStream, ListenerHandle};
pub use gateway::{Gateway, ReadyState};
pub use rest::{RestClient, RestError};
pub use tls::{Tls, TlsError};
pub use token::{BotToken, Credential, RefreshToken, StaticToken, TokenError, TokenProvider};
