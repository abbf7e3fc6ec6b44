//! A WebSocket echo server on the gateway's own socket code, for the Autobahn|Testsuite
//! fuzzing client (docs/autobahn.md). Not part of the server: it is never routed in
//! `concord serve`.
//!
//! What it shares with `/ws`: the codec settings ([`codec_config`]), the socket type
//! ([`WsSocket`]), the frame writer data frames go out through in production
//! (`GatewaySocket::write_frames` with a [`Payload`] text frame), and the answer to a
//! client that breaks the protocol ([`close_on_read_error`]: 1002, 1007, 1009). Pings are
//! answered and closes echoed by the codec, as on `/ws`. What it does not share: the
//! HTTP handshake (tungstenite's here, the gateway's own there) and the session logic.
//!
//! ```sh
//! cargo run --release -p concord-gateway --example autobahn_echo -- 127.0.0.1:9001 16777216
//! ```
//!
//! The second argument is the inbound limit per message in bytes (default: the
//! gateway's 16 KiB). Autobahn sends messages of up to 16 MiB, so its run uses 16 MiB.

use std::{net::SocketAddr, time::Duration};

use concord_gateway::{
    Frames, GatewaySocket, Payload, WsSocket, close_on_read_error, codec_config,
};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// How long a close frame may take to go out (the gateway's default write timeout).
const WRITE_LIMIT: Duration = Duration::from_secs(10);

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: SocketAddr = args
        .next()
        .as_deref()
        .unwrap_or("127.0.0.1:9001")
        .parse()
        .map_err(std::io::Error::other)?;
    let max_message = match args.next() {
        Some(limit) => limit.parse().map_err(std::io::Error::other)?,
        None => concord_protocol::limits::MAX_GATEWAY_MESSAGE,
    };
    let listener = TcpListener::bind(addr).await?;
    println!("{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(echo(stream, max_message));
    }
}

async fn echo(stream: TcpStream, max_message: usize) {
    let config = codec_config(max_message);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await else {
        return;
    };
    let mut socket = WsSocket::new(ws);
    while let Some(message) = socket.next().await {
        let sent = match message {
            Ok(Message::Text(text)) => {
                let frame = Frames::One(Payload::text(text.as_str()));
                socket.write_frames(&[frame]).await.is_ok()
            }
            Ok(Message::Binary(bytes)) => socket.send(Message::Binary(bytes)).await.is_ok(),
            // The codec answers pings and echoes a close; reading on flushes them.
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_) | Message::Close(_)) => true,
            Err(err) => {
                close_on_read_error(&mut socket, &err, WRITE_LIMIT).await;
                false
            }
        };
        if !sent {
            break;
        }
    }
}
