//! One carp interface at run time: its configuration, its election state machine, its
//! authentication, and what it needs to put adverts on the wire.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use carp_common::wire::virtual_mac;

use crate::config::CarpInterface;
use crate::proto::{self, CarpAuth, CarpHeader, Passphrase, fsm};

/// Per-vhid protocol counters (the `carpctl stats` lines, summed over interfaces).
#[derive(Debug, Clone, Copy, Default)]
pub struct VhidStats {
    pub received_v4: u64,
    pub received_v6: u64,
    pub became_master: u64,
    pub sent_v4: u64,
    pub sent_v6: u64,
    pub send_errors: u64,
    pub rejected_auth: u64,
    pub rejected_loop: u64,
    pub transitions: u64,
}

pub struct CarpIf {
    pub cfg: CarpInterface,
    /// ifindex of the Linux interface carpd created for it (0 before creation).
    pub ifindex: u32,
    pub carpdev_ifindex: u32,
    pub vmac: [u8; 6],
    pub fsm: fsm::Vhid,
    pub auth: CarpAuth,
    /// Our replay cookie: one random value per vhid, sent in every advert (OpenBSD). An
    /// advert carrying it is our own, looped back.
    pub counter: u64,
    /// Demotion this interface caused itself (link loss, send errors); follows it between
    /// groups.
    pub own_demote: u8,
    pub stats: VhidStats,
    pub last_transition: Option<(String, Instant)>,
}

impl CarpIf {
    pub fn new(
        cfg: CarpInterface,
        carpdev_ifindex: u32,
        preempt: bool,
    ) -> Result<Self, crate::Error> {
        let auth = auth_for(&cfg)?;
        let params = fsm::VhidParams {
            vhid: cfg.vhid,
            advbase: cfg.advbase,
            advskew: cfg.advskew,
        };
        // The entropy seeds the jitter that breaks ties between identical peers.
        let fsm = fsm::Vhid::new(params, preempt, rand::random())?;
        Ok(Self {
            vmac: virtual_mac(cfg.vhid),
            cfg,
            ifindex: 0,
            carpdev_ifindex,
            fsm,
            auth,
            counter: rand::random(),
            own_demote: 0,
            stats: VhidStats::default(),
            last_transition: None,
        })
    }

    pub fn ipv4(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.cfg.ipv4.iter().map(|a| a.addr)
    }

    pub fn ipv6(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.cfg.ipv6.iter().map(|a| a.addr)
    }

    pub fn addresses(&self) -> Vec<(IpAddr, u8)> {
        let v4 = self
            .cfg
            .ipv4
            .iter()
            .map(|a| (IpAddr::V4(a.addr), a.prefix_len));
        let v6 = self
            .cfg
            .ipv6
            .iter()
            .map(|a| (IpAddr::V6(a.addr), a.prefix_len));
        v4.chain(v6).collect()
    }

    /// The address families the interface has addresses of.
    pub fn families(&self) -> fsm::Families {
        fsm::Families {
            v4: !self.cfg.ipv4.is_empty(),
            v6: !self.cfg.ipv6.is_empty(),
        }
    }

    /// The advertisement interval, advbase + advskew/256 s.
    pub fn interval(&self) -> Duration {
        self.fsm.interval()
    }

    /// The 36 bytes of an advert with the given values, signed with our counter.
    pub fn advert(&self, advbase: u8, advskew: u8, demote: u8) -> [u8; 36] {
        CarpHeader::advertisement(
            self.cfg.vhid,
            advbase,
            advskew,
            demote,
            self.counter,
            self.auth.sign(self.counter),
        )
        .encode()
    }
}

/// The HMAC context of an interface, from its passphrase and addresses.
pub fn auth_for(cfg: &CarpInterface) -> Result<CarpAuth, proto::AuthError> {
    let v4: Vec<Ipv4Addr> = cfg.ipv4.iter().map(|a| a.addr).collect();
    let v6: Vec<Ipv6Addr> = cfg.ipv6.iter().map(|a| a.addr).collect();
    CarpAuth::new(
        cfg.passphrase.as_ref().map_or("", Passphrase::expose),
        cfg.vhid,
        &v4,
        &v6,
        None,
    )
}
