//! Fuzzes the receive path of carpd: `CarpHeader::decode`, `check_advert` (every OpenBSD
//! input check), `verify_delivered`, and the state machine fed with what decodes.
//!
//! Input layout: byte 0 is the received TTL, byte 1 selects how far the bytes are helped past
//! the checks a random input almost never passes (bit 0: fix the checksum, bit 1: also sign
//! with the local key, bit 2: also use our own counter), the rest is the IP payload.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;
use std::time::Duration;

use carp_daemon::proto::{
    CarpAuth, CarpHeader, Event, Families, Family, ForcedState, LocalVhid, Reject, Vhid,
    VhidParams, check_advert, verify_delivered,
};
use libfuzzer_sys::fuzz_target;

const VHID: u8 = 1;
const OWN_COUNTER: u64 = 0x0123_4567_89ab_cdef;

static AUTH: LazyLock<CarpAuth> = LazyLock::new(|| {
    CarpAuth::new(
        "fuzz",
        VHID,
        &[Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 20)],
        &[
            "2001:db8::10".parse::<Ipv6Addr>().unwrap(),
            "fe80::200:5eff:fe00:101".parse::<Ipv6Addr>().unwrap(),
        ],
        None,
    )
    .expect("valid passphrase")
});

fn lookup(vhid: u8) -> Option<LocalVhid<'static>> {
    (vhid == VHID).then(|| LocalVhid {
        auth: &AUTH,
        own_counter: OWN_COUNTER,
    })
}

/// The header fields of the first 36 bytes, whatever their checksum.
fn fields(b: &[u8; 36]) -> CarpHeader {
    let mut counter = [0u8; 8];
    counter.copy_from_slice(&b[8..16]);
    let mut hmac = [0u8; 20];
    hmac.copy_from_slice(&b[16..36]);
    CarpHeader {
        version: b[0] >> 4,
        kind: b[0] & 0x0f,
        vhid: b[1],
        advskew: b[2],
        authlen: b[3],
        demote: b[4],
        advbase: b[5],
        counter: u64::from_be_bytes(counter),
        hmac,
    }
}

fn check(payload: &[u8], ttl: u8) {
    let checked = check_advert(payload, ttl, lookup);
    let delivered = verify_delivered(payload, &AUTH, OWN_COUNTER);
    match CarpHeader::decode(payload) {
        Ok(h) => {
            // Whatever decodes re-encodes to the same fields and a valid checksum.
            assert_eq!(CarpHeader::decode(&h.encode()), Ok(h));
            if let Ok(accepted) = checked {
                assert_eq!(accepted, h);
                assert_eq!(ttl, 255);
                assert_eq!(h.vhid, VHID);
                assert_ne!(h.counter, OWN_COUNTER);
                assert!(AUTH.verify(h.counter, &h.hmac));
            }
            if h.vhid == VHID && ttl == 255 {
                assert_eq!(checked, delivered);
            }
            drive_fsm(&h);
        }
        Err(e) => {
            let e = Reject::from(e);
            assert!(matches!(e, Reject::TooShort | Reject::BadChecksum));
            assert_eq!(delivered, Err(e));
            if ttl == 255 {
                assert_eq!(checked, Err(e));
            }
        }
    }
}

/// Feeds the advertised values to a backup and to a master: nothing may panic, and the
/// state machine must keep a deadline while it runs.
fn drive_fsm(h: &CarpHeader) {
    for force_master in [false, true] {
        let params = VhidParams {
            vhid: VHID,
            advbase: 1,
            advskew: 0,
        };
        let Ok(mut v) = Vhid::new(params, true, u64::from(h.advskew)) else {
            return;
        };
        let t = Duration::from_secs(1);
        v.handle(t, Event::Up(Families::BOTH));
        if force_master {
            v.handle(t, Event::ForceState(ForcedState::Master));
        }
        v.handle(t, Event::DemoteChanged(h.demote / 2));
        v.handle(t, Event::advert(Family::V4, h));
        v.handle(t, Event::advert(Family::V6, h));
        assert!(v.next_deadline().is_some());
        v.handle(t + Duration::from_secs(300), Event::TimerExpired);
    }
}

fuzz_target!(|data: &[u8]| {
    let [ttl, mode, payload @ ..] = data else {
        return;
    };
    check(payload, *ttl);

    // Help the input past the checksum (and optionally the HMAC) to reach the later checks.
    let Some(first) = payload.first_chunk::<36>() else {
        return;
    };
    if mode & 1 == 0 {
        return;
    }
    let mut h = fields(first);
    if mode & 4 != 0 {
        h.counter = OWN_COUNTER;
    }
    if mode & 2 != 0 {
        h.hmac = AUTH.sign(h.counter);
    }
    let mut fixed = payload.to_vec();
    fixed[..36].copy_from_slice(&h.encode());
    check(&fixed, *ttl);
});
