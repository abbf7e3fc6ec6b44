//! An in-memory WebSocket for driving sessions in virtual time: the test plays the
//! client on the other end.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses its own part"
)]

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use concord_gateway::{Frames, GatewaySocket};
use futures_util::{Sink, Stream};
use tokio::{sync::mpsc, time::Instant};
use tokio_tungstenite::tungstenite::{self, Message};

/// One end of an in-memory WebSocket: the test plays the client on the other end.
pub struct FakeSocket {
    inbound: mpsc::UnboundedReceiver<Result<Message, tungstenite::Error>>,
    outbound: mpsc::UnboundedSender<Message>,
    writes: WriteLog,
}

/// When each batch of data frames was written, and how many frames it held.
pub type WriteLog = Arc<Mutex<Vec<(Instant, usize)>>>;

impl GatewaySocket for FakeSocket {
    async fn write_frames(&mut self, batch: &[Frames]) -> std::io::Result<()> {
        let count = batch.iter().map(Frames::count).sum();
        self.writes.lock().unwrap().push((Instant::now(), count));
        for frame in batch.iter().flat_map(Frames::iter) {
            self.outbound
                .send(Message::text(frame.as_str()))
                .map_err(std::io::Error::other)?;
        }
        Ok(())
    }

    async fn write_chunks(&mut self, chunks: &[&[u8]]) -> std::io::Result<()> {
        use tungstenite::protocol::frame::{
            FrameHeader,
            coding::{Data, OpCode},
        };
        let bytes = chunks.concat();
        let mut cursor = std::io::Cursor::new(&bytes[..]);
        let mut count = 0;
        while (cursor.position() as usize) < bytes.len() {
            let (header, len) = FrameHeader::parse(&mut cursor)
                .map_err(std::io::Error::other)?
                .expect("a whole frame");
            let start = cursor.position() as usize;
            let body = bytes[start..start + len as usize].to_vec();
            cursor.set_position((start + len as usize) as u64);
            let message = if header.opcode == OpCode::Data(Data::Text) {
                Message::text(String::from_utf8(body).expect("utf-8"))
            } else {
                Message::binary(body)
            };
            self.outbound.send(message).map_err(std::io::Error::other)?;
            count += 1;
        }
        self.writes.lock().unwrap().push((Instant::now(), count));
        Ok(())
    }
}

impl Stream for FakeSocket {
    type Item = Result<Message, tungstenite::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inbound.poll_recv(cx)
    }
}

impl Sink<Message> for FakeSocket {
    type Error = tungstenite::Error;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.outbound
            .send(item)
            .map_err(|_| tungstenite::Error::ConnectionClosed)
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
}

pub struct Client {
    pub to_server: mpsc::UnboundedSender<Result<Message, tungstenite::Error>>,
    pub from_server: mpsc::UnboundedReceiver<Message>,
    pub writes: WriteLog,
}

impl Client {
    pub fn text(&self, text: &str) {
        self.to_server.send(Ok(Message::Text(text.into()))).unwrap();
    }

    pub async fn recv(&mut self) -> Message {
        self.from_server
            .recv()
            .await
            .expect("server ended the socket")
    }

    pub async fn recv_text(&mut self) -> String {
        match self.recv().await {
            Message::Text(t) => t.to_string(),
            other => panic!("expected text, got {other:?}"),
        }
    }

    pub async fn recv_close_code(&mut self) -> u16 {
        match self.recv().await {
            Message::Close(Some(frame)) => u16::from(frame.code),
            other => panic!("expected close, got {other:?}"),
        }
    }
}

/// A connected pair: the server's socket and the test's client.
pub fn pair() -> (FakeSocket, Client) {
    let (to_server, inbound) = mpsc::unbounded_channel();
    let (outbound, from_server) = mpsc::unbounded_channel();
    let writes = WriteLog::default();
    let socket = FakeSocket {
        inbound,
        outbound,
        writes: Arc::clone(&writes),
    };
    (
        socket,
        Client {
            to_server,
            from_server,
            writes,
        },
    )
}
