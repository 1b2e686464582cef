//! The 36-byte CARP advertisement header: encode and decode, its checksum, and the timing its
//! `advbase`/`advskew` fields stand for.
//!
//! Layout (OpenBSD `struct carp_header`, all multi-byte fields in network byte order):
//!
//! | byte  | field                                               |
//! |-------|-----------------------------------------------------|
//! | 0     | version (high nibble) = 2, type (low nibble) = 1    |
//! | 1     | vhid                                                |
//! | 2     | advskew                                             |
//! | 3     | authlen = 7 (counter + HMAC in 32-bit words)        |
//! | 4     | demote                                              |
//! | 5     | advbase                                             |
//! | 6-7   | Internet checksum                                   |
//! | 8-15  | 64-bit counter (the replay/loop cookie)             |
//! | 16-35 | HMAC-SHA1 digest                                    |
//!
//! # Checksum coverage
//! OpenBSD's `carp_send_ad` checksums exactly the 36 header bytes (`len - sizeof(*ip)` with
//! `len = sizeof(*ip) + sizeof(ch)`), and its receive paths check exactly 36 bytes too
//! (`carp_proto_input_if`: `len - iplen` with `len = iplen + sizeof(*ch)`;
//! `carp6_proto_input_if`: `sizeof(*ch)`), for IPv6 without a pseudo-header. Bytes after the
//! header are neither checksummed nor rejected. So [`CarpHeader::decode`] takes the whole IP
//! payload, requires at least 36 bytes, and checks the checksum over the first 36 only, as the
//! source does (not over the whole IP payload).
use std::time::Duration;

use carp_common::{
    frame::internet_checksum,
    wire::{CARP_AUTHLEN, CARP_HEADER_LEN, CARP_HMAC_LEN, CARP_TYPE_ADVERTISEMENT, CARP_VERSION},
};

/// Why 36 bytes are not a CARP header. The receive path counts each as its
/// [`Reject`](super::Reject) (`carps_badlen`, `carps_badsum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than 36 bytes.
    #[error("packet shorter than the CARP header")]
    TooShort,
    /// The Internet checksum over the 36 header bytes is wrong.
    #[error("bad checksum")]
    BadChecksum,
}

/// A CARP header as it is on the wire, fields unvalidated beyond length and checksum.
///
/// `version`, `kind` and `authlen` are kept as received: OpenBSD checks the version only
/// after the vhid lookup (so the counters come out in its order, see
/// [`check_advert`](super::check_advert)) and never checks the type or authlen at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CarpHeader {
    /// High nibble of byte 0; 2 for CARP.
    pub version: u8,
    /// Low nibble of byte 0 (`carp_type`); 1 (advertisement) is the only type defined.
    pub kind: u8,
    pub vhid: u8,
    pub advskew: u8,
    /// Counter plus digest length in 32-bit words; 7 in every implementation.
    pub authlen: u8,
    /// The sender's demote count (OpenBSD: the sum over its groups, capped at 255).
    pub demote: u8,
    pub advbase: u8,
    /// The 8 counter bytes read as a big-endian integer. OpenBSD treats them as opaque (a
    /// random cookie fixed per vhid); ucarp writes a big-endian integer. Either way the HMAC
    /// covers the bytes as they are on the wire, which `to_be_bytes` gives back.
    pub counter: u64,
    /// HMAC-SHA1 over the message described in [`super::hmac`].
    pub hmac: [u8; CARP_HMAC_LEN],
}

impl CarpHeader {
    /// An advertisement (version 2, type 1, authlen 7) with the given fields.
    pub fn advertisement(
        vhid: u8,
        advbase: u8,
        advskew: u8,
        demote: u8,
        counter: u64,
        hmac: [u8; CARP_HMAC_LEN],
    ) -> Self {
        Self {
            version: CARP_VERSION,
            kind: CARP_TYPE_ADVERTISEMENT,
            vhid,
            advskew,
            authlen: CARP_AUTHLEN,
            demote,
            advbase,
            counter,
            hmac,
        }
    }

    /// The 36 wire bytes, checksum filled in. Nibbles wider than 4 bits are truncated.
    pub fn encode(&self) -> [u8; CARP_HEADER_LEN] {
        let mut b = [0u8; CARP_HEADER_LEN];
        b[0] = (self.version << 4) | (self.kind & 0x0f);
        b[1] = self.vhid;
        b[2] = self.advskew;
        b[3] = self.authlen;
        b[4] = self.demote;
        b[5] = self.advbase;
        b[8..16].copy_from_slice(&self.counter.to_be_bytes());
        b[16..36].copy_from_slice(&self.hmac);
        let sum = internet_checksum(&b);
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Parses the header at the start of an IP payload.
    ///
    /// Fails, in OpenBSD's order: [`DecodeError::TooShort`] below 36 bytes,
    /// [`DecodeError::BadChecksum`] when the 36 header bytes do not sum to zero. Trailing bytes
    /// are ignored, as OpenBSD ignores them.
    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let Some(b) = payload.first_chunk::<CARP_HEADER_LEN>() else {
            return Err(DecodeError::TooShort);
        };
        if internet_checksum(b) != 0 {
            return Err(DecodeError::BadChecksum);
        }
        let (counter, hmac) = b[8..].split_at(8);
        let mut counter_bytes = [0u8; 8];
        counter_bytes.copy_from_slice(counter);
        let mut digest = [0u8; CARP_HMAC_LEN];
        digest.copy_from_slice(hmac);
        Ok(Self {
            version: b[0] >> 4,
            kind: b[0] & 0x0f,
            vhid: b[1],
            advskew: b[2],
            authlen: b[3],
            demote: b[4],
            advbase: b[5],
            counter: u64::from_be_bytes(counter_bytes),
            hmac: digest,
        })
    }

    /// The advertisement interval this header announces; see [`interval`].
    pub fn interval(&self) -> Duration {
        interval(self.advbase, self.advskew)
    }

    /// True for the advert a master sends when it leaves (advbase 255, advskew 255).
    pub fn is_bow_out(&self) -> bool {
        self.advbase == carp_common::wire::CARP_BOW_OUT
            && self.advskew == carp_common::wire::CARP_BOW_OUT
    }
}

/// The advertisement interval for `advbase` and `advskew`: advbase + advskew/256 seconds, and
/// 1/256 s when both are 0.
///
/// Computed in whole microseconds with the same truncation as OpenBSD's `carp_setrun` and
/// `carp_send_ad` (`advbase * 1000000 + advskew * 1000000 / 256`, then 1000000 / 256 when
/// that is 0), so timers match the kernel's to the microsecond.
pub fn interval(advbase: u8, advskew: u8) -> Duration {
    let us = advertised_us(advbase, advskew);
    Duration::from_micros(if us == 0 { 1_000_000 / 256 } else { us })
}

/// advbase + advskew/256 in microseconds, without the 0 → 1/256 s floor: the value OpenBSD's
/// `carp_proto_input_c` compares (`sc_tv`/`ch_tv`), where 0/0 really is 0.
pub(crate) fn advertised_us(advbase: u8, advskew: u8) -> u64 {
    u64::from(advbase) * 1_000_000 + u64::from(advskew) * 1_000_000 / 256
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> CarpHeader {
        CarpHeader::advertisement(7, 1, 100, 3, 0x0102_0304_0506_0708, [0xab; 20])
    }

    #[test]
    fn encode_layout() {
        let b = sample().encode();
        assert_eq!(b[0], 0x21);
        assert_eq!(&b[1..6], &[7, 100, 7, 3, 1]);
        assert_eq!(&b[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[16..36], &[0xab; 20]);
        assert_eq!(internet_checksum(&b), 0);
    }

    #[test]
    fn decode_round_trips() {
        let h = sample();
        assert_eq!(CarpHeader::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn decode_rejects_short_payloads() {
        let b = sample().encode();
        for len in 0..CARP_HEADER_LEN {
            assert_eq!(
                CarpHeader::decode(&b[..len]),
                Err(DecodeError::TooShort),
                "len {len}"
            );
        }
    }

    #[test]
    fn decode_checks_the_checksum() {
        let mut b = sample().encode();
        b[20] ^= 0x01;
        assert_eq!(CarpHeader::decode(&b), Err(DecodeError::BadChecksum));
    }

    #[test]
    fn trailing_bytes_are_neither_checksummed_nor_rejected() {
        let h = sample();
        let mut payload = h.encode().to_vec();
        payload.extend_from_slice(&[0xde, 0xad, 0xbe]);
        assert_eq!(CarpHeader::decode(&payload), Ok(h));
    }

    #[test]
    fn decode_keeps_version_type_and_authlen_as_received() {
        let mut h = sample();
        h.version = 3;
        h.kind = 2;
        h.authlen = 0;
        assert_eq!(CarpHeader::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn intervals_match_openbsd_microseconds() {
        assert_eq!(interval(1, 0), Duration::from_secs(1));
        assert_eq!(interval(0, 0), Duration::from_micros(3906));
        assert_eq!(interval(0, 1), Duration::from_micros(3906));
        assert_eq!(interval(1, 128), Duration::from_micros(1_500_000));
        assert_eq!(interval(0, 255), Duration::from_micros(996_093));
        assert_eq!(interval(255, 255), Duration::from_micros(255_996_093));
        assert_eq!(advertised_us(0, 0), 0);
        assert_eq!(sample().interval(), Duration::from_micros(1_390_625));
    }

    #[test]
    fn bow_out() {
        assert!(CarpHeader::advertisement(1, 255, 255, 0, 0, [0; 20]).is_bow_out());
        assert!(!CarpHeader::advertisement(1, 255, 254, 0, 0, [0; 20]).is_bow_out());
    }

    fn any_header() -> impl Strategy<Value = CarpHeader> {
        (
            (0u8..16, 0u8..16, any::<u8>(), any::<u8>()),
            (any::<u8>(), any::<u8>(), any::<u8>()),
            any::<u64>(),
            any::<[u8; 20]>(),
        )
            .prop_map(
                |((version, kind, vhid, advskew), (authlen, demote, advbase), counter, hmac)| {
                    CarpHeader {
                        version,
                        kind,
                        vhid,
                        advskew,
                        authlen,
                        demote,
                        advbase,
                        counter,
                        hmac,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(h in any_header(), tail in proptest::collection::vec(any::<u8>(), 0..32)) {
            let mut payload = h.encode().to_vec();
            payload.extend_from_slice(&tail);
            prop_assert_eq!(CarpHeader::decode(&payload), Ok(h));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(h) = CarpHeader::decode(&bytes) {
                // Whatever decodes re-encodes to the same bytes, except that a checksum of
                // 0xffff and 0x0000 are both valid when the other words sum to -0.
                let again = h.encode();
                prop_assert_eq!(&again[..6], &bytes[..6]);
                prop_assert_eq!(&again[8..], &bytes[8..36]);
                prop_assert_eq!(CarpHeader::decode(&again), Ok(h));
            }
        }

        #[test]
        fn single_bit_flips_are_caught(h in any_header(), bit in 0usize..(36 * 8)) {
            let mut b = h.encode();
            b[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(CarpHeader::decode(&b), Err(DecodeError::BadChecksum));
        }
    }
}
