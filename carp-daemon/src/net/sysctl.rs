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
//!
//! Whoever can write that file chooses what root writes under /proc/sys, so it is trusted
//! only as far as it has to be:
//! - The state directory must be a directory (not a symbolic link) owned by root or by
//!   carpd's own user and writable by its owner only; so must the file. Otherwise nothing
//!   is read, recorded or restored, and the error says why.
//! - Every entry must be `net/ipv4/conf/<interface>/<key>` or
//!   `net/ipv6/conf/<interface>/<key>` (an interface name the kernel would accept, other
//!   than `all` and `default`; a key of `[a-z0-9_]`), with a short printable value. One
//!   entry that is not refuses the whole file before anything is written.
//! - No symbolic link is followed: the file, its temporary and the /proc/sys files are
//!   opened with `O_NOFOLLOW` (and the checked paths have no `..` to climb out with).
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
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

/// Longest value accepted from the restore file (sysctl values carpd records are small
/// integers).
const VALUE_MAX: usize = 64;

/// Why `path`, an entry of the restore file, is not one carpd could have written: only
/// `net/{ipv4,ipv6}/conf/<interface>/<key>` are.
fn check_entry_path(path: &str) -> Result<(), String> {
    let shape = || {
        format!(
            "path '{}' is not net/ipv4/conf/<interface>/<key> or net/ipv6/conf/<interface>/<key>",
            path.escape_default()
        )
    };
    let parts: Vec<&str> = path.split('/').collect();
    let [net, family, conf, ifname, key] = parts[..] else {
        return Err(shape());
    };
    if net != "net" || !matches!(family, "ipv4" | "ipv6") || conf != "conf" {
        return Err(shape());
    }
    // The kernel's dev_valid_name(); "all" and "default" are the family-wide settings,
    // which carpd never records.
    let valid_ifname = !ifname.is_empty()
        && ifname.len() <= 15
        && ifname != "."
        && ifname != ".."
        && !ifname.contains(|c: char| c == ':' || c.is_whitespace() || c.is_control());
    if !valid_ifname || ifname == "all" || ifname == "default" {
        return Err(format!("{}: bad interface name", shape()));
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{}: bad key", shape()));
    }
    Ok(())
}

/// Why `value`, recorded for a sysctl, is not one carpd could have read from /proc/sys.
fn check_entry_value(value: &str) -> Result<(), String> {
    if value.len() > VALUE_MAX || !value.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(format!(
            "value '{}' is not a sysctl value (at most {VALUE_MAX} printable ASCII characters)",
            value.escape_default()
        ));
    }
    Ok(())
}

/// Every entry of `record` is a setting carpd could have recorded; else the first that is
/// not, by position (1-based).
fn check_record(record: &RestoreRecord) -> Result<(), String> {
    for (i, e) in record.entries.iter().enumerate() {
        check_entry_path(&e.path)
            .and_then(|()| check_entry_value(&e.value))
            .map_err(|why| format!("entry {}: {why}; nothing was restored", i + 1))?;
    }
    Ok(())
}

/// Why a state directory or restore file with this owner, mode and type cannot be trusted
/// (`euid`: carpd's own user): only root and carpd may be able to change it, and it must
/// not be a symbolic link.
pub(crate) fn untrusted(
    uid: u32,
    mode: u32,
    is_symlink: bool,
    want_dir: bool,
    is_dir: bool,
    euid: u32,
) -> Option<String> {
    if is_symlink {
        return Some("is a symbolic link".to_owned());
    }
    if want_dir != is_dir {
        return Some(
            if want_dir {
                "not a directory"
            } else {
                "not a regular file"
            }
            .to_owned(),
        );
    }
    if uid != 0 && uid != euid {
        return Some(format!("owned by uid {uid}, not root"));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "writable by group or others (mode {:04o})",
            mode & 0o7777
        ));
    }
    None
}

/// Checks `meta` (from `lstat` or `fstat`) of the state directory or the restore file.
fn check_trusted(path: &Path, meta: &std::fs::Metadata, want_dir: bool) -> Result<(), NetError> {
    let euid = nix::unistd::geteuid().as_raw();
    let is_symlink = meta.file_type().is_symlink();
    match untrusted(
        meta.uid(),
        meta.mode(),
        is_symlink,
        want_dir,
        meta.is_dir(),
        euid,
    ) {
        None => Ok(()),
        Some(why) => Err(NetError::RestoreFile {
            path: path.to_owned(),
            what: if want_dir {
                "refusing the state directory"
            } else {
                "refusing the file"
            },
            source: io::Error::new(io::ErrorKind::PermissionDenied, why),
        }),
    }
}

/// The state directory holding `file`, checked (see the module doc); `Ok(false)` if it
/// does not exist (then neither does the file).
fn check_state_dir(file: &Path) -> Result<bool, NetError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => check_trusted(dir, &meta, true).map(|()| true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(NetError::RestoreFile {
            path: dir.to_owned(),
            what: "checking the state directory",
            source,
        }),
    }
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
    let mut text = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .read_to_string(&mut text)?;
    Ok(text.trim().to_owned())
}

/// Writes a sysctl that exists (never creates a file, never follows a symbolic link).
fn write_value(path: &Path, value: &str) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .write_all(value.as_bytes())
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

/// Reads and checks the restore file (see the module doc); `None` if there is none.
fn load_record(file: &Path) -> Result<Option<RestoreRecord>, NetError> {
    if !check_state_dir(file)? {
        return Ok(None);
    }
    let err = |what| {
        move |source| NetError::RestoreFile {
            path: file.to_owned(),
            what,
            source,
        }
    };
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        // ELOOP: the file is a symbolic link.
        Err(source) => return Err(err("reading")(source)),
    };
    check_trusted(file, &f.metadata().map_err(err("reading"))?, false)?;
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(err("reading"))?;
    // Written atomically, so a file that does not parse was edited by hand: say so rather
    // than guess (restoring half of it, or dropping it, could leave the host changed).
    let record: RestoreRecord = serde_json::from_str(&text)
        .map_err(|e| err("parsing")(io::Error::new(io::ErrorKind::InvalidData, e)))?;
    check_record(&record)
        .map_err(|why| err("refusing")(io::Error::new(io::ErrorKind::InvalidData, why)))?;
    Ok(Some(record))
}

/// Replaces the restore file atomically: a crash leaves the old file or the new one.
fn store_record(file: &Path, record: &RestoreRecord) -> Result<(), NetError> {
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
    // The rename itself reaches the disk before sysctls change.
    crate::statefile::replace_private(file, text.as_bytes())
        .map_err(|(what, source)| err(what)(source))
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
    fn only_per_interface_ipv4_and_ipv6_paths_are_restore_entries() {
        for good in [
            "net/ipv4/conf/eth0/arp_ignore",
            "net/ipv6/conf/eth0.100/accept_dad",
            "net/ipv4/conf/bond-0_a/arp_announce",
        ] {
            assert_eq!(check_entry_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "net/ipv4/conf/eth0",
            "net/ipv4/conf/eth0/arp_ignore/x",
            "/net/ipv4/conf/eth0/arp_ignore",
            "net/ipv4/conf/../arp_ignore",
            "net/ipv4/conf/./arp_ignore",
            "net/ipv4/conf//arp_ignore",
            "net/ipv4/conf/eth0/..",
            "net/ipv4/conf/eth0/ARP",
            "net/ipv4/conf/all/forwarding",
            "net/ipv6/conf/default/forwarding",
            "net/ipv4/conf/a:b/arp_ignore",
            "net/ipv4/conf/a b/arp_ignore",
            "net/ipv4/conf/sixteen_bytes_xx/arp_ignore",
            "net/ipv4/ip_forward/x/y",
            "net/ipv4/neigh/eth0/gc_stale_time",
            "kernel/conf/eth0/x/y",
            "net/core/conf/eth0/x",
            "../../etc/conf/x/passwd",
        ] {
            let why = check_entry_path(bad).unwrap_err();
            assert!(
                why.contains("is not net/ipv4/conf/<interface>/<key> or net/ipv6/conf/"),
                "{bad}: {why}"
            );
        }
        assert_eq!(check_entry_value("0"), Ok(()));
        assert_eq!(check_entry_value("1 2"), Ok(()));
        assert!(check_entry_value("1\n2").is_err());
        assert!(check_entry_value(&"1".repeat(65)).is_err());
    }

    #[test]
    fn only_root_or_carpd_owned_unshared_directories_and_files_are_trusted() {
        let dir = |uid, mode| untrusted(uid, mode, false, true, true, 1000);
        assert_eq!(dir(0, 0o40755), None);
        assert_eq!(dir(1000, 0o700), None);
        assert_eq!(dir(0, 0o1755), None, "sticky is harmless");
        assert_eq!(
            dir(0, 0o775).as_deref(),
            Some("writable by group or others (mode 0775)")
        );
        assert_eq!(
            dir(0, 0o1777).as_deref(),
            Some("writable by group or others (mode 1777)")
        );
        assert_eq!(dir(33, 0o755).as_deref(), Some("owned by uid 33, not root"));
        assert_eq!(
            untrusted(0, 0o755, true, true, false, 0).as_deref(),
            Some("is a symbolic link")
        );
        assert_eq!(
            untrusted(0, 0o644, false, true, false, 0).as_deref(),
            Some("not a directory")
        );
        assert_eq!(untrusted(0, 0o644, false, false, false, 0), None);
        assert_eq!(
            untrusted(0, 0o755, false, false, true, 0).as_deref(),
            Some("not a regular file")
        );
        assert!(untrusted(0, 0o666, false, false, false, 0).is_some());
    }

    /// A restore file in `state` with `entries`, written as carpd writes it.
    fn record_with(state: &Path, entries: &[(&str, &str)]) {
        let record = RestoreRecord {
            entries: entries
                .iter()
                .map(|(path, value)| SavedValue {
                    path: (*path).into(),
                    value: (*value).into(),
                })
                .collect(),
        };
        store_record(&state.join(RESTORE_FILE), &record).unwrap();
    }

    #[test]
    fn a_record_with_one_foreign_entry_restores_nothing() {
        let root = fake_proc("eth0", &[("ipv4", "arp_ignore", "1")]);
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/passwd"), "root\n").unwrap();
        let state = TempDir::new("sysctl-state");
        for (path, saved) in [
            ("net/ipv4/conf/eth0/../../../../etc/passwd", "x"),
            ("net/ipv4/conf/all/arp_ignore", "0"),
            ("net/ipv4/conf/eth0/arp_announce", "0\nx"),
        ] {
            record_with(
                state.path(),
                &[("net/ipv4/conf/eth0/arp_ignore", "0"), (path, saved)],
            );
            let err = restore_at(root.path(), state.path()).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.contains("refusing: entry 2: ") && msg.contains("nothing was restored"),
                "{msg}"
            );
            assert_eq!(
                value(root.path(), "eth0", "arp_ignore"),
                "1",
                "nothing written"
            );
            assert!(state.path().join(RESTORE_FILE).exists(), "the file is kept");
            // Nor is anything recorded on top of it.
            assert!(apply_at(root.path(), Some(state.path()), "eth0", CARPDEV_SETTINGS).is_err());
        }
        assert_eq!(
            std::fs::read_to_string(root.path().join("etc/passwd")).unwrap(),
            "root\n"
        );
    }

    #[test]
    fn an_untrusted_state_directory_or_file_is_not_used() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
        };
        let root = fake_proc("eth0", &[("ipv4", "arp_ignore", "1")]);
        let refused = |state: &Path, what: &str| {
            let err = restore_at(root.path(), state).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
            assert_eq!(
                value(root.path(), "eth0", "arp_ignore"),
                "1",
                "nothing written"
            );
        };
        let state = TempDir::new("sysctl-state");
        let dir = state.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        record_with(&dir, &[("net/ipv4/conf/eth0/arp_ignore", "0")]);

        mode(&dir, 0o777);
        refused(
            &dir,
            "refusing the state directory: writable by group or others (mode 0777)",
        );
        mode(&dir, 0o755);
        nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(4242)), None).unwrap();
        refused(
            &dir,
            "refusing the state directory: owned by uid 4242, not root",
        );
        nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();

        let link = state.path().join("link");
        symlink(&dir, &link).unwrap();
        refused(&link, "refusing the state directory: is a symbolic link");

        mode(&dir.join(RESTORE_FILE), 0o666);
        refused(
            &dir,
            "refusing the file: writable by group or others (mode 0666)",
        );
        mode(&dir.join(RESTORE_FILE), 0o600);

        // The restore file a symbolic link (to a valid record elsewhere): not followed.
        let elsewhere = state.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        record_with(&elsewhere, &[("net/ipv4/conf/eth0/arp_ignore", "0")]);
        std::fs::remove_file(dir.join(RESTORE_FILE)).unwrap();
        symlink(elsewhere.join(RESTORE_FILE), dir.join(RESTORE_FILE)).unwrap();
        refused(&dir, "reading");

        // Trusted again: restored.
        std::fs::remove_file(dir.join(RESTORE_FILE)).unwrap();
        record_with(&dir, &[("net/ipv4/conf/eth0/arp_ignore", "0")]);
        restore_at(root.path(), &dir).unwrap();
        assert_eq!(value(root.path(), "eth0", "arp_ignore"), "0");
    }

    #[test]
    fn symbolic_links_in_proc_sys_are_not_followed() {
        let root = fake_proc("eth0", &[("ipv4", "arp_ignore", "1")]);
        let target = root.path().join("target");
        std::fs::write(&target, "7\n").unwrap();
        let sysctl = root.path().join("net/ipv4/conf/eth0/arp_announce");
        std::os::unix::fs::symlink(&target, &sysctl).unwrap();
        let state = TempDir::new("sysctl-state");
        record_with(state.path(), &[("net/ipv4/conf/eth0/arp_announce", "0")]);
        assert!(restore_at(root.path(), state.path()).is_err());
        assert!(apply_at(root.path(), None, "eth0", CARPDEV_SETTINGS).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "7\n");
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
    use std::time::Duration;

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
            // The kernel joins the anycast address from its address work queue, after
            // `ip addr add` has returned: wait for the control to show up.
            let subnet_router = "20010db8000000000000000000000000";
            let read_anycast =
                || std::fs::read_to_string("/proc/thread-self/net/anycast6").unwrap();
            let joined = carp_tests::wait::wait_until(Duration::from_secs(5), || {
                read_anycast()
                    .lines()
                    .any(|l| l.contains(" cdev ") && l.contains(subnet_router))
            });
            let anycast = read_anycast();
            assert!(joined.is_ok(), "{anycast}");
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
            let peer = TestNs::create("peer").expect("creating the peer namespace");
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
