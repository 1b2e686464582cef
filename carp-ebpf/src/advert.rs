//! Protocol-112 frames: CARP advertisements.
//!
//! Hand-off design: a valid advertisement for a vhid this carpdev serves is copied into the
//! `carp_adverts` ring buffer (an [`AdvertEvent`]: ifindex, source, TTL, the 36-byte CARP
//! header) and dropped, so the kernel IP stack never touches it and carpd needs no raw
//! receive socket. A ring buffer rather than AF_XDP: adverts are a few per second per vhid,
//! the event is small, one ring serves every carpdev, and carpd waits on it with epoll.
//!
//! Repeats of the current master's advert, as carpd published it, are consumed before the
//! ring (see `fastpath`): a flood cannot crowd them out, and a backup's carpd is not woken
//! for each.
//!
//! Unicast adverts (OpenBSD's `carppeer`: a peer sends to this host's address) take the
//! same checks; they are told apart from multicast ones by the IP destination, and carpd,
//! which knows whether the vhid has peers, drops the ones that came the other way. A unicast
//! advert is only taken when its Ethernet destination is the carpdev's own MAC, i.e. it was
//! sent to this host: a frame a switch flooded towards another host passes on to the stack,
//! which discards it as not ours. No list of this host's addresses is needed for that.
//!
//! Malformed adverts for a served vhid are dropped here and counted by reason, so a flood
//! costs carpd nothing. An advert for a vhid not served here passes untouched: VRRP
//! (keepalived) shares protocol 112 and the multicast groups, and another daemon may need it.
use aya_ebpf::{bindings::xdp_action, programs::XdpContext};
use carp_common::{
    frame::{
        Checksum, be16,
        ethernet::{ETH_HLEN, EthHdr},
        ip::{IPV4_HLEN, IPV6_HLEN, Ipv4Hdr, Ipv6Hdr},
    },
    maps::{AdvertEvent, CarpdevEntry, DataplaneCounters, VHID_STATE_BACKUP},
    wire::{CARP_GROUP_V4, CARP_GROUP_V6, CARP_HEADER_LEN, CARP_TTL, CARP_VERSION},
};

use crate::{
    fastpath,
    log::{self, AdvertDrop, log_decision},
    maps::{ADVERTS, count, vhid_entry},
    packet::read_at,
};

/// An advert as the checks below (and `vrrp`'s) see it, whichever the IP family.
pub(crate) struct Received<'a> {
    pub ifindex: u32,
    pub family: u8,
    pub ttl: u8,
    pub src: [u8; 16],
    /// Not to the CARP group: to this host's address.
    pub unicast: bool,
    pub eth: &'a EthHdr,
    pub payload_off: usize,
    pub payload_len: usize,
}

/// IPv4 frame with protocol 112 (the caller checked the protocol).
#[inline(always)]
pub fn handle_v4(
    ctx: &XdpContext,
    ifindex: u32,
    dev: &CarpdevEntry,
    eth: &EthHdr,
    ip: &Ipv4Hdr,
) -> u32 {
    // Fragments carry no CARP header we could check; adverts are never fragmented.
    if ip.is_fragment() {
        return xdp_action::XDP_PASS;
    }
    let ihl = ip.header_len();
    let total_len = be16(ip.total_len) as usize;
    if ihl < IPV4_HLEN || total_len < ihl {
        return xdp_action::XDP_PASS; // not a valid IPv4 packet: the stack drops it
    }
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&ip.src);
    let rx = Received {
        ifindex,
        family: 4,
        ttl: ip.ttl,
        src,
        unicast: ip.dst != CARP_GROUP_V4,
        eth,
        payload_off: ETH_HLEN + ihl,
        payload_len: total_len - ihl,
    };
    check_and_deliver(ctx, dev, &rx)
}

/// IPv6 frame whose next header is 112 (no extension headers; adverts carry none).
#[inline(always)]
pub fn handle_v6(
    ctx: &XdpContext,
    ifindex: u32,
    dev: &CarpdevEntry,
    eth: &EthHdr,
    ip: &Ipv6Hdr,
) -> u32 {
    let rx = Received {
        ifindex,
        family: 6,
        ttl: ip.hop_limit,
        src: ip.src,
        unicast: ip.dst != CARP_GROUP_V6,
        eth,
        payload_off: ETH_HLEN + IPV6_HLEN,
        payload_len: be16(ip.payload_len) as usize,
    };
    check_and_deliver(ctx, dev, &rx)
}

#[inline(always)]
fn drop_counted(field: fn(&mut DataplaneCounters) -> &mut u64) -> u32 {
    count(field);
    xdp_action::XDP_DROP
}

/// Drops an advert of a served vhid (or one too short to tell), counted and logged.
#[inline(always)]
fn reject(
    ctx: &XdpContext,
    rx: &Received<'_>,
    vhid: u8,
    reason: AdvertDrop,
    field: fn(&mut DataplaneCounters) -> &mut u64,
) -> u32 {
    count(field);
    log_decision!(log::advert_dropped(
        ctx, reason, rx.family, &rx.src, vhid, rx.ifindex
    ));
    xdp_action::XDP_DROP
}

#[inline(always)]
fn check_and_deliver(ctx: &XdpContext, dev: &CarpdevEntry, rx: &Received<'_>) -> u32 {
    // The vhid decides whether the frame is ours at all, so read it before anything else.
    if rx.payload_len < 2 {
        return reject(ctx, rx, 0, AdvertDrop::BadLength, |c| {
            &mut c.advert_bad_length
        });
    }
    // A VRRPv3 advert for a virtual router served here takes VRRP's checks instead.
    if let Some(verdict) = crate::vrrp::check_and_deliver(ctx, dev, rx) {
        return verdict;
    }
    let Some(vhid) = read_at::<u8>(ctx, rx.payload_off + 1) else {
        return reject(ctx, rx, 0, AdvertDrop::BadLength, |c| {
            &mut c.advert_bad_length
        });
    };
    let Some(entry) = vhid_entry(rx.ifindex, vhid) else {
        count(|c| &mut c.advert_passed_unknown_vhid);
        return xdp_action::XDP_PASS;
    };
    // A unicast advert for another host (flooded by a switch): not ours to judge.
    if rx.unicast && rx.eth.dst != dev.mac {
        return xdp_action::XDP_PASS;
    }

    // The checks of OpenBSD's carp_proto_input, in its order.
    if rx.ttl != CARP_TTL {
        return reject(ctx, rx, vhid, AdvertDrop::BadTtl, |c| &mut c.advert_bad_ttl);
    }
    if rx.payload_len < CARP_HEADER_LEN {
        return reject(ctx, rx, vhid, AdvertDrop::BadLength, |c| {
            &mut c.advert_bad_length
        });
    }
    let Some(header) = read_at::<[u8; CARP_HEADER_LEN]>(ctx, rx.payload_off) else {
        return reject(ctx, rx, vhid, AdvertDrop::BadLength, |c| {
            &mut c.advert_bad_length
        });
    };
    // OpenBSD checksums exactly the 36 header bytes (trailing bytes are ignored, not
    // rejected), and checks the version but never the type nibble.
    if Checksum::new().add_words(&header).finish() != 0 {
        return reject(ctx, rx, vhid, AdvertDrop::BadChecksum, |c| {
            &mut c.advert_bad_checksum
        });
    }
    if header[0] >> 4 != CARP_VERSION {
        return reject(ctx, rx, vhid, AdvertDrop::BadVersion, |c| {
            &mut c.advert_bad_version
        });
    }
    if rx.eth.src == dev.mac {
        return reject(ctx, rx, vhid, AdvertDrop::OwnSource, |c| {
            &mut c.advert_own_source
        });
    }
    // Only a BACKUP follows a master: should a published entry outlive its BACKUP state
    // (carpd clears it on every state change), a MASTER or INIT vhid still sees everything.
    if entry.state == VHID_STATE_BACKUP
        && fastpath::consume_master_repeat(rx.ifindex, vhid, rx.family, &rx.src, &header)
    {
        return drop_counted(|c| &mut c.advert_master_fastpath);
    }

    // Written in place in the ring: an event built on the stack and copied would not fit
    // the 512-byte stack beside the rest of the program.
    let Some(mut slot) = ADVERTS.reserve(0) else {
        return reject(ctx, rx, vhid, AdvertDrop::RingFull, |c| {
            &mut c.advert_ring_full
        });
    };
    slot.write(AdvertEvent {
        ifindex: rx.ifindex,
        family: rx.family,
        ttl: rx.ttl,
        unicast: u8::from(rx.unicast),
        _pad: 0,
        src: rx.src,
        src_mac: rx.eth.src,
        _pad2: [0; 2],
        carp: header,
        _pad3: [0; 4],
    });
    slot.submit(0);
    count(|c| &mut c.advert_delivered);
    xdp_action::XDP_DROP
}
