//! The typed REST client against the real server over real sockets: typed answers,
//! errors carrying the status and the server's text, 429s waited out as
//! `retry-after` says (and given up on when retries are off), and the token
//! providers trading through it.

use concord_client::{
    BotToken, Credential, RefreshToken, RestClient, RestError, TokenError, TokenProvider,
    protocol::{
        ChannelType, CreateBot, CreateChannel, CreateInvite, CreateRole, CreateServer,
        RegisterRequest, UpdateMe,
    },
    rest::{Method, RawRequest, RetryPolicy},
};
use concord_server::config::Rate;
use concord_testkit::TestServer;

const PASSWORD: &str = "correct-horse-42";

async fn register(rest: &RestClient, name: &str) -> RestClient {
    let auth = rest
        .register(&RegisterRequest {
            username: name.into(),
            email: None,
            password: PASSWORD.into(),
            invite_code: None,
        })
        .await
        .expect("register");
    assert_eq!(auth.user.username, name);
    rest.with_bearer(&auth.access_token)
}

fn public(name: &str) -> CreateServer {
    CreateServer {
        name: name.into(),
        icon_url: None,
        is_public: Some(true),
        require_invite: None,
        template_id: None,
    }
}

fn text_channel(name: &str) -> CreateChannel {
    CreateChannel {
        name: name.into(),
        kind: ChannelType::Text,
        topic: None,
        category: None,
    }
}

#[tokio::test]
async fn typed_calls_cover_servers_channels_messages_reactions_roles_invites_and_dms() {
    let server = TestServer::start().await;
    let rest = RestClient::new(&server.url(""));
    let alice = register(&rest, "alice").await;
    let bob = register(&rest, "bob").await;
    let me = alice.me().await.unwrap();
    assert_eq!(me.username, "alice");
    let updated = alice
        .update_me(&UpdateMe {
            bio: Some("reads a lot".into()),
            ..UpdateMe::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.bio.as_deref(), Some("reads a lot"));

    let guild = alice.create_server(&public("club")).await.unwrap();
    let id = guild.server.id;
    assert_eq!(guild.member_count, 1);
    let channel = alice
        .create_channel(id, &text_channel("general"))
        .await
        .unwrap();
    assert_eq!(alice.channels(id).await.unwrap(), vec![channel.clone()]);
    bob.join_server(id).await.unwrap();
    assert_eq!(alice.members(id).await.unwrap().len(), 2);

    let first = bob.send_message(channel.id, "first").await.unwrap();
    let second = alice.send_message(channel.id, "second").await.unwrap();
    let newest = alice.messages(channel.id, None, Some(1)).await.unwrap();
    assert_eq!(newest.iter().map(|m| m.id).collect::<Vec<_>>(), [second.id]);
    let older = alice
        .messages(channel.id, Some(second.id), None)
        .await
        .unwrap();
    assert_eq!(older.iter().map(|m| m.id).collect::<Vec<_>>(), [first.id]);
    let edited = bob.edit_message(first.id, "first!").await.unwrap();
    assert_eq!(edited.content, "first!");
    assert!(edited.edited_at.is_some());

    // A multi-byte emoji travels percent-encoded in the path.
    alice
        .add_reaction(channel.id, first.id, "👍")
        .await
        .unwrap();
    let reactions = bob.reactions(channel.id, first.id).await.unwrap();
    assert_eq!(reactions.len(), 1);
    assert_eq!(reactions[0].emoji, "👍");
    assert!(!reactions[0].me);
    alice
        .remove_reaction(channel.id, first.id, "👍")
        .await
        .unwrap();
    assert!(
        alice
            .reactions(channel.id, first.id)
            .await
            .unwrap()
            .is_empty()
    );

    let reply = bob
        .reply_in_thread(channel.id, second.id, "in a thread")
        .await
        .unwrap();
    assert_eq!(reply.thread_id, Some(second.id));
    let thread = alice
        .thread(channel.id, second.id, None, None)
        .await
        .unwrap();
    assert_eq!(thread, vec![reply]);

    let role = alice
        .create_role(
            id,
            &CreateRole {
                name: "mods".into(),
                permissions: Some(0),
                color: None,
                position: None,
            },
        )
        .await
        .unwrap();
    let bob_id = bob.me().await.unwrap().id;
    alice.add_member_role(id, bob_id, role.id).await.unwrap();
    let members = alice.members(id).await.unwrap();
    let bob_member = members.iter().find(|m| m.user_id == bob_id).unwrap();
    assert_eq!(bob_member.roles[0].id, role.id);

    let invite = alice
        .create_invite(
            id,
            &CreateInvite {
                max_uses: Some(5),
                expires_in_hours: None,
            },
        )
        .await
        .unwrap();
    let preview = bob.invite(&invite.code).await.unwrap();
    assert_eq!(preview.server_name, "club");

    let dm = alice.open_dm(bob_id).await.unwrap();
    assert_eq!(dm.recipient.id, bob_id);
    let sent = alice.send_dm(dm.id, "psst").await.unwrap();
    let seen = bob.dm_messages(dm.id, None, None).await.unwrap();
    assert_eq!(seen, vec![sent]);

    bob.delete_message(first.id).await.unwrap();
    assert!(alice.message(channel.id, first.id).await.unwrap().deleted);
    alice.delete_server(id).await.unwrap();
    assert_eq!(alice.servers().await.unwrap(), vec![]);
}

#[tokio::test]
async fn errors_carry_the_status_and_the_servers_text() {
    let server = TestServer::start().await;
    let rest = RestClient::new(&server.url(""));
    let alice = register(&rest, "alice").await;

    let err = rest.login("alice", "wrong-password").await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(!err.message().unwrap().is_empty(), "{err}");

    let err = rest.me().await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");

    // At the HTTP level, whatever the status: a JSON route sent text.
    let raw = alice
        .send_raw(&RawRequest::new(Method::POST, "/servers").body(Some("text/plain"), "club"))
        .await
        .unwrap();
    assert_eq!(raw.status, 415, "{}", raw.text());

    let guild = alice.create_server(&public("club")).await.unwrap();
    let bob = register(&rest, "bob").await;
    // Not a member: 404, so membership does not leak existence.
    let err = bob.channels(guild.server.id).await.unwrap_err();
    assert!(
        matches!(&err, RestError::Http { status: 404, message, .. } if !message.is_empty()),
        "{err:?}"
    );
    // Registering a taken name: 409.
    let err = rest
        .register(&RegisterRequest {
            username: "alice".into(),
            email: None,
            password: PASSWORD.into(),
            invite_code: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");

    // Nobody listening: a transport error, not a status.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let err = RestClient::new(&format!("http://127.0.0.1:{port}"))
        .health()
        .await
        .unwrap_err();
    assert!(matches!(err, RestError::Transport(_)), "{err:?}");
    assert_eq!(err.status(), None);
}

#[tokio::test]
async fn a_429_is_waited_out_as_retry_after_says_unless_retries_are_off() {
    let server = TestServer::start_with(|config| {
        config.limits.rest_per_ip = Rate {
            per_second: 1,
            burst: 1,
        };
    })
    .await;
    let no_retry = RestClient::new(&server.url("")).with_retry(RetryPolicy::none());
    // The bucket holds one request: the second is refused with a delay.
    no_retry.browse_servers().await.unwrap_err();
    let err = no_retry.browse_servers().await.unwrap_err();
    let RestError::Http {
        status: 429,
        retry_after: Some(wait),
        ..
    } = err
    else {
        panic!("expected a 429 with retry-after: {err:?}");
    };
    assert!(wait.as_secs() >= 1, "{wait:?}");
    // With retries the same request succeeds once the server's delay has passed.
    let retrying = no_retry.with_retry(RetryPolicy::default());
    let err = retrying.browse_servers().await.unwrap_err();
    assert_eq!(
        err.status(),
        Some(401),
        "past the limit, refused for want of a token: {err}"
    );
    // A delay longer than the policy accepts is not waited for.
    let impatient = no_retry.with_retry(RetryPolicy {
        max_retries: 5,
        default_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(1),
    });
    let err = impatient.servers().await.unwrap_err();
    assert_eq!(err.status(), Some(429), "{err}");
}

#[tokio::test]
async fn token_providers_trade_through_the_rest_client() {
    let server = TestServer::start().await;
    let rest = RestClient::new(&server.url(""));
    let auth = rest
        .register(&RegisterRequest {
            username: "alice".into(),
            email: None,
            password: PASSWORD.into(),
            invite_code: None,
        })
        .await
        .unwrap();
    let alice = rest.with_bearer(&auth.access_token);
    let created = alice
        .create_bot(&CreateBot {
            name: "Echo".into(),
            description: None,
        })
        .await
        .unwrap();
    assert_eq!(alice.bots().await.unwrap(), vec![created.bot.clone()]);

    let bot = BotToken::with_client(&rest, &created.token);
    let Credential::Token(access) = bot.credential(false).await.unwrap() else {
        panic!("a bot token is traded for an access token");
    };
    let bot_user = rest.with_bearer(&access).me().await.unwrap();
    assert_eq!(bot_user.id, created.bot.user_id);
    // Statically, through the Bot scheme, the same user.
    let direct = rest.with_bot_token(&created.token).me().await.unwrap();
    assert_eq!(direct.id, created.bot.user_id);

    alice.revoke_bot(created.bot.id).await.unwrap();
    let err = bot.credential(true).await.unwrap_err();
    assert!(
        matches!(err, TokenError::Refused { status: 401, .. }),
        "{err:?}"
    );

    let refresh = RefreshToken::with_client(rest.clone(), auth.refresh_token.clone());
    let Credential::Token(fresh) = refresh.credential(true).await.unwrap() else {
        panic!("a refresh gives an access token");
    };
    assert_eq!(
        rest.with_bearer(&fresh).me().await.unwrap().username,
        "alice"
    );
    assert_ne!(refresh.refresh_token().await, auth.refresh_token, "rotated");
    // The old refresh token is dead now.
    let stale = RefreshToken::with_client(rest.clone(), auth.refresh_token);
    let err = stale.credential(true).await.unwrap_err();
    assert!(
        matches!(err, TokenError::Refused { status: 401, .. }),
        "{err:?}"
    );
}
