//! carpd: CARP (OpenBSD's Common Address Redundancy Protocol) for Linux.
//!
//! - [`proto`]: the protocol core: advertisement encode/decode, HMAC, the election state
//!   machine. Pure: no I/O, no clock.
//! - [`dataplane`]: loading, pinning and driving the XDP program built from `carp-ebpf`.
//! - [`values`]: the rules for the values a user gives (names, passphrase, vhid, timers,
//!   groups), shared by the configuration and carpctl.

pub mod checks;
pub mod config;
pub mod control;
pub mod daemon;
pub mod dataplane;
pub mod error;
pub mod groups;
pub mod hooks;
pub mod maintenance;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod proto;
pub mod realtime;
pub mod send;
pub mod statefile;
pub mod values;

pub use error::Error;
