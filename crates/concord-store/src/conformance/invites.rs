//! Conformance cases: server invites.

use concord_protocol::{Invite, InviteId, InvitePreview, ServerId, Timestamp, UserId};

use super::{assert_conflict, assert_not_found, at, new_user, server, user};
use crate::{InviteAcceptance, InviteRefusal, Store};

fn invite_def(
    server: ServerId,
    code: &str,
    created_by: Option<UserId>,
    max_uses: Option<i64>,
    expires_at: Option<Timestamp>,
    created_at: Timestamp,
) -> Invite {
    Invite {
        id: InviteId::new(),
        server_id: server,
        code: code.to_owned(),
        created_by,
        max_uses,
        uses: 0,
        expires_at,
        created_at,
    }
}

/// The invites of `server` with this code.
async fn stored(store: &dyn Store, server: ServerId, code: &str) -> Invite {
    store
        .invites(server)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.code == code)
        .expect("invite stored")
}

/// Invites read back as created, newest first per server; a code is unique across
/// servers; a missing server is NotFound; delete is scoped to the server.
pub async fn invites_create_list_delete(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let home = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(2)).await;
    let old = invite_def(
        home.id,
        "AAAAaaaa",
        Some(alice.id),
        Some(3),
        Some(at(90)),
        at(5),
    );
    let new = invite_def(home.id, "BBBBbbbb", None, None, None, at(6));
    let elsewhere = invite_def(other.id, "CCCCcccc", Some(alice.id), None, None, at(7));
    for invite in [&old, &new, &elsewhere] {
        store.create_invite(invite, None).await.unwrap();
    }
    assert_eq!(
        store.invites(home.id).await.unwrap(),
        vec![new.clone(), old.clone()]
    );
    assert_eq!(
        store.invites(other.id).await.unwrap(),
        vec![elsewhere.clone()]
    );

    // Codes are unique everywhere; they differ by case alone.
    assert_conflict(
        store
            .create_invite(
                &invite_def(other.id, "AAAAaaaa", None, None, None, at(8)),
                None,
            )
            .await,
    );
    store
        .create_invite(
            &invite_def(other.id, "aaaaAAAA", None, None, None, at(8)),
            None,
        )
        .await
        .unwrap();
    assert_not_found(
        store
            .create_invite(
                &invite_def(ServerId::new(), "DDDDdddd", None, None, None, at(8)),
                None,
            )
            .await,
    );

    assert!(!store.delete_invite(other.id, old.id, None).await.unwrap());
    assert!(store.delete_invite(home.id, old.id, None).await.unwrap());
    assert!(!store.delete_invite(home.id, old.id, None).await.unwrap());
    assert_eq!(store.invites(home.id).await.unwrap(), vec![new]);

    // Deleting the server takes its invites.
    assert!(store.delete_server(other.id, None).await.unwrap().is_some());
    assert!(store.invites(other.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .accept_invite("CCCCcccc", alice.id, at(9))
            .await
            .unwrap(),
        InviteAcceptance::Refused(InviteRefusal::Unknown)
    );
}

/// A preview shows only a usable invite: not expired at `now` (an expiry equal to
/// `now` has passed), not exhausted; the code matches case-sensitively.
pub async fn invite_preview_only_while_usable(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let mut def = super::server_def(alice.id, "Guild", at(1), false);
    def.icon_url = Some("https://example.com/g.png".to_owned());
    store.create_server(&def).await.unwrap();
    store.add_member(def.id, bob.id, at(2)).await.unwrap();
    store
        .create_invite(
            &invite_def(def.id, "Preview1", None, Some(1), Some(at(50)), at(3)),
            None,
        )
        .await
        .unwrap();
    let preview = InvitePreview {
        code: "Preview1".to_owned(),
        server_name: "Guild".to_owned(),
        server_icon_url: Some("https://example.com/g.png".to_owned()),
        member_count: 2,
        expires_at: Some(at(50)),
    };
    assert_eq!(
        store.invite_preview("Preview1", at(49)).await.unwrap(),
        Some(preview)
    );
    assert_eq!(
        store.invite_preview("preview1", at(49)).await.unwrap(),
        None
    );
    assert_eq!(
        store.invite_preview("Preview1", at(50)).await.unwrap(),
        None
    );
    assert_eq!(store.invite_preview("Nothing1", at(4)).await.unwrap(), None);

    let carol = user(store, "carol").await;
    assert_eq!(
        store
            .accept_invite("Preview1", carol.id, at(10))
            .await
            .unwrap(),
        InviteAcceptance::Joined(def.id)
    );
    assert_eq!(
        store.invite_preview("Preview1", at(11)).await.unwrap(),
        None,
        "exhausted"
    );
}

/// Accepting checks the code (unknown, expired, exhausted), then a ban, then
/// membership; only a join writes, and it counts exactly one use.
pub async fn accept_invite_checks_in_order_and_counts_one_use(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let dave = user(store, "dave").await;
    let s = server(store, alice.id, at(1)).await;
    store
        .create_invite(
            &invite_def(s.id, "Once0001", None, Some(1), None, at(2)),
            None,
        )
        .await
        .unwrap();
    store
        .create_invite(
            &invite_def(s.id, "Old00001", None, None, Some(at(20)), at(2)),
            None,
        )
        .await
        .unwrap();
    store
        .create_invite(&invite_def(s.id, "Many0001", None, None, None, at(2)), None)
        .await
        .unwrap();
    let ban = concord_protocol::Ban {
        user_id: carol.id,
        server_id: s.id,
        banned_by: Some(alice.id),
        reason: None,
        created_at: at(3),
    };
    store.ban(&ban, None).await.unwrap();

    let accept = |code: &'static str, who: UserId, when| store.accept_invite(code, who, when);
    assert_eq!(
        accept("Nope0001", bob.id, at(10)).await.unwrap(),
        InviteAcceptance::Refused(InviteRefusal::Unknown)
    );
    assert_eq!(
        accept("Old00001", bob.id, at(20)).await.unwrap(),
        InviteAcceptance::Refused(InviteRefusal::Expired)
    );
    // The code's checks come before the ban's.
    assert_eq!(
        accept("Old00001", carol.id, at(21)).await.unwrap(),
        InviteAcceptance::Refused(InviteRefusal::Expired)
    );
    assert_eq!(
        accept("Once0001", carol.id, at(10)).await.unwrap(),
        InviteAcceptance::Banned(s.id)
    );
    assert_eq!(
        accept("Once0001", alice.id, at(10)).await.unwrap(),
        InviteAcceptance::AlreadyMember(s.id)
    );
    // None of those used the invite or added anyone.
    assert_eq!(stored(store, s.id, "Once0001").await.uses, 0);
    assert_eq!(store.members(s.id).await.unwrap().len(), 1);

    assert_eq!(
        accept("Once0001", bob.id, at(11)).await.unwrap(),
        InviteAcceptance::Joined(s.id)
    );
    let members = store.members(s.id).await.unwrap();
    let joined = members.iter().find(|m| m.user.id == bob.id).expect("bob");
    assert_eq!(joined.joined_at, at(11));
    assert_eq!(stored(store, s.id, "Once0001").await.uses, 1);
    assert_eq!(
        accept("Once0001", dave.id, at(12)).await.unwrap(),
        InviteAcceptance::Refused(InviteRefusal::Exhausted)
    );
    assert_eq!(stored(store, s.id, "Once0001").await.uses, 1);
    assert_eq!(
        accept("Many0001", dave.id, at(12)).await.unwrap(),
        InviteAcceptance::Joined(s.id)
    );
    assert_eq!(stored(store, s.id, "Many0001").await.uses, 1);
}

/// Concurrent accepts of a two-use invite: exactly two join, the rest find it
/// exhausted.
pub async fn accept_invite_concurrently_admits_max_uses(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    store
        .create_invite(
            &invite_def(s.id, "Race0001", None, Some(2), None, at(2)),
            None,
        )
        .await
        .unwrap();
    let mut users = Vec::new();
    for n in 0..6 {
        users.push(user(store, &format!("racer{n}")).await.id);
    }
    let outcomes = futures_util::future::join_all(
        users
            .iter()
            .map(|u| store.accept_invite("Race0001", *u, at(3))),
    )
    .await;
    let joined = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(InviteAcceptance::Joined(_))))
        .count();
    let refused = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(InviteAcceptance::Refused(InviteRefusal::Exhausted))))
        .count();
    assert_eq!((joined, refused), (2, 4), "{outcomes:?}");
    assert_eq!(stored(store, s.id, "Race0001").await.uses, 2);
    assert_eq!(store.members(s.id).await.unwrap().len(), 3);
}

/// Registering with an invite counts a use and joins no server; a refused code or a
/// taken name writes nothing.
pub async fn create_user_with_invite_is_atomic(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    store
        .create_invite(
            &invite_def(s.id, "Reg00001", None, Some(2), Some(at(100)), at(2)),
            None,
        )
        .await
        .unwrap();

    let mut bob = new_user("bob");
    bob.created_at = at(10);
    let created = store
        .create_user_with_invite(&bob, "Reg00001")
        .await
        .unwrap()
        .expect("usable code");
    assert_eq!(created.username, "bob");
    assert_eq!(store.user(bob.id).await.unwrap(), Some(created));
    assert!(store.servers_of_user(bob.id).await.unwrap().is_empty());
    assert_eq!(stored(store, s.id, "Reg00001").await.uses, 1);

    // A taken name: Conflict, and the use is not spent.
    let mut again = new_user("bob");
    again.created_at = at(11);
    assert_conflict(store.create_user_with_invite(&again, "Reg00001").await);
    assert_eq!(stored(store, s.id, "Reg00001").await.uses, 1);

    let mut carol = new_user("carol");
    carol.created_at = at(12);
    assert_eq!(
        store
            .create_user_with_invite(&carol, "reg00001")
            .await
            .unwrap(),
        Err(InviteRefusal::Unknown)
    );
    assert_eq!(store.user(carol.id).await.unwrap(), None);
    carol.created_at = at(100);
    assert_eq!(
        store
            .create_user_with_invite(&carol, "Reg00001")
            .await
            .unwrap(),
        Err(InviteRefusal::Expired)
    );
    assert_eq!(store.user(carol.id).await.unwrap(), None);
    carol.created_at = at(13);
    assert!(
        store
            .create_user_with_invite(&carol, "Reg00001")
            .await
            .unwrap()
            .is_ok()
    );
    let mut dave = new_user("dave");
    dave.created_at = at(14);
    assert_eq!(
        store
            .create_user_with_invite(&dave, "Reg00001")
            .await
            .unwrap(),
        Err(InviteRefusal::Exhausted)
    );
    assert_eq!(store.user(dave.id).await.unwrap(), None);
    assert_eq!(stored(store, s.id, "Reg00001").await.uses, 2);
}
