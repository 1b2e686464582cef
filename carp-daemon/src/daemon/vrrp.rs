//! VRRPv3 interfaces at run time: the seam between the daemon's CARP plumbing and
//! [`VirtualRouter`].
//!
//! A VRRP interface is a [`CarpIf`](super::carpif::CarpIf) like any other (the macvlan with
//! its virtual MAC, the dataplane entry under its slot, the guard, the addresses, link and
//! admin events, reloads, shutdown), so everything that builds, watches and tears down
//! interfaces is shared. Only the election differs: [`Daemon::drive`] hands the events of a
//! VRRP interface to [`Daemon::drive_vrrp`], which translates them for the
//! [`VirtualRouter`] and carries out its actions with the same dataplane update, gratuitous
//! ARP/NA and hooks as CARP's. Events that have no VRRP meaning (demotion, forced states,
//! the dataplane's master repeats) are ignored: VRRPv3 has none of them.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tracing::{debug, info, warn};

use super::{Daemon, now};
use crate::config::VrrpSettings;
use crate::proto::fsm::{self, State};
use crate::proto::vrrp::{
    IpEnds, VirtualRouter, VrrpAction, VrrpAddresses, VrrpAdvert, VrrpEvent, VrrpParams,
};
use carp_common::maps::AdvertEvent;
use carp_common::vrrp::{VRRP_MAX_ADVERT_INTERVAL, vrrp_slot};
use carp_common::wire::{CARP_GROUP_V4, CARP_GROUP_V6};

/// Per-router VRRP counters (`carpctl stats`, metrics), apart from CARP's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VrrpStats {
    pub received: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub became_master: u64,
    pub transitions: u64,
    /// Priority-0 adverts received: a master resigned.
    pub resignations_received: u64,
    /// Master-down timers that fired late and were postponed once.
    pub master_down_postponed: u64,
}

/// The VRRP side of an interface.
#[derive(Debug, Clone)]
pub struct VrrpRun {
    pub router: VirtualRouter,
    pub settings: VrrpSettings,
    pub stats: VrrpStats,
}

impl VrrpRun {
    /// What carpctl shows.
    pub fn status(&self) -> crate::control::protocol::VrrpStatus {
        crate::control::protocol::VrrpStatus {
            priority: self.settings.priority,
            advert_interval: self.settings.advert_interval,
            master_adver_interval: self.router.master_adver_interval(),
            preempt: self.settings.preempt,
            accept_mode: self.settings.accept_mode,
            checksum: self.settings.checksum.as_str().to_owned(),
            adverts_received: self.stats.received,
            adverts_sent: self.stats.sent,
            send_errors: self.stats.send_errors,
            became_master: self.stats.became_master,
            resignations_received: self.stats.resignations_received,
        }
    }

    pub fn new(vrid: u8, settings: VrrpSettings) -> Result<Self, crate::Error> {
        let params = VrrpParams {
            vrid,
            priority: settings.priority,
            advert_interval: settings.advert_interval,
            preempt: settings.preempt,
            accept_mode: settings.accept_mode,
        };
        let family = if settings.v6 {
            fsm::Family::V6
        } else {
            fsm::Family::V4
        };
        Ok(Self {
            router: VirtualRouter::new(params, family)?,
            settings,
            stats: VrrpStats::default(),
        })
    }
}

impl Daemon {
    /// `carpctl stats`' VRRP section: `None` without VRRP interfaces.
    pub(super) fn vrrp_stats(&self) -> Option<crate::control::protocol::VrrpStats> {
        let mut total = crate::control::protocol::VrrpStats::default();
        let mut any = false;
        for run in self.ifs.values().filter_map(|c| c.vrrp.as_ref()) {
            any = true;
            total.received += run.stats.received;
            total.sent += run.stats.sent;
            total.send_errors += run.stats.send_errors;
            total.became_master += run.stats.became_master;
            total.resignations_received += run.stats.resignations_received;
        }
        if !any {
            return None;
        }
        total.dataplane = self.dataplane.vrrp_counters().ok();
        Some(total)
    }

    /// The VRRP routers' metrics and the dataplane's VRRP counters.
    pub(super) fn vrrp_metrics(
        &self,
    ) -> (Vec<crate::metrics::VrrpMetrics>, Vec<(&'static str, u64)>) {
        let routers: Vec<crate::metrics::VrrpMetrics> = self
            .ifs
            .values()
            .filter_map(|c| {
                let run = c.vrrp.as_ref()?;
                Some(crate::metrics::VrrpMetrics {
                    interface: c.cfg.name.clone(),
                    carpdev: c.cfg.carpdev.clone(),
                    vrid: c.cfg.vhid,
                    family: if run.settings.v6 { 6 } else { 4 },
                    state: match run.router.state() {
                        State::Init => 0,
                        State::Backup => 1,
                        State::Master => 2,
                    },
                    priority: run.settings.priority,
                    transitions: run.stats.transitions,
                    adverts_sent: run.stats.sent,
                    adverts_received: run.stats.received,
                    send_errors: run.stats.send_errors,
                    master_down_postponed: run.stats.master_down_postponed,
                })
            })
            .collect();
        let dataplane = if routers.is_empty() {
            Vec::new()
        } else {
            self.dataplane
                .vrrp_counters()
                .map(|c| c.values().to_vec())
                .unwrap_or_default()
        };
        (routers, dataplane)
    }

    /// A CARP event for a VRRP interface, translated (see the module documentation).
    pub(super) fn drive_vrrp(&mut self, name: &str, event: fsm::Event) {
        let event = match event {
            fsm::Event::Up(families) if !families.is_empty() => {
                let Some(primary) = self.vrrp_primary(name) else {
                    warn!(interface = %name, "no source address on the carpdev for VRRP adverts: not starting");
                    return;
                };
                VrrpEvent::Up { primary }
            }
            fsm::Event::Addresses(families) if families.is_empty() => VrrpEvent::LinkDown,
            fsm::Event::LinkDown => VrrpEvent::LinkDown,
            fsm::Event::AdminDown => VrrpEvent::AdminDown,
            fsm::Event::Shutdown => VrrpEvent::Shutdown,
            fsm::Event::TimerExpired => VrrpEvent::TimerExpired,
            _ => return,
        };
        self.drive_vrrp_event(name, event);
    }

    fn drive_vrrp_event(&mut self, name: &str, event: VrrpEvent) {
        let now = now();
        let Some(run) = self.ifs.get_mut(name).and_then(|c| c.vrrp.as_mut()) else {
            return;
        };
        for action in run.router.handle(now, event) {
            self.execute_vrrp(name, now, action);
        }
    }

    fn execute_vrrp(&mut self, name: &str, now: std::time::Duration, action: VrrpAction) {
        match action {
            VrrpAction::SendAdvert {
                priority,
                max_advert_int,
            } => {
                let left = self.send_vrrp_advert(name, priority, max_advert_int);
                let master = self
                    .ifs
                    .get(name)
                    .is_some_and(|c| c.state() == State::Master);
                if master && left && priority != 0 {
                    // Every advert of a master that left pushes the dataplane's deadline
                    // forward from `now`, read before the send (see dataplane::deadline):
                    // backups time Master_Down (3 × the learnt interval + skew) from it.
                    self.set_dataplane(name, now, State::Master);
                }
            }
            VrrpAction::Announce(kind) => self.announce(name, kind),
            VrrpAction::MasterDownPostponed { late, grace } => {
                info!(
                    interface = %name,
                    late_us = late.as_micros() as u64,
                    grace_us = grace.as_micros() as u64,
                    protocol = "vrrp3",
                    "master-down timer fired late (this host stood still): waiting for adverts \
                     held up by the same stall"
                );
                if let Some(run) = self.ifs.get_mut(name).and_then(|c| c.vrrp.as_mut()) {
                    run.stats.master_down_postponed += 1;
                }
            }
            VrrpAction::StateChanged { from, to, reason } => {
                info!(interface = %name, %from, %to, reason = reason.as_str(), protocol = "vrrp3", "VRRP state changed");
                self.set_dataplane(name, now, to);
                // `carpctl monitor` shows a router's changes as a vhid's (its vhid is the VRID).
                self.publish_state_change(
                    name,
                    (from, to),
                    format!("VRRP {}", reason.as_str()),
                    reason.as_str().to_owned(),
                    reason.as_str(),
                );
                let Some(cif) = self.ifs.get_mut(name) else {
                    return;
                };
                if let Some(run) = cif.vrrp.as_mut() {
                    run.stats.transitions += 1;
                    if to == State::Master {
                        run.stats.became_master += 1;
                    }
                }
            }
        }
    }

    /// The address adverts leave from, which RFC 5798 compares on a priority tie: the
    /// carpdev's primary IPv4 address (the interface's own first one if it has none), or
    /// its IPv6 link-local address.
    fn vrrp_primary(&mut self, name: &str) -> Option<IpAddr> {
        let cif = self.ifs.get(name)?;
        let v6 = cif.vrrp.as_ref()?.settings.v6;
        let fallback = cif.cfg.ipv4.first().map(|a| a.addr);
        let dev = self.carpdevs.get_mut(&cif.cfg.carpdev)?;
        dev.adverts.source(v6, fallback).ok()
    }

    /// One advert to the VRRP group, from the virtual MAC and the primary address.
    /// Sends the router's advert; whether it left.
    fn send_vrrp_advert(&mut self, name: &str, priority: u8, max_advert_int: u16) -> bool {
        let Some(cif) = self.ifs.get_mut(name) else {
            return false;
        };
        let Some(run) = cif.vrrp.as_mut() else {
            return false;
        };
        let Some(dev) = self.carpdevs.get_mut(&cif.cfg.carpdev) else {
            return false;
        };
        let v6 = run.settings.v6;
        let fallback = cif.cfg.ipv4.first().map(|a| a.addr);
        let addresses = if v6 {
            VrrpAddresses::V6(cif.cfg.ipv6.iter().map(|a| a.addr).collect())
        } else {
            VrrpAddresses::V4(cif.cfg.ipv4.iter().map(|a| a.addr).collect())
        };
        let advert = VrrpAdvert {
            vrid: cif.cfg.vhid,
            priority,
            max_advert_int: max_advert_int.min(VRRP_MAX_ADVERT_INTERVAL),
            addresses,
        };
        let sent = dev.adverts.source(v6, fallback).and_then(|src| {
            let dst = if v6 {
                IpAddr::V6(Ipv6Addr::from(CARP_GROUP_V6))
            } else {
                IpAddr::V4(Ipv4Addr::from(CARP_GROUP_V4))
            };
            let payload = advert
                .encode(IpEnds { src, dst }, run.settings.checksum)
                .map_err(crate::send::SendError::from)?;
            dev.adverts.send_payload(cif.vmac, src, &payload)
        });
        match sent {
            Ok(()) => {
                run.stats.sent += 1;
                true
            }
            Err(err) => {
                run.stats.send_errors += 1;
                warn!(interface = %name, error = %err, "VRRP advert not sent");
                false
            }
        }
    }

    /// A VRRPv3 advert the dataplane checked (TTL, length, checksum) and handed over with
    /// its 8-byte header.
    pub(super) fn on_vrrp_advert(&mut self, event: &AdvertEvent) {
        let v6 = event.family == 6;
        let slot = vrrp_slot(event.carp[1], v6);
        let Some(name) = self
            .ifs
            .iter()
            .find(|(_, c)| {
                c.carpdev_ifindex == event.ifindex && c.vrrp.is_some() && c.slot() == slot
            })
            .map(|(n, _)| n.clone())
        else {
            debug!(
                ifindex = event.ifindex,
                vrid = event.carp[1],
                "VRRP advert for a router not configured"
            );
            return;
        };
        let src = if v6 {
            IpAddr::V6(Ipv6Addr::from(event.src))
        } else {
            IpAddr::V4(Ipv4Addr::new(
                event.src[0],
                event.src[1],
                event.src[2],
                event.src[3],
            ))
        };
        let priority = event.carp[2];
        let max_advert_int =
            u16::from_be_bytes([event.carp[4], event.carp[5]]) & VRRP_MAX_ADVERT_INTERVAL;
        if let Some(run) = self.ifs.get_mut(&name).and_then(|c| c.vrrp.as_mut()) {
            run.stats.received += 1;
            if priority == 0 {
                run.stats.resignations_received += 1;
            }
        }
        self.drive_vrrp_event(
            &name,
            VrrpEvent::AdvertReceived {
                priority,
                max_advert_int,
                src,
            },
        );
    }
}
