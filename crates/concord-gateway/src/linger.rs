//! How long a busy session holds its next write back: the write linger, adapted to
//! how long the session's frames already wait for its task.
//!
//! A write costs several times a frame's own share (the system call and the TCP
//! transmit; on loopback the peer's receive too), so frames that share a write are
//! cheaper. A fixed linger is a trade. Long enough to gather many frames when the
//! server is saturated, it would also hold back every message of a busy session on a
//! server that keeps up; short enough for that, it gathers nothing under saturation,
//! where a session's task runs only once per pass over the run queue and the linger is
//! over before the task comes round. So each session keeps its own:
//!
//! - **Nothing piled up** (the write takes a single push): lingering only delayed it.
//!   Back to the floor at once.
//! - **Frames piled up (three pushes or more) and waited long for the task**
//!   (`waited`, from the push that found the queue empty to the task running; the
//!   queue notes that time only for a session whose previous write held two or more
//!   pushes, so an idle session's push costs no clock read): the server is behind.
//!   The linger rises, doubling per write, to `GAIN` times that wait, within the
//!   ceiling: only a linger longer than the wait gathers more than the wait already
//!   does, and every write it saves is CPU given back to the pass over the run queue.
//! - **Frames piled up but the task came round quickly, or only two pushes**: the
//!   server keeps up (two pushes are what a session late in the order of each burst
//!   gathers on a server that keeps up; lingering there would only add the linger to
//!   its latency). The linger falls a quarter of the way towards its target per write,
//!   so it settles where it keeps the server just caught up instead of swinging
//!   between the bounds.
//!
//! An idle session writes at once whatever its linger (the linger counts from its last
//! write), so only sessions receiving more than one frame per linger ever wait. One
//! wait is left on purpose: when a saturated spell ends, a session's first message
//! within its raised linger of its last write waits out that linger (the ceiling at
//! most), once; the write of that lone push brings the linger back to the floor.
//! Letting a lone push wait only the floor was measured in two forms (BENCHMARKS.md):
//! on a saturated server a session whose task comes round early finds a lone push too,
//! and the extra writes cost 7–10 % more CPU per delivery in fan-out there, and a
//! quarter to a third more under churn.

use std::time::Duration;

/// How many times the wait the linger rises to.
const GAIN: u64 = 4;

/// Pushes gathered in one write that show frames piling up.
const PILED_UP: usize = 3;

/// The first step up from a zero linger, in microseconds.
const STEP_US: u32 = 5_000;

/// One session's write linger, between a floor and a ceiling. Kept in microseconds
/// (12 bytes, not three `Duration`s' 48): it lives in every session's task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Linger {
    floor: u32,
    ceiling: u32,
    now: u32,
}

/// Microseconds, saturating at `u32::MAX` (71 minutes: no linger comes near).
fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Linger {
    /// Starts at `floor`; never above `ceiling` (a ceiling below the floor is the floor:
    /// a fixed linger).
    pub(crate) fn new(floor: Duration, ceiling: Duration) -> Self {
        let floor = micros(floor);
        Self {
            floor,
            ceiling: micros(ceiling).max(floor),
            now: floor,
        }
    }

    /// The least time between two writes now.
    pub(crate) fn get(&self) -> Duration {
        Duration::from_micros(u64::from(self.now))
    }

    /// Adapts to one write: `entries` pushes gathered in it, the oldest of which
    /// waited `waited` for the session's task (zero when unknown).
    pub(crate) fn observe(&mut self, entries: usize, waited: Duration) {
        if entries < 2 {
            self.now = self.floor;
            return;
        }
        // Two pushes are what a server that keeps up gives a session that is merely
        // late in the order of a burst (the previous message and this one, or a
        // message and a heartbeat's reply): they pull the linger down, not up. Three
        // or more mean frames arrive faster than the session's writes go out.
        let target = if entries >= PILED_UP {
            let waited = u64::from(micros(waited));
            u32::try_from(waited * GAIN)
                .unwrap_or(u32::MAX)
                .clamp(self.floor, self.ceiling)
        } else {
            self.floor
        };
        if target >= self.now {
            // Doubling steps: a saturated server gets there within a few writes, and
            // one late write (a heartbeat's reply beside a message, say) moves it
            // little.
            self.now = target.min(self.now.saturating_mul(2).max(STEP_US));
        } else {
            self.now -= (self.now - target) / 4;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn rises_in_doubling_steps_to_gain_times_the_wait_within_the_ceiling() {
        let mut linger = Linger::new(20 * MS, 250 * MS);
        assert_eq!(linger.get(), 20 * MS);
        // Target 4 × 30 = 120 ms: 40, 80, then 120.
        for expected in [40, 80, 120, 120] {
            linger.observe(3, 30 * MS);
            assert_eq!(linger.get(), expected * MS);
        }
        for expected in [240, 250, 250] {
            linger.observe(3, 400 * MS);
            assert_eq!(linger.get(), expected * MS, "capped");
        }
    }

    #[test]
    fn falls_a_quarter_of_the_way_while_the_server_keeps_up() {
        let mut linger = Linger::new(20 * MS, 250 * MS);
        for _ in 0..4 {
            linger.observe(5, 200 * MS);
        }
        assert_eq!(linger.get(), 250 * MS);
        // Waited 1 ms: the target is the floor, 230 ms below.
        linger.observe(5, MS);
        assert_eq!(linger.get(), Duration::from_micros(192_500));
        let mut previous = linger.get();
        for _ in 0..40 {
            linger.observe(5, MS);
            assert!(linger.get() <= previous);
            assert!(linger.get() >= 20 * MS);
            previous = linger.get();
        }
        assert!(
            linger.get() < 21 * MS,
            "settles at the floor: {:?}",
            linger.get()
        );
        // A wait in between pulls it up again, towards that wait's target only.
        linger.observe(3, 10 * MS);
        assert_eq!(linger.get(), 40 * MS);
    }

    #[test]
    fn two_pushes_pull_it_down_however_long_they_waited() {
        let mut linger = Linger::new(20 * MS, 250 * MS);
        linger.observe(2, 200 * MS);
        assert_eq!(linger.get(), 20 * MS, "never up");
        for _ in 0..3 {
            linger.observe(4, 200 * MS);
        }
        assert_eq!(linger.get(), 160 * MS);
        linger.observe(2, 200 * MS);
        assert_eq!(linger.get(), 125 * MS, "a quarter of the way to the floor");
    }

    #[test]
    fn a_write_of_one_push_goes_back_to_the_floor() {
        let mut linger = Linger::new(20 * MS, 250 * MS);
        linger.observe(8, 100 * MS);
        assert_eq!(linger.get(), 40 * MS);
        linger.observe(1, 100 * MS);
        assert_eq!(linger.get(), 20 * MS);
        linger.observe(0, Duration::ZERO);
        assert_eq!(linger.get(), 20 * MS);
    }

    #[test]
    fn from_a_zero_floor_the_first_step_is_five_milliseconds() {
        let mut linger = Linger::new(Duration::ZERO, 100 * MS);
        for expected in [5, 10, 20, 40, 80, 100] {
            linger.observe(3, 50 * MS);
            assert_eq!(linger.get(), expected * MS);
        }
    }

    #[test]
    fn a_ceiling_at_or_below_the_floor_fixes_the_linger() {
        for ceiling in [20 * MS, 5 * MS] {
            let mut linger = Linger::new(20 * MS, ceiling);
            linger.observe(10, Duration::from_secs(5));
            assert_eq!(linger.get(), 20 * MS);
        }
        let mut none = Linger::new(Duration::ZERO, Duration::ZERO);
        none.observe(10, Duration::from_secs(5));
        assert_eq!(none.get(), Duration::ZERO);
    }
}
