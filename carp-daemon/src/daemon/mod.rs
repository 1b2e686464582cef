//! carpd's runtime: one task that owns all state and reacts to events.
//!
//! ```text
//!   XDP ring buffer ──► adverts ──┐
//!   timers (FSM deadlines) ───────┤
//!   link/address events ──────────┼──► Daemon (FSM per vhid) ──► actions:
//!   control socket (carpctl) ─────┤        adverts out, GARP/NA, BPF map flips,
//!   signals (TERM/INT/HUP) ───────┘        interface/address changes
//! ```
//!
//! One task, no locks: every event is handled to completion before the next, so the maps,
//! the interfaces and the state machines never disagree. Nothing here blocks: sends are
//! non-blocking, netlink calls are awaited between events.
mod carpif;
mod control;
mod event_source;
mod lifecycle;
mod pinlock;
mod runtime;
mod watch;

pub use lifecycle::load_config;
pub use runtime::{DaemonOptions, run};
