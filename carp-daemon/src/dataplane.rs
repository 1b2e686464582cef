//! The XDP dataplane as carpd drives it: load the embedded programs, pin their maps and links
//! under the pin directory, attach the XDP program to carpdevs and the egress guard to carp
//! interfaces, and write the election state into the maps.
//!
//! Pin layout (default `/sys/fs/bpf/carp`, one directory per daemon):
//!
//! ```text
//! <pin-dir>/carp_vhids      (ifindex, vhid) -> state, deadline slot, virtual MAC
//! <pin-dir>/carp_deadlines  deadline slot -> the master's fail-silent deadline (mmapable)
//! <pin-dir>/carp_vip4       (ifindex, IPv4) -> vhid
//! <pin-dir>/carp_vip6       (ifindex, IPv6) -> vhid
//! <pin-dir>/carp_devs       ifindex -> carpdev MAC
//! <pin-dir>/carp_counters   per-CPU dataplane counters
//! <pin-dir>/carp_adverts    ring buffer of received advertisements
//! <pin-dir>/carp_guards     carp interface ifindex -> (carpdev ifindex, vhid)
//! <pin-dir>/carp_master_adverts  (ifindex, vhid, family) -> the followed master's advert
//! <pin-dir>/carp_master_seen     (ifindex, vhid, family) -> when XDP last consumed a repeat
//! <pin-dir>/links/<ifname>  the XDP link of each carpdev
//! ```
//!
//! The egress guard is a clsact filter on each carp interface, not a pinned link: it lives
//! exactly as long as the interface (the kernel removes it with the interface, and nothing
//! removes it before), so a carp interface whose carpd was SIGKILLed stays guarded, and no
//! pin is left behind by an interface deleted behind carpd's back.
//!
//! Everything outlives carpd. A restarted carpd adopts the pinned maps (their entries keep
//! the dataplane silent or answering exactly as before) and swaps its program into each
//! pinned link with `bpf_link_update`, atomically: there is no moment without the program,
//! and so none in which the kernel would answer ARP for a virtual address.
//!
//! The attach mode (`--xdp-mode`) is chosen per carpdev by [`xdp_mode`]: `auto` picks
//! generic on a veth whose peer would drop native XDP_TX, native elsewhere.
//!
//! A BACKUP vhid's master is followed in XDP ([`Dataplane::publish_master_advert`]): repeats
//! of its authenticated advert are consumed there and only their arrival time is kept (see
//! the fast path in carp-ebpf's `fastpath` module, and why it changes nothing in the
//! protocol).
//!
//! The pin directory must be on a bpf filesystem. `ip netns exec` mounts a fresh sysfs over
//! /sys, hiding the host's /sys/fs/bpf: [`check_pin_dir`] says so, and what to do.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        ProgramError, SchedClassifier, TcAttachType, Xdp,
        links::{FdLink, LinkError, PinnedLink},
        tc::{NlOptions, TcAttachOptions, TcError},
        xdp::XdpLink,
    },
};
use carp_common::maps::{
    CarpdevEntry, DataplaneCounters, FAMILY_V4, FAMILY_V6, LbGroup, MasterAdvert, MasterAdvertKey,
    NO_DEADLINE_SLOT, VHID_STATE_BACKUP, VHID_STATE_INIT, VHID_STATE_MASTER, VhidEntry, VhidKey,
    Vip4Key, Vip6Key, VipEntry, pin,
};
use carp_common::wire::virtual_mac;

pub mod deadline;
mod deadlines;
pub use deadlines::DeadlineCell;
mod lb;
mod vrrp;
pub mod xdp_log;
pub mod xdp_mode;

pub use deadline::master_hold;

/// The XDP object built from `carp-ebpf` by build.rs (bpfel-unknown-none, BTF included).
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/carp"));

/// Name of the XDP program inside the object.
const PROGRAM: &str = "carp";

/// Name of the egress guard (a tc classifier) inside the object.
const GUARD_PROGRAM: &str = "carp_guard";

/// Every pinned map, in the order they are created.
const MAP_NAMES: [&str; 13] = [
    pin::VHIDS,
    pin::DEADLINES,
    pin::VIP4,
    pin::VIP6,
    pin::CARPDEVS,
    pin::COUNTERS,
    pin::ADVERTS,
    pin::GUARDS,
    pin::MASTER_ADVERTS,
    pin::MASTER_SEEN,
    pin::VRRP_ROUTERS,
    pin::VRRP_COUNTERS,
    pin::LB_GROUPS,
];

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
    #[error("the XDP program's log ring: {0}")]
    XdpLog(#[from] aya_log::Error),
    #[error("BPF map {map}: {source}")]
    Map {
        map: &'static str,
        source: aya::maps::MapError,
    },
    #[error("pinned link {path}: {source}")]
    Link { path: PathBuf, source: LinkError },
    #[error("pinning {path}: {source}")]
    Pin {
        path: PathBuf,
        source: aya::pin::PinError,
    },
    #[error("pin directory {path}: {source}")]
    PinDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "pin directory {path} is not on a bpf filesystem: {found} is on {fs}{cause}. Either \
         mount one (`mount -t bpf bpf /sys/fs/bpf`, the pin directory under it), or enter \
         only the network namespace, which keeps the host's bpffs (`nsenter \
         --net=/run/netns/NAME carpd ...` instead of `ip netns exec NAME carpd ...`)"
    )]
    NotBpffs {
        path: PathBuf,
        /// The nearest existing directory at or above `path`: the one whose filesystem
        /// was checked.
        found: PathBuf,
        /// That filesystem's name, or its magic number.
        fs: String,
        /// The likely cause, when the filesystem tells it.
        cause: &'static str,
    },
    #[error(
        "advert ring size {bytes}: it must be a power of two and a multiple of the page size \
         ({page} bytes)"
    )]
    RingSize { bytes: u32, page: u32 },
    #[error("mapping BPF map {map} into memory: {source}")]
    Mmap {
        map: &'static str,
        source: std::io::Error,
    },
    #[error("every one of the {0} deadline slots is in use")]
    DeadlinesFull(u32),
    #[error("the program's map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("reading the monotonic clock: {0}")]
    Clock(nix::Error),
    #[error("egress guard on {interface}: {source}")]
    Guard {
        interface: String,
        source: GuardError,
    },
}

/// Why the egress guard could not be put on a carp interface.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("adding the clsact qdisc: {0}")]
    Qdisc(#[source] TcError),
    #[error("attaching the filter: {0}")]
    Attach(#[source] ProgramError),
}

/// How to attach to a carpdev (`--xdp-mode`). `Auto` chooses per carpdev, see [`xdp_mode`]:
/// generic on a veth whose peer is not known to have a native XDP program, native elsewhere
/// (and generic if the driver refuses native).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    #[default]
    Auto,
    Native,
    Generic,
}

/// State of a vhid as the dataplane is told it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VhidDataplaneState {
    Init,
    Backup,
    /// Master until the given CLOCK_MONOTONIC time.
    Master {
        until: Duration,
    },
}

/// CLOCK_MONOTONIC now: the clock of `bpf_ktime_get_ns()`.
pub fn monotonic_now() -> Result<Duration, DataplaneError> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_err(DataplaneError::Clock)?;
    Ok(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
}

/// The loaded program and its maps.
pub struct Dataplane {
    ebpf: Ebpf,
    pin_dir: Option<PathBuf>,
    vhids: HashMap<MapData, VhidKey, VhidEntry>,
    /// The `carp_vhids` entries as last written: a master's refresh, which changes only its
    /// deadline, then writes nothing there.
    vhids_written: std::collections::HashMap<VhidKey, VhidEntry>,
    deadlines: deadlines::Deadlines,
    vip4: HashMap<MapData, Vip4Key, VipEntry>,
    vip6: HashMap<MapData, Vip6Key, VipEntry>,
    carpdevs: HashMap<MapData, u32, CarpdevEntry>,
    counters: PerCpuArray<MapData, DataplaneCounters>,
    adverts: Option<RingBuf<MapData>>,
    guards: HashMap<MapData, u32, VhidKey>,
    master_adverts: HashMap<MapData, MasterAdvertKey, MasterAdvert>,
    master_seen: HashMap<MapData, MasterAdvertKey, u64>,
    /// VRRPv3 routers served (see `dataplane/vrrp.rs`).
    vrrp_routers: HashMap<MapData, VhidKey, u32>,
    vrrp_counters: PerCpuArray<MapData, carp_common::maps::VrrpCounters>,
    /// The VRRP routers whose state entries carry `VHID_FLAG_VRRP_NO_ACCEPT`.
    vrrp_no_accept: std::collections::HashSet<VhidKey>,
    lb_groups: HashMap<MapData, VhidKey, LbGroup>,
    /// The `lb_groups` entries as last written, so that a node's state is one write of its
    /// group (see `dataplane/lb.rs`).
    lb_written: std::collections::HashMap<VhidKey, LbGroup>,
    /// Pinned links this process holds, by interface name.
    links: Vec<(String, PinnedLink)>,
    /// The switch of the program's decision records (`carpctl debug xdp`).
    xdp_log: xdp_log::XdpLog,
}

impl Dataplane {
    /// Loads the program with its maps pinned under `pin_dir`, adopting maps already pinned
    /// there by an earlier run.
    pub fn load_pinned(pin_dir: &Path) -> Result<Self, DataplaneError> {
        Self::load_pinned_with_ring(pin_dir, None)
    }

    /// As [`Dataplane::load_pinned`], with an advert ring of `ring_bytes` instead of
    /// [`carp_common::maps::ADVERT_RING_BYTES`] (checked with [`check_ring_bytes`]). The size
    /// applies when the ring is created: a ring pinned by an earlier run keeps its own.
    pub fn load_pinned_with_ring(
        pin_dir: &Path,
        ring_bytes: Option<u32>,
    ) -> Result<Self, DataplaneError> {
        if let Some(bytes) = ring_bytes {
            check_ring_bytes(bytes)?;
        }
        ensure_bpffs_dir(pin_dir)?;
        std::fs::create_dir_all(pin_dir.join(pin::LINKS_DIR)).map_err(|source| {
            DataplaneError::PinDir {
                path: pin_dir.to_owned(),
                source,
            }
        })?;
        let paths: Vec<(&'static str, PathBuf)> =
            MAP_NAMES.iter().map(|n| (*n, pin_dir.join(n))).collect();
        let mut loader = EbpfLoader::new();
        for (name, path) in &paths {
            loader.map_pin_path(name, path.as_path());
        }
        if let Some(bytes) = ring_bytes {
            loader.map_max_entries(pin::ADVERTS, bytes);
        }
        let ebpf = loader.load(XDP_OBJECT)?;
        Self::from_ebpf(ebpf, Some(pin_dir.to_owned()))
    }

    /// Loads the program with private, unpinned maps (tests, BPF_PROG_TEST_RUN).
    pub fn load_unpinned() -> Result<Self, DataplaneError> {
        let ebpf = EbpfLoader::new().load(XDP_OBJECT)?;
        Self::from_ebpf(ebpf, None)
    }

    fn from_ebpf(mut ebpf: Ebpf, pin_dir: Option<PathBuf>) -> Result<Self, DataplaneError> {
        fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
            ebpf: &mut Ebpf,
            name: &'static str,
        ) -> Result<T, DataplaneError> {
            let map = ebpf
                .take_map(name)
                .ok_or(DataplaneError::MissingMap(name))?;
            T::try_from(map).map_err(|source| DataplaneError::Map { map: name, source })
        }
        let vhids = take(&mut ebpf, pin::VHIDS)?;
        let deadlines =
            deadlines::Deadlines::new(take::<Array<MapData, u64>>(&mut ebpf, pin::DEADLINES)?)?;
        let vip4 = take(&mut ebpf, pin::VIP4)?;
        let vip6 = take(&mut ebpf, pin::VIP6)?;
        let carpdevs = take(&mut ebpf, pin::CARPDEVS)?;
        let counters = take(&mut ebpf, pin::COUNTERS)?;
        let adverts = Some(take(&mut ebpf, pin::ADVERTS)?);
        let guards = take(&mut ebpf, pin::GUARDS)?;
        let master_adverts = take(&mut ebpf, pin::MASTER_ADVERTS)?;
        let master_seen = take(&mut ebpf, pin::MASTER_SEEN)?;
        let vrrp_routers = take(&mut ebpf, pin::VRRP_ROUTERS)?;
        let vrrp_counters = take(&mut ebpf, pin::VRRP_COUNTERS)?;
        let lb_groups = take(&mut ebpf, pin::LB_GROUPS)?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or(DataplaneError::Program(ProgramError::NotLoaded))?
            .try_into()?;
        program.load()?;
        let guard: &mut SchedClassifier = ebpf
            .program_mut(GUARD_PROGRAM)
            .ok_or(DataplaneError::Program(ProgramError::NotLoaded))?
            .try_into()?;
        guard.load()?;
        let xdp_log = xdp_log::XdpLog::load(&mut ebpf)?;
        Ok(Self {
            ebpf,
            pin_dir,
            vhids,
            vhids_written: std::collections::HashMap::new(),
            deadlines,
            vip4,
            vip6,
            carpdevs,
            counters,
            adverts,
            guards,
            master_adverts,
            master_seen,
            vrrp_routers,
            vrrp_counters,
            vrrp_no_accept: Default::default(),
            lb_groups,
            lb_written: std::collections::HashMap::new(),
            links: Vec::new(),
            xdp_log,
        })
    }

    /// The XDP program (for BPF_PROG_TEST_RUN in tests).
    pub fn program(&self) -> &Xdp {
        self.ebpf
            .program(PROGRAM)
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .expect("the program was loaded as XDP in from_ebpf")
    }

    /// The egress guard program (for BPF_PROG_TEST_RUN in tests).
    pub fn guard_program(&self) -> &SchedClassifier {
        self.ebpf
            .program(GUARD_PROGRAM)
            .and_then(|p| <&SchedClassifier>::try_from(p).ok())
            .expect("the guard was loaded as a classifier in from_ebpf")
    }

    fn program_mut(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(PROGRAM)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .expect("the program was loaded as XDP in from_ebpf")
    }

    /// Turns the program's decision records on or off (`carpctl debug xdp on|off`).
    pub fn set_xdp_log(&mut self, on: bool) -> Result<(), DataplaneError> {
        self.xdp_log.set(on)
    }

    /// Whether the program's decision records are on.
    pub fn xdp_log_on(&self) -> bool {
        self.xdp_log.is_on()
    }

    /// Whether carpd writes one of its own decision records now (see
    /// [`xdp_log::XdpLog::carpd_record_due`]).
    pub fn carpd_record_due(&mut self) -> bool {
        self.xdp_log.carpd_record_due()
    }

    /// The reader of the program's decision records (aya-log's ring), handing them to
    /// `bridge`; carpd takes it once and polls it with [`xdp_log::pump`].
    pub fn take_xdp_logger(
        &mut self,
        bridge: xdp_log::Bridge,
    ) -> Result<aya_log::EbpfLogger<xdp_log::Bridge>, DataplaneError> {
        Ok(aya_log::EbpfLogger::init_with_logger(
            &mut self.ebpf,
            bridge,
        )?)
    }

    /// The advertisement ring buffer; carpd takes it once to poll it asynchronously.
    pub fn take_advert_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.adverts.take()
    }

    /// Attaches the program to `ifname`. With a pin directory, an XDP link pinned there by an
    /// earlier run is taken over atomically (`bpf_link_update`); otherwise a new link is
    /// created and pinned, in the mode [`xdp_mode::plan_for`] chooses for `mode`. Logs the mode
    /// and why at info. Returns whether an existing link was adopted.
    pub fn attach(&mut self, ifname: &str, mode: AttachMode) -> Result<bool, DataplaneError> {
        let plan = xdp_mode::plan_for(ifname, mode);
        let Some(pin_dir) = self.pin_dir.clone() else {
            self.attach_planned(ifname, &plan)?;
            return Ok(false);
        };
        let path = pin_dir.join(pin::LINKS_DIR).join(ifname);
        if path.exists() {
            match PinnedLink::from_pin(&path) {
                Ok(pinned) => {
                    let link = XdpLink::try_from(FdLink::from(pinned)).map_err(|source| {
                        DataplaneError::Link {
                            path: path.clone(),
                            source,
                        }
                    })?;
                    // The link stays pinned: the pin file is untouched, we only swap the program.
                    let id = self.program_mut().attach_to_link(link)?;
                    let link = self.program_mut().take_link(id)?;
                    let fd_link =
                        FdLink::try_from(link).map_err(|source| DataplaneError::Link {
                            path: path.clone(),
                            source,
                        })?;
                    let pinned =
                        PinnedLink::from_pin(&path).map_err(|source| DataplaneError::Link {
                            path: path.clone(),
                            source,
                        })?;
                    drop(fd_link);
                    self.links.push((ifname.to_owned(), pinned));
                    log_adopted(ifname, &plan);
                    return Ok(true);
                }
                Err(err) => {
                    // A stale pin (its interface is gone): remove it and attach afresh.
                    tracing::warn!(path = %path.display(), error = %err, "removing stale XDP link pin");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let id = self.attach_planned(ifname, &plan)?;
        let link = self.program_mut().take_link(id)?;
        let fd_link = FdLink::try_from(link).map_err(|source| DataplaneError::Link {
            path: path.clone(),
            source,
        })?;
        let pinned = fd_link.pin(&path).map_err(|source| DataplaneError::Pin {
            path: path.clone(),
            source,
        })?;
        self.links.push((ifname.to_owned(), pinned));
        Ok(false)
    }

    /// Attaches a new link in the planned mode, falling back to generic where the plan allows
    /// it and the driver refuses native XDP; logs the mode it ends up in.
    fn attach_planned(
        &mut self,
        ifname: &str,
        plan: &xdp_mode::Plan,
    ) -> Result<aya::programs::xdp::XdpLinkId, DataplaneError> {
        let err = match self.program_mut().attach(ifname, plan.mode.xdp_mode()) {
            Ok(id) => {
                tracing::info!(carpdev = %ifname, mode = %plan.mode, reason = ?plan.reason, "XDP attached");
                return Ok(id);
            }
            Err(err) => err,
        };
        if !(plan.mode == xdp_mode::Mode::Native && plan.generic_if_refused) {
            return Err(err.into());
        }
        let refused = error_chain(&err);
        tracing::warn!(carpdev = %ifname, error = %refused, "the driver refused native XDP; attaching in generic mode");
        let id = self
            .program_mut()
            .attach(ifname, xdp_mode::Mode::Generic.xdp_mode())?;
        let reason = format!("{}, which refused native XDP: {refused}", plan.reason);
        tracing::info!(carpdev = %ifname, mode = %xdp_mode::Mode::Generic, reason = ?reason, "XDP attached");
        Ok(id)
    }

    /// Detaches the program from `ifname` and removes the link's pin.
    pub fn detach(&mut self, ifname: &str) -> Result<(), DataplaneError> {
        if let Some(pos) = self.links.iter().position(|(name, _)| name == ifname) {
            let (_, pinned) = self.links.swap_remove(pos);
            let path = self.link_pin_path(ifname);
            let fd_link = pinned.unpin().map_err(|source| DataplaneError::PinDir {
                path: path.unwrap_or_default(),
                source,
            })?;
            drop(fd_link); // the last reference: the kernel detaches the program
        }
        Ok(())
    }

    fn link_pin_path(&self, ifname: &str) -> Option<PathBuf> {
        self.pin_dir
            .as_ref()
            .map(|d| d.join(pin::LINKS_DIR).join(ifname))
    }

    /// Puts the egress guard on the carp interface `carp_ifname` (ifindex `carp_ifindex`),
    /// which belongs to `vhid` on the carpdev `carpdev_ifindex`: from then on a frame leaves
    /// the interface only while this host is that vhid's live master.
    ///
    /// The map entry is written first, so the guard never runs without knowing its vhid
    /// (it would drop everything, which is safe, but would count it as unknown). The filter
    /// goes into a clsact qdisc created here: call this once, on a carp interface carpd has
    /// just created. The kernel removes both with the interface; carpd never detaches them
    /// itself (see the module doc).
    pub fn attach_guard(
        &mut self,
        carp_ifname: &str,
        carp_ifindex: u32,
        carpdev_ifindex: u32,
        vhid: impl Into<u32>,
    ) -> Result<(), DataplaneError> {
        self.set_guard(carp_ifindex, carpdev_ifindex, vhid)?;
        let fail = |source| DataplaneError::Guard {
            interface: carp_ifname.to_owned(),
            source,
        };
        aya::programs::tc::qdisc_add_clsact(carp_ifname).map_err(|e| fail(GuardError::Qdisc(e)))?;
        let guard: &mut SchedClassifier = self
            .ebpf
            .program_mut(GUARD_PROGRAM)
            .and_then(|p| <&mut SchedClassifier>::try_from(p).ok())
            .expect("the guard was loaded as a classifier in from_ebpf");
        // Netlink (clsact) rather than a tcx link: a tcx link would go with carpd's file
        // descriptor unless pinned, and a pin would outlive the interface.
        let id = guard
            .attach_with_options(
                carp_ifname,
                TcAttachType::Egress,
                TcAttachOptions::Netlink(NlOptions::default()),
            )
            .map_err(|e| fail(GuardError::Attach(e)))?;
        let link = guard
            .take_link(id)
            .map_err(|e| fail(GuardError::Attach(e)))?;
        // Dropping the link would detach the filter; it must stay for as long as the
        // interface exists, whatever happens to carpd.
        std::mem::forget(link);
        Ok(())
    }

    /// Records which vhid (or VRRP router slot, `carp_common::vrrp::vrrp_slot`) the carp
    /// interface `carp_ifindex` belongs to, for its guard.
    pub fn set_guard(
        &mut self,
        carp_ifindex: u32,
        carpdev_ifindex: u32,
        vhid: impl Into<u32>,
    ) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex: carpdev_ifindex,
            vhid: vhid.into(),
        };
        self.guards
            .insert(carp_ifindex, key, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::GUARDS,
                source,
            })
    }

    /// Forgets a carp interface (after it was deleted): a guard still attached to an
    /// interface of that index would drop everything.
    pub fn remove_guard(&mut self, carp_ifindex: u32) -> Result<(), DataplaneError> {
        ignore_missing(self.guards.remove(&carp_ifindex), pin::GUARDS)
    }

    /// Removes every pin under the pin directory (maps and links) after the daemon has
    /// detached from every carpdev. Used on a clean shutdown.
    pub fn remove_pins(self) -> Result<(), DataplaneError> {
        let Some(pin_dir) = self.pin_dir.clone() else {
            return Ok(());
        };
        drop(self);
        remove_pin_dir(&pin_dir)
    }

    /// Declares `ifindex` a carpdev: until then the program passes all its frames.
    pub fn set_carpdev(&mut self, ifindex: u32, mac: [u8; 6]) -> Result<(), DataplaneError> {
        let entry = CarpdevEntry { mac, _pad: [0; 2] };
        self.carpdevs
            .insert(ifindex, entry, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::CARPDEVS,
                source,
            })
    }

    pub fn remove_carpdev(&mut self, ifindex: u32) -> Result<(), DataplaneError> {
        ignore_missing(self.carpdevs.remove(&ifindex), pin::CARPDEVS)
    }

    /// Writes the state of a vhid. `interval` is advbase + advskew/256, shown in the map.
    pub fn set_vhid(
        &mut self,
        ifindex: u32,
        vhid: u8,
        interval: Duration,
        state: VhidDataplaneState,
    ) -> Result<(), DataplaneError> {
        self.set_slot(ifindex, u32::from(vhid), virtual_mac(vhid), interval, state)
    }

    /// [`Dataplane::set_vhid`] under any key slot, with the virtual MAC the ARP/NA replies
    /// carry: a VRRP router's (`carp_common::vrrp::vrrp_slot`, `vrrp_virtual_mac`).
    ///
    /// A master's refresh (the same state, a later deadline) is one store into the mapped
    /// deadline array; the entry is written only when it changes. The deadline goes first
    /// when becoming master and last when leaving, so that no MASTER entry meets a deadline
    /// older than its own.
    pub fn set_slot(
        &mut self,
        ifindex: u32,
        slot: u32,
        vmac: [u8; 6],
        interval: Duration,
        state: VhidDataplaneState,
    ) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: slot,
        };
        let deadline_slot = self.deadlines.slot(key)?;
        let entry = VhidEntry {
            flags: self.slot_flags(&key),
            deadline_slot,
            ..vhid_entry(vmac, interval, state)
        };
        let deadline = deadline_ns(state);
        if deadline != 0 {
            self.deadlines.store(deadline_slot, deadline);
        }
        self.write_vhid(key, entry)?;
        if deadline == 0 {
            self.deadlines.store(deadline_slot, 0);
        }
        Ok(())
    }

    /// The deadline slot of the `carp_vhids` entry `slot` on `ifindex` (written by
    /// [`Dataplane::set_slot`] before), for the advert pacer to renew from its thread.
    pub fn deadline_cell(&self, ifindex: u32, slot: u32) -> Option<DeadlineCell> {
        self.deadlines.cell(&VhidKey {
            ifindex,
            vhid: slot,
        })
    }

    /// Writes a `carp_vhids` entry unless it is there already as last written.
    fn write_vhid(&mut self, key: VhidKey, entry: VhidEntry) -> Result<(), DataplaneError> {
        if self.vhids_written.get(&key) == Some(&entry) {
            return Ok(());
        }
        self.vhids
            .insert(key, entry, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::VHIDS,
                source,
            })?;
        self.vhids_written.insert(key, entry);
        Ok(())
    }

    /// Removes a `carp_vhids` entry and gives its deadline slot back.
    fn forget_vhid(&mut self, key: VhidKey) -> Result<(), DataplaneError> {
        self.vhids_written.remove(&key);
        let removed = ignore_missing(self.vhids.remove(&key), pin::VHIDS);
        self.deadlines.release(&key);
        removed
    }

    /// Forgets a vhid, its followed master included.
    pub fn remove_vhid(&mut self, ifindex: u32, vhid: u8) -> Result<(), DataplaneError> {
        self.clear_master_advert(ifindex, vhid)?;
        self.forget_vhid(VhidKey {
            ifindex,
            vhid: vhid as u32,
        })
    }

    /// Publishes the advert a BACKUP vhid's master sent, as carpd authenticated it (`family`
    /// 4 or 6, `src` the IP source as in [`carp_common::maps::AdvertEvent`], `carp` its 36
    /// header bytes): from now on XDP consumes identical ones and records when the last came
    /// ([`Dataplane::master_advert_seen`]).
    pub fn publish_master_advert(
        &mut self,
        ifindex: u32,
        vhid: u8,
        family: u8,
        src: [u8; 16],
        carp: [u8; 36],
    ) -> Result<(), DataplaneError> {
        let key = master_key(ifindex, vhid, family);
        let value = MasterAdvert {
            src,
            carp,
            _pad: [0; 4],
        };
        self.master_adverts
            .insert(key, value, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::MASTER_ADVERTS,
                source,
            })
    }

    /// The published advert of a vhid and family, if any.
    pub fn master_advert(&self, ifindex: u32, vhid: u8, family: u8) -> Option<MasterAdvert> {
        self.master_adverts
            .get(&master_key(ifindex, vhid, family), 0)
            .ok()
    }

    /// Stops following the master of a vhid, both families: every advert goes to carpd
    /// again. The arrival times go too, so that none outlives the pattern it matched.
    pub fn clear_master_advert(&mut self, ifindex: u32, vhid: u8) -> Result<(), DataplaneError> {
        for family in [FAMILY_V4, FAMILY_V6] {
            let key = master_key(ifindex, vhid, family);
            ignore_missing(self.master_adverts.remove(&key), pin::MASTER_ADVERTS)?;
            ignore_missing(self.master_seen.remove(&key), pin::MASTER_SEEN)?;
        }
        Ok(())
    }

    /// When XDP last consumed a repeat of the published advert (CLOCK_MONOTONIC, as
    /// [`monotonic_now`]); `None` if it never did since the entry was cleared.
    pub fn master_advert_seen(&self, ifindex: u32, vhid: u8, family: u8) -> Option<Duration> {
        self.master_seen
            .get(&master_key(ifindex, vhid, family), 0)
            .ok()
            .map(Duration::from_nanos)
    }

    /// The vhid entry as the program sees it.
    pub fn vhid(&self, ifindex: u32, vhid: u8) -> Option<VhidEntry> {
        let key = VhidKey {
            ifindex,
            vhid: vhid as u32,
        };
        self.vhids.get(&key, 0).ok()
    }

    /// The deadline in a slot of `carp_deadlines` (CLOCK_MONOTONIC, as [`monotonic_now`];
    /// zero: past). `None` for [`NO_DEADLINE_SLOT`].
    pub fn deadline(&self, slot: u32) -> Option<Duration> {
        self.deadlines.load(slot).map(Duration::from_nanos)
    }

    pub fn add_vip4(
        &mut self,
        ifindex: u32,
        addr: std::net::Ipv4Addr,
        vip: VipEntry,
    ) -> Result<(), DataplaneError> {
        let key = Vip4Key {
            ifindex,
            addr: addr.octets(),
        };
        self.vip4
            .insert(key, vip, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::VIP4,
                source,
            })
    }

    pub fn remove_vip4(
        &mut self,
        ifindex: u32,
        addr: std::net::Ipv4Addr,
    ) -> Result<(), DataplaneError> {
        let key = Vip4Key {
            ifindex,
            addr: addr.octets(),
        };
        ignore_missing(self.vip4.remove(&key), pin::VIP4)
    }

    pub fn add_vip6(
        &mut self,
        ifindex: u32,
        addr: std::net::Ipv6Addr,
        vip: VipEntry,
    ) -> Result<(), DataplaneError> {
        let key = Vip6Key {
            ifindex,
            addr: addr.octets(),
        };
        self.vip6
            .insert(key, vip, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::VIP6,
                source,
            })
    }

    pub fn remove_vip6(
        &mut self,
        ifindex: u32,
        addr: std::net::Ipv6Addr,
    ) -> Result<(), DataplaneError> {
        let key = Vip6Key {
            ifindex,
            addr: addr.octets(),
        };
        ignore_missing(self.vip6.remove(&key), pin::VIP6)
    }

    /// Turns every vhid entry to INIT, keeping the address entries: the program then drops
    /// ARP/NS for every known virtual address and answers none. Used before removing what a
    /// crashed run left.
    pub fn silence_all(&mut self) -> Result<(), DataplaneError> {
        let entries: Vec<(VhidKey, VhidEntry)> = self.vhids.iter().filter_map(Result::ok).collect();
        for (key, mut entry) in entries {
            entry.state = VHID_STATE_INIT;
            entry.deadline_slot = NO_DEADLINE_SLOT;
            self.vhids
                .insert(key, entry, 0)
                .map_err(|source| DataplaneError::Map {
                    map: pin::VHIDS,
                    source,
                })?;
        }
        self.silence_lb_groups()?;
        // No entry points at a slot any more: every deadline is past and every slot free.
        self.vhids_written.clear();
        self.deadlines.clear();
        Ok(())
    }

    /// Removes every entry of every map: a restarted daemon starts from its configuration,
    /// not from what a crashed run left (the entries it then writes start as INIT/BACKUP).
    pub fn clear(&mut self) -> Result<(), DataplaneError> {
        let keys: Vec<VhidKey> = self.vhids.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.vhids.remove(&k), pin::VHIDS)?;
        }
        self.vhids_written.clear();
        self.deadlines.clear();
        let keys: Vec<Vip4Key> = self.vip4.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.vip4.remove(&k), pin::VIP4)?;
        }
        let keys: Vec<Vip6Key> = self.vip6.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.vip6.remove(&k), pin::VIP6)?;
        }
        let keys: Vec<u32> = self.carpdevs.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.carpdevs.remove(&k), pin::CARPDEVS)?;
        }
        let keys: Vec<u32> = self.guards.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.guards.remove(&k), pin::GUARDS)?;
        }
        let keys: Vec<MasterAdvertKey> =
            self.master_adverts.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.master_adverts.remove(&k), pin::MASTER_ADVERTS)?;
        }
        let keys: Vec<MasterAdvertKey> = self.master_seen.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.master_seen.remove(&k), pin::MASTER_SEEN)?;
        }
        let keys: Vec<VhidKey> = self.vrrp_routers.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.vrrp_routers.remove(&k), pin::VRRP_ROUTERS)?;
        }
        let keys: Vec<VhidKey> = self.lb_groups.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.lb_groups.remove(&k), pin::LB_GROUPS)?;
        }
        self.lb_written.clear();
        Ok(())
    }

    /// The dataplane counters summed over all CPUs.
    pub fn counters(&self) -> Result<DataplaneCounters, DataplaneError> {
        let per_cpu = self
            .counters
            .get(&0, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::COUNTERS,
                source,
            })?;
        Ok(per_cpu.iter().sum())
    }
}

/// The map value of a vhid (or VRRP router, or balanced node) in `state`, without a
/// deadline slot yet ([`NO_DEADLINE_SLOT`]).
fn vhid_entry(vmac: [u8; 6], interval: Duration, state: VhidDataplaneState) -> VhidEntry {
    let state = match state {
        VhidDataplaneState::Init => VHID_STATE_INIT,
        VhidDataplaneState::Backup => VHID_STATE_BACKUP,
        VhidDataplaneState::Master { .. } => VHID_STATE_MASTER,
    };
    VhidEntry {
        state,
        interval_ticks: (interval.as_micros() * 256 / 1_000_000) as u32,
        deadline_slot: NO_DEADLINE_SLOT,
        _reserved: 0,
        vmac,
        flags: 0,
        _pad: 0,
    }
}

/// The deadline a state gives its slot in CLOCK_MONOTONIC nanoseconds (0: none, past).
fn deadline_ns(state: VhidDataplaneState) -> u64 {
    match state {
        VhidDataplaneState::Master { until } => until.as_nanos().min(u64::MAX as u128) as u64,
        _ => 0,
    }
}

fn master_key(ifindex: u32, vhid: u8, family: u8) -> MasterAdvertKey {
    MasterAdvertKey {
        ifindex,
        vhid,
        family,
        _pad: [0; 2],
    }
}

/// Checks an advert ring size: the kernel wants a power of two that is a multiple of the page
/// size (`ringbuf_map_alloc`).
pub fn check_ring_bytes(bytes: u32) -> Result<u32, DataplaneError> {
    let page = page_size();
    if bytes.is_power_of_two() && bytes >= page && bytes.is_multiple_of(page) {
        Ok(bytes)
    } else {
        Err(DataplaneError::RingSize { bytes, page })
    }
}

fn page_size() -> u32 {
    // SAFETY: sysconf reads a constant of the running system.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u32::try_from(n).unwrap_or(4096)
}

/// Every counter with its name (the field name, as bpftool prints it), sorted by name.
pub fn counter_list(c: &DataplaneCounters) -> Vec<(&'static str, u64)> {
    let mut list = c.values().to_vec();
    list.sort_unstable_by_key(|&(name, _)| name);
    list
}

fn ignore_missing(
    result: Result<(), aya::maps::MapError>,
    map: &'static str,
) -> Result<(), DataplaneError> {
    match result {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        // aya reports a delete of a missing key as the syscall's ENOENT.
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        Err(source) => Err(DataplaneError::Map { map, source }),
    }
}

/// Logs the mode of an adopted link (the one it was created in by an earlier run), and warns
/// when it is not what this run would choose.
fn log_adopted(ifname: &str, plan: &xdp_mode::Plan) {
    let Some(mode) = xdp_mode::attached_mode(ifname) else {
        tracing::info!(carpdev = %ifname, mode = "unknown", reason = "adopted the pinned XDP link of an earlier run", "XDP attached");
        return;
    };
    tracing::info!(carpdev = %ifname, mode = %mode, reason = "adopted the pinned XDP link of an earlier run", "XDP attached");
    if mode != plan.mode {
        tracing::warn!(
            carpdev = %ifname,
            adopted = %mode,
            chosen = %plan.mode,
            reason = ?plan.reason,
            "the adopted XDP link runs in another mode than this run would choose; stop carpd \
             (SIGTERM removes its pins) and start it again to attach anew"
        );
    }
}

/// An error and its sources, one after the other.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Checks that `dir` is on bpffs, then creates it (pins anywhere else fail obscurely).
fn ensure_bpffs_dir(dir: &Path) -> Result<(), DataplaneError> {
    check_pin_dir(dir)?;
    std::fs::create_dir_all(dir).map_err(|source| DataplaneError::PinDir {
        path: dir.to_owned(),
        source,
    })
}

/// statfs(2) f_type of a bpf filesystem.
const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// Checks, without creating anything, that the pin directory `dir` is (or would be created)
/// on a bpf filesystem: the filesystem of `dir`, or of its nearest existing ancestor, must be
/// bpffs. Directories that cannot be searched (a non-root `carpd --check` under a 0700
/// /sys/fs/bpf) count as missing, so their parent is checked.
pub fn check_pin_dir(dir: &Path) -> Result<(), DataplaneError> {
    let mut probe = dir;
    let stat = loop {
        match nix::sys::statfs::statfs(probe) {
            Ok(stat) => break stat,
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::EACCES)
                if probe != Path::new("/") && probe != Path::new(".") =>
            {
                probe = match probe.parent() {
                    Some(p) if p.as_os_str().is_empty() => Path::new("."),
                    Some(p) => p,
                    None => Path::new("/"),
                };
            }
            Err(e) => {
                return Err(DataplaneError::PinDir {
                    path: probe.to_owned(),
                    source: e.into(),
                });
            }
        }
    };
    let magic = stat.filesystem_type().0 as i64;
    if magic == BPF_FS_MAGIC {
        return Ok(());
    }
    let (fs, cause) = filesystem_name(magic);
    Err(DataplaneError::NotBpffs {
        path: dir.to_owned(),
        found: probe.to_owned(),
        fs,
        cause,
    })
}

/// A filesystem's name for an error message, and what its presence where a bpffs was
/// expected usually means.
fn filesystem_name(magic: i64) -> (String, &'static str) {
    const SYSFS_MAGIC: i64 = 0x62656572;
    const TMPFS_MAGIC: i64 = 0x01021994;
    match magic {
        SYSFS_MAGIC => (
            "sysfs".into(),
            " (as under `ip netns exec`, which mounts a fresh /sys without the host's \
             /sys/fs/bpf)",
        ),
        TMPFS_MAGIC => ("tmpfs".into(), ""),
        other => (format!("a filesystem of type {other:#x}"), ""),
    }
}

/// Removes a pin directory: its maps, its links directory, the directory itself.
pub fn remove_pin_dir(pin_dir: &Path) -> Result<(), DataplaneError> {
    match std::fs::remove_dir_all(pin_dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DataplaneError::PinDir {
            path: pin_dir.to_owned(),
            source,
        }),
    }
}

/// Asynchronous reader of the advertisement ring buffer: carpd's receive path.
pub struct AdvertReader {
    ring: tokio::io::unix::AsyncFd<RingBuf<MapData>>,
}

impl AdvertReader {
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        // SAFETY: the ring buffer owns its map fd for as long as the AsyncFd owns the ring,
        // and as_raw_fd always returns that same fd.
        let ring = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(ring, tokio::io::Interest::READABLE)
        }
        .map_err(std::io::Error::from)?;
        Ok(Self { ring })
    }

    /// Waits until at least one advert is queued, then returns every queued one.
    ///
    /// Every error is final: the ring buffer will never deliver again (see
    /// [`AdvertReadError`]), and polling it again would return at once.
    pub async fn next_batch(
        &mut self,
    ) -> Result<Vec<carp_common::maps::AdvertEvent>, AdvertReadError> {
        loop {
            let mut guard = self
                .ring
                .readable_mut()
                .await
                .map_err(|source| AdvertReadError::Closed { source })?;
            let ready = guard.ready();
            let ring = guard.get_inner_mut();
            let mut batch = Vec::new();
            while let Some(item) = ring.next() {
                if let Some(event) = decode_event(&item) {
                    batch.push(event);
                }
            }
            guard.clear_ready();
            if !batch.is_empty() {
                return Ok(batch);
            }
            if ready.is_error() || ready.is_read_closed() {
                return Err(AdvertReadError::HangUp);
            }
        }
    }
}

/// Why the advert ring buffer stopped delivering. Both are final.
#[derive(Debug, thiserror::Error)]
pub enum AdvertReadError {
    /// The readiness registration failed (tokio's I/O driver is shutting down or gone).
    #[error("advert ring buffer closed: {source}")]
    Closed { source: std::io::Error },
    /// epoll reported an error or hang-up on the ring buffer's fd.
    #[error("advert ring buffer closed: the kernel reported a hang-up on its fd")]
    HangUp,
}

/// An [`carp_common::maps::AdvertEvent`] from ring-buffer bytes; `None` if the size is wrong
/// (an object/daemon mismatch, which the layout test in carp-common rules out).
pub fn decode_event(bytes: &[u8]) -> Option<carp_common::maps::AdvertEvent> {
    if bytes.len() != std::mem::size_of::<carp_common::maps::AdvertEvent>() {
        return None;
    }
    // SAFETY: the size matches and AdvertEvent is plain data valid for any bit pattern.
    Some(unsafe { (bytes.as_ptr() as *const carp_common::maps::AdvertEvent).read_unaligned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_list_names_every_field() {
        let c = DataplaneCounters {
            arp_replied: 3,
            vlan_passed: 9,
            ..Default::default()
        };
        let list = counter_list(&c);
        assert_eq!(list.len(), std::mem::size_of::<DataplaneCounters>() / 8);
        assert!(list.contains(&("arp_replied", 3)));
        assert!(list.contains(&("vlan_passed", 9)));
        assert!(list.is_sorted_by_key(|&(name, _)| name), "{list:?}");
    }

    /// A mount point of a bpf filesystem, from /proc/self/mounts.
    fn bpffs_mount() -> Option<PathBuf> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        mounts.lines().find_map(|line| {
            let mut fields = line.split_whitespace().skip(1);
            let (dir, fstype) = (fields.next()?, fields.next()?);
            (fstype == "bpf").then(|| PathBuf::from(dir))
        })
    }

    #[test]
    fn a_regular_directory_is_not_bpffs() {
        let dir = std::env::temp_dir().join(format!("carpd-pin-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = check_pin_dir(&dir).unwrap_err();
        let missing = dir.join("a/b/carp");
        let err_missing = check_pin_dir(&missing).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        match err {
            DataplaneError::NotBpffs { path, found, .. } => {
                assert_eq!((path, found), (dir.clone(), dir.clone()));
            }
            other => panic!("{other}"),
        }
        // A missing directory is judged by its nearest existing ancestor, and nothing is
        // created.
        match &err_missing {
            DataplaneError::NotBpffs { path, found, .. } => {
                assert_eq!((path, found), (&missing, &dir));
            }
            other => panic!("{other}"),
        }
        let text = err_missing.to_string();
        assert!(text.contains("mount -t bpf bpf /sys/fs/bpf"), "{text}");
        assert!(text.contains("nsenter --net=/run/netns/NAME"), "{text}");
    }

    #[test]
    fn sysfs_is_named_as_what_ip_netns_exec_leaves() {
        // /sys itself is sysfs wherever tests run; /sys/fs/bpf may be a bpffs on top of it.
        let err = check_pin_dir(Path::new("/sys/class")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/sys/class is on sysfs"), "{text}");
        assert!(text.contains("ip netns exec"), "{text}");
    }

    #[test]
    fn a_bpffs_and_a_missing_directory_under_it_are_accepted() {
        let Some(mount) = bpffs_mount() else {
            eprintln!("skipped: no bpf filesystem mounted");
            return;
        };
        check_pin_dir(&mount).unwrap();
        check_pin_dir(&mount.join("carpd-no-such-dir/carp")).unwrap();
        assert!(
            !mount.join("carpd-no-such-dir").exists(),
            "the check creates nothing"
        );
    }

    #[test]
    fn ring_sizes_are_powers_of_two_of_whole_pages() {
        let page = page_size();
        assert_eq!(check_ring_bytes(page).unwrap(), page);
        assert_eq!(check_ring_bytes(page * 4).unwrap(), page * 4);
        for bad in [0, page / 2, page * 3, page + 1] {
            let err = check_ring_bytes(bad).unwrap_err().to_string();
            assert!(err.contains("power of two"), "{bad}: {err}");
        }
    }
}
