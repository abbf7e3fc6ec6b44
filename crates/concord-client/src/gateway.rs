//! The application's handle on one gateway connection.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use concord_protocol::{
    AudioFormat, ChannelId, ClientFrame, GatewayError, MediaEndReason, MediaStart, MediaSubscribe,
    Op, PresenceCommand, TypingCommand, UplinkHeader, UserId, VoiceSignalCommand,
};
use futures_util::{Stream, StreamExt};
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::JoinHandle,
    time::{Instant, sleep_until},
};

use crate::{
    Error, Event, EventKind, EventStream, GatewayConfig, ListenerHandle,
    audio::{AudioStreams, PcmAudio, Router},
    driver,
    event::Fanout,
};

/// Where the connection stands (as a WebSocket's `readyState`, for the session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadyState {
    /// Connecting, authenticating, or waiting to reconnect.
    Connecting,
    /// The session is ready (READY or RESUMED received): commands may be sent.
    Open,
    /// [`Gateway::disconnect`] is closing the connection.
    Closing,
    /// Not running: never connected, disconnected, or stopped for good.
    Closed,
}

/// What the driver task and the handle share.
pub(crate) struct Status {
    pub(crate) state: ReadyState,
    pub(crate) session_id: Option<String>,
    pub(crate) seq: u64,
    pub(crate) latency: Option<Duration>,
    /// The audio subscription the application asked for (sent again after a fresh
    /// IDENTIFY; a RESUME keeps it on the server).
    pub(crate) subscription: Option<MediaSubscribe>,
}

/// The session's own audio stream and the refusals that may concern it, as the
/// driver sees them (watched by [`Gateway::start_audio`] and friends).
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnAudio {
    /// Incremented on every READY or RESUMED (a stream must be started again after
    /// either), and when the gateway stops.
    pub(crate) epoch: u64,
    /// The gateway stopped for good.
    pub(crate) closed: bool,
    /// Own `MEDIA_STARTED`s seen.
    pub(crate) started: u64,
    /// Own `MEDIA_ENDED`s seen, and the last one's reason.
    pub(crate) ended: u64,
    pub(crate) last_end: Option<MediaEndReason>,
    /// ERRORs seen, and the last one.
    pub(crate) errors: u64,
    pub(crate) last_error: Option<GatewayError>,
}

pub(crate) struct Shared {
    pub(crate) status: Mutex<Status>,
    pub(crate) fanout: Fanout,
    pub(crate) audio: Mutex<Router>,
    pub(crate) own: watch::Sender<OwnAudio>,
}

impl Shared {
    pub(crate) fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn audio(&self) -> std::sync::MutexGuard<'_, Router> {
        self.audio.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the handle tells the driver task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A client frame to send, encoded.
    Send(String),
    /// A binary frame to send (an audio chunk).
    Binary(Vec<u8>),
    /// Send a HEARTBEAT and answer once its ACK is back: every command sent before
    /// has then been read by the server.
    Sync(oneshot::Sender<()>),
    /// Close 1000 and stop.
    Disconnect,
}

struct Control {
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
}

/// A connection to the Concord gateway that keeps itself alive: heartbeats,
/// reconnects with backoff, RESUMEs, renews its token. See the crate docs.
///
/// ```no_run
/// use concord_client::{Gateway, GatewayConfig, RefreshToken};
///
/// # async fn run() -> Result<(), concord_client::Error> {
/// let tokens = RefreshToken::new("http://127.0.0.1:8080", "refresh-jwt");
/// let gateway = Gateway::new(GatewayConfig::new("ws://127.0.0.1:8080/ws", tokens));
/// gateway.connect().await?;
/// assert!(gateway.is_connected());
/// println!("session {:?}, latency {:?}", gateway.session_id(), gateway.latency());
/// gateway.disconnect().await;
/// # Ok(())
/// # }
/// ```
pub struct Gateway {
    config: GatewayConfig,
    shared: Arc<Shared>,
    control: Mutex<Option<Control>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("url", &self.config.url)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// A gateway that is not connected yet.
    pub fn new(config: GatewayConfig) -> Self {
        Self {
            config,
            shared: Arc::new(Shared {
                status: Mutex::new(Status {
                    state: ReadyState::Closed,
                    session_id: None,
                    seq: 0,
                    latency: None,
                    subscription: None,
                }),
                fanout: Fanout::default(),
                audio: Mutex::new(Router::default()),
                own: watch::Sender::new(OwnAudio::default()),
            }),
            control: Mutex::new(None),
        }
    }

    /// Connects, and keeps connecting after any close that allows it, until
    /// [`Gateway::disconnect`]. Returns once the first session is ready; failures that
    /// a retry may fix (refused connection, timeouts, server errors) are retried with
    /// backoff meanwhile (each announced as [`Event::Reconnecting`]), so wrap the call
    /// in a timeout to bound the wait.
    ///
    /// # Errors
    /// - [`Error::AlreadyRunning`] if it is running already;
    /// - [`Error::AuthenticationFailed`], [`Error::Token`] or [`Error::Closed`] when
    ///   the server refuses for good before a session is ready (the gateway is then
    ///   stopped);
    /// - [`Error::Disconnected`] when [`Gateway::disconnect`] came first.
    pub async fn connect(&self) -> Result<(), Error> {
        let (ready_tx, ready_rx) = oneshot::channel();
        {
            let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
            if control.as_ref().is_some_and(|c| !c.task.is_finished()) {
                return Err(Error::AlreadyRunning);
            }
            self.shared.status().state = ReadyState::Connecting;
            let (commands, rx) = mpsc::channel(64);
            let task = tokio::spawn(driver::run(
                self.config.clone(),
                Arc::clone(&self.shared),
                rx,
                ready_tx,
            ));
            *control = Some(Control { commands, task });
        }
        ready_rx.await.unwrap_or(Err(Error::Disconnected))
    }

    /// Closes the connection (code 1000: the server ends the session at once) and
    /// stops reconnecting. [`Event::Closed`] is the last event of the stream.
    pub async fn disconnect(&self) {
        let control = self
            .control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(control) = control {
            {
                let mut status = self.shared.status();
                if status.state != ReadyState::Closed {
                    status.state = ReadyState::Closing;
                }
            }
            let _ = control.commands.send(Command::Disconnect).await;
            let _ = control.task.await;
        }
    }

    /// Whether a session is ready ([`ReadyState::Open`]).
    pub fn is_connected(&self) -> bool {
        self.state() == ReadyState::Open
    }

    /// Where the connection stands.
    pub fn state(&self) -> ReadyState {
        self.shared.status().state
    }

    /// The gateway URL.
    pub fn url(&self) -> &str {
        &self.config.url
    }

    /// The v2 session id (kept across RESUMEs), once a session was ready.
    pub fn session_id(&self) -> Option<String> {
        self.shared.status().session_id.clone()
    }

    /// The last sequence number received (v2; 0 before any).
    pub fn last_sequence(&self) -> u64 {
        self.shared.status().seq
    }

    /// The round trip of the last acknowledged heartbeat.
    pub fn latency(&self) -> Option<Duration> {
        self.shared.status().latency
    }

    /// The events from now on, as a stream (replacing the stream of an earlier call).
    /// Call it before [`Gateway::connect`] to see READY. The stream holds
    /// [`GatewayConfig::event_buffer`] events; when it is full, the connection stops
    /// reading until the application catches up.
    pub fn events(&self) -> EventStream {
        self.shared.fanout.stream(self.config.event_buffer)
    }

    /// Calls `f` with every event of `kind`, on the connection's task (keep it short;
    /// it must not block). Returns the handle for [`Gateway::off`].
    pub fn on(
        &self,
        kind: EventKind,
        f: impl Fn(&Event) + Send + Sync + 'static,
    ) -> ListenerHandle {
        self.shared.fanout.on(kind, Arc::new(f))
    }

    /// Removes a listener; false if it was not there.
    pub fn off(&self, handle: ListenerHandle) -> bool {
        self.shared.fanout.off(handle)
    }

    /// Sends `PRESENCE_UPDATE`.
    ///
    /// # Errors
    /// [`Error::NotConnected`] unless a session is ready.
    pub async fn update_presence(&self, presence: &PresenceCommand) -> Result<(), Error> {
        self.send(Op::PresenceUpdate, presence).await
    }

    /// Sends `TYPING_START` for `channel_id`.
    ///
    /// # Errors
    /// [`Error::NotConnected`] unless a session is ready.
    pub async fn start_typing(&self, channel_id: ChannelId) -> Result<(), Error> {
        self.send(Op::TypingStart, &TypingCommand { channel_id })
            .await
    }

    /// Sends `VOICE_SIGNAL`.
    ///
    /// # Errors
    /// [`Error::NotConnected`] unless a session is ready.
    pub async fn send_voice_signal(&self, signal: &VoiceSignalCommand) -> Result<(), Error> {
        self.send(Op::VoiceSignal, signal).await
    }

    async fn send<T: serde::Serialize>(&self, op: Op, d: &T) -> Result<(), Error> {
        let frame = ClientFrame {
            op,
            t: None,
            d: Some(serde_json::to_value(d).map_err(Error::Encode)?),
        };
        let text = serde_json::to_string(&frame).map_err(Error::Encode)?;
        self.command(Command::Send(text)).await
    }

    /// Sends a command without a payload (`"d": null`).
    async fn send_bare(&self, op: Op) -> Result<(), Error> {
        let frame = ClientFrame {
            op,
            t: None,
            d: None,
        };
        let text = serde_json::to_string(&frame).map_err(Error::Encode)?;
        self.command(Command::Send(text)).await
    }

    async fn command(&self, command: Command) -> Result<(), Error> {
        if !self.is_connected() {
            return Err(Error::NotConnected);
        }
        let commands = self
            .control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.commands.clone())
            .ok_or(Error::NotConnected)?;
        commands
            .send(command)
            .await
            .map_err(|_| Error::NotConnected)
    }

    /// Waits until the server has read every command sent before (a HEARTBEAT and
    /// its ACK, which the server answers in order).
    ///
    /// # Errors
    /// [`Error::NotConnected`] if the connection is lost first.
    pub async fn sync(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Sync(tx)).await?;
        rx.await.map_err(|_| Error::NotConnected)
    }

    // ---- audio (`protocol-v2.md` §15) ----

    /// Audio is v2 only: a v1 server ignores the commands.
    fn audio_v2(&self) -> Result<(), Error> {
        match self.config.version {
            crate::Version::V2 => Ok(()),
            crate::Version::V1 => Err(Error::NeedsV2("audio")),
        }
    }

    /// The speaker streams of the channel's audio from now on (replacing the
    /// receiver of an earlier call): one [`crate::audio::SpeakerStream`] per stream a
    /// speaker opens while this session is subscribed ([`Gateway::subscribe_audio`]).
    /// Call it before subscribing. Streams open when nobody holds the receiver are
    /// not delivered.
    pub fn audio(&self) -> AudioStreams {
        self.shared.audio().listen(self.config.audio_buffer)
    }

    /// `MEDIA_SUBSCRIBE`: receive the audio of the voice channel the user is in now,
    /// of every speaker (`None`) or only of these (at most 64). Returns once the
    /// server has taken it. The subscription survives a RESUME; after a fresh
    /// IDENTIFY the SDK sends it again. It ends when the user leaves the channel.
    ///
    /// # Errors
    /// [`Error::Refused`] (`FORBIDDEN`: not in a voice channel), [`Error::NotConnected`],
    /// [`Error::NeedsV2`].
    pub async fn subscribe_audio(&self, speakers: Option<Vec<UserId>>) -> Result<(), Error> {
        self.audio_v2()?;
        let subscribe = MediaSubscribe { speakers };
        let errors = self.shared.own.borrow().errors;
        self.send(Op::MediaSubscribe, &subscribe).await?;
        self.shared.status().subscription = Some(subscribe);
        self.sync().await?;
        let own = self.shared.own.borrow();
        if own.errors > errors
            && let Some(error) = own.last_error.clone()
        {
            self.shared.status().subscription = None;
            return Err(Error::Refused(error));
        }
        Ok(())
    }

    /// `MEDIA_UNSUBSCRIBE`: stop receiving the channel's audio.
    ///
    /// # Errors
    /// [`Error::NotConnected`].
    pub async fn unsubscribe_audio(&self) -> Result<(), Error> {
        self.shared.status().subscription = None;
        self.send_bare(Op::MediaUnsubscribe).await
    }

    /// `MEDIA_START`: opens the session's stream in the user's voice channel, and
    /// returns once the server confirmed it (the own `MEDIA_STARTED`). A stream ends
    /// with its connection: after a RESUME start it again.
    ///
    /// # Errors
    /// [`Error::Refused`] (`FORBIDDEN`: not in a voice channel, muted, no SPEAK),
    /// [`Error::AudioEnded`] if the connection was replaced first,
    /// [`Error::NotConnected`], [`Error::NeedsV2`].
    pub async fn start_audio(&self, format: AudioFormat) -> Result<(), Error> {
        self.audio_v2()?;
        let before = self.shared.own.borrow().clone();
        self.send(Op::MediaStart, &MediaStart { format }).await?;
        let mut own = self.shared.own.subscribe();
        let now = own
            .wait_for(|o| {
                o.started > before.started
                    || o.errors > before.errors
                    || o.epoch != before.epoch
                    || o.closed
            })
            .await
            .map_err(|_| Error::NotConnected)?
            .clone();
        if now.started > before.started {
            Ok(())
        } else if now.errors > before.errors
            && let Some(error) = now.last_error
        {
            Err(Error::Refused(error))
        } else {
            Err(Error::AudioEnded { reason: None })
        }
    }

    /// Sends one chunk of the open stream: `payload` is exactly 20 ms of its format
    /// (§15.1); `sequence` rises with every chunk, `timestamp` is the milliseconds
    /// since the stream's start. The server paces chunks out, so they may be sent
    /// ahead of time (up to its buffer, 10 s by default).
    ///
    /// # Errors
    /// [`Error::NotConnected`].
    pub async fn send_audio_chunk(
        &self,
        sequence: u32,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<(), Error> {
        let frame = UplinkHeader {
            sequence,
            timestamp,
        }
        .frame(payload);
        self.command(Command::Binary(frame)).await
    }

    /// `MEDIA_STOP`: the stream ends once every chunk sent has been heard; the own
    /// `MEDIA_ENDED` (`stopped`) says when ([`Gateway::audio_end`]).
    ///
    /// # Errors
    /// [`Error::NotConnected`].
    pub async fn stop_audio(&self) -> Result<(), Error> {
        self.send_bare(Op::MediaStop).await
    }

    /// `MEDIA_CLEAR`: drops every chunk not yet heard and ends the stream at once
    /// (`cleared`), e.g. a voice assistant interrupted.
    ///
    /// # Errors
    /// [`Error::NotConnected`].
    pub async fn clear_audio(&self) -> Result<(), Error> {
        self.send_bare(Op::MediaClear).await
    }

    /// Plays a whole stream of chunks: `MEDIA_START` in `format`, every chunk
    /// (numbered from 0, timestamps 0, 20, 40 … ms), then `MEDIA_STOP`. The server
    /// paces the chunks, so they are pushed ahead of real time, at most
    /// [`GatewayConfig::audio_lead`] ahead (within the server's buffer). Returns the
    /// number of chunks sent once `MEDIA_STOP` is; [`Gateway::audio_end`] then waits
    /// until the last one has been heard.
    ///
    /// # Errors
    /// Those of [`Gateway::start_audio`]; [`Error::AudioEnded`] if the stream ended
    /// before all was sent (cleared, the user left, or the connection was replaced:
    /// start again).
    pub async fn send_audio(
        &self,
        format: AudioFormat,
        chunks: impl Stream<Item = Vec<u8>>,
    ) -> Result<u32, Error> {
        self.start_audio(format).await?;
        let own = self.shared.own.borrow().clone();
        let start = Instant::now();
        let lead = self.config.audio_lead;
        let mut chunks = std::pin::pin!(chunks);
        let mut sequence: u32 = 0;
        while let Some(chunk) = chunks.next().await {
            let due = start + Duration::from_millis(u64::from(sequence) * 20);
            if let Some(at) = due.checked_sub(lead)
                && at > Instant::now()
            {
                sleep_until(at).await;
            }
            {
                let now = self.shared.own.borrow();
                if now.ended > own.ended {
                    return Err(Error::AudioEnded {
                        reason: now.last_end,
                    });
                }
                if now.epoch != own.epoch || now.closed {
                    return Err(Error::AudioEnded { reason: None });
                }
            }
            self.send_audio_chunk(sequence, sequence.wrapping_mul(20), &chunk)
                .await?;
            sequence += 1;
        }
        self.stop_audio().await?;
        Ok(sequence)
    }

    /// Plays a WAV file (16-bit PCM mono, 16 or 48 kHz) with [`Gateway::send_audio`]:
    /// 20 ms chunks, the last padded with silence.
    ///
    /// # Errors
    /// [`Error::Wav`] for a file that cannot be read or is of another kind (it is not
    /// converted); those of [`Gateway::send_audio`].
    pub async fn play_wav(&self, path: impl AsRef<Path>) -> Result<u32, Error> {
        let audio = PcmAudio::read_wav(path)?;
        let chunks = audio.chunks();
        self.send_audio(audio.format, futures_util::stream::iter(chunks))
            .await
    }

    /// Waits until the session's own stream (the last one started) has ended, and
    /// says why: `stopped` once everything sent has been heard after
    /// [`Gateway::stop_audio`].
    ///
    /// # Errors
    /// [`Error::AudioEnded`] without a reason if the connection is replaced or the
    /// gateway stops first.
    pub async fn audio_end(&self) -> Result<MediaEndReason, Error> {
        let mut own = self.shared.own.subscribe();
        let epoch = own.borrow().epoch;
        let now = own
            .wait_for(|o| o.ended >= o.started || o.epoch != epoch || o.closed)
            .await
            .map_err(|_| Error::NotConnected)?
            .clone();
        match now.last_end {
            Some(reason) if now.ended >= now.started && now.ended > 0 => Ok(reason),
            _ => Err(Error::AudioEnded { reason: None }),
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(control) = self
            .control
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            control.task.abort();
        }
    }
}
