//! The frames around CARP, shared by the XDP program and carpd: the Internet checksum, and
//! the headers and constants of Ethernet, IPv4, IPv6, ARP and neighbour discovery.
//!
//! Every header is a `#[repr(C)]` struct of bytes and byte arrays: alignment 1 (frames carry
//! no alignment promise), no padding, and no field whose bit pattern could be invalid, so the
//! XDP program reads one straight out of a frame and carpd writes one straight onto the wire
//! ([`as_bytes`](ethernet::EthHdr::as_bytes)). Multi-byte fields stay in network byte order.
//!
//! Nothing here loops over a length read from a frame: the checksum takes fixed-size arrays
//! on the XDP side (every loop has a constant trip count the verifier can bound) and slices
//! on the host, and both share one accumulator and one fold.
//!
//! The test suite's frame builders (`tests/src/frames.rs`) are written apart from this
//! module on purpose: they are the oracle the frames built here are compared with.

/// Implements `as_bytes` for a header struct and checks at compile time that it has the
/// wire length, no padding and alignment 1.
macro_rules! wire_bytes {
    ($ty:ty, $len:expr) => {
        const _: () = assert!(
            core::mem::size_of::<$ty>() == $len && core::mem::align_of::<$ty>() == 1,
            "a wire struct must be exactly its wire length, alignment 1"
        );

        impl $ty {
            /// The header as it is on the wire.
            #[inline(always)]
            pub fn as_bytes(&self) -> &[u8; $len] {
                // SAFETY: the assertion above: the struct is `$len` bytes of `u8` fields
                // (repr(C), alignment 1, hence no padding), so it is a valid `[u8; $len]`.
                unsafe { &*(self as *const Self).cast::<[u8; $len]>() }
            }
        }
    };
}

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod ip;
pub mod nd;

pub use checksum::{Checksum, internet_checksum};

/// A big-endian 16-bit field as a number.
#[inline(always)]
pub fn be16(bytes: [u8; 2]) -> u16 {
    u16::from_be_bytes(bytes)
}
