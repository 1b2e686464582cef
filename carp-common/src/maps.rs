//! Keys and values of the BPF maps shared by the dataplane programs (the XDP program on the
//! carpdevs, the egress guard on the carp interfaces) and carpd.
//!
//! Every type is `#[repr(C)]` with explicit padding so that the layout is the same in the
//! BPF object and in userspace, and so that the BTF the object carries names every field
//! (`bpftool map dump` prints them). Pinned under the pin directory (default
//! `/sys/fs/bpf/carp`) with the names in [`pin`].

/// Names of the pinned maps and links inside the pin directory. They are also the map
/// names in the BPF object.
pub mod pin {
    /// Per (carpdev, vhid) election state: [`super::VhidKey`] → [`super::VhidEntry`].
    pub const VHIDS: &str = "carp_vhids";
    /// Virtual IPv4 addresses: [`super::Vip4Key`] → [`super::VipEntry`].
    pub const VIP4: &str = "carp_vip4";
    /// Virtual IPv6 addresses: [`super::Vip6Key`] → [`super::VipEntry`].
    pub const VIP6: &str = "carp_vip6";
    /// Carpdevs the program serves: ifindex (`u32`) → [`super::CarpdevEntry`].
    pub const CARPDEVS: &str = "carp_devs";
    /// Per-CPU dataplane counters: index 0 → [`super::DataplaneCounters`].
    pub const COUNTERS: &str = "carp_counters";
    /// Ring buffer of valid advertisements for served vhids: [`super::AdvertEvent`].
    pub const ADVERTS: &str = "carp_adverts";
    /// The vhid each carp interface belongs to, for its egress guard: carp interface
    /// ifindex (`u32`) → [`super::VhidKey`].
    pub const GUARDS: &str = "carp_guards";
    /// The current master's advert per (carpdev, vhid, family), as carpd last authenticated
    /// it while BACKUP: [`super::MasterAdvertKey`] → [`super::MasterAdvert`].
    pub const MASTER_ADVERTS: &str = "carp_master_adverts";
    /// When XDP last consumed an advert identical to the published one:
    /// [`super::MasterAdvertKey`] → CLOCK_MONOTONIC nanoseconds (`u64`).
    pub const MASTER_SEEN: &str = "carp_master_seen";
    /// The VRRPv3 virtual routers served: [`super::VhidKey`] (its `vhid` is
    /// `crate::vrrp::vrrp_slot`) → flags (`u32`, 0). Their election state is in
    /// [`VHIDS`] under the same key.
    pub const VRRP_ROUTERS: &str = "vrrp_routers";
    /// Per-CPU VRRP counters: index 0 → [`super::VrrpCounters`].
    pub const VRRP_COUNTERS: &str = "vrrp_counters";
    /// Balanced carp interfaces: [`super::VhidKey`] of the leader node → [`super::LbGroup`].
    pub const LB_GROUPS: &str = "lb_groups";
    /// The masters' fail-silent deadlines: [`super::VhidEntry::deadline_slot`] (`u32`
    /// index) → CLOCK_MONOTONIC nanoseconds (`u64`). An array that carpd maps into its own
    /// memory (`BPF_F_MMAPABLE`): pushing a deadline forward with each advert is one store,
    /// not a system call.
    pub const DEADLINES: &str = "carp_deadlines";
    /// Subdirectory holding one pinned XDP link per carpdev, named after the interface.
    pub const LINKS_DIR: &str = "links";
}

/// Capacity of the vhid map (vhids across all carpdevs).
pub const MAX_VHIDS: u32 = 1024;
/// Capacity of each virtual-address map.
pub const MAX_VIPS: u32 = 4096;
/// Capacity of the carpdev map.
pub const MAX_CARPDEVS: u32 = 64;
/// Size of the advertisement ring buffer in bytes (a power of two, a multiple of the page size).
/// The default: carpd can set another size at load (`--advert-ring-bytes`).
pub const ADVERT_RING_BYTES: u32 = 256 * 1024;
/// Capacity of the master-advert maps: one entry per vhid and family.
pub const MAX_MASTER_ADVERTS: u32 = MAX_VHIDS * 2;
/// Capacity of the deadline array: one slot per `carp_vhids` entry.
pub const MAX_DEADLINES: u32 = MAX_VHIDS;
/// [`VhidEntry::deadline_slot`] of an entry that has no deadline: never a live master
/// (out of the array's range, so the program's lookup fails).
pub const NO_DEADLINE_SLOT: u32 = u32::MAX;
/// `BPF_F_MMAPABLE`: an array map that user space can mmap.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// Capacity of the load-balancing map (balanced carp interfaces across all carpdevs).
pub const MAX_LB_GROUPS: u32 = 256;

/// `VhidEntry::state` values. Mirrors the election state of the vhid in carpd.
pub const VHID_STATE_INIT: u32 = 0;
pub const VHID_STATE_BACKUP: u32 = 1;
pub const VHID_STATE_MASTER: u32 = 2;

/// Key of the vhid map: one election on one carpdev.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VhidKey {
    pub ifindex: u32,
    pub vhid: u32,
}

/// What the dataplane knows about one vhid.
///
/// The program answers for the vhid only while `state == VHID_STATE_MASTER` **and**
/// `bpf_ktime_get_ns()` is before the deadline in slot `deadline_slot` of `carp_deadlines`.
/// carpd pushes the deadline forward every time an advertisement leaves, to just before the
/// earliest moment a backup can take over (three of the master's intervals less a margin:
/// carp-daemon's `dataplane::deadline`); when carpd stops (hang, crash, SIGKILL) the
/// deadline passes and the host falls silent on its own: fail-silent rather than
/// fail-split-brain. The deadline lives in an array of its own, which carpd writes through a
/// memory mapping: this entry is rewritten only when the state changes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VhidEntry {
    /// One of `VHID_STATE_*`.
    pub state: u32,
    /// Advertisement interval in 1/256 s (advbase * 256 + advskew), for readers of the map.
    pub interval_ticks: u32,
    /// Index in `carp_deadlines` of the CLOCK_MONOTONIC nanoseconds (the clock of
    /// `bpf_ktime_get_ns`) until which a MASTER entry is honoured; [`NO_DEADLINE_SLOT`]: never.
    pub deadline_slot: u32,
    pub _reserved: u32,
    /// Virtual MAC used as the source of ARP/NA replies: `00:00:5e:00:01:<vhid>`.
    pub vmac: [u8; 6],
    /// `VHID_FLAG_*` bits.
    pub flags: u8,
    pub _pad: u8,
}

/// `VhidEntry::flags`: a VRRPv3 router that is neither the address owner (priority 255) nor
/// in accept mode (RFC 5798 6.4.3, RFC 9568): as master, IP packets to its virtual MAC and
/// one of its addresses are dropped (`vrrp_dropped_accept_mode`); ARP and neighbour
/// discovery for them are still answered. Never set for a CARP vhid.
pub const VHID_FLAG_VRRP_NO_ACCEPT: u8 = 1;

/// Key of the IPv4 virtual-address map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vip4Key {
    pub ifindex: u32,
    /// Address in network byte order.
    pub addr: [u8; 4],
}

/// Key of the IPv6 virtual-address map.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Vip6Key {
    pub ifindex: u32,
    /// Address in network byte order.
    pub addr: [u8; 16],
}

/// `VipEntry::flags`: set the router flag in neighbour advertisements (host forwards).
pub const VIP_FLAG_ROUTER: u32 = 1;

/// Which vhid a virtual address belongs to.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VipEntry {
    pub vhid: u32,
    /// `VIP_FLAG_*` bits.
    pub flags: u32,
}

/// A carpdev the program serves.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CarpdevEntry {
    /// The carpdev's own MAC: an advert from it is this host's own frame, looped back. carpd's
    /// adverts leave from the virtual MAC, which peers share, so its own are recognised by
    /// the counter (carpd's loop check); this rule never matches a peer's advert.
    pub mac: [u8; 6],
    pub _pad: [u8; 2],
}

/// A balanced carp interface (OpenBSD `carpnodes`): its nodes in vhid order, bucket `i`
/// belonging to `vhids[i]`, and each node's election state here in `nodes[i]`.
///
/// The per-packet decision reads this one entry (after the carpdev's): who serves a bucket
/// is `nodes[i]`, tested as any vhid entry (state MASTER and the fail-silent deadline not
/// passed: the node's `deadline_slot` in `carp_deadlines`). carpd rewrites the entry whole
/// when a node changes state; a master's adverts only push its slot's deadline forward. The
/// `carp_vhids` entries of the nodes then only say which vhids are served (for the advert
/// filter) and their state without a deadline slot, and are never consulted by the
/// balancing.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LbGroup {
    /// One of `crate::lb::LB_MODE_*`.
    pub mode: u32,
    /// Number of nodes, 2..=32.
    pub count: u32,
    /// The node vhids in vhid order; the first is the leader.
    pub vhids: [u8; crate::lb::LB_MAX_NODES],
    /// The carpdev's own MAC: the source of ARP/NA answers in `ip` and `ip-stealth` modes,
    /// which never send from the carp MAC.
    pub dev_mac: [u8; 6],
    pub _pad: [u8; 2],
    /// Node `i`'s state here (`nodes[0]` is the leader's, which also decides ARP and NS).
    pub nodes: [VhidEntry; crate::lb::LB_MAX_NODES],
}

/// Declares [`DataplaneCounters`] from one list of fields, and generates everything else that
/// walks the fields: [`DataplaneCounters::NAMES`], [`DataplaneCounters::FIELDS`] (name and
/// accessor), [`DataplaneCounters::values`] and the element-wise sum (`+=`, `Sum`), so that a
/// counter added later is added here only (plus its wording in `carpctl stats`). The struct is
/// emitted exactly as written: the field order is the map value's layout, which the XDP
/// program, the pinned map and `bpftool` share.
macro_rules! dataplane_counters {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident: u64,
            )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: u64,
            )*
        }

        impl $name {
            /// How many counters there are.
            pub const COUNT: usize = [$(stringify!($field)),*].len();

            /// Every counter's name (the field name, as `bpftool` prints it), in field order.
            pub const NAMES: [&'static str; Self::COUNT] = [$(stringify!($field)),*];

            /// Every counter's name and accessor, in field order.
            pub const FIELDS: [(&'static str, fn(&$name) -> u64); Self::COUNT] =
                [$((stringify!($field), |c: &$name| c.$field)),*];

            /// Every counter's name and value, in field order.
            pub fn values(&self) -> [(&'static str, u64); Self::COUNT] {
                [$((stringify!($field), self.$field)),*]
            }
        }

        /// Element-wise sum: per-CPU copies add up to the totals.
        impl core::ops::AddAssign<&$name> for $name {
            fn add_assign(&mut self, other: &$name) {
                $(self.$field += other.$field;)*
            }
        }

        impl<'a> core::iter::Sum<&'a $name> for $name {
            fn sum<I: Iterator<Item = &'a $name>>(iter: I) -> $name {
                let mut total = $name::default();
                for c in iter {
                    total += c;
                }
                total
            }
        }
    };
}

dataplane_counters! {
    /// Dataplane counters, one copy per CPU (`bpftool` shows each CPU's values).
    ///
    /// Every frame the program drops is counted under exactly one reason.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
    pub struct DataplaneCounters {
        /// ARP requests for a virtual address answered (XDP_TX) as master.
        pub arp_replied: u64,
        /// ARP requests for a virtual address dropped because this host is not (live) master.
        pub arp_dropped_not_master: u64,
        /// Gratuitous ARP requests (sender = target = a virtual address) dropped: nobody answers
        /// them, and the new master's announcements must not reach the kernel of a backup.
        pub arp_gratuitous_dropped: u64,
        /// Neighbour solicitations for a virtual address answered as master.
        pub ns_replied: u64,
        /// Neighbour solicitations for a virtual address dropped as not master.
        pub ns_dropped_not_master: u64,
        /// Frames to a served virtual MAC passed to the stack as master.
        pub vmac_accepted: u64,
        /// Frames to a served virtual MAC dropped as not master.
        pub vmac_dropped_not_master: u64,
        /// Valid advertisements for a served vhid handed to carpd through the ring buffer.
        pub advert_delivered: u64,
        /// Advertisements for a vhid not served here, passed to the stack (may be VRRP).
        pub advert_passed_unknown_vhid: u64,
        /// Advertisements dropped for bad length: IP payload shorter than the CARP header, or a
        /// frame shorter than its IP header says.
        pub advert_bad_length: u64,
        /// Advertisements dropped: version not 2.
        pub advert_bad_version: u64,
        /// Advertisements dropped: TTL / hop limit not 255.
        pub advert_bad_ttl: u64,
        /// Advertisements dropped: CARP checksum wrong.
        pub advert_bad_checksum: u64,
        /// Advertisements dropped: sent by this host (looped back).
        pub advert_own_source: u64,
        /// Advertisements dropped: ring buffer full (carpd not keeping up).
        pub advert_ring_full: u64,
        /// VLAN-tagged frames passed to the stack untouched.
        pub vlan_passed: u64,
        /// Frames leaving a carp interface dropped by its egress guard: this host is not the
        /// live master of the interface's vhid (BACKUP, INIT, master deadline passed), or the
        /// interface is not (or no longer) known to the dataplane.
        pub egress_dropped_not_master: u64,

        // --- The responder's input checks. ---------------------------------------------------
        /// ARP requests for a virtual address dropped: the Ethernet source or the ARP sender
        /// hardware address is broadcast or multicast.
        pub arp_dropped_bad_source: u64,
        /// Neighbour solicitations for a virtual address dropped as invalid (RFC 4861 7.1.1):
        /// hop limit not 255, code not 0, a multicast Ethernet or IP source, an option of length
        /// zero or not fitting the payload, or, from the unspecified address, a destination other
        /// than a solicited-node address or a source link-layer option.
        pub ns_dropped_invalid: u64,
        /// Advertisements identical to the current master's last authenticated one (same 36
        /// header bytes, same IP source, as published in `carp_master_adverts`), consumed in XDP:
        /// their arrival time goes to `carp_master_seen` instead of the ring to carpd.
        pub advert_master_fastpath: u64,

        // --- Load balancing (OpenBSD carp_lsdrop). --------------------------------------
        /// IPv4/IPv6 packets to the carp MAC of a balanced interface passed: this host is
        /// the live master of the packet's bucket.
        pub lb_accepted: u64,
        /// Such packets dropped: another node's bucket (or its master here is not live).
        pub lb_dropped_other_bucket: u64,
    }
}

dataplane_counters! {
    /// The dataplane's VRRPv3 counters, apart from CARP's, one copy per CPU. Every VRRP
    /// advert for a router served here is counted once as delivered or under one drop reason.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    #[cfg_attr(feature = "user", derive(serde::Serialize, serde::Deserialize))]
    pub struct VrrpCounters {
        /// Valid adverts handed to carpd through the ring buffer (header only: carpd elects
        /// on priority, interval and source).
        pub vrrp_delivered: u64,
        /// Of those, adverts whose IPv4 checksum leaves the pseudo-header out (RFC 9568).
        pub vrrp_checksum_message_only: u64,
        /// Dropped: TTL / hop limit not 255.
        pub vrrp_bad_ttl: u64,
        /// Dropped: shorter than the header and the addresses it announces, no address, or
        /// more than `VRRP_XDP_MAX_ADDRESSES`.
        pub vrrp_bad_length: u64,
        /// Dropped: checksum wrong in both forms.
        pub vrrp_bad_checksum: u64,
        /// Dropped: sent from the carpdev's own MAC (looped back).
        pub vrrp_own_source: u64,
        /// Passed to the stack: sent to a unicast address (carpd speaks VRRP to the group).
        pub vrrp_passed_unicast: u64,
        /// Dropped: ring buffer full.
        pub vrrp_ring_full: u64,
        /// Not an advert: an IPv4/IPv6 packet to a master router's virtual MAC and one of its
        /// addresses, dropped because the router is neither the address owner nor in accept
        /// mode (`VHID_FLAG_VRRP_NO_ACCEPT`).
        pub vrrp_dropped_accept_mode: u64,
    }
}

/// A received advertisement handed from XDP to carpd through the ring buffer.
///
/// The program has already checked length, TTL, the checksum (over the 36 header bytes, as
/// OpenBSD), the version and that the vhid is served on `ifindex`; carpd authenticates and
/// runs the election.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdvertEvent {
    pub ifindex: u32,
    /// 4 or 6.
    pub family: u8,
    pub ttl: u8,
    /// 1: sent to an address of this host (a unicast peer's advert, OpenBSD `carppeer`);
    /// 0: sent to the CARP group (224.0.0.18 / ff02::12).
    pub unicast: u8,
    pub _pad: u8,
    /// Source address; IPv4 in the first 4 bytes.
    pub src: [u8; 16],
    pub src_mac: [u8; 6],
    pub _pad2: [u8; 2],
    /// The 36-byte CARP header as received; for a VRRPv3 advert (version nibble 3), its
    /// 8-byte header followed by zeros.
    pub carp: [u8; 36],
    pub _pad3: [u8; 4],
}

/// `MasterAdvertKey::family` values.
pub const FAMILY_V4: u8 = 4;
pub const FAMILY_V6: u8 = 6;

/// Key of the master-advert maps: one vhid on one carpdev, one IP family (a backup times
/// the master per family, as OpenBSD's `md_tmo` and `md6_tmo`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MasterAdvertKey {
    pub ifindex: u32,
    pub vhid: u8,
    /// [`FAMILY_V4`] or [`FAMILY_V6`], as [`AdvertEvent::family`].
    pub family: u8,
    pub _pad: [u8; 2],
}

/// What the current master's advert looks like, as carpd authenticated it while BACKUP.
/// XDP consumes an advert equal to it in `carp` and `src` (TTL 255 is checked before) and
/// only records when it came.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MasterAdvert {
    /// IP source; IPv4 in the first 4 bytes, the rest zero (as [`AdvertEvent::src`]).
    pub src: [u8; 16],
    /// The 36-byte CARP header, counter and HMAC included.
    pub carp: [u8; 36],
    pub _pad: [u8; 4],
}

#[cfg(feature = "user")]
#[expect(
    clippy::undocumented_unsafe_blocks,
    reason = "the one SAFETY comment below covers every impl"
)]
mod pod {
    use super::*;
    // SAFETY: every type is #[repr(C)], Copy, made only of integers and byte arrays, with
    // explicit padding fields, so any bit pattern is valid and none has uninitialised bytes.
    unsafe impl aya::Pod for VhidKey {}
    unsafe impl aya::Pod for VhidEntry {}
    unsafe impl aya::Pod for Vip4Key {}
    unsafe impl aya::Pod for Vip6Key {}
    unsafe impl aya::Pod for VipEntry {}
    unsafe impl aya::Pod for CarpdevEntry {}
    unsafe impl aya::Pod for DataplaneCounters {}
    unsafe impl aya::Pod for AdvertEvent {}
    unsafe impl aya::Pod for MasterAdvertKey {}
    unsafe impl aya::Pod for MasterAdvert {}
    unsafe impl aya::Pod for VrrpCounters {}
    unsafe impl aya::Pod for LbGroup {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::size_of;

    #[test]
    fn layouts_have_no_implicit_padding() {
        assert_eq!(size_of::<VhidKey>(), 8);
        assert_eq!(size_of::<VhidEntry>(), 24);
        assert_eq!(size_of::<Vip4Key>(), 8);
        assert_eq!(size_of::<Vip6Key>(), 20);
        assert_eq!(size_of::<VipEntry>(), 8);
        assert_eq!(size_of::<CarpdevEntry>(), 8);
        assert_eq!(size_of::<DataplaneCounters>(), 22 * 8);
        assert_eq!(size_of::<LbGroup>(), 4 + 4 + 32 + 8 + 32 * 24);
        assert_eq!(core::mem::offset_of!(LbGroup, nodes) % 8, 0);
        assert_eq!(size_of::<AdvertEvent>(), 4 + 4 + 16 + 8 + 36 + 4);
        assert_eq!(size_of::<AdvertEvent>() % 8, 0);
        assert_eq!(size_of::<MasterAdvertKey>(), 8);
        assert_eq!(size_of::<MasterAdvert>(), 16 + 36 + 4);
        assert_eq!(size_of::<DataplaneCounters>(), DataplaneCounters::COUNT * 8);
    }

    /// Counters as they lie in the map value: the i-th u64 holds `i + 1`.
    fn counters_by_position() -> DataplaneCounters {
        let mut raw = [0u64; DataplaneCounters::COUNT];
        for (i, v) in raw.iter_mut().enumerate() {
            *v = i as u64 + 1;
        }
        // SAFETY: DataplaneCounters is #[repr(C)] with COUNT u64 fields and nothing else
        // (checked by the size above), so it has the layout of [u64; COUNT].
        unsafe { core::mem::transmute::<[u64; DataplaneCounters::COUNT], DataplaneCounters>(raw) }
    }

    #[test]
    fn the_generated_lists_follow_the_field_order() {
        let c = counters_by_position();
        for (i, ((name, get), (value_name, value))) in
            DataplaneCounters::FIELDS.iter().zip(c.values()).enumerate()
        {
            assert_eq!(get(&c), i as u64 + 1, "{name}");
            assert_eq!((*name, value), (value_name, i as u64 + 1));
            assert_eq!(DataplaneCounters::NAMES[i], *name);
        }
        assert_eq!(DataplaneCounters::NAMES[0], "arp_replied");
        assert_eq!(c.arp_replied, 1);
        assert_eq!(c.lb_dropped_other_bucket, DataplaneCounters::COUNT as u64);
        assert_eq!(
            DataplaneCounters::NAMES[DataplaneCounters::COUNT - 1],
            "lb_dropped_other_bucket"
        );
    }

    #[test]
    fn counters_sum_element_wise() {
        let c = counters_by_position();
        let total: DataplaneCounters = [c, c, DataplaneCounters::default()].iter().sum();
        for ((name, get), (_, value)) in DataplaneCounters::FIELDS.iter().zip(c.values()) {
            assert_eq!(get(&total), 2 * value, "{name}");
        }
        let mut acc = DataplaneCounters::default();
        acc += &c;
        assert_eq!(acc, c);
    }
}
