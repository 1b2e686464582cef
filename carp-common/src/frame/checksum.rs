//! The Internet checksum (RFC 1071): the one's complement of the one's complement sum of the
//! data as big-endian 16-bit words, an odd last byte padded with a zero byte. Over data that
//! carries a correct checksum it is 0.
//!
//! One accumulator for both sides: the XDP program adds fixed-size arrays
//! ([`Checksum::add_words`], a loop with a constant trip count over bytes already on its
//! stack, as the verifier requires), carpd adds slices ([`Checksum::add_slice`]); both end in
//! the same [`Checksum::finish`]. The running sum is 64 bits wide (a BPF register's width), so
//! it cannot overflow for any frame, and the fold is a fixed four steps.
//!
//! Written here rather than taken from a crate: it is a dozen lines, it must build for the
//! BPF target, and the crates.io candidates (e.g. `internet-checksum`) have not been released
//! in years.

/// A running one's complement sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checksum {
    sum: u64,
}

impl Checksum {
    /// An empty sum.
    #[inline(always)]
    pub const fn new() -> Self {
        Self { sum: 0 }
    }

    /// Adds one 16-bit word (host order; the caller converts from the wire).
    #[inline(always)]
    pub const fn add_u16(self, word: u16) -> Self {
        Self {
            sum: self.sum + word as u64,
        }
    }

    /// Adds a 32-bit value as its two 16-bit halves (the pseudo-header's length field).
    #[inline(always)]
    pub const fn add_u32(self, value: u32) -> Self {
        self.add_u16((value >> 16) as u16).add_u16(value as u16)
    }

    /// Adds the big-endian words of a fixed-size array; an odd last byte is the high byte of
    /// a zero-padded word. The loop's trip count is the constant `N / 2`, and every read is
    /// within the array, so the XDP program may call this on bytes it copied out of a frame.
    #[inline(always)]
    pub fn add_words<const N: usize>(self, bytes: &[u8; N]) -> Self {
        let mut sum = self.sum;
        let mut i = 0;
        while i + 1 < N {
            sum += u16::from_be_bytes([bytes[i], bytes[i + 1]]) as u64;
            i += 2;
        }
        if N % 2 == 1 {
            sum += u16::from_be_bytes([bytes[N - 1], 0]) as u64;
        }
        Self { sum }
    }

    /// Adds the big-endian words of a slice of any length (odd: the last byte padded with a
    /// zero byte). For carpd; the XDP program has [`add_words`](Self::add_words).
    pub fn add_slice(self, bytes: &[u8]) -> Self {
        let mut chunks = bytes.chunks_exact(2);
        let mut sum = self.sum;
        for w in chunks.by_ref() {
            sum += u16::from_be_bytes([w[0], w[1]]) as u64;
        }
        if let [last] = chunks.remainder() {
            sum += u16::from_be_bytes([*last, 0]) as u64;
        }
        Self { sum }
    }

    /// Both sums together: a part summed once (a VRRP message) checked under two
    /// pseudo-headers. Each sum stays far below 2^63 for any frame, so this cannot overflow.
    #[inline(always)]
    pub const fn merge(self, other: Checksum) -> Self {
        Self {
            sum: self.sum + other.sum,
        }
    }

    /// The checksum: the sum folded to 16 bits (carries added back in), complemented.
    /// Four folds take any 64-bit sum to 16 bits: 64 → 33 → 32 → 17 → 16.
    #[inline(always)]
    pub fn finish(self) -> u16 {
        let mut sum = self.sum;
        sum = (sum & 0xffff_ffff) + (sum >> 32);
        sum = (sum & 0xffff_ffff) + (sum >> 32);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        !(sum as u16)
    }
}

/// The checksum of `data` (RFC 1071).
pub fn internet_checksum(data: &[u8]) -> u16 {
    Checksum::new().add_slice(data).finish()
}

/// The IPv6 pseudo-header of an upper-layer checksum (RFC 8200 8.1): source, destination,
/// upper-layer length and next header. The caller adds the message and finishes.
#[inline(always)]
pub fn ipv6_pseudo_header(
    src: &[u8; 16],
    dst: &[u8; 16],
    upper_len: u32,
    next_header: u8,
) -> Checksum {
    Checksum::new()
        .add_words(src)
        .add_words(dst)
        .add_u32(upper_len)
        .add_u16(next_header as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ways of summing, which must agree whatever the input.
    fn both<const N: usize>(bytes: &[u8; N]) -> u16 {
        let words = Checksum::new().add_words(bytes).finish();
        let slice = internet_checksum(bytes);
        assert_eq!(
            words, slice,
            "add_words and add_slice disagree on {bytes:02x?}"
        );
        words
    }

    #[test]
    fn rfc1071_section_3_example() {
        // RFC 1071 3: the words 0001 f203 f4f5 f6f7 sum to 2ddf0, folded ddf2.
        assert_eq!(
            both(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(!0xddf2u16, 0x220d);
        // RFC 1071 2(B): the sum is byte-order independent: swapping every pair of bytes
        // swaps the bytes of the result.
        assert_eq!(
            both(&[0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6]),
            (!0xddf2u16).swap_bytes()
        );
    }

    #[test]
    fn empty_odd_and_carries() {
        assert_eq!(both(&[]), 0xffff);
        // Odd length: the last byte is the high byte of a zero-padded word.
        assert_eq!(both(&[0x12]), !0x1200);
        assert_eq!(both(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6]), 0x2304);
        assert_eq!(both(&[0xab; 37]), 0x42ed);
        // Carries fold back in.
        assert_eq!(both(&[0xff, 0xff, 0x00, 0x01]), !0x0001);
        // All ones: -0 stays -0 (0xffff), whose complement is 0.
        assert_eq!(both(&[0xff; 64]), 0);
    }

    #[test]
    fn a_long_slice_does_not_overflow() {
        // 128 KiB of 0xff: more words than a 32-bit sum holds without a fold.
        let mut sum = Checksum::new();
        for _ in 0..1024 {
            sum = sum.add_slice(&[0xff; 128]);
        }
        assert_eq!(sum.finish(), 0);
    }

    #[test]
    fn words_and_slices_agree_on_many_inputs() {
        // A fixed pseudo-random sequence (an LCG), so a failure is reproducible.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..500 {
            let mut b = [0u8; 41];
            for byte in b.iter_mut() {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *byte = (x >> 24) as u8;
            }
            both(&b);
            let even: &[u8; 40] = b[..40].try_into().unwrap();
            both(even);
        }
    }

    #[test]
    fn ipv4_header() {
        // TOS 0x10, total length 56, id 0xbeef, DF, TTL 255, protocol 112, 192.0.2.11 to
        // 224.0.0.18; checksum computed independently (Python, RFC 1071): 0x1a38.
        let mut h = [
            0x45, 0x10, 0x00, 0x38, 0xbe, 0xef, 0x40, 0x00, 0xff, 0x70, 0x00, 0x00, 0xc0, 0x00,
            0x02, 0x0b, 0xe0, 0x00, 0x00, 0x12,
        ];
        assert_eq!(both(&h), 0x1a38);
        h[10..12].copy_from_slice(&0x1a38u16.to_be_bytes());
        assert_eq!(both(&h), 0, "a correct header sums to 0");
    }
}
