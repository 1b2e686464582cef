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
//! addresses as MASTER and drops them as BACKUP. So the kernel itself must never answer for,
//! announce, or send anything from the virtual MAC; every switch that sees a frame from the
//! virtual MAC moves the MAC to that port, and a BACKUP doing so steals the MASTER's traffic.
//! That is what the following choices are about:
//!
//! - **carpN is created with `IFF_NOARP`** (`ip link set carpN arp off`). Without it, the
//!   kernel answers ARP for the virtual addresses out of carpN (the macvlan receives the
//!   carpdev's broadcasts), and, worse, joins the IPv6 solicited-node group of each virtual
//!   address on carpN and sends MLDv2 reports for it from the virtual MAC (source `::`,
//!   there being no link-local address), on a BACKUP too: seen on the wire while writing
//!   this module. On a NOARP device the kernel neither processes ARP nor joins
//!   solicited-node groups. Consequence for the daemon: the carpdev has to join the
//!   solicited-node groups of the virtual IPv6 addresses itself
//!   ([`link::SolicitedNodeGroups`]), or neighbour solicitations for them never pass a NIC's
//!   multicast filter or an MLD-snooping switch, and the XDP program never sees them.
//! - **Addresses carry `IFA_F_NODAD`** (both routers hold every address; duplicate address
//!   detection would fail it, and its probes would leave from the virtual MAC) **and
//!   `IFA_F_NOPREFIXROUTE`**: no connected route via carpN. Otherwise a BACKUP's kernel
//!   would route traffic for the subnet out of carpN and resolve neighbours with ARP/NS
//!   from the virtual MAC and address. Traffic leaves through the carpdev's own route;
//!   replies sourced from a virtual address leave from the carpdev's MAC, which is harmless.
//!   The kernel still installs the `local` route (needed to accept traffic for the address)
//!   and, for an IPv4 prefix shorter than /31, a `broadcast` route for the subnet broadcast
//!   address via carpN in table `local`.
//! - **carpN has IPv6 `addr_gen_mode none`**, set before it is brought up: no link-local
//!   address, since two routers would derive the same one from the shared MAC. The kernel
//!   refuses this attribute in the `RTM_NEWLINK` that creates the link (`EAFNOSUPPORT`: the
//!   IPv6 state of the device does not exist yet), so it is set right after creation, while
//!   the link is still down.
//! - **sysctls** ([`sysctl`]): on the carpdev `arp_ignore=1` (answer ARP only for addresses
//!   of the receiving interface; the default 0 answers for the virtual addresses on carpN
//!   too) and `arp_announce=2` (never use a virtual address as the sender of an ARP
//!   request); the previous values are recorded in the state directory before anything is
//!   changed, and restored on exit or, after a crash, on the next start. On carpN, which
//!   carpd creates and deletes and so needs no restore: the same two, plus `arp_notify=0`,
//!   `rp_filter=0`, `promote_secondaries=1`, and IPv6 `accept_dad=0`, `ndisc_notify=0`,
//!   `accept_ra=0`, `forwarding=0`. See [`sysctl`] for why each.
//!
//! # Pieces
//!
//! - [`link`]: [`NetHandle`], the rtnetlink calls: create/delete carp interfaces, up/down,
//!   addresses, lookups, leftovers of a crashed run.
//! - [`monitor`]: [`LinkMonitor`], carrier and admin state changes from `RTNLGRP_LINK`.
//! - [`sysctl`]: the sysctls above and their crash-safe restore file.
//! - [`ethtool`]: whether the NIC hides VLAN tags from XDP (receive VLAN offload).
//!
//! Everything here works on the network namespace of the thread that created the netlink
//! sockets (and, for sysctls, of the calling thread): carpd runs in one namespace, and the
//! tests each run in one of their own.

pub mod ethtool;
pub mod link;
pub mod monitor;
pub mod sysctl;

#[cfg(test)]
mod testns;

use std::io;
use std::net::Ipv6Addr;
use std::path::PathBuf;

pub use link::{IfAddress, LinkInfo, NetHandle, SolicitedNodeGroups, SourceAddrs};
pub use monitor::{LinkEvent, LinkMonitor};

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
