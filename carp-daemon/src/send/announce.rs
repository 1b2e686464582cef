//! Announcements of a new master: a gratuitous ARP request for every IPv4 virtual address
//! and an unsolicited neighbour advertisement (override flag; router flag when the host
//! forwards) for every IPv6 one, all from the virtual MAC, sent as raw frames on the carpdev
//! so that switches learn the virtual MAC on this port and neighbours update their caches.
use std::net::{Ipv4Addr, Ipv6Addr};

use carp_common::frame::{
    arp::ArpFrame,
    ethernet::ipv6_multicast_mac,
    ip::IPV6_ALL_NODES,
    nd::{NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NaFrame},
};

use super::frame::PacketSocket;
use super::{SendError, sock_err};

/// Sends the announcements on one carpdev.
pub struct Announcer {
    ifname: String,
    socket: PacketSocket,
}

impl Announcer {
    pub fn open(ifname: &str, ifindex: u32) -> Result<Self, SendError> {
        Ok(Self {
            ifname: ifname.to_owned(),
            socket: PacketSocket::open(ifname, ifindex)?,
        })
    }

    /// Gratuitous ARP request for `addr` from `vmac`.
    pub fn gratuitous_arp(&self, vmac: [u8; 6], addr: Ipv4Addr) -> Result<(), SendError> {
        self.send(&gratuitous_arp_frame(vmac, addr))
            .map_err(sock_err("sending gratuitous ARP", &self.ifname))
    }

    /// Unsolicited neighbour advertisement for `addr` from `vmac`.
    pub fn unsolicited_na(
        &self,
        vmac: [u8; 6],
        addr: Ipv6Addr,
        router: bool,
    ) -> Result<(), SendError> {
        self.send(&unsolicited_na_frame(vmac, addr, router))
            .map_err(sock_err(
                "sending unsolicited neighbour advertisement",
                &self.ifname,
            ))
    }

    fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        self.socket.send(frame)
    }
}

/// The gratuitous ARP OpenBSD's carp sends: a broadcast request with sender and target both
/// the virtual address, sender hardware address the virtual MAC.
pub fn gratuitous_arp_frame(vmac: [u8; 6], addr: Ipv4Addr) -> Vec<u8> {
    ArpFrame::gratuitous_request(vmac, addr.octets())
        .as_bytes()
        .to_vec()
}

/// An unsolicited neighbour advertisement to all nodes (RFC 4861 7.2.6): override set,
/// solicited clear, target link-layer option the virtual MAC. The same frame as the XDP
/// program's answer to a solicitation, but for destination and flags.
pub fn unsolicited_na_frame(vmac: [u8; 6], addr: Ipv6Addr, router: bool) -> Vec<u8> {
    let mut flags = NA_FLAG_OVERRIDE;
    if router {
        flags |= NA_FLAG_ROUTER;
    }
    NaFrame::new(
        vmac,
        addr.octets(),
        ipv6_multicast_mac(&IPV6_ALL_NODES),
        IPV6_ALL_NODES,
        flags,
    )
    .as_bytes()
    .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const VMAC: [u8; 6] = [0, 0, 0x5e, 0, 1, 7];

    #[test]
    fn gratuitous_arp_bytes() {
        let f = gratuitous_arp_frame(VMAC, Ipv4Addr::new(192, 0, 2, 10));
        assert_eq!(
            hex::encode(&f),
            concat!(
                "ffffffffffff",
                "00005e000107",
                "0806",
                "0001",
                "0800",
                "06",
                "04",
                "0001",
                "00005e000107",
                "c000020a",
                "000000000000",
                "c000020a"
            )
        );
    }

    #[test]
    fn unsolicited_na_bytes_and_checksum() {
        let addr: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let f = unsolicited_na_frame(VMAC, addr, false);
        assert_eq!(
            &f[..14],
            &hex::decode("33330000000100005e00010786dd").unwrap()[..]
        );
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(f[14 + 40], 136);
        assert_eq!(f[14 + 40 + 4], 0x20, "override only");
        // Checksum computed independently (Python, RFC 8200 pseudo-header) for this frame.
        assert_eq!(&f[14 + 40 + 2..14 + 40 + 4], &[0x9c, 0x06]);
        let router = unsolicited_na_frame(VMAC, addr, true);
        assert_eq!(router[14 + 40 + 4], 0xa0);
    }

    #[test]
    fn announcements_match_the_test_suites_independent_builders() {
        // tests/src/frames.rs builds frames from the RFCs apart from the product code (and
        // from carp-common's frame layer, which builds these).
        use carp_tests::frames;
        let v4 = Ipv4Addr::new(192, 0, 2, 10);
        assert_eq!(
            hex::encode(gratuitous_arp_frame(VMAC, v4)),
            hex::encode(frames::arp_request(VMAC, v4, v4))
        );
        let all_nodes_mac = [0x33, 0x33, 0, 0, 0, 1];
        for (addr, router, flags) in [
            ("2001:db8::10", false, 0x20),
            ("2001:db8::10", true, 0xa0),
            ("fe80::5:1", true, 0xa0),
        ] {
            let addr: Ipv6Addr = addr.parse().unwrap();
            assert_eq!(
                hex::encode(unsolicited_na_frame(VMAC, addr, router)),
                hex::encode(frames::neighbor_advertisement(
                    VMAC,
                    addr,
                    all_nodes_mac,
                    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                    flags
                )),
                "{addr} router {router}"
            );
        }
    }
}
