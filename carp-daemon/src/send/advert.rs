//! Advertisement sockets: one raw IPv4 and one raw IPv6 socket (protocol 112) per carpdev.
//!
//! The kernel builds the IP header: destination 224.0.0.18 / ff02::12, TTL / hop limit 255,
//! DF set, TOS IPTOS_LOWDELAY as current OpenBSD sends, source an address of the carpdev (the
//! socket is bound to it). Joining the groups puts the CARP multicast MACs into the carpdev's
//! receive filter, so a real NIC delivers peers' adverts to the XDP program. The sockets
//! never read: a "drop everything" socket filter keeps adverts for other vhids (which XDP
//! passes to the stack) from piling up in their receive queues.
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use carp_common::wire::{CARP_GROUP_V4, CARP_GROUP_V6, CARP_TTL, IPPROTO_CARP};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockFilter, Socket, Type};

use super::{SendError, sock_err};

/// IPTOS_LOWDELAY, as OpenBSD's carp_send_ad sets it.
const IPTOS_LOWDELAY: u32 = 0x10;

/// The advert sockets of one carpdev.
pub struct AdvertSockets {
    ifname: String,
    v4: Socket,
    v6: Socket,
}

impl AdvertSockets {
    pub fn open(ifname: &str, ifindex: u32) -> Result<Self, SendError> {
        Ok(Self {
            ifname: ifname.to_owned(),
            v4: open_v4(ifname, ifindex)?,
            v6: open_v6(ifname, ifindex)?,
        })
    }

    /// Sends one IPv4 advert (the 36-byte CARP header).
    pub fn send_v4(&self, carp: &[u8]) -> Result<(), SendError> {
        let dst = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(CARP_GROUP_V4), 0));
        self.v4
            .send_to(carp, &dst.into())
            .map(drop)
            .map_err(sock_err("sending IPv4 advert", &self.ifname))
    }

    /// Sends one IPv6 advert.
    pub fn send_v6(&self, carp: &[u8]) -> Result<(), SendError> {
        let dst = SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(CARP_GROUP_V6), 0, 0, 0));
        self.v6
            .send_to(carp, &dst.into())
            .map(drop)
            .map_err(sock_err("sending IPv6 advert", &self.ifname))
    }
}

/// A classic BPF program that accepts nothing.
fn drop_all() -> [SockFilter; 1] {
    [SockFilter::new(0x06, 0, 0, 0)] // BPF_RET | BPF_K, 0
}

fn open_v4(ifname: &str, ifindex: u32) -> Result<Socket, SendError> {
    let s = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(IPPROTO_CARP as i32)),
    )
    .map_err(sock_err("opening raw IPv4 socket", ifname))?;
    s.attach_filter(&drop_all())
        .map_err(sock_err("attaching receive filter", ifname))?;
    s.bind_device(Some(ifname.as_bytes()))
        .map_err(sock_err("binding IPv4 socket to device", ifname))?;
    // No IP_MULTICAST_IF needed: raw_sendmsg uses the bound device for multicast.
    s.set_multicast_ttl_v4(CARP_TTL as u32)
        .map_err(sock_err("setting IP_MULTICAST_TTL", ifname))?;
    s.set_ttl_v4(CARP_TTL as u32)
        .map_err(sock_err("setting IP_TTL", ifname))?;
    s.set_multicast_loop_v4(false)
        .map_err(sock_err("clearing IP_MULTICAST_LOOP", ifname))?;
    s.set_tos_v4(IPTOS_LOWDELAY)
        .map_err(sock_err("setting IP_TOS", ifname))?;
    set_df(&s).map_err(sock_err("setting IP_MTU_DISCOVER", ifname))?;
    s.join_multicast_v4_n(
        &Ipv4Addr::from(CARP_GROUP_V4),
        &InterfaceIndexOrAddress::Index(ifindex),
    )
    .map_err(sock_err("joining 224.0.0.18", ifname))?;
    s.set_nonblocking(true)
        .map_err(sock_err("setting non-blocking", ifname))?;
    Ok(s)
}

fn open_v6(ifname: &str, ifindex: u32) -> Result<Socket, SendError> {
    let s = Socket::new(
        Domain::IPV6,
        Type::RAW,
        Some(Protocol::from(IPPROTO_CARP as i32)),
    )
    .map_err(sock_err("opening raw IPv6 socket", ifname))?;
    s.attach_filter(&drop_all())
        .map_err(sock_err("attaching receive filter", ifname))?;
    s.bind_device(Some(ifname.as_bytes()))
        .map_err(sock_err("binding IPv6 socket to device", ifname))?;
    s.set_multicast_if_v6(ifindex)
        .map_err(sock_err("setting IPV6_MULTICAST_IF", ifname))?;
    s.set_multicast_hops_v6(CARP_TTL as u32)
        .map_err(sock_err("setting IPV6_MULTICAST_HOPS", ifname))?;
    s.set_multicast_loop_v6(false)
        .map_err(sock_err("clearing IPV6_MULTICAST_LOOP", ifname))?;
    s.join_multicast_v6(&Ipv6Addr::from(CARP_GROUP_V6), ifindex)
        .map_err(sock_err("joining ff02::12", ifname))?;
    s.set_nonblocking(true)
        .map_err(sock_err("setting non-blocking", ifname))?;
    Ok(s)
}

/// Sets DF on every packet (IP_PMTUDISC_DO), as OpenBSD sends adverts with IP_DF.
fn set_df(s: &Socket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let val: libc::c_int = libc::IP_PMTUDISC_DO;
    // SAFETY: valid fd, option value is a c_int that lives across the call.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
