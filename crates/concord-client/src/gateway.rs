//! The application's handle on one gateway connection.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use concord_protocol::{
    ChannelId, ClientFrame, Op, PresenceCommand, TypingCommand, VoiceSignalCommand,
};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::{
    Error, Event, EventKind, EventStream, GatewayConfig, ListenerHandle, driver, event::Fanout,
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
}

pub(crate) struct Shared {
    pub(crate) status: Mutex<Status>,
    pub(crate) fanout: Fanout,
}

impl Shared {
    pub(crate) fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the handle tells the driver task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A client frame to send, encoded.
    Send(String),
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
                }),
                fanout: Fanout::default(),
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
            .send(Command::Send(text))
            .await
            .map_err(|_| Error::NotConnected)
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
