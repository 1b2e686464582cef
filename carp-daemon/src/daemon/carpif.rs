//! One carp interface at run time: its configuration, its election state machine, its
//! authentication, and what it needs to put adverts on the wire.
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use carp_common::vrrp::{vrrp_slot, vrrp_virtual_mac};
use carp_common::wire::virtual_mac;

use crate::config::{Balancing, CarpInterface, Node};
use crate::net::link::{LINK_LOCAL_PREFIX_LEN, carp_link_local};
use crate::proto::{self, CarpAuth, CarpHeader, Passphrase, fsm};

/// Per-vhid protocol counters (the `carpctl stats` lines, summed over interfaces).
#[derive(Debug, Clone, Copy, Default)]
pub struct VhidStats {
    pub received_v4: u64,
    pub received_v6: u64,
    pub became_master: u64,
    pub sent_v4: u64,
    pub sent_v6: u64,
    /// Of the adverts sent, those the pacer's standby sent because the pacer's CPU stood
    /// still (see `daemon::pacer`).
    pub sent_by_standby: u64,
    pub send_errors: u64,
    /// Master-down timers that fired late and were postponed once (see
    /// [`fsm`](crate::proto::fsm), "A backup that overslept").
    pub master_down_postponed: u64,
    /// Adverts dropped because they came the other way than this vhid's (multicast to a
    /// vhid with unicast peers, or unicast to one without): OpenBSD ignores them too.
    pub rejected_mode: u64,
    pub rejected_auth: u64,
    pub rejected_loop: u64,
    pub transitions: u64,
}

impl VhidStats {
    /// One advert of the family (`v6` false: IPv4) left.
    pub fn count_sent(&mut self, v6: bool) {
        if v6 {
            self.sent_v6 += 1;
        } else {
            self.sent_v4 += 1;
        }
    }
}

pub struct CarpIf {
    pub cfg: CarpInterface,
    /// ifindex of the Linux interface carpd created for it (0 before creation).
    pub ifindex: u32,
    pub carpdev_ifindex: u32,
    pub vmac: [u8; 6],
    /// The interface's IPv6 link-local address ([`carp_link_local`] of the virtual MAC)
    /// once the kernel holds it; `None` before, and on a host without IPv6.
    pub link_local: Option<Ipv6Addr>,
    pub fsm: fsm::Vhid,
    pub auth: CarpAuth,
    /// Our replay cookie: one random value per vhid, sent in every advert (OpenBSD). An
    /// advert carrying it is our own, looped back.
    pub counter: u64,
    /// Demotion this interface caused itself (link loss, send errors); follows it between
    /// groups.
    pub own_demote: u8,
    /// `state master|backup` not applied yet: applied once, when the vhid first leaves INIT
    /// (or at once if it is running), then cleared.
    pub pending_state: Option<fsm::ForcedState>,
    pub stats: VhidStats,
    pub last_transition: Option<(String, Instant)>,
    /// Unicast peers whose MAC was missing at the last advert (warned about once).
    pub unresolved_peers: HashSet<IpAddr>,
    /// When the last warning about a peer advertising the other way (multicast to this
    /// unicast vhid, or the reverse) was logged: at most one a minute.
    pub mode_warned_at: Option<Instant>,
    /// A VRRPv3 interface (`protocol = "vrrp3"`): its election runs here instead of `fsm`,
    /// which then stays in INIT (see `daemon/vrrp.rs`).
    pub vrrp: Option<super::vrrp::VrrpRun>,
    /// For a node of a balanced interface other than its leader (see `balance.rs`): the
    /// interface's name. `None` for the interface itself (and its leader election).
    pub node_of: Option<String>,
}

impl CarpIf {
    pub fn new(
        cfg: CarpInterface,
        carpdev_ifindex: u32,
        preempt: bool,
    ) -> Result<Self, crate::Error> {
        let vrrp = cfg
            .vrrp
            .map(|settings| super::vrrp::VrrpRun::new(cfg.vhid, settings))
            .transpose()?;
        let auth = auth_for(&cfg)?;
        let params = fsm::VhidParams {
            vhid: cfg.vhid,
            advbase: cfg.advbase,
            advskew: cfg.advskew,
        };
        // The entropy seeds the jitter that breaks ties between identical peers.
        let fsm = fsm::Vhid::new(params, preempt, rand::random())?;
        let pending_state = cfg.initial_state;
        Ok(Self {
            vmac: match &vrrp {
                Some(v) => vrrp_virtual_mac(cfg.vhid, v.settings.v6),
                None => virtual_mac(cfg.vhid),
            },
            vrrp,
            link_local: None,
            cfg,
            ifindex: 0,
            carpdev_ifindex,
            fsm,
            auth,
            counter: rand::random(),
            own_demote: 0,
            pending_state,
            stats: VhidStats::default(),
            last_transition: None,
            unresolved_peers: HashSet::new(),
            mode_warned_at: None,
            node_of: None,
        })
    }

    /// The election of `node`, a node other than the leader of the balanced interface
    /// `cfg`: the interface's settings with the node's vhid and advskew.
    pub fn node(
        cfg: &CarpInterface,
        node: Node,
        carpdev_ifindex: u32,
        preempt: bool,
    ) -> Result<Self, crate::Error> {
        let node_cfg = CarpInterface {
            vhid: node.vhid,
            advskew: node.advskew,
            ..cfg.clone()
        };
        let mut cif = Self::new(node_cfg, carpdev_ifindex, preempt)?;
        cif.node_of = Some(cfg.name.clone());
        Ok(cif)
    }

    pub fn ipv4(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.cfg.ipv4.iter().map(|a| a.addr)
    }

    /// Every IPv6 address the interface answers for: its link-local address (when it has
    /// one), then the configured ones. A new master announces each of them (OpenBSD
    /// `carp_send_na` walks every inet6 address of the interface, the link-local included).
    pub fn ipv6(&self) -> impl Iterator<Item = Ipv6Addr> + '_ {
        self.link_local
            .into_iter()
            .chain(self.cfg.ipv6.iter().map(|a| a.addr))
    }

    /// Every address of the interface as `ifconfig` lists it: IPv4, then the link-local,
    /// then the configured IPv6 addresses.
    pub fn addresses(&self) -> Vec<(IpAddr, u8)> {
        let v4 = self
            .cfg
            .ipv4
            .iter()
            .map(|a| (IpAddr::V4(a.addr), a.prefix_len));
        let link_local = self
            .link_local
            .map(|a| (IpAddr::V6(a), LINK_LOCAL_PREFIX_LEN));
        let v6 = self
            .cfg
            .ipv6
            .iter()
            .map(|a| (IpAddr::V6(a.addr), a.prefix_len));
        v4.chain(link_local).chain(v6).collect()
    }

    /// The address families the interface has configured addresses of. The link-local
    /// address does not count: an IPv4-only interface sends IPv4 adverts only, as in OpenBSD
    /// (`carp_addr_updated` counts no link-local inet6 address, and `carp_send_ad` sends IPv6
    /// adverts only when it counted one).
    pub fn families(&self) -> fsm::Families {
        fsm::Families {
            v4: !self.cfg.ipv4.is_empty(),
            v6: !self.cfg.ipv6.is_empty(),
        }
    }

    /// The advertisement interval: advbase + advskew/256 s, or a VRRP router's.
    pub fn interval(&self) -> Duration {
        match &self.vrrp {
            Some(v) => v.router.advert_interval(),
            None => self.fsm.interval(),
        }
    }

    /// The election state, whichever protocol runs it.
    pub fn state(&self) -> fsm::State {
        match &self.vrrp {
            Some(v) => v.router.state(),
            None => self.fsm.state(),
        }
    }

    /// When the election's next timer runs out.
    pub fn next_deadline(&self) -> Option<Duration> {
        match &self.vrrp {
            Some(v) => v.router.next_deadline(),
            None => self.fsm.next_deadline(),
        }
    }

    /// Whether a timer of the election has run out at `now` (a CARP master's advert may
    /// go a little early, see `fsm::Vhid::is_due`).
    pub fn is_due(&self, now: Duration) -> bool {
        match &self.vrrp {
            Some(v) => v.router.next_deadline().is_some_and(|d| d <= now),
            None => self.fsm.is_due(now),
        }
    }

    /// The key of this interface in the dataplane's maps: the vhid, or a VRRP router's slot
    /// (`carp_common::vrrp::vrrp_slot`).
    pub fn slot(&self) -> u32 {
        match &self.vrrp {
            Some(v) => vrrp_slot(self.cfg.vhid, v.settings.v6),
            None => u32::from(self.cfg.vhid),
        }
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

/// The daemon's key of the election of node `vhid` of the balanced interface `name`. A colon
/// is never part of an interface name, so it never names an interface.
pub fn node_key(name: &str, vhid: u8) -> String {
    format!("{name}:{vhid}")
}

/// The HMAC context of an interface, from its passphrase and addresses. The link-local
/// address is handed over like OpenBSD's address list holds it; [`CarpAuth`] leaves it out
/// of what we sign (OpenBSD `HMAC_NOV6LL`) and accepts it only in the variant OpenBSD also
/// accepts (`HMAC_ORIG`).
///
/// The nodes of a balanced interface share its addresses (the link-local one is the
/// leader's); in `ip` mode the leader's context also hashes the interface's multicast MAC,
/// as OpenBSD's `carp_hmac_prepare_ctx` does for the leader when the interface MAC is not
/// the vhost's own.
pub fn auth_for(cfg: &CarpInterface) -> Result<CarpAuth, proto::AuthError> {
    let leader = cfg.balance.as_ref().map_or(cfg.vhid, |lb| lb.leader().vhid);
    let lladdr = cfg
        .balance
        .as_ref()
        .filter(|lb| lb.mode == Balancing::Ip && leader == cfg.vhid)
        .map(|_| carp_common::lb::carp_mac(leader, carp_common::lb::LB_MODE_IP));
    let v4: Vec<Ipv4Addr> = cfg.ipv4.iter().map(|a| a.addr).collect();
    let v6: Vec<Ipv6Addr> = std::iter::once(carp_link_local(virtual_mac(leader)))
        .chain(cfg.ipv6.iter().map(|a| a.addr))
        .collect();
    CarpAuth::new(
        cfg.passphrase.as_ref().map_or("", Passphrase::expose),
        cfg.vhid,
        &v4,
        &v6,
        lladdr,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Addr4, Origin};

    fn ipv4_only() -> CarpInterface {
        CarpInterface {
            name: "carp0".into(),
            carpdev: "eth0".into(),
            vhid: 1,
            advbase: 1,
            advskew: 0,
            balance: None,
            passphrase: Some("secret".into()),
            ipv4: vec![Addr4 {
                addr: Ipv4Addr::new(192, 0, 2, 1),
                prefix_len: 24,
            }],
            ipv6: vec![],
            peers: vec![],
            groups: vec![],
            initial_state: None,
            up: true,
            vrrp: None,
            source: Origin {
                path: "hostname.carp0".into(),
                line: None,
            },
        }
    }

    #[test]
    fn the_link_local_is_listed_and_announced_but_adds_no_family() {
        let mut cif = CarpIf::new(ipv4_only(), 2, false).unwrap();
        let ll: Ipv6Addr = "fe80::200:5eff:fe00:101".parse().unwrap();
        assert_eq!(cif.ipv6().count(), 0, "not before the kernel holds it");
        cif.link_local = Some(ll);
        assert_eq!(cif.ipv6().collect::<Vec<_>>(), [ll]);
        assert_eq!(
            cif.addresses(),
            [("192.0.2.1".parse().unwrap(), 24), (IpAddr::V6(ll), 64)]
        );
        // Still an IPv4-only interface: it sends IPv4 adverts only.
        let families = cif.families();
        assert!(families.v4 && !families.v6, "{families:?}");
    }

    #[test]
    fn the_link_local_is_not_signed() {
        let cfg = ipv4_only();
        let with = auth_for(&cfg).unwrap();
        let v4 = [Ipv4Addr::new(192, 0, 2, 1)];
        let without = CarpAuth::new("secret", 1, &v4, &[], None).unwrap();
        // What we send is the same with or without it (OpenBSD HMAC_NOV6LL)...
        assert_eq!(with.sign(42), without.sign(42));
        // ...and what OpenBSD signs, without link-locals, verifies.
        assert!(with.verify(42, &without.sign(42)));
    }

    #[test]
    fn balanced_nodes_sign_as_openbsd_vhosts() {
        use crate::config::{LoadBalance, Node};
        let v4 = [Ipv4Addr::new(192, 0, 2, 1)];
        let nodes = vec![
            Node {
                vhid: 3,
                advskew: 0,
            },
            Node {
                vhid: 4,
                advskew: 100,
            },
        ];
        for mode in [Balancing::Ip, Balancing::IpStealth] {
            let cfg = CarpInterface {
                vhid: 3,
                balance: Some(LoadBalance {
                    mode,
                    nodes: nodes.clone(),
                }),
                ..ipv4_only()
            };
            // The leader hashes the interface's MAC when it is not its own: the multicast
            // one in ip mode (carp_hmac_prepare_ctx), nothing otherwise.
            let lladdr = (mode == Balancing::Ip).then_some([0x01, 0x00, 0x5e, 0x00, 0x01, 0x03]);
            let want = CarpAuth::new("secret", 3, &v4, &[], lladdr).unwrap();
            assert_eq!(auth_for(&cfg).unwrap().sign(7), want.sign(7), "{mode}");
            // Another node signs with its own vhid and no MAC.
            let node = CarpIf::node(&cfg, nodes[1], 2, false).unwrap();
            let want = CarpAuth::new("secret", 4, &v4, &[], None).unwrap();
            assert_eq!(node.auth.sign(7), want.sign(7), "{mode}");
            assert_eq!((node.cfg.vhid, node.cfg.advskew), (4, 100));
            assert_eq!(node.node_of.as_deref(), Some("carp0"));
            assert_eq!(node.vmac, virtual_mac(4));
        }
    }
}
