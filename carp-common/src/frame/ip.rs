//! IPv4 (RFC 791) and IPv6 (RFC 8200) headers without options or extension headers.

use super::checksum::Checksum;

/// Fixed IPv4 header length (no options).
pub const IPV4_HLEN: usize = 20;
/// Fixed IPv6 header length.
pub const IPV6_HLEN: usize = 40;

/// Version 4, header length 5 words: the first byte of an IPv4 header without options.
pub const IPV4_VERSION_IHL: u8 = 0x45;
/// Version 6, traffic class 0, flow label 0: the first four bytes of the IPv6 headers built
/// here.
pub const IPV6_VERSION_TC_FLOW: [u8; 4] = [0x60, 0, 0, 0];

/// The flags/fragment-offset field: don't fragment, more fragments, the offset.
pub const IP_DF: u16 = 0x4000;
pub const IP_MF: u16 = 0x2000;
pub const IP_OFFMASK: u16 = 0x1fff;

/// IPv6 next-header value of ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// ff02::1, all nodes on the link.
pub const IPV6_ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
/// ::, the unspecified address.
pub const IPV6_UNSPECIFIED: [u8; 16] = [0; 16];
/// ff02::1:ff00:0/104, the solicited-node multicast prefix (RFC 4291 2.7.1).
pub const IPV6_SOLICITED_NODE_PREFIX: [u8; 13] =
    [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
wire_bytes!(Ipv4Hdr, IPV4_HLEN);

impl Ipv4Hdr {
    /// The header length in bytes (IHL × 4); below 20 the packet is not valid IPv4.
    #[inline(always)]
    pub fn header_len(&self) -> usize {
        ((self.version_ihl & 0x0f) as usize) * 4
    }

    /// True for any fragment but a whole datagram (more fragments, or an offset).
    #[inline(always)]
    pub fn is_fragment(&self) -> bool {
        u16::from_be_bytes(self.frag) & (IP_MF | IP_OFFMASK) != 0
    }

    /// The header checksum over these 20 bytes, as the header's checksum field must carry
    /// it when that field is zero (and 0 when the header carries a correct one).
    #[inline(always)]
    pub fn header_checksum(&self) -> u16 {
        Checksum::new().add_words(self.as_bytes()).finish()
    }
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Hdr {
    pub version_tc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub next_header: u8,
    pub hop_limit: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}
wire_bytes!(Ipv6Hdr, IPV6_HLEN);

impl Ipv6Hdr {
    /// A header with traffic class and flow label 0.
    #[inline(always)]
    pub fn new(
        src: [u8; 16],
        dst: [u8; 16],
        next_header: u8,
        hop_limit: u8,
        payload_len: u16,
    ) -> Self {
        Self {
            version_tc_flow: IPV6_VERSION_TC_FLOW,
            payload_len: payload_len.to_be_bytes(),
            next_header,
            hop_limit,
            src,
            dst,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_fields() {
        let mut h = Ipv4Hdr {
            version_ihl: IPV4_VERSION_IHL,
            tos: 0x10,
            total_len: 56u16.to_be_bytes(),
            id: 0xbeefu16.to_be_bytes(),
            frag: IP_DF.to_be_bytes(),
            ttl: 255,
            protocol: 112,
            checksum: [0; 2],
            src: [192, 0, 2, 11],
            dst: [224, 0, 0, 18],
        };
        assert_eq!(h.header_len(), 20);
        assert!(!h.is_fragment(), "DF alone is a whole datagram");
        // Computed independently (Python, RFC 1071).
        assert_eq!(h.header_checksum(), 0x1a38);
        h.checksum = 0x1a38u16.to_be_bytes();
        assert_eq!(h.header_checksum(), 0);
        h.frag = IP_MF.to_be_bytes();
        assert!(h.is_fragment());
        h.frag = 1u16.to_be_bytes();
        assert!(h.is_fragment());
    }

    #[test]
    fn ipv6_bytes() {
        let mut src = [0u8; 16];
        src[0] = 0xfe;
        src[1] = 0x80;
        src[15] = 1;
        let h = Ipv6Hdr::new(src, IPV6_ALL_NODES, 112, 255, 3);
        let b = h.as_bytes();
        assert_eq!(&b[..8], &[0x60, 0, 0, 0, 0, 3, 112, 255]);
        assert_eq!(&b[8..24], &src);
        assert_eq!(&b[24..], &IPV6_ALL_NODES);
    }
}
