//! The dataplane's load-balancing side (OpenBSD `carpnodes`): one `lb_groups` entry per
//! balanced interface, keyed by its carpdev and leader vhid, holding its nodes and each
//! node's state here (`carp_common::maps::LbGroup`). The XDP program decides a packet from
//! that one entry, so a node's change of state is one write of the whole entry, from the
//! copy kept here. A master's deadline, pushed forward on each advert, is in the node's slot
//! of `carp_deadlines` (a slot of the group's own, not that of the node's `carp_vhids`
//! entry), not in the entry.
//!
//! The nodes' `carp_vhids` entries stay: they tell the advert filter which vhids are
//! served, and their state (without a deadline slot: never a live master there) lets it
//! take the master fast path while BACKUP. They are written only when a node's state
//! changes, never per advert.
use std::time::Duration;

use carp_common::lb::LB_MAX_NODES;
use carp_common::maps::{LbGroup, VHID_STATE_INIT, VhidKey, pin};
use carp_common::wire::virtual_mac;

use super::{
    Dataplane, DataplaneError, VhidDataplaneState, deadline_ns, ignore_missing, vhid_entry,
};

impl Dataplane {
    /// Declares a balanced carp interface on carpdev `ifindex`: its nodes' vhids (sorted,
    /// the leader first), its mode (`carp_common::lb::LB_MODE_*`) and the carpdev's MAC.
    /// Every node starts INIT; [`Dataplane::set_lb_node`] writes their states.
    pub fn set_lb_group(
        &mut self,
        ifindex: u32,
        vhids: &[u8],
        mode: u32,
        dev_mac: [u8; 6],
    ) -> Result<(), DataplaneError> {
        let init = vhid_entry([0; 6], Duration::ZERO, VhidDataplaneState::Init);
        let mut group = LbGroup {
            mode,
            count: vhids.len().min(LB_MAX_NODES) as u32,
            vhids: [0; LB_MAX_NODES],
            dev_mac,
            _pad: [0; 2],
            nodes: [init; LB_MAX_NODES],
        };
        for (i, vhid) in vhids.iter().take(LB_MAX_NODES).enumerate() {
            group.vhids[i] = *vhid;
            group.nodes[i].vmac = virtual_mac(*vhid);
        }
        let key = VhidKey {
            ifindex,
            vhid: u32::from(vhids.first().copied().unwrap_or(0)),
        };
        self.write_lb_group(key, group)
    }

    /// Writes the state of node `vhid` of the balanced interface led by `leader` on carpdev
    /// `ifindex`: one write of the group's entry. On a change of state, the node's
    /// `carp_vhids` entry follows (state only, see the module doc). `Ok(false)` if no such
    /// group is known (it was never declared, or is already forgotten): nothing is written.
    pub fn set_lb_node(
        &mut self,
        ifindex: u32,
        leader: u8,
        vhid: u8,
        interval: Duration,
        state: VhidDataplaneState,
    ) -> Result<bool, DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: u32::from(leader),
        };
        let Some(mut group) = self.lb_written.get(&key).copied() else {
            return Ok(false);
        };
        let count = (group.count as usize).min(LB_MAX_NODES);
        let Some(i) = group.vhids[..count].iter().position(|v| *v == vhid) else {
            return Ok(false);
        };
        let node_key = VhidKey {
            ifindex,
            vhid: u32::from(vhid),
        };
        let entry = carp_common::maps::VhidEntry {
            deadline_slot: self.deadlines.slot(node_deadline_key(ifindex, vhid))?,
            ..vhid_entry(virtual_mac(vhid), interval, state)
        };
        let deadline = deadline_ns(state);
        if deadline != 0 {
            self.deadlines.store(entry.deadline_slot, deadline);
        }
        let changed = group.nodes[i].state != entry.state;
        if group.nodes[i] != entry {
            group.nodes[i] = entry;
            self.write_lb_group(key, group)?;
        }
        if deadline == 0 {
            self.deadlines.store(entry.deadline_slot, 0);
        }
        if changed {
            let record = carp_common::maps::VhidEntry {
                deadline_slot: carp_common::maps::NO_DEADLINE_SLOT,
                ..entry
            };
            self.write_vhid(node_key, record)?;
        }
        Ok(true)
    }

    /// The group entry as the program sees it.
    pub fn lb_group(&self, ifindex: u32, leader: u8) -> Option<LbGroup> {
        let key = VhidKey {
            ifindex,
            vhid: u32::from(leader),
        };
        self.lb_groups.get(&key, 0).ok()
    }

    /// Forgets a balanced interface (by its leader vhid).
    pub fn remove_lb_group(&mut self, ifindex: u32, leader: u8) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: u32::from(leader),
        };
        if let Some(group) = self.lb_written.remove(&key) {
            let count = (group.count as usize).min(LB_MAX_NODES);
            for vhid in &group.vhids[..count] {
                self.deadlines.release(&node_deadline_key(ifindex, *vhid));
            }
        }
        ignore_missing(self.lb_groups.remove(&key), pin::LB_GROUPS)
    }

    /// Turns every node of every group in the map to INIT (after a crash: see
    /// [`Dataplane::silence_all`]).
    pub(super) fn silence_lb_groups(&mut self) -> Result<(), DataplaneError> {
        let groups: Vec<(VhidKey, LbGroup)> =
            self.lb_groups.iter().filter_map(Result::ok).collect();
        for (key, mut group) in groups {
            for node in &mut group.nodes {
                node.state = VHID_STATE_INIT;
                node.deadline_slot = carp_common::maps::NO_DEADLINE_SLOT;
            }
            self.write_lb_group(key, group)?;
        }
        Ok(())
    }

    fn write_lb_group(&mut self, key: VhidKey, group: LbGroup) -> Result<(), DataplaneError> {
        self.lb_groups
            .insert(key, group, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::LB_GROUPS,
                source,
            })?;
        self.lb_written.insert(key, group);
        Ok(())
    }
}

/// The key of a balanced node's deadline slot: apart from the key of the node's
/// `carp_vhids` entry (CARP vhids and VRRP slots stay below this bit), so that the two
/// never share a deadline.
fn node_deadline_key(ifindex: u32, vhid: u8) -> VhidKey {
    VhidKey {
        ifindex,
        vhid: LB_NODE_DEADLINE | u32::from(vhid),
    }
}

/// See [`node_deadline_key`].
const LB_NODE_DEADLINE: u32 = 1 << 30;
