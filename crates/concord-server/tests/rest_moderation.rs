//! Kick, ban, bans and timeouts over real HTTP and WebSocket (`rest.md` §7.15): the
//! moderation check's order (§5.2), commit-then-publish with the target told exactly
//! once (`gateway.md` D17), voice cleanup scoped to the moderating server, the
//! target cut off from the server's events at once, bans blocking join and invite
//! accept, and timeouts blocking posting and typing until they end or are lifted.

mod moderation_support;

use concord_protocol::{ServerId, Timeout, Timestamp};
use concord_server::{directory::DirectoryChange, perms::Permissions};
use concord_testkit::{Hall, TestUser, assert_error, assert_exact_error, assert_keys};
use moderation_support::{expect_message, grant, next, sync};
use serde_json::{Value, json};

fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn ts(value: &Value) -> Timestamp {
    serde_json::from_value(value.clone()).expect("timestamp")
}

/// alice owns "hall" (public, with the text channel "general"); bob and carol are
/// members.
async fn hall() -> Hall {
    Hall::start().await
}

fn member_path(hall: &str, user: &TestUser, action: &str) -> String {
    format!("/servers/{hall}/members/{}/{action}", user.id)
}

// ---- kick ----

#[tokio::test]
async fn kick_checks_in_the_contract_order() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        ..
    } = hall().await;
    let outsider = server.user("outsider").await;
    grant(&server, &hall, &carol, Permissions::KICK_MEMBERS.0).await;
    let kick = |actor: &TestUser, path: String| {
        let api = actor.api.clone();
        async move { api.post_empty(&path).await }
    };

    let unknown_server = format!("/servers/{}/members/{}/kick", random_id(), bob.id);
    assert_exact_error(&kick(&carol, unknown_server).await, 404);
    assert_exact_error(
        &kick(&outsider, member_path(&hall, &bob, "kick")).await,
        404,
    );
    assert_exact_error(
        &kick(&carol, member_path(&hall, &outsider, "kick")).await,
        404,
    );
    assert_exact_error(&kick(&carol, member_path(&hall, &carol, "kick")).await, 400);
    assert_exact_error(&kick(&alice, member_path(&hall, &alice, "kick")).await, 400);
    assert_exact_error(&kick(&carol, member_path(&hall, &alice, "kick")).await, 403);
    assert_exact_error(&kick(&bob, member_path(&hall, &carol, "kick")).await, 403);
    // ADMINISTRATOR passes the bit check; it does not make the owner kickable.
    grant(&server, &hall, &bob, Permissions::ADMINISTRATOR.0).await;
    assert_exact_error(&kick(&bob, member_path(&hall, &alice, "kick")).await, 403);
    assert!(
        server
            .state
            .directory
            .is_member(hall.parse().unwrap(), carol.user_id())
    );
    let res = kick(&bob, member_path(&hall, &carol, "kick")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(
        !server
            .state
            .directory
            .is_member(hall.parse().unwrap(), carol.user_id())
    );
    // Gone: a second kick finds no member.
    assert_exact_error(&kick(&bob, member_path(&hall, &carol, "kick")).await, 404);
}

#[tokio::test]
async fn kick_reaches_the_members_and_the_target_once_and_cuts_the_target_off() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    let erin = server.user("erin").await;
    let elsewhere = erin.create_server("elsewhere").await;
    let lobby = erin.create_channel(&elsewhere, "lobby", "text").await;
    bob.join(&elsewhere).await;
    grant(&server, &hall, &carol, Permissions::KICK_MEMBERS.0).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut carol_gw, _) = server.connect(&carol.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut bob_tab, _) = server.connect(&bob.ws_query()).await;
    let (mut carol_v2, _, _) = server.identify_v2(&carol, "", None).await;

    let res = carol
        .api
        .post(
            &member_path(&hall, &bob, "kick"),
            &json!({"reason": "spam"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let kicked = json!({"server_id": hall, "user_id": bob.id, "reason": "spam"});
    for gw in [&mut alice_gw, &mut carol_gw, &mut bob_gw, &mut bob_tab] {
        assert_eq!(next(gw).await, ("MEMBER_KICK".to_owned(), kicked.clone()));
    }
    // v2 also gets what a leave sends.
    let (t, d) = next(&mut carol_v2).await;
    assert_eq!(t, "MEMBER_LEAVE");
    assert_eq!(d["server_id"], hall.as_str());
    assert_eq!(d["user"]["id"], bob.id.as_str());
    assert_eq!(
        next(&mut carol_v2).await,
        ("MEMBER_KICK".to_owned(), kicked)
    );

    // Bob's sessions hear nothing more from hall, and no second MEMBER_KICK: the
    // next thing both get is a message in his other server.
    alice.post(&general, "bob is gone").await;
    expect_message(&mut alice_gw, "bob is gone").await;
    erin.post(&lobby, "still here elsewhere").await;
    expect_message(&mut bob_gw, "still here elsewhere").await;
    expect_message(&mut bob_tab, "still here elsewhere").await;
    assert_exact_error(&bob.api.get(&format!("/servers/{hall}")).await, 404);
    assert_exact_error(
        &bob.api
            .post(
                &format!("/channels/{general}/messages"),
                &json!({"content": "hi"}),
            )
            .await,
        404,
    );

    // A kick is not a ban: bob may come back.
    bob.join(&hall).await;
    // A body that is missing, unparsable, or has an unknown key means no reason.
    for body in [None, Some("not json"), Some(r#"{"reason":"x","extra":1}"#)] {
        let path = member_path(&hall, &bob, "kick");
        let res = match body {
            None => carol.api.post_empty(&path).await,
            Some(text) => {
                carol
                    .api
                    .raw("POST", &path, Some("application/json"), text)
                    .await
            }
        };
        assert_eq!(res.status, 204, "{body:?}: {}", res.text);
        let (t, d) = next(&mut alice_gw).await;
        assert_eq!(t, "MEMBER_KICK");
        assert_eq!(d["reason"], Value::Null, "{body:?}");
        bob.join(&hall).await;
    }
}

#[tokio::test]
async fn kick_leaves_voice_only_in_this_server() {
    let Hall {
        server,
        alice,
        bob,
        hall,
        general,
        ..
    } = hall().await;
    let talk = alice.create_channel(&hall, "talk", "voice").await;
    let erin = server.user("erin").await;
    let elsewhere = erin.create_server("elsewhere").await;
    let lounge = erin.create_channel(&elsewhere, "lounge", "voice").await;
    let lobby = erin.create_channel(&elsewhere, "lobby", "text").await;
    bob.join(&elsewhere).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut erin_gw, _) = server.connect(&erin.ws_query()).await;

    // In this server's voice: the leave (with username) goes to the channel's viewers,
    // the target included, before MEMBER_KICK.
    bob.join_voice(&talk).await;
    assert_eq!(next(&mut alice_gw).await.0, "VOICE_STATE_UPDATE");
    assert_eq!(next(&mut bob_gw).await.0, "VOICE_STATE_UPDATE");
    let res = alice
        .api
        .post_empty(&member_path(&hall, &bob, "kick"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let leave = json!({
        "user_id": bob.id,
        "channel_id": null,
        "self_mute": false,
        "self_deaf": false,
        "self_video": false,
        "self_screen": false,
        "server_mute": false,
        "server_deaf": false,
        "joined_at": null,
        "username": "bob",
    });
    for gw in [&mut alice_gw, &mut bob_gw] {
        assert_eq!(
            next(gw).await,
            ("VOICE_STATE_UPDATE".to_owned(), leave.clone())
        );
        assert_eq!(next(gw).await.0, "MEMBER_KICK");
    }
    assert!(
        server
            .state
            .store
            .voice_state(bob.user_id())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(server.state.directory.voice_channel(bob.user_id()), None);

    // In another server's voice: left alone, and nobody is told of a leave.
    bob.join(&hall).await;
    bob.join_voice(&lounge).await;
    assert_eq!(next(&mut erin_gw).await.0, "VOICE_STATE_UPDATE");
    assert_eq!(next(&mut bob_gw).await.0, "VOICE_STATE_UPDATE");
    let res = alice
        .api
        .post_empty(&member_path(&hall, &bob, "kick"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert_eq!(next(&mut alice_gw).await.0, "MEMBER_KICK");
    assert_eq!(next(&mut bob_gw).await.0, "MEMBER_KICK");
    let state = server.state.store.voice_state(bob.user_id()).await.unwrap();
    assert_eq!(
        state.and_then(|s| s.channel_id).map(|c| c.to_string()),
        Some(lounge)
    );
    alice.post(&general, "control").await;
    expect_message(&mut alice_gw, "control").await;
    erin.post(&lobby, "control elsewhere").await;
    expect_message(&mut erin_gw, "control elsewhere").await;
    expect_message(&mut bob_gw, "control elsewhere").await;
}

// ---- ban ----

#[tokio::test]
async fn ban_checks_in_the_contract_order() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        ..
    } = hall().await;
    let outsider = server.user("outsider").await;
    grant(&server, &hall, &carol, Permissions::BAN_MEMBERS.0).await;
    let ban = |actor: &TestUser, path: String| {
        let api = actor.api.clone();
        async move { api.post_empty(&path).await }
    };
    let unknown_server = format!("/servers/{}/members/{}/ban", random_id(), bob.id);
    assert_exact_error(&ban(&carol, unknown_server).await, 404);
    assert_exact_error(&ban(&outsider, member_path(&hall, &bob, "ban")).await, 404);
    assert_exact_error(&ban(&carol, member_path(&hall, &carol, "ban")).await, 400);
    assert_exact_error(&ban(&carol, member_path(&hall, &alice, "ban")).await, 403);
    assert_exact_error(&ban(&bob, member_path(&hall, &carol, "ban")).await, 403);
    // No such user at all: 404, after the permission checks.
    let ghost = format!("/servers/{hall}/members/{}/ban", random_id());
    assert_exact_error(&ban(&bob, ghost.clone()).await, 403);
    assert_exact_error(&ban(&carol, ghost).await, 404);
    assert_eq!(
        alice.api.get(&format!("/servers/{hall}/bans")).await.body,
        json!([])
    );
}

#[tokio::test]
async fn ban_removes_announces_once_and_blocks_join_and_invites_until_lifted() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    let erin = server.user("erin").await;
    let frank = server.user("frank").await;
    let elsewhere = erin.create_server("elsewhere").await;
    let lobby = erin.create_channel(&elsewhere, "lobby", "text").await;
    bob.join(&elsewhere).await;
    frank.join(&elsewhere).await;
    grant(&server, &hall, &carol, Permissions::BAN_MEMBERS.0).await;
    let invite = alice
        .api
        .post(&format!("/servers/{hall}/invites"), &json!({}))
        .await;
    let code = invite.body["code"].as_str().unwrap().to_owned();
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut frank_gw, _) = server.connect(&frank.ws_query()).await;
    let (mut alice_v2, _, _) = server.identify_v2(&alice, "", None).await;

    let res = carol
        .api
        .post(&member_path(&hall, &bob, "ban"), &json!({"reason": "rude"}))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let banned = json!({"server_id": hall, "user_id": bob.id, "reason": "rude"});
    assert_eq!(
        next(&mut alice_gw).await,
        ("MEMBER_BAN".to_owned(), banned.clone())
    );
    assert_eq!(
        next(&mut bob_gw).await,
        ("MEMBER_BAN".to_owned(), banned.clone())
    );
    assert_eq!(next(&mut alice_v2).await.0, "MEMBER_LEAVE");
    assert_eq!(next(&mut alice_v2).await, ("MEMBER_BAN".to_owned(), banned));
    alice.post(&general, "after the ban").await;
    expect_message(&mut alice_gw, "after the ban").await;
    erin.post(&lobby, "bob still hears this").await;
    expect_message(&mut bob_gw, "bob still hears this").await;
    expect_message(&mut frank_gw, "bob still hears this").await;

    // Banned: no way back in.
    assert_exact_error(&bob.api.get(&format!("/servers/{hall}")).await, 404);
    assert_exact_error(
        &bob.api.post_empty(&format!("/servers/{hall}/join")).await,
        403,
    );
    assert_exact_error(
        &bob.api.post_empty(&format!("/invites/{code}/accept")).await,
        403,
    );

    // A non-member can be banned; the members hear of it, he does not.
    let res = carol
        .api
        .post_empty(&member_path(&hall, &frank, "ban"))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let frank_banned = json!({"server_id": hall, "user_id": frank.id, "reason": null});
    assert_eq!(
        next(&mut alice_gw).await,
        ("MEMBER_BAN".to_owned(), frank_banned)
    );
    erin.post(&lobby, "frank control").await;
    expect_message(&mut frank_gw, "frank control").await;
    expect_message(&mut bob_gw, "frank control").await;

    // Banning again replaces banner and reason, not the time.
    let before = carol.api.get(&format!("/servers/{hall}/bans")).await;
    assert_eq!(before.status, 200, "{}", before.text);
    let res = alice
        .api
        .post(
            &member_path(&hall, &bob, "ban"),
            &json!({"reason": "still rude"}),
        )
        .await;
    assert_eq!(res.status, 204);
    // Bob is no member any more: the members hear it, bob does not.
    assert_eq!(next(&mut alice_gw).await.0, "MEMBER_BAN");
    let bans = carol.api.get(&format!("/servers/{hall}/bans")).await;
    let list = bans.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for ban in list {
        assert_keys(
            ban,
            &["user_id", "server_id", "banned_by", "reason", "created_at"],
        );
        assert_eq!(ban["server_id"], hall.as_str());
    }
    assert_eq!(list[0]["user_id"], frank.id.as_str(), "newest first");
    assert_eq!(list[0]["banned_by"], carol.id.as_str());
    assert_eq!(list[0]["reason"], Value::Null);
    assert_eq!(list[1]["user_id"], bob.id.as_str());
    assert_eq!(list[1]["banned_by"], alice.id.as_str());
    assert_eq!(list[1]["reason"], "still rude");
    assert_eq!(list[1]["created_at"], before.body[1]["created_at"]);

    // The list and unban need BAN_MEMBERS; non-members get 403, unknown servers 404.
    let outsider = server.user("outsider").await;
    assert_exact_error(
        &alice
            .api
            .get(&format!("/servers/{}/bans", random_id()))
            .await,
        404,
    );
    assert_exact_error(
        &outsider.api.get(&format!("/servers/{hall}/bans")).await,
        403,
    );
    let unban_bob = format!("/servers/{hall}/bans/{}", bob.id);
    assert_exact_error(&outsider.api.delete(&unban_bob).await, 403);
    assert_exact_error(
        &carol
            .api
            .delete(&format!("/servers/{}/bans/{}", random_id(), bob.id))
            .await,
        404,
    );
    let res = carol.api.delete(&unban_bob).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let lifted = json!({"server_id": hall, "user_id": bob.id});
    assert_eq!(
        next(&mut alice_gw).await,
        ("MEMBER_UNBAN".to_owned(), lifted)
    );
    // Again: 204, and no second event.
    assert_eq!(carol.api.delete(&unban_bob).await.status, 204);
    alice.post(&general, "after the unbans").await;
    expect_message(&mut alice_gw, "after the unbans").await;
    // The unbanned user is no member: the next thing he hears is from elsewhere.
    erin.post(&lobby, "unban control").await;
    expect_message(&mut bob_gw, "unban control").await;
    let res = bob.api.post_empty(&format!("/invites/{code}/accept")).await;
    assert_eq!(res.status, 201, "{}", res.text);
}

// ---- timeouts ----

#[tokio::test]
async fn timeout_checks_in_the_contract_order() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        ..
    } = hall().await;
    let outsider = server.user("outsider").await;
    grant(&server, &hall, &carol, Permissions::MUTE_MEMBERS.0).await;
    let ten = json!({"duration_minutes": 10});
    assert_error(
        &carol
            .api
            .post(
                &member_path(&hall, &bob, "timeout"),
                &json!({"duration_minutes": 10, "x": 1}),
            )
            .await,
        422,
    );
    assert_error(
        &carol
            .api
            .post(
                &member_path(&hall, &bob, "timeout"),
                &json!({"reason": "no duration"}),
            )
            .await,
        422,
    );
    let path = format!("/servers/{}/members/{}/timeout", random_id(), bob.id);
    assert_exact_error(&carol.api.post(&path, &ten).await, 404);
    assert_exact_error(
        &outsider
            .api
            .post(&member_path(&hall, &bob, "timeout"), &ten)
            .await,
        404,
    );
    assert_exact_error(
        &carol
            .api
            .post(&member_path(&hall, &outsider, "timeout"), &ten)
            .await,
        404,
    );
    assert_exact_error(
        &carol
            .api
            .post(&member_path(&hall, &carol, "timeout"), &ten)
            .await,
        400,
    );
    assert_exact_error(
        &carol
            .api
            .post(&member_path(&hall, &alice, "timeout"), &ten)
            .await,
        403,
    );
    assert_exact_error(
        &bob.api
            .post(&member_path(&hall, &carol, "timeout"), &ten)
            .await,
        403,
    );
    for minutes in [0, -5, 40_321] {
        let body = json!({"duration_minutes": minutes});
        assert_exact_error(
            &carol
                .api
                .post(&member_path(&hall, &bob, "timeout"), &body)
                .await,
            400,
        );
    }
    // Lifting: the same checks (no body).
    assert_exact_error(
        &outsider
            .api
            .delete(&member_path(&hall, &bob, "timeout"))
            .await,
        404,
    );
    assert_exact_error(
        &carol
            .api
            .delete(&member_path(&hall, &outsider, "timeout"))
            .await,
        404,
    );
    assert_exact_error(
        &carol
            .api
            .delete(&member_path(&hall, &carol, "timeout"))
            .await,
        400,
    );
    assert_exact_error(
        &carol
            .api
            .delete(&member_path(&hall, &alice, "timeout"))
            .await,
        403,
    );
    assert_exact_error(
        &bob.api.delete(&member_path(&hall, &carol, "timeout")).await,
        403,
    );
    // None to lift: 204.
    assert_eq!(
        carol
            .api
            .delete(&member_path(&hall, &bob, "timeout"))
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn a_timeout_blocks_posting_and_typing_until_lifted_and_outlives_a_rejoin() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    grant(&server, &hall, &carol, Permissions::MUTE_MEMBERS.0).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let (mut bob_gw, _) = server.connect(&bob.ws_query()).await;
    let (mut bob_v2, _, _) = server.identify_v2(&bob, "", None).await;

    let res = carol
        .api
        .post(
            &member_path(&hall, &bob, "timeout"),
            &json!({"duration_minutes": 10, "reason": "cool off"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let timeout = res.body.clone();
    assert_keys(
        &timeout,
        &[
            "user_id",
            "server_id",
            "expires_at",
            "reason",
            "created_by",
            "created_at",
        ],
    );
    assert_eq!(timeout["user_id"], bob.id.as_str());
    assert_eq!(timeout["server_id"], hall.as_str());
    assert_eq!(timeout["reason"], "cool off");
    assert_eq!(timeout["created_by"], carol.id.as_str());
    assert_eq!(
        ts(&timeout["expires_at"]).as_micros() - ts(&timeout["created_at"]).as_micros(),
        600 * 1_000_000
    );
    let event = json!({
        "server_id": hall,
        "user_id": bob.id,
        "expires_at": timeout["expires_at"],
        "reason": "cool off",
    });
    assert_eq!(
        next(&mut alice_gw).await,
        ("MEMBER_TIMEOUT".to_owned(), event.clone())
    );
    assert_eq!(
        next(&mut bob_gw).await,
        ("MEMBER_TIMEOUT".to_owned(), event.clone())
    );
    assert_eq!(
        next(&mut bob_v2).await,
        ("MEMBER_TIMEOUT".to_owned(), event)
    );

    // No posting.
    let post = json!({"content": "let me talk"});
    let messages = format!("/channels/{general}/messages");
    assert_exact_error(&bob.api.post(&messages, &post).await, 403);
    // No typing: v1 drops the frame silently, v2 answers with ERROR.
    let typing = json!({"op": "TYPING_START", "t": null, "d": {"channel_id": general}});
    bob_gw.send(&typing).await;
    assert!(sync(&mut bob_gw).await.is_empty(), "v1 is silent");
    bob_v2.send(&typing).await;
    let error = bob_v2.next_non_presence().await;
    assert_eq!(error["op"], "ERROR", "{error}");
    assert_eq!(error["d"]["code"], "FORBIDDEN", "{error}");
    // Nobody saw bob type: the next thing alice gets is a message.
    carol.post(&general, "typing control").await;
    expect_message(&mut alice_gw, "typing control").await;
    expect_message(&mut bob_gw, "typing control").await;

    // Leaving and rejoining does not end it.
    assert_eq!(
        bob.api
            .delete(&format!("/servers/{hall}/leave"))
            .await
            .status,
        204
    );
    bob.join(&hall).await;
    assert_exact_error(&bob.api.post(&messages, &post).await, 403);

    // A new timeout replaces the old one.
    let res = carol
        .api
        .post(
            &member_path(&hall, &bob, "timeout"),
            &json!({"duration_minutes": 1}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.body["reason"], Value::Null);
    assert!(ts(&res.body["expires_at"]) < ts(&timeout["expires_at"]));
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(t, "MEMBER_TIMEOUT");
    assert_eq!(d["expires_at"], res.body["expires_at"]);
    assert_eq!(d["reason"], Value::Null);

    // Lifted: posting and typing work again.
    let res = carol.api.delete(&member_path(&hall, &bob, "timeout")).await;
    assert_eq!(res.status, 204, "{}", res.text);
    let lifted = json!({"server_id": hall, "user_id": bob.id});
    assert_eq!(
        next(&mut alice_gw).await,
        ("MEMBER_TIMEOUT_REMOVE".to_owned(), lifted)
    );
    // Lifting again changes nothing and announces nothing.
    assert_eq!(
        carol
            .api
            .delete(&member_path(&hall, &bob, "timeout"))
            .await
            .status,
        204
    );
    bob_gw.send(&typing).await;
    let (t, d) = next(&mut alice_gw).await;
    assert_eq!(t, "TYPING_START", "{d}");
    assert_eq!(d["user_id"], bob.id.as_str());
    assert_eq!(bob.api.post(&messages, &post).await.status, 201);
    expect_message(&mut alice_gw, "let me talk").await;
}

#[tokio::test]
async fn a_timeout_ends_by_itself() {
    let Hall {
        server,
        alice,
        bob,
        carol,
        hall,
        general,
    } = hall().await;
    grant(&server, &hall, &carol, Permissions::MUTE_MEMBERS.0).await;
    let (mut alice_gw, _) = server.connect(&alice.ws_query()).await;
    let res = carol
        .api
        .post(
            &member_path(&hall, &bob, "timeout"),
            &json!({"duration_minutes": 5}),
        )
        .await;
    assert_eq!(res.status, 200);
    let messages = format!("/channels/{general}/messages");
    let post = json!({"content": "now?"});
    assert_exact_error(&bob.api.post(&messages, &post).await, 403);
    // Time is not waited for: the timeout's end is moved into the past, in the store
    // and the directory, as the clock would move it.
    let sid = hall.parse::<ServerId>().unwrap();
    let ended = Timestamp::from_micros(Timestamp::now().as_micros() - 1);
    let mut stored: Timeout = serde_json::from_value(res.body.clone()).unwrap();
    stored.expires_at = ended;
    server.state.store.put_timeout(&stored, None).await.unwrap();
    server
        .settled(async {
            server.state.events.change(DirectoryChange::TimeoutSet {
                server: sid,
                user: bob.user_id(),
                until: Some(ended),
            })
        })
        .await;
    assert_eq!(next(&mut alice_gw).await.0, "MEMBER_TIMEOUT");
    assert_eq!(bob.api.post(&messages, &post).await.status, 201);
    expect_message(&mut alice_gw, "now?").await;
    // Lifting one that already ended succeeds and announces nothing.
    assert_eq!(
        carol
            .api
            .delete(&member_path(&hall, &bob, "timeout"))
            .await
            .status,
        204
    );
    alice.post(&general, "quiet lift").await;
    expect_message(&mut alice_gw, "quiet lift").await;
}
