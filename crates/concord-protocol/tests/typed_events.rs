//! Every server → client event of `gateway.md` §7 and `extensions.md`, as the exact
//! JSON of the spec (every listed key, nullable ones present as null), decodes into its
//! typed [`GatewayEvent`] variant and encodes back to the same JSON; unknown events and
//! ops are kept, and malformed frames are refused with a reason.

use std::collections::BTreeSet;

use concord_protocol::{DecodeError, Event, GatewayEvent, ServerMessage};
use serde_json::{Value, json};

const U1: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a01";
const U2: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a02";
const C1: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a03";
const S1: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a04";
const M1: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a05";
const X1: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a06";
const X2: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a07";
const TS: &str = "2026-01-02T03:04:05.123456Z";

fn user() -> Value {
    json!({"id": U1, "username": "alice", "email": "a@example.com", "avatar_url": null,
        "bio": null, "pronouns": null, "status": "online", "custom_status": null,
        "activity": null, "created_at": TS, "is_admin": false})
}

fn recipient() -> Value {
    json!({"id": U2, "username": "bob", "email": null, "avatar_url": null,
        "bio": null, "pronouns": null, "status": "offline", "custom_status": null,
        "activity": null, "created_at": TS, "is_admin": false})
}

fn profile() -> Value {
    json!({"id": U2, "username": "bob", "avatar_url": null, "status": "online",
        "custom_status": "busy", "activity": null, "bio": null, "pronouns": null,
        "created_at": TS})
}

fn server() -> Value {
    json!({"id": S1, "name": "hall", "owner_id": U1, "icon_url": null, "is_public": true,
        "require_invite": false, "created_at": TS, "updated_at": TS})
}

fn poll() -> Value {
    json!({"id": X1, "question": "tea?", "options": [{"id": X2, "text": "yes", "votes": 1}],
        "total_votes": 1, "user_vote": X2})
}

fn message(thread: bool) -> Value {
    json!({"id": M1, "channel_id": C1, "author_id": U1, "content": "hello",
    "reply_to": null, "mention_user_ids": [U2], "mention_everyone": false,
    "thread_id": if thread { json!(X1) } else { Value::Null },
    "thread_reply_count": 0, "edited_at": null, "deleted": false, "created_at": TS,
    "pinned": false, "pinned_by": null, "pinned_at": null,
    "poll": if thread { Value::Null } else { poll() },
    "event": if thread { Value::Null } else {
        json!({"id": X2, "name": "party", "description": null, "starts_at": TS,
            "created_by": U1, "created_at": TS})
    }})
}

fn role() -> Value {
    json!({"id": X1, "server_id": S1, "name": "mods", "permissions": 260,
        "color": "#ff0000", "position": 1, "created_at": TS})
}

fn override_() -> Value {
    json!({"id": X1, "channel_id": C1, "role_id": null, "user_id": U2, "allow": 0, "deny": 1})
}

fn channel() -> Value {
    json!({"id": C1, "server_id": S1, "name": "general", "type": "text", "position": 0,
        "category": null, "topic": "talk", "created_at": TS})
}

/// `(t, d)` for every event name of the spec, in the order of `gateway.md` §7 and then
/// `extensions.md`.
fn spec_events() -> Vec<(&'static str, Value)> {
    vec![
        (
            "READY",
            json!({"user": user(), "servers": [server()], "dm_channels": [
            {"id": X1, "recipient": recipient(), "created_at": TS, "last_message_at": null}],
            "unread_counts": [{"channel_id": C1, "unread_count": 3}],
            "mention_counts": [{"channel_id": C1, "count": 1}],
            "server_roles": {S1: [role()]},
            "channel_overrides": {C1: [override_()]}}),
        ),
        ("MESSAGE_CREATE", message(false)),
        ("MESSAGE_UPDATE", message(false)),
        ("MESSAGE_DELETE", json!({"id": M1, "channel_id": C1})),
        ("THREAD_MESSAGE_CREATE", message(true)),
        (
            "PRESENCE_UPDATE",
            json!({"user_id": U1, "status": "dnd", "custom_status": null, "activity": "chess"}),
        ),
        (
            "TYPING_START",
            json!({"user_id": U1, "username": "alice", "channel_id": C1,
            "timestamp": "2026-01-02T03:04:05.123456789+00:00"}),
        ),
        (
            "VOICE_STATE_UPDATE",
            json!({"user_id": U1, "channel_id": null, "self_mute": false,
            "self_deaf": false, "self_video": false, "self_screen": false, "server_mute": false,
            "server_deaf": false, "joined_at": null, "username": "alice"}),
        ),
        (
            "VOICE_SIGNAL",
            json!({"from_user_id": U1, "type": "offer", "sdp": "v=0", "candidate": null, "stream_type": "voice"}),
        ),
        (
            "DM_CHANNEL_CREATE",
            json!({"id": X1, "recipient": recipient(), "created_at": TS, "last_message_at": null}),
        ),
        (
            "DM_MESSAGE_CREATE",
            json!({"id": M1, "channel_id": X1, "author_id": U1, "content": "psst", "edited_at": null, "created_at": TS}),
        ),
        (
            "REACTION_ADD",
            json!({"message_id": M1, "channel_id": C1, "user_id": U1, "emoji": "👍"}),
        ),
        (
            "REACTION_REMOVE",
            json!({"message_id": M1, "channel_id": C1, "user_id": U1, "emoji": "👍"}),
        ),
        (
            "POLL_VOTE",
            json!({"poll_id": X1, "channel_id": C1, "updated_poll": poll()}),
        ),
        (
            "MESSAGE_PIN",
            json!({"message_id": M1, "channel_id": C1, "pinned_by": U1}),
        ),
        (
            "MESSAGE_UNPIN",
            json!({"message_id": M1, "channel_id": C1, "unpinned_by": U1}),
        ),
        (
            "MEMBER_KICK",
            json!({"server_id": S1, "user_id": U2, "reason": null}),
        ),
        (
            "MEMBER_BAN",
            json!({"server_id": S1, "user_id": U2, "reason": "spam"}),
        ),
        ("MEMBER_UNBAN", json!({"server_id": S1, "user_id": U2})),
        (
            "MEMBER_TIMEOUT",
            json!({"server_id": S1, "user_id": U2, "expires_at": TS, "reason": null}),
        ),
        (
            "MEMBER_TIMEOUT_REMOVE",
            json!({"server_id": S1, "user_id": U2}),
        ),
        (
            "CUSTOM_EMOJI_CREATE",
            json!({"id": X1, "server_id": S1, "created_by": U1, "name": "party_parrot",
            "url": "/emojis/x", "content_type": "image/png", "file_size": 1024, "created_at": TS}),
        ),
        (
            "CUSTOM_EMOJI_DELETE",
            json!({"server_id": S1, "emoji_id": X1}),
        ),
        (
            "GO_LIVE_START",
            json!({"channel_id": C1, "broadcaster_id": U1, "quality": "1080p", "started_at": TS}),
        ),
        (
            "GO_LIVE_STOP",
            json!({"channel_id": C1, "broadcaster_id": U1}),
        ),
        ("ROLE_CREATE", role()),
        ("ROLE_UPDATE", role()),
        ("ROLE_DELETE", json!({"server_id": S1, "role_id": X1})),
        (
            "MEMBER_ROLE_ADD",
            json!({"server_id": S1, "user_id": U2, "role_id": X1, "role_name": "mods", "role_color": null}),
        ),
        (
            "MEMBER_ROLE_REMOVE",
            json!({"server_id": S1, "user_id": U2, "role_id": X1, "role_name": "mods", "role_color": "#ff0000"}),
        ),
        (
            "INVITE_CREATE",
            json!({"id": X1, "server_id": S1, "code": "aB3dE5gH", "created_by": U1,
            "max_uses": null, "uses": 0, "expires_at": TS, "created_at": TS}),
        ),
        ("INVITE_DELETE", json!({"server_id": S1, "invite_id": X1})),
        ("CHANNEL_OVERRIDE_UPDATE", override_()),
        (
            "CHANNEL_OVERRIDE_DELETE",
            json!({"channel_id": C1, "override_id": X1}),
        ),
        ("RESUMED", json!({"replayed": 12})),
        ("SERVER_UPDATE", {
            let mut dto = server();
            dto["member_count"] = json!(2);
            dto
        }),
        ("SERVER_DELETE", json!({"id": S1, "server_id": S1})),
        ("CHANNEL_CREATE", channel()),
        ("CHANNEL_UPDATE", channel()),
        ("CHANNEL_DELETE", json!({"id": C1, "server_id": S1})),
        ("MEMBER_JOIN", json!({"server_id": S1, "user": profile()})),
        ("MEMBER_LEAVE", json!({"server_id": S1, "user": profile()})),
        ("USER_UPDATE", user()),
        (
            "MEDIA_STARTED",
            json!({"user_id": U1, "channel_id": C1, "format": "pcm_s16le_48k"}),
        ),
        (
            "MEDIA_ENDED",
            json!({"user_id": U1, "channel_id": C1, "reason": "cleared"}),
        ),
    ]
}

fn decode(frame: &Value) -> ServerMessage {
    ServerMessage::from_slice(frame.to_string().as_bytes())
        .unwrap_or_else(|err| panic!("{err}: {frame}"))
}

#[test]
fn every_spec_event_round_trips_through_its_typed_variant() {
    let events = spec_events();
    let names: BTreeSet<&str> = events.iter().map(|(t, _)| *t).collect();
    let known: BTreeSet<&str> = Event::ALL.iter().map(|e| e.as_str()).collect();
    assert_eq!(names, known, "one sample per event name, no more, no less");
    for (seq, (t, d)) in events.into_iter().enumerate() {
        // v2 numbers every dispatch; v1 has no `s`.
        for s in [Some(seq as u64 + 1), None] {
            let mut frame = json!({"op": "DISPATCH", "t": t, "d": d});
            if let Some(s) = s {
                frame["s"] = json!(s);
            }
            let ServerMessage::Dispatch { seq: got, event } = decode(&frame) else {
                panic!("{t}: not a dispatch");
            };
            assert_eq!(got, s);
            assert_eq!(event.event().map(Event::as_str), Some(t), "typed as {t}");
            assert!(!matches!(event, GatewayEvent::Unknown { .. }), "{t}");
            assert_eq!(event.name(), t);
            let back = ServerMessage::Dispatch { seq: s, event }
                .to_value()
                .unwrap();
            assert_eq!(back, frame, "{t} round trip");
        }
    }
}

#[test]
fn variants_hold_the_servers_payload_types() {
    let d = json!({"message_id": M1, "channel_id": C1, "user_id": U1, "emoji": "x"});
    let GatewayEvent::ReactionRemove(reaction) =
        GatewayEvent::from_parts("REACTION_REMOVE", d).unwrap()
    else {
        panic!("REACTION_REMOVE");
    };
    assert_eq!(reaction.emoji, "x");
    let GatewayEvent::MessageCreate(msg) =
        GatewayEvent::from_parts("MESSAGE_CREATE", message(false)).unwrap()
    else {
        panic!("MESSAGE_CREATE");
    };
    assert_eq!(msg.content, "hello");
    assert_eq!(msg.poll.unwrap().options[0].text, "yes");
}

#[test]
fn an_unknown_event_is_kept_with_its_payload() {
    for frame in [
        json!({"op": "DISPATCH", "t": "STAGE_CREATE", "d": {"id": 1, "nested": [true]}, "s": 9}),
        json!({"op": "DISPATCH", "t": "TYPING_STOP", "d": null}),
    ] {
        let message = decode(&frame);
        let ServerMessage::Dispatch {
            event: GatewayEvent::Unknown { name, raw },
            ..
        } = &message
        else {
            panic!("{frame}");
        };
        assert_eq!(name, frame["t"].as_str().unwrap());
        assert_eq!(raw, &frame["d"]);
        assert_eq!(message.to_value().unwrap(), frame);
    }
}

#[test]
fn the_other_ops_round_trip() {
    for frame in [
        json!({"op": "HEARTBEAT_ACK"}),
        json!({"op": "HELLO", "d": {"heartbeat_interval": 30000, "session_id": "abc"}}),
        json!({"op": "INVALID_SESSION", "d": {"resumable": false}}),
        json!({"op": "RECONNECT"}),
        json!({"op": "ERROR", "d": {"code": "RATE_LIMITED", "message": "slow down", "retry_after": 250}}),
        json!({"op": "ERROR", "d": {"code": "NOT_FOUND", "message": "no such channel"}}),
        json!({"op": "SOMETHING_NEW", "d": {"x": 1}}),
    ] {
        assert_eq!(decode(&frame).to_value().unwrap(), frame);
    }
    assert_eq!(
        decode(&json!({"op": "HEARTBEAT_ACK"})),
        ServerMessage::HeartbeatAck
    );
}

#[test]
fn malformed_frames_are_refused_with_a_reason() {
    for (bytes, check) in [
        (&b"not json"[..], "frame"),
        (br#"{"t": "READY"}"#, "frame"),
        (br#"{"op": "DISPATCH", "d": {}}"#, "name"),
        (
            br#"{"op": "DISPATCH", "t": "MESSAGE_DELETE", "d": {"id": 5}}"#,
            "payload",
        ),
        (br#"{"op": "DISPATCH", "t": "MESSAGE_DELETE"}"#, "payload"),
        (br#"{"op": "HELLO", "d": {"session_id": "x"}}"#, "payload"),
    ] {
        let err = ServerMessage::from_slice(bytes).unwrap_err();
        let kind = match err {
            DecodeError::Frame(_) => "frame",
            DecodeError::MissingName => "name",
            DecodeError::Payload { .. } => "payload",
            other => panic!("{other}"),
        };
        assert_eq!(kind, check, "{}", String::from_utf8_lossy(bytes));
    }
}
