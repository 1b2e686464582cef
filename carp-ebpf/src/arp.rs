//! ARP for virtual IPv4 addresses: answered here, in place, while master; dropped otherwise,
//! so that neither the kernel nor anything else on a backup answers.
//!
//! A request from a broadcast or multicast Ethernet (or ARP sender) address is dropped and
//! counted: the reply would go to a group, teaching every host there the virtual MAC at
//! once, for a sender that cannot exist. The reply is exactly an ARP frame (42 bytes): the
//! request's padding or trailing bytes are cut, never echoed back (the NIC pads a short
//! frame to the Ethernet minimum, as it does for the kernel's own ARP replies).
use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use carp_common::{
    frame::{
        arp::{ARP_FRAME_LEN, ARPOP_REPLY, ARPOP_REQUEST, ArpEthIpv4},
        ethernet::{ETH_HLEN, EthHdr, is_group_mac},
    },
    maps::Vip4Key,
};

use crate::{
    lb,
    log::{self, Why, log_decision},
    maps::{VIP4, count, is_live_master},
    packet::{ptr_at, read_at},
};

/// The frame is an ARP frame (ethertype checked by the caller).
#[inline(always)]
pub fn handle(ctx: &XdpContext, ifindex: u32) -> u32 {
    let (Some(eth), Some(arp)) = (
        read_at::<EthHdr>(ctx, 0),
        read_at::<ArpEthIpv4>(ctx, ETH_HLEN),
    ) else {
        return xdp_action::XDP_PASS;
    };
    if !arp.is_ethernet_ipv4() || arp.op() != ARPOP_REQUEST {
        return xdp_action::XDP_PASS;
    }
    let key = Vip4Key {
        ifindex,
        addr: arp.tpa,
    };
    // SAFETY: copied out at once.
    let Some(vip) = (unsafe { VIP4.get(key).copied() }) else {
        return xdp_action::XDP_PASS; // not a virtual address: the kernel's business
    };
    if is_group_mac(&eth.src) || is_group_mac(&arp.sha) {
        count(|c| &mut c.arp_dropped_bad_source);
        log_decision!(log::arp(ctx, false, &arp.tpa, Why::BadSource, ifindex));
        return xdp_action::XDP_DROP;
    }
    if arp.spa == arp.tpa {
        // A gratuitous ARP (another master announcing the address): never answered.
        count(|c| &mut c.arp_gratuitous_dropped);
        log_decision!(log::arp(ctx, false, &arp.tpa, Why::Gratuitous, ifindex));
        return xdp_action::XDP_DROP;
    }
    let served = lb::vip_owner(ifindex, vip.vhid);
    let live = served.filter(is_live_master);
    let Some(entry) = live else {
        count(|c| &mut c.arp_dropped_not_master);
        log_decision!(log::arp(
            ctx,
            false,
            &arp.tpa,
            Why::state(served.as_ref(), false),
            ifindex
        ));
        return xdp_action::XDP_DROP;
    };

    // The reply is as long as an ARP frame, whatever followed the request.
    let want = ARP_FRAME_LEN as i32;
    let have = (ctx.data_end() - ctx.data()) as i32;
    // SAFETY: helper call on our own context; pointers are taken after it.
    if have > want && unsafe { bpf_xdp_adjust_tail(ctx.ctx, want - have) } != 0 {
        return xdp_action::XDP_PASS;
    }
    let (Some(eth), Some(out)) = (
        ptr_at::<EthHdr>(ctx, 0),
        ptr_at::<ArpEthIpv4>(ctx, ETH_HLEN),
    ) else {
        return xdp_action::XDP_PASS;
    };
    // A balanced interface answers with its carp MAC (see `lb::answer_macs`).
    let (lladdr, src) = lb::answer_macs(ifindex, vip.vhid as u8, entry.vmac);
    // SAFETY: both pointers were bounds-checked against data_end just above.
    unsafe {
        (*eth).dst = (*eth).src;
        (*eth).src = src;
        (*out).op = ARPOP_REPLY.to_be_bytes();
        (*out).tha = arp.sha;
        (*out).tpa = arp.spa;
        (*out).sha = lladdr;
        (*out).spa = arp.tpa;
    }
    count(|c| &mut c.arp_replied);
    log_decision!(log::arp(ctx, true, &arp.tpa, Why::Master, ifindex));
    xdp_action::XDP_TX
}
