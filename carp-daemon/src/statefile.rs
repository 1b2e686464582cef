//! carpd's own state files (the sysctl restore file, the persisted maintenance demotion):
//! written so that a crash leaves either the old file or the new one, readable by root only.
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Replaces `path` with `contents`: a temporary file beside it (mode 0600, created anew; a
/// symbolic link left in its place is removed, never followed), synced, renamed into place,
/// and the directory synced so that the rename itself is on disk. On failure, the step that
/// failed and its error.
pub fn replace_private(path: &Path, contents: &[u8]) -> Result<(), (&'static str, io::Error)> {
    let tmp = path.with_extension("json.tmp");
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(("removing an old temporary file", e));
        }
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .map_err(|e| ("creating the temporary file", e))?;
    f.write_all(contents).map_err(|e| ("writing", e))?;
    f.sync_all().map_err(|e| ("syncing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| ("renaming into place", e))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ("syncing the directory", e))?;
    }
    Ok(())
}
