//! Conformance cases: outbound webhooks (issue 18 part C).

use concord_protocol::{ServerId, Timestamp, UserId};
use uuid::Uuid;

use super::{assert_not_found, at, new_user, server, user};
use crate::NewUser;
use crate::{Store, WebhookPatch, WebhookRecord};

const LIMIT: i64 = 10;

fn webhook_def(
    server: ServerId,
    creator: UserId,
    name: &str,
    created_at: Timestamp,
) -> WebhookRecord {
    WebhookRecord {
        id: Uuid::now_v7(),
        server_id: server,
        created_by: creator,
        name: name.to_owned(),
        url: format!("https://hooks.example.org/{name}"),
        secret: "ab".repeat(32),
        event_types: vec!["message.created".to_owned(), "message.deleted".to_owned()],
        enabled: true,
        delivery_failures: 0,
        last_used_at: None,
        created_at,
        updated_at: created_at,
    }
}

/// Create, list (oldest first, per server), get (not through another server), update
/// (fields kept when absent, `updated_at` set), delete once; bookkeeping resets on
/// success, counts failures and leaves `updated_at`; rows go with their server and
/// with their creator.
pub async fn webhooks_create_list_update_delete(store: &dyn Store) {
    // The first user, made an instance admin (to delete bob below).
    let alice = store
        .create_user(&NewUser {
            admin_if_first: true,
            ..new_user("alice")
        })
        .await
        .unwrap();
    let bob = user(store, "bob").await;
    let s = server(store, alice.id, at(1)).await;
    let other = server(store, alice.id, at(1)).await;
    let second = webhook_def(s.id, alice.id, "second", at(3));
    let first = webhook_def(s.id, bob.id, "first", at(2));
    assert!(store.create_webhook(&second, LIMIT).await.unwrap());
    assert!(store.create_webhook(&first, LIMIT).await.unwrap());
    assert!(store.webhooks(other.id).await.unwrap().is_empty());
    assert_eq!(
        store.webhooks(s.id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(
        store.webhook(s.id, first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.webhook(other.id, first.id).await.unwrap(), None);
    assert_eq!(store.webhook(s.id, Uuid::now_v7()).await.unwrap(), None);

    // A missing server or creator is NotFound.
    assert_not_found(
        store
            .create_webhook(&webhook_def(ServerId::new(), alice.id, "x", at(4)), LIMIT)
            .await,
    );
    assert_not_found(
        store
            .create_webhook(&webhook_def(s.id, UserId::new(), "x", at(4)), LIMIT)
            .await,
    );

    let patch = WebhookPatch {
        name: Some("renamed".to_owned()),
        event_types: Some(vec!["message.updated".to_owned()]),
        enabled: Some(false),
        ..WebhookPatch::default()
    };
    let updated = store
        .update_webhook(s.id, first.id, &patch, at(10))
        .await
        .unwrap()
        .expect("updated");
    assert_eq!(
        updated,
        WebhookRecord {
            name: "renamed".to_owned(),
            event_types: vec!["message.updated".to_owned()],
            enabled: false,
            updated_at: at(10),
            ..first.clone()
        }
    );
    let touched = store
        .update_webhook(s.id, first.id, &WebhookPatch::default(), at(11))
        .await
        .unwrap()
        .expect("updated");
    assert_eq!(touched.updated_at, at(11));
    assert_eq!(touched.name, "renamed");
    assert_eq!(
        store
            .update_webhook(other.id, first.id, &patch, at(12))
            .await
            .unwrap(),
        None
    );

    store
        .record_webhook_delivery(second.id, false, at(20))
        .await
        .unwrap();
    store
        .record_webhook_delivery(second.id, false, at(21))
        .await
        .unwrap();
    let failing = store.webhook(s.id, second.id).await.unwrap().unwrap();
    assert_eq!((failing.delivery_failures, failing.last_used_at), (2, None));
    store
        .record_webhook_delivery(second.id, true, at(22))
        .await
        .unwrap();
    let healed = store.webhook(s.id, second.id).await.unwrap().unwrap();
    assert_eq!(
        (
            healed.delivery_failures,
            healed.last_used_at,
            healed.updated_at
        ),
        (0, Some(at(22)), second.updated_at)
    );
    // Bookkeeping for a webhook that is gone is no error.
    store
        .record_webhook_delivery(Uuid::now_v7(), true, at(23))
        .await
        .unwrap();

    assert!(!store.delete_webhook(other.id, first.id).await.unwrap());
    assert!(store.delete_webhook(s.id, first.id).await.unwrap());
    assert!(!store.delete_webhook(s.id, first.id).await.unwrap());
    assert_eq!(store.webhooks(s.id).await.unwrap(), vec![healed]);

    // With their creator's account and with their server.
    let bobs = webhook_def(s.id, bob.id, "bobs", at(30));
    assert!(store.create_webhook(&bobs, LIMIT).await.unwrap());
    let on_other = webhook_def(other.id, alice.id, "other", at(31));
    assert!(store.create_webhook(&on_other, LIMIT).await.unwrap());
    store
        .delete_user_as_admin(alice.id, bob.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(store.webhook(s.id, bobs.id).await.unwrap(), None);
    assert_eq!(store.webhooks(s.id).await.unwrap().len(), 1);
    store.delete_server(other.id, None).await.unwrap();
    assert_eq!(store.webhook(other.id, on_other.id).await.unwrap(), None);
}

/// The limit refuses the creation that would pass it (writing nothing), and holds
/// when creations race for the last slots.
pub async fn webhook_limit_holds_under_concurrency(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let s = server(store, alice.id, at(1)).await;
    for n in 0..LIMIT - 2 {
        let hook = webhook_def(s.id, alice.id, &format!("h{n}"), at(2 + n));
        assert!(store.create_webhook(&hook, LIMIT).await.unwrap());
    }
    let racers: Vec<_> = (0..8)
        .map(|n| webhook_def(s.id, alice.id, &format!("racer{n}"), at(100)))
        .collect();
    let outcomes =
        futures_util::future::join_all(racers.iter().map(|hook| store.create_webhook(hook, LIMIT)))
            .await;
    let created = outcomes.iter().filter(|o| matches!(o, Ok(true))).count();
    let refused = outcomes.iter().filter(|o| matches!(o, Ok(false))).count();
    assert_eq!((created, refused), (2, 6), "{outcomes:?}");
    assert_eq!(
        store.webhooks(s.id).await.unwrap().len(),
        usize::try_from(LIMIT).unwrap()
    );
    let late = webhook_def(s.id, alice.id, "late", at(200));
    assert!(!store.create_webhook(&late, LIMIT).await.unwrap());
    assert_eq!(store.webhook(s.id, late.id).await.unwrap(), None);
    // Another server has its own count.
    let other = server(store, alice.id, at(1)).await;
    assert!(
        store
            .create_webhook(&webhook_def(other.id, alice.id, "o", at(3)), LIMIT)
            .await
            .unwrap()
    );
}
