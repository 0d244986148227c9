//! Boot lines: which kernel started, with which command line, and whether it is a kdump
//! capture kernel.
//!
//! - arm64 `setup_arch()`: `Booting Linux on physical CPU 0x0000000001 [0x000f0510]`, then
//!   `init/main.c`: `Linux version 6.12.95+deb12-arm64 (...) #1 SMP ...` (x86 prints only the
//!   latter). Both belong to one boot.
//! - `Kernel command line: ...` (`init/main.c`, `pr_notice`).
//! - arm64 DT capture kernels: `OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for
//!   elfcorehdr` (`drivers/of/fdt.c` since 5.15; before that arm64 `mm/init.c` printed
//!   `Reserving %lldKB of memory at 0x%llx for elfcorehdr` without the `OF: fdt: ` prefix).
//! - x86 capture kernels: `elfcorehdr=` on the command line; x86 prints it twice, early in
//!   `arch/x86/kernel/setup.c` `setup_arch()` (`Command line: %s`) and in `init/main.c`.
//! - The oops header (`lib/dump_stack.c` `dump_stack_print_info()`, 6.6+): `CPU: %d UID: %u
//!   PID: %d Comm: %.20s Kdump: loaded %s...` marks the crashing kernel with a capture
//!   kernel armed, never the capture kernel.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BootLine<'a> {
    /// `Booting Linux on physical CPU ...`.
    Booting,
    /// `Linux version <release> ...`: the release.
    Version(&'a str),
    /// `Kernel command line: ...` and its `elfcorehdr=` argument, if any.
    Cmdline {
        cmdline: &'a str,
        elfcorehdr: Option<&'a str>,
    },
    /// The DT capture kernel's elfcorehdr reservation.
    ElfcorehdrReserved,
    /// An oops header with `Kdump: loaded`.
    KdumpArmed,
}

pub(crate) fn classify(text: &str) -> Option<BootLine<'_>> {
    if text.starts_with("Booting Linux on physical CPU ") {
        return Some(BootLine::Booting);
    }
    if let Some(rest) = text.strip_prefix("Linux version ") {
        return rest.split_whitespace().next().map(BootLine::Version);
    }
    if let Some(cmdline) = text
        .strip_prefix("Kernel command line: ")
        .or_else(|| text.strip_prefix("Command line: "))
    {
        let cmdline = cmdline.trim_end();
        let elfcorehdr = cmdline
            .split_whitespace()
            .find(|arg| arg.starts_with("elfcorehdr="));
        return Some(BootLine::Cmdline {
            cmdline,
            elfcorehdr,
        });
    }
    if text.starts_with("CPU: ") && text.contains(" Comm: ") && text.contains(" Kdump: loaded ") {
        return Some(BootLine::KdumpArmed);
    }
    let reservation = text.strip_prefix("OF: fdt: ").unwrap_or(text);
    if reservation.starts_with("Reserving ")
        && reservation.contains(" of memory at ")
        && reservation.trim_end().ends_with(" for elfcorehdr")
    {
        return Some(BootLine::ElfcorehdrReserved);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_lines() {
        assert_eq!(
            classify("Booting Linux on physical CPU 0x0000000001 [0x000f0510]"),
            Some(BootLine::Booting)
        );
        assert_eq!(
            classify("Linux version 6.12.95+deb12-arm64 (debian-kernel@lists.debian.org) #1 SMP"),
            Some(BootLine::Version("6.12.95+deb12-arm64"))
        );
        assert_eq!(classify("Linux version "), None);
        assert_eq!(
            classify("Kernel command line: BOOT_IMAGE=/vmlinuz ro elfcorehdr=0x7f000000 nr_cpus=1"),
            Some(BootLine::Cmdline {
                cmdline: "BOOT_IMAGE=/vmlinuz ro elfcorehdr=0x7f000000 nr_cpus=1",
                elfcorehdr: Some("elfcorehdr=0x7f000000"),
            })
        );
        assert_eq!(
            classify("OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr"),
            Some(BootLine::ElfcorehdrReserved)
        );
        assert_eq!(
            classify("Reserving 1KB of memory at 0xb97ff000 for elfcorehdr"),
            Some(BootLine::ElfcorehdrReserved)
        );
        assert_eq!(
            classify("OF: fdt: Reserving 1 KiB of memory at 0x0 for crashkernel"),
            None
        );
        assert_eq!(classify("LAB: rust hello on Linux version 6.12"), None);
        // x86 setup_arch() prints the command line early.
        assert_eq!(
            classify(
                "Command line: BOOT_IMAGE=/vmlinuz-6.1.0-27-amd64 root=UUID=1 irqpoll nr_cpus=1 reset_devices elfcorehdr=0x73000000"
            ),
            Some(BootLine::Cmdline {
                cmdline: "BOOT_IMAGE=/vmlinuz-6.1.0-27-amd64 root=UUID=1 irqpoll nr_cpus=1 reset_devices elfcorehdr=0x73000000",
                elfcorehdr: Some("elfcorehdr=0x73000000"),
            })
        );
        assert_eq!(
            classify(
                "CPU: 1 UID: 0 PID: 340 Comm: kdump-lab-drive Kdump: loaded Not tainted 6.12.95+deb12-arm64 #1  Debian 6.12.95-1~bpo12+1"
            ),
            Some(BootLine::KdumpArmed)
        );
        assert_eq!(
            classify("CPU: 1 UID: 0 PID: 340 Comm: sh Not tainted 6.12.95+deb12-arm64 #1"),
            None
        );
    }
}
