//! Three nodes on loopback behave as one server: one PostgreSQL database, one NATS,
//! one JWT secret; each node its own port and data directory. A user must not be
//! able to tell which node they are on.
//!
//! Services come from `CONCORD_TEST_DATABASE_URL` and `CONCORD_TEST_NATS_URL`
//! (defaults 127.0.0.1:5432 and 127.0.0.1:4222); each test gets its own database and
//! its own subject prefix, so runs never see each other.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use concord_testkit::{Closed, TestServer, fresh_bus_prefix, fresh_postgres_url, nats_url};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// `n` nodes of one fresh cluster.
async fn cluster(n: usize) -> Vec<TestServer> {
    cluster_with(n, |_, _| {}).await
}

/// `n` nodes of one fresh cluster, each configured by `adjust` too (given its index).
async fn cluster_with(
    n: usize,
    adjust: impl Fn(usize, &mut concord_server::Config),
) -> Vec<TestServer> {
    let database = fresh_postgres_url().await;
    let prefix = fresh_bus_prefix();
    let secret = format!("cluster-secret-{}", uuid::Uuid::new_v4().simple());
    let mut nodes = Vec::with_capacity(n);
    for index in 0..n {
        nodes.push(
            TestServer::start_with(|c| {
                c.database_url = Some(database.clone());
                c.bus_url = Some(nats_url());
                c.bus_prefix.clone_from(&prefix);
                c.jwt_secret = Some(secret.clone());
                adjust(index, c);
            })
            .await,
        );
    }
    nodes
}

/// Two nodes of one fresh cluster, the second reaching NATS through `bus_of_b` (a proxy
/// the test controls), both configured by `adjust` too.
async fn two_nodes_b_through(
    bus_of_b: String,
    adjust: impl Fn(&mut concord_server::Config),
) -> Vec<TestServer> {
    cluster_with(2, |index, c| {
        adjust(c);
        if index == 1 {
            c.bus_url = Some(bus_of_b.clone());
        }
    })
    .await
}

async fn shutdown(nodes: Vec<TestServer>) {
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn messages_typing_and_joins_cross_nodes() {
    let nodes = cluster(3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let carol = c.user("carol").await;
    let hall = alice.create_server("three nodes").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    // Joins go through the joiner's own node.
    bob.join(&hall).await;
    carol.join(&hall).await;

    let (mut alice_gw, _) = a.connect(&alice.ws_query()).await;
    let (mut bob_gw, ready) = b.connect(&bob.ws_query()).await;
    assert!(
        ready["servers"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["id"] == hall.as_str())),
        "READY on b lists the server made on a: {ready}"
    );
    let (mut carol_gw, _) = c.connect(&carol.ws_query()).await;

    alice.post(&general, "from a").await;
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        assert_eq!(gw.next_event("MESSAGE_CREATE").await["content"], "from a");
    }
    bob.post(&general, "from b").await;
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        assert_eq!(gw.next_event("MESSAGE_CREATE").await["content"], "from b");
    }

    // A gateway op on c reaches a session on a.
    carol_gw
        .send(&json!({"op": "TYPING_START", "d": {"channel_id": general}}))
        .await;
    let typing = alice_gw.next_event("TYPING_START").await;
    assert_eq!(typing["user_id"], carol.user_id().to_string());

    // Dave is connected to c before he joins (on a): c learns of the join from the
    // bus and must not miss what is posted right after it.
    let dave = c.user("dave").await;
    let (mut dave_gw, _) = c.connect(&dave.ws_query()).await;
    dave.on(a).join(&hall).await;
    alice.post(&general, "right after the join").await;
    assert_eq!(
        dave_gw.next_event("MESSAGE_CREATE").await["content"],
        "right after the join"
    );

    // Each node reports the order the others' messages came in.
    for node in &nodes {
        let metrics = node.api().get("/metrics").await.text;
        for kind in ["released_early", "reordered"] {
            let series = format!("concord_bus_out_of_order_total{{kind=\"{kind}\"}} ");
            assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
        }
    }
    shutdown(nodes).await;
}

#[tokio::test]
async fn permissions_and_moderation_on_one_node_hold_on_the_others() {
    let nodes = cluster(2).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let hall = alice.create_server("rules").await;
    let open = alice.create_channel(&hall, "open", "text").await;
    let secret = alice.create_channel(&hall, "secret", "text").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = b.connect(&bob.ws_query()).await;

    // An override made on a hides the channel from bob on b.
    let res = a
        .api()
        .bearer(&alice.token)
        .raw(
            "PUT",
            &format!("/channels/{secret}/overrides"),
            Some("application/json"),
            json!({"user_id": bob.user_id().to_string(), "allow": 0, "deny": 1}).to_string(),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let changed = bob_gw.next_event("CHANNEL_OVERRIDE_UPDATE").await;
    assert_eq!(changed["channel_id"], secret.as_str());
    alice.post(&secret, "not for bob").await;
    alice.post(&open, "for everyone").await;
    // Same server, same route: in order. The hidden one never comes.
    assert_eq!(
        bob_gw.next_event("MESSAGE_CREATE").await["content"],
        "for everyone"
    );

    // A kick on a reaches bob on b, and nothing of the server after it.
    let res = a
        .api()
        .bearer(&alice.token)
        .post(
            &format!("/servers/{hall}/members/{}/kick", bob.user_id()),
            &json!({}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    let kick = bob_gw.next_event("MEMBER_KICK").await;
    assert_eq!(kick["user_id"], bob.user_id().to_string());

    // Logging out everywhere on a closes bob's sessions on b.
    let res = a.api().bearer(&bob.token).post_empty("/auth/logout").await;
    assert_eq!(res.status, 204, "{}", res.text);
    assert!(matches!(
        bob_gw.closed().await,
        concord_testkit::Closed::Code(_)
    ));
    shutdown(nodes).await;
}

/// The next PRESENCE_UPDATE about `user`.
async fn presence_of(
    gateway: &mut concord_testkit::Gateway,
    user: &concord_testkit::TestUser,
) -> serde_json::Value {
    loop {
        let frame = gateway.next_frame().await;
        if frame["t"] == "PRESENCE_UPDATE" && frame["d"]["user_id"] == user.id.as_str() {
            return frame["d"].clone();
        }
    }
}

#[tokio::test]
async fn presence_is_the_clusters_not_one_nodes() {
    // A long grace period: a dropped socket keeps its user online on its node.
    let nodes = cluster_with(3, |_, c| c.limits.presence_grace_secs = 600).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let hall = alice.create_server("who is here").await;
    bob.join(&hall).await;
    let (mut alice_gw, _) = a.connect(&alice.ws_query()).await;

    let (bob_on_b, _) = b.connect(&bob.ws_query()).await;
    assert_eq!(presence_of(&mut alice_gw, &bob).await["status"], "online");
    // A second session on another node, closed cleanly: b still has him.
    let (bob_on_c, _) = c.connect(&bob.ws_query()).await;
    // c, where alice has no session, knows she is online on a.
    let members = bob.on(c).api.get(&format!("/servers/{hall}/members")).await;
    assert_eq!(members.status, 200, "{}", members.text);
    let alice_seen = members.body.as_array().and_then(|m| {
        m.iter()
            .find(|m| m["user"]["id"] == alice.id.as_str() || m["user_id"] == alice.id.as_str())
            .cloned()
    });
    assert!(
        alice_seen.is_some_and(|m| m.to_string().contains("\"status\":\"online\"")),
        "{}",
        members.text
    );
    bob_on_c.close(1000).await;
    // b's socket drops: b holds him for the grace period; he comes back on c.
    bob_on_b.drop_abruptly();
    let (_bob_again, _) = c.connect(&bob.ws_query()).await;
    // Nobody saw him offline: the next thing alice hears of bob is his new status.
    let res = bob
        .on(c)
        .api
        .patch("/users/@me", &json!({"status": "away"}))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(presence_of(&mut alice_gw, &bob).await["status"], "away");
    shutdown(nodes).await;
}

#[tokio::test]
async fn the_login_throttle_counts_attempts_on_every_node() {
    let nodes = cluster_with(2, |_, c| {
        c.limits.login_per_account = concord_server::config::PerMinute {
            per_minute: 1,
            burst: 3,
        };
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    a.user("victim").await;
    let mut answers = Vec::new();
    for attempt in 0..6 {
        let node = if attempt % 2 == 0 { a } else { b };
        let res = node
            .api()
            .post(
                "/auth/login",
                &json!({"username": "victim", "password": "wrong guess 123"}),
            )
            .await;
        answers.push(res.status);
    }
    // Three attempts in all, not three per node.
    assert_eq!(&answers[..3], [401, 401, 401], "{answers:?}");
    assert_eq!(answers.last(), Some(&429), "{answers:?}");
    assert!(
        answers.iter().filter(|s| **s == 401).count() < 6,
        "{answers:?}"
    );
    shutdown(nodes).await;
}

/// A change made through one node holds for the very next request through any other:
/// the write answers only once every node has applied it. Each round flips the state
/// and asks another node at once; a node still behind would answer the old way.
#[tokio::test]
async fn a_write_through_one_node_holds_for_the_next_request_on_any_other() {
    let nodes = cluster(3).await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let hall = alice.create_server("read your writes").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    let bob_on = [bob.on(b), bob.on(c)];
    let messages = format!("/channels/{general}/messages");

    for round in 0..10 {
        let reader = &bob_on[round % 2];
        // A user override denying VIEW_CHANNEL (1), then its removal.
        let res = alice
            .api
            .raw(
                "PUT",
                &format!("/channels/{general}/overrides"),
                Some("application/json"),
                &json!({"user_id": bob.id, "allow": 0, "deny": 1}).to_string(),
            )
            .await;
        assert!(res.status == 200 || res.status == 201, "{}", res.text);
        let id = res.body["id"].as_str().expect("override id").to_owned();
        assert_eq!(reader.api.get(&messages).await.status, 403, "round {round}");
        let res = alice
            .api
            .delete(&format!("/channels/{general}/overrides/{id}"))
            .await;
        assert_eq!(res.status, 204, "{}", res.text);
        assert_eq!(reader.api.get(&messages).await.status, 200, "round {round}");
    }

    // Automod rules are cached per node: a change through a drops them everywhere.
    let res = alice
        .api
        .patch(
            &format!("/servers/{hall}/automod"),
            &json!({"enabled": true, "word_filter_enabled": true}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    for (round, reader) in bob_on.iter().enumerate() {
        // Each node has read (and cached) the rules before the word is added.
        assert_eq!(
            reader
                .api
                .post(&messages, &json!({"content": format!("fine {round}")}))
                .await
                .status,
            201
        );
    }
    let res = alice
        .api
        .post(
            &format!("/servers/{hall}/automod/words"),
            &json!({"word": "darn"}),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.text);
    for reader in &bob_on {
        let res = reader
            .api
            .post(&messages, &json!({"content": "oh darn"}))
            .await;
        assert_eq!(res.status, 403, "{}", res.text);
    }

    // A kick through a: bob's next request through b or c is a non-member's.
    let res = alice
        .api
        .post_empty(&format!("/servers/{hall}/members/{}/kick", bob.id))
        .await;
    assert_eq!(res.status, 204, "{}", res.text);
    for reader in &bob_on {
        // An outsider's answer: the channel is not found.
        assert_eq!(reader.api.get(&messages).await.status, 404);
    }
    shutdown(nodes).await;
}

/// The per-bot limit (`rest.md` §4) is the cluster's: a bot that spent its burst
/// through one node finds the other nodes' buckets spent too (each node tells the
/// others what it let through, in batches), not a fresh burst on each node.
#[tokio::test]
async fn the_per_bot_limit_counts_requests_on_every_node() {
    const BURST: u32 = 40;
    let nodes = cluster_with(3, |_, c| {
        c.limits.per_bot = concord_server::config::Rate {
            per_second: 1,
            burst: BURST,
        };
    })
    .await;
    let alice = nodes[0].user("alice").await;
    let res = alice.api.post("/bots", &json!({"name": "Busy"})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    let token = res.body["token"].as_str().expect("token").to_owned();
    let on = |n: usize| nodes[n].api().bot(&token);

    let first = on(0);
    for _ in 0..BURST {
        assert_eq!(first.get("/users/@me").await.status, 200);
    }
    assert_eq!(first.get("/users/@me").await.status, 429);
    for n in [1, 2] {
        let bot = on(n);
        // Requests the node let through before the first node's report reached it:
        // a node with a bucket of its own would let all BURST through.
        let mut passed = 0;
        while bot.get("/users/@me").await.status == 200 {
            passed += 1;
            assert!(passed < BURST, "node {n} let the bot spend a fresh burst");
        }
    }
    shutdown(nodes).await;
}

/// A node that stops leaves the cluster: the others stop waiting for it at once, and
/// no write after it waits out the barrier's limit.
#[tokio::test]
async fn a_node_that_stops_is_not_waited_for() {
    let mut nodes = cluster(3).await;
    let alice = nodes[0].user("alice").await;
    let hall = alice.create_server("one goes").await;
    // Every node has heard from every other (heartbeats at start): stop one.
    nodes.pop().expect("a third node").shutdown().await;
    for name in ["after-1", "after-2"] {
        alice.create_channel(&hall, name, "text").await;
    }
    assert_eq!(barrier_timeouts(&nodes[0]).await, 0.0);
    shutdown(nodes).await;
}

/// `concord_bus_messages_total{outcome="barrier_timeout"}` of `node`.
async fn barrier_timeouts(node: &TestServer) -> f64 {
    node.api()
        .metric("concord_bus_messages_total{outcome=\"barrier_timeout\"}")
        .await
}

/// A v2 client that comes back through another node resumes there: the session's
/// owner serves it through that node (what it missed, RESUMED, then live events and
/// heartbeats), compressed with that node's stream; nothing is lost or repeated. A
/// lost relay parks the session for the next RESUME, through any node, and a RESUME
/// elsewhere takes it over; the owner stopping tells its relayed clients to RECONNECT
/// (1001), and its sessions go with it.
#[tokio::test]
async fn a_v2_session_resumes_through_any_node() {
    let mut nodes = cluster(3).await;
    let alice = nodes[0].user("alice").await;
    let hall = alice.create_server("resume anywhere").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let (gateway, hello, ready) = nodes[0].identify_v2(&alice, "", Some(&["messages"])).await;
    assert_eq!(ready["s"], 1);
    let session = hello["session_id"].as_str().unwrap().to_owned();
    let resume = |seq: u64| json!({"op": "RESUME", "d": {"token": alice.token, "session_id": session, "seq": seq}});
    gateway.drop_abruptly();
    alice.post(&general, "missed 1").await;
    alice.post(&general, "missed 2").await;

    // Through b, zlib-compressed by b.
    let mut relayed = nodes[1]
        .connect_raw("v=2&compress=zlib-stream")
        .await
        .unwrap();
    assert_eq!(relayed.next_frame().await["op"], "HELLO");
    relayed.send(&resume(1)).await;
    for (s, content) in [(2, "missed 1"), (3, "missed 2")] {
        let frame = relayed.next_frame().await;
        assert_eq!(
            (frame["s"].as_u64(), &frame["d"]["content"]),
            (Some(s), &json!(content))
        );
    }
    let resumed = relayed.next_frame().await;
    assert_eq!(resumed["t"], "RESUMED", "{resumed}");
    assert_eq!(
        (resumed["s"].as_u64(), &resumed["d"]["replayed"]),
        (Some(4), &json!(2))
    );
    alice.post(&general, "live").await;
    let live = relayed.next_frame().await;
    assert_eq!(
        (live["s"].as_u64(), &live["d"]["content"]),
        (Some(5), &json!("live"))
    );
    relayed.send(&json!({"op": "HEARTBEAT", "d": null})).await;
    assert_eq!(relayed.next_frame().await, json!({"op": "HEARTBEAT_ACK"}));
    let relayed_gauge = |end: &str| format!("concord_gateway_relayed_sessions{{end=\"{end}\"}}");
    assert_eq!(nodes[1].api().metric(&relayed_gauge("client")).await, 1.0);
    assert_eq!(nodes[0].api().metric(&relayed_gauge("owner")).await, 1.0);
    assert_eq!(nodes[0].state.hub.session_count(), 1, "the owner keeps it");
    assert_eq!(nodes[1].state.hub.session_count(), 0);

    // Lost again: resumed through c, uncompressed, from where it was.
    relayed.drop_abruptly();
    alice.post(&general, "missed 3").await;
    let mut relayed = nodes[2].connect_raw("v=2").await.unwrap();
    assert_eq!(relayed.next_frame().await["op"], "HELLO");
    relayed.send(&resume(5)).await;
    let frame = relayed.next_frame().await;
    assert_eq!(
        (frame["s"].as_u64(), &frame["d"]["content"]),
        (Some(6), &json!("missed 3"))
    );
    assert_eq!(relayed.next_frame().await["t"], "RESUMED");
    // Another RESUME takes it over while c still relays it: c's client is dropped
    // without a close frame, as a node's own socket would be.
    let mut taken = nodes[1].connect_raw("v=2").await.unwrap();
    assert_eq!(taken.next_frame().await["op"], "HELLO");
    taken.send(&resume(7)).await;
    let resumed = taken.next_frame().await;
    assert_eq!(
        (&resumed["t"], resumed["s"].as_u64()),
        (&json!("RESUMED"), Some(8))
    );
    assert_eq!(relayed.closed().await, concord_testkit::Closed::Abrupt);
    let mut relayed = taken;
    // A session no node holds is refused (every node answers that it lacks it).
    let mut stranger = nodes[1].connect_raw("v=2").await.unwrap();
    assert_eq!(stranger.next_frame().await["op"], "HELLO");
    stranger
        .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": "0123456789abcdef0123456789abcdef", "seq": 1}}))
        .await;
    assert_eq!(stranger.next_frame().await["op"], "INVALID_SESSION");

    // The owner stops: reconnect; the session was handed over to a node that stays,
    // and resumes through either.
    nodes.remove(0).shutdown().await;
    assert_eq!(relayed.next_frame().await["op"], "RECONNECT");
    assert_eq!(relayed.closed().await, concord_testkit::Closed::Code(1001));
    let mut again = nodes[0].connect_raw("v=2").await.unwrap();
    assert_eq!(again.next_frame().await["op"], "HELLO");
    again.send(&resume(8)).await;
    let resumed = again.next_frame().await;
    assert_eq!(
        (&resumed["t"], resumed["s"].as_u64()),
        (&json!("RESUMED"), Some(9)),
        "{resumed}"
    );
    shutdown(nodes).await;
}

/// A node that stops hands its v2 sessions over to the nodes that stay: a client told
/// to reconnect resumes on another node and gets every message posted before, during
/// and after the handover, once each, in order, numbered without a gap.
#[tokio::test]
async fn a_stopping_node_hands_its_sessions_over_and_they_resume_elsewhere_without_a_gap() {
    const POSTS: usize = 120;
    let mut nodes = cluster(3).await;
    let alice = nodes[0].user("alice").await;
    let bob = nodes[2].user("bob").await;
    let hall = bob.create_server("handover").await;
    let general = bob.create_channel(&hall, "general", "text").await;
    alice.join(&hall).await;
    let (mut old, hello, ready) = nodes[0].identify_v2(&alice, "", Some(&["messages"])).await;
    let mut seen = Seen {
        last: ready["s"].as_u64().expect("READY is numbered"),
        messages: Vec::new(),
    };
    let poster = tokio::spawn(async move {
        for n in 0..POSTS {
            bob.post(&general, &format!("m{n}")).await;
        }
    });
    // A few arrive before the node stops; the rest before, during and after the
    // handover.
    while seen.messages.len() < 5 {
        seen.take(&old.next_frame().await);
    }
    let leaving = nodes.remove(0);
    let reading = async {
        loop {
            let frame = old.next_frame().await;
            if frame["op"] == "RECONNECT" {
                break;
            }
            seen.take(&frame);
        }
        assert_eq!(old.closed().await, Closed::Code(1001));
    };
    tokio::join!(leaving.shutdown(), reading);
    let mut gateway = nodes[1].connect_raw("v=2").await.unwrap();
    assert_eq!(gateway.next_frame().await["op"], "HELLO");
    gateway
        .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": hello["session_id"], "seq": seen.last}}))
        .await;
    loop {
        let frame = gateway.next_frame().await;
        let resumed = frame["t"] == "RESUMED";
        seen.take(&frame);
        if resumed {
            break;
        }
    }
    while seen.messages.len() < POSTS {
        seen.take(&gateway.next_frame().await);
    }
    poster.await.expect("every post answered");
    let expected: Vec<String> = (0..POSTS).map(|n| format!("m{n}")).collect();
    assert_eq!(seen.messages, expected, "every message once, in order");
    // Nothing more comes: no event was queued twice.
    nothing_more(&mut gateway).await;
    let adopted = "concord_gateway_handovers_total{outcome=\"adopted\"}";
    let mut taken = 0.0;
    for node in &nodes {
        taken += node.api().metric(adopted).await;
    }
    assert_eq!(taken, 1.0, "one node took the session over");
    shutdown(nodes).await;
}

/// Two nodes stopping at once (a rolling deploy of two) hand their v2 sessions to the
/// node that stays, not to each other: every client resumes there with what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_stopping_at_once_hand_their_sessions_to_the_node_that_stays() {
    let mut nodes = cluster(3).await;
    let alice = nodes[0].user("alice").await;
    let bob = nodes[2].user("bob").await;
    let hall = bob.create_server("rolling deploy").await;
    let general = bob.create_channel(&hall, "general", "text").await;
    alice.join(&hall).await;
    // Three sessions on each stopping node: handed out in turn over the other two
    // nodes, each stopping node would give the other at least one.
    let mut sessions = Vec::new();
    for node in &nodes[..2] {
        for _ in 0..3 {
            let (gateway, hello, _) = node.identify_v2(&alice, "", Some(&["messages"])).await;
            sessions.push((gateway, hello["session_id"].clone()));
        }
    }
    bob.post(&general, "before").await;
    let mut resumes = Vec::new();
    for (mut gateway, id) in sessions {
        let mut seen = Seen {
            last: 1,
            messages: Vec::new(),
        };
        while seen.messages.is_empty() {
            seen.take(&gateway.next_frame().await);
        }
        assert_eq!(seen.messages, ["before"]);
        // The client goes; its session parks on its node.
        drop(gateway);
        resumes.push((id, seen));
    }
    let staying = nodes.remove(2);
    let second = nodes.remove(1);
    let first = nodes.remove(0);
    tokio::join!(first.shutdown(), second.shutdown());
    bob.post(&general, "after").await;
    for (id, mut seen) in resumes {
        let mut gateway = staying.connect_raw("v=2").await.unwrap();
        assert_eq!(gateway.next_frame().await["op"], "HELLO");
        gateway
            .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": id, "seq": seen.last}}))
            .await;
        loop {
            let frame = gateway.next_frame().await;
            assert_ne!(frame["op"], "INVALID_SESSION", "session {id} was lost");
            let resumed = frame["t"] == "RESUMED";
            seen.take(&frame);
            if resumed {
                break;
            }
        }
        assert_eq!(seen.messages, ["before", "after"], "session {id}");
    }
    let adopted = "concord_gateway_handovers_total{outcome=\"adopted\"}";
    assert_eq!(staying.api().metric(adopted).await, 6.0);
    staying.shutdown().await;
}

/// What a v2 client received: the last number, and the messages' contents in order.
struct Seen {
    last: u64,
    messages: Vec<String>,
}

impl Seen {
    fn take(&mut self, frame: &serde_json::Value) {
        if let Some(s) = frame["s"].as_u64() {
            assert_eq!(s, self.last + 1, "numbered without a gap: {frame}");
            self.last = s;
        }
        if frame["t"] == "MESSAGE_CREATE" {
            let content = frame["d"]["content"].as_str().unwrap_or_default();
            self.messages.push(content.to_owned());
        }
    }
}

/// Nothing but presence comes after the last expected event: a heartbeat's ACK comes
/// back before any other frame.
async fn nothing_more(gateway: &mut concord_testkit::Gateway) {
    gateway.send(&json!({"op": "HEARTBEAT", "d": null})).await;
    loop {
        let frame = gateway.next_frame().await;
        if frame["op"] == "HEARTBEAT_ACK" {
            return;
        }
        assert_eq!(frame["t"], "PRESENCE_UPDATE", "nothing sent twice: {frame}");
    }
}

/// A RESUME that the session's node refuses (here: `seq` beyond what it sent) comes
/// back to the client's node with the refusal; an IDENTIFY on the same socket opens the
/// new session there, in the same compressed stream.
#[tokio::test]
async fn a_resume_refused_by_the_sessions_node_leaves_the_client_where_it_is() {
    let nodes = cluster(2).await;
    let alice = nodes[0].user("alice").await;
    let (gateway, hello, _) = nodes[0].identify_v2(&alice, "", Some(&["messages"])).await;
    gateway.drop_abruptly();
    let mut other = nodes[1]
        .connect_raw("v=2&compress=zstd-stream")
        .await
        .unwrap();
    assert_eq!(other.next_frame().await["op"], "HELLO");
    other
        .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": hello["session_id"], "seq": 99}}))
        .await;
    assert_eq!(other.next_frame().await["op"], "INVALID_SESSION");
    assert_eq!(
        nodes[0].state.hub.session_count(),
        0,
        "a refused RESUME ends it"
    );
    other
        .send(&json!({"op": "IDENTIFY", "d": {"token": alice.token}}))
        .await;
    let ready = other.next_frame().await;
    assert_eq!(
        (&ready["t"], ready["s"].as_u64()),
        (&json!("READY"), Some(1))
    );
    assert_eq!(nodes[1].state.hub.session_count(), 1, "the client's node's");
    assert_eq!(nodes[0].state.hub.session_count(), 0);
    let gauge = "concord_gateway_relayed_sessions{end=\"client\"}";
    assert_eq!(nodes[1].api().metric(gauge).await, 0.0, "no relay left");
    shutdown(nodes).await;
}

/// A proxy's listening socket on loopback, its address and the tests' NATS
/// (`host:port`) it forwards to.
async fn proxy_listener() -> (TcpListener, SocketAddr, String) {
    let target = nats_url()
        .trim_start_matches("nats://")
        .trim_end_matches('/')
        .to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
    let addr = listener.local_addr().expect("proxy address");
    (listener, addr, target)
}

/// A TCP proxy on loopback in front of the tests' NATS, which a test cuts (every
/// connection through it dropped, new ones closed at once) and restores.
struct Cuttable {
    addr: SocketAddr,
    open: Arc<watch::Sender<bool>>,
}

impl Cuttable {
    async fn start() -> Self {
        let (listener, addr, target) = proxy_listener().await;
        let open = Arc::new(watch::Sender::new(true));
        let gate = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !*gate.borrow() {
                    continue;
                }
                let (target, mut passing) = (target.clone(), gate.subscribe());
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = passing.wait_for(|open| !open) => {}
                    }
                });
            }
        });
        Self { addr, open }
    }

    fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    fn cut(&self) {
        self.open.send_replace(false);
    }

    fn restore(&self) {
        self.open.send_replace(true);
    }
}

/// A TCP proxy on loopback in front of the tests' NATS that a test can make hold what
/// NATS sends to the node behind it (kept, and passed on in order once let go; what
/// the node sends passes at once), and that tells when, while holding, it sees the
/// node send `needle`.
struct Holdable {
    addr: SocketAddr,
    holding: Arc<watch::Sender<bool>>,
    seen: Arc<tokio::sync::Notify>,
}

impl Holdable {
    async fn start(needle: &'static [u8]) -> Self {
        let (listener, addr, target) = proxy_listener().await;
        let holding = Arc::new(watch::Sender::new(false));
        let seen = Arc::new(tokio::sync::Notify::new());
        let (gate, told) = (Arc::clone(&holding), Arc::clone(&seen));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (mut from_node, mut to_node) = client.into_split();
                let (mut from_nats, mut to_nats) = server.into_split();
                let (holding, seen) = (Arc::clone(&gate), Arc::clone(&told));
                tokio::spawn(async move {
                    let mut chunk = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = from_node.read(&mut chunk).await {
                        if *holding.borrow()
                            && chunk[..n].windows(needle.len()).any(|w| w == needle)
                        {
                            seen.notify_one();
                        }
                        if to_nats.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut let_go = gate.subscribe();
                tokio::spawn(async move {
                    let mut chunk = vec![0u8; 64 * 1024];
                    while let Ok(n @ 1..) = from_nats.read(&mut chunk).await {
                        if let_go.wait_for(|holding| !holding).await.is_err()
                            || to_node.write_all(&chunk[..n]).await.is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            addr,
            holding,
            seen,
        }
    }

    fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    fn hold(&self) {
        self.holding.send_replace(true);
    }

    fn let_go(&self) {
        self.holding.send_replace(false);
    }

    /// Returns once the node sent the needle while held.
    async fn seen(&self) {
        self.seen.notified().await;
    }
}

/// One client posts through one node, has its answer, then posts through another: the
/// second node's own sessions read the two messages in that order, though it delivers
/// to them at once and the first reaches it a NATS hop later (here held back until the
/// second node asks the others to confirm they sent it everything: the needle).
#[tokio::test]
async fn posts_through_two_nodes_one_after_the_other_are_read_in_that_order() {
    let proxy = Holdable::start(b"\"signal\":\"barrier\"").await;
    let nodes = two_nodes_b_through(proxy.url(), |_| {}).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let hall = alice.create_server("one after the other").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    let (mut bob_gw, _) = b.connect(&bob.ws_query()).await;
    alice.post(&general, "warm-up").await;
    assert_eq!(
        bob_gw.next_event("MESSAGE_CREATE").await["content"],
        "warm-up"
    );

    proxy.hold();
    alice.post(&general, "first").await;
    let (alice_on_b, channel) = (alice.on(b), general.clone());
    let second = tokio::spawn(async move { alice_on_b.post(&channel, "second").await });
    tokio::select! {
        () = proxy.seen() => {}
        early = bob_gw.next_event("MESSAGE_CREATE") => {
            panic!("{early} came while the first message was held back");
        }
    }
    proxy.let_go();
    assert_eq!(
        bob_gw.next_event("MESSAGE_CREATE").await["content"],
        "first"
    );
    assert_eq!(
        bob_gw.next_event("MESSAGE_CREATE").await["content"],
        "second"
    );
    second.await.expect("the second post answered");
    shutdown(nodes).await;
}

/// A node that stores a message and dies before publishing it (here: cut off from NATS
/// as the message is posted) leaves it in the history; the other node, taking it for
/// dead three heartbeats later, finds it there and announces it to its own sessions
/// (a channel message, a thread reply, a direct message),
/// once: when the cut node comes back, anything it still had queued is dropped as a
/// copy, and what it publishes next arrives as usual.
#[tokio::test]
async fn a_message_a_node_stored_but_never_published_is_announced_for_it() {
    let proxy = Cuttable::start().await;
    let nodes = two_nodes_b_through(proxy.url(), |c| c.bus_heartbeat_secs = 1).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = a.user("alice").await;
    let bob = b.user("bob").await;
    let hall = alice.create_server("the lost post").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let thread_root = alice.post(&general, "root").await;
    bob.join(&hall).await;
    let dm = bob
        .api
        .post("/dm-channels", &json!({"user_id": alice.id}))
        .await;
    assert!(dm.status < 300, "{} {}", dm.status, dm.text);
    let (mut alice_gw, _) = a.connect(&alice.ws_query()).await;
    bob.post(&general, "before").await;
    assert_eq!(
        alice_gw.next_event("MESSAGE_CREATE").await["content"],
        "before"
    );

    proxy.cut();
    let lost = bob.post(&general, "while cut off").await;
    let reply = bob
        .api
        .post(
            &format!(
                "/channels/{general}/messages/{}/thread",
                thread_root["id"].as_str().unwrap()
            ),
            &json!({"content": "in the thread"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let direct = bob
        .api
        .post(
            &format!("/dm-channels/{}/messages", dm.body["id"].as_str().unwrap()),
            &json!({"content": "just between us"}),
        )
        .await;
    assert_eq!(direct.status, 201, "{}", direct.text);
    let announced = alice_gw.next_event("MESSAGE_CREATE").await;
    assert_eq!(announced, lost, "the message as stored");
    let in_thread = alice_gw.next_event("THREAD_MESSAGE_CREATE").await;
    assert_eq!(in_thread, reply.body);
    assert_eq!(alice_gw.next_event("DM_MESSAGE_CREATE").await, direct.body);
    assert_eq!(
        a.api()
            .metric("concord_bus_messages_total{outcome=\"announced_for_dead_node\"}")
            .await,
        3.0
    );

    proxy.restore();
    // b is heard again; what it still had queued comes first and is dropped as a
    // copy, and what it posts now reaches alice.
    let after = bob.post(&general, "after").await;
    assert_eq!(alice_gw.next_event("MESSAGE_CREATE").await, after);
    // b's NATS client kept all three while cut off and sent them once back.
    assert_eq!(
        a.api()
            .metric("concord_bus_messages_total{outcome=\"duplicate\"}")
            .await,
        3.0
    );
    shutdown(nodes).await;
}

/// A node killed between a directory change's commit and its publish (here cut off
/// from NATS, which the other node cannot tell from dead): once the other takes it for
/// dead, it reads the directory again, so a member the dead node kicked gets nothing
/// more of the server through it, though the kick's event never reached it; her
/// session, which missed that event, is closed for a READY as things are.
#[tokio::test]
async fn a_kick_a_node_stored_but_never_published_holds_once_it_is_taken_for_dead() {
    let proxy = Cuttable::start().await;
    let nodes = two_nodes_b_through(proxy.url(), |c| c.bus_heartbeat_secs = 1).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let alice = b.user("alice").await;
    let (carol, dave) = (a.user("carol").await, a.user("dave").await);
    let hall = alice.create_server("kicked in the dark").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let side = dave.create_server("on the side").await;
    let aside = dave.create_channel(&side, "aside", "text").await;
    carol.join(&hall).await;
    dave.join(&hall).await;
    carol.join(&side).await;
    let (mut carol_gw, _) = a.connect(&carol.ws_query()).await;
    let (mut dave_gw, _) = a.connect(&dave.ws_query()).await;
    let (_alice_gw, _) = b.connect(&alice.ws_query()).await;
    assert_eq!(presence_of(&mut carol_gw, &alice).await["status"], "online");
    assert_eq!(presence_of(&mut dave_gw, &alice).await["status"], "online");
    dave.post(&general, "before").await;
    assert_eq!(
        carol_gw.next_event("MESSAGE_CREATE").await["content"],
        "before"
    );

    proxy.cut();
    let kick = alice
        .api
        .post_empty(&format!("/servers/{hall}/members/{}/kick", carol.id))
        .await;
    assert!(kick.status < 300, "{} {}", kick.status, kick.text);
    // a takes b for dead after three heartbeats: alice goes offline there (for dave:
    // carol, no longer her co-member once a has read the directory again, may not be
    // told)...
    assert_eq!(presence_of(&mut dave_gw, &alice).await["status"], "offline");
    // ...and reads the directory again: carol's servers are not what a held, so her
    // session, which missed the kick, is closed, not resumable...
    assert_eq!(carol_gw.closed().await, Closed::Code(1011));
    assert_eq!(
        a.api()
            .metric("concord_bus_messages_total{outcome=\"directory_reread\"}")
            .await,
        1.0
    );
    // ...and her next READY, and what she gets from then on, are as things are: the
    // hall's messages no longer reach her (told apart by a message of the side server
    // posted after one of the hall's, through the same node).
    let (mut carol_gw, ready) = a.connect(&carol.ws_query()).await;
    let servers: Vec<&str> = ready["servers"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(servers, vec![side.as_str()], "{ready}");
    dave.post(&general, "probe").await;
    dave.post(&aside, "sentinel").await;
    assert_eq!(
        carol_gw.next_event("MESSAGE_CREATE").await["content"],
        "sentinel"
    );
    // dave, still a member, got it, and his session went on.
    assert_eq!(
        dave_gw.next_event("MESSAGE_CREATE").await["content"],
        "probe"
    );
    proxy.restore();
    shutdown(nodes).await;
}

/// A node cut off from NATS for longer than three heartbeats, then back. The other
/// node takes it for dead meanwhile (its user goes offline there) and, hearing it
/// again, asks it who it holds (he is online again). The node that was cut off takes
/// nobody for dead (the silence was its own), so its users never see the other
/// node's go offline. Once back it starts over, since it missed what was published
/// meanwhile: it asks every node who they hold (a user who left meanwhile is offline
/// there), reads the directory again (a member kicked meanwhile gets nothing more of
/// that server) and closes its sessions, not resumable (1011), so their clients
/// reconnect to things as they are now.
#[tokio::test]
async fn a_node_cut_off_from_nats_takes_nobody_for_dead_and_starts_over_once_back() {
    let proxy = Cuttable::start().await;
    let nodes = two_nodes_b_through(proxy.url(), |c| {
        c.bus_heartbeat_secs = 1;
        // Sessions b closes as it starts over do not flash offline.
        c.limits.presence_grace_secs = 30;
    })
    .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let (alice, carol) = (a.user("alice").await, a.user("carol").await);
    let (bob, dave) = (b.user("bob").await, b.user("dave").await);
    let hall = alice.create_server("through a proxy").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    let side = alice.create_server("on the side").await;
    let aside = alice.create_channel(&side, "aside", "text").await;
    for user in [&bob, &carol, &dave] {
        user.join(&hall).await;
    }
    dave.join(&side).await;
    let (mut alice_gw, _) = a.connect(&alice.ws_query()).await;
    let (carol_gw, _) = a.connect(&carol.ws_query()).await;
    let (mut bob_gw, _) = b.connect(&bob.ws_query()).await;
    let (mut dave_gw, _) = b.connect(&dave.ws_query()).await;
    let (mut dave_v2, dave_hello, _) = b.identify_v2(&dave, "", None).await;
    assert_eq!(presence_of(&mut alice_gw, &bob).await["status"], "online");

    proxy.cut();
    // carol leaves while b hears nothing.
    carol_gw.close(1000).await;
    // a hears nothing from b for three heartbeats: bob goes offline there.
    assert_eq!(presence_of(&mut alice_gw, &bob).await["status"], "offline");
    // dave is kicked from the hall while b hears nothing.
    let kick = alice
        .api
        .post_empty(&format!("/servers/{hall}/members/{}/kick", dave.id))
        .await;
    assert!(kick.status < 300, "{} {}", kick.status, kick.text);
    // b, cut off as long, still holds alice online: for two more seconds of the cut
    // (past b's own three heartbeats), bob does not see her go offline. (Her coming
    // online may still reach him: his READY may have been built before a's word.)
    let offline = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let update = presence_of(&mut bob_gw, &alice).await;
            if update["status"] == "offline" {
                return update;
            }
        }
    })
    .await;
    assert!(
        offline.is_err(),
        "alice went offline for bob while b was cut off"
    );

    proxy.restore();
    // b reconnects; a hears it again and asks who it holds: bob is back.
    assert_eq!(presence_of(&mut alice_gw, &bob).await["status"], "online");
    // b starts over: its sessions are closed, not resumable.
    assert_eq!(bob_gw.closed().await, Closed::Code(1011));
    assert_eq!(dave_gw.closed().await, Closed::Code(1011));
    assert_eq!(dave_v2.closed().await, Closed::Code(1011));
    // Its metrics tell the operator: the link was lost, and is up again.
    assert!(b.api().metric("concord_bus_link_losses_total").await >= 1.0);
    assert_eq!(b.api().metric("concord_bus_link_up").await, 1.0);
    assert_eq!(a.api().metric("concord_bus_link_losses_total").await, 0.0);
    assert!(
        a.api()
            .get("/metrics")
            .await
            .text
            .contains("\nconcord_bus_link_up 1\n"),
        "a's link is up"
    );
    // The v2 session missed what b missed: its RESUME is refused, and it identifies.
    let mut again = b.connect_raw("v=2").await.expect("upgrade");
    assert_eq!(again.next_frame().await["op"], "HELLO");
    again
        .send(&json!({"op": "RESUME", "d": {"token": dave.token, "session_id": dave_hello["session_id"], "seq": 1}}))
        .await;
    assert_eq!(again.next_frame().await["op"], "INVALID_SESSION");

    // bob comes back: b asked a who it holds, and carol is offline there (at once,
    // or as soon as b has waited for a's answer, which reaches his new session).
    let (mut bob_gw, _) = b.connect(&bob.ws_query()).await;
    let members = bob.on(b).api.get(&format!("/servers/{hall}/members")).await;
    assert_eq!(members.status, 200, "{}", members.text);
    let carol_online = members.body.as_array().is_some_and(|m| {
        m.iter().any(|m| {
            (m["user"]["id"] == carol.id.as_str() || m["user_id"] == carol.id.as_str())
                && m.to_string().contains("\"status\":\"online\"")
        })
    });
    if carol_online {
        assert_eq!(presence_of(&mut bob_gw, &carol).await["status"], "offline");
    }
    // dave comes back: b read the directory again, so the hall's events no longer
    // reach him (the side server's still do), while bob gets them.
    let (mut dave_gw, _) = b.connect(&dave.ws_query()).await;
    alice.post(&general, "after the kick").await;
    assert_eq!(
        bob_gw.next_event("MESSAGE_CREATE").await["content"],
        "after the kick"
    );
    alice.post(&aside, "on the side").await;
    assert_eq!(
        dave_gw.next_event("MESSAGE_CREATE").await["content"],
        "on the side"
    );
    shutdown(nodes).await;
}
