//! Conformance cases: bans and timeouts.

use concord_protocol::{Ban, ServerId, Timeout, UserId};

use super::{assert_not_found, at, role_def, server, user};
use crate::Store;

fn ban_def(
    server: ServerId,
    user: UserId,
    by: Option<UserId>,
    reason: Option<&str>,
    n: i64,
) -> Ban {
    Ban {
        user_id: user,
        server_id: server,
        banned_by: by,
        reason: reason.map(str::to_owned),
        created_at: at(n),
    }
}

/// A ban removes the membership and role assignments with it; banning again keeps
/// the first time and replaces banner and reason; bans list newest first; unban
/// says whether there was one.
pub async fn ban_removes_membership_and_lists_newest_first(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let role = role_def(s.id, "mod", 2);
    store.create_role(&role).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();

    let first = ban_def(s.id, bob.id, Some(alice.id), Some("spam"), 5);
    assert!(store.ban(&first, None).await.unwrap(), "bob was a member");
    assert!(store.is_banned(s.id, bob.id).await.unwrap());
    assert!(
        store
            .members(s.id)
            .await
            .unwrap()
            .iter()
            .all(|m| m.user.id != bob.id)
    );
    assert_eq!(store.server(s.id).await.unwrap().unwrap().member_count, 1);
    // The assignment went with the membership: a rejoin starts without roles.
    store.add_member(s.id, bob.id, at(6)).await.unwrap();
    let back = store.members(s.id).await.unwrap();
    assert!(
        back.iter()
            .find(|m| m.user.id == bob.id)
            .unwrap()
            .roles
            .is_empty()
    );

    // Not a member (any more): still banned, and the answer says so.
    let later = ban_def(s.id, carol.id, None, None, 7);
    assert!(!store.ban(&later, None).await.unwrap());
    assert!(store.is_banned(s.id, carol.id).await.unwrap());

    let again = ban_def(s.id, bob.id, Some(carol.id), Some("again"), 9);
    assert!(store.ban(&again, None).await.unwrap(), "bob had rejoined");
    let bob_ban = Ban {
        created_at: at(5),
        ..again
    };
    assert_eq!(store.bans(s.id).await.unwrap(), vec![later, bob_ban]);

    assert_not_found(
        store
            .ban(&ban_def(s.id, UserId::new(), None, None, 10), None)
            .await,
    );
    assert_not_found(
        store
            .ban(&ban_def(ServerId::new(), bob.id, None, None, 10), None)
            .await,
    );
    assert_eq!(store.bans(s.id).await.unwrap().len(), 2);

    assert!(store.unban(s.id, bob.id, None).await.unwrap());
    assert!(!store.unban(s.id, bob.id, None).await.unwrap());
    assert!(!store.is_banned(s.id, bob.id).await.unwrap());
    assert!(store.is_banned(s.id, carol.id).await.unwrap());
    assert!(store.bans(ServerId::new()).await.unwrap().is_empty());
}

/// A timeout is stored whole, replaced whole, and removed once; the directory
/// snapshot sees it while it runs.
pub async fn timeouts_put_replace_remove(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let timeout = Timeout {
        user_id: bob.id,
        server_id: s.id,
        expires_at: at(100),
        reason: Some("calm down".to_owned()),
        created_by: Some(alice.id),
        created_at: at(10),
    };
    store.put_timeout(&timeout, None).await.unwrap();
    assert_eq!(
        store.directory_snapshot(at(50)).await.unwrap().timeouts,
        vec![(s.id, bob.id, at(100))]
    );
    let replaced = Timeout {
        expires_at: at(300),
        reason: None,
        created_by: None,
        created_at: at(20),
        ..timeout
    };
    store.put_timeout(&replaced, None).await.unwrap();
    assert_eq!(
        store.directory_snapshot(at(200)).await.unwrap().timeouts,
        vec![(s.id, bob.id, at(300))]
    );
    assert_eq!(
        store.remove_timeout(s.id, bob.id, None).await.unwrap(),
        Some(at(300))
    );
    assert_eq!(
        store.remove_timeout(s.id, bob.id, None).await.unwrap(),
        None
    );
    assert!(
        store
            .directory_snapshot(at(50))
            .await
            .unwrap()
            .timeouts
            .is_empty()
    );
    assert_not_found(
        store
            .put_timeout(
                &Timeout {
                    user_id: UserId::new(),
                    ..replaced
                },
                None,
            )
            .await,
    );
}
