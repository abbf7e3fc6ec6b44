//! Where the server is and how one gateway socket is opened to it, from a chosen
//! loopback source address so that N is not capped by one address's ports.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use anyhow::{Context, bail};
use concord_client::raw::{ConnectOptions, Connection, RawError};
use serde::{Deserialize, Serialize};
use tokio::net::TcpSocket;

use crate::{args::Protocol, content::event_name};

/// A client gateway socket: the SDK's low-level connection (`concord_client::raw`).
pub(crate) type Ws = Connection;

/// Everything needed to open gateway sockets; shipped to worker processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Target {
    /// Resolved server address of the gateway.
    pub(crate) addr: SocketAddr,
    /// `ws://host:port/path` without a query.
    pub(crate) ws_url: String,
    /// Source addresses to bind, round-robin by connection index; empty = any.
    pub(crate) sources: Vec<IpAddr>,
    /// The gateway protocol version spoken.
    pub(crate) protocol: Protocol,
    /// More gateways of a cluster (address and URL): connections are spread over the
    /// first and these, round-robin by connection index.
    #[serde(default)]
    pub(crate) more: Vec<(SocketAddr, String)>,
}

/// A gateway socket past READY.
pub(crate) struct Opened {
    pub(crate) ws: Ws,
    /// v2: the heartbeat interval HELLO announced (a positive one).
    pub(crate) heartbeat: Option<Duration>,
}

impl Target {
    /// Resolves `--url` / `--ws-url` and picks source addresses.
    pub(crate) async fn resolve(
        url: &str,
        ws_url: Option<&str>,
        also: &[String],
        sources: u8,
        first_source: u8,
        protocol: Protocol,
    ) -> anyhow::Result<Self> {
        let ws_url = match ws_url {
            Some(ws) => ws.trim_end_matches('/').to_string(),
            None => {
                let base = reqwest::Url::parse(url).with_context(|| format!("--url {url}"))?;
                let scheme = match base.scheme() {
                    "http" => "ws",
                    "https" => bail!("TLS is not supported by the bench; use an http:// URL"),
                    other => bail!("--url has scheme {other}, expected http"),
                };
                let host = base.host_str().context("--url has no host")?;
                let port = base.port_or_known_default().unwrap_or(80);
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.to_string()
                };
                format!("{scheme}://{host}:{port}/ws")
            }
        };
        let addr = gateway_address(&ws_url).await?;
        let mut more = Vec::with_capacity(also.len());
        for url in also {
            let url = url.trim_end_matches('/').to_string();
            more.push((gateway_address(&url).await?, url));
        }
        Ok(Self {
            addr,
            ws_url,
            sources: source_addresses(addr.ip(), sources, first_source),
            protocol,
            more,
        })
    }

    /// The address and URL of the gateway connection `global` goes to.
    fn gateway_for(&self, global: usize) -> (SocketAddr, &str) {
        match global % (1 + self.more.len()) {
            0 => (self.addr, &self.ws_url),
            n => (self.more[n - 1].0, &self.more[n - 1].1),
        }
    }

    /// The gateway query of a bot: its token in the URL, so that READY comes at once
    /// (after HELLO in v2) without an IDENTIFY.
    pub(crate) fn query(&self, bot_token: &str) -> String {
        match self.protocol {
            Protocol::V1 => format!("bot_token={bot_token}"),
            Protocol::V2 => format!("v=2&bot_token={bot_token}"),
        }
    }

    /// The source address of connection `global` (its index across all processes).
    pub(crate) fn source_for(&self, global: usize) -> Option<IpAddr> {
        (!self.sources.is_empty()).then(|| self.sources[global % self.sources.len()])
    }

    /// Opens a gateway socket with `query` and reads up to READY: the first frame in
    /// v1, the second (after HELLO) in v2. The whole attempt is bounded by `limit`.
    pub(crate) async fn open(
        &self,
        global: usize,
        query: &str,
        limit: Duration,
    ) -> Result<Opened, AttemptError> {
        match tokio::time::timeout(limit, self.open_unbounded(global, query)).await {
            Ok(result) => result,
            Err(_) => Err(AttemptError::Timeout),
        }
    }

    async fn open_unbounded(&self, global: usize, query: &str) -> Result<Opened, AttemptError> {
        let (addr, ws_url) = self.gateway_for(global);
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(AttemptError::Io)?;
        if let Some(source) = self.source_for(global) {
            socket
                .bind(SocketAddr::new(source, 0))
                .map_err(AttemptError::Io)?;
        }
        let stream = socket.connect(addr).await.map_err(AttemptError::Io)?;
        let _ = stream.set_nodelay(true);
        let url = format!("{ws_url}?{query}");
        // Small buffers: the bench may hold tens of thousands of mostly idle sockets.
        let options = ConnectOptions {
            read_buffer_size: Some(4 * 1024),
            write_buffer_size: Some(0),
            ..ConnectOptions::new()
        };
        let mut ws = Connection::connect_over(Box::new(stream), &url, &options)
            .await
            .map_err(|e| match e.status() {
                Some(status) => AttemptError::Status(status),
                None => AttemptError::Handshake(e.to_string()),
            })?;
        let mut hello = None;
        loop {
            // Control frames may precede READY (the connection skips them); a binary
            // frame is a protocol error.
            let step = match ws.next_text().await {
                Ok(text) => before_ready(self.protocol, hello.is_some(), text)?,
                Err(RawError::Closed(_) | RawError::Lost(_)) => return Err(AttemptError::Closed),
                Err(_) => return Err(AttemptError::NotReady),
            };
            match step {
                Step::Ready => {
                    return Ok(Opened {
                        ws,
                        heartbeat: hello.flatten(),
                    });
                }
                Step::Hello(interval) => hello = Some(interval),
            }
        }
    }
}

/// What a text frame received before READY was.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// READY: the connection is up.
    Ready,
    /// v2's HELLO, with its heartbeat interval if it gave a positive one.
    Hello(Option<Duration>),
}

/// `HELLO` as far as the bench reads it. Parsed once per connection, so a real parse
/// (any key order) rather than a scan.
#[derive(Deserialize)]
struct HelloFrame {
    op: String,
    #[serde(default)]
    d: Option<HelloData>,
}

#[derive(Deserialize)]
struct HelloData {
    #[serde(default)]
    heartbeat_interval: Option<u64>,
}

/// Judges a text frame received before READY: v1 wants READY first; v2 wants one
/// HELLO, then READY.
fn before_ready(protocol: Protocol, hello_seen: bool, text: &str) -> Result<Step, AttemptError> {
    if event_name(text) == Some("READY") {
        return match protocol {
            Protocol::V2 if !hello_seen => Err(AttemptError::NoHello),
            _ => Ok(Step::Ready),
        };
    }
    if protocol == Protocol::V2
        && !hello_seen
        && let Ok(hello) = serde_json::from_str::<HelloFrame>(text)
        && hello.op == "HELLO"
    {
        let interval = hello
            .d
            .and_then(|d| d.heartbeat_interval)
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        return Ok(Step::Hello(interval));
    }
    Err(AttemptError::NotReady)
}

/// Why one connection attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    Io(std::io::Error),
    Status(u16),
    Handshake(String),
    NotReady,
    /// `--protocol 2`, and READY came without HELLO: the server does not speak v2.
    NoHello,
    Closed,
    Timeout,
}

impl std::fmt::Display for AttemptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "socket: {e}"),
            Self::Status(s) => write!(f, "upgrade refused with HTTP {s}"),
            Self::Handshake(e) => write!(f, "handshake: {e}"),
            Self::NotReady => f.write_str("first frame was not READY (v2: HELLO, then READY)"),
            Self::NoHello => f.write_str("READY without HELLO: the server does not speak v2"),
            Self::Closed => f.write_str("closed before READY"),
            Self::Timeout => f.write_str("no READY in time"),
        }
    }
}

/// Where a `ws://host:port/path` gateway URL points.
async fn gateway_address(ws_url: &str) -> anyhow::Result<SocketAddr> {
    let parsed = reqwest::Url::parse(ws_url).with_context(|| format!("gateway URL {ws_url}"))?;
    if parsed.scheme() != "ws" {
        bail!("gateway URL {ws_url} must start with ws://");
    }
    let host = parsed.host_str().context("gateway URL has no host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port_or_known_default().unwrap_or(80);
    tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}:{port}"))?
        .min_by_key(|a| !a.is_ipv4())
        .with_context(|| format!("{host} has no address"))
}

/// `127.0.0.<first>..` for an IPv4 loopback server; nothing otherwise (a source
/// address on `lo` cannot reach another host).
pub(crate) fn source_addresses(server: IpAddr, count: u8, first: u8) -> Vec<IpAddr> {
    match server {
        IpAddr::V4(v4) if v4.is_loopback() => (0..count)
            .map_while(|i| first.checked_add(i))
            .filter(|&octet| octet != 0 && octet != 255)
            .map(|octet| IpAddr::V4(Ipv4Addr::new(127, 0, 0, octet)))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_only_for_ipv4_loopback() {
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let s = source_addresses(lo, 3, 2);
        assert_eq!(
            s,
            ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
                .map(|a| a.parse::<IpAddr>().unwrap())
                .to_vec()
        );
        assert_eq!(source_addresses(lo, 10, 250).len(), 5, "stops before .255");
        assert!(source_addresses("10.0.0.1".parse().unwrap(), 4, 2).is_empty());
        assert!(source_addresses("::1".parse().unwrap(), 4, 2).is_empty());
        assert!(source_addresses(lo, 0, 2).is_empty());
    }

    #[tokio::test]
    async fn connections_are_spread_over_the_gateways_of_a_cluster() {
        let t = Target::resolve(
            "http://127.0.0.1:8091",
            None,
            &[
                "ws://127.0.0.1:8092/ws".into(),
                "ws://127.0.0.1:8093/ws/".into(),
            ],
            0,
            2,
            Protocol::V1,
        )
        .await
        .unwrap();
        let picked: Vec<_> = (0..4).map(|i| t.gateway_for(i).1.to_owned()).collect();
        assert_eq!(
            picked,
            [
                "ws://127.0.0.1:8091/ws",
                "ws://127.0.0.1:8092/ws",
                "ws://127.0.0.1:8093/ws",
                "ws://127.0.0.1:8091/ws"
            ]
        );
        assert_eq!(t.gateway_for(2).0.port(), 8093);
    }

    #[tokio::test]
    async fn urls_resolve() {
        let t = Target::resolve("http://127.0.0.1:8091/api/", None, &[], 4, 2, Protocol::V1)
            .await
            .unwrap();
        assert_eq!(t.ws_url, "ws://127.0.0.1:8091/ws");
        assert_eq!(t.query("b.t"), "bot_token=b.t");
        assert_eq!(t.addr, "127.0.0.1:8091".parse().unwrap());
        assert_eq!(t.source_for(5), Some("127.0.0.3".parse().unwrap()));
        let t = Target::resolve(
            "http://x",
            Some("ws://127.0.0.1:9/gw/"),
            &[],
            0,
            2,
            Protocol::V2,
        )
        .await
        .unwrap();
        assert_eq!(t.ws_url, "ws://127.0.0.1:9/gw");
        assert_eq!(t.query("b.t"), "v=2&bot_token=b.t");
        assert_eq!(t.source_for(1), None);
        assert!(
            Target::resolve("https://127.0.0.1", None, &[], 1, 2, Protocol::V1)
                .await
                .is_err()
        );
    }

    const READY_V1: &str = r#"{"op":"DISPATCH","t":"READY","d":{"user":{"id":"u"}}}"#;
    const READY_V2: &str = r#"{"op":"DISPATCH","s":1,"t":"READY","d":{"user":{"id":"u"}}}"#;
    const HELLO: &str = r#"{"op":"HELLO","d":{"heartbeat_interval":30000,"session_id":"s1"}}"#;

    #[test]
    fn v1_wants_ready_first() {
        assert_eq!(
            before_ready(Protocol::V1, false, READY_V1).unwrap(),
            Step::Ready
        );
        assert!(matches!(
            before_ready(Protocol::V1, false, HELLO),
            Err(AttemptError::NotReady)
        ));
        assert!(matches!(
            before_ready(
                Protocol::V1,
                false,
                r#"{"op":"DISPATCH","t":"MESSAGE_CREATE","d":{}}"#
            ),
            Err(AttemptError::NotReady)
        ));
    }

    #[test]
    fn v2_wants_one_hello_then_ready() {
        assert_eq!(
            before_ready(Protocol::V2, false, HELLO).unwrap(),
            Step::Hello(Some(Duration::from_secs(30)))
        );
        assert_eq!(
            before_ready(Protocol::V2, true, READY_V2).unwrap(),
            Step::Ready
        );
        assert!(matches!(
            before_ready(Protocol::V2, false, READY_V2),
            Err(AttemptError::NoHello)
        ));
        assert!(matches!(
            before_ready(Protocol::V2, false, READY_V1),
            Err(AttemptError::NoHello)
        ));
        assert!(
            matches!(
                before_ready(Protocol::V2, true, HELLO),
                Err(AttemptError::NotReady)
            ),
            "a second HELLO"
        );
        assert!(matches!(
            before_ready(
                Protocol::V2,
                false,
                r#"{"op":"INVALID_SESSION","d":{"resumable":false}}"#
            ),
            Err(AttemptError::NotReady)
        ));
        assert!(matches!(
            before_ready(Protocol::V2, false, "not json"),
            Err(AttemptError::NotReady)
        ));
    }

    #[test]
    fn hello_intervals() {
        let hello = |d: &str| {
            before_ready(Protocol::V2, false, &format!(r#"{{"op":"HELLO","d":{d}}}"#)).unwrap()
        };
        assert_eq!(
            hello(r#"{"session_id":"s","heartbeat_interval":1500}"#),
            Step::Hello(Some(Duration::from_millis(1500)))
        );
        assert_eq!(hello(r#"{"session_id":"s"}"#), Step::Hello(None));
        assert_eq!(hello(r#"{"heartbeat_interval":0}"#), Step::Hello(None));
        assert_eq!(hello("null"), Step::Hello(None));
    }
}
