//! Node death: three `concord serve` processes on loopback (one PostgreSQL database,
//! one NATS, one secret), messages posted without pause, and one node killed with
//! SIGKILL. Its clients reconnect to the survivors; every message the server
//! acknowledged is in the history; the survivors' sessions miss nothing and keep
//! working; the dead node's users go offline within three heartbeats and leave voice.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use concord_testkit::{Api, Gateway, TestUser, fresh_bus_prefix, fresh_postgres_url, nats_url};
use serde_json::{Value, json};

/// A guard against hangs, not a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

/// One `concord serve` process.
struct Node {
    child: Child,
    url: String,
}

impl Node {
    fn start(database: &str, prefix: &str, secret: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("concord-node-{}", uuid::Uuid::new_v4()));
        let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
        for (name, _) in std::env::vars() {
            if name.starts_with("CONCORD_") {
                command.env_remove(name);
            }
        }
        // Every request of the test comes from 127.0.0.1: per-address limits off.
        std::fs::create_dir_all(&dir).expect("data dir");
        let config = dir.join("concord.toml");
        std::fs::write(
            &config,
            "[limits]\n\
             rest_per_ip = { per_second = 100000, burst = 100000 }\n\
             auth_per_ip = { per_second = 100000, burst = 100000 }\n",
        )
        .expect("config file");
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(&dir)
            .env("CONCORD_DATABASE_URL", database)
            .env("CONCORD_BUS_URL", nats_url())
            .env("CONCORD_BUS_PREFIX", prefix)
            .env("CONCORD_BUS_HEARTBEAT_SECS", "1")
            .env("CONCORD_JWT_SECRET", secret)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn concord serve");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = stdout.lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep reading so the process never blocks on a full pipe.
            for _ in lines {}
        });
        let bound = rx
            .recv_timeout(WAIT)
            .ok()
            .flatten()
            .expect("the node prints its address");
        Self {
            child,
            url: format!("http://{bound}"),
        }
    }

    fn api(&self) -> Api {
        Api::new(&self.url)
    }

    async fn connect(&self, user: &TestUser) -> Gateway {
        let addr = self.url.trim_start_matches("http://");
        Gateway::connect(addr, &user.ws_query()).await.0
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown, no goodbye on the bus.
        self.child.kill().expect("kill -9");
        let _ = self.child.wait();
    }

    /// SIGTERM: the node drains, as for a deploy, and exits.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM: {status}");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn register(node: &Node, name: &str) -> TestUser {
    TestUser::register(&node.api(), name).await
}

/// `n` nodes of a fresh cluster: a database, a subject prefix and a secret of their own.
async fn cluster(n: usize) -> Vec<Node> {
    let database = fresh_postgres_url().await;
    let prefix = fresh_bus_prefix();
    let secret = format!("cluster-secret-{}", uuid::Uuid::new_v4().simple());
    (0..n)
        .map(|_| Node::start(&database, &prefix, &secret))
        .collect()
}

/// The next MESSAGE_CREATE's content, skipping presence.
async fn next_message(gateway: &mut Gateway) -> String {
    let d = gateway.next_event("MESSAGE_CREATE").await;
    d["content"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_one_of_three_nodes_loses_nothing_committed() {
    let mut nodes = cluster(3).await;

    let alice = register(&nodes[0], "alice").await;
    let bob = register(&nodes[1], "bob").await;
    let carol = register(&nodes[2], "carol").await;
    let hall = alice.create_server("doomed node").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    bob.join(&hall).await;
    carol.join(&hall).await;

    let mut alice_gw = nodes[0].connect(&alice).await;
    let mut bob_gw = nodes[1].connect(&bob).await;
    let mut carol_gw = nodes[2].connect(&carol).await;
    alice.post(&general, "before").await;
    for gw in [&mut alice_gw, &mut bob_gw, &mut carol_gw] {
        assert_eq!(next_message(gw).await, "before");
    }

    // Alice posts through node 0 without pause while node 1 dies.
    // The kill comes once a third of the posts went through: mid-load, by count
    // rather than by a wall-clock wait.
    let (a_third, in_load) = tokio::sync::oneshot::channel();
    let poster = {
        let alice = alice.clone();
        let general = general.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut a_third = Some(a_third);
            for n in 0..60 {
                let content = format!("load {n}");
                let res = alice
                    .api
                    .post(
                        &format!("/channels/{general}/messages"),
                        &json!({"content": content}),
                    )
                    .await;
                if res.status == 201 {
                    acknowledged.push(content);
                }
                if n == 20
                    && let Some(a_third) = a_third.take()
                {
                    let _ = a_third.send(());
                }
            }
            acknowledged
        })
    };
    in_load.await.expect("the poster reached a third");
    nodes[1].kill();
    drop(bob_gw);
    // Bob's client reconnects to a survivor.
    let mut bob_gw = nodes[2].connect(&bob).await;
    let acknowledged = poster.await.expect("poster");
    assert_eq!(acknowledged.len(), 60, "node 0 kept accepting posts");

    // The survivors' sessions got every acknowledged message, in order.
    for gw in [&mut alice_gw, &mut carol_gw] {
        for want in &acknowledged {
            assert_eq!(&next_message(gw).await, want);
        }
    }
    // Every acknowledged message is in the history, read through another node.
    let history = carol
        .on_api(&nodes[2].api())
        .api
        .get(&format!("/channels/{general}/messages?limit=100"))
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    let stored: Vec<&str> = history
        .body
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    for want in &acknowledged {
        assert!(stored.contains(&want.as_str()), "{want} lost: {stored:?}");
    }

    // The survivors keep working, for the reconnected client too.
    alice.post(&general, "after").await;
    for gw in [&mut alice_gw, &mut carol_gw] {
        assert_eq!(next_message(gw).await, "after");
    }
    // Bob's new session on node 2 started during the load: from READY on, he has
    // every message without a gap, then "after".
    let mut since_ready = Vec::new();
    loop {
        let got = next_message(&mut bob_gw).await;
        if got == "after" {
            break;
        }
        since_ready.push(got);
    }
    assert!(
        acknowledged.ends_with(&since_ready),
        "bob's session missed some: {since_ready:?}"
    );

    drop(bob_gw);
    drop(alice_gw);
    drop(carol_gw);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_users_go_offline_within_three_heartbeats() {
    let mut nodes = cluster(2).await;
    let alice = register(&nodes[0], "alice").await;
    let dave = register(&nodes[1], "dave").await;
    let hall = alice.create_server("watchers").await;
    let lounge = alice.create_channel(&hall, "lounge", "voice").await;
    dave.join(&hall).await;
    let mut alice_gw = nodes[0].connect(&alice).await;
    let _dave_gw = nodes[1].connect(&dave).await;
    let online = next_presence(&mut alice_gw, &dave).await;
    assert_eq!(online["status"], "online", "{online}");
    dave.join_voice(&lounge).await;
    let joined = alice_gw.next_event("VOICE_STATE_UPDATE").await;
    assert_eq!(joined["channel_id"], lounge.as_str(), "{joined}");

    nodes[1].kill();
    // A write that changes shared state waits for every node to apply it: the dead
    // one cannot answer, so the first such write waits out the barrier's limit (1 s,
    // counted); the dead node is not waited for again.
    alice.create_channel(&hall, "after-1", "text").await;
    alice.create_channel(&hall, "after-2", "text").await;
    let timeouts = nodes[0]
        .api()
        .metric("concord_bus_messages_total{outcome=\"barrier_timeout\"}")
        .await;
    assert_eq!(timeouts, 1.0);
    // Node 0 hears nothing from node 1 for three heartbeats (3 s): dave goes offline,
    // and out of the voice channel he can no longer be in.
    // (Presence goes out on the next presence tick, the voice leave at once: either
    // may come first.)
    let (mut offline, mut left) = (None, None);
    while offline.is_none() || left.is_none() {
        let frame = alice_gw.next_frame().await;
        let about_dave = frame["d"]["user_id"] == dave.id.as_str();
        match frame["t"].as_str() {
            Some("PRESENCE_UPDATE") if about_dave => offline = Some(frame["d"].clone()),
            Some("VOICE_STATE_UPDATE") if about_dave => left = Some(frame["d"].clone()),
            _ => {}
        }
    }
    let (offline, left) = (offline.unwrap_or_default(), left.unwrap_or_default());
    assert_eq!(offline["status"], "offline", "{offline}");
    assert!(left["channel_id"].is_null(), "{left}");
}

/// The next PRESENCE_UPDATE about `user`.
async fn next_presence(gateway: &mut Gateway, user: &TestUser) -> Value {
    loop {
        let frame = gateway.next_frame().await;
        if frame["t"] == "PRESENCE_UPDATE" && frame["d"]["user_id"] == user.id.as_str() {
            return frame["d"].clone();
        }
    }
}

/// A protocol v2 connection to `node` that has read HELLO, and HELLO's `d`.
async fn v2(node: &Node) -> (Gateway, Value) {
    let addr = node.url.trim_start_matches("http://");
    let mut gateway = Gateway::connect_raw(addr, "v=2").await.expect("upgrade");
    let hello = gateway.next_frame().await;
    assert_eq!(hello["op"], "HELLO");
    (gateway, hello["d"].clone())
}

/// A v2 session of `user` on `node`, sent messages only, that has read READY (`s` 1):
/// its connection and its id.
async fn identified(node: &Node, user: &TestUser) -> (Gateway, String) {
    let (mut gateway, hello) = v2(node).await;
    gateway
        .send(&json!({"op": "IDENTIFY", "d": {"token": user.token, "intents": ["messages"]}}))
        .await;
    let ready = gateway.next_frame().await;
    assert_eq!(ready["t"], "READY", "{ready}");
    let session = hello["session_id"].as_str().expect("session id").to_owned();
    (gateway, session)
}

/// RESUMEs `session` of `user` after `seq` through `node`; returns the connection and
/// the MESSAGE_CREATE contents replayed before RESUMED, after checking that the
/// numbering runs on without a gap. `None`: INVALID_SESSION.
async fn resume(
    node: &Node,
    user: &TestUser,
    session: &str,
    seq: &mut u64,
) -> Option<(Gateway, Vec<String>)> {
    let (mut gateway, _) = v2(node).await;
    gateway
        .send(&json!({"op": "RESUME", "d": {"token": user.token, "session_id": session, "seq": *seq}}))
        .await;
    let mut replayed = Vec::new();
    loop {
        let frame = gateway.next_frame().await;
        if frame["op"] == "INVALID_SESSION" {
            return None;
        }
        assert_eq!(
            frame["s"].as_u64(),
            Some(*seq + 1),
            "no gap, no repeat: {frame}"
        );
        *seq += 1;
        match frame["t"].as_str() {
            Some("RESUMED") => return Some((gateway, replayed)),
            Some("MESSAGE_CREATE") => {
                replayed.push(
                    frame["d"]["content"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            _ => {}
        }
    }
}

/// A v2 client whose connection another node relays to its session's node: when the
/// relaying node dies, it resumes through a third and misses nothing; when the
/// session's own node dies, the relaying node tells it to reconnect within three
/// heartbeats, and its session is gone with that node (it identifies again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relayed_v2_client_resumes_past_its_relays_death() {
    let mut nodes = cluster(3).await;
    let alice = register(&nodes[0], "alice").await;
    let hall = alice.create_server("relayed").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    // The session is node 0's; the client comes back through node 1.
    let (first, session) = identified(&nodes[0], &alice).await;
    let mut seq = 1;
    first.drop_abruptly();
    let (mut relayed, replayed) = resume(&nodes[1], &alice, &session, &mut seq)
        .await
        .expect("resumed through node 1");
    assert!(replayed.is_empty());
    alice.post(&general, "relayed").await;
    assert_eq!(next_message(&mut relayed).await, "relayed");
    seq += 1;

    // The relaying node dies; the session's node goes on numbering what comes.
    nodes[1].kill();
    for content in ["gap 1", "gap 2"] {
        alice.post(&general, content).await;
    }
    assert_eq!(relayed.closed().await, concord_testkit::Closed::Abrupt);
    let (mut relayed, replayed) = resume(&nodes[2], &alice, &session, &mut seq)
        .await
        .expect("resumed through node 2");
    assert_eq!(replayed, ["gap 1", "gap 2"]);
    alice.post(&general, "live").await;
    assert_eq!(next_message(&mut relayed).await, "live");
    seq += 1;

    // The session's own node dies: node 2 hears nothing from it for three heartbeats
    // and sends its client on; the session is gone.
    nodes[0].kill();
    assert_eq!(relayed.next_frame().await["op"], "RECONNECT");
    assert_eq!(relayed.closed().await, concord_testkit::Closed::Code(1001));
    assert!(
        resume(&nodes[2], &alice, &session, &mut seq)
            .await
            .is_none(),
        "INVALID_SESSION"
    );
}

/// The clients of a node killed under them come to ask for their sessions within a
/// second or so. The first question waits out its limit for the dead node; the node
/// that asked then ends the questions still waiting for it and stops waiting for it,
/// so the clients refused with the first and after it wait out no limit of their own
/// (counted on the asking node: one question timed out, not one per client).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_node_is_waited_for_by_one_resume_not_by_each() {
    let mut nodes = cluster(3).await;
    let alice = register(&nodes[0], "alice").await;
    let mut sessions = Vec::new();
    for _ in 0..3 {
        sessions.push(identified(&nodes[1], &alice).await);
    }
    nodes[1].kill();
    let ids: Vec<String> = sessions.into_iter().map(|(_, id)| id).collect();
    // The first two ask while the dead node is still waited for: the second within
    // the first's 1 s limit, 300 ms after it, so that the first times out first and
    // ends the second's question. Real time: the nodes are other processes, whose
    // clocks a paused runtime cannot hold; the pause only orders the two questions.
    let mut asking = Vec::new();
    for id in &ids[..2] {
        let (mut gateway, _) = v2(&nodes[0]).await;
        gateway
            .send(&json!({"op": "RESUME", "d": {"token": alice.token, "session_id": id, "seq": 1}}))
            .await;
        asking.push(gateway);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for gateway in &mut asking {
        assert_eq!(gateway.next_frame().await["op"], "INVALID_SESSION");
    }
    // The third asks after: the dead node is not waited for.
    assert!(
        resume(&nodes[0], &alice, &ids[2], &mut 1).await.is_none(),
        "the dead node's session is gone"
    );
    let api = nodes[0].api();
    assert_eq!(
        api.metric(r#"concord_bus_messages_total{outcome="find_timeout"}"#)
            .await,
        1.0
    );
}

/// A node drains just as one of the nodes it would hand its v2 sessions to dies
/// (kill -9; the draining node cannot know yet): what that node never took goes to the
/// node left, and every client resumes there with what was posted meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_hands_its_sessions_past_a_node_that_died() {
    let mut nodes = cluster(3).await;
    let alice = register(&nodes[0], "alice").await;
    let hall = alice.create_server("drained").await;
    let general = alice.create_channel(&hall, "general", "text").await;
    // Four sessions on node 0: handed out in turn, two would go to node 1.
    let mut sessions = Vec::new();
    for _ in 0..4 {
        sessions.push(identified(&nodes[0], &alice).await);
    }
    nodes[1].kill();
    nodes[0].terminate();
    let mut parked = Vec::new();
    for (mut gateway, session) in sessions {
        assert_eq!(gateway.next_frame().await["op"], "RECONNECT");
        assert_eq!(gateway.closed().await, concord_testkit::Closed::Code(1001));
        parked.push(session);
    }
    let through_the_last = alice.on_api(&nodes[2].api());
    through_the_last.post(&general, "meanwhile").await;
    for session in parked {
        let mut seq = 1;
        let (_, replayed) = resume(&nodes[2], &alice, &session, &mut seq)
            .await
            .expect("resumed on the node left");
        assert_eq!(replayed, ["meanwhile"], "session {session}");
    }
}
