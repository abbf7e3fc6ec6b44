//! Configuration: one typed struct, built once from defaults, then `concord.toml`, then
//! `CONCORD_*` environment variables (command-line flags are applied by the binary).

use std::{net::IpAddr, net::SocketAddr, path::PathBuf};

use serde::Deserialize;

/// Who may register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationMode {
    /// Anyone.
    #[default]
    Open,
    /// Only with a valid server invite code.
    InviteOnly,
    /// Nobody.
    Closed,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// ICE/TURN settings for `GET /ice-servers`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct IceConfig {
    /// TURN URL (e.g. `turn:turn.example.org:3478`); none = STUN only.
    pub turn_url: Option<String>,
    /// Shared secret for TURN REST credentials.
    pub turn_secret: Option<String>,
}

impl std::fmt::Debug for IceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceConfig")
            .field("turn_url", &self.turn_url)
            .field(
                "turn_secret",
                &self.turn_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Who may read `GET /metrics`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Client addresses (CIDR blocks; a bare address is one host) allowed without a
    /// token. The client address is the one the rate limits use: the peer, or behind a
    /// trusted proxy the forwarded one. Default: loopback only.
    #[serde(deserialize_with = "networks")]
    pub allow: Vec<ipnet::IpNet>,
    /// A bearer token that opens `/metrics` from any address (`Authorization: Bearer
    /// …`, as Prometheus' `authorization` scrape setting sends it); at least 32
    /// characters. None: addresses only.
    pub token: Option<String>,
}

/// CIDR blocks, or bare addresses (one host each).
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| {
            text.parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{text:?} is not an address or CIDR block"))
                })
        })
        .collect()
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            allow: vec![
                ipnet::IpNet::new_assert(IpAddr::from([127, 0, 0, 0]), 8),
                ipnet::IpNet::new_assert(IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
            ],
            token: None,
        }
    }
}

impl MetricsConfig {
    /// Whether `ip` may read without a token.
    pub fn allows(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen on an IPv6 socket (`::ffff:a.b.c.d`) is that IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&ip))
    }
}

impl std::fmt::Debug for MetricsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsConfig")
            .field("allow", &self.allow)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A token bucket: `per_second` refill, `burst` capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: u32,
    /// Bucket size.
    pub burst: u32,
}

/// A slow token bucket: `per_minute` refill, `burst` capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerMinute {
    /// Tokens added per minute.
    pub per_minute: u32,
    /// Bucket size.
    pub burst: u32,
}

/// Limits (`rest.md` §4, `gateway.md` §5).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Every route but health, per client IP (the `/ws` upgrade included).
    pub rest_per_ip: Rate,
    /// Additionally on the auth routes, per client IP.
    pub auth_per_ip: Rate,
    /// Requests made with a bot token, per bot.
    pub per_bot: Rate,
    /// Login attempts per username, from all addresses together: one account cannot
    /// be brute-forced from many addresses.
    pub login_per_account: PerMinute,
    /// Peers whose `X-Forwarded-For` is trusted to name the client.
    pub trusted_proxies: Vec<IpAddr>,
    /// Gateway idle timeout, seconds.
    pub gateway_idle_secs: u64,
    /// Gateway inbound frames per rolling second.
    pub gateway_frames_per_sec: usize,
    /// Most frames queued per session.
    pub queue_max_frames: usize,
    /// Most bytes queued per session.
    pub queue_max_bytes: usize,
    /// Seconds a user stays "online" after their last session drops uncleanly.
    pub presence_grace_secs: u64,
    /// Presence announcements are delivered in ticks of this many milliseconds, each
    /// recipient getting a tick's announcements in one write (0: one by one). A peer
    /// cannot tell when a status really changed, so a quarter second is not seen;
    /// what it buys is measured in BENCHMARKS.md (a server of 10k members coming
    /// online: 94 connects/s at 20 ms, 262 at 250 ms).
    pub presence_batch_ms: u64,
    /// Least milliseconds between two socket writes of a busy session: frames that
    /// arrive meanwhile share one write (an idle session writes at once, so only a
    /// session receiving more than one frame per linger waits). A write costs about
    /// four times a frame's own share, so this is fan-out's main lever: at 1k
    /// members and 8 posts in flight, 20 ms measured 1.4 µs of server CPU per
    /// delivery against 2.7 µs at 2 ms (BENCHMARKS.md).
    pub write_linger_ms: u64,
    /// The most milliseconds a busy session's linger grows to while the server is
    /// saturated: when a session's frames pile up and wait long for its task, its
    /// linger rises to four times that wait, within this, and falls back as the server
    /// catches up. At N=10k members with 8 posts in flight this took fan-out from
    /// 2.5 to 1.2–1.3 µs of server CPU per delivery on the 2-core box, and from 2.0 to
    /// 1.0–1.4 µs on two cores of a larger machine (BENCHMARKS.md). The price: when a
    /// saturated spell ends, a session's next message may wait out its raised linger
    /// once. At or below `write_linger_ms`: a fixed linger.
    pub write_linger_max_ms: u64,
    /// Protocol v2: the heartbeat interval announced in HELLO, milliseconds; a session
    /// that sends no HEARTBEAT for 1.5 intervals is closed with 4006.
    pub heartbeat_interval_ms: u64,
    /// Protocol v2: seconds after the upgrade within which IDENTIFY or RESUME must
    /// come (4003).
    pub identify_timeout_secs: u64,
    /// Protocol v2: most events a session keeps for RESUME.
    pub replay_max_events: usize,
    /// Protocol v2: most bytes a session keeps for RESUME.
    pub replay_max_bytes: usize,
    /// Protocol v2: seconds a dropped session can be resumed, and the oldest event
    /// its replay buffer keeps.
    pub resume_window_secs: u64,
    /// Protocol v2: bytes all replay buffers of the node may hold together; past it,
    /// a session gives up its own oldest events first.
    pub replay_budget_bytes: usize,
    /// Protocol v2: seconds without a message after which a compressed connection
    /// frees its compression context (60 KiB with zstd, 150 KiB with zlib at the
    /// defaults); the next message starts a fresh one, without the history.
    pub compression_idle_secs: u64,
    /// Set `TCP_NODELAY` on accepted sockets. Off by default: with Nagle on, the
    /// kernel also merges a busy socket's writes while earlier data is unacknowledged,
    /// which measured about a third less server CPU per delivery in fan-out
    /// (BENCHMARKS.md). On, small frames never wait for an ACK (a lower tail latency).
    pub tcp_nodelay: bool,
    /// Seconds a connection may take to send a request's headers (the first request's
    /// and every later one's on a kept-alive connection, counted from when the server
    /// starts waiting for it): a slowloris handshake is closed after it.
    pub header_read_secs: u64,
    /// Seconds a request's body may take to arrive, counted from when the handler
    /// starts reading it: a trickled body is answered 408 and the connection closed.
    pub body_read_secs: u64,
    /// Largest request body, bytes: a `Content-Length` over it is answered 413 before
    /// the body is read, and a body without one that grows over it gets 413 too.
    pub max_body_bytes: usize,
    /// Open connections per client address (peer IP), not yet upgraded ones and
    /// gateway sockets alike; over it a new connection is answered 429 and closed.
    /// `trusted_proxies` are exempt (they carry many clients; `sessions_per_ip`
    /// still counts each forwarded client).
    pub connections_per_ip: usize,
    /// Open connections in all; over it a new connection is answered 503 and closed.
    /// Unset: the process's open-file limit (`RLIMIT_NOFILE`) less `fd_reserve`.
    pub max_connections: Option<usize>,
    /// File descriptors kept out of `max_connections`' default for the database, the
    /// bus, logs and the answers that refuse connections.
    pub fd_reserve: usize,
    /// Gateway sessions per client address (the one the rate limits use); over it the
    /// upgrade is answered 429.
    pub sessions_per_ip: usize,
    /// Gateway sessions per user on this node; over it the upgrade is answered 429 (a
    /// v2 IDENTIFY or RESUME after the upgrade is closed with 4008).
    pub sessions_per_user: usize,
    /// When the server closes a connection it stops writing and reads and discards
    /// what the client still sends, so that the client reads the answer rather than a
    /// reset: for at most this many seconds ...
    pub close_linger_secs: u64,
    /// ... and at most this many bytes.
    pub close_linger_bytes: usize,
}

impl Limits {
    /// The cap on open connections in effect: `max_connections`, or the open-file
    /// limit less `fd_reserve` (at least 64), or 10,000 where that limit is unknown.
    pub fn connection_cap(&self) -> usize {
        self.max_connections.unwrap_or_else(|| {
            concord_sys::open_files_limit().map_or(10_000, |limit| {
                usize::try_from(limit)
                    .unwrap_or(usize::MAX)
                    .saturating_sub(self.fd_reserve)
                    .max(64)
            })
        })
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            rest_per_ip: Rate {
                per_second: 10,
                burst: 20,
            },
            auth_per_ip: Rate {
                per_second: 2,
                burst: 5,
            },
            per_bot: Rate {
                per_second: 50,
                burst: 50,
            },
            login_per_account: PerMinute {
                per_minute: 6,
                burst: 10,
            },
            trusted_proxies: Vec::new(),
            gateway_idle_secs: concord_protocol::limits::GATEWAY_IDLE_SECS,
            gateway_frames_per_sec: concord_protocol::limits::GATEWAY_RATE_COUNT,
            queue_max_frames: 4096,
            queue_max_bytes: 4 * 1024 * 1024,
            presence_grace_secs: 15,
            presence_batch_ms: 250,
            write_linger_ms: 20,
            write_linger_max_ms: 250,
            heartbeat_interval_ms: 30_000,
            identify_timeout_secs: 10,
            replay_max_events: 1_000,
            replay_max_bytes: 1024 * 1024,
            resume_window_secs: 120,
            replay_budget_bytes: 256 * 1024 * 1024,
            compression_idle_secs: 30,
            tcp_nodelay: false,
            header_read_secs: 10,
            body_read_secs: 30,
            max_body_bytes: 2 * 1024 * 1024,
            connections_per_ip: 512,
            max_connections: None,
            fd_reserve: 256,
            sessions_per_ip: 256,
            sessions_per_user: 32,
            close_linger_secs: 5,
            close_linger_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Password hashing cost (argon2id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Threads that hash (each keeps one memory block of `memory_kib`); 0: one per
    /// core, at most 4.
    pub workers: usize,
    /// Hashes waiting for a worker; past it a login, registration or password change
    /// is answered 503 with `Retry-After`.
    pub queue: usize,
}

impl Default for PasswordCost {
    fn default() -> Self {
        // OWASP's argon2id baseline.
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            workers: 0,
            queue: 16,
        }
    }
}

/// Outbound webhook delivery (`[webhooks]`, `rest-extras.md` §9.2, X12).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Networks (CIDR blocks; a bare address is one host) that deliveries may reach
    /// although they are loopback, private, link-local, unique-local, CGNAT,
    /// multicast, unspecified, documentation or metadata addresses. Default: none.
    #[serde(deserialize_with = "networks")]
    pub allow_networks: Vec<ipnet::IpNet>,
    /// Seconds one delivery attempt may take (connect, send and answer).
    pub timeout_secs: u64,
    /// Milliseconds to wait before each retry; one attempt plus one per entry.
    pub retry_delays_ms: Vec<u64>,
    /// Deliveries waiting for a worker; past it new ones are dropped (and counted).
    pub queue_size: usize,
    /// Deliveries in flight at once.
    pub workers: usize,
    /// Least seconds between two test pings of one webhook (429 sooner).
    pub test_interval_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            timeout_secs: 10,
            retry_delays_ms: vec![5_000, 15_000],
            queue_size: 10_000,
            workers: 4,
            test_interval_secs: 5,
        }
    }
}

/// Audio over the gateway (`[audio]`, `docs/protocol-v2.md` §15.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// Seconds of audio one stream may hold ahead of its release (1–60).
    pub buffer_secs: u64,
    /// Chunks a subscriber may fall behind before its oldest are dropped (1–1000).
    pub subscriber_queue_chunks: usize,
}

impl Default for AudioConfig {
    fn default() -> Self {
        Self {
            buffer_secs: 10,
            subscriber_queue_chunks: 50,
        }
    }
}

/// The whole configuration.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Length of the listening socket's queue of connections not yet accepted (the
    /// kernel caps it at `net.core.somaxconn`). A reconnect storm sends thousands of
    /// SYNs at once; past the queue's length the kernel drops them, and each dropped
    /// client waits out a 1 s, then 3 s retransmission. The usual default of 128
    /// overflowed with 512 connects in flight (BENCHMARKS.md).
    pub listen_backlog: u32,
    /// Where the database and generated secrets live.
    pub data_dir: PathBuf,
    /// Database URL; default: `sqlite://<data_dir>/concord.db`.
    pub database_url: Option<String>,
    /// The bus between nodes: unset = this process alone (in-process bus);
    /// `nats://host:port` = NATS, shared by every node of the cluster.
    pub bus_url: Option<String>,
    /// The NATS subject prefix of the cluster (nodes of one cluster share it; two
    /// clusters on one NATS need different ones).
    pub bus_prefix: String,
    /// Seconds between the heartbeats a node of a cluster sends; a node silent for
    /// three is taken for dead and the users only it held go offline.
    pub bus_heartbeat_secs: u64,
    /// Registration mode, until an instance admin chooses one (`PATCH /admin/settings`,
    /// stored in the database), which is in force from then on.
    pub registration: RegistrationMode,
    /// Log format.
    pub log_format: LogFormat,
    /// JWT signing secret (≥ 32 chars); default: generated into the data dir.
    pub jwt_secret: Option<String>,
    /// ICE/TURN.
    pub ice: IceConfig,
    /// Limits.
    pub limits: Limits,
    /// Password hashing cost.
    pub password: PasswordCost,
    /// Origins allowed to call the API from a browser on another origin: empty means
    /// same-origin only (no CORS headers), `["*"]` any origin.
    pub cors_origins: Vec<String>,
    /// Access to `GET /metrics`.
    pub metrics: MetricsConfig,
    /// Clock skew tolerated when checking a token's `exp` and `iat`, in seconds.
    pub token_leeway_secs: u64,
    /// How long after a refresh the token it replaced may still be presented without
    /// ending the login, in seconds: two tabs that refresh with the same token at once
    /// get one new pair and one 401, not a logout (`rest.md` R15). Any other reuse of
    /// a replaced refresh token ends the whole login.
    pub refresh_reuse_grace_secs: u64,
    /// Outbound webhook delivery.
    pub webhooks: WebhookConfig,
    /// Audio over the gateway.
    pub audio: AudioConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("listen_backlog", &self.listen_backlog)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|u| redact_url(u)),
            )
            .field("bus_url", &self.bus_url.as_ref().map(|u| redact_url(u)))
            .field("bus_prefix", &self.bus_prefix)
            .field("bus_heartbeat_secs", &self.bus_heartbeat_secs)
            .field("registration", &self.registration)
            .field("log_format", &self.log_format)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("ice", &self.ice)
            .field("limits", &self.limits)
            .field("password", &self.password)
            .field("cors_origins", &self.cors_origins)
            .field("metrics", &self.metrics)
            .field("token_leeway_secs", &self.token_leeway_secs)
            .field("refresh_reuse_grace_secs", &self.refresh_reuse_grace_secs)
            .field("webhooks", &self.webhooks)
            .field("audio", &self.audio)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            listen_backlog: 4096,
            data_dir: PathBuf::from("./concord-data"),
            database_url: None,
            bus_url: None,
            bus_prefix: "concord".into(),
            bus_heartbeat_secs: 5,
            registration: RegistrationMode::Open,
            log_format: LogFormat::Text,
            jwt_secret: None,
            ice: IceConfig::default(),
            limits: Limits::default(),
            password: PasswordCost::default(),
            cors_origins: Vec::new(),
            metrics: MetricsConfig::default(),
            token_leeway_secs: crate::auth::DEFAULT_LEEWAY_SECS,
            refresh_reuse_grace_secs: 10,
            webhooks: WebhookConfig::default(),
            audio: AudioConfig::default(),
        }
    }
}

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid configuration.
    #[error("invalid configuration in {path}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: toml::de::Error,
    },
    /// An environment variable has a bad value.
    #[error("invalid value for {name}: {reason}")]
    Env {
        /// Variable.
        name: &'static str,
        /// Why.
        reason: String,
    },
}

impl Config {
    /// Defaults, then the TOML file at `path` (if given, or `./concord.toml` if it
    /// exists), then `CONCORD_*` variables from `env`.
    ///
    /// # Errors
    /// An unreadable or invalid file, or a bad environment value.
    pub fn load(
        path: Option<&std::path::Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let default_path = std::path::Path::new("concord.toml");
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None if default_path.exists() => Some(default_path.to_path_buf()),
            None => None,
        };
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })?
            }
            None => Self::default(),
        };
        config.apply_env(env)?;
        Ok(config)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = env("CONCORD_LISTEN") {
            self.listen = v.parse().map_err(|e| ConfigError::Env {
                name: "CONCORD_LISTEN",
                reason: format!("{e}"),
            })?;
        }
        if let Some(v) = env("CONCORD_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("CONCORD_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = env("CONCORD_BUS_URL") {
            // Set but empty: the in-process bus, as when unset.
            self.bus_url = (!v.is_empty()).then_some(v);
        }
        if let Some(v) = env("CONCORD_BUS_PREFIX") {
            self.bus_prefix = v;
        }
        if let Some(v) = env("CONCORD_BUS_HEARTBEAT_SECS") {
            self.bus_heartbeat_secs = v.parse().map_err(|e| ConfigError::Env {
                name: "CONCORD_BUS_HEARTBEAT_SECS",
                reason: format!("{e}"),
            })?;
        }
        if let Some(v) = env("CONCORD_REGISTRATION") {
            self.registration = match v.as_str() {
                "open" => RegistrationMode::Open,
                "invite_only" => RegistrationMode::InviteOnly,
                "closed" => RegistrationMode::Closed,
                other => {
                    return Err(ConfigError::Env {
                        name: "CONCORD_REGISTRATION",
                        reason: format!("{other:?} is not open, invite_only or closed"),
                    });
                }
            };
        }
        if let Some(v) = env("CONCORD_LOG_FORMAT") {
            self.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::Env {
                        name: "CONCORD_LOG_FORMAT",
                        reason: format!("{other:?} is not text or json"),
                    });
                }
            };
        }
        if let Some(v) = env("CONCORD_JWT_SECRET") {
            self.jwt_secret = Some(v);
        }
        if let Some(v) = env("CONCORD_METRICS_TOKEN") {
            self.metrics.token = Some(v);
        }
        if let Some(v) = env("CONCORD_TURN_URL") {
            self.ice.turn_url = Some(v);
        }
        if let Some(v) = env("CONCORD_TURN_SECRET") {
            self.ice.turn_secret = Some(v);
        }
        Ok(())
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("concord.db").display()))
    }

    /// [`Config::database_url`] as it may be logged: a password in it is hidden.
    pub fn database_url_for_logs(&self) -> String {
        redact_url(&self.database_url())
    }

    /// [`Config::bus_url`] as it may be logged: a password in it is hidden.
    pub fn bus_url_for_logs(&self) -> Option<String> {
        self.bus_url.as_deref().map(redact_url)
    }
}

/// `scheme://user:password@host/…` with the password hidden.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}://{user}:<redacted>@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_password_never_reaches_the_logs() {
        let config = Config {
            database_url: Some("postgres://concord:hunter2@db:5432/concord".into()),
            ..Config::default()
        };
        let logged = config.database_url_for_logs();
        assert_eq!(logged, "postgres://concord:<redacted>@db:5432/concord");
        assert!(!logged.contains("hunter2"));
    }

    #[test]
    fn defaults_then_file_then_env() {
        let dir = std::env::temp_dir().join(format!("concord-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("concord.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nregistration = \"closed\"\n[limits]\npresence_grace_secs = 3\n",
        )
        .unwrap();
        let env = |name: &str| (name == "CONCORD_LISTEN").then(|| "127.0.0.1:9100".to_string());
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.listen.port(), 9100, "env wins over the file");
        assert_eq!(config.registration, RegistrationMode::Closed);
        assert_eq!(config.limits.presence_grace_secs, 3);
        assert_eq!(config.limits.rest_per_ip, Limits::default().rest_per_ip);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_connection_cap_is_set_or_derived_from_the_file_limit() {
        let set = Limits {
            max_connections: Some(1234),
            ..Limits::default()
        };
        assert_eq!(set.connection_cap(), 1234);
        let derived = Limits::default().connection_cap();
        match concord_sys::open_files_limit() {
            Some(limit) => assert_eq!(derived as u64, limit.saturating_sub(256).max(64)),
            None => assert_eq!(derived, 10_000),
        }
    }

    #[test]
    fn bad_values_are_errors() {
        let env = |name: &str| (name == "CONCORD_REGISTRATION").then(|| "sometimes".to_string());
        assert!(Config::load(None, env).is_err());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = Config {
            jwt_secret: Some("super-secret-value".into()),
            database_url: Some("postgres://concord:hunter2@db/concord".into()),
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("super-secret-value"));
        assert!(!text.contains("hunter2"));
        assert!(text.contains("postgres://concord:<redacted>@db/concord"));
        let config = Config {
            metrics: MetricsConfig {
                token: Some("metrics-token-value-0123456789abcdef".into()),
                ..MetricsConfig::default()
            },
            ..Config::default()
        };
        assert!(!format!("{config:?}").contains("metrics-token-value"));
    }

    #[test]
    fn webhook_section_reads_networks_and_delays() {
        let text = "[webhooks]\nallow_networks = [\"127.0.0.1/32\", \"fd00::1\"]\n\
                    retry_delays_ms = [10, 20]\nworkers = 2\n";
        let config: Config = toml::from_str(text).unwrap();
        assert_eq!(config.webhooks.allow_networks.len(), 2);
        assert_eq!(config.webhooks.retry_delays_ms, vec![10, 20]);
        assert_eq!(config.webhooks.workers, 2);
        assert_eq!(config.webhooks.timeout_secs, 10);
        assert!(toml::from_str::<Config>("[webhooks]\nallow_networks = [\"x\"]\n").is_err());
    }

    #[test]
    fn metrics_are_for_loopback_by_default() {
        let metrics = MetricsConfig::default();
        for ip in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
            assert!(metrics.allows(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.0.1", "192.168.1.2", "2001:db8::1", "::ffff:10.0.0.1"] {
            assert!(!metrics.allows(ip.parse().unwrap()), "{ip}");
        }
        let text = "[metrics]\nallow = [\"10.1.0.0/16\", \"192.0.2.7\"]\n";
        let config: Config = toml::from_str(text).unwrap();
        assert!(config.metrics.allows("10.1.200.3".parse().unwrap()));
        assert!(config.metrics.allows("192.0.2.7".parse().unwrap()));
        assert!(!config.metrics.allows("127.0.0.1".parse().unwrap()));
        assert!(toml::from_str::<Config>("[metrics]\nallow = [\"10.1.0.0/33\"]\n").is_err());
    }
}
