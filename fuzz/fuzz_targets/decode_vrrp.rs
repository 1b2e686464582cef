//! Fuzzes VRRPv3's receive path: `VrrpAdvert::decode` (both IPv4 checksum forms, IPv6),
//! `encode` of whatever decodes, and the virtual router's election fed with it.
//!
//! Input layout: byte 0 selects the family (bit 0: IPv6) and how far the bytes are helped
//! past the checksum a random input almost never passes (bit 1: fix it with the
//! pseudo-header, bit 2: instead in RFC 9568's message-only form, IPv4 only); byte 1 is our
//! own priority (0 read as 1); the rest is the IP payload.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use carp_daemon::proto::fsm::{Family, State};
use carp_daemon::proto::vrrp::{
    ChecksumForm, IpEnds, VirtualRouter, VrrpAddresses, VrrpAdvert, VrrpDecodeError, VrrpEvent,
    VrrpParams,
};
use libfuzzer_sys::fuzz_target;

const HEADER_LEN: usize = 8;

fn ends(v6: bool) -> IpEnds {
    if v6 {
        IpEnds {
            src: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x11)),
            dst: IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12)),
        }
    } else {
        IpEnds {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11)),
            dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)),
        }
    }
}

/// The one's complement checksum of `data` after `initial`.
fn sum(initial: u32, data: &[u8]) -> u16 {
    let mut acc = initial;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        acc += u32::from(word);
    }
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The payload with its checksum made valid in `form` over the first `len` bytes.
fn with_checksum(payload: &[u8], len: usize, ends: IpEnds, form: ChecksumForm) -> Vec<u8> {
    let mut fixed = payload.to_vec();
    fixed[6..8].copy_from_slice(&[0, 0]);
    let mut pseudo = Vec::new();
    if form == ChecksumForm::PseudoHeader || ends.src.is_ipv6() {
        match (ends.src, ends.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                pseudo.extend_from_slice(&s.octets());
                pseudo.extend_from_slice(&d.octets());
                pseudo.extend_from_slice(&[0, 112]);
                pseudo.extend_from_slice(&(len as u16).to_be_bytes());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                pseudo.extend_from_slice(&s.octets());
                pseudo.extend_from_slice(&d.octets());
                pseudo.extend_from_slice(&(len as u32).to_be_bytes());
                pseudo.extend_from_slice(&[0, 0, 0, 112]);
            }
            _ => unreachable!("ends of one family"),
        }
    }
    let initial = u32::from(!sum(0, &pseudo));
    let checksum = sum(initial, &fixed[..len]);
    fixed[6..8].copy_from_slice(&checksum.to_be_bytes());
    fixed
}

fn check(payload: &[u8], ends: IpEnds, own_priority: u8) {
    let v6 = ends.src.is_ipv6();
    match VrrpAdvert::decode(payload, ends) {
        Ok((advert, form)) => {
            let count = usize::from(payload[3]);
            assert_eq!(advert.addresses.len(), count);
            assert_eq!(matches!(advert.addresses, VrrpAddresses::V6(_)), v6);
            assert!(advert.max_advert_int <= 0x0fff);
            assert_eq!((advert.vrid, advert.priority), (payload[1], payload[2]));
            if v6 {
                assert_eq!(form, ChecksumForm::PseudoHeader);
            }
            // Whatever decodes (with an address) re-encodes to an advert that decodes the same.
            if count > 0 {
                let bytes = advert.encode(ends, form).expect("a decoded advert encodes");
                let (again, _) = VrrpAdvert::decode(&bytes, ends).expect("re-decodes");
                assert_eq!(again, advert);
            }
            elect(&advert, ends.src, own_priority);
        }
        Err(VrrpDecodeError::TooShort) => {
            let need = payload.get(3).map_or(HEADER_LEN, |n| {
                HEADER_LEN + usize::from(*n) * if v6 { 16 } else { 4 }
            });
            assert!(payload.len() < need);
        }
        Err(VrrpDecodeError::BadVersion(v)) => assert_ne!(v, 3),
        Err(VrrpDecodeError::BadType(t)) => assert_ne!(t, 1),
        Err(VrrpDecodeError::BadChecksum) => {}
        Err(VrrpDecodeError::MixedFamilies) => panic!("the ends are of one family"),
    }
}

/// Feeds the advert to a backup and to a master of its VRID: nothing may panic, a running
/// router always has a deadline, and it is in a state the RFC knows.
fn elect(advert: &VrrpAdvert, src: IpAddr, own_priority: u8) {
    let family = if src.is_ipv6() {
        Family::V6
    } else {
        Family::V4
    };
    let primary = if src.is_ipv6() {
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0x22))
    } else {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 22))
    };
    let params = VrrpParams {
        vrid: advert.vrid.max(1),
        priority: own_priority.max(1),
        advert_interval: 100,
        preempt: advert.priority & 1 == 0,
        accept_mode: false,
    };
    let Ok(mut router) = VirtualRouter::new(params, family) else {
        panic!("valid parameters refused: {params:?}");
    };
    let mut now = Duration::from_secs(1);
    router.handle(now, VrrpEvent::Up { primary });
    for _ in 0..2 {
        router.handle(
            now,
            VrrpEvent::AdvertReceived {
                priority: advert.priority,
                max_advert_int: advert.max_advert_int,
                src,
            },
        );
        assert_ne!(router.state(), State::Init);
        let deadline = router
            .next_deadline()
            .expect("a running router has a deadline");
        assert!(deadline >= now, "deadline {deadline:?} before now {now:?}");
        // Its master-down or advert timer fires: it takes over or advertises.
        now = deadline;
        router.handle(now, VrrpEvent::TimerExpired);
        assert!(router.next_deadline().is_some());
    }
    router.handle(now, VrrpEvent::Shutdown);
    assert_eq!(router.state(), State::Init);
}

fuzz_target!(|data: &[u8]| {
    let [mode, own_priority, payload @ ..] = data else {
        return;
    };
    let v6 = mode & 1 != 0;
    let ends = ends(v6);
    check(payload, ends, *own_priority);

    // Help the input past the checksum to reach the election.
    let Some(count) = payload.get(3) else {
        return;
    };
    let len = HEADER_LEN + usize::from(*count) * if v6 { 16 } else { 4 };
    if payload.len() < len {
        return;
    }
    let form = if mode & 2 != 0 {
        ChecksumForm::PseudoHeader
    } else if mode & 4 != 0 && !v6 {
        ChecksumForm::MessageOnly
    } else {
        return;
    };
    check(
        &with_checksum(payload, len, ends, form),
        ends,
        *own_priority,
    );
});
