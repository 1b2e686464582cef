//! Protocol-112 frames of VRRPv3 (RFC 5798/9568) for a virtual router carpd serves here.
//!
//! VRRP shares CARP's protocol number and groups; a frame is VRRP when its version nibble is
//! 3 and `vrrp_routers` holds its (carpdev, VRID, family): then it takes the checks below
//! instead of CARP's, and is handed to carpd through the same ring (`AdvertEvent` with the
//! 8-byte VRRP header in place of the CARP one). Anything else goes on to `advert` as before,
//! so a version-3 advert for a CARP vhid is still CARP's bad version, and one for a VRID not
//! served here reaches the stack untouched (keepalived may need it).
//!
//! The checksum covers the header and every address, so the addresses are summed here, up to
//! `VRRP_XDP_MAX_ADDRESSES` of them (a bounded loop); an IPv4 advert passes with or without
//! the pseudo-header (keepalived/FreeBSD, RFC 9568), an IPv6 one with it.
//!
//! Accept mode (RFC 5798 6.4.3, RFC 9568): a master that is neither the address owner nor in
//! accept mode must not accept packets addressed to its virtual addresses. The program
//! enforces it where it is cheap: a frame to the virtual MAC of a live master whose entry
//! carries `VHID_FLAG_VRRP_NO_ACCEPT` (one bit of the entry already read for the virtual-MAC
//! check, so CARP's frames pay nothing) is dropped when its IPv4/IPv6 destination is one of
//! the router's addresses ([`refuses`]: one address lookup), neighbour discovery excepted.
//! Packets to those addresses through any other destination MAC (the carpdev's own) are not
//! looked at.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use carp_common::{
    frame::{
        Checksum,
        checksum::ipv6_pseudo_header,
        ethernet::{ETH_HLEN, ETH_P_IP, ETH_P_IPV6},
        ip::{IPPROTO_ICMPV6, IPV6_HLEN},
    },
    maps::{AdvertEvent, CarpdevEntry, VhidKey, Vip4Key, Vip6Key, VrrpCounters},
    vrrp::{VRRP_HEADER_LEN, VRRP_VERSION, VRRP_XDP_MAX_ADDRESSES, vrrp_slot},
    wire::{CARP_GROUP_V4, CARP_GROUP_V6, CARP_TTL, IPPROTO_CARP},
};

use crate::{
    advert::Received,
    log::{self, AdvertDrop, log_decision},
    maps::{ADVERTS, VIP4, VIP6, VRRP_COUNTERS, VRRP_ROUTERS},
    packet::read_at,
};

/// ICMPv6 neighbour discovery (RFC 4861: router/neighbour solicitation and advertisement,
/// redirect): answered and passed whatever the accept mode.
const ICMPV6_ND_FIRST: u8 = 133;
const ICMPV6_ND_LAST: u8 = 137;
/// Offsets in the frame of the IPv4 destination, the IPv6 next header and destination.
const IPV4_DST_OFF: usize = ETH_HLEN + 16;
const IPV6_NEXT_HEADER_OFF: usize = ETH_HLEN + 6;
const IPV6_DST_OFF: usize = ETH_HLEN + 24;

/// Bumps one VRRP counter of this CPU's copy.
#[inline(always)]
fn count(field: fn(&mut VrrpCounters) -> &mut u64) {
    if let Some(counters) = VRRP_COUNTERS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this program on this CPU writes it while we run.
        *field(unsafe { &mut *counters }) += 1;
    }
}

/// Drops an advert of a router served here, counted and logged as CARP's are.
#[inline(always)]
fn reject(
    ctx: &XdpContext,
    rx: &Received<'_>,
    vrid: u8,
    reason: AdvertDrop,
    field: fn(&mut VrrpCounters) -> &mut u64,
) -> u32 {
    count(field);
    log_decision!(log::vrrp_dropped(
        ctx, reason, rx.family, &rx.src, vrid, rx.ifindex
    ));
    xdp_action::XDP_DROP
}

/// The verdict on a VRRPv3 advert for a virtual router served here; `None` when the frame
/// is not one (CARP's rules apply).
#[inline(always)]
pub fn check_and_deliver(ctx: &XdpContext, dev: &CarpdevEntry, rx: &Received<'_>) -> Option<u32> {
    let first = read_at::<[u8; 2]>(ctx, rx.payload_off)?;
    if first[0] >> 4 != VRRP_VERSION {
        return None;
    }
    let v6 = rx.family == 6;
    let key = VhidKey {
        ifindex: rx.ifindex,
        vhid: vrrp_slot(first[1], v6),
    };
    // SAFETY: presence only; the value is not read.
    if unsafe { VRRP_ROUTERS.get(key) }.is_some() {
        return Some(check(ctx, dev, rx, first[1], v6));
    }
    // An IPv6 advert whose VRID only our IPv4 router has (its state sits where a CARP vhid
    // of that number would): another router's, not a bad CARP advert.
    let ipv4_router = VhidKey {
        ifindex: rx.ifindex,
        vhid: vrrp_slot(first[1], false),
    };
    // SAFETY: presence only.
    if v6 && unsafe { VRRP_ROUTERS.get(ipv4_router) }.is_some() {
        crate::maps::count(|c| &mut c.advert_passed_unknown_vhid);
        return Some(xdp_action::XDP_PASS);
    }
    None
}

#[inline(always)]
fn check(ctx: &XdpContext, dev: &CarpdevEntry, rx: &Received<'_>, vrid: u8, v6: bool) -> u32 {
    if rx.unicast {
        count(|c| &mut c.vrrp_passed_unicast);
        return xdp_action::XDP_PASS;
    }
    if rx.ttl != CARP_TTL {
        return reject(ctx, rx, vrid, AdvertDrop::BadTtl, |c| &mut c.vrrp_bad_ttl);
    }
    let Some(header) = read_at::<[u8; VRRP_HEADER_LEN]>(ctx, rx.payload_off) else {
        return reject(ctx, rx, vrid, AdvertDrop::BadLength, |c| {
            &mut c.vrrp_bad_length
        });
    };
    let addresses = header[3] as usize;
    let address_len = if v6 { 16 } else { 4 };
    let len = VRRP_HEADER_LEN + addresses * address_len;
    if addresses == 0 || addresses > VRRP_XDP_MAX_ADDRESSES || rx.payload_len < len {
        return reject(ctx, rx, vrid, AdvertDrop::BadLength, |c| {
            &mut c.vrrp_bad_length
        });
    }
    let Some(message) = message_sum(ctx, rx.payload_off, &header, addresses, v6) else {
        return reject(ctx, rx, vrid, AdvertDrop::BadLength, |c| {
            &mut c.vrrp_bad_length
        });
    };
    let mut message_only = false;
    let valid = if v6 {
        let pseudo = ipv6_pseudo_header(&rx.src, &CARP_GROUP_V6, len as u32, IPPROTO_CARP);
        pseudo.merge(message).finish() == 0
    } else {
        let mut src = [0u8; 4];
        src.copy_from_slice(&rx.src[..4]);
        let with_pseudo = Checksum::new()
            .add_words(&src)
            .add_words(&CARP_GROUP_V4)
            .add_u16(IPPROTO_CARP as u16)
            .add_u16(len as u16)
            .merge(message);
        if with_pseudo.finish() == 0 {
            true
        } else {
            message_only = Checksum::new().merge(message).finish() == 0;
            message_only
        }
    };
    if !valid {
        return reject(ctx, rx, vrid, AdvertDrop::BadChecksum, |c| {
            &mut c.vrrp_bad_checksum
        });
    }
    if rx.eth.src == dev.mac {
        return reject(ctx, rx, vrid, AdvertDrop::OwnSource, |c| {
            &mut c.vrrp_own_source
        });
    }
    let Some(mut slot) = ADVERTS.reserve(0) else {
        return reject(ctx, rx, vrid, AdvertDrop::RingFull, |c| {
            &mut c.vrrp_ring_full
        });
    };
    let mut carp = [0u8; 36];
    carp[..VRRP_HEADER_LEN].copy_from_slice(&header);
    slot.write(AdvertEvent {
        ifindex: rx.ifindex,
        family: rx.family,
        ttl: rx.ttl,
        unicast: 0,
        _pad: 0,
        src: rx.src,
        src_mac: rx.eth.src,
        _pad2: [0; 2],
        carp,
        _pad3: [0; 4],
    });
    slot.submit(0);
    count(|c| &mut c.vrrp_delivered);
    if message_only {
        count(|c| &mut c.vrrp_checksum_message_only);
    }
    xdp_action::XDP_DROP
}

/// The one's complement sum of the header and the `addresses` addresses after it;
/// `None` if the frame ends early.
#[inline(always)]
fn message_sum(
    ctx: &XdpContext,
    off: usize,
    header: &[u8; VRRP_HEADER_LEN],
    addresses: usize,
    v6: bool,
) -> Option<Checksum> {
    let mut sum = Checksum::new().add_words(header);
    let base = off + VRRP_HEADER_LEN;
    for i in 0..VRRP_XDP_MAX_ADDRESSES {
        if i >= addresses {
            break;
        }
        sum = if v6 {
            sum.add_words(&read_at::<[u8; 16]>(ctx, base + i * 16)?)
        } else {
            sum.add_words(&read_at::<[u8; 4]>(ctx, base + i * 4)?)
        };
    }
    Some(sum)
}

/// Whether a frame to the virtual MAC of router `slot`, whose entry says it does not accept
/// (not the owner, accept mode off), is an IP packet addressed to one of the router's own
/// addresses (an entry of `carp_vip4`/`carp_vip6` under `slot`), other than neighbour
/// discovery: one such the router must not accept (RFC 5798 6.4.3).
#[inline(always)]
pub fn refuses(ctx: &XdpContext, ifindex: u32, slot: u32, ethertype: u16) -> bool {
    match ethertype {
        ETH_P_IP => {
            let Some(addr) = read_at::<[u8; 4]>(ctx, IPV4_DST_OFF) else {
                return false;
            };
            // SAFETY: one field read at once.
            unsafe { VIP4.get(Vip4Key { ifindex, addr }) }.is_some_and(|v| v.vhid == slot)
        }
        ETH_P_IPV6 => {
            let Some([next_header]) = read_at::<[u8; 1]>(ctx, IPV6_NEXT_HEADER_OFF) else {
                return false;
            };
            if next_header == IPPROTO_ICMPV6 {
                let Some([icmp_type]) = read_at::<[u8; 1]>(ctx, ETH_HLEN + IPV6_HLEN) else {
                    return false;
                };
                if (ICMPV6_ND_FIRST..=ICMPV6_ND_LAST).contains(&icmp_type) {
                    return false;
                }
            }
            let Some(addr) = read_at::<[u8; 16]>(ctx, IPV6_DST_OFF) else {
                return false;
            };
            // SAFETY: one field read at once.
            unsafe { VIP6.get(Vip6Key { ifindex, addr }) }.is_some_and(|v| v.vhid == slot)
        }
        _ => false,
    }
}

/// Drops a packet [`refuses`] found, counted (`vrrp_dropped_accept_mode`) and logged.
#[inline(always)]
pub fn drop_not_accepted(ctx: &XdpContext, ifindex: u32, slot: u32, ethertype: u16) -> u32 {
    count(|c| &mut c.vrrp_dropped_accept_mode);
    log_decision!(log::vrrp_not_accepted(
        ctx,
        ethertype == ETH_P_IPV6,
        slot as u8,
        ifindex
    ));
    xdp_action::XDP_DROP
}
