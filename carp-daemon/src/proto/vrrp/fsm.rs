//! The election of one VRRPv3 virtual router (RFC 5798 6.4, as clarified by RFC 9568 6.4):
//! INIT, BACKUP, MASTER, for one address family.
//!
//! Like [`crate::proto::fsm::Vhid`] it is a plain value driven by
//! [`VirtualRouter::handle`]`(now, event)`, which returns [`VrrpAction`]s; it never reads a
//! clock or touches a socket, and the caller sleeps until [`VirtualRouter::next_deadline`],
//! then sends [`VrrpEvent::TimerExpired`]. The [`State`] and [`Announcement`] types are the
//! CARP machine's, so the daemon drives the dataplane map and the gratuitous ARP/NA of both
//! protocols the same way.
//!
//! # One family per virtual router
//! RFC 5798 runs IPv4 and IPv6 virtual routers separately even when they share a VRID (their
//! virtual MACs differ: `00:00:5e:00:01:<vrid>` and `00:00:5e:00:02:<vrid>`), and keepalived
//! configures them as two instances. So one `VirtualRouter` is one family; the primary
//! address it compares on a tie is of that family.
//!
//! # Timers (RFC 5798 6.1, in microseconds)
//! - `Advertisement_Interval` is ours, configured in centiseconds; a master sends an advert
//!   every interval.
//! - `Master_Adver_Interval` is learnt from the master's adverts (ours until one is heard).
//! - `Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256`.
//! - `Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time`.
//!
//! # Election
//! - Startup: the owner (priority 255) becomes master at once; any other goes BACKUP with
//!   its master-down timer at `Master_Down_Interval`.
//! - BACKUP, advert with priority 0 (the master resigned): master-down timer at
//!   `Skew_Time`. Otherwise, if preempt is off or the advert's priority ≥ ours: learn its
//!   interval and restart the master-down timer; else (preempt, a lower master) ignore it,
//!   so the running timer makes us master. The owner always preempts (RFC 5798 6.1).
//! - MASTER, advert with priority 0: send an advert at once. With a higher priority, or an
//!   equal one from a higher primary address (compared as unsigned numbers, network order):
//!   → BACKUP, learning its interval. Otherwise the advert is from a worse master.
//! - Shutdown: a master sends priority 0, then → INIT.
//!
//! # Where this differs from the RFC, on purpose
//! A MASTER that hears a worse master sends an advert and a full announcement at once, at
//! most once per interval, as the CARP machine heals a split brain (keepalived's default too,
//! unless `vrrp_lower_prio_no_advert`): the intruder steps back within a round trip.
//!
//! A BACKUP whose master-down timer fires a quarter of `Master_Adver_Interval` (at most
//! [`OVERSLEEP_GRACE_MAX`]) or more late overslept it: it waits that interval once more,
//! for adverts held up by the same stall, before taking over, as the CARP machine does (see
//! "A backup that overslept" in [`crate::proto::fsm`]). Not after a resignation: Skew_Time is the whole
//! point there, and the master asked to be replaced.
use std::net::IpAddr;
use std::time::Duration;

use carp_common::vrrp::{VRRP_MAX_ADVERT_INTERVAL, VRRP_PRIORITY_OWNER, VRRP_PRIORITY_RESIGN};

use crate::proto::fsm::{Announcement, Family, OVERSLEEP_GRACE_MAX, State, overslept};

/// The configured identity and timing of a virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VrrpParams {
    /// 1..=255.
    pub vrid: u8,
    /// 1..=255; 255 is the address owner.
    pub priority: u8,
    /// Advertisement_Interval, centiseconds, 1..=4095.
    pub advert_interval: u16,
    /// Preempt_Mode (RFC default true).
    pub preempt: bool,
    /// Accept_Mode: whether a non-owner master accepts packets addressed to the virtual
    /// addresses. Carried for the daemon; the election does not depend on it.
    pub accept_mode: bool,
}

impl VrrpParams {
    /// Checks the ranges RFC 5798 5.2 allows for configuration.
    pub fn validate(&self) -> Result<(), VrrpParamError> {
        if self.vrid == 0 {
            return Err(VrrpParamError::VridZero);
        }
        if self.priority == VRRP_PRIORITY_RESIGN {
            return Err(VrrpParamError::PriorityZero);
        }
        if self.advert_interval == 0 || self.advert_interval > VRRP_MAX_ADVERT_INTERVAL {
            return Err(VrrpParamError::Interval(self.advert_interval));
        }
        Ok(())
    }

    /// Whether this router owns the addresses (priority 255).
    pub const fn is_owner(&self) -> bool {
        self.priority == VRRP_PRIORITY_OWNER
    }
}

/// A parameter outside what RFC 5798 allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VrrpParamError {
    #[error("vrid 0 is not a valid virtual router id (1-255)")]
    VridZero,
    #[error("priority 0 is reserved for a resigning master (1-255; 255 is the address owner)")]
    PriorityZero,
    #[error("advert interval {0} cs is out of range (1-4095 centiseconds)")]
    Interval(u16),
}

/// Something that happened to the virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpEvent {
    /// The interface can run (up, carpdev link, addresses of the family), and this is the
    /// primary address adverts leave from. INIT → BACKUP (or MASTER for the owner); when
    /// running, only records the primary address.
    Up { primary: IpAddr },
    /// The carpdev lost link or went down: → INIT, no advert.
    LinkDown,
    /// The interface was configured down: a master sends priority 0, then → INIT.
    AdminDown,
    /// carpd is stopping: as [`VrrpEvent::AdminDown`].
    Shutdown,
    /// A valid advert of this VRID and family (see [`super::VrrpAdvert::decode`]) from
    /// the IP source `src`.
    AdvertReceived {
        priority: u8,
        /// Max Adver Int, centiseconds.
        max_advert_int: u16,
        src: IpAddr,
    },
    /// [`VirtualRouter::next_deadline`] has passed.
    TimerExpired,
}

/// Something the daemon must do, in the order returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VrrpAction {
    /// Send one advert with this priority and our Advertisement_Interval.
    SendAdvert { priority: u8, max_advert_int: u16 },
    /// Announce the virtual addresses of the family (gratuitous ARP or unsolicited NA).
    Announce(Announcement),
    /// The state changed.
    StateChanged {
        from: State,
        to: State,
        reason: VrrpReason,
    },
    /// The master-down timer fired `late`: this host overslept it and waits `grace` for
    /// adverts held up by the same stall (see the module doc). For logs and counters.
    MasterDownPostponed { late: Duration, grace: Duration },
}

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpReason {
    /// INIT → BACKUP: the interface can run.
    Up,
    /// INIT → MASTER: priority 255, the address owner takes over at once.
    Owner,
    /// BACKUP → MASTER: no advert within Master_Down_Interval.
    MasterDownTimer,
    /// BACKUP → MASTER: the master resigned (priority 0) and we waited Skew_Time.
    MasterResigned,
    /// MASTER → BACKUP: an advert with a higher priority.
    HigherPriority,
    /// MASTER → BACKUP: an advert with our priority from a higher primary address.
    HigherAddress,
    /// → INIT: the carpdev lost link or went down.
    LinkDown,
    /// → INIT: the interface was configured down.
    AdminDown,
    /// → INIT: carpd is stopping.
    Shutdown,
}

impl VrrpReason {
    /// A stable, short name for logs and counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            VrrpReason::Up => "up",
            VrrpReason::Owner => "owner",
            VrrpReason::MasterDownTimer => "master-down",
            VrrpReason::MasterResigned => "master-resigned",
            VrrpReason::HigherPriority => "higher-priority",
            VrrpReason::HigherAddress => "higher-address",
            VrrpReason::LinkDown => "link-down",
            VrrpReason::AdminDown => "admin-down",
            VrrpReason::Shutdown => "shutdown",
        }
    }
}

impl std::fmt::Display for VrrpReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One VRRPv3 virtual router of one family.
#[derive(Debug, Clone)]
pub struct VirtualRouter {
    params: VrrpParams,
    family: Family,
    state: State,
    primary: Option<IpAddr>,
    /// Master_Adver_Interval, centiseconds: learnt from the master, ours until then.
    master_adver_interval: u16,
    /// MASTER: when the next advert is due.
    advert_at: Option<Duration>,
    /// BACKUP: Master_Down_Timer.
    master_down_at: Option<Duration>,
    /// BACKUP: the running master-down timer is the Skew_Time after a priority-0 advert.
    resigned: bool,
    /// BACKUP: the deadline a late master-down timer was moved to; while the timer still
    /// holds it (no advert re-armed it), it is not postponed again.
    postponed_to: Option<Duration>,
    /// MASTER: when we last answered a worse master.
    healed_at: Option<Duration>,
}

/// Centiseconds as a [`Duration`].
fn cs(n: u64) -> Duration {
    Duration::from_millis(n * 10)
}

impl VirtualRouter {
    /// A virtual router in INIT.
    pub fn new(params: VrrpParams, family: Family) -> Result<Self, VrrpParamError> {
        params.validate()?;
        Ok(Self {
            params,
            family,
            state: State::Init,
            primary: None,
            master_adver_interval: params.advert_interval,
            advert_at: None,
            master_down_at: None,
            resigned: false,
            postponed_to: None,
            healed_at: None,
        })
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn params(&self) -> VrrpParams {
        self.params
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// Master_Adver_Interval in centiseconds (the master's, once one was heard).
    pub fn master_adver_interval(&self) -> u16 {
        self.master_adver_interval
    }

    /// Our Advertisement_Interval.
    pub fn advert_interval(&self) -> Duration {
        cs(u64::from(self.params.advert_interval))
    }

    /// Skew_Time: `((256 − Priority) × Master_Adver_Interval) / 256`.
    pub fn skew_time(&self) -> Duration {
        let interval_us = u64::from(self.master_adver_interval) * 10_000;
        Duration::from_micros((256 - u64::from(self.params.priority)) * interval_us / 256)
    }

    /// Master_Down_Interval: `3 × Master_Adver_Interval + Skew_Time`.
    pub fn master_down_interval(&self) -> Duration {
        cs(u64::from(self.master_adver_interval)) * 3 + self.skew_time()
    }

    /// How long a backup that overslept its master-down deadline (by a quarter of this or
    /// more) waits: `Master_Adver_Interval`, at most [`OVERSLEEP_GRACE_MAX`].
    pub fn oversleep_grace(&self) -> Duration {
        cs(u64::from(self.master_adver_interval)).min(OVERSLEEP_GRACE_MAX)
    }

    /// When the daemon must send [`VrrpEvent::TimerExpired`] next.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.advert_at.or(self.master_down_at)
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, now: Duration, event: VrrpEvent) -> Vec<VrrpAction> {
        let mut out = Vec::new();
        match event {
            VrrpEvent::Up { primary } => self.on_up(now, primary, &mut out),
            VrrpEvent::LinkDown => self.enter_init(VrrpReason::LinkDown, &mut out),
            VrrpEvent::AdminDown => self.resign(VrrpReason::AdminDown, &mut out),
            VrrpEvent::Shutdown => self.resign(VrrpReason::Shutdown, &mut out),
            VrrpEvent::AdvertReceived {
                priority,
                max_advert_int,
                src,
            } => self.on_advert(now, priority, max_advert_int, src, &mut out),
            VrrpEvent::TimerExpired => self.on_timer(now, &mut out),
        }
        out
    }

    fn on_up(&mut self, now: Duration, primary: IpAddr, out: &mut Vec<VrrpAction>) {
        self.primary = Some(primary);
        if self.state != State::Init {
            return;
        }
        self.master_adver_interval = self.params.advert_interval;
        if self.params.is_owner() {
            self.become_master(now, VrrpReason::Owner, out);
        } else {
            self.transition(State::Backup, VrrpReason::Up, out);
            self.arm_master_down(now, self.master_down_interval(), false);
        }
    }

    fn on_advert(
        &mut self,
        now: Duration,
        priority: u8,
        max_advert_int: u16,
        src: IpAddr,
        out: &mut Vec<VrrpAction>,
    ) {
        match self.state {
            State::Init => {}
            State::Backup => {
                if priority == VRRP_PRIORITY_RESIGN {
                    self.arm_master_down(now, self.skew_time(), true);
                } else if !self.preempts() || priority >= self.params.priority {
                    self.learn(max_advert_int);
                    self.arm_master_down(now, self.master_down_interval(), false);
                }
                // Else preempt and a lower master: the running timer makes us master.
            }
            State::Master => {
                if priority == VRRP_PRIORITY_RESIGN {
                    self.advertise(now, out);
                } else if priority > self.params.priority {
                    self.become_backup(now, max_advert_int, VrrpReason::HigherPriority, out);
                } else if priority == self.params.priority && self.loses_tie_to(src) {
                    self.become_backup(now, max_advert_int, VrrpReason::HigherAddress, out);
                } else {
                    self.heal(now, out);
                }
            }
        }
    }

    fn on_timer(&mut self, now: Duration, out: &mut Vec<VrrpAction>) {
        if self.advert_at.is_some_and(|at| at <= now) {
            self.advertise(now, out);
        }
        if let Some(at) = self.master_down_at.filter(|at| *at <= now) {
            let grace = self.oversleep_grace();
            if !self.resigned && overslept(at, now, grace, self.postponed_to) {
                self.master_down_at = Some(now + grace);
                self.postponed_to = self.master_down_at;
                out.push(VrrpAction::MasterDownPostponed {
                    late: now - at,
                    grace,
                });
                return;
            }
            let reason = if self.resigned {
                VrrpReason::MasterResigned
            } else {
                VrrpReason::MasterDownTimer
            };
            self.become_master(now, reason, out);
        }
    }

    /// The owner preempts whatever the setting (RFC 5798 6.1, Preempt_Mode).
    fn preempts(&self) -> bool {
        self.params.preempt || self.params.is_owner()
    }

    /// An equal-priority master at `src` wins when its primary address is higher than ours
    /// (RFC 5798 6.4.3). Without a primary address of our own we step back.
    fn loses_tie_to(&self, src: IpAddr) -> bool {
        match (self.primary, src) {
            (Some(IpAddr::V4(ours)), IpAddr::V4(theirs)) => theirs > ours,
            (Some(IpAddr::V6(ours)), IpAddr::V6(theirs)) => theirs > ours,
            _ => true,
        }
    }

    fn learn(&mut self, max_advert_int: u16) {
        // A zero interval cannot time anything; keep what we had (keepalived refuses it).
        if max_advert_int != 0 {
            self.master_adver_interval = max_advert_int;
        }
    }

    fn arm_master_down(&mut self, now: Duration, after: Duration, resigned: bool) {
        self.master_down_at = Some(now + after);
        self.resigned = resigned;
    }

    fn become_master(&mut self, now: Duration, reason: VrrpReason, out: &mut Vec<VrrpAction>) {
        self.transition(State::Master, reason, out);
        self.master_down_at = None;
        self.resigned = false;
        self.healed_at = None;
        out.push(self.advert_action(self.params.priority));
        out.push(VrrpAction::Announce(Announcement::ArpAndNa));
        self.advert_at = Some(now + self.advert_interval());
    }

    fn become_backup(
        &mut self,
        now: Duration,
        max_advert_int: u16,
        reason: VrrpReason,
        out: &mut Vec<VrrpAction>,
    ) {
        self.transition(State::Backup, reason, out);
        self.advert_at = None;
        self.learn(max_advert_int);
        self.arm_master_down(now, self.master_down_interval(), false);
    }

    fn advertise(&mut self, now: Duration, out: &mut Vec<VrrpAction>) {
        out.push(self.advert_action(self.params.priority));
        self.advert_at = Some(now + self.advert_interval());
    }

    /// Answer a worse master: an advert and an announcement, at most once per interval.
    fn heal(&mut self, now: Duration, out: &mut Vec<VrrpAction>) {
        if self
            .healed_at
            .is_some_and(|at| now < at + self.advert_interval())
        {
            return;
        }
        self.healed_at = Some(now);
        self.advertise(now, out);
        out.push(VrrpAction::Announce(Announcement::ArpAndNa));
    }

    /// A master sends priority 0 (RFC 5798 6.4.3, Shutdown), then any state → INIT.
    fn resign(&mut self, reason: VrrpReason, out: &mut Vec<VrrpAction>) {
        if self.state == State::Master {
            out.push(self.advert_action(VRRP_PRIORITY_RESIGN));
        }
        self.enter_init(reason, out);
    }

    fn enter_init(&mut self, reason: VrrpReason, out: &mut Vec<VrrpAction>) {
        self.transition(State::Init, reason, out);
        self.advert_at = None;
        self.master_down_at = None;
        self.resigned = false;
    }

    fn advert_action(&self, priority: u8) -> VrrpAction {
        VrrpAction::SendAdvert {
            priority,
            max_advert_int: self.params.advert_interval,
        }
    }

    fn transition(&mut self, to: State, reason: VrrpReason, out: &mut Vec<VrrpAction>) {
        if self.state != to {
            out.push(VrrpAction::StateChanged {
                from: self.state,
                to,
                reason,
            });
            self.state = to;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    const OURS: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    const LOWER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5));
    const HIGHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20));

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn params(priority: u8, advert_interval: u16, preempt: bool) -> VrrpParams {
        VrrpParams {
            vrid: 1,
            priority,
            advert_interval,
            preempt,
            accept_mode: false,
        }
    }

    fn router(priority: u8, advert_interval: u16, preempt: bool) -> VirtualRouter {
        VirtualRouter::new(params(priority, advert_interval, preempt), Family::V4).unwrap()
    }

    fn changed(from: State, to: State, reason: VrrpReason) -> VrrpAction {
        VrrpAction::StateChanged { from, to, reason }
    }

    fn send(priority: u8, max_advert_int: u16) -> VrrpAction {
        VrrpAction::SendAdvert {
            priority,
            max_advert_int,
        }
    }

    const ANNOUNCE: VrrpAction = VrrpAction::Announce(Announcement::ArpAndNa);

    fn rx(priority: u8, max_advert_int: u16, src: IpAddr) -> VrrpEvent {
        VrrpEvent::AdvertReceived {
            priority,
            max_advert_int,
            src,
        }
    }

    /// A router brought up at 0 and made master by its master-down timer.
    fn master(priority: u8, advert_interval: u16, preempt: bool) -> (VirtualRouter, Duration) {
        let mut r = router(priority, advert_interval, preempt);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        let at = r.next_deadline().unwrap();
        r.handle(at, VrrpEvent::TimerExpired);
        assert_eq!(r.state(), State::Master);
        (r, at)
    }

    #[test]
    fn params_are_validated() {
        assert_eq!(
            VirtualRouter::new(
                VrrpParams {
                    vrid: 0,
                    ..params(100, 100, true)
                },
                Family::V4
            )
            .unwrap_err(),
            VrrpParamError::VridZero
        );
        assert_eq!(
            VirtualRouter::new(params(0, 100, true), Family::V4).unwrap_err(),
            VrrpParamError::PriorityZero
        );
        for bad in [0, 4096] {
            assert_eq!(
                VirtualRouter::new(params(100, bad, true), Family::V4).unwrap_err(),
                VrrpParamError::Interval(bad)
            );
        }
        assert!(VirtualRouter::new(params(255, 4095, false), Family::V6).is_ok());
    }

    #[test]
    fn timers_follow_rfc_5798_section_6_1() {
        // Priority 100, 1 s: Skew = 156 × 1 s / 256 = 609.375 ms, Master_Down = 3.609375 s.
        let r = router(100, 100, true);
        assert_eq!(r.skew_time(), Duration::from_micros(609_375));
        assert_eq!(r.master_down_interval(), Duration::from_micros(3_609_375));
        // Priority 254 at 10 ms: Skew = 2 × 10 ms / 256 = 78 µs (rounded down).
        let fast = router(254, 1, true);
        assert_eq!(fast.skew_time(), Duration::from_micros(78));
        assert_eq!(fast.master_down_interval(), Duration::from_micros(30_078));
    }

    #[test]
    fn up_goes_backup_and_takes_over_after_master_down_interval() {
        let mut r = router(100, 100, true);
        assert_eq!(r.next_deadline(), None);
        let out = r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        assert_eq!(
            out,
            vec![changed(State::Init, State::Backup, VrrpReason::Up)]
        );
        assert_eq!(r.next_deadline(), Some(Duration::from_micros(3_609_375)));
        // Nothing before the deadline.
        assert!(r.handle(ms(3_609), VrrpEvent::TimerExpired).is_empty());
        let at = Duration::from_micros(3_609_375);
        let out = r.handle(at, VrrpEvent::TimerExpired);
        assert_eq!(
            out,
            vec![
                changed(State::Backup, State::Master, VrrpReason::MasterDownTimer),
                send(100, 100),
                ANNOUNCE,
            ]
        );
        assert_eq!(r.next_deadline(), Some(at + ms(1000)));
        // A master advertises every interval.
        let out = r.handle(at + ms(1000), VrrpEvent::TimerExpired);
        assert_eq!(out, vec![send(100, 100)]);
        assert_eq!(r.next_deadline(), Some(at + ms(2000)));
    }

    /// At keepalived's shortest interval (10 ms), woken 15 ms after Master_Down with the
    /// master's advert still to come: one interval more, then the advert keeps it backup.
    #[test]
    fn a_backup_that_overslept_waits_one_interval_then_takes_over_without_an_advert() {
        let mut r = router(100, 1, false);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        let woke = r.next_deadline().unwrap() + ms(15);
        let grace = r.oversleep_grace();
        assert_eq!(grace, ms(10));
        assert_eq!(
            r.handle(woke, VrrpEvent::TimerExpired),
            vec![VrrpAction::MasterDownPostponed {
                late: ms(15),
                grace
            }]
        );
        assert_eq!(r.next_deadline(), Some(woke + grace));
        let mut kept = r.clone();
        kept.handle(woke + ms(1), rx(200, 1, HIGHER));
        assert!(
            kept.handle(woke + grace, VrrpEvent::TimerExpired)
                .is_empty()
        );
        assert_eq!(kept.state(), State::Backup);
        // Without one it takes over, however late the timer fires again.
        let out = r.handle(woke + grace + ms(15), VrrpEvent::TimerExpired);
        assert_eq!(
            out[0],
            changed(State::Backup, State::Master, VrrpReason::MasterDownTimer)
        );
        // On time or less than the grace late: at once; after a resignation: never waits.
        for late in [Duration::ZERO, ms(2)] {
            let mut r = router(100, 1, false);
            r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
            let at = r.next_deadline().unwrap() + late;
            r.handle(at, VrrpEvent::TimerExpired);
            assert_eq!(r.state(), State::Master, "{late:?} late");
        }
        let mut r = router(100, 1, false);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        r.handle(ms(1), rx(0, 1, HIGHER));
        let at = r.next_deadline().unwrap() + ms(50);
        r.handle(at, VrrpEvent::TimerExpired);
        assert_eq!(r.state(), State::Master);
    }

    #[test]
    fn owner_takes_over_at_once() {
        let mut r = router(255, 100, false);
        let out = r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        assert_eq!(
            out,
            vec![
                changed(State::Init, State::Master, VrrpReason::Owner),
                send(255, 100),
                ANNOUNCE,
            ]
        );
    }

    #[test]
    fn backup_learns_the_masters_interval() {
        let mut r = router(100, 100, true);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        // A better master advertising every 50 cs: Master_Down = 1.5 s + 156 × 0.5 / 256 s.
        assert!(r.handle(ms(100), rx(150, 50, HIGHER)).is_empty());
        assert_eq!(r.master_adver_interval(), 50);
        assert_eq!(
            r.next_deadline(),
            Some(ms(100) + ms(1500) + Duration::from_micros(304_687))
        );
        // Our own sending interval is unchanged.
        assert_eq!(r.advert_interval(), ms(1000));
    }

    #[test]
    fn backup_with_preempt_ignores_a_lower_master_and_takes_over() {
        let mut r = router(150, 100, true);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        let deadline = r.next_deadline().unwrap();
        assert!(r.handle(ms(500), rx(100, 100, HIGHER)).is_empty());
        assert_eq!(
            r.next_deadline(),
            Some(deadline),
            "the timer is not restarted"
        );
        let out = r.handle(deadline, VrrpEvent::TimerExpired);
        assert_eq!(
            out[0],
            changed(State::Backup, State::Master, VrrpReason::MasterDownTimer)
        );
    }

    #[test]
    fn backup_without_preempt_follows_a_lower_master() {
        let mut r = router(150, 100, false);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        r.handle(ms(500), rx(100, 100, HIGHER));
        assert_eq!(r.next_deadline(), Some(ms(500) + r.master_down_interval()));
    }

    #[test]
    fn the_owner_preempts_whatever_the_setting() {
        // Two owners tie on 255; the one with the lower address steps back and, as a
        // backup with preempt off, still ignores a lower master.
        let (mut r, t) = master(255, 100, false);
        r.handle(t + ms(1), rx(255, 100, HIGHER));
        assert_eq!(r.state(), State::Backup);
        let deadline = r.next_deadline();
        r.handle(t + ms(500), rx(100, 100, LOWER));
        assert_eq!(r.next_deadline(), deadline);
    }

    #[test]
    fn equal_priority_backup_follows() {
        let mut r = router(100, 100, true);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        r.handle(ms(700), rx(100, 100, LOWER));
        assert_eq!(r.next_deadline(), Some(ms(700) + r.master_down_interval()));
    }

    #[test]
    fn resigning_master_leaves_only_skew_time() {
        let mut r = router(100, 100, true);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        r.handle(ms(100), rx(200, 100, HIGHER));
        assert!(r.handle(ms(900), rx(0, 100, HIGHER)).is_empty());
        let at = ms(900) + Duration::from_micros(609_375);
        assert_eq!(r.next_deadline(), Some(at));
        let out = r.handle(at, VrrpEvent::TimerExpired);
        assert_eq!(
            out,
            vec![
                changed(State::Backup, State::Master, VrrpReason::MasterResigned),
                send(100, 100),
                ANNOUNCE,
            ]
        );
    }

    #[test]
    fn skew_orders_backups_after_a_resignation() {
        // Of two backups at the same interval, the higher priority's skew is shorter.
        let mut hi = router(200, 100, true);
        let mut lo = router(100, 100, true);
        for r in [&mut hi, &mut lo] {
            r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
            r.handle(ms(100), rx(0, 100, HIGHER));
        }
        assert!(hi.next_deadline() < lo.next_deadline());
    }

    #[test]
    fn master_steps_back_for_higher_priority_and_learns_its_interval() {
        let (mut r, t) = master(100, 100, true);
        let out = r.handle(t + ms(10), rx(101, 200, LOWER));
        assert_eq!(
            out,
            vec![changed(
                State::Master,
                State::Backup,
                VrrpReason::HigherPriority
            )]
        );
        assert_eq!(r.master_adver_interval(), 200);
        assert_eq!(
            r.next_deadline(),
            Some(t + ms(10) + ms(6000) + Duration::from_micros(1_218_750))
        );
    }

    #[test]
    fn equal_priority_tie_goes_to_the_higher_primary_address() {
        let (mut r, t) = master(100, 100, true);
        let out = r.handle(t + ms(10), rx(100, 100, HIGHER));
        assert_eq!(
            out,
            vec![changed(
                State::Master,
                State::Backup,
                VrrpReason::HigherAddress
            )]
        );
        let (mut r, t) = master(100, 100, true);
        let out = r.handle(t + ms(10), rx(100, 100, LOWER));
        assert_eq!(
            out,
            vec![send(100, 100), ANNOUNCE],
            "we win: answer the intruder"
        );
        assert_eq!(r.state(), State::Master);
    }

    #[test]
    fn ipv6_tie_break_compares_addresses_numerically() {
        let ours: IpAddr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x10).into();
        let theirs: IpAddr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x9).into();
        let mut r = VirtualRouter::new(params(100, 100, true), Family::V6).unwrap();
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: ours });
        let at = r.next_deadline().unwrap();
        r.handle(at, VrrpEvent::TimerExpired);
        r.handle(at + ms(1), rx(100, 100, theirs));
        assert_eq!(r.state(), State::Master);
        let higher: IpAddr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x100).into();
        r.handle(at + ms(2000), rx(100, 100, higher));
        assert_eq!(r.state(), State::Backup);
    }

    #[test]
    fn worse_master_is_answered_at_most_once_per_interval() {
        let (mut r, t) = master(200, 100, true);
        assert_eq!(
            r.handle(t + ms(10), rx(100, 100, HIGHER)),
            vec![send(200, 100), ANNOUNCE]
        );
        assert!(r.handle(t + ms(500), rx(100, 100, HIGHER)).is_empty());
        assert_eq!(
            r.handle(t + ms(1010), rx(100, 100, HIGHER)),
            vec![send(200, 100), ANNOUNCE]
        );
    }

    #[test]
    fn master_answers_a_resignation_with_an_advert() {
        let (mut r, t) = master(100, 100, true);
        assert_eq!(
            r.handle(t + ms(10), rx(0, 100, HIGHER)),
            vec![send(100, 100)]
        );
        assert_eq!(r.next_deadline(), Some(t + ms(10) + ms(1000)));
    }

    #[test]
    fn shutdown_sends_priority_zero_from_master_only() {
        let (mut r, t) = master(100, 100, true);
        assert_eq!(
            r.handle(t + ms(1), VrrpEvent::Shutdown),
            vec![
                send(0, 100),
                changed(State::Master, State::Init, VrrpReason::Shutdown),
            ]
        );
        assert_eq!(r.next_deadline(), None);
        let mut b = router(100, 100, true);
        b.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        assert_eq!(
            b.handle(ms(1), VrrpEvent::AdminDown),
            vec![changed(State::Backup, State::Init, VrrpReason::AdminDown)]
        );
    }

    #[test]
    fn link_down_sends_nothing_and_up_restarts_with_our_interval() {
        let mut r = router(100, 100, true);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        r.handle(ms(10), rx(150, 50, HIGHER));
        assert_eq!(
            r.handle(ms(20), VrrpEvent::LinkDown),
            vec![changed(State::Backup, State::Init, VrrpReason::LinkDown)]
        );
        assert!(
            r.handle(ms(30), rx(150, 50, HIGHER)).is_empty(),
            "INIT ignores adverts"
        );
        r.handle(ms(40), VrrpEvent::Up { primary: OURS });
        assert_eq!(r.master_adver_interval(), 100);
        assert_eq!(
            r.next_deadline(),
            Some(ms(40) + Duration::from_micros(3_609_375))
        );
    }

    #[test]
    fn repeated_up_does_not_restart_timers() {
        let mut r = router(100, 100, true);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        let deadline = r.next_deadline();
        assert!(
            r.handle(ms(2000), VrrpEvent::Up { primary: OURS })
                .is_empty()
        );
        assert_eq!(r.next_deadline(), deadline);
    }

    #[test]
    fn zero_interval_in_an_advert_is_not_learnt() {
        let mut r = router(100, 100, true);
        r.handle(Duration::ZERO, VrrpEvent::Up { primary: OURS });
        r.handle(ms(10), rx(150, 0, HIGHER));
        assert_eq!(r.master_adver_interval(), 100);
    }
}
