//! What `setup` reports about a kdump configuration besides the instrumentation: whether the
//! crash kernel has room for the observer, and command-line settings that hide evidence
//! (the rules are `kernel::cmdline_rules`, shared with the verdict's audit).
use crate::kernel::cmdline_rules::{self, Impact};

/// The capture unit's memory cap (`MemoryMax=` in kdump-dma-observer.service): the most the
/// observer can take from the crash kernel's reservation.
pub const OBSERVER_MEMORY_MAX: u64 = 64 << 20;
/// Smallest reservation with which the arm64 capture kernel, systemd, kdump-tools and the
/// observer ran in the lab (crashkernel=256M: 135 MB available after the kernel itself).
pub const RECOMMENDED_CRASHKERNEL: u64 = 256 << 20;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Note,
    Warn,
}

impl Level {
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Note => "note",
            Self::Warn => "warn",
        }
    }
}

/// One line of the audit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
}

/// Findings for the capture command line `cmdline`, a crash reservation of `crash_size` bytes
/// (`/sys/kernel/kexec_crash_size`; `None` when unreadable) and the observer's peak memory in
/// the last capture on this machine (`status.json`'s `peak_rss_kib`, with where it was read).
#[must_use]
pub fn audit(
    cmdline: &str,
    crash_size: Option<u64>,
    measured: Option<(u64, &str)>,
) -> Vec<Finding> {
    let mut findings = vec![crashkernel(crash_size)];
    if let Some((kib, from)) = measured {
        findings.push(Finding {
            level: if kib << 10 > OBSERVER_MEMORY_MAX {
                Level::Warn
            } else {
                Level::Ok
            },
            text: format!(
                "the observer peaked at {}.{} MiB in the last capture ({from}); its cap is {} MiB",
                kib / 1024,
                kib % 1024 * 10 / 1024,
                OBSERVER_MEMORY_MAX >> 20
            ),
        });
    }
    findings.extend(
        cmdline_rules::matches(cmdline)
            .into_iter()
            .map(|m| Finding {
                level: match m.impact {
                    Impact::Warn => Level::Warn,
                    Impact::Note => Level::Note,
                },
                text: format!("{}: {}", m.token, m.explanation),
            }),
    );
    findings
}

fn crashkernel(size: Option<u64>) -> Finding {
    let mib = |b: u64| b >> 20;
    match size {
        None => Finding {
            level: Level::Warn,
            text: "cannot read /sys/kernel/kexec_crash_size: the crash reservation is unknown"
                .into(),
        },
        Some(0) => Finding {
            level: Level::Warn,
            text: "no memory is reserved for a crash kernel: add crashkernel= to the kernel command line (e.g. crashkernel=256M on arm64)".into(),
        },
        Some(b) if b < RECOMMENDED_CRASHKERNEL => Finding {
            level: Level::Warn,
            text: format!(
                "crashkernel reserves {} MiB: with the observer (at most {} MiB, its unit's MemoryMax) reserve at least {} MiB",
                mib(b),
                mib(OBSERVER_MEMORY_MAX),
                mib(RECOMMENDED_CRASHKERNEL)
            ),
        },
        Some(b) => Finding {
            level: Level::Ok,
            text: format!(
                "crashkernel reserves {} MiB; the observer takes at most {} MiB of it (its unit's MemoryMax)",
                mib(b),
                mib(OBSERVER_MEMORY_MAX)
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_hide_evidence_are_warned_about() {
        let found = audit(
            "irqpoll nr_cpus=1 reset_devices hest_disable pci=noaer cma=0",
            Some(256 << 20),
            None,
        );
        let warned: Vec<&str> = found
            .iter()
            .filter(|f| f.level == Level::Warn)
            .map(|f| f.text.split(':').next().unwrap())
            .collect();
        assert_eq!(warned, ["hest_disable", "pci=noaer"]);
        assert!(found.iter().any(|f| f.text.starts_with("nr_cpus=1: ")));
        assert_eq!(found[0].level, Level::Ok);
        // `pci=` with another value is not AER being off; among others it is.
        assert_eq!(audit("pci=realloc", Some(512 << 20), None).len(), 1);
        let listed = audit("pci=realloc,noaer", Some(512 << 20), None);
        assert_eq!(listed[1].level, Level::Warn, "{listed:?}");
    }

    #[test]
    fn crash_reservation_is_checked_against_the_observer() {
        assert_eq!(audit("", Some(0), None)[0].level, Level::Warn);
        assert_eq!(audit("", Some(192 << 20), None)[0].level, Level::Warn);
        assert!(audit("", Some(192 << 20), None)[0].text.contains("192 MiB"));
        assert_eq!(audit("", Some(384 << 20), None)[0].level, Level::Ok);
        assert_eq!(audit("", None, None)[0].level, Level::Warn);
        let measured = audit(
            "",
            Some(256 << 20),
            Some((22_336, "/var/crash/x/status.json")),
        );
        assert_eq!(measured[1].level, Level::Ok);
        assert!(
            measured[1].text.contains("21.8 MiB"),
            "{}",
            measured[1].text
        );
        let over = audit("", Some(256 << 20), Some((70 << 10, "s")));
        assert_eq!(over[1].level, Level::Warn);
    }
}
