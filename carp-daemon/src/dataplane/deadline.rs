//! The fail-silent deadline of a master: how long the dataplane keeps answering for a vhid
//! after each advert carpd sends, so that a carpd that dies (SIGKILL, crash, hang) leaves a
//! host that falls silent by itself, as late as possible but before anyone else answers. (A
//! hang of the event loop stops the advert pacer, which renews steady masters' deadlines
//! from its own thread, a second into it: `daemon::pacer`.)
//!
//! # Where the deadline lies
//! A backup declares the master down three of its own intervals after the last advert it
//! processed (OpenBSD's `carp_setrun`, `3 × I`; see the state machine's module doc). Its
//! timer starts no earlier than the advert reached it, and the advert left no earlier than
//! carpd read the clock before sending it. So a backup whose interval `I_b` is at least the
//! master's `I_m` takes over no earlier than `t + 3 × I_m`, `t` being the master's clock
//! reading before the send. (A backup that came up after that advert counts from its own
//! start, later still: the client then waits longer for it, but never hears two hosts.)
//! The deadline is therefore
//!
//! ```text
//! t + 3 × I_m − margin,   margin = 3 × I_m × 1000 ppm + 500 µs
//! ```
//!
//! and renewed only by an advert that left (a failed send restarted no backup's timer).
//! At advbase 1 advskew 0 that is 3 s − 3.5 ms; at the shortest interval (1/256 s) 11.2 ms of
//! the 11.7 ms master-down time. A healthy master thus answers even when it runs almost two
//! intervals late, and the client of a dead one waits only the margin plus the difference
//! of the intervals (11.7 ms at advbase 1 with advskew 0/1) for the new master.
//!
//! # The margin
//! - Clock rates: the intervals are measured by two hosts' CLOCK_MONOTONIC, which NTP slews
//!   by at most 500 ppm each (the kernel's `MAXFREQ` for `adjtimex`): 1000 ppm of the three
//!   intervals covers two clocks slewed in opposite directions. (Offsets between the clocks
//!   do not matter: only durations are compared. A clock slewed faster by tick adjustment,
//!   as chrony does for large offsets, voids this bound while it lasts.)
//! - A fixed 500 µs covers what is not a clock: a broadcast request delivered to the two
//!   hosts at slightly different moments, and a reply the old master queued just before its
//!   deadline that is still on its way. On a LAN those take microseconds.
//!
//! # Who could answer at the same time
//! - With preempt on, no stable backup has a shorter interval at equal demotion: a backup that
//!   hears a master with a longer interval takes over at once (`carp_proto_input_c`). So
//!   every backup takes over at `3 × I_b ≥ 3 × I_m`, after this deadline: never two hosts.
//! - A backup with a shorter interval stays backup when preempt is off, and when it is more
//!   demoted than the master (preempt or not). It takes over `3 × I_b` after the last advert,
//!   and until the dead master's deadline passes, `3 × (I_m − I_b) − margin` later at most,
//!   both hosts answer ARP and NS with the same virtual MAC: the answers agree, but the
//!   switches learn the virtual MAC on either port until the old host falls silent. The old
//!   deadline (two intervals) avoided this whenever `I_b > 2/3 × I_m`; the master cannot know
//!   the backups' intervals (backups do not advertise), so it assumes the stable case.
//! - A backup whose master-down timer fired a quarter interval or more late waits once
//!   more, up to an interval (at most 50 ms), for adverts held up by the same stall (the state
//!   machine's "A backup that overslept"): it takes over later than `3 × I_b`, never
//!   earlier, so the bound above holds; only the client of a master that really died while
//!   the backup stood still waits that much longer.
//! - A master that bows out (SIGTERM, interface down) silences its dataplane at once after
//!   the bow-out advert, which does not renew the deadline; a SIGKILLed carpd cannot, and the
//!   deadline does it. A restarted carpd writes INIT before it listens, so it never extends
//!   the deadline of the carpd it replaces; but it also ends that deadline early: a
//!   supervisor that restarts a SIGKILLed carpd within the deadline (systemd's
//!   `RestartSec=1` at advbase ≥ 1) silences the host from the restart until the backup takes
//!   over, up to three intervals. Keeping an adopted live MASTER entry until its deadline
//!   would close that gap too (it is no less safe than a carpd that stays dead); carpd does
//!   not do that yet.
use std::time::Duration;

/// Slew of two CLOCK_MONOTONICs against each other, in parts per million: 500 ppm each.
pub const CLOCK_SKEW_PPM: u32 = 1000;

/// Allowance for frames in flight at the deadline (delivery skew, a queued reply).
pub const IN_FLIGHT_MARGIN: Duration = Duration::from_micros(500);

/// How long a master entry stays valid after the clock reading taken before an advert that
/// left, for the master's advertisement interval: just before the earliest moment a backup
/// with the same or a longer interval can take over (see the module doc).
pub fn master_hold(interval: Duration) -> Duration {
    let master_down = interval * 3;
    let skew = master_down * CLOCK_SKEW_PPM / 1_000_000;
    master_down.saturating_sub(skew + IN_FLIGHT_MARGIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn hold_ends_a_margin_before_three_intervals() {
        // advbase 1: 3 s less 3 ms of clock skew and the in-flight allowance.
        assert_eq!(master_hold(Duration::from_secs(1)), us(2_996_500));
        // The shortest interval (1/256 s as OpenBSD computes it, 3906 µs).
        assert_eq!(
            master_hold(us(3906)),
            Duration::from_nanos(11_718_000 - 11_718 - 500_000)
        );
    }

    #[test]
    fn a_healthy_master_may_run_late_by_more_than_an_interval() {
        for interval in [us(3906), us(1_000_000), us(255_996_093)] {
            assert!(
                master_hold(interval) > interval * 2 + interval / 2,
                "{interval:?}"
            );
            assert!(master_hold(interval) < interval * 3, "{interval:?}");
        }
    }
}
