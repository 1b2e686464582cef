//! Neighbour discovery (RFC 4861): the solicitation and advertisement messages, their
//! link-layer address options, the advertisement's flags, and the advertisement frame both
//! the XDP program (solicited, in reply) and carpd (unsolicited, on becoming master) send.

use super::checksum::ipv6_pseudo_header;
use super::ethernet::{ETH_HLEN, ETH_P_IPV6, EthHdr};
use super::ip::{IPPROTO_ICMPV6, IPV6_HLEN, Ipv6Hdr};

/// ICMPv6 types of neighbour discovery (RFC 4861 4.3, 4.4).
pub const ICMPV6_NEIGHBOR_SOLICIT: u8 = 135;
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;

/// Neighbour discovery messages travel with hop limit 255 and are refused otherwise
/// (RFC 4861 7.1.1, 7.1.2).
pub const ND_HOP_LIMIT: u8 = 255;

/// Option types (RFC 4861 4.6.1).
pub const ND_OPT_SOURCE_LINKADDR: u8 = 1;
pub const ND_OPT_TARGET_LINKADDR: u8 = 2;

/// The advertisement's flags, in the first byte of its flags field (RFC 4861 4.4).
pub const NA_FLAG_ROUTER: u8 = 0x80;
pub const NA_FLAG_SOLICITED: u8 = 0x40;
pub const NA_FLAG_OVERRIDE: u8 = 0x20;

/// Length of a solicitation or advertisement without options.
pub const ND_MSG_LEN: usize = 24;
/// Length of the link-layer address option for Ethernet (one 8-byte unit).
pub const ND_LINK_LAYER_OPT_LEN: usize = 8;
/// ICMPv6 length of the advertisements built here: the message and one option.
pub const NA_ICMP_LEN: usize = ND_MSG_LEN + ND_LINK_LAYER_OPT_LEN;
/// The whole advertisement frame.
pub const NA_FRAME_LEN: usize = ETH_HLEN + IPV6_HLEN + NA_ICMP_LEN;

/// A neighbour solicitation or advertisement without options.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdMsg {
    pub icmp_type: u8,
    pub code: u8,
    pub checksum: [u8; 2],
    pub flags: [u8; 4],
    pub target: [u8; 16],
}
wire_bytes!(NdMsg, ND_MSG_LEN);

/// The link-layer address option for Ethernet.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdLinkLayerOpt {
    pub opt_type: u8,
    /// In units of 8 bytes.
    pub len: u8,
    pub addr: [u8; 6],
}
wire_bytes!(NdLinkLayerOpt, ND_LINK_LAYER_OPT_LEN);

/// A neighbour advertisement with the target link-layer address option, as a whole frame.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NaFrame {
    pub eth: EthHdr,
    pub ip6: Ipv6Hdr,
    pub nd: NdMsg,
    pub opt: NdLinkLayerOpt,
}
wire_bytes!(NaFrame, NA_FRAME_LEN);

impl NaFrame {
    /// The advertisement that `target` is at `mac` (Ethernet source and target link-layer
    /// option), from `target` to (`dst_mac`, `dst`), with `flags` (`NA_FLAG_*`), hop limit
    /// 255 and the ICMPv6 checksum filled in.
    #[inline(always)]
    pub fn new(mac: [u8; 6], target: [u8; 16], dst_mac: [u8; 6], dst: [u8; 16], flags: u8) -> Self {
        let mut frame = Self {
            eth: EthHdr::new(dst_mac, mac, ETH_P_IPV6),
            ip6: Ipv6Hdr::new(
                target,
                dst,
                IPPROTO_ICMPV6,
                ND_HOP_LIMIT,
                NA_ICMP_LEN as u16,
            ),
            nd: NdMsg {
                icmp_type: ICMPV6_NEIGHBOR_ADVERT,
                code: 0,
                checksum: [0; 2],
                flags: [flags, 0, 0, 0],
                target,
            },
            opt: NdLinkLayerOpt {
                opt_type: ND_OPT_TARGET_LINKADDR,
                len: 1,
                addr: mac,
            },
        };
        frame.nd.checksum = frame.icmp_checksum().to_be_bytes();
        frame
    }

    /// The ICMPv6 checksum over pseudo-header, message and option, as the message's
    /// checksum field must carry it when that field is zero (and 0 once it carries it).
    #[inline(always)]
    pub fn icmp_checksum(&self) -> u16 {
        ipv6_pseudo_header(
            &self.ip6.src,
            &self.ip6.dst,
            NA_ICMP_LEN as u32,
            IPPROTO_ICMPV6,
        )
        .add_words(self.nd.as_bytes())
        .add_words(self.opt.as_bytes())
        .finish()
    }
}

/// The checksum of an ICMPv6 message (its checksum field zero) from `src` to `dst`.
pub fn icmpv6_checksum(src: &[u8; 16], dst: &[u8; 16], msg: &[u8]) -> u16 {
    ipv6_pseudo_header(src, dst, msg.len() as u32, IPPROTO_ICMPV6)
        .add_slice(msg)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::super::ethernet::ipv6_multicast_mac;
    use super::super::ip::IPV6_ALL_NODES;
    use super::*;

    const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 7];
    const TARGET: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    #[test]
    fn unsolicited_advertisement_bytes() {
        let f = NaFrame::new(
            VMAC,
            TARGET,
            ipv6_multicast_mac(&IPV6_ALL_NODES),
            IPV6_ALL_NODES,
            NA_FLAG_OVERRIDE,
        );
        let b = f.as_bytes();
        assert_eq!(
            &b[..14],
            &[0x33, 0x33, 0, 0, 0, 1, 0, 0, 0x5e, 0, 1, 7, 0x86, 0xdd]
        );
        assert_eq!(&b[14..22], &[0x60, 0, 0, 0, 0, 32, 58, 255]);
        assert_eq!(&b[22..38], &TARGET);
        assert_eq!(&b[38..54], &IPV6_ALL_NODES);
        // Checksum computed independently (Python, RFC 8200 8.1 pseudo-header).
        assert_eq!(&b[54..62], &[136, 0, 0x9c, 0x06, 0x20, 0, 0, 0]);
        assert_eq!(&b[62..78], &TARGET);
        assert_eq!(&b[78..], &[2, 1, 0, 0, 0x5e, 0, 1, 7]);
        assert_eq!(f.icmp_checksum(), 0, "a correct message sums to 0");
    }

    #[test]
    fn solicited_advertisement_checksums() {
        // Checksums computed independently (Python, RFC 8200 8.1 pseudo-header).
        let client = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99];
        let f = NaFrame::new(
            VMAC,
            TARGET,
            [2; 6],
            client,
            NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE,
        );
        assert_eq!(f.nd.checksum, [0x5b, 0xf0]);
        assert_eq!(f.eth.dst, [2; 6]);
        assert_eq!(f.ip6.dst, client);

        let link_local = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        let to = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x77,
        ];
        let all = NA_FLAG_ROUTER | NA_FLAG_SOLICITED | NA_FLAG_OVERRIDE;
        let f = NaFrame::new(VMAC, link_local, [2; 6], to, all);
        assert_eq!(f.nd.checksum, [0x0b, 0x68]);
        assert_eq!(f.nd.flags, [0xe0, 0, 0, 0]);
    }

    #[test]
    fn icmpv6_neighbour_advertisement_with_pseudo_header() {
        // The unsolicited NA for 2001:db8::10 from 00:00:5e:00:01:07 to ff02::1 (override
        // only); checksum computed independently (Python, RFC 8200 8.1): 0x9c06.
        let src = [
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let dst = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01];
        let mut msg = [0u8; 32];
        msg[0] = 136;
        msg[4] = 0x20;
        msg[8..24].copy_from_slice(&src);
        msg[24..32].copy_from_slice(&[2, 1, 0, 0, 0x5e, 0, 1, 7]);
        assert_eq!(icmpv6_checksum(&src, &dst, &msg), 0x9c06);
        let words = ipv6_pseudo_header(&src, &dst, 32, IPPROTO_ICMPV6)
            .add_words(&msg)
            .finish();
        assert_eq!(words, 0x9c06);
        msg[2..4].copy_from_slice(&0x9c06u16.to_be_bytes());
        assert_eq!(
            icmpv6_checksum(&src, &dst, &msg),
            0,
            "a correct message sums to 0"
        );
    }
}
