//! The dataplane's VRRPv3 side: which (carpdev, VRID, family) are virtual routers carpd
//! serves (`vrrp_routers`: the XDP program hands their adverts over, see carp-ebpf's
//! `vrrp`), and the VRRP counters, apart from CARP's. A router's election state lives in
//! `carp_vhids` like a vhid's, under its slot (`carp_common::vrrp::vrrp_slot`), written with
//! [`Dataplane::set_slot`].
use carp_common::maps::{VHID_FLAG_VRRP_NO_ACCEPT, VhidKey, VrrpCounters, pin};

use super::{Dataplane, DataplaneError, ignore_missing};

impl Dataplane {
    /// Serves the VRRP router `slot` on carpdev `ifindex`: its adverts go to carpd. `accepts`
    /// is false for a router that is neither the address owner (priority 255) nor in accept
    /// mode: as master, the program then drops IP packets to its addresses (RFC 5798 6.4.3)
    /// through `VHID_FLAG_VRRP_NO_ACCEPT` in its state entry, which [`Dataplane::set_slot`]
    /// writes from now on (an entry already there gets the flag here).
    pub fn set_vrrp_router(
        &mut self,
        ifindex: u32,
        slot: u32,
        accepts: bool,
    ) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: slot,
        };
        self.vrrp_routers
            .insert(key, 0, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::VRRP_ROUTERS,
                source,
            })?;
        if accepts {
            self.vrrp_no_accept.remove(&key);
        } else {
            self.vrrp_no_accept.insert(key);
        }
        let Ok(mut entry) = self.vhids.get(&key, 0) else {
            return Ok(());
        };
        entry.flags = self.slot_flags(&key);
        self.write_vhid(key, entry)
    }

    /// Forgets a VRRP router: its state entry and its advert hand-over.
    pub fn remove_vrrp_router(&mut self, ifindex: u32, slot: u32) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: slot,
        };
        self.vrrp_no_accept.remove(&key);
        ignore_missing(self.vrrp_routers.remove(&key), pin::VRRP_ROUTERS)?;
        self.forget_vhid(key)
    }

    /// The `VhidEntry::flags` of the state entry under `key`.
    pub(super) fn slot_flags(&self, key: &VhidKey) -> u8 {
        if self.vrrp_no_accept.contains(key) {
            VHID_FLAG_VRRP_NO_ACCEPT
        } else {
            0
        }
    }

    /// The VRRP counters summed over all CPUs.
    pub fn vrrp_counters(&self) -> Result<VrrpCounters, DataplaneError> {
        let per_cpu = self
            .vrrp_counters
            .get(&0, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::VRRP_COUNTERS,
                source,
            })?;
        Ok(per_cpu.iter().sum())
    }
}
