#![doc = include_str!("../README.md")]

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use concord_client::rest::{Authorization, Method, RawRequest};
use concord_client::{
    Compression,
    raw::{ConnectOptions, Connection, RawError},
};
use concord_protocol::{
    ChannelId, ChannelOverride, OverrideId, Role, RoleId, ServerId, Timestamp, UserId,
};
use concord_server::{AppState, Config, config::Rate, directory::DirectoryChange};
use serde_json::{Value, json};
use tokio::{sync::oneshot, task::JoinHandle};
use tokio_tungstenite::tungstenite::{self, Message};

/// How long an end-to-end test waits for something that should arrive. A guard
/// against hangs, not a timing assertion: on a healthy run frames arrive in
/// milliseconds.
pub const WAIT: Duration = Duration::from_secs(10);

/// A fresh, empty database on the test PostgreSQL server
/// (`CONCORD_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/…`): its
/// URL. `.ci/run` drops these (`concord_srv_*`) before each run.
///
/// # Panics
/// If PostgreSQL does not answer.
pub async fn fresh_postgres_url() -> String {
    let base = std::env::var("CONCORD_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/concord_test".to_owned());
    let server = base
        .rsplit_once('/')
        .map_or(base.as_str(), |(server, _)| server);
    let url = format!("{server}/concord_srv_{}", uuid::Uuid::new_v4().simple());
    concord_store::PostgresStore::create_database(&url)
        .await
        .expect("PostgreSQL answers at CONCORD_TEST_DATABASE_URL");
    url
}

/// A subject prefix of its own on the test NATS, so that clusters of different tests
/// never hear each other.
pub fn fresh_bus_prefix() -> String {
    format!("concord-test.{}", uuid::Uuid::new_v4().simple())
}

/// The test NATS server (`CONCORD_TEST_NATS_URL`, default `nats://127.0.0.1:4222`).
pub fn nats_url() -> String {
    std::env::var("CONCORD_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A real Concord server on 127.0.0.1:0 with its own temporary data directory.
pub struct TestServer {
    /// Bound address.
    pub addr: SocketAddr,
    /// The server's state (store, hub, directory) for white-box assertions.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    dir: PathBuf,
    /// The other nodes, when the server is a cluster (see [`TestServer::start_with`]).
    peers: Vec<TestServer>,
    /// Which node the next client goes to.
    turn: std::sync::atomic::AtomicUsize,
}

/// Configuration for tests: cheap password hashing, limits that tests do not trip
/// by accident, no presence grace period.
pub fn test_config(dir: PathBuf) -> Config {
    let mut config = Config {
        data_dir: dir,
        ..Config::default()
    };
    config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.password.memory_kib = 1024;
    config.password.iterations = 1;
    let generous = Rate {
        per_second: 100_000,
        burst: 100_000,
    };
    config.limits.rest_per_ip = generous;
    config.limits.auth_per_ip = generous;
    config.limits.per_bot = generous;
    config.limits.login_per_account = concord_server::config::PerMinute {
        per_minute: 100_000,
        burst: 100_000,
    };
    config.limits.presence_grace_secs = 0;
    config
}

impl TestServer {
    /// Starts a server with [`test_config`].
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server with [`test_config`] changed by `adjust`.
    ///
    /// # Panics
    /// If the server cannot start.
    ///
    /// With `CONCORD_TEST_NODES=n` (n > 1) in the environment, and no database or bus
    /// chosen by `adjust`, the server is a cluster of n nodes on a fresh PostgreSQL
    /// database and a NATS subject prefix of its own: each new client ([`api`],
    /// [`connect`], so each [`user`]) goes to the next node in turn, and the same tests
    /// check that the nodes behave as one server. White-box assertions (`state`) see
    /// the first node.
    ///
    /// [`api`]: TestServer::api
    /// [`connect`]: TestServer::connect
    /// [`user`]: TestServer::user
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = std::env::temp_dir().join(format!("concord-test-{}", uuid::Uuid::new_v4()));
        let mut config = test_config(dir.clone());
        adjust(&mut config);
        let nodes = std::env::var("CONCORD_TEST_NODES")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(1);
        if nodes < 2 || config.database_url.is_some() || config.bus_url.is_some() {
            return Self::start_config(config).await;
        }
        config.database_url = Some(fresh_postgres_url().await);
        config.bus_url = Some(nats_url());
        config.bus_prefix = fresh_bus_prefix();
        config
            .jwt_secret
            .get_or_insert_with(|| format!("test-cluster-{}", uuid::Uuid::new_v4().simple()));
        let mut first = Self::start_config(config.clone()).await;
        for _ in 1..nodes {
            let mut peer = config.clone();
            peer.data_dir =
                std::env::temp_dir().join(format!("concord-test-{}", uuid::Uuid::new_v4()));
            first.peers.push(Self::start_config(peer).await);
        }
        first
    }

    /// The address of the node the next client goes to (the server's own unless it
    /// runs as a cluster: then each call gives the next node).
    pub fn next_addr(&self) -> SocketAddr {
        if self.peers.is_empty() {
            return self.addr;
        }
        let turn =
            self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % (self.peers.len() + 1);
        match turn {
            0 => self.addr,
            n => self.peers[n - 1].addr,
        }
    }

    /// Gateway sessions held by every node of the server (its own, or every node's when
    /// it runs as a cluster).
    pub fn session_count(&self) -> usize {
        self.state.hub.session_count()
            + self
                .peers
                .iter()
                .map(|peer| peer.state.hub.session_count())
                .sum::<usize>()
    }

    /// Returns once every node of a cluster has delivered to its sessions (and applied)
    /// what the other nodes published before the call (nothing to wait for on one
    /// node). [`connect`](Self::connect) waits for it, so that a new session's node
    /// knows what the suite's earlier steps did, as one node would: a REST write that
    /// only sends events answers once they are on the bus, not once other nodes
    /// delivered them, and a session opened on one node is online on the others once
    /// their word arrives. Without the wait, a session opened on another node may get
    /// such an event, or the PRESENCE_UPDATE of a user READY showed offline, after
    /// READY (both documented in docs/deployment.md).
    ///
    /// Each node waits for [`concord_server::cluster::Cluster::caught_up`]: the other
    /// nodes' answers to its barrier come on the common route, their events on their
    /// servers' routes; one NATS server (the tests') keeps a connection's messages in
    /// order across subjects, so the events came first.
    pub async fn delivered(&self) {
        for node in std::iter::once(self).chain(&self.peers) {
            if let Some(cluster) = node.state.events.cluster() {
                cluster.caught_up().await;
            }
        }
    }

    /// Stops the server the way SIGTERM does, then starts a new one on the same data
    /// directory (database and secrets), configuration and address.
    ///
    /// # Panics
    /// If the server cannot start again.
    pub async fn restart(mut self) -> Self {
        self.stop().await;
        let mut config = (*self.state.config).clone();
        config.listen = self.addr;
        // The old server's directory now belongs to the new one (a cluster's nodes'
        // to theirs).
        self.dir = PathBuf::new();
        let mut peers = Vec::new();
        for mut peer in std::mem::take(&mut self.peers) {
            let mut config = (*peer.state.config).clone();
            config.listen = peer.addr;
            peer.dir = PathBuf::new();
            peers.push(config);
        }
        let mut first = Self::start_config(config).await;
        for config in peers {
            first.peers.push(Self::start_config(config).await);
        }
        first
    }

    async fn start_config(config: Config) -> Self {
        let dir = config.data_dir.clone();
        let store = concord_server::open_store(&config)
            .await
            .expect("open store");
        let listener = concord_server::bind(config.listen, config.listen_backlog).expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = concord_server::build_state(config, store)
            .await
            .expect("build state");
        let (tx, rx) = oneshot::channel::<()>();
        let serve_state = state.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            concord_server::serve(listener, serve_state, shutdown)
                .await
                .expect("serve");
        });
        Self {
            addr,
            state,
            shutdown: Some(tx),
            task: Some(task),
            dir,
            peers: Vec::new(),
            turn: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// `http://addr{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A REST client without credentials.
    pub fn api(&self) -> Api {
        Api::new(&format!("http://{}", self.next_addr()))
    }

    /// Registers a user (password `correct-horse-42`) and returns them with a client.
    ///
    /// # Panics
    /// If registration fails.
    pub async fn user(&self, username: &str) -> TestUser {
        TestUser::register(&self.api(), username).await
    }

    /// Opens a gateway connection with `?{query}` and reads READY (on a cluster, once
    /// every node has [`delivered`](Self::delivered) what came before).
    ///
    /// # Panics
    /// If the connection fails or the first frame is not READY.
    pub async fn connect(&self, query: &str) -> (Gateway, Value) {
        self.delivered().await;
        Gateway::connect(&self.next_addr().to_string(), query).await
    }

    /// Upgrades `/ws?{query}` without reading anything (on a cluster, once every node
    /// has [`delivered`](Self::delivered) what came before).
    ///
    /// # Errors
    /// The handshake's failure (a refused upgrade's status, say).
    pub async fn connect_raw(&self, query: &str) -> Result<Gateway, tungstenite::Error> {
        self.delivered().await;
        Gateway::connect_raw(&self.next_addr().to_string(), query).await
    }

    /// Opens a protocol v2 connection with `?v=2&{query}` (`query` may name a
    /// `compress`), reads HELLO, IDENTIFYs with `user`'s token and `intents` (none:
    /// every group), and reads READY. Returns the connection, HELLO's `d` and the
    /// READY frame (with its `s`).
    ///
    /// # Panics
    /// If any step fails.
    pub async fn identify_v2(
        &self,
        user: &TestUser,
        query: &str,
        intents: Option<&[&str]>,
    ) -> (Gateway, Value, Value) {
        let query = if query.is_empty() {
            "v=2".to_string()
        } else {
            format!("v=2&{query}")
        };
        let mut gateway = self.connect_raw(&query).await.expect("gateway upgrade");
        let hello = gateway.next_frame().await;
        assert_eq!(hello["op"], "HELLO", "first frame: {hello}");
        let mut d = json!({"token": user.token});
        if let Some(intents) = intents {
            d["intents"] = json!(intents);
        }
        gateway.send(&json!({"op": "IDENTIFY", "d": d})).await;
        let ready = gateway.next_frame().await;
        assert_eq!(ready["t"], "READY", "after IDENTIFY: {ready}");
        (gateway, hello["d"].clone(), ready)
    }

    /// Denies `bits` to `user` on `channel` through a user override, written straight
    /// to the store and published as a permission change only: v2 sessions that lose
    /// VIEW_CHANNEL get CHANNEL_DELETE, but unlike `PUT /channels/{id}/overrides` no
    /// CHANNEL_OVERRIDE_UPDATE goes out, so a test that sets up visibility this way sees
    /// no extra frame.
    ///
    /// # Panics
    /// If `channel` or the user's id is not a valid id, or the store fails.
    pub async fn deny(&self, channel: &str, user: &TestUser, bits: i64) {
        let ov = ChannelOverride {
            id: OverrideId::new(),
            channel_id: channel.parse::<ChannelId>().unwrap(),
            role_id: None,
            user_id: Some(user.user_id()),
            allow: 0,
            deny: bits,
        };
        self.settled(async {
            let stored = self.state.store.put_override(&ov).await.unwrap();
            concord_server::visibility::publish_permission_change(
                &self.state,
                DirectoryChange::OverrideUpserted(stored),
            )
            .await;
        })
        .await;
    }

    /// Gives `user` a new role holding `bits` in `server` (white-box: stored, then
    /// published as the role routes publish it, with what it changes in who may view
    /// which channel), settled on every node.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn grant(&self, server: &str, user: &TestUser, bits: i64) {
        let sid: ServerId = server.parse().unwrap();
        let role = Role {
            id: RoleId::new(),
            server_id: sid,
            name: format!("granted {bits}"),
            permissions: bits,
            color: None,
            position: 1,
            created_at: Timestamp::now(),
        };
        self.state.store.create_role(&role).await.unwrap();
        assert!(
            self.state
                .store
                .assign_role(sid, user.user_id(), role.id)
                .await
                .unwrap()
        );
        self.settled(async {
            for change in [
                DirectoryChange::RoleUpserted {
                    role: role.id,
                    server: sid,
                    permissions: bits,
                    position: 1,
                },
                DirectoryChange::MemberRoleAdded {
                    server: sid,
                    user: user.user_id(),
                    role: role.id,
                },
            ] {
                concord_server::visibility::publish_permission_change(&self.state, change).await;
            }
        })
        .await;
    }

    /// Times `user` out in `server` for an hour on `by`'s word (white-box, as the
    /// moderation routes do), settled on every node.
    ///
    /// # Panics
    /// If the store refuses.
    pub async fn time_out(&self, server: &str, by: &TestUser, user: &TestUser) {
        let now = Timestamp::now();
        let until = now.add_micros(3_600_000_000);
        let sid: ServerId = server.parse().unwrap();
        self.state
            .store
            .set_timeout(sid, user.user_id(), until, Some(by.user_id()), now)
            .await
            .unwrap();
        self.settled(async {
            self.state.events.change(DirectoryChange::TimeoutSet {
                server: sid,
                user: user.user_id(),
                until: Some(until),
            });
        })
        .await;
    }

    /// Runs `write` (changes made through this node's `state`, white-box) and, as a
    /// REST write does, returns once every node of a cluster has applied the changes
    /// it published.
    pub async fn settled<T>(&self, write: impl std::future::Future<Output = T>) -> T {
        let cluster = self.state.events.cluster();
        let changes = cluster.map(concord_server::cluster::Cluster::changes);
        let out = write.await;
        if let (Some(cluster), Some(changes)) = (cluster, changes) {
            cluster.settled(changes).await;
        }
        out
    }

    /// Stops the server the way SIGTERM does and waits for it.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Signals shutdown the way SIGTERM does and returns at once: the server goes on
    /// draining its sessions while the caller looks at what it does meanwhile.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    async fn stop(&mut self) {
        for peer in &mut self.peers {
            Box::pin(peer.stop()).await;
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(WAIT * 2, task).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A registered user with an authenticated client.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Id.
    pub id: String,
    /// Name.
    pub username: String,
    /// Access token.
    pub token: String,
    /// Refresh token.
    pub refresh: String,
    /// Client sending `Authorization: Bearer <token>`.
    pub api: Api,
}

impl TestUser {
    /// From an AuthResponse body.
    pub fn from_auth(server: &TestServer, body: &Value) -> Self {
        Self::from_response(&server.api(), body)
    }

    /// Registers a user (password `correct-horse-42`) on `api`'s server.
    ///
    /// # Panics
    /// If registration fails.
    pub async fn register(api: &Api, username: &str) -> Self {
        let res = api
            .post(
                "/auth/register",
                &json!({"username": username, "password": "correct-horse-42"}),
            )
            .await;
        assert_eq!(res.status, 201, "register {username}: {}", res.body);
        Self::from_response(api, &res.body)
    }

    /// From an AuthResponse body, with a client on `api`'s server.
    pub fn from_response(api: &Api, body: &Value) -> Self {
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string();
        Self {
            id: body["user"]["id"].as_str().expect("user.id").to_string(),
            username: body["user"]["username"]
                .as_str()
                .expect("username")
                .to_string(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_string(),
            api: api.bearer(&token),
            token,
        }
    }

    /// The same user with a client for another node of the same cluster.
    #[must_use]
    pub fn on(&self, server: &TestServer) -> Self {
        self.on_api(&server.api())
    }

    /// The same user with a client on `api`'s server.
    #[must_use]
    pub fn on_api(&self, api: &Api) -> Self {
        Self {
            api: api.bearer(&self.token),
            ..self.clone()
        }
    }

    /// `token=<access token>` for [`TestServer::connect`].
    pub fn ws_query(&self) -> String {
        format!("token={}", self.token)
    }

    /// The user's id, parsed.
    ///
    /// # Panics
    /// If the id is not a valid user id.
    pub fn user_id(&self) -> UserId {
        self.id.parse().unwrap()
    }

    /// Creates a public server (`POST /servers` with `{"name": name, "is_public": true}`),
    /// asserts 201 and returns its id.
    ///
    /// # Panics
    /// If the answer is not 201 (the body is in the message) or has no string id.
    pub async fn create_server(&self, name: &str) -> String {
        str_of(
            &self
                .create_server_with(&json!({"name": name, "is_public": true}))
                .await["id"],
        )
    }

    /// `POST /servers` with exactly this body; asserts 201 and returns the whole
    /// body (the server DTO). For private or invite-only servers.
    ///
    /// # Panics
    /// If the answer is not 201 (the body is in the message).
    pub async fn create_server_with(&self, body: &Value) -> Value {
        let res = self.api.post("/servers", body).await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.body
    }

    /// Creates a channel of type `kind` (`"text"` or `"voice"`) named `name` in
    /// `server`, asserts 201 and returns its id.
    ///
    /// # Panics
    /// If the answer is not 201 (the body is in the message) or has no string id.
    pub async fn create_channel(&self, server: &str, name: &str, kind: &str) -> String {
        let res = self
            .api
            .post(
                &format!("/servers/{server}/channels"),
                &json!({"name": name, "type": kind}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        str_of(&res.body["id"])
    }

    /// Joins `server` (`POST /servers/{server}/join`) and asserts 201.
    ///
    /// # Panics
    /// If the answer is not 201 (the body is in the message).
    pub async fn join(&self, server: &str) {
        let res = self
            .api
            .post_empty(&format!("/servers/{server}/join"))
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
    }

    /// Posts a message with this content in `channel`, asserts 201 and returns the
    /// message.
    ///
    /// # Panics
    /// If the answer is not 201 (the body is in the message).
    pub async fn post(&self, channel: &str, content: &str) -> Value {
        let res = self
            .api
            .post(
                &format!("/channels/{channel}/messages"),
                &json!({"content": content}),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        res.body
    }

    /// Joins the voice channel `channel` (`POST /channels/{channel}/voice`) and
    /// asserts 201.
    ///
    /// # Panics
    /// If the answer is not 201 (the body is in the message).
    pub async fn join_voice(&self, channel: &str) {
        let res = self
            .api
            .post_empty(&format!("/channels/{channel}/voice"))
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
    }
}

/// The 17 keys of a Message (`rest.md` §6), as every message answer and event carries them.
pub const MESSAGE_KEYS: &[&str] = &[
    "id",
    "channel_id",
    "author_id",
    "content",
    "reply_to",
    "mention_user_ids",
    "mention_everyone",
    "thread_id",
    "thread_reply_count",
    "edited_at",
    "deleted",
    "created_at",
    "pinned",
    "pinned_by",
    "pinned_at",
    "poll",
    "event",
];

/// The string `value` holds, owned.
///
/// # Panics
/// If `value` is not a string.
pub fn str_of(value: &Value) -> String {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"))
        .to_string()
}

/// The keys of the object `value`, sorted.
///
/// # Panics
/// If `value` is not an object.
pub fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

/// Asserts that `value` is an object with exactly these keys (in any order).
#[track_caller]
pub fn assert_keys(value: &Value, keys: &[&str]) {
    let obj = value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"));
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want = keys.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "keys of {value}");
}

/// Asserts an error answer: this status and a JSON `error` text (other keys allowed).
/// See [`assert_exact_error`] for the stricter form.
#[track_caller]
pub fn assert_error(res: &Response, status: u16) {
    assert_eq!(res.status, status, "{}", res.text);
    assert!(res.body["error"].is_string(), "error body: {}", res.text);
}

/// Asserts an error answer whose body is exactly `{"error": "<non-empty text>"}`,
/// with this status.
#[track_caller]
pub fn assert_exact_error(res: &Response, status: u16) {
    assert_eq!(res.status, status, "{}", res.text);
    assert_eq!(sorted_keys(&res.body), ["error"], "{}", res.text);
    assert!(
        !res.body["error"].as_str().expect("error text").is_empty(),
        "{}",
        res.text
    );
}

/// The scene most REST tests start from: alice owns the public server `hall` with the
/// text channel `general`; bob and carol are plain members.
pub struct Hall {
    /// The running server.
    pub server: TestServer,
    /// The owner.
    pub alice: TestUser,
    /// A plain member.
    pub bob: TestUser,
    /// Another plain member.
    pub carol: TestUser,
    /// The server's id.
    pub hall: String,
    /// The text channel's id.
    pub general: String,
}

impl Hall {
    /// The scene on a fresh [`TestServer`] with [`test_config`].
    pub async fn start() -> Self {
        Self::on(TestServer::start().await).await
    }

    /// The scene on `server`.
    ///
    /// # Panics
    /// If any step is refused.
    pub async fn on(server: TestServer) -> Self {
        let (alice, bob, carol) = (
            server.user("alice").await,
            server.user("bob").await,
            server.user("carol").await,
        );
        let hall = alice.create_server("hall").await;
        let general = alice.create_channel(&hall, "general", "text").await;
        bob.join(&hall).await;
        carol.join(&hall).await;
        Self {
            server,
            alice,
            bob,
            carol,
            hall,
            general,
        }
    }
}

/// A REST response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body as JSON (`Value::Null` when empty or not JSON).
    pub body: Value,
    /// Body as text.
    pub text: String,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
}

/// A small REST client: the SDK's REST client ([`concord_client::RestClient`]) at
/// the HTTP level, with its 429 retries off so that tests see every answer as sent.
#[derive(Debug, Clone)]
pub struct Api {
    rest: concord_client::RestClient,
}

impl Api {
    /// A client without credentials for the server at `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Self {
            rest: concord_client::RestClient::new(base)
                .with_retry(concord_client::rest::RetryPolicy::none()),
        }
    }

    /// The SDK client underneath (same base URL and credentials), for typed calls.
    pub fn sdk(&self) -> &concord_client::RestClient {
        &self.rest
    }

    fn with(&self, auth: Authorization) -> Self {
        Self {
            rest: self.rest.with_authorization(Some(auth)),
        }
    }

    /// This client sending `Authorization: Bearer <token>`.
    pub fn bearer(&self, token: &str) -> Self {
        self.with(Authorization::Bearer(token.to_string()))
    }

    /// This client sending `Authorization: Bot <token>`.
    pub fn bot(&self, token: &str) -> Self {
        self.with(Authorization::Bot(token.to_string()))
    }

    /// This client sending exactly this `Authorization` header.
    pub fn authorization(&self, value: &str) -> Self {
        self.with(Authorization::Raw(value.to_string()))
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Response {
        self.send(RawRequest::new(Method::GET, path)).await
    }

    /// The value of one series of `GET /metrics` (`series` as it stands before the
    /// value, labels included: `name{label="v"}`); 0 when the node has none yet.
    ///
    /// # Panics
    /// If `/metrics` does not answer 200 or the value is not a number.
    pub async fn metric(&self, series: &str) -> f64 {
        let res = self.get("/metrics").await;
        assert_eq!(res.status, 200, "{}", res.text);
        res.text
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().expect("a number"))
    }

    /// GET with one extra header.
    pub async fn get_with_header(&self, path: &str, name: &str, value: &str) -> Response {
        self.send(RawRequest::new(Method::GET, path).header(name, value))
            .await
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.send(json_request(Method::POST, path, body)).await
    }

    /// POST without a body.
    pub async fn post_empty(&self, path: &str) -> Response {
        self.send(RawRequest::new(Method::POST, path)).await
    }

    /// PATCH with a JSON body.
    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.send(json_request(Method::PATCH, path, body)).await
    }

    /// PUT without a body.
    pub async fn put(&self, path: &str) -> Response {
        self.send(RawRequest::new(Method::PUT, path)).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Response {
        self.send(RawRequest::new(Method::DELETE, path)).await
    }

    /// Any method with a raw body (text or bytes) and content type (for malformed
    /// input and multipart uploads).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: impl AsRef<[u8]>,
    ) -> Response {
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        self.send(RawRequest::new(method, path).body(content_type, body.as_ref().to_vec()))
            .await
    }

    async fn send(&self, request: RawRequest) -> Response {
        let res = self.rest.send_raw(&request).await.expect("request");
        let text = String::from_utf8_lossy(&res.body).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status: res.status,
            body,
            text,
            headers: res.headers,
        }
    }
}

fn json_request(method: Method, path: &str, body: &Value) -> RawRequest {
    RawRequest::new(method, path).json(body).expect("JSON body")
}

/// A gateway connection (a real WebSocket client): a thin layer over the SDK's
/// [`concord_client::raw::Connection`], which decodes the compressed streams (a
/// `zlib-stream` frame without the sync-flush suffix fails the test).
#[derive(Debug)]
pub struct Gateway {
    conn: Connection,
}

impl Gateway {
    /// Connects to `ws://{addr}/ws?{query}` (v1 unless the query says otherwise) and
    /// reads READY: the gateway and READY's `d`.
    ///
    /// # Panics
    /// If the upgrade fails or the first frame is not READY.
    pub async fn connect(addr: &str, query: &str) -> (Self, Value) {
        let mut gateway = Self::connect_raw(addr, query)
            .await
            .expect("gateway upgrade");
        let ready = gateway.next_frame().await;
        assert_eq!(ready["op"], "DISPATCH", "first frame: {ready}");
        assert_eq!(ready["t"], "READY", "first frame: {ready}");
        (gateway, ready["d"].clone())
    }

    /// Upgrades `ws://{addr}/ws?{query}` without reading anything.
    ///
    /// # Errors
    /// The handshake's failure (a refused upgrade's status, say).
    pub async fn connect_raw(addr: &str, query: &str) -> Result<Self, tungstenite::Error> {
        let url = format!("ws://{addr}/ws?{query}");
        let compression = if query.contains("compress=zlib-stream") {
            Some(Compression::ZlibStream)
        } else if query.contains("compress=zstd-stream") {
            Some(Compression::ZstdStream)
        } else {
            None
        };
        // tungstenite's own message limit, as a plain client has it.
        let options = ConnectOptions::new()
            .with_compression(compression)
            .with_max_message_size(64 << 20);
        match Connection::connect(&url, &options).await {
            Ok(conn) => Ok(Self { conn }),
            Err(RawError::Handshake(err)) => Err(err),
            Err(RawError::Io(err)) => Err(tungstenite::Error::Io(err)),
            Err(other) => Err(tungstenite::Error::Io(std::io::Error::other(other))),
        }
    }
}

/// Parses a server frame, checking on the way that it decodes as the typed protocol
/// (`concord_protocol::ServerMessage`): every event any test receives is thereby a
/// check that what the server sends and what a client decodes have not drifted apart.
///
/// # Panics
/// If the frame is not JSON, or a known op or event does not decode into its type.
fn typed(text: &str) -> Value {
    if let Err(err) = concord_protocol::ServerMessage::from_slice(text.as_bytes()) {
        panic!("the server sent a frame the typed protocol cannot read: {err}: {text}");
    }
    serde_json::from_str(text).expect("JSON frame")
}

/// What ended a connection, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// A close frame with this code.
    Code(u16),
    /// The TCP connection ended without a close frame.
    Abrupt,
}

impl Gateway {
    /// Sends a JSON value as a text frame.
    pub async fn send(&mut self, value: &Value) {
        self.send_text(&value.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.conn.send_text(text).await.expect("send");
    }

    /// Sends any message.
    pub async fn send_message(&mut self, message: Message) -> Result<(), tungstenite::Error> {
        self.conn.send_message(message).await
    }

    /// The SDK connection underneath, for typed reads and sends.
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The next text frame as JSON.
    ///
    /// # Panics
    /// On timeout, close, or a non-JSON frame.
    pub async fn next_frame(&mut self) -> Value {
        let payload = tokio::time::timeout(WAIT, self.conn.next_payload())
            .await
            .expect("timed out waiting for a frame");
        match payload {
            Ok(bytes) => {
                let text = std::str::from_utf8(bytes).expect("UTF-8 message");
                typed(text)
            }
            Err(RawError::Closed(close)) => panic!("connection ended: close frame {close:?}"),
            Err(RawError::Lost(err)) => panic!("connection ended: {err}"),
            Err(err) => panic!("unexpected frame: {err}"),
        }
    }

    /// The next DISPATCH of event `t`, skipping PRESENCE_UPDATEs (which depend on who
    /// connects when) unless `t` is PRESENCE_UPDATE. Panics on any other frame.
    pub async fn next_event(&mut self, t: &str) -> Value {
        loop {
            let frame = self.next_frame().await;
            if frame["t"] == "PRESENCE_UPDATE" && t != "PRESENCE_UPDATE" {
                continue;
            }
            assert_eq!(frame["t"], t, "expected {t}, got {frame}");
            return frame["d"].clone();
        }
    }

    /// The next frame that is not a PRESENCE_UPDATE.
    pub async fn next_non_presence(&mut self) -> Value {
        loop {
            let frame = self.next_frame().await;
            if frame["t"] != "PRESENCE_UPDATE" {
                return frame;
            }
        }
    }

    /// Reads until the connection ends and says how.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match tokio::time::timeout(WAIT, self.conn.next_payload())
                .await
                .expect("timed out waiting for close")
            {
                Err(RawError::Closed(Some(close))) => return Closed::Code(close.code),
                // A close frame without a code: 1005, as the RFC has the receiver say.
                Err(RawError::Closed(None)) => return Closed::Code(1005),
                Err(RawError::Lost(_)) => return Closed::Abrupt,
                Ok(_) | Err(_) => {}
            }
        }
    }

    /// Drops the TCP connection without a close frame (a lost network).
    pub fn drop_abruptly(self) {
        drop(self);
    }

    /// Closes with `code`.
    pub async fn close(mut self, code: u16) {
        // Drain until the server answers or drops.
        let _ = tokio::time::timeout(WAIT, self.conn.close(code, "")).await;
    }
}
