//! Conformance cases: roles, role assignments and channel overrides as the permissions
//! routes change them.

use concord_protocol::{ChannelOverride, ChannelType, OverrideId, Role, RoleId, UserId};

use super::{assert_not_found, at, channel, role_def, server, user};
use crate::{RolePatch, Store};

/// `role` reads one role; `update_role` patches the given fields, says whether anything
/// changed, and answers `None` for an unknown role.
pub async fn role_lookup_and_update(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let role = role_def(s.id, "mods", 2);
    store.create_role(&role).await.unwrap();
    assert_eq!(store.role(role.id).await.unwrap(), Some(role.clone()));
    assert_eq!(store.role(RoleId::new()).await.unwrap(), None);

    let patch = RolePatch {
        name: Some("moderators".to_owned()),
        permissions: Some(4096),
        color: Some("#ff0000".to_owned()),
        position: Some(7),
    };
    let expected = Role {
        name: "moderators".to_owned(),
        permissions: 4096,
        color: Some("#ff0000".to_owned()),
        position: 7,
        ..role.clone()
    };
    assert_eq!(
        store.update_role(role.id, &patch, None).await.unwrap(),
        Some((expected.clone(), true))
    );
    assert_eq!(store.role(role.id).await.unwrap(), Some(expected.clone()));

    // The same values again, or nothing at all: no change.
    assert_eq!(
        store.update_role(role.id, &patch, None).await.unwrap(),
        Some((expected.clone(), false))
    );
    assert_eq!(
        store
            .update_role(role.id, &RolePatch::default(), None)
            .await
            .unwrap(),
        Some((expected.clone(), false))
    );

    // One field at a time; the others stay.
    let renamed = store
        .update_role(
            role.id,
            &RolePatch {
                name: Some("staff".to_owned()),
                ..RolePatch::default()
            },
            None,
        )
        .await
        .unwrap();
    let expected = Role {
        name: "staff".to_owned(),
        ..expected
    };
    assert_eq!(renamed, Some((expected.clone(), true)));
    let moved = store
        .update_role(
            role.id,
            &RolePatch {
                position: Some(-3),
                ..RolePatch::default()
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        moved,
        Some((
            Role {
                position: -3,
                ..expected
            },
            true
        ))
    );

    assert_eq!(
        store
            .update_role(RoleId::new(), &RolePatch::default(), None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .update_role(RoleId::new(), &patch, None)
            .await
            .unwrap(),
        None
    );
}

/// Deleting a role takes its assignments and the overrides that target it, nothing
/// else; a second delete (or an unknown role) is false.
pub async fn delete_role_cascades(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let gone = role_def(s.id, "gone", 1);
    let kept = role_def(s.id, "kept", 2);
    store.create_role(&gone).await.unwrap();
    store.create_role(&kept).await.unwrap();
    store.assign_role(s.id, bob.id, gone.id).await.unwrap();
    store.assign_role(s.id, bob.id, kept.id).await.unwrap();
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let on_gone = override_for_role(c.id, gone.id, 1, 0);
    let on_kept = override_for_role(c.id, kept.id, 0, 1);
    let on_bob = override_for_user(c.id, bob.id, 2, 0);
    for ov in [&on_gone, &on_kept, &on_bob] {
        store.put_override(ov).await.unwrap();
    }

    assert!(store.delete_role(gone.id, None).await.unwrap());
    assert!(!store.delete_role(gone.id, None).await.unwrap());
    assert!(!store.delete_role(RoleId::new(), None).await.unwrap());
    assert_eq!(store.role(gone.id).await.unwrap(), None);
    assert_eq!(
        store.roles_of_servers(&[s.id]).await.unwrap(),
        vec![kept.clone()]
    );
    assert_eq!(
        store.overrides_of_channel(c.id).await.unwrap(),
        vec![on_kept, on_bob]
    );
    let members = store.members(s.id).await.unwrap();
    let bob_roles: Vec<RoleId> = members
        .iter()
        .find(|m| m.user.id == bob.id)
        .expect("bob")
        .roles
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(bob_roles, vec![kept.id]);
    let snapshot = store.directory_snapshot(at(0)).await.unwrap();
    assert_eq!(snapshot.member_roles, vec![(s.id, bob.id, kept.id)]);
    assert_eq!(snapshot.roles.len(), 1);
}

/// `unassign_role` removes one assignment once; a role never assigned, or a stranger,
/// is false and changes nothing.
pub async fn unassign_role_once(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    store.add_member(s.id, carol.id, at(3)).await.unwrap();
    let role = role_def(s.id, "mods", 1);
    let other = role_def(s.id, "other", 2);
    store.create_role(&role).await.unwrap();
    store.create_role(&other).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();
    store.assign_role(s.id, carol.id, role.id).await.unwrap();

    assert!(
        store
            .unassign_role(s.id, bob.id, role.id, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .unassign_role(s.id, bob.id, role.id, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .unassign_role(s.id, bob.id, other.id, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .unassign_role(s.id, UserId::new(), role.id, None)
            .await
            .unwrap()
    );
    assert!(
        !store
            .unassign_role(s.id, bob.id, RoleId::new(), None)
            .await
            .unwrap()
    );
    let snapshot = store.directory_snapshot(at(0)).await.unwrap();
    assert_eq!(snapshot.member_roles, vec![(s.id, carol.id, role.id)]);
    // Assigning again works as the first time.
    assert!(store.assign_role(s.id, bob.id, role.id).await.unwrap());
}

/// A channel's overrides: role overrides first, then user overrides, each in creation
/// order (kept across upserts), and only that channel's.
pub async fn overrides_of_channel_order(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let carol = user(store, "carol").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let elsewhere = channel(store, s.id, ChannelType::Text, 2).await;
    let r1 = role_def(s.id, "r1", 1);
    let r2 = role_def(s.id, "r2", 2);
    store.create_role(&r1).await.unwrap();
    store.create_role(&r2).await.unwrap();
    assert!(store.overrides_of_channel(c.id).await.unwrap().is_empty());

    // Created interleaved: user, role, user, role.
    let u1 = override_for_user(c.id, bob.id, 1, 0);
    let o1 = override_for_role(c.id, r2.id, 2, 0);
    let u2 = override_for_user(c.id, carol.id, 4, 0);
    let o2 = override_for_role(c.id, r1.id, 8, 0);
    for ov in [&u1, &o1, &u2, &o2] {
        store.put_override(ov).await.unwrap();
    }
    store
        .put_override(&override_for_user(elsewhere.id, bob.id, 1, 0))
        .await
        .unwrap();
    // An upsert of the first one keeps its place.
    let u1 = ChannelOverride { deny: 16, ..u1 };
    store
        .put_override(&ChannelOverride {
            id: OverrideId::new(),
            ..u1.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.overrides_of_channel(c.id).await.unwrap(),
        vec![o1, o2, u1, u2]
    );
    assert_eq!(
        store
            .overrides_of_channel(elsewhere.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// `set_override` upserts like `put_override` and says whether anything changed; a
/// target that does not exist is `NotFound` and leaves nothing behind.
pub async fn set_override_reports_changes(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let role = role_def(s.id, "mods", 1);
    store.create_role(&role).await.unwrap();

    let by_role = override_for_role(c.id, role.id, 1, 2);
    assert_eq!(
        store.set_override(&by_role, None).await.unwrap(),
        (by_role.clone(), true)
    );
    // Same target and bits under a new id: unchanged, the stored row answers.
    let same = ChannelOverride {
        id: OverrideId::new(),
        ..by_role.clone()
    };
    assert_eq!(
        store.set_override(&same, None).await.unwrap(),
        (by_role.clone(), false)
    );
    let changed = ChannelOverride {
        id: OverrideId::new(),
        allow: 4,
        ..by_role.clone()
    };
    let expected = ChannelOverride {
        allow: 4,
        ..by_role.clone()
    };
    assert_eq!(
        store.set_override(&changed, None).await.unwrap(),
        (expected.clone(), true)
    );

    // A user target with the same bits is another override.
    let by_user = override_for_user(c.id, bob.id, 4, 2);
    assert_eq!(
        store.set_override(&by_user, None).await.unwrap(),
        (by_user.clone(), true)
    );
    assert_eq!(
        store
            .set_override(
                &ChannelOverride {
                    id: OverrideId::new(),
                    ..by_user.clone()
                },
                None
            )
            .await
            .unwrap(),
        (by_user.clone(), false)
    );

    assert_not_found(
        store
            .set_override(&override_for_role(c.id, RoleId::new(), 1, 0), None)
            .await,
    );
    assert_not_found(
        store
            .set_override(&override_for_user(c.id, UserId::new(), 1, 0), None)
            .await,
    );
    assert_not_found(
        store
            .set_override(
                &override_for_user(concord_protocol::ChannelId::new(), bob.id, 1, 0),
                None,
            )
            .await,
    );
    assert_eq!(
        store.overrides_of_channel(c.id).await.unwrap(),
        vec![expected, by_user]
    );
}

/// `delete_override` deletes an override of the given channel only, once.
pub async fn delete_override_of_channel(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let other = channel(store, s.id, ChannelType::Text, 2).await;
    let ov = override_for_user(c.id, bob.id, 1, 0);
    let kept = override_for_user(other.id, bob.id, 1, 0);
    store.put_override(&ov).await.unwrap();
    store.put_override(&kept).await.unwrap();

    assert!(!store.delete_override(other.id, ov.id, None).await.unwrap());
    assert!(
        !store
            .delete_override(c.id, OverrideId::new(), None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.overrides_of_channel(c.id).await.unwrap(),
        vec![ov.clone()]
    );
    assert!(store.delete_override(c.id, ov.id, None).await.unwrap());
    assert!(!store.delete_override(c.id, ov.id, None).await.unwrap());
    assert!(store.overrides_of_channel(c.id).await.unwrap().is_empty());
    assert_eq!(
        store.overrides_of_channel(other.id).await.unwrap(),
        vec![kept]
    );
}

fn override_for_role(
    channel: concord_protocol::ChannelId,
    role: RoleId,
    allow: i64,
    deny: i64,
) -> ChannelOverride {
    ChannelOverride {
        id: OverrideId::new(),
        channel_id: channel,
        role_id: Some(role),
        user_id: None,
        allow,
        deny,
    }
}

fn override_for_user(
    channel: concord_protocol::ChannelId,
    user: UserId,
    allow: i64,
    deny: i64,
) -> ChannelOverride {
    ChannelOverride {
        id: OverrideId::new(),
        channel_id: channel,
        role_id: None,
        user_id: Some(user),
        allow,
        deny,
    }
}
