//! A session's bounded outbound queue.
//!
//! Producers (fan-out, replies) push already-serialized frames; the session's writer
//! takes everything queued in one go and writes it as one batch. The queue is bounded
//! by frame count and by bytes: the push that would exceed either closes the session
//! instead of growing memory (`gateway.md` D5).

use std::{
    collections::VecDeque,
    ops::Range,
    sync::{Arc, Mutex},
};

use tokio::{sync::Notify, time::Instant};

use crate::Payload;

/// Frames sent together and shared by many sessions (coalesced presence, say): one
/// queue entry and one reference count per recipient, however many frames it holds.
#[derive(Debug, PartialEq, Eq)]
pub struct FrameBatch {
    frames: Box<[Payload]>,
    bytes: usize,
}

impl FrameBatch {
    /// A batch of frames, in order.
    pub fn new(frames: Vec<Payload>) -> Self {
        let bytes = frames.iter().map(Payload::len).sum();
        Self {
            frames: frames.into_boxed_slice(),
            bytes,
        }
    }

    /// The frames.
    pub fn frames(&self) -> &[Payload] {
        &self.frames
    }

    /// Total size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// One outbox entry: a frame, or a shared batch of frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frames {
    /// A single frame.
    One(Payload),
    /// Several frames shared with other sessions.
    Many(Arc<FrameBatch>),
    /// A shared batch less one run of its frames: the recipient's own announcements,
    /// which everyone else gets. Built by [`Frames::except`].
    Except(BatchExcept),
}

/// A shared batch without one run of its frames. One queue entry and one reference
/// count per recipient, so a presence tick with S announcing users in one server costs
/// O(S), not a batch of S - 1 frames built for each of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchExcept {
    batch: Arc<FrameBatch>,
    // The run left out, `skip_from..skip_to`, within the batch (checked when built).
    skip_from: u32,
    skip_to: u32,
}

impl BatchExcept {
    fn skipped(&self) -> &[Payload] {
        &self.batch.frames[self.skip_from as usize..self.skip_to as usize]
    }

    /// The frames before the run, and after it.
    fn parts(&self) -> (&[Payload], &[Payload]) {
        (
            &self.batch.frames[..self.skip_from as usize],
            &self.batch.frames[self.skip_to as usize..],
        )
    }
}

impl Frames {
    /// `batch` without its frames in `skip` (clamped to the batch).
    pub fn except(batch: &Arc<FrameBatch>, skip: Range<usize>) -> Self {
        // A tick's announcements: far fewer than u32::MAX frames.
        let len = batch.frames.len().min(u32::MAX as usize);
        let to = skip.end.min(len);
        let from = skip.start.min(to);
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self::Except(BatchExcept {
            batch: Arc::clone(batch),
            skip_from: narrow(from),
            skip_to: narrow(to),
        })
    }

    /// How many frames.
    pub fn count(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(batch) => batch.frames.len(),
            Self::Except(except) => except.batch.frames.len() - except.skipped().len(),
        }
    }

    /// How many bytes.
    pub fn bytes(&self) -> usize {
        match self {
            Self::One(frame) => frame.len(),
            Self::Many(batch) => batch.bytes,
            Self::Except(except) => {
                let skipped: usize = except.skipped().iter().map(Payload::len).sum();
                except.batch.bytes - skipped
            }
        }
    }

    /// The `index`th frame, in order.
    pub fn get(&self, index: usize) -> Option<&Payload> {
        match self {
            Self::One(frame) => (index == 0).then_some(frame),
            Self::Many(batch) => batch.frames.get(index),
            Self::Except(except) => {
                let (head, tail) = except.parts();
                match index.checked_sub(head.len()) {
                    None => head.get(index),
                    Some(rest) => tail.get(rest),
                }
            }
        }
    }

    /// Whether a session of this protocol version with these intents receives this
    /// entry. A batch is judged by its first frame: batches hold frames of one kind
    /// (a tick of presence).
    #[inline]
    pub fn wanted_by(&self, v2: bool, intents: concord_protocol::Intents) -> bool {
        match self {
            Self::One(frame) => frame.wanted_by(v2, intents),
            Self::Many(batch) => batch
                .frames
                .first()
                .is_none_or(|f| f.wanted_by(v2, intents)),
            Self::Except(except) => except
                .batch
                .frames
                .first()
                .is_none_or(|f| f.wanted_by(v2, intents)),
        }
    }

    /// The frames, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Payload> {
        let (head, tail): (&[Payload], &[Payload]) = match self {
            Self::One(frame) => (std::slice::from_ref(frame), &[]),
            Self::Many(batch) => (&batch.frames, &[]),
            Self::Except(except) => except.parts(),
        };
        head.iter().chain(tail)
    }
}

/// Why a session is being closed by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The outbound queue overflowed: the client reads too slowly.
    Overflow,
    /// The principal was revoked, disabled or deleted.
    Revoked,
    /// The server is shutting down.
    Shutdown,
    /// Something failed inside the server.
    Internal,
    /// The token expired mid-session (v2 only; v1 sessions outlive their JWT).
    Expired,
}

impl CloseReason {
    /// Whether a RESUME on this node may take back a v2 session closed for this
    /// reason: a token that expired or was revoked (close 4009, "reconnect with a fresh
    /// token" in `extensions.md`). Such a session keeps queueing (within its bounds)
    /// while it waits for the RESUME. An overflow or an internal error lost events; a
    /// shutdown is resumed by the next process, from the saved session.
    pub const fn resumes_here(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired)
    }

    /// Whether a session closed for this reason still queues what it is sent (within
    /// its bounds): one that may resume here, and one closed by a shutdown, whose
    /// events go with it to the next process or to the node it is handed over to.
    pub const fn keeps_queueing(self) -> bool {
        matches!(self, Self::Revoked | Self::Expired | Self::Shutdown)
    }
}

/// Bounds of one outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most frames queued at once.
    pub max_frames: usize,
    /// Most bytes queued at once.
    pub max_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            max_frames: 4096,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// Result of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued for the writer.
    Queued,
    /// The queue was full: the session is now closing with [`CloseReason::Overflow`].
    Overflow,
    /// The session is already closing; the frame was dropped.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Frames>,
    frames: usize,
    bytes: usize,
    closing: Option<CloseReason>,
    /// The last take held two or more entries (a busy session): the next push that
    /// finds the queue empty notes the time. An idle session's pushes (one frame per
    /// write, the usual fan-out to many sessions) read no clock.
    stamping: bool,
    /// When the oldest queued entry was pushed, if the queue was stamping.
    since: Option<Instant>,
}

/// What [`Outbox::take`] hands the writer.
#[derive(Debug)]
pub struct Taken {
    /// Every queued entry, in order, in the queue's own buffer.
    pub entries: VecDeque<Frames>,
    /// The close reason, once one is set.
    pub closing: Option<CloseReason>,
    /// When the oldest of `entries` was pushed: how long the queue waited for its
    /// writer. Known only for a busy session, one whose previous take held two or more
    /// entries (an idle session's pushes read no clock); `None` otherwise.
    pub since: Option<Instant>,
}

/// The bounded queue between producers and one session's writer.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    wake: Notify,
    limits: QueueLimits,
}

impl Outbox {
    /// An empty outbox.
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            limits,
        }
    }

    /// Queues a frame, or starts closing the session if that would exceed a bound.
    pub fn push(&self, frame: Payload) -> Pushed {
        self.push_frames(Frames::One(frame))
    }

    /// Queues a frame or a shared batch (bounds count every frame of a batch).
    pub fn push_frames(&self, entry: Frames) -> Pushed {
        // Sized before taking the lock: a batch less a run sums the run's lengths.
        let (count, bytes) = (entry.count(), entry.bytes());
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closing.is_some_and(|reason| !reason.keeps_queueing()) {
            return Pushed::Closed;
        }
        if state.frames + count > self.limits.max_frames
            || state.bytes + bytes > self.limits.max_bytes
        {
            state.closing = Some(CloseReason::Overflow);
            // Nothing queued will be written now; free it at once.
            state.entries = VecDeque::new();
            state.frames = 0;
            state.bytes = 0;
            state.since = None;
            drop(state);
            self.wake.notify_one();
            return Pushed::Overflow;
        }
        let was_empty = state.entries.is_empty();
        if was_empty && state.stamping {
            // At most once per write, and only for a busy session.
            state.since = Some(Instant::now());
        }
        state.frames += count;
        state.bytes += bytes;
        state.entries.push_back(entry);
        drop(state);
        if was_empty {
            self.wake.notify_one();
        }
        Pushed::Queued
    }

    /// Asks the writer to close the session; the first reason wins.
    pub fn close(&self, reason: CloseReason) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.closing.get_or_insert(reason);
        drop(state);
        self.wake.notify_one();
    }

    /// Moves every queued frame into `batch`; returns the close reason once one is set
    /// (frames queued before a non-overflow close are still handed out first).
    pub fn drain(&self, batch: &mut Vec<Frames>) -> Option<CloseReason> {
        let taken = self.take();
        batch.extend(taken.entries);
        taken.closing
    }

    /// Takes the queue itself, every frame in order, the close reason as
    /// [`Outbox::drain`] gives it, and when the oldest entry was pushed (see
    /// [`Taken::since`]). The queue's buffer leaves with its frames (the writer writes
    /// from it and frees it): an idle session keeps no capacity from its last burst,
    /// and nothing is copied on the way out.
    pub fn take(&self) -> Taken {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.frames = 0;
        state.bytes = 0;
        let entries = std::mem::take(&mut state.entries);
        state.stamping = entries.len() >= 2;
        Taken {
            entries,
            closing: state.closing,
            since: state.since.take(),
        }
    }

    /// Wakes the writer without queuing anything (it then checks why, say for a
    /// RESUME elsewhere that takes the session over).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// A RESUME took over a session that was closed for a resumable reason (token
    /// expired or revoked): it is open again, its queue intact. Returns the close
    /// reason still set afterwards (an overflow, which lost events, stays).
    pub fn reopen(&self) -> Option<CloseReason> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.closing.is_some_and(CloseReason::resumes_here) {
            state.closing = None;
        }
        state.closing
    }

    /// The close reason, once one is set.
    pub fn closing(&self) -> Option<CloseReason> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).closing
    }

    /// Waits until something was pushed or a close was asked for since the last drain.
    pub async fn ready(&self) {
        self.wake.notified().await;
    }

    /// How many queued frames `wanted` picks.
    pub fn count_where(&self, wanted: impl Fn(&Payload) -> bool) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .entries
            .iter()
            .flat_map(Frames::iter)
            .filter(|p| wanted(p))
            .count()
    }

    /// Replaces what is queued with what `rewrite` makes of it (the queued frames, in
    /// order), with no push in between. Over the queue's bounds, the session closes as
    /// for any overflow.
    pub fn replace(&self, rewrite: impl FnOnce(Vec<Payload>) -> Vec<Payload>) -> Pushed {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let queued = std::mem::take(&mut state.entries)
            .iter()
            .flat_map(Frames::iter)
            .cloned()
            .collect();
        let frames = rewrite(queued);
        let bytes = frames.iter().map(Payload::len).sum();
        let pushed = if frames.len() > self.limits.max_frames || bytes > self.limits.max_bytes {
            state.closing = Some(CloseReason::Overflow);
            state.frames = 0;
            state.bytes = 0;
            Pushed::Overflow
        } else {
            state.frames = frames.len();
            state.bytes = bytes;
            state.entries = frames.into_iter().map(Frames::One).collect();
            Pushed::Queued
        };
        state.since = None;
        drop(state);
        self.wake.notify_one();
        pushed
    }

    /// Frames queued now.
    pub fn len(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).frames
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Payload {
        Payload::text(&"x".repeat(n))
    }

    #[test]
    fn overflow_by_count_closes_and_frees() {
        let outbox = Outbox::new(QueueLimits {
            max_frames: 2,
            max_bytes: 1 << 20,
        });
        assert_eq!(outbox.push(frame(1)), Pushed::Queued);
        assert_eq!(outbox.push(frame(1)), Pushed::Queued);
        assert_eq!(outbox.push(frame(1)), Pushed::Overflow);
        assert_eq!(outbox.push(frame(1)), Pushed::Closed);
        let mut batch = Vec::new();
        assert_eq!(outbox.drain(&mut batch), Some(CloseReason::Overflow));
        assert!(batch.is_empty());
    }

    #[test]
    fn overflow_by_bytes() {
        let outbox = Outbox::new(QueueLimits {
            max_frames: 100,
            max_bytes: 20,
        });
        assert_eq!(outbox.push(frame(10)), Pushed::Queued);
        assert_eq!(outbox.push(frame(10)), Pushed::Overflow);
    }

    #[test]
    fn drain_takes_everything_in_order_and_resets_bytes() {
        let outbox = Outbox::new(QueueLimits {
            max_frames: 3,
            max_bytes: 1 << 20,
        });
        for n in 1..=3 {
            outbox.push(frame(n));
        }
        let mut batch = Vec::new();
        assert_eq!(outbox.drain(&mut batch), None);
        assert_eq!(
            batch,
            vec![
                Frames::One(frame(1)),
                Frames::One(frame(2)),
                Frames::One(frame(3))
            ]
        );
        // Room again after the drain.
        assert_eq!(outbox.push(frame(1)), Pushed::Queued);
    }

    #[test]
    fn a_batch_is_one_entry_but_counts_every_frame() {
        let outbox = Outbox::new(QueueLimits {
            max_frames: 3,
            max_bytes: 1 << 20,
        });
        let batch = Arc::new(FrameBatch::new(vec![frame(1), frame(2)]));
        assert_eq!(
            outbox.push_frames(Frames::Many(Arc::clone(&batch))),
            Pushed::Queued
        );
        assert_eq!(outbox.len(), 2);
        assert_eq!(outbox.push(frame(3)), Pushed::Queued);
        assert_eq!(
            outbox.push(frame(4)),
            Pushed::Overflow,
            "2 + 1 + 1 > 3 frames"
        );
        let outbox = Outbox::new(QueueLimits::default());
        outbox.push_frames(Frames::Many(Arc::clone(&batch)));
        let mut drained = Vec::new();
        outbox.drain(&mut drained);
        assert_eq!(drained.len(), 1);
        assert!(drained[0].iter().eq(batch.frames()));
        assert_eq!(drained[0].bytes(), batch.bytes());
    }

    #[test]
    fn a_batch_without_one_run_of_its_frames() {
        let batch = Arc::new(FrameBatch::new((1..=5).map(frame).collect()));
        let except = Frames::except(&batch, 1..3);
        let expected = [frame(1), frame(4), frame(5)];
        assert_eq!(except.count(), 3);
        let bytes: usize = expected.iter().map(Payload::len).sum();
        assert_eq!(except.bytes(), bytes);
        assert!(except.iter().eq(&expected));
        let by_index: Vec<_> = (0..).map_while(|i| except.get(i)).cloned().collect();
        assert_eq!(by_index, expected);
        // The bounds count what is left.
        let outbox = Outbox::new(QueueLimits {
            max_frames: 3,
            max_bytes: bytes,
        });
        assert_eq!(outbox.push_frames(except), Pushed::Queued);
        assert_eq!(outbox.len(), 3);
        // Ranges reaching past the batch are clamped; an empty one leaves all.
        assert_eq!(Frames::except(&batch, 4..9).count(), 4);
        assert_eq!(Frames::except(&batch, 2..2).count(), 5);
        assert_eq!(Frames::except(&batch, 0..5).count(), 0);
        assert!(Frames::except(&batch, 0..5).get(0).is_none());
    }

    #[test]
    fn replace_rewrites_the_queue_at_once_and_a_shutdown_keeps_it_queueing() {
        let outbox = Outbox::new(QueueLimits {
            max_frames: 3,
            max_bytes: 1 << 20,
        });
        outbox.close(CloseReason::Shutdown);
        for text in ["a", "b"] {
            assert_eq!(outbox.push(Payload::text(text)), Pushed::Queued);
        }
        assert_eq!(outbox.count_where(|p| p.as_str() == "b"), 1);
        let pushed = outbox.replace(|queued| {
            assert_eq!(queued.len(), 2);
            let mut frames = vec![Payload::text("z")];
            frames.extend(queued.into_iter().filter(|p| p.as_str() != "a"));
            frames
        });
        assert_eq!(pushed, Pushed::Queued);
        let texts: Vec<String> = outbox
            .take()
            .entries
            .iter()
            .flat_map(Frames::iter)
            .map(|p| p.as_str().to_owned())
            .collect();
        assert_eq!(texts, ["z", "b"]);
        // Over the bounds: the session closes as for any overflow.
        let pushed = outbox.replace(|_| vec![Payload::text("x"); 4]);
        assert_eq!(pushed, Pushed::Overflow);
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn close_keeps_the_first_reason() {
        let outbox = Outbox::new(QueueLimits::default());
        outbox.close(CloseReason::Shutdown);
        outbox.close(CloseReason::Revoked);
        assert_eq!(outbox.drain(&mut Vec::new()), Some(CloseReason::Shutdown));
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_queue_tells_when_its_oldest_entry_was_pushed() {
        use std::time::Duration;
        let ms = Duration::from_millis;
        let outbox = Outbox::new(QueueLimits::default());
        // Not busy yet: no clock read.
        outbox.push(frame(1));
        outbox.push(frame(2));
        let taken = outbox.take();
        assert_eq!((taken.entries.len(), taken.since), (2, None));
        // That take held two entries: the next batch is stamped with its first push.
        let start = Instant::now();
        outbox.push(frame(3));
        tokio::time::advance(ms(30)).await;
        outbox.push(frame(4));
        assert_eq!(
            outbox.take().since,
            Some(start),
            "the first push, not the last"
        );
        assert_eq!(outbox.take().since, None, "nothing queued");
        // A take of nothing or of one entry makes the queue idle again: no stamp after
        // it.
        outbox.push(frame(5));
        outbox.push(frame(6));
        outbox.take();
        outbox.push(frame(7));
        assert_eq!(outbox.take().since, Some(start + ms(30)));
        outbox.push(frame(8));
        assert_eq!(outbox.take().since, None);
        // An overflow frees the queue, and its stamp with it.
        let small = Outbox::new(QueueLimits {
            max_frames: 2,
            max_bytes: 1 << 20,
        });
        small.push(frame(1));
        small.push(frame(1));
        small.take();
        for _ in 0..3 {
            small.push(frame(1));
        }
        assert_eq!(small.take().since, None);
    }

    #[test]
    fn push_wakes_the_writer_even_before_it_waits() {
        use futures_util::FutureExt;
        let outbox = Outbox::new(QueueLimits::default());
        assert!(outbox.ready().now_or_never().is_none());
        outbox.push(frame(1));
        assert!(outbox.ready().now_or_never().is_some());
    }

    #[test]
    fn a_session_closed_for_its_token_keeps_queueing_and_reopens_on_resume() {
        let outbox = Outbox::new(QueueLimits::default());
        outbox.close(CloseReason::Expired);
        assert_eq!(outbox.push(frame(1)), Pushed::Queued, "kept for the RESUME");
        assert_eq!(outbox.reopen(), None);
        assert_eq!(outbox.closing(), None);
        assert_eq!(outbox.take().entries.len(), 1);
        outbox.close(CloseReason::Overflow);
        assert_eq!(outbox.push(frame(2)), Pushed::Closed);
        assert_eq!(
            outbox.reopen(),
            Some(CloseReason::Overflow),
            "lost events stay lost"
        );
    }
}
