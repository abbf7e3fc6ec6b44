//! A session's audio lane: relayed audio chunks and the MEDIA_* events that frame them,
//! kept apart from the session's ordinary send queue (`docs/protocol-v2.md` §15.5).
//!
//! Audio is late-sensitive: a subscriber that falls behind loses its oldest chunks
//! (counted) instead of being closed, and chat events never wait behind audio or get
//! dropped for it. The lane holds at most its capacity in chunks; the events in it are
//! never dropped (a stream's start and end, a handful per stream). The writer drains
//! the lane after the send queue, in order, so a stream's `MEDIA_STARTED` precedes its
//! first chunk and `MEDIA_ENDED` follows its last.
//!
//! The lane costs an idle session one word: it is allocated when the session subscribes
//! and freed when it unsubscribes.

use std::{
    collections::VecDeque,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use bytes::{BufMut, Bytes, BytesMut};
use concord_protocol::{RELAYED_HEADER_LEN, RelayedHeader};

use crate::{CloseReason, Outbox, Payload};

/// Events a lane holds at most before its session is closed as too slow (a stream
/// contributes two; a subscriber this far behind is not reading at all).
const MAX_LANE_EVENTS: usize = 256;

/// Chunks dropped from lanes of this process, all sessions together (for metrics).
pub static AUDIO_CHUNKS_DROPPED: AtomicU64 = AtomicU64::new(0);

/// One thing a lane hands its writer.
#[derive(Debug, Clone)]
pub enum AudioItem {
    /// A complete binary WebSocket frame holding one relayed chunk, shared by every
    /// subscriber; written as it is, never numbered, never replayed.
    Chunk(Bytes),
    /// A dispatch (`MEDIA_STARTED`, `MEDIA_ENDED`): numbered and kept for replay like
    /// any event, compressed if the connection is.
    Event(Payload),
}

#[derive(Debug, Default)]
struct Lane {
    items: VecDeque<AudioItem>,
    chunks: usize,
    events: usize,
    capacity: usize,
}

/// A session's audio lane (see the module docs).
#[derive(Debug, Default)]
pub struct AudioLane {
    lane: Mutex<Option<Box<Lane>>>,
    /// Something is queued: read without the lock by every write of the session, so
    /// a session without audio pays one load per write.
    pending: AtomicBool,
}

/// What became of a pushed chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPushed {
    /// Queued.
    Queued,
    /// Queued, and the lane's oldest chunk was dropped to make room.
    DroppedOldest,
    /// The lane is closed (the session is not subscribed): nothing queued.
    Closed,
}

impl AudioLane {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Box<Lane>>> {
        self.lane.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the lane with room for `capacity` chunks (at least one); an open lane
    /// keeps what it holds and takes the new capacity.
    pub fn open(&self, capacity: usize) {
        let mut lane = self.lock();
        lane.get_or_insert_with(Box::default).capacity = capacity.max(1);
    }

    /// Closes the lane and drops what it holds.
    pub fn close(&self) {
        *self.lock() = None;
    }

    /// Whether the lane is open.
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Queues a chunk, dropping the oldest queued chunk when the lane is full, and
    /// wakes the writer through `outbox`.
    pub fn push_chunk(&self, frame: Bytes, outbox: &Outbox) -> AudioPushed {
        let mut guard = self.lock();
        let Some(lane) = guard.as_mut() else {
            return AudioPushed::Closed;
        };
        let was_empty = lane.items.is_empty();
        let mut pushed = AudioPushed::Queued;
        if lane.chunks >= lane.capacity {
            // Events stay: the oldest chunk is at most a few events from the front.
            if let Some(at) = lane
                .items
                .iter()
                .position(|item| matches!(item, AudioItem::Chunk(_)))
            {
                lane.items.remove(at);
                lane.chunks -= 1;
                AUDIO_CHUNKS_DROPPED.fetch_add(1, Ordering::Relaxed);
                pushed = AudioPushed::DroppedOldest;
            }
        }
        lane.items.push_back(AudioItem::Chunk(frame));
        lane.chunks += 1;
        self.pending.store(true, Ordering::Release);
        drop(guard);
        if was_empty {
            outbox.poke();
        }
        pushed
    }

    /// Queues an event behind the chunks already queued and wakes the writer. A lane
    /// holding 256 events already closes its session as too slow (4013), as an
    /// ordinary queue would. Returns whether it was queued.
    pub fn push_event(&self, event: Payload, outbox: &Outbox) -> bool {
        let mut guard = self.lock();
        let Some(lane) = guard.as_mut() else {
            return false;
        };
        if lane.events >= MAX_LANE_EVENTS {
            *guard = None;
            drop(guard);
            outbox.close(CloseReason::Overflow);
            return false;
        }
        let was_empty = lane.items.is_empty();
        lane.items.push_back(AudioItem::Event(event));
        lane.events += 1;
        self.pending.store(true, Ordering::Release);
        drop(guard);
        if was_empty {
            outbox.poke();
        }
        true
    }

    /// Takes everything queued, in order; `None` when nothing is.
    pub fn take(&self) -> Option<VecDeque<AudioItem>> {
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        let mut guard = self.lock();
        self.pending.store(false, Ordering::Release);
        let lane = guard.as_mut()?;
        lane.chunks = 0;
        lane.events = 0;
        let items = std::mem::take(&mut lane.items);
        (!items.is_empty()).then_some(items)
    }

    /// Chunks queued now.
    pub fn chunks(&self) -> usize {
        self.lock().as_ref().map_or(0, |lane| lane.chunks)
    }
}

/// The complete binary WebSocket frame of one relayed chunk: frame header, chunk
/// header, payload. Built once per release and shared by every subscriber.
pub fn relayed_frame(header: &RelayedHeader, payload: &[u8]) -> Bytes {
    let len = RELAYED_HEADER_LEN + payload.len();
    let mut frame = BytesMut::with_capacity(4 + len);
    frame.put_u8(0x82);
    if len < 126 {
        frame.put_u8(len as u8);
    } else {
        // A chunk is at most an inbound message (16 KiB): two length bytes suffice.
        frame.put_u8(126);
        frame.put_u16(u16::try_from(len).unwrap_or(u16::MAX));
    }
    let mut head = Vec::with_capacity(RELAYED_HEADER_LEN);
    header.write(&mut head);
    frame.put_slice(&head);
    frame.put_slice(payload);
    frame.freeze()
}

#[cfg(test)]
mod tests {
    use concord_protocol::{AudioFormat, UserId};

    use super::*;
    use crate::QueueLimits;

    fn chunk(n: u8) -> Bytes {
        Bytes::from(vec![n])
    }

    #[test]
    fn a_full_lane_drops_its_oldest_chunk_and_keeps_events() {
        let outbox = Outbox::new(QueueLimits::default());
        let lane = AudioLane::default();
        assert_eq!(lane.push_chunk(chunk(0), &outbox), AudioPushed::Closed);
        lane.open(2);
        assert!(lane.push_event(Payload::text("started"), &outbox));
        assert_eq!(lane.push_chunk(chunk(1), &outbox), AudioPushed::Queued);
        assert_eq!(lane.push_chunk(chunk(2), &outbox), AudioPushed::Queued);
        assert_eq!(
            lane.push_chunk(chunk(3), &outbox),
            AudioPushed::DroppedOldest
        );
        assert_eq!(lane.chunks(), 2);
        let items: Vec<_> = lane.take().unwrap().into_iter().collect();
        assert!(lane.take().is_none());
        assert!(matches!(&items[0], AudioItem::Event(p) if p.as_str() == "started"));
        assert!(matches!(&items[1], AudioItem::Chunk(b) if b[..] == [2]));
        assert!(matches!(&items[2], AudioItem::Chunk(b) if b[..] == [3]));
        assert_eq!(lane.chunks(), 0);
        lane.close();
        assert!(!lane.is_open());
    }

    #[test]
    fn a_lane_that_is_never_read_closes_its_session_on_events() {
        let outbox = Outbox::new(QueueLimits::default());
        let lane = AudioLane::default();
        lane.open(1);
        for _ in 0..MAX_LANE_EVENTS {
            assert!(lane.push_event(Payload::text("e"), &outbox));
        }
        assert!(!lane.push_event(Payload::text("e"), &outbox));
        assert_eq!(outbox.closing(), Some(CloseReason::Overflow));
        assert!(!lane.is_open());
    }

    #[test]
    fn relayed_frames_are_binary_frames_around_the_header() {
        let header = RelayedHeader {
            format: AudioFormat::Pcm48k,
            sequence: 3,
            timestamp: 60,
            speaker: UserId::new(),
        };
        let frame = relayed_frame(&header, &[7; 1920]);
        assert_eq!(frame[0], 0x82);
        assert_eq!(frame[1], 126);
        let len = usize::from(u16::from_be_bytes([frame[2], frame[3]]));
        assert_eq!(len, RELAYED_HEADER_LEN + 1920);
        assert_eq!(frame.len(), 4 + len);
        let (parsed, payload) = RelayedHeader::parse(&frame[4..]).unwrap();
        assert_eq!(parsed, header);
        assert_eq!(payload, &[7; 1920][..]);
        let small = relayed_frame(&header, &[1; 10]);
        assert_eq!(usize::from(small[1]), RELAYED_HEADER_LEN + 10);
    }
}
