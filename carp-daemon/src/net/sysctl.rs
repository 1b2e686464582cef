//! The sysctls that keep the kernel from answering for, announcing, or routing through a
//! virtual address, and their crash-safe restore.
//!
//! On the **carpdev** ([`CARPDEV_SETTINGS`]), whose previous values are restored:
//! - `ipv4 arp_ignore=1`: answer ARP only for addresses of the receiving interface. With
//!   the default 0 the carpdev answers for any local address, the virtual addresses on
//!   carpN included, with its own MAC, on a BACKUP too.
//! - `ipv4 arp_announce=2`: the sender address of ARP requests the carpdev sends is always
//!   one of its own, never a virtual address (the source of the packet that triggered the
//!   request may well be one), so neighbours never learn a virtual address with the
//!   carpdev's MAC.
//!
//! On **carpN** ([`CARP_INTERFACE_SETTINGS`]). carpd creates and deletes carpN, and its
//! sysctls go with it: nothing to record or restore. New interfaces inherit
//! `net.*.conf.default`, which an administrator may have changed, so every value that
//! matters is set explicitly:
//! - `ipv4 arp_ignore=8`: carpN's kernel answers no ARP request at all. Requests for the
//!   virtual addresses are the XDP program's (answered as master, dropped otherwise, before
//!   they reach carpN); nothing else is carpN's to answer. carpN is not NOARP (its kernel
//!   resolves neighbours, see the [module doc](super)), so without this it would answer, from
//!   the virtual MAC, for a virtual address XDP let through (one added by hand, not in the
//!   dataplane's maps); the egress guard would drop that answer on a BACKUP, not on a master.
//! - `ipv4 arp_announce=2`: ARP requests carpN sends when it resolves a neighbour name one
//!   of its own addresses as sender, never another interface's.
//! - `ipv4 arp_notify=0`: no gratuitous ARP from the virtual MAC when carpN comes up.
//! - `ipv4 rp_filter=0`: traffic for a virtual address arrives on carpN, but the route back
//!   to its sender goes through the carpdev; strict reverse-path filtering (1) drops it
//!   (ARP included: the request is checked too, seen while writing this). The kernel uses
//!   the larger of `all` and the interface's value, so 0 defers to `all`; if `all` is 1,
//!   carpN is deaf, which [`apply_carp_interface`] logs as a warning. Loose mode (2) works.
//! - `ipv4 promote_secondaries=1`: when the first address of a subnet is removed, the
//!   kernel would otherwise delete all the other (secondary) addresses of that subnet too.
//! - `ipv6 accept_dad=0`: no duplicate address detection (addresses have `IFA_F_NODAD`
//!   anyway; this also covers any address added by hand).
//! - `ipv6 ndisc_notify=0`: no unsolicited neighbour advertisements from the virtual MAC.
//! - `ipv6 accept_ra=0`: router advertisements would configure SLAAC addresses derived from
//!   the virtual MAC (`addrgenmode none` does not stop that) and a default route via carpN.
//! - `ipv6 forwarding=0`: with forwarding on, the kernel puts the subnet-router anycast
//!   address of every prefix on carpN, joins its solicited-node group and answers
//!   solicitations for it from the virtual MAC. Packet forwarding is decided by
//!   `net.ipv6.conf.all.forwarding`, not by the receiving interface's value, so a router
//!   keeps forwarding. Writing `all.forwarding` later copies its value to every interface,
//!   carpN included.
//!
//! # The restore file
//!
//! `<state_dir>/sysctl-restore.json` lists the carpdev sysctls carpd changed with the value
//! each had before carpd first touched it. It is written (atomically: temporary file,
//! fsync, rename) *before* any value is changed, so a crash at any point leaves a record
//! of every change made. [`restore_leftover`] writes the recorded values back and deletes
//! the file; carpd calls it at start (a crashed run's changes are undone before new ones
//! are made, so the record holds the administrator's values, not carpd's) and at exit.
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::NetError;

/// Name of the restore file in the state directory.
pub const RESTORE_FILE: &str = "sysctl-restore.json";

const PROC_SYS: &str = "/proc/sys";

/// One `net.<family>.conf.<interface>.<key> = value` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// `ipv4` or `ipv6`.
    pub family: &'static str,
    pub key: &'static str,
    pub value: &'static str,
}

const fn set(family: &'static str, key: &'static str, value: &'static str) -> Setting {
    Setting { family, key, value }
}

/// What carpd sets on a carpdev (see the module doc for why).
pub const CARPDEV_SETTINGS: &[Setting] = &[
    set("ipv4", "arp_ignore", "1"),
    set("ipv4", "arp_announce", "2"),
];

/// What carpd sets on a carp interface before giving it addresses (see the module doc).
pub const CARP_INTERFACE_SETTINGS: &[Setting] = &[
    set("ipv4", "arp_ignore", "8"),
    set("ipv4", "arp_announce", "2"),
    set("ipv4", "arp_notify", "0"),
    set("ipv4", "rp_filter", "0"),
    set("ipv4", "promote_secondaries", "1"),
    set("ipv6", "accept_dad", "0"),
    set("ipv6", "ndisc_notify", "0"),
    set("ipv6", "accept_ra", "0"),
    set("ipv6", "forwarding", "0"),
];

/// Sets [`CARPDEV_SETTINGS`] on `carpdev`, recording each previous value in the restore
/// file first. A value already recorded (a second carp interface on the same carpdev) keeps
/// its first record; a value that already is what carpd wants is neither recorded nor
/// written.
pub fn apply_carpdev(state_dir: &Path, carpdev: &str) -> Result<(), NetError> {
    apply_at(
        Path::new(PROC_SYS),
        Some(state_dir),
        carpdev,
        CARPDEV_SETTINGS,
    )
}

/// Sets [`CARP_INTERFACE_SETTINGS`] on the carp interface `carp_ifname`, which must exist.
/// Nothing is recorded (`state_dir` is not written): the settings go with the interface.
/// Warns if `net.ipv4.conf.all.rp_filter` is 1, which makes carpN drop what it receives.
pub fn apply_carp_interface(state_dir: &Path, carp_ifname: &str) -> Result<(), NetError> {
    let _ = state_dir;
    let root = Path::new(PROC_SYS);
    apply_at(root, None, carp_ifname, CARP_INTERFACE_SETTINGS)?;
    if read_value(&root.join("net/ipv4/conf/all/rp_filter"))
        .ok()
        .as_deref()
        == Some("1")
    {
        tracing::warn!(
            interface = carp_ifname,
            "net.ipv4.conf.all.rp_filter is 1 (strict): traffic for the virtual addresses \
             arrives on the carp interface but is routed back via the carpdev, so the kernel \
             drops it; set it to 2 (loose) or 0"
        );
    }
    Ok(())
}

/// Writes back every value the restore file in `state_dir` records, then deletes the file.
/// No file: nothing to do. A value whose interface is gone is skipped. If a value cannot
/// be written, the others still are, the file is kept for a later attempt, and the first
/// error is returned.
pub fn restore_leftover(state_dir: &Path) -> Result<(), NetError> {
    restore_at(Path::new(PROC_SYS), state_dir)
}

/// Whether `ifname` has IPv6: the kernel has it (no `ipv6.disable=1`) and the interface's
/// `disable_ipv6` is 0. The carp interface gets its IPv6 link-local address only then; with
/// IPv6 off an IPv4-only carp interface works as before.
pub fn ipv6_enabled(ifname: &str) -> bool {
    ipv6_enabled_at(Path::new(PROC_SYS), ifname)
}

fn ipv6_enabled_at(root: &Path, ifname: &str) -> bool {
    relative_path(ifname, ("ipv6", "disable_ipv6"))
        .ok()
        .and_then(|rel| read_value(&root.join(rel)).ok())
        .is_some_and(|v| v == "0")
}

/// The current value of `net.<family>.conf.<ifname>.<key>`, as /proc/sys shows it to the
/// calling thread (sysctls under `net` are those of the thread's network namespace).
pub fn read(family: &str, ifname: &str, key: &str) -> Result<String, NetError> {
    let path = Path::new(PROC_SYS).join(relative_path(ifname, (family, key))?);
    read_value(&path).map_err(|source| NetError::Sysctl {
        path,
        what: "reading",
        source,
    })
}

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct RestoreRecord {
    /// Paths relative to /proc/sys (e.g. `net/ipv4/conf/eth0/arp_ignore`) and their values
    /// before carpd changed them. Paths, not dotted names: interface names may hold dots.
    entries: Vec<SavedValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct SavedValue {
    path: String,
    value: String,
}

fn relative_path(ifname: &str, (family, key): (&str, &str)) -> Result<String, NetError> {
    // Interface names cannot contain '/', and "." and ".." are not interface names; refuse
    // anything that would leave /proc/sys/net/<family>/conf.
    if ifname.is_empty() || ifname.contains('/') || ifname == "." || ifname == ".." {
        return Err(NetError::Sysctl {
            path: PathBuf::from(format!("net/{family}/conf/{ifname}/{key}")),
            what: "refusing an invalid interface name",
            source: io::Error::from(io::ErrorKind::InvalidInput),
        });
    }
    Ok(format!("net/{family}/conf/{ifname}/{key}"))
}

fn read_value(path: &Path) -> io::Result<String> {
    Ok(std::fs::read_to_string(path)?.trim().to_owned())
}

fn write_value(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
}

/// The settings of `ifname` that differ from what `settings` want, with their current
/// values. IPv6 settings are skipped when the kernel has no IPv6 (`ipv6.disable=1`).
fn pending(
    root: &Path,
    ifname: &str,
    settings: &[Setting],
) -> Result<Vec<(String, Setting, String)>, NetError> {
    let mut out = Vec::new();
    for s in settings {
        if !root.join("net").join(s.family).exists() {
            continue;
        }
        let rel = relative_path(ifname, (s.family, s.key))?;
        let path = root.join(&rel);
        let current = read_value(&path).map_err(|source| NetError::Sysctl {
            path: path.clone(),
            what: "reading",
            source,
        })?;
        if current != s.value {
            out.push((rel, *s, current));
        }
    }
    Ok(out)
}

/// Applies `settings` to `ifname` under the sysctl tree `root`, first recording the old
/// values in `record_in`'s restore file if given.
fn apply_at(
    root: &Path,
    record_in: Option<&Path>,
    ifname: &str,
    settings: &[Setting],
) -> Result<(), NetError> {
    let changes = pending(root, ifname, settings)?;
    if changes.is_empty() {
        return Ok(());
    }
    if let Some(state_dir) = record_in {
        let file = state_dir.join(RESTORE_FILE);
        let mut record = load_record(&file)?.unwrap_or_default();
        let before = record.entries.len();
        for (rel, _, current) in &changes {
            if !record.entries.iter().any(|e| &e.path == rel) {
                record.entries.push(SavedValue {
                    path: rel.clone(),
                    value: current.clone(),
                });
            }
        }
        if record.entries.len() != before {
            store_record(&file, &record)?;
        }
    }
    for (rel, setting, _) in &changes {
        let path = root.join(rel);
        write_value(&path, setting.value).map_err(|source| NetError::Sysctl {
            path,
            what: "writing",
            source,
        })?;
    }
    Ok(())
}

fn restore_at(root: &Path, state_dir: &Path) -> Result<(), NetError> {
    let file = state_dir.join(RESTORE_FILE);
    let Some(record) = load_record(&file)? else {
        return Ok(());
    };
    let mut first_error = None;
    for entry in &record.entries {
        let path = root.join(&entry.path);
        match write_value(&path, &entry.value) {
            Ok(()) => {}
            // The interface is gone, and its settings with it.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(path = %path.display(), "sysctl to restore no longer exists");
            }
            Err(source) => {
                tracing::warn!(path = %path.display(), error = %source, "restoring sysctl");
                first_error.get_or_insert(NetError::Sysctl {
                    path,
                    what: "restoring",
                    source,
                });
            }
        }
    }
    if let Some(err) = first_error {
        return Err(err);
    }
    std::fs::remove_file(&file).map_err(|source| NetError::RestoreFile {
        path: file,
        what: "removing",
        source,
    })
}

fn load_record(file: &Path) -> Result<Option<RestoreRecord>, NetError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NetError::RestoreFile {
                path: file.to_owned(),
                what: "reading",
                source,
            });
        }
    };
    // Written atomically, so a file that does not parse was edited by hand: say so rather
    // than guess (restoring half of it, or dropping it, could leave the host changed).
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| NetError::RestoreFile {
            path: file.to_owned(),
            what: "parsing",
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
}

/// Replaces the restore file atomically: a crash leaves the old file or the new one.
fn store_record(file: &Path, record: &RestoreRecord) -> Result<(), NetError> {
    let tmp = file.with_extension("json.tmp");
    let err = |what| {
        move |source| NetError::RestoreFile {
            path: file.to_owned(),
            what,
            source,
        }
    };
    let text = serde_json::to_string_pretty(record)
        .map_err(io::Error::other)
        .map_err(err("encoding"))?;
    let mut f = std::fs::File::create(&tmp).map_err(err("creating the temporary file"))?;
    f.write_all(text.as_bytes()).map_err(err("writing"))?;
    f.sync_all().map_err(err("syncing"))?;
    std::fs::rename(&tmp, file).map_err(err("renaming into place"))?;
    // The rename itself must reach the disk before sysctls change.
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err("syncing the state directory"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The logic on a fake /proc/sys tree (no privileges needed); the real thing, inside a
    //! network namespace, is tested in `testns`-based tests below.
    use super::*;
    use crate::net::testns::TempDir;

    fn fake_proc(dev: &str, values: &[(&str, &str, &str)]) -> TempDir {
        let root = TempDir::new("sysctl-root");
        for (family, key, value) in values {
            let dir = root.path().join(format!("net/{family}/conf/{dev}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(key), format!("{value}\n")).unwrap();
        }
        root
    }

    fn value(root: &Path, dev: &str, key: &str) -> String {
        read_value(&root.join(format!("net/ipv4/conf/{dev}/{key}"))).unwrap()
    }

    #[test]
    fn apply_records_originals_once_and_restore_puts_them_back() {
        let root = fake_proc(
            "eth0",
            &[("ipv4", "arp_ignore", "0"), ("ipv4", "arp_announce", "0")],
        );
        let state = TempDir::new("sysctl-state");
        apply_at(root.path(), Some(state.path()), "eth0", CARPDEV_SETTINGS).unwrap();
        assert_eq!(value(root.path(), "eth0", "arp_ignore"), "1");
        assert_eq!(value(root.path(), "eth0", "arp_announce"), "2");
        // A second carp interface on the same carpdev: the record keeps the originals.
        apply_at(root.path(), Some(state.path()), "eth0", CARPDEV_SETTINGS).unwrap();
        let record = load_record(&state.path().join(RESTORE_FILE))
            .unwrap()
            .unwrap();
        assert_eq!(
            record.entries,
            vec![
                SavedValue {
                    path: "net/ipv4/conf/eth0/arp_ignore".into(),
                    value: "0".into()
                },
                SavedValue {
                    path: "net/ipv4/conf/eth0/arp_announce".into(),
                    value: "0".into()
                },
            ]
        );
        restore_at(root.path(), state.path()).unwrap();
        assert_eq!(value(root.path(), "eth0", "arp_ignore"), "0");
        assert_eq!(value(root.path(), "eth0", "arp_announce"), "0");
        assert!(!state.path().join(RESTORE_FILE).exists());
        restore_at(root.path(), state.path()).unwrap(); // nothing left: no-op
    }

    #[test]
    fn values_already_right_are_not_recorded() {
        let root = fake_proc(
            "eth0",
            &[("ipv4", "arp_ignore", "1"), ("ipv4", "arp_announce", "0")],
        );
        let state = TempDir::new("sysctl-state");
        apply_at(root.path(), Some(state.path()), "eth0", CARPDEV_SETTINGS).unwrap();
        let record = load_record(&state.path().join(RESTORE_FILE))
            .unwrap()
            .unwrap();
        assert_eq!(record.entries.len(), 1);
        assert_eq!(record.entries[0].path, "net/ipv4/conf/eth0/arp_announce");
    }

    #[test]
    fn nothing_changes_when_the_record_cannot_be_written() {
        let root = fake_proc(
            "eth0",
            &[("ipv4", "arp_ignore", "0"), ("ipv4", "arp_announce", "0")],
        );
        let state = TempDir::new("sysctl-state");
        // A state "directory" that is a file: the record cannot be created.
        let not_a_dir = state.path().join("file");
        std::fs::write(&not_a_dir, "").unwrap();
        let err = apply_at(root.path(), Some(&not_a_dir), "eth0", CARPDEV_SETTINGS).unwrap_err();
        assert!(matches!(err, NetError::RestoreFile { .. }), "{err}");
        assert_eq!(value(root.path(), "eth0", "arp_ignore"), "0");
        assert_eq!(value(root.path(), "eth0", "arp_announce"), "0");
    }

    #[test]
    fn restore_skips_vanished_interfaces_and_keeps_file_on_error() {
        let root = fake_proc("eth0", &[("ipv4", "arp_ignore", "1")]);
        let state = TempDir::new("sysctl-state");
        let record = RestoreRecord {
            entries: vec![
                SavedValue {
                    path: "net/ipv4/conf/gone0/arp_ignore".into(),
                    value: "0".into(),
                },
                SavedValue {
                    path: "net/ipv4/conf/eth0/arp_ignore".into(),
                    value: "0".into(),
                },
            ],
        };
        store_record(&state.path().join(RESTORE_FILE), &record).unwrap();
        restore_at(root.path(), state.path()).unwrap();
        assert_eq!(value(root.path(), "eth0", "arp_ignore"), "0");

        // An entry that cannot be written (a directory in the way): error, file kept.
        std::fs::create_dir_all(root.path().join("net/ipv4/conf/eth0/blocked")).unwrap();
        let record = RestoreRecord {
            entries: vec![
                SavedValue {
                    path: "net/ipv4/conf/eth0/blocked".into(),
                    value: "0".into(),
                },
                SavedValue {
                    path: "net/ipv4/conf/eth0/arp_ignore".into(),
                    value: "5".into(),
                },
            ],
        };
        store_record(&state.path().join(RESTORE_FILE), &record).unwrap();
        let err = restore_at(root.path(), state.path()).unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
        assert_eq!(
            value(root.path(), "eth0", "arp_ignore"),
            "5",
            "the others are restored"
        );
        assert!(state.path().join(RESTORE_FILE).exists());
    }

    #[test]
    fn a_hand_edited_record_is_an_error_not_a_guess() {
        let state = TempDir::new("sysctl-state");
        std::fs::write(
            state.path().join(RESTORE_FILE),
            "net.ipv4.conf.eth0.arp_ignore = 0",
        )
        .unwrap();
        let err = restore_at(Path::new("/nonexistent"), state.path()).unwrap_err();
        assert!(
            matches!(
                err,
                NetError::RestoreFile {
                    what: "parsing",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn interface_names_cannot_escape_proc_sys() {
        let root = fake_proc("eth0", &[("ipv4", "arp_ignore", "0")]);
        for bad in ["", ".", "..", "../../../etc", "a/b"] {
            assert!(
                apply_at(root.path(), None, bad, CARPDEV_SETTINGS).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ipv6_is_enabled_only_with_disable_ipv6_zero() {
        let on = fake_proc("carp1", &[("ipv6", "disable_ipv6", "0")]);
        assert!(ipv6_enabled_at(on.path(), "carp1"));
        assert!(!ipv6_enabled_at(on.path(), "carp2"), "no such interface");
        let off = fake_proc("carp1", &[("ipv6", "disable_ipv6", "1")]);
        assert!(!ipv6_enabled_at(off.path(), "carp1"));
        let no_ipv6 = fake_proc("carp1", &[("ipv4", "arp_ignore", "0")]);
        assert!(!ipv6_enabled_at(no_ipv6.path(), "carp1"), "ipv6.disable=1");
    }

    #[test]
    fn ipv6_settings_are_skipped_without_ipv6() {
        let root = fake_proc(
            "carp1",
            &[
                ("ipv4", "arp_ignore", "0"),
                ("ipv4", "arp_announce", "0"),
                ("ipv4", "arp_notify", "0"),
                ("ipv4", "rp_filter", "1"),
                ("ipv4", "promote_secondaries", "0"),
            ],
        );
        apply_at(root.path(), None, "carp1", CARP_INTERFACE_SETTINGS).unwrap();
        assert_eq!(value(root.path(), "carp1", "rp_filter"), "0");
        assert_eq!(value(root.path(), "carp1", "promote_secondaries"), "1");
    }
}

/// Root-only tests on the real /proc/sys, each in a fresh network namespace.
#[cfg(test)]
mod netns_tests {
    use super::*;
    use crate::net::NetHandle;
    use crate::net::link::netns_tests::carpdev;
    use crate::net::testns::{TempDir, in_netns, ip, sysctl_via_ip_netns_exec};
    use carp_common::wire::virtual_mac;

    #[test]
    fn proc_sys_net_and_thread_self_net_follow_the_threads_namespace() {
        in_netns("proc_sys_net_follows_the_thread", |ns| async move {
            ip(
                &ns,
                &[
                    "link",
                    "add",
                    "cnsprobe0",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "cnsprobe1",
                ],
            );
            // /proc/sys/net as this thread sees it is the namespace's...
            std::fs::write("/proc/sys/net/ipv4/conf/cnsprobe0/arp_ignore", "2").unwrap();
            assert_eq!(read("ipv4", "cnsprobe0", "arp_ignore").unwrap(), "2");
            // ...as an independent process entering the namespace confirms.
            let key = "net.ipv4.conf.cnsprobe0.arp_ignore";
            assert_eq!(sysctl_via_ip_netns_exec(&ns, key), "2");
            // /proc/thread-self/net is this thread's too; /proc/net (= /proc/self/net) is
            // the main thread's, in the root namespace.
            let own = std::fs::read_to_string("/proc/thread-self/net/dev").unwrap();
            let main = std::fs::read_to_string("/proc/self/net/dev").unwrap();
            assert!(own.contains("cnsprobe0:"), "{own}");
            assert!(!main.contains("cnsprobe0:"), "{main}");
        });
    }

    fn carpdev_values(ns: &str) -> (String, String) {
        (
            sysctl_via_ip_netns_exec(ns, "net.ipv4.conf.cdev.arp_ignore"),
            sysctl_via_ip_netns_exec(ns, "net.ipv4.conf.cdev.arp_announce"),
        )
    }

    fn recorded(state: &Path) -> Vec<(String, String)> {
        let record = load_record(&state.join(RESTORE_FILE))
            .unwrap()
            .expect("a restore file");
        record
            .entries
            .into_iter()
            .map(|e| (e.path, e.value))
            .collect()
    }

    #[test]
    fn carpdev_settings_are_restored_also_after_a_crash() {
        in_netns("carpdev_sysctls_restore", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            carpdev(&ns, &net).await;
            // The administrator's values, distinct from both the defaults and carpd's.
            std::fs::write("/proc/sys/net/ipv4/conf/cdev/arp_ignore", "3").unwrap();
            std::fs::write("/proc/sys/net/ipv4/conf/cdev/arp_announce", "1").unwrap();
            let admin = ("3".to_owned(), "1".to_owned());
            let state = TempDir::new("sysctl-netns");
            let originals = vec![
                ("net/ipv4/conf/cdev/arp_ignore".to_owned(), "3".to_owned()),
                ("net/ipv4/conf/cdev/arp_announce".to_owned(), "1".to_owned()),
            ];

            apply_carpdev(state.path(), "cdev").unwrap();
            assert_eq!(carpdev_values(&ns), ("1".into(), "2".into()));
            assert_eq!(recorded(state.path()), originals);
            // A second carp interface on the same carpdev: the record still holds the
            // administrator's values, not carpd's.
            apply_carpdev(state.path(), "cdev").unwrap();
            assert_eq!(recorded(state.path()), originals);

            // carpd crashes here: nothing restored. The next start restores first...
            restore_leftover(state.path()).unwrap();
            assert_eq!(carpdev_values(&ns), admin);
            assert!(!state.path().join(RESTORE_FILE).exists());
            // ...so applying again records the administrator's values once more.
            apply_carpdev(state.path(), "cdev").unwrap();
            assert_eq!(recorded(state.path()), originals);
            assert_eq!(carpdev_values(&ns), ("1".into(), "2".into()));

            // Clean exit.
            restore_leftover(state.path()).unwrap();
            assert_eq!(carpdev_values(&ns), admin);
        });
    }

    #[test]
    fn carp_interface_settings_stop_anycast_and_record_nothing() {
        in_netns("carp_interface_sysctls", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            // A router: writing all.forwarding copies it to every existing interface.
            std::fs::write("/proc/sys/net/ipv6/conf/all/forwarding", "1").unwrap();
            let ifindex = net
                .create_carp_interface("carp1", cdev.ifindex, virtual_mac(1))
                .await
                .unwrap();
            let state = TempDir::new("sysctl-netns");
            apply_carp_interface(state.path(), "carp1").unwrap();
            for s in CARP_INTERFACE_SETTINGS {
                let key = format!("net.{}.conf.carp1.{}", s.family, s.key);
                assert_eq!(sysctl_via_ip_netns_exec(&ns, &key), s.value, "{key}");
            }
            assert_eq!(
                std::fs::read_dir(state.path()).unwrap().count(),
                0,
                "nothing recorded"
            );

            net.set_up(ifindex, true).await.unwrap();
            net.add_address(ifindex, "2001:db8::10".parse().unwrap(), 64)
                .await
                .unwrap();
            // Control: the carpdev, forwarding, holds the subnet-router anycast address of
            // its prefix; carp1 (forwarding=0) does not.
            ip(
                &ns,
                &[
                    "-6",
                    "addr",
                    "add",
                    "2001:db8::1/64",
                    "dev",
                    "cdev",
                    "nodad",
                ],
            );
            let anycast = std::fs::read_to_string("/proc/thread-self/net/anycast6").unwrap();
            let subnet_router = "20010db8000000000000000000000000";
            assert!(
                anycast
                    .lines()
                    .any(|l| l.contains(" cdev ") && l.contains(subnet_router)),
                "{anycast}"
            );
            assert!(!anycast.contains(" carp1 "), "{anycast}");
        });
    }
}

/// The receive path end to end: a peer host in a second namespace talks to a virtual
/// address.
#[cfg(test)]
mod traffic_tests {
    use super::*;
    use crate::net::NetHandle;
    use crate::net::link::netns_tests::carpdev;
    use crate::net::testns::{TempDir, TestNs, in_netns, ip, netns_exec_ok};
    use carp_common::wire::virtual_mac;

    #[test]
    fn kernel_never_answers_arp_for_a_virtual_address_but_accepts_its_traffic() {
        in_netns("virtual_address_traffic", |ns| async move {
            let net = NetHandle::new().await.unwrap();
            let cdev = carpdev(&ns, &net).await;
            let peer = TestNs::create();
            let host = peer.name();
            ip(&ns, &["link", "set", "cpeer", "netns", host]);
            ip(host, &["addr", "add", "192.0.2.1/24", "dev", "cpeer"]);
            ip(host, &["link", "set", "cpeer", "up"]);
            ip(&ns, &["addr", "add", "192.0.2.2/24", "dev", "cdev"]);

            let state = TempDir::new("traffic");
            apply_carpdev(state.path(), "cdev").unwrap();
            let vmac = virtual_mac(1);
            let ifindex = net
                .create_carp_interface("carp1", cdev.ifindex, vmac)
                .await
                .unwrap();
            apply_carp_interface(state.path(), "carp1").unwrap();
            net.add_address(ifindex, "192.0.2.10".parse().unwrap(), 24)
                .await
                .unwrap();
            net.set_up(ifindex, true).await.unwrap();
            let ping = ["ping", "-c1", "-W1", "192.0.2.10"];

            // No XDP here: nobody answers ARP for the virtual address. Not the carpdev
            // (arp_ignore=1), not carp1 (arp_ignore=8). The peer's resolution fails.
            assert!(
                !netns_exec_ok(host, &ping),
                "the kernel answered ARP for the VIP"
            );
            let neigh = ip(host, &["neigh", "show", "192.0.2.10"]);
            assert!(!neigh.contains("lladdr"), "{neigh}");

            // What the XDP program's ARP reply would teach the peer: the virtual MAC.
            let vmac_text = "00:00:5e:00:01:01";
            ip(
                host,
                &[
                    "neigh",
                    "replace",
                    "192.0.2.10",
                    "lladdr",
                    vmac_text,
                    "dev",
                    "cpeer",
                ],
            );
            assert!(
                netns_exec_ok(host, &ping),
                "traffic to the VIP via carp1 not answered"
            );

            // Strict reverse-path filtering in `all` overrides carp1's 0 and drops what
            // arrives on carp1 (the route back is via cdev): why carpd warns about it.
            std::fs::write("/proc/sys/net/ipv4/conf/all/rp_filter", "1").unwrap();
            assert!(
                !netns_exec_ok(host, &ping),
                "strict rp_filter should drop it"
            );
            std::fs::write("/proc/sys/net/ipv4/conf/all/rp_filter", "2").unwrap();
            assert!(
                netns_exec_ok(host, &ping),
                "loose rp_filter lets it through"
            );
        });
    }
}
