//! Conformance cases: channels, roles, permission overrides, timeouts and the directory snapshot.

use concord_protocol::{
    Channel, ChannelId, ChannelOverride, ChannelType, OverrideId, ServerId, UserId,
};

use super::{
    assert_conflict, assert_not_found, at, channel, channel_def, dm_def, dm_message, message,
    message_def, role_def, server, server_ids, user, voice,
};
use crate::{ChannelPatch, Store};

// ---- channels ----

/// Positions are max + 1 per server (0 first); listing is by position then creation.
pub async fn create_channel_positions(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s1 = server(store, alice.id, at(1)).await;
    let s2 = server(store, alice.id, at(1)).await;

    let mut def = channel_def(s1.id, "general", ChannelType::Text, at(1));
    def.topic = Some("chat".to_owned());
    def.category = Some("main".to_owned());
    let c0 = store.create_channel(&def).await.unwrap();
    assert_eq!(
        c0,
        Channel {
            id: def.id,
            server_id: s1.id,
            name: "general".to_owned(),
            kind: ChannelType::Text,
            position: 0,
            category: Some("main".to_owned()),
            topic: Some("chat".to_owned()),
            created_at: at(1),
        }
    );
    let c1 = channel(store, s1.id, ChannelType::Voice, 2).await;
    let c2 = channel(store, s1.id, ChannelType::Text, 3).await;
    assert_eq!((c1.position, c2.position), (1, 2));
    assert_eq!(c1.kind, ChannelType::Voice);
    assert_eq!(
        channel(store, s2.id, ChannelType::Text, 4).await.position,
        0
    );
    assert_eq!(store.channel(c0.id).await.unwrap(), Some(c0.clone()));
    assert_eq!(store.channel(ChannelId::new()).await.unwrap(), None);

    let listed = store.channels(s1.id).await.unwrap();
    assert_eq!(listed, vec![c0.clone(), c1.clone(), c2.clone()]);

    // Duplicate positions sort by creation; the next channel goes after the max.
    let patch = ChannelPatch {
        position: Some(0),
        ..ChannelPatch::default()
    };
    store
        .update_channel(c2.id, &patch, None)
        .await
        .unwrap()
        .unwrap();
    let order: Vec<_> = store
        .channels(s1.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(order, vec![c0.id, c2.id, c1.id]);
    assert_eq!(
        channel(store, s1.id, ChannelType::Text, 5).await.position,
        2
    );
}

/// A second channel with the same id conflicts; an unknown server is `NotFound`.
pub async fn create_channel_conflict_and_missing_server(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let def = channel_def(s.id, "general", ChannelType::Text, at(1));
    store.create_channel(&def).await.unwrap();
    assert_conflict(store.create_channel(&def).await);
    let orphan = channel_def(ServerId::new(), "orphan", ChannelType::Text, at(1));
    assert_not_found(store.create_channel(&orphan).await);
}

/// `update_channel` patches the given fields; `None` when missing.
pub async fn update_channel_patch(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    let c = channel(store, s.id, ChannelType::Voice, 1).await;
    let patch = ChannelPatch {
        name: Some("lounge".to_owned()),
        topic: Some("talk".to_owned()),
        category: Some("voice".to_owned()),
        position: Some(7),
    };
    let updated = store
        .update_channel(c.id, &patch, None)
        .await
        .unwrap()
        .unwrap();
    let expected = Channel {
        name: "lounge".to_owned(),
        topic: Some("talk".to_owned()),
        category: Some("voice".to_owned()),
        position: 7,
        ..c.clone()
    };
    assert_eq!(updated, expected);
    let updated = store
        .update_channel(c.id, &ChannelPatch::default(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated, expected);
    assert_eq!(store.channel(c.id).await.unwrap(), Some(expected));
    assert_eq!(
        store
            .update_channel(ChannelId::new(), &ChannelPatch::default(), None)
            .await
            .unwrap(),
        None
    );
}

/// Deleting a channel takes its messages, overrides and voice states.
pub async fn delete_channel_cascades(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let text = channel(store, s.id, ChannelType::Text, 1).await;
    let other = channel(store, s.id, ChannelType::Text, 2).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 3).await;
    let root = message(store, text.id, alice.id, 1).await;
    let mut reply = message_def(text.id, bob.id, "re", at(2));
    reply.thread_id = Some(root.id);
    store.create_message(&reply).await.unwrap();
    let kept = message(store, other.id, alice.id, 3).await;
    store
        .put_override(&ChannelOverride {
            id: OverrideId::new(),
            channel_id: text.id,
            role_id: None,
            user_id: Some(bob.id),
            allow: 1,
            deny: 2,
        })
        .await
        .unwrap();
    store
        .put_voice_state(&voice(bob.id, lounge.id, at(4)))
        .await
        .unwrap();

    assert!(store.delete_channel(text.id, None).await.unwrap());
    assert!(!store.delete_channel(text.id, None).await.unwrap());
    assert_eq!(store.channel(text.id).await.unwrap(), None);
    assert_eq!(store.message(root.id).await.unwrap(), None);
    assert_eq!(store.message(reply.id).await.unwrap(), None);
    assert!(store.messages(text.id, None, 50).await.unwrap().is_empty());
    assert!(
        store
            .overrides_of_servers(&[s.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.message(kept.id).await.unwrap(), Some(kept));

    assert!(store.delete_channel(lounge.id, None).await.unwrap());
    assert_eq!(store.voice_state(bob.id).await.unwrap(), None);
    assert!(
        store
            .voice_participants(lounge.id)
            .await
            .unwrap()
            .is_empty()
    );
    let ids: Vec<_> = store
        .channels(s.id)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![other.id]);
}

/// Deleting a server takes its channels, messages, members, roles, overrides, voice
/// states and timeouts; users stay.
pub async fn delete_server_cascades(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let keep = server(store, bob.id, at(2)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let role = role_def(s.id, "mod", 1);
    store.create_role(&role).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();
    let text = channel(store, s.id, ChannelType::Text, 1).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 2).await;
    let msg = message(store, text.id, bob.id, 3).await;
    store
        .put_override(&ChannelOverride {
            id: OverrideId::new(),
            channel_id: text.id,
            role_id: Some(role.id),
            user_id: None,
            allow: 1,
            deny: 0,
        })
        .await
        .unwrap();
    store
        .put_voice_state(&voice(bob.id, lounge.id, at(4)))
        .await
        .unwrap();
    store
        .set_timeout(s.id, bob.id, at(100), Some(alice.id), at(4))
        .await
        .unwrap();

    // No custom emojis went with it (emojis.rs covers those).
    assert_eq!(
        store.delete_server(s.id, None).await.unwrap(),
        Some(Vec::new())
    );
    assert!(store.delete_server(s.id, None).await.unwrap().is_none());
    assert_eq!(store.server(s.id).await.unwrap(), None);
    assert!(store.servers_of_user(alice.id).await.unwrap().is_empty());
    assert_eq!(
        server_ids(&store.servers_of_user(bob.id).await.unwrap()),
        vec![keep.id]
    );
    assert!(store.members(s.id).await.unwrap().is_empty());
    assert!(store.channels(s.id).await.unwrap().is_empty());
    assert_eq!(store.channel(text.id).await.unwrap(), None);
    assert_eq!(store.message(msg.id).await.unwrap(), None);
    assert!(store.roles_of_servers(&[s.id]).await.unwrap().is_empty());
    assert!(
        store
            .overrides_of_servers(&[s.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.voice_state(bob.id).await.unwrap(), None);

    let snapshot = store.directory_snapshot(at(0)).await.unwrap();
    assert_eq!(snapshot.servers, vec![(keep.id, bob.id)]);
    assert_eq!(snapshot.members, vec![(keep.id, bob.id)]);
    assert!(snapshot.roles.is_empty());
    assert!(snapshot.member_roles.is_empty());
    assert!(snapshot.channels.is_empty());
    assert!(snapshot.overrides.is_empty());
    assert!(snapshot.timeouts.is_empty());
    assert!(store.user(alice.id).await.unwrap().is_some());
    assert!(store.user(bob.id).await.unwrap().is_some());
}

// ---- roles, overrides, timeouts ----

/// Roles insert once, assign idempotently and list by server, position DESC.
pub async fn roles_and_assignment(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s1 = server(store, alice.id, at(1)).await;
    let s2 = server(store, alice.id, at(2)).await;
    let r1 = role_def(s1.id, "r1", 1);
    let r2 = role_def(s1.id, "r2", 3);
    let r3 = role_def(s2.id, "r3", 2);
    for r in [&r1, &r2, &r3] {
        store.create_role(r).await.unwrap();
    }
    assert_conflict(store.create_role(&r1).await);
    assert_not_found(store.create_role(&role_def(ServerId::new(), "x", 1)).await);

    store.add_member(s1.id, bob.id, at(3)).await.unwrap();
    assert!(store.assign_role(s1.id, bob.id, r1.id).await.unwrap());
    assert!(!store.assign_role(s1.id, bob.id, r1.id).await.unwrap());
    assert!(store.assign_role(s1.id, bob.id, r2.id).await.unwrap());

    assert_eq!(
        store.roles_of_servers(&[s1.id]).await.unwrap(),
        vec![r2.clone(), r1.clone()]
    );
    let both = store.roles_of_servers(&[s2.id, s1.id]).await.unwrap();
    assert_eq!(both.len(), 3);
    let of_s1: Vec<_> = both
        .iter()
        .filter(|r| r.server_id == s1.id)
        .cloned()
        .collect();
    assert_eq!(of_s1, vec![r2, r1]);
    assert!(both.contains(&r3));
    assert!(store.roles_of_servers(&[]).await.unwrap().is_empty());
    assert!(
        store
            .roles_of_servers(&[ServerId::new()])
            .await
            .unwrap()
            .is_empty()
    );
}

/// Overrides upsert by (channel, role) and (channel, user), keeping the first id.
pub async fn put_override_upserts(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(2)).await;
    let role = role_def(s.id, "mod", 1);
    store.create_role(&role).await.unwrap();
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let c_other = channel(store, other.id, ChannelType::Text, 1).await;

    let by_role = ChannelOverride {
        id: OverrideId::new(),
        channel_id: c.id,
        role_id: Some(role.id),
        user_id: None,
        allow: 1,
        deny: 2,
    };
    assert_eq!(store.put_override(&by_role).await.unwrap(), by_role);
    let again = ChannelOverride {
        id: OverrideId::new(),
        allow: 4,
        deny: 8,
        ..by_role.clone()
    };
    let by_role = ChannelOverride {
        allow: 4,
        deny: 8,
        ..by_role
    };
    assert_eq!(store.put_override(&again).await.unwrap(), by_role);

    let by_user = ChannelOverride {
        id: OverrideId::new(),
        channel_id: c.id,
        role_id: None,
        user_id: Some(bob.id),
        allow: 16,
        deny: 0,
    };
    assert_eq!(store.put_override(&by_user).await.unwrap(), by_user);
    let by_user = ChannelOverride {
        deny: 32,
        ..by_user
    };
    let again = ChannelOverride {
        id: OverrideId::new(),
        ..by_user.clone()
    };
    assert_eq!(store.put_override(&again).await.unwrap(), by_user);

    let elsewhere = ChannelOverride {
        id: OverrideId::new(),
        channel_id: c_other.id,
        role_id: None,
        user_id: Some(bob.id),
        allow: 1,
        deny: 0,
    };
    store.put_override(&elsewhere).await.unwrap();

    let mut found = store.overrides_of_servers(&[s.id]).await.unwrap();
    found.sort_by_key(|o| o.id);
    let mut expected = vec![by_role, by_user];
    expected.sort_by_key(|o| o.id);
    assert_eq!(found, expected);
    assert_eq!(
        store
            .overrides_of_servers(&[s.id, other.id])
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(store.overrides_of_servers(&[]).await.unwrap().is_empty());
}

/// The snapshot holds every server, member, role, assignment, channel and override,
/// and the timeouts still live at `now` (one per member, replaced on re-set).
pub async fn timeouts_and_directory_snapshot(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();
    let role = role_def(s.id, "mod", 3);
    store.create_role(&role).await.unwrap();
    store.assign_role(s.id, bob.id, role.id).await.unwrap();
    let text = channel(store, s.id, ChannelType::Text, 1).await;
    let lounge = channel(store, s.id, ChannelType::Voice, 2).await;
    let ov = ChannelOverride {
        id: OverrideId::new(),
        channel_id: lounge.id,
        role_id: Some(role.id),
        user_id: None,
        allow: 32,
        deny: 0,
    };
    store.put_override(&ov).await.unwrap();
    store
        .set_timeout(s.id, bob.id, at(100), Some(alice.id), at(0))
        .await
        .unwrap();

    let snapshot = store.directory_snapshot(at(50)).await.unwrap();
    assert_eq!(snapshot.servers, vec![(s.id, alice.id)]);
    let mut members = snapshot.members.clone();
    members.sort();
    let mut expected = vec![(s.id, alice.id), (s.id, bob.id)];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(snapshot.roles, vec![(role.id, s.id, role.permissions, 3)]);
    assert_eq!(snapshot.member_roles, vec![(s.id, bob.id, role.id)]);
    let mut channels = snapshot.channels.clone();
    channels.sort_by_key(|c| c.0);
    let mut expected = vec![
        (text.id, s.id, ChannelType::Text),
        (lounge.id, s.id, ChannelType::Voice),
    ];
    expected.sort_by_key(|c| c.0);
    assert_eq!(channels, expected);
    assert_eq!(snapshot.overrides, vec![ov]);
    assert_eq!(snapshot.timeouts, vec![(s.id, bob.id, at(100))]);

    // Expired at `now` (expires_at <= now) is not live.
    assert!(
        store
            .directory_snapshot(at(100))
            .await
            .unwrap()
            .timeouts
            .is_empty()
    );

    // Re-setting replaces.
    store
        .set_timeout(s.id, bob.id, at(200), None, at(150))
        .await
        .unwrap();
    let snapshot = store.directory_snapshot(at(150)).await.unwrap();
    assert_eq!(snapshot.timeouts, vec![(s.id, bob.id, at(200))]);
}

/// `ready_state` is exactly the six READY reads, for a user with servers, roles,
/// overrides, DMs, unread and mention counts, and all empty for a user with nothing.
pub async fn ready_state_matches_the_single_reads(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let loner = user(store, "loner").await;
    let mine = server(store, alice.id, at(1)).await;
    let theirs = server(store, bob.id, at(2)).await;
    store.add_member(theirs.id, alice.id, at(3)).await.unwrap();
    store.add_member(mine.id, bob.id, at(3)).await.unwrap();
    let text = channel(store, mine.id, ChannelType::Text, 1).await;
    let other = channel(store, theirs.id, ChannelType::Text, 1).await;
    store
        .create_role(&role_def(mine.id, "mods", 1))
        .await
        .unwrap();
    store
        .put_override(&ChannelOverride {
            id: OverrideId::new(),
            channel_id: other.id,
            role_id: None,
            user_id: Some(alice.id),
            allow: 1,
            deny: 0,
        })
        .await
        .unwrap();
    let (dm, _) = store
        .open_dm_channel(&dm_def(alice.id, bob.id, at(4)))
        .await
        .unwrap();
    store.ack_channel(alice.id, text.id, at(5)).await.unwrap();
    store.ack_dm(alice.id, dm.id, at(5)).await.unwrap();
    let mut mention = message_def(text.id, bob.id, "@everyone", at(6));
    mention.mention_everyone = true;
    store.create_message(&mention).await.unwrap();
    store
        .create_dm_message(&dm_message(dm.id, bob.id, at(7)), None)
        .await
        .unwrap();

    let state = store.ready_state(alice.id).await.unwrap().unwrap();
    assert_eq!(
        Some(state.user.clone()),
        store.user(alice.id).await.unwrap()
    );
    let ids = server_ids(&state.servers);
    assert_eq!(ids, vec![mine.id, theirs.id], "oldest first");
    assert_eq!(
        state.servers,
        store.servers_of_user(alice.id).await.unwrap()
    );
    assert_eq!(
        state.dm_channels,
        store.dm_channels_of_user(alice.id).await.unwrap()
    );
    assert_eq!(
        state.unread_counts,
        store.unread_counts(alice.id).await.unwrap()
    );
    assert_eq!(state.unread_counts.len(), 2, "the channel and the DM");
    assert_eq!(
        state.mention_counts,
        store.mention_counts(alice.id).await.unwrap()
    );
    assert_eq!(state.mention_counts.len(), 1);
    assert_eq!(state.roles, store.roles_of_servers(&ids).await.unwrap());
    assert!(state.roles.iter().any(|r| r.name == "mods"));
    assert_eq!(
        state.overrides,
        store.overrides_of_servers(&ids).await.unwrap()
    );
    assert_eq!(state.overrides.len(), 1);

    let empty = store.ready_state(loner.id).await.unwrap().unwrap();
    assert_eq!(empty.user.id, loner.id);
    assert!(empty.servers.is_empty() && empty.dm_channels.is_empty());
    assert!(empty.unread_counts.is_empty() && empty.mention_counts.is_empty());
    assert!(empty.roles.is_empty() && empty.overrides.is_empty());
    assert!(store.ready_state(UserId::new()).await.unwrap().is_none());
}
