//! A v2 session served through another node: RESUME on any node of a cluster.
//!
//! A session lives on the node that identified it (its owner): its numbering, replay
//! buffer and Hub entry stay there. A client that reconnects through another node
//! (a balancer's choice, a changed address) sends its RESUME there; that node finds
//! no such session of its own and asks the cluster ([`RemoteSessions`]). If a live
//! node holds it, the client's node becomes a relay: the owner serves the session
//! over a [`RelayedSocket`], exactly as over a WebSocket (RESUME, replay, RESUMED,
//! live events, heartbeats), and the client's node carries frames both ways. One
//! numbering authority, so nothing is lost or sent twice.
//!
//! The owner writes plain frames; the client's node owns the connection's
//! compression (its context began with that node's HELLO), so it compresses each
//! text frame into the client's stream as it would its own. Audio chunks pass as
//! they are.
//!
//! The relay ends as a connection would: the client's close ends the owner's socket
//! (the session parks, resumable); the owner's close is forwarded with its code; the
//! owner's node dying or leaving closes the client with RECONNECT and 1001 (it
//! resumes elsewhere, or identifies again if the session died with its node); a
//! client that reads too slowly for the relay's queue is closed 4013, resumable. A
//! RESUME the owner refuses comes back with its INVALID_SESSION
//! ([`ToClient::HandBack`]): the client's node serves the socket again, and an
//! IDENTIFY on it opens a session there.

use std::{
    io::Cursor,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use concord_protocol::{CloseCode, UserId};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::mpsc;
use tungstenite::{
    Message,
    protocol::{
        CloseFrame,
        frame::{
            FrameHeader,
            coding::{CloseCode as WsCloseCode, Data, OpCode},
        },
    },
};

use crate::{
    Frames, GatewaySocket, StreamCompressor, session,
    wire::{Encoded, push_header},
};

/// What the client's node sends the owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToOwner {
    /// A text frame of the client (the first is its RESUME).
    Text(String),
    /// A binary frame of the client (an audio chunk).
    Binary(Bytes),
    /// The client's connection ended: with a close frame of this code, or without
    /// one (lost).
    Closed(Option<u16>),
}

/// The close code (1006, never sent in a close frame) with which the owner tells the
/// client's node to drop the connection without a close frame: the owner's session
/// left it the way it leaves one of its own sockets (another RESUME took it over).
pub const DROPPED: u16 = 1006;

/// What the owner sends the client's node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToClient {
    /// Whole WebSocket frames, uncompressed, as the owner wrote them. A bus may carry
    /// them in pieces cut anywhere; the client's node writes whole frames only.
    Bytes(Bytes),
    /// The owner refused the RESUME (its INVALID_SESSION went before): the client's
    /// node serves the connection itself again, and an IDENTIFY on it opens a session
    /// there.
    HandBack,
    /// Close the client's connection with this code and reason.
    Close {
        /// The close code.
        code: u16,
        /// Its reason.
        reason: String,
    },
}

/// A relay from this node's client to the session's owner, as the cluster opens it.
pub struct RelayLink {
    /// The owner's output in order; ends when the owner's node dies or leaves, or when
    /// the client fell too far behind (see `overflowed`).
    pub from_owner: mpsc::Receiver<ToClient>,
    /// Sends the client's frames to the owner, in order.
    pub to_owner: Box<dyn Fn(ToOwner) + Send + Sync>,
    /// Set when `from_owner` ended because its queue was full: the client reads too
    /// slowly (4013) rather than the owner's node going away.
    pub overflowed: Arc<AtomicBool>,
}

impl std::fmt::Debug for RelayLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayLink").finish_non_exhaustive()
    }
}

/// Where [`RemoteSessions::open`] found a session.
#[derive(Debug)]
pub enum Found {
    /// On another node: the relay to it.
    Relay(RelayLink),
    /// On this node after all: the session reached it while the question was out (a
    /// stopping node handed it over here), so the RESUME is served here, no hop.
    Here,
}

/// The cluster's side of RESUME on any node.
#[async_trait]
pub trait RemoteSessions: Send + Sync + 'static {
    /// Finds the node holding v2 session `session_id` of `user` and, if it is another
    /// one, opens a relay to it; the owner gets `resume` (the client's RESUME frame)
    /// first. `None`: no live node holds it.
    async fn open(&self, session_id: &str, user: UserId, resume: String) -> Option<Found>;
}

/// The owner's end of a relay: a [`GatewaySocket`] whose frames go to the client's
/// node and whose reads are the client's frames as that node forwards them.
pub struct RelayedSocket {
    from_client: mpsc::Receiver<ToOwner>,
    to_client: Box<dyn Fn(ToClient) + Send + Sync>,
    /// The client's close (or the relay's end) was read: the stream has ended.
    ended: bool,
}

impl std::fmt::Debug for RelayedSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayedSocket")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl RelayedSocket {
    /// A socket reading `from_client` and writing through `to_client`.
    pub fn new(
        from_client: mpsc::Receiver<ToOwner>,
        to_client: Box<dyn Fn(ToClient) + Send + Sync>,
    ) -> Self {
        Self {
            from_client,
            to_client,
            ended: false,
        }
    }
}

impl Stream for RelayedSocket {
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match self.from_client.poll_recv(cx) {
            Poll::Ready(Some(ToOwner::Text(text))) => Poll::Ready(Some(Ok(Message::text(text)))),
            Poll::Ready(Some(ToOwner::Binary(bytes))) => {
                Poll::Ready(Some(Ok(Message::Binary(bytes))))
            }
            Poll::Ready(Some(ToOwner::Closed(Some(code)))) => {
                self.ended = true;
                let frame = CloseFrame {
                    code: WsCloseCode::from(code),
                    reason: "".into(),
                };
                Poll::Ready(Some(Ok(Message::Close(Some(frame)))))
            }
            Poll::Ready(Some(ToOwner::Closed(None)) | None) => {
                self.ended = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Sink<Message> for RelayedSocket {
    type Error = tungstenite::Error;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        let (first, body) = match item {
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1000, String::new()), |frame| {
                    (u16::from(frame.code), frame.reason.to_string())
                });
                (self.to_client)(ToClient::Close { code, reason });
                return Ok(());
            }
            Message::Text(text) => (0x81, Bytes::from(text)),
            Message::Binary(bytes) => (0x82, bytes),
            // Pings and pongs are the client's node's own business.
            _ => return Ok(()),
        };
        let mut frame = Vec::with_capacity(10 + body.len());
        push_header(&mut frame, first, body.len());
        frame.extend_from_slice(&body);
        (self.to_client)(ToClient::Bytes(Bytes::from(frame)));
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

impl GatewaySocket for RelayedSocket {
    async fn write_frames(&mut self, batch: &[Frames]) -> std::io::Result<()> {
        let mut bytes = BytesMut::new();
        for payload in batch.iter().flat_map(Frames::iter) {
            bytes.extend_from_slice(payload.frame());
        }
        if !bytes.is_empty() {
            (self.to_client)(ToClient::Bytes(bytes.freeze()));
        }
        Ok(())
    }

    async fn write_chunks(&mut self, chunks: &[&[u8]]) -> std::io::Result<()> {
        let bytes: Vec<u8> = chunks.concat();
        if !bytes.is_empty() {
            (self.to_client)(ToClient::Bytes(Bytes::from(bytes)));
        }
        Ok(())
    }
}

/// The whole frames at the start of `pending`, taken out of it: text frames into
/// `out` (compressed into the client's stream when it has one), binary frames as
/// they are. What is left is the start of a frame still on its way.
fn take_frames(
    pending: &mut BytesMut,
    mut compressor: Option<&mut StreamCompressor>,
    out: &mut Encoded,
) -> std::io::Result<()> {
    loop {
        let mut cursor = Cursor::new(&pending[..]);
        let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(std::io::Error::other)?
        else {
            return Ok(());
        };
        let start = cursor.position() as usize;
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
        else {
            return Err(std::io::Error::other("relayed frame too long"));
        };
        if pending.len() < end {
            return Ok(());
        }
        let frame = pending.split_to(end);
        match (header.opcode, compressor.as_deref_mut()) {
            (OpCode::Data(Data::Text), Some(compressor)) => {
                out.message(Some(compressor), &[], &frame[start..], false)?;
            }
            _ => out.raw(&frame),
        }
    }
}

/// Sends a close frame with `code` (any code: the owner's, forwarded), or none for
/// [`DROPPED`].
async fn close_with<S: GatewaySocket>(
    socket: &mut S,
    code: u16,
    reason: String,
    limit: std::time::Duration,
) {
    if code == DROPPED {
        return;
    }
    let frame = CloseFrame {
        code: WsCloseCode::from(code),
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(limit, socket.send(Message::Close(Some(frame)))).await;
}

/// Relays between the client's `socket` and the session's owner until either ends.
/// Returns the socket and its compression when the owner hands the connection back
/// (it refused the RESUME).
pub(crate) async fn run<S: GatewaySocket>(
    mut socket: S,
    mut compressor: Option<StreamCompressor>,
    mut link: RelayLink,
    limit: std::time::Duration,
) -> Option<(S, Option<StreamCompressor>)> {
    let mut pending = BytesMut::new();
    let mut encoded = Encoded::default();
    loop {
        tokio::select! {
            out = link.from_owner.recv() => match out {
                Some(ToClient::Bytes(bytes)) => {
                    pending.extend_from_slice(&bytes);
                    // Whatever else is already here goes in the same write.
                    let mut last = None;
                    while let Ok(more) = link.from_owner.try_recv() {
                        match more {
                            ToClient::Bytes(bytes) => pending.extend_from_slice(&bytes),
                            end => {
                                last = Some(end);
                                break;
                            }
                        }
                    }
                    encoded.clear();
                    let written = take_frames(&mut pending, compressor.as_mut(), &mut encoded)
                        .is_ok()
                        && session::write_encoded(&mut socket, &encoded, limit).await;
                    if !written {
                        (link.to_owner)(ToOwner::Closed(None));
                        return None;
                    }
                    match last {
                        Some(ToClient::Close { code, reason }) => {
                            close_with(&mut socket, code, reason, limit).await;
                            return None;
                        }
                        Some(ToClient::HandBack) => return Some((socket, compressor)),
                        _ => {}
                    }
                }
                Some(ToClient::HandBack) => return Some((socket, compressor)),
                Some(ToClient::Close { code, reason }) => {
                    close_with(&mut socket, code, reason, limit).await;
                    return None;
                }
                None if link.overflowed.load(Ordering::Acquire) => {
                    (link.to_owner)(ToOwner::Closed(None));
                    session::close(&mut socket, CloseCode::SlowConsumer, "send queue full", limit)
                        .await;
                    return None;
                }
                None => {
                    // The owner's node died or left: resume elsewhere (or identify
                    // again if the session went with it).
                    encoded.clear();
                    let _ = crate::wire::encode_plain(
                        &session::RECONNECT,
                        compressor.as_mut(),
                        &mut encoded,
                    );
                    if session::write_encoded(&mut socket, &encoded, limit).await {
                        session::close(&mut socket, CloseCode::GoingAway, "node going away", limit)
                            .await;
                    }
                    return None;
                }
            },
            inbound = socket.next() => match inbound {
                Some(Ok(Message::Text(text))) => (link.to_owner)(ToOwner::Text(text.to_string())),
                Some(Ok(Message::Binary(bytes))) => (link.to_owner)(ToOwner::Binary(bytes)),
                Some(Ok(Message::Close(frame))) => {
                    (link.to_owner)(ToOwner::Closed(frame.map(|frame| u16::from(frame.code))));
                    // Answer the close handshake; the client may already be gone.
                    let _ = tokio::time::timeout(limit, SinkExt::flush(&mut socket)).await;
                    return None;
                }
                None => {
                    (link.to_owner)(ToOwner::Closed(None));
                    return None;
                }
                Some(Err(err)) => {
                    (link.to_owner)(ToOwner::Closed(None));
                    session::close_on_read_error(&mut socket, &err, limit).await;
                    return None;
                }
                // A ping's pong is queued in the codec: send it now.
                Some(Ok(_)) => {
                    let _ = tokio::time::timeout(limit, SinkExt::flush(&mut socket)).await;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Compression, CompressionConfig, Payload};

    fn text_frame(text: &str) -> Vec<u8> {
        let mut frame = Vec::new();
        push_header(&mut frame, 0x81, text.len());
        frame.extend_from_slice(text.as_bytes());
        frame
    }

    #[test]
    fn whole_frames_pass_and_a_cut_one_waits_for_its_rest() {
        let big = "x".repeat(70_000);
        let mut bytes = text_frame("{\"op\":\"HEARTBEAT_ACK\"}");
        bytes.extend(text_frame(&big));
        bytes.extend([0x82, 3, 1, 2, 3]);
        let (mut pending, mut out) = (BytesMut::new(), Encoded::default());
        // Cut inside the big frame's header, then inside its body.
        for piece in [
            &bytes[..24],
            &bytes[24..26],
            &bytes[26..1000],
            &bytes[1000..],
        ] {
            pending.extend_from_slice(piece);
            take_frames(&mut pending, None, &mut out).unwrap();
        }
        assert!(pending.is_empty());
        assert_eq!(
            out.bytes(),
            &bytes[..],
            "uncompressed: the owner's bytes as they were"
        );

        let mut pending = BytesMut::from(&bytes[..30]);
        let mut out = Encoded::default();
        take_frames(&mut pending, None, &mut out).unwrap();
        assert_eq!(out.bytes(), &text_frame("{\"op\":\"HEARTBEAT_ACK\"}")[..]);
        assert_eq!(pending.len(), 30 - out.bytes().len(), "the cut frame waits");
    }

    #[test]
    fn text_frames_go_into_the_clients_stream_and_audio_stays_as_it_is() {
        let mut compressor =
            StreamCompressor::new(Compression::Zlib, CompressionConfig::default()).unwrap();
        let mut pending = BytesMut::from(&text_frame("{\"op\":\"HEARTBEAT_ACK\"}")[..]);
        pending.extend_from_slice(&[0x82, 3, 1, 2, 3]);
        let mut out = Encoded::default();
        take_frames(&mut pending, Some(&mut compressor), &mut out).unwrap();
        let bytes = out.bytes();
        assert_eq!(bytes[0], 0x82, "compressed into a binary frame");
        assert_eq!(
            &bytes[bytes.len() - 5..],
            &[0x82, 3, 1, 2, 3],
            "audio as it was"
        );
        let compressed = &bytes[2..bytes.len() - 5];
        let mut inflate = flate2::Decompress::new(true);
        let mut text = Vec::with_capacity(256);
        inflate
            .decompress_vec(compressed, &mut text, flate2::FlushDecompress::Sync)
            .unwrap();
        assert_eq!(text, b"{\"op\":\"HEARTBEAT_ACK\"}");
    }

    #[test]
    fn a_relayed_socket_forwards_what_the_session_writes_and_reads_the_clients_frames() {
        use std::sync::Mutex;
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel(4);
        let sink = Arc::clone(&sent);
        let mut socket =
            RelayedSocket::new(rx, Box::new(move |out| sink.lock().unwrap().push(out)));
        futures_util::FutureExt::now_or_never(async {
            socket
                .write_frames(&[Frames::One(Payload::text("{\"a\":1}"))])
                .await
                .unwrap();
            socket.write_chunks(&[b"ab", b"cd"]).await.unwrap();
            socket
                .send(Message::Close(Some(CloseFrame {
                    code: WsCloseCode::from(4006),
                    reason: "heartbeat timeout".into(),
                })))
                .await
                .unwrap();
            tx.send(ToOwner::Text("{\"op\":\"HEARTBEAT\"}".into()))
                .await
                .unwrap();
            tx.send(ToOwner::Closed(Some(1000))).await.unwrap();
            tx.send(ToOwner::Text("after the close".into()))
                .await
                .unwrap();
            assert_eq!(
                socket.next().await.unwrap().unwrap(),
                Message::text("{\"op\":\"HEARTBEAT\"}")
            );
            let Some(Ok(Message::Close(Some(close)))) = socket.next().await else {
                panic!("the client's close, as it sent it");
            };
            assert_eq!(u16::from(close.code), 1000);
            assert!(socket.next().await.is_none());
            assert!(socket.next().await.is_none(), "ended for good");
        })
        .expect("nothing here waits");
        let sent = sent.lock().unwrap();
        assert_eq!(
            *sent,
            [
                ToClient::Bytes(Bytes::from(text_frame("{\"a\":1}"))),
                ToClient::Bytes(Bytes::from_static(b"abcd")),
                ToClient::Close {
                    code: 4006,
                    reason: "heartbeat timeout".into()
                },
            ]
        );
    }
}
