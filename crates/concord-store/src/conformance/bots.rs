//! Conformance cases: bots.

use concord_protocol::{Bot, BotId, ChannelId, ChannelType, MessageId, UserId};

use super::{
    assert_conflict, at, bot_def, bot_user, channel, dm_def, dm_message, message, server, user,
};
use crate::Store;

/// Bots: lookups by id, user and token (revoked included), creator listing oldest
/// first, updates, single revocation, token replacement.
pub async fn bot_lifecycle(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let helper_user = bot_user("helper-bot-0001");
    let helper = bot_def(&helper_user, Some(alice.id), "t1", at(2));
    store.create_bot(&helper_user, &helper).await.unwrap();
    let older_user = bot_user("older-bot-0002");
    let older = bot_def(&older_user, Some(alice.id), "t-older", at(1));
    store.create_bot(&older_user, &older).await.unwrap();

    let account = store.user(helper_user.id).await.unwrap().unwrap();
    assert!(account.is_bot);
    assert!(!account.is_admin);
    assert_eq!(account.password_hash, None);
    assert_eq!(
        store.bot(helper.bot.id).await.unwrap(),
        Some(helper.clone())
    );
    assert_eq!(
        store.bot_by_user(helper_user.id).await.unwrap(),
        Some(helper.clone())
    );
    assert_eq!(
        store.bot_by_token_hash("t1").await.unwrap(),
        Some(helper.clone())
    );
    assert_eq!(store.bot(BotId::new()).await.unwrap(), None);
    assert_eq!(store.bot_by_user(alice.id).await.unwrap(), None);
    assert_eq!(store.bot_by_token_hash("nope").await.unwrap(), None);
    assert_eq!(
        store.bot_and_user_by_token_hash("t1").await.unwrap(),
        Some((helper.clone(), account.clone()))
    );
    assert_eq!(
        store.bot_and_user_by_token_hash("nope").await.unwrap(),
        None
    );
    assert_eq!(
        store.bots_of_creator(alice.id).await.unwrap(),
        vec![older.bot.clone(), helper.bot.clone()]
    );
    assert!(store.bots_of_creator(bob.id).await.unwrap().is_empty());

    let renamed = store
        .update_bot(helper.bot.id, Some("Renamed"), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        renamed,
        Bot {
            name: "Renamed".to_owned(),
            ..helper.bot.clone()
        }
    );
    let described = store
        .update_bot(helper.bot.id, None, Some("new text"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(described.name, "Renamed");
    assert_eq!(described.description.as_deref(), Some("new text"));
    assert_eq!(
        store
            .update_bot(BotId::new(), Some("x"), None)
            .await
            .unwrap(),
        None
    );

    assert!(store.set_bot_token(helper.bot.id, "t2").await.unwrap());
    assert_eq!(store.bot_by_token_hash("t1").await.unwrap(), None);
    assert_eq!(store.bot_and_user_by_token_hash("t1").await.unwrap(), None);
    assert_eq!(
        store
            .bot_by_token_hash("t2")
            .await
            .unwrap()
            .map(|b| b.bot.id),
        Some(helper.bot.id)
    );
    assert!(!store.set_bot_token(BotId::new(), "t3").await.unwrap());

    assert!(store.revoke_bot(helper.bot.id, at(9)).await.unwrap());
    assert!(!store.revoke_bot(helper.bot.id, at(10)).await.unwrap());
    assert!(!store.revoke_bot(BotId::new(), at(10)).await.unwrap());
    let revoked = store.bot_by_token_hash("t2").await.unwrap().unwrap();
    assert_eq!(revoked.bot.revoked_at, Some(at(9)));
    assert_eq!(revoked.token_hash, "t2");
    let listed = store.bots_of_creator(alice.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1].revoked_at, Some(at(9)));
    // The bot's account stays.
    assert!(store.user(helper_user.id).await.unwrap().is_some());
}

/// A bot whose user or token clashes inserts neither the user nor the bot.
pub async fn create_bot_is_atomic(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let first_user = bot_user("first-bot");
    store
        .create_bot(
            &first_user,
            &bot_def(&first_user, Some(alice.id), "t1", at(1)),
        )
        .await
        .unwrap();

    let same_token_user = bot_user("second-bot");
    let same_token = bot_def(&same_token_user, Some(alice.id), "t1", at(2));
    assert_conflict(store.create_bot(&same_token_user, &same_token).await);
    assert_eq!(store.user(same_token_user.id).await.unwrap(), None);
    assert_eq!(store.bot(same_token.bot.id).await.unwrap(), None);

    let same_name_user = bot_user("first-bot");
    let same_name = bot_def(&same_name_user, Some(alice.id), "t3", at(3));
    assert_conflict(store.create_bot(&same_name_user, &same_name).await);
    assert_eq!(store.bot(same_name.bot.id).await.unwrap(), None);
    assert_eq!(store.bot_by_token_hash("t3").await.unwrap(), None);
    assert_eq!(store.bots_of_creator(alice.id).await.unwrap().len(), 1);
}

/// An author's recent messages: server channels only (DMs never), deleted ones
/// skipped, newest first with ties broken by id, cut at the limit, and edits shown as
/// they are now.
pub async fn recent_messages_by_author_newest_live_first(store: &dyn Store) {
    let alice = user(store, "alice").await;
    let bob = user(store, "bob").await;
    let guild = server(store, alice.id, at(1)).await;
    let general = channel(store, guild.id, ChannelType::Text, 2).await;
    let other = channel(store, guild.id, ChannelType::Text, 3).await;

    let first = message(store, general.id, alice.id, 10).await;
    let deleted = message(store, other.id, alice.id, 11).await;
    let mut tied = [
        message(store, other.id, alice.id, 12).await,
        message(store, general.id, alice.id, 12).await,
    ];
    tied.sort_by_key(|m| std::cmp::Reverse(m.id));
    let edited = message(store, general.id, alice.id, 13).await;
    // Someone else's message and a DM of alice's never show.
    message(store, general.id, bob.id, 14).await;
    let (dm, _) = store
        .open_dm_channel(&dm_def(alice.id, bob.id, at(1)))
        .await
        .unwrap();
    store
        .create_dm_message(&dm_message(dm.id, alice.id, at(15)), None)
        .await
        .unwrap();

    assert!(store.delete_message(deleted.id).await.unwrap());
    store
        .edit_message(edited.id, "changed", &[], false, at(16))
        .await
        .unwrap()
        .unwrap();

    let got = store.recent_messages_by_author(alice.id, 50).await.unwrap();
    let ids: Vec<MessageId> = got.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![edited.id, tied[0].id, tied[1].id, first.id]);
    assert_eq!(got[0].content, "changed");
    assert_eq!(got[0].channel_id, general.id);
    assert_eq!(got[0].created_at, at(13));
    assert_eq!(got[3].channel_id, general.id);
    let tied_channels: Vec<ChannelId> = got[1..3].iter().map(|m| m.channel_id).collect();
    assert_eq!(
        tied_channels,
        tied.iter().map(|m| m.channel_id).collect::<Vec<_>>()
    );

    let cut = store.recent_messages_by_author(alice.id, 2).await.unwrap();
    assert_eq!(cut.len(), 2);
    assert_eq!(cut[0].id, edited.id);
    assert!(
        store
            .recent_messages_by_author(bob.id, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .recent_messages_by_author(bob.id, 50)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .recent_messages_by_author(UserId::new(), 50)
            .await
            .unwrap()
            .is_empty()
    );
}
