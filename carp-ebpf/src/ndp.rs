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
    maps::{VIP_FLAG_ROUTER, Vip6Key},
    wire::{
        ETH_HLEN, ETH_P_IPV6, ICMPV6_NEIGHBOR_ADVERT, ICMPV6_NEIGHBOR_SOLICIT, IPPROTO_ICMPV6,
        IPV6_HLEN,
    },
};

use crate::{
    csum,
    maps::{VIP6, count, is_live_master, vhid_entry},
    packet::{EthHdr, Ipv6Hdr, NdLinkLayerOpt, NdMsg, be16, is_group_mac, ptr_at, read_at},
};

const ND_OPT_SOURCE_LINKADDR: u8 = 1;
const ND_OPT_TARGET_LINKADDR: u8 = 2;
/// Options looked at in a solicitation; one with more is not answered. Real ones carry one
/// or two (source link-layer address; a nonce during duplicate address detection).
const NS_MAX_OPTIONS: usize = 8;
/// ff02::1:ff00:0/104, the solicited-node multicast prefix (RFC 4291 2.7.1).
const SOLICITED_NODE_PREFIX: [u8; 13] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff];
const NA_FLAG_ROUTER: u8 = 0x80;
const NA_FLAG_SOLICITED: u8 = 0x40;
const NA_FLAG_OVERRIDE: u8 = 0x20;
const ALL_NODES: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// ICMPv6 length of the advertisement we send: the message plus one 8-byte option.
const NA_ICMP_LEN: usize = core::mem::size_of::<NdMsg>() + core::mem::size_of::<NdLinkLayerOpt>();

/// The whole reply frame, written in one go after the frame was resized to fit it.
#[repr(C)]
#[derive(Clone, Copy)]
struct NaFrame {
    eth: EthHdr,
    ip6: Ipv6Hdr,
    nd: NdMsg,
    opt: NdLinkLayerOpt,
}

/// The frame is IPv6 with next header ICMPv6 (checked by the caller).
#[inline(always)]
pub fn handle(ctx: &XdpContext, ifindex: u32, eth: &EthHdr, ip6: &Ipv6Hdr) -> u32 {
    let Some(ns) = read_at::<NdMsg>(ctx, ETH_HLEN + IPV6_HLEN) else {
        return xdp_action::XDP_PASS;
    };
    // Is this a whole solicitation at all? Anything else goes to the kernel.
    let payload_len = be16(ip6.payload_len) as usize;
    if ns.icmp_type != ICMPV6_NEIGHBOR_SOLICIT
        || payload_len < core::mem::size_of::<NdMsg>()
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
        return xdp_action::XDP_DROP;
    }
    let Some(entry) = vhid_entry(ifindex, vip.vhid as u8).filter(is_live_master) else {
        count(|c| &mut c.ns_dropped_not_master);
        return xdp_action::XDP_DROP;
    };

    // A solicitation from the unspecified address is duplicate address detection: the
    // answer goes to all nodes and is not "solicited" (RFC 4861 7.2.4).
    let dad = ip6.src == [0u8; 16];
    let (dst_ip, dst_mac) = if dad {
        (ALL_NODES, ALL_NODES_MAC)
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
    let mut frame = NaFrame {
        eth: EthHdr {
            dst: dst_mac,
            src: entry.vmac,
            ethertype: ETH_P_IPV6.to_be_bytes(),
        },
        ip6: Ipv6Hdr {
            version_tc_flow: [0x60, 0, 0, 0],
            payload_len: (NA_ICMP_LEN as u16).to_be_bytes(),
            next_header: IPPROTO_ICMPV6,
            hop_limit: 255,
            src: ns.target,
            dst: dst_ip,
        },
        nd: NdMsg {
            icmp_type: ICMPV6_NEIGHBOR_ADVERT,
            code: 0,
            checksum: [0; 2],
            flags: [flags, 0, 0, 0],
            target: ns.target,
        },
        opt: NdLinkLayerOpt {
            opt_type: ND_OPT_TARGET_LINKADDR,
            len: 1,
            addr: entry.vmac,
        },
    };
    frame.nd.checksum = na_checksum(&frame).to_be_bytes();

    // Resize the frame to exactly the reply: a solicitation for duplicate address detection
    // carries no source link-layer option and is shorter; one with more options is longer.
    let want = core::mem::size_of::<NaFrame>() as i32;
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
    if ip6.hop_limit != 255 || ns.code != 0 || is_group_mac(&eth.src) || ip6.src[0] == 0xff {
        return false;
    }
    // The options fill the payload exactly, none of length zero (the kernel's
    // ndisc_parse_options); a source link-layer address is noted.
    let end = ETH_HLEN + IPV6_HLEN + payload_len;
    let mut off = ETH_HLEN + IPV6_HLEN + core::mem::size_of::<NdMsg>();
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
    if ip6.src == [0u8; 16] {
        return !has_sllao && ip6.dst[..13] == SOLICITED_NODE_PREFIX;
    }
    true
}

/// ICMPv6 checksum of the advertisement: pseudo-header (RFC 8200 8.1) plus the message.
#[inline(always)]
fn na_checksum(frame: &NaFrame) -> u16 {
    let mut sum = csum::add_words(0, &frame.ip6.src);
    sum = csum::add_words(sum, &frame.ip6.dst);
    sum += NA_ICMP_LEN as u32;
    sum += IPPROTO_ICMPV6 as u32;
    sum += u16::from_be_bytes([frame.nd.icmp_type, frame.nd.code]) as u32;
    sum = csum::add_words(sum, &frame.nd.flags);
    sum = csum::add_words(sum, &frame.nd.target);
    sum += u16::from_be_bytes([frame.opt.opt_type, frame.opt.len]) as u32;
    sum = csum::add_words(sum, &frame.opt.addr);
    csum::fold(sum)
}
