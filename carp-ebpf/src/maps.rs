//! The programs' maps (one object: the XDP program and the egress guard share them). Types and names come from carp-common so that carpd and `bpftool`
//! see exactly what the program sees.
use aya_ebpf::{
    btf_maps::{Array, HashMap, PerCpuArray, RingBuf},
    macros::btf_map,
};
use carp_common::maps::{
    ADVERT_RING_BYTES, AdvertEvent, BPF_F_MMAPABLE, CarpdevEntry, DataplaneCounters, LbGroup,
    MAX_CARPDEVS, MAX_DEADLINES, MAX_LB_GROUPS, MAX_MASTER_ADVERTS, MAX_VHIDS, MAX_VIPS,
    MasterAdvert, MasterAdvertKey, VHID_STATE_MASTER, VhidEntry, VhidKey, Vip4Key, Vip6Key,
    VipEntry, VrrpCounters,
};

#[btf_map(name = "carp_vhids")]
pub static VHIDS: HashMap<VhidKey, VhidEntry, { MAX_VHIDS as usize }> = HashMap::new();

/// Written by carpd only, through its memory mapping of the array (see `is_live_master`).
#[btf_map(name = "carp_deadlines")]
pub static DEADLINES: Array<u64, { MAX_DEADLINES as usize }, { BPF_F_MMAPABLE as usize }> =
    Array::new();

#[btf_map(name = "carp_vip4")]
pub static VIP4: HashMap<Vip4Key, VipEntry, { MAX_VIPS as usize }> = HashMap::new();

#[btf_map(name = "carp_vip6")]
pub static VIP6: HashMap<Vip6Key, VipEntry, { MAX_VIPS as usize }> = HashMap::new();

#[btf_map(name = "carp_devs")]
pub static CARPDEVS: HashMap<u32, CarpdevEntry, { MAX_CARPDEVS as usize }> = HashMap::new();

#[btf_map(name = "carp_counters")]
pub static COUNTERS: PerCpuArray<DataplaneCounters, 1> = PerCpuArray::new();

#[btf_map(name = "carp_adverts")]
pub static ADVERTS: RingBuf<AdvertEvent, { ADVERT_RING_BYTES as usize }> = RingBuf::new();

/// Written by carpd only (see `fastpath`).
#[btf_map(name = "carp_master_adverts")]
pub static MASTER_ADVERTS: HashMap<MasterAdvertKey, MasterAdvert, { MAX_MASTER_ADVERTS as usize }> =
    HashMap::new();

/// Written by the program only: carpd never rewrites an arrival time.
#[btf_map(name = "carp_master_seen")]
pub static MASTER_SEEN: HashMap<MasterAdvertKey, u64, { MAX_MASTER_ADVERTS as usize }> =
    HashMap::new();

/// VRRPv3 routers served (see `vrrp`); their state is in `carp_vhids` under the same key.
#[btf_map(name = "vrrp_routers")]
pub static VRRP_ROUTERS: HashMap<VhidKey, u32, { MAX_VHIDS as usize }> = HashMap::new();

#[btf_map(name = "vrrp_counters")]
pub static VRRP_COUNTERS: PerCpuArray<VrrpCounters, 1> = PerCpuArray::new();
/// Balanced carp interfaces, by carpdev and leader vhid (see `lb`). Written by carpd only.
#[btf_map(name = "lb_groups")]
pub static LB_GROUPS: HashMap<VhidKey, LbGroup, { MAX_LB_GROUPS as usize }> = HashMap::new();

#[btf_map(name = "carp_guards")]
pub static GUARDS: HashMap<u32, VhidKey, { MAX_VHIDS as usize }> = HashMap::new();

/// Bumps one counter of this CPU's copy. Per-CPU, so no atomics are needed.
#[inline(always)]
pub fn count(field: fn(&mut DataplaneCounters) -> &mut u64) {
    if let Some(counters) = COUNTERS.get_ptr_mut(0) {
        // SAFETY: per-CPU slot, only this program on this CPU writes it while we run.
        let slot = field(unsafe { &mut *counters });
        *slot += 1;
    }
}

/// What the program knows about a vhid on this carpdev, if it serves it.
#[inline(always)]
pub fn vhid_entry(ifindex: u32, vhid: u8) -> Option<VhidEntry> {
    slot_entry(ifindex, vhid as u32)
}

/// The entry under a map key's `vhid` slot: a CARP vhid or a VRRP router
/// (`carp_common::vrrp::vrrp_slot`), as the address entries name it.
#[inline(always)]
pub fn slot_entry(ifindex: u32, slot: u32) -> Option<VhidEntry> {
    let key = VhidKey {
        ifindex,
        vhid: slot,
    };
    // SAFETY: the value is copied out at once; carpd rewrites an entry only when its state
    // changes (the deadline is in `DEADLINES`), and the kernel swaps hash elements whole.
    unsafe { VHIDS.get(key).copied() }
}

/// True while this host is master for the vhid and carpd keeps the deadline fresh. The one
/// test behind every "may this host speak for the vhid" decision: ARP and NS answers, frames
/// to the virtual MAC, and the egress guard of the carp interface.
#[inline(always)]
pub fn is_live_master(entry: &VhidEntry) -> bool {
    if entry.state != VHID_STATE_MASTER {
        return false;
    }
    // `NO_DEADLINE_SLOT` is out of range: the lookup fails and the entry is not live.
    let Some(deadline) = DEADLINES.get_ptr(entry.deadline_slot) else {
        return false;
    };
    // SAFETY: a helper call without arguments.
    let now = unsafe { aya_ebpf::helpers::bpf_ktime_get_ns() };
    // SAFETY: an aligned u64 of the array, read once: carpd stores into it at any moment,
    // a whole u64 at a time.
    now < unsafe { core::ptr::read_volatile(deadline) }
}
