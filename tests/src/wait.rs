//! Polling a condition with a deadline: what lab tests use instead of sleeps.
//!
//! A fixed sleep is either too short on a loaded CI machine (flaky) or too long everywhere
//! else (slow). Polling returns as soon as the condition holds and fails with a clear timeout
//! when it never does.
use std::time::{Duration, Instant};

use crate::LabError;

/// How long to pause between two checks. Short enough not to add visible latency, long
/// enough not to spin a core (checks often fork a tool).
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Calls `cond` until it returns true or `timeout` has passed; checks once more at the
/// deadline, so a condition that becomes true just then still counts. Returns how long it
/// took. The condition itself may take time (e.g. one `ping -W 1`): the deadline is checked
/// between calls, so the total can exceed `timeout` by one call.
pub fn wait_until(timeout: Duration, cond: impl FnMut() -> bool) -> Result<Duration, LabError> {
    wait_for("a condition", timeout, cond)
}

/// [`wait_until`] with a description of what is awaited, for the timeout message.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<Duration, LabError> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if cond() {
            return Ok(start.elapsed());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(LabError::Timeout {
                what: what.to_owned(),
                after: timeout,
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_once_the_condition_holds() {
        let mut calls = 0;
        let took = wait_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert!(took < Duration::from_secs(1));
    }

    #[test]
    fn times_out_with_a_message() {
        let start = Instant::now();
        let err = wait_for("never", Duration::from_millis(60), || false).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(60));
        assert!(err.to_string().contains("never"), "{err}");
    }
}
