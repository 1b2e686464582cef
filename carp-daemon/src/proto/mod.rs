//! The CARP protocol core, as OpenBSD's `sys/netinet/ip_carp.c` (1.370) defines it on the
//! wire. Pure Rust: no sockets, no clock, no randomness of its own; the daemon does the I/O.
//!
//! # Sending an advert
//! ```
//! use std::net::Ipv4Addr;
//! use carp_daemon::proto::{CarpAuth, CarpHeader};
//!
//! let auth = CarpAuth::new("SeCrEt", 1, &[Ipv4Addr::new(192, 0, 2, 10)], &[], None)?;
//! let counter = 0x0123_4567_89ab_cdef; // one random value per vhid, kept for its lifetime
//! let bytes: [u8; 36] =
//!     CarpHeader::advertisement(1, 1, 0, 0, counter, auth.sign(counter)).encode();
//! # Ok::<(), carp_daemon::proto::AuthError>(())
//! ```
//! `encode` gives the CARP payload; `send::advert` wraps it in the IP and Ethernet headers.
//!
//! # Receiving one
//! [`check_advert`] runs every OpenBSD input check in OpenBSD's order (TTL, length, checksum,
//! vhid, version, HMAC, loop) and returns the header or a typed [`Reject`], whose
//! [`Reject::as_str`] names the counter to bump. [`verify_delivered`] runs the checks the XDP
//! program leaves to userspace. An accepted header becomes an [`fsm::Event::AdvertReceived`]
//! through [`fsm::Event::advert`].
//!
//! # Electing
//! [`fsm::Vhid`] is the state machine of one vhid: [`fsm::Vhid::handle`]`(now, event)`
//! returns [`fsm::Action`]s; sleep until [`fsm::Vhid::next_deadline`], then send
//! [`fsm::Event::TimerExpired`].
//!
//! # Files
//! - [`packet`]: the 36-byte header, its checksum, [`DecodeError`], [`interval`].
//! - [`input`]: the receive checks and [`Reject`].
//! - [`hmac`]: key and message of the HMAC-SHA1, [`CarpAuth`].
//! - [`fsm`]: the election.
//! - [`vrrp`]: VRRPv3's advert and election, for interfaces with `protocol = "vrrp3"`.
pub mod fsm;
pub mod hmac;
pub mod input;
pub mod packet;
pub mod vrrp;

#[cfg(test)]
mod sim_tests;

pub use fsm::{
    Action, Event, Families, Family, ForcedState, ParamError, Reason, State, Vhid, VhidParams,
};
pub use hmac::{AuthError, CarpAuth, Passphrase, hashed_lladdr};
pub use input::{LocalVhid, Reject, check_advert, verify_delivered};
pub use packet::{CarpHeader, DecodeError, interval};
