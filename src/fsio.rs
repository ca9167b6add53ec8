//! Atomic output: write into a temporary file beside the target, then rename it
//! over the target. An interrupted run leaves either the old file or the new
//! one, never half of one.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::output(path, "the directory does not exist"));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".mlctl-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::output(path, e))?;
    // A temporary file is private (0600); the output should read like any
    // other file: keep the replaced file's mode, or use 0644 for a new one.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o644);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::output(path, e))?;
    }
    tmp.write_all(bytes).map_err(|e| Error::output(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::output(path, e))?;
    tmp.persist(path)
        .map_err(|e| Error::output(path, e.error))?;
    Ok(())
}

/// Atomic output for writers that want a path: `write` fills a temporary
/// file beside `path`, which then replaces `path`.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::output(path, "the directory does not exist"));
    }
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("tmp");
    let tmp = tempfile::Builder::new()
        .prefix(".mlctl-")
        .suffix(&format!(".{extension}"))
        .tempfile_in(dir)
        .map_err(|e| Error::output(path, e))?;
    write(tmp.path()).map_err(|e| Error::output(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode())
            .unwrap_or(0o644);
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::output(path, e))?;
    }
    tmp.persist(path)
        .map_err(|e| Error::output(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_target_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.json");
        std::fs::write(&target, "old").unwrap();
        write_atomic(&target, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_readable_by_others() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("report.html");
        write_atomic(&target, b"x").unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let err = write_atomic(Path::new("/nonexistent-dir/x.json"), b"x").unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent-dir/x.json:"));
    }
}
