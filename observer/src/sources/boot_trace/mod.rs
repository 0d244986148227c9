//! Boot-trace source: the records the capture kernel's boot-time instrumentation
//! (`kdump-dma-observer cmdline`) left in the tracefs ring buffer before userspace existed.
//!
//! The buffer is read through `trace` (not `trace_pipe`), so reading does not consume it and a
//! second reader (or a restarted daemon) sees the same evidence.
mod ras;

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
};

use crate::{
    event::{AerSeverity, Detail, Event, Source, hex},
    kernel::tracefs::Tracefs,
    smmu,
};

/// The boot trace could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the boot trace {path}: {source}", path = path.display())]
pub struct BootTraceError {
    pub path: PathBuf,
    pub source: io::Error,
}

/// What the trace buffer held.
#[derive(Debug, Default)]
pub struct Harvest {
    /// The events, in buffer order.
    pub events: Vec<Event>,
    /// Trace records per event name (`kdo_smmu_write`, `aer_event`, ...), decoded or not:
    /// which boot-time probe fired, and how often.
    pub records_by_event: BTreeMap<String, u64>,
}

/// Reads `<tracefs>/trace` and returns what it holds.
pub fn harvest(tracefs: &Tracefs) -> Result<Harvest, BootTraceError> {
    let path = tracefs.root().join("trace");
    let text = std::fs::read(&path).map_err(|source| BootTraceError {
        path: path.clone(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    Ok(Harvest {
        events: parse(&text),
        records_by_event: records_by_event(&text),
    })
}

/// Trace records per event name in `text`.
#[must_use]
pub fn records_by_event(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for line in text.lines().filter_map(split_line) {
        *counts.entry(line.event.to_owned()).or_default() += 1;
    }
    counts
}

/// Events of the boot-trace lines in `text`; other lines are ignored.
#[must_use]
pub fn parse(text: &str) -> Vec<Event> {
    text.lines().filter_map(parse_line).collect()
}

/// One line of `trace`: `<task>-<pid> [<cpu>] <flags> <secs>: <event>: <body>`.
struct TraceLine<'a> {
    cpu: u32,
    ts_ns: u64,
    event: &'a str,
    body: &'a str,
}

fn split_line(line: &str) -> Option<TraceLine<'_>> {
    if line.starts_with('#') {
        return None;
    }
    // The task name may contain anything, so anchor on the CPU field `[ddd]`.
    let open = line.find(" [")?;
    let rest = &line[open + 2..];
    let close = rest.find(']')?;
    let cpu = rest[..close].trim().parse().ok()?;
    let rest = &rest[close + 1..];
    // Optional flags column, then `<secs>:`.
    let mut words = rest.split_ascii_whitespace();
    let mut word = words.next()?;
    if !word.ends_with(':') {
        word = words.next()?;
    }
    let ts_ns = parse_secs(word.strip_suffix(':')?)?;
    let after_ts = &rest[rest.find(word)? + word.len()..];
    let (event, body) = after_ts.trim_start().split_once(": ").map_or_else(
        || (after_ts.trim().trim_end_matches(':'), ""),
        |(e, b)| (e, b),
    );
    Some(TraceLine {
        cpu,
        ts_ns,
        event,
        body,
    })
}

/// `12.345678` seconds → nanoseconds (the trace prints microseconds or nanoseconds).
fn parse_secs(text: &str) -> Option<u64> {
    let (secs, frac) = text.split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_ns: u64 = format!("{frac:0<9}").parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

/// `key=value` pairs of a kprobe event body (values may be quoted strings).
fn fields(body: &str) -> BTreeMap<&str, &str> {
    let mut map = BTreeMap::new();
    // Skip the `(func+0x0/0xc0)` location.
    let mut rest = body
        .strip_prefix('(')
        .and_then(|b| b.split_once(") "))
        .map_or(body, |(_, r)| r);
    while let Some((key, after)) = rest.trim_start().split_once('=') {
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            quoted.split_once('"').unwrap_or((quoted, ""))
        } else {
            after.split_once(' ').unwrap_or((after, ""))
        };
        map.insert(key.trim(), value);
        rest = next;
    }
    map
}

fn hex_field(fields: &BTreeMap<&str, &str>, key: &str) -> Option<u64> {
    let v = fields.get(key)?;
    u64::from_str_radix(v.trim_start_matches("0x"), 16).ok()
}

fn parse_line(line: &str) -> Option<Event> {
    let t = split_line(line)?;
    let f = fields(t.body);
    let detail = match t.event {
        "kdo_smmu_write" => {
            let reg = hex_field(&f, "reg")?;
            let val = hex_field(&f, "val")?;
            Detail::SmmuRegWrite {
                smmu: f.get("smmu").map_or_else(String::new, |s| (*s).to_owned()),
                register: smmu::register_name(reg).map_or_else(|| hex(reg), str::to_owned),
                value: hex(val),
                meaning: smmu::meaning(reg, val),
            }
        }
        "kdo_smmu_gbpa" => {
            let set = hex_field(&f, "set")?;
            Detail::SmmuRegWrite {
                smmu: f.get("smmu").map_or_else(String::new, |s| (*s).to_owned()),
                register: "GBPA".into(),
                value: hex(set),
                meaning: format!("set {}", smmu::meaning(smmu::GBPA, set)),
            }
        }
        "kdo_sea" => Detail::ExternalAbort {
            far: hex_field(&f, "far").map(hex),
            esr: hex_field(&f, "esr").map(hex),
            in_kernel: false,
            detail: String::new(),
        },
        "kdo_serror" | "kdo_serror_panic" => Detail::Serror {
            esr: hex_field(&f, "esr").map(hex),
            fatal: t.event == "kdo_serror_panic",
            detail: String::new(),
        },
        "kdo_ghes_panic" => Detail::GhesFatal,
        "kdo_dpc" => Detail::Dpc {
            device: None,
            status: None,
            detail: String::new(),
        },
        "kdo_panic" => Detail::Panic {
            message: f
                .get("msg")
                .map_or_else(String::new, |m| m.trim_end_matches("\\n").to_owned()),
        },
        "aer_event" => aer_event(t.body)?,
        "arm_event" => ras::arm_event(t.body)?,
        "non_standard_event" => ras::non_standard_event(t.body)?,
        "mc_event" => ras::mc_event(t.body)?,
        _ => return None,
    };
    let mut event = Event::new(t.ts_ns, Source::BootTrace, detail).with_raw(line.trim());
    event.cpu = Some(t.cpu);
    Some(event)
}

/// `0000:02:00.0 PCIe Bus Error: severity=Uncorrected, non-fatal, Poisoned TLP, TLP Header=...`
/// (7.1: `<dev> <bus> Bus Error: ...`). Severity words of the tracepoint's print format:
/// `Corrected`, `Uncorrected, non-fatal`, `Fatal`.
fn aer_event(body: &str) -> Option<Detail> {
    let (device, rest) = body.split_once(' ')?;
    let (_, after) = rest.split_once("severity=")?;
    let severity = if after.starts_with("Corrected") {
        AerSeverity::Correctable
    } else if after.starts_with("Uncorrected, non-fatal") {
        AerSeverity::Nonfatal
    } else if after.starts_with("Fatal") {
        AerSeverity::Fatal
    } else {
        return None;
    };
    Some(Detail::Aer {
        device: device.to_owned(),
        severity,
        status: None,
        error_type: None,
        reporter: None,
        errors: Vec::new(),
        firmware_first: None,
    })
}

/// The boot-time kprobe events that exist in tracefs, i.e. that the kernel accepted from
/// `kprobe_event=` (for the status output).
#[must_use]
pub fn registered_events(tracefs_root: &Path) -> Vec<String> {
    let dir = tracefs_root
        .join("events")
        .join(crate::kernel::boot_instrumentation::GROUP);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A capture kernel's boot trace (6.12, QEMU virt): the reset ends with CR0=0x9 because
    /// the event queue stays off in kdump.
    const TRACE: &str = r#"# tracer: nop
#
# entries-in-buffer/entries-written: 8/8   #P:1
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
       swapper/0-1       [000] d....     1.352980: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu="9050000.smmuv3" val=0x0 reg=0x20
       swapper/0-1       [000] d....     1.353379: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu="9050000.smmuv3" val=0x8 reg=0x20
       swapper/0-1       [000] d....     1.354044: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu="9050000.smmuv3" val=0x0 reg=0x50
       swapper/0-1       [000] dN...     1.356895: kdo_smmu_write: (arm_smmu_write_reg_sync+0x0/0xc0) smmu="9050000.smmuv3" val=0x9 reg=0x20
 irq/23-aerdrv-135     [000] .....     4.431237: aer_event: 0000:02:00.0 PCIe Bus Error: severity=Corrected, Bad TLP, TLP Header=Not available
 irq/23-aerdrv-135     [000] .....     6.541223: aer_event: 0000:02:00.0 PCIe Bus Error: severity=Uncorrected, non-fatal, Poisoned TLP, TLP Header={0x0,0x0,0x0,0x0}
 irq/23-aerdrv-135     [000] .....     9.669641: aer_event: 0000:02:00.0 PCIe Bus Error: severity=Fatal, , TLP Header=Not available
         devmem-201     [000] .....    12.000001: kdo_sea: (do_sea+0x0/0xd0) far=0x9100000 esr=0x92000010
"#;

    #[test]
    fn counts_records_per_boot_time_probe() {
        let counts = records_by_event(TRACE);
        let counts: Vec<(&str, u64)> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            counts,
            [("aer_event", 3), ("kdo_sea", 1), ("kdo_smmu_write", 4)]
        );
    }

    #[test]
    fn decodes_the_reset_writes_with_instance_names() {
        let events = parse(TRACE);
        assert_eq!(events.len(), 8);
        let writes: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.detail {
                Detail::SmmuRegWrite {
                    smmu,
                    register,
                    value,
                    meaning,
                } => Some((
                    e.ts_ns,
                    smmu.as_str(),
                    register.as_str(),
                    value.as_str(),
                    meaning.as_str(),
                )),
                _ => None,
            })
            .collect();
        assert_eq!(
            writes[0],
            (
                1_352_980_000,
                "9050000.smmuv3",
                "CR0",
                "0x0",
                "SMMUEN=0 (none)"
            )
        );
        assert_eq!(writes[2].2, "IRQ_CTRL");
        assert_eq!(writes[3].4, "SMMUEN=1 (SMMUEN|CMDQEN)");
        assert!(
            events
                .iter()
                .all(|e| e.source == Source::BootTrace && e.raw.is_some())
        );
    }

    #[test]
    fn decodes_aer_severities_and_external_abort() {
        let events = parse(TRACE);
        let sev: Vec<_> = events
            .iter()
            .filter_map(|e| match &e.detail {
                Detail::Aer {
                    device, severity, ..
                } => Some((device.as_str(), *severity)),
                _ => None,
            })
            .collect();
        assert_eq!(
            sev,
            [
                ("0000:02:00.0", AerSeverity::Correctable),
                ("0000:02:00.0", AerSeverity::Nonfatal),
                ("0000:02:00.0", AerSeverity::Fatal)
            ]
        );
        let last = events.last().unwrap();
        assert_eq!(last.ts_ns, 12_000_001_000);
        assert_eq!(
            last.detail,
            Detail::ExternalAbort {
                far: Some("0x9100000".into()),
                esr: Some("0x92000010".into()),
                in_kernel: false,
                detail: String::new()
            }
        );
    }

    #[test]
    fn task_names_with_spaces_and_no_flags_column() {
        let e = parse(
            "   kworker/0:1 weird name-77 [003]   5.000000: kdo_panic: (panic+0x0/0x3c) msg=\"sysrq triggered crash\\n\"\n",
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].cpu, Some(3));
        assert_eq!(
            e[0].detail,
            Detail::Panic {
                message: "sysrq triggered crash".into()
            }
        );
    }

    #[test]
    fn garbage_is_ignored_not_fatal() {
        for junk in [
            "",
            "#",
            "[",
            " [x] 1.0: kdo_sea: ",
            "a [0] 1.2.3: kdo_sea: far=",
            "\u{0}\u{ff}[0]",
            "x [0] 99999999999999999999.5: kdo_sea:",
        ] {
            let _ = parse(junk);
        }
        let found = parse("t-1 [000] d.... 1.0: other_event: x=1");
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(parse_secs("1.5"), Some(1_500_000_000));
        assert_eq!(parse_secs("0.000001"), Some(1_000));
        assert_eq!(parse_secs("1."), None);
    }
}
