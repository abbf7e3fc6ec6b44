//! Reconnect backoff with "full jitter" (each delay uniform in `[0, bound]`, the bound
//! doubling per attempt up to a cap) and the small random source it needs.

use std::time::Duration;

/// A fast non-cryptographic generator (SplitMix64). The bench only needs spread, not
/// secrecy, and one per task avoids sharing a lock on the hot path.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    #[cfg(test)]
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// Seeded from the clock and `salt` so tasks started together still differ.
    pub(crate) fn from_entropy(salt: u64) -> Self {
        let mut rng = Self(crate::content::now_ns() ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.next_u64();
        rng
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..=max`.
    pub(crate) fn below_inclusive(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        // Multiply-shift keeps the bias negligible for the ranges used here.
        let wide = u128::from(self.next_u64()) * u128::from(max + 1);
        u64::try_from(wide >> 64).unwrap_or(max)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.below_inclusive(n.saturating_sub(1))
    }

    /// A short lowercase alphanumeric id.
    pub(crate) fn id(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        (0..len)
            .map(|_| {
                let i = usize::try_from(self.below(ALPHABET.len() as u64)).unwrap_or(0);
                char::from(ALPHABET[i])
            })
            .collect()
    }
}

/// Full-jitter exponential backoff: attempt `k` (0-based) waits a uniform delay in
/// `[0, min(cap, base * 2^k)]` before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) base: Duration,
    pub(crate) cap: Duration,
}

impl Backoff {
    /// The largest delay attempt `attempt` may wait.
    pub(crate) fn bound(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay before attempt `attempt`.
    pub(crate) fn delay(&self, attempt: u32, rng: &mut Rng) -> Duration {
        let bound = u64::try_from(self.bound(attempt).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.below_inclusive(bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web_client() -> Backoff {
        Backoff {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        }
    }

    #[test]
    fn bound_doubles_then_caps() {
        let b = web_client();
        let bounds: Vec<u64> = (0..8).map(|k| b.bound(k).as_secs()).collect();
        assert_eq!(bounds, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.bound(200), Duration::from_secs(30), "no overflow");
    }

    #[test]
    fn delays_stay_within_bounds_and_spread() {
        let b = web_client();
        let mut rng = Rng::new(7);
        for attempt in 0..12 {
            let bound = b.bound(attempt);
            let delays: Vec<Duration> = (0..2000).map(|_| b.delay(attempt, &mut rng)).collect();
            assert!(delays.iter().all(|d| *d <= bound));
            // Full jitter: some delays in the lowest and some in the highest tenth.
            let tenth = bound / 10;
            assert!(delays.iter().any(|d| *d < tenth), "attempt {attempt}");
            assert!(
                delays.iter().any(|d| *d > bound - tenth),
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn rng_ranges() {
        let mut rng = Rng::new(1);
        assert!((0..1000).all(|_| rng.below(3) < 3));
        assert!((0..1000).all(|_| rng.below_inclusive(0) == 0));
        let seen: std::collections::HashSet<u64> = (0..1000).map(|_| rng.below(4)).collect();
        assert_eq!(seen.len(), 4);
        let id = rng.id(8);
        assert_eq!(id.len(), 8);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
    }
}
