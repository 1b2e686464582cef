//! The state machines' timer: a timerfd on CLOCK_MONOTONIC armed with the absolute
//! nanosecond deadline of the earliest machine ([`Vhid::next_deadline`]).
//!
//! tokio's timer wheel has a resolution of 1 ms and rounds a sleep up to the next
//! millisecond, so at the shortest CARP interval (1/256 s, 3.906 ms) adverts left every 4
//! or 5 ms: about 200 per second instead of 256. A timerfd fires at the deadline itself (an
//! hrtimer, no slack applied to it), and since the deadline is absolute, on the same clock
//! the machines and the dataplane use, no time is lost converting it to a relative sleep.
//! The fd is re-armed only when the earliest deadline changes, so events that leave the
//! deadlines as they were (most received adverts) cost no system call. Exact wake-ups no
//! longer gather the adverts of many vhids into one millisecond tick as tokio's wheel did;
//! the state machines' advert slack ([`Vhid::advert_slack`]) does that instead.
//!
//! [`Vhid::next_deadline`]: crate::proto::fsm::Vhid::next_deadline
//! [`Vhid::advert_slack`]: crate::proto::fsm::Vhid::advert_slack
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Duration;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

use crate::dataplane::monotonic_now;

/// A one-shot timer on CLOCK_MONOTONIC, waited for in the event loop.
pub struct DeadlineTimer {
    fd: AsyncFd<Timer>,
    /// The deadline the fd is armed for (None: disarmed).
    armed: Option<Duration>,
}

/// The timerfd, as tokio's reactor registers it.
struct Timer(TimerFd);

impl AsRawFd for Timer {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

impl DeadlineTimer {
    pub fn new() -> io::Result<Self> {
        let fd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: `Timer` owns its fd for as long as the AsyncFd owns the `Timer`, and
        // as_raw_fd always returns that same fd.
        let fd = unsafe { AsyncFd::register(Timer(fd)) }.map_err(io::Error::from)?;
        Ok(Self { fd, armed: None })
    }

    /// Returns once CLOCK_MONOTONIC reaches `deadline` (at once if it has); never without
    /// one.
    pub async fn expired(&mut self, deadline: Option<Duration>) -> io::Result<()> {
        let Some(deadline) = deadline else {
            if self.armed.take().is_some() {
                self.fd.get_ref().0.unset()?;
            }
            return std::future::pending().await;
        };
        if self.armed != Some(deadline) {
            // An absolute it_value of 0 would disarm the timer: CLOCK_MONOTONIC is past 1 ns.
            let at = TimeSpec::from_duration(deadline.max(Duration::from_nanos(1)));
            self.fd.get_ref().0.set(
                Expiration::OneShot(at),
                TimerSetTimeFlags::TFD_TIMER_ABSTIME,
            )?;
            self.armed = Some(deadline);
        }
        loop {
            let mut ready = self.fd.readable().await?;
            // The clock, not a read of the expiration count, says whether it fired: one
            // system call less per wake-up. The count needs no reading: whatever is waited
            // for next arms the fd again (or disarms it), and timerfd_settime zeroes the
            // count, so the fd is not readable again before the next expiry.
            // CLOCK_MONOTONIC through the vDSO (no system call), the deadlines' clock.
            if monotonic_now().map_err(io::Error::other)? >= deadline {
                ready.clear_ready();
                self.armed = None;
                return Ok(());
            }
            // Readiness from an earlier arming (or spurious): wait for the real expiry.
            ready.clear_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn fires_at_the_absolute_deadline_not_rounded_to_a_millisecond() {
        runtime().block_on(async {
            let mut timer = DeadlineTimer::new().unwrap();
            let mut late = Vec::new();
            for _ in 0..20 {
                let deadline = monotonic_now().unwrap() + Duration::from_micros(3906);
                timer.expired(Some(deadline)).await.unwrap();
                let now = monotonic_now().unwrap();
                assert!(now >= deadline, "fired {:?} early", deadline - now);
                late.push(now - deadline);
            }
            late.sort();
            // tokio's sleep would be late by up to a millisecond; the median here is
            // microseconds even on a loaded machine.
            assert!(
                late[10] < Duration::from_micros(500),
                "median late {:?}",
                late[10]
            );
        });
    }

    #[test]
    fn a_past_deadline_fires_at_once_and_the_same_deadline_can_be_waited_again() {
        runtime().block_on(async {
            let mut timer = DeadlineTimer::new().unwrap();
            let past = monotonic_now().unwrap() - Duration::from_millis(5);
            timer.expired(Some(past)).await.unwrap();
            // Fired and read: asking for the same (past) deadline arms it again.
            tokio::time::timeout(Duration::from_secs(5), timer.expired(Some(past)))
                .await
                .expect("a past deadline fires at once")
                .unwrap();
        });
    }

    #[test]
    fn no_deadline_never_fires() {
        runtime().block_on(async {
            let mut timer = DeadlineTimer::new().unwrap();
            let soon = monotonic_now().unwrap() + Duration::from_millis(1);
            // Armed, then disarmed by asking for no deadline.
            let _ = tokio::time::timeout(Duration::from_micros(1), timer.expired(Some(soon))).await;
            let waited = tokio::time::timeout(Duration::from_millis(20), timer.expired(None)).await;
            assert!(waited.is_err());
        });
    }
}
