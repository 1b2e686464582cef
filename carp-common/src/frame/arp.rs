//! ARP for Ethernet/IPv4 (RFC 826).

use super::ethernet::{ETH_HLEN, ETH_P_ARP, ETH_P_IP, EthHdr};

/// ARP payload length for Ethernet/IPv4.
pub const ARP_LEN: usize = 28;
/// An Ethernet frame carrying exactly an ARP payload (no padding).
pub const ARP_FRAME_LEN: usize = ETH_HLEN + ARP_LEN;

/// Hardware type Ethernet.
pub const ARPHRD_ETHER: u16 = 1;
pub const ARPOP_REQUEST: u16 = 1;
pub const ARPOP_REPLY: u16 = 2;

/// ARP for Ethernet/IPv4, header and payload together.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
wire_bytes!(ArpEthIpv4, ARP_LEN);

impl ArpEthIpv4 {
    /// An Ethernet/IPv4 ARP message: operation, sender and target addresses.
    #[inline(always)]
    pub fn new(op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]) -> Self {
        Self {
            htype: ARPHRD_ETHER.to_be_bytes(),
            ptype: ETH_P_IP.to_be_bytes(),
            hlen: 6,
            plen: 4,
            op: op.to_be_bytes(),
            sha,
            spa,
            tha,
            tpa,
        }
    }

    /// True if hardware and protocol types and lengths are Ethernet and IPv4.
    #[inline(always)]
    pub fn is_ethernet_ipv4(&self) -> bool {
        u16::from_be_bytes(self.htype) == ARPHRD_ETHER
            && u16::from_be_bytes(self.ptype) == ETH_P_IP
            && self.hlen == 6
            && self.plen == 4
    }

    #[inline(always)]
    pub fn op(&self) -> u16 {
        u16::from_be_bytes(self.op)
    }
}

/// A whole ARP frame.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame {
    pub eth: EthHdr,
    pub arp: ArpEthIpv4,
}
wire_bytes!(ArpFrame, ARP_FRAME_LEN);

impl ArpFrame {
    /// A gratuitous ARP request (RFC 5227 3): broadcast, sender and target protocol address
    /// both `addr`, sender hardware address `mac`, target hardware address zero.
    pub fn gratuitous_request(mac: [u8; 6], addr: [u8; 4]) -> Self {
        Self {
            eth: EthHdr::new(super::ethernet::BROADCAST_MAC, mac, ETH_P_ARP),
            arp: ArpEthIpv4::new(ARPOP_REQUEST, mac, addr, [0; 6], addr),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_request_bytes() {
        let f = ArpFrame::gratuitous_request([0, 0, 0x5e, 0, 1, 7], [192, 0, 2, 10]);
        assert!(f.arp.is_ethernet_ipv4());
        assert_eq!(f.arp.op(), ARPOP_REQUEST);
        assert_eq!(
            f.as_bytes(),
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x5e, 0, 1, 7, 0x08,
                0x06, // Ethernet
                0, 1, 0x08, 0, 6, 4, 0, 1, // Ethernet/IPv4, request
                0, 0, 0x5e, 0, 1, 7, 192, 0, 2, 10, // sender
                0, 0, 0, 0, 0, 0, 192, 0, 2, 10, // target
            ]
        );
    }

    #[test]
    fn other_link_types_are_recognised() {
        let mut a = ArpEthIpv4::new(ARPOP_REPLY, [1; 6], [1; 4], [2; 6], [2; 4]);
        assert!(a.is_ethernet_ipv4());
        a.hlen = 8;
        assert!(!a.is_ethernet_ipv4());
        a = ArpEthIpv4::new(ARPOP_REPLY, [1; 6], [1; 4], [2; 6], [2; 4]);
        a.ptype = 0x86ddu16.to_be_bytes();
        assert!(!a.is_ethernet_ipv4());
    }
}
