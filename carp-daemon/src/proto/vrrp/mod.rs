//! VRRPv3 (RFC 5798, RFC 9568), the protocol keepalived, FRR and routers speak, in the same
//! pure style as the CARP core beside it: no sockets, no clock.
//!
//! - [`packet`]: the 8-byte header and the address list, encode/decode, both IPv4 checksum
//!   forms ([`ChecksumForm`]).
//! - [`fsm`]: the election of one virtual router of one family ([`VirtualRouter`]), which
//!   reports its state with the CARP machine's [`State`](super::State) and asks for the same
//!   [`Announcement`](super::fsm::Announcement)s.
pub mod fsm;
pub mod packet;

#[cfg(test)]
mod sim_tests;

pub use fsm::{VirtualRouter, VrrpAction, VrrpEvent, VrrpParamError, VrrpParams, VrrpReason};
pub use packet::{
    ChecksumForm, IpEnds, VrrpAddresses, VrrpAdvert, VrrpDecodeError, VrrpEncodeError,
};
