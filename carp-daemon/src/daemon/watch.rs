//! Link and address events: a carpdev's carrier going and coming (OpenBSD
//! `carp_carpdev_state`), and changes made behind carpd's back: a carp interface deleted (`ip link del carp0`) or set
//! down, a virtual address removed by hand, the carpdev deleted and created again.
//!
//! In each case the vhid goes INIT at once, so the dataplane stops answering for addresses
//! the kernel no longer holds (a master bows out first when it still can, so that a backup
//! takes over now rather than after its master-down timer), and then carpd puts back what
//! its configuration says and starts the election again; it logs at warn what it saw and
//! what it did.
//!
//! Telling these apart from carpd's own changes: an event only says *where* to look. carpd
//! then compares the kernel's state of that interface with what it wants at that moment
//! (the link it created, up if configured up, every configured address). Its own changes
//! are finished before the loop reads the next event, and match what it wants: links it
//! deleted belong to no interface any more, a `down` it made is what its configuration now
//! says, addresses it added are expected.
use std::net::IpAddr;

use tracing::{debug, info, warn};

use super::Daemon;
use crate::Error;
use crate::net::{LinkEvent, NetEvent};
use crate::proto::fsm;

/// What differs between a carp interface in the kernel and carpd's configuration of it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Drift {
    /// The link carpd created is gone.
    Deleted,
    /// Configured up, but the link is down.
    SetDown,
    /// Configured addresses the link no longer holds.
    AddressesRemoved(Vec<(IpAddr, u8)>),
}

impl Daemon {
    /// One event of the link/address monitor.
    pub async fn on_net_event(&mut self, event: NetEvent) {
        match event {
            NetEvent::Link(link) => self.on_link_event(link).await,
            NetEvent::Address { ifindex, .. } => {
                if let Some(dev) = self.carpdevs.values_mut().find(|d| d.ifindex == ifindex) {
                    dev.adverts.addresses_changed();
                }
                if let Some(name) = self.carp_interface_with_ifindex(ifindex) {
                    self.check_carp_interface(&name).await;
                }
            }
        }
    }

    /// Carrier of an interface changed; only carpdevs matter.
    pub fn on_link(&mut self, ifindex: u32, carrier: bool) {
        let Some(dev) = self.carpdevs.values_mut().find(|d| d.ifindex == ifindex) else {
            return;
        };
        if dev.carrier == carrier {
            return;
        }
        dev.carrier = carrier;
        let devname = dev.name.clone();
        info!(carpdev = %devname, carrier, "carpdev link {}", if carrier { "up" } else { "down" });
        let members: Vec<String> = self
            .ifs
            .iter()
            .filter(|(_, c)| c.cfg.carpdev == devname && c.node_of.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        for name in members {
            // OpenBSD carp_carpdev_state: link loss demotes the interface's groups by 1
            // (undone on return) and puts its vhids in INIT.
            self.adjust_own_demote(&name, if carrier { -1 } else { 1 });
            if carrier {
                self.bring_up(&name);
            } else {
                self.drive_all(&name, fsm::Event::LinkDown);
            }
        }
    }

    async fn on_link_event(&mut self, event: LinkEvent) {
        let carpdev = self
            .carpdevs
            .values()
            .find(|d| d.ifindex == event.ifindex)
            .map(|d| d.name.clone());
        match carpdev {
            Some(dev) if event.deleted => self.carpdev_deleted(&dev),
            Some(_) => self.on_link(event.ifindex, event.carrier),
            None if !event.deleted && self.is_missing_carpdev(&event.name) => {
                self.carpdev_returned(&event.name).await;
            }
            None => {}
        }
        let by_index = self.carp_interface_with_ifindex(event.ifindex);
        let by_name = self
            .ifs
            .contains_key(&event.name)
            .then(|| event.name.clone());
        if let Some(name) = by_index.or(by_name) {
            self.check_carp_interface(&name).await;
        }
    }

    fn carp_interface_with_ifindex(&self, ifindex: u32) -> Option<String> {
        self.ifs
            .values()
            .find(|c| c.ifindex != 0 && c.ifindex == ifindex)
            .map(|c| c.cfg.name.clone())
    }

    /// A configured carpdev carpd does not hold (it was deleted).
    fn is_missing_carpdev(&self, name: &str) -> bool {
        !self.carpdevs.contains_key(name) && self.ifs.values().any(|c| c.cfg.carpdev == name)
    }

    /// Compares a carp interface in the kernel with its configuration; on a difference,
    /// silences the vhid and puts the interface back.
    async fn check_carp_interface(&mut self, name: &str) {
        let drift = match self.drift(name).await {
            Ok(Some(drift)) => drift,
            Ok(None) => return,
            Err(err) => {
                warn!(interface = %name, error = %err, "reading the carp interface's state");
                return;
            }
        };
        // A carp interface vanishes with its carpdev, and its deletion may be reported
        // before the carpdev's: then the carpdev is what to handle.
        if drift == Drift::Deleted {
            let devname = self.ifs[name].cfg.carpdev.clone();
            let dev_ifindex = self.carpdevs.get(&devname).map(|d| d.ifindex);
            let dev_present = match dev_ifindex {
                Some(ifindex) => {
                    matches!(self.net.link_by_index(ifindex).await, Ok(Some(l)) if l.name == devname)
                }
                None => false,
            };
            if !dev_present {
                self.carpdev_deleted(&devname);
                return;
            }
        }
        let saw = match &drift {
            Drift::Deleted => "deleted".to_owned(),
            Drift::SetDown => "set down".to_owned(),
            Drift::AddressesRemoved(gone) => format!(
                "virtual address(es) {} removed",
                gone.iter()
                    .map(|(a, p)| format!("{a}/{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        warn!(interface = %name, "carp interface {saw} by someone else: vhid to INIT, dataplane silent");
        // OpenBSD's `ifconfig carpN down` path: a master bows out, then INIT; the dataplane
        // goes silent with the state change.
        self.drive_all(name, fsm::Event::AdminDown);
        match self.repair(name, &drift).await {
            Ok(did) => {
                warn!(interface = %name, "carp interface {did}; election restarted");
                self.bring_up(name);
            }
            Err(err) => {
                warn!(interface = %name, error = %err, "carp interface could not be put back; it stays in INIT");
            }
        }
    }

    /// What differs, read from the kernel now. `None` when the interface is as configured,
    /// or not built (its carpdev is missing), or configured down (the kernel drops IPv6
    /// addresses of a down link: that is expected).
    async fn drift(&self, name: &str) -> Result<Option<Drift>, Error> {
        let Some(cif) = self.ifs.get(name) else {
            return Ok(None);
        };
        if cif.ifindex == 0 || !self.carpdevs.contains_key(&cif.cfg.carpdev) {
            return Ok(None);
        }
        let link = self.net.link_by_index(cif.ifindex).await?;
        let Some(link) = link.filter(|l| l.name == cif.cfg.name) else {
            return Ok(Some(Drift::Deleted));
        };
        if !cif.cfg.up {
            return Ok(None);
        }
        if !link.admin_up {
            return Ok(Some(Drift::SetDown));
        }
        let held = self.net.addresses(cif.ifindex).await?;
        let gone: Vec<(IpAddr, u8)> = cif
            .addresses()
            .into_iter()
            .filter(|(a, _)| !held.iter().any(|h| h.addr == *a))
            .collect();
        Ok((!gone.is_empty()).then_some(Drift::AddressesRemoved(gone)))
    }

    /// Puts the interface back as configured; what was done.
    async fn repair(&mut self, name: &str, drift: &Drift) -> Result<&'static str, Error> {
        match drift {
            Drift::Deleted => {
                if let Some(cif) = self.ifs.get_mut(name) {
                    let gone = std::mem::take(&mut cif.ifindex);
                    // The kernel took the egress guard with the link; drop its map entry.
                    self.dataplane.remove_guard(gone)?;
                }
                self.build_link(name).await?;
                Ok("recreated")
            }
            Drift::SetDown => {
                let ifindex = self.ifs[name].ifindex;
                self.net.set_up(ifindex, true).await?;
                self.restore_addresses(name).await?;
                Ok("set up again")
            }
            Drift::AddressesRemoved(_) => {
                self.restore_addresses(name).await?;
                Ok("addresses added again")
            }
        }
    }

    /// The carpdev is gone, and every carp interface on it with it: its vhids go INIT at
    /// once (no bow-out: nothing can be sent), its dataplane entries and XDP link are
    /// dropped, and the interfaces wait for a link of that name to appear.
    fn carpdev_deleted(&mut self, devname: &str) {
        let Some(dev) = self.carpdevs.remove(devname) else {
            return;
        };
        warn!(carpdev = %devname, ifindex = dev.ifindex,
              "carpdev deleted: its carp interfaces are in INIT until it is back");
        let members = self.members_of(devname);
        for name in &members {
            // As a carrier loss (OpenBSD carp_carpdev_state): demoted by 1 until it returns.
            if dev.carrier {
                self.adjust_own_demote(name, 1);
            }
            self.drive_all(name, fsm::Event::LinkDown);
            // The other nodes' entries and the balancing go with the carpdev's index.
            for key in self.elections(name).into_iter().skip(1) {
                if let Some(node) = self.ifs.get(&key)
                    && let Err(err) = self
                        .dataplane
                        .remove_vhid(node.carpdev_ifindex, node.cfg.vhid)
                {
                    debug!(interface = %key, error = %err, "removing a vhid entry");
                }
            }
            if let Some(cif) = self.ifs.get(name)
                && cif.cfg.balance.is_some()
                && let Err(err) = self
                    .dataplane
                    .remove_lb_group(cif.carpdev_ifindex, cif.cfg.vhid)
            {
                debug!(interface = %name, error = %err, "removing the balancing entry");
            }
            let Some(cif) = self.ifs.get_mut(name) else {
                continue;
            };
            cif.ifindex = 0;
            let (ifindex, vhid) = (cif.carpdev_ifindex, cif.cfg.vhid);
            let addrs = cif.addresses();
            for (addr, _) in addrs {
                let removed = match addr {
                    IpAddr::V4(a) => self.dataplane.remove_vip4(ifindex, a),
                    IpAddr::V6(a) => self.dataplane.remove_vip6(ifindex, a),
                };
                if let Err(err) = removed {
                    debug!(interface = %name, error = %err, "removing a virtual address entry");
                }
            }
            if let Err(err) = self.dataplane.remove_vhid(ifindex, vhid) {
                debug!(interface = %name, error = %err, "removing a vhid entry");
            }
        }
        if let Err(err) = self.dataplane.remove_carpdev(dev.ifindex) {
            debug!(carpdev = %devname, error = %err, "removing the carpdev entry");
        }
        // The XDP link went with the device; its pin would otherwise be taken over (and
        // fail) when the carpdev returns.
        if let Err(err) = self.dataplane.detach(devname) {
            debug!(carpdev = %devname, error = %err, "unpinning the XDP link");
        }
    }

    /// A link with the name of a deleted carpdev appeared: the dataplane is attached to it
    /// and its carp interfaces are built on it again.
    async fn carpdev_returned(&mut self, devname: &str) {
        let members = self.members_of(devname);
        let Some(first) = members.first() else {
            return;
        };
        let ifindex = match self.ensure_carpdev(devname, first).await {
            Ok(ifindex) => ifindex,
            Err(err) => {
                warn!(carpdev = %devname, error = %err, "carpdev is back but could not be used");
                return;
            }
        };
        let carrier = self.carpdevs.get(devname).is_some_and(|d| d.carrier);
        warn!(carpdev = %devname, ifindex, "carpdev is back: XDP attached, rebuilding its carp interfaces");
        for name in &members {
            if let Some(cif) = self.ifs.get_mut(name) {
                cif.carpdev_ifindex = ifindex;
                cif.ifindex = 0;
            }
            let built = match self.register_dataplane(name) {
                Ok(()) => self.build_link(name).await,
                Err(err) => Err(err),
            };
            if let Err(err) = built {
                warn!(interface = %name, error = %err, "rebuilding on the returned carpdev");
                continue;
            }
            warn!(interface = %name, carpdev = %devname, "carp interface rebuilt on the returned carpdev");
            if carrier {
                // Its carrier loss ends here; without carrier, `on_link` ends it later.
                self.adjust_own_demote(name, -1);
                self.bring_up(name);
            }
        }
    }

    fn members_of(&self, devname: &str) -> Vec<String> {
        self.ifs
            .values()
            .filter(|c| c.cfg.carpdev == devname && c.node_of.is_none())
            .map(|c| c.cfg.name.clone())
            .collect()
    }
}
