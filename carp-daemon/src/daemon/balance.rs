//! Balanced carp interfaces (OpenBSD `carpnodes` + `balancing`): one election per node.
//!
//! The interface's own entry in the daemon's table ([`CarpIf`] under its name) is the
//! election of its leader node (the lowest vhid) and owns everything the interface has
//! once: the Linux link, the addresses, group membership and its own demotion. Every other
//! node is an entry of its own under `NAME:VHID` ([`node_key`]) with its own state machine,
//! timers, replay counter and HMAC context, and the interface's settings otherwise
//! (advbase, passphrase, groups, addresses), so that adverts, timers and the dataplane's
//! vhid entries work for it as for any vhid. Interface-wide events (up, down, link loss,
//! forced state, shutdown) reach every node ([`Daemon::drive_all`]); demotion reaches every
//! node because all of them carry the interface's groups, and a node's send-error demotion
//! is the interface's.
//!
//! The dataplane learns the nodes in one `lb_groups` entry per interface, which also holds
//! every node's state here: an election of a balanced interface (its leader's included)
//! stores its state there ([`Daemon::store_dataplane_state`]), one write per change, and
//! its fail-silent deadline in a `carp_deadlines` slot, one store per advert, as any other
//! vhid does.
use tracing::{debug, info, warn};

use super::Daemon;
use super::carpif::{CarpIf, node_key};
use crate::Error;
use crate::config::{Balancing, CarpInterface};
use crate::dataplane::{DataplaneError, VhidDataplaneState};
use crate::proto::fsm;

/// The dataplane's code of a balancing mode.
fn lb_mode(mode: Balancing) -> u32 {
    match mode {
        Balancing::Ip | Balancing::None => carp_common::lb::LB_MODE_IP,
        Balancing::IpStealth => carp_common::lb::LB_MODE_IP_STEALTH,
        Balancing::IpUnicast => carp_common::lb::LB_MODE_IP_UNICAST,
    }
}

impl Daemon {
    /// Stores an election's state in the dataplane: a balanced interface's node (its leader
    /// included) in the interface's group entry, any other vhid or VRRP router in its
    /// `carp_vhids` entry. A node whose group is already forgotten (being torn down) is
    /// stored as any vhid.
    pub(super) fn store_dataplane_state(
        &mut self,
        name: &str,
        state: VhidDataplaneState,
    ) -> Result<(), DataplaneError> {
        let Some(cif) = self.ifs.get(name) else {
            return Ok(());
        };
        if let Some(lb) = &cif.cfg.balance
            && cif.vrrp.is_none()
            && self.dataplane.set_lb_node(
                cif.carpdev_ifindex,
                lb.leader().vhid,
                cif.cfg.vhid,
                cif.interval(),
                state,
            )?
        {
            return Ok(());
        }
        self.dataplane.set_slot(
            cif.carpdev_ifindex,
            cif.slot(),
            cif.vmac,
            cif.interval(),
            state,
        )
    }

    /// Every election of an interface: its own, then its other nodes' (none unless it is
    /// balanced). `name` may also be a node's key: then just that one.
    pub fn elections(&self, name: &str) -> Vec<String> {
        let Some(cif) = self.ifs.get(name) else {
            return Vec::new();
        };
        let mut keys = vec![name.to_owned()];
        if cif.node_of.is_none()
            && let Some(lb) = &cif.cfg.balance
        {
            keys.extend(
                lb.nodes
                    .iter()
                    .filter(|n| n.vhid != cif.cfg.vhid)
                    .map(|n| node_key(name, n.vhid))
                    .filter(|k| self.ifs.contains_key(k)),
            );
        }
        keys
    }

    /// The interface an election belongs to (itself for an interface's own).
    pub fn interface_of(&self, key: &str) -> String {
        self.ifs
            .get(key)
            .and_then(|c| c.node_of.clone())
            .unwrap_or_else(|| key.to_owned())
    }

    /// Feeds an interface-wide event to every election of the interface.
    pub fn drive_all(&mut self, name: &str, event: fsm::Event) {
        for key in self.elections(name) {
            self.drive(&key, event);
        }
    }

    /// The interfaces (not the node elections) in the daemon's table.
    pub fn interface_names(&self) -> Vec<String> {
        self.ifs
            .iter()
            .filter(|(_, c)| c.node_of.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Adds the other nodes' elections of a balanced interface whose own entry is
    /// registered, in INIT, with their dataplane entries, and tells the dataplane the
    /// nodes. In `ip` mode the carp MAC joins the carpdev's receive filter.
    pub(super) fn add_nodes(&mut self, name: &str) -> Result<(), Error> {
        let Some(cif) = self.ifs.get(name) else {
            return Ok(());
        };
        let Some(lb) = cif.cfg.balance.clone() else {
            return Ok(());
        };
        let (cfg, carpdev_ifindex) = (cif.cfg.clone(), cif.carpdev_ifindex);
        for node in lb.nodes.iter().filter(|n| n.vhid != cfg.vhid) {
            let key = node_key(name, node.vhid);
            if !self.ifs.contains_key(&key) {
                let n = CarpIf::node(&cfg, *node, carpdev_ifindex, self.settings.preempt)?;
                self.ifs.insert(key.clone(), n);
            }
        }
        self.register_nodes(name)?;
        info!(interface = %name, balancing = %lb.mode,
              nodes = ?lb.nodes.iter().map(|n| (n.vhid, n.advskew)).collect::<Vec<_>>(),
              "load balancing configured");
        Ok(())
    }

    /// The dataplane's view of a balanced interface's nodes on its (current) carpdev: each
    /// node's vhid entry (INIT), the group, and the carp MAC in the receive filter.
    pub(super) fn register_nodes(&mut self, name: &str) -> Result<(), Error> {
        let Some(cif) = self.ifs.get(name) else {
            return Ok(());
        };
        let Some(lb) = cif.cfg.balance.clone() else {
            return Ok(());
        };
        let (carpdev, carpdev_ifindex) = (cif.cfg.carpdev.clone(), cif.carpdev_ifindex);
        for key in self.elections(name).into_iter().skip(1) {
            let Some(node) = self.ifs.get_mut(&key) else {
                continue;
            };
            node.carpdev_ifindex = carpdev_ifindex;
            let (vhid, interval) = (node.cfg.vhid, node.interval());
            self.dataplane
                .set_vhid(carpdev_ifindex, vhid, interval, VhidDataplaneState::Init)?;
        }
        let dev_mac = self.carpdevs.get(&carpdev).map_or([0; 6], |d| d.mac);
        let vhids: Vec<u8> = lb.nodes.iter().map(|n| n.vhid).collect();
        let mode = lb_mode(lb.mode);
        self.dataplane
            .set_lb_group(carpdev_ifindex, &vhids, mode, dev_mac)?;
        if lb.mode == Balancing::Ip {
            let mac = carp_common::lb::carp_mac(lb.leader().vhid, mode);
            crate::net::maddr::add(&carpdev, mac).map_err(|source| Error::Io {
                what: "adding the carp MAC to the receive filter of",
                path: carpdev.clone().into(),
                source,
            })?;
        }
        Ok(())
    }

    /// Takes the other nodes of a balanced interface out (each master bows out), and the
    /// interface's balancing out of the dataplane.
    pub(super) fn remove_nodes(&mut self, name: &str) -> Result<(), Error> {
        let Some(cif) = self.ifs.get(name) else {
            return Ok(());
        };
        let Some(lb) = cif.cfg.balance.clone() else {
            return Ok(());
        };
        let (carpdev, carpdev_ifindex) = (cif.cfg.carpdev.clone(), cif.carpdev_ifindex);
        for key in self.elections(name).into_iter().skip(1) {
            self.drive(&key, fsm::Event::Shutdown);
            let Some(node) = self.ifs.remove(&key) else {
                continue;
            };
            let vhid = node.cfg.vhid;
            self.dataplane.set_vhid(
                carpdev_ifindex,
                vhid,
                node.interval(),
                VhidDataplaneState::Init,
            )?;
            self.dataplane.remove_vhid(carpdev_ifindex, vhid)?;
        }
        self.dataplane
            .remove_lb_group(carpdev_ifindex, lb.leader().vhid)?;
        if lb.mode == Balancing::Ip
            && self.carpdevs.contains_key(&carpdev)
            && let Err(err) = crate::net::maddr::remove(
                &carpdev,
                carp_common::lb::carp_mac(lb.leader().vhid, carp_common::lb::LB_MODE_IP),
            )
        {
            debug!(interface = %name, error = %err, "removing the carp MAC from the receive filter");
        }
        Ok(())
    }

    /// After a change applied in place to a balanced interface's own entry: every other
    /// node takes the shared settings (advbase, passphrase, groups, up, state), with new
    /// timers and HMAC context where they changed. Its own vhid and advskew stay.
    pub(super) fn sync_nodes(&mut self, name: &str) -> Result<(), Error> {
        let Some(cfg) = self.ifs.get(name).map(|c| c.cfg.clone()) else {
            return Ok(());
        };
        let now = super::now();
        for key in self.elections(name).into_iter().skip(1) {
            let Some(node) = self.ifs.get_mut(&key) else {
                continue;
            };
            let new = CarpInterface {
                vhid: node.cfg.vhid,
                advskew: node.cfg.advskew,
                ..cfg.clone()
            };
            if new.advbase != node.cfg.advbase {
                node.fsm.set_timing(now, new.advbase, new.advskew)?;
            }
            node.auth = super::carpif::auth_for(&new)?;
            node.cfg = new;
            self.forget_master_advert(&key);
        }
        Ok(())
    }

    /// The MAC adverts of an election leave from: the carpdev's own in `ip` and
    /// `ip-stealth` modes (OpenBSD's `carp_transmit` never leaks the carp MAC there), the
    /// node's virtual MAC otherwise.
    pub(super) fn advert_source_mac(&self, key: &str) -> Option<[u8; 6]> {
        let cif = self.ifs.get(key)?;
        let hides_carp_mac = cif
            .cfg
            .balance
            .as_ref()
            .is_some_and(|lb| matches!(lb.mode, Balancing::Ip | Balancing::IpStealth));
        if hides_carp_mac {
            match self.carpdevs.get(&cif.cfg.carpdev) {
                Some(dev) => Some(dev.mac),
                None => {
                    warn!(interface = %key, "carpdev unknown: advert not sent");
                    None
                }
            }
        } else {
            Some(cif.vmac)
        }
    }
}
