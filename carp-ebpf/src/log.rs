//! The program's decisions as aya-log records, for `carpctl debug xdp on`: every advert
//! dropped (reason, source, vhid, carpdev; a VRRPv3 one with its VRID; a packet a VRRPv3
//! router does not accept, with its destination), every ARP request and neighbour solicitation for
//! a virtual address answered or dropped (target, and the vhid state that decided it).
//!
//! Off by default. Each decision site asks [`enabled`] first, and on a frame's path there is
//! at most one such site (each sits at a final verdict, after its counter), so while off a
//! frame costs one lookup of the `log_switch` array (inlined by the kernel for arrays: no
//! helper call) and a branch. A switch in a map rather than a program swap: carpd flips it
//! without touching the attached links, and what runs is what the verifier checked once.
//!
//! While on, the site writes what it decided to this CPU's `log_scratch` slot and tail-calls
//! `carp_log` (slot 0 of `log_progs`), which writes the aya-log record and returns the
//! site's verdict (XDP_TX for an answer, XDP_DROP otherwise). A tail call rather than a
//! function: the program's own frame already takes nearly all of the 512 bytes of stack a
//! call chain may use, and a tail-called program starts with a stack of its own. Should the
//! tail call fail (carpd has not filled `log_progs`), the site returns its verdict itself.
//!
//! Rate-limited in `carp_log`, in the kernel, so that a flood costs neither the log ring, nor
//! carpd, nor the journal: at most [`LINES_PER_SECOND`] records per CPU and second; the first
//! record of a window after one that suppressed records says how many.
//!
//! Records say `ifindex=N`; carpd's bridge (carp-daemon `xdp_log`) names the carpdev.
use aya_ebpf::{
    bindings::xdp_action,
    btf_maps::{Array, PerCpuArray, ProgramArray},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use aya_log_ebpf::{info, warn};
use carp_common::maps::{VHID_STATE_BACKUP, VHID_STATE_MASTER, VhidEntry};

/// Writes the record of `$call` (one of this module's site functions) if [`enabled`]: the
/// one line each drop and answer site gets.
macro_rules! log_decision {
    ($call:expr) => {
        if $crate::log::enabled() {
            $call
        }
    };
}
pub(crate) use log_decision;

/// Records per CPU and second at most.
const LINES_PER_SECOND: u64 = 20;

const NS_PER_SECOND: u64 = 1_000_000_000;

/// Index 0: non-zero while carpd wants the records (`carpctl debug xdp on`).
#[btf_map(name = "log_switch")]
static LOG_SWITCH: Array<u32, 1> = Array::new();

/// Slot 0: `carp_log`, put there by carpd.
#[btf_map(name = "log_progs")]
static LOG_PROGS: ProgramArray<1> = ProgramArray::new();

const KIND_ADVERT: u8 = 0;
const KIND_ARP: u8 = 1;
const KIND_NS: u8 = 2;
const KIND_VRRP: u8 = 3;
const KIND_VRRP_NOT_ACCEPTED: u8 = 4;

/// What a decision site hands to `carp_log`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LogRecord {
    kind: u8,
    /// [`AdvertDrop`] or [`Why`].
    code: u8,
    answered: u8,
    family: u8,
    vhid: u8,
    _pad: [u8; 3],
    ifindex: u32,
    _pad2: u32,
    /// Advert source, or ARP (first 4 bytes) / NS target.
    addr: [u8; 16],
}

#[btf_map(name = "log_scratch")]
static LOG_SCRATCH: PerCpuArray<LogRecord, 1> = PerCpuArray::new();

/// One CPU's rate-limit window.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct LogBudget {
    window_start_ns: u64,
    used: u64,
    suppressed: u64,
}

#[btf_map(name = "log_budget")]
static LOG_BUDGET: PerCpuArray<LogBudget, 1> = PerCpuArray::new();

/// Whether carpd wants the records: the one lookup a frame costs while off.
#[inline(always)]
pub fn enabled() -> bool {
    if cfg!(feature = "no-decision-records") {
        return false;
    }
    LOG_SWITCH.get(0).is_some_and(|on| *on != 0)
}

/// Hands the decision, as `fill` writes it into this CPU's `log_scratch` slot, to
/// `carp_log`; returns only if the tail call failed.
#[inline(always)]
fn hand_over(ctx: &XdpContext, fill: impl FnOnce(&mut LogRecord)) {
    let Some(slot) = LOG_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: this CPU's slot, read by `carp_log` on this CPU right after the tail call.
    fill(unsafe { &mut *slot });
    // SAFETY: slot 0 holds `carp_log` (an XDP program) or nothing.
    unsafe { LOG_PROGS.tail_call(ctx, 0) };
}

/// An advert dropped, and why. `vhid` 0: not read yet (too short to hold one).
#[inline(always)]
pub fn advert_dropped(
    ctx: &XdpContext,
    reason: AdvertDrop,
    family: u8,
    src: &[u8; 16],
    vhid: u8,
    ifindex: u32,
) {
    hand_over(ctx, |r| {
        r.kind = KIND_ADVERT;
        r.code = reason as u8;
        r.answered = 0;
        r.family = family;
        r.vhid = vhid;
        r.ifindex = ifindex;
        r.addr = *src;
    });
}

/// A VRRPv3 advert for a router served here dropped (see `vrrp`), and why.
#[inline(always)]
pub fn vrrp_dropped(
    ctx: &XdpContext,
    reason: AdvertDrop,
    family: u8,
    src: &[u8; 16],
    vrid: u8,
    ifindex: u32,
) {
    hand_over(ctx, |r| {
        r.kind = KIND_VRRP;
        r.code = reason as u8;
        r.answered = 0;
        r.family = family;
        r.vhid = vrid;
        r.ifindex = ifindex;
        r.addr = *src;
    });
}

/// A packet to a VRRP router's virtual address dropped because the router does not accept
/// (see `vrrp::refuses`); its destination is read from the frame here, only while on.
#[inline(always)]
pub fn vrrp_not_accepted(ctx: &XdpContext, v6: bool, vrid: u8, ifindex: u32) {
    use carp_common::frame::ethernet::ETH_HLEN;
    let mut dst = [0u8; 16];
    if v6 {
        if let Some(a) = crate::packet::read_at::<[u8; 16]>(ctx, ETH_HLEN + 24) {
            dst = a;
        }
    } else if let Some(a) = crate::packet::read_at::<[u8; 4]>(ctx, ETH_HLEN + 16) {
        dst[..4].copy_from_slice(&a);
    }
    hand_over(ctx, |r| {
        r.kind = KIND_VRRP_NOT_ACCEPTED;
        r.code = 0;
        r.answered = 0;
        r.family = if v6 { 6 } else { 4 };
        r.vhid = vrid;
        r.ifindex = ifindex;
        r.addr = dst;
    });
}

/// An ARP request for a virtual address answered or dropped, with what decided it.
#[inline(always)]
pub fn arp(ctx: &XdpContext, answered: bool, target: &[u8; 4], why: Why, ifindex: u32) {
    hand_over(ctx, |r| {
        r.kind = KIND_ARP;
        r.code = why as u8;
        r.answered = u8::from(answered);
        r.ifindex = ifindex;
        r.addr[..4].copy_from_slice(target);
    });
}

/// A neighbour solicitation for a virtual address answered or dropped.
#[inline(always)]
pub fn ns(ctx: &XdpContext, answered: bool, target: &[u8; 16], why: Why, ifindex: u32) {
    hand_over(ctx, |r| {
        r.kind = KIND_NS;
        r.code = why as u8;
        r.answered = u8::from(answered);
        r.ifindex = ifindex;
        r.addr = *target;
    });
}

/// The records' writer, reached only by tail call from `carp`.
#[xdp]
pub fn carp_log(_ctx: XdpContext) -> u32 {
    let Some(record) = LOG_SCRATCH.get(0).copied() else {
        return xdp_action::XDP_DROP;
    };
    let verdict = if record.answered != 0 {
        xdp_action::XDP_TX
    } else {
        xdp_action::XDP_DROP
    };
    if within_budget() {
        write(&record);
    }
    verdict
}

#[inline(always)]
fn within_budget() -> bool {
    let Some(budget) = LOG_BUDGET.get_ptr_mut(0) else {
        return false;
    };
    // SAFETY: this CPU's slot; only this program on this CPU touches it while it runs.
    let budget = unsafe { &mut *budget };
    // SAFETY: a helper call without arguments.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    if now.wrapping_sub(budget.window_start_ns) >= NS_PER_SECOND {
        let suppressed = budget.suppressed;
        budget.window_start_ns = now;
        budget.used = 0;
        budget.suppressed = 0;
        if suppressed > 0 {
            budget.used = 1;
            warn!(
                &(),
                "{} records suppressed by the rate limit ({} per CPU and second)",
                suppressed,
                LINES_PER_SECOND
            );
        }
    }
    if budget.used >= LINES_PER_SECOND {
        budget.suppressed += 1;
        return false;
    }
    budget.used += 1;
    true
}

/// Writes the record. The word from [`WORDS`] comes last: it is padded to a fixed width,
/// which carpd's bridge trims.
#[inline(always)]
fn write(r: &LogRecord) {
    let ifindex = r.ifindex;
    match r.kind {
        KIND_ADVERT => {
            let reason = advert_drop_text(r.code);
            let vhid = r.vhid;
            if r.family == 4 {
                let src = [r.addr[0], r.addr[1], r.addr[2], r.addr[3]];
                info!(
                    &(),
                    "advert dropped: src={:i} vhid={} ifindex={} reason={}",
                    src,
                    vhid,
                    ifindex,
                    reason
                );
            } else {
                let src = r.addr;
                info!(
                    &(),
                    "advert dropped: src={:i} vhid={} ifindex={} reason={}",
                    src,
                    vhid,
                    ifindex,
                    reason
                );
            }
        }
        KIND_VRRP => {
            let reason = advert_drop_text(r.code);
            let vrid = r.vhid;
            if r.family == 4 {
                let src = [r.addr[0], r.addr[1], r.addr[2], r.addr[3]];
                info!(
                    &(),
                    "vrrp advert dropped: src={:i} vrid={} ifindex={} reason={}",
                    src,
                    vrid,
                    ifindex,
                    reason
                );
            } else {
                let src = r.addr;
                info!(
                    &(),
                    "vrrp advert dropped: src={:i} vrid={} ifindex={} reason={}",
                    src,
                    vrid,
                    ifindex,
                    reason
                );
            }
        }
        KIND_VRRP_NOT_ACCEPTED => {
            let vrid = r.vhid;
            if r.family == 4 {
                let dst = [r.addr[0], r.addr[1], r.addr[2], r.addr[3]];
                info!(
                    &(),
                    "vrrp packet dropped: dst={:i} vrid={} ifindex={} reason=accept_mode_off",
                    dst,
                    vrid,
                    ifindex
                );
            } else {
                let dst = r.addr;
                info!(
                    &(),
                    "vrrp packet dropped: dst={:i} vrid={} ifindex={} reason=accept_mode_off",
                    dst,
                    vrid,
                    ifindex
                );
            }
        }
        KIND_ARP => {
            let target = [r.addr[0], r.addr[1], r.addr[2], r.addr[3]];
            let why = why_text(r.code);
            if r.answered != 0 {
                info!(
                    &(),
                    "arp answered: target={:i} ifindex={} state={}", target, ifindex, why
                );
            } else {
                info!(
                    &(),
                    "arp dropped: target={:i} ifindex={} by={}", target, ifindex, why
                );
            }
        }
        _ => {
            let target = r.addr;
            let why = why_text(r.code);
            if r.answered != 0 {
                info!(
                    &(),
                    "ns answered: target={:i} ifindex={} state={}", target, ifindex, why
                );
            } else {
                info!(
                    &(),
                    "ns dropped: target={:i} ifindex={} by={}", target, ifindex, why
                );
            }
        }
    }
}

/// Why an advert was dropped: the counter's name without `advert_`.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum AdvertDrop {
    BadLength,
    BadTtl,
    BadChecksum,
    BadVersion,
    OwnSource,
    RingFull,
}

/// What decided an ARP/NS verdict: the vhid's state, or what was wrong with the request.
#[derive(Clone, Copy)]
#[repr(u8)]
pub enum Why {
    NotServed,
    Master,
    MasterPastDeadline,
    Backup,
    Init,
    BadSource,
    Gratuitous,
    Invalid,
}

impl Why {
    /// The state of `entry` as the ARP/NS decision saw it.
    #[inline(always)]
    pub fn state(entry: Option<&VhidEntry>, live_master: bool) -> Why {
        match entry {
            None => Why::NotServed,
            Some(_) if live_master => Why::Master,
            Some(e) if e.state == VHID_STATE_MASTER => Why::MasterPastDeadline,
            Some(e) if e.state == VHID_STATE_BACKUP => Why::Backup,
            Some(_) => Why::Init,
        }
    }
}

/// Width of every word in [`WORDS`].
const WORD_BYTES: usize = 40;

/// A word as a fixed-width row, padded with spaces.
const fn row(text: &str) -> [u8; WORD_BYTES] {
    let bytes = text.as_bytes();
    let mut out = [b' '; WORD_BYTES];
    let mut i = 0;
    while i < bytes.len() {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// The records' words: advert drop reasons ([`AdvertDrop`] order), then what decided an
/// ARP/NS verdict ([`Why`] order, from [`WHY_WORDS`]). Rows of bytes of one width, not
/// `&str`s: a table of pointers in data is nothing BPF can relocate (the verifier sees a
/// loaded pointer as a number; a `match` returning `&str` compiles to such a table), and a
/// length read from a table is more than the verifier can bound through aya-log's copy.
static WORDS: [[u8; WORD_BYTES]; 14] = [
    row("bad_length"),
    row("bad_ttl"),
    row("bad_checksum"),
    row("bad_version"),
    row("own_source"),
    row("ring_full"),
    row("vhid-not-served"),
    row("MASTER"),
    row("MASTER-past-deadline(carpd-silent)"),
    row("BACKUP"),
    row("INIT"),
    row("group-source"),
    row("gratuitous"),
    row("invalid-solicitation"),
];
const WHY_WORDS: usize = 6;

/// Word `index` of [`WORDS`] (the last one past the end), with its padding.
#[inline(always)]
fn word(index: usize) -> &'static str {
    let row = &WORDS[index.min(WORDS.len() - 1)];
    // SAFETY: every row is ASCII, made by `row` from a `&str` and spaces.
    unsafe { core::str::from_utf8_unchecked(row) }
}

#[inline(always)]
fn why_text(code: u8) -> &'static str {
    word(WHY_WORDS + code as usize)
}

#[inline(always)]
fn advert_drop_text(code: u8) -> &'static str {
    word((code as usize).min(WHY_WORDS - 1))
}
