//! Conformance cases: instance settings, password reset tokens, instance
//! administration and server templates (issue 18).

use concord_protocol::{ChannelType, CustomEmojiId, RegistrationMode, ServerId, UserId};

use crate::{
    AdminFlags, AdminRefusal, AdminServerQuery, AdminUserQuery, AdminUserSort, CustomEmojiRecord,
    NewUser, Store, UserRecord,
};

use super::{
    assert_conflict, assert_not_found, at, channel, channel_def, message, new_user, server,
    server_def, session, user,
};

/// A user with an e-mail; `admin_if_first` as given.
async fn user_with_email(
    store: &dyn Store,
    name: &str,
    email: &str,
    first_admin: bool,
) -> UserRecord {
    store
        .create_user(&NewUser {
            email: Some(email.to_owned()),
            admin_if_first: first_admin,
            ..new_user(name)
        })
        .await
        .expect("create user")
}

/// Two enabled admins (the first human becomes admin; the second is promoted).
async fn two_admins(store: &dyn Store) -> (UserRecord, UserRecord) {
    let alice = user_with_email(store, "alice", "alice@example.com", true).await;
    assert!(alice.is_admin);
    let bob = user_with_email(store, "bob", "bob@example.com", false).await;
    let promote = AdminFlags {
        is_admin: Some(true),
        disabled: None,
    };
    assert_eq!(
        store
            .set_admin_flags(alice.id, bob.id, &promote, at(1))
            .await
            .unwrap(),
        Ok(())
    );
    (alice, bob)
}

/// The settings row exists from the start with no mode chosen; an update sets the
/// mode when given and always the time and author.
pub async fn instance_settings_update(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let initial = store.instance_settings().await.unwrap();
    assert_eq!(initial.registration_mode, None);
    assert_eq!(initial.updated_by, None);

    let set = store
        .update_instance_settings(Some(RegistrationMode::InviteOnly), alice.id, at(5))
        .await
        .unwrap();
    assert_eq!(set.registration_mode, Some(RegistrationMode::InviteOnly));
    assert_eq!((set.updated_at, set.updated_by), (at(5), Some(alice.id)));
    assert_eq!(store.instance_settings().await.unwrap(), set);

    // No mode: kept; time and author still recorded. An unknown author is nobody.
    let touched = store
        .update_instance_settings(None, UserId::new(), at(6))
        .await
        .unwrap();
    assert_eq!(
        touched.registration_mode,
        Some(RegistrationMode::InviteOnly)
    );
    assert_eq!((touched.updated_at, touched.updated_by), (at(6), None));
}

/// E-mail look-up is exact; a reset token is found while unused and unexpired, is
/// consumed once (setting the password and ending every session), and a new token
/// replaces the user's earlier one.
pub async fn reset_tokens_are_single_use(store: &dyn Store) {
    let alice = user_with_email(store, "alice", "Alice@example.com", false).await;
    assert_eq!(
        store
            .user_by_email("Alice@example.com")
            .await
            .unwrap()
            .map(|u| u.id),
        Some(alice.id)
    );
    assert!(
        store
            .user_by_email("alice@example.com")
            .await
            .unwrap()
            .is_none()
    );

    store
        .create_refresh_session(&session(alice.id, "r1", at(0), at(1000)), at(0), 10)
        .await
        .unwrap();
    store
        .create_reset_token(alice.id, "t1", at(0), at(100))
        .await
        .unwrap();
    assert_eq!(
        store
            .reset_token_user("t1", at(1))
            .await
            .unwrap()
            .map(|u| u.id),
        Some(alice.id)
    );
    assert!(
        store
            .reset_token_user("t1", at(100))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(
        store
            .reset_token_user("nope", at(1))
            .await
            .unwrap()
            .is_none()
    );

    // A newer token replaces the earlier one.
    store
        .create_reset_token(alice.id, "t2", at(2), at(100))
        .await
        .unwrap();
    assert!(store.reset_token_user("t1", at(3)).await.unwrap().is_none());
    assert!(
        store
            .consume_reset_token("t1", at(3), "$new")
            .await
            .unwrap()
            .is_none()
    );
    // Expired: refused, nothing changes.
    assert!(
        store
            .consume_reset_token("t2", at(100), "$new")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.refresh_session_by_hash("r1").await.unwrap().is_some());

    assert_eq!(
        store
            .consume_reset_token("t2", at(4), "$new")
            .await
            .unwrap(),
        Some(alice.id)
    );
    let after = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(after.password_hash.as_deref(), Some("$new"));
    assert!(
        store.refresh_session_by_hash("r1").await.unwrap().is_none(),
        "sessions ended"
    );
    assert!(
        store
            .consume_reset_token("t2", at(5), "$again")
            .await
            .unwrap()
            .is_none(),
        "used"
    );
    assert!(store.reset_token_user("t2", at(5)).await.unwrap().is_none());
    assert_eq!(
        store
            .user(alice.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$new")
    );
    assert_not_found(
        store
            .create_reset_token(UserId::new(), "t3", at(0), at(10))
            .await,
    );
}

/// Of concurrent uses of one token exactly one wins.
pub async fn reset_token_consumed_once_under_concurrency(store: &dyn Store) {
    let alice = user(store, "alice").await;
    store
        .create_reset_token(alice.id, "t", at(0), at(100))
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(
        store.consume_reset_token("t", at(1), "$a"),
        store.consume_reset_token("t", at(1), "$b"),
        store.consume_reset_token("t", at(1), "$c"),
    );
    let winners = [a.unwrap(), b.unwrap(), c.unwrap()]
        .into_iter()
        .flatten()
        .count();
    assert_eq!(winners, 1);
}

/// Totals count every row (deleted messages included); the user list pages, searches
/// (a literal, case-insensitive substring of username or e-mail) and sorts; the
/// server list pages and searches by name.
pub async fn admin_counts_and_lists(store: &dyn Store) {
    let alice = user_with_email(store, "alice", "a@example.com", false).await;
    let bob = store
        .create_user(&NewUser {
            created_at: at(1),
            email: Some("BOB@Example.com".into()),
            ..new_user("bob")
        })
        .await
        .unwrap();
    let carol = store
        .create_user(&NewUser {
            created_at: at(2),
            ..new_user("carol_%")
        })
        .await
        .unwrap();
    let s = server(store, alice.id, at(3)).await;
    let other = server_def(bob.id, "Other Place", at(4), true);
    store.create_server(&other).await.unwrap();
    store.add_member(s.id, bob.id, at(5)).await.unwrap();
    let c = channel(store, s.id, ChannelType::Text, 6).await;
    let m = message(store, c.id, bob.id, 7).await;
    message(store, c.id, bob.id, 8).await;
    message(store, c.id, alice.id, 9).await;
    assert!(store.delete_message(m.id).await.unwrap());

    let counts = store.admin_counts().await.unwrap();
    assert_eq!(
        (
            counts.users,
            counts.servers,
            counts.messages,
            counts.channels
        ),
        (3, 2, 3, 1)
    );

    let all = |sort| AdminUserQuery {
        offset: 0,
        limit: 10,
        search: None,
        sort,
    };
    let names = |users: &[concord_protocol::AdminUser]| {
        users.iter().map(|u| u.username.clone()).collect::<Vec<_>>()
    };
    let (users, total) = store
        .admin_users(&all(AdminUserSort::CreatedAt))
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(names(&users), ["carol_%", "bob", "alice"]);
    let (users, _) = store
        .admin_users(&all(AdminUserSort::Username))
        .await
        .unwrap();
    assert_eq!(names(&users), ["alice", "bob", "carol_%"]);
    let (users, _) = store
        .admin_users(&all(AdminUserSort::MessageCount))
        .await
        .unwrap();
    assert_eq!(names(&users), ["bob", "alice", "carol_%"]);
    let bob_row = &users[0];
    assert_eq!((bob_row.server_count, bob_row.message_count), (2, 2));
    assert_eq!(bob_row.email.as_deref(), Some("BOB@Example.com"));

    // Paging: total counts every match, the page only its rows.
    let (users, total) = store
        .admin_users(&AdminUserQuery {
            offset: 1,
            limit: 1,
            ..all(AdminUserSort::Username)
        })
        .await
        .unwrap();
    assert_eq!((names(&users), total), (vec!["bob".to_owned()], 3));

    // Search: e-mail or username, folded; `%` and `_` are literal.
    let search = |text: &str| AdminUserQuery {
        search: Some(text.to_owned()),
        ..all(AdminUserSort::Username)
    };
    let (users, total) = store.admin_users(&search("example.com")).await.unwrap();
    assert_eq!(
        (names(&users), total),
        (vec!["alice".into(), "bob".into()], 2)
    );
    let (users, _) = store.admin_users(&search("_%")).await.unwrap();
    assert_eq!(names(&users), ["carol_%"]);
    let (users, total) = store.admin_users(&search("a%")).await.unwrap();
    assert_eq!((users.len(), total), (0, 0));

    let one = store.admin_user(carol.id).await.unwrap().unwrap();
    assert_eq!(
        (one.server_count, one.message_count, one.is_admin),
        (0, 0, false)
    );
    assert!(store.admin_user(UserId::new()).await.unwrap().is_none());

    let (servers, total) = store
        .admin_servers(&AdminServerQuery {
            offset: 0,
            limit: 10,
            search: None,
        })
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert_eq!(servers[0].id, other.id, "newest first");
    assert_eq!(servers[0].owner_username, "bob");
    let first = &servers[1];
    assert_eq!(
        (first.member_count, first.channel_count, first.message_count),
        (2, 1, 3)
    );
    let (servers, total) = store
        .admin_servers(&AdminServerQuery {
            offset: 0,
            limit: 10,
            search: Some("other".into()),
        })
        .await
        .unwrap();
    assert_eq!((servers.len(), total), (1, 2 - 1));
}

/// Flag changes check, in their transaction: the actor is an enabled admin, the
/// target exists, and the last enabled admin is never demoted or disabled. Disabling
/// records when and ends the sessions; enabling clears it.
pub async fn admin_flags_keep_an_admin(store: &dyn Store) {
    let alice = user_with_email(store, "alice", "alice@example.com", true).await;
    let bob = user(store, "bob").await;
    let demote = AdminFlags {
        is_admin: Some(false),
        disabled: None,
    };
    let disable = AdminFlags {
        is_admin: None,
        disabled: Some(true),
    };
    let enable = AdminFlags {
        is_admin: None,
        disabled: Some(false),
    };
    assert_eq!(
        store
            .set_admin_flags(bob.id, alice.id, &demote, at(1))
            .await
            .unwrap(),
        Err(AdminRefusal::ActorNotAdmin)
    );
    assert_eq!(
        store
            .set_admin_flags(alice.id, UserId::new(), &disable, at(1))
            .await
            .unwrap(),
        Err(AdminRefusal::NotFound)
    );
    assert_eq!(
        store
            .set_admin_flags(alice.id, alice.id, &demote, at(1))
            .await
            .unwrap(),
        Err(AdminRefusal::LastAdmin)
    );
    assert_eq!(
        store
            .set_admin_flags(alice.id, alice.id, &disable, at(1))
            .await
            .unwrap(),
        Err(AdminRefusal::LastAdmin)
    );
    assert!(store.user(alice.id).await.unwrap().unwrap().is_admin);

    store
        .create_refresh_session(&session(bob.id, "rb", at(0), at(1000)), at(0), 10)
        .await
        .unwrap();
    assert_eq!(
        store
            .set_admin_flags(alice.id, bob.id, &disable, at(2))
            .await
            .unwrap(),
        Ok(())
    );
    let row = store.admin_user(bob.id).await.unwrap().unwrap();
    assert_eq!((row.disabled, row.disabled_at), (true, Some(at(2))));
    assert!(store.user(bob.id).await.unwrap().unwrap().disabled);
    assert!(store.refresh_session_by_hash("rb").await.unwrap().is_none());
    // Disabling again keeps the first time.
    store
        .set_admin_flags(alice.id, bob.id, &disable, at(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.admin_user(bob.id).await.unwrap().unwrap().disabled_at,
        Some(at(2))
    );
    store
        .set_admin_flags(alice.id, bob.id, &enable, at(4))
        .await
        .unwrap()
        .unwrap();
    let row = store.admin_user(bob.id).await.unwrap().unwrap();
    assert_eq!((row.disabled, row.disabled_at), (false, None));

    // With a second enabled admin, one may go; a disabled actor may do nothing.
    let promote = AdminFlags {
        is_admin: Some(true),
        disabled: None,
    };
    store
        .set_admin_flags(alice.id, bob.id, &promote, at(5))
        .await
        .unwrap()
        .unwrap();
    store
        .set_admin_flags(bob.id, alice.id, &disable, at(6))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store
            .set_admin_flags(alice.id, bob.id, &demote, at(7))
            .await
            .unwrap(),
        Err(AdminRefusal::ActorNotAdmin)
    );
    // Only bob is enabled now: even the disabled admin alice cannot be demoted.
    assert_eq!(
        store
            .set_admin_flags(bob.id, alice.id, &demote, at(7))
            .await
            .unwrap(),
        Err(AdminRefusal::LastAdmin)
    );
}

/// Two admins demoting (or deleting) each other at once: exactly one succeeds and one
/// enabled admin remains.
pub async fn last_admin_holds_under_concurrency(store: &dyn Store) {
    let (alice, bob) = two_admins(store).await;
    let demote = AdminFlags {
        is_admin: Some(false),
        disabled: None,
    };
    let (a, b) = tokio::join!(
        store.set_admin_flags(alice.id, bob.id, &demote, at(2)),
        store.set_admin_flags(bob.id, alice.id, &demote, at(2)),
    );
    let results = [a.unwrap(), b.unwrap()];
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    let admins = [alice.id, bob.id];
    let mut enabled = 0;
    for id in admins {
        let u = store.user(id).await.unwrap().unwrap();
        enabled += usize::from(u.is_admin && !u.disabled);
    }
    assert_eq!(enabled, 1);

    let carol = user(store, "carol").await;
    let dave = user(store, "dave").await;
    let survivor = if results[0].is_ok() { alice.id } else { bob.id };
    let promote = AdminFlags {
        is_admin: Some(true),
        disabled: None,
    };
    store
        .set_admin_flags(survivor, carol.id, &promote, at(3))
        .await
        .unwrap()
        .unwrap();
    store
        .set_admin_flags(survivor, dave.id, &promote, at(3))
        .await
        .unwrap()
        .unwrap();
    // Now three admins; two of them delete each other at once, a third stays.
    let (a, b) = tokio::join!(
        store.delete_user_as_admin(carol.id, dave.id),
        store.delete_user_as_admin(dave.id, carol.id),
    );
    let deleted = [a.unwrap(), b.unwrap()];
    assert_eq!(
        deleted.iter().filter(|r| r.is_ok()).count(),
        1,
        "{deleted:?}"
    );
    assert!(deleted.contains(&Err(AdminRefusal::ActorNotAdmin)));
}

/// Deletion refuses owners and unknown users; otherwise the user goes with their
/// memberships, sessions and emojis, and their messages stay without an author.
pub async fn delete_user_as_admin_keeps_messages(store: &dyn Store) {
    let alice = user_with_email(store, "alice", "alice@example.com", true).await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let c = channel(store, s.id, ChannelType::Text, 3).await;
    let m = message(store, c.id, bob.id, 4).await;
    let emoji = CustomEmojiRecord {
        id: CustomEmojiId::new(),
        server_id: s.id,
        created_by: bob.id,
        name: "wave".into(),
        content_type: "image/png".into(),
        file_size: 10,
        created_at: at(5),
    };
    store.create_custom_emoji(&emoji, 50).await.unwrap();
    store
        .create_refresh_session(&session(bob.id, "rb", at(0), at(1000)), at(0), 10)
        .await
        .unwrap();
    store
        .create_reset_token(bob.id, "tb", at(0), at(100))
        .await
        .unwrap();

    assert_eq!(
        store.delete_user_as_admin(bob.id, alice.id).await.unwrap(),
        Err(AdminRefusal::ActorNotAdmin)
    );
    assert_eq!(
        store
            .delete_user_as_admin(alice.id, UserId::new())
            .await
            .unwrap(),
        Err(AdminRefusal::NotFound)
    );
    let owner = user(store, "owner").await;
    store
        .create_server(&server_def(owner.id, "mine", at(6), false))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete_user_as_admin(alice.id, owner.id)
            .await
            .unwrap(),
        Err(AdminRefusal::OwnsServers)
    );
    assert!(store.user(owner.id).await.unwrap().is_some());

    let deleted = store
        .delete_user_as_admin(alice.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(deleted.servers, vec![s.id]);
    assert_eq!(deleted.emojis, vec![emoji.id]);
    assert!(store.user(bob.id).await.unwrap().is_none());
    let kept = store.message(m.id).await.unwrap().expect("message kept");
    assert_eq!(kept.author_id, None);
    assert_eq!(store.members(s.id).await.unwrap().len(), 1);
    assert!(store.custom_emoji(emoji.id).await.unwrap().is_none());
    assert!(store.refresh_session_by_hash("rb").await.unwrap().is_none());
    assert!(store.reset_token_user("tb", at(1)).await.unwrap().is_none());
    assert_eq!(
        store.delete_user_as_admin(alice.id, bob.id).await.unwrap(),
        Err(AdminRefusal::NotFound)
    );
}

/// Three built-in templates, built-ins first then by name; a server made with channels
/// gets them at positions 0.. in order, all or nothing.
pub async fn server_templates_and_creation_with_channels(store: &dyn Store) {
    let templates = store.server_templates().await.unwrap();
    let names: Vec<_> = templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Community", "Gaming", "Study Group"]);
    assert!(templates.iter().all(|t| t.is_builtin));
    let categories: Vec<_> = templates.iter().map(|t| t.category.as_str()).collect();
    assert_eq!(categories, ["community", "gaming", "study"]);
    let gaming = &templates[1];
    assert_eq!(
        store.server_template(gaming.id).await.unwrap().as_ref(),
        Some(gaming)
    );
    assert!(
        store
            .server_template(uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );

    let alice = user(store, "alice").await;
    let s = server_def(alice.id, "templated", at(1), false);
    let defs = [
        channel_def(s.id, "general", ChannelType::Text, at(1)),
        channel_def(s.id, "Lounge", ChannelType::Voice, at(1)),
    ];
    let created = store
        .create_server_with_channels(&s, &defs, None)
        .await
        .unwrap();
    assert_eq!(
        created
            .iter()
            .map(|c| (c.name.as_str(), c.position))
            .collect::<Vec<_>>(),
        [("general", 0), ("Lounge", 1)]
    );
    assert_eq!(store.channels(s.id).await.unwrap(), created);
    assert_eq!(store.members(s.id).await.unwrap().len(), 1);

    // A failing channel insert (a taken id) leaves no server behind.
    let again = server_def(alice.id, "broken", at(2), false);
    let clash = [
        channel_def(again.id, "a", ChannelType::Text, at(2)),
        crate::NewChannel {
            id: defs[0].id,
            ..channel_def(again.id, "b", ChannelType::Text, at(2))
        },
    ];
    assert_conflict(
        store
            .create_server_with_channels(&again, &clash, None)
            .await,
    );
    assert!(store.server(again.id).await.unwrap().is_none());
    let _: ServerId = again.id;
}
