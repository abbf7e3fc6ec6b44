//! Outbound webhook delivery (`rest-extras.md` §9.2; Concord X12, X14).
//!
//! The message routes hand an event to [`Webhooks::message_event`] after their write
//! committed. The server's subscribed, enabled webhooks come from an in-memory cache
//! (filled from the store once per server, dropped by the webhook routes on every
//! change), so a server without webhooks costs no query per message. Each delivery is
//! one job on a bounded queue (`try_send`: a full queue drops the job with a warning
//! and a metric, never making a request wait); a few worker tasks take jobs and POST
//! them, with retries, and record the outcome on the webhook's row.
//!
//! Server-side request forgery (X12): the HTTP client follows no redirects, uses no
//! proxy, and resolves names through [`GuardedResolver`], which hands the connector
//! only addresses that are public or inside the operator's `allow_networks`; a URL
//! whose host is a literal address is checked the same way before sending. The check
//! happens at send time, on the very addresses connected to, so a name that changes
//! its answer after the webhook was saved gains nothing.
//!
//! Webhook URLs may carry secrets in their path or query: logs name the webhook id,
//! never its URL.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use concord_protocol::{ServerId, Timestamp};
use concord_store::{Store, WebhookRecord};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::{config::WebhookConfig, metrics::Metrics};

/// The event types that are delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A channel message was posted (data: the MESSAGE_CREATE message).
    MessageCreated,
    /// A channel message was edited (data: the MESSAGE_UPDATE message).
    MessageUpdated,
    /// A channel message was deleted (data: `{id, channel_id}`).
    MessageDeleted,
}

impl WebhookEvent {
    /// The name in the envelope and in `event_types`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageCreated => "message.created",
            Self::MessageUpdated => "message.updated",
            Self::MessageDeleted => "message.deleted",
        }
    }

    fn bit(self) -> u8 {
        match self {
            Self::MessageCreated => 1,
            Self::MessageUpdated => 2,
            Self::MessageDeleted => 4,
        }
    }
}

/// The subscription bits of `types` (names that are never delivered count for none).
fn mask_of(types: &[String]) -> u8 {
    [
        WebhookEvent::MessageCreated,
        WebhookEvent::MessageUpdated,
        WebhookEvent::MessageDeleted,
    ]
    .into_iter()
    .filter(|event| types.iter().any(|t| t == event.as_str()))
    .fold(0, |mask, event| mask | event.bit())
}

/// An enabled webhook as the cache keeps it.
struct Target {
    id: uuid::Uuid,
    url: Arc<str>,
    secret: Arc<str>,
    events: u8,
}

/// One POST to make (with its retries).
struct Job {
    hook: uuid::Uuid,
    url: Arc<str>,
    secret: Arc<str>,
    body: Bytes,
}

/// The body every delivery carries.
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    event: &'a str,
    server_id: ServerId,
    data: &'a T,
}

/// The `data` of a test ping.
#[derive(Serialize)]
struct Ping<'a> {
    webhook_id: uuid::Uuid,
    server_name: &'a str,
    message: &'a str,
}

/// Why a test ping was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingRefusal {
    /// The webhook was pinged less than `test_interval_secs` ago: retry after this
    /// many seconds.
    TooSoon(u64),
    /// The delivery queue is full.
    QueueFull,
}

#[derive(Default)]
struct Cache {
    /// Bumped by every invalidation: a fill that read the store before it is stale.
    generation: u64,
    servers: HashMap<ServerId, Arc<[Target]>>,
}

struct Shared {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    cache: Mutex<Cache>,
    pings: Mutex<HashMap<uuid::Uuid, tokio::time::Instant>>,
    test_interval: Duration,
    queue: mpsc::Sender<Job>,
}

/// The node's webhook delivery: cache, queue and workers. Cheap to clone.
#[derive(Clone)]
pub struct Webhooks {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

/// What a worker needs to deliver.
struct Sender {
    client: reqwest::Client,
    allow: Arc<[ipnet::IpNet]>,
    retry_delays: Vec<Duration>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
}

impl Webhooks {
    /// Starts `config.workers` delivery tasks on the current runtime, over `store`.
    ///
    /// # Errors
    /// The HTTP client cannot be built (its TLS backend failed to initialise).
    pub fn start(
        config: &WebhookConfig,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let allow: Arc<[ipnet::IpNet]> = config.allow_networks.clone().into();
        let timeout = Duration::from_secs(config.timeout_secs);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("Concord-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                allow: Arc::clone(&allow),
            }))
            .build()?;
        let (queue, jobs) = mpsc::channel(config.queue_size.max(1));
        let sender = Arc::new(Sender {
            client,
            allow,
            retry_delays: config
                .retry_delays_ms
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            store: Arc::clone(&store),
            metrics: Arc::clone(&metrics),
        });
        let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
        for _ in 0..config.workers.max(1) {
            let jobs = Arc::clone(&jobs);
            let sender = Arc::clone(&sender);
            tokio::spawn(async move {
                loop {
                    // The lock is only held while waiting for the next job.
                    let job = jobs.lock().await.recv().await;
                    match job {
                        Some(job) => sender.deliver(job).await,
                        None => break,
                    }
                }
            });
        }
        Ok(Self {
            shared: Arc::new(Shared {
                store,
                metrics,
                cache: Mutex::new(Cache::default()),
                pings: Mutex::new(HashMap::new()),
                test_interval: Duration::from_secs(config.test_interval_secs),
                queue,
            }),
        })
    }

    /// Forgets what the cache holds for `server` (its webhooks changed).
    pub fn invalidate(&self, server: ServerId) {
        let mut cache = self.cache();
        cache.generation += 1;
        cache.servers.remove(&server);
    }

    /// Forgets every server's webhooks (rows went by cascade, e.g. with their creator).
    pub fn invalidate_all(&self) {
        let mut cache = self.cache();
        cache.generation += 1;
        cache.servers.clear();
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.shared
            .cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The enabled webhooks of `server`, from the cache or else the store.
    async fn targets(&self, server: ServerId) -> Result<Arc<[Target]>, concord_store::StoreError> {
        let generation = {
            let cache = self.cache();
            if let Some(targets) = cache.servers.get(&server) {
                return Ok(Arc::clone(targets));
            }
            cache.generation
        };
        let rows = self.shared.store.webhooks(server).await?;
        let targets: Arc<[Target]> = rows
            .into_iter()
            .filter(|row| row.enabled)
            .map(|row| Target {
                id: row.id,
                events: mask_of(&row.event_types),
                url: row.url.into(),
                secret: row.secret.into(),
            })
            .collect();
        let mut cache = self.cache();
        if cache.generation == generation {
            cache.servers.insert(server, Arc::clone(&targets));
        }
        Ok(targets)
    }

    /// Queues `event` (with `data`) of `server` for each enabled webhook subscribed to
    /// it. Call after the change is committed. Never fails the caller: a store error
    /// or a full queue is logged and counted.
    pub async fn message_event<T: Serialize>(
        &self,
        server: ServerId,
        event: WebhookEvent,
        data: &T,
    ) {
        let targets = match self.targets(server).await {
            Ok(targets) => targets,
            Err(err) => {
                tracing::error!(error = %err, server = %server, "webhooks not read; event not delivered");
                return;
            }
        };
        let mut subscribed = targets
            .iter()
            .filter(|t| t.events & event.bit() != 0)
            .peekable();
        if subscribed.peek().is_none() {
            return;
        }
        let body = match serde_json::to_vec(&Envelope {
            event: event.as_str(),
            server_id: server,
            data,
        }) {
            Ok(body) => Bytes::from(body),
            Err(err) => {
                tracing::error!(error = %err, "webhook envelope not serialised");
                return;
            }
        };
        for target in subscribed {
            self.enqueue(Job {
                hook: target.id,
                url: Arc::clone(&target.url),
                secret: Arc::clone(&target.secret),
                body: body.clone(),
            });
        }
    }

    /// Queues a `ping` to `hook` (enabled or not), at most one per webhook per
    /// `test_interval_secs` (X14).
    ///
    /// # Errors
    /// See [`PingRefusal`].
    pub fn ping(&self, hook: &WebhookRecord, server_name: &str) -> Result<(), PingRefusal> {
        self.throttle_ping(hook.id)?;
        let data = Ping {
            webhook_id: hook.id,
            server_name,
            message: "This is a test ping from Concord.",
        };
        let body = serde_json::to_vec(&Envelope {
            event: "ping",
            server_id: hook.server_id,
            data: &data,
        })
        .map_err(|err| {
            tracing::error!(error = %err, "webhook ping not serialised");
            PingRefusal::QueueFull
        })?;
        let queued = self.enqueue(Job {
            hook: hook.id,
            url: hook.url.as_str().into(),
            secret: hook.secret.as_str().into(),
            body: Bytes::from(body),
        });
        if queued {
            Ok(())
        } else {
            Err(PingRefusal::QueueFull)
        }
    }

    fn throttle_ping(&self, hook: uuid::Uuid) -> Result<(), PingRefusal> {
        let now = tokio::time::Instant::now();
        let interval = self.shared.test_interval;
        let mut pings = self
            .shared
            .pings
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(&last) = pings.get(&hook) {
            let since = now.saturating_duration_since(last);
            if since < interval {
                let wait = interval - since;
                // Whole seconds, rounded up, at least one.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                return Err(PingRefusal::TooSoon(secs.max(1)));
            }
        }
        // Entries older than the interval throttle nothing: keep the map small.
        if pings.len() >= 1024 {
            pings.retain(|_, last| now.saturating_duration_since(*last) < interval);
        }
        pings.insert(hook, now);
        Ok(())
    }

    fn enqueue(&self, job: Job) -> bool {
        let hook = job.hook;
        match self.shared.queue.try_send(job) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.metrics.webhook("dropped");
                tracing::warn!(webhook = %hook, "webhook delivery queue full; delivery dropped");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.metrics.webhook("dropped");
                tracing::warn!(webhook = %hook, "webhook workers stopped; delivery dropped");
                false
            }
        }
    }
}

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How one delivery ended.
enum Outcome {
    Delivered,
    Failed,
    Refused,
}

impl Sender {
    async fn deliver(&self, job: Job) {
        let outcome = self.attempts(&job).await;
        let (label, delivered) = match outcome {
            Outcome::Delivered => ("delivered", true),
            Outcome::Failed => ("failed", false),
            Outcome::Refused => ("refused", false),
        };
        self.metrics.webhook(label);
        if let Err(err) = self
            .store
            .record_webhook_delivery(job.hook, delivered, Timestamp::now())
            .await
        {
            tracing::error!(error = %err, webhook = %job.hook, "webhook delivery not recorded");
        }
    }

    async fn attempts(&self, job: &Job) -> Outcome {
        let url = match reqwest::Url::parse(&job.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => {
                tracing::warn!(webhook = %job.hook, "webhook URL does not parse; not delivered");
                return Outcome::Failed;
            }
        };
        if let Some(ip) = literal_ip(&url)
            && !permitted(ip, &self.allow)
        {
            tracing::warn!(webhook = %job.hook, "webhook URL names a refused address; not delivered");
            return Outcome::Refused;
        }
        let signature = signature(job.secret.as_bytes(), &job.body);
        let hook = job.hook.to_string();
        let attempts = self.retry_delays.len() + 1;
        for attempt in 1..=attempts {
            if let Some(delay) = attempt
                .checked_sub(2)
                .and_then(|i| self.retry_delays.get(i))
            {
                tokio::time::sleep(*delay).await;
            }
            let sent = self
                .client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("X-Together-Signature-256", &signature)
                .header("X-Together-Hook-ID", &hook)
                .header("X-Together-Delivery-Attempt", attempt.to_string())
                .body(job.body.clone())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => return Outcome::Delivered,
                Ok(response) => {
                    tracing::debug!(webhook = %job.hook, attempt, status = response.status().as_u16(), "webhook answered non-2xx");
                }
                Err(err) if is_refusal(&err) => {
                    tracing::warn!(webhook = %job.hook, "webhook host resolves only to refused addresses; not delivered");
                    return Outcome::Refused;
                }
                Err(err) => {
                    // Without the URL: it may hold a secret.
                    let err = err.without_url();
                    tracing::debug!(webhook = %job.hook, attempt, error = %err, "webhook attempt failed");
                }
            }
        }
        tracing::info!(webhook = %job.hook, attempts, "webhook delivery failed");
        Outcome::Failed
    }
}

/// The host of `url` when it is a literal address.
fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.parse().ok()
}

/// Whether `err` (or a cause of it) is [`Refused`].
fn is_refusal(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = cause {
        if current.is::<Refused>() {
            return true;
        }
        cause = current.source();
    }
    false
}

/// A name resolved only to addresses deliveries may not reach.
#[derive(Debug, thiserror::Error)]
#[error("the host resolves only to addresses webhooks may not reach")]
pub struct Refused;

/// The client's DNS resolver: the system's answer, less the addresses deliveries may
/// not reach (see [`permitted`]); no address left is an error.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow: Arc<[ipnet::IpNet]>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = Arc::clone(&self.allow);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let usable: Vec<SocketAddr> = found.filter(|a| permitted(a.ip(), &allow)).collect();
            if usable.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Whether a delivery may connect to `ip`: a public address, or one inside `allow`.
pub fn permitted(ip: IpAddr, allow: &[ipnet::IpNet]) -> bool {
    // `::ffff:a.b.c.d` is the IPv4 host a.b.c.d.
    let plain = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    if allow
        .iter()
        .any(|net| net.contains(&ip) || net.contains(&plain))
    {
        return true;
    }
    match plain {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

/// Not loopback, private, link-local (metadata 169.254.169.254 included), CGNAT
/// (100.100.100.200 included), multicast, unspecified, documentation, benchmarking,
/// IETF-reserved or broadcast.
fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (b & 0xc0) == 64)
        || (a == 192 && b == 0 && c == 0)
        || ip.is_documentation()
        || (a == 198 && (b & 0xfe) == 18)
        || ip.is_multicast()
        || a >= 240;
    !refused
}

/// Not unspecified, loopback, IPv4-compatible, multicast, unique-local (the AWS
/// metadata fd00:ec2::254 included), link-local, site-local, documentation,
/// discard-only, IETF protocol assignments (Teredo included), local-use NAT64; and
/// for NAT64 and 6to4 addresses, the embedded IPv4 address must be public.
fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[..6] == [0; 6] {
        // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d.
        return false;
    }
    if ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] & 0xffc0) == 0xfec0
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] & 0xfff0) == 0x3ff0
        || (s[0] == 0x0100 && s[1..4] == [0; 3])
        || (s[0] == 0x2001 && s[1] < 0x0200)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001)
    {
        return false;
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return public_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return public_v4(embedded(s[1], s[2]));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_refused_public_ones_pass() {
        let refused = [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "100.100.100.200",
            "192.0.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::10.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "3fff::1",
            "100::1",
            "2001::1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a00:1::",
        ];
        for text in refused {
            assert!(!permitted(ip(text), &[]), "{text} must be refused");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.3.1",
            "::ffff:8.8.8.8",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for text in public {
            assert!(permitted(ip(text), &[]), "{text} must pass");
        }
    }

    #[test]
    fn the_allow_list_opens_its_networks_mapped_forms_included() {
        let allow: Vec<ipnet::IpNet> =
            vec!["127.0.0.1/32".parse().unwrap(), "fd00::/8".parse().unwrap()];
        assert!(permitted(ip("127.0.0.1"), &allow));
        assert!(permitted(ip("::ffff:127.0.0.1"), &allow));
        assert!(permitted(ip("fd12::1"), &allow));
        assert!(!permitted(ip("127.0.0.2"), &allow));
        assert!(!permitted(ip("::1"), &allow));
        assert!(!permitted(ip("10.0.0.1"), &allow));
    }

    #[test]
    fn literal_hosts_are_read_from_urls() {
        let of = |u: &str| literal_ip(&reqwest::Url::parse(u).unwrap());
        assert_eq!(of("http://127.0.0.1:8080/x"), Some(ip("127.0.0.1")));
        assert_eq!(of("http://[::1]:9/"), Some(ip("::1")));
        assert_eq!(of("http://2130706433/"), Some(ip("127.0.0.1")));
        assert_eq!(of("http://0x7f.1/"), Some(ip("127.0.0.1")));
        assert_eq!(of("https://hooks.example.org/"), None);
    }

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    async fn started(config: &WebhookConfig) -> (Webhooks, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new(Arc::new(concord_gateway::Hub::new())));
        let store: Arc<dyn Store> = Arc::new(
            concord_store::SqliteStore::in_memory()
                .await
                .expect("in-memory store"),
        );
        let webhooks = Webhooks::start(config, store, Arc::clone(&metrics)).expect("client");
        (webhooks, metrics)
    }

    fn record(url: &str) -> WebhookRecord {
        let now = Timestamp::now();
        WebhookRecord {
            id: uuid::Uuid::now_v7(),
            server_id: ServerId::new(),
            created_by: concord_protocol::UserId::new(),
            name: "hook".into(),
            url: url.into(),
            secret: "ab".repeat(32),
            event_types: vec!["message.created".into()],
            enabled: true,
            delivery_failures: 0,
            last_used_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[tokio::test]
    async fn pings_are_throttled_per_webhook_in_virtual_time() {
        let (webhooks, _) = started(&WebhookConfig::default()).await;
        // Paused only now: the store's pool must not see virtual time pass.
        tokio::time::pause();
        let (first, second) = (record("http://192.0.2.1/"), record("http://192.0.2.2/"));
        assert_eq!(webhooks.ping(&first, "hall"), Ok(()));
        assert_eq!(webhooks.ping(&first, "hall"), Err(PingRefusal::TooSoon(5)));
        assert_eq!(webhooks.ping(&second, "hall"), Ok(()), "per webhook");
        tokio::time::advance(Duration::from_millis(4_500)).await;
        assert_eq!(webhooks.ping(&first, "hall"), Err(PingRefusal::TooSoon(1)));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(webhooks.ping(&first, "hall"), Ok(()));
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts_without_waiting() {
        let config = WebhookConfig {
            queue_size: 2,
            workers: 1,
            test_interval_secs: 0,
            ..WebhookConfig::default()
        };
        let (webhooks, metrics) = started(&config).await;
        let hook = record("http://192.0.2.1/");
        // The worker has not run yet (current-thread runtime, no await since): the
        // queue holds two jobs, the third finds it full.
        assert_eq!(webhooks.ping(&hook, "hall"), Ok(()));
        assert_eq!(webhooks.ping(&hook, "hall"), Ok(()));
        assert_eq!(webhooks.ping(&hook, "hall"), Err(PingRefusal::QueueFull));
        assert_eq!(metrics.webhook_count("dropped"), 1);
        // The queued ones are taken: refused (a documentation address), not dropped.
        let taken = async {
            while metrics.webhook_count("refused") < 2 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), taken)
            .await
            .expect("both queued pings taken");
        assert_eq!(metrics.webhook_count("refused"), 2);
        assert_eq!(metrics.webhook_count("dropped"), 1);
    }

    #[test]
    fn masks_cover_only_delivered_types() {
        let types = vec!["message.deleted".to_owned(), "member.joined".to_owned()];
        assert_eq!(mask_of(&types), WebhookEvent::MessageDeleted.bit());
        assert_eq!(mask_of(&[]), 0);
    }
}
