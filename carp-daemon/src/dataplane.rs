//! The XDP dataplane as carpd drives it: load the embedded program, pin its maps and links
//! under the pin directory, attach it to carpdevs, and write the election state into the
//! maps.
//!
//! Pin layout (default `/sys/fs/bpf/carp`, one directory per daemon):
//!
//! ```text
//! <pin-dir>/carp_vhids      (ifindex, vhid) -> state, master deadline, virtual MAC
//! <pin-dir>/carp_vip4       (ifindex, IPv4) -> vhid
//! <pin-dir>/carp_vip6       (ifindex, IPv6) -> vhid
//! <pin-dir>/carp_devs       ifindex -> carpdev MAC
//! <pin-dir>/carp_counters   per-CPU dataplane counters
//! <pin-dir>/carp_adverts    ring buffer of received advertisements
//! <pin-dir>/links/<ifname>  the XDP link of each carpdev
//! ```
//!
//! Everything outlives carpd. A restarted carpd adopts the pinned maps (their entries keep
//! the dataplane silent or answering exactly as before) and swaps its program into each
//! pinned link with `bpf_link_update`, atomically: there is no moment without the program,
//! and so none in which the kernel would answer ARP for a virtual address.
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{HashMap, MapData, PerCpuArray, RingBuf},
    programs::{
        ProgramError, Xdp, XdpMode,
        links::{FdLink, LinkError, PinnedLink},
        xdp::XdpLink,
    },
};
use carp_common::maps::{
    CarpdevEntry, DataplaneCounters, VHID_STATE_BACKUP, VHID_STATE_INIT, VHID_STATE_MASTER,
    VhidEntry, VhidKey, Vip4Key, Vip6Key, VipEntry, pin,
};
use carp_common::wire::virtual_mac;

/// The XDP object built from `carp-ebpf` by build.rs (bpfel-unknown-none, BTF included).
pub static XDP_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/carp"));

/// Name of the XDP program inside the object.
const PROGRAM: &str = "carp";

/// Every pinned map, in the order they are created.
const MAP_NAMES: [&str; 6] = [
    pin::VHIDS,
    pin::VIP4,
    pin::VIP6,
    pin::CARPDEVS,
    pin::COUNTERS,
    pin::ADVERTS,
];

#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    #[error("loading the XDP object: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("XDP program: {0}")]
    Program(#[from] ProgramError),
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
    #[error("{path} is not on a bpf filesystem (mount one with `mount -t bpf bpf /sys/fs/bpf`)")]
    NotBpffs { path: PathBuf },
    #[error("the program's map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("reading the monotonic clock: {0}")]
    Clock(nix::Error),
}

/// How to attach to a carpdev. `Auto` lets the kernel choose (native where the driver has
/// it, generic otherwise).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    #[default]
    Auto,
    Native,
    Generic,
}

impl AttachMode {
    fn xdp_mode(self) -> XdpMode {
        match self {
            AttachMode::Auto => XdpMode::Default,
            AttachMode::Native => XdpMode::Driver,
            AttachMode::Generic => XdpMode::Skb,
        }
    }
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

/// How long a master entry stays valid after each refresh, for an advertisement interval.
///
/// Two intervals: a healthy carpd refreshes every interval, so it may run a whole interval
/// late before the host falls silent; and a dead carpd's host is silent before any backup can
/// declare the master down (three intervals after the last advert), so a SIGKILLed master and
/// its successor never answer at the same time.
pub fn master_hold(interval: Duration) -> Duration {
    interval * 2
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
    vip4: HashMap<MapData, Vip4Key, VipEntry>,
    vip6: HashMap<MapData, Vip6Key, VipEntry>,
    carpdevs: HashMap<MapData, u32, CarpdevEntry>,
    counters: PerCpuArray<MapData, DataplaneCounters>,
    adverts: Option<RingBuf<MapData>>,
    /// Pinned links this process holds, by interface name.
    links: Vec<(String, PinnedLink)>,
}

impl Dataplane {
    /// Loads the program with its maps pinned under `pin_dir`, adopting maps already pinned
    /// there by an earlier run.
    pub fn load_pinned(pin_dir: &Path) -> Result<Self, DataplaneError> {
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
        let vip4 = take(&mut ebpf, pin::VIP4)?;
        let vip6 = take(&mut ebpf, pin::VIP6)?;
        let carpdevs = take(&mut ebpf, pin::CARPDEVS)?;
        let counters = take(&mut ebpf, pin::COUNTERS)?;
        let adverts = Some(take(&mut ebpf, pin::ADVERTS)?);
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM)
            .ok_or(DataplaneError::Program(ProgramError::NotLoaded))?
            .try_into()?;
        program.load()?;
        Ok(Self {
            ebpf,
            pin_dir,
            vhids,
            vip4,
            vip6,
            carpdevs,
            counters,
            adverts,
            links: Vec::new(),
        })
    }

    /// The XDP program (for BPF_PROG_TEST_RUN in tests).
    pub fn program(&self) -> &Xdp {
        self.ebpf
            .program(PROGRAM)
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .expect("the program was loaded as XDP in from_ebpf")
    }

    fn program_mut(&mut self) -> &mut Xdp {
        self.ebpf
            .program_mut(PROGRAM)
            .and_then(|p| <&mut Xdp>::try_from(p).ok())
            .expect("the program was loaded as XDP in from_ebpf")
    }

    /// The advertisement ring buffer; carpd takes it once to poll it asynchronously.
    pub fn take_advert_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.adverts.take()
    }

    /// Attaches the program to `ifname`. With a pin directory, an XDP link pinned there by an
    /// earlier run is taken over atomically (`bpf_link_update`); otherwise a new link is
    /// created and pinned. Returns whether an existing link was adopted.
    pub fn attach(&mut self, ifname: &str, mode: AttachMode) -> Result<bool, DataplaneError> {
        let Some(pin_dir) = self.pin_dir.clone() else {
            self.program_mut().attach(ifname, mode.xdp_mode())?;
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
                    return Ok(true);
                }
                Err(err) => {
                    // A stale pin (its interface is gone): remove it and attach afresh.
                    tracing::warn!(path = %path.display(), error = %err, "removing stale XDP link pin");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let id = self.program_mut().attach(ifname, mode.xdp_mode())?;
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
        let (state, deadline) = match state {
            VhidDataplaneState::Init => (VHID_STATE_INIT, 0),
            VhidDataplaneState::Backup => (VHID_STATE_BACKUP, 0),
            VhidDataplaneState::Master { until } => (
                VHID_STATE_MASTER,
                until.as_nanos().min(u64::MAX as u128) as u64,
            ),
        };
        let entry = VhidEntry {
            state,
            interval_ticks: (interval.as_micros() * 256 / 1_000_000) as u32,
            master_deadline_ns: deadline,
            vmac: virtual_mac(vhid),
            _pad: [0; 2],
        };
        let key = VhidKey {
            ifindex,
            vhid: vhid as u32,
        };
        self.vhids
            .insert(key, entry, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::VHIDS,
                source,
            })
    }

    pub fn remove_vhid(&mut self, ifindex: u32, vhid: u8) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: vhid as u32,
        };
        ignore_missing(self.vhids.remove(&key), pin::VHIDS)
    }

    /// The vhid entry as the program sees it.
    pub fn vhid(&self, ifindex: u32, vhid: u8) -> Option<VhidEntry> {
        let key = VhidKey {
            ifindex,
            vhid: vhid as u32,
        };
        self.vhids.get(&key, 0).ok()
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
            entry.master_deadline_ns = 0;
            self.vhids
                .insert(key, entry, 0)
                .map_err(|source| DataplaneError::Map {
                    map: pin::VHIDS,
                    source,
                })?;
        }
        Ok(())
    }

    /// Removes every entry of every map: a restarted daemon starts from its configuration,
    /// not from what a crashed run left (the entries it then writes start as INIT/BACKUP).
    pub fn clear(&mut self) -> Result<(), DataplaneError> {
        let keys: Vec<VhidKey> = self.vhids.keys().filter_map(Result::ok).collect();
        for k in keys {
            ignore_missing(self.vhids.remove(&k), pin::VHIDS)?;
        }
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
        Ok(per_cpu
            .iter()
            .fold(DataplaneCounters::default(), |acc, c| sum_counters(&acc, c)))
    }
}

/// Every counter with its name (the field name, as bpftool prints it), sorted by name.
pub fn counter_list(c: &DataplaneCounters) -> Vec<(String, u64)> {
    match serde_json::to_value(c) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter_map(|(name, v)| Some((name, v.as_u64()?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Field-by-field sum of two counter sets.
pub fn sum_counters(a: &DataplaneCounters, b: &DataplaneCounters) -> DataplaneCounters {
    DataplaneCounters {
        arp_replied: a.arp_replied + b.arp_replied,
        arp_dropped_not_master: a.arp_dropped_not_master + b.arp_dropped_not_master,
        arp_gratuitous_dropped: a.arp_gratuitous_dropped + b.arp_gratuitous_dropped,
        ns_replied: a.ns_replied + b.ns_replied,
        ns_dropped_not_master: a.ns_dropped_not_master + b.ns_dropped_not_master,
        vmac_accepted: a.vmac_accepted + b.vmac_accepted,
        vmac_dropped_not_master: a.vmac_dropped_not_master + b.vmac_dropped_not_master,
        advert_delivered: a.advert_delivered + b.advert_delivered,
        advert_passed_unknown_vhid: a.advert_passed_unknown_vhid + b.advert_passed_unknown_vhid,
        advert_bad_length: a.advert_bad_length + b.advert_bad_length,
        advert_bad_version: a.advert_bad_version + b.advert_bad_version,
        advert_bad_ttl: a.advert_bad_ttl + b.advert_bad_ttl,
        advert_bad_checksum: a.advert_bad_checksum + b.advert_bad_checksum,
        advert_own_source: a.advert_own_source + b.advert_own_source,
        advert_ring_full: a.advert_ring_full + b.advert_ring_full,
        vlan_passed: a.vlan_passed + b.vlan_passed,
    }
}

fn ignore_missing(
    result: Result<(), aya::maps::MapError>,
    map: &'static str,
) -> Result<(), DataplaneError> {
    match result {
        Ok(()) | Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(source) => Err(DataplaneError::Map { map, source }),
    }
}

/// Creates `dir` and checks that it is on bpffs (pins anywhere else fail obscurely).
fn ensure_bpffs_dir(dir: &Path) -> Result<(), DataplaneError> {
    std::fs::create_dir_all(dir).map_err(|source| DataplaneError::PinDir {
        path: dir.to_owned(),
        source,
    })?;
    const BPF_FS_MAGIC: i64 = 0xcafe4a11;
    let stat = nix::sys::statfs::statfs(dir).map_err(|e| DataplaneError::PinDir {
        path: dir.to_owned(),
        source: e.into(),
    })?;
    if stat.filesystem_type().0 as i64 != BPF_FS_MAGIC {
        return Err(DataplaneError::NotBpffs {
            path: dir.to_owned(),
        });
    }
    Ok(())
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
        assert!(list.contains(&("arp_replied".to_owned(), 3)));
        assert!(list.contains(&("vlan_passed".to_owned(), 9)));
    }

    #[test]
    fn master_hold_is_two_intervals() {
        assert_eq!(
            master_hold(Duration::from_millis(390)),
            Duration::from_millis(780)
        );
    }
}
