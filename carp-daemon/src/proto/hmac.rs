//! CARP's HMAC-SHA1, byte for byte as OpenBSD computes it (`carp_hmac_prepare_ctx`,
//! `carp_hmac_generate`, `carp_hmac_verify`, `carp_prepare_ad` in ip_carp.c 1.370).
//!
//! # Key
//! OpenBSD keeps the passphrase in a 20-byte, zero-padded `sc_key` (ifconfig copies it with
//! `strlcpy(.., CARP_KEY_LEN)`, so at most 19 bytes survive) and XORs those 20 bytes into a
//! 64-byte zero pad. Standard HMAC zero-pads any key of up to 64 bytes to 64 bytes, so HMAC
//! keyed with the passphrase bytes alone gives the same digest as with the 20 padded bytes:
//! the "string length or 20 bytes" question has no observable answer. ucarp does the same
//! (`memcpy(sc_key, pass, strlen(pass) + 1)` after refusing more than 19 bytes), which is why
//! the two interoperate.
//!
//! Where OpenBSD's ifconfig silently truncates a longer passphrase to 19 bytes, we refuse it
//! ([`AuthError::PassphraseTooLong`]): a silent truncation would let two configs that look
//! different authenticate each other, and an operator copying a long passphrase from an
//! OpenBSD host must see that only its first 19 bytes count. A NUL byte is refused too, since
//! `strlcpy` would stop there.
//!
//! # Message
//! ```text
//! 0x02 (version), 0x01 (type),
//! [the carp interface's MAC, 6 bytes, only when it was changed away from the virtual MAC
//!  and is not the carpdev's own MAC either],
//! vhid,
//! every IPv4 address, ascending as integers, 4 bytes each,
//! every IPv6 address, ascending as bytes, 16 bytes each,
//! the 8 counter bytes as they appear in the packet.
//! ```
//! Details of OpenBSD's selection loop that this module reproduces: an address is hashed
//! once even if configured twice; 0.0.0.0, 255.255.255.255, `::` and `ffff:..:ffff` are
//! never hashed (the loop starts strictly above all-zeros and below all-ones).
//!
//! IPv6 link-local (and link- and interface-local multicast) addresses, KAME's
//! `IN6_IS_SCOPE_EMBED`, get two treatments: OpenBSD signs without them (`HMAC_NOV6LL`, used
//! by `carp_prepare_ad`) and on receive accepts either that digest or the one including them
//! with the embedded scope bytes 2..4 zeroed (`HMAC_ORIG`). We do the same.
//!
//! advbase, advskew, demote and the IP source address are not covered.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use carp_common::wire::{
    CARP_HMAC_LEN, CARP_MAX_PASSPHRASE_LEN, CARP_TYPE_ADVERTISEMENT, CARP_VERSION, virtual_mac,
};
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// A CARP passphrase: the HMAC key material. It has no `Display`, and its `Debug` prints
/// `Passphrase(<redacted>)`, so no log line, error message or `{:?}` of a structure holding
/// it (the configuration model, a carpctl request) can show it; code that needs the bytes
/// asks for them by name ([`Passphrase::expose`]). On the control protocol's wire it is a
/// plain JSON string (`serde(transparent)`), as before.
#[derive(Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The passphrase itself, for the HMAC and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (what CARP's 19-byte limit counts).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// OpenBSD's "no pass": the key is 20 zero bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&str> for Passphrase {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for Passphrase {
    fn from(text: String) -> Self {
        Self(text)
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Why a passphrase cannot be used as a CARP key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// OpenBSD keeps at most 19 bytes ([`CARP_MAX_PASSPHRASE_LEN`]).
    #[error(
        "passphrase is {len} bytes long; CARP keeps at most {max} (OpenBSD would silently use only the first {max})",
        max = CARP_MAX_PASSPHRASE_LEN
    )]
    PassphraseTooLong { len: usize },
    /// OpenBSD's ifconfig copies the passphrase as a C string and would stop at the NUL.
    #[error("passphrase contains a NUL byte")]
    PassphraseContainsNul,
}

/// The HMAC context of one vhid: key and message prefix already absorbed, so signing and
/// verifying hash only the 8 counter bytes and the outer block.
///
/// Rebuild it whenever the passphrase, the vhid, the address list or the interface MAC
/// changes (OpenBSD recomputes in `carp_hmac_prepare` on each of those).
#[derive(Clone)]
pub struct CarpAuth {
    /// Without IPv6 link-local addresses: what we sign with, and the first variant verified.
    nov6ll: HmacSha1,
    /// With them, scope bytes zeroed: the second variant verified.
    orig: HmacSha1,
    /// The first counter signed and its digest: a vhid signs the same counter (its replay
    /// cookie) in every advert, so a master hashes once, not once a second. Any other
    /// counter is hashed each time. (A OnceLock, not a Cell: the context is shared
    /// between threads in places, e.g. the fuzz targets' static.)
    signed: OnceLock<(u64, [u8; CARP_HMAC_LEN])>,
}

impl std::fmt::Debug for CarpAuth {
    // The states are derived from the key: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CarpAuth").finish_non_exhaustive()
    }
}

impl CarpAuth {
    /// Prepares the context of a vhid.
    ///
    /// `ipv4`/`ipv6` are every address of the carp interface in any order (duplicates and
    /// link-local ones included: this function sorts and classifies them). `lladdr` is the
    /// interface's MAC when OpenBSD would hash it, which [`hashed_lladdr`] decides; `None`
    /// in the usual case of the virtual MAC.
    pub fn new(
        passphrase: impl AsRef<[u8]>,
        vhid: u8,
        ipv4: &[Ipv4Addr],
        ipv6: &[Ipv6Addr],
        lladdr: Option<[u8; 6]>,
    ) -> Result<Self, AuthError> {
        let key = passphrase.as_ref();
        if key.len() > CARP_MAX_PASSPHRASE_LEN {
            return Err(AuthError::PassphraseTooLong { len: key.len() });
        }
        if key.contains(&0) {
            return Err(AuthError::PassphraseContainsNul);
        }
        // The key is at most 19 bytes, far below SHA-1's 64-byte block: never an error.
        let Ok(mut base) = HmacSha1::new_from_slice(key) else {
            unreachable!("HMAC accepts keys of any length")
        };
        base.update(&[CARP_VERSION, CARP_TYPE_ADVERTISEMENT]);
        if let Some(mac) = lladdr {
            base.update(&mac);
        }
        base.update(&[vhid]);
        for a in sorted_ipv4(ipv4) {
            base.update(&a.octets());
        }
        let mut nov6ll = base.clone();
        for a in sorted_ipv6(ipv6, false) {
            nov6ll.update(&a);
        }
        let mut orig = base;
        for a in sorted_ipv6(ipv6, true) {
            orig.update(&a);
        }
        Ok(Self {
            nov6ll,
            orig,
            signed: OnceLock::new(),
        })
    }

    /// The digest for an advert carrying `counter` (OpenBSD `carp_prepare_ad`: the variant
    /// without IPv6 link-local addresses).
    pub fn sign(&self, counter: u64) -> [u8; CARP_HMAC_LEN] {
        if let Some(&(signed, digest)) = self.signed.get()
            && signed == counter
        {
            return digest;
        }
        let mut mac = self.nov6ll.clone();
        mac.update(&counter.to_be_bytes());
        let digest: [u8; CARP_HMAC_LEN] = mac.finalize().into_bytes().into();
        // Kept only if it is the first: later counters do not displace the vhid's own.
        let _ = self.signed.set((counter, digest));
        digest
    }

    /// Whether `digest` authenticates an advert carrying `counter`: either variant matches
    /// (OpenBSD `carp_hmac_verify`). Each comparison is constant-time.
    pub fn verify(&self, counter: u64, digest: &[u8; CARP_HMAC_LEN]) -> bool {
        let c = counter.to_be_bytes();
        // Both variants are always computed, so the time taken does not say which matched.
        let mut a = self.nov6ll.clone();
        a.update(&c);
        let mut b = self.orig.clone();
        b.update(&c);
        let ok_a = a.verify_slice(digest).is_ok();
        let ok_b = b.verify_slice(digest).is_ok();
        ok_a | ok_b
    }
}

/// The MAC that OpenBSD puts into the HMAC for a carp interface, if any.
///
/// OpenBSD hashes the interface MAC only when it differs from the vhid's virtual MAC and the
/// interface does not use its carpdev's real MAC (`!sc_realmac && ac_enaddr != vhe_enaddr`
/// in `carp_hmac_prepare_ctx`; `sc_realmac` is set in `carp_setrun` when the carp MAC equals
/// the carpdev's).
pub fn hashed_lladdr(vhid: u8, carp_mac: [u8; 6], carpdev_mac: [u8; 6]) -> Option<[u8; 6]> {
    (carp_mac != virtual_mac(vhid) && carp_mac != carpdev_mac).then_some(carp_mac)
}

/// IPv4 addresses in the order and multiplicity OpenBSD hashes them.
fn sorted_ipv4(addrs: &[Ipv4Addr]) -> Vec<Ipv4Addr> {
    let mut v: Vec<Ipv4Addr> = addrs
        .iter()
        .copied()
        .filter(|a| !a.is_unspecified() && !a.is_broadcast())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// IPv6 addresses (as bytes) in the order and multiplicity OpenBSD hashes them, with or
/// without the scope-embedded ones (their bytes 2..4 zeroed).
fn sorted_ipv6(addrs: &[Ipv6Addr], with_scoped: bool) -> Vec<[u8; 16]> {
    let mut v: Vec<[u8; 16]> = addrs
        .iter()
        .filter_map(|a| {
            let mut b = a.octets();
            if is_scope_embed(&b) {
                if !with_scoped {
                    return None;
                }
                b[2] = 0;
                b[3] = 0;
            }
            Some(b)
        })
        .filter(|b| *b != [0; 16] && *b != [0xff; 16])
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// KAME's `IN6_IS_SCOPE_EMBED`: link-local unicast (fe80::/10), link-local multicast
/// (ffx2::) and interface-local multicast (ffx1::), the addresses whose bytes 2..4 the BSD
/// kernel overwrites with the interface index.
fn is_scope_embed(a: &[u8; 16]) -> bool {
    let link_local = a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
    let mc_scoped = a[0] == 0xff && matches!(a[1] & 0x0f, 0x01 | 0x02);
    link_local || mc_scoped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CarpHeader;

    const COUNTER: u64 = 0x0123_4567_89ab_cdef;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    // The expected digests below were computed outside this code, from the message bytes
    // written out by hand in each test's comment, with
    //   python3 -c 'import hmac,hashlib; print(hmac.new(KEY, MSG, hashlib.sha1).hexdigest())'
    // and the checksums with a separate RFC 1071 routine in Python.

    #[test]
    fn ipv4_vector() {
        // MSG = 02 01 | 01 | c000020a c0000214 | 0123456789abcdef, KEY = b"SeCrEt"
        // (addresses given in descending order: hashing sorts them).
        let auth = CarpAuth::new(
            "SeCrEt",
            1,
            &[v4("192.0.2.20"), v4("192.0.2.10")],
            &[],
            None,
        )
        .unwrap();
        let digest = auth.sign(COUNTER);
        assert_eq!(hex(&digest), "65a787e04424ef3b0dc6b5d147f20cabbbd407ac");
        let packet = CarpHeader::advertisement(1, 1, 100, 0, COUNTER, digest).encode();
        assert_eq!(
            hex(&packet),
            "210164070001e0320123456789abcdef65a787e04424ef3b0dc6b5d147f20cabbbd407ac"
        );
        assert!(auth.verify(COUNTER, &digest));
        assert!(!auth.verify(COUNTER + 1, &digest));
    }

    #[test]
    fn a_repeated_signature_is_the_memo_and_another_counter_is_hashed_anew() {
        let auth = CarpAuth::new("SeCrEt", 1, &[Ipv4Addr::new(192, 0, 2, 10)], &[], None).unwrap();
        let hashed = |counter: u64| {
            let mut mac = auth.nov6ll.clone();
            mac.update(&counter.to_be_bytes());
            <[u8; CARP_HMAC_LEN]>::from(mac.finalize().into_bytes())
        };
        assert_eq!(auth.sign(7), hashed(7));
        assert_eq!(auth.sign(7), hashed(7));
        assert_eq!(auth.sign(8), hashed(8));
        assert_ne!(auth.sign(8), auth.sign(7));
        assert_eq!(
            auth.sign(7),
            hashed(7),
            "another counter did not displace the first"
        );
        assert!(auth.verify(7, &auth.sign(7)));
    }

    #[test]
    fn ipv6_vector() {
        // Signed (HMAC_NOV6LL): the link-local address is left out.
        // MSG = 02 01 | 02 | 20010db8000000000000000000000010
        //                    20010db8000000000000000000000020 | 0123456789abcdef
        let auth = CarpAuth::new(
            "SeCrEt",
            2,
            &[],
            &[
                v6("2001:db8::20"),
                v6("fe80::200:5eff:fe00:102"),
                v6("2001:db8::10"),
            ],
            None,
        )
        .unwrap();
        let digest = auth.sign(COUNTER);
        assert_eq!(hex(&digest), "22e0a70b08a446375a70c32109611a42cb885f6d");
        let packet = CarpHeader::advertisement(2, 0, 50, 1, COUNTER, digest).encode();
        assert_eq!(
            hex(&packet),
            "21023207010088de0123456789abcdef22e0a70b08a446375a70c32109611a42cb885f6d"
        );

        // HMAC_ORIG, accepted on receive: the same plus
        // fe8000000000000002005efffe000102 after the global ones (fe.. sorts last).
        let orig = "11fc14d6f65ac2d99ab59ff98ab0e60d47470381";
        assert!(auth.verify(COUNTER, &unhex(orig)));
        assert!(auth.verify(COUNTER, &digest));
    }

    #[test]
    fn embedded_scope_bytes_are_zeroed() {
        // A KAME-style fe80:4::.. (interface index 4 in bytes 2..4) hashes as fe80::...
        let plain = CarpAuth::new("k", 2, &[], &[v6("fe80::1"), v6("2001:db8::1")], None).unwrap();
        let kame = CarpAuth::new("k", 2, &[], &[v6("fe80:4::1"), v6("2001:db8::1")], None).unwrap();
        let mut with_ll = plain.orig.clone();
        with_ll.update(&COUNTER.to_be_bytes());
        let d: [u8; 20] = with_ll.finalize().into_bytes().into();
        assert!(kame.verify(COUNTER, &d));
    }

    #[test]
    fn lladdr_is_hashed_after_type_before_vhid() {
        // MSG = 02 01 | 001122334455 | 03 | c0000201 | 0123456789abcdef, KEY = b"key"
        let auth = CarpAuth::new(
            "key",
            3,
            &[v4("192.0.2.1")],
            &[],
            Some([0x00, 0x11, 0x22, 0x33, 0x44, 0x55]),
        )
        .unwrap();
        assert_eq!(
            hex(&auth.sign(COUNTER)),
            "e538e3f2cf9ce7279815248d8175d8ffd41d0598"
        );
    }

    #[test]
    fn empty_passphrase_is_a_zero_key() {
        // No `pass`: OpenBSD's key is 20 zero bytes, i.e. HMAC with an empty key.
        // MSG = 02 01 | 01 | c0000201 | 0123456789abcdef, KEY = b""
        let auth = CarpAuth::new("", 1, &[v4("192.0.2.1")], &[], None).unwrap();
        assert_eq!(
            hex(&auth.sign(COUNTER)),
            "20b8506481741e4bf43652a1759ae57b50ca44c2"
        );
    }

    #[test]
    fn key_padding_to_20_bytes_changes_nothing() {
        let msg = b"anything";
        let mut a = HmacSha1::new_from_slice(b"SeCrEt").unwrap();
        a.update(msg);
        let mut padded = [0u8; 20];
        padded[..6].copy_from_slice(b"SeCrEt");
        let mut b = HmacSha1::new_from_slice(&padded).unwrap();
        b.update(msg);
        assert_eq!(a.finalize().into_bytes(), b.finalize().into_bytes());
    }

    #[test]
    fn passphrases_are_redacted_in_debug_and_plain_on_the_wire() {
        let p = Passphrase::new("SeCrEt");
        assert_eq!(format!("{p:?}"), "Passphrase(<redacted>)");
        assert_eq!(format!("{:?}", Some(&p)), "Some(Passphrase(<redacted>))");
        assert_eq!(p.expose(), "SeCrEt");
        // The control protocol sends it as the string it was before it had a type.
        assert_eq!(serde_json::to_string(&p).unwrap(), "\"SeCrEt\"");
        assert_eq!(serde_json::from_str::<Passphrase>("\"SeCrEt\"").unwrap(), p);
    }

    #[test]
    fn passphrase_limits() {
        let ok = "a".repeat(CARP_MAX_PASSPHRASE_LEN);
        assert!(CarpAuth::new(&ok, 1, &[], &[], None).is_ok());
        let long = "a".repeat(CARP_MAX_PASSPHRASE_LEN + 1);
        assert_eq!(
            CarpAuth::new(&long, 1, &[], &[], None).unwrap_err(),
            AuthError::PassphraseTooLong { len: 20 }
        );
        assert_eq!(
            CarpAuth::new(b"a\0b", 1, &[], &[], None).unwrap_err(),
            AuthError::PassphraseContainsNul
        );
    }

    #[test]
    fn address_order_duplicates_and_specials_do_not_matter() {
        let a = CarpAuth::new(
            "x",
            9,
            &[
                v4("10.0.0.2"),
                v4("10.0.0.1"),
                v4("10.0.0.2"),
                v4("0.0.0.0"),
            ],
            &[v6("2001:db8::2"), v6("::"), v6("2001:db8::1")],
            None,
        )
        .unwrap();
        let b = CarpAuth::new(
            "x",
            9,
            &[v4("10.0.0.1"), v4("10.0.0.2")],
            &[v6("2001:db8::1"), v6("2001:db8::2")],
            None,
        )
        .unwrap();
        assert_eq!(a.sign(7), b.sign(7));
    }

    #[test]
    fn what_is_covered() {
        let base = CarpAuth::new("x", 9, &[v4("10.0.0.1")], &[], None).unwrap();
        let d = base.sign(1);
        for other in [
            CarpAuth::new("y", 9, &[v4("10.0.0.1")], &[], None),
            CarpAuth::new("x", 8, &[v4("10.0.0.1")], &[], None),
            CarpAuth::new("x", 9, &[v4("10.0.0.2")], &[], None),
            CarpAuth::new("x", 9, &[v4("10.0.0.1")], &[v6("2001:db8::1")], None),
            CarpAuth::new("x", 9, &[v4("10.0.0.1")], &[], Some([2; 6])),
        ] {
            assert!(!other.unwrap().verify(1, &d));
        }
    }

    #[test]
    fn hashed_lladdr_rule() {
        let dev = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
        assert_eq!(hashed_lladdr(7, virtual_mac(7), dev), None);
        assert_eq!(hashed_lladdr(7, dev, dev), None);
        assert_eq!(hashed_lladdr(7, [2; 6], dev), Some([2; 6]));
    }

    #[test]
    fn scope_embed_classification() {
        for (a, scoped) in [
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", false),
            ("ff02::1", true),
            ("ff12::1", true),
            ("ff01::1", true),
            ("ff05::1", false),
            ("2001:db8::1", false),
        ] {
            assert_eq!(is_scope_embed(&v6(a).octets()), scoped, "{a}");
        }
    }

    #[test]
    fn debug_hides_key_material() {
        let auth = CarpAuth::new("SeCrEt", 1, &[], &[], None).unwrap();
        assert_eq!(format!("{auth:?}"), "CarpAuth { .. }");
    }

    fn unhex(s: &str) -> [u8; 20] {
        let mut out = [0u8; 20];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
