use std::path::{Path, PathBuf};

use super::*;

fn exists(name: &str) -> bool {
    matches!(name, "eth0" | "em0" | "eth1")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn tmpdir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("carpd-config-{}-{tag}", std::process::id()))
}

fn one(text: &str) -> Result<CarpInterface, ConfigError> {
    let dir = tmpdir(&format!(
        "{:x}",
        text.len() * 31 + text.bytes().map(usize::from).sum::<usize>()
    ));
    let p = write(&dir, "hostname.carp0", text);
    let r = load(&[p], &exists).map(|mut c| c.interfaces.remove(0));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn messages(e: ConfigError) -> Vec<String> {
    e.problems.into_iter().map(|p| p.to_string()).collect()
}

#[test]
fn openbsd_examples_parse_unchanged() {
    let i = one("inet 10.0.0.1 255.255.255.0 vhid 1 pass SeCrEt carpdev em0 advbase 1 advskew 0\n")
        .unwrap();
    assert_eq!(
        (
            i.name.as_str(),
            i.carpdev.as_str(),
            i.vhid,
            i.advbase,
            i.advskew
        ),
        ("carp0", "em0", 1, 1, 0)
    );
    assert_eq!(i.passphrase.as_deref(), Some("SeCrEt"));
    assert_eq!(
        i.ipv4,
        vec![Addr4 {
            addr: "10.0.0.1".parse().unwrap(),
            prefix_len: 24
        }]
    );

    let i = one("inet 192.0.2.10 255.255.255.0 192.0.2.255 vhid 1 carpdev em0 pass SeCrEt advskew 100\ninet6 2001:db8::10 64\n").unwrap();
    assert_eq!(i.advskew, 100);
    assert_eq!(
        i.ipv6,
        vec![Addr6 {
            addr: "2001:db8::10".parse().unwrap(),
            prefix_len: 64
        }]
    );

    let i = one("vhid 1 carpdev em0 pass SeCrEt advskew 100\ninet 192.0.2.10 255.255.255.0\ninet6 2001:db8::10 64\n# comment\n\ngroup web\nstate backup\ndown\n").unwrap();
    assert_eq!(i.groups, vec!["web".to_owned()]);
    assert_eq!(i.initial_state, Some(ForcedState::Backup));
    assert!(!i.up);
}

#[test]
fn other_accepted_forms() {
    let i = one("inet 192.0.2.10/24 vhid 2 carpdev eth0\ninet alias 192.0.2.11 0xffffff00 NONE\ninet6 alias 2001:db8::11/64\ninet6 2001:db8::12 prefixlen 64\ndescription \"front end\"\n!echo hi\n").unwrap();
    assert_eq!(i.ipv4.len(), 2);
    assert_eq!(i.ipv4[1].prefix_len, 24);
    assert_eq!(i.ipv6.len(), 2);
}

#[test]
fn every_error_names_file_and_line() {
    let cases = [
        (
            "inet 192.0.2.1 255.255.255.0 vhid 300 carpdev eth0\n",
            "vhid 300: out of range (1-255)",
        ),
        (
            "inet 192.0.2.1 255.255.255.0 vhid 0 carpdev eth0\n",
            "vhid 0: out of range (1-255)",
        ),
        (
            "inet 192.0.2.1 255.255.255.0 vhid 1 advskew 255 carpdev eth0\n",
            "advskew 255: out of range (0-254)",
        ),
        (
            "inet 192.0.2.1 255.255.255.0 vhid 1 advbase 256 carpdev eth0\n",
            "advbase 256: out of range (0-255)",
        ),
        (
            "inet 192.0.2.1 vhid 1 carpdev eth0\n",
            "netmask vhid: not a netmask",
        ),
        (
            "inet 192.0.2.1\n",
            "inet 192.0.2.1: address without netmask",
        ),
        (
            "inet6 2001:db8::1\nvhid 1 carpdev eth0\n",
            "inet6 2001:db8::1: address without prefix length",
        ),
        (
            "inet 192.0.2.1 255.0.255.0 vhid 1 carpdev eth0\n",
            "netmask 255.0.255.0: not contiguous",
        ),
        (
            "inet 192.0.2.1/24 vhid 1 carpdev eth0 pass 01234567890123456789\n",
            "pass: 20 bytes is longer than OpenBSD allows (19)",
        ),
        (
            "inet 192.0.2.1/24 vhid 1 carpdev eth0 frobnicate\n",
            "unknown keyword 'frobnicate'",
        ),
        (
            "inet 192.0.2.1/24 vhid x carpdev eth0\n",
            "vhid x: not a number",
        ),
        ("dhcp\n", "dhcp: a carp interface takes fixed addresses"),
        (
            "inet 192.0.2.1/24 vhid 1 carpdev eth0 state sleepy\n",
            "state sleepy: must be master or backup",
        ),
    ];
    for (text, want) in cases {
        let msgs = messages(one(text).unwrap_err());
        assert!(
            msgs.iter()
                .any(|m| m.contains("hostname.carp0:") && m.ends_with(want)),
            "{text:?}: {msgs:?}"
        );
    }
}

#[test]
fn cross_checks() {
    let cases = [
        (
            "inet 192.0.2.1/24 vhid 1 carpdev eth9\n",
            "carpdev eth9: no such interface",
        ),
        ("inet 192.0.2.1/24 vhid 1\n", "no carpdev"),
        ("inet 192.0.2.1/24 carpdev eth0\n", "no vhid (vhid 1-255)"),
        (
            "vhid 1 carpdev eth0\n",
            "no address: a carp interface needs at least one inet or inet6 address",
        ),
        (
            "inet6 fe80::1 64 vhid 1 carpdev eth0\n",
            "fe80::1: link-local addresses cannot be virtual addresses",
        ),
    ];
    for (text, want) in cases {
        let msgs = messages(one(text).unwrap_err());
        assert!(msgs.iter().any(|m| m.ends_with(want)), "{text:?}: {msgs:?}");
    }
    // One vhid twice on one carpdev; one address on two interfaces; all problems reported.
    let dir = tmpdir("dup");
    let a = write(
        &dir,
        "hostname.carp0",
        "inet 192.0.2.1/24 vhid 1 carpdev eth0\n",
    );
    let b = write(
        &dir,
        "hostname.carp1",
        "inet 192.0.2.1/24 vhid 1 carpdev eth0\n",
    );
    let msgs = messages(load(&[a, b], &exists).unwrap_err());
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("vhid 1 on eth0 is also used by carp0")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("address 192.0.2.1 is also on carp0")),
        "{msgs:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_example_files_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let c = load(&[root.join("carpd.toml")], &exists).unwrap();
    assert_eq!(c.interfaces.len(), 1);
    assert_eq!(c.daemon.metrics, Some("127.0.0.1:9712".parse().unwrap()));
    assert_eq!(c.daemon.hooks, vec![PathBuf::from("/etc/carp/notify.sh")]);
    let i = &c.interfaces[0];
    assert_eq!((i.vhid, i.ipv4.len(), i.ipv6.len()), (1, 1, 1));
    let c = load(&[root.join("hostname.carp0")], &exists).unwrap();
    assert_eq!(c.interfaces[0].advskew, 100);
    assert_eq!(c.interfaces[0].groups, vec!["web".to_owned()]);
}

#[test]
fn toml_errors_name_the_key() {
    let dir = tmpdir("toml");
    let p = write(
        &dir,
        "c.toml",
        "[[interface]]\nname = \"carp0\"\ncarpdev = \"eth0\"\nvhid = 300\nadvskew = 255\naddresses = [\"192.0.2.1\"]\n",
    );
    let msgs = messages(load(&[p], &exists).unwrap_err());
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("[interface carp0] key 'vhid': 300 is out of range (1-255)")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.ends_with("[interface carp0] key 'advskew': 255 is out of range (0-254)")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains("address without prefix length")),
        "{msgs:?}"
    );
    let p = write(&dir, "d.toml", "[daemon]\npreemt = true\n");
    let msgs = messages(load(&[p], &exists).unwrap_err());
    assert!(msgs.iter().any(|m| m.contains("preemt")), "{msgs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

proptest::proptest! {
    #[test]
    fn hostname_parser_never_panics(text in ".{0,200}") {
        let _ = hostname::parse(Path::new("hostname.carp0"), "carp0", &text);
    }
}
