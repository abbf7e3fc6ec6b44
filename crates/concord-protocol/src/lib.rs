#![doc = include_str!("../README.md")]

mod admin;
mod audio;
mod bot;
mod command;
mod dm;
mod error;
mod events;
mod gateway;
mod gateway_event;
mod health;
mod id;
mod lifecycle;
pub mod limits;
mod message;
#[cfg(feature = "openapi")]
mod openapi;
mod server;
mod time;
mod user;
mod v2;
mod voice;
// Roles, role assignments and channel overrides (issue 12, permissions).
mod role;
// Threads, reactions, pins, polls and scheduled events (issue 12 content).
mod content;
// ---- invites, moderation, Go Live ----
mod go_live;
mod invite;
mod moderation;
// ---- custom emojis ----
mod emoji;
// Attachments (issue 18 part B).
mod files;
// ---- audit log, automod, webhooks, bot logs (issue 18 part C) ----
mod audit;
// Server export (issue 18 part B).
mod export;
// Message search (issue 18 part B).
mod automod;
mod search;
mod webhook;

pub use admin::*;
pub use audio::*;
pub use bot::*;
pub use command::*;
pub use dm::*;
pub use error::*;
pub use events::*;
pub use gateway::*;
pub use gateway_event::*;
pub use health::*;
pub use id::*;
pub use lifecycle::*;
pub use message::*;
pub use server::*;
pub use time::*;
pub use user::*;
pub use v2::*;
pub use voice::*;
// Roles, role assignments and channel overrides (issue 12, permissions).
pub use role::*;
// Threads, reactions, pins, polls and scheduled events (issue 12 content).
pub use content::*;
// ---- invites, moderation, Go Live ----
pub use go_live::*;
pub use invite::*;
pub use moderation::*;
// ---- custom emojis ----
pub use emoji::*;
// Attachments (issue 18 part B).
pub use files::*;
// ---- audit log, automod, webhooks, bot logs (issue 18 part C) ----
pub use audit::*;
// Server export (issue 18 part B).
pub use export::*;
// Message search (issue 18 part B).
pub use automod::*;
pub use search::*;
pub use webhook::*;
