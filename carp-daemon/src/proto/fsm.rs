//! The election state machine of one vhid: INIT, BACKUP, MASTER, as OpenBSD's ip_carp.c 1.370
//! runs it (`carp_setrun`, `carp_master_down`, `carp_send_ad`, `carp_proto_input_c`, the
//! `SIOCSIFFLAGS`/`SIOCSVH` cases of `carp_ioctl`).
//!
//! It is a plain value driven by [`Vhid::handle`]: every call takes the current time (a
//! [`Duration`] since any monotonic epoch the caller picks) and an [`Event`], and returns the
//! [`Action`]s to carry out, in order. It never reads a clock, touches a socket or draws a
//! random number; the daemon sleeps until [`Vhid::next_deadline`] and then sends
//! [`Event::TimerExpired`].
//!
//! # Timers
//! - Advertisement interval `I = advbase + advskew/256` s, 1/256 s when both are 0
//!   ([`super::interval`], OpenBSD's microsecond arithmetic). A master advertises every `I`,
//!   each advert due one interval after the previous one was due (not after it was sent:
//!   OpenBSD re-arms from the send, so late wake-ups add up). An advert may leave up to
//!   `I/256` early ([`Vhid::advert_slack`]), so that the adverts of many vhids due within a
//!   few milliseconds of each other share one wake-up of the daemon.
//! - Master-down timeout `3 × I`. This is current OpenBSD's rule (`timeout_add_usec(md_tmo,
//!   3 * usec)` in `carp_setrun`). FreeBSD, ucarp and OpenBSD before it use
//!   `3 × advbase + advskew/256`, which with advbase 0 is a single interval: we follow current
//!   OpenBSD.
//! - Like OpenBSD there is one master-down timer per address family (`md_tmo`, `md6_tmo`): an
//!   IPv4 advert restarts only the IPv4 timer, so a backup whose IPv6 adverts stop arriving
//!   takes over even while IPv4 ones still do.
//!
//! # Repeats of the master's advert seen by the dataplane
//! A backup's daemon may not see every advert of the master it follows: the XDP program
//! consumes repeats of the last one the daemon authenticated and records only when the last
//! came. The daemon reports that time with [`Event::AdvertSeen`] before a master-down timer
//! fires; the machine treats it exactly as receiving, at that time, the same advert it last
//! restarted that family's timer for (kept in `followed`, forgotten on every state change).
//! An arrival that would not push the timer later (it is not newer than what armed it) is
//! ignored, so a stale report never postpones master-down. Since the machine judges the
//! advert again, with its current demote and preempt, a report of a master that now loses
//! the election makes this host take over, as the advert itself would.
//!
//! # Election (`carp_proto_input_c`)
//! Intervals are compared as advertised, `advbase + advskew/256` without the 1/256 s floor
//! (so 0/0 is shorter than 0/1), and the demote counts as sent.
//! - MASTER becomes BACKUP if their demote < ours, or their interval ≤ ours and their
//!   demote ≤ ours.
//! - BACKUP takes over at once if preempt is on, ours is shorter and their demote ≥ ours; or
//!   if their demote > ours (preempt or not); or if our advbase is not 0 and their interval
//!   exceeds `3 × our advbase + our advskew/256`. Otherwise it restarts the master-down timer
//!   of the advert's family.
//!
//! The third BACKUP rule keeps our advskew: OpenBSD sets only `sc_tv.tv_sec = advbase * 3`
//! and leaves `tv_usec` at our advskew. The spec file says "longer than 3 × our advbase"; the
//! source wins. It is what makes the bow-out advert (255/255) a one-packet handover.
//!
//! # First timer after coming up
//! The master-down timer armed on INIT → BACKUP ([`Event::Up`]) is exactly `3 × I`, as
//! OpenBSD's `carp_setrun`: its regress test `carp_1.sh` expects the better host master 3.1 s
//! after configuring it at advbase 1.
//!
//! # Identical settings
//! OpenBSD breaks a tie (same interval, same demote) only by timing: two masters that hear each
//! other both step back, and whichever master-down timer fires first wins. Two hosts that
//! collided this way heard each other's adverts within one link delay, so their timers would
//! expire within a link delay of each other again, and they can stay in lock step. We keep
//! OpenBSD's comparison (it is what peers on the wire expect) and add jitter there only: the
//! master-down timer armed after stepping back for an [`Reason::EqualMaster`] runs
//! `3 × I + j` with `j` uniform in `[0, I/4)`. A quarter interval is far more than a link
//! delay (250 ms at advbase 1, about 1 ms at the shortest interval), so the first timer to
//! fire makes its advert arrive before the other fires, while the worst-case takeover stays
//! within `3.25 × I`. The jitter comes from a small deterministic generator seeded with
//! the `entropy` the daemon passes to [`Vhid::new`] (a random value there, a fixed one in
//! tests), so the machine stays reproducible. Every other timer (first after coming up,
//! restarts on a received advert) gets no jitter, so failure detection stays exactly `3 × I`.
//!
//! # A backup that overslept its master-down deadline
//! A master-down timer that fires a quarter of [`Vhid::oversleep_grace`] (one interval, at
//! most [`OVERSLEEP_GRACE_MAX`]) or more after its deadline means that this host was not
//! running when the deadline passed (carpd's timers fire within tens of microseconds
//! otherwise): its CPU was taken (steal on a VM, a busier real-time task), or the whole
//! machine stood still. A master on the same machine, or on one frozen by the same host,
//! stood still too, and its next advert is on its way the moment it runs again; the silence
//! this backup slept through says nothing about the master. So the first late expiry since
//! an advert armed the timer moves the deadline to `now + grace`
//! ([`Action::MasterDownPostponed`]); an advert (or a repeat the dataplane saw) in that time
//! re-arms the timer as usual, and without one the backup takes over when it fires again,
//! whether that is late or not. A timer that fires on time takes over at once, so failover
//! is unchanged; a backup that overslept takes over at most one grace later than it would
//! have. Seen in the bench's 10-minute soaks at advbase 0 (`0/1`, master-down 11.7 ms): the
//! hypervisor held both virtual CPUs, the master's adverts stopped for 15.8 ms, and the
//! backup, its timer 3.9 ms late, took over 0.13 ms before the master's next advert came:
//! two state changes (a first version of this rule, which waited only after a whole
//! interval late, missed that one by microseconds). Later takeover only widens the gap the
//! dataplane's fail-silent deadline keeps (`crate::dataplane::master_hold`). OpenBSD has no
//! such rule: its timeouts run from the kernel's softclock, which a stalled VM delays alike.
//!
//! # Announcements
//! A takeover sends a gratuitous ARP for every IPv4 address and an unsolicited neighbour
//! advertisement for every IPv6 address ([`Announcement::ArpAndNa`]); after the second advert
//! that follows, only the ARP is repeated ([`Announcement::ArpOnly`], OpenBSD's
//! `sc_delayed_arp`): neighbour advertisements go out once per takeover.
//!
//! # Split brain healing
//! A MASTER that hears a valid advert from a worse master (one it does not step back for)
//! sends an advert and a full announcement at once, at most once per interval; its state does
//! not change. OpenBSD ignores such an advert and lets the intruder step back when it hears
//! our next regular advert; keepalived re-advertises at once (its issues #166, #1528: users
//! lost their VIPs to switches that learned the intruder's port during a brief double
//! master). Answering at once makes the intruder step back within a round trip and pulls the
//! switches and neighbours back to us; the once-per-interval limit keeps a peer that keeps
//! advertising worse values from making us flood.
//!
//! # Where this differs from OpenBSD, on purpose
//! - A repeated [`Event::Up`] (or [`Event::Addresses`]) does not restart running timers:
//!   OpenBSD's `carp_setrun_all(sc, 0)` re-arms them on every ioctl, which would let a chatty
//!   event source postpone master-down forever. Newly present families get a timer.
//! - Adding an address does not pass through INIT (OpenBSD's `carp_set_addr` does).
//! - Split brain healing (above).
//!
//! # Left to the caller
//! - Whether the interface may run (admin up, carpdev link up, addresses present) is the
//!   daemon's knowledge; it reports it with [`Event::Up`], [`Event::LinkDown`],
//!   [`Event::AdminDown`], [`Event::Addresses`].
//! - Group demote counters live in the daemon; it reports the advertised value with
//!   [`Event::DemoteChanged`] (recorded, sent with the next advert) and applies the
//!   [`Action::AdjustDemote`] this machine asks for after send errors. Which demote changes
//!   are advertised at once (`carp_send_ad_all`, the `SIOCSIFGATTR` case of `carp_ioctl`) is
//!   decided across interfaces, by the daemon: it sends [`Event::AdvertiseNow`]. The demotion
//!   for carpdev link loss (`carp_carpdev_state`) is interface-level and the daemon's too.
//! - The counter, HMAC and packets: see [`super::hmac`] and [`super::packet`].
use std::time::Duration;

use carp_common::wire::{CARP_BOW_OUT, CARP_MAX_ADVSKEW};

use super::packet::{advertised_us, interval};

/// The longest a BACKUP whose master-down timer fired late waits for adverts held up by the
/// same stall (see the module doc): its interval below this, this at longer intervals, where
/// it stays small against the 3 s or more of a failover.
pub const OVERSLEEP_GRACE_MAX: Duration = Duration::from_millis(50);

/// Whether a master-down timer due `at` and fired `now` was overslept: a quarter of `grace`
/// or more late, and not already postponed to `at` (see the module doc). CARP's and VRRP's
/// machines share the rule.
pub(crate) fn overslept(
    at: Duration,
    now: Duration,
    grace: Duration,
    postponed_to: Option<Duration>,
) -> bool {
    now - at >= grace / 4 && postponed_to != Some(at)
}

/// Consecutive failed sends before the machine asks for demotion, and successful ones after
/// that before it asks to undo it (OpenBSD `CARP_SENDAD_MAX_ERRORS`/`CARP_SENDAD_MIN_SUCCESS`
/// with one vhid per carp interface).
const SENDAD_ERRORS: u32 = 3;

/// The election state of a vhid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not taking part: the interface is down, has no carpdev link or no addresses.
    Init,
    /// Listening for a master; takes over when its master-down timer fires.
    Backup,
    /// Owns the addresses and advertises.
    Master,
}

impl State {
    /// OpenBSD's names, as ifconfig prints them.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Init => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IP family: adverts are sent, and master-down timed, per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    const fn index(self) -> usize {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

/// Which address families a carp interface has addresses of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Families {
    pub v4: bool,
    pub v6: bool,
}

impl Families {
    pub const NONE: Families = Families {
        v4: false,
        v6: false,
    };
    pub const V4: Families = Families {
        v4: true,
        v6: false,
    };
    pub const V6: Families = Families {
        v4: false,
        v6: true,
    };
    pub const BOTH: Families = Families { v4: true, v6: true };

    pub const fn contains(self, family: Family) -> bool {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }

    pub const fn is_empty(self) -> bool {
        !self.v4 && !self.v6
    }

    fn iter(self) -> impl Iterator<Item = Family> {
        [Family::V4, Family::V6]
            .into_iter()
            .filter(move |f| self.contains(*f))
    }
}

/// `ifconfig carpN state master|backup`: from the configuration's `state` or carpctl's, the
/// one type for both (on the control socket as `"master"` / `"backup"`). OpenBSD's kernel
/// refuses to force INIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForcedState {
    Master,
    Backup,
}

/// The configured identity and timing of a vhid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VhidParams {
    /// 1..=255.
    pub vhid: u8,
    /// Seconds, 0..=255 (0 is legal: sub-second CARP).
    pub advbase: u8,
    /// 0..=254; 255 only appears in the bow-out advert.
    pub advskew: u8,
}

impl VhidParams {
    /// Checks the ranges OpenBSD's `SIOCSVH` enforces.
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.vhid == 0 {
            return Err(ParamError::VhidZero);
        }
        if self.advskew > CARP_MAX_ADVSKEW {
            return Err(ParamError::AdvskewTooLarge(self.advskew));
        }
        Ok(())
    }
}

/// A parameter outside what OpenBSD accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error("vhid 0 is not a valid virtual host id (1-255)")]
    VhidZero,
    #[error("advskew {0} is out of range (0-254; 255 is reserved for the bow-out advert)")]
    AdvskewTooLarge(u8),
}

/// Something that happened to the vhid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The interface can run: it is up, its carpdev has link, and it has addresses of these
    /// families (OpenBSD IFF_RUNNING). INIT → BACKUP. When already running, only records the
    /// families (see [`Event::Addresses`]). No effect with no families.
    Up(Families),
    /// The interface's address families changed. With none left, → INIT (no bow-out, as
    /// OpenBSD's `carp_addr_updated`); a family that appears gets its master-down timer, one
    /// that goes loses it.
    Addresses(Families),
    /// The carpdev lost link or went down: → INIT at once, no bow-out (it could not be sent).
    LinkDown,
    /// The carp interface was configured down: a master sends the bow-out advert
    /// (advbase 255, advskew 255), then → INIT.
    AdminDown,
    /// carpd is stopping: as [`Event::AdminDown`], with its own reason.
    Shutdown,
    /// An authenticated advert from a peer (see [`super::check_advert`]).
    AdvertReceived {
        family: Family,
        advbase: u8,
        advskew: u8,
        demote: u8,
    },
    /// [`Vhid::next_deadline`] has passed: runs every timer due by `now`.
    TimerExpired,
    /// The dataplane consumed repeats of the master advert this BACKUP last restarted its
    /// `family` master-down timer for, the last one at `at` (same clock as `now`; a time
    /// after `now` counts as `now`). Handled as that advert received at `at`; ignored unless
    /// BACKUP with such an advert, or when `at` would not move the timer later.
    AdvertSeen { family: Family, at: Duration },
    /// The demote count this vhid advertises (the capped sum over its interface's groups)
    /// is now this. Recorded for the next advert and for comparisons; the daemon decides
    /// whether it goes out at once ([`Event::AdvertiseNow`]).
    DemoteChanged(u8),
    /// A master sends an advert now (OpenBSD `carp_send_ad` called from `carp_send_ad_all` or
    /// for a raised group demotion), and the next one an interval later. Ignored unless
    /// MASTER.
    AdvertiseNow,
    /// `ifconfig carpN state master|backup`. MASTER acts as if the master-down timer fired;
    /// BACKUP stops advertising and waits. Ignored in INIT, as OpenBSD ignores it.
    ForceState(ForcedState),
    /// Whether sending one advert packet worked. Report one per packet (an interface with
    /// IPv4 and IPv6 addresses sends two per advert), as OpenBSD counts per `ip_output` /
    /// `ip6_output`.
    AdvertSendResult { ok: bool },
}

impl Event {
    /// The event for an authenticated advert.
    pub fn advert(family: Family, header: &super::CarpHeader) -> Self {
        Event::AdvertReceived {
            family,
            advbase: header.advbase,
            advskew: header.advskew,
            demote: header.demote,
        }
    }
}

/// Something the daemon must do, in the order returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send one advert with these values, one packet per address family the interface
    /// has; then report each result with [`Event::AdvertSendResult`].
    SendAdvert {
        advbase: u8,
        advskew: u8,
        demote: u8,
    },
    /// Announce the virtual addresses to the link: see [`Announcement`]. Comes right after
    /// the takeover advert, as the ARP-only repeat after the second advert that follows it,
    /// and when healing a split brain.
    Announce(Announcement),
    /// The state changed.
    StateChanged {
        from: State,
        to: State,
        reason: Reason,
    },
    /// Add this to the demote counter of every group of the interface (the kernel-side
    /// adjustment: clamp at 0, never refuse).
    AdjustDemote(i8),
    /// A master-down timer fired `late` after its deadline: this host overslept it, and the
    /// machine waits `grace` for adverts held up by the same stall before taking over (see
    /// the module doc). Nothing to send; for logs and counters.
    MasterDownPostponed { late: Duration, grace: Duration },
}

/// What an [`Action::Announce`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Announcement {
    /// Gratuitous ARP for every IPv4 address (sender MAC the virtual MAC) and an unsolicited
    /// neighbour advertisement (override flag; router flag when forwarding) for every IPv6
    /// address: on takeover and when healing a split brain.
    ArpAndNa,
    /// Gratuitous ARP only: OpenBSD's delayed repeat (`sc_delayed_arp`) for switches that
    /// missed the first; neighbour advertisements are sent once per takeover.
    ArpOnly,
}

/// Why the state changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// INIT → BACKUP: the interface can run.
    Up,
    /// BACKUP → MASTER: no advert within the master-down timeout.
    MasterDownTimer,
    /// BACKUP → MASTER: preempt is on, we advertise more often and are not more demoted.
    Preempt,
    /// BACKUP → MASTER: the master advertises a higher demote count than ours.
    MasterDemoted,
    /// BACKUP → MASTER: the master advertises so rarely that it would time out anyway.
    MasterTooSlow,
    /// BACKUP → MASTER: the master sent the bow-out advert (255/255).
    BowOut,
    /// MASTER → BACKUP: a master with the same demote count that advertises more often.
    PreferredMaster,
    /// MASTER → BACKUP: a master with exactly our settings (both step back; timing decides).
    EqualMaster,
    /// MASTER → BACKUP: a master with a lower demote count than ours.
    Demoted,
    /// `ifconfig carpN state master|backup`.
    Forced,
    /// → INIT: the carpdev lost link or went down.
    LinkDown,
    /// → INIT: the interface was configured down.
    AdminDown,
    /// → INIT: carpd is stopping.
    Shutdown,
    /// → INIT: the interface has no addresses left.
    NoAddresses,
}

impl Reason {
    /// A stable, short name for logs and counters.
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Up => "up",
            Reason::MasterDownTimer => "master-down",
            Reason::Preempt => "preempt",
            Reason::MasterDemoted => "master-demoted",
            Reason::MasterTooSlow => "master-too-slow",
            Reason::BowOut => "bow-out",
            Reason::PreferredMaster => "preferred-master",
            Reason::EqualMaster => "equal-master",
            Reason::Demoted => "demoted",
            Reason::Forced => "forced",
            Reason::LinkDown => "link-down",
            Reason::AdminDown => "admin-down",
            Reason::Shutdown => "shutdown",
            Reason::NoAddresses => "no-addresses",
        }
    }

    /// A sentence for humans.
    pub const fn description(self) -> &'static str {
        match self {
            Reason::Up => "interface up",
            Reason::MasterDownTimer => "master down timer expired",
            Reason::Preempt => "preempting a less frequent master",
            Reason::MasterDemoted => "master advertises a higher demote count",
            Reason::MasterTooSlow => "master advertises too rarely to stay master",
            Reason::BowOut => "master bowed out",
            Reason::PreferredMaster => "more preferred master seen",
            Reason::EqualMaster => "master with identical settings seen",
            Reason::Demoted => "master with a lower demote count seen",
            Reason::Forced => "state forced by the administrator",
            Reason::LinkDown => "carpdev link down",
            Reason::AdminDown => "interface down",
            Reason::Shutdown => "carpd shutting down",
            Reason::NoAddresses => "no addresses left",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// The election of one vhid.
#[derive(Debug, Clone)]
pub struct Vhid {
    params: VhidParams,
    preempt: bool,
    state: State,
    families: Families,
    demote: u8,
    /// MASTER: when the next advert is due.
    advert_at: Option<Duration>,
    /// BACKUP: master-down deadline per family, indexed by [`Family::index`].
    master_down_at: [Option<Duration>; 2],
    /// BACKUP: per family, the advert that last restarted the master-down timer (the master
    /// followed), for [`Event::AdvertSeen`].
    followed: [Option<Followed>; 2],
    /// BACKUP: per family, the deadline a late master-down timer was moved to. While the
    /// timer still holds that deadline (no advert re-armed it), it is not postponed again.
    postponed_to: [Option<Duration>; 2],
    /// MASTER: adverts still to send before the takeover announcement is repeated.
    delayed_announce: Option<u8>,
    send_errors: u32,
    send_successes: u32,
    /// MASTER: when we last answered a worse master (split brain healing).
    healed_at: Option<Duration>,
    /// State of the jitter generator.
    jitter_state: u64,
}

/// The values of an advert a BACKUP restarted its timer for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Followed {
    advbase: u8,
    advskew: u8,
    demote: u8,
}

impl Vhid {
    /// A vhid in INIT. `preempt` is OpenBSD's `net.inet.carp.preempt`; `entropy` seeds the
    /// tie-breaking jitter (pass a random value; equal values on two hosts defeat it).
    pub fn new(params: VhidParams, preempt: bool, entropy: u64) -> Result<Self, ParamError> {
        params.validate()?;
        Ok(Self {
            params,
            preempt,
            state: State::Init,
            families: Families::NONE,
            demote: 0,
            advert_at: None,
            master_down_at: [None, None],
            followed: [None, None],
            postponed_to: [None, None],
            delayed_announce: None,
            send_errors: 0,
            send_successes: 0,
            healed_at: None,
            jitter_state: entropy,
        })
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn params(&self) -> VhidParams {
        self.params
    }

    pub fn preempt(&self) -> bool {
        self.preempt
    }

    /// The demote count this vhid advertises and compares with.
    pub fn demote(&self) -> u8 {
        self.demote
    }

    pub fn families(&self) -> Families {
        self.families
    }

    /// Our advertisement interval.
    pub fn interval(&self) -> Duration {
        interval(self.params.advbase, self.params.advskew)
    }

    /// Our master-down timeout, 3 × [`interval`](Self::interval).
    pub fn master_down_interval(&self) -> Duration {
        self.interval() * 3
    }

    /// How long a backup that overslept its master-down deadline waits for adverts held up
    /// by the same stall: one interval, at most [`OVERSLEEP_GRACE_MAX`]. It overslept when the
    /// timer fired a quarter of this or more late (see the module doc).
    pub fn oversleep_grace(&self) -> Duration {
        self.interval().min(OVERSLEEP_GRACE_MAX)
    }

    /// When the daemon must send [`Event::TimerExpired`] next; `None` when no timer runs.
    pub fn next_deadline(&self) -> Option<Duration> {
        [
            self.advert_at,
            self.master_down_at[0],
            self.master_down_at[1],
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sets `net.inet.carp.preempt`; takes effect with the next advert received.
    pub fn set_preempt(&mut self, preempt: bool) {
        self.preempt = preempt;
    }

    /// Changes advbase and advskew at run time (`ifconfig carpN advbase .. advskew ..`).
    /// Like OpenBSD's `carp_setrun`, a master's next advert is rescheduled one new interval
    /// from `now`, and a backup's master-down timers three.
    pub fn set_timing(
        &mut self,
        now: Duration,
        advbase: u8,
        advskew: u8,
    ) -> Result<(), ParamError> {
        let params = VhidParams {
            advbase,
            advskew,
            ..self.params
        };
        params.validate()?;
        self.params = params;
        match self.state {
            State::Init => {}
            State::Backup => {
                for f in self.families.iter() {
                    self.master_down_at[f.index()] = Some(now + self.master_down_interval());
                }
            }
            State::Master => self.advert_at = Some(now + self.interval()),
        }
        Ok(())
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, now: Duration, event: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match event {
            Event::Up(families) => self.on_up(now, families, &mut out),
            Event::Addresses(families) => self.on_addresses(now, families, &mut out),
            Event::LinkDown => self.enter_init(Reason::LinkDown, &mut out),
            Event::AdminDown => self.bow_out(Reason::AdminDown, &mut out),
            Event::Shutdown => self.bow_out(Reason::Shutdown, &mut out),
            Event::AdvertReceived {
                family,
                advbase,
                advskew,
                demote,
            } => self.on_advert(now, family, advbase, advskew, demote, &mut out),
            Event::TimerExpired => self.on_timers(now, &mut out),
            Event::AdvertSeen { family, at } => self.on_advert_seen(now, family, at, &mut out),
            Event::DemoteChanged(demote) => self.demote = demote,
            Event::AdvertiseNow => {
                if self.state == State::Master {
                    self.advertise(now, &mut out);
                }
            }
            Event::ForceState(ForcedState::Master) => {
                if self.state == State::Backup {
                    self.become_master(now, Reason::Forced, &mut out);
                }
            }
            Event::ForceState(ForcedState::Backup) => {
                if self.state == State::Master {
                    self.become_backup(now, Reason::Forced, false, &mut out);
                }
            }
            Event::AdvertSendResult { ok } => self.on_send_result(ok, &mut out),
        }
        out
    }

    fn on_up(&mut self, now: Duration, families: Families, out: &mut Vec<Action>) {
        if self.state != State::Init {
            self.on_addresses(now, families, out);
            return;
        }
        self.families = families;
        if families.is_empty() {
            return;
        }
        self.transition(State::Backup, Reason::Up, out);
        self.delayed_announce = None;
        // carp_setrun: exactly 3 intervals, no jitter.
        let first = self.master_down_interval();
        for f in families.iter() {
            self.master_down_at[f.index()] = Some(now + first);
        }
    }

    fn on_addresses(&mut self, now: Duration, families: Families, out: &mut Vec<Action>) {
        self.families = families;
        if self.state == State::Init {
            return;
        }
        if families.is_empty() {
            self.enter_init(Reason::NoAddresses, out);
            return;
        }
        if self.state == State::Backup {
            let timeout = self.master_down_interval();
            for f in [Family::V4, Family::V6] {
                let slot = &mut self.master_down_at[f.index()];
                match (families.contains(f), *slot) {
                    (true, None) => *slot = Some(now + timeout),
                    (false, Some(_)) => *slot = None,
                    _ => {}
                }
            }
        }
    }

    fn on_advert(
        &mut self,
        now: Duration,
        family: Family,
        advbase: u8,
        advskew: u8,
        demote: u8,
        out: &mut Vec<Action>,
    ) {
        let ours = advertised_us(self.params.advbase, self.params.advskew);
        let theirs = advertised_us(advbase, advskew);
        match self.state {
            State::Init => {}
            State::Master => {
                let reason = if demote < self.demote {
                    Reason::Demoted
                } else if theirs < ours && demote <= self.demote {
                    Reason::PreferredMaster
                } else if theirs == ours && demote == self.demote {
                    Reason::EqualMaster
                } else {
                    self.heal(now, out);
                    return;
                };
                self.become_backup(now, reason, reason == Reason::EqualMaster, out);
            }
            State::Backup => match self.backup_verdict(advbase, advskew, demote) {
                Some(reason) => self.become_master(now, reason, out),
                None => {
                    self.master_down_at[family.index()] = Some(now + self.master_down_interval());
                    self.followed[family.index()] = Some(Followed {
                        advbase,
                        advskew,
                        demote,
                    });
                }
            },
        }
    }

    /// What a BACKUP does with a valid advert: take over (why), or `None` to follow it and
    /// restart the master-down timer of its family.
    fn backup_verdict(&self, advbase: u8, advskew: u8, demote: u8) -> Option<Reason> {
        let ours = advertised_us(self.params.advbase, self.params.advskew);
        let theirs = advertised_us(advbase, advskew);
        // OpenBSD: sc_tv.tv_sec = advbase * 3, tv_usec still our advskew.
        let too_slow_above =
            u64::from(self.params.advbase) * 3_000_000 + advertised_us(0, self.params.advskew);
        if self.preempt && ours < theirs && demote >= self.demote {
            Some(Reason::Preempt)
        } else if demote > self.demote {
            Some(Reason::MasterDemoted)
        } else if self.params.advbase != 0 && theirs > too_slow_above {
            if advbase == CARP_BOW_OUT && advskew == CARP_BOW_OUT {
                Some(Reason::BowOut)
            } else {
                Some(Reason::MasterTooSlow)
            }
        } else {
            None
        }
    }

    /// Repeats of the followed advert, the last at `at`: that advert received at `at`. A
    /// takeover it causes happens now (its advert and announcement go out now).
    fn on_advert_seen(
        &mut self,
        now: Duration,
        family: Family,
        at: Duration,
        out: &mut Vec<Action>,
    ) {
        if self.state != State::Backup || !self.families.contains(family) {
            return;
        }
        let (Some(seen), Some(armed)) = (
            self.followed[family.index()],
            self.master_down_at[family.index()],
        ) else {
            return;
        };
        let at = at.min(now);
        let rearmed = at + self.master_down_interval();
        if rearmed <= armed {
            return; // not newer than what armed the timer
        }
        match self.backup_verdict(seen.advbase, seen.advskew, seen.demote) {
            Some(reason) => self.become_master(now, reason, out),
            None => self.master_down_at[family.index()] = Some(rearmed),
        }
    }

    /// How early a master's regular advert may leave, to share a wake-up with the adverts
    /// of other vhids due at about the same time: 1/256 of the interval (3.9 ms at advbase
    /// 1, 15 µs at the shortest interval). An advert a little early never brings a backup
    /// closer to declaring the master down, and the schedule keeps its phase. Master-down
    /// timers never fire early.
    pub fn advert_slack(&self) -> Duration {
        self.interval() / 256
    }

    /// Lends the next `count` regular adverts to a pacer that sends them on this machine's
    /// schedule (carpd's advert pacer): returns the deadline of the first, and the machine's
    /// own next advert becomes the one after the last lent. Only a MASTER with nothing
    /// else riding on its adverts lends: no takeover announcement still to repeat and no
    /// send error counted, since those need to see each advert. Until the adverts are
    /// given back ([`Vhid::adverts_returned`]) the machine must be fed no event.
    pub fn lend_adverts(&mut self, count: u32) -> Option<Duration> {
        if self.state != State::Master
            || self.delayed_announce.is_some()
            || self.send_errors > 0
            || count == 0
        {
            return None;
        }
        let first = self.advert_at?;
        self.advert_at = Some(first + self.interval() * count);
        Some(first)
    }

    /// The pacer gave the lent adverts back: `next` is the deadline of the first it did not
    /// send. The machine's schedule continues from there (earlier than the one it kept
    /// after the loan, unless the pacer sent them all).
    pub fn adverts_returned(&mut self, next: Duration) {
        if self.state == State::Master {
            self.advert_at = Some(self.advert_at.map_or(next, |at| at.min(next)));
        }
    }

    /// Whether [`Event::TimerExpired`] at `now` would fire a timer: a deadline has passed,
    /// or the next advert is due within [`advert_slack`](Self::advert_slack).
    pub fn is_due(&self, now: Duration) -> bool {
        self.next_deadline().is_some_and(|d| d <= now) || self.advert_due(now).is_some()
    }

    /// The next advert's deadline, if it may go out at `now`.
    fn advert_due(&self, now: Duration) -> Option<Duration> {
        self.advert_at
            .filter(|at| at.saturating_sub(self.advert_slack()) <= now)
    }

    fn on_timers(&mut self, now: Duration, out: &mut Vec<Action>) {
        // Until nothing is due (adverts only in MASTER, master-down timers only in BACKUP).
        // Each branch clears or moves its deadline past `now` plus the slack, so the loop
        // ends.
        loop {
            if let Some(due) = self.advert_due(now) {
                self.advertise(now, out);
                // The schedule keeps its phase: the next advert is due an interval after
                // this one was due, not after it went out, so a late wake-up does not delay
                // every advert that follows. A timer so late that the next one would be due
                // at once starts the schedule again from now: one advert, never a burst.
                let next = due + self.interval();
                if next.saturating_sub(self.advert_slack()) > now {
                    self.advert_at = Some(next);
                }
            } else if self.master_down_at.iter().flatten().any(|d| *d <= now) {
                if self.state == State::Backup {
                    if !self.postpone_overslept_master_down(now, out) {
                        self.become_master(now, Reason::MasterDownTimer, out);
                    }
                } else {
                    // Master-down timers only run in BACKUP; never leave a stale one behind.
                    self.master_down_at = [None, None];
                }
            } else {
                break;
            }
        }
    }

    /// Moves every expired master-down deadline to `now` plus the grace if this host
    /// overslept them all, and none was postponed before (see the module doc); false, with
    /// nothing changed, when the backup must take over now.
    fn postpone_overslept_master_down(&mut self, now: Duration, out: &mut Vec<Action>) -> bool {
        let grace = self.oversleep_grace();
        let expired: Vec<(usize, Duration)> = (0..2)
            .filter_map(|i| {
                self.master_down_at[i]
                    .filter(|at| *at <= now)
                    .map(|at| (i, at))
            })
            .collect();
        if expired.is_empty()
            || !expired
                .iter()
                .all(|&(i, at)| overslept(at, now, grace, self.postponed_to[i]))
        {
            return false;
        }
        let late = expired
            .iter()
            .map(|&(_, at)| now - at)
            .min()
            .unwrap_or_default();
        for (i, _) in expired {
            self.master_down_at[i] = Some(now + grace);
            self.postponed_to[i] = Some(now + grace);
        }
        out.push(Action::MasterDownPostponed { late, grace });
        true
    }

    /// A worse master is on the link: advertise and announce at once so that it steps back
    /// and the link learns our port again, at most once per interval.
    fn heal(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self
            .healed_at
            .is_some_and(|at| now < at.saturating_add(self.interval()))
        {
            return;
        }
        self.healed_at = Some(now);
        self.advertise(now, out);
        // A delayed ARP repeat due with this advert is covered by the full announcement.
        if out.last() == Some(&Action::Announce(Announcement::ArpOnly)) {
            out.pop();
        }
        out.push(Action::Announce(Announcement::ArpAndNa));
    }

    /// `carp_master_down` from BACKUP: advertise, announce, then advertise every interval.
    fn become_master(&mut self, now: Duration, reason: Reason, out: &mut Vec<Action>) {
        self.transition(State::Master, reason, out);
        self.master_down_at = [None, None];
        out.push(self.advert_action());
        out.push(Action::Announce(Announcement::ArpAndNa));
        self.delayed_announce = Some(2);
        self.healed_at = None;
        self.advert_at = Some(now + self.interval());
    }

    /// MASTER → BACKUP: stop advertising, cancel a pending repeat of the announcement, and
    /// time the master from now on (`carp_setrun(vhe, 0)`).
    fn become_backup(&mut self, now: Duration, reason: Reason, tie: bool, out: &mut Vec<Action>) {
        self.transition(State::Backup, reason, out);
        self.advert_at = None;
        self.delayed_announce = None;
        let timeout =
            self.master_down_interval() + if tie { self.jitter() } else { Duration::ZERO };
        for f in self.families.iter() {
            self.master_down_at[f.index()] = Some(now + timeout);
        }
    }

    /// A master's advert (regular, [`Event::AdvertiseNow`], or healing a split brain), with
    /// the delayed ARP-only repeat of the takeover announcement (`sc_delayed_arp`); the next
    /// regular one follows an interval later, as `carp_send_ad` re-arms `ad_tmo`.
    fn advertise(&mut self, now: Duration, out: &mut Vec<Action>) {
        out.push(self.advert_action());
        if let Some(left) = self.delayed_announce {
            let left = left.saturating_sub(1);
            if left == 0 {
                out.push(Action::Announce(Announcement::ArpOnly));
                self.delayed_announce = None;
            } else {
                self.delayed_announce = Some(left);
            }
        }
        self.advert_at = Some(now + self.interval());
    }

    /// Going down: a master says so with the bow-out advert first.
    fn bow_out(&mut self, reason: Reason, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::SendAdvert {
                advbase: CARP_BOW_OUT,
                advskew: CARP_BOW_OUT,
                demote: self.demote,
            });
        }
        self.enter_init(reason, out);
    }

    fn enter_init(&mut self, reason: Reason, out: &mut Vec<Action>) {
        self.advert_at = None;
        self.master_down_at = [None, None];
        self.delayed_announce = None;
        self.transition(State::Init, reason, out);
    }

    /// OpenBSD's send-error accounting in `carp_send_ad`.
    fn on_send_result(&mut self, ok: bool, out: &mut Vec<Action>) {
        if !ok {
            self.send_errors = self.send_errors.saturating_add(1);
            if self.send_errors == SENDAD_ERRORS {
                out.push(Action::AdjustDemote(1));
            }
            self.send_successes = 0;
        } else if self.send_errors >= SENDAD_ERRORS {
            self.send_successes = self.send_successes.saturating_add(1);
            if self.send_successes >= SENDAD_ERRORS {
                out.push(Action::AdjustDemote(-1));
                self.send_errors = 0;
            }
        } else {
            self.send_errors = 0;
        }
    }

    fn advert_action(&self) -> Action {
        Action::SendAdvert {
            advbase: self.params.advbase,
            advskew: self.params.advskew,
            demote: self.demote,
        }
    }

    fn transition(&mut self, to: State, reason: Reason, out: &mut Vec<Action>) {
        if self.state != to {
            // A master followed in BACKUP is judged anew after any change, and a new
            // BACKUP's late timer may be postponed again.
            self.followed = [None, None];
            self.postponed_to = [None, None];
            out.push(Action::StateChanged {
                from: self.state,
                to,
                reason,
            });
            self.state = to;
        }
    }

    /// Uniform in `[0, interval / 4)`, from SplitMix64 over the injected entropy.
    fn jitter(&mut self) -> Duration {
        self.jitter_state = self.jitter_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.jitter_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let span = self.interval().as_nanos() / 4;
        // span < 2^38 ns and the fraction has 53 bits: the product fits in a u128, the
        // result in a u64.
        let nanos = (span * u128::from(z >> 11)) >> 53;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Duration = Duration::from_secs(100);

    const TAKEOVER_ANNOUNCE: Action = Action::Announce(Announcement::ArpAndNa);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn vhid(advbase: u8, advskew: u8, preempt: bool) -> Vhid {
        Vhid::new(
            VhidParams {
                vhid: 1,
                advbase,
                advskew,
            },
            preempt,
            42,
        )
        .unwrap()
    }

    fn changed(from: State, to: State, reason: Reason) -> Action {
        Action::StateChanged { from, to, reason }
    }

    fn advert(advbase: u8, advskew: u8, demote: u8) -> Action {
        Action::SendAdvert {
            advbase,
            advskew,
            demote,
        }
    }

    fn rx(advbase: u8, advskew: u8, demote: u8) -> Event {
        Event::AdvertReceived {
            family: Family::V4,
            advbase,
            advskew,
            demote,
        }
    }

    /// A vhid brought up at T0 with IPv4 addresses.
    fn backup(advbase: u8, advskew: u8, preempt: bool) -> Vhid {
        let mut v = vhid(advbase, advskew, preempt);
        v.handle(T0, Event::Up(Families::V4));
        assert_eq!(v.state(), State::Backup);
        v
    }

    /// A vhid that became master at T0 (forced), its takeover actions drained.
    fn master(advbase: u8, advskew: u8, preempt: bool) -> Vhid {
        let mut v = backup(advbase, advskew, preempt);
        v.handle(T0, Event::ForceState(ForcedState::Master));
        assert_eq!(v.state(), State::Master);
        v
    }

    #[test]
    fn params_are_validated() {
        let p = VhidParams {
            vhid: 0,
            advbase: 1,
            advskew: 0,
        };
        assert_eq!(Vhid::new(p, false, 0).unwrap_err(), ParamError::VhidZero);
        let p = VhidParams {
            vhid: 1,
            advbase: 1,
            advskew: 255,
        };
        assert_eq!(
            Vhid::new(p, false, 0).unwrap_err(),
            ParamError::AdvskewTooLarge(255)
        );
        let p = VhidParams {
            vhid: 255,
            advbase: 0,
            advskew: 254,
        };
        assert!(Vhid::new(p, false, 0).is_ok());
    }

    #[test]
    fn starts_in_init_without_timers() {
        let v = vhid(1, 0, false);
        assert_eq!(v.state(), State::Init);
        assert_eq!(v.next_deadline(), None);
        assert_eq!(v.interval(), Duration::from_secs(1));
        assert_eq!(v.master_down_interval(), Duration::from_secs(3));
    }

    #[test]
    fn up_goes_to_backup_with_exactly_three_intervals() {
        // carp_setrun; OpenBSD's carp_1.sh: the better host is master 3.1 s after
        // configuring at advbase 1. No seed changes that.
        for seed in [0, 7, 42, u64::MAX] {
            let mut v = Vhid::new(
                VhidParams {
                    vhid: 1,
                    advbase: 1,
                    advskew: 0,
                },
                false,
                seed,
            )
            .unwrap();
            let a = v.handle(T0, Event::Up(Families::V4));
            assert_eq!(a, vec![changed(State::Init, State::Backup, Reason::Up)]);
            assert_eq!(v.next_deadline(), Some(T0 + ms(3000)));
            assert_eq!(v.master_down_at[Family::V6.index()], None);
        }
        // Both families, and a link that comes back: 3 intervals again.
        let mut v = vhid(1, 128, false);
        v.handle(T0, Event::Up(Families::BOTH));
        assert_eq!(v.master_down_at, [Some(T0 + ms(4500)); 2]);
        v.handle(T0 + ms(10), Event::LinkDown);
        v.handle(T0 + ms(20), Event::Up(Families::BOTH));
        assert_eq!(v.next_deadline(), Some(T0 + ms(4520)));
    }

    #[test]
    fn jitter_depends_only_on_the_seed() {
        let deadline = |seed| {
            let mut v = Vhid::new(
                VhidParams {
                    vhid: 1,
                    advbase: 1,
                    advskew: 0,
                },
                false,
                seed,
            )
            .unwrap();
            v.handle(T0, Event::Up(Families::V4));
            v.handle(T0, Event::ForceState(ForcedState::Master));
            v.handle(T0 + ms(10), rx(1, 0, 0));
            v.next_deadline().unwrap()
        };
        assert_eq!(deadline(7), deadline(7));
        assert_ne!(deadline(7), deadline(8));
    }

    #[test]
    fn up_without_addresses_stays_in_init() {
        let mut v = vhid(1, 0, false);
        assert!(v.handle(T0, Event::Up(Families::NONE)).is_empty());
        assert_eq!(v.state(), State::Init);
        assert_eq!(v.next_deadline(), None);
    }

    #[test]
    fn repeated_up_does_not_postpone_master_down() {
        let mut v = backup(1, 0, false);
        let d = v.next_deadline();
        assert!(v.handle(T0 + ms(2000), Event::Up(Families::V4)).is_empty());
        assert_eq!(v.next_deadline(), d);
    }

    #[test]
    fn master_down_timer_takes_over() {
        let mut v = backup(1, 0, false);
        let due = v.next_deadline().unwrap();
        assert!(v.handle(due - ms(1), Event::TimerExpired).is_empty());
        let a = v.handle(due, Event::TimerExpired);
        assert_eq!(
            a,
            vec![
                changed(State::Backup, State::Master, Reason::MasterDownTimer),
                advert(1, 0, 0),
                TAKEOVER_ANNOUNCE,
            ]
        );
        assert_eq!(v.next_deadline(), Some(due + ms(1000)));
    }

    #[test]
    fn master_advertises_every_interval_and_repeats_the_announcement_once() {
        let mut v = master(1, 0, false);
        let mut t = T0;
        // First regular advert: no announcement yet.
        t += ms(1000);
        assert_eq!(v.next_deadline(), Some(t));
        assert_eq!(v.handle(t, Event::TimerExpired), vec![advert(1, 0, 0)]);
        // Second: the delayed repeat.
        t += ms(1000);
        assert_eq!(
            v.handle(t, Event::TimerExpired),
            vec![advert(1, 0, 0), Action::Announce(Announcement::ArpOnly)]
        );
        // Then never again.
        for _ in 0..5 {
            t += ms(1000);
            assert_eq!(v.handle(t, Event::TimerExpired), vec![advert(1, 0, 0)]);
        }
    }

    #[test]
    fn the_next_advert_is_armed_from_the_previous_deadline_not_the_send_time() {
        let mut v = master(0, 0, false);
        let interval = v.interval();
        let mut due = v.next_deadline().unwrap();
        for late in [us(40), us(900), us(3000), us(10)] {
            let sent = v.handle(due + late, Event::TimerExpired);
            assert_eq!(sent.first(), Some(&advert(0, 0, 0)));
            assert_eq!(
                v.next_deadline(),
                Some(due + interval),
                "woken {late:?} late"
            );
            due += interval;
        }
    }

    #[test]
    fn an_advert_may_leave_within_its_slack_but_master_down_never_early() {
        let mut v = master(1, 0, false);
        let due = v.next_deadline().unwrap();
        let slack = v.advert_slack();
        assert_eq!(slack, Duration::from_nanos(3_906_250));
        assert!(!v.is_due(due - slack - us(1)));
        assert!(v.is_due(due - slack));
        // Early by the slack: sent, and the next one is still due an interval after `due`.
        let sent = v.handle(due - slack, Event::TimerExpired);
        assert_eq!(sent.first(), Some(&advert(1, 0, 0)));
        assert_eq!(v.next_deadline(), Some(due + ms(1000)));

        let mut b = vhid(1, 0, false);
        b.handle(T0, Event::Up(Families::V4));
        let down = b.next_deadline().unwrap();
        assert!(!b.is_due(down - us(1)));
        assert!(b.handle(down - us(1), Event::TimerExpired).is_empty());
        assert_eq!(b.state(), State::Backup);
        assert!(b.is_due(down));
    }

    #[test]
    fn a_late_timer_sends_one_advert_not_a_burst() {
        let mut v = master(1, 0, false);
        let late = T0 + ms(10_500);
        assert_eq!(v.handle(late, Event::TimerExpired).len(), 1);
        assert_eq!(v.next_deadline(), Some(late + ms(1000)));
    }

    /// The bench's soak stall: at 0/1 (3.9 ms interval, 11.7 ms master-down) the backup
    /// woke 3.9 ms after its deadline, with the master's advert still to come.
    #[test]
    fn a_backup_that_overslept_waits_one_interval_for_held_up_adverts() {
        let mut b = backup(0, 1, false);
        b.handle(T0 + us(100), rx(0, 0, 0));
        let down = b.next_deadline().unwrap();
        let grace = b.oversleep_grace();
        assert_eq!(grace, interval(0, 1));
        let woke = down + us(3_900);
        let postponed = b.handle(woke, Event::TimerExpired);
        assert_eq!(
            postponed,
            vec![Action::MasterDownPostponed {
                late: us(3_900),
                grace
            }]
        );
        assert_eq!(b.state(), State::Backup);
        assert_eq!(b.next_deadline(), Some(woke + grace));
        // The master's advert, sent as soon as it ran again, re-arms the timer as usual.
        b.handle(woke + us(200), rx(0, 0, 0));
        assert_eq!(
            b.next_deadline(),
            Some(woke + us(200) + b.master_down_interval())
        );
        assert!(b.handle(woke + grace, Event::TimerExpired).is_empty());
        assert_eq!(b.state(), State::Backup);
    }

    #[test]
    fn a_repeat_the_dataplane_saw_during_the_grace_keeps_the_backup() {
        let mut b = backup(0, 1, false);
        b.handle(T0 + us(100), rx(0, 0, 0));
        let woke = b.next_deadline().unwrap() + ms(8);
        b.handle(woke, Event::TimerExpired);
        let grace = b.oversleep_grace();
        b.handle(woke + grace, seen(Family::V4, woke + us(300)));
        assert!(b.handle(woke + grace, Event::TimerExpired).is_empty());
        assert_eq!(b.state(), State::Backup);
    }

    #[test]
    fn a_postponed_timer_takes_over_without_an_advert_even_when_late_again() {
        let mut b = backup(0, 1, false);
        let grace = b.oversleep_grace();
        let woke = b.next_deadline().unwrap() + ms(8);
        b.handle(woke, Event::TimerExpired);
        let taken = b.handle(woke + grace + ms(8), Event::TimerExpired);
        assert_eq!(b.state(), State::Master);
        assert!(matches!(
            taken[0],
            Action::StateChanged {
                reason: Reason::MasterDownTimer,
                ..
            }
        ));
    }

    #[test]
    fn a_timer_on_time_or_less_than_a_quarter_of_the_grace_late_takes_over_at_once() {
        // A quarter of 3.906 ms is 976 µs.
        for late in [Duration::ZERO, us(970)] {
            let mut b = backup(0, 1, false);
            let down = b.next_deadline().unwrap();
            b.handle(down + late, Event::TimerExpired);
            assert_eq!(b.state(), State::Master, "{late:?} late");
        }
    }

    #[test]
    fn each_silence_an_advert_ended_may_be_postponed_once_and_the_grace_is_capped() {
        let mut b = backup(1, 0, false);
        let grace = b.oversleep_grace();
        assert_eq!(grace, OVERSLEEP_GRACE_MAX);
        let down = b.next_deadline().unwrap();
        let postponed = |a: &[Action]| matches!(a, [Action::MasterDownPostponed { .. }]);
        assert!(postponed(&b.handle(down + ms(60), Event::TimerExpired)));
        b.handle(down + ms(70), rx(1, 0, 0));
        let down = b.next_deadline().unwrap();
        assert!(postponed(&b.handle(down + ms(60), Event::TimerExpired)));
        b.handle(down + ms(70), rx(1, 0, 0));
        let down = b.next_deadline().unwrap();
        b.handle(down + grace / 4 - us(1), Event::TimerExpired);
        assert_eq!(b.state(), State::Master);
    }

    #[test]
    fn stepping_back_cancels_the_delayed_announcement() {
        let mut v = master(1, 100, false);
        v.handle(T0 + ms(10), rx(1, 0, 0));
        assert_eq!(v.state(), State::Backup);
        v.handle(T0 + ms(20), Event::ForceState(ForcedState::Master));
        assert_eq!(v.delayed_announce, Some(2));
        v.handle(T0 + ms(30), rx(1, 0, 0));
        assert_eq!(v.delayed_announce, None);
    }

    #[test]
    fn backup_restarts_only_the_family_timer_of_the_advert() {
        let mut v = vhid(1, 0, false);
        v.handle(T0, Event::Up(Families::BOTH));
        let v6_due = v.master_down_at[1];
        let t = T0 + ms(2000);
        assert!(v.handle(t, rx(1, 0, 0)).is_empty());
        assert_eq!(v.master_down_at[0], Some(t + ms(3000)));
        assert_eq!(v.master_down_at[1], v6_due);
        // The IPv6 timer still fires, and takes over.
        let a = v.handle(v6_due.unwrap(), Event::TimerExpired);
        assert_eq!(
            a[0],
            changed(State::Backup, State::Master, Reason::MasterDownTimer)
        );
    }

    #[test]
    fn backup_waits_for_a_better_or_equal_master() {
        for preempt in [false, true] {
            for (advbase, advskew, demote) in [(1, 0, 0), (0, 255, 0), (2, 0, 0), (5, 0, 0)] {
                // (5, 0) with our advbase 2: 5 s < 6 s, not "too slow"; not preempted when
                // preempt is off.
                let mut v = backup(2, 0, preempt);
                let t = T0 + ms(500);
                let a = v.handle(t, rx(advbase, advskew, demote));
                if preempt && advbase == 5 {
                    assert_eq!(a[0], changed(State::Backup, State::Master, Reason::Preempt));
                } else {
                    assert!(a.is_empty(), "{advbase}/{advskew}: {a:?}");
                    assert_eq!(v.next_deadline(), Some(t + ms(6000)));
                }
            }
        }
    }

    #[test]
    fn preempt_takes_over_a_less_frequent_master_at_once() {
        let mut v = backup(1, 0, true);
        let a = v.handle(T0 + ms(1), rx(1, 1, 0));
        assert_eq!(
            a,
            vec![
                changed(State::Backup, State::Master, Reason::Preempt),
                advert(1, 0, 0),
                TAKEOVER_ANNOUNCE,
            ]
        );
    }

    #[test]
    fn preempt_respects_a_less_demoted_master() {
        let mut v = backup(1, 0, true);
        v.handle(T0, Event::DemoteChanged(2));
        assert!(v.handle(T0 + ms(1), rx(1, 1, 1)).is_empty());
        assert_eq!(v.state(), State::Backup);
        // An equally demoted slower master is preempted.
        assert_eq!(v.handle(T0 + ms(2), rx(1, 1, 2)).len(), 3);
    }

    #[test]
    fn no_preempt_means_no_takeover_of_a_slower_master() {
        let mut v = backup(1, 0, false);
        assert!(v.handle(T0 + ms(1), rx(1, 200, 0)).is_empty());
    }

    #[test]
    fn a_more_demoted_master_is_taken_over_without_preempt() {
        let mut v = backup(1, 200, false);
        let a = v.handle(T0 + ms(1), rx(1, 0, 1));
        assert_eq!(
            a[0],
            changed(State::Backup, State::Master, Reason::MasterDemoted)
        );
        assert_eq!(a[1], advert(1, 200, 0));
    }

    #[test]
    fn a_master_slower_than_three_advbase_is_taken_over() {
        let mut v = backup(1, 0, false);
        let a = v.handle(T0 + ms(1), rx(3, 1, 0));
        assert_eq!(
            a[0],
            changed(State::Backup, State::Master, Reason::MasterTooSlow)
        );
        // Exactly 3 × advbase is not too slow.
        let mut v = backup(1, 0, false);
        assert!(v.handle(T0 + ms(1), rx(3, 0, 0)).is_empty());
    }

    #[test]
    fn the_too_slow_threshold_keeps_our_advskew() {
        // OpenBSD compares with 3 × advbase + our advskew/256, not 3 × advbase: with advskew
        // 128 the threshold is 3.5 s, so a master at 3.39 s (3/100) is not too slow.
        let mut v = backup(1, 128, false);
        assert!(v.handle(T0 + ms(1), rx(3, 100, 0)).is_empty());
        let a = v.handle(T0 + ms(2), rx(3, 129, 0));
        assert_eq!(
            a[0],
            changed(State::Backup, State::Master, Reason::MasterTooSlow)
        );
    }

    #[test]
    fn the_too_slow_rule_is_off_with_advbase_zero() {
        let mut v = backup(0, 10, false);
        assert!(v.handle(T0 + ms(1), rx(255, 255, 0)).is_empty());
    }

    #[test]
    fn bow_out_hands_over_at_once() {
        let mut v = backup(1, 100, false);
        let a = v.handle(T0 + ms(1), rx(255, 255, 0));
        assert_eq!(
            a,
            vec![
                changed(State::Backup, State::Master, Reason::BowOut),
                advert(1, 100, 0),
                TAKEOVER_ANNOUNCE,
            ]
        );
    }

    #[test]
    fn master_steps_back_for_a_more_frequent_master() {
        let mut v = master(1, 100, false);
        let t = T0 + ms(10);
        let a = v.handle(t, rx(1, 99, 0));
        assert_eq!(
            a,
            vec![changed(
                State::Master,
                State::Backup,
                Reason::PreferredMaster
            )]
        );
        assert_eq!(v.advert_at, None);
        // Master-down without jitter.
        assert_eq!(v.next_deadline(), Some(t + v.master_down_interval()));
    }

    #[test]
    fn master_steps_back_for_a_less_demoted_master_however_slow() {
        let mut v = master(0, 0, false);
        v.handle(T0, Event::DemoteChanged(5));
        let a = v.handle(T0 + ms(1), rx(200, 200, 4));
        assert_eq!(
            a,
            vec![changed(State::Master, State::Backup, Reason::Demoted)]
        );
    }

    #[test]
    fn master_keeps_its_place_against_worse_masters() {
        for (advbase, advskew, demote) in [(1, 101, 0), (2, 0, 0), (1, 0, 1), (0, 0, 1)] {
            let mut v = master(1, 100, false);
            // Split brain healing: it answers, and stays.
            assert_eq!(
                v.handle(T0 + ms(1), rx(advbase, advskew, demote)),
                vec![advert(1, 100, 0), TAKEOVER_ANNOUNCE],
                "{advbase}/{advskew}/{demote}"
            );
            assert_eq!(v.state(), State::Master);
        }
    }

    #[test]
    fn equal_masters_both_step_back_with_a_small_jitter() {
        let mut extras = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let mut v = Vhid::new(
                VhidParams {
                    vhid: 1,
                    advbase: 1,
                    advskew: 0,
                },
                false,
                seed,
            )
            .unwrap();
            v.handle(T0, Event::Up(Families::V4));
            v.handle(T0, Event::ForceState(ForcedState::Master));
            let t = T0 + ms(10);
            let a = v.handle(t, rx(1, 0, 0));
            assert_eq!(
                a,
                vec![changed(State::Master, State::Backup, Reason::EqualMaster)]
            );
            let extra = v.next_deadline().unwrap() - (t + ms(3000));
            // A quarter of an interval at most.
            assert!(extra < ms(250), "{extra:?}");
            extras.insert(extra);
        }
        // And it does vary.
        assert!(extras.len() > 32, "{extras:?}");
    }

    #[test]
    fn comparisons_use_the_advertised_interval_without_the_floor() {
        // 0/0 advertises "0 s" and is preferred over 0/1 (3906 µs), although both time out
        // after 3 × 3906 µs.
        let mut v = master(0, 1, false);
        let a = v.handle(T0 + ms(1), rx(0, 0, 0));
        assert_eq!(
            a[0],
            changed(State::Master, State::Backup, Reason::PreferredMaster)
        );
        let mut v = master(0, 0, false);
        v.handle(T0 + ms(1), rx(0, 1, 0));
        assert_eq!(v.state(), State::Master);
    }

    #[test]
    fn init_ignores_adverts_timers_and_forcing() {
        let mut v = vhid(1, 0, true);
        assert!(v.handle(T0, rx(255, 255, 9)).is_empty());
        assert!(v.handle(T0, Event::TimerExpired).is_empty());
        assert!(
            v.handle(T0, Event::ForceState(ForcedState::Master))
                .is_empty()
        );
        assert!(
            v.handle(T0, Event::ForceState(ForcedState::Backup))
                .is_empty()
        );
        assert!(v.handle(T0, Event::AdminDown).is_empty());
        assert!(v.handle(T0, Event::LinkDown).is_empty());
        assert_eq!(v.state(), State::Init);
    }

    #[test]
    fn a_demote_change_goes_out_with_the_next_advert() {
        let mut v = master(1, 0, false);
        let t = T0 + ms(300);
        assert!(v.handle(t, Event::DemoteChanged(1)).is_empty());
        assert_eq!(v.demote(), 1);
        assert_eq!(v.next_deadline(), Some(T0 + ms(1000)));
        assert_eq!(
            v.handle(T0 + ms(1000), Event::TimerExpired),
            vec![advert(1, 0, 1)]
        );
        assert!(v.handle(t, Event::DemoteChanged(0)).is_empty());
        // A backup records it too.
        let mut b = backup(1, 0, false);
        assert!(b.handle(t, Event::DemoteChanged(10)).is_empty());
        assert_eq!(b.demote(), 10);
    }

    #[test]
    fn a_steady_master_lends_its_adverts_and_continues_from_what_comes_back() {
        let mut v = master(1, 0, false);
        // The takeover's ARP repeats ride on the next two adverts: no loan before them.
        assert_eq!(v.lend_adverts(8), None);
        let mut t = v.next_deadline().unwrap();
        for _ in 0..2 {
            assert_eq!(v.handle(t, Event::TimerExpired)[0], advert(1, 0, 0));
            t = v.next_deadline().unwrap();
        }
        assert_eq!(v.lend_adverts(8), Some(t));
        // The machine's own next advert is the one after the eight lent.
        assert_eq!(v.next_deadline(), Some(t + ms(8000)));
        // Three went out; the fourth is the machine's again, on the same schedule.
        v.adverts_returned(t + ms(3000));
        assert_eq!(v.next_deadline(), Some(t + ms(3000)));
        assert_eq!(
            v.handle(t + ms(3000), Event::TimerExpired),
            vec![advert(1, 0, 0)]
        );
        assert_eq!(v.next_deadline(), Some(t + ms(4000)));
        // All sent: what comes back is the deadline the machine already has.
        assert_eq!(v.lend_adverts(2), Some(t + ms(4000)));
        v.adverts_returned(t + ms(6000));
        assert_eq!(v.next_deadline(), Some(t + ms(6000)));
    }

    #[test]
    fn only_a_steady_master_lends_adverts() {
        let mut b = backup(1, 0, false);
        let due = b.next_deadline();
        assert_eq!(b.lend_adverts(8), None);
        b.adverts_returned(T0);
        assert_eq!(b.next_deadline(), due, "a backup's timers are not adverts");
        let mut v = master(1, 0, false);
        let mut t = v.next_deadline().unwrap();
        for _ in 0..2 {
            v.handle(t, Event::TimerExpired);
            t = v.next_deadline().unwrap();
        }
        assert_eq!(v.lend_adverts(0), None);
        // A counted send error needs to see the following adverts' results.
        v.handle(t, Event::AdvertSendResult { ok: false });
        assert_eq!(v.lend_adverts(8), None);
        v.handle(t, Event::AdvertSendResult { ok: true });
        assert_eq!(v.lend_adverts(8), Some(t));
    }

    #[test]
    fn advertise_now_sends_from_a_master_only() {
        let mut v = master(1, 0, false);
        let t = T0 + ms(300);
        v.handle(t, Event::DemoteChanged(7));
        assert_eq!(v.handle(t, Event::AdvertiseNow), vec![advert(1, 0, 7)]);
        // The regular adverts continue one interval after it (carp_send_ad re-arms ad_tmo).
        assert_eq!(v.next_deadline(), Some(t + ms(1000)));
        let mut b = backup(1, 0, false);
        let due = b.next_deadline();
        assert!(b.handle(t, Event::AdvertiseNow).is_empty());
        assert_eq!(b.next_deadline(), due);
        assert!(vhid(1, 0, false).handle(t, Event::AdvertiseNow).is_empty());
    }

    #[test]
    fn neighbour_advertisements_go_out_once_per_takeover() {
        let mut v = backup(1, 0, false);
        let mut announced = Vec::new();
        let mut t = T0 + ms(3000);
        for _ in 0..6 {
            for a in v.handle(t, Event::TimerExpired) {
                if let Action::Announce(kind) = a {
                    announced.push(kind);
                }
            }
            t += ms(1000);
        }
        assert_eq!(
            announced,
            [Announcement::ArpAndNa, Announcement::ArpOnly],
            "the repeat is ARP only"
        );
    }

    #[test]
    fn a_master_answers_a_worse_master_at_once_once_per_interval() {
        let mut v = master(1, 100, false);
        let t = T0 + ms(200);
        // A worse master (longer interval): advert and full announcement now, still master.
        assert_eq!(
            v.handle(t, rx(1, 200, 0)),
            vec![advert(1, 100, 0), TAKEOVER_ANNOUNCE]
        );
        assert_eq!(v.state(), State::Master);
        let interval = v.interval();
        assert_eq!(v.next_deadline(), Some(t + interval));
        // Again within the interval: nothing.
        assert!(v.handle(t + ms(100), rx(1, 200, 0)).is_empty());
        assert!(v.handle(t + interval - ms(1), rx(2, 0, 0)).is_empty());
        // An interval later: once more. A more demoted one counts as worse too.
        let later = t + interval;
        let a = v.handle(later, rx(0, 0, 1));
        assert_eq!(a, vec![advert(1, 100, 0), TAKEOVER_ANNOUNCE]);
        // A backup never does this, whatever it hears.
        let mut b = backup(1, 0, false);
        assert!(b.handle(later, rx(1, 10, 0)).is_empty());
    }

    #[test]
    fn a_new_takeover_may_heal_at_once() {
        let mut v = master(1, 0, false);
        assert_eq!(v.handle(T0 + ms(1), rx(1, 5, 0)).len(), 2);
        v.handle(T0 + ms(2), rx(0, 0, 0));
        assert_eq!(v.state(), State::Backup);
        v.handle(T0 + ms(3), Event::ForceState(ForcedState::Master));
        assert_eq!(v.handle(T0 + ms(4), rx(1, 5, 0)).len(), 2);
    }

    #[test]
    fn forced_master_and_backup() {
        let mut v = backup(1, 0, false);
        let a = v.handle(T0, Event::ForceState(ForcedState::Master));
        assert_eq!(
            a,
            vec![
                changed(State::Backup, State::Master, Reason::Forced),
                advert(1, 0, 0),
                TAKEOVER_ANNOUNCE,
            ]
        );
        assert!(
            v.handle(T0, Event::ForceState(ForcedState::Master))
                .is_empty()
        );
        let t = T0 + ms(5);
        let a = v.handle(t, Event::ForceState(ForcedState::Backup));
        assert_eq!(
            a,
            vec![changed(State::Master, State::Backup, Reason::Forced)]
        );
        assert_eq!(v.next_deadline(), Some(t + ms(3000)));
        assert!(
            v.handle(t, Event::ForceState(ForcedState::Backup))
                .is_empty()
        );
    }

    #[test]
    fn admin_down_bows_out_from_master() {
        let mut v = master(1, 0, false);
        v.handle(T0, Event::DemoteChanged(3));
        let a = v.handle(T0 + ms(1), Event::AdminDown);
        assert_eq!(
            a,
            vec![
                advert(255, 255, 3),
                changed(State::Master, State::Init, Reason::AdminDown),
            ]
        );
        assert_eq!(v.next_deadline(), None);
    }

    #[test]
    fn shutdown_bows_out_from_master_and_not_from_backup() {
        let mut v = master(1, 0, false);
        let a = v.handle(T0, Event::Shutdown);
        assert_eq!(
            a,
            vec![
                advert(255, 255, 0),
                changed(State::Master, State::Init, Reason::Shutdown),
            ]
        );
        let mut v = backup(1, 0, false);
        assert_eq!(
            v.handle(T0, Event::Shutdown),
            vec![changed(State::Backup, State::Init, Reason::Shutdown)]
        );
        assert_eq!(v.next_deadline(), None);
    }

    #[test]
    fn link_down_goes_to_init_silently() {
        let mut v = master(1, 0, false);
        assert_eq!(
            v.handle(T0, Event::LinkDown),
            vec![changed(State::Master, State::Init, Reason::LinkDown)]
        );
        assert_eq!(v.next_deadline(), None);
        // And back up again.
        assert_eq!(
            v.handle(T0, Event::Up(Families::V4)),
            vec![changed(State::Init, State::Backup, Reason::Up)]
        );
    }

    #[test]
    fn address_families_follow_the_interface() {
        let mut v = backup(1, 0, false);
        let t = T0 + ms(100);
        assert!(v.handle(t, Event::Addresses(Families::BOTH)).is_empty());
        assert_eq!(v.master_down_at[1], Some(t + ms(3000)));
        assert!(v.handle(t, Event::Addresses(Families::V6)).is_empty());
        assert_eq!(v.master_down_at[0], None);
        assert_eq!(
            v.handle(t, Event::Addresses(Families::NONE)),
            vec![changed(State::Backup, State::Init, Reason::NoAddresses)]
        );
        assert_eq!(v.next_deadline(), None);
        // From master: to INIT without a bow-out.
        let mut v = master(1, 0, false);
        assert_eq!(
            v.handle(t, Event::Addresses(Families::NONE)),
            vec![changed(State::Master, State::Init, Reason::NoAddresses)]
        );
    }

    #[test]
    fn send_errors_demote_after_three_and_recover_after_three() {
        let mut v = master(1, 0, false);
        let fail = Event::AdvertSendResult { ok: false };
        let ok = Event::AdvertSendResult { ok: true };
        assert!(v.handle(T0, fail).is_empty());
        assert!(v.handle(T0, fail).is_empty());
        assert_eq!(v.handle(T0, fail), vec![Action::AdjustDemote(1)]);
        assert!(v.handle(T0, fail).is_empty());
        assert!(v.handle(T0, ok).is_empty());
        assert!(v.handle(T0, ok).is_empty());
        // A failure in between restarts the count of successes.
        assert!(v.handle(T0, fail).is_empty());
        assert!(v.handle(T0, ok).is_empty());
        assert!(v.handle(T0, ok).is_empty());
        assert_eq!(v.handle(T0, ok), vec![Action::AdjustDemote(-1)]);
        for _ in 0..5 {
            assert!(v.handle(T0, ok).is_empty());
        }
    }

    #[test]
    fn sporadic_send_errors_do_not_demote() {
        let mut v = master(1, 0, false);
        for _ in 0..10 {
            assert!(
                v.handle(T0, Event::AdvertSendResult { ok: false })
                    .is_empty()
            );
            assert!(
                v.handle(T0, Event::AdvertSendResult { ok: false })
                    .is_empty()
            );
            assert!(
                v.handle(T0, Event::AdvertSendResult { ok: true })
                    .is_empty()
            );
        }
    }

    #[test]
    fn timing_changes_at_run_time() {
        let mut v = master(1, 0, false);
        let t = T0 + ms(200);
        v.set_timing(t, 2, 0).unwrap();
        assert_eq!(v.next_deadline(), Some(t + ms(2000)));
        assert_eq!(
            v.handle(t + ms(2000), Event::TimerExpired),
            vec![advert(2, 0, 0)]
        );
        assert_eq!(
            v.set_timing(t, 2, 255),
            Err(ParamError::AdvskewTooLarge(255))
        );
        assert_eq!(v.params().advskew, 0);

        let mut b = backup(1, 0, false);
        b.set_timing(t, 0, 0).unwrap();
        assert_eq!(b.next_deadline(), Some(t + Duration::from_micros(3 * 3906)));
        assert_eq!(b.interval(), Duration::from_micros(3906));
    }

    #[test]
    fn preempt_can_change_at_run_time() {
        let mut v = backup(1, 0, false);
        assert!(v.handle(T0, rx(1, 1, 0)).is_empty());
        v.set_preempt(true);
        assert!(v.preempt());
        assert_eq!(v.handle(T0, rx(1, 1, 0)).len(), 3);
    }

    #[test]
    fn advert_event_from_a_header() {
        let h = crate::proto::CarpHeader::advertisement(1, 2, 3, 4, 5, [0; 20]);
        assert_eq!(
            Event::advert(Family::V6, &h),
            Event::AdvertReceived {
                family: Family::V6,
                advbase: 2,
                advskew: 3,
                demote: 4
            }
        );
    }

    #[test]
    fn names() {
        let all = [
            Reason::Up,
            Reason::MasterDownTimer,
            Reason::Preempt,
            Reason::MasterDemoted,
            Reason::MasterTooSlow,
            Reason::BowOut,
            Reason::PreferredMaster,
            Reason::EqualMaster,
            Reason::Demoted,
            Reason::Forced,
            Reason::LinkDown,
            Reason::AdminDown,
            Reason::Shutdown,
            Reason::NoAddresses,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(
            Reason::MasterDownTimer.to_string(),
            "master down timer expired"
        );
        assert_eq!(State::Master.to_string(), "MASTER");
    }

    fn seen(family: Family, at: Duration) -> Event {
        Event::AdvertSeen { family, at }
    }

    #[test]
    fn advert_seen_rearms_from_its_arrival_time() {
        // Master at advbase 1 followed from T0 + 1 s; its repeats are consumed by XDP.
        let mut v = backup(1, 0, false);
        assert!(v.handle(T0 + ms(1000), rx(1, 0, 0)).is_empty());
        assert_eq!(v.next_deadline(), Some(T0 + ms(4000)));
        // The timer fires at T0 + 4 s; the last repeat came at T0 + 3.9 s.
        let fire = T0 + ms(4000);
        assert!(v.handle(fire, seen(Family::V4, T0 + ms(3900))).is_empty());
        assert_eq!(v.next_deadline(), Some(T0 + ms(6900)));
        assert!(v.handle(fire, Event::TimerExpired).is_empty());
        assert_eq!(v.state(), State::Backup);
        // Equivalent to receiving that advert at that time.
        let mut w = backup(1, 0, false);
        w.handle(T0 + ms(1000), rx(1, 0, 0));
        w.handle(T0 + ms(3900), rx(1, 0, 0));
        assert_eq!(w.next_deadline(), v.next_deadline());
    }

    #[test]
    fn advert_seen_before_the_timer_was_armed_changes_nothing() {
        let mut v = backup(1, 0, false);
        v.handle(T0 + ms(2000), rx(1, 0, 0));
        let armed = v.next_deadline();
        // The same report again, or an older one: no postponement.
        assert!(
            v.handle(T0 + ms(5000), seen(Family::V4, T0 + ms(2000)))
                .is_empty()
        );
        assert!(
            v.handle(T0 + ms(5000), seen(Family::V4, T0 + ms(1500)))
                .is_empty()
        );
        assert_eq!(v.next_deadline(), armed);
        // So the timer fires: the master is down.
        let out = v.handle(T0 + ms(5000), Event::TimerExpired);
        assert_eq!(
            out[0],
            changed(State::Backup, State::Master, Reason::MasterDownTimer)
        );
    }

    #[test]
    fn advert_seen_needs_a_followed_advert_of_that_family() {
        // No advert received yet: nothing to repeat, the first timer stands.
        let mut v = backup(1, 0, false);
        let armed = v.next_deadline();
        assert!(
            v.handle(T0 + ms(3000), seen(Family::V4, T0 + ms(2900)))
                .is_empty()
        );
        assert_eq!(v.next_deadline(), armed);
        // An IPv4 advert followed says nothing about IPv6 (timers per family).
        let mut v = vhid(1, 0, false);
        v.handle(T0, Event::Up(Families::BOTH));
        v.handle(T0 + ms(1000), rx(1, 0, 0));
        v.handle(T0 + ms(3900), seen(Family::V6, T0 + ms(3800)));
        assert_eq!(
            v.master_down_at[Family::V6.index()],
            Some(T0 + ms(3900) - ms(900))
        );
        v.handle(T0 + ms(3900), seen(Family::V4, T0 + ms(3800)));
        assert_eq!(v.master_down_at[Family::V4.index()], Some(T0 + ms(6800)));
    }

    #[test]
    fn advert_seen_is_forgotten_when_the_state_changes() {
        let mut v = backup(1, 0, false);
        v.handle(T0 + ms(1000), rx(1, 0, 0));
        v.handle(T0 + ms(1500), Event::ForceState(ForcedState::Master));
        v.handle(T0 + ms(1600), rx(0, 0, 0)); // a preferred master: back to BACKUP
        assert_eq!(v.state(), State::Backup);
        let armed = v.next_deadline();
        // Repeats of the master followed before are not this master's.
        assert!(
            v.handle(T0 + ms(2000), seen(Family::V4, T0 + ms(1900)))
                .is_empty()
        );
        assert_eq!(v.next_deadline(), armed);
        // Nor does a MASTER or INIT vhid act on one.
        let mut m = master(1, 0, false);
        assert!(
            m.handle(T0 + ms(500), seen(Family::V4, T0 + ms(400)))
                .is_empty()
        );
        let mut i = vhid(1, 0, false);
        assert!(i.handle(T0, seen(Family::V4, T0)).is_empty());
        assert_eq!(i.next_deadline(), None);
    }

    #[test]
    fn advert_seen_is_judged_with_the_current_demote() {
        // Followed while we were more demoted than the master; our demotion is lifted: the
        // master's repeat now shows a master more demoted than us, as the advert would.
        let mut v = backup(1, 0, false);
        v.handle(T0, Event::DemoteChanged(2));
        v.handle(T0 + ms(1000), rx(1, 0, 1));
        v.handle(T0 + ms(1500), Event::DemoteChanged(0));
        let out = v.handle(T0 + ms(2000), seen(Family::V4, T0 + ms(1900)));
        assert_eq!(
            out[0],
            changed(State::Backup, State::Master, Reason::MasterDemoted)
        );
        assert_eq!(out[1], advert(1, 0, 0));
    }

    #[test]
    fn advert_seen_from_the_future_counts_as_now() {
        let mut v = backup(1, 0, false);
        v.handle(T0 + ms(1000), rx(1, 0, 0));
        v.handle(T0 + ms(2000), seen(Family::V4, T0 + ms(9000)));
        assert_eq!(
            v.next_deadline(),
            Some(T0 + ms(2000) + v.master_down_interval())
        );
    }
}
