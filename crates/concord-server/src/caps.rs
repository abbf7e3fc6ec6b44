//! Caps on what one client address, or everyone together, may hold open: connections
//! (`limits.connections_per_ip`, `limits.max_connections`) and gateway sessions
//! (`limits.sessions_per_ip`). Each open thing holds a permit; dropping the permit
//! gives its place back, so a connection that ends in any way (an error, a panic in
//! its task, a socket dropped by the gateway) is counted out.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

/// Things open per address, within a cap.
#[derive(Debug)]
pub struct IpCounter {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl IpCounter {
    /// A counter allowing `cap` things per address.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            open: Mutex::default(),
        })
    }

    /// A place for one more thing of `ip`, or `None` when it has `cap` open already.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpPermit> {
        let ip = canonical(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.cap {
            if *count == 0 {
                open.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(IpPermit {
            counter: Arc::clone(self),
            ip,
        })
    }

    /// How many things `ip` has open.
    pub fn count(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// Addresses with something open (the map never keeps an address at zero).
    pub fn addresses(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// An IPv4 client seen on an IPv6 socket (`::ffff:a.b.c.d`) is that IPv4 client.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One place taken in an [`IpCounter`], given back on drop.
#[derive(Debug)]
pub struct IpPermit {
    counter: Arc<IpCounter>,
    ip: IpAddr,
}

impl Drop for IpPermit {
    fn drop(&mut self) {
        self.counter.release(self.ip);
    }
}

/// Things open in all, within a cap.
#[derive(Debug)]
pub struct TotalCounter {
    cap: usize,
    open: AtomicUsize,
}

impl TotalCounter {
    /// A counter allowing `cap` things.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            open: AtomicUsize::new(0),
        })
    }

    /// A place for one more, or `None` at the cap.
    pub fn acquire(self: &Arc<Self>) -> Option<TotalPermit> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.cap).then_some(open + 1)
            })
            .ok()
            .map(|_| TotalPermit {
                counter: Arc::clone(self),
            })
    }

    /// How many are open.
    pub fn count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One place taken in a [`TotalCounter`], given back on drop.
#[derive(Debug)]
pub struct TotalPermit {
    counter: Arc<TotalCounter>,
}

impl Drop for TotalPermit {
    fn drop(&mut self) {
        self.counter.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a connection holds on behalf of what it serves, found in each request's
/// extensions: the gateway upgrade leaves its session permit here, so that the
/// permit lasts as long as the upgraded socket and no longer.
#[derive(Debug, Clone, Default)]
pub struct ConnectionSlot(Arc<Mutex<Option<IpPermit>>>);

impl ConnectionSlot {
    /// Keeps `permit` until the connection closes.
    pub fn hold(&self, permit: IpPermit) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(permit);
    }

    /// Gives back what the connection held (it is closing).
    pub fn release(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_its_places_back() {
        let counter = IpCounter::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = counter.acquire(ip).unwrap();
        let b = counter.acquire(ip).unwrap();
        assert!(counter.acquire(ip).is_none());
        assert!(counter.acquire("192.0.2.2".parse().unwrap()).is_some());
        // The same client on an IPv6 socket.
        assert!(
            counter
                .acquire("::ffff:192.0.2.1".parse().unwrap())
                .is_none()
        );
        drop(a);
        assert_eq!(counter.count(ip), 1);
        let c = counter.acquire(ip).unwrap();
        drop((b, c));
        assert_eq!(counter.count(ip), 0);
        assert_eq!(counter.addresses(), 0, "no address kept at zero");
    }

    #[test]
    fn the_total_is_capped_and_released() {
        let total = TotalCounter::new(1);
        let first = total.acquire().unwrap();
        assert!(total.acquire().is_none());
        drop(first);
        assert!(total.acquire().is_some());
        assert_eq!(total.count(), 0);
    }

    #[test]
    fn a_slot_holds_a_permit_until_released() {
        let counter = IpCounter::new(1);
        let ip: IpAddr = "192.0.2.3".parse().unwrap();
        let slot = ConnectionSlot::default();
        slot.hold(counter.acquire(ip).unwrap());
        assert!(counter.acquire(ip).is_none());
        slot.clone().release();
        assert!(counter.acquire(ip).is_some());
    }
}
