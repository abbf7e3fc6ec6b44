//! What a node's gateway counts for its operator: upgrades and open sockets by
//! protocol version, connections relayed between nodes, and sockets closed for
//! breaking the protocol. Plain atomics, read when metrics are scraped; nothing here is on
//! the delivery path.

use std::sync::{
    Arc,
    atomic::{AtomicI64, AtomicU64, Ordering},
};

use concord_protocol::CloseCode;

/// Protocol versions the counters are kept for, in index order: v1, v2.
const VERSIONS: usize = 2;

/// Counters of one gateway endpoint.
#[derive(Debug, Default)]
pub struct SocketStats {
    upgrades: [AtomicU64; VERSIONS],
    open: [AtomicI64; VERSIONS],
    /// v2 connections relayed now: this node's clients whose session another node
    /// serves, and sessions served here for other nodes' clients.
    relayed: [AtomicI64; 2],
    violations: [AtomicU64; PROTOCOL_VIOLATIONS.len()],
}

/// The closes counted as protocol violations, in index order.
pub const PROTOCOL_VIOLATIONS: [CloseCode; 3] = [
    CloseCode::ProtocolError,
    CloseCode::InvalidData,
    CloseCode::TooBig,
];

/// A snapshot of [`SocketStats`] for one protocol version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounts {
    /// Upgrades completed since start.
    pub upgrades: u64,
    /// WebSocket connections open now (identified or not yet).
    pub open: u64,
}

impl SocketStats {
    /// Counts an upgraded socket of protocol `v2` or v1; it counts as open until the
    /// returned guard drops.
    pub(crate) fn opened(self: &Arc<Self>, v2: bool) -> OpenSocket {
        let at = usize::from(v2);
        self.upgrades[at].fetch_add(1, Ordering::Relaxed);
        self.open[at].fetch_add(1, Ordering::Relaxed);
        OpenSocket {
            stats: Arc::clone(self),
            v2,
        }
    }

    /// Counts a relayed connection, on the session's node (`owner`) or the client's,
    /// until the returned guard drops.
    pub(crate) fn relaying(self: &Arc<Self>, owner: bool) -> Relaying {
        self.relayed[usize::from(owner)].fetch_add(1, Ordering::Relaxed);
        Relaying {
            stats: Arc::clone(self),
            owner,
        }
    }

    /// Relayed connections open now: sessions served here for other nodes' clients
    /// (`owner`), or this node's clients whose session another node serves.
    pub fn relayed(&self, owner: bool) -> u64 {
        u64::try_from(self.relayed[usize::from(owner)].load(Ordering::Relaxed)).unwrap_or(0)
    }

    /// Counts a socket closed with `code` for breaking the protocol (one of
    /// [`PROTOCOL_VIOLATIONS`]; other codes are not counted here).
    pub fn violation(&self, code: CloseCode) {
        if let Some(at) = PROTOCOL_VIOLATIONS.iter().position(|c| *c == code) {
            self.violations[at].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sockets closed for each of [`PROTOCOL_VIOLATIONS`] since start.
    pub fn violations(&self) -> [(CloseCode, u64); PROTOCOL_VIOLATIONS.len()] {
        std::array::from_fn(|at| {
            (
                PROTOCOL_VIOLATIONS[at],
                self.violations[at].load(Ordering::Relaxed),
            )
        })
    }

    /// The counts of protocol v1 (`false`) or v2 (`true`).
    pub fn counts(&self, v2: bool) -> SocketCounts {
        let at = usize::from(v2);
        SocketCounts {
            upgrades: self.upgrades[at].load(Ordering::Relaxed),
            open: u64::try_from(self.open[at].load(Ordering::Relaxed)).unwrap_or(0),
        }
    }
}

/// An open socket's place in [`SocketStats`]; dropping it closes the place.
#[derive(Debug)]
pub struct OpenSocket {
    stats: Arc<SocketStats>,
    v2: bool,
}

impl OpenSocket {
    /// Counts this socket's close for breaking the protocol.
    pub(crate) fn violation(&self, code: CloseCode) {
        self.stats.violation(code);
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.stats.open[usize::from(self.v2)].fetch_sub(1, Ordering::Relaxed);
    }
}

/// A relayed connection's place in [`SocketStats`]; dropping it closes the place.
#[derive(Debug)]
pub(crate) struct Relaying {
    stats: Arc<SocketStats>,
    owner: bool,
}

impl Drop for Relaying {
    fn drop(&mut self) {
        self.stats.relayed[usize::from(self.owner)].fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_is_open_until_its_guard_drops() {
        let stats = Arc::new(SocketStats::default());
        let a = stats.opened(true);
        let b = stats.opened(true);
        let c = stats.opened(false);
        assert_eq!(
            stats.counts(true),
            SocketCounts {
                upgrades: 2,
                open: 2
            }
        );
        assert_eq!(
            stats.counts(false),
            SocketCounts {
                upgrades: 1,
                open: 1
            }
        );
        drop(a);
        drop(c);
        assert_eq!(
            stats.counts(true),
            SocketCounts {
                upgrades: 2,
                open: 1
            }
        );
        assert_eq!(
            stats.counts(false),
            SocketCounts {
                upgrades: 1,
                open: 0
            }
        );
        drop(b);
        assert_eq!(stats.counts(true).open, 0);
    }

    #[test]
    fn a_relay_counts_on_its_end_until_its_guard_drops() {
        let stats = Arc::new(SocketStats::default());
        let client = stats.relaying(false);
        let owner = stats.relaying(true);
        let other = stats.relaying(true);
        assert_eq!((stats.relayed(false), stats.relayed(true)), (1, 2));
        drop(owner);
        drop(client);
        assert_eq!((stats.relayed(false), stats.relayed(true)), (0, 1));
        drop(other);
        assert_eq!(stats.relayed(true), 0);
    }

    #[test]
    fn violations_are_counted_by_code() {
        let stats = SocketStats::default();
        stats.violation(CloseCode::InvalidData);
        stats.violation(CloseCode::InvalidData);
        stats.violation(CloseCode::ProtocolError);
        // Not a violation: not counted.
        stats.violation(CloseCode::Normal);
        assert_eq!(
            stats.violations(),
            [
                (CloseCode::ProtocolError, 1),
                (CloseCode::InvalidData, 2),
                (CloseCode::TooBig, 0)
            ]
        );
    }
}
