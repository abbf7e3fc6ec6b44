//! Permissions change under live sessions (`gateway.md` §7: audiences are evaluated at
//! delivery). A member who loses VIEW_CHANNEL on a channel mid-session, by an override,
//! by a role's bits, by a role given, taken or deleted, stops receiving its
//! MESSAGE_CREATE from the next event on; regaining it resumes delivery. v2 sessions are
//! also told with CHANNEL_DELETE / CHANNEL_CREATE. Every "no longer receives" is checked
//! with a positive control: a message in a channel the member still sees, posted after
//! the hidden one, is the next frame.

use std::collections::BTreeMap;

use concord_testkit::{Gateway, TestServer, TestUser, str_of};
use serde_json::{Value, json};

const VIEW_CHANNEL: i64 = 1;
const ADMINISTRATOR: i64 = 1 << 13;

/// alice's server with bob and carol, a `secret` and a `general` channel.
struct World {
    server: TestServer,
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    sid: String,
    secret: String,
    general: String,
}

async fn world() -> World {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let carol = server.user("carol").await;
    let sid = alice.create_server("Guild").await;
    bob.join(&sid).await;
    carol.join(&sid).await;
    let secret = alice.create_channel(&sid, "secret", "text").await;
    let general = alice.create_channel(&sid, "general", "text").await;
    World {
        server,
        alice,
        bob,
        carol,
        sid,
        secret,
        general,
    }
}

impl World {
    async fn role(&self, name: &str, bits: i64) -> String {
        let res = self
            .alice
            .api
            .post(
                &format!("/servers/{}/roles", self.sid),
                &json!({"name": name, "permissions": bits}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.text);
        str_of(&res.body["id"])
    }

    fn member_role(&self, user: &TestUser, role: &str) -> String {
        format!("/servers/{}/members/{}/roles/{role}", self.sid, user.id)
    }

    async fn give(&self, user: &TestUser, role: &str) {
        let res = self.alice.api.put(&self.member_role(user, role)).await;
        assert_eq!(res.status, 204, "{}", res.text);
    }

    async fn take(&self, user: &TestUser, role: &str) {
        let res = self.alice.api.delete(&self.member_role(user, role)).await;
        assert_eq!(res.status, 204, "{}", res.text);
    }

    async fn put_override(&self, target: Value, allow: i64, deny: i64) -> Value {
        let mut body = target;
        body["allow"] = json!(allow);
        body["deny"] = json!(deny);
        let res = self
            .alice
            .api
            .raw(
                "PUT",
                &format!("/channels/{}/overrides", self.secret),
                Some("application/json"),
                &body.to_string(),
            )
            .await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.body
    }

    /// The v1 sessions of bob and carol, and a v2 session of bob.
    async fn sessions(&self) -> (Gateway, Gateway, Gateway) {
        let (bob_v1, _) = self.server.connect(&self.bob.ws_query()).await;
        let (carol_v1, _) = self.server.connect(&self.carol.ws_query()).await;
        let (bob_v2, _, _) = self.server.identify_v2(&self.bob, "", None).await;
        (bob_v1, carol_v1, bob_v2)
    }

    /// alice posts in `secret`; everyone in `viewers` gets it as the next frame.
    async fn secret_reaches(&self, viewers: &mut [&mut Gateway], text: &str) {
        self.alice.post(&self.secret, text).await;
        for gw in viewers.iter_mut() {
            expect_message(gw, &self.secret, text).await;
        }
    }

    /// alice posts in `secret`, then in `general`: the sessions in `blind` get the
    /// `general` one as their next frame (they never got the first), those in `seeing`
    /// both, in order.
    async fn secret_skips(
        &self,
        blind: &mut [&mut Gateway],
        seeing: &mut [&mut Gateway],
        text: &str,
    ) {
        let control = format!("{text} (control)");
        self.alice.post(&self.secret, text).await;
        self.alice.post(&self.general, &control).await;
        for gw in blind.iter_mut() {
            expect_message(gw, &self.general, &control).await;
        }
        for gw in seeing.iter_mut() {
            expect_message(gw, &self.secret, text).await;
            expect_message(gw, &self.general, &control).await;
        }
    }
}

async fn expect_message(gw: &mut Gateway, channel: &str, text: &str) {
    let frame = gw.next_non_presence().await;
    assert_eq!(frame["t"], "MESSAGE_CREATE", "{frame}");
    assert_eq!(frame["d"]["channel_id"], channel, "{frame}");
    assert_eq!(frame["d"]["content"], text, "{frame}");
}

/// The next `n` non-presence frames, by event name (each name once).
async fn next_events(gw: &mut Gateway, n: usize) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for _ in 0..n {
        let frame = gw.next_non_presence().await;
        let t = str_of(&frame["t"]);
        assert!(out.insert(t, frame["d"].clone()).is_none(), "{frame}");
    }
    out
}

/// Asserts the next frame is the v1 event `t` and returns its `d`.
async fn expect_event(gw: &mut Gateway, t: &str) -> Value {
    let frame = gw.next_non_presence().await;
    assert_eq!(frame["t"], t, "{frame}");
    frame["d"].clone()
}

/// The v2 session gets the v1 event `t` and, with it, `CHANNEL_DELETE` (lost) or
/// `CHANNEL_CREATE` (gained) for `secret`.
async fn expect_v2(w: &World, gw: &mut Gateway, t: &str, lost: bool) {
    let events = next_events(gw, 2).await;
    assert!(events.contains_key(t), "{events:?}");
    if lost {
        assert_eq!(
            events["CHANNEL_DELETE"],
            json!({"id": w.secret, "server_id": w.sid}),
            "{events:?}"
        );
    } else {
        let channel = &events["CHANNEL_CREATE"];
        assert_eq!(channel["id"], w.secret.as_str(), "{events:?}");
        assert_eq!(channel["name"], "secret");
        assert_eq!(channel["server_id"], w.sid.as_str());
    }
}

#[tokio::test]
async fn an_override_revokes_and_restores_delivery() {
    let w = world().await;
    let (mut bob, mut carol, mut bob_v2) = w.sessions().await;
    w.secret_reaches(&mut [&mut bob, &mut carol, &mut bob_v2], "before")
        .await;

    // A user override denying VIEW.
    let denied = w
        .put_override(json!({"user_id": w.bob.id}), 0, VIEW_CHANNEL)
        .await;
    assert_eq!(
        expect_event(&mut bob, "CHANNEL_OVERRIDE_UPDATE").await,
        denied
    );
    assert_eq!(
        expect_event(&mut carol, "CHANNEL_OVERRIDE_UPDATE").await,
        denied
    );
    expect_v2(&w, &mut bob_v2, "CHANNEL_OVERRIDE_UPDATE", true).await;
    w.secret_skips(
        &mut [&mut bob, &mut bob_v2],
        &mut [&mut carol],
        "hidden by a user override",
    )
    .await;

    // Deleting it restores delivery.
    let id = str_of(&denied["id"]);
    let res = w
        .alice
        .api
        .delete(&format!("/channels/{}/overrides/{id}", w.secret))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "CHANNEL_OVERRIDE_DELETE").await;
    }
    expect_v2(&w, &mut bob_v2, "CHANNEL_OVERRIDE_DELETE", false).await;
    w.secret_reaches(&mut [&mut bob, &mut carol, &mut bob_v2], "seen again")
        .await;

    // A role override does the same; changing its bits back restores.
    let role = w.role("muted", 0).await;
    w.give(&w.bob, &role).await;
    for gw in [&mut bob, &mut carol, &mut bob_v2] {
        expect_event(gw, "ROLE_CREATE").await;
        expect_event(gw, "MEMBER_ROLE_ADD").await;
    }
    w.put_override(json!({"role_id": role}), 0, VIEW_CHANNEL)
        .await;
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "CHANNEL_OVERRIDE_UPDATE").await;
    }
    expect_v2(&w, &mut bob_v2, "CHANNEL_OVERRIDE_UPDATE", true).await;
    w.secret_skips(
        &mut [&mut bob, &mut bob_v2],
        &mut [&mut carol],
        "hidden by a role override",
    )
    .await;
    w.put_override(json!({"role_id": role}), VIEW_CHANNEL, 0)
        .await;
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "CHANNEL_OVERRIDE_UPDATE").await;
    }
    expect_v2(&w, &mut bob_v2, "CHANNEL_OVERRIDE_UPDATE", false).await;
    w.secret_reaches(
        &mut [&mut bob, &mut carol, &mut bob_v2],
        "allowed by the role",
    )
    .await;
    w.server.shutdown().await;
}

#[tokio::test]
async fn roles_given_taken_and_deleted_revoke_and_restore_delivery() {
    let w = world().await;
    // Seer's override allows VIEW, Muted's denies it; a role allow beats a role deny.
    let seer = w.role("seer", 0).await;
    let muted = w.role("muted", 0).await;
    w.put_override(json!({"role_id": seer}), VIEW_CHANNEL, 0)
        .await;
    w.put_override(json!({"role_id": muted}), 0, VIEW_CHANNEL)
        .await;
    w.give(&w.bob, &seer).await;
    let (mut bob, mut carol, mut bob_v2) = w.sessions().await;

    // Muted given: Seer still wins, nothing changes for bob's view.
    w.give(&w.bob, &muted).await;
    for gw in [&mut bob, &mut carol, &mut bob_v2] {
        expect_event(gw, "MEMBER_ROLE_ADD").await;
    }
    w.secret_reaches(&mut [&mut bob, &mut carol, &mut bob_v2], "allow beats deny")
        .await;

    // Seer taken: Muted's deny applies.
    w.take(&w.bob, &seer).await;
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "MEMBER_ROLE_REMOVE").await;
    }
    expect_v2(&w, &mut bob_v2, "MEMBER_ROLE_REMOVE", true).await;
    w.secret_skips(
        &mut [&mut bob, &mut bob_v2],
        &mut [&mut carol],
        "hidden by taking seer",
    )
    .await;

    // Seer given back: seen again.
    w.give(&w.bob, &seer).await;
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "MEMBER_ROLE_ADD").await;
    }
    expect_v2(&w, &mut bob_v2, "MEMBER_ROLE_ADD", false).await;
    w.secret_reaches(&mut [&mut bob, &mut carol, &mut bob_v2], "seer is back")
        .await;

    // Seer deleted: its allow goes with it, so Muted's deny applies.
    let res = w
        .alice
        .api
        .delete(&format!("/servers/{}/roles/{seer}", w.sid))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "ROLE_DELETE").await;
    }
    expect_v2(&w, &mut bob_v2, "ROLE_DELETE", true).await;
    w.secret_skips(
        &mut [&mut bob, &mut bob_v2],
        &mut [&mut carol],
        "hidden by deleting seer",
    )
    .await;

    // Muted deleted: its deny goes too, and the defaults show the channel again.
    let res = w
        .alice
        .api
        .delete(&format!("/servers/{}/roles/{muted}", w.sid))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "ROLE_DELETE").await;
    }
    expect_v2(&w, &mut bob_v2, "ROLE_DELETE", false).await;
    w.secret_reaches(&mut [&mut bob, &mut carol, &mut bob_v2], "no roles left")
        .await;
    w.server.shutdown().await;
}

#[tokio::test]
async fn a_role_losing_administrator_revokes_and_restores_delivery() {
    let w = world().await;
    // bob is denied VIEW on secret by a user override, which ADMINISTRATOR ignores.
    let admin = w.role("admin", ADMINISTRATOR).await;
    w.give(&w.bob, &admin).await;
    w.put_override(json!({"user_id": w.bob.id}), 0, VIEW_CHANNEL)
        .await;
    let (mut bob, mut carol, mut bob_v2) = w.sessions().await;
    w.secret_reaches(&mut [&mut bob, &mut carol, &mut bob_v2], "as an admin")
        .await;

    let path = format!("/servers/{}/roles/{admin}", w.sid);
    let res = w.alice.api.patch(&path, &json!({"permissions": 0})).await;
    assert_eq!(res.status, 200, "{}", res.text);
    for gw in [&mut bob, &mut carol] {
        assert_eq!(expect_event(gw, "ROLE_UPDATE").await, res.body);
    }
    expect_v2(&w, &mut bob_v2, "ROLE_UPDATE", true).await;
    w.secret_skips(
        &mut [&mut bob, &mut bob_v2],
        &mut [&mut carol],
        "no longer an admin",
    )
    .await;

    // A change of name only keeps the view as it is (and bob still sees general).
    let res = w
        .alice
        .api
        .patch(&path, &json!({"name": "former admin"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for gw in [&mut bob, &mut carol, &mut bob_v2] {
        expect_event(gw, "ROLE_UPDATE").await;
    }
    w.secret_skips(
        &mut [&mut bob, &mut bob_v2],
        &mut [&mut carol],
        "still hidden",
    )
    .await;

    let res = w
        .alice
        .api
        .patch(&path, &json!({"permissions": ADMINISTRATOR}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for gw in [&mut bob, &mut carol] {
        expect_event(gw, "ROLE_UPDATE").await;
    }
    expect_v2(&w, &mut bob_v2, "ROLE_UPDATE", false).await;
    w.secret_reaches(&mut [&mut bob, &mut carol, &mut bob_v2], "an admin again")
        .await;
    w.server.shutdown().await;
}
