//! The dataplane's VRRPv3 side: which (carpdev, VRID, family) are virtual routers carpd
//! serves (`vrrp_routers`: the XDP program hands their adverts over, see carp-ebpf's
//! `vrrp`), and the VRRP counters, apart from CARP's. A router's election state lives in
//! `carp_vhids` like a vhid's, under its slot (`carp_common::vrrp::vrrp_slot`), written with
//! [`Dataplane::set_slot`].
use carp_common::maps::{VhidKey, VrrpCounters, pin};

use super::{Dataplane, DataplaneError, ignore_missing};

impl Dataplane {
    /// Serves the VRRP router `slot` on carpdev `ifindex`: its adverts go to carpd.
    pub fn set_vrrp_router(&mut self, ifindex: u32, slot: u32) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: slot,
        };
        self.vrrp_routers
            .insert(key, 0, 0)
            .map_err(|source| DataplaneError::Map {
                map: pin::VRRP_ROUTERS,
                source,
            })
    }

    /// Forgets a VRRP router: its state entry and its advert hand-over.
    pub fn remove_vrrp_router(&mut self, ifindex: u32, slot: u32) -> Result<(), DataplaneError> {
        let key = VhidKey {
            ifindex,
            vhid: slot,
        };
        ignore_missing(self.vrrp_routers.remove(&key), pin::VRRP_ROUTERS)?;
        ignore_missing(self.vhids.remove(&key), pin::VHIDS)
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
