//! The arithmetic of a run: latency histograms and their percentiles, which
//! messages each connection got, how many were lost, and send pacing.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency a histogram tracks, µs (ten minutes); larger values are clamped
/// and show up as a `max` of exactly this. The bound sets the histogram's size.
const MAX_TRACKED_US: u64 = 600_000_000;

/// A latency histogram in µs with 3 significant digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKED_US, 3).expect("static histogram bounds are valid")
}

/// Records `value_us`, clamped into the tracked range.
pub(crate) fn record(hist: &mut Histogram<u64>, value_us: u64) {
    let _ = hist.record(value_us.clamp(1, MAX_TRACKED_US));
}

/// A histogram as `(value, count)` pairs: how workers ship theirs to the parent.
pub(crate) fn histogram_to_pairs(hist: &Histogram<u64>) -> Vec<(u64, u64)> {
    hist.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Adds shipped `(value, count)` pairs into `hist`.
pub(crate) fn add_pairs(hist: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for &(value, count) in pairs {
        let _ = hist.record_n(value.clamp(1, MAX_TRACKED_US), count);
    }
}

/// The figures reported for a latency distribution, µs.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub(crate) struct Percentiles {
    pub(crate) count: u64,
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) p999: u64,
    pub(crate) max: u64,
    pub(crate) mean: u64,
}

impl Percentiles {
    pub(crate) fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        Self {
            count: hist.len(),
            p50: hist.value_at_quantile(0.5),
            p99: hist.value_at_quantile(0.99),
            p999: hist.value_at_quantile(0.999),
            max: hist.max(),
            mean: hist.mean().round() as u64,
        }
    }
}

/// Median and maximum of a small sample (e.g. a handful of "one message to all"
/// probes); `None` when empty. The median of an even count is the lower middle.
pub(crate) fn median_max(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some((sorted[(sorted.len() - 1) / 2], sorted[sorted.len() - 1]))
}

/// A fixed-size set of message sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Bitmap {
    words: Vec<u64>,
    len: usize,
}

impl Bitmap {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    /// All of `0..len` set.
    #[cfg(test)]
    pub(crate) fn full(len: usize) -> Self {
        let mut map = Self::new(len);
        for i in 0..len {
            map.insert(i);
        }
        map
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Sets `i`; true if it was not set before. Out of range is ignored (false).
    pub(crate) fn insert(&mut self, i: usize) -> bool {
        if i >= self.len {
            return false;
        }
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        fresh
    }

    pub(crate) fn remove(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] &= !(1u64 << (i % 64));
        }
    }

    pub(crate) fn contains(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] & (1u64 << (i % 64)) != 0
    }

    pub(crate) fn count(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    /// How many members of `self` are also in `other`.
    pub(crate) fn count_common(&self, other: &Bitmap) -> u64 {
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| u64::from((a & b).count_ones()))
            .sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.contains(i))
    }
}

/// When each message was posted: the POST's start and the arrival of its answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MessageTable {
    pub(crate) post_start_ns: Vec<u64>,
    pub(crate) post_end_ns: Vec<u64>,
    /// Messages the server accepted (2xx): the only ones anybody should receive.
    pub(crate) accepted: Bitmap,
}

impl MessageTable {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            post_start_ns: vec![0; len],
            post_end_ns: vec![0; len],
            accepted: Bitmap::new(len),
        }
    }
}

/// One gateway session of a connection: from READY until it ended, and what it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionLog {
    pub(crate) ready_ns: u64,
    pub(crate) got: Bitmap,
}

/// A connection's misses, split by whether they are provably the server's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Misses {
    /// Accepted messages this connection never received although a session was live
    /// before the message was posted and that same session later received a message
    /// posted after this one had been acknowledged. The server dispatches before it
    /// answers the POST and each session is FIFO, so these were lost while connected.
    pub(crate) lost_while_connected: u64,
    /// The other misses: posted while disconnected, or too close to a disconnect to
    /// tell (v1 has no resume, so such losses are expected).
    pub(crate) missed_around_disconnects: u64,
}

impl Misses {
    pub(crate) fn add(&mut self, other: Misses) {
        self.lost_while_connected += other.lost_while_connected;
        self.missed_around_disconnects += other.missed_around_disconnects;
    }
}

/// Classifies the accepted messages a connection never received over all its sessions.
pub(crate) fn classify_misses(sessions: &[SessionLog], table: &MessageTable) -> Misses {
    let len = table.accepted.len();
    let mut union = Bitmap::new(len);
    // For each session: the latest POST start among what it received. Anything
    // acknowledged before that POST began must have been queued ahead of it.
    let horizons: Vec<(u64, u64)> = sessions
        .iter()
        .map(|s| {
            let newest_start = s
                .got
                .iter()
                .map(|i| table.post_start_ns.get(i).copied().unwrap_or(0))
                .max()
                .unwrap_or(0);
            (s.ready_ns, newest_start)
        })
        .collect();
    for s in sessions {
        for i in s.got.iter() {
            union.insert(i);
        }
    }
    let mut misses = Misses::default();
    for m in table.accepted.iter() {
        if union.contains(m) {
            continue;
        }
        let (start, end) = (table.post_start_ns[m], table.post_end_ns[m]);
        let provable = horizons
            .iter()
            .any(|&(ready, newest)| ready <= start && end <= newest);
        if provable {
            misses.lost_while_connected += 1;
        } else {
            misses.missed_around_disconnects += 1;
        }
    }
    misses
}

/// Spreads `rate` sends per second evenly from a start instant: how many should have
/// gone out after `elapsed_secs`. A rate of 0 means "no pacing".
pub(crate) fn due(rate: f64, elapsed_secs: f64, total: u64) -> u64 {
    if rate <= 0.0 {
        return total;
    }
    let due = (rate * elapsed_secs).floor() as u64 + 1;
    due.min(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut hist = new_histogram();
        for v in 1..=1000 {
            record(&mut hist, v);
        }
        let p = Percentiles::of(&hist);
        assert_eq!(p.count, 1000);
        assert_eq!(p.p50, 500);
        assert_eq!(p.p99, 990);
        assert_eq!(p.p999, 999);
        assert_eq!(p.max, 1000);
        assert_eq!(p.mean, 501, "500.5 rounds up");
        assert_eq!(Percentiles::of(&new_histogram()), Percentiles::default());
    }

    #[test]
    fn percentiles_keep_three_significant_digits_for_large_values() {
        let mut hist = new_histogram();
        record(&mut hist, 1_234_567);
        let p = Percentiles::of(&hist);
        assert!(p.max.abs_diff(1_234_567) <= 1_234_567 / 1000);
        record(&mut hist, 0);
        record(&mut hist, u64::MAX);
        assert_eq!(
            hist.len(),
            3,
            "out-of-range values are clamped, not dropped"
        );
    }

    #[test]
    fn histograms_survive_shipping() {
        let mut a = new_histogram();
        for v in [10, 20, 20, 30_000] {
            record(&mut a, v);
        }
        let mut b = new_histogram();
        record(&mut b, 5);
        add_pairs(&mut b, &histogram_to_pairs(&a));
        assert_eq!(b.len(), 5);
        assert_eq!(b.min(), 5);
        assert_eq!(b.count_at(20), 2);
        assert!(b.max().abs_diff(30_000) <= 30);
    }

    #[test]
    fn median_and_max() {
        assert_eq!(median_max(&[]), None);
        assert_eq!(median_max(&[3.0]), Some((3.0, 3.0)));
        assert_eq!(median_max(&[9.0, 1.0, 5.0]), Some((5.0, 9.0)));
        assert_eq!(median_max(&[4.0, 1.0, 3.0, 2.0]), Some((2.0, 4.0)));
    }

    #[test]
    fn bitmap_counts() {
        let mut a = Bitmap::new(130);
        assert!(a.insert(0));
        assert!(a.insert(64));
        assert!(a.insert(129));
        assert!(!a.insert(129), "second insert is not fresh");
        assert!(!a.insert(130), "out of range");
        assert_eq!(a.count(), 3);
        assert!(a.contains(64) && !a.contains(65) && !a.contains(1000));
        let mut b = Bitmap::full(130);
        assert_eq!(b.count(), 130);
        b.remove(64);
        assert_eq!(a.count_common(&b), 2);
        assert_eq!(a.iter().collect::<Vec<_>>(), [0, 64, 129]);
    }

    fn table(times: &[(u64, u64)]) -> MessageTable {
        let mut t = MessageTable::new(times.len());
        for (i, &(s, e)) in times.iter().enumerate() {
            t.post_start_ns[i] = s;
            t.post_end_ns[i] = e;
            t.accepted.insert(i);
        }
        t
    }

    fn session(ready_ns: u64, len: usize, got: &[usize]) -> SessionLog {
        let mut map = Bitmap::new(len);
        for &i in got {
            map.insert(i);
        }
        SessionLog { ready_ns, got: map }
    }

    #[test]
    fn misses_of_a_connection_that_never_dropped_are_losses() {
        // Messages posted one after another at t = 10, 20, 30, 40.
        let t = table(&[(10, 15), (20, 25), (30, 35), (40, 45)]);
        let s = [session(0, 4, &[0, 2, 3])];
        let m = classify_misses(&s, &t);
        assert_eq!(
            m.lost_while_connected, 1,
            "message 1 was skipped in a live session"
        );
        assert_eq!(m.missed_around_disconnects, 0);
    }

    #[test]
    fn misses_around_a_reconnect_are_not_losses() {
        let t = table(&[(10, 15), (20, 25), (30, 35), (40, 45)]);
        // Session 1 got message 0 and dropped; session 2 became ready at 32.
        let s = [session(0, 4, &[0]), session(32, 4, &[3])];
        let m = classify_misses(&s, &t);
        assert_eq!(m.lost_while_connected, 0);
        assert_eq!(m.missed_around_disconnects, 2, "1 and 2 fell in the gap");
    }

    #[test]
    fn tail_misses_and_concurrent_posts_are_not_provable() {
        // Messages 0 and 1 were in flight together: 1 may be dispatched first.
        let t = table(&[(10, 30), (12, 20), (40, 45)]);
        let s = [session(0, 3, &[1])];
        let m = classify_misses(&s, &t);
        assert_eq!(m.lost_while_connected, 0);
        assert_eq!(m.missed_around_disconnects, 2);
        // A session that got the last message proves both earlier ones lost.
        let s = [session(0, 3, &[2])];
        assert_eq!(classify_misses(&s, &t).lost_while_connected, 2);
    }

    #[test]
    fn rejected_posts_are_not_expected() {
        let mut t = table(&[(10, 15), (20, 25)]);
        t.accepted.remove(0);
        let s = [session(0, 2, &[1])];
        assert_eq!(classify_misses(&s, &t), Misses::default());
    }

    #[test]
    fn pacing() {
        assert_eq!(due(0.0, 0.0, 50), 50, "unpaced: everything at once");
        assert_eq!(due(10.0, 0.0, 50), 1, "the first send goes at once");
        assert_eq!(due(10.0, 0.45, 50), 5);
        assert_eq!(due(10.0, 100.0, 50), 50, "never more than the total");
    }
}
