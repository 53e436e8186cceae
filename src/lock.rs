//! One `lcurve run` per sweep and database at a time: an OS file lock beside the database,
//! released by the operating system when the process ends, even by SIGKILL.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Held while a sweep runs; dropping it releases the lock. The file stays (removing it could
/// let two processes lock two different files of the same name); it holds the last pid.
#[derive(Debug)]
pub struct RunLock {
    file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "sweep `{sweep}` is already being run by another lcurve process{holder} on {db}; \
         two runs of one sweep would train the same trials twice. Wait for it to finish (watch it with `lcurve show {sweep}`), or stop it first"
    )]
    Busy {
        sweep: String,
        db: String,
        holder: String,
    },
    #[error("cannot create the lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The lock file for `sweep` on the database at `db`: `<db>.<sweep>.lock`.
pub fn lock_path(db: &Path, sweep: &str) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{sweep}.lock"));
    db.with_file_name(name)
}

impl RunLock {
    /// Takes the lock for `sweep` on `db` without waiting.
    pub fn acquire(db: &Path, sweep: &str) -> Result<Self, LockError> {
        let path = lock_path(db, sweep);
        let io = |source| LockError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        if file.try_lock().is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let holder = match pid.trim() {
                "" => String::new(),
                p => format!(" (pid {p})"),
            };
            return Err(LockError::Busy {
                sweep: sweep.to_string(),
                db: db.display().to_string(),
                holder,
            });
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { file })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_sweep_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        let first = RunLock::acquire(&db, "s").unwrap();
        assert!(lock_path(&db, "s").ends_with("x.db.s.lock"));
        let err = RunLock::acquire(&db, "s").unwrap_err().to_string();
        assert!(
            err.contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
        let other = RunLock::acquire(&db, "t");
        assert!(other.is_ok(), "another sweep on the same database may run");
        drop(first);
        assert!(RunLock::acquire(&db, "s").is_ok());
    }
}
