//! Start, reload and shutdown: creating and removing what carpd owns, in an order that never
//! lets two hosts (or this host's kernel) answer for a virtual address.
use std::collections::BTreeMap;
use std::path::PathBuf;

use carp_common::maps::{VIP_FLAG_ROUTER, VipEntry};
use tracing::{debug, info, warn};

use super::carpif::CarpIf;
use super::{Carpdev, Daemon, DaemonOptions, ipv6_forwarding, now};
use crate::Error;
use crate::config::{self, CarpInterface, Config};
use crate::dataplane::{Dataplane, VhidDataplaneState};
use crate::groups::Groups;
use crate::net::NetHandle;
use crate::proto::fsm;
use crate::send::{advert::AdvertSender, announce::Announcer};

/// Loads and validates the configuration files; nothing is applied if any is invalid.
pub fn load_config(paths: &[PathBuf]) -> Result<Config, Error> {
    Ok(config::load(paths, &config::system_interface_exists)?)
}

impl Daemon {
    /// Brings the dataplane and every configured interface up.
    pub async fn start(
        opts: DaemonOptions,
        config: Config,
        watch: super::loop_watch::LoopWatch,
    ) -> Result<Self, Error> {
        let mut settings = config.daemon.clone();
        if let Some(dir) = &opts.state_dir {
            settings.state_dir = dir.clone();
        }
        if let Some(dir) = &opts.lib_dir {
            settings.lib_dir = dir.clone();
        }
        if let Some(dir) = &opts.pin_dir {
            settings.pin_dir = dir.clone();
        }
        settings.preempt |= opts.preempt;
        if opts.realtime_priority.is_some() {
            settings.realtime_priority = opts.realtime_priority;
        }
        if let Some(n) = opts.boot_demote {
            settings.boot_demote = n;
        }
        if opts.metrics.is_some() {
            settings.metrics = opts.metrics;
        }
        std::fs::create_dir_all(&settings.state_dir).map_err(|source| Error::Io {
            what: "creating state directory",
            path: settings.state_dir.clone(),
            source,
        })?;
        crate::net::sysctl::restore_leftover(&settings.state_dir)?;

        let net = NetHandle::new().await?;
        let mut dataplane =
            Dataplane::load_pinned_with_ring(&settings.pin_dir, opts.advert_ring_bytes)?;
        // A crashed run may have left interfaces holding virtual addresses. Silence its
        // dataplane entries first (they keep dropping ARP for those addresses), then remove
        // the interfaces, then forget the entries: at no point does anyone answer.
        dataplane.silence_all()?;
        for stale in net.stale_carp_interfaces().await? {
            warn!(interface = %stale.name, "removing carp interface left by an earlier run");
            net.delete_link(stale.ifindex).await?;
        }
        dataplane.clear()?;
        // A carpd killed between creating a macvlan and labelling it left it unlabelled:
        // recognised by the exact name, carpdev and virtual MAC it was about to create.
        let mut planned = Vec::new();
        for cfg in &config.interfaces {
            if let Some(dev) = net.link_by_name(&cfg.carpdev).await? {
                planned.push(crate::net::link::PlannedCarpLink {
                    name: cfg.name.clone(),
                    carpdev_ifindex: dev.ifindex,
                    vmac: match cfg.vrrp {
                        Some(v) => carp_common::vrrp::vrrp_virtual_mac(cfg.vhid, v.v6),
                        None => carp_common::wire::virtual_mac(cfg.vhid),
                    },
                });
            }
        }
        for half in net.half_made_carp_interfaces(&planned).await? {
            warn!(interface = %half.name, "removing a carp interface an earlier run left unlabelled");
            net.delete_link(half.ifindex).await?;
        }

        let (checks, check_results) = crate::checks::Checks::new();
        let settings_lib_dir = settings.lib_dir.clone();
        let settings_realtime = settings.realtime_priority;
        let mut daemon = Daemon {
            opts,
            settings,
            net,
            dataplane,
            carpdevs: BTreeMap::new(),
            ifs: BTreeMap::new(),
            groups: Groups::new(),
            persisted: crate::maintenance::load(&settings_lib_dir)?,
            checks,
            check_results: Some(check_results),
            monitor: Default::default(),
            pacer: super::pacer::Pacer::start(settings_realtime, watch)?,
        };
        if daemon.settings.boot_demote > 0 {
            let by = i16::from(daemon.settings.boot_demote);
            daemon
                .groups
                .user_adjust(crate::groups::CARP_GROUP, by)
                .map_err(Error::BootDemote)?;
            info!(demote = by, "boot demotion of group carp");
        }
        for cfg in config.interfaces {
            let name = cfg.name.clone();
            if let Err(err) = daemon.add_interface(cfg).await {
                // Nothing half-applied: take down what was already built, then fail.
                warn!(interface = %name, error = %err, "start failed; undoing");
                if let Err(undo) = daemon.shutdown().await {
                    warn!(error = %undo, "undoing a failed start");
                }
                return Err(err);
            }
        }
        // Maintenance mode: the persisted demotions, on top of the boot demotion, before any
        // interface runs; a sum over 255 is refused as any demotion is.
        let persisted: Vec<(String, u8)> = daemon
            .persisted
            .iter()
            .map(|(g, n)| (g.clone(), *n))
            .collect();
        for (group, n) in persisted {
            if daemon.groups.counter(&group).is_none() {
                warn!(%group, demote = n, "persisted demotion of a group no carp interface is in: not applied");
                continue;
            }
            if let Err(err) = daemon.groups.user_adjust(&group, i16::from(n)) {
                if let Err(undo) = daemon.shutdown().await {
                    warn!(error = %undo, "undoing a failed start");
                }
                return Err(Error::PersistedDemote(err));
            }
            info!(%group, demote = n, "persisted (maintenance) demotion applied");
        }
        // The interfaces were built with the counters before it.
        daemon.propagate_demote();
        for name in daemon.interface_names() {
            daemon.bring_up(&name);
        }
        daemon.start_checks(config.checks);
        Ok(daemon)
    }

    /// Opens (once) the carpdev an interface sits on: XDP attached, sockets, sysctls.
    pub(super) async fn ensure_carpdev(
        &mut self,
        name: &str,
        for_interface: &str,
    ) -> Result<u32, Error> {
        if let Some(dev) = self.carpdevs.get(name) {
            return Ok(dev.ifindex);
        }
        let link = self
            .net
            .link_by_name(name)
            .await?
            .ok_or_else(|| Error::NoCarpdev {
                name: name.to_owned(),
                interface: for_interface.to_owned(),
            })?;
        if link.mac == [0; 6] {
            // Loopback, tunnels...: no frames to carry a virtual MAC, no macvlan on top.
            return Err(Error::CarpdevNotEthernet {
                name: name.to_owned(),
                interface: for_interface.to_owned(),
            });
        }
        self.dataplane.set_carpdev(link.ifindex, link.mac)?;
        let adopted = self.dataplane.attach(name, self.opts.xdp_mode)?;
        debug!(carpdev = %name, adopted, "XDP dataplane attached");
        crate::net::ethtool::warn_about_rx_vlan_offload(name);
        crate::net::sysctl::apply_carpdev(&self.settings.state_dir, name)?;
        let dev = Carpdev {
            name: name.to_owned(),
            ifindex: link.ifindex,
            mac: link.mac,
            carrier: link.carrier,
            adverts: AdvertSender::open(name, link.ifindex)?,
            announcer: Announcer::open(name, link.ifindex)?,
            groups6: crate::net::SolicitedNodeGroups::open(link.ifindex)?,
        };
        self.carpdevs.insert(name.to_owned(), dev);
        Ok(link.ifindex)
    }

    /// Creates the Linux interface of a carp interface and registers it with the dataplane.
    /// The dataplane learns the addresses (state INIT: silent, ARP dropped) before the kernel
    /// does, so the kernel never answers for them.
    pub async fn add_interface(&mut self, cfg: CarpInterface) -> Result<(), Error> {
        let carpdev_ifindex = self.ensure_carpdev(&cfg.carpdev, &cfg.name).await?;
        let cif = CarpIf::new(cfg, carpdev_ifindex, self.settings.preempt)?;
        let name = cif.cfg.name.clone();
        // Registered before anything is built, so that a failure half-way is undone by
        // remove_interface like any other interface: nothing is left half-applied.
        self.ifs.insert(name.clone(), cif);
        let built = match self.build_interface(&name).await {
            Ok(()) => self.add_nodes(&name),
            Err(err) => Err(err),
        };
        if let Err(err) = built {
            if let Err(undo) = self.remove_interface(&name).await {
                warn!(interface = %name, error = %undo, "undoing a failed interface");
            }
            return Err(err);
        }
        // carp_set_ifp → carp_carpdev_state: a carpdev without link (no carrier, or
        // administratively down, which the kernel reports without IFF_LOWER_UP) demotes the
        // interface's groups at once; its return undoes it (`on_link`).
        if !self
            .carpdevs
            .get(&self.ifs[&name].cfg.carpdev)
            .is_some_and(|d| d.carrier)
        {
            warn!(interface = %name, "carpdev has no link: demoting the interface's groups by 1");
            self.adjust_own_demote(&name, 1);
        }
        Ok(())
    }

    /// The dataplane entries, the Linux interface, its addresses and groups of a registered
    /// interface, in that order (the dataplane drops ARP for the addresses before the kernel
    /// holds them).
    async fn build_interface(&mut self, name: &str) -> Result<(), Error> {
        self.register_dataplane(name)?;
        self.build_link(name).await?;
        let cfg = self.ifs[name].cfg.clone();
        for g in &cfg.groups {
            self.groups.join(g, 0);
        }
        self.propagate_demote();
        info!(interface = %cfg.name, carpdev = %cfg.carpdev, vhid = cfg.vhid,
              advbase = cfg.advbase, advskew = cfg.advskew, "carp interface configured");
        Ok(())
    }

    /// The dataplane's entries of a registered interface on its carpdev: the vhid (INIT:
    /// silent, ARP for its addresses dropped), its addresses, and the solicited-node groups
    /// of its IPv6 addresses.
    pub(super) fn register_dataplane(&mut self, name: &str) -> Result<(), Error> {
        let cif = &self.ifs[name];
        let (cfg, carpdev_ifindex, interval) =
            (cif.cfg.clone(), cif.carpdev_ifindex, cif.interval());
        let (slot, vmac) = (cif.slot(), cif.vmac);
        if let Some(vrrp) = &cfg.vrrp {
            self.dataplane
                .set_vrrp_router(carpdev_ifindex, slot, vrrp.accepts_own_addresses())?;
        }
        self.dataplane.set_slot(
            carpdev_ifindex,
            slot,
            vmac,
            interval,
            VhidDataplaneState::Init,
        )?;
        let vip = vip_entry(slot);
        for a in &cfg.ipv4 {
            self.dataplane.add_vip4(carpdev_ifindex, a.addr, vip)?;
        }
        for a in &cfg.ipv6 {
            self.dataplane.add_vip6(carpdev_ifindex, a.addr, vip)?;
            if let Some(dev) = self.carpdevs.get_mut(&cfg.carpdev) {
                dev.groups6.join(&a.addr)?;
            }
        }
        self.register_nodes(name)
    }

    /// The Linux side of a registered interface: the macvlan, its sysctls, its addresses,
    /// and up if configured up. Also what rebuilds it after someone deleted it.
    pub(super) async fn build_link(&mut self, name: &str) -> Result<(), Error> {
        let cif = &self.ifs[name];
        let (cfg, vmac, carpdev_ifindex) = (cif.cfg.clone(), cif.vmac, cif.carpdev_ifindex);
        let slot = cif.slot();
        let ifindex = self
            .net
            .create_carp_interface(&cfg.name, carpdev_ifindex, vmac)
            .await?;
        if let Some(cif) = self.ifs.get_mut(name) {
            cif.ifindex = ifindex;
        }
        // Guarded while still down: from here on nothing leaves it unless we are master.
        self.dataplane
            .attach_guard(&cfg.name, ifindex, carpdev_ifindex, slot)?;
        crate::net::sysctl::apply_carp_interface(&self.settings.state_dir, &cfg.name)?;
        self.register_link_local(name, &cfg)?;
        self.restore_addresses(name).await?;
        if cfg.up {
            self.net.set_up(ifindex, true).await?;
        }
        Ok(())
    }

    /// Gives the kernel every address of a carp interface whose dataplane entries exist:
    /// the configured ones (no DAD, no prefix route) and the link-local (no DAD, with its
    /// route). Addresses already there are left as they are. Also what restores them after
    /// the interface was down: Linux drops a link's IPv6 addresses when it goes down
    /// (`keep_addr_on_down` keeps no link-local ones either).
    pub(super) async fn restore_addresses(&self, name: &str) -> Result<(), Error> {
        let Some(cif) = self.ifs.get(name) else {
            return Ok(());
        };
        for (addr, prefix_len) in cif.addresses() {
            match addr {
                std::net::IpAddr::V6(ll) if Some(ll) == cif.link_local => {
                    self.net.add_link_local(cif.ifindex, ll).await?
                }
                _ => self.net.add_address(cif.ifindex, addr, prefix_len).await?,
            }
        }
        Ok(())
    }

    /// `up` / `down` without a rebuild, as OpenBSD's `ifconfig carpN up|down`: down bows out
    /// a master and goes INIT (the link stays, the dataplane falls silent); up starts the
    /// election again. The configured value changes first, so that the link events this
    /// causes are what carpd expects.
    pub(super) async fn set_admin_up(&mut self, name: &str, up: bool) -> Result<(), Error> {
        let Some(cif) = self.ifs.get_mut(name) else {
            return Ok(());
        };
        if cif.cfg.up == up {
            return Ok(());
        }
        cif.cfg.up = up;
        let ifindex = cif.ifindex;
        if ifindex == 0 {
            // Not built (its carpdev is gone): built up or down when the carpdev returns.
            return Ok(());
        }
        if up {
            self.net.set_up(ifindex, true).await?;
            self.restore_addresses(name).await?;
            self.bring_up(name);
        } else {
            self.drive_all(name, fsm::Event::AdminDown);
            self.net.set_up(ifindex, false).await?;
        }
        info!(interface = %name, up, "carp interface {}", if up { "up" } else { "down" });
        Ok(())
    }

    /// Timers, passphrase and up/down applied to the running interface
    /// ([`config::InterfaceChange::in_place`]): no rebuild, no bow-out, the state and the
    /// replay counter kept. Checked in full before anything changes.
    pub(super) async fn apply_in_place(
        &mut self,
        name: &str,
        cfg: CarpInterface,
    ) -> Result<(), Error> {
        let Some(cif) = self.ifs.get_mut(name) else {
            return Ok(());
        };
        let auth = super::carpif::auth_for(&cfg)?;
        let old = cif.cfg.clone();
        if (cfg.advbase, cfg.advskew) != (old.advbase, old.advskew) {
            cif.fsm.set_timing(now(), cfg.advbase, cfg.advskew)?;
        }
        // A new HMAC key only (OpenBSD carp_prepare_ad runs on every send): adverts signed
        // with it from the next one on, with the same counter.
        cif.auth = auth;
        // New timers or passphrase: the followed master is judged anew by its next advert.
        self.forget_master_advert(name);
        let Some(cif) = self.ifs.get_mut(name) else {
            return Ok(());
        };
        let (want_up, groups, state) = (cfg.up, cfg.groups.clone(), cfg.initial_state);
        cif.cfg = CarpInterface {
            up: old.up,
            groups: old.groups.clone(),
            initial_state: old.initial_state,
            ..cfg
        };
        self.sync_nodes(name)?;
        if groups != old.groups {
            self.set_groups(name, groups);
        }
        if state != old.initial_state {
            self.set_initial_state(name, state);
        }
        self.set_admin_up(name, want_up).await
    }

    /// A new identity (carpdev, vhid, addresses): the interface is built again, all or
    /// nothing. What can be checked without touching the old interface is checked first
    /// (settings valid, new carpdev present and carrying the dataplane), so that a refusal
    /// leaves it running in its state. If the new one still fails to build, the old one is
    /// built again and elects; the error is returned either way.
    pub(super) async fn replace_interface(
        &mut self,
        name: &str,
        cfg: CarpInterface,
    ) -> Result<(), Error> {
        let Some(old) = self.ifs.get(name).map(|c| c.cfg.clone()) else {
            return Err(Error::NoInterface {
                name: name.to_owned(),
            });
        };
        CarpIf::new(cfg.clone(), 0, self.settings.preempt)?;
        // `state` is applied once: a rebuilt interface keeps what is still pending, unless
        // the change sets a new `state`.
        let pending = self.ifs[name].pending_state;
        let keep_pending = |daemon: &mut Self, state_changed: bool| {
            if let Some(cif) = daemon.ifs.get_mut(name)
                && !state_changed
            {
                cif.pending_state = pending;
            }
        };
        let state_changed = cfg.initial_state != old.initial_state;
        let new_carpdev = cfg.carpdev.clone();
        let opened_here = !self.carpdevs.contains_key(&new_carpdev);
        self.ensure_carpdev(&new_carpdev, name).await?;
        self.remove_interface(name).await?;
        let Err(err) = self.add_interface(cfg).await else {
            keep_pending(self, state_changed);
            self.bring_up(name);
            return Ok(());
        };
        warn!(interface = %name, error = %err, "new settings not applicable; restoring the old interface");
        if opened_here && let Err(release) = self.release_carpdev(&new_carpdev) {
            warn!(carpdev = %new_carpdev, error = %release, "detaching from the refused carpdev");
        }
        match self.add_interface(old).await {
            Ok(()) => {
                keep_pending(self, false);
                self.bring_up(name);
                Err(err)
            }
            Err(restore) => Err(Error::RestoreFailed {
                refused: Box::new(err),
                restore: Box::new(restore),
            }),
        }
    }

    /// Detaches the dataplane from a carpdev no interface uses, and closes its sockets.
    fn release_carpdev(&mut self, devname: &str) -> Result<(), Error> {
        if self.ifs.values().any(|c| c.cfg.carpdev == devname) {
            return Ok(());
        }
        let Some(dev) = self.carpdevs.remove(devname) else {
            return Ok(());
        };
        self.dataplane.remove_carpdev(dev.ifindex)?;
        self.dataplane.detach(devname)?;
        Ok(())
    }

    /// Makes the carp interface's IPv6 link-local address a virtual address like the
    /// configured ones: dataplane entry and carpdev group here, before the kernel gets it
    /// ([`Daemon::restore_addresses`]). Nothing when the interface has no IPv6.
    fn register_link_local(&mut self, name: &str, cfg: &CarpInterface) -> Result<(), Error> {
        if !crate::net::sysctl::ipv6_enabled(&cfg.name) {
            debug!(interface = %cfg.name, "IPv6 is off: no link-local address");
            return Ok(());
        }
        let Some(cif) = self.ifs.get_mut(name) else {
            return Ok(());
        };
        let ll = crate::net::link::carp_link_local(cif.vmac);
        if cif.link_local == Some(ll) {
            // A link rebuilt after someone deleted it: the entries are still there.
            return Ok(());
        }
        // Recorded first, so that remove_interface undoes whatever of the steps below was
        // done when one fails.
        cif.link_local = Some(ll);
        let (carpdev_ifindex, slot) = (cif.carpdev_ifindex, cif.slot());
        self.dataplane
            .add_vip6(carpdev_ifindex, ll, vip_entry(slot))?;
        if let Some(dev) = self.carpdevs.get_mut(&cfg.carpdev) {
            dev.groups6.join(&ll)?;
        }
        Ok(())
    }

    /// Takes an interface out: bow-out advert if master, dataplane silent, then the Linux
    /// interface and the map entries are removed.
    pub async fn remove_interface(&mut self, name: &str) -> Result<(), Error> {
        self.remove_nodes(name)?;
        self.drive(name, fsm::Event::Shutdown);
        let Some(cif) = self.ifs.remove(name) else {
            return Ok(());
        };
        let ifindex = cif.carpdev_ifindex;
        self.dataplane.set_slot(
            ifindex,
            cif.slot(),
            cif.vmac,
            cif.interval(),
            VhidDataplaneState::Init,
        )?;
        if cif.ifindex != 0 {
            self.net.delete_link(cif.ifindex).await?;
            self.dataplane.remove_guard(cif.ifindex)?;
        }
        for a in &cif.cfg.ipv4 {
            self.dataplane.remove_vip4(ifindex, a.addr)?;
        }
        for addr in cif.ipv6() {
            self.dataplane.remove_vip6(ifindex, addr)?;
            if let Some(dev) = self.carpdevs.get_mut(&cif.cfg.carpdev)
                && let Err(err) = dev.groups6.leave(&addr)
            {
                // Not joined (a start that failed half-way): nothing to leave.
                debug!(interface = %name, error = %err, "leaving a solicited-node group");
            }
        }
        if cif.vrrp.is_some() {
            self.dataplane.remove_vrrp_router(ifindex, cif.slot())?;
        } else {
            self.dataplane.remove_vhid(ifindex, cif.cfg.vhid)?;
        }
        let own = cif.own_demote;
        for g in &cif.cfg.groups {
            let left = self
                .ifs
                .values()
                .filter(|c| c.cfg.groups.contains(g))
                .count();
            self.groups.leave(g, own, left);
        }
        info!(interface = %name, "carp interface removed");
        Ok(())
    }

    /// SIGHUP: loads the configuration again and applies only what changed: new timers, a
    /// new pass and up/down are applied to the running interface
    /// ([`Daemon::apply_in_place`]), a new identity (carpdev, vhid, addresses) rebuilds it
    /// all or nothing ([`Daemon::replace_interface`]), and untouched interfaces are not
    /// disturbed. A bad file changes nothing.
    pub async fn reload(&mut self) {
        let new = match load_config(&self.opts.config_paths) {
            Ok(c) => c,
            Err(err) => {
                warn!(error = %err, "SIGHUP: configuration invalid, nothing changed");
                return;
            }
        };
        let old = Config {
            interfaces: self
                .ifs
                .values()
                .filter(|c| c.node_of.is_none())
                .map(|c| c.cfg.clone())
                .collect(),
            daemon: self.settings.clone(),
            checks: Vec::new(),
        };
        self.reload_checks(new.checks.clone());
        let diff = config::diff(&old, &new);
        if diff.daemon_changed {
            info!("SIGHUP: [daemon] settings are read at start only; restart carpd to apply them");
        }
        for name in &diff.removed {
            if let Err(err) = self.remove_interface(name).await {
                warn!(interface = %name, error = %err, "SIGHUP: removing");
            }
        }
        for change in &diff.changed {
            let Some(cfg) = new.interfaces.iter().find(|c| c.name == change.name) else {
                continue;
            };
            let result = if change.in_place() {
                self.apply_in_place(&change.name, cfg.clone()).await
            } else {
                self.replace_interface(&change.name, cfg.clone()).await
            };
            if let Err(err) = result {
                warn!(interface = %change.name, error = %err,
                      "SIGHUP: change not applied; the interface keeps its previous settings");
            }
        }
        for name in &diff.added {
            let Some(cfg) = new.interfaces.iter().find(|c| &c.name == name) else {
                continue;
            };
            match self.add_interface(cfg.clone()).await {
                Ok(()) => self.bring_up(name),
                Err(err) => warn!(interface = %name, error = %err, "SIGHUP: adding"),
            }
        }
        info!(
            added = diff.added.len(),
            removed = diff.removed.len(),
            changed = diff.changed.len(),
            unchanged = diff.unchanged.len(),
            "SIGHUP: configuration reloaded"
        );
    }

    /// Clean exit: every master bows out (a backup takes over at once), then everything
    /// carpd created is removed and the sysctls it changed are restored.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        // The loop sends what is left (the bow-out adverts): nothing of the pacer after it.
        self.take_back_all_adverts();
        let names = self.interface_names();
        for name in &names {
            if let Err(err) = self.remove_interface(name).await {
                warn!(interface = %name, error = %err, "removing interface at shutdown");
            }
        }
        let devs: Vec<(String, u32)> = self
            .carpdevs
            .values()
            .map(|d| (d.name.clone(), d.ifindex))
            .collect();
        for (name, ifindex) in devs {
            self.dataplane.remove_carpdev(ifindex)?;
            self.dataplane.detach(&name)?;
        }
        self.carpdevs.clear();
        crate::net::sysctl::restore_leftover(&self.settings.state_dir)?;
        self.dataplane.remove_pins()?;
        info!("carpd stopped");
        Ok(())
    }
}

/// The dataplane's entry of a virtual address of `vhid` (NAs carry the router flag when this
/// host forwards IPv6, as OpenBSD's do).
/// The address entry of an interface's addresses: its dataplane slot ([`CarpIf::slot`]).
fn vip_entry(slot: u32) -> VipEntry {
    VipEntry {
        vhid: slot,
        flags: if ipv6_forwarding() {
            VIP_FLAG_ROUTER
        } else {
            0
        },
    }
}
