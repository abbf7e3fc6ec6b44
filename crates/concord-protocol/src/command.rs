//! Client → server frames, parsed and validated once (`gateway.md` §2, §4, §9;
//! `extensions.md`).
//!
//! The rules are v1's (the reference's validation, with Concord's stricter checks);
//! v1 drops a frame that fails them, v2 answers it with ERROR. The gateway parses,
//! the chat domain receives a typed [`Command`].

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use crate::{
    ChannelId, ErrorCode, Identify, MediaCommand, MediaStart, MediaSubscribe, Op, PresenceCommand,
    Resume, Status, TypingCommand, UserId, VoiceSignalCommand, limits,
};

/// A command for the chat domain.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Set the chosen presence.
    PresenceUpdate(PresenceCommand),
    /// "I am typing" in a channel.
    TypingStart(TypingCommand),
    /// A WebRTC signal to relay.
    VoiceSignal(VoiceSignalCommand),
}

/// One client frame.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    /// Keep-alive.
    Heartbeat,
    /// v2: authenticate.
    Identify(Identify),
    /// v2: resume a session.
    Resume(Resume),
    /// A chat command.
    Command(Command),
    /// v2: an audio command (ignored in v1).
    Media(MediaCommand),
    /// An op only the server sends (DISPATCH, HELLO, …): ignored in v1, UNKNOWN_OP in
    /// v2.
    ServerOp(Op),
}

/// Why a client frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not a JSON object with a string `op`.
    #[error("malformed frame: {0}")]
    Decode(String),
    /// An `op` nobody knows.
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    /// A known op whose `d` breaks its rules.
    #[error("invalid {op} payload: {why}")]
    InvalidPayload {
        /// The op.
        op: &'static str,
        /// What is wrong.
        why: String,
    },
}

impl ParseError {
    /// The v2 ERROR code for this refusal.
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::Decode(_) => ErrorCode::DecodeError,
            Self::UnknownOp(_) => ErrorCode::UnknownOp,
            Self::InvalidPayload { .. } => ErrorCode::InvalidPayload,
        }
    }
}

#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(borrow)]
    op: Cow<'a, str>,
    #[serde(default)]
    d: Option<Value>,
}

fn invalid(op: &'static str, why: impl Into<String>) -> ParseError {
    ParseError::InvalidPayload {
        op,
        why: why.into(),
    }
}

impl ClientMessage {
    /// Parses one text frame. `t` and unknown top-level keys are ignored; `d` may be
    /// absent or null where the op needs none.
    ///
    /// # Errors
    /// See [`ParseError`].
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let raw: RawFrame<'_> =
            serde_json::from_str(text).map_err(|e| ParseError::Decode(e.to_string()))?;
        let op = Op::from_name(&raw.op).ok_or_else(|| ParseError::UnknownOp(truncate(&raw.op)))?;
        let d = raw.d;
        Ok(match op {
            Op::Heartbeat => Self::Heartbeat,
            Op::PresenceUpdate => Self::Command(Command::PresenceUpdate(presence(d)?)),
            Op::TypingStart => Self::Command(Command::TypingStart(typing(d)?)),
            Op::VoiceSignal => Self::Command(Command::VoiceSignal(voice_signal(d)?)),
            Op::Identify => Self::Identify(
                serde_json::from_value(d.unwrap_or(Value::Null))
                    .map_err(|e| invalid("IDENTIFY", e.to_string()))?,
            ),
            Op::Resume => Self::Resume(
                serde_json::from_value(d.unwrap_or(Value::Null))
                    .map_err(|e| invalid("RESUME", e.to_string()))?,
            ),
            Op::MediaStart => Self::Media(MediaCommand::Start(media_start(d)?)),
            Op::MediaStop => Self::Media(MediaCommand::Stop),
            Op::MediaClear => Self::Media(MediaCommand::Clear),
            Op::MediaSubscribe => Self::Media(MediaCommand::Subscribe(media_subscribe(d)?)),
            Op::MediaUnsubscribe => Self::Media(MediaCommand::Unsubscribe),
            other => Self::ServerOp(other),
        })
    }
}

/// An op name echoed back in an error, cut to a sane length.
fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// `gateway.md` §4: `d` required; a string `status` must be one of the four; a
/// missing or non-string `status` means online; `custom_status` and `activity` are
/// taken when strings and cleared otherwise, at most 128 chars each.
fn presence(d: Option<Value>) -> Result<PresenceCommand, ParseError> {
    const OP: &str = "PRESENCE_UPDATE";
    let Some(Value::Object(mut d)) = d else {
        return Err(invalid(OP, "d must be an object"));
    };
    let status = match d.get("status") {
        Some(Value::String(s)) => Status::parse(s)
            .ok_or_else(|| invalid(OP, "status must be online, away, dnd or offline"))?,
        _ => Status::Online,
    };
    let mut text = |key: &'static str| -> Result<Option<String>, ParseError> {
        match d.remove(key) {
            Some(Value::String(s)) if s.chars().count() > limits::MAX_PRESENCE_TEXT_CHARS => {
                Err(invalid(
                    OP,
                    format!(
                        "{key} is longer than {} characters",
                        limits::MAX_PRESENCE_TEXT_CHARS
                    ),
                ))
            }
            Some(Value::String(s)) => Ok(Some(s)),
            _ => Ok(None),
        }
    };
    let custom_status = text("custom_status")?;
    let activity = text("activity")?;
    Ok(PresenceCommand {
        status,
        custom_status,
        activity,
    })
}

/// `MEDIA_START`: `d.format` names a known format.
fn media_start(d: Option<Value>) -> Result<MediaStart, ParseError> {
    const OP: &str = "MEDIA_START";
    let format = d
        .as_ref()
        .and_then(|d| d.get("format"))
        .and_then(Value::as_str)
        .and_then(crate::AudioFormat::parse)
        .ok_or_else(|| {
            invalid(
                OP,
                "format must be pcm_s16le_16k, pcm_s16le_48k or opus_48k",
            )
        })?;
    Ok(MediaStart { format })
}

/// `MEDIA_SUBSCRIBE`: `d` absent or null, or an object whose `speakers` is absent,
/// null, or a list of at most 64 user ids.
fn media_subscribe(d: Option<Value>) -> Result<MediaSubscribe, ParseError> {
    const OP: &str = "MEDIA_SUBSCRIBE";
    let speakers = match d {
        None | Some(Value::Null) => None,
        Some(Value::Object(mut d)) => match d.remove("speakers") {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) if list.len() <= limits::MAX_MEDIA_SPEAKER_FILTER => Some(
                list.iter()
                    .map(|v| v.as_str().and_then(|s| s.parse::<UserId>().ok()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid(OP, "speakers must be user ids"))?,
            ),
            Some(_) => {
                return Err(invalid(
                    OP,
                    format!(
                        "speakers must be null or a list of at most {} user ids",
                        limits::MAX_MEDIA_SPEAKER_FILTER
                    ),
                ));
            }
        },
        Some(_) => return Err(invalid(OP, "d must be an object or null")),
    };
    Ok(MediaSubscribe { speakers })
}

/// `gateway.md` §4: `d.channel_id` is a UUID string.
fn typing(d: Option<Value>) -> Result<TypingCommand, ParseError> {
    let channel_id = d
        .as_ref()
        .and_then(|d| d.get("channel_id"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<ChannelId>().ok())
        .ok_or_else(|| invalid("TYPING_START", "channel_id must be a channel id"))?;
    Ok(TypingCommand { channel_id })
}

/// `gateway.md` §9, in the reference's order, with Concord's `stream_type` check.
fn voice_signal(d: Option<Value>) -> Result<VoiceSignalCommand, ParseError> {
    const OP: &str = "VOICE_SIGNAL";
    let Some(Value::Object(mut d)) = d else {
        return Err(invalid(OP, "d must be an object"));
    };
    let to_user_id = d
        .get("to_user_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<UserId>().ok())
        .ok_or_else(|| invalid(OP, "to_user_id must be a user id"))?;
    let kind = match d.get("type").and_then(Value::as_str) {
        Some(k @ ("offer" | "answer" | "candidate")) => k.to_string(),
        _ => return Err(invalid(OP, "type must be offer, answer or candidate")),
    };
    let mut optional_text = |key: &'static str| -> Result<Option<String>, ParseError> {
        match d.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(OP, format!("{key} must be a string or null"))),
        }
    };
    let sdp = optional_text("sdp")?;
    let candidate = optional_text("candidate")?;
    let stream_type = optional_text("stream_type")?;
    Ok(VoiceSignalCommand {
        to_user_id,
        kind,
        sdp,
        candidate,
        stream_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_and_unknowns() {
        assert_eq!(
            ClientMessage::parse(r#"{"op":"HEARTBEAT","t":null,"d":null,"x":1}"#),
            Ok(ClientMessage::Heartbeat)
        );
        assert!(matches!(
            ClientMessage::parse(r#"{"op":"heartbeat"}"#),
            Err(ParseError::UnknownOp(_))
        ));
        assert!(matches!(
            ClientMessage::parse("not json"),
            Err(ParseError::Decode(_))
        ));
        assert!(matches!(
            ClientMessage::parse(r#"{"op":5}"#),
            Err(ParseError::Decode(_))
        ));
        assert_eq!(
            ClientMessage::parse(r#"{"op":"DISPATCH"}"#),
            Ok(ClientMessage::ServerOp(Op::Dispatch))
        );
    }

    #[test]
    fn presence_follows_the_reference_rules() {
        let parse = |text: &str| match ClientMessage::parse(text) {
            Ok(ClientMessage::Command(Command::PresenceUpdate(p))) => Ok(p),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let p = parse(r#"{"op":"PRESENCE_UPDATE","d":{"custom_status":7}}"#).unwrap();
        assert_eq!(
            (p.status, p.custom_status, p.activity),
            (Status::Online, None, None)
        );
        let p =
            parse(r#"{"op":"PRESENCE_UPDATE","d":{"status":"dnd","activity":"chess"}}"#).unwrap();
        assert_eq!(
            (p.status, p.activity.as_deref()),
            (Status::Dnd, Some("chess"))
        );
        assert!(parse(r#"{"op":"PRESENCE_UPDATE","d":{"status":"busy"}}"#).is_err());
        assert!(parse(r#"{"op":"PRESENCE_UPDATE"}"#).is_err());
        let long = format!(
            r#"{{"op":"PRESENCE_UPDATE","d":{{"custom_status":"{}"}}}}"#,
            "x".repeat(129)
        );
        assert!(parse(&long).is_err());
    }

    #[test]
    fn voice_signals_are_checked_in_order() {
        let target = UserId::new();
        let ok = format!(
            r#"{{"op":"VOICE_SIGNAL","d":{{"to_user_id":"{target}","type":"offer","sdp":"v=0","extra":1}}}}"#
        );
        let Ok(ClientMessage::Command(Command::VoiceSignal(signal))) = ClientMessage::parse(&ok)
        else {
            panic!()
        };
        assert_eq!(signal.to_user_id, target);
        assert_eq!(signal.sdp.as_deref(), Some("v=0"));
        for bad in [
            r#"{"op":"VOICE_SIGNAL","d":{"to_user_id":"nope","type":"offer"}}"#.to_string(),
            format!(r#"{{"op":"VOICE_SIGNAL","d":{{"to_user_id":"{target}","type":"hello"}}}}"#),
            format!(
                r#"{{"op":"VOICE_SIGNAL","d":{{"to_user_id":"{target}","type":"offer","stream_type":{{}}}}}}"#
            ),
        ] {
            assert!(
                matches!(
                    ClientMessage::parse(&bad),
                    Err(ParseError::InvalidPayload { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn media_commands() {
        assert_eq!(
            ClientMessage::parse(r#"{"op":"MEDIA_START","d":{"format":"opus_48k"}}"#),
            Ok(ClientMessage::Media(MediaCommand::Start(MediaStart {
                format: crate::AudioFormat::Opus48k
            })))
        );
        for bad in [
            r#"{"op":"MEDIA_START","d":{"format":"mp3"}}"#,
            r#"{"op":"MEDIA_START"}"#,
            r#"{"op":"MEDIA_SUBSCRIBE","d":{"speakers":"all"}}"#,
            r#"{"op":"MEDIA_SUBSCRIBE","d":{"speakers":["nope"]}}"#,
            r#"{"op":"MEDIA_SUBSCRIBE","d":7}"#,
        ] {
            assert!(
                matches!(
                    ClientMessage::parse(bad),
                    Err(ParseError::InvalidPayload { .. })
                ),
                "{bad}"
            );
        }
        let speaker = UserId::new();
        assert_eq!(
            ClientMessage::parse(&format!(
                r#"{{"op":"MEDIA_SUBSCRIBE","d":{{"speakers":["{speaker}"]}}}}"#
            )),
            Ok(ClientMessage::Media(MediaCommand::Subscribe(
                MediaSubscribe {
                    speakers: Some(vec![speaker])
                }
            )))
        );
        assert_eq!(
            ClientMessage::parse(r#"{"op":"MEDIA_SUBSCRIBE"}"#),
            Ok(ClientMessage::Media(MediaCommand::Subscribe(
                MediaSubscribe::default()
            )))
        );
        assert_eq!(
            ClientMessage::parse(r#"{"op":"MEDIA_CLEAR","d":null}"#),
            Ok(ClientMessage::Media(MediaCommand::Clear))
        );
    }

    #[test]
    fn identify_and_resume() {
        let Ok(ClientMessage::Identify(identify)) = ClientMessage::parse(
            r#"{"op":"IDENTIFY","d":{"token":"t","intents":["messages","typing"]}}"#,
        ) else {
            panic!()
        };
        assert_eq!(identify.token.as_deref(), Some("t"));
        assert_eq!(
            identify.intents,
            Some(crate::Intents::MESSAGES | crate::Intents::TYPING)
        );
        assert!(
            ClientMessage::parse(r#"{"op":"IDENTIFY","d":{"token":"t","intents":["nope"]}}"#)
                .is_err()
        );
        let Ok(ClientMessage::Resume(resume)) =
            ClientMessage::parse(r#"{"op":"RESUME","d":{"token":"t","session_id":"abc","seq":7}}"#)
        else {
            panic!()
        };
        assert_eq!((resume.session_id.as_str(), resume.seq), ("abc", 7));
        assert!(ClientMessage::parse(r#"{"op":"RESUME","d":{"token":"t"}}"#).is_err());
    }
}
