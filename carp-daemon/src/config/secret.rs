//! Files that hold a passphrase: who may read them, and `pass_file`.
//!
//! A configuration file with a `pass`, or a `pass_file`, that its group or others can read,
//! or that someone other than root (or carpd's own user) owns, is **accepted with a
//! warning**, not refused. OpenBSD's netstart does the same for hostname.if files (it warns,
//! and keeps them 0640 root:wheel by convention); refusing would stop carpd, and with it
//! failover, on a host whose files were restored or copied with loose modes, which is worse
//! than the exposure it reports. carpd never changes the modes itself: the warning says how.
//!
//! `pass_file` holds the passphrase alone, so that it need not sit in a configuration file
//! that is shared, versioned or world-readable, nor in argv or shell history. One trailing
//! newline (`\n`) is stripped, since editors and `echo` add one; nothing else is (a `\r`, a
//! second newline or spaces are part of the passphrase, and change the HMAC).
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::Passphrase;
use super::error::Problem;

/// Longest `pass_file` read: a passphrase has at most 19 bytes; a longer file is read far
/// enough to say how long it is, not without bound.
const PASS_FILE_MAX: u64 = 4096;

/// Owner and permission bits of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileAccess {
    pub uid: u32,
    /// `st_mode & 0o7777`.
    pub mode: u32,
}

impl FileAccess {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            uid: meta.uid(),
            mode: meta.mode() & 0o7777,
        }
    }
}

/// What is wrong with who can read or change a file holding a passphrase; `euid` is
/// carpd's own user, whose files are as trusted as root's.
pub(super) fn exposure(access: FileAccess, euid: u32, path: &Path) -> Vec<Problem> {
    let path = path.display().to_string();
    let mut problems = Vec::new();
    if access.mode & 0o044 != 0 {
        problems.push(Problem::SecretReadable {
            mode: access.mode,
            path: path.clone(),
        });
    }
    if access.uid != 0 && access.uid != euid {
        problems.push(Problem::SecretOwner {
            uid: access.uid,
            path,
        });
    }
    problems
}

/// Reads a `pass_file`: its passphrase (one trailing `\n` stripped) and its access bits,
/// taken from the open file so they describe what was read.
pub(super) fn read_pass_file(path: &Path) -> Result<(Passphrase, FileAccess), Problem> {
    let fail = |why: String| Problem::PassFile {
        path: path.display().to_string(),
        why,
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".to_owned()));
    }
    let mut bytes = Vec::new();
    file.take(PASS_FILE_MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    Ok((pass_from_bytes(bytes).map_err(fail)?, FileAccess::of(&meta)))
}

/// The passphrase a `pass_file`'s bytes hold: UTF-8, one trailing `\n` stripped. The
/// error never quotes the bytes.
fn pass_from_bytes(mut bytes: Vec<u8>) -> Result<Passphrase, String> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    String::from_utf8(bytes)
        .map(Passphrase::new)
        .map_err(|_| "not UTF-8 text".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owner_readable_files_owned_by_root_or_us_pass() {
        let p = Path::new("/etc/carpd.toml");
        let at = |uid, mode| exposure(FileAccess { uid, mode }, 1000, p);
        assert!(at(0, 0o600).is_empty());
        assert!(at(0, 0o400).is_empty());
        assert!(at(1000, 0o600).is_empty(), "carpd's own user");
        // Writable by group is not about reading the secret; only read bits count here.
        assert!(at(0, 0o620).is_empty());
        let msgs = |v: Vec<Problem>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            msgs(at(0, 0o640)),
            [
                "holds a passphrase and is readable by group (mode 0640); make it readable by \
              its owner only: chmod 600 /etc/carpd.toml"
            ]
        );
        assert_eq!(
            msgs(at(0, 0o604))[0],
            "holds a passphrase and is readable by others (mode 0604); make it readable by \
             its owner only: chmod 600 /etc/carpd.toml"
        );
        assert!(msgs(at(0, 0o644))[0].contains("readable by group and others (mode 0644)"));
        assert_eq!(
            msgs(at(33, 0o600)),
            [
                "holds a passphrase but is owned by uid 33, not root: whoever owns it can change \
              the key; chown root /etc/carpd.toml"
            ]
        );
        assert_eq!(at(33, 0o644).len(), 2);
    }

    #[test]
    fn one_trailing_newline_is_stripped() {
        let pass = |b: &[u8]| pass_from_bytes(b.to_vec()).map(|p| p.expose().to_owned());
        assert_eq!(pass(b"SeCrEt"), Ok("SeCrEt".into()));
        assert_eq!(pass(b"SeCrEt\n"), Ok("SeCrEt".into()));
        assert_eq!(pass(b"SeCrEt\n\n"), Ok("SeCrEt\n".into()));
        assert_eq!(pass(b"SeCrEt\r\n"), Ok("SeCrEt\r".into()));
        assert_eq!(pass(b" SeCrEt "), Ok(" SeCrEt ".into()));
        assert_eq!(pass(b"\n"), Ok(String::new()));
        assert_eq!(pass(b"\xff\n"), Err("not UTF-8 text".into()));
    }
}
