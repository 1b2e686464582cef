//! Announcements of a new master: a gratuitous ARP request for every IPv4 virtual address
//! and an unsolicited neighbour advertisement (override flag; router flag when the host
//! forwards) for every IPv6 one, all from the virtual MAC, sent as raw frames on the carpdev
//! so that switches learn the virtual MAC on this port and neighbours update their caches.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{SendError, sock_err};

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// A send-only AF_PACKET socket bound to one carpdev.
pub struct Announcer {
    ifname: String,
    fd: OwnedFd,
}

impl Announcer {
    pub fn open(ifname: &str, ifindex: u32) -> Result<Self, SendError> {
        // Protocol 0: the socket receives nothing, it only sends.
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                0,
            )
        };
        if raw < 0 {
            return Err(sock_err("opening AF_PACKET socket", ifname)(
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: raw is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let addr = link_addr(ifindex, 0);
        // SAFETY: addr is a valid sockaddr_ll for the length passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(sock_err("binding AF_PACKET socket", ifname)(
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Self {
            ifname: ifname.to_owned(),
            fd,
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
        // SAFETY: frame is a valid buffer of frame.len() bytes.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

fn link_addr(ifindex: u32, protocol: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid starting value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as i32;
    addr
}

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The gratuitous ARP OpenBSD's carp sends: a broadcast request with sender and target both
/// the virtual address, sender hardware address the virtual MAC.
pub fn gratuitous_arp_frame(vmac: [u8; 6], addr: Ipv4Addr) -> Vec<u8> {
    let mut arp = Vec::with_capacity(28);
    arp.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
    arp.extend_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    arp.extend_from_slice(&[6, 4]);
    arp.extend_from_slice(&1u16.to_be_bytes()); // request
    arp.extend_from_slice(&vmac);
    arp.extend_from_slice(&addr.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&addr.octets());
    ethernet(BROADCAST, vmac, ETH_P_ARP, &arp)
}

/// An unsolicited neighbour advertisement to all nodes (RFC 4861 7.2.6): override set,
/// solicited clear, target link-layer option the virtual MAC.
pub fn unsolicited_na_frame(vmac: [u8; 6], addr: Ipv6Addr, router: bool) -> Vec<u8> {
    let flags = 0x20 | if router { 0x80 } else { 0 };
    let mut icmp = vec![136, 0, 0, 0, flags, 0, 0, 0];
    icmp.extend_from_slice(&addr.octets());
    icmp.extend_from_slice(&[2, 1]);
    icmp.extend_from_slice(&vmac);
    let csum = icmpv6_checksum(addr, ALL_NODES, &icmp);
    icmp[2..4].copy_from_slice(&csum.to_be_bytes());
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    ip.push(58);
    ip.push(255);
    ip.extend_from_slice(&addr.octets());
    ip.extend_from_slice(&ALL_NODES.octets());
    ip.extend_from_slice(&icmp);
    ethernet(ALL_NODES_MAC, vmac, ETH_P_IPV6, &ip)
}

fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let hi = chunk[0];
            let lo = chunk.get(1).copied().unwrap_or(0);
            sum += u16::from_be_bytes([hi, lo]) as u32;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, 58]);
    add(icmp);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
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
}
