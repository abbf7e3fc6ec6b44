//! The inbound rate limit: at most N counted frames in any rolling window.

use std::collections::VecDeque;

use tokio::time::{Duration, Instant};

/// A rolling-window counter. Frames refused are not counted (`gateway.md` §5).
#[derive(Debug)]
pub struct RateWindow {
    max: usize,
    window: Duration,
    accepted: VecDeque<Instant>,
}

impl RateWindow {
    /// At most `max` frames per `window`.
    pub fn new(max: usize, window: Duration) -> Self {
        Self {
            max,
            window,
            // Allocated on the first counted frame: most sessions (bots listening,
            // idle tabs) send nothing but heartbeats now and then.
            accepted: VecDeque::new(),
        }
    }

    /// Counts a frame arriving at `now` if the window has room; false means drop it.
    pub fn allow(&mut self, now: Instant) -> bool {
        while let Some(&oldest) = self.accepted.front() {
            if now.duration_since(oldest) >= self.window {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
        if self.accepted.len() < self.max {
            self.accepted.push_back(now);
            true
        } else {
            false
        }
    }

    /// How long until a frame would be allowed again (zero when it would be now).
    pub fn retry_after(&self, now: Instant) -> Duration {
        if self.accepted.len() < self.max {
            return Duration::ZERO;
        }
        self.accepted.front().map_or(Duration::ZERO, |&oldest| {
            (oldest + self.window).saturating_duration_since(now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn twenty_per_rolling_second_and_refusals_are_not_counted() {
        let mut rate = RateWindow::new(20, Duration::from_secs(1));
        for _ in 0..20 {
            assert!(rate.allow(Instant::now()));
        }
        assert!(!rate.allow(Instant::now()));
        tokio::time::advance(Duration::from_millis(500)).await;
        // Still inside the window of the first twenty; refusals don't extend it.
        for _ in 0..50 {
            assert!(!rate.allow(Instant::now()));
        }
        assert_eq!(rate.retry_after(Instant::now()), Duration::from_millis(500));
        tokio::time::advance(Duration::from_millis(500)).await;
        for _ in 0..20 {
            assert!(rate.allow(Instant::now()));
        }
        assert!(!rate.allow(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn window_rolls_frame_by_frame() {
        let mut rate = RateWindow::new(2, Duration::from_secs(1));
        assert!(rate.allow(Instant::now()));
        tokio::time::advance(Duration::from_millis(600)).await;
        assert!(rate.allow(Instant::now()));
        assert!(!rate.allow(Instant::now()));
        tokio::time::advance(Duration::from_millis(400)).await;
        // The first frame left the window; the second has not.
        assert!(rate.allow(Instant::now()));
        assert!(!rate.allow(Instant::now()));
    }
}
