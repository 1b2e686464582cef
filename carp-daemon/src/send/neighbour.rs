//! The MACs of unicast peers (OpenBSD's `carppeer`), from the kernel's neighbour table.
//!
//! Unicast adverts leave as whole frames from the virtual MAC, like multicast ones (spec
//! "Unicast peers": FreeBSD's physical-MAC source made switches age the virtual MAC out and
//! flood), so carpd, not the kernel's IP output, puts the peer's MAC in the frame. It asks
//! the kernel's neighbour table (RTM_GETNEIGH for one address on the carpdev, as `ip neigh
//! get` does) rather than running ARP/ND itself, so that both families, static entries and
//! the kernel's probing and timers all work as for any other traffic.
//!
//! When the table has no usable entry (none, INCOMPLETE, FAILED), carpd asks the kernel to
//! resolve it: RTM_NEWNEIGH with NTF_USE (`ip neigh replace ADDR dev DEV use`), which creates
//! the entry if needed and starts ARP or neighbour solicitation exactly as a packet waiting
//! for that neighbour would (the kernel's neigh_event_send). That advert is not sent and
//! counts as a send error; the next one finds the MAC. Nothing is sent to any address but
//! the configured peer. A STALE entry is used, and refreshed the same way, because frames
//! carpd sends on AF_PACKET never confirm a neighbour to the kernel.
//!
//! A MAC found is kept for [`FRESH_FOR`], so that a short advbase does not cost a netlink
//! exchange per advert and peer.
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// How long a looked-up MAC is used before the table is asked again.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// What the neighbour table says about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMac {
    Known([u8; 6]),
    /// No usable entry: resolution was started, and the advert cannot be sent yet.
    Unresolved,
}

/// The neighbour-table client of one carpdev, with its cache.
pub struct Neighbours {
    ifindex: u32,
    socket: Socket,
    seq: u32,
    cache: HashMap<IpAddr, ([u8; 6], Instant)>,
}

impl Neighbours {
    pub fn open(ifindex: u32) -> std::io::Result<Self> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // The kernel answers at once; a timeout keeps a lost reply from stalling the loop.
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        // SAFETY: setsockopt with a valid timeval and its size on a descriptor we own.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self {
            ifindex,
            socket,
            seq: 0,
            cache: HashMap::new(),
        })
    }

    /// The MAC to send `peer`'s adverts to, starting resolution when there is none.
    pub fn mac(&mut self, peer: IpAddr, now: Instant) -> std::io::Result<PeerMac> {
        if let Some((mac, at)) = self.cache.get(&peer)
            && now.duration_since(*at) < FRESH_FOR
        {
            return Ok(PeerMac::Known(*mac));
        }
        let entry = self.get(peer)?;
        let usable =
            entry.and_then(|(state, mac)| mac.filter(|_| usable(state)).map(|m| (state, m)));
        match usable {
            Some((state, mac)) => {
                if state == NeighbourState::Stale {
                    self.resolve(peer)?;
                }
                self.cache.insert(peer, (mac, now));
                Ok(PeerMac::Known(mac))
            }
            None => {
                self.cache.remove(&peer);
                self.resolve(peer)?;
                Ok(PeerMac::Unresolved)
            }
        }
    }

    /// RTM_GETNEIGH for `peer` on the carpdev: its state and MAC, `None` if no entry.
    fn get(&mut self, peer: IpAddr) -> std::io::Result<Option<(NeighbourState, Option<[u8; 6]>)>> {
        let msg = self.message(peer, NeighbourFlags::empty());
        let reply = self.exchange(RouteNetlinkMessage::GetNeighbour(msg), NLM_F_REQUEST)?;
        match reply {
            Reply::Neighbour(n) => {
                let mac = n.attributes.iter().find_map(|a| match a {
                    NeighbourAttribute::LinkLayerAddress(b) => <[u8; 6]>::try_from(&b[..]).ok(),
                    _ => None,
                });
                Ok(Some((n.header.state, mac)))
            }
            Reply::Error(code) if code == libc::ENOENT => Ok(None),
            Reply::Error(code) => Err(std::io::Error::from_raw_os_error(code)),
            Reply::Ack => Ok(None),
        }
    }

    /// RTM_NEWNEIGH with NTF_USE: the kernel creates the entry if needed and resolves it.
    fn resolve(&mut self, peer: IpAddr) -> std::io::Result<()> {
        let msg = self.message(peer, NeighbourFlags::Use);
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        match self.exchange(RouteNetlinkMessage::NewNeighbour(msg), flags)? {
            Reply::Error(code) => Err(std::io::Error::from_raw_os_error(code)),
            Reply::Ack | Reply::Neighbour(_) => Ok(()),
        }
    }

    fn message(&self, peer: IpAddr, flags: NeighbourFlags) -> NeighbourMessage {
        let mut msg = NeighbourMessage::default();
        msg.header.ifindex = self.ifindex;
        msg.header.flags = flags;
        msg.header.state = NeighbourState::None;
        let (family, dst) = match peer {
            IpAddr::V4(a) => (AddressFamily::Inet, NeighbourAddress::Inet(a)),
            IpAddr::V6(a) => (AddressFamily::Inet6, NeighbourAddress::Inet6(a)),
        };
        msg.header.family = family;
        msg.attributes.push(NeighbourAttribute::Destination(dst));
        msg
    }

    /// Sends one request and reads until its reply (an older, timed-out reply is skipped).
    fn exchange(&mut self, msg: RouteNetlinkMessage, flags: u16) -> std::io::Result<Reply> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = flags;
        header.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        req.finalize();
        let mut buf = vec![0; req.buffer_len()];
        req.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut rx = vec![0u8; 8192];
        loop {
            let n = self.socket.recv(&mut &mut rx[..], 0)?;
            let mut at = 0;
            while at < n {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&rx[at..n])
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    return Ok(match reply.payload {
                        NetlinkPayload::Error(e) => match e.code {
                            Some(code) => Reply::Error(-code.get()),
                            None => Reply::Ack,
                        },
                        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewNeighbour(n)) => {
                            Reply::Neighbour(n)
                        }
                        _ => Reply::Ack,
                    });
                }
                if len == 0 {
                    break;
                }
                at += (len + 3) & !3;
            }
        }
    }
}

enum Reply {
    Neighbour(NeighbourMessage),
    Ack,
    /// A positive errno.
    Error(i32),
}

/// States whose MAC can be sent to (the kernel's NUD_VALID).
fn usable(state: NeighbourState) -> bool {
    matches!(
        state,
        NeighbourState::Reachable
            | NeighbourState::Stale
            | NeighbourState::Delay
            | NeighbourState::Probe
            | NeighbourState::Permanent
            | NeighbourState::Noarp
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::testns::{TIMEOUT, TestNs, in_netns, ip};

    fn mac_of(ns: &str, dev: &str) -> [u8; 6] {
        let out = ip(ns, &["-br", "link", "show", dev]);
        let word = out.split_whitespace().nth(2).expect("MAC in ip -br link");
        let bytes: Vec<u8> = word
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    /// A peer in another namespace: unknown at first (resolution starts), then its MAC.
    #[test]
    fn unknown_peers_are_resolved_by_the_kernel_then_found() {
        in_netns("neigh_resolve", |ns| async move {
            let peer_ns = TestNs::create("neigh_peer").expect("peer namespace");
            let pn = peer_ns.name().to_owned();
            ip(
                &ns,
                &["link", "add", "nb0", "type", "veth", "peer", "name", "nb1"],
            );
            ip(&ns, &["link", "set", "nb1", "netns", &pn]);
            ip(&ns, &["addr", "add", "10.9.0.1/24", "dev", "nb0"]);
            ip(
                &ns,
                &["addr", "add", "2001:db8:9::1/64", "dev", "nb0", "nodad"],
            );
            ip(&pn, &["addr", "add", "10.9.0.2/24", "dev", "nb1"]);
            ip(
                &pn,
                &["addr", "add", "2001:db8:9::2/64", "dev", "nb1", "nodad"],
            );
            ip(&ns, &["link", "set", "nb0", "up"]);
            ip(&pn, &["link", "set", "nb1", "up"]);
            let want = mac_of(&pn, "nb1");
            let ifindex = nix::net::if_::if_nametoindex("nb0").unwrap();
            let mut n = Neighbours::open(ifindex).unwrap();
            for peer in ["10.9.0.2", "2001:db8:9::2"] {
                let peer: IpAddr = peer.parse().unwrap();
                let start = Instant::now();
                assert_eq!(n.mac(peer, start).unwrap(), PeerMac::Unresolved, "{peer}");
                loop {
                    let now = Instant::now();
                    match n.mac(peer, now).unwrap() {
                        PeerMac::Known(mac) => {
                            assert_eq!(mac, want, "{peer}");
                            break;
                        }
                        PeerMac::Unresolved => {
                            assert!(now - start < TIMEOUT, "{peer} never resolved");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }
            // No such host: stays unresolved (and the kernel's entry fails), no error.
            let ghost: IpAddr = "10.9.0.99".parse().unwrap();
            assert_eq!(n.mac(ghost, Instant::now()).unwrap(), PeerMac::Unresolved);
        });
    }

    #[test]
    fn only_valid_states_carry_a_mac_to_send_to() {
        assert!(usable(NeighbourState::Reachable) && usable(NeighbourState::Stale));
        assert!(usable(NeighbourState::Permanent));
        for s in [
            NeighbourState::Incomplete,
            NeighbourState::Failed,
            NeighbourState::None,
        ] {
            assert!(!usable(s), "{s:?}");
        }
    }
}
