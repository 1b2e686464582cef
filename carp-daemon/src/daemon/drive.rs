//! Driving the state machines: feeding an event to a vhid's machine and carrying out the
//! actions it returns (adverts out, gratuitous ARP/NA, the dataplane's view of the vhid,
//! hooks), and the inputs every part of carpd shares: starting the election, forced
//! states, group membership and demotion.
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::pacer::{AdvertFrame, Lease, Returned, lease_adverts};
use super::{Daemon, ipv6_forwarding, now};
use crate::control::monitor::{MonitorEvent, carp_state};
use crate::dataplane::{VhidDataplaneState, master_hold};
use crate::proto::fsm;
use crate::send::SendError;

impl Daemon {
    /// Stops the dataplane's fast path for a vhid's master: its adverts reach carpd again
    /// until it follows one anew. Called whenever the verdict on the published advert could
    /// change (state, timers, passphrase, demotion).
    pub fn forget_master_advert(&mut self, name: &str) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        // A VRRP router has no followed advert (and its slot is no vhid).
        if cif.vrrp.is_some() {
            return;
        }
        if let Err(err) = self
            .dataplane
            .clear_master_advert(cif.carpdev_ifindex, cif.cfg.vhid)
        {
            warn!(interface = %name, error = %err, "clearing the followed master advert");
        }
    }

    /// Starts the election of an interface if it can run: configured up, carpdev with
    /// carrier, addresses present (OpenBSD carp_setrun).
    pub fn bring_up(&mut self, name: &str) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let carrier = self
            .carpdevs
            .get(&cif.cfg.carpdev)
            .is_some_and(|d| d.carrier);
        let families = cif.families();
        if cif.cfg.up && carrier && !families.is_empty() {
            for key in self.elections(name) {
                self.drive(&key, fsm::Event::Up(families));
                self.apply_pending_state(&key);
            }
        }
    }

    /// `state master|backup`, once: forced now if the vhid runs, else kept until it first
    /// leaves INIT ([`Daemon::bring_up`]). Never again after that: a carpdev link that
    /// comes back goes INIT → BACKUP and listens like any other.
    pub fn apply_pending_state(&mut self, name: &str) {
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        if cif.fsm.state() == fsm::State::Init {
            return;
        }
        if let Some(forced) = cif.pending_state.take() {
            self.drive(name, fsm::Event::ForceState(forced));
        }
    }

    /// A reload changed `state`: the new value is applied once (as [`CarpIf::new`](super::carpif::CarpIf::new) takes
    /// it at start), now if the vhid runs; no value cancels one still pending.
    pub fn set_initial_state(&mut self, name: &str, state: Option<crate::config::ForcedState>) {
        for key in self.elections(name) {
            let Some(cif) = self.ifs.get_mut(&key) else {
                continue;
            };
            cif.cfg.initial_state = state;
            cif.pending_state = state;
            self.apply_pending_state(&key);
        }
    }

    /// Moves an interface to the group set `groups` in place (`ifconfig carpN [-]group`):
    /// its pending own demotion leaves the groups it leaves and joins those it joins
    /// (`carp_ifgroup_ioctl`); state and counter are untouched. The new advertised demote
    /// goes out with the next advert.
    pub fn set_groups(&mut self, name: &str, groups: Vec<String>) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let own = cif.own_demote;
        let old = cif.cfg.groups.clone();
        for g in groups.iter().filter(|g| !old.contains(g)) {
            self.groups.join(g, own);
        }
        for g in old.iter().filter(|g| !groups.contains(g)) {
            let left = self
                .ifs
                .values()
                .filter(|c| c.cfg.name != name && c.cfg.groups.contains(g))
                .count();
            self.groups.leave(g, own, left);
        }
        info!(interface = %name, groups = ?groups, "groups changed");
        for key in self.elections(name) {
            if let Some(cif) = self.ifs.get_mut(&key) {
                cif.cfg.groups = groups.clone();
            }
        }
        self.propagate_demote();
    }

    /// Changes the demotion an interface caused itself (carpdev link loss, send errors), and
    /// its groups' counters with it (`carp_group_demote_adj`). A raise that takes one of its
    /// groups from 0 to 1 makes every master of every carp interface advertise at once
    /// (`carp_send_ad_all`); any other change goes out with the next advert.
    pub fn adjust_own_demote(&mut self, name: &str, by: i16) {
        // A node's send errors demote its interface (OpenBSD counts them per softc).
        let name = &self.interface_of(name);
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        let new = (i16::from(cif.own_demote) + by).clamp(0, 255) as u8;
        let applied = i16::from(new) - i16::from(cif.own_demote);
        cif.own_demote = new;
        let groups = cif.cfg.groups.clone();
        let send_all = self
            .groups
            .kernel_adjust(groups.iter().map(String::as_str), applied);
        self.propagate_demote();
        if send_all {
            let every: Vec<String> = self.ifs.keys().cloned().collect();
            self.advertise_masters(&every);
        }
    }

    /// The daemon's own change of a group's demote counter (a health check), clamped at 0
    /// and 255: what was really added, so that giving it back later is exact. Goes out as
    /// a user's carpdemote does ([`Daemon::group_demote_changed`]).
    pub fn adjust_group_demote(&mut self, group: &str, by: i16) -> i16 {
        let Some(before) = self.groups.counter(group) else {
            warn!(group, "no such group: demotion not applied");
            return 0;
        };
        self.groups.clamped_adjust(group, by);
        let applied = i16::from(self.groups.counter(group).unwrap_or(before)) - i16::from(before);
        self.group_demote_changed(group, applied > 0);
        applied
    }

    /// A group's counter changed: every member advertises its new demote; after a raise the
    /// masters among the group's members advertise at once (the SIOCSIFGATTR case of
    /// carp_ioctl, for members up and running: a master is), so a demotion hands over in
    /// about one round trip. A lowering waits for the next advert.
    pub fn group_demote_changed(&mut self, group: &str, raised: bool) {
        self.propagate_demote();
        if raised {
            let members: Vec<String> = self
                .ifs
                .values()
                .filter(|c| c.cfg.up && c.cfg.groups.iter().any(|g| g == group))
                .map(|c| c.cfg.name.clone())
                .collect();
            self.advertise_masters(&members);
        }
    }

    /// Tells every state machine whose advertised demote changed; they send it with their
    /// next advert.
    pub fn propagate_demote(&mut self) {
        let changes: Vec<(String, u8)> = self
            .ifs
            .iter()
            .map(|(n, c)| {
                let groups = c.cfg.groups.iter().map(String::as_str);
                // A node carries its interface's own demotion.
                let own = c
                    .node_of
                    .as_ref()
                    .and_then(|i| self.ifs.get(i))
                    .map_or(c.own_demote, |i| i.own_demote);
                (n.clone(), self.groups.demote_of(groups, own))
            })
            .filter(|(n, d)| self.ifs.get(n).is_some_and(|c| c.fsm.demote() != *d))
            .collect();
        self.monitor.groups_now(self.groups.iter());
        for (name, demote) in changes {
            if let Some(cif) = self.ifs.get(&name) {
                self.monitor.publish(MonitorEvent::Demote {
                    interface: name.clone(),
                    vhid: cif.cfg.vhid,
                    from: cif.fsm.demote(),
                    to: demote,
                });
            }
            self.drive(&name, fsm::Event::DemoteChanged(demote));
        }
    }

    /// The masters among `names` send an advert now (`carp_send_ad`); the others ignore it.
    pub fn advertise_masters(&mut self, names: &[String]) {
        for name in names {
            self.drive(name, fsm::Event::AdvertiseNow);
        }
    }

    /// Feeds one event to an interface's state machine and carries out what it asks for. A
    /// VRRPv3 interface's events go to its own machine ([`Daemon::drive_vrrp`]).
    pub fn drive(&mut self, name: &str, event: fsm::Event) {
        if self.ifs.get(name).is_some_and(|c| c.vrrp.is_some()) {
            self.drive_vrrp(name, event);
            return;
        }
        // The machine must have its adverts back before it sees anything (see pacer).
        let lease = self.take_back_adverts(name);
        let now = now();
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        let actions = cif.fsm.handle(now, event);
        if matches!(event, fsm::Event::DemoteChanged(_)) {
            // The followed advert may now mean a takeover: let carpd see the next one.
            self.forget_master_advert(name);
        }
        for action in actions {
            self.execute(name, now, action);
        }
        self.lend_adverts(name, lease);
    }

    /// Lends a steady master's next regular adverts to the pacer (see `pacer`): multicast
    /// CARP adverts of an interface that is not balanced, with its dataplane deadline slot
    /// in place. Anything else keeps its adverts in the loop. `earlier` is the lease that
    /// came back before the event: its frames are lent again if they still say what the
    /// machine would send.
    fn lend_adverts(&mut self, name: &str, earlier: Option<Lease>) {
        // A drive nested in another may have lent them already: never lend twice over.
        let earlier = self.take_back_adverts(name).or(earlier);
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        if cif.fsm.state() != fsm::State::Master
            || cif.vrrp.is_some()
            || cif.cfg.balance.is_some()
            || cif.cfg.peers_of(false).next().is_some()
            || cif.cfg.peers_of(true).next().is_some()
        {
            return;
        }
        let Some(deadline) = self
            .dataplane
            .deadline_cell(cif.carpdev_ifindex, cif.slot())
        else {
            return;
        };
        let Some(src_mac) = self.advert_source_mac(name) else {
            return;
        };
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        let Some(dev) = self.carpdevs.get_mut(&cif.cfg.carpdev) else {
            return;
        };
        // The regular advert, as the machine's next SendAdvert would ask for it.
        let params = cif.fsm.params();
        let carp = cif.advert(params.advbase, params.advskew, cif.fsm.demote());
        // The frames of the lease that came back, if they carry the same (a source or MAC
        // change takes every lease back and drops it, see the event loop).
        let frames = match earlier {
            Some(lease) if lease.carp == carp => lease.frames,
            _ => {
                let own_v4 = cif.cfg.ipv4.first().map(|a| a.addr);
                let families = cif.families();
                let mut frames = Vec::with_capacity(2);
                for (v6, has) in [(false, families.v4), (true, families.v6)] {
                    if !has {
                        continue;
                    }
                    match dev.adverts.group_frame(v6, src_mac, own_v4, &carp) {
                        Ok(bytes) => frames.push(AdvertFrame { bytes, v6 }),
                        // The loop's own send says why, when the advert is due.
                        Err(_) => return,
                    }
                }
                frames
            }
        };
        let interval = cif.fsm.interval();
        let count = lease_adverts(interval);
        let Some(first) = cif.fsm.lend_adverts(count) else {
            return;
        };
        self.pacer.lend(
            name,
            Lease {
                sink: dev.adverts.socket(),
                carp,
                frames,
                first,
                interval,
                slack: cif.fsm.advert_slack(),
                count,
                deadline: Some((deadline, master_hold(interval))),
            },
        );
    }

    /// Takes an election's adverts back from the pacer, if it has them: its machine
    /// continues the schedule, its counters get what was sent, and a failed send is the
    /// machine's as if the loop had made it. Returns the lease, to lend again.
    pub fn take_back_adverts(&mut self, name: &str) -> Option<Lease> {
        let back = self.pacer.take_back(name)?;
        Some(self.adverts_returned(name, back))
    }

    /// [`Daemon::take_back_adverts`] for every election: before any event that may concern
    /// them all (links, carpctl, reload, checks, signals).
    pub fn take_back_all_adverts(&mut self) {
        for (name, back) in self.pacer.take_back_all() {
            self.adverts_returned(&name, back);
        }
    }

    /// The pacer failed to send: those elections' adverts come back (see
    /// [`Daemon::take_back_adverts`]), and their machines go on from there.
    pub fn on_pacer_failures(&mut self) {
        for name in self.pacer.failed_loans() {
            // The machine counted the error, and lends again only once its sends succeed.
            let lease = self.take_back_adverts(&name);
            self.lend_adverts(&name, lease);
        }
    }

    fn adverts_returned(&mut self, name: &str, back: Returned) -> Lease {
        let Some(cif) = self.ifs.get_mut(name) else {
            return back.lease;
        };
        cif.stats.sent_v4 += back.sent[0];
        cif.stats.sent_v6 += back.sent[1];
        cif.stats.sent_by_standby += back.by_standby;
        if back.skipped > 0 {
            warn!(
                interface = %name,
                skipped = back.skipped,
                "adverts held back: the event loop did not come round for over {:?} (busy with one event, or its thread kept by another task)",
                super::loop_watch::HANG_LIMIT
            );
        }
        cif.fsm.adverts_returned(back.next);
        if let Some((v6, err)) = back.failed {
            cif.stats.send_errors += 1;
            let family = if v6 { "IPv6" } else { "IPv4" };
            warn!(interface = %name, family, error = %err, "advert not sent");
            let now = now();
            let actions = cif
                .fsm
                .handle(now, fsm::Event::AdvertSendResult { ok: false });
            for action in actions {
                self.execute(name, now, action);
            }
        }
        back.lease
    }

    fn execute(&mut self, name: &str, now: Duration, action: fsm::Action) {
        match action {
            fsm::Action::SendAdvert {
                advbase,
                advskew,
                demote,
            } => {
                let results = self.send_advert(name, advbase, advskew, demote);
                let is_master = self
                    .ifs
                    .get(name)
                    .is_some_and(|c| c.fsm.state() == fsm::State::Master);
                // Every advert of a master that left pushes the dataplane's deadline forward,
                // from `now`, read before the send (see dataplane::deadline). A failed send
                // restarted no backup's timer, so it renews nothing.
                let left =
                    results.iter().any(Option::is_some) && results.iter().flatten().all(|ok| *ok);
                if is_master && left && advbase != carp_common::wire::CARP_BOW_OUT {
                    self.set_dataplane(name, now, fsm::State::Master);
                }
                for ok in results.into_iter().flatten() {
                    let Some(cif) = self.ifs.get_mut(name) else {
                        return;
                    };
                    let follow_up = cif.fsm.handle(now, fsm::Event::AdvertSendResult { ok });
                    for a in follow_up {
                        self.execute(name, now, a);
                    }
                }
            }
            fsm::Action::Announce(kind) => self.announce(name, kind),
            fsm::Action::StateChanged { from, to, reason } => {
                info!(interface = %name, %from, %to, reason = reason.as_str(), "{}", reason.description());
                self.forget_master_advert(name);
                self.set_dataplane(name, now, to);
                let why = reason.description().to_owned();
                self.publish_state_change(name, (from, to), why.clone(), why, reason.as_str());
                if let Some(cif) = self.ifs.get_mut(name) {
                    cif.stats.transitions += 1;
                    if to == fsm::State::Master {
                        cif.stats.became_master += 1;
                    }
                }
            }
            fsm::Action::AdjustDemote(by) => self.adjust_own_demote(name, i16::from(by)),
            fsm::Action::MasterDownPostponed { late, grace } => {
                info!(
                    interface = %name,
                    late_us = late.as_micros() as u64,
                    grace_us = grace.as_micros() as u64,
                    "master-down timer fired late (this host stood still): waiting for adverts \
                     held up by the same stall"
                );
                if let Some(cif) = self.ifs.get_mut(name) {
                    cif.stats.master_down_postponed += 1;
                }
            }
        }
    }

    /// What every election's state change tells outside the state machine, CARP's and
    /// VRRP's alike: `carpctl monitor` (`monitor_reason`), the hooks (`hook_reason`), and the
    /// interface's last transition that carpctl shows (`shown_reason`).
    pub(super) fn publish_state_change(
        &mut self,
        name: &str,
        (from, to): (fsm::State, fsm::State),
        monitor_reason: String,
        shown_reason: String,
        hook_reason: &'static str,
    ) {
        let Some(cif) = self.ifs.get_mut(name) else {
            return;
        };
        self.monitor.publish(MonitorEvent::State {
            interface: name.to_owned(),
            carpdev: cif.cfg.carpdev.clone(),
            vhid: cif.cfg.vhid,
            from: carp_state(from),
            to: carp_state(to),
            reason: monitor_reason,
        });
        for hook in &self.settings.hooks {
            crate::hooks::spawn(
                hook.clone(),
                crate::hooks::StateChange {
                    interface: name.to_owned(),
                    carpdev: cif.cfg.carpdev.clone(),
                    vhid: cif.cfg.vhid,
                    old_state: from.as_str(),
                    new_state: to.as_str(),
                    reason: hook_reason,
                },
            );
        }
        cif.last_transition = Some((shown_reason, Instant::now()));
    }

    /// Writes the dataplane's view of the vhid: master with a deadline counted from `now`
    /// (CLOCK_MONOTONIC, read before any advert this renews was sent), or silent.
    pub(super) fn set_dataplane(&mut self, name: &str, now: Duration, state: fsm::State) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let dp_state = match state {
            fsm::State::Master => VhidDataplaneState::Master {
                until: now + master_hold(cif.interval()),
            },
            fsm::State::Backup => VhidDataplaneState::Backup,
            fsm::State::Init => VhidDataplaneState::Init,
        };
        if let Err(err) = self.store_dataplane_state(name, dp_state) {
            warn!(interface = %name, error = %err, "updating the dataplane");
        }
    }

    /// Sends one advert per address family the interface has (to each of the family's
    /// unicast peers instead of the group when it has some); the result of each family
    /// (IPv4, IPv6; `None`: nothing to say). Nothing here allocates: a master runs it on
    /// every wake-up.
    ///
    /// A peer whose MAC is not resolved yet counts as a send error but is no failed send
    /// for the demotion rule: OpenBSD does not demote for EHOSTDOWN in unicast mode either.
    fn send_advert(
        &mut self,
        name: &str,
        advbase: u8,
        advskew: u8,
        demote: u8,
    ) -> [Option<bool>; 2] {
        let mut results = [None; 2];
        let Some(src_mac) = self.advert_source_mac(name) else {
            return results;
        };
        let Some(cif) = self.ifs.get_mut(name) else {
            return results;
        };
        let Some(dev) = self.carpdevs.get_mut(&cif.cfg.carpdev) else {
            return results;
        };
        let header = cif.advert(advbase, advskew, demote);
        // The carp interface's own first address: the source only if the carpdev has none.
        let own_v4 = cif.cfg.ipv4.first().map(|a| a.addr);
        let families = cif.families();
        for (v6, result) in [false, true].into_iter().zip(&mut results) {
            let has_family = if v6 { families.v6 } else { families.v4 };
            if !has_family {
                continue;
            }
            if cif.cfg.peers_of(v6).next().is_none() {
                let sent = if v6 {
                    dev.adverts.send_v6(src_mac, &header)
                } else {
                    dev.adverts.send_v4(src_mac, own_v4, &header)
                };
                match sent {
                    Ok(()) => {
                        cif.stats.count_sent(v6);
                        *result = Some(true);
                    }
                    Err(err) => {
                        *result = Some(false);
                        cif.stats.send_errors += 1;
                        warn!(interface = %name, error = %err, "advert not sent");
                    }
                }
                continue;
            }
            let (mut sent, mut failed) = (false, false);
            for peer in cif.cfg.peers_of(v6) {
                match dev.adverts.send_to_peer(src_mac, own_v4, peer, &header) {
                    Ok(()) => {
                        sent = true;
                        cif.stats.count_sent(v6);
                        cif.unresolved_peers.remove(&peer);
                    }
                    Err(err @ SendError::Unresolved { .. }) => {
                        cif.stats.send_errors += 1;
                        // Once per peer until it resolves: a peer that is down would
                        // otherwise log every interval.
                        if cif.unresolved_peers.insert(peer) {
                            warn!(interface = %name, %peer, error = %err, "advert not sent");
                        } else {
                            debug!(interface = %name, %peer, "peer still unresolved");
                        }
                    }
                    Err(err) => {
                        failed = true;
                        cif.stats.send_errors += 1;
                        warn!(interface = %name, %peer, error = %err, "advert not sent");
                    }
                }
            }
            // Only unresolved peers: neither a failure nor a success for the demotion rule.
            if failed || sent {
                *result = Some(!failed);
            }
        }
        results
    }

    /// Gratuitous ARP for every IPv4 address of the interface, and with
    /// [`fsm::Announcement::ArpAndNa`] an unsolicited NA for every IPv6 address.
    pub(super) fn announce(&mut self, name: &str, kind: fsm::Announcement) {
        let Some(cif) = self.ifs.get(name) else {
            return;
        };
        let Some(dev) = self.carpdevs.get(&cif.cfg.carpdev) else {
            return;
        };
        // No announcement when balancing (OpenBSD's carp_master_down): every host takes
        // the frames already, and the leader's master answers ARP and NS.
        if cif.cfg.balance.is_some() {
            return;
        }
        let router = ipv6_forwarding();
        for addr in cif.ipv4() {
            if let Err(err) = dev.announcer.gratuitous_arp(cif.vmac, addr) {
                warn!(interface = %name, error = %err, "gratuitous ARP not sent");
            }
        }
        if kind == fsm::Announcement::ArpOnly {
            return;
        }
        for addr in cif.ipv6() {
            if let Err(err) = dev.announcer.unsolicited_na(cif.vmac, addr, router) {
                warn!(interface = %name, error = %err, "neighbour advertisement not sent");
            }
        }
    }
}
