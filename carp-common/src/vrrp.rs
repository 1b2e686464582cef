//! Wire-level constants of VRRPv3 (RFC 5798, updated by RFC 9568), which shares CARP's IP
//! protocol number, multicast groups and TTL (see [`wire`](crate::wire)). Both carpd and the
//! XDP program read them, so the dataplane and the daemon agree on what a VRRP advert is.

/// VRRP protocol version carried in the high nibble of byte 0 (RFC 5798 5.2.1).
pub const VRRP_VERSION: u8 = 3;
/// The only VRRPv3 message type: advertisement (low nibble of byte 0).
pub const VRRP_TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the fixed VRRPv3 header, before the address list.
pub const VRRP_HEADER_LEN: usize = 8;
/// Priority of the address owner (RFC 5798 5.2.4): takes over at once.
pub const VRRP_PRIORITY_OWNER: u8 = 255;
/// Priority a master sends when it stops (RFC 5798 6.4.3): backups wait only Skew_Time.
pub const VRRP_PRIORITY_RESIGN: u8 = 0;
/// Default priority of a backup (RFC 5798 6.1).
pub const VRRP_PRIORITY_DEFAULT: u8 = 100;
/// The 12-bit Max Adver Int field, in centiseconds (RFC 5798 5.2.7).
pub const VRRP_MAX_ADVERT_INTERVAL: u16 = 0x0fff;
/// Default Advertisement_Interval, centiseconds (RFC 5798 6.1).
pub const VRRP_ADVERT_INTERVAL_DEFAULT: u16 = 100;

/// Added to the VRID in the dataplane's per-router key (`VhidKey::vhid`, the vip entries'
/// `vhid`) for an IPv6 virtual router: the IPv4 one of the same VRID keeps the VRID itself,
/// which is also where a CARP vhid of that number (and so that virtual MAC) would be.
pub const VRRP_V6_SLOT: u32 = 0x100;
/// Most addresses in a VRRP advert the XDP program checksums; adverts with more are dropped
/// and counted (`vrrp_bad_length`).
pub const VRRP_XDP_MAX_ADDRESSES: usize = 16;

/// The dataplane key of a virtual router: the VRID, plus [`VRRP_V6_SLOT`] for IPv6.
pub const fn vrrp_slot(vrid: u8, v6: bool) -> u32 {
    if v6 {
        VRRP_V6_SLOT | vrid as u32
    } else {
        vrid as u32
    }
}

/// The first five bytes of an IPv4 VRRP virtual MAC (RFC 5798 7.3): `00:00:5e:00:01:<vrid>`,
/// the same block as CARP's virtual MACs.
pub const VRRP_MAC_PREFIX_V4: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x01];
/// The first five bytes of an IPv6 VRRP virtual MAC (RFC 5798 7.3): `00:00:5e:00:02:<vrid>`.
pub const VRRP_MAC_PREFIX_V6: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x02];

/// The virtual MAC of a VRID for one IP family (`v6` false: IPv4).
pub const fn vrrp_virtual_mac(vrid: u8, v6: bool) -> [u8; 6] {
    let p = if v6 {
        VRRP_MAC_PREFIX_V6
    } else {
        VRRP_MAC_PREFIX_V4
    };
    [p[0], p[1], p[2], p[3], p[4], vrid]
}

/// The VRID of an IPv6 VRRP virtual MAC, or `None` when `mac` is not one. (An IPv4 one is
/// a CARP virtual MAC too: see [`vhid_of_virtual_mac`](crate::wire::vhid_of_virtual_mac).)
pub fn vrid_of_v6_virtual_mac(mac: &[u8; 6]) -> Option<u8> {
    if mac[..5] == VRRP_MAC_PREFIX_V6 && mac[5] != 0 {
        Some(mac[5])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::virtual_mac;

    #[test]
    fn virtual_macs_of_both_families() {
        assert_eq!(vrrp_virtual_mac(1, false), [0, 0, 0x5e, 0, 1, 1]);
        assert_eq!(vrrp_virtual_mac(1, true), [0, 0, 0x5e, 0, 2, 1]);
        // The IPv4 one is CARP's for the same number: a VRID and a vhid collide there.
        assert_eq!(vrrp_virtual_mac(42, false), virtual_mac(42));
        assert_eq!(
            vrid_of_v6_virtual_mac(&vrrp_virtual_mac(200, true)),
            Some(200)
        );
        assert_eq!(vrid_of_v6_virtual_mac(&vrrp_virtual_mac(200, false)), None);
        assert_eq!(vrid_of_v6_virtual_mac(&[0, 0, 0x5e, 0, 2, 0]), None);
    }
}
