//! The accept loop: connections are admitted within the caps (per address and in
//! all), served by hyper's HTTP/1 with a deadline on request headers, upgraded to the
//! gateway where asked, and closed gracefully.
//!
//! Closing gracefully matters for error answers to uploads: a server that closes a
//! socket with unread data in it makes the kernel send a reset, and a client still
//! sending its body then loses the answer that was already on its way (it reads
//! "connection reset", not "404"). Every connection therefore ends the same way: the
//! server stops writing (FIN), reads and discards what the client still sends until it
//! closes too or a bound of time or bytes is reached, and only then closes.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, body::Body, extract::ConnectInfo, http::StatusCode};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};
use tower::ServiceExt;

use crate::{
    caps::{ConnectionSlot, IpCounter, IpPermit, TotalCounter, TotalPermit},
    config::Limits,
    metrics::Metrics,
};

/// Refusals being answered at once; past this a refused connection is closed
/// without an answer (each answer holds a descriptor while it lingers).
const REFUSALS_IN_FLIGHT: usize = 256;

/// How long, and how many bytes, a refused connection is drained after its answer.
const REFUSAL_LINGER: Linger = Linger {
    time: Duration::from_secs(2),
    bytes: 64 * 1024,
};

/// How a closing connection is drained.
#[derive(Debug, Clone, Copy)]
struct Linger {
    time: Duration,
    bytes: usize,
}

/// What the accept loop needs besides the listener and the application.
pub(crate) struct Settings {
    nodelay: bool,
    header_read: Duration,
    linger: Linger,
    per_ip: Arc<IpCounter>,
    /// Peers exempt from `per_ip`: a reverse proxy carries many clients' connections.
    trusted_proxies: Vec<IpAddr>,
    total: Arc<TotalCounter>,
    refusals: Arc<Semaphore>,
    metrics: Arc<Metrics>,
}

impl Settings {
    /// Settings from the configuration's limits.
    pub(crate) fn new(limits: &Limits, metrics: Arc<Metrics>) -> Self {
        let cap = limits.connection_cap();
        tracing::info!(
            max_connections = cap,
            connections_per_ip = limits.connections_per_ip,
            "connection caps"
        );
        Self {
            nodelay: limits.tcp_nodelay,
            header_read: Duration::from_secs(limits.header_read_secs.max(1)),
            linger: Linger {
                time: Duration::from_secs(limits.close_linger_secs),
                bytes: limits.close_linger_bytes,
            },
            per_ip: IpCounter::new(limits.connections_per_ip),
            trusted_proxies: limits.trusted_proxies.clone(),
            total: TotalCounter::new(cap),
            refusals: Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT)),
            metrics,
        }
    }
}

/// Accepts on `listener` until `stop` turns true (the socket is then closed, so the
/// kernel refuses new connections), serves connections until `signal` resolves, then
/// asks every HTTP connection to finish its request in flight and waits for them.
/// Upgraded gateway sockets are not waited for: the hub's drain (inside `signal`)
/// closes them.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    settings: Settings,
    mut stop: watch::Receiver<bool>,
    signal: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    let (closing, closing_rx) = watch::channel(false);
    let mut listener = Some(listener);
    tokio::pin!(signal);
    loop {
        let Some(accepting) = listener.as_ref() else {
            (&mut signal).await;
            break;
        };
        tokio::select! {
            biased;
            () = &mut signal => break,
            () = async { let _ = stop.wait_for(|stop| *stop).await; } => listener = None,
            accepted = accepting.accept() => match accepted {
                Ok((tcp, peer)) => admit(tcp, peer, &app, &settings, &closing_rx),
                Err(err) if is_connection_error(&err) => {}
                Err(err) => {
                    // Out of descriptors, most likely: wait for some to be given back
                    // rather than spin.
                    tracing::error!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = closing.send(true);
    drop(closing_rx);
    // Every connection task holds a receiver: this resolves when the last has ended.
    closing.closed().await;
}

/// Errors of one connection that `accept` reports; the listener itself is fine.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves `tcp` in a task of its own if the caps allow it, else answers 503 (the node
/// is full) or 429 (this address is) and closes it.
fn admit(
    tcp: TcpStream,
    peer: SocketAddr,
    app: &Router,
    settings: &Arc<Settings>,
    closing: &watch::Receiver<bool>,
) {
    let Some(total) = settings.total.acquire() else {
        refuse(tcp, settings, Refusal::Total);
        return;
    };
    let per_ip = if settings.trusted_proxies.contains(&peer.ip()) {
        None
    } else {
        let Some(permit) = settings.per_ip.acquire(peer.ip()) else {
            refuse(tcp, settings, Refusal::PerIp);
            return;
        };
        Some(permit)
    };
    if settings.nodelay
        && let Err(err) = tcp.set_nodelay(true)
    {
        tracing::debug!(error = %err, "could not set TCP_NODELAY");
    }
    let slot = ConnectionSlot::default();
    let io = Lingering {
        tcp: Some(tcp),
        held: Some(Held {
            _total: total,
            _per_ip: per_ip,
            slot: slot.clone(),
        }),
        linger: settings.linger,
    };
    let app = app.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(slot.clone());
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(Body::new)).await;
            Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
        }
    });
    let header_read = settings.header_read;
    let mut closing = closing.clone();
    tokio::spawn(async move {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_read);
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = async { let _ = closing.wait_for(|closing| *closing).await; } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(err) = result {
            tracing::debug!(error = %err, "connection ended with an error");
        }
    });
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    /// `limits.max_connections`.
    Total,
    /// `limits.connections_per_ip`.
    PerIp,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Total => "connections_total",
            Self::PerIp => "connections_per_ip",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            Self::Total => StatusCode::SERVICE_UNAVAILABLE,
            Self::PerIp => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::Total => "The server has too many open connections; retry shortly",
            Self::PerIp => "Too many open connections from this address",
        }
    }
}

/// Answers a refused connection and closes it (counted in
/// `concord_connections_refused_total`).
fn refuse(mut tcp: TcpStream, settings: &Settings, why: Refusal) {
    settings.metrics.connection_refused(why.label());
    let Ok(permit) = Arc::clone(&settings.refusals).try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let body = serde_json::json!({ "error": why.message() }).to_string();
        let status = why.status();
        let answer = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             retry-after: 1\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len(),
        );
        let _ = tokio::time::timeout(REFUSAL_LINGER.time, async {
            tcp.write_all(answer.as_bytes()).await?;
            drain(&mut tcp, REFUSAL_LINGER.bytes).await;
            Ok::<_, io::Error>(())
        })
        .await;
    });
}

/// Stops writing, then reads and discards until the client closes, `bytes` were read,
/// or an error.
async fn drain(tcp: &mut TcpStream, mut bytes: usize) {
    let _ = tcp.shutdown().await;
    let mut buf = [0u8; 8 * 1024];
    while bytes > 0 {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes = bytes.saturating_sub(n),
        }
    }
}

/// The places a connection holds while it is open (and while it drains).
struct Held {
    _total: TotalPermit,
    _per_ip: Option<IpPermit>,
    slot: ConnectionSlot,
}

/// A connection's socket, drained before it is closed (see the module's doc).
struct Lingering {
    tcp: Option<TcpStream>,
    held: Option<Held>,
    linger: Linger,
}

impl Lingering {
    fn tcp(&mut self) -> io::Result<Pin<&mut TcpStream>> {
        self.tcp
            .as_mut()
            .map(Pin::new)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let held = self.held.take();
        // A gateway session's place is given back with the session, not after the
        // drain.
        if let Some(held) = &held {
            held.slot.release();
        }
        let Some(mut tcp) = self.tcp.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let linger = self.linger;
        runtime.spawn(async move {
            let _ = tokio::time::timeout(linger.time, drain(&mut tcp, linger.bytes)).await;
            drop(tcp);
            drop(held);
        });
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_read(cx, buf),
            Err(err) => Poll::Ready(Err(err)),
        }
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_write(cx, buf),
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_write_vectored(cx, bufs),
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.as_ref().is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_flush(cx),
            Err(err) => Poll::Ready(Err(err)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_shutdown(cx),
            Err(err) => Poll::Ready(Err(err)),
        }
    }
}
