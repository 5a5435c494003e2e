//! File-system facts the disk queue needs and std does not expose.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Space on the file system that holds a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Bytes an unprivileged process may still write (`f_bavail × f_frsize`).
    pub available_bytes: u64,
    /// The file system's size in bytes (`f_blocks × f_frsize`).
    pub total_bytes: u64,
}

/// `statvfs(2)` on `path`.
///
/// # Errors
/// The path contains a NUL byte, or `statvfs` fails (for example, the path does not exist).
pub fn disk_space(path: &Path) -> io::Result<DiskSpace> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `statvfs` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a valid, writable struct,
    // both alive for the duration of the call.
    let result = unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // The fields are `c_ulong` or `fsblkcnt_t`, whose width depends on the target.
    #[allow(clippy::useless_conversion)]
    let fragment = u64::from(stat.f_frsize);
    #[allow(clippy::useless_conversion)]
    let (available, total) = (u64::from(stat.f_bavail), u64::from(stat.f_blocks));
    Ok(DiskSpace {
        available_bytes: available.saturating_mul(fragment),
        total_bytes: total.saturating_mul(fragment),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_directory_has_a_size() {
        let space = disk_space(Path::new(".")).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.available_bytes <= space.total_bytes);
        assert!(disk_space(Path::new("/no/such/path/here")).is_err());
        assert!(disk_space(Path::new("a\0b")).is_err());
    }
}
