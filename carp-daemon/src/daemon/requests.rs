//! carpctl's requests, answered by the daemon's main loop. Every `Apply` is checked in full
//! before anything changes: a command with one bad word changes nothing (ifconfig's rule).
use std::time::Instant;

use crate::control::protocol::{
    CarpState, CarpStats, InterfaceAddress, InterfaceStatus, NodeStatus, Op, Request, Response,
    StatsReport, Target, Transition, format_mac,
};
use crate::groups::Groups;
use crate::proto::fsm;

use super::Daemon;

impl Daemon {
    pub async fn on_control(&mut self, request: Request) -> Response {
        match request {
            Request::Status { interface } => self.status(interface.as_deref()),
            Request::GroupStatus { group } => match self.groups.counter(&group) {
                Some(demote) => Response::Group {
                    persisted: self.persisted.get(&group).copied().unwrap_or(0),
                    name: group,
                    demote,
                },
                None => Response::error(format!("{group}: no such group")),
            },
            Request::Stats => Response::Stats(Box::new(self.stats())),
            Request::Checks => Response::Checks(self.check_statuses()),
            // The control server streams it from the monitor hub; it never gets here.
            Request::Monitor => Response::error("monitor: served by the control socket"),
            Request::DebugXdp { on } => match self.dataplane.set_xdp_log(on) {
                Ok(()) => {
                    tracing::info!(on, "XDP decision records switched");
                    Response::Ok
                }
                Err(err) => Response::error(format!("debug xdp: {err}")),
            },
            Request::Apply { target, ops } => match self.apply(target, ops).await {
                Ok(()) => Response::Ok,
                Err(message) => Response::error(message),
            },
        }
    }

    fn status(&self, interface: Option<&str>) -> Response {
        // As ifconfig: a name that is no interface's (and does not end in a digit) names a
        // group, and shows its members.
        let by_group = interface.is_some_and(|n| {
            !n.ends_with(|c: char| c.is_ascii_digit()) && !self.ifs.contains_key(n)
        });
        let list: Vec<InterfaceStatus> = self
            .ifs
            .values()
            .filter(|c| c.node_of.is_none())
            .filter(|c| {
                interface.is_none_or(|n| {
                    if by_group {
                        c.cfg.groups.iter().any(|g| g == n)
                    } else {
                        n == c.cfg.name
                    }
                })
            })
            .map(|c| InterfaceStatus {
                name: c.cfg.name.clone(),
                state: self.interface_state(&c.cfg.name),
                carpdev: Some(c.cfg.carpdev.clone()),
                vhid: c.cfg.vhid,
                advbase: c.cfg.advbase,
                advskew: c.cfg.advskew,
                peers: c.cfg.peers.clone(),
                demote: c.fsm.demote(),
                groups: c.cfg.groups.clone(),
                lladdr: format_mac(&self.carp_mac(&c.cfg.name)),
                addresses: c
                    .addresses()
                    .into_iter()
                    .map(|(a, p)| InterfaceAddress::new(a, p))
                    .collect(),
                up: c.cfg.up,
                running: c.state() != fsm::State::Init,
                mtu: 1500,
                ifindex: c.ifindex,
                last_transition: c.last_transition.as_ref().map(|(reason, at)| Transition {
                    reason: reason.clone(),
                    seconds_ago: Instant::now().duration_since(*at).as_secs(),
                }),
                vrrp: c.vrrp.as_ref().map(super::vrrp::VrrpRun::status),
                balancing: c.cfg.balance.as_ref().map(|lb| lb.mode.to_string()),
                nodes: self.node_statuses(&c.cfg.name),
            })
            .collect();
        match interface {
            Some(name) if list.is_empty() => Response::error(format!("{name}: no such interface")),
            _ => Response::Interfaces(list),
        }
    }

    /// Each node of a balanced interface with its own state, in vhid order (empty for a
    /// plain interface).
    fn node_statuses(&self, name: &str) -> Vec<NodeStatus> {
        let Some(cif) = self.ifs.get(name).filter(|c| c.cfg.balance.is_some()) else {
            return Vec::new();
        };
        let mut nodes: Vec<NodeStatus> = self
            .elections(name)
            .iter()
            .filter_map(|k| self.ifs.get(k))
            .map(|n| NodeStatus {
                vhid: n.cfg.vhid,
                advskew: n.cfg.advskew,
                state: carp_state(n.fsm.state()),
            })
            .collect();
        nodes.sort_by_key(|n| n.vhid);
        debug_assert_eq!(nodes.first().map(|n| n.vhid), Some(cif.cfg.vhid));
        nodes
    }

    /// The interface's state: its vhid's; for a balanced interface MASTER while this host
    /// masters any node (it then serves traffic), else its leader's.
    fn interface_state(&self, name: &str) -> CarpState {
        let states: Vec<fsm::State> = self
            .elections(name)
            .iter()
            .filter_map(|k| self.ifs.get(k))
            .map(|c| c.state())
            .collect();
        if states.contains(&fsm::State::Master) {
            CarpState::Master
        } else {
            states.first().map_or(CarpState::Init, |s| carp_state(*s))
        }
    }

    /// The interface's MAC as ifconfig shows it: the virtual MAC, its multicast twin for a
    /// balanced interface in `ip` mode (OpenBSD's `carp_set_enaddr`).
    fn carp_mac(&self, name: &str) -> [u8; 6] {
        let Some(cif) = self.ifs.get(name) else {
            return [0; 6];
        };
        match &cif.cfg.balance {
            Some(lb) if lb.mode == crate::config::Balancing::Ip => {
                carp_common::lb::carp_mac(cif.cfg.vhid, carp_common::lb::LB_MODE_IP)
            }
            _ => cif.vmac,
        }
    }

    fn stats(&self) -> StatsReport {
        let dataplane = self.dataplane.counters().ok();
        let mut carp = CarpStats::default();
        let mut loops = 0;
        for c in self.ifs.values() {
            carp.carps_ipackets += c.stats.received_v4;
            carp.carps_ipackets6 += c.stats.received_v6;
            carp.carps_badauth += c.stats.rejected_auth;
            carp.carps_badif += c.stats.rejected_mode;
            carp.carps_opackets += c.stats.sent_v4;
            carp.carps_opackets6 += c.stats.sent_v6;
            carp.carps_onomem += c.stats.send_errors;
            carp.carps_preempt += c.stats.became_master;
            loops += c.stats.rejected_loop;
        }
        if let Some(d) = &dataplane {
            // The XDP program drops malformed adverts before carpd sees them: its counters are
            // the protocol's input counters for those reasons.
            carp.carps_badttl = d.advert_bad_ttl;
            carp.carps_badlen = d.advert_bad_length;
            carp.carps_badsum = d.advert_bad_checksum;
            carp.carps_badver = d.advert_bad_version;
            carp.carps_badvhid = d.advert_passed_unknown_vhid;
        }
        StatsReport {
            carp,
            loops_detected: loops,
            dataplane,
            hooks_skipped: crate::hooks::skipped_total(),
            vrrp: self.vrrp_stats(),
        }
    }

    /// Checks every op against the current state, then applies them all.
    async fn apply(&mut self, target: Target, ops: Vec<Op>) -> Result<(), String> {
        for op in &ops {
            op.check(&target)?;
        }
        match target {
            Target::Group(group) => self.apply_group(&group, &ops),
            Target::Interface(name) => self.apply_interface(&name, ops).await,
        }
    }

    fn apply_group(&mut self, group: &str, ops: &[Op]) -> Result<(), String> {
        // Dry run on a copy: all or nothing.
        let mut trial: Groups = self.groups.clone();
        let mut persisted = self.persisted.get(group).copied().unwrap_or(0);
        let mut persist = false;
        for op in ops {
            let (by, persists) = match op {
                Op::Demote(n) => (i16::from(*n), false),
                Op::Promote(n) => (-i16::from(*n), false),
                Op::PersistDemote(n) => (i16::from(*n), true),
                Op::PersistPromote(n) => (-i16::from(*n), true),
                _ => unreachable!("Op::check allows only carpdemote on groups"),
            };
            trial.user_adjust(group, by).map_err(|e| e.to_string())?;
            if persists {
                // The persisted part is what it holds: it cannot go below 0 either.
                let next = i16::from(persisted) + by;
                if !(0..=255).contains(&next) {
                    return Err(format!(
                        "{group}: carpdemote {by} --persist: persisted demotion is {persisted}, \
                         result out of range 0..=255"
                    ));
                }
                persisted = next as u8;
                persist = true;
            }
        }
        if persist {
            // The file first: if it cannot be written, nothing changes.
            let mut all = self.persisted.clone();
            all.insert(group.to_owned(), persisted);
            all.retain(|_, n| *n > 0);
            crate::maintenance::store(&self.settings.lib_dir, &all).map_err(|e| e.to_string())?;
            tracing::info!(group, persisted, "persisted group demotion set");
            self.persisted = all;
        }
        self.groups = trial;
        tracing::info!(
            group,
            demote = self.groups.counter(group),
            "group demote count set"
        );
        let raised = ops
            .iter()
            .any(|op| matches!(op, Op::Demote(n) | Op::PersistDemote(n) if *n > 0));
        self.group_demote_changed(group, raised);
        Ok(())
    }

    async fn apply_interface(&mut self, name: &str, ops: Vec<Op>) -> Result<(), String> {
        let Some(cif) = self.ifs.get(name).filter(|c| c.node_of.is_none()) else {
            return Err(format!("{name}: no such interface"));
        };
        // Validate against the state first.
        let mut cfg = cif.cfg.clone();
        if cfg.vrrp.is_some() {
            // VRRPv3 has no advbase/advskew/pass/forced state; its VRID is configured.
            let carp_only = ops.iter().find_map(|op| match op {
                Op::AdvSkew(_) => Some("advskew"),
                Op::AdvBase(_) => Some("advbase"),
                Op::Pass(_) => Some("pass"),
                Op::State(_) => Some("state"),
                Op::Vhid(_) => Some("vhid"),
                _ => None,
            });
            if let Some(word) = carp_only {
                return Err(format!(
                    "{name}: '{word}' does not apply to a VRRP interface; change its priority, \
                     advert_interval or vrid in the configuration and reload (SIGHUP)"
                ));
            }
        }
        for op in &ops {
            match op {
                Op::AddGroup(g) => {
                    if cfg.groups.contains(g) {
                        return Err(format!("{name}: group {g}: already a member"));
                    }
                    cfg.groups.push(g.clone());
                }
                // Group carp included: OpenBSD's carp_1.sh does `-group carp group NAME`.
                Op::RemoveGroup(g) => {
                    let Some(pos) = cfg.groups.iter().position(|x| x == g) else {
                        return Err(format!("{name}: group {g}: not a member"));
                    };
                    cfg.groups.remove(pos);
                }
                // Each node of a balanced interface has its own vhid and advskew: they
                // are changed in the configuration's carpnodes.
                Op::AdvSkew(_) | Op::Vhid(_) if cfg.balance.is_some() => {
                    return Err(format!(
                        "{name}: vhid and advskew of a balanced interface are set per node by carpnodes in the configuration (then SIGHUP)"
                    ));
                }
                Op::AdvSkew(v) => cfg.advskew = *v,
                Op::AdvBase(v) => cfg.advbase = *v,
                Op::Vhid(v) => {
                    let clash = self.ifs.values().any(|o| {
                        o.cfg.name != name && o.cfg.carpdev == cfg.carpdev && o.cfg.vhid == *v
                    });
                    if clash {
                        return Err(format!(
                            "{name}: vhid {v} is already in use on {}",
                            cfg.carpdev
                        ));
                    }
                    cfg.vhid = *v;
                }
                Op::Pass(p) => cfg.passphrase = (!p.is_empty()).then(|| p.clone()),
                Op::State(_) => {}
                Op::Up => cfg.up = true,
                Op::Down => cfg.up = false,
                Op::Demote(_) | Op::Promote(_) | Op::PersistDemote(_) | Op::PersistPromote(_) => {
                    unreachable!("checked by Op::check")
                }
            }
        }
        fsm::VhidParams {
            vhid: cfg.vhid,
            advbase: cfg.advbase,
            advskew: cfg.advskew,
        }
        .validate()
        .map_err(|e| format!("{name}: {e}"))?;
        super::carpif::auth_for(&cfg).map_err(|e| format!("{name}: pass: {e}"))?;

        let old = self.ifs.get(name).expect("checked above").cfg.clone();
        if cfg.vhid != old.vhid {
            // A new vhid is a new virtual MAC and a new election: the interface is built
            // again, all or nothing (the old one is restored if the new one fails).
            self.replace_interface(name, cfg)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        } else {
            // Timers, pass, groups and up/down: in place, state and counter kept.
            self.apply_in_place(name, cfg)
                .await
                .map_err(|e| format!("{name}: {e}"))?;
        }
        for op in &ops {
            if let Op::State(forced) = op {
                self.drive_all(name, fsm::Event::ForceState(*forced));
            }
        }
        tracing::info!(interface = name, ops = ops.len(), "carpctl change applied");
        Ok(())
    }
}

fn carp_state(state: fsm::State) -> CarpState {
    match state {
        fsm::State::Init => CarpState::Init,
        fsm::State::Backup => CarpState::Backup,
        fsm::State::Master => CarpState::Master,
    }
}
