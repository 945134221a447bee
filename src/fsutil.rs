//! Writing files so that a crash never leaves a half-written one in place, and the lock files
//! that keep two writers apart.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `path` through a temporary file beside it, flushed to disk, then renamed into place:
/// readers see the old file or the new one, never a part.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut writer = BufWriter::new(File::create(&tmp)?);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Opens `path` (creating it) and takes its exclusive advisory lock, waiting for it with `wait`;
/// without, `None` when another process holds it. The lock lasts as long as the returned file, and
/// the system releases it when the process ends, however it ends. The file is kept, as a lock
/// file must be (removing it would let a second writer lock a new file while a third holds the old).
pub fn lock_file(path: &Path, wait: bool) -> Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io(path))?;
    if wait {
        file.lock().map_err(Error::io(path))?;
        return Ok(Some(file));
    }
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path)(e)),
    }
}
