//! The configuration module end to end: texts in, model or messages out.
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use std::net::IpAddr;

use super::*;
use crate::values::CARP_GROUP;

/// The interfaces these tests pretend exist.
fn exists(name: &str) -> bool {
    matches!(name, "eth0" | "eth1" | "em0" | "em1" | "bond0")
}

fn sources(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(path, text)| Source {
            path: PathBuf::from(path),
            text: (*text).to_owned(),
        })
        .collect()
}

fn check(files: &[(&str, &str)]) -> Checked {
    check_sources(&sources(files), &exists)
}

/// Every error message of a configuration that must be invalid.
fn errors(files: &[(&str, &str)]) -> Vec<String> {
    match check(files).result {
        Ok(c) => panic!("{files:?} was accepted: {c:?}"),
        Err(e) => e.errors.iter().map(ToString::to_string).collect(),
    }
}

fn warnings(files: &[(&str, &str)]) -> Vec<String> {
    let c = check(files);
    if let Err(e) = c.result {
        panic!("{files:?} was refused:\n{e}");
    }
    c.warnings.iter().map(ToString::to_string).collect()
}

/// The one interface of a valid hostname.carp0.
fn one(text: &str) -> CarpInterface {
    match check(&[("hostname.carp0", text)]).result {
        Ok(mut c) => c.interfaces.remove(0),
        Err(e) => panic!("{text:?} was refused:\n{e}"),
    }
}

/// A one-line rendering of an interface, in ifconfig's words, for table-driven tests.
fn summary(i: &CarpInterface) -> String {
    let mut s = format!(
        "{} carpdev {} vhid {} advbase {} advskew {}",
        i.name, i.carpdev, i.vhid, i.advbase, i.advskew
    );
    if let Some(p) = &i.passphrase {
        s += &format!(" pass {}", p.expose());
    }
    for a in &i.ipv4 {
        s += &format!(" inet {a}");
    }
    for a in &i.ipv6 {
        s += &format!(" inet6 {a}");
    }
    if !i.groups.iter().any(|g| g == CARP_GROUP) {
        s += " -group carp";
    }
    for g in i.groups.iter().filter(|g| *g != CARP_GROUP) {
        s += &format!(" group {g}");
    }
    match i.initial_state {
        Some(ForcedState::Master) => s += " state master",
        Some(ForcedState::Backup) => s += " state backup",
        None => {}
    }
    s += if i.up { " up" } else { " down" };
    s
}

#[test]
fn group_carp_can_be_left_and_joined_again() {
    // OpenBSD's regress/sys/netinet/carp/carp_1.sh: `-group carp group NAME`.
    let i = one("inet 10.0.0.1/24 vhid 1 carpdev em0\n-group carp group regress\n");
    assert_eq!(i.groups, ["regress"]);
    let i = one("inet 10.0.0.1/24 vhid 1 carpdev em0 group web\n");
    assert_eq!(i.groups, ["carp", "web"], "carp first, then in order");
    // Joining it again puts it back; leaving it twice warns as for any other group.
    let i = one("inet 10.0.0.1/24 vhid 1 carpdev em0\n-group carp\ngroup carp\n");
    assert_eq!(i.groups, ["carp"]);
    let twice = [(
        "hostname.carp0",
        "inet 10.0.0.1/24 vhid 1 carpdev em0 pass s3cret\n-group carp\n-group carp\n",
    )];
    assert_eq!(
        check(&twice).result.unwrap().interfaces[0].groups,
        Vec::<String>::new()
    );
    assert_eq!(
        warnings(&twice),
        ["hostname.carp0:3: warning: '-group carp': the interface is not in that group"]
    );

    let toml = |extra: &str| {
        format!(
            "[[interface]]\nname = \"carp0\"\ncarpdev = \"em0\"\nvhid = 1\n\
             addresses = [\"10.0.0.1/24\"]\n{extra}"
        )
    };
    let groups_of = |text: &str| match check(&[("c.toml", text)]).result {
        Ok(c) => Ok(c.interfaces[0].groups.clone()),
        Err(e) => Err(e.to_string()),
    };
    assert_eq!(
        groups_of(&toml("groups = [\"web\"]\n")).unwrap(),
        ["carp", "web"]
    );
    assert_eq!(
        groups_of(&toml("groups = [\"web\"]\ncarp_group = false\n")).unwrap(),
        ["web"]
    );
    assert_eq!(groups_of(&toml("carp_group = true\n")).unwrap(), ["carp"]);
    assert_eq!(
        groups_of(&toml("carp_group = false\ngroups = [\"carp\"]\n")).unwrap_err(),
        "c.toml:6: [interface carp0] key 'carp_group': 'groups' lists carp while \
         'carp_group' is false: leave carp out of 'groups', or drop 'carp_group = false'"
    );
}

/// examples/carpd.toml with every commented-out setting (`#key = value`, no space after
/// the `#`, as opposed to `# prose`) enabled.
pub(super) fn example_toml_with_all_keys() -> String {
    let text = std::fs::read_to_string(example("carpd.toml")).expect("examples/carpd.toml");
    text.lines()
        .map(|l| match l.strip_prefix('#') {
            // (and the further `#[[check]]` tables, one per kind of probe)
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase() || c == '[') => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name)
}

#[test]
fn openbsd_hostname_forms_are_accepted_unchanged() {
    let cases = [
        // The three forms of carp(4) and hostname.if(5).
        (
            "inet 10.0.0.1 255.255.255.0 vhid 1 pass SeCrEt carpdev em0 advbase 1 advskew 0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 pass SeCrEt inet 10.0.0.1/24 up",
        ),
        (
            "inet 192.0.2.10 255.255.255.0 192.0.2.255 vhid 1 carpdev em0 pass SeCrEt advskew 100\n\
             inet6 2001:db8::10 64\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 100 pass SeCrEt inet 192.0.2.10/24 \
             inet6 2001:db8::10/64 up",
        ),
        (
            "vhid 1 carpdev em0 pass SeCrEt advskew 100\n\
             inet 192.0.2.10 255.255.255.0\n\
             inet6 2001:db8::10 64\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 100 pass SeCrEt inet 192.0.2.10/24 \
             inet6 2001:db8::10/64 up",
        ),
        // netstart's historic positional form with NONE as the broadcast.
        (
            "inet 10.0.0.1 255.255.255.0 NONE vhid 1 carpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        (
            "inet 10.0.0.1 0xffffff00 vhid 1 carpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        (
            "inet 10.0.0.1 0XFFFF0000 vhid 1 carpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/16 up",
        ),
        // ifconfig's own words.
        (
            "inet 10.0.0.1 netmask 255.255.255.0 broadcast 10.0.0.255 vhid 1 carpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        (
            "inet 10.0.0.1/24 netmask 255.255.255.0 vhid 1 carpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        // Aliases: leading or trailing `alias`; inet6 always adds.
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em0\n\
             inet alias 10.0.0.2 255.255.255.0\n\
             inet 10.0.1.1/24 alias\n\
             inet6 2001:db8::10/64\n\
             inet6 alias 2001:db8::11 64\n\
             inet6 2001:db8::12 prefixlen 64\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 inet 10.0.0.2/24 \
             inet 10.0.1.1/24 inet6 2001:db8::10/64 inet6 2001:db8::11/64 \
             inet6 2001:db8::12/64 up",
        ),
        // An IPv6-only carp interface.
        (
            "inet6 2001:db8::10 64 vhid 7 carpdev eth1\n",
            "carp0 carpdev eth1 vhid 7 advbase 1 advskew 0 inet6 2001:db8::10/64 up",
        ),
        // Groups, state, up/down; later lines override earlier ones, as ifconfig would.
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em0\n\
             group web\ngroup db\n-group db\ngroup carp\ngroup web\n\
             state MASTER\nstate backup\ndown\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 group web \
             state backup down",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em0\ndown\nup\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em1\ncarpdev em0\nvhid 9\n",
            "carp0 carpdev em0 vhid 9 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        // Comments, blank lines, descriptions, `!` lines, CRLF, indentation.
        (
            "# carp for the web front end\n\n\
             description \"front end\"\r\n\
             \tinet 10.0.0.1/24 vhid 1 carpdev em0 # the address\r\n\
             !/usr/local/bin/notify $if\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        // Quoting; `pass ""` is OpenBSD's "no passphrase"; `#` inside a word is kept.
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em0 pass \"two words\"\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 pass two words inet 10.0.0.1/24 up",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em0 pass abc#1\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 pass abc#1 inet 10.0.0.1/24 up",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev em0 pass \"\"\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        // Range boundaries; a 19-byte passphrase.
        (
            "inet 10.0.0.1/32 vhid 255 carpdev em0 advbase 0 advskew 254 pass 0123456789abcdefghi\n",
            "carp0 carpdev em0 vhid 255 advbase 0 advskew 254 pass 0123456789abcdefghi \
             inet 10.0.0.1/32 up",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 advbase 254 carpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 254 advskew 0 inet 10.0.0.1/24 up",
        ),
        // -inet6 drops the IPv6 addresses set so far; -carpdev unsets.
        (
            "inet6 2001:db8::1 64\n-inet6\ninet 10.0.0.1/24 vhid 1 carpdev em1\n-carpdev\ncarpdev em0\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.1/24 up",
        ),
        // A plain inet replaces the earlier one (warned about below).
        (
            "vhid 1 carpdev em0\ninet 10.0.0.1/24\ninet 10.0.0.2/24\n",
            "carp0 carpdev em0 vhid 1 advbase 1 advskew 0 inet 10.0.0.2/24 up",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(summary(&one(text)), want, "{text:?}");
    }
}

/// Every error a hostname.carp0 can have, by exact message. `line` is `None` for what is
/// missing from the file as a whole.
#[test]
fn unicast_peers_from_carppeer_and_toml_peers() {
    // OpenBSD's form, plus an IPv6 peer and a second IPv4 one; -carppeer forgets them.
    let i = one(
        "inet 10.0.0.1/24 carpdev em0 vhid 1 pass x carppeer 10.0.0.2\n\
         inet6 2001:db8::1 64\ncarppeer 2001:db8::2\ncarppeer 10.0.0.3",
    );
    let want: Vec<IpAddr> = ["10.0.0.2", "2001:db8::2", "10.0.0.3"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    assert_eq!(i.peers, want);
    assert_eq!(i.peers_of(false).count(), 2);
    assert_eq!(i.peers_of(true).collect::<Vec<_>>(), [want[1]]);
    let i = one("inet 10.0.0.1/24 carpdev em0 vhid 1 pass x carppeer 10.0.0.2\n-carppeer");
    assert!(i.peers.is_empty());
    assert!(
        one("inet 10.0.0.1/24 carpdev em0 vhid 1 pass x")
            .peers
            .is_empty()
    );

    let toml = "[[interface]]\nname = \"carp1\"\ncarpdev = \"em0\"\nvhid = 2\npass = \"x\"\n\
                addresses = [\"10.0.0.1/24\", \"fe80::1/64\"]\n\
                peers = [\"10.0.0.2\", \"fe80::2\", \"10.0.0.2\"]\n";
    let c = check(&[("carpd.toml", toml)]);
    let cfg = c.result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.interfaces[0].peers.len(), 2);
    let msgs: Vec<String> = c.warnings.iter().map(ToString::to_string).collect();
    assert!(
        msgs.contains(
            &"carpd.toml:7: [interface carp1] key 'peers': warning: peer 10.0.0.2 is given \
              twice; the second is ignored"
                .to_owned()
        ),
        "{msgs:#?}"
    );

    // A changed peer list rebuilds the interface: where its adverts go is its identity.
    let with_peer = |p: &str| {
        check(&[(
            "hostname.carp0",
            &format!("inet 10.0.0.1/24 carpdev em0 vhid 1 pass x carppeer {p}"),
        )])
        .result
        .unwrap()
    };
    let d = diff(&with_peer("10.0.0.2"), &with_peer("10.0.0.3"));
    assert_eq!(d.changed[0].fields, [Field::Peers]);
    assert!(d.changed[0].needs_rebuild());

    // A peer that is one of this host's addresses (the carpdev's, say) is refused when
    // loading, naming the interface that holds it.
    let host = vec![
        ("eth0".to_owned(), "10.0.0.2".parse().unwrap()),
        ("lo".to_owned(), "127.0.0.1".parse().unwrap()),
    ];
    let errors = peers_on_this_host(&with_peer("10.0.0.2"), &host);
    let msgs: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        msgs,
        [
            "hostname.carp0: peer 10.0.0.2 is an address of this host (on eth0): its adverts \
          would come back here; name the other router's address"
        ]
    );
    assert!(peers_on_this_host(&with_peer("10.0.0.3"), &host).is_empty());
    let lo: IpAddr = "127.0.0.1".parse().unwrap();
    assert!(system_addresses().iter().any(|(_, a)| *a == lo));
}

#[test]
fn hostname_errors_name_file_line_and_problem() {
    const OK: &str = " carpdev em0 vhid 1";
    let cases: Vec<(String, Option<usize>, &str)> = vec![
        (
            "inet 10.0.0.1/24 vhid 256 carpdev em0".into(),
            Some(1),
            "vhid 256 is out of range: must be 1 to 255",
        ),
        (
            "inet 10.0.0.1/24 vhid 0 carpdev em0".into(),
            Some(1),
            "vhid 0 is out of range: must be 1 to 255",
        ),
        (
            "inet 10.0.0.1/24 carpdev em0\nvhid 99999999999999999999999".into(),
            Some(2),
            "vhid 99999999999999999999999 is out of range: must be 1 to 255",
        ),
        (
            "inet 10.0.0.1/24 vhid x carpdev em0".into(),
            Some(1),
            "vhid 'x' is not a number",
        ),
        (
            "inet 10.0.0.1/24 vhid 0x10 carpdev em0".into(),
            Some(1),
            "vhid '0x10' is not a number",
        ),
        (
            format!("inet 10.0.0.1/24{OK} advskew 255"),
            Some(1),
            "advskew 255 is out of range: must be 0 to 254 (255 is reserved for the bow-out \
             advertisement)",
        ),
        // advbase 255 as ifconfig's setcarp_advbase refuses it (as carpctl does).
        (
            format!("inet 10.0.0.1/24{OK}\nadvbase 255"),
            Some(2),
            "advbase 255 is out of range: must be 0 to 254 (255 is reserved for the bow-out \
             advertisement)",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\nadvbase 256"),
            Some(2),
            "advbase 256 is out of range: must be 0 to 254 (255 is reserved for the bow-out \
             advertisement)",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\nadvbase -1"),
            Some(2),
            "advbase -1 is out of range: must be 0 to 254 (255 is reserved for the bow-out \
             advertisement)",
        ),
        (
            format!("inet 10.0.0.1/24{OK} pass 0123456789abcdefghij"),
            Some(1),
            "passphrase is 20 bytes long; CARP keeps at most 19 (OpenBSD would silently use \
             only the first 19, so the hosts would not agree on what the key is)",
        ),
        (
            format!("inet 10.0.0.1{OK}"),
            Some(1),
            "address 10.0.0.1 has no prefix length: write 10.0.0.1/24 (or, in hostname.if, \
             give a netmask); carpd does not guess one",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ninet6 2001:db8::1"),
            Some(2),
            "address 2001:db8::1 has no prefix length: write 2001:db8::1/64 (or, in \
             hostname.if, give a netmask); carpd does not guess one",
        ),
        (
            format!("inet 10.0.0.1 255.0.255.0{OK}"),
            Some(1),
            "netmask 255.0.255.0 is not contiguous; carpd needs one that is a prefix length",
        ),
        (
            format!("inet 10.0.0.1 0xff00ff00{OK}"),
            Some(1),
            "netmask 0xff00ff00 is not contiguous; carpd needs one that is a prefix length",
        ),
        (
            format!("inet 10.0.0.1 255.255.255.256{OK}"),
            Some(1),
            "invalid netmask '255.255.255.256': expected a dotted quad (255.255.255.0) or hex \
             (0xffffff00)",
        ),
        (
            format!("inet 10.0.0.1 0.0.0.0{OK}"),
            Some(1),
            "invalid IPv4 prefix length '0 (netmask 0.0.0.0)': must be a number from 1 to 32",
        ),
        (
            format!("inet 10.0.0.1 255.255.255.0 10.0.0.x{OK}"),
            Some(1),
            "invalid broadcast address '10.0.0.x' (expected an IPv4 address or NONE)",
        ),
        (
            format!("inet www.example.com 255.255.255.0{OK}"),
            Some(1),
            "invalid IPv4 address 'www.example.com' (carpd does not resolve host names)",
        ),
        (
            format!("inet 2001:db8::1/64{OK}"),
            Some(1),
            "invalid IPv4 address '2001:db8::1' (carpd does not resolve host names)",
        ),
        (
            format!("inet 10.0.0.1/33{OK}"),
            Some(1),
            "invalid IPv4 prefix length '33': must be a number from 1 to 32",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ninet6 2001:db8::1 129"),
            Some(2),
            "invalid IPv6 prefix length '129': must be a number from 1 to 128",
        ),
        (
            format!("inet 10.0.0.1/24 255.255.0.0{OK}"),
            Some(1),
            "prefix length given twice, as /24 and as /16",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ninet6 2001:db8::1 netmask 64"),
            Some(2),
            "'netmask' does not apply to IPv6 addresses",
        ),
        (
            "inet 10.0.0.1/24 vhid 1".into(),
            None,
            "no carpdev: carpd needs the interface the carp interface sits on ('carpdev \
             eth0'); unlike OpenBSD it does not pick one from the addresses' subnet",
        ),
        (
            "inet 10.0.0.1/24 carpdev em0".into(),
            None,
            "no vhid: every carp interface needs a virtual host id ('vhid N', 1 to 255)",
        ),
        (
            "vhid 1 carpdev em0\n".into(),
            None,
            "no address: a carp interface needs at least one to leave INIT (OpenBSD accepts \
             an address-less carp interface, but it never runs)",
        ),
        (
            format!("inet 10.0.0.1/24{OK} frobnicate 3"),
            Some(1),
            "unknown keyword 'frobnicate'",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ncarppeer 10.0.0"),
            Some(2),
            "peer '10.0.0' is not an IPv4 or IPv6 address",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ncarppeer 224.0.0.18"),
            Some(2),
            "224.0.0.18 cannot be a unicast peer: it is a multicast address; leave \
             'carppeer' out to advertise to 224.0.0.18",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ncarppeer 10.0.0.1"),
            Some(2),
            "peer 10.0.0.1 is an address of this carp interface: its adverts would come back \
             to itself; name the other router's address",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ncarppeer 2001:db8::2"),
            Some(2),
            "peer 2001:db8::2 is IPv6, but the carp interface has no IPv6 address, so it \
             sends no IPv6 adverts to it",
        ),
        (
            format!("inet 10.0.0.1/24{OK} carppeer"),
            Some(1),
            "'carppeer' requires an argument",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\nlladdr 00:11:22:33:44:55"),
            Some(2),
            "'lladdr' is not supported by carpd: the MAC of a carp interface is the virtual \
             MAC 00:00:5e:00:01:<vhid>",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ndhcp"),
            Some(2),
            "'dhcp' is not supported on carp interfaces: a carp address must be static",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ninet6 autoconf"),
            Some(2),
            "'inet6 autoconf' is not supported on carp interfaces: a carp address must be \
             static",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\nstate init"),
            Some(2),
            "state 'init': must be master or backup",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ngroup web1"),
            Some(2),
            "invalid group name 'web1': group names may not end in a digit",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ngroup averyveryverylongname"),
            Some(2),
            "invalid group name 'averyveryverylongname': longer than 15 bytes",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ngroup \"web db\""),
            Some(2),
            "invalid group name 'web db': contains whitespace or a control character",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev carp0".into(),
            Some(1),
            "carpdev carp0 is the carp interface itself",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev eth9".into(),
            Some(1),
            "carpdev eth9 does not exist on this system",
        ),
        (
            "inet 10.0.0.1/24 vhid 1 carpdev eth/0".into(),
            Some(1),
            "invalid interface name 'eth/0': contains '/'",
        ),
        (
            format!("{OK} inet 10.0.0.1/24"),
            Some(1),
            "'inet' must be the first word of its line (hostname.if(5): one ifconfig \
             command per line, address family first)",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\nnetmask 255.255.255.0"),
            Some(2),
            "'netmask' belongs to an address: it must follow 'inet' or 'inet6' on the same \
             line",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\nadvskew"),
            Some(2),
            "'advskew' requires an argument",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ninet"),
            Some(2),
            "'inet' requires an argument",
        ),
        (
            format!("inet 10.0.0.1/24{OK}\ndescription \"unterminated"),
            Some(2),
            "unterminated \" quote",
        ),
        (
            format!("inet 224.0.0.18/24{OK}"),
            Some(1),
            "224.0.0.18 cannot be a carp address: it is a multicast address",
        ),
        (
            format!("inet 127.0.0.2/8{OK}"),
            Some(1),
            "127.0.0.2 cannot be a carp address: it is a loopback address",
        ),
        (
            format!("inet 0.0.0.0/8{OK}"),
            Some(1),
            "0.0.0.0 cannot be a carp address: it is the unspecified address",
        ),
        (
            format!("inet6 ::ffff:10.0.0.1/128{OK}"),
            Some(1),
            "::ffff:10.0.0.1 cannot be a carp address: it is IPv4-mapped; configure the IPv4 \
             address instead",
        ),
        (
            format!("inet6 ff02::1/64{OK}"),
            Some(1),
            "ff02::1 cannot be a carp address: it is a multicast address",
        ),
    ];
    for (text, line, want) in cases {
        let msgs = errors(&[("hostname.carp0", &text)]);
        let at = match line {
            Some(n) => format!("hostname.carp0:{n}: "),
            None => "hostname.carp0: ".to_owned(),
        };
        let want = format!("{at}{want}");
        assert!(
            msgs.contains(&want),
            "{text:?}\nwant: {want}\ngot:  {msgs:#?}"
        );
    }
}

#[test]
fn interface_names_come_from_the_file_name_and_are_checked() {
    let body = "inet 10.0.0.1/24 vhid 1 carpdev em0\n";
    let c = check(&[("/etc/hostname.carp7", body)]).result.unwrap();
    assert_eq!(c.interfaces[0].name, "carp7");
    assert_eq!(
        errors(&[("/etc/hostname.averyveryverylongname0", body)]),
        [
            "/etc/hostname.averyveryverylongname0: invalid interface name \
          'averyveryverylongname0': longer than 15 bytes (Linux IFNAMSIZ)"
        ]
    );
    assert_eq!(
        errors(&[("/etc/hostname.", body)]),
        ["/etc/hostname.: invalid interface name '': empty"]
    );
    assert_eq!(
        errors(&[("/etc/carp0.conf", body)]),
        [
            "/etc/carp0.conf: not a carpd configuration file: name it hostname.<ifname> \
          (OpenBSD hostname.if(5)) or *.toml"
        ]
    );
}

#[test]
fn every_error_is_reported_in_file_and_line_order() {
    let msgs = errors(&[
        (
            "hostname.carp0",
            "inet 10.0.0.1 vhid 300\nadvskew 255\nfrobnicate\n",
        ),
        ("missing.conf", ""),
        (
            "c.toml",
            "[[interface]]\nname = \"carp1\"\ncarpdev = \"eth9\"\nvhid = 0\n\
             addresses = [\"10.0.1.1\"]\n",
        ),
    ]);
    assert_eq!(
        msgs,
        [
            "hostname.carp0: no carpdev: carpd needs the interface the carp interface sits on \
             ('carpdev eth0'); unlike OpenBSD it does not pick one from the addresses' subnet",
            "hostname.carp0:1: vhid 300 is out of range: must be 1 to 255",
            "hostname.carp0:1: address 10.0.0.1 has no prefix length: write 10.0.0.1/24 (or, \
             in hostname.if, give a netmask); carpd does not guess one",
            "hostname.carp0:2: advskew 255 is out of range: must be 0 to 254 (255 is reserved \
             for the bow-out advertisement)",
            "hostname.carp0:3: unknown keyword 'frobnicate'",
            "missing.conf: not a carpd configuration file: name it hostname.<ifname> (OpenBSD \
             hostname.if(5)) or *.toml",
            "c.toml:3: [interface carp1] key 'carpdev': carpdev eth9 does not exist on this \
             system",
            "c.toml:4: [interface carp1] key 'vhid': vhid 0 is out of range: must be 1 to 255",
            "c.toml:5: [interface carp1] key 'addresses': address 10.0.1.1 has no prefix \
             length: write 10.0.1.1/24 (or, in hostname.if, give a netmask); carpd does not \
             guess one",
        ]
    );
    // The Display of the error is exactly those lines.
    let err = check(&[("hostname.carp0", "frobnicate\nvhid x\n")])
        .result
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "hostname.carp0: no carpdev: carpd needs the interface the carp interface sits on \
         ('carpdev eth0'); unlike OpenBSD it does not pick one from the addresses' subnet\n\
         hostname.carp0: no address: a carp interface needs at least one to leave INIT \
         (OpenBSD accepts an address-less carp interface, but it never runs)\n\
         hostname.carp0:1: unknown keyword 'frobnicate'\n\
         hostname.carp0:2: vhid 'x' is not a number"
    );
}

#[test]
fn cross_interface_checks() {
    let a = "inet 10.0.0.1/24 vhid 1 carpdev em0\n";
    // One vhid twice on one carpdev; one address twice.
    assert_eq!(
        errors(&[("/etc/hostname.carp0", a), ("/etc/hostname.carp1", a)]),
        [
            "/etc/hostname.carp1:1: vhid 1 on em0 is already used by carp0 \
             (/etc/hostname.carp0)",
            "/etc/hostname.carp1:1: address 10.0.0.1 is also configured on carp0 \
             (/etc/hostname.carp0)",
        ]
    );
    // The same vhid on another carpdev is fine (another segment, another virtual MAC).
    let b = "inet 10.0.1.1/24 vhid 1 carpdev em1\n";
    let c = check(&[("hostname.carp0", a), ("hostname.carp1", b)]);
    assert_eq!(c.result.unwrap().interfaces.len(), 2);
    // One interface name twice, across a hostname file and a TOML file.
    let toml = "[[interface]]\nname = \"carp0\"\ncarpdev = \"em1\"\nvhid = 2\n\
                addresses = [\"10.0.2.1/24\"]\n";
    assert_eq!(
        errors(&[("hostname.carp0", a), ("c.toml", toml)]),
        [
            "c.toml:2: [interface carp0] key 'name': interface carp0 is also configured in \
          hostname.carp0"
        ]
    );
    // A carpdev that is one of the carp interfaces.
    assert_eq!(
        errors(&[
            ("hostname.carp0", a),
            ("hostname.carp1", "inet 10.0.1.1/24 vhid 2 carpdev carp0\n")
        ]),
        [
            "hostname.carp1:1: carpdev carp0 is a carp interface of this configuration; a \
             carpdev must be a physical, VLAN or bond interface"
        ]
    );
    // The same file twice.
    assert_eq!(
        errors(&[("hostname.carp0", a), ("hostname.carp0", a)]),
        ["hostname.carp0: given more than once"]
    );
}

#[test]
fn warnings_and_notes_do_not_stop_a_configuration() {
    let w = warnings(&[(
        "hostname.carp0",
        "vhid 1 carpdev em0\n\
         inet 10.0.0.1/24\n\
         inet 10.0.0.2 255.255.255.0 10.0.0.127\n\
         inet6 fe80::1 64\n\
         inet6 alias 2001:db8::1/64\n\
         inet6 alias 2001:db8::1/64\n\
         -group web\n\
         description \"front end\"\n\
         ! /usr/local/bin/notify $if\n",
    )]);
    assert_eq!(
        w,
        [
            "hostname.carp0: warning: no passphrase: the advertisements' HMAC is keyed with \
             zeros, so any host on the LAN can take this vhid over; set 'pass' (or \
             'pass_file' in TOML)",
            "hostname.carp0:3: warning: broadcast 10.0.0.127 ignored: Linux derives it from \
             the prefix (10.0.0.255); only the standard broadcast is supported",
            "hostname.carp0:3: warning: this 'inet' replaces 10.0.0.1 from line 2, as \
             OpenBSD's ifconfig does; write 'inet alias' to add an address",
            "hostname.carp0:4: warning: fe80::1 is link-local: it is configured, but (as on \
             OpenBSD) not covered by the advertisement HMAC, so a peer with a different \
             link-local address is not detected",
            "hostname.carp0:6: warning: address 2001:db8::1 is given twice; it is configured \
             once",
            "hostname.carp0:7: warning: '-group web': the interface is not in that group",
            "hostname.carp0:8: note: description ignored (Linux interfaces have an alias \
             instead; carpd does not set it)",
            "hostname.carp0:9: warning: '!' command ignored: carpd runs no commands from \
             configuration files (/usr/local/bin/notify $if)",
        ]
    );
    let w = warnings(&[("c.toml", "[daemon]\npreempt = true\n")]);
    assert_eq!(w, ["c.toml: warning: no carp interfaces configured"]);
}

#[test]
fn toml_interfaces_and_daemon_settings() {
    let text = r#"
[daemon]
preempt = true
pin_dir = "/sys/fs/bpf/carp-test"
state_dir = "/run/carpd-test"
lib_dir = "/var/lib/carpd-test"
hooks = ["/etc/carpd/notify", "/usr/local/bin/page"]
metrics = "[::1]:9712"
boot_demote = 128

[[interface]]
name = "carp10"
carpdev = "bond0"
vhid = 10
advbase = 2
advskew = 50
pass = "SeCrEt"
addresses = ["192.0.2.10/24", "2001:db8::10/64", "192.0.2.11/24"]
groups = ["web", "carp", "web"]
state = "master"
up = false

[[interface]]
name = "carp2"
carpdev = "eth0"
vhid = 2
addresses = ["198.51.100.1/24"]
"#;
    let c = check(&[("/etc/carpd.toml", text)]).result.unwrap();
    assert_eq!(
        c.daemon,
        DaemonSettings {
            preempt: true,
            pin_dir: "/sys/fs/bpf/carp-test".into(),
            state_dir: "/run/carpd-test".into(),
            lib_dir: "/var/lib/carpd-test".into(),
            hooks: vec!["/etc/carpd/notify".into(), "/usr/local/bin/page".into()],
            metrics: Some("[::1]:9712".parse().unwrap()),
            boot_demote: 128,
            realtime_priority: None,
        }
    );
    let s: Vec<String> = c.interfaces.iter().map(summary).collect();
    assert_eq!(
        s,
        [
            "carp2 carpdev eth0 vhid 2 advbase 1 advskew 0 inet 198.51.100.1/24 up",
            "carp10 carpdev bond0 vhid 10 advbase 2 advskew 50 pass SeCrEt inet 192.0.2.10/24 \
             inet 192.0.2.11/24 inet6 2001:db8::10/64 group web state master down",
        ]
    );
    assert_eq!(
        c.interfaces[1].source,
        Origin {
            path: "/etc/carpd.toml".into(),
            line: Some(11)
        }
    );
    // Defaults when there is no [daemon].
    let c = check(&[(
        "c.toml",
        "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\naddresses = [\"10.0.0.1/8\"]\n",
    )]);
    assert_eq!(c.result.unwrap().daemon, DaemonSettings::default());
}

#[test]
fn toml_errors_name_the_key() {
    let iface = |body: &str| format!("[[interface]]\nname = \"carp0\"\n{body}");
    let ok = "carpdev = \"eth0\"\nvhid = 1\naddresses = [\"10.0.0.1/24\"]\n";
    let cases = [
        (
            iface("carpdev = \"eth0\"\nvhid = 300\nadvskew = 255\naddresses = [\"10.0.0.1/24\"]\n"),
            vec![
                "c.toml:4: [interface carp0] key 'vhid': vhid 300 is out of range: must be 1 \
                 to 255",
                "c.toml:5: [interface carp0] key 'advskew': advskew 255 is out of range: must \
                 be 0 to 254 (255 is reserved for the bow-out advertisement)",
            ],
        ),
        (
            iface(&format!("{ok}advskw = 3\n")),
            vec![
                "c.toml:6: unknown field 'advskw', expected one of 'name', 'carpdev', 'vhid', \
                 'advbase', 'advskew', 'carpnodes', 'balancing', 'pass', 'pass_file', 'addresses', 'peers', 'groups', 'carp_group', \
                 'state', 'up', 'protocol', 'vrid', 'priority', 'advert_interval', 'preempt', \
                 'accept_mode', 'vrrp_checksum'",
            ],
        ),
        (
            "[daemon]\npreemt = true\n".to_owned(),
            vec![
                "c.toml:2: unknown field 'preemt', expected one of 'preempt', 'pin_dir', \
                 'state_dir', 'lib_dir', 'hooks', 'metrics', 'boot_demote', 'realtime_priority'",
            ],
        ),
        (
            "[deamon]\n".to_owned(),
            vec![
                "c.toml:1: unknown field 'deamon', expected one of 'daemon', 'interface', 'check'",
            ],
        ),
        (
            iface(
                "carpdev = \"eth0\"\nvhid = 99999999999999999999\naddresses = [\"10.0.0.1/24\"]\n",
            ),
            vec![
                "c.toml:4: [interface carp0] key 'vhid': vhid 99999999999999999999 is out of \
                 range: must be 1 to 255",
            ],
        ),
        (
            iface("vhid = \"1\"\n"),
            vec!["c.toml:3: invalid type: string \"1\", expected an integer"],
        ),
        (
            iface("vhid = 1\ncarpdev = \"eth0\"\naddresses = \"10.0.0.1/24\"\n"),
            vec!["c.toml:5: invalid type: string \"10.0.0.1/24\", expected an array"],
        ),
        (
            "[[interface]\n".to_owned(),
            vec!["c.toml:1: unclosed array table, expected ']'"],
        ),
        (
            "[[interface]]\ncarpdev = \"eth0\"\nvhid = 1\naddresses = [\"10.0.0.1/24\"]\n"
                .to_owned(),
            vec![
                "c.toml:1: [interface #1] key 'name': no name: every [[interface]] needs a \
                 name, e.g. name = \"carp0\"",
            ],
        ),
        (
            iface("addresses = [\"10.0.0.1/24\"]\n"),
            vec![
                "c.toml:1: [interface carp0] key 'carpdev': no carpdev: carpd needs the \
                 interface the carp interface sits on ('carpdev eth0'); unlike OpenBSD it \
                 does not pick one from the addresses' subnet",
                "c.toml:1: [interface carp0] key 'vhid': no vhid: every carp interface needs \
                 a virtual host id ('vhid N', 1 to 255)",
            ],
        ),
        (
            iface("carpdev = \"eth0\"\nvhid = 1\n"),
            vec![
                "c.toml:1: [interface carp0] key 'addresses': no address: a carp interface \
                 needs at least one to leave INIT (OpenBSD accepts an address-less carp \
                 interface, but it never runs)",
            ],
        ),
        (
            iface(
                "carpdev = \"eth0\"\nvhid = 1\naddresses = [\n  \"10.0.0.1/24\",\n  \"10.0.0.x/24\",\n]\n",
            ),
            vec![
                "c.toml:7: [interface carp0] key 'addresses': invalid IP address '10.0.0.x' \
                  (carpd does not resolve host names)",
            ],
        ),
        (
            iface(&format!(
                "{ok}pass = \"01234567890123456789\"\nstate = \"init\"\ngroups = [\"db2\"]\n"
            )),
            vec![
                "c.toml:6: [interface carp0] key 'pass': passphrase is 20 bytes long; CARP \
                 keeps at most 19 (OpenBSD would silently use only the first 19, so the hosts \
                 would not agree on what the key is)",
                "c.toml:7: [interface carp0] key 'state': state 'init': must be master or \
                 backup",
                "c.toml:8: [interface carp0] key 'groups': invalid group name 'db2': group \
                 names may not end in a digit",
            ],
        ),
        (
            iface(&format!("{ok}pass = \"a\\u0000b\"\n")),
            vec![
                "c.toml:6: [interface carp0] key 'pass': passphrase contains a NUL byte \
                 (OpenBSD's ifconfig would stop there)",
            ],
        ),
        (
            "[daemon]\npin_dir = \"bpf/carp\"\nstate_dir = \"run\"\nhooks = [\"notify.sh\"]\n\
             metrics = \"localhost:9712\"\nboot_demote = 256\nrealtime_priority = 0\n"
                .to_owned(),
            vec![
                "c.toml:2: [daemon] key 'pin_dir': pin_dir 'bpf/carp' must be an absolute path",
                "c.toml:3: [daemon] key 'state_dir': state_dir 'run' must be an absolute path",
                "c.toml:4: [daemon] key 'hooks': hook 'notify.sh' must be an absolute path",
                "c.toml:5: [daemon] key 'metrics': invalid listen address 'localhost:9712': \
                 expected ADDRESS:PORT, e.g. 127.0.0.1:9712 or [::1]:9712",
                "c.toml:6: [daemon] key 'boot_demote': boot_demote 256 is out of range: must \
                 be 0 to 255",
                "c.toml:7: [daemon] key 'realtime_priority': realtime_priority 0 is out of \
                 range: must be 1 to 99",
            ],
        ),
    ];
    for (text, want) in cases {
        let got = errors(&[("c.toml", &text)]);
        assert_eq!(got, want, "{text}");
    }
}

#[test]
fn realtime_priority_is_a_daemon_setting() {
    let text = "[daemon]\nrealtime_priority = 10\n";
    let c = check(&[("c.toml", text)]).result.unwrap();
    assert_eq!(c.daemon.realtime_priority, Some(10));
    let c = check(&[("c.toml", "[daemon]\n")]).result.unwrap();
    assert_eq!(c.daemon.realtime_priority, None);
}

#[test]
fn daemon_keys_merge_across_files_but_never_twice() {
    let a = "[daemon]\npreempt = true\n";
    let b = "[daemon]\nboot_demote = 128\n\n[[interface]]\nname = \"carp0\"\n\
             carpdev = \"eth0\"\nvhid = 1\naddresses = [\"10.0.0.1/24\"]\n";
    let c = check(&[("a.toml", a), ("b.toml", b)]).result.unwrap();
    assert!(c.daemon.preempt);
    assert_eq!(c.daemon.boot_demote, 128);
    assert_eq!(
        errors(&[
            ("a.toml", a),
            ("b.toml", b),
            ("c.toml", "[daemon]\npreempt = false\n")
        ]),
        [
            "c.toml:2: [daemon] key 'preempt': daemon key 'preempt' is also set in a.toml; set \
          each [daemon] key in one file only"
        ]
    );
}

#[test]
fn unreadable_files_are_reported() {
    let missing = std::env::temp_dir().join("carpd-no-such-dir/hostname.carp0");
    let c = check_files(&[&missing], &exists);
    let err = c.result.unwrap_err();
    assert_eq!(err.errors.len(), 1);
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: cannot read: ", missing.display())),
        "{msg}"
    );
}

#[test]
fn the_example_files_are_valid_together() {
    // Copied to files only root can read, as an operator installs them: the examples in
    // the source tree are world-readable, which carpd would warn about.
    let dir = private_dir("examples");
    let paths = ["hostname.carp0", "carpd.toml"].map(|name| {
        let text = std::fs::read_to_string(example(name)).unwrap();
        private_file(&dir, name, &text)
    });
    let c = check_files(&paths, &exists);
    let config = c.result.unwrap_or_else(|e| panic!("{e}"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let names: Vec<&str> = config.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["carp0", "carp1", "vrrp5", "vrrp5v6"]);
    let carp0 = &config.interfaces[0];
    assert_eq!(
        summary(carp0),
        "carp0 carpdev eth0 vhid 1 advbase 1 advskew 100 pass SeCrEt inet 192.0.2.10/24 \
         inet6 2001:db8::10/64 group web up"
    );
    // The defaults, as the example shows them.
    assert_eq!(config.daemon.pin_dir, PathBuf::from(DEFAULT_PIN_DIR));
    assert_eq!(config.daemon.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_example_toml_is_valid_with_every_commented_setting_enabled() {
    // Except pass_file, which replaces pass (the two are exclusive) and names a file of the
    // operator's host.
    let text = example_toml_with_all_keys()
        .lines()
        .filter(|l| !l.starts_with("pass_file"))
        .collect::<Vec<_>>()
        .join("\n");
    let c = check(&[("carpd.toml", &text)]);
    c.result.unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn diff_reports_added_removed_changed_and_unchanged() {
    let load = |files: &[(&str, &str)]| check(files).result.unwrap();
    let old = load(&[
        (
            "/etc/hostname.carp0",
            "inet 10.0.0.1/24 vhid 1 carpdev em0\n",
        ),
        (
            "/etc/hostname.carp1",
            "inet 10.0.1.1/24 vhid 2 carpdev em0\n",
        ),
        (
            "/etc/hostname.carp2",
            "inet 10.0.2.1/24 vhid 3 carpdev em0\n",
        ),
        (
            "/etc/hostname.carp3",
            "inet 10.0.3.1/24 vhid 4 carpdev em0\n",
        ),
    ]);
    let new = load(&[
        // carp0 moved into a TOML file, unchanged: not a change.
        (
            "/etc/carpd.toml",
            "[[interface]]\nname = \"carp0\"\ncarpdev = \"em0\"\nvhid = 1\n\
             addresses = [\"10.0.0.1/24\"]\n",
        ),
        (
            "/etc/hostname.carp1",
            "# comment\ninet 10.0.1.1/24 vhid 2 carpdev em0 advskew 100\n",
        ),
        (
            "/etc/hostname.carp2",
            "inet 10.0.2.2/24 vhid 3 carpdev em0 pass x\ngroup db\n",
        ),
        (
            "/etc/hostname.carp4",
            "inet 10.0.4.1/24 vhid 5 carpdev em0\n",
        ),
    ]);
    let d = diff(&old, &new);
    assert_eq!(d.added, ["carp4"]);
    assert_eq!(d.removed, ["carp3"]);
    assert_eq!(d.unchanged, ["carp0"]);
    assert_eq!(
        d.changed,
        [
            InterfaceChange {
                name: "carp1".into(),
                fields: vec![Field::Advskew],
            },
            InterfaceChange {
                name: "carp2".into(),
                fields: vec![Field::Passphrase, Field::Addresses, Field::Groups],
            },
        ]
    );
    assert!(d.changed[0].timers_only() && !d.changed[0].needs_rebuild());
    assert!(d.changed[0].in_place());
    assert!(!d.changed[1].timers_only() && d.changed[1].needs_rebuild());
    assert!(!d.changed[1].in_place());
    // Groups (carp included) and state are applied in place.
    let change = |fields| InterfaceChange {
        name: "carp0".into(),
        fields,
    };
    assert!(change(vec![Field::Groups]).in_place());
    assert!(change(vec![Field::Advbase, Field::Groups, Field::InitialState]).in_place());
    assert!(!change(vec![Field::Groups]).timers_only());
    let before = one("inet 10.0.0.1/24 vhid 1 carpdev em0 group web\n");
    let after = one("inet 10.0.0.1/24 vhid 1 carpdev em0 -group carp group web state master\n");
    assert_eq!(
        super::diff::changed_fields(&before, &after),
        [Field::Groups, Field::InitialState]
    );
    assert!(!d.daemon_changed && !d.is_empty());
    assert!(diff(&new, &new).is_empty());
    assert!(old.interfaces[0].same_settings(&new.interfaces[0]));
    assert_ne!(old.interfaces[0], new.interfaces[0], "the sources differ");
}

#[test]
fn interfaces_are_ordered_by_name_as_people_read_them() {
    let files: Vec<(String, String)> = [10, 2, 1]
        .iter()
        .map(|n| {
            (
                format!("hostname.carp{n}"),
                format!("inet 10.0.{n}.1/24 vhid {n} carpdev em0\n"),
            )
        })
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let c = check(&files).result.unwrap();
    let names: Vec<&str> = c.interfaces.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["carp1", "carp2", "carp10"]);
}

#[test]
fn the_real_interface_lookup_sees_loopback() {
    assert!(system_interface_exists("lo"));
    assert!(!system_interface_exists("carpd-nonexistent0"));
    assert!(!system_interface_exists("bad\0name"));
}

/// Words hostname.if parsing gives meaning to, mixed with noise, so that generated lines
/// reach the parser's deeper paths rather than stopping at "unknown keyword".
fn hostname_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "inet",
            "inet6",
            "alias",
            "-inet",
            "-inet6",
            "vhid",
            "advbase",
            "advskew",
            "pass",
            "carpdev",
            "-carpdev",
            "state",
            "group",
            "-group",
            "up",
            "down",
            "description",
            "netmask",
            "broadcast",
            "prefixlen",
            "NONE",
            "dhcp",
            "#",
            "!",
            "\"",
            "'",
            "\\",
            "10.0.0.1",
            "10.0.0.1/24",
            "255.255.255.0",
            "0xffffff00",
            "0x",
            "2001:db8::1",
            "fe80::1/64",
            "64",
            "0",
            "255",
            "256",
            "-1",
            "em0",
            "carp0",
            "master",
            "carp",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,12}",
    ]
}

proptest! {
    #[test]
    fn hostname_parsing_never_panics_on_arbitrary_text(text in "(?s).{0,300}") {
        let _ = check_sources(
            &[Source { path: "hostname.carp0".into(), text }],
            &exists,
        );
    }

    #[test]
    fn hostname_parsing_never_panics_on_plausible_lines(
        lines in prop::collection::vec(prop::collection::vec(hostname_word(), 0..10), 0..8)
    ) {
        let text = lines.iter().map(|l| l.join(" ")).collect::<Vec<_>>().join("\n");
        let c = check_sources(&[Source { path: "hostname.carp0".into(), text }], &exists);
        // Whatever the outcome, every finding has a location in the file.
        let all = c.warnings.iter().chain(c.result.as_ref().err().into_iter().flat_map(|e| &e.errors));
        for d in all {
            prop_assert_eq!(d.at.path(), Path::new("hostname.carp0"));
        }
    }
}

// --- passphrases -------------------------------------------------------------------------

/// A passphrase no message, warning or `Debug` output may contain.
const SECRET: &str = "Zq9xSeCrEtWv";

/// A fresh directory, only root's, for files these tests write.
fn private_dir(name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("carpd-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// Writes `text` to `dir/name`, mode 0600.
fn private_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    file_with_mode(dir, name, text, 0o600)
}

fn file_with_mode(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// Every finding of a check, as printed.
fn all_messages(c: &Checked) -> Vec<String> {
    let errors = c.result.as_ref().err().into_iter().flat_map(|e| &e.errors);
    c.warnings
        .iter()
        .chain(errors)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_vhid_without_passphrase_is_warned_about() {
    let no_pass = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\n\
                   addresses = [\"10.0.0.1/24\"]\n";
    assert_eq!(
        warnings(&[("c.toml", no_pass)]),
        [
            "c.toml:1: [interface carp0] key 'pass': warning: no passphrase: the \
          advertisements' HMAC is keyed with zeros, so any host on the LAN can take this vhid \
          over; set 'pass' (or 'pass_file' in TOML)"
        ]
    );
    // An explicit empty passphrase is OpenBSD's "no pass" too: warned about at its line.
    let w = warnings(&[(
        "hostname.carp0",
        "inet 10.0.0.1/24 vhid 1 carpdev em0\npass \"\"\n",
    )]);
    assert_eq!(w.len(), 1);
    assert!(
        w[0].starts_with("hostname.carp0:2: warning: no passphrase"),
        "{w:?}"
    );
    assert!(
        warnings(&[(
            "hostname.carp0",
            "inet 10.0.0.1/24 vhid 1 carpdev em0 pass x\n"
        )])
        .is_empty()
    );
}

#[test]
fn passphrases_never_appear_in_messages_or_debug_output() {
    let ok = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\n\
              addresses = [\"10.0.0.1/24\"]\n";
    let long = format!("{SECRET}{SECRET}");
    let toml_cases = [
        // Wrong types: the toml crate would quote the value.
        (
            format!("{ok}pass = 123456\n"),
            "pass must be a string, not an integer",
        ),
        (
            format!("{ok}pass = true\n"),
            "pass must be a string, not a boolean",
        ),
        (
            format!("{ok}pass = 1.5\n"),
            "pass must be a string, not a float",
        ),
        (
            format!("{ok}pass = [\"{SECRET}\"]\n"),
            "pass must be a string, not an array",
        ),
        (
            format!("{ok}pass = {{ x = \"{SECRET}\" }}\n"),
            "pass must be a string, not a table",
        ),
        (
            format!("{ok}pass = 1979-05-27\n"),
            "pass must be a string, not a table or date",
        ),
        // Syntax errors on the pass line: unquoted, unterminated, a bad escape.
        (
            format!("{ok}pass = {SECRET}\n"),
            "invalid 'pass' value (not shown",
        ),
        (
            format!("{ok}pass = \"{SECRET}\n"),
            "invalid 'pass' value (not shown",
        ),
        (
            format!("{ok}  \"pass\"=\"{SECRET}\\q\"\n"),
            "invalid 'pass' value (not shown",
        ),
        // (reported where the string should have ended, in the toml crate's words, which
        // do not quote it)
        (
            format!("{ok}pass = '''{SECRET}\n"),
            "invalid multi-line literal string",
        ),
        (
            format!("{ok}pass = \"{SECRET}\"\npass = \"{SECRET}2\"\n"),
            "duplicate key",
        ),
        // Too long, or with a NUL.
        (
            format!("{ok}pass = \"{long}\"\n"),
            "passphrase is 24 bytes long",
        ),
        (
            format!("{ok}pass = \"{SECRET}\\u0000\"\n"),
            "passphrase contains a NUL byte",
        ),
    ];
    for (text, want) in &toml_cases {
        let c = check(&[("c.toml", text)]);
        let msgs = all_messages(&c);
        assert!(msgs.iter().any(|m| m.contains(want)), "{text}: {msgs:#?}");
        assert!(c.result.is_err(), "{text}");
        for m in &msgs {
            assert!(!m.contains(SECRET) && !m.contains("123456"), "{text}: {m}");
        }
    }
    let hostname_cases = [
        // A passphrase with a space, unquoted: the second word is not quoted back.
        (
            format!("inet 10.0.0.1/24 vhid 1 carpdev em0 pass x {SECRET}\n"),
            "unknown word after the passphrase",
        ),
        (
            format!("vhid 1 carpdev em0 pass x mtu {SECRET}\ninet 10.0.0.1/24\n"),
            "unknown word after the passphrase",
        ),
        (
            format!("inet 10.0.0.1/24 vhid 1 carpdev em0 pass \"{SECRET}\n"),
            "unterminated \" quote",
        ),
        (
            format!("inet 10.0.0.1/24 vhid 1 carpdev em0 pass {long}\n"),
            "passphrase is 24 bytes long",
        ),
    ];
    for (text, want) in &hostname_cases {
        let c = check(&[("hostname.carp0", text)]);
        let msgs = all_messages(&c);
        assert!(msgs.iter().any(|m| m.contains(want)), "{text}: {msgs:#?}");
        for m in &msgs {
            assert!(!m.contains(SECRET), "{text}: {m}");
        }
    }
    // A known word after the passphrase is read as usual.
    assert_eq!(
        summary(&one(
            "inet 10.0.0.1/24 vhid 1 pass x carpdev em0 advskew 7\n"
        )),
        "carp0 carpdev em0 vhid 1 advbase 1 advskew 7 pass x inet 10.0.0.1/24 up"
    );

    // The model, its Debug, and a reload's diff.
    let config = check(&[("c.toml", &format!("{ok}pass = \"{SECRET}\"\n"))])
        .result
        .unwrap();
    assert_eq!(
        config.interfaces[0].passphrase,
        Some(Passphrase::new(SECRET))
    );
    let debug = format!("{config:?} {config:#?}");
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(debug.contains("Passphrase(<redacted>)"), "{debug}");
    let mut changed = config.clone();
    changed.interfaces[0].passphrase = Some(Passphrase::new("other"));
    let d = diff(&config, &changed);
    assert_eq!(d.changed[0].fields, [Field::Passphrase]);
    assert!(!format!("{d:?}").contains(SECRET));
}

#[test]
fn pass_file_holds_the_passphrase_less_one_newline() {
    let dir = private_dir("pass-file");
    let iface = |extra: &str| {
        format!(
            "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\n\
             addresses = [\"10.0.0.1/24\"]\n{extra}"
        )
    };
    let key = private_file(&dir, "carp0.pass", &format!("{SECRET}\n"));
    let conf = private_file(
        &dir,
        "c.toml",
        &iface(&format!("pass_file = \"{}\"\n", key.display())),
    );
    let c = check_files(&[&conf], &exists);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    let config = c.result.unwrap();
    assert_eq!(
        config.interfaces[0].passphrase,
        Some(Passphrase::new(SECRET))
    );

    // Group- or world-readable: accepted, with a warning located at the key.
    let open = file_with_mode(&dir, "open.pass", SECRET, 0o644);
    let conf = private_file(
        &dir,
        "c.toml",
        &iface(&format!("pass_file = \"{}\"\n", open.display())),
    );
    let c = check_files(&[&conf], &exists);
    assert!(c.result.is_ok());
    assert_eq!(
        all_messages(&c),
        [format!(
            "{}:6: [interface carp0] key 'pass_file': warning: holds a passphrase and is \
             readable by group and others (mode 0644); make it readable by its owner only: \
             chmod 600 {}",
            conf.display(),
            open.display()
        )]
    );

    // Errors, each at the key's line, none quoting the file's content.
    let long = private_file(&dir, "long.pass", &format!("{SECRET}{SECRET}\n"));
    let missing = dir.join("missing.pass");
    let cases = [
        (
            format!("pass = \"x\"\npass_file = \"{}\"\n", key.display()),
            "key 'pass_file': 'pass' and 'pass_file' are both set; give the passphrase one way"
                .to_owned(),
        ),
        (
            "pass_file = \"carp0.pass\"\n".to_owned(),
            "key 'pass_file': pass_file must be an absolute path".to_owned(),
        ),
        (
            format!("pass_file = \"{}\"\n", missing.display()),
            format!(
                "key 'pass_file': cannot read pass_file {}: No such file or directory",
                missing.display()
            ),
        ),
        (
            format!("pass_file = \"{}\"\n", dir.display()),
            format!(
                "key 'pass_file': cannot read pass_file {}: not a regular file",
                dir.display()
            ),
        ),
        (
            format!("pass_file = \"{}\"\n", long.display()),
            "key 'pass_file': passphrase is 24 bytes long".to_owned(),
        ),
    ];
    for (extra, want) in cases {
        let conf = private_file(&dir, "c.toml", &iface(&extra));
        let c = check_files(&[&conf], &exists);
        let msgs = all_messages(&c);
        assert!(c.result.is_err(), "{extra}");
        assert!(
            msgs.iter()
                .any(|m| m.starts_with(&format!("{}:", conf.display())) && m.contains(&want)),
            "{extra}: {msgs:#?}"
        );
        assert!(msgs.iter().all(|m| !m.contains(SECRET)), "{msgs:#?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn configuration_files_holding_a_passphrase_should_be_private() {
    let dir = private_dir("modes");
    let with_pass = "inet 10.0.0.1/24 vhid 1 carpdev em0 pass x\n";
    let private = private_file(&dir, "hostname.carp0", with_pass);
    let c = check_files(&[&private], &exists);
    assert!(
        c.result.is_ok() && c.warnings.is_empty(),
        "{:?}",
        c.warnings
    );

    let open = file_with_mode(&dir, "hostname.carp0", with_pass, 0o640);
    let c = check_files(&[&open], &exists);
    assert!(c.result.is_ok(), "a warning, not an error");
    assert_eq!(
        all_messages(&c),
        [format!(
            "{0}: warning: holds a passphrase and is readable by group (mode 0640); make it \
             readable by its owner only: chmod 600 {0}",
            open.display()
        )]
    );

    // No passphrase in the file, nothing to hide (but the vhid has no passphrase).
    let no_pass = file_with_mode(
        &dir,
        "hostname.carp1",
        "inet 10.0.1.1/24 vhid 2 carpdev em0\n",
        0o644,
    );
    let c = check_files(&[&no_pass], &exists);
    assert_eq!(all_messages(&c).len(), 1);
    assert!(all_messages(&c)[0].contains("no passphrase"));

    // TOML alike; a pass_file reference is no secret itself.
    let toml = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\n\
                addresses = [\"10.0.0.1/24\"]\npass = \"x\"\n";
    let open = file_with_mode(&dir, "c.toml", toml, 0o604);
    let msgs = all_messages(&check_files(&[&open], &exists));
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(
        msgs[0].contains("readable by others (mode 0604)"),
        "{msgs:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checks_are_read_and_every_key_is_validated_with_its_line() {
    let iface = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\naddresses = [\"10.0.0.1/24\"]\npass = \"x\"\n";
    let good = format!(
        "{iface}[[check]]\nname = \"web\"\nhttp = \"http://127.0.0.1:8080/h\"\ninterval = 0.5\n\
         timeout = 1\nrise = 2\nfall = 3\nweight = 50\ngroup = \"web\"\n\
         [[check]]\nname = \"p\"\nprocess = \"nginx\"\n"
    );
    assert_eq!(
        errors(&[("c.toml", &good)]),
        vec![
            "c.toml:7: check 'web': no carp interface is in group 'web', so its demotion would reach none"
                .to_owned()
        ]
    );
    let good = good.replace("pass = \"x\"\n", "pass = \"x\"\ngroups = [\"web\"]\n");
    let c = check(&[("c.toml", &good)]).result.unwrap();
    assert_eq!(c.checks.len(), 2);
    let web = &c.checks[0];
    assert_eq!(
        web.probe,
        Probe::Http {
            authority: "127.0.0.1:8080".into(),
            path: "/h".into()
        }
    );
    assert_eq!(web.interval, std::time::Duration::from_millis(500));
    assert_eq!(web.timeout, std::time::Duration::from_secs(1));
    assert_eq!((web.rise, web.fall, web.weight), (2, 3, 50));
    assert_eq!(web.group, "web");
    let p = &c.checks[1];
    assert_eq!(p.probe, Probe::Process("nginx".into()));
    assert_eq!(
        (p.rise, p.fall, p.weight, p.group.as_str()),
        (1, 1, 1, "carp")
    );

    let bad = format!(
        "{iface}[[check]]\nname = \"a\"\ntcp = \"127.0.0.1\"\nweight = 0\ninterval = 0\n\
         [[check]]\nname = \"b\"\nexec = [\"rel\"]\nrise = 0\n\
         [[check]]\nname = \"c\"\nprocess = \"x\"\nfile = \"/f\"\n\
         [[check]]\nname = \"d\"\n\
         [[check]]\nname = \"a\"\nfile = \"/f\"\ngroup = \"bad group\"\n"
    );
    assert_eq!(
        errors(&[("c.toml", &bad)]),
        vec![
            "c.toml:9: [check a] key 'tcp': tcp '127.0.0.1': expected HOST:PORT",
            "c.toml:10: [check a] key 'weight': weight 0 is out of range: must be 1 to 255",
            "c.toml:11: [check a] key 'interval': interval 0 is out of range: must be 0.01 to 86400 seconds",
            "c.toml:14: [check b] key 'exec': exec program 'rel' must be an absolute path",
            "c.toml:15: [check b] key 'rise': rise 0 is out of range: must be 1 to 1000",
            "c.toml:19: [check c] key 'file': several probes (process, file): give exactly one",
            "c.toml:20: [check d] key 'name': no probe: give exactly one of exec, tcp, http, process, file, interface",
            "c.toml:25: [check a] key 'group': invalid group name 'bad group': contains whitespace or a control character",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    );
}

#[test]
fn check_names_are_unique_across_files() {
    let iface = "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 1\naddresses = [\"10.0.0.1/24\"]\npass = \"x\"\n";
    let a = format!("{iface}[[check]]\nname = \"up\"\ninterface = \"eth1\"\n");
    let b = "[[check]]\nname = \"up\"\nfile = \"/run/m\"\n";
    assert_eq!(
        errors(&[("a.toml", &a), ("b.toml", b)]),
        vec!["b.toml:1: check 'up' is also defined in a.toml:7".to_owned()]
    );
}
