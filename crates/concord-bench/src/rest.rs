//! The REST side: a client that spreads its requests over source addresses (per-IP
//! rate limits), and the world every scenario runs in.

use std::{
    net::IpAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use concord_client::{
    RestClient,
    rest::{Authorization, RawRequest, RetryPolicy},
};
use concord_protocol::{
    ChannelType, CreateBot, CreateChannel, CreateMessage, CreateServer, RefreshRequest,
    RegisterRequest,
};
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::report::Progress;

/// Credentials sent with a request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Auth<'a> {
    None,
    Bearer(&'a str),
    Bot(&'a str),
}

/// A status and a JSON body (`Value::Null` when the body is not JSON).
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
    /// The server's `retry-after`, in seconds, on a 429.
    pub(crate) retry_after: Option<u64>,
}

impl Reply {
    fn expect(self, want: StatusCode, what: &str) -> anyhow::Result<Value> {
        if self.status == want {
            Ok(self.body)
        } else {
            Err(anyhow!("{what}: HTTP {} {}", self.status, self.body))
        }
    }
}

/// REST client over one or more source addresses: the SDK's REST client at the HTTP
/// level (the bench reads statuses and `retry-after` itself, so the SDK's 429
/// retries are off).
pub(crate) struct Rest {
    clients: Vec<RestClient>,
    next: AtomicUsize,
}

impl Rest {
    pub(crate) fn new(base: &str, sources: &[IpAddr]) -> anyhow::Result<Self> {
        let build = |source: Option<IpAddr>| {
            let http = reqwest::Client::builder()
                .local_address(source)
                .pool_max_idle_per_host(64)
                .build()
                .context("building the HTTP client")?;
            anyhow::Ok(RestClient::with_http(base, http).with_retry(RetryPolicy::none()))
        };
        let clients = if sources.is_empty() {
            vec![build(None)?]
        } else {
            sources
                .iter()
                .map(|&s| build(Some(s)))
                .collect::<anyhow::Result<_>>()?
        };
        Ok(Self {
            clients,
            next: AtomicUsize::new(0),
        })
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<&impl Serialize>,
        limit: Duration,
    ) -> anyhow::Result<Reply> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        let client = self.clients[i]
            .with_timeout(limit.max(Duration::from_millis(1)))
            .with_authorization(match auth {
                Auth::None => None,
                Auth::Bearer(token) => Some(Authorization::Bearer(token.to_string())),
                Auth::Bot(token) => Some(Authorization::Bot(token.to_string())),
            });
        let mut request = RawRequest::new(method, path);
        if let Some(body) = body {
            request = request.json(body)?;
        }
        let response = client.send_raw(&request).await?;
        let status = StatusCode::from_u16(response.status)?;
        let retry_after = response
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            body,
            retry_after,
        })
    }
}

/// A member connection's credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Member {
    /// Static bot token (`/ws?bot_token=`).
    pub(crate) token: String,
    /// The bot's user id (how presence and typing events name it).
    pub(crate) user_id: String,
}

/// The owner's tokens; the access token lives 15 minutes, so it is refreshed on 401.
struct OwnerTokens {
    access: String,
    refresh: String,
}

/// One public server with one text channel (and, with `--servers`, more servers), its
/// owner, and N bot members.
pub(crate) struct World {
    pub(crate) server_id: String,
    pub(crate) channel_id: String,
    pub(crate) members: Vec<Member>,
    owner: RwLock<OwnerTokens>,
    /// Whether the members have joined (at creation, or by [`World::join_all`]).
    joined: std::sync::atomic::AtomicBool,
}

fn text(body: &Value, key: &str) -> anyhow::Result<String> {
    body[key]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("response has no string {key:?}: {body}"))
}

fn remaining(deadline: Instant) -> anyhow::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .context("setup ran past --setup-timeout")
}

impl World {
    /// Registers an owner, creates the server and channel (and `servers - 1` more
    /// servers without one), then creates `members` bots, `concurrency` at a time, and
    /// joins bot i to server i mod `servers` (unless `join` is false: see
    /// [`World::join_all`]).
    #[allow(clippy::too_many_arguments, reason = "the bench's setup knobs")]
    pub(crate) async fn create(
        rest: &Rest,
        run_id: &str,
        members: usize,
        servers: usize,
        join: bool,
        concurrency: usize,
        deadline: Instant,
        progress: bool,
    ) -> anyhow::Result<Arc<Self>> {
        let register = RegisterRequest {
            username: format!("bench_{run_id}"),
            email: None,
            password: format!("bench-{run_id}-password"),
            invite_code: None,
        };
        let auth = rest
            .call(
                Method::POST,
                "/auth/register",
                Auth::None,
                Some(&register),
                remaining(deadline)?,
            )
            .await?
            .expect(StatusCode::CREATED, "register the owner")?;
        let access = text(&auth, "access_token")?;
        let refresh = text(&auth, "refresh_token")?;
        let server_id = create_server(rest, &access, &format!("bench {run_id}"), deadline).await?;
        let channel = rest
            .call(
                Method::POST,
                &format!("/servers/{server_id}/channels"),
                Auth::Bearer(&access),
                Some(&CreateChannel {
                    name: "bench".into(),
                    kind: ChannelType::Text,
                    topic: None,
                    category: None,
                }),
                remaining(deadline)?,
            )
            .await?
            .expect(StatusCode::CREATED, "create the channel")?;
        let channel_id = text(&channel, "id")?;
        // Counts for the progress line: servers, then bots created and joined.
        let (made, created) = (Arc::new(AtomicUsize::new(1)), Arc::new(AtomicUsize::new(0)));
        let display = Progress::start(progress, "setup", {
            let (made, created) = (made.clone(), created.clone());
            move || {
                format!(
                    "servers {}/{servers}, bots created and joined {}/{members}",
                    made.load(Ordering::Relaxed),
                    created.load(Ordering::Relaxed)
                )
            }
        });
        let more: Vec<anyhow::Result<String>> = stream::iter(1..servers)
            .map(|k| {
                let (access, made) = (&access, &made);
                async move {
                    let id = create_server(rest, access, &format!("bench {run_id} {k}"), deadline)
                        .await?;
                    made.fetch_add(1, Ordering::Relaxed);
                    Ok(id)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let servers: Vec<String> = std::iter::once(Ok(server_id.clone()))
            .chain(more)
            .collect::<anyhow::Result<_>>()?;
        let results: Vec<anyhow::Result<Member>> = stream::iter(0..members)
            .map(|i| {
                let (access, created) = (&access, &created);
                let server_id = &servers[i % servers.len()];
                async move {
                    let member = add_bot(rest, access, run_id, i, deadline).await?;
                    if join {
                        self::join(rest, server_id, &member.token, deadline).await?;
                    }
                    created.fetch_add(1, Ordering::Relaxed);
                    Ok(member)
                }
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        display.stop();
        let members = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Arc::new(Self {
            server_id,
            channel_id,
            members,
            owner: RwLock::new(OwnerTokens { access, refresh }),
            joined: std::sync::atomic::AtomicBool::new(join),
        }))
    }

    /// Joins every member to the first server, `concurrency` at a time, once per run
    /// (a world made with `join` false; later calls do nothing).
    pub(crate) async fn join_all(
        &self,
        rest: &Rest,
        concurrency: usize,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        if self.joined.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let results: Vec<anyhow::Result<()>> = stream::iter(&self.members)
            .map(|member| join(rest, &self.server_id, &member.token, deadline))
            .buffer_unordered(concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Creates a channel of `kind` named `name` in the world's server, as the owner;
    /// returns its id.
    pub(crate) async fn create_channel(
        &self,
        rest: &Rest,
        name: &str,
        kind: ChannelType,
        limit: Duration,
    ) -> anyhow::Result<String> {
        let body = rest
            .call(
                Method::POST,
                &format!("/servers/{}/channels", self.server_id),
                Auth::Bearer(&self.access()),
                Some(&CreateChannel {
                    name: name.into(),
                    kind,
                    topic: None,
                    category: None,
                }),
                limit,
            )
            .await?
            .expect(StatusCode::CREATED, "create a channel")?;
        text(&body, "id")
    }

    fn access(&self) -> String {
        self.owner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .access
            .clone()
    }

    /// Posts `content` in the channel as the owner; true when the server accepted it.
    /// An expired access token is refreshed once.
    pub(crate) async fn post(
        &self,
        rest: &Rest,
        content: String,
        limit: Duration,
    ) -> anyhow::Result<bool> {
        let path = format!("/channels/{}/messages", self.channel_id);
        let body = CreateMessage {
            content,
            reply_to: None,
        };
        let send = |token: String| {
            let (path, body) = (&path, &body);
            async move {
                rest.call(Method::POST, path, Auth::Bearer(&token), Some(body), limit)
                    .await
                    .map(|reply| reply.status)
            }
        };
        let token = self.access();
        let status = send(token.clone()).await?;
        if status != StatusCode::UNAUTHORIZED {
            return Ok(status.is_success());
        }
        self.refresh(rest, &token, limit).await?;
        Ok(send(self.access()).await?.is_success())
    }

    async fn refresh(&self, rest: &Rest, stale: &str, limit: Duration) -> anyhow::Result<()> {
        let refresh_token = {
            let tokens = self.owner.read().unwrap_or_else(|e| e.into_inner());
            if tokens.access != stale {
                // Another POST refreshed already.
                return Ok(());
            }
            tokens.refresh.clone()
        };
        let auth = rest
            .call(
                Method::POST,
                "/auth/refresh",
                Auth::None,
                Some(&RefreshRequest { refresh_token }),
                limit,
            )
            .await?
            .expect(StatusCode::OK, "refresh the owner's token")?;
        let mut tokens = self.owner.write().unwrap_or_else(|e| e.into_inner());
        if tokens.access == stale {
            tokens.access = text(&auth, "access_token")?;
            tokens.refresh = text(&auth, "refresh_token")?;
        }
        Ok(())
    }
}

/// Creates a public server anyone may join; its id.
async fn create_server(
    rest: &Rest,
    access: &str,
    name: &str,
    deadline: Instant,
) -> anyhow::Result<String> {
    let server = rest
        .call(
            Method::POST,
            "/servers",
            Auth::Bearer(access),
            Some(&CreateServer {
                name: name.to_string(),
                icon_url: None,
                is_public: Some(true),
                require_invite: Some(false),
                template_id: None,
            }),
            remaining(deadline)?,
        )
        .await?
        .expect(StatusCode::CREATED, "create a server")?;
    text(&server, "id")
}

/// Creates bot `i`. Bot usernames carry a random suffix, so a rare collision (or a
/// transient error) is retried a few times.
async fn add_bot(
    rest: &Rest,
    access: &str,
    run_id: &str,
    i: usize,
    deadline: Instant,
) -> anyhow::Result<Member> {
    let mut last_error = None;
    for _ in 0..4 {
        let reply = rest
            .call(
                Method::POST,
                "/bots",
                Auth::Bearer(access),
                Some(&CreateBot {
                    name: format!("bench {run_id} {i}"),
                    description: None,
                }),
                remaining(deadline)?,
            )
            .await;
        let body = match reply {
            Ok(r) if r.status == StatusCode::CREATED => r.body,
            Ok(r) => {
                last_error = Some(anyhow!("create bot {i}: HTTP {} {}", r.status, r.body));
                backoff_a_little(&r).await;
                continue;
            }
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let token = text(&body, "token")?;
        let user_id = body["bot"]["user_id"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("bot without user_id: {body}"))?;
        return Ok(Member { token, user_id });
    }
    Err(last_error.unwrap_or_else(|| anyhow!("create bot {i} failed")))
}

async fn join(rest: &Rest, server_id: &str, token: &str, deadline: Instant) -> anyhow::Result<()> {
    let path = format!("/servers/{server_id}/join");
    for _ in 0..4 {
        let reply = rest
            .call(
                Method::POST,
                &path,
                Auth::Bot(token),
                None::<&()>,
                remaining(deadline)?,
            )
            .await?;
        // 409: an earlier try went through but its answer was lost.
        if reply.status == StatusCode::CREATED || reply.status == StatusCode::CONFLICT {
            return Ok(());
        }
        if reply.status != StatusCode::TOO_MANY_REQUESTS && !reply.status.is_server_error() {
            bail!("join: HTTP {} {}", reply.status, reply.body);
        }
        backoff_a_little(&reply).await;
    }
    bail!("join: gave up after repeated 429/5xx")
}

/// The pause after a 429 or 5xx during setup when the server names none.
const SETUP_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Waits before retrying a setup request refused with 429 or 5xx: as long as the
/// server's `retry-after` asks (capped at 5 s, the bench stays bounded), else briefly.
async fn backoff_a_little(reply: &Reply) {
    if reply.status == StatusCode::TOO_MANY_REQUESTS || reply.status.is_server_error() {
        let pause = reply
            .retry_after
            .map_or(SETUP_RETRY_PAUSE, |secs| Duration::from_secs(secs.min(5)));
        tokio::time::sleep(pause).await;
    }
}
