//! What the kernel and the process limits allow.

use std::io;

/// Facts gathered at startup.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The locked-memory limit in bytes (`RLIMIT_MEMLOCK`, soft), or `None` when unlimited.
    pub memlock_bytes: Option<u64>,
    /// The kernel release, e.g. `6.1.0-18-amd64`.
    pub kernel_release: String,
}

/// Reads the limits that matter to io_uring executors.
///
/// # Errors
/// Only if `getrlimit` fails, which it does not for a valid resource.
pub fn probe() -> io::Result<Probe> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit struct for the duration of the call.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    let memlock_bytes = (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur);
    let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    Ok(Probe {
        memlock_bytes,
        kernel_release,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn probe_reads_the_kernel_release() {
        let probe = super::probe().unwrap();
        assert!(!probe.kernel_release.is_empty());
        assert_ne!(probe.kernel_release, "unknown");
    }
}
