//! Files Bindery reads whole (policy files, kubeconfigs, the hosts file, ServiceAccount
//! files): each through [`read_to_string`], with a size limit, so that no input (a
//! `/dev/zero`, a log passed by mistake) makes the process grow without bound.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A file that could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file cannot be opened or read.
    #[error("{}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than its limit (what it is, and the limit).
    #[error("{}: larger than {limit} bytes, the limit of {what}", .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// What the file is meant to be (`a policy file`).
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{}: not UTF-8 text (at byte {at})", .path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// Where the first invalid byte is.
        at: usize,
    },
}

/// Reads `path` whole as UTF-8 text, refusing it once more than `limit` bytes have been
/// read (so a device or a pipe that never ends costs at most `limit`). `what` names the
/// file's kind in the error.
pub fn read_to_string(path: &Path, limit: u64, what: &'static str) -> Result<String, FileError> {
    let read_error = |source| FileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            what,
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| FileError::NotText {
        path: path.to_path_buf(),
        at: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_up_to_their_limit() {
        let dir = std::env::temp_dir().join(format!("bindery-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ten");
        std::fs::write(&path, "0123456789").unwrap();
        assert_eq!(read_to_string(&path, 10, "a test").unwrap(), "0123456789");
        let err = read_to_string(&path, 9, "a test file")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "{}: larger than 9 bytes, the limit of a test file",
                path.display()
            )
        );
        // A device that never ends is refused after the limit.
        let err = read_to_string(Path::new("/dev/zero"), 1 << 20, "a policy file").unwrap_err();
        assert!(matches!(err, FileError::TooLarge { limit, .. } if limit == 1 << 20));
        std::fs::write(&path, b"ab\xffcd").unwrap();
        let err = read_to_string(&path, 10, "a test").unwrap_err().to_string();
        assert!(err.ends_with("not UTF-8 text (at byte 2)"), "{err}");
        let err = read_to_string(&dir.join("missing"), 10, "a test")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing: No such file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
