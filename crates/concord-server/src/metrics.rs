//! The node's metrics, served by `GET /metrics` in the Prometheus text format.
//!
//! Counting stays off the delivery path: a fan-out adds its whole outcome to one
//! counter per event name (one atomic add per event, not per recipient), and the
//! counters are resolved once at start, so nothing is looked up by label while
//! events flow. What the node holds (sockets, sessions, replay bytes, memory) is read
//! when the metrics are scraped, not tracked as it changes.

use std::{
    fmt,
    sync::{Arc, Mutex, Weak},
    time::{Duration, SystemTime},
};

use concord_gateway::{Delivery, Gateway, Hub};
use concord_protocol::Event;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric},
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::ConstGauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

/// `Content-Type` of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Labels of a REST request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route's pattern (`/servers/{id}`), never the raw path: a bounded set.
    route: String,
    status: u16,
}

/// Labels of a REST request's latency.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// Labels of a database operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// A histogram with fixed buckets, for [`Family::new_with_constructor`].
type Buckets = fn() -> Histogram;

/// Every metric of one node.
pub struct Metrics {
    registry: Registry,
    published: Box<[Counter]>,
    deliveries: Box<[Counter]>,
    outbox_dropped: Counter,
    slow_consumers: Counter,
    refresh_reuses: Counter,
    presence_batch: Histogram,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<RouteLabels, Histogram, Buckets>,
    db_latency: Family<OperationLabels, Histogram, Buckets>,
    db_errors: Family<OperationLabels, Counter>,
    refused: Family<[(&'static str, &'static str); 1], Counter>,
    node: Arc<NodeCollector>,
    webhooks: Family<[(&'static str, &'static str); 1], Counter>,
    bus: Family<[(&'static str, &'static str); 1], Counter>,
    handovers: Family<[(&'static str, &'static str); 1], Counter>,
    audio: crate::media::AudioCounters,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// One counter per event, indexed by the event's declaration order.
fn per_event(family: &Family<[(&'static str, &'static str); 1], Counter>) -> Box<[Counter]> {
    Event::ALL
        .iter()
        .map(|event| family.get_or_create_owned(&[("event", event.as_str())]))
        .collect()
}

/// The index of `event` in [`Event::ALL`] (declaration order; tested below).
fn slot(event: Event) -> usize {
    event as usize
}

impl Metrics {
    /// The metrics of a node whose sessions `hub` holds.
    pub fn new(hub: Arc<Hub>) -> Self {
        let mut registry = Registry::default();

        let published = Family::default();
        registry.register(
            "concord_events_published",
            "Events published by this node, by event name",
            published.clone(),
        );
        let deliveries = Family::default();
        registry.register(
            "concord_event_deliveries",
            "Frames queued on sessions of this node, by event name",
            deliveries.clone(),
        );
        let outbox_dropped = Counter::default();
        registry.register(
            "concord_outbox_dropped",
            "Frames dropped because their session was already closing",
            outbox_dropped.clone(),
        );
        let slow_consumers = Counter::default();
        registry.register(
            "concord_slow_consumer_closes",
            "Sessions closed because their outbound queue overflowed",
            slow_consumers.clone(),
        );
        let refresh_reuses = Counter::default();
        registry.register(
            "concord_refresh_token_reuses",
            "Logins ended because one of their replaced refresh tokens was presented again",
            refresh_reuses.clone(),
        );
        let presence_batch = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "concord_presence_batch_frames",
            "Presence announcements delivered per presence tick",
            presence_batch.clone(),
        );
        let http_requests = Family::default();
        registry.register(
            "concord_http_requests",
            "REST requests answered, by method, route pattern and status",
            http_requests.clone(),
        );
        let http_latency: Family<RouteLabels, Histogram, Buckets> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_25, 2.0, 16)));
        registry.register(
            "concord_http_request_duration_seconds",
            "Time to answer a REST request, by method and route pattern",
            http_latency.clone(),
        );
        let db_latency: Family<OperationLabels, Histogram, Buckets> =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_05, 2.0, 18)));
        registry.register(
            "concord_db_operation_duration_seconds",
            "Time of one store operation (one transaction), by operation",
            db_latency.clone(),
        );
        let db_errors = Family::default();
        registry.register(
            "concord_db_operation_errors",
            "Store operations that failed, by operation",
            db_errors.clone(),
        );
        let refused = Family::default();
        registry.register(
            "concord_connections_refused",
            "Connections and gateway sessions refused by a cap, by reason \
             (connections_total, connections_per_ip, sessions_per_ip, sessions_per_user)",
            refused.clone(),
        );
        let node = Arc::new(NodeCollector {
            hub,
            gateway: Mutex::new(Weak::new()),
            bus: Mutex::new(None),
            started: SystemTime::now(),
        });
        registry.register_collector(Box::new(Arc::clone(&node)));
        let bus = Family::default();
        registry.register(
            "concord_bus_messages",
            "Messages between nodes, by outcome: published, received, retried (a publish \
             that failed and was tried again), dropped (given up after retries or with the \
             queue full: logged), unreadable, barrier_timeout (a write whose changes \
             some node did not confirm within 1 s), find_timeout (a RESUME's question \
             for its session that some node left unanswered past its limit)",
            bus.clone(),
        );
        let handovers = Family::default();
        registry.register(
            "concord_gateway_handovers",
            "v2 sessions handed over as a node of a cluster stops, by outcome: handed (by \
             the stopping node), lost (it could not hand them over), adopted (taken over \
             by this node)",
            handovers.clone(),
        );
        let webhooks = Family::default();
        registry.register(
            "concord_webhook_deliveries",
            "Outbound webhook deliveries, by outcome (delivered, failed, refused: an \
             address outside the allowed ones, dropped: the queue was full)",
            webhooks.clone(),
        );

        let audio = crate::media::AudioCounters::default();
        registry.register(
            "concord_audio_chunks_received",
            "Audio chunks accepted from senders",
            audio.received.clone(),
        );
        registry.register(
            "concord_audio_chunks_refused",
            "Audio chunks refused (malformed, out of order, outside a stream, buffer full)",
            audio.refused.clone(),
        );
        registry.register(
            "concord_audio_chunks_relayed",
            "Audio chunks queued on subscribers (one per subscriber per chunk)",
            audio.relayed.clone(),
        );
        registry.register(
            "concord_audio_streams",
            "Audio streams open on this node",
            audio.streams.clone(),
        );

        Self {
            published: per_event(&published),
            deliveries: per_event(&deliveries),
            registry,
            outbox_dropped,
            slow_consumers,
            refresh_reuses,
            presence_batch,
            http_requests,
            http_latency,
            db_latency,
            db_errors,
            refused,
            node,
            webhooks,
            bus,
            handovers,
            audio,
        }
    }

    /// The audio relay's counters (shared with the relay).
    pub fn audio(&self) -> crate::media::AudioCounters {
        self.audio.clone()
    }

    /// Reports the sockets and sessions of `gateway` from now on.
    pub fn watch_gateway(&self, gateway: &Arc<Gateway>) {
        *self.node.gateway.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(gateway);
    }

    /// Reports what `bus` counts of the order messages from other nodes arrive in.
    pub fn watch_bus(&self, bus: &Arc<dyn concord_bus::Bus>) {
        *self.node.bus.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::clone(bus));
    }

    /// Counts one event published by this node.
    pub fn published(&self, event: Event) {
        self.published[slot(event)].inc();
    }

    /// Counts the outcome of one fan-out of `event` (one frame per session queued).
    pub fn delivered(&self, event: Event, delivery: Delivery) {
        self.frames_delivered(event, delivery.queued);
        self.sessions_lost(delivery);
    }

    /// Counts `frames` frames of `event` queued on sessions.
    pub fn frames_delivered(&self, event: Event, frames: usize) {
        if frames > 0 {
            self.deliveries[slot(event)].inc_by(frames as u64);
        }
    }

    /// Counts the sessions a fan-out found closing or closed.
    pub fn sessions_lost(&self, delivery: Delivery) {
        if delivery.dropped > 0 {
            self.outbox_dropped.inc_by(delivery.dropped as u64);
        }
        if delivery.overflowed > 0 {
            self.slow_consumers.inc_by(delivery.overflowed as u64);
        }
    }

    /// Counts a login ended by refresh-token reuse.
    pub fn refresh_reuse(&self) {
        self.refresh_reuses.inc();
    }

    /// Records how many announcements one presence tick delivered.
    pub fn presence_batch(&self, frames: usize) {
        self.presence_batch.observe(frames as f64);
    }

    /// Counts one connection or gateway session refused by a cap (`reason`: one of a
    /// closed set of labels).
    pub fn connection_refused(&self, reason: &'static str) {
        self.refused.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts one webhook delivery by its outcome (`delivered`, `failed`, `refused`,
    /// `dropped`).
    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts one bus message of `outcome` (published, received, retried, dropped,
    /// unreadable).
    pub fn bus(&self, outcome: &'static str) {
        self.bus.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Counts a v2 session handed over (or not) as a node stops.
    pub fn handover(&self, outcome: &'static str) {
        self.handovers.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Bus messages of one outcome so far.
    pub fn bus_count(&self, outcome: &'static str) -> u64 {
        self.bus.get_or_create(&[("outcome", outcome)]).get()
    }

    /// A webhook delivery count of one outcome so far.
    pub fn webhook_count(&self, outcome: &'static str) -> u64 {
        self.webhooks.get_or_create(&[("outcome", outcome)]).get()
    }

    /// Records one answered REST request.
    pub fn request(&self, method: &'static str, route: &str, status: u16, took: Duration) {
        let route = route.to_owned();
        self.http_latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(took.as_secs_f64());
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// Records one store operation.
    pub fn operation(&self, operation: &'static str, took: Duration, failed: bool) {
        let labels = OperationLabels { operation };
        self.db_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if failed {
            self.db_errors.get_or_create(&labels).inc();
        }
    }

    /// The running totals the admin page shows, read from the same counters and
    /// gauges `/metrics` renders (no separate bookkeeping).
    pub fn totals(&self) -> Totals {
        let sum = |counters: &[Counter]| counters.iter().map(Counter::get).sum::<u64>();
        let census = self.node.hub.census();
        let sockets = self
            .node
            .gateway
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade()
            .map(|gateway| {
                let stats = gateway.socket_stats();
                stats.counts(false).open + stats.counts(true).open
            });
        Totals {
            sockets,
            sessions_v1: census.v1,
            sessions_v2_attached: census.v2_attached,
            sessions_v2_detached: census.v2_detached,
            published: sum(&self.published),
            deliveries: sum(&self.deliveries),
            outbox_dropped: self.outbox_dropped.get(),
            slow_consumer_closes: self.slow_consumers.get(),
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(16 * 1024);
        if let Err(err) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::error!(error = %err, "metrics not encoded");
        }
        text
    }
}

/// A snapshot of the node's counters: see [`Metrics::totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Open WebSocket connections (`None` before the gateway is watched).
    pub sockets: Option<u64>,
    /// Protocol v1 sessions.
    pub sessions_v1: usize,
    /// Protocol v2 sessions served by a socket.
    pub sessions_v2_attached: usize,
    /// Protocol v2 sessions waiting for a RESUME.
    pub sessions_v2_detached: usize,
    /// Events published by this node since it started.
    pub published: u64,
    /// Frames queued on this node's sessions since it started.
    pub deliveries: u64,
    /// Frames not queued because their session was already closing.
    pub outbox_dropped: u64,
    /// Sessions closed because their outbound queue overflowed.
    pub slow_consumer_closes: u64,
}

/// What the node holds, read at each scrape.
struct NodeCollector {
    hub: Arc<Hub>,
    /// Weak: the gateway's sessions reach the state that holds these metrics.
    gateway: Mutex<Weak<Gateway>>,
    /// The bus to the other nodes, in a cluster.
    bus: Mutex<Option<Arc<dyn concord_bus::Bus>>>,
    started: SystemTime,
}

impl fmt::Debug for NodeCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeCollector").finish_non_exhaustive()
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: &[(&[(&str, &str)], i64)],
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    for (labels, value) in values {
        ConstGauge::new(*value).encode(metric.encode_family(labels)?)?;
    }
    Ok(())
}

fn clamp(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Collector for NodeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let census = self.hub.census();
        gauge(
            &mut encoder,
            "concord_gateway_sessions",
            "Gateway sessions on this node, by protocol and state (attached: served by a socket; detached: waiting for a RESUME)",
            &[
                (
                    &[("protocol", "1"), ("state", "attached")],
                    clamp(census.v1),
                ),
                (
                    &[("protocol", "2"), ("state", "attached")],
                    clamp(census.v2_attached),
                ),
                (
                    &[("protocol", "2"), ("state", "detached")],
                    clamp(census.v2_detached),
                ),
            ],
        )?;
        let gateway = self
            .gateway
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade();
        if let Some(gateway) = gateway {
            let stats = gateway.socket_stats();
            let (v1, v2) = (stats.counts(false), stats.counts(true));
            gauge(
                &mut encoder,
                "concord_gateway_sockets",
                "Open WebSocket connections, identified or not yet, by protocol",
                &[
                    (&[("protocol", "1")], clamp(v1.open)),
                    (&[("protocol", "2")], clamp(v2.open)),
                ],
            )?;
            let mut upgrades = encoder.encode_descriptor(
                "concord_gateway_upgrades",
                "WebSocket upgrades completed, by protocol",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (version, counts) in [("1", v1), ("2", v2)] {
                ConstCounter::new(counts.upgrades)
                    .encode(upgrades.encode_family(&[("protocol", version)])?)?;
            }
            let mut violations = encoder.encode_descriptor(
                "concord_gateway_protocol_closes",
                "WebSocket connections closed for breaking the protocol, by close code (1002 protocol error, 1007 invalid UTF-8, 1009 message too big)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (code, count) in stats.violations() {
                ConstCounter::new(count)
                    .encode(violations.encode_family(&[("code", code.code().to_string())])?)?;
            }
            gauge(
                &mut encoder,
                "concord_gateway_replay_bytes",
                "Bytes held by the replay buffers of v2 sessions",
                &[(&[], clamp(gateway.replay_bytes()))],
            )?;
            let (clients, owned) = (stats.relayed(false), stats.relayed(true));
            gauge(
                &mut encoder,
                "concord_gateway_relayed_sessions",
                "v2 sessions resumed through another node than their own: end=\"client\" this node's clients served elsewhere, end=\"owner\" sessions served here for other nodes' clients",
                &[
                    (&[("end", "client")], clamp(clients)),
                    (&[("end", "owner")], clamp(owned)),
                ],
            )?;
        }
        let bus = self.bus.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(bus) = bus {
            let counts = bus.order_counts();
            let mut order = encoder.encode_descriptor(
                "concord_bus_out_of_order",
                "Messages from other nodes that arrived out of their publisher's order, by \
                 kind: released_early (delivered without a directory change published \
                 before it, after waiting the hold: the change was lost or late), reordered \
                 (an event that came after a later event of the same node, on another \
                 subject; delivered as it came)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (kind, count) in [
                ("released_early", counts.released_early),
                ("reordered", counts.reordered),
            ] {
                ConstCounter::new(count).encode(order.encode_family(&[("kind", kind)])?)?;
            }
            let link = *bus.link().borrow();
            gauge(
                &mut encoder,
                "concord_bus_link_up",
                "Whether this node's link to the broker is up (1) or lost (0: nothing \
                 published meanwhile reaches it)",
                &[(&[], i64::from(!link.cut_off))],
            )?;
            let losses = encoder.encode_descriptor(
                "concord_bus_link_losses",
                "Times this node lost its link to the broker; each time the link came \
                 back, the node started over (directory read again, every session closed \
                 with 1011)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            ConstCounter::new(link.losses).encode(losses)?;
        }
        let dropped = encoder.encode_descriptor(
            "concord_audio_chunks_dropped",
            "Audio chunks dropped from subscribers that fell behind (oldest first)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        ConstCounter::new(
            concord_gateway::AUDIO_CHUNKS_DROPPED.load(std::sync::atomic::Ordering::Relaxed),
        )
        .encode(dropped)?;
        if let Some(bytes) = concord_sys::resident_bytes() {
            gauge(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                &[(&[], clamp(bytes))],
            )?;
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            gauge(
                &mut encoder,
                "process_open_fds",
                "Open file descriptors",
                &[(&[], clamp(entries.count()))],
            )?;
        }
        let started = self
            .started
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            &[(&[], clamp(started.as_secs()))],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_has_its_own_counter() {
        for (at, event) in Event::ALL.into_iter().enumerate() {
            assert_eq!(slot(event), at, "{event:?}");
        }
        let metrics = Metrics::new(Arc::new(Hub::new()));
        metrics.published(Event::MessageCreate);
        metrics.delivered(
            Event::MessageCreate,
            Delivery {
                queued: 3,
                overflowed: 1,
                dropped: 2,
            },
        );
        metrics.frames_delivered(Event::PresenceUpdate, 10);
        let text = metrics.render();
        for line in [
            "concord_events_published_total{event=\"MESSAGE_CREATE\"} 1",
            "concord_events_published_total{event=\"TYPING_START\"} 0",
            "concord_event_deliveries_total{event=\"MESSAGE_CREATE\"} 3",
            "concord_event_deliveries_total{event=\"PRESENCE_UPDATE\"} 10",
            "concord_outbox_dropped_total 2",
            "concord_slow_consumer_closes_total 1",
            "concord_gateway_sessions{protocol=\"1\",state=\"attached\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn requests_and_operations_are_labelled_by_pattern() {
        let metrics = Metrics::new(Arc::new(Hub::new()));
        metrics.request("GET", "/servers/{id}", 200, Duration::from_millis(3));
        metrics.request("GET", "/servers/{id}", 200, Duration::from_millis(5));
        metrics.operation("create_message", Duration::from_micros(700), false);
        metrics.operation("create_message", Duration::from_micros(900), true);
        let text = metrics.render();
        for line in [
            "concord_http_requests_total{method=\"GET\",route=\"/servers/{id}\",status=\"200\"} 2",
            "concord_http_request_duration_seconds_count{method=\"GET\",route=\"/servers/{id}\"} 2",
            "concord_db_operation_duration_seconds_count{operation=\"create_message\"} 2",
            "concord_db_operation_errors_total{operation=\"create_message\"} 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from:\n{text}"
            );
        }
    }
}
