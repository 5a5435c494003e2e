//! The CPU affinity of the calling thread, as a set of CPUs (`sched_setaffinity`).
//!
//! `core_affinity` pins a thread to one CPU; a client library that starts threads of its own
//! (librdkafka) is confined to a set instead: the calling thread takes the set before it
//! creates the client, and every thread the client starts inherits it.

use std::io;

/// Confines the calling thread to `cpus`, which must be non-empty and each below
/// `CPU_SETSIZE` (1024).
///
/// # Errors
/// An empty set, a CPU out of range, or the kernel refusing the set (none of its CPUs online
/// or allowed to this process).
pub fn set_current_affinity(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no CPU given"));
    }
    // SAFETY: cpu_set_t is a plain bit array for which all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "CPU {cpu} is beyond the {} a CPU set holds",
                    libc::CPU_SETSIZE
                ),
            ));
        }
        // SAFETY: `cpu` is below CPU_SETSIZE (checked above), so the bit is inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size passed; pid 0 names the calling thread.
    let result =
        unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs the calling thread may run on.
///
/// # Errors
/// The kernel refused the query.
pub fn current_affinity() -> io::Result<Vec<usize>> {
    // SAFETY: as above, all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let result =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `set` was filled by the kernel; CPU_ISSET only reads it.
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_takes_a_set_and_its_children_inherit_it() {
        let first = current_affinity().expect("affinity")[0];
        std::thread::spawn(move || {
            set_current_affinity(&[first]).expect("set");
            assert_eq!(current_affinity().expect("read"), [first]);
            let child = std::thread::spawn(|| current_affinity().expect("read"));
            assert_eq!(child.join().expect("child"), [first], "inherited");
        })
        .join()
        .expect("thread");
        assert!(set_current_affinity(&[]).is_err());
        assert!(set_current_affinity(&[1 << 20]).is_err());
    }
}
