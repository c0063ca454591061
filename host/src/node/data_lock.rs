//! One process per data directory: an exclusive lock on `DATA-DIR/lock`.
//!
//! Two processes on one directory would share one vote and one state file
//! — exactly the double vote the state file exists to prevent. The first
//! process takes an exclusive advisory lock (`flock`) on `DATA-DIR/lock`
//! and writes its pid there; a second one finds the lock held and refuses
//! to start, naming that pid. The kernel drops the lock when the holder
//! exits, however it exits (kill -9 included), so a stale lock file never
//! blocks a restart.
//!
//! The directory is created owner-only (`0700`), the lock file `0600`:
//! the state and the audit trail are nobody else's business.

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The held lock; dropping it (or exiting) releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` (owner-only) if missing and locks it for this process,
    /// or says which process holds it.
    pub fn acquire(dir: &Path) -> anyhow::Result<DataDirLock> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join("lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if holder.is_empty() {
                    "another process".to_string()
                } else {
                    format!("process {holder}")
                };
                bail!(
                    "data directory {} is in use by {who}: two processes on one directory would \
                     share one vote; stop it first, or give this node its own `data-dir`",
                    dir.display()
                );
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(DataDirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_naming_the_holder() {
        let dir = std::env::temp_dir().join(format!("tenure-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let held = DataDirLock::acquire(&dir).expect("first lock");
        let refused = DataDirLock::acquire(&dir).expect_err("second lock");
        let message = format!("{refused:#}");
        assert!(
            message.contains(&format!("process {}", std::process::id())),
            "{message}"
        );
        drop(held);
        let again = DataDirLock::acquire(&dir).expect("lock after release");
        let mode = fs::metadata(&dir).expect("dir").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o700
        );
        drop(again);
        let _ = fs::remove_dir_all(&dir);
    }
}
