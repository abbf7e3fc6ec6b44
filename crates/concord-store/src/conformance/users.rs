//! Conformance cases: users and their refresh sessions.

use concord_protocol::{Status, UserId};
use uuid::Uuid;

use super::{assert_conflict, at, bot_user, new_user, session, user};
use crate::{Presence, RefreshSession, Store, UserPatch, UserRecord};

// ---- users ----

/// `ping` answers.
pub async fn ping(store: &dyn Store) {
    store.ping().await.unwrap();
}

/// A created user reads back identically by id and by exact (case-sensitive) name.
pub async fn create_user_and_lookup(store: &dyn Store) {
    let mut def = new_user("alice");
    def.email = Some("alice@example.com".to_owned());
    def.status = Status::Online;
    def.created_at = at(5);
    let created = store.create_user(&def).await.unwrap();
    let expected = UserRecord {
        id: def.id,
        username: "alice".to_owned(),
        email: Some("alice@example.com".to_owned()),
        password_hash: def.password_hash.clone(),
        avatar_url: None,
        bio: None,
        pronouns: None,
        status: Status::Online,
        custom_status: None,
        activity: None,
        created_at: at(5),
        is_admin: false,
        is_bot: false,
        disabled: false,
    };
    assert_eq!(created, expected);
    assert_eq!(store.user(def.id).await.unwrap(), Some(expected.clone()));
    assert_eq!(
        store.user_by_username("alice").await.unwrap(),
        Some(expected)
    );
    assert_eq!(store.user_by_username("Alice").await.unwrap(), None);
    assert_eq!(store.user_by_username("alic").await.unwrap(), None);
    assert_eq!(store.user(UserId::new()).await.unwrap(), None);
}

/// Taken usernames and emails conflict; names are case-sensitive; absent emails never
/// clash; a failed insert leaves nothing behind.
pub async fn create_user_conflicts(store: &dyn Store) {
    let mut alice = new_user("alice");
    alice.email = Some("a@example.com".to_owned());
    store.create_user(&alice).await.unwrap();

    assert_conflict(store.create_user(&new_user("alice")).await);
    let mut same_email = new_user("bob");
    same_email.email = Some("a@example.com".to_owned());
    assert_conflict(store.create_user(&same_email).await);
    assert_eq!(store.user(same_email.id).await.unwrap(), None);
    let mut same_id = new_user("carol");
    same_id.id = alice.id;
    assert_conflict(store.create_user(&same_id).await);

    // "bob" was not inserted by the failed attempt; no-email users do not clash.
    store.create_user(&new_user("bob")).await.unwrap();
    store.create_user(&new_user("carol")).await.unwrap();
    store.create_user(&new_user("Alice")).await.unwrap();
}

/// The first human asking for it becomes admin; bots never count nor become admin;
/// later humans do not.
pub async fn first_human_becomes_admin(store: &dyn Store) {
    let mut robot = bot_user("robot");
    robot.admin_if_first = true;
    assert!(!store.create_user(&robot).await.unwrap().is_admin);

    let mut first = new_user("alice");
    first.admin_if_first = true;
    assert!(store.create_user(&first).await.unwrap().is_admin);
    assert!(store.user(first.id).await.unwrap().unwrap().is_admin);

    let mut second = new_user("bob");
    second.admin_if_first = true;
    assert!(!store.create_user(&second).await.unwrap().is_admin);
}

/// Without `admin_if_first` nobody becomes admin, and once a human exists nobody else.
pub async fn admin_only_when_asked_and_first(store: &dyn Store) {
    let first = new_user("alice");
    assert!(!store.create_user(&first).await.unwrap().is_admin);
    let mut second = new_user("bob");
    second.admin_if_first = true;
    assert!(!store.create_user(&second).await.unwrap().is_admin);
}

/// `users` skips missing ids and answers `[]` for `[]`.
pub async fn users_batch(store: &dyn Store) {
    let a = user(store, "alice").await;
    let _b = user(store, "bob").await;
    let c = user(store, "carol").await;
    let mut found = store
        .users(&[c.id, UserId::new(), a.id, a.id])
        .await
        .unwrap();
    found.sort_by_key(|u| u.id);
    let mut expected = vec![a, c];
    expected.sort_by_key(|u| u.id);
    assert_eq!(found, expected);
    assert!(store.users(&[]).await.unwrap().is_empty());
}

/// `update_user` changes only the given fields; `None` for a missing user.
pub async fn update_user_patch(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let patch = UserPatch {
        avatar_url: Some("https://example.com/a.png".to_owned()),
        status: Some(Status::Dnd),
        ..UserPatch::default()
    };
    let updated = store.update_user(alice.id, &patch).await.unwrap().unwrap();
    assert_eq!(
        updated,
        UserRecord {
            avatar_url: patch.avatar_url.clone(),
            status: Status::Dnd,
            ..alice.clone()
        }
    );
    let patch = UserPatch {
        bio: Some("hi".to_owned()),
        pronouns: Some("she/her".to_owned()),
        custom_status: Some("around".to_owned()),
        activity: Some("coding".to_owned()),
        ..UserPatch::default()
    };
    let updated = store.update_user(alice.id, &patch).await.unwrap().unwrap();
    assert_eq!(
        updated.avatar_url.as_deref(),
        Some("https://example.com/a.png")
    );
    assert_eq!(updated.status, Status::Dnd);
    assert_eq!(updated.bio.as_deref(), Some("hi"));
    assert_eq!(updated.pronouns.as_deref(), Some("she/her"));
    assert_eq!(updated.custom_status.as_deref(), Some("around"));
    assert_eq!(updated.activity.as_deref(), Some("coding"));
    assert_eq!(store.user(alice.id).await.unwrap(), Some(updated));
    assert_eq!(
        store
            .update_user(UserId::new(), &UserPatch::default())
            .await
            .unwrap(),
        None
    );
}

/// `set_presence` writes all three fields, clearing with `None`.
pub async fn set_presence_replaces_all(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let busy = Presence {
        status: Status::Away,
        custom_status: Some("lunch".to_owned()),
        activity: Some("eating".to_owned()),
    };
    store.set_presence(alice.id, &busy).await.unwrap();
    let read = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.custom_status, read.activity),
        (Status::Away, busy.custom_status, busy.activity)
    );
    let back = Presence {
        status: Status::Online,
        custom_status: None,
        activity: None,
    };
    store.set_presence(alice.id, &back).await.unwrap();
    let read = store.user(alice.id).await.unwrap().unwrap();
    assert_eq!(
        (read.status, read.custom_status, read.activity),
        (Status::Online, None, None)
    );
    store.set_presence(UserId::new(), &back).await.unwrap();
}

// ---- refresh sessions ----

/// A session reads back by its hash; unknown hashes give `None`.
pub async fn refresh_session_lookup(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(alice.id, "h1", at(0), at(100));
    store.create_refresh_session(&s, at(0), 10).await.unwrap();
    assert_eq!(store.refresh_session_by_hash("h1").await.unwrap(), Some(s));
    assert_eq!(store.refresh_session_by_hash("h2").await.unwrap(), None);
}

/// Rotation swaps the hash only while the old one is current.
pub async fn refresh_rotation_is_compare_and_set(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = session(alice.id, "h1", at(0), at(100));
    store.create_refresh_session(&s, at(0), 10).await.unwrap();

    assert!(
        store
            .rotate_refresh_session(s.id, "h1", "h2", at(5))
            .await
            .unwrap()
    );
    // The second rotation with the same old token loses.
    assert!(
        !store
            .rotate_refresh_session(s.id, "h1", "h3", at(6))
            .await
            .unwrap()
    );
    assert_eq!(store.refresh_session_by_hash("h1").await.unwrap(), None);
    assert_eq!(store.refresh_session_by_hash("h3").await.unwrap(), None);
    assert_eq!(
        store.refresh_session_by_hash("h2").await.unwrap(),
        Some(RefreshSession {
            token_hash: "h2".to_owned(),
            previous_hash: Some("h1".to_owned()),
            rotated_at: Some(at(5)),
            ..s.clone()
        })
    );
    assert!(
        !store
            .rotate_refresh_session(Uuid::now_v7(), "h2", "h4", at(7))
            .await
            .unwrap()
    );
    assert!(
        store
            .rotate_refresh_session(s.id, "h2", "h4", at(8))
            .await
            .unwrap()
    );
}

/// Only the `keep` newest sessions of the user survive; other users are untouched.
pub async fn refresh_keeps_newest(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    store
        .create_refresh_session(&session(bob.id, "bob", at(0), at(1000)), at(0), 10)
        .await
        .unwrap();
    for i in 0..12 {
        let s = session(alice.id, &format!("h{i}"), at(i), at(1000));
        store.create_refresh_session(&s, at(i), 10).await.unwrap();
    }
    for i in 0..12 {
        let found = store
            .refresh_session_by_hash(&format!("h{i}"))
            .await
            .unwrap();
        assert_eq!(found.is_some(), i >= 2, "session h{i}");
    }
    assert!(
        store
            .refresh_session_by_hash("bob")
            .await
            .unwrap()
            .is_some()
    );
}

/// Creating a session drops the user's sessions expired at `now` (and only theirs).
pub async fn refresh_drops_expired(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    for s in [
        session(alice.id, "old", at(0), at(10)),
        session(alice.id, "live", at(1), at(100)),
        session(bob.id, "bob-old", at(0), at(5)),
    ] {
        store.create_refresh_session(&s, at(1), 10).await.unwrap();
    }
    store
        .create_refresh_session(&session(alice.id, "new", at(10), at(200)), at(10), 10)
        .await
        .unwrap();
    assert!(
        store
            .refresh_session_by_hash("old")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .refresh_session_by_hash("live")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .refresh_session_by_hash("new")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .refresh_session_by_hash("bob-old")
            .await
            .unwrap()
            .is_some()
    );
}

/// Logging out everywhere removes one user's sessions only.
pub async fn delete_refresh_sessions_of_one_user(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    for s in [
        session(alice.id, "a1", at(0), at(100)),
        session(alice.id, "a2", at(1), at(100)),
        session(bob.id, "b1", at(0), at(100)),
    ] {
        store.create_refresh_session(&s, at(1), 10).await.unwrap();
    }
    store.delete_refresh_sessions(alice.id).await.unwrap();
    assert!(store.refresh_session_by_hash("a1").await.unwrap().is_none());
    assert!(store.refresh_session_by_hash("a2").await.unwrap().is_none());
    assert!(store.refresh_session_by_hash("b1").await.unwrap().is_some());
}

/// Logout of one session ends exactly that session, and only for its own user.
pub async fn delete_one_refresh_session(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    for s in [
        session(alice.id, "a1", at(0), at(100)),
        session(alice.id, "a2", at(1), at(100)),
        session(bob.id, "b1", at(0), at(100)),
    ] {
        store.create_refresh_session(&s, at(1), 10).await.unwrap();
    }
    let a1 = store.refresh_session_by_hash("a1").await.unwrap().unwrap();
    assert_eq!(
        store.delete_refresh_session(alice.id, "b1").await.unwrap(),
        None
    );
    assert_eq!(
        store.delete_refresh_session(alice.id, "zz").await.unwrap(),
        None
    );
    assert_eq!(
        store.delete_refresh_session(alice.id, "a1").await.unwrap(),
        Some(a1.id)
    );
    assert_eq!(
        store.delete_refresh_session(alice.id, "a1").await.unwrap(),
        None
    );
    assert!(store.refresh_session_by_hash("a1").await.unwrap().is_none());
    assert!(store.refresh_session_by_hash("a2").await.unwrap().is_some());
    assert!(store.refresh_session_by_hash("b1").await.unwrap().is_some());
}

/// A session reads back by id, with what its last rotation replaced, and a revoke ends
/// exactly that session whoever's it is.
pub async fn refresh_session_by_id_and_revoke(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let mine = session(alice.id, "a1", at(0), at(100));
    let other = session(alice.id, "a2", at(1), at(100));
    let bobs = session(bob.id, "b1", at(0), at(100));
    for s in [&mine, &other, &bobs] {
        store.create_refresh_session(s, at(1), 10).await.unwrap();
    }
    assert_eq!(
        store.refresh_session(mine.id).await.unwrap(),
        Some(mine.clone())
    );
    assert_eq!(store.refresh_session(Uuid::now_v7()).await.unwrap(), None);
    assert!(
        store
            .rotate_refresh_session(mine.id, "a1", "a1b", at(3))
            .await
            .unwrap()
    );
    let rotated = store.refresh_session(mine.id).await.unwrap().unwrap();
    assert_eq!(rotated.token_hash, "a1b");
    assert_eq!(rotated.previous_hash.as_deref(), Some("a1"));
    assert_eq!(rotated.rotated_at, Some(at(3)));

    assert!(store.revoke_refresh_session(mine.id).await.unwrap());
    assert!(!store.revoke_refresh_session(mine.id).await.unwrap());
    assert_eq!(store.refresh_session(mine.id).await.unwrap(), None);
    assert!(
        store
            .refresh_session_by_hash("a1b")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.refresh_session(other.id).await.unwrap().is_some());
    assert!(store.refresh_session(bobs.id).await.unwrap().is_some());
}
