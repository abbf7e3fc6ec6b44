//! Once-a-minute chores: forgetting idle rate-limit buckets, and handing the
//! allocator's free memory back to the OS after a burst. Once a second: indexing the
//! messages posted since for search.

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use crate::limiter::Limiters;

/// How often the chores run.
const EVERY: Duration = Duration::from_secs(60);

/// Growth over the resident size left by the last release that is worth another one.
const SLACK_BYTES: u64 = 32 << 20;

/// When to hand free memory back: once a burst is over, not on every tick.
///
/// glibc keeps what was freed inside its arenas, so a reconnect storm's peak (10k
/// upgrades and READYs in flight) stays resident after the storm: 244 MB against
/// 42 MB once released (BENCHMARKS.md). Releasing walks and locks every arena, which
/// took ~100 ms on a busy 2-core server at N=10k, so it is done only when the resident
/// size has grown well past what the last release left (by 32 MB and a quarter) and
/// has stopped growing since the previous tick: the burst is over.
#[derive(Debug, Default)]
pub(crate) struct ReleasePolicy {
    previous: Option<u64>,
    after_release: Option<u64>,
}

impl ReleasePolicy {
    /// Whether to release now, given the resident size `rss`; records the reading.
    pub(crate) fn due(&mut self, rss: u64) -> bool {
        let previous = self.previous.replace(rss);
        let Some(floor) = self.after_release else {
            self.after_release = Some(rss);
            return false;
        };
        if rss < floor {
            // Memory went back on its own: measure growth from here.
            self.after_release = Some(rss);
            return false;
        }
        let grown = rss - floor > SLACK_BYTES.max(floor / 4);
        let settled = previous.is_some_and(|p| rss <= p + p / 16);
        grown && settled
    }

    /// Records the resident size a release left.
    pub(crate) fn released(&mut self, rss: u64) {
        self.after_release = Some(rss);
        self.previous = Some(rss);
    }
}

/// Starts the chores; abort the handle to stop them.
pub(crate) fn spawn(limiters: Arc<Limiters>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        // "Stopped growing" compares readings a minute apart: missed ticks are not
        // made up in a burst.
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut policy = ReleasePolicy::default();
        loop {
            tick.tick().await;
            limiters.prune();
            if let Some(rss) = concord_sys::resident_bytes()
                && policy.due(rss)
            {
                release_free_memory(&mut policy, rss).await;
            }
        }
    })
}

/// How often new messages are indexed for search.
const INDEX_EVERY: Duration = Duration::from_secs(1);

/// Messages indexed per transaction: large enough that FTS5 costs a few µs a message,
/// small enough that the write lock is held for milliseconds.
const INDEX_BATCH: i64 = 500;

/// Starts the search indexer: every [`INDEX_EVERY`], the messages posted since are
/// indexed in batches, off the posting path (a search catches up by itself too).
/// Abort the handle to stop it.
pub(crate) fn spawn_search_indexer(store: Arc<dyn concord_store::Store>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INDEX_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                match store.flush_search_index(INDEX_BATCH).await {
                    Ok(done) if done == INDEX_BATCH as u64 => {}
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "search indexing failed; retried in a second");
                        break;
                    }
                }
            }
        }
    })
}

/// Hands the allocator's free memory back to the OS on a blocking thread.
async fn release_free_memory(policy: &mut ReleasePolicy, before: u64) {
    let started = std::time::Instant::now();
    match tokio::task::spawn_blocking(concord_sys::release_free_memory).await {
        Ok(released) => {
            let after = concord_sys::resident_bytes().unwrap_or(before);
            policy.released(after);
            tracing::info!(
                released,
                resident_before_mb = before >> 20,
                resident_after_mb = after >> 20,
                millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "free memory handed back to the OS"
            );
        }
        Err(err) => tracing::warn!(error = %err, "handing free memory back failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn the_first_reading_sets_the_floor() {
        let mut policy = ReleasePolicy::default();
        assert!(!policy.due(500 * MB));
        assert!(!policy.due(500 * MB), "no growth since");
    }

    #[test]
    fn a_burst_is_released_once_it_has_stopped_growing() {
        let mut policy = ReleasePolicy::default();
        assert!(!policy.due(60 * MB));
        assert!(!policy.due(150 * MB), "still growing");
        assert!(!policy.due(240 * MB), "still growing");
        assert!(policy.due(244 * MB), "settled, well above the floor");
        policy.released(42 * MB);
        assert!(!policy.due(43 * MB), "steady after the release");
        assert!(!policy.due(45 * MB));
    }

    #[test]
    fn small_growth_is_left_alone() {
        let mut policy = ReleasePolicy::default();
        assert!(!policy.due(60 * MB));
        assert!(!policy.due(85 * MB), "25 MB: under the 32 MB slack");
        assert!(!policy.due(85 * MB));
        // At 1 GB the slack is a quarter, 256 MB.
        let mut big = ReleasePolicy::default();
        assert!(!big.due(1024 * MB));
        assert!(!big.due(1200 * MB));
        assert!(!big.due(1200 * MB), "176 MB is under a quarter of 1 GB");
        assert!(!big.due(1400 * MB), "growing");
        assert!(big.due(1400 * MB));
    }

    #[test]
    fn memory_that_went_back_on_its_own_lowers_the_floor() {
        let mut policy = ReleasePolicy::default();
        assert!(!policy.due(200 * MB));
        assert!(!policy.due(50 * MB));
        assert!(!policy.due(120 * MB), "growing from the new floor");
        assert!(policy.due(120 * MB), "70 MB over the 50 MB floor, settled");
    }
}
