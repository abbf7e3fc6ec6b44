//! Building the application and running it until shutdown.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, Method, header},
    middleware::{self, Next},
    response::Response,
};
use concord_gateway::{CloseReason, Gateway, Hub, SavedSession};
use concord_store::{PostgresStore, SqliteStore, Store};
use tokio::net::{TcpListener, TcpSocket};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::{
    auth::TokenKeys,
    bus::{Events, Fanout},
    caps::IpCounter,
    config::Config,
    directory::Directory,
    error::not_found_fallback,
    families::Families,
    files::LocalFileStore,
    limiter::{Limiters, limit_requests},
    metered_store::MeteredStore,
    metrics::Metrics,
    passwords::Passwords,
    presence::Presence,
    routes, secrets,
    state::AppState,
};

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory or a secret file.
    #[error("data directory {path}")]
    DataDir {
        /// Path.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The database.
    #[error("database")]
    Store(#[from] concord_store::StoreError),
    /// The bus between nodes (`bus_url`) could not be joined.
    #[error("bus")]
    Bus(#[from] concord_bus::BusError),
    /// The configured database URL is not supported.
    #[error("unsupported database URL (expected sqlite://… or postgres://…)")]
    DatabaseUrl,
    /// The JWT secret is too short.
    #[error("jwt_secret must be at least 32 characters")]
    WeakSecret,
    /// The metrics token is too short.
    #[error("metrics.token must be at least 32 characters")]
    WeakMetricsToken,
    /// Serving failed.
    #[error("serving")]
    Io(#[from] std::io::Error),
}

/// Opens the store named by the configuration (creating the data dir).
///
/// # Errors
/// See [`ServeError`].
pub async fn open_store(config: &Config) -> Result<Arc<dyn Store>, ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let url = config.database_url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresStore::connect(&url).await?));
    }
    let path = url
        .strip_prefix("sqlite://")
        .ok_or(ServeError::DatabaseUrl)?;
    Ok(Arc::new(
        SqliteStore::open(std::path::Path::new(path)).await?,
    ))
}

/// Builds the state of one node over `store`.
///
/// # Errors
/// Secret, store or emoji directory (`<data_dir>/emojis`) failures.
pub async fn build_state(config: Config, store: Arc<dyn Store>) -> Result<AppState, ServeError> {
    let secret = match &config.jwt_secret {
        Some(secret) if secret.len() >= 32 => secret.clone(),
        Some(_) => return Err(ServeError::WeakSecret),
        None => secrets::jwt_secret(&config.data_dir).map_err(|source| ServeError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?,
    };
    if config.metrics.token.as_ref().is_some_and(|t| t.len() < 32) {
        return Err(ServeError::WeakMetricsToken);
    }
    let emoji_dir = config.data_dir.join("emojis");
    let emoji_files = LocalFileStore::open(&emoji_dir).map_err(|source| ServeError::DataDir {
        path: emoji_dir.clone(),
        source,
    })?;
    let attachment_dir = config.data_dir.join("attachments");
    let attachment_files =
        LocalFileStore::open(&attachment_dir).map_err(|source| ServeError::DataDir {
            path: attachment_dir.clone(),
            source,
        })?;
    let attachments =
        crate::attachments::Attachments::new(Arc::new(attachment_files), secret.as_bytes());
    let hub = Arc::new(Hub::new());
    let metrics = Arc::new(Metrics::new(Arc::clone(&hub)));
    let store: Arc<dyn Store> = Arc::new(MeteredStore::new(store, Arc::clone(&metrics)));
    // A node of a cluster joins the bus before it reads the directory: every change
    // committed after the read reaches it (one committed just before may arrive too;
    // applying a change twice is harmless).
    let bus = match &config.bus_url {
        None => {
            // Nobody is connected to a lone node that is starting: stale voice states go.
            store.clear_voice_states().await?;
            None
        }
        Some(url) => {
            let mut options = concord_bus::NatsOptions::new(url.clone());
            options.prefix.clone_from(&config.bus_prefix);
            options.name = format!("concord {}", config.listen);
            // A silent link is found lost after three unanswered pings: within about
            // 1.5 heartbeats, well before the others' three heartbeats of silence
            // would make this node take them for dead (`crate::presence`).
            options.ping = Duration::from_secs(config.bus_heartbeat_secs.max(1)).div_f64(2.0);
            let (bus, inbox) = concord_bus::NatsBus::connect(options).await?;
            tracing::info!(bus = config.bus_url_for_logs(), node = %concord_bus::Bus::node(&bus), "joined the cluster's bus");
            Some((Arc::new(bus) as Arc<dyn concord_bus::Bus>, inbox))
        }
    };
    let snapshot = store
        .directory_snapshot(concord_protocol::Timestamp::now())
        .await?;
    let directory = Arc::new(Directory::from_snapshot(snapshot));
    let tick = Duration::from_millis(config.limits.presence_batch_ms);
    let families = Arc::new(Families::default());
    let webhooks = crate::webhooks::Webhooks::start(
        &config.webhooks,
        Arc::clone(&store),
        Arc::clone(&metrics),
    )
    .map_err(std::io::Error::other)?;
    let automod = Arc::new(crate::automod::AutomodRules::new());
    let fanout = Fanout::new(
        Arc::clone(&directory),
        Arc::clone(&hub),
        Arc::clone(&families),
        tick,
        Arc::clone(&metrics),
    )
    .with_caches(crate::bus::Caches {
        automod: Arc::clone(&automod),
        webhooks: webhooks.clone(),
    });
    let media = Arc::new(crate::media::MediaRelay::new(
        config.audio,
        Arc::clone(&directory) as Arc<dyn crate::media::VoiceRoster>,
        metrics.audio(),
    ));
    let events = match bus {
        None => Events::new(fanout, None, Arc::clone(&metrics)),
        Some((bus, inbox)) => {
            let interests =
                crate::cluster::Interests::start(Arc::clone(&bus), Arc::clone(&directory));
            hub.watch_users(Arc::new(interests.clone()));
            let fanout = fanout.with_interests(interests.clone());
            let cluster = crate::cluster::Cluster::start(
                bus,
                inbox,
                fanout.clone(),
                interests,
                Arc::clone(&directory),
                Arc::clone(&store),
                Arc::clone(&metrics),
                Duration::from_secs(config.bus_heartbeat_secs.max(1)),
            );
            cluster.connect_audio(&media);
            Events::new(fanout, Some(cluster), Arc::clone(&metrics))
        }
    };
    let grace = Duration::from_secs(config.limits.presence_grace_secs);
    let passwords = Arc::new(Passwords::start(config.password)?);
    let sessions_per_ip = IpCounter::new(config.limits.sessions_per_ip);
    let state = AppState {
        store,
        directory,
        hub,
        families,
        events,
        metrics,
        presence: Arc::new(Presence::new(grace)),
        limiters: Arc::new(Limiters::new(&config.limits)),
        keys: Arc::new(TokenKeys::with_leeway(
            secret.as_bytes(),
            config.token_leeway_secs,
        )),
        config: Arc::new(config),
        started: std::time::Instant::now(),
        emoji_files: Arc::new(emoji_files),
        attachments,
        sessions_per_ip,
        passwords,
        automod,
        webhooks,
        media,
    };
    // A node of a cluster follows the others' presence for its life.
    tokio::spawn(crate::presence::follow_cluster(state.clone()));
    Ok(state)
}

/// The HTTP application: every route, under `/` and `/api`.
pub fn router(state: AppState) -> Router {
    let gateway = routes::gateway::endpoint(&state);
    router_with(state, gateway)
}

/// [`router`] over a gateway endpoint built by the caller.
pub fn router_with(state: AppState, gateway: Arc<Gateway>) -> Router {
    state.metrics.watch_gateway(&gateway);
    if let Some(cluster) = state.events.cluster() {
        cluster.connect_gateway(&gateway);
    }
    let limited = routes::limited(&state, gateway)
        .layer(middleware::from_fn_with_state(state.clone(), flush_bus))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_requests,
        ));
    let api = routes::health().merge(limited).fallback(not_found_fallback);
    let cors = cors(&state.config.cors_origins);
    let router = Router::new()
        .nest("/api", api.clone())
        .merge(api)
        // The built-in web client at `/` and `/app/…`, inside the security headers.
        .layer(middleware::from_fn(crate::web::serve_client))
        .layer(middleware::from_fn(security_headers));
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    router
        // Every route, the unknown ones included: the body's size and deadline. The
        // extractors' own limit is the same.
        .layer(DefaultBodyLimit::max(state.config.limits.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::body::limit_bodies,
        ))
        // Outside CORS: a foreign origin's preflight is refused too.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::origin::check_origin,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe_requests,
        ))
        .with_state(state)
}

/// On a node of a cluster, a write runs only once the node has applied what the other
/// nodes published before it came (its events then follow those everywhere, its own
/// sessions included), and answers only once what it published is on the bus, and
/// once every node has applied the changes it made (membership, roles, overrides,
/// sessions closed; at most 1 s each): the client's next step, through whichever
/// node, finds the change, and its events come in the order it made them.
async fn flush_bus(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let write =
        request.method() != axum::http::Method::GET && request.method() != axum::http::Method::HEAD;
    let Some(cluster) = state.events.cluster().filter(|_| write) else {
        return next.run(request).await;
    };
    let changes = cluster.changes();
    cluster.heard_others().await;
    let response = next.run(request).await;
    cluster.settled(changes).await;
    response
}

/// CORS for the configured origins (PUT included: the reference forgot it, R10).
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

/// Binds a listening socket on `addr` with room for `backlog` connections not yet
/// accepted (`SO_REUSEADDR` set, as `TcpListener::bind` does). Call it inside the
/// runtime: the socket is registered with its reactor.
///
/// # Errors
/// The address cannot be bound (in use, not local, not permitted).
pub fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves `listener` until `shutdown` resolves: closes the listening socket, closes
/// every session with 1001 and waits (bounded) for them to go, then lets the HTTP
/// requests in flight finish.
///
/// # Errors
/// None today: errors of single connections are logged; the signature leaves room.
pub async fn serve<F>(listener: TcpListener, state: AppState, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let hub = Arc::clone(&state.hub);
    let store = Arc::clone(&state.store);
    // A node of a cluster: it leaves the cluster once stopped.
    let cluster = state.events.cluster().cloned();
    let housekeeping = crate::housekeeping::spawn(Arc::clone(&state.limiters));
    let search_indexer = crate::housekeeping::spawn_search_indexer(Arc::clone(&state.store));
    // Attachment files whose rows went while no purge ran (a crash, a delete by a path
    // that does not purge) go now.
    let purge_state = state.clone();
    tokio::spawn(async move { crate::attachments::purge_files(&purge_state).await });
    let limits = state.config.limits.clone();
    let metrics = Arc::clone(&state.metrics);
    let gateway = routes::gateway::endpoint(&state);
    // A lone node saves its v2 sessions when it stops and takes them back when it
    // starts: nothing is published while it is down, so a RESUME after the restart
    // misses nothing. A node of a cluster does neither: the other nodes publish while
    // it is down, and a session restored without those events would resume with a
    // silent gap; its clients identify again instead.
    let alone = cluster.is_none();
    let taken = if alone {
        store
            .take_gateway_sessions(concord_protocol::Timestamp::now())
            .await
    } else {
        Ok(Vec::new())
    };
    match taken {
        Ok(saved) => {
            let saved = saved.into_iter().map(|s| SavedSession {
                id: s.id,
                user_id: s.user_id,
                expires_in: s
                    .expires_at
                    .as_micros()
                    .checked_sub(concord_protocol::Timestamp::now().as_micros())
                    .and_then(|us| u64::try_from(us).ok())
                    .map_or(Duration::ZERO, Duration::from_micros),
                state: s.state,
            });
            let restored = gateway.restore(saved.collect()).await;
            if restored > 0 {
                tracing::info!(restored, "gateway sessions restored for RESUME");
            }
        }
        Err(err) => tracing::error!(error = %err, "saved gateway sessions not read"),
    }
    let draining = Arc::clone(&gateway);
    let relaying = cluster.clone();
    let app = router_with(state, gateway);
    let (drained_tx, drained_rx) = tokio::sync::oneshot::channel::<()>();
    let (stop_accepting, stop_rx) = tokio::sync::watch::channel(false);
    let signal = async move {
        shutdown.await;
        // Close the listening socket first: a client told to RECONNECT must be refused
        // and retry against the next process, not be let in mid-drain (its saved
        // session would then be taken and lost with this one).
        let _ = stop_accepting.send(true);
        tracing::info!("shutting down: closing gateway sessions");
        // Clients relayed to other nodes' sessions reconnect and resume elsewhere; this
        // node's own sessions go to the nodes that stay, and a RESUME for one of them
        // elsewhere waits until it is there.
        if let Some(cluster) = &relaying {
            cluster.begin_handover();
            cluster.end_relays();
        }
        hub.close_all(CloseReason::Shutdown);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while (hub.attached_count() > 0 || !draining.settled())
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(cluster) = &relaying {
            let handed = cluster.hand_over(&draining).await;
            if handed > 0 {
                tracing::info!(handed, "gateway sessions handed over to other nodes");
            }
        }
        // What live v2 sessions need to RESUME after the restart.
        let saved: Vec<_> = draining
            .save()
            .into_iter()
            .map(|s| concord_store::SavedSession {
                id: s.id,
                user_id: s.user_id,
                expires_at: concord_protocol::Timestamp::from_micros(
                    concord_protocol::Timestamp::now().as_micros()
                        + i64::try_from(s.expires_in.as_micros()).unwrap_or(i64::MAX / 2),
                ),
                state: s.state,
            })
            .collect();
        if alone && !saved.is_empty() {
            match store.save_gateway_sessions(&saved).await {
                Ok(()) => tracing::info!(saved = saved.len(), "gateway sessions saved for RESUME"),
                Err(err) => tracing::error!(error = %err, "gateway sessions not saved"),
            }
        }
        let _ = drained_tx.send(());
    };
    let settings = crate::listen::Settings::new(&limits, metrics);
    crate::listen::serve(listener, app, settings, stop_rx, signal).await;
    housekeeping.abort();
    search_indexer.abort();
    let _ = drained_rx.await;
    if let Some(cluster) = &cluster {
        cluster.leave().await;
    }
    Ok(())
}

async fn security_headers(request: Request, next: Next) -> Response {
    let is_health = request
        .uri()
        .path()
        .trim_start_matches("/api")
        .starts_with("/health");
    let mut response = next.run(request).await;
    if !is_health {
        let headers = response.headers_mut();
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
        // The web client's answers bring their own, narrower-than-open policy.
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
            );
        }
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

/// Per REST request: a request id (the client's `X-Request-Id` when it is a sane
/// token, else a new one) on a span around the handler, so that every log line the
/// request causes carries it, echoed in the response; then one log line (method,
/// path without the query string, which may carry tokens; status; duration) and the
/// request's metrics, labelled by route pattern.
async fn observe_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    // The API is served under `/` and `/api`: one route, one label.
    let route = route
        .strip_prefix("/api")
        .filter(|r| r.starts_with('/'))
        .unwrap_or(route)
        .to_owned();
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_request_id(v))
        .map_or_else(|| uuid::Uuid::now_v7().simple().to_string(), str::to_owned);
    let span = tracing::info_span!("request", id = %id, method, route = %route);
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.request(method, &route, status, took);
    span.in_scope(|| {
        tracing::info!(
            method,
            path,
            status,
            micros = took.as_micros() as u64,
            "request"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The request id header, read and echoed.
const REQUEST_ID: &str = "x-request-id";

/// Whether a client's request id is safe to log and echo: 1 to 64 characters of
/// letters, digits, `-`, `_` and `.`.
fn is_request_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The method as a label from a closed set (a client's invented method is `OTHER`).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_taken_only_when_sane() {
        for good in ["abc", "0f8c-12_34.5", &"a".repeat(64)] {
            assert!(is_request_id(good), "{good}");
        }
        for bad in ["", "a b", "x\ny", "ü", "<script>", &"a".repeat(65)] {
            assert!(!is_request_id(bad), "{bad:?}");
        }
    }
}
