//! OpenBSD's load balancing (`carpnodes`, `balancing ip|ip-stealth|ip-unicast`): which node
//! of a balanced carp interface takes a packet (`carp_lsdrop`), and the interface's MAC
//! (`carp_set_enaddr`). Pure functions, shared by the XDP program and carpd's tests.

/// `LbGroup::mode` values (OpenBSD's `CARP_BAL_*`, without `none`: an interface without
/// balancing has no group entry).
pub const LB_MODE_IP: u32 = 1;
pub const LB_MODE_IP_STEALTH: u32 = 2;
pub const LB_MODE_IP_UNICAST: u32 = 3;

/// `CARP_MAXNODES`.
pub const LB_MAX_NODES: usize = 32;

/// The fold of an IPv4 source and destination (`src[0] ^ dst[0]`), as a host-order number:
/// `ntohl(fold)`.
#[inline(always)]
pub fn fold_v4(src: &[u8; 4], dst: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*src) ^ u32::from_be_bytes(*dst)
}

/// The fold of an IPv6 source and destination: their eight 32-bit words XORed together.
#[inline(always)]
pub fn fold_v6(src: &[u8; 16], dst: &[u8; 16]) -> u32 {
    let mut fold = 0u32;
    let mut i = 0;
    while i < 16 {
        let s = [src[i], src[i + 1], src[i + 2], src[i + 3]];
        let d = [dst[i], dst[i + 1], dst[i + 2], dst[i + 3]];
        fold ^= u32::from_be_bytes(s) ^ u32::from_be_bytes(d);
        i += 4;
    }
    fold
}

/// The bucket (index of the node, in vhid order) of a fold among `count` nodes:
/// `ntohl(fold) % sc_lscount`. `count` 0 is treated as 1.
#[inline(always)]
pub fn bucket(fold: u32, count: u32) -> u32 {
    if count == 0 { 0 } else { fold % count }
}

/// The MAC a balanced interface answers ARP/NS with and receives on: the leader's virtual
/// MAC, with the group bit set in `ip` mode (01:00:5e:00:01:<vhid>) so that switches flood it.
#[inline(always)]
pub fn carp_mac(leader_vhid: u8, mode: u32) -> [u8; 6] {
    let mut mac = crate::wire::virtual_mac(leader_vhid);
    if mode == LB_MODE_IP {
        mac[0] |= 0x01;
    }
    mac
}

/// The vhid of a frame destination that is a carp MAC in any mode: the unicast virtual MAC
/// or its multicast twin (01:00:5e:00:01:<vhid>), and whether it was the multicast one.
#[inline(always)]
pub fn vhid_of_carp_mac(mac: &[u8; 6]) -> Option<(u8, bool)> {
    let prefix = crate::wire::VIRTUAL_MAC_PREFIX;
    let multicast = mac[0] == prefix[0] | 0x01;
    if (mac[0] == prefix[0] || multicast) && mac[1..5] == prefix[1..5] && mac[5] != 0 {
        Some((mac[5], multicast))
    } else {
        None
    }
}

/// ICMP (v4) types that carry the packet they are about (RFC 792): unreachable, source
/// quench, redirect, time exceeded, parameter problem. OpenBSD hashes those on the inner
/// packet's addresses, so they reach the host that holds the flow.
#[inline(always)]
pub fn icmp4_is_error(icmp_type: u8) -> bool {
    matches!(icmp_type, 3 | 4 | 5 | 11 | 12)
}

/// ICMPv6 error messages: types 0 to 127 (RFC 4443 2.1).
#[inline(always)]
pub fn icmp6_is_error(icmp_type: u8) -> bool {
    icmp_type < 128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_symmetric_and_match_openbsd() {
        let a = [192, 0, 2, 7];
        let b = [192, 0, 2, 30];
        assert_eq!(fold_v4(&a, &b), fold_v4(&b, &a));
        // ntohl(0xc0000207 ^ 0xc000021e) = 0x19 = 25: bucket 1 of 2, 1 of 3.
        assert_eq!(fold_v4(&a, &b), 25);
        assert_eq!(bucket(25, 2), 1);
        assert_eq!(bucket(25, 3), 1);
        let mut s = [0u8; 16];
        let mut d = [0u8; 16];
        s[3] = 1;
        d[7] = 2;
        d[15] = 4;
        assert_eq!(fold_v6(&s, &d), 1 ^ 2 ^ 4);
        assert_eq!(fold_v6(&s, &d), fold_v6(&d, &s));
    }

    #[test]
    fn carp_macs() {
        assert_eq!(carp_mac(3, LB_MODE_IP), [1, 0, 0x5e, 0, 1, 3]);
        assert_eq!(carp_mac(3, LB_MODE_IP_STEALTH), [0, 0, 0x5e, 0, 1, 3]);
        assert_eq!(vhid_of_carp_mac(&[1, 0, 0x5e, 0, 1, 3]), Some((3, true)));
        assert_eq!(vhid_of_carp_mac(&[0, 0, 0x5e, 0, 1, 3]), Some((3, false)));
        assert_eq!(vhid_of_carp_mac(&[1, 0, 0x5e, 0, 0, 3]), None);
        assert_eq!(vhid_of_carp_mac(&[3, 0, 0x5e, 0, 1, 3]), None);
    }
}
