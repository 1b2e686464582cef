//! RFC 1071 Internet checksum over fixed-size pieces. Fixed sizes keep the verifier happy:
//! every loop has a constant trip count and every read is from the stack.

/// Adds the big-endian 16-bit words of `bytes` (even length) to a running sum.
#[inline(always)]
pub fn add_words<const N: usize>(mut sum: u32, bytes: &[u8; N]) -> u32 {
    let mut i = 0;
    while i + 1 < N {
        sum += u16::from_be_bytes([bytes[i], bytes[i + 1]]) as u32;
        i += 2;
    }
    sum
}

/// Folds a running sum into the one's-complement 16-bit checksum.
#[inline(always)]
pub fn fold(mut sum: u32) -> u16 {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    !(sum as u16)
}
