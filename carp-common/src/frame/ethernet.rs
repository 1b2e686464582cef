//! Ethernet II: the header, the ethertypes the dataplane looks at, and group addresses.

/// Ethernet header length.
pub const ETH_HLEN: usize = 14;

/// Ethertypes (host byte order).
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88a8;

/// The Ethernet broadcast address.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype: [u8; 2],
}
wire_bytes!(EthHdr, ETH_HLEN);

impl EthHdr {
    #[inline(always)]
    pub fn new(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Self {
        Self {
            dst,
            src,
            ethertype: ethertype.to_be_bytes(),
        }
    }

    #[inline(always)]
    pub fn ethertype(&self) -> u16 {
        u16::from_be_bytes(self.ethertype)
    }
}

/// A broadcast or multicast MAC (the group bit, the least significant bit of the first
/// octet, is set): never a sender, so never an address to answer to.
#[inline(always)]
pub fn is_group_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// The Ethernet address of an IPv6 multicast group: 33:33 and the group's last four bytes
/// (RFC 2464 7).
#[inline(always)]
pub const fn ipv6_multicast_mac(group: &[u8; 16]) -> [u8; 6] {
    [0x33, 0x33, group[12], group[13], group[14], group[15]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_bytes() {
        let h = EthHdr::new(BROADCAST_MAC, [0, 0, 0x5e, 0, 1, 7], ETH_P_ARP);
        assert_eq!(
            h.as_bytes(),
            &[
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x5e, 0, 1, 7, 0x08, 0x06
            ]
        );
        assert_eq!(h.ethertype(), ETH_P_ARP);
    }

    #[test]
    fn group_macs() {
        assert!(is_group_mac(&BROADCAST_MAC));
        assert!(is_group_mac(&[0x01, 0, 0x5e, 0, 0, 0x12]));
        assert!(!is_group_mac(&[0, 0, 0x5e, 0, 1, 1]));
        let all_nodes = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(ipv6_multicast_mac(&all_nodes), [0x33, 0x33, 0, 0, 0, 1]);
    }
}
