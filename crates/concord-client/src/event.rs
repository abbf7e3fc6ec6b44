//! What a [`crate::Gateway`] hands the application: server events and its own
//! connection events, as a stream and to listeners.

use std::{
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use concord_protocol::{GatewayError, GatewayEvent};
use tokio::sync::mpsc;

use crate::EventName;

/// One thing that happened on the gateway.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A server event (READY and RESUMED included), each delivered once and in order
    /// across reconnects (v2).
    Dispatch {
        /// Its sequence number (v2), `None` on v1.
        seq: Option<u64>,
        /// The event.
        event: GatewayEvent,
    },
    /// The WebSocket is open (before authentication).
    Open,
    /// A new session is ready (after its READY dispatch); earlier events of an older
    /// session could not be resumed.
    Ready {
        /// The session id (v2), `None` on v1.
        session_id: Option<String>,
    },
    /// The session was resumed (after the RESUMED dispatch): nothing was lost.
    Resumed {
        /// How many events the server replayed.
        replayed: u64,
    },
    /// The connection ended and another attempt starts after `delay`.
    Reconnecting {
        /// 1 for the first attempt after a working connection, then 2, 3 …
        attempt: u32,
        /// The backoff delay before this attempt.
        delay: Duration,
        /// The close code that ended the previous connection, if a close frame came
        /// (`None`: the connection dropped, failed, or was found a zombie).
        code: Option<u16>,
    },
    /// The gateway stopped for good: [`crate::Gateway::disconnect`], or a close that
    /// forbids reconnecting. The stream ends after this event.
    Closed {
        /// The close code (1000 for a disconnect by the application), or the HTTP
        /// status of a refused upgrade.
        code: Option<u16>,
        /// Why.
        reason: String,
    },
    /// v2: the server refused a command of this client (`ERROR`); the connection
    /// stays open.
    Refused(GatewayError),
}

/// Which events a listener wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// Every event.
    Any,
    /// Every dispatch.
    AnyDispatch,
    /// Dispatches of this event.
    Dispatch(EventName),
    /// Dispatches of events this SDK does not know ([`GatewayEvent::Unknown`]).
    UnknownDispatch,
    /// [`Event::Open`].
    Open,
    /// [`Event::Ready`].
    Ready,
    /// [`Event::Resumed`].
    Resumed,
    /// [`Event::Reconnecting`].
    Reconnecting,
    /// [`Event::Closed`].
    Closed,
    /// [`Event::Refused`].
    Refused,
}

impl EventKind {
    /// Whether `event` is of this kind.
    ///
    /// ```
    /// use concord_client::{Event, EventKind};
    ///
    /// let resumed = Event::Resumed { replayed: 3 };
    /// assert!(EventKind::Resumed.matches(&resumed));
    /// assert!(EventKind::Any.matches(&resumed));
    /// assert!(!EventKind::AnyDispatch.matches(&resumed));
    /// ```
    pub fn matches(self, event: &Event) -> bool {
        match (self, event) {
            (Self::Any, _) | (Self::AnyDispatch, Event::Dispatch { .. }) => true,
            (Self::Dispatch(name), Event::Dispatch { event, .. }) => event.event() == Some(name),
            (Self::UnknownDispatch, Event::Dispatch { event, .. }) => event.event().is_none(),
            (Self::Open, Event::Open)
            | (Self::Ready, Event::Ready { .. })
            | (Self::Resumed, Event::Resumed { .. })
            | (Self::Reconnecting, Event::Reconnecting { .. })
            | (Self::Closed, Event::Closed { .. })
            | (Self::Refused, Event::Refused(_)) => true,
            _ => false,
        }
    }
}

/// Names a listener for [`crate::Gateway::off`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerHandle(u64);

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// The listeners, each with its id and kind, and the last id given out.
#[derive(Default)]
struct Listeners {
    last_id: u64,
    all: Vec<(u64, EventKind, Listener)>,
}

/// The listeners and the stream's sender.
#[derive(Default)]
pub(crate) struct Fanout {
    listeners: Mutex<Listeners>,
    stream: Mutex<Option<mpsc::Sender<Event>>>,
}

impl Fanout {
    pub(crate) fn on(&self, kind: EventKind, f: Listener) -> ListenerHandle {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.last_id += 1;
        let id = listeners.last_id;
        listeners.all.push((id, kind, f));
        ListenerHandle(id)
    }

    pub(crate) fn off(&self, handle: ListenerHandle) -> bool {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let before = listeners.all.len();
        listeners.all.retain(|(id, _, _)| *id != handle.0);
        listeners.all.len() != before
    }

    pub(crate) fn stream(&self, capacity: usize) -> EventStream {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        *self.stream.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        EventStream { rx }
    }

    /// Calls the matching listeners (outside the lock, so that they may call `on` and
    /// `off`), then queues the event for the stream, waiting while the stream is full.
    pub(crate) async fn emit(&self, event: Event) {
        let matching: Vec<Listener> = {
            let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
            listeners
                .all
                .iter()
                .filter(|(_, kind, _)| kind.matches(&event))
                .map(|(_, _, f)| Arc::clone(f))
                .collect()
        };
        for listener in matching {
            // A panicking listener must not take the connection down with it.
            let call = std::panic::AssertUnwindSafe(|| listener(&event));
            if std::panic::catch_unwind(call).is_err() {
                tracing::error!("a gateway event listener panicked");
            }
        }
        let tx = self
            .stream
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(tx) = tx
            && tx.send(event).await.is_err()
        {
            // The application dropped the stream: stop queueing for it.
            let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
            if stream.as_ref().is_some_and(|s| s.same_channel(&tx)) {
                *stream = None;
            }
        }
    }

    /// Ends the stream (after the last event).
    pub(crate) fn end(&self) {
        *self.stream.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The gateway's events as an async stream; it ends once the gateway stops for good
/// (after [`Event::Closed`]).
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<Event>,
}

impl futures_util::Stream for EventStream {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}
