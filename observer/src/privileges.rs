//! Giving up privileges once everything is attached and open.
//!
//! Loading BPF, attaching probes, mounting tracefs and reading kallsyms need root
//! capabilities. Everything after that works on descriptors the daemon already holds (the
//! ring buffer and counter maps, `/dev/kmsg` for reading and for the mirror, the timeline
//! file, the HTTP socket), so the daemon drops every capability but one — effective,
//! permitted, inheritable and the bounding set — and sets `no_new_privs`.
//!
//! Kept: `CAP_BPF`, because kernels with `kernel.unprivileged_bpf_disabled` set refuse every
//! bpf(2) command without it, including the map lookups that read the drop counters.
//! Dropped: `CAP_SYS_ADMIN`, `CAP_PERFMON`, `CAP_SYSLOG`, `CAP_DAC_OVERRIDE`, ... Files
//! written later (status, metrics textfile) rely on ordinary ownership: root owns them.

use std::io;

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `CAP_BPF` (Linux 5.8+).
pub const CAP_BPF: u32 = 39;
/// What [`drop_privileges`] keeps.
pub const KEPT: &[u32] = &[CAP_BPF];

/// Drops every capability but [`KEPT`] from the calling thread (and from threads it creates
/// afterwards) and forbids regaining any through exec. A kept capability the thread does not
/// hold (an unprivileged run) stays absent: asking for it would fail with `EPERM`.
pub fn drop_privileges() -> io::Result<()> {
    let held = permitted()?;
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<libc::c_ulong>().ok())
        .unwrap_or(40);
    for cap in 0..=last {
        if KEPT.iter().any(|&k| libc::c_ulong::from(k) == cap) {
            continue;
        }
        // SAFETY: plain prctl; EINVAL for an unknown capability is harmless.
        unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
    }
    // SAFETY: plain prctl.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    for &cap in KEPT.iter().filter(|&&cap| held & (1 << cap) != 0) {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        data[word].effective |= bit;
        data[word].permitted |= bit;
    }
    // SAFETY: v3 header with two data elements, as capset(2) requires.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's effective capability mask (`CapEff` in `/proc/thread-self/status`).
pub fn effective() -> io::Result<u64> {
    mask("CapEff:")
}

/// The calling thread's permitted capability mask (`CapPrm`).
pub fn permitted() -> io::Result<u64> {
    mask("CapPrm:")
}

fn mask(field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string("/proc/thread-self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("no {field} line")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dropped_thread_has_no_capabilities_left() {
        // In a thread of its own, so the test harness keeps its privileges.
        // CAP_BPF stays if the thread had it (root), and nothing else ever does.
        let result = std::thread::spawn(|| {
            let before = super::permitted()?;
            super::drop_privileges()?;
            Ok::<_, std::io::Error>((before, super::effective()?, super::permitted()?))
        })
        .join()
        .unwrap();
        match result {
            Ok((before, effective, permitted)) => {
                let kept = before & (1 << super::CAP_BPF);
                assert_eq!(effective, kept, "only CAP_BPF is left, if it was there");
                assert_eq!(permitted, kept);
            }
            Err(e) => panic!("dropping capabilities failed: {e}"),
        }
    }
}
