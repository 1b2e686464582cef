//! Start, reload and shutdown: creating and removing what carpd owns, in an order that never
//! lets two hosts (or this host's kernel) answer for a virtual address.
use std::collections::BTreeMap;
use std::path::PathBuf;

use carp_common::maps::{VIP_FLAG_ROUTER, VipEntry};
use tracing::{debug, info, warn};

use super::carpif::CarpIf;
use super::runtime::{Carpdev, Daemon, DaemonOptions, ipv6_forwarding};
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
    pub async fn start(opts: DaemonOptions, config: Config) -> Result<Self, Error> {
        let mut settings = config.daemon.clone();
        if let Some(dir) = &opts.state_dir {
            settings.state_dir = dir.clone();
        }
        if let Some(dir) = &opts.pin_dir {
            settings.pin_dir = dir.clone();
        }
        settings.preempt |= opts.preempt;
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
        let mut dataplane = Dataplane::load_pinned(&settings.pin_dir)?;
        // A crashed run may have left interfaces holding virtual addresses. Silence its
        // dataplane entries first (they keep dropping ARP for those addresses), then remove
        // the interfaces, then forget the entries: at no point does anyone answer.
        dataplane.silence_all()?;
        for stale in net.stale_carp_interfaces().await? {
            warn!(interface = %stale.name, "removing carp interface left by an earlier run");
            net.delete_link(stale.ifindex).await?;
        }
        dataplane.clear()?;

        let mut daemon = Daemon {
            opts,
            settings,
            net,
            dataplane,
            carpdevs: BTreeMap::new(),
            ifs: BTreeMap::new(),
            groups: Groups::new(),
        };
        if daemon.settings.boot_demote > 0 {
            let by = i16::from(daemon.settings.boot_demote);
            daemon
                .groups
                .user_adjust(crate::groups::CARP_GROUP, by)
                .map_err(|e| Error::Other(e.to_string()))?;
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
        let names: Vec<String> = daemon.ifs.keys().cloned().collect();
        for name in names {
            daemon.bring_up(&name);
        }
        Ok(daemon)
    }

    /// Opens (once) the carpdev an interface sits on: XDP attached, sockets, sysctls.
    async fn ensure_carpdev(&mut self, name: &str, for_interface: &str) -> Result<u32, Error> {
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
        self.dataplane.set_carpdev(link.ifindex, link.mac)?;
        let adopted = self.dataplane.attach(name, self.opts.xdp_mode)?;
        info!(carpdev = %name, adopted, "XDP dataplane attached");
        crate::net::ethtool::warn_about_rx_vlan_offload(name);
        crate::net::sysctl::apply_carpdev(&self.settings.state_dir, name)?;
        let dev = Carpdev {
            name: name.to_owned(),
            ifindex: link.ifindex,
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
        if let Err(err) = self.build_interface(&name).await {
            if let Err(undo) = self.remove_interface(&name).await {
                warn!(interface = %name, error = %undo, "undoing a failed interface");
            }
            return Err(err);
        }
        Ok(())
    }

    /// The dataplane entries, the Linux interface, its addresses and groups of a registered
    /// interface, in that order (the dataplane drops ARP for the addresses before the kernel
    /// holds them).
    async fn build_interface(&mut self, name: &str) -> Result<(), Error> {
        let cif = &self.ifs[name];
        let (cfg, vmac, carpdev_ifindex, interval) = (
            cif.cfg.clone(),
            cif.vmac,
            cif.carpdev_ifindex,
            cif.interval(),
        );
        self.dataplane.set_vhid(
            carpdev_ifindex,
            cfg.vhid,
            interval,
            VhidDataplaneState::Init,
        )?;
        let vip = VipEntry {
            vhid: u32::from(cfg.vhid),
            flags: if ipv6_forwarding() {
                VIP_FLAG_ROUTER
            } else {
                0
            },
        };
        for a in &cfg.ipv4 {
            self.dataplane.add_vip4(carpdev_ifindex, a.addr, vip)?;
        }
        for a in &cfg.ipv6 {
            self.dataplane.add_vip6(carpdev_ifindex, a.addr, vip)?;
            if let Some(dev) = self.carpdevs.get_mut(&cfg.carpdev) {
                dev.groups6.join(&a.addr)?;
            }
        }
        let ifindex = self
            .net
            .create_carp_interface(&cfg.name, carpdev_ifindex, vmac)
            .await?;
        if let Some(cif) = self.ifs.get_mut(name) {
            cif.ifindex = ifindex;
        }
        crate::net::sysctl::apply_carp_interface(&self.settings.state_dir, &cfg.name)?;
        for a in &cfg.ipv4 {
            self.net
                .add_address(ifindex, a.addr.into(), a.prefix_len)
                .await?;
        }
        for a in &cfg.ipv6 {
            self.net
                .add_address(ifindex, a.addr.into(), a.prefix_len)
                .await?;
        }
        if cfg.up {
            self.net.set_up(ifindex, true).await?;
        }
        for g in &cfg.groups {
            self.groups.join(g, 0);
        }
        let demote = self.groups.demote_of(cfg.groups.iter().map(String::as_str));
        if let Some(cif) = self.ifs.get_mut(name) {
            cif.fsm
                .handle(super::runtime::now(), fsm::Event::DemoteChanged(demote));
        }
        info!(interface = %cfg.name, carpdev = %cfg.carpdev, vhid = cfg.vhid,
              advbase = cfg.advbase, advskew = cfg.advskew, "carp interface configured");
        Ok(())
    }

    /// Takes an interface out: bow-out advert if master, dataplane silent, then the Linux
    /// interface and the map entries are removed.
    pub async fn remove_interface(&mut self, name: &str) -> Result<(), Error> {
        self.drive(name, fsm::Event::Shutdown);
        let Some(cif) = self.ifs.remove(name) else {
            return Ok(());
        };
        let ifindex = cif.carpdev_ifindex;
        self.dataplane.set_vhid(
            ifindex,
            cif.cfg.vhid,
            cif.interval(),
            VhidDataplaneState::Init,
        )?;
        if cif.ifindex != 0 {
            self.net.delete_link(cif.ifindex).await?;
        }
        for a in &cif.cfg.ipv4 {
            self.dataplane.remove_vip4(ifindex, a.addr)?;
        }
        for a in &cif.cfg.ipv6 {
            self.dataplane.remove_vip6(ifindex, a.addr)?;
            if let Some(dev) = self.carpdevs.get_mut(&cif.cfg.carpdev)
                && let Err(err) = dev.groups6.leave(&a.addr)
            {
                // Not joined (a start that failed half-way): nothing to leave.
                debug!(interface = %name, error = %err, "leaving a solicited-node group");
            }
        }
        self.dataplane.remove_vhid(ifindex, cif.cfg.vhid)?;
        let own = cif.own_demote;
        self.groups
            .leave(crate::groups::CARP_GROUP, own, self.ifs.len());
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

    /// SIGHUP: loads the configuration again and applies only what changed: new timers are
    /// handed to the running election, a new identity (carpdev, vhid, addresses) rebuilds the
    /// interface, and untouched interfaces are not disturbed. A bad file changes nothing.
    pub async fn reload(&mut self) {
        let new = match load_config(&self.opts.config_paths) {
            Ok(c) => c,
            Err(err) => {
                warn!(error = %err, "SIGHUP: configuration invalid, nothing changed");
                return;
            }
        };
        let old = Config {
            interfaces: self.ifs.values().map(|c| c.cfg.clone()).collect(),
            daemon: self.settings.clone(),
        };
        let diff = config::diff(&old, &new);
        if diff.daemon_changed {
            info!("SIGHUP: [daemon] settings are read at start only; restart carpd to apply them");
        }
        let mut rebuild = diff.added.clone();
        for name in &diff.removed {
            if let Err(err) = self.remove_interface(name).await {
                warn!(interface = %name, error = %err, "SIGHUP: removing");
            }
        }
        for change in &diff.changed {
            let Some(cfg) = new.interfaces.iter().find(|c| c.name == change.name) else {
                continue;
            };
            let Some(cif) = self.ifs.get_mut(&change.name) else {
                continue;
            };
            if change.timers_only() {
                match cif
                    .fsm
                    .set_timing(super::runtime::now(), cfg.advbase, cfg.advskew)
                {
                    Ok(()) => cif.cfg = cfg.clone(),
                    Err(err) => warn!(interface = %change.name, error = %err, "SIGHUP"),
                }
            } else {
                if let Err(err) = self.remove_interface(&change.name).await {
                    warn!(interface = %change.name, error = %err, "SIGHUP: removing");
                }
                rebuild.push(change.name.clone());
            }
        }
        for name in &rebuild {
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
        let names: Vec<String> = self.ifs.keys().cloned().collect();
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
