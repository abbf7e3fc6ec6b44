#![doc = include_str!("../README.md")]

pub mod access;
pub mod app;
pub mod auth;
pub mod body;
pub mod bus;
pub mod caps;
pub mod cluster;
pub mod config;
pub mod config_check;
pub mod directory;
pub mod error;
pub mod extract;
pub mod families;
pub mod files;
mod housekeeping;
pub mod limiter;
mod listen;
pub mod media;
pub mod metered_store;
pub mod metrics;
pub mod origin;
pub mod password_policy;
pub mod passwords;
pub mod perms;
pub mod presence;
pub mod routes;
pub mod secrets;
pub mod state;
pub mod views;
pub mod visibility;
pub mod web;
// Threads, reactions, pins, polls, scheduled events (issue 12).
pub mod poll_views;
// Attachments, search, export (issue 18 part B).
pub mod attachments;
pub mod sniff;
// Automod enforcement (issue 18 part C).
pub mod automod;
// Outbound webhooks (issue 18 part C).
pub mod webhooks;

pub use app::{ServeError, bind, build_state, open_store, router, serve};
pub use config::Config;
pub use state::AppState;
