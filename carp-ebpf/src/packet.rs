//! Bounds-checked access to the frame, and the header layouts the program reads.
//!
//! Every header is a struct of byte arrays: alignment 1 (frames carry no alignment
//! promise) and no enum read from the wire, so no bit pattern is ever invalid.
use aya_ebpf::programs::XdpContext;

/// Pointer to a `T` at `offset` in the frame, or `None` if the frame is too short.
/// The explicit comparison against `data_end` is what the verifier needs to see.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Copy of the `T` at `offset`, or `None` if the frame is too short.
#[inline(always)]
pub fn read_at<T: Copy>(ctx: &XdpContext, offset: usize) -> Option<T> {
    // SAFETY: ptr_at checked that size_of::<T>() bytes are inside the frame; T has
    // alignment 1 (byte arrays only), so an unaligned read is not needed.
    ptr_at::<T>(ctx, offset).map(|p| unsafe { p.read_unaligned() })
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype: [u8; 2],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv4Hdr {
    pub version_ihl: u8,
    pub tos: u8,
    pub total_len: [u8; 2],
    pub id: [u8; 2],
    pub frag: [u8; 2],
    pub ttl: u8,
    pub protocol: u8,
    pub checksum: [u8; 2],
    pub src: [u8; 4],
    pub dst: [u8; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Ipv6Hdr {
    pub version_tc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

/// ARP for Ethernet/IPv4 (RFC 826), header and payload together.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ArpEthIpv4 {
    pub htype: [u8; 2],
    pub ptype: [u8; 2],
    pub hlen: u8,
    pub plen: u8,
    pub op: [u8; 2],
    pub sha: [u8; 6],
    pub spa: [u8; 4],
    pub tha: [u8; 6],
    pub tpa: [u8; 4],
}

/// A neighbour solicitation or advertisement without options (RFC 4861 4.3/4.4).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NdMsg {
    pub icmp_type: u8,
    pub code: u8,
    pub checksum: [u8; 2],
    pub flags: [u8; 4],
    pub target: [u8; 16],
}

/// The link-layer address option (RFC 4861 4.6.1) for Ethernet.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct NdLinkLayerOpt {
    pub opt_type: u8,
    pub len: u8,
    pub addr: [u8; 6],
}

#[inline(always)]
pub fn be16(bytes: [u8; 2]) -> u16 {
    u16::from_be_bytes(bytes)
}

/// A broadcast or multicast MAC (the group bit, the least significant bit of the first
/// octet, is set): never a sender, so never an address to answer to.
#[inline(always)]
pub fn is_group_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}
