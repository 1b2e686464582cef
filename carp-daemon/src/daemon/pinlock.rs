//! One carpd per pin directory: an exclusive `flock` on the directory itself, taken before
//! anything on the system is touched and held for the daemon's lifetime.
//!
//! Two daemons sharing a pin directory would adopt each other's maps and XDP links and
//! delete each other's carp interfaces as leftovers of a crash. The control socket only
//! catches a second daemon with the same *state* directory. bpffs cannot hold regular files,
//! but a directory on it can be opened and locked like any other; the kernel drops the lock
//! when the holder exits, however it exits, so a crash never leaves a stale lock.
use std::fs::File;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use tracing::debug;

use crate::Error;

/// Holds the pin directory until dropped.
#[derive(Debug)]
pub struct PinDirLock {
    _dir: File,
}

/// Locks `dir` (created if missing). Fails with [`Error::PinDirInUse`], naming the other
/// daemon's PID when `/proc/locks` shows it, if another process holds it. If the directory
/// cannot be created or opened (no bpffs mounted there, say), there is nothing to lock yet:
/// `Ok(None)`, and loading the dataplane reports the real problem.
pub fn lock_pin_dir(dir: &Path) -> Result<Option<PinDirLock>, Error> {
    let opened = std::fs::create_dir_all(dir).and_then(|()| File::open(dir));
    let file = match opened {
        Ok(f) => f,
        Err(err) => {
            debug!(dir = %dir.display(), error = %err, "pin directory not lockable");
            return Ok(None);
        }
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(PinDirLock { _dir: file })),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::PinDirInUse {
            dir: dir.to_path_buf(),
            pid: lock_holder(&file),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
            what: "locking the pin directory",
            path: PathBuf::from(dir),
            source,
        }),
    }
}

/// The PID holding a `flock` on `file`, from `/proc/locks`.
fn lock_holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(&locks, meta.dev(), meta.ino())
}

/// Parses `/proc/locks` lines such as `3: FLOCK  ADVISORY  WRITE 4242 00:1d:5123 0 EOF`
/// (the device as hex major:minor, as the kernel's `lock_get_status` prints it). Waiters
/// (`3: -> FLOCK ...`) are skipped.
fn holder_in(locks: &str, dev: u64, ino: u64) -> Option<u32> {
    let want = format!(
        "{:02x}:{:02x}:{ino}",
        libc::major(dev as libc::dev_t),
        libc::minor(dev as libc::dev_t)
    );
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, id, ..] if *id == want => pid.parse().ok(),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_is_found_by_device_and_inode_and_waiters_are_skipped() {
        let dev = libc::makedev(0, 0x1d);
        let locks = "1: POSIX  ADVISORY  WRITE 100 00:1d:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 00:1d:5123 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 4343 00:1d:5123 0 EOF\n";
        assert_eq!(holder_in(locks, dev, 5123), Some(4242));
        assert_eq!(holder_in(locks, dev, 77), None, "POSIX locks are not ours");
        assert_eq!(holder_in(locks, libc::makedev(0, 0x1e), 5123), None);
    }

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder() {
        let dir = std::env::temp_dir().join(format!("carpd-pinlock-{}", std::process::id()));
        let first = lock_pin_dir(&dir).unwrap().expect("lockable");
        // flock locks belong to the open file description: a second open in this very
        // process conflicts, as a second carpd's would.
        let err = lock_pin_dir(&dir).unwrap_err();
        match &err {
            Error::PinDirInUse { dir: d, pid } => {
                assert_eq!(d, &dir);
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("{other}"),
        }
        let text = err.to_string();
        assert!(text.contains(&dir.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        assert!(
            lock_pin_dir(&dir).unwrap().is_some(),
            "free again once dropped"
        );
        std::fs::remove_dir(&dir).unwrap();
    }
}
