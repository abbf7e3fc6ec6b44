//! Conformance cases: servers and their members.

use concord_protocol::{MemberRoleInfo, Role, Server, ServerDto, ServerId, UserId};

use super::{
    assert_conflict, assert_not_found, at, role_def, server, server_def, server_ids, user,
};
use crate::{ServerPatch, Store};

/// The owner is the sole member, joined at creation; the DTO counts members live.
pub async fn create_server_makes_owner_member(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let mut def = server_def(alice.id, "home", at(1), true);
    def.icon_url = Some("https://example.com/i.png".to_owned());
    def.require_invite = true;
    store.create_server(&def).await.unwrap();
    let dto = ServerDto {
        server: def.clone(),
        member_count: 1,
    };
    assert_eq!(store.server(def.id).await.unwrap(), Some(dto.clone()));
    let members = store.members(def.id).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user, alice);
    assert_eq!(members[0].joined_at, at(1));
    assert!(members[0].roles.is_empty());
    assert_eq!(store.servers_of_user(alice.id).await.unwrap(), vec![dto]);
    assert!(store.servers_of_user(bob.id).await.unwrap().is_empty());
}

/// A second server with the same id conflicts; an unknown owner is `NotFound`.
pub async fn create_server_conflict_and_missing_owner(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let def = server(store, alice.id, at(1)).await;
    assert_conflict(store.create_server(&def).await);
    let orphan = server_def(UserId::new(), "orphan", at(2), false);
    assert_not_found(store.create_server(&orphan).await);
    assert_eq!(store.server(orphan.id).await.unwrap(), None);
}

/// Lookups of an unknown server give `None` / `false` / `[]`.
pub async fn missing_server_lookups(store: &dyn Store) {
    let nobody = ServerId::new();
    assert_eq!(store.server(nobody).await.unwrap(), None);
    assert_eq!(
        store
            .update_server(nobody, &ServerPatch::default(), at(1), None)
            .await
            .unwrap(),
        None
    );
    assert!(store.delete_server(nobody, None).await.unwrap().is_none());
    assert!(store.members(nobody).await.unwrap().is_empty());
    assert!(store.channels(nobody).await.unwrap().is_empty());
}

/// A user's servers, oldest server first (not by join time).
pub async fn servers_of_user_oldest_first(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s2 = server(store, alice.id, at(2)).await;
    let s1 = server(store, alice.id, at(1)).await;
    let s0 = server(store, bob.id, at(0)).await;
    store.add_member(s0.id, alice.id, at(5)).await.unwrap();
    let mine = store.servers_of_user(alice.id).await.unwrap();
    assert_eq!(server_ids(&mine), vec![s0.id, s1.id, s2.id]);
    assert_eq!(mine[0].member_count, 2);
    assert_eq!(mine[1].member_count, 1);
}

/// Public servers only, by member count DESC then newest first, limited.
pub async fn public_servers_order_and_limit(store: &dyn Store) {
    let users = [
        user(store, "u0").await,
        user(store, "u1").await,
        user(store, "u2").await,
    ];
    let owner = users[0].id;
    let p1 = server_def(owner, "p1", at(1), true);
    let p2 = server_def(owner, "p2", at(2), true);
    let p3 = server_def(owner, "p3", at(0), true);
    let mut p4 = server_def(owner, "p4", at(4), true);
    p4.require_invite = true;
    let private = server_def(owner, "private", at(3), false);
    for s in [&p1, &p2, &p3, &p4, &private] {
        store.create_server(s).await.unwrap();
    }
    for u in &users[1..] {
        store.add_member(p3.id, u.id, at(5)).await.unwrap();
        store.add_member(private.id, u.id, at(5)).await.unwrap();
    }
    store.add_member(p4.id, users[1].id, at(5)).await.unwrap();

    let all = store.public_servers(50).await.unwrap();
    assert_eq!(server_ids(&all), vec![p3.id, p4.id, p2.id, p1.id]);
    assert_eq!(
        all.iter().map(|s| s.member_count).collect::<Vec<_>>(),
        vec![3, 2, 1, 1]
    );
    assert_eq!(
        server_ids(&store.public_servers(2).await.unwrap()),
        vec![p3.id, p4.id]
    );
    assert!(store.public_servers(0).await.unwrap().is_empty());
}

/// `update_server` patches the given fields, sets `updated_at`, counts members live.
pub async fn update_server_patch(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let def = server(store, alice.id, at(1)).await;
    store.add_member(def.id, bob.id, at(2)).await.unwrap();

    let patch = ServerPatch {
        name: Some("renamed".to_owned()),
        ..ServerPatch::default()
    };
    let updated = store
        .update_server(def.id, &patch, at(9), None)
        .await
        .unwrap()
        .unwrap();
    let expected = ServerDto {
        server: Server {
            name: "renamed".to_owned(),
            updated_at: at(9),
            ..def.clone()
        },
        member_count: 2,
    };
    assert_eq!(updated, expected);
    assert_eq!(store.server(def.id).await.unwrap(), Some(expected));

    let patch = ServerPatch {
        name: None,
        icon_url: Some("https://example.com/x.png".to_owned()),
        is_public: Some(true),
        require_invite: Some(true),
    };
    let updated = store
        .update_server(def.id, &patch, at(10), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.server.name, "renamed");
    assert_eq!(updated.server.icon_url, patch.icon_url);
    assert!(updated.server.is_public);
    assert!(updated.server.require_invite);
    assert_eq!(updated.server.created_at, at(1));
    assert_eq!(updated.server.updated_at, at(10));
}

/// Adding a member twice conflicts; unknown server or user is `NotFound`.
pub async fn add_member_conflict_and_missing(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    assert_conflict(store.add_member(s.id, bob.id, at(3)).await);
    assert_conflict(store.add_member(s.id, alice.id, at(3)).await);
    assert_not_found(store.add_member(s.id, UserId::new(), at(3)).await);
    assert_not_found(store.add_member(ServerId::new(), bob.id, at(3)).await);
    assert_eq!(store.server(s.id).await.unwrap().unwrap().member_count, 2);
}

/// Members by `joined_at` ASC, each with their roles by position DESC.
pub async fn members_order_and_roles(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(3)).await.unwrap();
    store.add_member(s.id, carol.id, at(2)).await.unwrap();
    let low = role_def(s.id, "low", 1);
    let high = role_def(s.id, "high", 5);
    store.create_role(&low).await.unwrap();
    store.create_role(&high).await.unwrap();
    assert!(store.assign_role(s.id, bob.id, low.id).await.unwrap());
    assert!(store.assign_role(s.id, bob.id, high.id).await.unwrap());
    assert!(store.assign_role(s.id, carol.id, low.id).await.unwrap());

    let info = |r: &Role| MemberRoleInfo {
        id: r.id,
        name: r.name.clone(),
        color: r.color.clone(),
        position: r.position,
    };
    let members = store.members(s.id).await.unwrap();
    let summary: Vec<_> = members
        .iter()
        .map(|m| (m.user.id, m.joined_at, m.roles.clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (alice.id, at(1), vec![]),
            (carol.id, at(2), vec![info(&low)]),
            (bob.id, at(3), vec![info(&high), info(&low)]),
        ]
    );
    assert_eq!(members[2].user, bob);
}

/// Removing a member drops their role assignments; `false` when not a member.
pub async fn remove_member_drops_roles(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let role = role_def(s.id, "mod", 2);
    store.create_role(&role).await.unwrap();
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();

    assert!(store.remove_member(s.id, bob.id, None).await.unwrap());
    assert!(!store.remove_member(s.id, bob.id, None).await.unwrap());
    assert!(
        !store
            .remove_member(ServerId::new(), alice.id, None)
            .await
            .unwrap()
    );
    let members = store.members(s.id).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.user.id).collect::<Vec<_>>(),
        vec![alice.id]
    );
    assert_eq!(store.server(s.id).await.unwrap().unwrap().member_count, 1);
    let snapshot = store.directory_snapshot(at(0)).await.unwrap();
    assert!(snapshot.member_roles.is_empty());
    assert!(!snapshot.members.contains(&(s.id, bob.id)));

    // Rejoining does not bring the old roles back.
    store.add_member(s.id, bob.id, at(3)).await.unwrap();
    let members = store.members(s.id).await.unwrap();
    assert!(members.iter().all(|m| m.roles.is_empty()));
    assert_eq!(store.server(s.id).await.unwrap().unwrap().member_count, 2);
}

/// Nobody is banned while no ban exists.
pub async fn is_banned_without_ban(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    assert!(!store.is_banned(s.id, alice.id).await.unwrap());
    assert!(
        !store
            .is_banned(ServerId::new(), UserId::new())
            .await
            .unwrap()
    );
}

/// Exact, case-sensitive names of current members only; each id once.
pub async fn member_ids_by_usernames_exact(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let _carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let names: Vec<String> = ["bob", "carol", "Alice", "alice", "nobody", "bob"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut found = store.member_ids_by_usernames(s.id, &names).await.unwrap();
    found.sort();
    let mut expected = vec![alice.id, bob.id];
    expected.sort();
    assert_eq!(found, expected);
    assert!(
        store
            .member_ids_by_usernames(s.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
}
