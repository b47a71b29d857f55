//! Deadlines on the runtime timer's grid, so that a sleep wakes the thread once instead of twice.
//!
//! tokio's timer is a wheel of 64 slots per level that ticks in milliseconds from the moment the
//! runtime was built. A sleep more than 64 ms away waits in an upper level, and the runtime wakes
//! twice for it: at the start of its 64 ms slot, to move it down a level, and then at its
//! deadline (`epoll_wait(…, 82)` then `epoll_wait(…, 18)` in strace). A deadline that is itself
//! the start of a 64 ms slot is due the moment its slot comes round, so the thread wakes once.
//! On the virtual machine of docs/performance.md a wake-up costs 50–100 µs of CPU, more than a
//! poll's own work, and a poll sleeps three times: before each of its two later requests and
//! until the next poll.
//!
//! [`mark_origin`] is called right before the service's runtime is built, which is when tokio's
//! clock starts (a few µs later); [`aligned`] rounds a deadline at least 64 ms away up to the
//! next 64 ms step from there, so such a sleep is at most 64 ms longer than asked (a poll every
//! second may start up to 64 ms late, always on the grid, never drifting: its schedule is kept
//! unrounded). A shorter sleep (a `request_pause` of a few ms) is left exact. Without an origin
//! (the tests, paused time, other runtimes) deadlines are left as they are. If tokio's wheel
//! ever changes, the only loss is the saving: a sleep still ends at or after its deadline.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

/// The span of one slot of the wheel's second level: 64 ticks of 1 ms.
const SLOT: Duration = Duration::from_millis(64);

/// Where the grid starts: the moment before the service's runtime was built.
static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();

/// Starts the grid now. Call it right before building the runtime whose sleeps
/// [`aligned`] should serve; later calls are ignored.
pub fn mark_origin() {
    let _ = ORIGIN.set(std::time::Instant::now());
}

/// `deadline`, or the first step of the grid after it when it is a slot or more away;
/// `deadline` itself without a grid.
pub fn aligned(deadline: Instant) -> Instant {
    match ORIGIN.get() {
        Some(origin) => Instant::from_std(align(deadline.into_std(), *origin, std::time::Instant::now())),
        None => deadline,
    }
}

/// `deadline` rounded up to `origin` plus a whole number of [`SLOT`]s, if it is at least a
/// slot after `now`.
fn align(
    deadline: std::time::Instant,
    origin: std::time::Instant,
    now: std::time::Instant,
) -> std::time::Instant {
    if deadline.saturating_duration_since(now) < SLOT {
        return deadline;
    }
    let Some(since) = deadline.checked_duration_since(origin) else { return deadline };
    let slot = SLOT.as_nanos();
    let steps = since.as_nanos().div_ceil(slot);
    u64::try_from(steps * slot).map_or(deadline, |nanos| origin + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_round_up_to_the_next_step_of_the_grid() {
        let origin = std::time::Instant::now();
        let at = |ms: u64| origin + Duration::from_millis(ms);
        assert_eq!(align(at(1000), origin, origin), at(1024));
        assert_eq!(align(at(1024), origin, origin), at(1024), "a deadline on the grid stays");
        assert_eq!(align(at(1025), origin, origin), at(1088));
        assert_eq!(align(at(100), origin, origin), at(128));
        assert_eq!(align(at(100), origin, at(30)), at(128), "70 ms away: rounded");
    }

    #[test]
    fn sleeps_shorter_than_a_slot_and_deadlines_before_the_grid_are_left_alone() {
        let origin = std::time::Instant::now();
        let at = |ms: u64| origin + Duration::from_millis(ms);
        assert_eq!(align(at(1001), origin, at(1000)), at(1001), "a 1 ms pause stays 1 ms");
        assert_eq!(align(at(1063), origin, at(1000)), at(1063));
        assert_eq!(align(at(1064), origin, at(1000)), at(1088), "a whole slot away: rounded");
        let late = origin + Duration::from_secs(10);
        assert_eq!(align(at(2000), late, origin), at(2000), "before the grid starts");
    }

    #[test]
    fn without_a_grid_deadlines_are_unchanged() {
        // The unit tests never mark an origin: paused time sees exact deadlines.
        let deadline = Instant::now() + Duration::from_millis(1000);
        assert_eq!(aligned(deadline), deadline);
    }
}
