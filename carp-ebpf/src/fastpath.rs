//! The fast path for the current master's adverts: repeats of an advert carpd has already
//! authenticated are consumed here, and only their arrival time is recorded.
//!
//! # Why
//! Every valid-looking advert for a served vhid used to go through the ring buffer to carpd.
//! A flood of adverts with a valid checksum (any source, any HMAC: XDP cannot check the HMAC)
//! fills the ring; the program then drops at "ring full" whatever the source, the real
//! master's adverts are lost with the flood, and the backup takes over. A backup's carpd also
//! woke for every advert of its master (at advbase 0, 256 a second) only to restart a timer.
//!
//! # How
//! While a vhid is BACKUP and follows a master, carpd publishes in `carp_master_adverts`, per
//! (carpdev, vhid, family), the 36 CARP header bytes (counter and HMAC included) and the IP
//! source of that master's last authenticated advert. An OpenBSD master sends the same
//! header in every advert (its counter is a constant loop cookie), so its next adverts are
//! byte-identical: the program consumes them, counts them (`advert_master_fastpath`) and
//! stores `bpf_ktime_get_ns()` (CLOCK_MONOTONIC, carpd's clock) in `carp_master_seen`. A map of
//! its own, because carpd rewrites the published entry whenever its master's advert changes,
//! and would overwrite an arrival time kept in it. Anything else (another source, one byte
//! different, a master whose counter changes per advert as ucarp's) reaches carpd as before.
//! When the master-down timer of a BACKUP fires, carpd reads the arrival time and re-arms
//! from it if an identical advert came after the timer was armed.
//!
//! carpd clears the entry when the vhid leaves BACKUP, and when its timers, passphrase or
//! demotion change, so a stale pattern never keeps a vhid quiet: from then on every advert
//! goes to carpd again until it publishes anew. The program also takes the fast path only
//! while the vhid's `carp_vhids` entry says BACKUP, so a MASTER or INIT vhid sees every advert
//! even if an entry outlived its state.
//!
//! # Nothing changes in the protocol
//! CARP's HMAC covers neither timing nor the IP source, and OpenBSD accepts a byte-identical
//! replay of the master's advert (the counter is a loop cookie, not a sequence number): a
//! captured advert replayed on the link already restarts a backup's master-down timer, in
//! OpenBSD as in carpd. Consuming such repeats in XDP and telling carpd only when the last
//! one came gives a backup exactly the state it would have after receiving each of them: the
//! same replay keeps it BACKUP, and nothing that would change the election (a better or
//! demoted master, a bow-out, a new counter) takes the fast path.
use carp_common::{maps::MasterAdvertKey, wire::CARP_HEADER_LEN};

use crate::maps::{MASTER_ADVERTS, MASTER_SEEN};

/// True if the advert is a repeat of the master's published one; then its arrival time is
/// recorded and the caller drops it.
#[inline(always)]
pub fn consume_master_repeat(
    ifindex: u32,
    vhid: u8,
    family: u8,
    src: &[u8; 16],
    header: &[u8; CARP_HEADER_LEN],
) -> bool {
    let key = MasterAdvertKey {
        ifindex,
        vhid,
        family,
        _pad: [0; 2],
    };
    let Some(published) = MASTER_ADVERTS.get_ptr(key) else {
        return false;
    };
    // SAFETY: read in place (a copy would not fit the 512-byte stack beside the advert);
    // carpd replaces the entry whole, and a concurrent update can at worst make this one
    // advert go to carpd, or be taken for the previous master's repeat, which carpd
    // authenticated too.
    let published = unsafe { &*published };
    // Byte by byte with an early exit, rather than `==` (a memcmp call the BPF object
    // cannot make) or a fold (whose unrolled loads LLVM hoists and spills past the stack).
    for (a, b) in published.src.iter().zip(src) {
        if a != b {
            return false;
        }
    }
    for (a, b) in published.carp.iter().zip(header) {
        if a != b {
            return false;
        }
    }
    // SAFETY: a helper call without arguments.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    // In place once the key exists: one aligned u64 store instead of a map update (which
    // swaps in a new element under the bucket lock), paid by every repeat of the master's.
    // A full map (more keys than vhids × families cannot happen) would only cost the
    // re-arm: the timer then fires as if this advert were lost.
    match MASTER_SEEN.get_ptr_mut(key) {
        // SAFETY: an aligned u64 in the map's value; carpd only reads it.
        Some(seen) => unsafe { core::ptr::write_volatile(seen, now) },
        None => {
            let _ = MASTER_SEEN.insert(key, now, 0);
        }
    }
    true
}
