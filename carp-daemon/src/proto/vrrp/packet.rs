//! The VRRPv3 advertisement (RFC 5798 5.2, RFC 9568): the 8-byte header and the address
//! list, encode and decode, and its two checksum forms.
//!
//! | byte | field                                                               |
//! |------|---------------------------------------------------------------------|
//! | 0    | version (high nibble) = 3, type (low nibble) = 1                    |
//! | 1    | VRID                                                                |
//! | 2    | priority (255 owner, 0 master resigning)                            |
//! | 3    | count of addresses                                                  |
//! | 4-5  | 4 reserved bits, 12-bit Max Adver Int in centiseconds               |
//! | 6-7  | Internet checksum                                                   |
//! | 8-   | the addresses: 4 bytes each in an IPv4 packet, 16 in an IPv6 one    |
//!
//! # Checksum
//! The checksum covers the whole VRRP message. For IPv6 it includes the IPv6 pseudo-header
//! (RFC 8200 8.1). For IPv4 implementations differ: keepalived (since 1.3.6), FreeBSD and
//! FRR also prepend the IPv4 pseudo-header (source, destination, zero, protocol 112,
//! length), which is what keepalived 2.2.7 sends and accepts on multicast; RFC 9568 and
//! Cisco leave it out, as VRRPv2 does (keepalived's later `v3_checksum_as_v2`). carpd
//! sends the form [`ChecksumForm`] says (pseudo-header by default) and accepts either on
//! receive ([`VrrpAdvert::decode`] reports which one matched).
//!
//! # Receive checks left to the caller
//! TTL / hop limit 255 and whether the VRID is configured are the IP layer's and the
//! daemon's; the reserved bits are ignored (RFC 5798 5.2.7 "MUST be ignored on receipt");
//! bytes after the announced addresses are ignored, as keepalived does.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use carp_common::{
    frame::{Checksum, checksum::ipv6_pseudo_header},
    vrrp::{VRRP_HEADER_LEN, VRRP_MAX_ADVERT_INTERVAL, VRRP_TYPE_ADVERTISEMENT, VRRP_VERSION},
    wire::IPPROTO_CARP,
};

/// Which IPv4 checksum a VRRPv3 advert carries. IPv6 adverts always include the pseudo-header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumForm {
    /// The IPv4 pseudo-header is included: keepalived, FreeBSD and FRR by default.
    #[default]
    PseudoHeader,
    /// Only the VRRP message, as RFC 9568 and VRRPv2 (keepalived `v3_checksum_as_v2`).
    MessageOnly,
}

impl ChecksumForm {
    /// The configuration word.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChecksumForm::PseudoHeader => "pseudo-header",
            ChecksumForm::MessageOnly => "message-only",
        }
    }
}

/// The addresses of an advert; their family is the packet's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum VrrpAddresses {
    V4(Vec<Ipv4Addr>),
    /// The first is the link-local virtual address (RFC 5798 5.2.9).
    V6(Vec<Ipv6Addr>),
}

impl VrrpAddresses {
    pub fn len(&self) -> usize {
        match self {
            VrrpAddresses::V4(a) => a.len(),
            VrrpAddresses::V6(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    const fn address_len(v6: bool) -> usize {
        if v6 { 16 } else { 4 }
    }
}

/// A VRRPv3 advertisement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VrrpAdvert {
    /// 1..=255.
    pub vrid: u8,
    /// 0 (resigning master), 1..=254, 255 (owner).
    pub priority: u8,
    /// Max Adver Int, centiseconds, 12 bits.
    pub max_advert_int: u16,
    pub addresses: VrrpAddresses,
}

/// The source and destination of the IP packet that carries an advert: the checksum's
/// pseudo-header. Both of the advert's family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpEnds {
    pub src: IpAddr,
    pub dst: IpAddr,
}

/// Why bytes are not a VRRPv3 advert. Each is a counted drop on receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum VrrpDecodeError {
    #[error("packet shorter than the VRRP header and its addresses")]
    TooShort,
    #[error("VRRP version {0}, not 3")]
    BadVersion(u8),
    #[error("VRRP type {0}, not advertisement (1)")]
    BadType(u8),
    #[error("bad checksum (neither with nor without the IPv4 pseudo-header)")]
    BadChecksum,
    #[error("the IP source and destination are not of one family")]
    MixedFamilies,
}

/// Why an advert cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum VrrpEncodeError {
    #[error("an advert carries 1 to 255 addresses, not {0}")]
    AddressCount(usize),
    #[error("max advert interval {0} cs does not fit in 12 bits (at most 4095)")]
    IntervalTooLarge(u16),
    #[error("the addresses are not of the IP packet's family")]
    FamilyMismatch,
}

impl VrrpAdvert {
    /// Encodes the advert as the IP payload between `ends`, checksummed as `form` says for
    /// IPv4 (IPv6 always includes its pseudo-header).
    pub fn encode(&self, ends: IpEnds, form: ChecksumForm) -> Result<Vec<u8>, VrrpEncodeError> {
        let count = self.addresses.len();
        if count == 0 || count > usize::from(u8::MAX) {
            return Err(VrrpEncodeError::AddressCount(count));
        }
        if self.max_advert_int > VRRP_MAX_ADVERT_INTERVAL {
            return Err(VrrpEncodeError::IntervalTooLarge(self.max_advert_int));
        }
        let v6 = matches!(self.addresses, VrrpAddresses::V6(_));
        if ends.src.is_ipv6() != v6 || ends.dst.is_ipv6() != v6 {
            return Err(VrrpEncodeError::FamilyMismatch);
        }
        let mut out = Vec::with_capacity(VRRP_HEADER_LEN + count * VrrpAddresses::address_len(v6));
        out.push(VRRP_VERSION << 4 | VRRP_TYPE_ADVERTISEMENT);
        out.push(self.vrid);
        out.push(self.priority);
        out.push(count as u8);
        out.extend_from_slice(&self.max_advert_int.to_be_bytes());
        out.extend_from_slice(&[0, 0]);
        match &self.addresses {
            VrrpAddresses::V4(a) => a.iter().for_each(|ip| out.extend_from_slice(&ip.octets())),
            VrrpAddresses::V6(a) => a.iter().for_each(|ip| out.extend_from_slice(&ip.octets())),
        }
        let sum = checksum_start(ends, out.len(), form)
            .ok_or(VrrpEncodeError::FamilyMismatch)?
            .add_slice(&out)
            .finish();
        out[6..8].copy_from_slice(&sum.to_be_bytes());
        Ok(out)
    }

    /// Decodes the IP payload of a protocol-112 packet between `ends` as a VRRPv3 advert,
    /// accepting either IPv4 checksum form; returns the form that matched.
    pub fn decode(payload: &[u8], ends: IpEnds) -> Result<(Self, ChecksumForm), VrrpDecodeError> {
        let Some(header) = payload.get(..VRRP_HEADER_LEN) else {
            return Err(VrrpDecodeError::TooShort);
        };
        let version = header[0] >> 4;
        if version != VRRP_VERSION {
            return Err(VrrpDecodeError::BadVersion(version));
        }
        let kind = header[0] & 0x0f;
        if kind != VRRP_TYPE_ADVERTISEMENT {
            return Err(VrrpDecodeError::BadType(kind));
        }
        let v6 = ends.src.is_ipv6();
        if ends.dst.is_ipv6() != v6 {
            return Err(VrrpDecodeError::MixedFamilies);
        }
        let count = usize::from(header[3]);
        let len = VRRP_HEADER_LEN + count * VrrpAddresses::address_len(v6);
        let Some(message) = payload.get(..len) else {
            return Err(VrrpDecodeError::TooShort);
        };
        let form = [ChecksumForm::PseudoHeader, ChecksumForm::MessageOnly]
            .into_iter()
            .find(|form| {
                checksum_start(ends, len, *form)
                    .is_some_and(|sum| sum.add_slice(message).finish() == 0)
            })
            .ok_or(VrrpDecodeError::BadChecksum)?;
        let list = &message[VRRP_HEADER_LEN..];
        let addresses = if v6 {
            VrrpAddresses::V6(
                list.chunks_exact(16)
                    .map(|c| Ipv6Addr::from(<[u8; 16]>::try_from(c).expect("16-byte chunk")))
                    .collect(),
            )
        } else {
            VrrpAddresses::V4(
                list.chunks_exact(4)
                    .map(|c| Ipv4Addr::from(<[u8; 4]>::try_from(c).expect("4-byte chunk")))
                    .collect(),
            )
        };
        let advert = VrrpAdvert {
            vrid: header[1],
            priority: header[2],
            max_advert_int: u16::from_be_bytes([header[4], header[5]]) & VRRP_MAX_ADVERT_INTERVAL,
            addresses,
        };
        Ok((advert, form))
    }
}

/// The checksum's running sum before the message: the pseudo-header, or nothing for the
/// IPv4 message-only form. `None` when the ends are of two families.
fn checksum_start(ends: IpEnds, len: usize, form: ChecksumForm) -> Option<Checksum> {
    match (ends.src, ends.dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => Some(match form {
            ChecksumForm::PseudoHeader => Checksum::new()
                .add_words(&src.octets())
                .add_words(&dst.octets())
                .add_u16(u16::from(IPPROTO_CARP))
                .add_u16(len as u16),
            ChecksumForm::MessageOnly => Checksum::new(),
        }),
        (IpAddr::V6(src), IpAddr::V6(dst)) => Some(ipv6_pseudo_header(
            &src.octets(),
            &dst.octets(),
            len as u32,
            IPPROTO_CARP,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GROUP_V4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    const GROUP_V6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

    /// Captured in the lab from keepalived 2.2.7 (Debian), `vrrp_version 3`, instance with
    /// `virtual_router_id 7`, `priority 150`, `advert_int 1`, VIPs 192.0.2.1 and 192.0.2.2,
    /// sent from 192.0.2.11 to 224.0.0.18: the IP payload (tcpdump -xx).
    const KEEPALIVED_V4: [u8; 16] = [
        0x31, 0x07, 0x96, 0x02, 0x00, 0x64, 0x11, 0xef, 0xc0, 0x00, 0x02, 0x01, 0xc0, 0x00, 0x02,
        0x02,
    ];
    const KEEPALIVED_V4_SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));

    /// The same capture, IPv6 instance: `virtual_router_id 8`, `priority 120`,
    /// `advert_int 0.5`, VIPs fe80::1 and 2001:db8::1, from fe80::883f:e3ff:fea6:3729 to
    /// ff02::12.
    const KEEPALIVED_V6: [u8; 40] = [
        0x31, 0x08, 0x78, 0x02, 0x00, 0x32, 0x8a, 0x49, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
    ];
    const KEEPALIVED_V6_SRC: IpAddr = IpAddr::V6(Ipv6Addr::new(
        0xfe80, 0, 0, 0, 0x883f, 0xe3ff, 0xfea6, 0x3729,
    ));

    fn v4_ends() -> IpEnds {
        IpEnds {
            src: KEEPALIVED_V4_SRC,
            dst: GROUP_V4,
        }
    }

    fn v6_ends() -> IpEnds {
        IpEnds {
            src: KEEPALIVED_V6_SRC,
            dst: GROUP_V6,
        }
    }

    fn keepalived_v4_advert() -> VrrpAdvert {
        VrrpAdvert {
            vrid: 7,
            priority: 150,
            max_advert_int: 100,
            addresses: VrrpAddresses::V4(vec![
                Ipv4Addr::new(192, 0, 2, 1),
                Ipv4Addr::new(192, 0, 2, 2),
            ]),
        }
    }

    fn keepalived_v6_advert() -> VrrpAdvert {
        VrrpAdvert {
            vrid: 8,
            priority: 120,
            max_advert_int: 50,
            addresses: VrrpAddresses::V6(vec![
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
            ]),
        }
    }

    #[test]
    fn decodes_keepalived_ipv4_advert() {
        let (advert, form) = VrrpAdvert::decode(&KEEPALIVED_V4, v4_ends()).unwrap();
        assert_eq!(advert, keepalived_v4_advert());
        assert_eq!(
            form,
            ChecksumForm::PseudoHeader,
            "keepalived's default form"
        );
    }

    #[test]
    fn encodes_keepalived_ipv4_advert_byte_for_byte() {
        let bytes = keepalived_v4_advert()
            .encode(v4_ends(), ChecksumForm::PseudoHeader)
            .unwrap();
        assert_eq!(bytes, KEEPALIVED_V4);
    }

    #[test]
    fn ipv6_advert_round_trips_byte_for_byte() {
        let (advert, form) = VrrpAdvert::decode(&KEEPALIVED_V6, v6_ends()).unwrap();
        assert_eq!(advert, keepalived_v6_advert());
        assert_eq!(form, ChecksumForm::PseudoHeader);
        // The IPv6 checksum has the pseudo-header whatever the IPv4 setting says.
        for form in [ChecksumForm::PseudoHeader, ChecksumForm::MessageOnly] {
            assert_eq!(advert.encode(v6_ends(), form).unwrap(), KEEPALIVED_V6);
        }
    }

    #[test]
    fn message_only_form_is_the_vrrpv2_sum_and_is_accepted() {
        let bytes = keepalived_v4_advert()
            .encode(v4_ends(), ChecksumForm::MessageOnly)
            .unwrap();
        assert_eq!(bytes[..6], KEEPALIVED_V4[..6]);
        assert_eq!(bytes[8..], KEEPALIVED_V4[8..]);
        // Computed independently (RFC 1071 over the 16 bytes with a zero checksum field):
        // 0x3107 + 0x9602 + 0x0064 + 0xc000 + 0x0201 + 0xc000 + 0x0202 = 0x24b70, folded
        // 0x4b72, complemented 0xb48d.
        assert_eq!(bytes[6..8], [0xb4, 0x8d]);
        let (advert, form) = VrrpAdvert::decode(&bytes, v4_ends()).unwrap();
        assert_eq!(advert, keepalived_v4_advert());
        assert_eq!(form, ChecksumForm::MessageOnly);
    }

    #[test]
    fn pseudo_header_binds_the_ip_ends() {
        // The same bytes from another source fail the pseudo-header form, and (being not
        // the message-only sum either) are rejected.
        let moved = IpEnds {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 12)),
            dst: GROUP_V4,
        };
        assert_eq!(
            VrrpAdvert::decode(&KEEPALIVED_V4, moved),
            Err(VrrpDecodeError::BadChecksum)
        );
        let moved6 = IpEnds {
            src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)),
            dst: GROUP_V6,
        };
        assert_eq!(
            VrrpAdvert::decode(&KEEPALIVED_V6, moved6),
            Err(VrrpDecodeError::BadChecksum)
        );
    }

    #[test]
    fn rejects_each_malformation() {
        assert_eq!(
            VrrpAdvert::decode(&KEEPALIVED_V4[..7], v4_ends()),
            Err(VrrpDecodeError::TooShort)
        );
        // The count says two addresses, one is missing.
        assert_eq!(
            VrrpAdvert::decode(&KEEPALIVED_V4[..12], v4_ends()),
            Err(VrrpDecodeError::TooShort)
        );
        let mut v2 = KEEPALIVED_V4;
        v2[0] = 0x21;
        assert_eq!(
            VrrpAdvert::decode(&v2, v4_ends()),
            Err(VrrpDecodeError::BadVersion(2))
        );
        let mut kind = KEEPALIVED_V4;
        kind[0] = 0x32;
        assert_eq!(
            VrrpAdvert::decode(&kind, v4_ends()),
            Err(VrrpDecodeError::BadType(2))
        );
        let mut flipped = KEEPALIVED_V4;
        flipped[2] ^= 0x01;
        assert_eq!(
            VrrpAdvert::decode(&flipped, v4_ends()),
            Err(VrrpDecodeError::BadChecksum)
        );
        let mixed = IpEnds {
            src: KEEPALIVED_V4_SRC,
            dst: GROUP_V6,
        };
        assert_eq!(
            VrrpAdvert::decode(&KEEPALIVED_V4, mixed),
            Err(VrrpDecodeError::MixedFamilies)
        );
    }

    #[test]
    fn ignores_reserved_bits_and_trailing_bytes() {
        let advert = keepalived_v4_advert();
        let mut bytes = advert.encode(v4_ends(), ChecksumForm::MessageOnly).unwrap();
        // Set a reserved bit and fix the checksum up: still Max Adver Int 100.
        bytes[4] |= 0x80;
        bytes[6..8].copy_from_slice(&[0, 0]);
        let sum = Checksum::new().add_slice(&bytes).finish();
        bytes[6..8].copy_from_slice(&sum.to_be_bytes());
        bytes.extend_from_slice(&[0xde, 0xad]);
        assert_eq!(VrrpAdvert::decode(&bytes, v4_ends()).unwrap().0, advert);
    }

    #[test]
    fn refuses_what_cannot_be_encoded() {
        let mut advert = keepalived_v4_advert();
        advert.max_advert_int = 4096;
        assert_eq!(
            advert.encode(v4_ends(), ChecksumForm::PseudoHeader),
            Err(VrrpEncodeError::IntervalTooLarge(4096))
        );
        advert.max_advert_int = 100;
        advert.addresses = VrrpAddresses::V4(vec![]);
        assert_eq!(
            advert.encode(v4_ends(), ChecksumForm::PseudoHeader),
            Err(VrrpEncodeError::AddressCount(0))
        );
        assert_eq!(
            keepalived_v4_advert().encode(v6_ends(), ChecksumForm::PseudoHeader),
            Err(VrrpEncodeError::FamilyMismatch)
        );
    }
}
