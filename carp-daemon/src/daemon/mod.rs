//! carpd's runtime: one task that owns all state and reacts to events.
//!
//! ```text
//!   XDP ring buffer ──► adverts ──┐
//!   timerfd (FSM deadlines) ──────┤
//!   link/address events ──────────┼──► Daemon (FSM per vhid) ──► actions:
//!   control socket (carpctl) ─────┤
//!   health check results ─────────┤        adverts out, GARP/NA, BPF map flips,
//!   signals (TERM/INT/HUP) ───────┘        interface/address changes
//! ```
//!
//! One task, no locks: every event is handled to completion before the next, so the maps,
//! the interfaces and the state machines never disagree. Nothing here blocks: sends are
//! non-blocking, netlink calls are awaited between events.
//!
//! One exception, for cost: a steady master's regular adverts are lent to the advert pacer,
//! a thread that sends them on the state machine's schedule without waking the loop
//! (`pacer`, one mutex). The loop takes them back before any event reaches that machine.
//!
//! # Files
//! Each module adds methods to `Daemon` (defined here, with its parts) and calls only the
//! modules listed below it, so nothing calls back up:
//!
//! ```text
//!   runtime    the loop; adverts from the ring, due timers, metrics scrapes
//!   watch      link/address events: carpdev carrier, changes behind carpd's back
//!   requests   carpctl's requests: status, stats, apply
//!   lifecycle  start, reload, shutdown; building and removing carp interfaces
//!   checks     health check results into group demotion; checks on reload
//!   balance    the node elections of balanced interfaces (carpnodes), their dataplane
//!   drive      an event into a vhid's state machine, and its actions carried out
//!   vrrp       the same for VRRPv3 interfaces: drive hands their events over, and vrrp
//!              uses drive's dataplane and announcement steps (one layer, two files)
//!   mod.rs     Daemon, Carpdev, DaemonOptions, the clock
//! ```
//! `carpif` (one carp interface's state), `event_source`, `deadline_timer` (the timerfd
//! the FSM deadlines fire from), `pacer` (the thread a steady master's adverts are lent to;
//! drive lends and takes back), `loop_watch` (whether the loop still runs, as the pacer
//! sees it) and `pinlock` use none of them.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::DaemonSettings;
use crate::dataplane::{AttachMode, Dataplane, monotonic_now};
use crate::groups::Groups;
use crate::net::NetHandle;
use crate::send::{advert::AdvertSender, announce::Announcer};
use carpif::CarpIf;

mod balance;
mod carpif;
mod checks;
mod deadline_timer;
mod drive;
mod event_source;
mod lifecycle;
mod loop_watch;
mod pacer;
mod pinlock;
mod requests;
mod runtime;
mod vrrp;
mod watch;

pub use lifecycle::load_config;
pub use runtime::run;

/// What the command line says; the configuration files say the rest.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub config_paths: Vec<PathBuf>,
    /// Overrides the configuration's state directory.
    pub state_dir: Option<PathBuf>,
    /// Overrides the configuration's lib directory (persisted state).
    pub lib_dir: Option<PathBuf>,
    /// Overrides the configuration's pin directory.
    pub pin_dir: Option<PathBuf>,
    /// `--preempt` (OR-ed with the configuration's `preempt`).
    pub preempt: bool,
    /// `--boot-demote N`: overrides the configuration's `boot_demote`.
    pub boot_demote: Option<u8>,
    /// `--metrics ADDR`: overrides the configuration's `metrics`.
    pub metrics: Option<std::net::SocketAddr>,
    pub xdp_mode: AttachMode,
    /// `--advert-ring-bytes N`: the advert ring's size instead of the built-in one (tests
    /// make it small); `None` keeps the default.
    pub advert_ring_bytes: Option<u32>,
    /// `--realtime-priority N`: overrides the configuration's `realtime_priority`.
    pub realtime_priority: Option<u8>,
}

/// A carpdev at run time: its identity, link state and senders.
struct Carpdev {
    pub name: String,
    pub ifindex: u32,
    /// Its own MAC: the source of adverts of balanced interfaces in `ip` and `ip-stealth`
    /// modes, which never send from the carp MAC.
    pub mac: [u8; 6],
    pub carrier: bool,
    pub adverts: AdvertSender,
    pub announcer: Announcer,
    /// The solicited-node groups of the virtual IPv6 addresses, joined on the carpdev so
    /// that neighbour solicitations for them pass the NIC's filter and reach XDP.
    pub groups6: crate::net::SolicitedNodeGroups,
}

struct Daemon {
    pub opts: DaemonOptions,
    pub settings: DaemonSettings,
    pub net: NetHandle,
    pub dataplane: Dataplane,
    pub carpdevs: BTreeMap<String, Carpdev>,
    pub ifs: BTreeMap<String, CarpIf>,
    pub groups: Groups,
    /// Persisted (maintenance) demotion per group, as in the lib directory's file.
    pub persisted: crate::maintenance::Persisted,
    /// Health checks and their state.
    pub checks: crate::checks::Checks,
    /// Where the checks' results arrive; the event loop takes it.
    pub check_results: Option<tokio::sync::mpsc::Receiver<crate::checks::Report>>,
    /// `carpctl monitor`'s events.
    pub monitor: crate::control::monitor::MonitorHub,
    /// The thread that sends steady masters' regular adverts (see `pacer`).
    pub pacer: pacer::Pacer,
}

/// The state machines' clock: CLOCK_MONOTONIC, the dataplane's clock too.
fn now() -> Duration {
    monotonic_now().expect("CLOCK_MONOTONIC is always readable")
}

/// Whether this host forwards IPv6 (then NAs carry the router flag, as OpenBSD's do).
fn ipv6_forwarding() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/forwarding")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}
