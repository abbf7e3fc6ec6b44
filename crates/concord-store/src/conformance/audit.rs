//! Conformance cases: the audit log (issue 18 part C).

use concord_protocol::{Ban, ChannelOverride, ChannelType, OverrideId, ServerId, UserId};
use uuid::Uuid;

use super::{assert_not_found, at, channel_def, role_def, server, user};
use crate::{AuditLogFilter, AuditRecord, Store};

fn record(server: ServerId, actor: UserId, action: &str, n: i64) -> AuditRecord {
    AuditRecord {
        id: Uuid::now_v7(),
        server_id: Some(server),
        actor_id: Some(actor),
        action: action.to_owned(),
        target_type: Some("user".to_owned()),
        target_id: Some(Uuid::nil()),
        details: r#"{"reason":null}"#.to_owned(),
        created_at: at(n),
    }
}

fn everything(limit: i64) -> AuditLogFilter {
    AuditLogFilter {
        action: None,
        actor_id: None,
        target_type: None,
        before: None,
        before_id: None,
        limit,
    }
}

/// A record is written with an action that takes effect and only then: not for an
/// action that finds nothing to do, not for one that fails. An override record gets
/// the stored row's id; a server's own delete record loses its `server_id`.
pub async fn audit_rows_go_with_their_actions(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, bob.id, at(2)).await.unwrap();

    let ban = record(s.id, alice.id, "member_ban", 3);
    let banned = Ban {
        user_id: bob.id,
        server_id: s.id,
        banned_by: Some(alice.id),
        reason: None,
        created_at: at(3),
    };
    assert!(store.ban(&banned, Some(&ban)).await.unwrap());
    // A failed action (the user does not exist) writes nothing.
    let failed = record(s.id, alice.id, "member_ban", 4);
    let ghost = Ban {
        user_id: UserId::new(),
        ..banned.clone()
    };
    assert_not_found(store.ban(&ghost, Some(&failed)).await);
    // Nothing to do: nothing recorded.
    let noop = record(s.id, alice.id, "member_timeout_remove", 5);
    assert_eq!(
        store
            .remove_timeout(s.id, bob.id, Some(&noop))
            .await
            .unwrap(),
        None
    );
    assert!(!store.unban(s.id, alice.id, Some(&noop)).await.unwrap());

    let created = record(s.id, alice.id, "channel_create", 6);
    let channel = store
        .create_channel_audited(&channel_def(s.id, "c", ChannelType::Text, at(6)), &created)
        .await
        .unwrap();
    let role = role_def(s.id, "mods", 1);
    let role_made = record(s.id, alice.id, "role_create", 7);
    store.create_role_audited(&role, &role_made).await.unwrap();
    let first = ChannelOverride {
        id: OverrideId::new(),
        channel_id: channel.id,
        role_id: Some(role.id),
        user_id: None,
        allow: 0,
        deny: 1,
    };
    store.set_override(&first, None).await.unwrap();
    // An upsert of the same target keeps the first row's id: the record names it.
    let again = ChannelOverride {
        id: OverrideId::new(),
        deny: 2,
        ..first.clone()
    };
    let ov = AuditRecord {
        details: r#"{"override_id":null,"deny":2}"#.to_owned(),
        ..record(s.id, alice.id, "channel_override_update", 8)
    };
    store.set_override(&again, Some(&ov)).await.unwrap();

    let rows = store.audit_logs(s.id, &everything(100)).await.unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "channel_override_update",
            "role_create",
            "channel_create",
            "member_ban"
        ]
    );
    assert_eq!(rows[3], ban);
    assert_eq!(rows[2], created);
    let details = [rows[0].details.clone()];
    assert!(
        details[0].contains(&first.id.get().to_string()) && details[0].contains(r#""deny":2"#),
        "{}",
        details[0]
    );

    let gone = record(s.id, alice.id, "server_delete", 9);
    assert!(
        store
            .delete_server(s.id, Some(&gone))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .audit_logs(s.id, &everything(100))
            .await
            .unwrap()
            .is_empty(),
        "the delete's cascade took the server's rows' server_id"
    );
}

/// Pages newest first by (`created_at`, `id`), rows sharing a time included, with the
/// filters.
pub async fn audit_log_pages_and_filters(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, bob.id, at(1)).await;
    // Five rows at the same time, one later, one of another actor, one elsewhere.
    let mut written = Vec::new();
    for n in [5, 5, 5, 5, 5, 6] {
        written.push(record(s.id, alice.id, "channel_create", n));
    }
    written.push(AuditRecord {
        target_type: Some("role".to_owned()),
        ..record(s.id, bob.id, "role_create", 4)
    });
    for (i, row) in written.iter().enumerate() {
        let role = role_def(s.id, &format!("r{i}"), 1);
        store.create_role_audited(&role, row).await.unwrap();
    }
    store
        .create_role_audited(
            &role_def(other.id, "x", 1),
            &record(other.id, bob.id, "role_create", 9),
        )
        .await
        .unwrap();

    let all = store.audit_logs(s.id, &everything(100)).await.unwrap();
    assert_eq!(all.len(), 7);
    let mut expected = written.clone();
    expected.sort_by_key(|row| std::cmp::Reverse((row.created_at, row.id)));
    assert_eq!(all, expected);

    let mut seen = Vec::new();
    let mut filter = everything(2);
    loop {
        let page = store.audit_logs(s.id, &filter).await.unwrap();
        let Some(last) = page.last() else { break };
        filter.before = Some(last.created_at);
        filter.before_id = Some(last.id);
        seen.extend(page);
    }
    assert_eq!(seen, expected, "keyset pages skip and repeat nothing");

    let older = AuditLogFilter {
        before: Some(at(5)),
        ..everything(100)
    };
    assert_eq!(store.audit_logs(s.id, &older).await.unwrap().len(), 1);
    let by_bob = AuditLogFilter {
        actor_id: Some(bob.id),
        ..everything(100)
    };
    assert_eq!(
        store.audit_logs(s.id, &by_bob).await.unwrap(),
        [written[6].clone()]
    );
    let roles = AuditLogFilter {
        target_type: Some("role".to_owned()),
        action: Some("role_create".to_owned()),
        ..everything(100)
    };
    assert_eq!(store.audit_logs(s.id, &roles).await.unwrap().len(), 1);
    assert!(
        store
            .audit_logs(s.id, &everything(0))
            .await
            .unwrap()
            .is_empty()
    );
}
