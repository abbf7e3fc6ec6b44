//! Audio over the gateway: each sender's buffer, the 20 ms pacer, and the relay to the
//! channel's subscribers (`docs/protocol-v2.md` §15).
//!
//! A sender's chunks wait in its stream's bounded buffer; the node's pacer ticks every
//! 20 ms and releases one chunk of every stream that has one, built once into a
//! complete binary frame and queued on each subscriber's audio lane (which drops its
//! oldest chunk rather than grow). `MEDIA_STARTED` and `MEDIA_ENDED` go through the
//! same lanes, so they frame the chunks in order, and straight to the sender's queue
//! for its own stream. The pacer runs only while some stream is open.
//!
//! Who is in which voice channel comes from the directory at every tick: a speaker
//! who left the channel has their stream ended, and a subscriber who left is dropped,
//! whichever node the leave went through.
//!
//! On a node of a cluster, the relay also sends its streams to the other nodes
//! ([`AudioUplink`]: each start, each chunk as the pacer releases it, each end, on the
//! route of the channel's server) and relays the other nodes' streams to its own
//! subscribers as they arrive ([`MediaRelay::remote`]): a listener hears a speaker
//! connected to another node as if both were on one. A node that dies ends its
//! streams everywhere (`disconnected`).

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use bytes::Bytes;
use concord_gateway::{CommandError, Payload, SessionEntry, SessionId, relayed_frame};
use concord_protocol::{
    AudioFormat, CHUNK_MS, ChannelId, ChunkError, ErrorCode, Event, MediaEndReason, MediaEnded,
    MediaStarted, RelayedHeader, UplinkHeader, UserId,
};
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
use tokio::time::MissedTickBehavior;

use crate::config::AudioConfig;

/// Who is in which voice channel now (the directory; a map in unit tests).
pub trait VoiceRoster: Send + Sync + 'static {
    /// The voice channel `user` is in, if any.
    fn voice_channel(&self, user: UserId) -> Option<ChannelId>;
}

impl VoiceRoster for crate::directory::Directory {
    fn voice_channel(&self, user: UserId) -> Option<ChannelId> {
        crate::directory::Directory::voice_channel(self, user)
    }
}

/// The relay's counters, registered in the node's metrics.
#[derive(Debug, Clone, Default)]
pub struct AudioCounters {
    /// Chunks accepted from senders.
    pub received: Counter,
    /// Chunks refused (malformed, out of order, outside a stream, buffer full).
    pub refused: Counter,
    /// Chunks queued on subscribers' lanes (one per subscriber per chunk).
    pub relayed: Counter,
    /// Streams open now.
    pub streams: Gauge,
}

/// One buffered chunk.
#[derive(Debug)]
struct Chunk {
    sequence: u32,
    timestamp: u32,
    payload: Bytes,
}

/// One sender's stream.
#[derive(Debug)]
struct Stream {
    session: SessionId,
    sender: Weak<SessionEntry>,
    user: UserId,
    format: AudioFormat,
    buffer: VecDeque<Chunk>,
    last_sequence: Option<u32>,
    /// `MEDIA_STOP` came: end once the buffer is released.
    stopping: bool,
    /// The buffer overflowed and the sender was told; not told again until a chunk
    /// is accepted.
    overflowing: bool,
}

/// One subscribed session.
#[derive(Debug)]
struct Subscriber {
    session: SessionId,
    entry: Weak<SessionEntry>,
    user: UserId,
    speakers: Option<Vec<UserId>>,
}

impl Subscriber {
    /// Whether this subscriber receives `speaker`'s audio (never their own user's).
    fn hears(&self, speaker: UserId) -> bool {
        speaker != self.user
            && self
                .speakers
                .as_ref()
                .is_none_or(|list| list.contains(&speaker))
    }
}

/// A stream of a speaker connected to another node, as this node relays it.
#[derive(Debug)]
struct RemoteStream {
    origin: concord_bus::NodeId,
    user: UserId,
    format: AudioFormat,
}

#[derive(Debug, Default)]
struct ChannelAudio {
    streams: Vec<Stream>,
    subscribers: Vec<Subscriber>,
    /// Other nodes' streams in this channel.
    remote: Vec<RemoteStream>,
}

impl ChannelAudio {
    fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.subscribers.is_empty() && self.remote.is_empty()
    }

    /// Opens (or reopens) another node's stream and tells the subscribers who hear
    /// its speaker.
    fn open_remote(&mut self, origin: concord_bus::NodeId, started: &MediaStarted) {
        self.remote.retain(|r| r.user != started.user_id);
        self.remote.push(RemoteStream {
            origin,
            user: started.user_id,
            format: started.format,
        });
        if let Some(payload) = event(Event::MediaStarted, started) {
            self.tell(started.user_id, &payload);
        }
    }

    /// Queues `payload` (an event) for every subscriber who hears `speaker`.
    fn tell(&self, speaker: UserId, payload: &Payload) {
        for subscriber in self.subscribers.iter().filter(|s| s.hears(speaker)) {
            if let Some(target) = subscriber.entry.upgrade() {
                target.audio.push_event(payload.clone(), &target.outbox);
            }
        }
    }
}

/// What a node's relay tells the other nodes of a cluster about its streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteAudio {
    /// A stream opened.
    Started(MediaStarted),
    /// The pacer released one chunk of a stream.
    Chunk {
        /// The relayed header (speaker, format, sequence, timestamp).
        header: RelayedHeader,
        /// The audio.
        payload: Bytes,
    },
    /// A stream ended.
    Ended(MediaEnded),
}

/// Where a node's relay sends [`RemoteAudio`] for the other nodes (the cluster).
pub trait AudioUplink: Send + Sync + 'static {
    /// Sends `message` about a stream in `channel` to the nodes that may have its
    /// subscribers. Must not block (called under the relay's lock).
    fn send(&self, channel: ChannelId, message: RemoteAudio);
}

#[derive(Debug, Default)]
struct Relay {
    channels: HashMap<ChannelId, ChannelAudio>,
    /// The channel of each session's stream.
    senders: HashMap<SessionId, ChannelId>,
    /// The channel of each session's subscription.
    listeners: HashMap<SessionId, ChannelId>,
    /// The pacer task runs.
    ticking: bool,
}

/// The node's audio relay (see the module docs).
pub struct MediaRelay {
    relay: Mutex<Relay>,
    roster: Arc<dyn VoiceRoster>,
    /// The other nodes, on a node of a cluster (set once, after the bus is up).
    uplink: std::sync::OnceLock<Box<dyn AudioUplink>>,
    /// Chunks a stream may hold.
    max_buffered: usize,
    /// Chunks a subscriber's lane may hold.
    lane_chunks: usize,
    counters: AudioCounters,
}

impl std::fmt::Debug for MediaRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRelay")
            .field("max_buffered", &self.max_buffered)
            .field("lane_chunks", &self.lane_chunks)
            .finish_non_exhaustive()
    }
}

fn event<T: serde::Serialize>(event: Event, d: &T) -> Option<Payload> {
    match Payload::dispatch(event, d) {
        Ok(payload) => Some(payload),
        Err(err) => {
            tracing::error!(event = event.as_str(), error = %err, "media event not serialized");
            None
        }
    }
}

fn refused(code: ErrorCode, message: impl Into<String>) -> CommandError {
    CommandError::new(code, message)
}

impl MediaRelay {
    /// A relay reading voice channels from `roster`.
    pub fn new(config: AudioConfig, roster: Arc<dyn VoiceRoster>, counters: AudioCounters) -> Self {
        let per_second = (1000 / CHUNK_MS) as usize;
        Self {
            relay: Mutex::new(Relay::default()),
            roster,
            uplink: std::sync::OnceLock::new(),
            max_buffered: (config.buffer_secs as usize).saturating_mul(per_second),
            lane_chunks: config.subscriber_queue_chunks,
            counters,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Relay> {
        self.relay.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends this node's streams to the other nodes through `uplink` from now on (a
    /// node of a cluster; once).
    pub fn connect_uplink(&self, uplink: Box<dyn AudioUplink>) {
        if self.uplink.set(uplink).is_err() {
            tracing::warn!("audio uplink set twice; the first one stays");
        }
    }

    fn up(&self, channel: ChannelId, message: RemoteAudio) {
        if let Some(uplink) = self.uplink.get() {
            uplink.send(channel, message);
        }
    }

    /// What another node said about one of its streams in `channel`: relayed to this
    /// node's subscribers who hear its speaker and are in the channel now. A chunk of
    /// a stream this node has not heard start (it joined the cluster since) starts
    /// it here first.
    pub fn remote(&self, origin: concord_bus::NodeId, channel: ChannelId, message: RemoteAudio) {
        let mut relay = self.lock();
        let audio = relay.channels.entry(channel).or_default();
        match message {
            RemoteAudio::Started(started) => audio.open_remote(origin, &started),
            RemoteAudio::Chunk { header, payload } => {
                let speaker = header.speaker;
                if !audio
                    .remote
                    .iter()
                    .any(|r| r.origin == origin && r.user == speaker)
                {
                    audio.open_remote(
                        origin,
                        &MediaStarted {
                            user_id: speaker,
                            channel_id: channel,
                            format: header.format,
                        },
                    );
                }
                let frame = relayed_frame(&header, &payload);
                let mut relayed = 0;
                for subscriber in audio.subscribers.iter().filter(|s| s.hears(speaker)) {
                    if self.roster.voice_channel(subscriber.user) != Some(channel) {
                        continue;
                    }
                    if let Some(target) = subscriber.entry.upgrade() {
                        target.audio.push_chunk(frame.clone(), &target.outbox);
                        relayed += 1;
                    }
                }
                self.counters.relayed.inc_by(relayed);
            }
            RemoteAudio::Ended(ended) => {
                let before = audio.remote.len();
                audio
                    .remote
                    .retain(|r| !(r.origin == origin && r.user == ended.user_id));
                if audio.remote.len() < before
                    && let Some(payload) = event(Event::MediaEnded, &ended)
                {
                    audio.tell(ended.user_id, &payload);
                }
            }
        }
        if audio.is_empty() {
            relay.channels.remove(&channel);
        }
    }

    /// Node `origin` is gone: its streams end here as disconnected.
    pub fn node_gone(&self, origin: concord_bus::NodeId) {
        let mut relay = self.lock();
        for (&channel, audio) in &mut relay.channels {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut audio.remote)
                .into_iter()
                .partition(|r| r.origin == origin);
            audio.remote = kept;
            for stream in gone {
                let ended = MediaEnded {
                    user_id: stream.user,
                    channel_id: channel,
                    reason: MediaEndReason::Disconnected,
                };
                if let Some(payload) = event(Event::MediaEnded, &ended) {
                    audio.tell(stream.user, &payload);
                }
            }
        }
        relay.channels.retain(|_, audio| !audio.is_empty());
    }

    /// Opens `entry`'s stream in `channel` (the caller checked that the user may speak
    /// there). An open stream of the session ends first, as cleared.
    pub fn start(
        self: &Arc<Self>,
        entry: &Arc<SessionEntry>,
        channel: ChannelId,
        format: AudioFormat,
    ) {
        let mut relay = self.lock();
        self.end_stream(&mut relay, entry.id, MediaEndReason::Cleared);
        let started = MediaStarted {
            user_id: entry.user_id,
            channel_id: channel,
            format,
        };
        if let Some(payload) = event(Event::MediaStarted, &started) {
            entry.outbox.push(payload.clone());
            relay
                .channels
                .entry(channel)
                .or_default()
                .tell(entry.user_id, &payload);
        }
        self.up(channel, RemoteAudio::Started(started));
        relay
            .channels
            .entry(channel)
            .or_default()
            .streams
            .push(Stream {
                session: entry.id,
                sender: Arc::downgrade(entry),
                user: entry.user_id,
                format,
                buffer: VecDeque::new(),
                last_sequence: None,
                stopping: false,
                overflowing: false,
            });
        relay.senders.insert(entry.id, channel);
        self.counters.streams.inc();
        if !relay.ticking {
            relay.ticking = true;
            let relay = Arc::clone(self);
            tokio::spawn(async move { relay.pace().await });
        }
    }

    /// A binary frame from `session`: one chunk of its stream.
    ///
    /// # Errors
    /// Why the chunk was refused (`docs/protocol-v2.md` §15.3); nothing is relayed.
    pub fn chunk(&self, session: SessionId, frame: Bytes) -> Result<(), CommandError> {
        match self.accept(session, frame) {
            Ok(()) => {
                self.counters.received.inc();
                Ok(())
            }
            Err(refusal) => {
                self.counters.refused.inc();
                // `None`: an overflow already reported, dropped without an answer.
                refusal.map_or(Ok(()), Err)
            }
        }
    }

    /// Takes a chunk into its stream's buffer. `Err(None)`: refused without an answer
    /// (an overflow already reported).
    fn accept(&self, session: SessionId, frame: Bytes) -> Result<(), Option<CommandError>> {
        let (header, payload) = match UplinkHeader::parse(&frame) {
            Ok((header, payload)) => (header, payload.len()),
            Err(ChunkError::NotAudio) => {
                return Err(Some(refused(
                    ErrorCode::BinaryNotAccepted,
                    "a binary frame must be an audio chunk (0xA7 0x01 header)",
                )));
            }
            Err(ChunkError::Malformed) => {
                return Err(Some(refused(
                    ErrorCode::BinaryNotAccepted,
                    "malformed audio chunk header",
                )));
            }
        };
        let payload = frame.slice(frame.len() - payload..);
        let mut relay = self.lock();
        let Some(channel) = relay.senders.get(&session).copied() else {
            return Err(Some(refused(
                ErrorCode::BinaryNotAccepted,
                "no open audio stream: send MEDIA_START first",
            )));
        };
        let Some(stream) = relay
            .channels
            .get_mut(&channel)
            .and_then(|audio| audio.streams.iter_mut().find(|s| s.session == session))
        else {
            return Err(Some(refused(
                ErrorCode::BinaryNotAccepted,
                "no open audio stream: send MEDIA_START first",
            )));
        };
        if stream.stopping {
            return Err(Some(refused(
                ErrorCode::InvalidPayload,
                "the stream is stopping: send MEDIA_START for a new one",
            )));
        }
        stream
            .format
            .check_chunk(&payload)
            .map_err(|why| Some(refused(ErrorCode::InvalidPayload, why)))?;
        if stream
            .last_sequence
            .is_some_and(|last| header.sequence <= last)
        {
            return Err(Some(refused(
                ErrorCode::InvalidPayload,
                format!(
                    "sequence {} is not after the last one ({})",
                    header.sequence,
                    stream.last_sequence.unwrap_or_default()
                ),
            )));
        }
        if stream.buffer.len() >= self.max_buffered {
            if stream.overflowing {
                return Err(None);
            }
            stream.overflowing = true;
            return Err(Some(refused(
                ErrorCode::AudioBufferFull,
                format!(
                    "the stream's buffer holds {} chunks already; chunk dropped",
                    self.max_buffered
                ),
            )));
        }
        stream.overflowing = false;
        stream.last_sequence = Some(header.sequence);
        stream.buffer.push_back(Chunk {
            sequence: header.sequence,
            timestamp: header.timestamp,
            payload,
        });
        Ok(())
    }

    /// `MEDIA_STOP`: the stream ends once its buffer is released.
    ///
    /// # Errors
    /// The session has no open stream.
    pub fn stop(&self, session: SessionId) -> Result<(), CommandError> {
        let mut relay = self.lock();
        let Some(channel) = relay.senders.get(&session).copied() else {
            return Err(refused(ErrorCode::InvalidPayload, "no open audio stream"));
        };
        let drained = match relay
            .channels
            .get_mut(&channel)
            .and_then(|audio| audio.streams.iter_mut().find(|s| s.session == session))
        {
            Some(stream) => {
                stream.stopping = true;
                stream.buffer.is_empty()
            }
            None => return Err(refused(ErrorCode::InvalidPayload, "no open audio stream")),
        };
        if drained {
            self.end_stream(&mut relay, session, MediaEndReason::Stopped);
        }
        Ok(())
    }

    /// `MEDIA_CLEAR`: drops what is buffered and ends the stream at once.
    ///
    /// # Errors
    /// The session has no open stream.
    pub fn clear(&self, session: SessionId) -> Result<(), CommandError> {
        let mut relay = self.lock();
        if self.end_stream(&mut relay, session, MediaEndReason::Cleared) {
            Ok(())
        } else {
            Err(refused(ErrorCode::InvalidPayload, "no open audio stream"))
        }
    }

    /// `MEDIA_SUBSCRIBE`: `entry` receives `channel`'s audio (the caller checked that
    /// it may), from `speakers` only if given. Replaces an earlier subscription; the
    /// session gets `MEDIA_STARTED` for each open stream it now hears and did not
    /// before.
    pub fn subscribe(
        &self,
        entry: &Arc<SessionEntry>,
        channel: ChannelId,
        speakers: Option<Vec<UserId>>,
    ) {
        let mut relay = self.lock();
        let previous = self.remove_subscriber(&mut relay, entry.id, false);
        entry.audio.open(self.lane_chunks);
        let subscriber = Subscriber {
            session: entry.id,
            entry: Arc::downgrade(entry),
            user: entry.user_id,
            speakers,
        };
        let audio = relay.channels.entry(channel).or_default();
        let open = audio
            .streams
            .iter()
            .map(|s| (s.user, s.format))
            .chain(audio.remote.iter().map(|r| (r.user, r.format)));
        for (speaker, format) in open {
            let heard_before = previous
                .as_ref()
                .is_some_and(|(c, old)| *c == channel && old.hears(speaker));
            if subscriber.hears(speaker) && !heard_before {
                let started = MediaStarted {
                    user_id: speaker,
                    channel_id: channel,
                    format,
                };
                if let Some(payload) = event(Event::MediaStarted, &started) {
                    entry.audio.push_event(payload, &entry.outbox);
                }
            }
        }
        audio.subscribers.push(subscriber);
        relay.listeners.insert(entry.id, channel);
    }

    /// `MEDIA_UNSUBSCRIBE`.
    pub fn unsubscribe(&self, session: SessionId) {
        let mut relay = self.lock();
        self.remove_subscriber(&mut relay, session, true);
    }

    /// The session's socket is gone: its stream ends (`disconnected`), its
    /// subscription stays for a RESUME.
    pub fn disconnected(&self, session: SessionId) {
        let mut relay = self.lock();
        self.end_stream(&mut relay, session, MediaEndReason::Disconnected);
    }

    /// Whether `session` has an open stream.
    pub fn is_streaming(&self, session: SessionId) -> bool {
        self.lock().senders.contains_key(&session)
    }

    /// Removes a subscription; returns its channel and subscriber. `close_lane`: also
    /// drop what the session's lane holds.
    fn remove_subscriber(
        &self,
        relay: &mut Relay,
        session: SessionId,
        close_lane: bool,
    ) -> Option<(ChannelId, Subscriber)> {
        let channel = relay.listeners.remove(&session)?;
        let audio = relay.channels.get_mut(&channel)?;
        let at = audio
            .subscribers
            .iter()
            .position(|s| s.session == session)?;
        let subscriber = audio.subscribers.swap_remove(at);
        if close_lane && let Some(entry) = subscriber.entry.upgrade() {
            entry.audio.close();
        }
        if audio.is_empty() {
            relay.channels.remove(&channel);
        }
        Some((channel, subscriber))
    }

    /// Ends `session`'s stream, if it has one: `MEDIA_ENDED` to its subscribers (after
    /// the chunks already queued for them) and to the sender. Returns whether it had.
    fn end_stream(&self, relay: &mut Relay, session: SessionId, reason: MediaEndReason) -> bool {
        let Some(channel) = relay.senders.remove(&session) else {
            return false;
        };
        let Some(audio) = relay.channels.get_mut(&channel) else {
            return false;
        };
        let Some(at) = audio.streams.iter().position(|s| s.session == session) else {
            return false;
        };
        let stream = audio.streams.swap_remove(at);
        self.counters.streams.dec();
        self.announce_end(audio, channel, &stream, reason);
        if audio.is_empty() {
            relay.channels.remove(&channel);
        }
        true
    }

    /// Sends `MEDIA_ENDED` for `stream` to the channel's subscribers who hear it, to
    /// its sender and to the other nodes.
    fn announce_end(
        &self,
        audio: &ChannelAudio,
        channel: ChannelId,
        stream: &Stream,
        reason: MediaEndReason,
    ) {
        let ended = MediaEnded {
            user_id: stream.user,
            channel_id: channel,
            reason,
        };
        if let Some(payload) = event(Event::MediaEnded, &ended) {
            audio.tell(stream.user, &payload);
            if let Some(sender) = stream.sender.upgrade() {
                sender.outbox.push(payload);
            }
        }
        self.up(channel, RemoteAudio::Ended(ended));
    }

    /// The pacer: one release every 20 ms while any stream is open. A late tick is
    /// made up at once (`Burst`), so a stream keeps real time over the long run.
    async fn pace(self: Arc<Self>) {
        let mut interval = tokio::time::interval(Duration::from_millis(u64::from(CHUNK_MS)));
        interval.set_missed_tick_behavior(MissedTickBehavior::Burst);
        loop {
            interval.tick().await;
            if !self.tick() {
                return;
            }
        }
    }

    /// One release: every open stream with a buffered chunk releases one. Returns
    /// whether any stream is still open (the pacer stops when none is).
    fn tick(&self) -> bool {
        let mut relay = self.lock();
        let mut relayed = 0u64;
        let mut ended = Vec::new();
        for (&channel, audio) in &mut relay.channels {
            // Subscribers who left the channel, or whose session is gone.
            audio.subscribers.retain(|subscriber| {
                let Some(entry) = subscriber.entry.upgrade() else {
                    return false;
                };
                if self.roster.voice_channel(subscriber.user) == Some(channel) {
                    true
                } else {
                    entry.audio.close();
                    false
                }
            });
            let mut index = 0;
            while index < audio.streams.len() {
                let stream = &mut audio.streams[index];
                if self.roster.voice_channel(stream.user) != Some(channel) {
                    let stream = audio.streams.swap_remove(index);
                    self.announce_end(audio, channel, &stream, MediaEndReason::Left);
                    ended.push(stream.session);
                    continue;
                }
                if let Some(chunk) = stream.buffer.pop_front() {
                    let frame = relayed_frame(
                        &RelayedHeader {
                            format: stream.format,
                            sequence: chunk.sequence,
                            timestamp: chunk.timestamp,
                            speaker: stream.user,
                        },
                        &chunk.payload,
                    );
                    let speaker = stream.user;
                    for subscriber in audio.subscribers.iter().filter(|s| s.hears(speaker)) {
                        if let Some(target) = subscriber.entry.upgrade() {
                            target.audio.push_chunk(frame.clone(), &target.outbox);
                            relayed += 1;
                        }
                    }
                    if self.uplink.get().is_some() {
                        let header = RelayedHeader {
                            format: stream.format,
                            sequence: chunk.sequence,
                            timestamp: chunk.timestamp,
                            speaker,
                        };
                        self.up(
                            channel,
                            RemoteAudio::Chunk {
                                header,
                                payload: chunk.payload,
                            },
                        );
                    }
                }
                let stream = &audio.streams[index];
                if stream.stopping && stream.buffer.is_empty() {
                    let stream = audio.streams.swap_remove(index);
                    self.announce_end(audio, channel, &stream, MediaEndReason::Stopped);
                    ended.push(stream.session);
                    continue;
                }
                index += 1;
            }
        }
        for session in ended {
            relay.senders.remove(&session);
            self.counters.streams.dec();
        }
        relay.channels.retain(|_, audio| !audio.is_empty());
        self.counters.relayed.inc_by(relayed);
        relay.ticking = !relay.senders.is_empty();
        relay.ticking
    }
}

#[cfg(test)]
mod tests {
    use concord_gateway::{AudioItem, Hub, QueueLimits, SessionKind};
    use concord_protocol::Intents;

    use super::*;

    #[derive(Default)]
    struct Roster(Mutex<HashMap<UserId, ChannelId>>);

    impl VoiceRoster for Roster {
        fn voice_channel(&self, user: UserId) -> Option<ChannelId> {
            self.0.lock().unwrap().get(&user).copied()
        }
    }

    struct Scene {
        hub: Hub,
        roster: Arc<Roster>,
        relay: Arc<MediaRelay>,
        channel: ChannelId,
    }

    impl Scene {
        fn new(config: AudioConfig) -> Self {
            let roster = Arc::new(Roster::default());
            let relay = Arc::new(MediaRelay::new(
                config,
                Arc::clone(&roster) as Arc<dyn VoiceRoster>,
                AudioCounters::default(),
            ));
            Self {
                hub: Hub::new(),
                roster,
                relay,
                channel: ChannelId::new(),
            }
        }

        /// A v2 session of a new user in the scene's voice channel.
        fn member(&self) -> Arc<SessionEntry> {
            let user = UserId::new();
            self.roster.0.lock().unwrap().insert(user, self.channel);
            self.hub.register_session(
                user,
                QueueLimits::default(),
                SessionKind {
                    v2: true,
                    intents: Intents::ALL,
                },
            )
        }

        fn leave(&self, user: UserId) {
            self.roster.0.lock().unwrap().remove(&user);
        }
    }

    fn pcm(sequence: u32) -> Bytes {
        let header = UplinkHeader {
            sequence,
            timestamp: sequence * CHUNK_MS,
        };
        Bytes::from(header.frame(&[sequence as u8; 640]))
    }

    /// What a lane holds: `Ok(sequence)` per chunk, `Err(event text)` per event.
    fn drain(entry: &SessionEntry) -> Vec<Result<u32, String>> {
        entry
            .audio
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|item| match item {
                AudioItem::Chunk(frame) => {
                    let (header, _) = RelayedHeader::parse(&frame[4..]).unwrap();
                    Ok(header.sequence)
                }
                AudioItem::Event(payload) => Err(payload.as_str().to_string()),
            })
            .collect()
    }

    fn outbox_events(entry: &SessionEntry) -> Vec<String> {
        entry
            .outbox
            .take()
            .entries
            .iter()
            .flat_map(|f| f.iter().map(|p| p.as_str().to_string()).collect::<Vec<_>>())
            .collect()
    }

    async fn ticks(n: u32) {
        for _ in 0..n {
            tokio::time::advance(Duration::from_millis(20)).await;
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pushed_file_is_released_one_chunk_per_tick_then_ended() {
        let scene = Scene::new(AudioConfig::default());
        let (bot, listener) = (scene.member(), scene.member());
        scene.relay.subscribe(&listener, scene.channel, None);
        scene.relay.start(&bot, scene.channel, AudioFormat::Pcm16k);
        assert!(outbox_events(&bot)[0].contains("MEDIA_STARTED"));
        for sequence in 0..10 {
            scene.relay.chunk(bot.id, pcm(sequence)).unwrap();
        }
        scene.relay.stop(bot.id).unwrap();
        let mut items = Vec::new();
        for _ in 0..14 {
            ticks(1).await;
            let released = drain(&listener);
            assert!(
                released.iter().filter(|i| i.is_ok()).count() <= 1,
                "one chunk per tick: {released:?}"
            );
            items.extend(released);
        }
        assert_eq!(items.len(), 12, "{items:?}");
        assert!(matches!(&items[0], Err(e) if e.contains("MEDIA_STARTED")));
        let chunks: Vec<u32> = items.iter().filter_map(|i| i.clone().ok()).collect();
        assert_eq!(chunks, (0..10).collect::<Vec<_>>());
        assert!(
            matches!(&items[11], Err(e) if e.contains("MEDIA_ENDED") && e.contains("\"stopped\""))
        );
        assert!(
            outbox_events(&bot)
                .iter()
                .any(|e| e.contains("\"stopped\""))
        );
        assert!(!scene.relay.is_streaming(bot.id));
    }

    #[tokio::test(start_paused = true)]
    async fn clearing_drops_the_buffer_and_ends_at_once() {
        let scene = Scene::new(AudioConfig::default());
        let (bot, listener) = (scene.member(), scene.member());
        scene.relay.subscribe(&listener, scene.channel, None);
        scene.relay.start(&bot, scene.channel, AudioFormat::Pcm16k);
        for sequence in 0..50 {
            scene.relay.chunk(bot.id, pcm(sequence)).unwrap();
        }
        ticks(3).await;
        scene.relay.clear(bot.id).unwrap();
        let items = drain(&listener);
        assert!(matches!(items.last(), Some(Err(e)) if e.contains("\"cleared\"")));
        let chunks = items.iter().filter(|i| i.is_ok()).count();
        assert!((1..=4).contains(&chunks), "{items:?}");
        ticks(5).await;
        assert!(drain(&listener).is_empty(), "nothing after the clear");
        assert_eq!(
            scene.relay.chunk(bot.id, pcm(60)).unwrap_err().code,
            ErrorCode::BinaryNotAccepted
        );
    }

    #[tokio::test(start_paused = true)]
    async fn leaving_the_channel_ends_the_stream_and_the_subscription() {
        let scene = Scene::new(AudioConfig::default());
        let (bot, listener, other) = (scene.member(), scene.member(), scene.member());
        scene.relay.subscribe(&listener, scene.channel, None);
        scene.relay.subscribe(&other, scene.channel, None);
        scene.relay.start(&bot, scene.channel, AudioFormat::Pcm16k);
        for sequence in 0..20 {
            scene.relay.chunk(bot.id, pcm(sequence)).unwrap();
        }
        ticks(2).await;
        scene.leave(other.user_id);
        ticks(1).await;
        assert!(!other.audio.is_open(), "a subscriber who left is dropped");
        scene.leave(bot.user_id);
        ticks(1).await;
        let items = drain(&listener);
        assert!(matches!(items.last(), Some(Err(e)) if e.contains("\"left\"")));
        assert!(!scene.relay.is_streaming(bot.id));
    }

    #[tokio::test(start_paused = true)]
    async fn bad_chunks_are_refused_and_nothing_is_relayed() {
        let config = AudioConfig {
            buffer_secs: 1,
            ..AudioConfig::default()
        };
        let scene = Scene::new(config);
        let (bot, listener) = (scene.member(), scene.member());
        scene.relay.subscribe(&listener, scene.channel, None);
        let code = |r: Result<(), CommandError>| r.unwrap_err().code;
        assert_eq!(
            code(scene.relay.chunk(bot.id, pcm(0))),
            ErrorCode::BinaryNotAccepted
        );
        scene.relay.start(&bot, scene.channel, AudioFormat::Pcm48k);
        assert_eq!(
            code(scene.relay.chunk(bot.id, pcm(0))),
            ErrorCode::InvalidPayload,
            "640 bytes is not a 48 kHz chunk"
        );
        assert_eq!(
            code(scene.relay.chunk(bot.id, Bytes::from_static(b"{}"))),
            ErrorCode::BinaryNotAccepted
        );
        let chunk48 = |sequence: u32| {
            Bytes::from(
                UplinkHeader {
                    sequence,
                    timestamp: 0,
                }
                .frame(&[1; 1920]),
            )
        };
        scene.relay.chunk(bot.id, chunk48(5)).unwrap();
        assert_eq!(
            code(scene.relay.chunk(bot.id, chunk48(5))),
            ErrorCode::InvalidPayload
        );
        for sequence in 6..55 {
            scene.relay.chunk(bot.id, chunk48(sequence)).unwrap();
        }
        // 50 chunks buffered (1 s): the next overflows, once answered, then quiet.
        assert_eq!(
            code(scene.relay.chunk(bot.id, chunk48(60))),
            ErrorCode::AudioBufferFull
        );
        assert!(scene.relay.chunk(bot.id, chunk48(61)).is_ok());
        let events = drain(&listener);
        assert_eq!(events.iter().filter(|i| i.is_ok()).count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_subscriber_loses_its_oldest_chunks_not_its_events() {
        let config = AudioConfig {
            subscriber_queue_chunks: 3,
            ..AudioConfig::default()
        };
        let scene = Scene::new(config);
        let (bot, listener) = (scene.member(), scene.member());
        scene.relay.subscribe(&listener, scene.channel, None);
        scene.relay.start(&bot, scene.channel, AudioFormat::Pcm16k);
        for sequence in 0..8 {
            scene.relay.chunk(bot.id, pcm(sequence)).unwrap();
        }
        scene.relay.stop(bot.id).unwrap();
        ticks(12).await;
        let items = drain(&listener);
        let chunks: Vec<u32> = items.iter().filter_map(|i| i.clone().ok()).collect();
        assert_eq!(chunks, vec![5, 6, 7], "the newest three, in order");
        assert!(matches!(items.first(), Some(Err(e)) if e.contains("MEDIA_STARTED")));
        assert!(matches!(items.last(), Some(Err(e)) if e.contains("MEDIA_ENDED")));
    }

    #[tokio::test(start_paused = true)]
    async fn filters_and_self_audio() {
        let scene = Scene::new(AudioConfig::default());
        let (a, b, listener) = (scene.member(), scene.member(), scene.member());
        scene
            .relay
            .subscribe(&listener, scene.channel, Some(vec![b.user_id]));
        scene.relay.subscribe(&a, scene.channel, None);
        scene.relay.start(&a, scene.channel, AudioFormat::Pcm16k);
        scene.relay.start(&b, scene.channel, AudioFormat::Pcm16k);
        scene.relay.chunk(a.id, pcm(0)).unwrap();
        scene.relay.chunk(b.id, pcm(0)).unwrap();
        ticks(2).await;
        let heard: Vec<_> = listener
            .audio
            .take()
            .unwrap()
            .into_iter()
            .filter_map(|item| match item {
                AudioItem::Chunk(frame) => {
                    Some(RelayedHeader::parse(&frame[4..]).unwrap().0.speaker)
                }
                AudioItem::Event(_) => None,
            })
            .collect();
        assert_eq!(heard, vec![b.user_id], "only the speaker in the filter");
        let own: Vec<_> = drain(&a);
        assert!(
            own.iter()
                .all(|i| !matches!(i, Err(e) if e.contains(&a.user_id.to_string()))),
            "a session hears nothing of its own user: {own:?}"
        );
        assert_eq!(own.iter().filter(|i| i.is_ok()).count(), 1, "but hears b");
    }

    /// What a relay sends to the other nodes, kept for the test to look at.
    #[derive(Default, Clone)]
    struct Sent(Arc<Mutex<Vec<(ChannelId, RemoteAudio)>>>);

    impl AudioUplink for Sent {
        fn send(&self, channel: ChannelId, message: RemoteAudio) {
            self.0.lock().unwrap().push((channel, message));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn streams_cross_to_other_nodes_and_end_with_their_node() {
        // Node one: a speaker streams three chunks; what it sends to the others is
        // exactly the start, the chunks in order and the end.
        let one = Scene::new(AudioConfig::default());
        let sent = Sent::default();
        one.relay.connect_uplink(Box::new(sent.clone()));
        let bot = one.member();
        one.relay.start(&bot, one.channel, AudioFormat::Pcm16k);
        for sequence in 0..3 {
            one.relay.chunk(bot.id, pcm(sequence)).unwrap();
        }
        one.relay.stop(bot.id).unwrap();
        ticks(4).await;
        let sent = sent.0.lock().unwrap().clone();
        let kinds: Vec<String> = sent
            .iter()
            .map(|(channel, m)| {
                assert_eq!(*channel, one.channel);
                match m {
                    RemoteAudio::Started(s) => format!("started {}", s.user_id == bot.user_id),
                    RemoteAudio::Chunk { header, payload } => {
                        format!("chunk {} {}", header.sequence, payload.len())
                    }
                    RemoteAudio::Ended(e) => format!("ended {:?}", e.reason),
                }
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "started true",
                "chunk 0 640",
                "chunk 1 640",
                "chunk 2 640",
                "ended Stopped"
            ]
        );

        // Node two relays it to its subscriber in the channel; one who subscribes
        // later is told of the open stream; a chunk of a stream it never heard start
        // starts it first; a dead node's streams end as disconnected.
        let two = Scene::new(AudioConfig::default());
        let listener = two.member();
        two.relay.subscribe(&listener, two.channel, None);
        let origin = concord_bus::NodeId::new();
        let speaker = UserId::new();
        let started = MediaStarted {
            user_id: speaker,
            channel_id: two.channel,
            format: AudioFormat::Pcm16k,
        };
        let chunk = |sequence: u32, speaker: UserId| RemoteAudio::Chunk {
            header: RelayedHeader {
                format: AudioFormat::Pcm16k,
                sequence,
                timestamp: sequence * CHUNK_MS,
                speaker,
            },
            payload: Bytes::from(vec![0u8; 640]),
        };
        two.relay
            .remote(origin, two.channel, RemoteAudio::Started(started));
        two.relay.remote(origin, two.channel, chunk(7, speaker));
        let items = drain(&listener);
        assert!(
            matches!(&items[0], Err(e) if e.contains("MEDIA_STARTED")),
            "{items:?}"
        );
        assert_eq!(items[1], Ok(7));
        let late = two.member();
        two.relay.subscribe(&late, two.channel, None);
        assert!(matches!(&drain(&late)[0], Err(e) if e.contains("MEDIA_STARTED")));

        let unheard = UserId::new();
        two.relay.remote(origin, two.channel, chunk(1, unheard));
        let items = drain(&listener);
        assert!(
            matches!(&items[0], Err(e) if e.contains("MEDIA_STARTED") && e.contains(&unheard.to_string())),
            "{items:?}"
        );
        assert_eq!(items[1], Ok(1));

        assert_eq!(drain(&late).len(), 2);
        // A listener who left the channel hears nothing more.
        two.leave(late.user_id);
        two.relay.remote(origin, two.channel, chunk(8, speaker));
        assert_eq!(drain(&late), Vec::<Result<u32, String>>::new());
        assert_eq!(drain(&listener), vec![Ok(8)]);

        two.relay.node_gone(origin);
        let items = drain(&listener);
        assert_eq!(items.len(), 2, "{items:?}");
        assert!(items.iter().all(
            |i| matches!(i, Err(e) if e.contains("MEDIA_ENDED") && e.contains("disconnected"))
        ));
        // Gone: an end from that node now tells nobody anything.
        two.relay.remote(
            origin,
            two.channel,
            RemoteAudio::Ended(MediaEnded {
                user_id: speaker,
                channel_id: two.channel,
                reason: MediaEndReason::Stopped,
            }),
        );
        assert_eq!(drain(&listener), Vec::<Result<u32, String>>::new());
    }
}
