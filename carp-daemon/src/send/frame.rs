//! The frames carpd builds itself (Ethernet, IPv4 and IPv6 headers) and the AF_PACKET socket
//! that sends them on a carpdev.
//!
//! Everything carpd sends leaves as a whole frame so that the Ethernet source is the virtual
//! MAC: a raw IP socket on the carpdev would use the carpdev's own MAC, and switches would
//! learn the virtual MAC from nothing but the occasional gratuitous ARP.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use carp_common::frame::{
    ethernet::{ETH_HLEN, EthHdr},
    ip::{IP_DF, IPV4_HLEN, IPV4_VERSION_IHL, IPV6_HLEN, Ipv4Hdr, Ipv6Hdr},
};

use super::{SendError, sock_err};

/// A send-only AF_PACKET socket bound to one carpdev. Protocol 0: it receives nothing.
pub struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    pub fn open(ifname: &str, ifindex: u32) -> Result<Self, SendError> {
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
        bind(&fd, ifindex, 0).map_err(sock_err("binding AF_PACKET socket", ifname))?;
        Ok(Self { fd })
    }

    /// Sends a whole Ethernet frame (header included) out of the carpdev. The send names
    /// no address: the kernel takes the device the socket is bound to (no lookup by index
    /// per frame, which a cold advert at one a second pays for) and, as the socket's protocol
    /// is 0, the protocol from the frame's Ethernet header (Linux 5.1 and later), so the
    /// kernel's taps and qdiscs see the protocol the frame really has.
    pub fn send(&self, frame: &[u8]) -> std::io::Result<()> {
        if frame.len() < ETH_HLEN {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "frame shorter than an Ethernet header",
            ));
        }
        // SAFETY: frame is valid for the length passed.
        let rc = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Binds the packet socket `fd` to the device `ifindex` for `protocol` (an ethertype; 0:
/// the socket receives nothing).
fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> std::io::Result<()> {
    // SAFETY: sockaddr_ll is plain data; all-zero is a valid starting value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = ifindex as i32;
    // SAFETY: addr is a valid sockaddr_ll for the length passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// An Ethernet frame: destination, source, ethertype, payload.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(ETH_HLEN + payload.len());
    push_ethernet_header(&mut f, dst, src, ethertype);
    f.extend_from_slice(payload);
    f
}

/// Appends an Ethernet header to `out`.
pub fn push_ethernet_header(out: &mut Vec<u8>, dst: [u8; 6], src: [u8; 6], ethertype: u16) {
    out.extend_from_slice(EthHdr::new(dst, src, ethertype).as_bytes());
}

/// The fields of an IPv4 header without options that a sender chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    pub tos: u8,
    pub id: u16,
    pub dont_fragment: bool,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

impl Ipv4Header {
    /// The header (version 4, IHL 5, total length and header checksum filled in) followed
    /// by `payload`.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(IPV4_HLEN + payload.len());
        self.push_packet(&mut p, payload);
        p
    }

    /// Appends the packet [`Ipv4Header::packet`] returns to `out`.
    pub fn push_packet(&self, out: &mut Vec<u8>, payload: &[u8]) {
        let total = (IPV4_HLEN + payload.len()) as u16;
        let frag: u16 = if self.dont_fragment { IP_DF } else { 0 };
        let mut h = Ipv4Hdr {
            version_ihl: IPV4_VERSION_IHL,
            tos: self.tos,
            total_len: total.to_be_bytes(),
            id: self.id.to_be_bytes(),
            frag: frag.to_be_bytes(),
            ttl: self.ttl,
            protocol: self.protocol,
            checksum: [0; 2],
            src: self.src.octets(),
            dst: self.dst.octets(),
        };
        h.checksum = h.header_checksum().to_be_bytes();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(payload);
    }
}

/// An IPv6 header (traffic class and flow label 0) followed by `payload`.
pub fn ipv6_packet(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut p = Vec::with_capacity(IPV6_HLEN + payload.len());
    push_ipv6_packet(&mut p, (src, dst), next_header, hop_limit, payload);
    p
}

/// Appends the packet [`ipv6_packet`] returns to `out`.
pub fn push_ipv6_packet(
    out: &mut Vec<u8>,
    (src, dst): (Ipv6Addr, Ipv6Addr),
    next_header: u8,
    hop_limit: u8,
    payload: &[u8],
) {
    let h = Ipv6Hdr::new(
        src.octets(),
        dst.octets(),
        next_header,
        hop_limit,
        payload.len() as u16,
    );
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use carp_common::frame::internet_checksum;

    #[test]
    fn ipv4_header_fields_and_checksum() {
        let h = Ipv4Header {
            tos: 0x10,
            id: 0xbeef,
            dont_fragment: true,
            ttl: 255,
            protocol: 112,
            src: Ipv4Addr::new(192, 0, 2, 11),
            dst: Ipv4Addr::new(224, 0, 0, 18),
        };
        let p = h.packet(&[0xaa; 36]);
        assert_eq!(p.len(), 56);
        // Checksum computed independently (Python, RFC 1071): the words sum to 0x3e5c4,
        // folded 0xe5c7, complemented 0x1a38.
        assert_eq!(
            hex::encode(&p[..20]),
            "45100038beef4000ff701a38c000020be0000012"
        );
        assert_eq!(internet_checksum(&p[..20]), 0, "a correct header sums to 0");
        let no_df = Ipv4Header {
            dont_fragment: false,
            ..h
        };
        assert_eq!(&no_df.packet(&[])[6..8], &[0, 0]);
    }

    #[test]
    fn ipv6_header_fields() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::12".parse().unwrap();
        let p = ipv6_packet(src, dst, 112, 255, &[1, 2, 3]);
        assert_eq!(
            hex::encode(&p),
            concat!(
                "60000000",
                "0003",
                "70",
                "ff",
                "fe800000000000000000000000000001",
                "ff020000000000000000000000000012",
                "010203"
            )
        );
    }

    #[test]
    fn short_frames_are_refused_before_the_kernel() {
        // No socket needed: the length check comes first. A closed descriptor would fail
        // with EBADF, so the error kind shows which check refused.
        let s = PacketSocket {
            fd: std::fs::File::open("/dev/null").unwrap().into(),
        };
        let err = s.send(&[0; 13]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    }
}

/// Root-only: a frame sent on a real device, as a tap on that device sees it.
#[cfg(test)]
mod netns_tests {
    use super::*;
    use crate::net::testns::{in_netns, ip};

    /// An ETH_P_ALL tap on `ifindex`: it sees the frames the device sends, with the
    /// protocol the kernel gave them in the address.
    fn tap(ifindex: u32) -> OwnedFd {
        let all = libc::ETH_P_ALL as u16;
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(all.to_be())) };
        assert!(raw >= 0, "{}", std::io::Error::last_os_error());
        // SAFETY: raw is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        bind(&fd, ifindex, all).unwrap();
        socket2::SockRef::from(&fd)
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        fd
    }

    #[test]
    fn a_sent_frame_leaves_whole_with_the_protocol_of_its_header() {
        in_netns("packet_socket_send", |ns| async move {
            ip(
                &ns,
                &[
                    "link", "add", "pst0", "type", "veth", "peer", "name", "pst1",
                ],
            );
            ip(&ns, &["link", "set", "pst0", "up"]);
            ip(&ns, &["link", "set", "pst1", "up"]);
            let ifindex = nix::net::if_::if_nametoindex("pst0").unwrap();
            let tap = tap(ifindex);
            let socket = PacketSocket::open("pst0", ifindex).unwrap();
            let header = Ipv4Header {
                tos: 0x10,
                id: 7,
                dont_fragment: true,
                ttl: 255,
                protocol: 112,
                src: "192.0.2.1".parse().unwrap(),
                dst: "224.0.0.18".parse().unwrap(),
            };
            let frame = ethernet(
                [0x01, 0, 0x5e, 0, 0, 0x12],
                [0, 0, 0x5e, 0, 1, 1],
                0x0800,
                &header.packet(&[9; 36]),
            );
            socket.send(&frame).unwrap();
            // The device may send frames of its own (IPv6 autoconfiguration) around ours.
            loop {
                let mut buf = [0u8; 2048];
                // SAFETY: all-zero is a valid sockaddr_ll for the kernel to fill in.
                let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                // SAFETY: buf and from are valid for the lengths passed.
                let n = unsafe {
                    libc::recvfrom(
                        tap.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        (&mut from as *mut libc::sockaddr_ll).cast(),
                        &mut len,
                    )
                };
                assert!(
                    n >= 0,
                    "the tap saw no frame of ours: {}",
                    std::io::Error::last_os_error()
                );
                if buf[..n as usize] == frame[..] {
                    assert_eq!(from.sll_pkttype, libc::PACKET_OUTGOING);
                    assert_eq!(u16::from_be(from.sll_protocol), 0x0800);
                    break;
                }
            }
        });
    }
}
