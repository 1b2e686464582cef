//! Advertisements, built as whole Ethernet frames and sent on an AF_PACKET socket bound to
//! the carpdev, with the vhid's virtual MAC as Ethernet source.
//!
//! Why frames (spec "Packet"): OpenBSD outputs adverts through the carp interface, so they
//! leave from `00:00:5e:00:01:<vhid>`, and every advert refreshes the switches' MAC tables: the
//! virtual MAC stays learnt on the master's port even when no client talks, and after two
//! masters briefly coexisted (a partition that healed) the next advert of the one that stays
//! master pulls the switches back to its port. A raw IP socket on the carpdev sends from the
//! carpdev's own MAC, which leaves the virtual MAC to age out of the switches (then flooded)
//! or stuck on the port of the master that stepped back. Own adverts are recognised by the
//! counter (carpd's loop check), not by the Ethernet source, which peers now share.
//!
//! The headers are OpenBSD's carp_send_ad: IPv4 with TOS IPTOS_LOWDELAY, a random id, DF,
//! TTL 255, protocol 112, to 224.0.0.18 (01:00:5e:00:00:12), from the carpdev's primary IPv4
//! address (the carp interface's first one only if the carpdev has none); IPv6 with hop
//! limit 255, next header 112, flow label 0, to ff02::12 (33:33:00:00:00:12), from the
//! carpdev's link-local address. The sources are cached per carpdev ([`SourceCache`]).
//!
//! With unicast peers (OpenBSD's `carppeer`), a family's adverts go to each of its peers
//! instead, with the same headers but the peer's address and the MAC the kernel's neighbour
//! table has for it ([`Neighbours`]); a family without peers keeps the group.
//!
//! Receiving is the XDP program's job, but the carpdev must still be a member of the CARP
//! groups so that a real NIC's multicast filter (and an MLD-snooping switch) passes peers'
//! adverts: [`CarpGroups`] holds the memberships.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Instant;

use carp_common::{
    frame::ethernet::{ETH_P_IP, ETH_P_IPV6},
    wire::{
        CARP_GROUP_V4, CARP_GROUP_V4_MAC, CARP_GROUP_V6, CARP_GROUP_V6_MAC, CARP_TTL, IPPROTO_CARP,
    },
};
use socket2::{Domain, InterfaceIndexOrAddress, SockFilter, Socket, Type};

use super::frame::{Ipv4Header, PacketSocket, push_ethernet_header, push_ipv6_packet};
use super::neighbour::{Neighbours, PeerMac};
use super::source::SourceCache;
use super::{SendError, sock_err};

/// IPTOS_LOWDELAY, as OpenBSD's carp_send_ad sets it.
pub const IPTOS_LOWDELAY: u8 = 0x10;

/// Sends the adverts of every vhid on one carpdev.
pub struct AdvertSender {
    ifname: String,
    /// Shared with the advert pacer (`daemon::pacer`), which sends on it from its thread.
    socket: Arc<PacketSocket>,
    sources: SourceCache,
    neighbours: Neighbours,
    _groups: CarpGroups,
    /// The frame being sent, kept between sends: a master builds one a second, and an
    /// allocation on each of those wake-ups costs more than the bytes.
    frame: Vec<u8>,
}

/// Room for any advert frame: Ethernet, IPv6 and the largest VRRPv3 payload carpd sends.
const FRAME_CAPACITY: usize = 512;

/// Where multicast adverts go: the groups' MACs and addresses.
const GROUP_V4: ([u8; 6], Ipv4Addr) = (
    CARP_GROUP_V4_MAC,
    Ipv4Addr::from_bits(u32::from_be_bytes(CARP_GROUP_V4)),
);
const GROUP_V6: ([u8; 6], Ipv6Addr) = (
    CARP_GROUP_V6_MAC,
    Ipv6Addr::from_bits(u128::from_be_bytes(CARP_GROUP_V6)),
);

impl AdvertSender {
    pub fn open(ifname: &str, ifindex: u32) -> Result<Self, SendError> {
        Ok(Self {
            ifname: ifname.to_owned(),
            socket: Arc::new(PacketSocket::open(ifname, ifindex)?),
            sources: SourceCache::new(ifname, ifindex),
            neighbours: Neighbours::open(ifindex)
                .map_err(sock_err("opening the neighbour table", ifname))?,
            _groups: CarpGroups::join(ifname, ifindex)?,
            frame: Vec::with_capacity(FRAME_CAPACITY),
        })
    }

    /// The socket the adverts leave on, for the advert pacer.
    pub fn socket(&self) -> Arc<PacketSocket> {
        Arc::clone(&self.socket)
    }

    /// The multicast advert frame [`AdvertSender::send_v4`] (`v6` false) or
    /// [`AdvertSender::send_v6`] would send now, for the advert pacer to repeat.
    pub fn group_frame(
        &mut self,
        v6: bool,
        vmac: [u8; 6],
        fallback: Option<Ipv4Addr>,
        carp: &[u8],
    ) -> Result<Vec<u8>, SendError> {
        Ok(match self.source(v6, fallback)? {
            IpAddr::V4(src) => advert_frame_v4(vmac, src, rand::random(), carp),
            IpAddr::V6(src) => advert_frame_v6(vmac, src, carp),
        })
    }

    /// An address of the carpdev changed: read the advert sources again before the next send.
    pub fn addresses_changed(&mut self) {
        self.sources.invalidate();
    }

    /// Sends one IPv4 advert (the 36-byte CARP header `carp`) from `vmac`. `fallback` is the
    /// carp interface's first IPv4 address, the source when the carpdev has none.
    pub fn send_v4(
        &mut self,
        vmac: [u8; 6],
        fallback: Option<Ipv4Addr>,
        carp: &[u8],
    ) -> Result<(), SendError> {
        let src = self.source_v4(fallback)?;
        self.send_to_group(vmac, IpAddr::V4(src), carp, "sending IPv4 advert")
    }

    /// Sends one IPv6 advert from `vmac` and the carpdev's link-local address.
    pub fn send_v6(&mut self, vmac: [u8; 6], carp: &[u8]) -> Result<(), SendError> {
        let src = self.source_v6()?;
        self.send_to_group(vmac, IpAddr::V6(src), carp, "sending IPv6 advert")
    }

    /// Sends one advert to the unicast `peer` (OpenBSD's `carppeer`), from the same source
    /// as the multicast one of its family; [`SendError::Unresolved`] while the neighbour
    /// table has no MAC for it.
    pub fn send_to_peer(
        &mut self,
        vmac: [u8; 6],
        fallback: Option<Ipv4Addr>,
        peer: IpAddr,
        carp: &[u8],
    ) -> Result<(), SendError> {
        let mac = match self.neighbours.mac(peer, Instant::now()) {
            Ok(PeerMac::Known(mac)) => mac,
            Ok(PeerMac::Unresolved) => {
                return Err(SendError::Unresolved {
                    peer,
                    ifname: self.ifname.clone(),
                });
            }
            Err(e) => return Err(sock_err("looking up a peer's MAC", &self.ifname)(e)),
        };
        match peer {
            IpAddr::V4(dst) => {
                let src = self.source_v4(fallback)?;
                let id = rand::random();
                write_advert_frame_v4_to(&mut self.frame, (mac, dst), vmac, src, id, carp);
            }
            IpAddr::V6(dst) => {
                let src = self.source_v6()?;
                write_advert_frame_v6_to(&mut self.frame, (mac, dst), vmac, src, carp);
            }
        }
        self.socket
            .send(&self.frame)
            .map_err(sock_err("sending unicast advert", &self.ifname))
    }

    /// The source of this carpdev's adverts of a family (`v6` false: IPv4): see
    /// [`AdvertSender::send_v4`] and [`AdvertSender::send_v6`]. VRRP needs it before the
    /// frame, for its checksum and for the tie-break on equal priorities.
    pub fn source(&mut self, v6: bool, fallback: Option<Ipv4Addr>) -> Result<IpAddr, SendError> {
        if v6 {
            self.source_v6().map(IpAddr::V6)
        } else {
            self.source_v4(fallback).map(IpAddr::V4)
        }
    }

    /// Sends a protocol-112 `payload` (a VRRPv3 advert) to its family's group from `vmac`
    /// and `src` (see [`AdvertSender::source`]).
    pub fn send_payload(
        &mut self,
        vmac: [u8; 6],
        src: IpAddr,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.send_to_group(vmac, src, payload, "sending VRRP advert")
    }

    /// Sends a protocol-112 `payload` to the group of `src`'s family, from `vmac` and `src`
    /// (a random IP id for IPv4), in the frame buffer kept between sends.
    fn send_to_group(
        &mut self,
        vmac: [u8; 6],
        src: IpAddr,
        payload: &[u8],
        what: &'static str,
    ) -> Result<(), SendError> {
        match src {
            IpAddr::V4(src) => {
                let id = rand::random();
                write_advert_frame_v4_to(&mut self.frame, GROUP_V4, vmac, src, id, payload);
            }
            IpAddr::V6(src) => {
                write_advert_frame_v6_to(&mut self.frame, GROUP_V6, vmac, src, payload);
            }
        }
        self.socket
            .send(&self.frame)
            .map_err(sock_err(what, &self.ifname))
    }

    /// The carpdev's primary IPv4 address, or `fallback` (the carp interface's first).
    fn source_v4(&mut self, fallback: Option<Ipv4Addr>) -> Result<Ipv4Addr, SendError> {
        self.sources
            .v4(Instant::now())
            .or(fallback)
            .ok_or_else(|| SendError::NoSource {
                family: "IPv4",
                ifname: self.ifname.clone(),
            })
    }

    /// The carpdev's link-local address: peers are on the carpdev's link, unicast or not.
    fn source_v6(&mut self) -> Result<Ipv6Addr, SendError> {
        self.sources
            .v6_link_local(Instant::now())
            .ok_or_else(|| SendError::NoSource {
                family: "IPv6 link-local",
                ifname: self.ifname.clone(),
            })
    }
}

/// An IPv4 advert frame: `carp` (the CARP header) from `vmac` and `src`, IP id `id`.
pub fn advert_frame_v4(vmac: [u8; 6], src: Ipv4Addr, id: u16, carp: &[u8]) -> Vec<u8> {
    advert_frame_v4_to(GROUP_V4.0, GROUP_V4.1, vmac, src, id, carp)
}

/// An IPv4 advert frame to `dst` at `dst_mac` (a unicast peer, or the group).
pub fn advert_frame_v4_to(
    dst_mac: [u8; 6],
    dst: Ipv4Addr,
    vmac: [u8; 6],
    src: Ipv4Addr,
    id: u16,
    carp: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_CAPACITY);
    write_advert_frame_v4_to(&mut frame, (dst_mac, dst), vmac, src, id, carp);
    frame
}

/// [`advert_frame_v4_to`] into `out` (cleared first).
fn write_advert_frame_v4_to(
    out: &mut Vec<u8>,
    (dst_mac, dst): ([u8; 6], Ipv4Addr),
    vmac: [u8; 6],
    src: Ipv4Addr,
    id: u16,
    carp: &[u8],
) {
    out.clear();
    push_ethernet_header(out, dst_mac, vmac, ETH_P_IP);
    Ipv4Header {
        tos: IPTOS_LOWDELAY,
        id,
        dont_fragment: true,
        ttl: CARP_TTL,
        protocol: IPPROTO_CARP,
        src,
        dst,
    }
    .push_packet(out, carp);
}

/// An IPv6 advert frame: `carp` from `vmac` and the link-local `src`.
pub fn advert_frame_v6(vmac: [u8; 6], src: Ipv6Addr, carp: &[u8]) -> Vec<u8> {
    advert_frame_v6_to(GROUP_V6.0, GROUP_V6.1, vmac, src, carp)
}

/// An IPv6 advert frame to `dst` at `dst_mac`, hop limit 255 as to the group.
pub fn advert_frame_v6_to(
    dst_mac: [u8; 6],
    dst: Ipv6Addr,
    vmac: [u8; 6],
    src: Ipv6Addr,
    carp: &[u8],
) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_CAPACITY);
    write_advert_frame_v6_to(&mut frame, (dst_mac, dst), vmac, src, carp);
    frame
}

/// [`advert_frame_v6_to`] into `out` (cleared first).
fn write_advert_frame_v6_to(
    out: &mut Vec<u8>,
    (dst_mac, dst): ([u8; 6], Ipv6Addr),
    vmac: [u8; 6],
    src: Ipv6Addr,
    carp: &[u8],
) {
    out.clear();
    push_ethernet_header(out, dst_mac, vmac, ETH_P_IPV6);
    push_ipv6_packet(out, (src, dst), IPPROTO_CARP, CARP_TTL, carp);
}

/// Membership of the carpdev in 224.0.0.18 and ff02::12, held by two datagram sockets that
/// receive nothing: they are never bound to a port, and a "drop everything" filter makes
/// sure. Dropping this leaves the groups (the kernel does, with the sockets).
pub struct CarpGroups {
    _v4: Socket,
    _v6: Socket,
}

impl CarpGroups {
    pub fn join(ifname: &str, ifindex: u32) -> Result<Self, SendError> {
        let v4 = membership_socket(Domain::IPV4, ifname)?;
        v4.join_multicast_v4_n(&GROUP_V4.1, &InterfaceIndexOrAddress::Index(ifindex))
            .map_err(sock_err("joining 224.0.0.18", ifname))?;
        let v6 = membership_socket(Domain::IPV6, ifname)?;
        v6.join_multicast_v6(&GROUP_V6.1, ifindex)
            .map_err(sock_err("joining ff02::12", ifname))?;
        Ok(Self { _v4: v4, _v6: v6 })
    }
}

fn membership_socket(domain: Domain, ifname: &str) -> Result<Socket, SendError> {
    let s = Socket::new(domain, Type::DGRAM, None)
        .map_err(sock_err("opening a multicast membership socket", ifname))?;
    // BPF_RET | BPF_K, 0: accept nothing.
    s.attach_filter(&[SockFilter::new(0x06, 0, 0, 0)])
        .map_err(sock_err("attaching receive filter", ifname))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use carp_common::frame::internet_checksum;

    const VMAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x07];

    /// A CARP header with recognisable bytes (the frame layer does not look into it).
    fn carp() -> [u8; 36] {
        std::array::from_fn(|i| i as u8)
    }

    #[test]
    fn ipv4_advert_frame_bytes() {
        let f = advert_frame_v4(VMAC, Ipv4Addr::new(192, 0, 2, 11), 0x1234, &carp());
        assert_eq!(f.len(), 14 + 20 + 36);
        assert_eq!(
            hex::encode(&f[..34]),
            concat!(
                "01005e000012", // 224.0.0.18's group MAC
                "00005e000107", // the virtual MAC of vhid 7
                "0800",
                "45",   // version 4, IHL 5
                "10",   // TOS IPTOS_LOWDELAY
                "0038", // total length 56
                "1234", // IP id
                "4000", // DF, offset 0
                "ff",   // TTL 255
                "70",   // protocol 112
                "c6f3", // header checksum (Python, RFC 1071: words sum 0x33909, folded 0x390c)
                "c000020b",
                "e0000012"
            )
        );
        assert_eq!(&f[34..], &carp());
        assert_eq!(internet_checksum(&f[14..34]), 0);
    }

    #[test]
    fn ipv4_advert_frame_matches_the_test_suites_independent_builder() {
        // tests/src/frames.rs builds frames from the RFCs apart from the product code; its
        // IPv4 header has TOS 0x10 and DF and a fixed id 0x1234, as this one here.
        let src = Ipv4Addr::new(192, 0, 2, 12);
        let f = advert_frame_v4(VMAC, src, 0x1234, &carp());
        let oracle = carp_tests::frames::ethernet(
            CARP_GROUP_V4_MAC,
            VMAC,
            ETH_P_IP,
            &carp_tests::frames::ipv4(src, Ipv4Addr::from(CARP_GROUP_V4), 112, 255, &carp()),
        );
        assert_eq!(hex::encode(&f), hex::encode(&oracle));
    }

    #[test]
    fn ipv6_advert_frame_bytes() {
        let src: Ipv6Addr = "fe80::11".parse().unwrap();
        let f = advert_frame_v6(VMAC, src, &carp());
        assert_eq!(f.len(), 14 + 40 + 36);
        assert_eq!(
            hex::encode(&f[..54]),
            concat!(
                "333300000012", // ff02::12's group MAC
                "00005e000107",
                "86dd",
                "60000000", // version 6, traffic class 0, flow label 0
                "0024",     // payload length 36
                "70",       // next header 112
                "ff",       // hop limit 255
                "fe800000000000000000000000000011",
                "ff020000000000000000000000000012"
            )
        );
        assert_eq!(&f[54..], &carp());
    }

    #[test]
    fn unicast_adverts_go_to_the_peer_from_the_virtual_mac_ttl_255() {
        let peer_mac = [0x02, 0, 0, 0, 0, 0x22];
        let f = advert_frame_v4_to(
            peer_mac,
            Ipv4Addr::new(192, 0, 2, 22),
            VMAC,
            Ipv4Addr::new(192, 0, 2, 11),
            0x1234,
            &carp(),
        );
        assert_eq!(&f[..6], &peer_mac);
        assert_eq!(&f[6..12], &VMAC);
        assert_eq!(f[14 + 8], 255, "TTL");
        assert_eq!(&f[14 + 16..14 + 20], &[192, 0, 2, 22]);
        assert_eq!(internet_checksum(&f[14..34]), 0);
        let f = advert_frame_v6_to(
            peer_mac,
            "2001:db8::22".parse().unwrap(),
            VMAC,
            "fe80::11".parse().unwrap(),
            &carp(),
        );
        assert_eq!(&f[..12], &[&peer_mac[..], &VMAC[..]].concat()[..]);
        assert_eq!((f[14 + 6], f[14 + 7]), (112, 255), "next header, hop limit");
        let dst: Ipv6Addr = "2001:db8::22".parse().unwrap();
        assert_eq!(&f[14 + 24..14 + 40], &dst.octets());
    }

    #[test]
    fn every_ipv4_advert_gets_its_own_ip_id_field() {
        let a = advert_frame_v4(VMAC, Ipv4Addr::new(192, 0, 2, 11), 1, &carp());
        let b = advert_frame_v4(VMAC, Ipv4Addr::new(192, 0, 2, 11), 2, &carp());
        assert_eq!(&a[18..20], &[0, 1]);
        assert_eq!(&b[18..20], &[0, 2]);
        assert_ne!(a[24..26], b[24..26], "the checksum follows the id");
    }

    #[test]
    fn a_reused_frame_buffer_holds_exactly_the_new_frame() {
        // The sender keeps one buffer: a longer frame before must leave nothing behind.
        let src6: Ipv6Addr = "fe80::11".parse().unwrap();
        let src4 = Ipv4Addr::new(192, 0, 2, 11);
        let mut buf = Vec::new();
        write_advert_frame_v6_to(&mut buf, GROUP_V6, VMAC, src6, &carp());
        assert_eq!(buf, advert_frame_v6(VMAC, src6, &carp()));
        write_advert_frame_v4_to(&mut buf, GROUP_V4, VMAC, src4, 7, &carp());
        assert_eq!(buf, advert_frame_v4(VMAC, src4, 7, &carp()));
        write_advert_frame_v6_to(&mut buf, GROUP_V6, VMAC, src6, &carp());
        assert_eq!(buf, advert_frame_v6(VMAC, src6, &carp()));
    }
}
