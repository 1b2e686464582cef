//! Frame builders for tests and the benchmark, written from the RFCs independently of the
//! product code, so that a test's expected bytes never come from the code under test.
use std::net::{Ipv4Addr, Ipv6Addr};

pub const BROADCAST: [u8; 6] = [0xff; 6];
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ETH_P_8021Q: u16 = 0x8100;

/// RFC 1071 checksum of `data` (odd length padded with a zero byte) plus a starting sum.
pub fn inet_checksum(initial: u32, data: &[u8]) -> u16 {
    let mut sum = initial;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 {
            u16::from_be_bytes([chunk[0], chunk[1]])
        } else {
            u16::from_be_bytes([chunk[0], 0])
        };
        sum += word as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// ARP payload for Ethernet/IPv4.
pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = Vec::with_capacity(28);
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(&ETH_P_IP.to_be_bytes());
    p.push(6);
    p.push(4);
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

/// A broadcast ARP request "who has `tpa`, tell `spa`".
pub fn arp_request(sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Vec<u8> {
    ethernet(BROADCAST, sha, ETH_P_ARP, &arp(1, sha, spa, [0; 6], tpa))
}

/// The reply `mac` owning `ip` sends to the requester.
pub fn arp_reply(mac: [u8; 6], ip: Ipv4Addr, to_mac: [u8; 6], to_ip: Ipv4Addr) -> Vec<u8> {
    ethernet(to_mac, mac, ETH_P_ARP, &arp(2, mac, ip, to_mac, to_ip))
}

/// An IPv4 header (no options) with a correct header checksum, followed by `payload`.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = 20 + payload.len();
    let mut h = vec![
        0x45,
        0x10,
        (total >> 8) as u8,
        total as u8,
        0x12,
        0x34,
        0x40,
        0x00,
        ttl,
        protocol,
        0,
        0,
    ];
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let csum = inet_checksum(0, &h);
    h[10..12].copy_from_slice(&csum.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(next_header);
    h.push(hop_limit);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// Fields of a CARP header as a test wants to set them (any values, also invalid ones).
#[derive(Clone, Copy, Debug)]
pub struct CarpFields {
    pub version: u8,
    pub kind: u8,
    pub vhid: u8,
    pub advskew: u8,
    pub authlen: u8,
    pub demote: u8,
    pub advbase: u8,
    pub counter: u64,
    pub hmac: [u8; 20],
}

impl CarpFields {
    pub fn advert(vhid: u8) -> Self {
        CarpFields {
            version: 2,
            kind: 1,
            vhid,
            advskew: 0,
            authlen: 7,
            demote: 0,
            advbase: 1,
            counter: 0x0102_0304_0506_0708,
            hmac: [0xab; 20],
        }
    }

    /// The 36 bytes with a correct checksum.
    pub fn encode(&self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0] = (self.version << 4) | (self.kind & 0x0f);
        b[1] = self.vhid;
        b[2] = self.advskew;
        b[3] = self.authlen;
        b[4] = self.demote;
        b[5] = self.advbase;
        b[8..16].copy_from_slice(&self.counter.to_be_bytes());
        b[16..36].copy_from_slice(&self.hmac);
        let csum = inet_checksum(0, &b);
        b[6..8].copy_from_slice(&csum.to_be_bytes());
        b
    }
}

pub const CARP_V4_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
pub const CARP_V4_MAC: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
pub const CARP_V6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
pub const CARP_V6_MAC: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];

/// A whole IPv4 advertisement frame carrying `carp` (any bytes) with the given TTL.
pub fn advert_v4(src_mac: [u8; 6], src: Ipv4Addr, ttl: u8, carp: &[u8]) -> Vec<u8> {
    ethernet(
        CARP_V4_MAC,
        src_mac,
        ETH_P_IP,
        &ipv4(src, CARP_V4_GROUP, 112, ttl, carp),
    )
}

/// The valid-checksum flood for vhid 1: adverts with a wrong HMAC that advertise the best
/// priority (advbase 0, advskew 0) and a demoted master, sent from `src_mac`/`src` and forged
/// from `master`'s own address. Each passes every check XDP can make, so only the HMAC in
/// carpd tells them apart from the real master's.
pub fn forged_best_adverts(src_mac: [u8; 6], src: Ipv4Addr, master: Ipv4Addr) -> Vec<Vec<u8>> {
    let best = CarpFields {
        advbase: 0,
        advskew: 0,
        ..CarpFields::advert(1)
    };
    let demoted = CarpFields {
        demote: 255,
        ..best
    };
    vec![
        advert_v4(src_mac, src, 255, &best.encode()),
        advert_v4(src_mac, master, 255, &demoted.encode()),
    ]
}

/// A whole IPv6 advertisement frame.
pub fn advert_v6(src_mac: [u8; 6], src: Ipv6Addr, hop_limit: u8, carp: &[u8]) -> Vec<u8> {
    ethernet(
        CARP_V6_MAC,
        src_mac,
        ETH_P_IPV6,
        &ipv6(src, CARP_V6_GROUP, 112, hop_limit, carp),
    )
}

/// ICMPv6 checksum with the RFC 8200 pseudo-header.
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40 + icmp.len());
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(icmp);
    inet_checksum(0, &pseudo)
}

/// The solicited-node multicast address of `target` (RFC 4291 2.7.1).
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let t = target.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, t[13], t[14], t[15],
    ])
}

fn multicast_mac(ip: Ipv6Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A neighbour solicitation for `target` from (`src_mac`, `src`); with a source link-layer
/// option unless `src` is unspecified (duplicate address detection, RFC 4861 4.3).
pub fn neighbor_solicitation(src_mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let dst = solicited_node(target);
    let mut icmp = vec![135, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    if !src.is_unspecified() {
        icmp.extend_from_slice(&[1, 1]);
        icmp.extend_from_slice(&src_mac);
    }
    let csum = icmpv6_checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    ethernet(
        multicast_mac(dst),
        src_mac,
        ETH_P_IPV6,
        &ipv6(src, dst, 58, 255, &icmp),
    )
}

/// The neighbour advertisement a host owning `target` with `mac` sends in reply to a
/// solicitation from (`to_mac`, `to`), with the target link-layer option.
/// `flags` is the first byte of the flags field (R 0x80, S 0x40, O 0x20).
pub fn neighbor_advertisement(
    mac: [u8; 6],
    target: Ipv6Addr,
    to_mac: [u8; 6],
    to: Ipv6Addr,
    flags: u8,
) -> Vec<u8> {
    let mut icmp = vec![136, 0, 0, 0, flags, 0, 0, 0];
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&mac);
    let csum = icmpv6_checksum(target, to, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    ethernet(to_mac, mac, ETH_P_IPV6, &ipv6(target, to, 58, 255, &icmp))
}

/// `frame` with an 802.1Q tag (VLAN `vid`) inserted after the MAC addresses.
pub fn vlan_tagged(frame: &[u8], vid: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(frame.len() + 4);
    f.extend_from_slice(&frame[..12]);
    f.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
    f.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    f.extend_from_slice(&frame[12..]);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2; checksum is its complement.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(inet_checksum(0, &data), !0xddf2);
    }

    #[test]
    fn carp_header_checksum_verifies() {
        let b = CarpFields::advert(7).encode();
        assert_eq!(inet_checksum(0, &b), 0);
        assert_eq!(b[0], 0x21);
    }

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4(
            Ipv4Addr::new(192, 0, 2, 1),
            CARP_V4_GROUP,
            112,
            255,
            &[0; 36],
        );
        assert_eq!(inet_checksum(0, &p[..20]), 0);
    }
}
