//! Load balancing (OpenBSD `carpnodes` + `balancing ip|ip-stealth|ip-unicast`): every host
//! takes the frames for a balanced interface's carp MAC at layer 2, and this decides per
//! packet which host keeps it (`carp_lsdrop`): source XOR destination, folded to 32 bits,
//! modulo the number of nodes, gives the bucket; the packet passes only if this host is the
//! live master of that bucket's node, else it is dropped and counted.
//!
//! - Broadcast and multicast destinations are never dropped, nor are CARP adverts and
//!   neighbour discovery (ARP and NS are answered by the leader's master, see `arp`/`ndp`).
//! - ICMP errors are hashed on the addresses of the packet they carry (the reply to a flow
//!   of ours), so they reach the host that holds the flow.
//! - In `ip` mode the frame came to the multicast twin of the virtual MAC; an accepted one
//!   gets the unicast MAC back (OpenBSD clears `M_MCAST` the same way), so the carp
//!   interface takes it as addressed to itself and TCP accepts it.
//!
//! The decision reads one map entry after the carpdev's: the group's, which holds every
//! node's state here (`LbGroup::nodes`). A bucket changes hands with the one write of that
//! entry that carpd makes when a node changes state, and a node whose carpd died stops
//! being served at its fail-silent deadline ([`is_live_master`]), as ARP answers do.
//!
//! The entry is read in place, not copied (the XDP stack is close to its 512 bytes), so a
//! rewrite by carpd can race with a packet. The kernel links a new element in and reuses
//! the old one for a later update, so a reader may see fields of two versions that carpd
//! wrote whole. That is harmless: a packet's verdict reads one node's `state` and
//! `deadline_slot` (aligned u32s, one load each; the deadline itself is in `carp_deadlines`),
//! so it sees that node as it was just before or just after one of carpd's writes, as if the
//! packet had come a moment earlier or later; the configuration fields (`count`, `vhids`,
//! `mode`) do not change in place.
use aya_ebpf::{
    bindings::xdp_action,
    programs::{TcContext, XdpContext},
};
use carp_common::{
    frame::{
        ethernet::{ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, EthHdr},
        ip::{IPPROTO_ICMPV6, IPV6_HLEN, Ipv4Hdr, Ipv6Hdr},
    },
    lb::{
        LB_MAX_NODES, LB_MODE_IP, LB_MODE_IP_UNICAST, bucket, carp_mac, fold_v4, fold_v6,
        icmp4_is_error, icmp6_is_error, vhid_of_carp_mac,
    },
    maps::{LbGroup, VhidEntry, VhidKey},
    wire::IPPROTO_CARP,
};

use crate::{
    maps::{LB_GROUPS, count, is_live_master, slot_entry},
    packet::{ptr_at, read_at},
};

const IPPROTO_ICMP: u8 = 1;
/// ICMP header before the packet an error carries (type, code, checksum, 4 more bytes).
const ICMP_HLEN: usize = 8;
/// ICMPv6 neighbour discovery (router/neighbour solicitation and advertisement, redirect):
/// not balanced, the leader's master answers.
const ICMPV6_ND_FIRST: u8 = 133;
const ICMPV6_ND_LAST: u8 = 137;

/// The balanced interface a frame's destination MAC belongs to, and whether the frame came
/// to the multicast twin of its MAC.
#[inline(always)]
pub fn group_of(ifindex: u32, dst: &[u8; 6]) -> Option<(&'static LbGroup, bool)> {
    let (vhid, multicast) = vhid_of_carp_mac(dst)?;
    let group = lb_group(ifindex, vhid)?;
    Some((group, multicast))
}

#[inline(always)]
fn lb_group(ifindex: u32, vhid: u8) -> Option<&'static LbGroup> {
    group_of_key(&VhidKey {
        ifindex,
        vhid: vhid as u32,
    })
}

/// The balanced interface whose leader is `key`, if it is one.
#[inline(always)]
pub fn group_of_key(key: &VhidKey) -> Option<&'static LbGroup> {
    // Borrowed from the map, not copied: the XDP program's stack is close to its 512 bytes.
    // SAFETY: read in place; a rewrite racing with this packet is harmless (module doc).
    unsafe { LB_GROUPS.get(*key) }
}

/// The entry that decides whether this host answers ARP and NS for a virtual address of
/// `slot`: a balanced interface's leader node (in its group entry: its `carp_vhids` entry
/// carries no deadline), any other vhid's (or VRRP router's) `carp_vhids` entry.
#[inline(always)]
pub fn vip_owner(ifindex: u32, slot: u32) -> Option<VhidEntry> {
    let key = VhidKey {
        ifindex,
        vhid: slot,
    };
    match group_of_key(&key) {
        Some(group) => Some(group.nodes[0]),
        None => slot_entry(ifindex, slot),
    }
}

/// The egress guard's verdict on a frame leaving a balanced interface: it passes while this
/// host is the live master of any of its nodes, from the carpdev's MAC in `ip` and
/// `ip-stealth` modes (and, in `ip` mode, an ARP message announces the multicast carp MAC:
/// [`announce_carp_mac`]).
#[inline(always)]
pub fn may_send(ctx: &mut TcContext, group: &LbGroup) -> bool {
    let mut serving = false;
    for i in 0..LB_MAX_NODES {
        if i as u32 >= group.count {
            break;
        }
        if is_live_master(&group.nodes[i]) {
            serving = true;
            break;
        }
    }
    if !serving {
        count(|c| &mut c.egress_dropped_not_master);
        return false;
    }
    if group.mode != LB_MODE_IP_UNICAST {
        // The Ethernet source is bytes 6..12.
        if ctx.store(6, &group.dev_mac, 0).is_err() {
            count(|c| &mut c.egress_dropped_not_master);
            return false;
        }
        if group.mode == LB_MODE_IP {
            announce_carp_mac(ctx, group);
        }
    }
    true
}

/// Offset of an Ethernet/IPv4 ARP message's sender hardware address in the frame.
const ARP_SHA_OFF: usize = ETH_HLEN + 8;

/// An ARP message the kernel sends from the carp interface (a request resolving a
/// neighbour) carries the interface's unicast MAC as its sender hardware address, which
/// the neighbour caches for our address (RFC 826). In `ip` mode that must be the carp MAC
/// the leader's master announces, the multicast one, as OpenBSD's `arprequest` puts the
/// carp interface's own lladdr there: then every neighbour sends to the MAC switches
/// flood. (In `ip-stealth` the unicast MAC is the carp MAC already.) The carpdev's MAC
/// would steer all of the neighbour's traffic for the address to this one host.
#[inline(always)]
fn announce_carp_mac(ctx: &mut TcContext, group: &LbGroup) {
    let Ok(header) = ctx.load::<[u8; ARP_SHA_OFF]>(0) else {
        return;
    };
    let leader = group.vhids[0];
    // Ethertype ARP; hardware Ethernet (1), protocol IPv4, lengths 6 and 4.
    if header[12..14] != ETH_P_ARP.to_be_bytes()
        || header[14..20] != [0, 1, 0x08, 0x00, 6, 4]
        || ctx.load::<[u8; 6]>(ARP_SHA_OFF) != Ok(carp_mac(leader, LB_MODE_IP_UNICAST))
    {
        return;
    }
    // A failed store leaves the frame as the kernel built it.
    let _ = ctx.store(ARP_SHA_OFF, &carp_mac(leader, group.mode), 0);
}

/// The MACs of an ARP reply or neighbour advertisement for `vhid`: the link-layer address
/// announced and the Ethernet source. A balanced interface announces its carp MAC (the
/// multicast one in `ip` mode) and, except in `ip-unicast` mode, sends from the carpdev's
/// own MAC so that switches never learn the carp MAC; any other vhid uses its virtual MAC.
#[inline(always)]
pub fn answer_macs(ifindex: u32, vhid: u8, vmac: [u8; 6]) -> ([u8; 6], [u8; 6]) {
    match lb_group(ifindex, vhid) {
        None => (vmac, vmac),
        Some(g) => {
            let mac = carp_mac(vhid, g.mode);
            let src = if g.mode == LB_MODE_IP_UNICAST {
                mac
            } else {
                g.dev_mac
            };
            (mac, src)
        }
    }
}

/// The verdict on a frame to a balanced interface's carp MAC, or `None` when it is not
/// balanced (ARP, adverts, neighbour discovery, group destinations, other protocols): the
/// caller then handles it as any other frame.
#[inline(always)]
pub fn decide(ctx: &XdpContext, ethertype: u16, group: &LbGroup, multicast: bool) -> Option<u32> {
    let fold = match ethertype {
        ETH_P_IP => fold_ipv4(ctx)?,
        ETH_P_IPV6 => fold_ipv6(ctx)?,
        ETH_P_ARP => {
            // An answer to the kernel's own ARP request, which announced the multicast
            // carp MAC (`announce_carp_mac`): the carp interface takes it as addressed to
            // itself (OpenBSD's carp_input), the ARP code decides the rest.
            if multicast {
                to_unicast(ctx);
            }
            return None;
        }
        _ => return None,
    };
    let index = bucket(fold, group.count) as usize;
    if index >= LB_MAX_NODES {
        return None;
    }
    if !is_live_master(&group.nodes[index]) {
        count(|c| &mut c.lb_dropped_other_bucket);
        return Some(xdp_action::XDP_DROP);
    }
    if multicast {
        to_unicast(ctx);
    }
    count(|c| &mut c.lb_accepted);
    Some(xdp_action::XDP_PASS)
}

/// Readdresses a frame that came to the multicast twin of the carp MAC to the unicast MAC
/// (the carp interface's own).
#[inline(always)]
fn to_unicast(ctx: &XdpContext) {
    if let Some(eth) = ptr_at::<EthHdr>(ctx, 0) {
        // SAFETY: bounds-checked by ptr_at.
        unsafe { (*eth).dst[0] &= !0x01 };
    }
}

/// The fold of an IPv4 packet, or of the packet an ICMP error carries.
#[inline(always)]
fn fold_ipv4(ctx: &XdpContext) -> Option<u32> {
    let ip = read_at::<Ipv4Hdr>(ctx, ETH_HLEN)?;
    // 224/4 and 255.255.255.255; a directed broadcast is unicast at layer 2 only to a
    // router, which forwards it (OpenBSD sees no M_BCAST either).
    if ip.dst[0] >= 224 || ip.protocol == IPPROTO_CARP {
        return None;
    }
    if ip.protocol == IPPROTO_ICMP && !ip.is_fragment() {
        let off = ETH_HLEN + ip.header_len();
        // The whole ICMP header is read, not just its type: a one-byte read at a variable
        // offset compiles to a bounds check the verifier cannot follow.
        if let Some(icmp) = read_at::<[u8; ICMP_HLEN]>(ctx, off)
            && icmp4_is_error(icmp[0])
            && let Some(inner) = read_at::<Ipv4Hdr>(ctx, off + ICMP_HLEN)
        {
            return Some(fold_v4(&inner.src, &inner.dst));
        }
    }
    Some(fold_v4(&ip.src, &ip.dst))
}

/// The fold of an IPv6 packet, or of the packet an ICMPv6 error carries.
#[inline(always)]
fn fold_ipv6(ctx: &XdpContext) -> Option<u32> {
    let ip6 = read_at::<Ipv6Hdr>(ctx, ETH_HLEN)?;
    if ip6.dst[0] == 0xff || ip6.next_header == IPPROTO_CARP {
        return None;
    }
    if ip6.next_header == IPPROTO_ICMPV6 {
        let off = ETH_HLEN + IPV6_HLEN;
        let icmp_type = read_at::<[u8; ICMP_HLEN]>(ctx, off).map_or(0, |h| h[0]);
        if (ICMPV6_ND_FIRST..=ICMPV6_ND_LAST).contains(&icmp_type) {
            return None;
        }
        if icmp6_is_error(icmp_type)
            && let Some(inner) = read_at::<Ipv6Hdr>(ctx, off + ICMP_HLEN)
        {
            return Some(fold_v6(&inner.src, &inner.dst));
        }
    }
    Some(fold_v6(&ip6.src, &ip6.dst))
}
