//! The production [`GatewaySocket`]: a tungstenite WebSocket whose data frames are
//! written as pre-encoded bytes, straight to the transport.

use std::{
    io::IoSlice,
    pin::Pin,
    task::{Context, Poll},
};

use futures_util::{Sink, SinkExt, Stream};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{self, Message},
};

use concord_protocol::CloseCode;

use crate::{Frames, GatewaySocket, OpenSocket};

/// A WebSocket stream that knows whether its codec may hold output.
///
/// Pre-encoded frames bypass the codec, so before writing them anything the codec
/// holds (the pong it queued for a ping, a close reply, a frame left in its buffer
/// when the socket was full) must go first, or the two would interleave on the wire.
/// Flushing the codec before every write costs a pass through its layers and a waker
/// registration on every write of every session, while the codec almost never holds
/// anything: it gets output only from a read (ping, close) or a send through the
/// `Sink`. So the flush happens only after one of those, until one succeeds.
#[derive(Debug)]
pub struct WsSocket<T> {
    inner: WebSocketStream<T>,
    /// A read or a send happened since the codec was last flushed.
    codec_dirty: bool,
    /// Its place among the node's open sockets, given back when it drops.
    open: Option<OpenSocket>,
}

impl<T> WsSocket<T> {
    /// Wraps an established WebSocket.
    pub fn new(inner: WebSocketStream<T>) -> Self {
        Self {
            inner,
            // Whatever the handshake left is flushed by the first write.
            codec_dirty: true,
            open: None,
        }
    }

    /// Counts the socket as open in its gateway's [`crate::SocketStats`] while it lives.
    pub(crate) fn counted(mut self, open: OpenSocket) -> Self {
        self.open = Some(open);
        self
    }
}

impl<T> Stream for WsSocket<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Result<Message, tungstenite::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        // A read that produced something may have queued a reply (a ping's pong, a
        // close's echo) or left one unflushed; a pending read produced nothing.
        if polled.is_ready() {
            self.codec_dirty = true;
        }
        polled
    }
}

impl<T> Sink<Message> for WsSocket<T>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    type Error = tungstenite::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), Self::Error> {
        self.codec_dirty = true;
        Pin::new(&mut self.inner).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(polled, Poll::Ready(Ok(()))) {
            self.codec_dirty = false;
        }
        polled
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

impl<T> GatewaySocket for WsSocket<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    fn protocol_violation(&self, code: CloseCode) {
        if let Some(open) = &self.open {
            open.violation(code);
        }
    }

    async fn write_frames(&mut self, batch: &[Frames]) -> std::io::Result<()> {
        if self.codec_dirty {
            SinkExt::flush(self).await.map_err(std::io::Error::other)?;
        }
        let io = self.inner.get_mut();
        if let [Frames::One(frame)] = batch {
            // The common fan-out case: one frame, no slice list to build.
            io.write_all(frame.frame()).await?;
            return io.flush().await;
        }
        // Vectored writes of up to SLICES frames each: no copy, no allocation, and
        // nothing kept per connection once the batch is out.
        const SLICES: usize = 16;
        let mut slices = [IoSlice::new(&[]); SLICES];
        // A cursor of plain indexes (entry, frame within it) across the awaits.
        let (mut entry, mut frame) = (0, 0);
        loop {
            let mut filled = 0;
            while filled < SLICES && entry < batch.len() {
                if let Some(payload) = batch[entry].get(frame) {
                    slices[filled] = IoSlice::new(payload.frame());
                    filled += 1;
                    frame += 1;
                } else {
                    (entry, frame) = (entry + 1, 0);
                }
            }
            if filled == 0 {
                break;
            }
            write_all_vectored(io, &mut slices[..filled]).await?;
        }
        io.flush().await
    }

    async fn write_chunks(&mut self, chunks: &[&[u8]]) -> std::io::Result<()> {
        if self.codec_dirty {
            SinkExt::flush(self).await.map_err(std::io::Error::other)?;
        }
        let io = self.inner.get_mut();
        // As above: vectored writes of up to SLICES chunks, nothing kept.
        const SLICES: usize = 16;
        for group in chunks.chunks(SLICES) {
            let mut slices = [IoSlice::new(&[]); SLICES];
            for (slot, chunk) in slices.iter_mut().zip(group) {
                *slot = IoSlice::new(chunk);
            }
            write_all_vectored(io, &mut slices[..group.len()]).await?;
        }
        io.flush().await
    }
}

/// Writes every byte of `slices`, in as few vectored writes as the transport takes.
async fn write_all_vectored<T: AsyncWrite + Unpin>(
    io: &mut T,
    mut remaining: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    while !remaining.is_empty() {
        let written = io.write_vectored(remaining).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut remaining, written);
    }
    Ok(())
}
