//! Wire-level constants of CARP (OpenBSD ip_carp.h). The frames around it (Ethernet, IP,
//! ARP, neighbour discovery, the checksum) are in [`frame`](crate::frame).

/// IP protocol number of CARP (shared with VRRP).
pub const IPPROTO_CARP: u8 = 112;
/// CARP protocol version carried in the high nibble of byte 0.
pub const CARP_VERSION: u8 = 2;
/// The only CARP message type: advertisement (low nibble of byte 0).
pub const CARP_TYPE_ADVERTISEMENT: u8 = 1;
/// Length of the CARP header: 8 fixed bytes, 8 counter bytes, 20 HMAC-SHA1 bytes.
pub const CARP_HEADER_LEN: usize = 36;
/// Length of counter plus HMAC in 32-bit words (`carp_authlen`).
pub const CARP_AUTHLEN: u8 = 7;
/// Length of the HMAC-SHA1 digest in an advertisement.
pub const CARP_HMAC_LEN: usize = 20;
/// Adverts must be sent and received with this TTL / hop limit.
pub const CARP_TTL: u8 = 255;
/// advskew values a user may configure: 0..=254 (255 is reserved for the bow-out advert).
pub const CARP_MAX_ADVSKEW: u8 = 254;
/// advbase and advskew of the bow-out advert sent when a master leaves.
pub const CARP_BOW_OUT: u8 = 255;
/// Largest passphrase OpenBSD keeps (`CARP_KEY_LEN` 20, NUL-terminated by ifconfig).
pub const CARP_MAX_PASSPHRASE_LEN: usize = 19;
/// Largest demote counter value.
pub const CARP_MAX_DEMOTE: u8 = 255;

/// IPv4 multicast group of CARP adverts (224.0.0.18).
pub const CARP_GROUP_V4: [u8; 4] = [224, 0, 0, 18];
/// IPv6 multicast group of CARP adverts (ff02::12).
pub const CARP_GROUP_V6: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12];
/// Ethernet destination of IPv4 adverts.
pub const CARP_GROUP_V4_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// Ethernet destination of IPv6 adverts (33:33:00:00:00:12).
pub const CARP_GROUP_V6_MAC: [u8; 6] = crate::frame::ethernet::ipv6_multicast_mac(&CARP_GROUP_V6);

/// The first five bytes of every virtual MAC; the sixth is the vhid.
pub const VIRTUAL_MAC_PREFIX: [u8; 5] = [0x00, 0x00, 0x5e, 0x00, 0x01];

/// The virtual MAC of a vhid: `00:00:5e:00:01:<vhid>`.
pub const fn virtual_mac(vhid: u8) -> [u8; 6] {
    [
        VIRTUAL_MAC_PREFIX[0],
        VIRTUAL_MAC_PREFIX[1],
        VIRTUAL_MAC_PREFIX[2],
        VIRTUAL_MAC_PREFIX[3],
        VIRTUAL_MAC_PREFIX[4],
        vhid,
    ]
}

/// The vhid of a virtual MAC, or `None` when `mac` is not one.
pub fn vhid_of_virtual_mac(mac: &[u8; 6]) -> Option<u8> {
    if mac[..5] == VIRTUAL_MAC_PREFIX && mac[5] != 0 {
        Some(mac[5])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_mac_round_trips() {
        assert_eq!(virtual_mac(1), [0, 0, 0x5e, 0, 1, 1]);
        assert_eq!(vhid_of_virtual_mac(&virtual_mac(255)), Some(255));
        assert_eq!(vhid_of_virtual_mac(&[0, 0, 0x5e, 0, 1, 0]), None);
        assert_eq!(vhid_of_virtual_mac(&[0, 0, 0x5e, 0, 0, 7]), None);
    }
}
