//! Maintenance mode that survives restarts and reboots: a persisted demotion per group
//! (`carpctl -g GROUP carpdemote N --persist`), kept in `LIB_DIR/demote.json` and applied at
//! start on top of any boot demotion (OPNsense users ask for it: core #3671, #5930, #7877).
//!
//! The file holds what each group's persisted demotion *is*, not a log of changes:
//! `{"version":1,"demote":{"carp":128}}`. It is replaced atomically (a temporary file with
//! mode 0600, fsync, rename, fsync of the directory), and read back as the sysctl restore
//! file is (`crate::net::sysctl`): not through a symbolic link, owned by root or carpd's user,
//! not writable by group or others, every group name and amount valid; anything else is
//! refused with the reason rather than half applied.
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default directory for state kept across reboots (systemd's StateDirectory=carpd).
pub const DEFAULT_LIB_DIR: &str = "/var/lib/carpd";
/// The file under the lib directory.
pub const FILE_NAME: &str = "demote.json";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct MaintenanceError {
    pub path: PathBuf,
    pub what: &'static str,
    #[source]
    pub source: io::Error,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    version: u32,
    demote: BTreeMap<String, u8>,
}

/// The persisted demotion of every group that has one (none is 0).
pub type Persisted = BTreeMap<String, u8>;

/// The file's path under `lib_dir`.
pub fn file(lib_dir: &Path) -> PathBuf {
    lib_dir.join(FILE_NAME)
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Reads and checks the file; empty if there is none.
pub fn load(lib_dir: &Path) -> Result<Persisted, MaintenanceError> {
    let path = file(lib_dir);
    let err = |what| {
        let path = path.clone();
        move |source| MaintenanceError { path, what, source }
    };
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Persisted::new()),
        // ELOOP: a symbolic link.
        Err(source) => return Err(err("reading")(source)),
    };
    let meta = f.metadata().map_err(err("reading"))?;
    let euid = nix::unistd::geteuid().as_raw();
    if let Some(why) = crate::net::sysctl::untrusted(
        meta.uid(),
        meta.mode(),
        meta.file_type().is_symlink(),
        false,
        meta.is_dir(),
        euid,
    ) {
        return Err(err("refusing the file")(io::Error::new(
            io::ErrorKind::PermissionDenied,
            why,
        )));
    }
    let mut text = String::new();
    f.read_to_string(&mut text).map_err(err("reading"))?;
    parse(&text).map_err(err("refusing the file"))
}

/// The file's text to the persisted amounts, every value checked.
fn parse(text: &str) -> io::Result<Persisted> {
    let record: Record = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if record.version != VERSION {
        return Err(invalid(format!(
            "version {} (carpd writes {VERSION})",
            record.version
        )));
    }
    for (group, n) in &record.demote {
        crate::values::check_group_name(group)
            .map_err(|why| invalid(format!("group '{group}': {why}")))?;
        if *n == 0 {
            return Err(invalid(format!(
                "group '{group}': 0 (carpd never writes it)"
            )));
        }
    }
    Ok(record.demote)
}

/// Replaces the file atomically (creating `lib_dir` if needed): a crash leaves the old file
/// or the new one.
pub fn store(lib_dir: &Path, persisted: &Persisted) -> Result<(), MaintenanceError> {
    let path = file(lib_dir);
    let err = |what| {
        let path = path.clone();
        move |source| MaintenanceError { path, what, source }
    };
    std::fs::create_dir_all(lib_dir).map_err(err("creating the directory"))?;
    let record = Record {
        version: VERSION,
        demote: persisted
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(g, n)| (g.clone(), *n))
            .collect(),
    };
    let text = serde_json::to_string(&record)
        .map_err(io::Error::other)
        .map_err(err("encoding"))?;
    let mut contents = text.into_bytes();
    contents.push(b'\n');
    crate::statefile::replace_private(&path, &contents).map_err(|(what, source)| err(what)(source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("carpd-maint-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn stores_atomically_with_mode_0600_and_reads_back() {
        let d = dir("rt");
        assert!(load(&d).unwrap().is_empty(), "no file: nothing persisted");
        let mut p = Persisted::new();
        p.insert("carp".into(), 128);
        p.insert("web".into(), 0);
        store(&d, &p).unwrap();
        let meta = std::fs::metadata(file(&d)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let back = load(&d).unwrap();
        assert_eq!(
            back.into_iter().collect::<Vec<_>>(),
            vec![("carp".to_owned(), 128)]
        );
        assert!(!file(&d).with_extension("json.tmp").exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_bad_file_is_refused_with_the_reason() {
        assert!(parse(r#"{"version":1,"demote":{"carp":300}}"#).is_err());
        assert!(
            parse(r#"{"version":2,"demote":{}}"#)
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
        assert!(
            parse(r#"{"version":1,"demote":{"bad group":1}}"#)
                .unwrap_err()
                .to_string()
                .contains("bad group")
        );
        assert!(parse(r#"{"version":1,"demote":{"carp":0}}"#).is_err());
        assert!(parse(r#"{"version":1,"demote":{},"x":1}"#).is_err());
        assert!(parse("carp 128").is_err());
        let d = dir("perm");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(file(&d), r#"{"version":1,"demote":{"carp":1}}"#).unwrap();
        std::fs::set_permissions(file(&d), std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = load(&d).unwrap_err().to_string();
        assert!(e.contains("writable by group or others"), "{e}");
        std::fs::remove_file(file(&d)).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", file(&d)).unwrap();
        assert!(load(&d).is_err(), "a symbolic link is not followed");
        let _ = std::fs::remove_dir_all(&d);
    }
}
