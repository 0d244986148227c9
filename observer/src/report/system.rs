//! The System section: who the machine is, from the daemon's `system_identity` event, else
//! from the kernel's own lines naming it (`platform_name`: `DMI:`, `Hardware name:`,
//! `Machine model:`). Every string is bounded again here: a timeline on disk is as hostile as
//! the firmware that wrote it.
use serde::{Deserialize, Serialize};

use crate::{
    event::{Detail, Event},
    system::{SystemIdentity, bounded},
};

/// What the report knows of the system.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemSection {
    /// The machine (DMI vendor and product, device-tree model, or a log line's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The CPU's name and MIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// The firmware (BIOS vendor, version, date).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bios: Option<String>,
    /// Firmware-first error handling and IORT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Where the identity came from: `system_identity event` or the log line's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The daemon's full `system_identity`, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<SystemIdentity>,
}

impl SystemSection {
    /// Prefers the `system_identity` event of `boot` (the judged boot), then any in `all`, then
    /// `platform_name` lines the same way (`DMI:` before `Hardware name:` before
    /// `Machine model:`).
    #[must_use]
    pub fn find(boot: &[Event], all: &[Event]) -> Self {
        let identity = |events: &[Event]| {
            events.iter().find_map(|e| match &e.detail {
                Detail::SystemIdentity(id) => Some(id.bounded()),
                _ => None,
            })
        };
        if let Some(id) = identity(boot).or_else(|| identity(all)) {
            return Self::from_identity(id);
        }
        let cpu = boot_cpu(boot).or_else(|| boot_cpu(all));
        match platform_name(boot).or_else(|| platform_name(all)) {
            Some((label, name)) => Self {
                machine: Some(name),
                cpu,
                source: Some(format!("kernel log line `{label}:`")),
                ..Self::default()
            },
            None => Self {
                source: cpu
                    .is_some()
                    .then(|| "kernel log line `Booting Linux`".into()),
                cpu,
                ..Self::default()
            },
        }
    }

    fn from_identity(id: SystemIdentity) -> Self {
        Self {
            machine: id.machine(),
            cpu: id.cpu.as_ref().map(|c| {
                let count = c.count.map(|n| format!(", {n} CPUs")).unwrap_or_default();
                format!("{} (MIDR {}{count})", c.name, c.midr)
            }),
            bios: id.dmi.as_ref().and_then(crate::system::dmi::Dmi::bios),
            firmware: id
                .firmware
                .as_ref()
                .map(crate::system::firmware::Firmware::summary),
            source: Some("system_identity event (the daemon)".into()),
            identity: Some(id),
        }
    }
}

/// The best `platform_name` line of `events`: (the line's label, bounded name). DMI names the
/// board best, then an oops header's `Hardware name` (DMI again), then the device tree.
fn platform_name(events: &[Event]) -> Option<(String, String)> {
    let label = |source_line: &str| match source_line {
        "dmi" => "DMI".to_owned(),
        "hardware_name" => "Hardware name".to_owned(),
        "machine_model" => "Machine model".to_owned(),
        other => bounded(other),
    };
    let rank = |label: &str| match label {
        "DMI" => 0,
        "Hardware name" => 1,
        _ => 2,
    };
    events
        .iter()
        .filter_map(|e| match &e.detail {
            Detail::PlatformName { source_line, name } if !bounded(name).is_empty() => {
                Some((label(source_line), bounded(name)))
            }
            _ => None,
        })
        .min_by_key(|(label, _)| rank(label))
}

/// The CPU named by the MIDR of arm64's first boot line, `Booting Linux on physical CPU
/// 0x%010lx [0x%08x]` (arch/arm64/kernel/setup.c, `smp_setup_processor_id`; the bracket is
/// `read_cpuid_id()`, since 4.7), as the `kernel_boot` event's raw line keeps it.
fn boot_cpu(events: &[Event]) -> Option<String> {
    events.iter().find_map(|e| {
        let Detail::KernelBoot { .. } = e.detail else {
            return None;
        };
        let raw = e.raw.as_deref()?;
        let rest = &raw[raw.find("Booting Linux on physical CPU")?..];
        let hex = rest.split_once("[0x")?.1.split_once(']')?.0;
        let midr = u32::from_str_radix(hex, 16).ok()?;
        Some(format!(
            "{} (MIDR {midr:#010x})",
            crate::system::cpu::Midr(midr).name()
        ))
    })
}

/// `2026-12-04 09:40:00 UTC` of a Unix time.
#[must_use]
pub fn utc(unix_seconds: i64) -> Option<String> {
    let secs = u64::try_from(unix_seconds).ok()?;
    let stamp = crate::utc::utc_stamp(
        std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs))?,
    );
    Some(format!(
        "{}-{}-{} {}:{}:{} UTC",
        stamp.get(0..4)?,
        stamp.get(4..6)?,
        stamp.get(6..8)?,
        stamp.get(8..10)?,
        stamp.get(10..12)?,
        stamp.get(12..14)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn name(label: &str, name: &str) -> Event {
        Event::new(
            1,
            Source::Console,
            Detail::PlatformName {
                source_line: label.into(),
                name: name.into(),
            },
        )
    }

    #[test]
    fn identity_event_wins_over_log_lines() {
        let id = SystemIdentity {
            device_tree: Some(crate::system::devicetree::DeviceTree {
                model: "linux,dummy-virt".into(),
                compatible: vec!["linux,dummy-virt".into()],
            }),
            cpu: Some(crate::system::cpu::Cpu {
                midr: "0x413fd0c1".into(),
                name: "Arm Neoverse N1 r3p1".into(),
                count: Some(2),
            }),
            ..SystemIdentity::default()
        };
        let events = vec![
            name("dmi", "Other Box"),
            Event::new(2, Source::Observer, Detail::SystemIdentity(Box::new(id))),
        ];
        let s = SystemSection::find(&events, &events);
        assert_eq!(s.machine.as_deref(), Some("linux,dummy-virt"));
        assert_eq!(
            s.cpu.as_deref(),
            Some("Arm Neoverse N1 r3p1 (MIDR 0x413fd0c1, 2 CPUs)")
        );
        assert!(s.source.unwrap().contains("system_identity"));
    }

    #[test]
    fn without_the_daemon_the_dmi_line_names_the_machine() {
        let events = vec![
            name("machine_model", "linux,dummy-virt"),
            name("dmi", "Ampere Mt.Jade\u{1b}[31m BIOS 2.09 05/20/2023"),
            name("hardware_name", "Ampere Mt.Jade"),
        ];
        let s = SystemSection::find(&[], &events);
        assert_eq!(
            s.machine.as_deref(),
            Some("Ampere Mt.Jade [31m BIOS 2.09 05/20/2023")
        );
        assert_eq!(s.source.as_deref(), Some("kernel log line `DMI:`"));
        assert!(SystemSection::find(&[], &[]).machine.is_none());
    }

    #[test]
    fn the_boot_line_names_the_cpu_without_the_daemon() {
        let boot = Event::new(0, Source::Console, Detail::KernelBoot { version: None })
            .with_raw("Booting Linux on physical CPU 0x0000000001 [0x413fd0c1]");
        let events = [boot];
        let s = SystemSection::find(&events, &events);
        assert_eq!(
            s.cpu.as_deref(),
            Some("Arm Neoverse N1 r3p1 (MIDR 0x413fd0c1)")
        );
        assert!(s.machine.is_none());
        let bad = Event::new(0, Source::Console, Detail::KernelBoot { version: None })
            .with_raw("Booting Linux on physical CPU 0x0000000001 [0xzz]");
        assert!(SystemSection::find(&[], &[bad]).cpu.is_none());
    }

    #[test]
    fn hostile_identity_strings_are_bounded() {
        let id = SystemIdentity {
            dmi: Some(crate::system::dmi::Dmi {
                sys_vendor: format!("<b>{}", "V".repeat(10_000)),
                ..Default::default()
            }),
            ..SystemIdentity::default()
        };
        let events = vec![Event::new(
            2,
            Source::Observer,
            Detail::SystemIdentity(Box::new(id)),
        )];
        let s = SystemSection::find(&events, &events);
        assert!(s.machine.unwrap().chars().count() <= crate::system::MAX_FIELD_CHARS);
    }

    #[test]
    fn crash_time_reads_as_utc() {
        assert_eq!(
            utc(1_764_840_000).as_deref(),
            Some("2025-12-04 09:20:00 UTC")
        );
        assert_eq!(utc(-1), None);
    }
}
