//! Bounds-checked access to the frame. The header layouts the program reads are carp-common's
//! `frame` structs: byte arrays only, alignment 1 (frames carry no alignment promise) and no
//! enum read from the wire, so no bit pattern is ever invalid.
use aya_ebpf::programs::XdpContext;

/// Pointer to a `T` at `offset` in the frame, or `None` if the frame is too short.
/// The explicit comparison against `data_end` is what the verifier needs to see.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, offset: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + offset + core::mem::size_of::<T>() > end {
        return None;
    }
    Some((start + offset) as *mut T)
}

/// Copy of the `T` at `offset`, or `None` if the frame is too short.
#[inline(always)]
pub fn read_at<T: Copy>(ctx: &XdpContext, offset: usize) -> Option<T> {
    // SAFETY: ptr_at checked that size_of::<T>() bytes are inside the frame; the read is
    // unaligned, and callers read only byte arrays and frame structs of bytes, for which
    // every bit pattern is valid.
    ptr_at::<T>(ctx, offset).map(|p| unsafe { p.read_unaligned() })
}
