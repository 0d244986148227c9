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
/// afterwards) and forbids regaining any through exec.
pub fn drop_privileges() -> io::Result<()> {
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
    for &cap in KEPT {
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
    let status = std::fs::read_to_string("/proc/thread-self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no CapEff line"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dropped_thread_has_no_capabilities_left() {
        // In a thread of its own, so the test harness keeps its privileges.
        let result = std::thread::spawn(|| super::drop_privileges().map(|()| super::effective()))
            .join()
            .unwrap();
        match result {
            Ok(Ok(mask)) => assert_eq!(mask, 1 << super::CAP_BPF, "only CAP_BPF is left"),
            other => panic!("dropping capabilities failed: {other:?}"),
        }
    }
}
