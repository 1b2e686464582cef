//! carpd's dataplane: the XDP program `carp`, attached to every carpdev, and the egress guard
//! `carp_guard`, attached to every carp interface (see `guard`). One object, so both use the
//! same maps.
//!
//! Per frame the XDP program does, in this order:
//! 1. carpdev not configured in `carp_devs` → pass (the program is inert until carpd says).
//! 2. VLAN-tagged → pass untouched (a tagged frame belongs to a VLAN interface above us;
//!    it is never parsed as if it were untagged).
//! 3. destined to the carp MAC of a balanced interface → `lb` keeps it if this host is the
//!    live master of its bucket; destined to the virtual MAC of any other vhid (or VRRP
//!    router, `vrrp`) served here → dropped unless this host is live master (a switch may
//!    still flood the old master's MAC after a failover); for a VRRP router that does not
//!    accept (not the owner, accept mode off), IP packets to its own addresses are dropped
//!    too (`vrrp::refuses`).
//! 4. ARP → `arp`, IPv6 neighbour solicitation → `ndp`, protocol 112 → `advert` (VRRPv3
//!    for a router served here → `vrrp`).
//! 5. everything else → pass.
//!
//! "Live master" means `state == MASTER` and the deadline carpd refreshes on every advert has
//! not passed: a host whose carpd died stops answering by itself (see carp-common `VhidEntry`).
#![no_std]
#![no_main]

mod advert;
mod arp;
mod fastpath;
mod guard;
mod lb;
mod log;
mod maps;
mod ndp;
mod packet;
mod vrrp;

use aya_ebpf::{
    bindings::{TC_ACT_OK, TC_ACT_SHOT, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};
use carp_common::{
    frame::{
        ethernet::{ETH_HLEN, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, EthHdr},
        ip::{IPPROTO_ICMPV6, Ipv4Hdr, Ipv6Hdr},
    },
    maps::VHID_FLAG_VRRP_NO_ACCEPT,
    vrrp::{vrid_of_v6_virtual_mac, vrrp_slot},
    wire::{IPPROTO_CARP, vhid_of_virtual_mac},
};

use crate::{
    maps::{CARPDEVS, count, is_live_master, slot_entry},
    packet::read_at,
};

#[xdp]
pub fn carp(ctx: XdpContext) -> u32 {
    let ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: copied out at once.
    let Some(dev) = (unsafe { CARPDEVS.get(ifindex).copied() }) else {
        return xdp_action::XDP_PASS;
    };
    let Some(eth) = read_at::<EthHdr>(&ctx, 0) else {
        return xdp_action::XDP_PASS; // runt: the kernel drops it
    };
    let ethertype = eth.ethertype();
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        count(|c| &mut c.vlan_passed);
        return xdp_action::XDP_PASS;
    }
    if let Some((group, multicast)) = lb::group_of(ifindex, &eth.dst) {
        if let Some(verdict) = lb::decide(&ctx, ethertype, group, multicast) {
            return verdict;
        }
    } else if let Some(slot) = virtual_mac_slot(&eth.dst)
        && let Some(entry) = slot_entry(ifindex, slot)
    {
        if !is_live_master(&entry) {
            count(|c| &mut c.vmac_dropped_not_master);
            return xdp_action::XDP_DROP;
        }
        if entry.flags & VHID_FLAG_VRRP_NO_ACCEPT != 0
            && vrrp::refuses(&ctx, ifindex, slot, ethertype)
        {
            return vrrp::drop_not_accepted(&ctx, ifindex, slot, ethertype);
        }
        count(|c| &mut c.vmac_accepted);
    }
    match ethertype {
        ETH_P_ARP => arp::handle(&ctx, ifindex),
        ETH_P_IP => match read_at::<Ipv4Hdr>(&ctx, ETH_HLEN) {
            Some(ip) if ip.protocol == IPPROTO_CARP => {
                advert::handle_v4(&ctx, ifindex, &dev, &eth, &ip)
            }
            _ => xdp_action::XDP_PASS,
        },
        ETH_P_IPV6 => match read_at::<Ipv6Hdr>(&ctx, ETH_HLEN) {
            Some(ip) if ip.next_header == IPPROTO_CARP => {
                advert::handle_v6(&ctx, ifindex, &dev, &eth, &ip)
            }
            Some(ip) if ip.next_header == IPPROTO_ICMPV6 => ndp::handle(&ctx, ifindex, &eth, &ip),
            _ => xdp_action::XDP_PASS,
        },
        _ => xdp_action::XDP_PASS,
    }
}

/// The map slot a destination MAC names: a CARP vhid's (or an IPv4 VRRP router's, the same
/// MAC), or an IPv6 VRRP router's (RFC 5798 7.3).
#[inline(always)]
fn virtual_mac_slot(mac: &[u8; 6]) -> Option<u32> {
    match vhid_of_virtual_mac(mac) {
        Some(vhid) => Some(vhid as u32),
        None => vrid_of_v6_virtual_mac(mac).map(|vrid| vrrp_slot(vrid, true)),
    }
}

/// Egress of a carp interface: pass while this host is the vhid's live master, else drop.
#[classifier]
pub fn carp_guard(mut ctx: TcContext) -> i32 {
    // SAFETY: the kernel hands a valid __sk_buff; `ifindex` is readable by tc programs.
    let ifindex = unsafe { (*ctx.skb.skb).ifindex };
    if guard::may_send(&mut ctx, ifindex) {
        TC_ACT_OK
    } else {
        TC_ACT_SHOT
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
