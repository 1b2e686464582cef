//! The egress guard of a carp interface (carpN): a frame leaves carpN only while this host
//! is the live master of carpN's vhid.
//!
//! carpN carries the virtual MAC, and the kernel sends from it on its own: MLD reports for
//! the groups of its addresses, neighbour solicitations and ARP requests when it resolves a
//! neighbour through carpN (replies to a client's IPv6 link-local address leave that way),
//! ICMP replies. A frame from the virtual MAC makes every learning switch move the MAC to
//! the sender's port, so a BACKUP sending one steals the master's traffic. Attached to
//! carpN's egress (a clsact filter, which lives as long as carpN, so it keeps guarding after
//! carpd died), this program does what OpenBSD's `carp_output` does (it refuses output with
//! `ENETUNREACH` unless the vhid is MASTER): everything passes while master, nothing
//! otherwise. The test is the XDP program's ([`is_live_master`]), so a master whose carpd
//! stopped refreshing its deadline falls silent here too.
//!
//! A balanced interface (`carpnodes`) serves traffic on every host that masters one of its
//! nodes: its frames pass while this host is the live master of any node (OpenBSD's
//! `carp_output` lets a balanced interface send in any state), and in `ip` and `ip-stealth`
//! modes they leave from the carpdev's own MAC, never the carp MAC (`lb::may_send`).
use aya_ebpf::programs::TcContext;

use crate::{
    lb,
    maps::{GUARDS, VHIDS, count, is_live_master},
};

/// Whether a frame may leave the carp interface `ifindex`. An interface the dataplane does
/// not know (not yet registered, or already forgotten) is silent: the guard fails closed.
#[inline(always)]
pub fn may_send(ctx: &mut TcContext, ifindex: u32) -> bool {
    // SAFETY: copied out at once.
    let Some(key) = (unsafe { GUARDS.get(ifindex).copied() }) else {
        count(|c| &mut c.egress_dropped_not_master);
        return false;
    };
    if let Some(group) = lb::group_of_key(&key) {
        return lb::may_send(ctx, group);
    }
    // SAFETY: copied out at once (a torn read of the deadline is harmless, see `vhid_entry`).
    let live = unsafe { VHIDS.get(key).copied() }.is_some_and(|e| is_live_master(&e));
    if !live {
        count(|c| &mut c.egress_dropped_not_master);
    }
    live
}
