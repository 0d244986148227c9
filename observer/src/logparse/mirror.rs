//! The kernel-log mirror format: lines this daemon writes into the kernel log itself
//! (`sinks::kmsg_mirror` writes them), `kdump-dma-observer: v1 <compact JSON>`. They repeat
//! events already in the timeline, so they are never parsed as new evidence; a console or
//! pstore copy is read back into the timeline with [`parse_mirrored`].
use crate::event::{Detail, Event, ProbeState};

/// Start of every mirrored record's text (the mirror adds a format version after it).
pub const MIRROR_PREFIX: &str = "kdump-dma-observer: ";

/// Whether `text` (a record's text, or a console line after its timestamp) is a mirror line.
#[must_use]
pub fn is_mirrored_line(text: &str) -> bool {
    mirrored_payload(text).is_some()
}

/// What follows [`MIRROR_PREFIX`] in a mirror line (e.g. `v1 {...}`), for reading a console or
/// pstore copy of the timeline back.
#[must_use]
pub fn mirrored_payload(text: &str) -> Option<&str> {
    text.trim_start().strip_prefix(MIRROR_PREFIX)
}

/// Prefix of every mirrored record (after the priority).
pub const PREFIX: &str = "kdump-dma-observer: v1 ";
/// The kernel keeps at most 1024 bytes of text per record; longer lines are skipped, counted.
pub const MAX_RECORD: usize = 976;

/// The record for `event`: `<5>` + prefix + compact JSON without the raw line (which is in
/// the log already), without the probe list (summarised) and, of a `system_identity`, without
/// the command line, status lines and SMMU device lists. `None` if too long.
#[must_use]
pub fn record(event: &Event) -> Option<String> {
    let mut slim = event.clone();
    slim.raw = None;
    if let Detail::ObserverStarted { probes, .. } = &mut slim.detail {
        probes.retain(|p| p.state == ProbeState::Attached);
        for p in probes.iter_mut() {
            p.target.clear();
            p.reason.clear();
        }
    }
    if let Detail::SystemIdentity(id) = &mut slim.detail {
        // The log holds the command line already; status lines and the devices behind each
        // SMMU are for the timeline. What is left names the system on a console-only report.
        if let Some(k) = &mut id.running_kernel {
            k.cmdline.clear();
        }
        id.status.clear();
        for s in &mut id.smmus {
            s.devices.clear();
        }
    }
    let json = serde_json::to_string(&slim).ok()?;
    let line = format!("<5>{PREFIX}{json}\n");
    (line.len() <= MAX_RECORD).then_some(line)
}

/// Parses a mirrored record's text (after any log prefix such as `[  1.2] `) back into an
/// event; `None` if the text is not a mirror record.
#[must_use]
pub fn parse_mirrored(text: &str) -> Option<Event> {
    let at = text.find(PREFIX)?;
    serde_json::from_str(text[at + PREFIX.len()..].trim_end()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AerSeverity, Source};

    fn aer() -> Event {
        Event::new(
            9_669_622_000,
            Source::Kmsg,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: None,
                error_type: Some("Inaccessible".into()),
                reporter: Some("0000:00:03.0".into()),
                errors: Vec::new(),
                firmware_first: None,
            },
        )
        .with_raw("pcieport 0000:00:03.0: AER: Uncorrectable (Fatal) error message received from 0000:02:00.0")
    }

    #[test]
    fn recognises_the_mirror_prefix_only_at_the_start() {
        assert!(is_mirrored_line(
            "kdump-dma-observer: v1 {\"kind\":\"aer\"}"
        ));
        assert_eq!(
            mirrored_payload(" kdump-dma-observer: v1 {}"),
            Some("v1 {}")
        );
        assert!(!is_mirrored_line("kdump-dma-observer v1"));
        assert!(!is_mirrored_line("foo kdump-dma-observer: v1 {}"));
    }

    #[test]
    fn records_start_with_the_prefix_that_is_skipped() {
        assert!(PREFIX.starts_with(MIRROR_PREFIX));
        assert!(is_mirrored_line(
            record(&aer()).unwrap().trim_start_matches("<5>")
        ));
    }

    #[test]
    fn records_round_trip_through_a_console_line() {
        let line = record(&aer()).unwrap();
        assert!(line.starts_with("<5>kdump-dma-observer: v1 {"));
        assert!(line.ends_with("}\n"));
        assert!(!line.contains("pcieport"), "the raw line is not repeated");
        // As it would appear on a serial console.
        let console = format!("[   10.000001] {}", line.trim_start_matches("<5>"));
        let back = parse_mirrored(&console).unwrap();
        let mut expected = aer();
        expected.raw = None;
        assert_eq!(back, expected);
        assert!(
            parse_mirrored("[ 1.0] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled!").is_none()
        );
    }
    #[test]
    fn a_system_identity_is_mirrored_slim_and_names_the_system_on_the_console() {
        use crate::system::{
            RunningKernel, SystemIdentity,
            cpu::Cpu,
            devicetree::DeviceTree,
            smmu::{BehindSmmu, SmmuInstance},
            vmcoreinfo::CrashedKernel,
        };
        let id = SystemIdentity {
            device_tree: Some(DeviceTree {
                model: "linux,dummy-virt".into(),
                compatible: vec!["linux,dummy-virt".into()],
            }),
            cpu: Some(Cpu {
                midr: "0x000f0510".into(),
                name: "QEMU".into(),
                count: Some(1),
            }),
            smmus: vec![SmmuInstance {
                name: "smmu3.0x0000000009050000".into(),
                devices: (0..40)
                    .map(|n| BehindSmmu {
                        device: format!("0000:{n:02x}:00.0"),
                        group: Some(n),
                    })
                    .collect(),
            }],
            crashed_kernel: Some(CrashedKernel {
                release: "6.12.95+deb12-arm64".into(),
                crash_time: Some(1),
                page_size: Some(4096),
            }),
            running_kernel: Some(RunningKernel {
                release: "6.12.95+deb12-arm64".into(),
                cmdline: "kprobe_event=p:kdo/x,f;".repeat(100),
            }),
            status: vec!["DMI: absent".into()],
            ..SystemIdentity::default()
        };
        let event = Event::new(5, Source::Observer, Detail::SystemIdentity(Box::new(id)));
        let line = record(&event).expect("fits once slimmed");
        assert!(line.len() <= MAX_RECORD);
        let back =
            parse_mirrored(&format!("[    4.5] {}", line.trim_start_matches("<5>"))).unwrap();
        let Detail::SystemIdentity(back) = back.detail else {
            panic!("kind")
        };
        assert_eq!(back.machine().as_deref(), Some("linux,dummy-virt"));
        assert_eq!(back.crashed_kernel.unwrap().release, "6.12.95+deb12-arm64");
        let found = back.running_kernel.unwrap().cmdline;
        assert!(found.is_empty(), "{found:?}");
        assert!(back.smmus[0].devices.is_empty() && back.status.is_empty());
    }
}
