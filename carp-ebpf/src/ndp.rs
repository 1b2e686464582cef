//! Neighbour solicitations for virtual IPv6 addresses: answered here with a neighbour
//! advertisement (target link-layer option = the virtual MAC) while master, dropped otherwise.
//!
//! A solicitation for a virtual address is answered only if it passes RFC 4861 7.1.1's
//! checks that concern us: hop limit 255, code 0, no option of length zero, a source that is
//! not multicast (IP or Ethernet), and, from the unspecified address (duplicate address
//! detection), a solicited-node multicast destination and no source link-layer option.
//! Any other is dropped and counted (`ns_dropped_invalid`); the kernel would discard it too.
//! The ICMPv6 checksum is not verified here (a variable-length sum); a corrupted
//! solicitation for a virtual address is answered as the intact one would have been.
//! The reply is always exactly the advertisement (86 bytes), whatever the solicitation's
//! length.
use aya_ebpf::{bindings::xdp_action, helpers::bpf_xdp_adjust_tail, programs::XdpContext};
use carp_common::{
    frame::{
        be16,
        ethernet::{ETH_HLEN, EthHdr, ipv6_multicast_mac, is_group_mac},
        ip::{IPV6_ALL_NODES, IPV6_HLEN, IPV6_SOLICITED_NODE_PREFIX, IPV6_UNSPECIFIED, Ipv6Hdr},
        nd::{
            ICMPV6_NEIGHBOR_SOLICIT, NA_FLAG_OVERRIDE, NA_FLAG_ROUTER, NA_FLAG_SOLICITED,
            NA_FRAME_LEN, ND_HOP_LIMIT, ND_MSG_LEN, ND_OPT_SOURCE_LINKADDR, NaFrame, NdMsg,
        },
    },
    maps::{VIP_FLAG_ROUTER, Vip6Key},
};

use crate::{
    lb,
    log::{self, Why, log_decision},
    maps::{VIP6, count, is_live_master},
    packet::{ptr_at, read_at},
};

/// Options looked at in a solicitation; one with more is not answered. Real ones carry one
/// or two (source link-layer address; a nonce during duplicate address detection).
const NS_MAX_OPTIONS: usize = 8;

/// The frame is IPv6 with next header ICMPv6 (checked by the caller).
#[inline(always)]
pub fn handle(ctx: &XdpContext, ifindex: u32, eth: &EthHdr, ip6: &Ipv6Hdr) -> u32 {
    let Some(ns) = read_at::<NdMsg>(ctx, ETH_HLEN + IPV6_HLEN) else {
        return xdp_action::XDP_PASS;
    };
    // Is this a whole solicitation at all? Anything else goes to the kernel.
    let payload_len = be16(ip6.payload_len) as usize;
    if ns.icmp_type != ICMPV6_NEIGHBOR_SOLICIT
        || payload_len < ND_MSG_LEN
        || ETH_HLEN + IPV6_HLEN + payload_len > ctx.data_end() - ctx.data()
    {
        return xdp_action::XDP_PASS;
    }
    let key = Vip6Key {
        ifindex,
        addr: ns.target,
    };
    // SAFETY: copied out at once.
    let Some(vip) = (unsafe { VIP6.get(key).copied() }) else {
        return xdp_action::XDP_PASS;
    };
    if !is_valid_solicitation(ctx, eth, ip6, &ns, payload_len) {
        count(|c| &mut c.ns_dropped_invalid);
        log_decision!(log::ns(ctx, false, &ns.target, Why::Invalid, ifindex));
        return xdp_action::XDP_DROP;
    }
    let served = lb::vip_owner(ifindex, vip.vhid);
    let Some(entry) = served.filter(is_live_master) else {
        count(|c| &mut c.ns_dropped_not_master);
        log_decision!(log::ns(
            ctx,
            false,
            &ns.target,
            Why::state(served.as_ref(), false),
            ifindex
        ));
        return xdp_action::XDP_DROP;
    };

    // A solicitation from the unspecified address is duplicate address detection: the
    // answer goes to all nodes and is not "solicited" (RFC 4861 7.2.4).
    let dad = ip6.src == IPV6_UNSPECIFIED;
    let (dst_ip, dst_mac) = if dad {
        (IPV6_ALL_NODES, ipv6_multicast_mac(&IPV6_ALL_NODES))
    } else {
        (ip6.src, eth.src)
    };
    let mut flags = NA_FLAG_OVERRIDE;
    if !dad {
        flags |= NA_FLAG_SOLICITED;
    }
    if vip.flags & VIP_FLAG_ROUTER != 0 {
        flags |= NA_FLAG_ROUTER;
    }
    // Built whole on the stack, written in one go once the frame has been resized to fit it.
    // A balanced interface announces its carp MAC (see `lb::answer_macs`).
    let (lladdr, src) = lb::answer_macs(ifindex, vip.vhid as u8, entry.vmac);
    let mut frame = NaFrame::new(lladdr, ns.target, dst_mac, dst_ip, flags);
    frame.eth.src = src;

    // Resize the frame to exactly the reply: a solicitation for duplicate address detection
    // carries no source link-layer option and is shorter; one with more options is longer.
    let want = NA_FRAME_LEN as i32;
    let have = (ctx.data_end() - ctx.data()) as i32;
    // SAFETY: helper call on our own context.
    if want != have && unsafe { bpf_xdp_adjust_tail(ctx.ctx, want - have) } != 0 {
        // No room to grow: leave the solicitation to the kernel. carpd gives the carp
        // interface the virtual MAC, so the kernel's answer (as master) is equivalent.
        return xdp_action::XDP_PASS;
    }
    let Some(out) = ptr_at::<NaFrame>(ctx, 0) else {
        return xdp_action::XDP_DROP;
    };
    // SAFETY: bounds-checked just above, after the resize.
    unsafe { out.write_unaligned(frame) };
    count(|c| &mut c.ns_replied);
    log_decision!(log::ns(ctx, true, &ns.target, Why::Master, ifindex));
    xdp_action::XDP_TX
}

/// RFC 4861 7.1.1, as far as it decides whether to answer (see the module doc).
#[inline(always)]
fn is_valid_solicitation(
    ctx: &XdpContext,
    eth: &EthHdr,
    ip6: &Ipv6Hdr,
    ns: &NdMsg,
    payload_len: usize,
) -> bool {
    if ip6.hop_limit != ND_HOP_LIMIT || ns.code != 0 || is_group_mac(&eth.src) || ip6.src[0] == 0xff
    {
        return false;
    }
    // The options fill the payload exactly, none of length zero (the kernel's
    // ndisc_parse_options); a source link-layer address is noted.
    let end = ETH_HLEN + IPV6_HLEN + payload_len;
    let mut off = ETH_HLEN + IPV6_HLEN + ND_MSG_LEN;
    let mut has_sllao = false;
    for _ in 0..NS_MAX_OPTIONS {
        if off + 2 > end {
            break;
        }
        let Some([opt_type, len]) = read_at::<[u8; 2]>(ctx, off) else {
            return false;
        };
        if len == 0 {
            return false;
        }
        has_sllao |= opt_type == ND_OPT_SOURCE_LINKADDR;
        off += len as usize * 8;
    }
    // Short of `end`: more options than looked at, or a stray byte; past it: an option
    // longer than the payload.
    if off != end {
        return false;
    }
    if ip6.src == IPV6_UNSPECIFIED {
        return !has_sllao && ip6.dst[..13] == IPV6_SOLICITED_NODE_PREFIX;
    }
    true
}
