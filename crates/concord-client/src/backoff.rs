//! The reconnect delay: exponential backoff with full jitter.

use std::time::Duration;

use rand::Rng;

/// Exponential backoff with full jitter: before the `n`th attempt in a row (from 1)
/// the delay is uniform in `0..=min(cap, base × 2^(n-1))`. The defaults are
/// `extensions.md`'s: from 1 s, capped at 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first attempt's delay.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The ceiling of attempt `attempt` (1 for the first): `min(cap, base × 2^(attempt-1))`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use concord_client::Backoff;
    ///
    /// let backoff = Backoff::default();
    /// assert_eq!(backoff.ceiling(1), Duration::from_secs(1));
    /// assert_eq!(backoff.ceiling(4), Duration::from_secs(8));
    /// assert_eq!(backoff.ceiling(9), Duration::from_secs(30));
    /// ```
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1 << doublings)
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// A delay for attempt `attempt`, uniform in `0..=ceiling(attempt)`.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn ceilings_double_from_the_base_up_to_the_cap() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=8).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let b = Backoff::default();
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(6, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(30)));
        // Full jitter spreads over the whole range, not around the ceiling.
        assert!(delays.iter().any(|d| *d < Duration::from_secs(10)));
        assert!(delays.iter().any(|d| *d > Duration::from_secs(20)));
    }
}
