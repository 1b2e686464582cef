//! The receive path of an advertisement: every check OpenBSD applies, in its order, and the
//! typed reason for each drop.
//!
//! OpenBSD (`carp_proto_input_if`, `carp6_proto_input_if`, `carp_proto_input_c`, ip_carp.c
//! 1.370) checks, and counts on failure:
//!
//! 1. the TTL / hop limit is 255 (`carps_badttl`);
//! 2. the packet holds the IP header plus 36 bytes (`carps_badlen`);
//! 3. the Internet checksum over the 36 CARP bytes (`carps_badsum`);
//! 4. a vhid with that number is configured on the receiving carpdev and its carp interface
//!    is UP and RUNNING (`carps_badvhid`);
//! 5. the version is 2 (`carps_badver`);
//! 6. the HMAC matches one of the two accepted variants (`carps_badauth`);
//! 7. the counter differs from the one this host sends for the vhid: equality means our own
//!    advert came back ("replay or network loop detected", also counted as `carps_badauth`).
//!
//! Nothing else is checked. In particular OpenBSD does NOT check the type nibble or authlen,
//! so neither is a reason here, and there is no "counter must increase" rule: OpenBSD sends one
//! random counter per vhid forever, ucarp a new one per advert (random until it hears a peer,
//! then counting up from the peer's), so only equality with our own is meaningful.
use super::hmac::CarpAuth;
use super::packet::{CarpHeader, DecodeError};
use carp_common::wire::{CARP_TTL, CARP_VERSION};

/// Why a received advertisement was dropped. One variant per counter, in the order the checks
/// run; [`as_str`](Self::as_str) gives the stable counter name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
pub enum Reject {
    /// Received on an interface that is not a carp interface or carpdev (`carps_badif`).
    /// Never returned by this module: it is decided by whoever owns the socket or the XDP
    /// hook, and listed here so every input counter shares one enum.
    #[error("packet received on a non-carp interface")]
    BadInterface,
    /// TTL / hop limit other than 255 (`carps_badttl`): the sender is not on this link.
    #[error("wrong TTL")]
    BadTtl,
    /// Fewer than 36 bytes after the IP header (`carps_badlen`).
    #[error("packet shorter than the CARP header")]
    TooShort,
    /// The Internet checksum over the 36 header bytes is wrong (`carps_badsum`).
    #[error("bad checksum")]
    BadChecksum,
    /// No vhid with that number is configured here, or its interface is not running
    /// (`carps_badvhid`). On Linux such a packet may be another router's VRRP advert (same
    /// protocol number, group and first byte): count it, but let the stack have it.
    #[error("unknown vhid")]
    UnknownVhid,
    /// Version nibble other than 2 (`carps_badver`); VRRPv3 lands here.
    #[error("bad version")]
    BadVersion,
    /// Neither HMAC variant matches (`carps_badauth`): wrong passphrase, different address
    /// list, or not CARP at all.
    #[error("bad authentication")]
    BadAuth,
    /// The counter equals the one this host sends for the vhid: our own advert came back
    /// (OpenBSD: "replay or network loop detected", counted under `carps_badauth`; it counts
    /// and logs it only on IFF_SIMPLEX carpdevs, which every Ethernet is).
    #[error("replay or network loop detected")]
    Loop,
}

impl Reject {
    /// Every reason, in check order.
    pub const ALL: [Reject; 8] = [
        Reject::BadInterface,
        Reject::BadTtl,
        Reject::TooShort,
        Reject::BadChecksum,
        Reject::UnknownVhid,
        Reject::BadVersion,
        Reject::BadAuth,
        Reject::Loop,
    ];

    /// A stable, short name for counters and logs, OpenBSD's `carps_*` name where there is
    /// one (`netstat -s -p carp` prints these counters).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reject::BadInterface => "badif",
            Reject::BadTtl => "badttl",
            Reject::TooShort => "badlen",
            Reject::BadChecksum => "badsum",
            Reject::UnknownVhid => "badvhid",
            Reject::BadVersion => "badver",
            Reject::BadAuth => "badauth",
            Reject::Loop => "loop",
        }
    }
}

impl From<DecodeError> for Reject {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::TooShort => Reject::TooShort,
            DecodeError::BadChecksum => Reject::BadChecksum,
        }
    }
}

/// What the receive path needs to know about a locally configured vhid.
#[derive(Debug, Clone, Copy)]
pub struct LocalVhid<'a> {
    /// Its HMAC context (passphrase, vhid, addresses).
    pub auth: &'a CarpAuth,
    /// The counter this host puts in its own adverts for the vhid.
    pub own_counter: u64,
}

/// Runs every receive check of OpenBSD, in its order, on one received advert.
///
/// `payload` is the IP payload (everything after the IPv4 header with options, or after the
/// IPv6 header chain), `ttl` the received TTL or hop limit, and `lookup` finds the local vhid
/// by number; it must return `None` for a vhid that is configured but whose interface is not
/// up and running, as OpenBSD counts both as `badvhid`.
///
/// Returns the decoded header once it is authenticated and is not our own. The caller feeds
/// its `advbase`, `advskew` and `demote` to the state machine.
pub fn check_advert<'a>(
    payload: &[u8],
    ttl: u8,
    lookup: impl FnOnce(u8) -> Option<LocalVhid<'a>>,
) -> Result<CarpHeader, Reject> {
    if ttl != CARP_TTL {
        return Err(Reject::BadTtl);
    }
    let header = CarpHeader::decode(payload)?;
    let local = lookup(header.vhid).ok_or(Reject::UnknownVhid)?;
    authenticate(&header, local.auth, local.own_counter)?;
    Ok(header)
}

/// The checks left for an advert the XDP program already passed: it checked the TTL, the
/// length, the checksum and that the vhid is served, and hands over the 36 header bytes.
/// Length and checksum are checked again (36 bytes, cheap), then version, HMAC and loop.
pub fn verify_delivered(
    carp: &[u8],
    auth: &CarpAuth,
    own_counter: u64,
) -> Result<CarpHeader, Reject> {
    let header = CarpHeader::decode(carp)?;
    authenticate(&header, auth, own_counter)?;
    Ok(header)
}

/// Steps 5 to 7: version, HMAC, loop.
fn authenticate(header: &CarpHeader, auth: &CarpAuth, own_counter: u64) -> Result<(), Reject> {
    if header.version != CARP_VERSION {
        return Err(Reject::BadVersion);
    }
    if !auth.verify(header.counter, &header.hmac) {
        return Err(Reject::BadAuth);
    }
    if header.counter == own_counter {
        return Err(Reject::Loop);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;
    use std::net::Ipv4Addr;

    const OWN: u64 = 0x1111_2222_3333_4444;
    const PEER: u64 = 0x5555_6666_7777_8888;

    fn auth() -> CarpAuth {
        CarpAuth::new("pass", 5, &[Ipv4Addr::new(192, 0, 2, 1)], &[], None).unwrap()
    }

    fn advert(auth: &CarpAuth, counter: u64) -> CarpHeader {
        CarpHeader::advertisement(5, 1, 0, 0, counter, auth.sign(counter))
    }

    fn check(payload: &[u8], ttl: u8, auth: &CarpAuth) -> Result<CarpHeader, Reject> {
        check_advert(payload, ttl, |vhid| {
            (vhid == 5).then_some(LocalVhid {
                auth,
                own_counter: OWN,
            })
        })
    }

    #[test]
    fn names_are_unique_and_stable() {
        let names: HashSet<_> = Reject::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), 8);
        assert_eq!(Reject::Loop.as_str(), "loop");
        assert_eq!(Reject::BadAuth.to_string(), "bad authentication");
    }

    #[test]
    fn accepts_a_good_advert() {
        let a = auth();
        let h = advert(&a, PEER);
        assert_eq!(check(&h.encode(), 255, &a), Ok(h));
        assert_eq!(verify_delivered(&h.encode(), &a, OWN), Ok(h));
    }

    #[test]
    fn each_reject_in_order() {
        let a = auth();
        let good = advert(&a, PEER);
        let bytes = good.encode();

        assert_eq!(check(&bytes, 64, &a), Err(Reject::BadTtl));
        // TTL comes before length.
        assert_eq!(check(&bytes[..10], 1, &a), Err(Reject::BadTtl));
        assert_eq!(check(&bytes[..35], 255, &a), Err(Reject::TooShort));

        let mut bad_sum = bytes;
        bad_sum[6] ^= 0xff;
        assert_eq!(check(&bad_sum, 255, &a), Err(Reject::BadChecksum));

        // The vhid lookup comes before the version check (VRRPv3 for another vhid is badvhid).
        let mut other = good;
        other.vhid = 6;
        other.version = 3;
        assert_eq!(check(&other.encode(), 255, &a), Err(Reject::UnknownVhid));

        let mut v3 = good;
        v3.version = 3;
        assert_eq!(check(&v3.encode(), 255, &a), Err(Reject::BadVersion));

        let mut forged = good;
        forged.hmac[0] ^= 1;
        assert_eq!(check(&forged.encode(), 255, &a), Err(Reject::BadAuth));

        let own = advert(&a, OWN);
        assert_eq!(check(&own.encode(), 255, &a), Err(Reject::Loop));
        assert_eq!(verify_delivered(&own.encode(), &a, OWN), Err(Reject::Loop));
    }

    #[test]
    fn loop_is_checked_after_auth() {
        // A forged packet that carries our counter is bad auth, not a loop.
        let a = auth();
        let mut h = advert(&a, OWN);
        h.hmac = [0; 20];
        assert_eq!(check(&h.encode(), 255, &a), Err(Reject::BadAuth));
    }

    #[test]
    fn type_and_authlen_are_not_checked() {
        // OpenBSD's carp_proto_input_c never looks at them; the HMAC covers the constants
        // 2 and 1, not the packet's nibbles.
        let a = auth();
        let mut h = advert(&a, PEER);
        h.kind = 0xf;
        h.authlen = 0;
        assert_eq!(check(&h.encode(), 255, &a), Ok(h));
    }

    #[test]
    fn fields_outside_the_hmac_are_not_authenticated() {
        // advbase, advskew and demote are not covered (OpenBSD); they reach the FSM as sent.
        let a = auth();
        let mut h = advert(&a, PEER);
        h.advbase = 255;
        h.advskew = 255;
        h.demote = 200;
        assert_eq!(check(&h.encode(), 255, &a), Ok(h));
    }

    #[test]
    fn any_other_counter_is_accepted() {
        // No "must increase" rule: a peer may send the same counter forever (OpenBSD) or
        // a lower one than last time (ucarp after a restart).
        let a = auth();
        for c in [PEER, PEER, 1, 0, u64::MAX, OWN - 1] {
            let h = advert(&a, c);
            assert_eq!(check(&h.encode(), 255, &a), Ok(h));
        }
    }

    proptest! {
        #[test]
        fn check_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80), ttl in any::<u8>()) {
            let a = auth();
            let _ = check(&bytes, ttl, &a);
            let _ = verify_delivered(&bytes, &a, OWN);
        }
    }
}
