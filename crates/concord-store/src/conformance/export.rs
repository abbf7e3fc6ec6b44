//! Conformance cases: the keyset reads of a server export (issue 18 part B).

use concord_protocol::{ChannelType, MessageId, UserId};

use super::{at, channel, dm_def, dm_message, message_def, new_user, server, sorted_ids, user};
use crate::{
    ExportCursor, ExportDmChannelRecord, ExportDmMessageRecord, ExportMemberRecord,
    ExportMessageRecord, NewUser, Store,
};

/// Reads every page of `limit` rows through `read`, checking that each page but the
/// last is full; returns all rows in order.
async fn all_pages<T, F, Fut>(limit: i64, cursor: fn(&T) -> ExportCursor, read: F) -> Vec<T>
where
    F: Fn(Option<ExportCursor>) -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    let mut out: Vec<T> = Vec::new();
    let mut after = None;
    loop {
        let page = read(after).await;
        let full = i64::try_from(page.len()).unwrap() == limit;
        assert!(
            i64::try_from(page.len()).unwrap() <= limit,
            "page over limit"
        );
        after = page.last().map(cursor);
        out.extend(page);
        if !full {
            return out;
        }
    }
}

/// Members come by (`joined_at`, user id), joins at the same time by id, with their
/// names; pages of any size read each member once; other servers' members and a
/// missing server give nothing.
pub async fn export_members_page_in_join_order(store: &dyn Store) {
    let owner = user(store, "owner").await;
    let s = server(store, owner.id, at(1)).await;
    let other = server(store, owner.id, at(1)).await;
    // Two joins at the same time, told apart by id.
    let ids = sorted_ids::<concord_protocol::marker::User>(2);
    let mut joined = vec![(owner.id, "owner".to_owned(), at(1))];
    for (id, name) in [(ids[1], "zed"), (ids[0], "amy")] {
        let made = store
            .create_user(&NewUser {
                id,
                ..new_user(name)
            })
            .await
            .unwrap();
        store.add_member(s.id, made.id, at(5)).await.unwrap();
    }
    let late = user(store, "late").await;
    store.add_member(s.id, late.id, at(3)).await.unwrap();
    let outsider = user(store, "outsider").await;
    store
        .add_member(other.id, outsider.id, at(2))
        .await
        .unwrap();
    joined.push((late.id, "late".to_owned(), at(3)));
    joined.push((ids[0], "amy".to_owned(), at(5)));
    joined.push((ids[1], "zed".to_owned(), at(5)));
    let want: Vec<ExportMemberRecord> = joined
        .into_iter()
        .map(|(user_id, username, joined_at)| ExportMemberRecord {
            user_id,
            username,
            joined_at,
        })
        .collect();

    assert_eq!(store.export_members(s.id, None, 500).await.unwrap(), want);
    for limit in [1, 2, 3] {
        let got = all_pages(limit, ExportMemberRecord::cursor, |after| async move {
            store
                .export_members(s.id, after.as_ref(), limit)
                .await
                .unwrap()
        })
        .await;
        assert_eq!(got, want, "pages of {limit}");
    }
    let after_last = want.last().unwrap().cursor();
    assert!(
        store
            .export_members(s.id, Some(&after_last), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .export_members(concord_protocol::ServerId::new(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Live messages of one channel, oldest first by (`created_at`, id): deleted ones are
/// left out, thread replies and replies are in, an edit shows as `edited_at`, and a
/// deleted author leaves both author fields null. Pages read each message once.
pub async fn export_messages_live_oldest_first(store: &dyn Store) {
    let root = store
        .create_user(&NewUser {
            admin_if_first: true,
            ..new_user("root")
        })
        .await
        .unwrap();
    let alice = user(store, "alice").await;
    let gone = user(store, "gone").await;
    let s = server(store, alice.id, at(1)).await;
    store.add_member(s.id, gone.id, at(1)).await.unwrap();
    let c = channel(store, s.id, ChannelType::Text, 1).await;
    let elsewhere = channel(store, s.id, ChannelType::Text, 1).await;

    let ids = sorted_ids::<concord_protocol::marker::Message>(6);
    let post = |id: MessageId, author: UserId, text: &str, n: i64| {
        let mut m = message_def(c.id, author, text, at(n));
        m.id = id;
        m
    };
    // Created out of id order; ids[1] and ids[2] share a time.
    let first = post(ids[3], alice.id, "first", 2);
    store.create_message(&first).await.unwrap();
    let tie_b = post(ids[2], gone.id, "tie b", 3);
    store.create_message(&tie_b).await.unwrap();
    let tie_a = post(ids[1], alice.id, "tie a", 3);
    store.create_message(&tie_a).await.unwrap();
    let deleted = post(ids[0], alice.id, "deleted", 4);
    store.create_message(&deleted).await.unwrap();
    assert!(store.delete_message(deleted.id).await.unwrap());
    let mut reply = post(ids[5], alice.id, "reply", 5);
    reply.reply_to = Some(first.id);
    store.create_message(&reply).await.unwrap();
    let mut in_thread = post(ids[4], alice.id, "in thread", 6);
    in_thread.thread_id = Some(first.id);
    store.create_message(&in_thread).await.unwrap();
    store
        .edit_message(first.id, "first, edited", &[], false, at(7))
        .await
        .unwrap()
        .expect("edited");
    store
        .create_message(&message_def(elsewhere.id, alice.id, "elsewhere", at(2)))
        .await
        .unwrap();
    assert!(
        store
            .delete_user_as_admin(root.id, gone.id)
            .await
            .unwrap()
            .is_ok()
    );

    let line = |m: &crate::NewMessage, author: Option<(UserId, &str)>| ExportMessageRecord {
        id: m.id,
        author_id: author.map(|(id, _)| id),
        author_username: author.map(|(_, name)| name.to_owned()),
        content: m.content.clone(),
        reply_to: m.reply_to,
        edited_at: None,
        created_at: m.created_at,
    };
    let by_alice = Some((alice.id, "alice"));
    let want = vec![
        ExportMessageRecord {
            content: "first, edited".to_owned(),
            edited_at: Some(at(7)),
            ..line(&first, by_alice)
        },
        line(&tie_a, by_alice),
        line(&tie_b, None),
        line(&reply, by_alice),
        line(&in_thread, by_alice),
    ];
    assert_eq!(store.export_messages(c.id, None, 500).await.unwrap(), want);
    for limit in [1, 2, 4] {
        let got = all_pages(limit, ExportMessageRecord::cursor, |after| async move {
            store
                .export_messages(c.id, after.as_ref(), limit)
                .await
                .unwrap()
        })
        .await;
        assert_eq!(got, want, "pages of {limit}");
    }
    assert!(
        store
            .export_messages(concord_protocol::ChannelId::new(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A user's DM channels, whichever side of the pair they are stored on, by
/// (`created_at`, id), each with the other participant; other users' channels are left
/// out. Their messages come oldest first by (`created_at`, id), a page at a time.
pub async fn export_dm_channels_and_messages(store: &dyn Store) {
    let ids = sorted_ids::<concord_protocol::marker::User>(4);
    let mut users = Vec::new();
    for (id, name) in ids.iter().zip(["a", "b", "c", "d"]) {
        let made = store
            .create_user(&NewUser {
                id: *id,
                ..new_user(name)
            })
            .await
            .unwrap();
        users.push(made);
    }
    // "b" is the second of the pair with "a" and the first with "c" and "d".
    let (b, a, c, d) = (&users[1], &users[0], &users[2], &users[3]);
    let (with_c, _) = store
        .open_dm_channel(&dm_def(b.id, c.id, at(1)))
        .await
        .unwrap();
    let (with_a, _) = store
        .open_dm_channel(&dm_def(a.id, b.id, at(2)))
        .await
        .unwrap();
    let (with_d, _) = store
        .open_dm_channel(&dm_def(d.id, b.id, at(3)))
        .await
        .unwrap();
    let (foreign, _) = store
        .open_dm_channel(&dm_def(a.id, c.id, at(1)))
        .await
        .unwrap();
    let row = |id, partner: &crate::UserRecord, n| ExportDmChannelRecord {
        id,
        partner_id: partner.id,
        partner_username: partner.username.clone(),
        created_at: at(n),
    };
    let want = vec![
        row(with_c.id, c, 1),
        row(with_a.id, a, 2),
        row(with_d.id, d, 3),
    ];
    assert_eq!(
        store.export_dm_channels(b.id, None, 500).await.unwrap(),
        want
    );
    for limit in [1, 2] {
        let got = all_pages(limit, ExportDmChannelRecord::cursor, |after| async move {
            store
                .export_dm_channels(b.id, after.as_ref(), limit)
                .await
                .unwrap()
        })
        .await;
        assert_eq!(got, want, "pages of {limit}");
    }
    assert!(
        store
            .export_dm_channels(UserId::new(), None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let message_ids = sorted_ids::<concord_protocol::marker::DirectMessage>(4);
    let mut sent = Vec::new();
    // Times 2, 1, 1, 3: the two at time 1 come by id.
    for (i, (id, n)) in message_ids.iter().zip([2, 1, 1, 3]).enumerate() {
        let author = if i % 2 == 0 { b } else { a };
        let mut m = dm_message(with_a.id, author.id, at(n));
        m.id = *id;
        m.content = format!("dm {i}");
        store.create_dm_message(&m, None).await.unwrap();
        sent.push((m, author.username.clone()));
    }
    store
        .create_dm_message(&dm_message(foreign.id, a.id, at(1)), None)
        .await
        .unwrap();
    let line = |i: usize| {
        let (m, name) = &sent[i];
        ExportDmMessageRecord {
            id: m.id,
            author_id: m.author_id,
            author_username: Some(name.clone()),
            content: m.content.clone(),
            created_at: m.created_at,
        }
    };
    let want = vec![line(1), line(2), line(0), line(3)];
    assert_eq!(
        store
            .export_dm_messages(with_a.id, None, 500)
            .await
            .unwrap(),
        want
    );
    for limit in [1, 3] {
        let got = all_pages(limit, ExportDmMessageRecord::cursor, |after| async move {
            store
                .export_dm_messages(with_a.id, after.as_ref(), limit)
                .await
                .unwrap()
        })
        .await;
        assert_eq!(got, want, "pages of {limit}");
    }
    assert!(
        store
            .export_dm_messages(with_c.id, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}
