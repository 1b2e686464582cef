//! CARP advertisements as captured on the wire, decoded for tests to assert on: the one
//! decoder of captured advert frames. (Adverts that XDP hands
//! to carpd through the ring buffer are decoded by carpd itself, `dataplane::decode_event`,
//! which the fixture tests use too.)
//!
//! Decoding is deliberately independent of carpd's `proto::packet`: a test that checked
//! carpd's frames with carpd's own parser would accept whatever carpd got wrong in both.
//! The CARP header comes back as [`CarpFields`], the struct the frame builders encode.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::frames::{CarpFields, ETH_P_IP, ETH_P_IPV6};

/// IP protocol number of CARP (shared with VRRP).
pub const IPPROTO_CARP: u8 = 112;
/// Length of the CARP header (spec "Packet"): version/type, vhid, advskew, authlen, demote,
/// advbase, checksum, the 8-byte counter and the 20-byte HMAC.
pub const CARP_HEADER_LEN: usize = 36;

/// One captured advertisement: an Ethernet frame carrying IPv4 or IPv6 (no extension
/// headers), protocol 112, and at least the 36 bytes of a CARP header.
#[derive(Debug, Clone)]
pub struct CapturedAdvert {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    /// 0x0800 or 0x86dd.
    pub ethertype: u16,
    /// The whole IP packet (header and payload), for byte-level header checks.
    pub ip: Vec<u8>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// The CARP header fields, decoded.
    pub carp: CarpFields,
    /// The CARP checksum as received (`CarpFields::encode` computes its own).
    pub carp_checksum: u16,
}

impl CapturedAdvert {
    /// Decodes `frame`; `None` if it is not an IPv4 or IPv6 protocol-112 frame with a whole
    /// CARP header (e.g. cut short by the capture's snap length).
    pub fn parse(frame: &[u8]) -> Option<CapturedAdvert> {
        let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        let ip = frame.get(14..)?;
        let (src, dst, ttl, payload) = match ethertype {
            ETH_P_IP => {
                let header_len = usize::from(ip.first()? & 0x0f) * 4;
                if ip.get(9)? != &IPPROTO_CARP || header_len < 20 {
                    return None;
                }
                let addr = |at: usize| -> Option<IpAddr> {
                    let octets: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
                    Some(Ipv4Addr::from(octets).into())
                };
                (addr(12)?, addr(16)?, ip[8], ip.get(header_len..)?)
            }
            ETH_P_IPV6 => {
                if ip.get(6)? != &IPPROTO_CARP {
                    return None;
                }
                let addr = |at: usize| -> Option<IpAddr> {
                    let octets: [u8; 16] = ip.get(at..at + 16)?.try_into().ok()?;
                    Some(Ipv6Addr::from(octets).into())
                };
                (addr(8)?, addr(24)?, ip[7], ip.get(40..)?)
            }
            _ => return None,
        };
        let c = payload.get(..CARP_HEADER_LEN)?;
        Some(CapturedAdvert {
            eth_dst: frame[..6].try_into().ok()?,
            eth_src: frame[6..12].try_into().ok()?,
            ethertype,
            ip: ip.to_vec(),
            src,
            dst,
            ttl,
            carp: CarpFields {
                version: c[0] >> 4,
                kind: c[0] & 0x0f,
                vhid: c[1],
                advskew: c[2],
                authlen: c[3],
                demote: c[4],
                advbase: c[5],
                counter: u64::from_be_bytes(c[8..16].try_into().ok()?),
                hmac: c[16..36].try_into().ok()?,
            },
            carp_checksum: u16::from_be_bytes([c[6], c[7]]),
        })
    }

    /// Whether it travelled over IPv4.
    pub fn is_v4(&self) -> bool {
        self.ethertype == ETH_P_IP
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{CARP_V4_GROUP, CARP_V6_GROUP, advert_v4, advert_v6, ipv4};

    const MAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 7];

    fn fields() -> CarpFields {
        CarpFields {
            advskew: 100,
            demote: 3,
            advbase: 2,
            counter: 0x1122_3344_5566_7788,
            hmac: [0x5a; 20],
            ..CarpFields::advert(7)
        }
    }

    fn assert_fields(got: &CarpFields, want: &CarpFields) {
        assert_eq!(
            (got.version, got.kind, got.vhid, got.advskew, got.authlen),
            (
                want.version,
                want.kind,
                want.vhid,
                want.advskew,
                want.authlen
            )
        );
        assert_eq!((got.demote, got.advbase), (want.demote, want.advbase));
        assert_eq!((got.counter, got.hmac), (want.counter, want.hmac));
    }

    #[test]
    fn decodes_what_the_builders_encode_over_both_families() {
        let header = fields().encode();
        let src4 = Ipv4Addr::new(192, 0, 2, 11);
        let a = CapturedAdvert::parse(&advert_v4(MAC, src4, 255, &header)).unwrap();
        assert!(a.is_v4());
        assert_eq!(
            (a.eth_src, a.eth_dst[..3].to_vec()),
            (MAC, vec![1, 0, 0x5e])
        );
        assert_eq!(
            (a.src, a.dst, a.ttl),
            (src4.into(), CARP_V4_GROUP.into(), 255)
        );
        assert_eq!(a.ip.len(), 20 + 36);
        assert_fields(&a.carp, &fields());
        assert_eq!(a.carp_checksum, u16::from_be_bytes([header[6], header[7]]));

        let src6 = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x11);
        let a = CapturedAdvert::parse(&advert_v6(MAC, src6, 254, &header)).unwrap();
        assert!(!a.is_v4());
        assert_eq!(
            (a.src, a.dst, a.ttl),
            (src6.into(), CARP_V6_GROUP.into(), 254)
        );
        assert_fields(&a.carp, &fields());
    }

    #[test]
    fn ipv4_options_move_the_carp_header() {
        let header = fields().encode();
        let mut frame = advert_v4(MAC, Ipv4Addr::new(192, 0, 2, 11), 255, &header);
        // IHL 6: four bytes of options (NOPs) between the IP header and CARP.
        frame[14] = 0x46;
        for _ in 0..4 {
            frame.insert(14 + 20, 1);
        }
        let a = CapturedAdvert::parse(&frame).unwrap();
        assert_fields(&a.carp, &fields());
    }

    #[test]
    fn other_and_short_frames_are_not_adverts() {
        let header = fields().encode();
        let frame = advert_v4(MAC, Ipv4Addr::new(192, 0, 2, 11), 255, &header);
        assert!(CapturedAdvert::parse(&frame[..frame.len() - 1]).is_none());
        assert!(CapturedAdvert::parse(&frame[..13]).is_none());
        let udp = ipv4(
            Ipv4Addr::new(192, 0, 2, 11),
            CARP_V4_GROUP,
            17,
            255,
            &header,
        );
        let mut other = frame[..14].to_vec();
        other.extend(udp);
        assert!(CapturedAdvert::parse(&other).is_none());
        let mut arp = frame.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(CapturedAdvert::parse(&arp).is_none());
    }
}
