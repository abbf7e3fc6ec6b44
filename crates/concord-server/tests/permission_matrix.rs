//! The permission audit (`rest.md` §5, §7, R2, R3): every permission-gated REST
//! endpoint, asked by six actors, against the real server.
//!
//! - `owner` passes everything;
//! - `outsider` is no member (404, membership hidden; the bans routes answer 403);
//! - `plain` is a member with no role: only membership and the implicit channel
//!   defaults (123) pass;
//! - `holder` has one role carrying exactly the bit the endpoint needs;
//! - `blocked` has the same role, and a user override on both channels denying that
//!   bit: channel-level checks refuse it, server-level checks ignore overrides;
//! - `admin` has an ADMINISTRATOR role and a user override denying every bit on both
//!   channels: it passes every bit check, never an owner-only one.
//!
//! Every case prepares fresh objects (a message to pin, a member to kick…) so each
//! actor's answer depends on its permissions alone. All mismatches are collected and
//! reported together.

use concord_testkit::{Response, TestServer, TestUser, str_of};
use serde_json::{Value, json};

const VIEW: i64 = 1;
const SEND: i64 = 2;
const MANAGE_MESSAGES: i64 = 4;
const ADD_REACTIONS: i64 = 16;
const CONNECT_VOICE: i64 = 32;
const MUTE_MEMBERS: i64 = 128;
const KICK_MEMBERS: i64 = 256;
const BAN_MEMBERS: i64 = 512;
const MANAGE_CHANNELS: i64 = 1024;
const MANAGE_ROLES: i64 = 2048;
const ADMINISTRATOR: i64 = 8192;
const CREATE_INVITES: i64 = 16384;
/// Every bit but ADMINISTRATOR.
const ALL_BUT_ADMIN: i64 = 32767 & !ADMINISTRATOR;
/// The implicit member defaults of channel-level checks.
const DEFAULTS: i64 = 123;

/// What an endpoint requires.
#[derive(Clone, Copy, Debug)]
enum Gate {
    /// Membership only.
    Member,
    /// A server-level bit: roles only; overrides play no part.
    Server(i64),
    /// A channel-level bit: roles, the implicit defaults, then overrides.
    Channel(i64),
    /// The owner alone; ADMINISTRATOR does not pass.
    Owner,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Actor {
    Owner,
    Outsider,
    Plain,
    Holder,
    Blocked,
    Admin,
}

const ACTORS: [Actor; 6] = [
    Actor::Owner,
    Actor::Outsider,
    Actor::Plain,
    Actor::Holder,
    Actor::Blocked,
    Actor::Admin,
];

#[derive(Clone, Copy, Debug)]
enum Endpoint {
    ServerGet,
    MembersList,
    ChannelsList,
    RolesList,
    ServerEventsList,
    MessagesList,
    MessageGet,
    ThreadList,
    ReactionsList,
    PinnedList,
    PollGet,
    PollVote,
    OverridesList,
    VoiceList,
    GoLiveGet,
    MessageCreate,
    ThreadReply,
    PollCreate,
    EventCreate,
    ReactionAdd,
    VoiceJoin,
    OverridePut,
    OverrideDelete,
    Pin,
    Unpin,
    Kick,
    Ban,
    BansList,
    Unban,
    Timeout,
    TimeoutRemove,
    RoleCreate,
    RolePatch,
    RoleDelete,
    MemberRoleAdd,
    MemberRoleRemove,
    InvitesList,
    InviteCreate,
    InviteDelete,
    ServerPatch,
    ServerDelete,
    ChannelCreate,
    ChannelPatch,
    ChannelDelete,
    MessageDeleteOthers,
    EmojisList,
    EmojiUpload,
    EmojiDelete,
}

impl Endpoint {
    const ALL: [Self; 48] = [
        Self::ServerGet,
        Self::MembersList,
        Self::ChannelsList,
        Self::RolesList,
        Self::ServerEventsList,
        Self::MessagesList,
        Self::MessageGet,
        Self::ThreadList,
        Self::ReactionsList,
        Self::PinnedList,
        Self::PollGet,
        Self::PollVote,
        Self::OverridesList,
        Self::VoiceList,
        Self::GoLiveGet,
        Self::MessageCreate,
        Self::ThreadReply,
        Self::PollCreate,
        Self::EventCreate,
        Self::ReactionAdd,
        Self::VoiceJoin,
        Self::OverridePut,
        Self::OverrideDelete,
        Self::Pin,
        Self::Unpin,
        Self::Kick,
        Self::Ban,
        Self::BansList,
        Self::Unban,
        Self::Timeout,
        Self::TimeoutRemove,
        Self::RoleCreate,
        Self::RolePatch,
        Self::RoleDelete,
        Self::MemberRoleAdd,
        Self::MemberRoleRemove,
        Self::InvitesList,
        Self::InviteCreate,
        Self::InviteDelete,
        Self::ServerPatch,
        Self::ServerDelete,
        Self::ChannelCreate,
        Self::ChannelPatch,
        Self::ChannelDelete,
        Self::MessageDeleteOthers,
        Self::EmojisList,
        Self::EmojiUpload,
        Self::EmojiDelete,
    ];

    fn gate(self) -> Gate {
        use Endpoint::*;
        match self {
            ServerGet | MembersList | ChannelsList | RolesList | ServerEventsList | EmojisList => {
                Gate::Member
            }
            // R2: every read of channel content needs VIEW_CHANNEL.
            MessagesList | MessageGet | ThreadList | ReactionsList | PinnedList | PollGet
            | PollVote | OverridesList | VoiceList | GoLiveGet => Gate::Channel(VIEW),
            // R3: thread replies, polls and events pass the message-create gate.
            MessageCreate | ThreadReply | PollCreate | EventCreate => Gate::Channel(SEND),
            ReactionAdd => Gate::Channel(ADD_REACTIONS),
            VoiceJoin => Gate::Channel(CONNECT_VOICE),
            OverridePut | OverrideDelete => Gate::Channel(MANAGE_CHANNELS),
            Pin | Unpin => Gate::Server(MANAGE_MESSAGES),
            Kick => Gate::Server(KICK_MEMBERS),
            Ban | BansList | Unban => Gate::Server(BAN_MEMBERS),
            Timeout | TimeoutRemove => Gate::Server(MUTE_MEMBERS),
            RoleCreate | RolePatch | RoleDelete | MemberRoleAdd | MemberRoleRemove => {
                Gate::Server(MANAGE_ROLES)
            }
            InvitesList | InviteCreate | InviteDelete => Gate::Server(CREATE_INVITES),
            // Owner or ADMINISTRATOR (§7.16): a server-level check of that bit.
            EmojiUpload | EmojiDelete => Gate::Server(ADMINISTRATOR),
            ServerPatch | ServerDelete | ChannelCreate | ChannelPatch | ChannelDelete
            | MessageDeleteOthers => Gate::Owner,
        }
    }

    /// The refusal a non-member gets.
    fn outsider_status(self) -> u16 {
        match self {
            // Bans have no separate membership check (§7.15); owner-only server and
            // channel routes check ownership alone, so non-members get 403 too
            // (§7.3, §7.4).
            Self::BansList
            | Self::Unban
            | Self::ServerPatch
            | Self::ServerDelete
            | Self::ChannelCreate
            | Self::ChannelPatch
            | Self::ChannelDelete => 403,
            _ => 404,
        }
    }
}

/// `None`: a 2xx answer is expected; `Some(s)`: exactly `s`, with a JSON error body.
fn expected(endpoint: Endpoint, actor: Actor) -> Option<u16> {
    let gate = endpoint.gate();
    match (actor, gate) {
        (Actor::Owner, _) => None,
        (Actor::Outsider, _) => Some(endpoint.outsider_status()),
        (_, Gate::Owner) => Some(403),
        (_, Gate::Member) => None,
        (Actor::Plain, Gate::Channel(bit)) if bit & DEFAULTS != 0 => None,
        (Actor::Plain, _) => Some(403),
        (Actor::Blocked, Gate::Channel(_)) => Some(403),
        (Actor::Holder | Actor::Blocked | Actor::Admin, _) => None,
    }
}

/// alice's server and everyone the matrix needs.
struct World {
    server: TestServer,
    owner: TestUser,
    outsider: TestUser,
    plain: TestUser,
    holder: TestUser,
    blocked: TestUser,
    admin: TestUser,
    /// A member whose messages are "someone else's".
    writer: TestUser,
    /// A member timeouts are applied to.
    victim: TestUser,
    sid: String,
    text: String,
    voice: String,
    /// A channel for PATCH.
    spare: String,
    /// The role `holder` and `blocked` carry; its bits change per endpoint.
    role: String,
    /// A role below everyone's, for role management.
    low: String,
    /// `writer`'s message: reads, threads and reactions hang off it.
    message: String,
    poll: String,
    option: String,
    fresh: std::sync::atomic::AtomicUsize,
}

fn path_of(server: &str, channel: &str) -> String {
    format!("/servers/{server}/channels/{channel}")
}

impl World {
    async fn new() -> Self {
        let server = TestServer::start().await;
        let owner = server.user("owner").await;
        let outsider = server.user("outsider").await;
        let plain = server.user("plain").await;
        let holder = server.user("holder").await;
        let blocked = server.user("blocked").await;
        let admin = server.user("admin").await;
        let writer = server.user("writer").await;
        let victim = server.user("victim").await;
        let sid = owner.create_server("Audit").await;
        for member in [&plain, &holder, &blocked, &admin, &writer, &victim] {
            member.join(&sid).await;
        }
        let text = owner.create_channel(&sid, "text", "text").await;
        let voice = owner.create_channel(&sid, "voice", "voice").await;
        let spare = owner.create_channel(&sid, "spare", "text").await;
        let mut world = Self {
            server,
            owner,
            outsider,
            plain,
            holder,
            blocked,
            admin,
            writer,
            victim,
            sid,
            text,
            voice,
            spare,
            role: String::new(),
            low: String::new(),
            message: String::new(),
            poll: String::new(),
            option: String::new(),
            fresh: std::sync::atomic::AtomicUsize::new(0),
        };
        world.low = world.create_role("low", 0, 1).await;
        world.role = world.create_role("gate", 0, 5).await;
        let admin_role = world.create_role("admins", ADMINISTRATOR, 6).await;
        for (user, role) in [
            (&world.holder, &world.role),
            (&world.blocked, &world.role),
            (&world.admin, &admin_role),
        ] {
            let res = world
                .owner
                .api
                .put(&format!(
                    "/servers/{}/members/{}/roles/{role}",
                    world.sid, user.id
                ))
                .await;
            assert_eq!(res.status, 204, "{}", res.text);
        }
        for channel in [world.text.clone(), world.voice.clone()] {
            world
                .put_override(&channel, json!({"user_id": world.admin.id}), 0, 32767)
                .await;
        }
        world.message = str_of(&world.writer.post(&world.text, "root").await["id"]);
        let poll = world
            .owner
            .api
            .post(
                &format!("/channels/{}/polls", world.text),
                &json!({"question": "which?", "options": ["a", "b"]}),
            )
            .await;
        assert_eq!(poll.status, 201, "{}", poll.text);
        world.poll = str_of(&poll.body["poll"]["id"]);
        world.option = str_of(&poll.body["poll"]["options"][0]["id"]);
        // Someone is live in the voice channel, so GET go-live has an answer.
        world.owner.join_voice(&world.voice).await;
        let live = world
            .owner
            .api
            .post(&format!("/channels/{}/go-live", world.voice), &json!({}))
            .await;
        assert_eq!(live.status, 201, "{}", live.text);
        world
    }

    fn user(&self, actor: Actor) -> &TestUser {
        match actor {
            Actor::Owner => &self.owner,
            Actor::Outsider => &self.outsider,
            Actor::Plain => &self.plain,
            Actor::Holder => &self.holder,
            Actor::Blocked => &self.blocked,
            Actor::Admin => &self.admin,
        }
    }

    fn next(&self) -> usize {
        self.fresh
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    async fn create_role(&self, name: &str, bits: i64, position: i64) -> String {
        let res = self
            .owner
            .api
            .post(
                &format!("/servers/{}/roles", self.sid),
                &json!({"name": name, "permissions": bits, "position": position}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        str_of(&res.body["id"])
    }

    async fn put_override(&self, channel: &str, target: Value, allow: i64, deny: i64) -> String {
        let mut body = target;
        body["allow"] = json!(allow);
        body["deny"] = json!(deny);
        let res = self.put_json(&self.owner, channel, &body).await;
        assert_eq!(res.status, 200, "{}", res.text);
        str_of(&res.body["id"])
    }

    async fn put_json(&self, actor: &TestUser, channel: &str, body: &Value) -> Response {
        actor
            .api
            .raw(
                "PUT",
                &format!("/channels/{channel}/overrides"),
                Some("application/json"),
                &body.to_string(),
            )
            .await
    }

    /// Gives the gate role exactly the endpoint's bit and denies that bit to
    /// `blocked` on both channels.
    async fn arrange(&self, gate: Gate) {
        let (bits, deny) = match gate {
            Gate::Member => (0, 0),
            Gate::Server(bit) | Gate::Channel(bit) => (bit, bit),
            Gate::Owner => (ALL_BUT_ADMIN, 0),
        };
        let res = self
            .owner
            .api
            .patch(
                &format!("/servers/{}/roles/{}", self.sid, self.role),
                &json!({"permissions": bits}),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        for channel in [&self.text, &self.voice] {
            self.put_override(channel, json!({"user_id": self.blocked.id}), 0, deny)
                .await;
        }
    }

    /// A new registered user (optionally a member).
    async fn newcomer(&self, member: bool) -> TestUser {
        let user = self.server.user(&format!("new{}", self.next())).await;
        if member {
            user.join(&self.sid).await;
        }
        user
    }

    /// Uploads a (GIF) emoji under a fresh name.
    async fn upload_emoji(&self, api: &concord_testkit::Api) -> Response {
        const BOUNDARY: &str = "matrix-boundary";
        let name = format!("e{}", self.next());
        let body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n\
             --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"e.gif\"\r\n\
             Content-Type: image/gif\r\n\r\nGIF89a-pixels\r\n--{BOUNDARY}--\r\n"
        );
        api.raw(
            "POST",
            &format!("/servers/{}/emojis", self.sid),
            Some(&format!("multipart/form-data; boundary={BOUNDARY}")),
            &body,
        )
        .await
    }

    async fn owner_message(&self) -> String {
        str_of(&self.owner.post(&self.text, "to pin").await["id"])
    }

    /// Prepares fresh objects, then sends the endpoint's request as `actor`.
    async fn call(&self, endpoint: Endpoint, actor: Actor) -> Response {
        use Endpoint::*;
        let api = &self.user(actor).api;
        let (sid, text, voice) = (&self.sid, &self.text, &self.voice);
        let message = &self.message;
        match endpoint {
            ServerGet => api.get(&format!("/servers/{sid}")).await,
            MembersList => api.get(&format!("/servers/{sid}/members")).await,
            ChannelsList => api.get(&format!("/servers/{sid}/channels")).await,
            RolesList => api.get(&format!("/servers/{sid}/roles")).await,
            ServerEventsList => api.get(&format!("/servers/{sid}/events")).await,
            MessagesList => api.get(&format!("/channels/{text}/messages")).await,
            MessageGet => {
                api.get(&format!("/channels/{text}/messages/{message}"))
                    .await
            }
            ThreadList => {
                api.get(&format!("/channels/{text}/messages/{message}/thread"))
                    .await
            }
            ReactionsList => {
                api.get(&format!("/channels/{text}/messages/{message}/reactions"))
                    .await
            }
            PinnedList => api.get(&format!("/channels/{text}/pinned-messages")).await,
            PollGet => api.get(&format!("/polls/{}", self.poll)).await,
            PollVote => {
                api.post(
                    &format!("/polls/{}/vote", self.poll),
                    &json!({"option_id": self.option}),
                )
                .await
            }
            OverridesList => api.get(&format!("/channels/{text}/overrides")).await,
            VoiceList => api.get(&format!("/channels/{voice}/voice")).await,
            GoLiveGet => api.get(&format!("/channels/{voice}/go-live")).await,
            MessageCreate => {
                api.post(
                    &format!("/channels/{text}/messages"),
                    &json!({"content": "hello"}),
                )
                .await
            }
            ThreadReply => {
                api.post(
                    &format!("/channels/{text}/messages/{message}/thread"),
                    &json!({"content": "reply"}),
                )
                .await
            }
            PollCreate => {
                api.post(
                    &format!("/channels/{text}/polls"),
                    &json!({"question": "q", "options": ["x", "y"]}),
                )
                .await
            }
            EventCreate => {
                api.post(
                    &format!("/channels/{text}/events"),
                    &json!({"name": "meetup", "starts_at": "2099-01-01T00:00:00Z"}),
                )
                .await
            }
            ReactionAdd => {
                api.put(&format!("/channels/{text}/messages/{message}/reactions/ok"))
                    .await
            }
            VoiceJoin => api.post_empty(&format!("/channels/{voice}/voice")).await,
            OverridePut => {
                self.put_json(
                    self.user(actor),
                    text,
                    &json!({"role_id": self.low, "allow": 0, "deny": ADD_REACTIONS}),
                )
                .await
            }
            OverrideDelete => {
                let id = self
                    .put_override(text, json!({"role_id": self.low}), 0, 8)
                    .await;
                api.delete(&format!("/channels/{text}/overrides/{id}"))
                    .await
            }
            Pin => {
                let m = self.owner_message().await;
                api.post_empty(&format!("/channels/{text}/messages/{m}/pin"))
                    .await
            }
            Unpin => {
                let m = self.owner_message().await;
                let pin = format!("/channels/{text}/messages/{m}/pin");
                assert_eq!(self.owner.api.post_empty(&pin).await.status, 204);
                api.delete(&pin).await
            }
            Kick => {
                let target = self.newcomer(true).await;
                api.post_empty(&format!("/servers/{sid}/members/{}/kick", target.id))
                    .await
            }
            Ban => {
                let target = self.newcomer(true).await;
                api.post_empty(&format!("/servers/{sid}/members/{}/ban", target.id))
                    .await
            }
            BansList => api.get(&format!("/servers/{sid}/bans")).await,
            Unban => {
                api.delete(&format!("/servers/{sid}/bans/{}", self.outsider.id))
                    .await
            }
            Timeout => {
                api.post(
                    &format!("/servers/{sid}/members/{}/timeout", self.victim.id),
                    &json!({"duration_minutes": 5}),
                )
                .await
            }
            TimeoutRemove => {
                api.delete(&format!(
                    "/servers/{sid}/members/{}/timeout",
                    self.victim.id
                ))
                .await
            }
            RoleCreate => {
                api.post(
                    &format!("/servers/{sid}/roles"),
                    &json!({"name": "made", "permissions": 0, "position": 1}),
                )
                .await
            }
            RolePatch => {
                api.patch(
                    &format!("/servers/{sid}/roles/{}", self.low),
                    &json!({"name": format!("low{}", self.next())}),
                )
                .await
            }
            RoleDelete => {
                let role = self.create_role("doomed", 0, 1).await;
                api.delete(&format!("/servers/{sid}/roles/{role}")).await
            }
            MemberRoleAdd => {
                api.put(&format!(
                    "/servers/{sid}/members/{}/roles/{}",
                    self.writer.id, self.low
                ))
                .await
            }
            MemberRoleRemove => {
                api.delete(&format!(
                    "/servers/{sid}/members/{}/roles/{}",
                    self.writer.id, self.low
                ))
                .await
            }
            InvitesList => api.get(&format!("/servers/{sid}/invites")).await,
            InviteCreate => {
                api.post(&format!("/servers/{sid}/invites"), &json!({}))
                    .await
            }
            InviteDelete => {
                let invite = self
                    .owner
                    .api
                    .post(&format!("/servers/{sid}/invites"), &json!({}))
                    .await;
                assert_eq!(invite.status, 201, "{}", invite.text);
                let id = str_of(&invite.body["id"]);
                api.delete(&format!("/servers/{sid}/invites/{id}")).await
            }
            ServerPatch => {
                api.patch(&format!("/servers/{sid}"), &json!({"name": "Audit"}))
                    .await
            }
            ServerDelete => api.delete(&format!("/servers/{sid}")).await,
            ChannelCreate => {
                api.post(
                    &format!("/servers/{sid}/channels"),
                    &json!({"name": "made", "type": "text"}),
                )
                .await
            }
            ChannelPatch => {
                api.patch(&path_of(sid, &self.spare), &json!({"topic": "t"}))
                    .await
            }
            ChannelDelete => {
                let doomed = self.owner.create_channel(sid, "doomed", "text").await;
                api.delete(&path_of(sid, &doomed)).await
            }
            MessageDeleteOthers => {
                let m = str_of(&self.writer.post(text, "not yours").await["id"]);
                api.delete(&format!("/messages/{m}")).await
            }
            EmojisList => api.get(&format!("/servers/{sid}/emojis")).await,
            EmojiUpload => self.upload_emoji(api).await,
            EmojiDelete => {
                let emoji = self.upload_emoji(&self.owner.api).await;
                assert_eq!(emoji.status, 201, "{}", emoji.text);
                let id = str_of(&emoji.body["id"]);
                api.delete(&format!("/servers/{sid}/emojis/{id}")).await
            }
        }
    }
}

#[tokio::test]
async fn every_gated_endpoint_answers_each_actor_by_its_permissions() {
    let world = World::new().await;
    let mut wrong = Vec::new();
    let mut checked = 0;
    for endpoint in Endpoint::ALL {
        world.arrange(endpoint.gate()).await;
        for actor in ACTORS {
            // The owner deleting the server would end the audit; its refusals are
            // what this endpoint's row is for.
            if matches!(endpoint, Endpoint::ServerDelete) && actor == Actor::Owner {
                continue;
            }
            let res = world.call(endpoint, actor).await;
            checked += 1;
            let ok = match expected(endpoint, actor) {
                None => (200..300).contains(&res.status),
                Some(status) => res.status == status && res.body["error"].is_string(),
            };
            if !ok {
                wrong.push(format!(
                    "{endpoint:?} as {actor:?}: expected {:?}, got {} {}",
                    expected(endpoint, actor).map_or("2xx".into(), |s| s.to_string()),
                    res.status,
                    res.text
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} answers wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // The owner's server is intact after every refused delete.
    let res = world
        .owner
        .api
        .get(&format!("/servers/{}", world.sid))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
}

/// A timed-out member passes none of the message-create gates (§7.15, R3); the same
/// calls succeed once the timeout is removed (positive control).
#[tokio::test]
async fn a_timeout_closes_every_way_to_post() {
    let world = World::new().await;
    let victim = Actor::Plain;
    let target = world.user(victim).id.clone();
    let timeout = format!("/servers/{}/members/{target}/timeout", world.sid);
    let res = world
        .owner
        .api
        .post(&timeout, &json!({"duration_minutes": 60}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let gated = [
        Endpoint::MessageCreate,
        Endpoint::ThreadReply,
        Endpoint::PollCreate,
        Endpoint::EventCreate,
        Endpoint::ReactionAdd,
    ];
    for endpoint in gated {
        let res = world.call(endpoint, victim).await;
        assert_eq!(
            res.status, 403,
            "{endpoint:?} while timed out: {}",
            res.text
        );
        assert!(res.body["error"].is_string(), "{}", res.text);
    }
    // Reading is not posting.
    assert_eq!(world.call(Endpoint::MessagesList, victim).await.status, 200);
    assert_eq!(world.owner.api.delete(&timeout).await.status, 204);
    for endpoint in gated {
        let res = world.call(endpoint, victim).await;
        assert!(
            (200..300).contains(&res.status),
            "{endpoint:?} after the timeout: {} {}",
            res.status,
            res.text
        );
    }
}
