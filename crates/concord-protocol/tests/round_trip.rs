//! Every envelope and payload round-trips through JSON, and carries exactly the keys
//! the contract lists (nullable keys present as null, omitted ones absent).

use std::collections::BTreeMap;

use concord_protocol::*;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) -> Value {
    let json = serde_json::to_value(value).unwrap();
    let back: T = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(&back, value);
    json
}

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| (*s).to_string()).collect();
    v.sort();
    v
}

fn ts() -> Timestamp {
    Timestamp::from_micros(1_700_000_000_000_001)
}

fn user() -> User {
    User {
        id: UserId::new(),
        username: "alice".into(),
        email: None,
        avatar_url: None,
        bio: Some("hi".into()),
        pronouns: None,
        status: Status::Dnd,
        custom_status: None,
        activity: None,
        created_at: ts(),
        is_admin: false,
    }
}

fn message() -> Message {
    Message {
        id: MessageId::new(),
        channel_id: ChannelId::new(),
        author_id: Some(UserId::new()),
        content: "hello".into(),
        reply_to: None,
        mention_user_ids: vec![UserId::new()],
        mention_everyone: false,
        thread_id: None,
        thread_reply_count: 0,
        edited_at: None,
        deleted: false,
        created_at: ts(),
        pinned: false,
        pinned_by: None,
        pinned_at: None,
        poll: Some(Poll {
            id: PollId::new(),
            question: "?".into(),
            options: vec![PollOption {
                id: PollOptionId::new(),
                text: "a".into(),
                votes: 1,
            }],
            total_votes: 1,
            user_vote: None,
        }),
        event: Some(ServerEvent {
            id: EventId::new(),
            name: "party".into(),
            description: None,
            starts_at: ts(),
            created_by: None,
            created_at: ts(),
        }),
    }
}

fn server() -> Server {
    Server {
        id: ServerId::new(),
        name: "hall".into(),
        owner_id: UserId::new(),
        icon_url: None,
        is_public: true,
        require_invite: false,
        created_at: ts(),
        updated_at: ts(),
    }
}

#[test]
fn heartbeat_ack_is_exact() {
    assert_eq!(HEARTBEAT_ACK, r#"{"op":"HEARTBEAT_ACK"}"#);
    let frame = ServerFrame {
        op: Op::HeartbeatAck,
        t: None,
        d: None,
    };
    assert_eq!(serde_json::to_string(&frame).unwrap(), HEARTBEAT_ACK);
}

#[test]
fn dispatch_envelope_has_op_t_d() {
    let d = MessageDelete {
        id: MessageId::new(),
        channel_id: ChannelId::new(),
    };
    let json = serde_json::to_value(Dispatch::new(Event::MessageDelete, &d)).unwrap();
    assert_eq!(keys(&json), sorted(&["op", "t", "d"]));
    assert_eq!(json["op"], "DISPATCH");
    assert_eq!(json["t"], "MESSAGE_DELETE");
    let parsed: ServerFrame = serde_json::from_value(json).unwrap();
    let back: MessageDelete = serde_json::from_value(parsed.d.unwrap()).unwrap();
    assert_eq!(back, d);
}

#[test]
fn client_frames_parse_like_the_reference() {
    let frame: ClientFrame =
        serde_json::from_str(r#"{"op":"HEARTBEAT","t":null,"d":null,"extra":1}"#).unwrap();
    assert_eq!(frame.op, Op::Heartbeat);
    assert!(frame.d.is_none());
    let frame: ClientFrame =
        serde_json::from_str(r#"{"op":"TYPING_START","d":{"channel_id":"x"}}"#).unwrap();
    assert_eq!(frame.op, Op::TypingStart);
    assert!(
        serde_json::from_str::<ClientFrame>(r#"{"op":"SUBSCRIBE"}"#).is_err(),
        "unknown op"
    );
    assert!(
        serde_json::from_str::<ClientFrame>(r#"{"op":"heartbeat"}"#).is_err(),
        "case matters"
    );
    assert!(
        serde_json::from_str::<ClientFrame>(r#"{"d":{}}"#).is_err(),
        "op required"
    );
    for op in [
        Op::Dispatch,
        Op::Heartbeat,
        Op::HeartbeatAck,
        Op::PresenceUpdate,
        Op::TypingStart,
        Op::VoiceSignal,
    ] {
        let frame = ClientFrame {
            op,
            t: None,
            d: Some(json!({"k": 1})),
        };
        let back: ClientFrame =
            serde_json::from_value(serde_json::to_value(&frame).unwrap()).unwrap();
        assert_eq!(back.op, op);
        assert_eq!(back.d, frame.d);
    }
}

#[test]
fn event_names_are_upper_snake_case() {
    let names = [
        (Event::Ready, "READY"),
        (Event::MessageCreate, "MESSAGE_CREATE"),
        (Event::MessageUpdate, "MESSAGE_UPDATE"),
        (Event::MessageDelete, "MESSAGE_DELETE"),
        (Event::ThreadMessageCreate, "THREAD_MESSAGE_CREATE"),
        (Event::PresenceUpdate, "PRESENCE_UPDATE"),
        (Event::TypingStart, "TYPING_START"),
        (Event::VoiceStateUpdate, "VOICE_STATE_UPDATE"),
        (Event::VoiceSignal, "VOICE_SIGNAL"),
        (Event::DmChannelCreate, "DM_CHANNEL_CREATE"),
        (Event::DmMessageCreate, "DM_MESSAGE_CREATE"),
    ];
    for (event, name) in names {
        assert_eq!(event.as_str(), name);
    }
}

#[test]
fn ready_round_trips_with_its_seven_keys() {
    let s = server();
    let role = Role {
        id: RoleId::new(),
        server_id: s.id,
        name: "mod".into(),
        permissions: 4,
        color: None,
        position: 1,
        created_at: ts(),
    };
    let ov = ChannelOverride {
        id: OverrideId::new(),
        channel_id: ChannelId::new(),
        role_id: Some(role.id),
        user_id: None,
        allow: 1,
        deny: 2,
    };
    let ready = Ready {
        user: user(),
        servers: vec![s.clone()],
        dm_channels: vec![DmChannel {
            id: DmChannelId::new(),
            recipient: user(),
            created_at: ts(),
            last_message_at: None,
        }],
        unread_counts: vec![UnreadCount {
            channel_id: uuid::Uuid::new_v4(),
            unread_count: 3,
        }],
        mention_counts: vec![MentionCount {
            channel_id: ChannelId::new(),
            count: 1,
        }],
        server_roles: BTreeMap::from([(s.id, vec![role])]),
        channel_overrides: BTreeMap::from([(ov.channel_id, vec![ov])]),
    };
    let json = round_trip(&ready);
    assert_eq!(
        keys(&json),
        sorted(&[
            "user",
            "servers",
            "dm_channels",
            "unread_counts",
            "mention_counts",
            "server_roles",
            "channel_overrides"
        ])
    );
    assert_eq!(
        keys(&json["servers"][0]),
        sorted(&[
            "id",
            "name",
            "owner_id",
            "icon_url",
            "is_public",
            "require_invite",
            "created_at",
            "updated_at"
        ])
    );
    assert!(json["server_roles"][s.id.to_string()].is_array());
}

#[test]
fn user_shapes() {
    let json = round_trip(&user());
    assert_eq!(
        keys(&json),
        sorted(&[
            "id",
            "username",
            "email",
            "avatar_url",
            "bio",
            "pronouns",
            "status",
            "custom_status",
            "activity",
            "created_at",
            "is_admin"
        ])
    );
    assert_eq!(json["status"], "dnd");
    assert!(json["email"].is_null());
    let profile = PublicProfile {
        id: UserId::new(),
        username: "bob".into(),
        avatar_url: None,
        status: Status::Offline,
        custom_status: None,
        activity: None,
        bio: None,
        pronouns: None,
        created_at: ts(),
    };
    assert_eq!(keys(&round_trip(&profile)).len(), 9);
    round_trip(&AuthResponse {
        access_token: "a".into(),
        refresh_token: "r".into(),
        user: user(),
    });
    round_trip(&UpdateMe {
        status: Some("away".into()),
        ..UpdateMe::default()
    });
    round_trip(&RegisterRequest {
        username: "u".into(),
        email: None,
        password: "p".into(),
        invite_code: None,
    });
    round_trip(&LoginRequest {
        username: "u".into(),
        password: "p".into(),
    });
    round_trip(&RefreshRequest {
        refresh_token: "t".into(),
    });
}

#[test]
fn message_has_all_17_keys() {
    let json = round_trip(&message());
    assert_eq!(keys(&json).len(), 17);
    assert!(
        json["reply_to"].is_null() && json["edited_at"].is_null() && json["pinned_at"].is_null()
    );
    assert_eq!(
        keys(&json["poll"]),
        sorted(&["id", "question", "options", "total_votes", "user_vote"])
    );
    assert_eq!(
        keys(&json["event"]),
        sorted(&[
            "id",
            "name",
            "description",
            "starts_at",
            "created_by",
            "created_at"
        ])
    );
    round_trip(&CreateMessage {
        content: "x".into(),
        reply_to: None,
    });
    round_trip(&EditMessage {
        content: "x".into(),
    });
}

#[test]
fn server_side_dtos() {
    let dto = ServerDto {
        server: server(),
        member_count: 2,
    };
    let json = round_trip(&dto);
    assert_eq!(json["member_count"], 2);
    assert_eq!(
        keys(&json).len(),
        9,
        "Server keys flattened plus member_count"
    );
    let channel = Channel {
        id: ChannelId::new(),
        server_id: ServerId::new(),
        name: "general".into(),
        kind: ChannelType::Voice,
        position: 0,
        category: None,
        topic: None,
        created_at: ts(),
    };
    let json = round_trip(&channel);
    assert_eq!(json["type"], "voice");
    assert!(serde_json::from_value::<ChannelType>(json!("Text")).is_err());
    let member = Member {
        user_id: UserId::new(),
        username: "a".into(),
        avatar_url: None,
        status: Status::Online,
        custom_status: None,
        nickname: None,
        joined_at: ts(),
        roles: vec![MemberRoleInfo {
            id: RoleId::new(),
            name: "r".into(),
            color: None,
            position: 1,
        }],
    };
    assert_eq!(keys(&round_trip(&member)).len(), 8);
    round_trip(&CreateServer {
        name: "s".into(),
        icon_url: None,
        is_public: Some(true),
        require_invite: None,
        template_id: None,
    });
    round_trip(&UpdateServer::default());
    round_trip(&CreateChannel {
        name: "c".into(),
        kind: ChannelType::Text,
        topic: None,
        category: None,
    });
    round_trip(&UpdateChannel {
        position: Some(2),
        ..UpdateChannel::default()
    });
    round_trip(&MessageBody {
        message: "ok".into(),
    });
}

#[test]
fn gateway_payloads() {
    let presence = PresenceUpdate {
        user_id: UserId::new(),
        status: Status::Away,
        custom_status: None,
        activity: Some("x".into()),
    };
    assert_eq!(
        keys(&round_trip(&presence)),
        sorted(&["user_id", "status", "custom_status", "activity"])
    );
    let typing = TypingStart {
        user_id: UserId::new(),
        username: Some("a".into()),
        channel_id: ChannelId::new(),
        timestamp: typing_timestamp(ts().to_datetime()),
    };
    assert_eq!(
        keys(&round_trip(&typing)),
        sorted(&["user_id", "username", "channel_id", "timestamp"])
    );
    let signal = VoiceSignal {
        from_user_id: UserId::new(),
        kind: "offer".into(),
        sdp: None,
        candidate: None,
        stream_type: None,
    };
    let json = round_trip(&signal);
    assert_eq!(
        keys(&json),
        sorted(&["from_user_id", "type", "sdp", "candidate", "stream_type"])
    );
    let command = VoiceSignalCommand {
        to_user_id: UserId::new(),
        kind: "offer".into(),
        sdp: None,
        candidate: None,
        stream_type: None,
    };
    assert_eq!(
        keys(&round_trip(&command)),
        sorted(&["to_user_id", "type"]),
        "absent keys omitted, like the web client"
    );
    round_trip(&PresenceCommand {
        status: Status::Online,
        custom_status: None,
        activity: None,
    });
    round_trip(&TypingCommand {
        channel_id: ChannelId::new(),
    });
    round_trip(&MessageDelete {
        id: MessageId::new(),
        channel_id: ChannelId::new(),
    });
}

#[test]
fn dm_voice_bot_and_misc() {
    let dm = DirectMessage {
        id: DirectMessageId::new(),
        channel_id: DmChannelId::new(),
        author_id: None,
        content: "x".into(),
        edited_at: None,
        created_at: ts(),
    };
    assert_eq!(keys(&round_trip(&dm)).len(), 6);
    round_trip(&OpenDm {
        user_id: UserId::new(),
    });
    round_trip(&SendDm {
        content: "x".into(),
    });
    let state = VoiceState::left(UserId::new());
    assert_eq!(keys(&round_trip(&state)).len(), 9);
    let participant = VoiceParticipant {
        state,
        username: "a".into(),
    };
    assert_eq!(keys(&round_trip(&participant)).len(), 10);
    assert!(
        serde_json::from_value::<UpdateVoice>(json!({"self_mute": true, "x": 1})).is_err(),
        "strict"
    );
    round_trip(&UpdateVoice {
        self_deaf: Some(true),
        ..UpdateVoice::default()
    });
    let ice = IceServers {
        ice_servers: vec![IceServer {
            urls: "stun:x".into(),
            username: None,
            credential: None,
        }],
        ttl: 86400,
    };
    let json = round_trip(&ice);
    assert_eq!(
        keys(&json["iceServers"][0]),
        vec!["urls".to_string()],
        "credentials omitted, not null"
    );
    let bot = Bot {
        id: BotId::new(),
        user_id: UserId::new(),
        name: "b".into(),
        description: None,
        created_by: None,
        revoked_at: None,
        created_at: ts(),
    };
    assert_eq!(keys(&round_trip(&bot)).len(), 7);
    round_trip(&BotCreated {
        bot,
        token: "t".into(),
    });
    round_trip(&BotList { bots: vec![] });
    round_trip(&CreateBot {
        name: "b".into(),
        description: None,
    });
    round_trip(&UpdateBot::default());
    round_trip(&BotConnect {
        access_token: "t".into(),
    });
    round_trip(&ErrorBody {
        error: "nope".into(),
    });
    let health = Health {
        status: "ok".into(),
        service: "concord".into(),
        version: "0".into(),
        uptime_secs: Some(1),
        database: DatabaseHealth {
            status: "ok".into(),
            latency_ms: 0,
        },
        connections: Connections { websocket: 0 },
    };
    round_trip(&health);
    let ready = Readiness {
        ready: true,
        checks: ReadinessChecks {
            database: Check {
                ok: true,
                error: None,
            },
        },
    };
    assert_eq!(
        round_trip(&ready)["checks"]["database"],
        json!({"ok": true})
    );
    round_trip(&Liveness { alive: true });
}

// ---- custom emojis ----

#[test]
fn custom_emoji_shapes() {
    let id = CustomEmojiId::new();
    let emoji = CustomEmoji {
        id,
        server_id: ServerId::new(),
        created_by: UserId::new(),
        name: "party_parrot".into(),
        url: CustomEmoji::url_of(id),
        content_type: "image/gif".into(),
        file_size: 1234,
        created_at: ts(),
    };
    let json = round_trip(&emoji);
    assert_eq!(
        keys(&json),
        sorted(&[
            "id",
            "server_id",
            "created_by",
            "name",
            "url",
            "content_type",
            "file_size",
            "created_at"
        ])
    );
    assert_eq!(json["url"], format!("/emojis/{id}"));
    let deleted = CustomEmojiDelete {
        server_id: ServerId::new(),
        emoji_id: id,
    };
    assert_eq!(
        keys(&round_trip(&deleted)),
        sorted(&["server_id", "emoji_id"])
    );
}
