//! The kernel side of a carp interface: the Linux link that carries the virtual addresses,
//! those addresses, the sysctls around them, and link (carrier) events.
//!
//! # Design
//!
//! Each carp interface `carpN` is a Linux **macvlan** link named `carpN` on top of its carpdev
//! (mode bridge) whose MAC address is the virtual MAC `00:00:5e:00:01:<vhid>`. It carries the
//! virtual addresses so that services can bind to them, and frames sent to the virtual MAC are
//! delivered to it. Why macvlan:
//!
//! - it exists on every kernel and needs no bridge;
//! - it gives the virtual MAC its own entry in the RX filter of the carpdev's NIC (the
//!   macvlan adds it as a secondary unicast address of its lower device), so frames for the
//!   virtual MAC reach the carpdev, where the XDP program sees them first;
//! - ipvlan has no MAC of its own, and a dummy interface is not attached to the wire.
//!
//! The XDP program on the carpdev answers ARP and neighbour solicitations for the virtual
//! addresses as MASTER and drops them as BACKUP, before the kernel sees them. And nothing may
//! leave from the virtual MAC unless this host is master: every switch that sees a frame
//! from the virtual MAC moves the MAC to that port, and a BACKUP doing so steals the
//! MASTER's traffic. That is what the following choices are about:
//!
//! - **An egress guard on carpN** (the dataplane's `carp_guard` tc program, a clsact
//!   filter on carpN's egress, see [`crate::dataplane`]): a frame leaves carpN only while
//!   this host is the live master of carpN's vhid (the state and deadline test the XDP
//!   program uses for its answers); everything else is dropped and counted
//!   (`egress_dropped_not_master`). It is attached while carpN is still down, before it has
//!   an address, and lives as long as carpN: a BACKUP whose carpd was SIGKILLed stays
//!   silent. With it, carpN needs no `IFF_NOARP`, which it had before and which also kept
//!   the kernel from resolving neighbours on it (a NOARP device's neighbour entries get the
//!   device's own MAC), so that nothing could be sent to a client through carpN. Without
//!   NOARP the kernel resolves neighbours on carpN, joins the groups of its IPv6 addresses
//!   and sends MLD reports, neighbour solicitations and ARP requests from the virtual MAC:
//!   all of it reaches the wire as master only, as in OpenBSD, whose `carp_output` refuses
//!   (`ENETUNREACH`) whatever a carp interface sends while not MASTER (seen on the wire
//!   while writing this: without the guard a BACKUP sends MLD reports, solicitations and
//!   ARP requests from the virtual MAC).
//!   The carpdev still joins the solicited-node groups of the virtual IPv6 addresses itself
//!   ([`link::SolicitedNodeGroups`]): reports from carpN leave only as master, so an
//!   MLD-snooping switch would stop forwarding solicitations to a BACKUP, or to a master
//!   that joined while it was a backup.
//! - **carpN has the IPv6 link-local address `fe80::200:5eff:fe00:1<vhid hex>`**, the
//!   modified EUI-64 of the virtual MAC ([`link::carp_link_local`]), as OpenBSD's carp
//!   interface has: both routers hold it, so it is a virtual address like the others (in
//!   the dataplane's maps, answered by the master's XDP, announced on takeover, joined on
//!   the carpdev), and what IPv6 hosts use as their default router when router
//!   advertisements come from carpN. It has `IFA_F_NODAD` and keeps its `fe80::/64` route
//!   via carpN: a client's packet to it arrives on carpN, and the reply to the client's own
//!   link-local address leaves through carpN, resolved from the virtual MAC (as master). It
//!   is not part of the HMAC we sign (OpenBSD `HMAC_NOV6LL`) and adds no address family:
//!   an IPv4-only carpN sends IPv4 adverts only. A host without IPv6 (`disable_ipv6`) gets
//!   none.
//! - **carpN has IPv6 `addr_gen_mode none`**, set before it is brought up: the kernel
//!   generates no link-local address (nor runs DAD for one) itself; carpd adds the one above.
//!   The kernel refuses this attribute in the `RTM_NEWLINK` that creates the link
//!   (`EAFNOSUPPORT`: the IPv6 state of the device does not exist yet), so it is set right
//!   after creation, while the link is still down.
//! - **Virtual addresses carry `IFA_F_NODAD`** (both routers hold every address; duplicate
//!   address detection would fail it, and its probes would leave from the virtual MAC)
//!   **and `IFA_F_NOPREFIXROUTE`**: no connected route via carpN, so traffic to the subnet
//!   leaves through the carpdev's own route and its MAC whatever the state; replies
//!   sourced from a virtual address leave from the carpdev's MAC, which is harmless. The
//!   kernel still installs the `local` route (needed to accept traffic for the address)
//!   and, for an IPv4 prefix shorter than /31, a `broadcast` route for the subnet broadcast
//!   address via carpN in table `local`.
//! - **sysctls** ([`sysctl`]): on the carpdev `arp_ignore=1` (answer ARP only for addresses
//!   of the receiving interface; the default 0 answers for the virtual addresses on carpN
//!   too) and `arp_announce=2` (never use a virtual address as the sender of an ARP
//!   request); the previous values are recorded in the state directory before anything is
//!   changed, and restored on exit or, after a crash, on the next start. On carpN, which
//!   carpd creates and deletes and so needs no restore: `arp_ignore=8` (its kernel answers
//!   no ARP; XDP answers for the virtual addresses), `arp_announce=2`, `arp_notify=0`,
//!   `rp_filter=0`, `promote_secondaries=1`, and IPv6 `accept_dad=0`, `ndisc_notify=0`,
//!   `accept_ra=0`, `forwarding=0`. See [`sysctl`] for why each.
//!
//! # Pieces
//!
//! - [`link`]: [`NetHandle`], the rtnetlink calls: create/delete carp interfaces, up/down,
//!   addresses, lookups, leftovers of a crashed run.
//! - [`monitor`]: [`LinkMonitor`], link creation, deletion, carrier and admin state changes
//!   from `RTNLGRP_LINK`, and address changes from the IPv4/IPv6 address groups.
//! - [`sysctl`]: the sysctls above and their crash-safe restore file.
//! - [`ethtool`]: whether the NIC hides VLAN tags from XDP (receive VLAN offload).
//!
//! Everything here works on the network namespace of the thread that created the netlink
//! sockets (and, for sysctls, of the calling thread): carpd runs in one namespace, and the
//! tests each run in one of their own.

pub mod ethtool;
pub mod link;
pub mod maddr;
pub mod monitor;
pub mod sysctl;

#[cfg(test)]
pub(crate) mod testns;

use std::io;
use std::net::Ipv6Addr;
use std::path::PathBuf;

pub use link::{IfAddress, LinkInfo, NetHandle, SolicitedNodeGroups, SourceAddrs};
pub use monitor::{LinkEvent, LinkMonitor, NetEvent};

/// Errors of the `net` module. Each says which call on which interface or address failed;
/// netlink and file errors keep the kernel's errno (see [`NetError::errno`]).
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Opening or configuring a netlink socket.
    #[error("netlink socket ({what}): {source}")]
    Socket {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The kernel rejected a netlink request.
    #[error("{op} {target}: {source}")]
    Netlink {
        /// The request, e.g. `RTM_NEWADDR`.
        op: &'static str,
        /// What it was about, e.g. `192.0.2.1/24 on ifindex 7`.
        target: String,
        #[source]
        source: io::Error,
    },
    /// A netlink exchange failed without an errno (unexpected or undecodable message,
    /// closed connection).
    #[error("{op} {target}: {detail}")]
    Protocol {
        op: &'static str,
        target: String,
        detail: String,
    },
    /// Joining or leaving a multicast group on a link.
    #[error("{op} {group} (for {vip}) on ifindex {ifindex}: {source}")]
    Membership {
        op: &'static str,
        group: Ipv6Addr,
        vip: Ipv6Addr,
        ifindex: u32,
        #[source]
        source: io::Error,
    },
    /// A link that should exist does not (e.g. the one just created vanished).
    #[error("{what}: no such link")]
    NoSuchLink { what: String },
    /// Reading or writing a sysctl under /proc/sys.
    #[error("sysctl {path}: {what}: {source}")]
    Sysctl {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// Reading or writing the sysctl restore file in the state directory.
    #[error("sysctl restore file {path}: {what}: {source}")]
    RestoreFile {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The link event subscription ended (its netlink connection closed).
    #[error("link monitor: netlink event stream ended")]
    MonitorClosed,
}

impl NetError {
    /// The kernel's errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Socket { source, .. }
            | NetError::Netlink { source, .. }
            | NetError::Membership { source, .. }
            | NetError::Sysctl { source, .. }
            | NetError::RestoreFile { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Maps an rtnetlink error of request `op` about `target` into a [`NetError`].
    pub(crate) fn from_rtnetlink(op: &'static str, target: String, err: rtnetlink::Error) -> Self {
        match err {
            rtnetlink::Error::NetlinkError(msg) => NetError::Netlink {
                op,
                target,
                source: msg.to_io(),
            },
            other => NetError::Protocol {
                op,
                target,
                detail: other.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_call_target_and_errno() {
        let err = NetError::Netlink {
            op: "RTM_NEWADDR",
            target: "192.0.2.1/24 on ifindex 7".into(),
            source: io::Error::from_raw_os_error(libc::EEXIST),
        };
        let text = err.to_string();
        assert!(text.contains("RTM_NEWADDR"), "{text}");
        assert!(text.contains("192.0.2.1/24 on ifindex 7"), "{text}");
        assert!(text.contains("File exists"), "{text}");
        assert_eq!(err.errno(), Some(libc::EEXIST));
        assert_eq!(NetError::MonitorClosed.errno(), None);
    }
}
