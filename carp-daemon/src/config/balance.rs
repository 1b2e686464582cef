//! OpenBSD's load balancing settings: `carpnodes VHID:ADVSKEW,...` and `balancing MODE`
//! (ifconfig.c `setcarp_nodes`, `setcarp_balancing`; ip_carp.c `carp_vhids_ioctl`).
//!
//! One carp interface then runs one election per node ("vhost"), all sharing advbase,
//! passphrase, demotion and addresses; the nodes are kept sorted by vhid and the first is
//! the leader, whose virtual MAC is the interface's. OpenBSD's limits are kept: at most 32
//! nodes (`CARP_MAXNODES`), vhid 1 to 254, advskew 0 to 254, no vhid twice. Its defaults too:
//! one node means no balancing (`carp_vhids_ioctl` sets `CARP_BAL_NONE`), several nodes
//! without a mode balance by `ip`. An explicit `balancing none` with several nodes also
//! becomes `ip` here, with a warning: every host would otherwise accept every packet.
use std::fmt;

use super::error::Problem;

/// `CARP_MAXNODES`.
pub const MAX_NODES: usize = 32;

/// One node of a balanced carp interface: its own election.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    /// 1..=254.
    pub vhid: u8,
    /// 0..=254.
    pub advskew: u8,
}

/// `balancing none|ip|ip-stealth|ip-unicast` (OpenBSD's `CARP_BAL_MODES`, without the `arp`
/// mode it removed in 2015).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Balancing {
    #[default]
    None,
    /// Every host takes frames for the multicast MAC 01:00:5e:00:01:<leader vhid>, which
    /// switches flood; each keeps the packets of the buckets it masters.
    Ip,
    /// The unicast virtual MAC, never used as a source (frames leave from the carpdev's own
    /// MAC), so switches never learn it and keep flooding it.
    IpStealth,
    /// The unicast virtual MAC; reaching every host is left to a hub or a flooding port.
    IpUnicast,
}

impl Balancing {
    pub const ALL: [Balancing; 4] = [
        Balancing::None,
        Balancing::Ip,
        Balancing::IpStealth,
        Balancing::IpUnicast,
    ];

    /// The word ifconfig uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Balancing::None => "none",
            Balancing::Ip => "ip",
            Balancing::IpStealth => "ip-stealth",
            Balancing::IpUnicast => "ip-unicast",
        }
    }

    /// ifconfig's `balancing` argument, compared without case as `strcasecmp` does.
    pub fn parse(word: &str) -> Result<Balancing, Problem> {
        if word.eq_ignore_ascii_case("arp") {
            return Err(Problem::BalancingArpRemoved);
        }
        Self::ALL
            .into_iter()
            .find(|b| b.as_str().eq_ignore_ascii_case(word))
            .ok_or_else(|| Problem::UnknownBalancing(word.to_owned()))
    }
}

impl fmt::Display for Balancing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The balancing of a carp interface with several nodes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoadBalance {
    /// Never [`Balancing::None`].
    pub mode: Balancing,
    /// 2..=32 nodes, sorted by vhid, each vhid once; the first is the leader.
    pub nodes: Vec<Node>,
}

impl LoadBalance {
    /// The node whose virtual MAC the interface carries and whose master answers ARP/NS.
    pub fn leader(&self) -> Node {
        self.nodes[0]
    }
}

/// `carpnodes` as `setcarp_nodes` reads it: comma-separated `VHID:ADVSKEW` pairs. The
/// result is sorted by vhid, as the kernel keeps its vhosts.
pub fn parse_nodes(text: &str) -> Result<Vec<Node>, Problem> {
    let mut nodes: Vec<Node> = Vec::new();
    // strtok skips empty fields, so "1:0,,2:0" is two nodes there too.
    for field in text.split(',').filter(|f| !f.is_empty()) {
        if nodes.len() == MAX_NODES {
            let count = text.split(',').filter(|f| !f.is_empty()).count();
            return Err(Problem::TooManyNodes(count));
        }
        let bad = || Problem::BadCarpnode(field.to_owned());
        let (vhid, advskew) = field.split_once(':').ok_or_else(bad)?;
        let number = |s: &str| -> Result<u32, Problem> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            Ok(s.parse::<u32>().unwrap_or(u32::MAX))
        };
        let (vhid, advskew) = (number(vhid)?, number(advskew)?);
        let vhid = u8::try_from(vhid)
            .ok()
            .filter(|v| (1..=254).contains(v))
            .ok_or(Problem::OutOfRange {
                key: "carpnodes vhid",
                value: vhid.to_string(),
                min: 1,
                max: 254,
                note: "",
            })?;
        let advskew =
            u8::try_from(advskew)
                .ok()
                .filter(|s| *s <= 254)
                .ok_or(Problem::OutOfRange {
                    key: "carpnodes advskew",
                    value: advskew.to_string(),
                    min: 0,
                    max: 254,
                    note: " (255 is reserved for the bow-out advertisement)",
                })?;
        if nodes.iter().any(|n| n.vhid == vhid) {
            return Err(Problem::RepeatedNode(vhid));
        }
        nodes.push(Node { vhid, advskew });
    }
    if nodes.is_empty() {
        return Err(Problem::BadCarpnode(text.to_owned()));
    }
    nodes.sort();
    Ok(nodes)
}

/// OpenBSD's defaults applied to the nodes (empty: no `carpnodes`, one vhid) and the mode
/// as written: the balancing (or `None` for a plain single-vhid interface) and the warning
/// to give, if any.
pub fn normalise(
    nodes: Vec<Node>,
    mode: Option<Balancing>,
) -> (Option<LoadBalance>, Option<Problem>) {
    if nodes.len() <= 1 {
        let warning = mode
            .filter(|m| *m != Balancing::None)
            .map(Problem::BalancingOneNode);
        return (None, warning);
    }
    let (mode, warning) = match mode {
        None => (Balancing::Ip, None),
        Some(Balancing::None) => (Balancing::Ip, Some(Problem::BalancingNoneWithNodes)),
        Some(m) => (m, None),
    };
    (Some(LoadBalance { mode, nodes }), warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(vhid: u8, advskew: u8) -> Node {
        Node { vhid, advskew }
    }

    #[test]
    fn nodes_parse_sorted_by_vhid() {
        assert_eq!(
            parse_nodes("2:100,1:0").unwrap(),
            [node(1, 0), node(2, 100)]
        );
        assert_eq!(
            parse_nodes("7:254,,3:0").unwrap(),
            [node(3, 0), node(7, 254)]
        );
        let all: String = (1..=32).map(|v| format!("{v}:0,")).collect();
        assert_eq!(parse_nodes(&all).unwrap().len(), 32);
    }

    #[test]
    fn nodes_are_refused_where_openbsd_refuses_them() {
        let too_many: String = (1..=33).map(|v| format!("{v}:0,")).collect();
        assert_eq!(parse_nodes(&too_many), Err(Problem::TooManyNodes(33)));
        assert_eq!(parse_nodes("1-0"), Err(Problem::BadCarpnode("1-0".into())));
        assert_eq!(parse_nodes("1:x"), Err(Problem::BadCarpnode("1:x".into())));
        assert_eq!(parse_nodes(","), Err(Problem::BadCarpnode(",".into())));
        assert!(matches!(
            parse_nodes("255:0"),
            Err(Problem::OutOfRange {
                key: "carpnodes vhid",
                ..
            })
        ));
        assert!(matches!(
            parse_nodes("0:0"),
            Err(Problem::OutOfRange {
                key: "carpnodes vhid",
                ..
            })
        ));
        assert!(matches!(
            parse_nodes("1:255"),
            Err(Problem::OutOfRange {
                key: "carpnodes advskew",
                ..
            })
        ));
        assert_eq!(parse_nodes("1:0,1:100"), Err(Problem::RepeatedNode(1)));
    }

    #[test]
    fn modes_parse_without_case_and_arp_is_gone() {
        assert_eq!(Balancing::parse("IP-Stealth"), Ok(Balancing::IpStealth));
        assert_eq!(Balancing::parse("ip-unicast"), Ok(Balancing::IpUnicast));
        assert_eq!(Balancing::parse("arp"), Err(Problem::BalancingArpRemoved));
        assert_eq!(
            Balancing::parse("ipx"),
            Err(Problem::UnknownBalancing("ipx".into()))
        );
    }

    #[test]
    fn one_node_forces_none_and_several_default_to_ip() {
        let two = vec![node(1, 0), node(2, 100)];
        let (lb, warning) = normalise(vec![node(1, 0)], Some(Balancing::Ip));
        assert_eq!(
            (lb, warning),
            (None, Some(Problem::BalancingOneNode(Balancing::Ip)))
        );
        let (lb, warning) = normalise(two.clone(), None);
        assert_eq!(lb.unwrap().mode, Balancing::Ip);
        assert_eq!(warning, None);
        let (lb, warning) = normalise(two.clone(), Some(Balancing::None));
        assert_eq!(lb.unwrap().mode, Balancing::Ip);
        assert_eq!(warning, Some(Problem::BalancingNoneWithNodes));
        let (lb, _) = normalise(two, Some(Balancing::IpStealth));
        let lb = lb.unwrap();
        assert_eq!((lb.mode, lb.leader()), (Balancing::IpStealth, node(1, 0)));
    }

    /// Whole files through the configuration's checks: what `carpd --check` says.
    mod files {
        use std::path::PathBuf;

        use super::*;
        use crate::config::{CarpInterface, Source, check_sources};

        fn exists(name: &str) -> bool {
            name == "em0"
        }

        fn check(path: &str, text: &str) -> (Result<Vec<CarpInterface>, String>, Vec<String>) {
            let sources = [Source {
                path: PathBuf::from(path),
                text: text.to_owned(),
            }];
            let c = check_sources(&sources, &exists);
            let warnings = c.warnings.iter().map(ToString::to_string).collect();
            (
                c.result.map(|c| c.interfaces).map_err(|e| e.to_string()),
                warnings,
            )
        }

        fn one(path: &str, text: &str) -> CarpInterface {
            check(path, text)
                .0
                .unwrap_or_else(|e| panic!("{text:?}: {e}"))
                .remove(0)
        }

        fn error(path: &str, text: &str) -> String {
            match check(path, text).0 {
                Ok(i) => panic!("{text:?} was accepted: {i:?}"),
                Err(e) => e,
            }
        }

        const ADDR: &str = "inet 192.0.2.30/24 carpdev em0 pass s3cret";

        #[test]
        fn hostname_carpnodes_and_balancing() {
            let i = one(
                "hostname.carp2",
                &format!("{ADDR} carpnodes 4:100,3:0 balancing ip-stealth\n"),
            );
            let lb = i.balance.clone().expect("balanced");
            assert_eq!(lb.mode, Balancing::IpStealth);
            assert_eq!(lb.nodes, [node(3, 0), node(4, 100)]);
            assert_eq!((i.vhid, i.advskew), (3, 0), "the leader's");
            assert_eq!(i.nodes(), lb.nodes);
            // Several nodes without a mode balance by ip.
            let i = one("hostname.carp2", &format!("{ADDR}\ncarpnodes 1:0,2:100\n"));
            assert_eq!(i.balancing(), Balancing::Ip);
            // A later `vhid` makes it one node again, as ifconfig's setcarp_vhid does.
            let i = one(
                "hostname.carp2",
                &format!("{ADDR} carpnodes 1:0,2:100\nvhid 7\n"),
            );
            assert_eq!((i.balance.clone(), i.vhid), (None, 7));
            assert_eq!(i.nodes(), [node(7, 0)]);
        }

        #[test]
        fn normalisation_warns_on_its_line() {
            let (r, w) = check("hostname.carp2", &format!("{ADDR} vhid 1\nbalancing ip\n"));
            assert_eq!(r.unwrap()[0].balance, None);
            assert_eq!(
                w,
                [
                    "hostname.carp2:2: warning: balancing ip ignored: one node only, so nothing \
                  to balance (OpenBSD sets none)"
                ]
            );
            let (r, w) = check(
                "hostname.carp2",
                &format!("{ADDR} carpnodes 1:0,2:0 balancing none\n"),
            );
            assert_eq!(r.unwrap()[0].balancing(), Balancing::Ip);
            assert!(
                w[0].starts_with("hostname.carp2:1: warning: balancing none with several"),
                "{w:?}"
            );
        }

        #[test]
        fn check_refuses_what_openbsd_refuses_with_the_line() {
            let cases = [
                (
                    "carpnodes 1:0,1:100",
                    "hostname.carp2:2: carpnodes: vhid 1 is given twice",
                ),
                (
                    "carpnodes 255:0,1:0",
                    "hostname.carp2:2: carpnodes vhid 255 is out of range: must be 1 to 254",
                ),
                (
                    "carpnodes 1:255,2:0",
                    "hostname.carp2:2: carpnodes advskew 255 is out of range: must be 0 to 254 (255 is reserved for the bow-out advertisement)",
                ),
                (
                    "carpnodes 1,2",
                    "hostname.carp2:2: carpnodes: cannot read '1': expected VHID:ADVSKEW pairs separated by commas, e.g. carpnodes 1:0,2:100",
                ),
                (
                    "carpnodes 1:0,2:0 balancing arp",
                    "hostname.carp2:2: balancing arp: OpenBSD removed the arp mode in 2015; use ip, ip-stealth or ip-unicast",
                ),
                (
                    "carpnodes 1:0,2:0 balancing fast",
                    "hostname.carp2:2: balancing fast: unknown mode: must be none, ip, ip-stealth or ip-unicast",
                ),
                (
                    "carpnodes 1:0,2:0 advskew 5",
                    "hostname.carp2:2: 'advskew' with 'carpnodes': each node's advskew is given in carpnodes (VHID:ADVSKEW)",
                ),
            ];
            for (line, want) in cases {
                assert_eq!(
                    error("hostname.carp2", &format!("{ADDR}\n{line}\n")),
                    want,
                    "{line}"
                );
            }
            let many: Vec<String> = (1..=33).map(|v| format!("{v}:0")).collect();
            let e = error(
                "hostname.carp2",
                &format!("{ADDR}\ncarpnodes {}\n", many.join(",")),
            );
            assert_eq!(
                e,
                "hostname.carp2:2: carpnodes: 33 nodes; at most 32 (OpenBSD's CARP_MAXNODES)"
            );
        }

        #[test]
        fn every_node_vhid_is_unique_on_the_carpdev() {
            let a = "inet 192.0.2.30/24 carpdev em0 pass s3cret carpnodes 1:0,2:100\n";
            let b = "inet 192.0.2.40/24 carpdev em0 pass s3cret vhid 2\n";
            let sources = [
                Source {
                    path: "hostname.carp1".into(),
                    text: a.into(),
                },
                Source {
                    path: "hostname.carp2".into(),
                    text: b.into(),
                },
            ];
            let e = check_sources(&sources, &exists)
                .result
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                "hostname.carp2:1: vhid 2 on em0 is already used by carp1 (hostname.carp1)"
            );
        }

        #[test]
        fn toml_says_the_same() {
            let toml = |extra: &str| {
                format!(
                    "[[interface]]\nname = \"carp2\"\ncarpdev = \"em0\"\npass = \"s3cret\"\n\
                     addresses = [\"192.0.2.30/24\"]\n{extra}"
                )
            };
            let i = one(
                "c.toml",
                &toml("carpnodes = \"2:0,1:50\"\nbalancing = \"ip-unicast\"\n"),
            );
            let lb = i.balance.expect("balanced");
            assert_eq!(
                (lb.mode, lb.nodes),
                (Balancing::IpUnicast, vec![node(1, 50), node(2, 0)])
            );
            assert_eq!(
                error("c.toml", &toml("vhid = 1\ncarpnodes = \"1:0,2:0\"\n")),
                "c.toml:6: [interface carp2] key 'vhid': 'vhid' and 'carpnodes' are both set: \
                 give one vhid, or every node (with its advskew) in carpnodes"
            );
            assert_eq!(
                error("c.toml", &toml("carpnodes = \"1:0,2:0,2:1\"\n")),
                "c.toml:6: [interface carp2] key 'carpnodes': carpnodes: vhid 2 is given twice"
            );
        }

        #[test]
        fn the_examples_are_valid() {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
            let text = std::fs::read_to_string(dir.join("hostname.carp2")).unwrap();
            let sources = [Source {
                path: "hostname.carp2".into(),
                text: text.replace("eth0", "em0"),
            }];
            let c = check_sources(&sources, &exists)
                .result
                .unwrap_or_else(|e| panic!("{e}"));
            let lb = c.interfaces[0].balance.clone().expect("balanced");
            assert_eq!(
                (lb.mode, lb.nodes),
                (Balancing::Ip, vec![node(3, 0), node(4, 100)])
            );
        }
    }
}
