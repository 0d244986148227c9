//! What each scenario asserts, on the observer's own output (`status.json`, `timeline.jsonl`)
//! read as plain JSON: the lab does not depend on the observer crate, so it also catches
//! changes to the format.
use std::path::Path;

use serde_json::{Value, json};

use super::{arch::GuestArch, console::Signal, scenario::Scenario};

/// The SMMU of QEMU's virt machine, as the kernel names it.
pub(crate) const SMMU: &str = "9050000.smmuv3";
/// The device that takes the injected AER errors.
pub(crate) const AER_DEVICE: &str = super::qemu::AER_DEVICE_BDF;

/// QEMU's `virt` machine boots arm64 with a device tree whose root is compatible with this
/// (hw/arm/virt.c); it has no `model`, so the kernel's `Machine model:` line shows it too.
pub(crate) const QEMU_VIRT_MODEL: &str = "linux,dummy-virt";

/// Why a check's failure never blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exempt {
    /// A known bug of the observer (not of the lab): reported until the observer is fixed.
    ObserverBug,
    /// A known problem of the kernel or of the lab's setup, not of the observer (6.1's broken
    /// /proc/vmcore).
    KnownIssue,
}

/// One assertion and its outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Check {
    pub name: String,
    /// Whether a failure fails the scenario. Non-blocking checks depend on work in progress
    /// and are reported on their own, unless `--strict`.
    pub blocking: bool,
    /// Why a failure never blocks, not even under `--strict` (until the cause is fixed; then
    /// the check passes and can be made blocking).
    pub exempt: Option<Exempt>,
    pub passed: bool,
    pub detail: String,
}

impl Check {
    pub(crate) fn new(name: impl Into<String>, passed: bool, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            blocking: true,
            exempt: None,
            passed,
            detail: detail.into(),
        }
    }

    /// Whether `--strict` makes it blocking (not for known observer bugs or known issues).
    #[must_use]
    pub(crate) fn strict_applies(&self) -> bool {
        self.exempt.is_none()
    }

    /// `pass|FAIL <name>[ (non-blocking...)]: <detail>`, for progress output.
    #[must_use]
    pub(crate) fn line(&self) -> String {
        format!(
            "{} {}{}: {}",
            if self.passed { "pass" } else { "FAIL" },
            self.name,
            match (self.blocking, self.exempt) {
                (true, _) => "",
                (false, Some(Exempt::ObserverBug)) => " (non-blocking: observer bug)",
                (false, Some(Exempt::KnownIssue)) => " (non-blocking: known issue)",
                (false, None) => " (non-blocking)",
            },
            self.detail
        )
    }

    #[must_use]
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "blocking": self.blocking,
            "observer_bug": self.exempt == Some(Exempt::ObserverBug),
            "known_issue": self.exempt == Some(Exempt::KnownIssue),
            "outcome": if self.passed { "pass" } else { "fail" },
            "detail": self.detail,
        })
    }
}

/// Writes `result.json` with its top-level keys in the order given (readers look at the
/// outcome first), each value pretty-printed.
pub(crate) fn write_result_json(path: &Path, fields: &[(&str, Value)]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::fmt::Write as _;
    let mut text = String::from("{\n");
    for (i, (key, value)) in fields.iter().enumerate() {
        let pretty = serde_json::to_string_pretty(value).context("encoding result.json")?;
        let _ = writeln!(
            text,
            "  {}: {}{}",
            Value::from(*key),
            pretty.replace('\n', "\n  "),
            if i + 1 < fields.len() { "," } else { "" }
        );
    }
    text.push_str("}\n");
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The observer's output for one boot.
#[derive(Debug)]
pub(crate) struct Evidence {
    pub status: Result<Value, String>,
    pub timeline: Vec<Value>,
    /// Lines of timeline.jsonl that are not JSON objects, with their numbers.
    pub bad_lines: Vec<String>,
    /// Why the timeline could not be read at all.
    pub timeline_error: Option<String>,
    /// The serial console of both kernels (`console.log`), if it could be read.
    pub console: Option<String>,
}

impl Evidence {
    /// Reads `status.json`, `timeline.jsonl` and `console.log` from `dir`.
    #[must_use]
    pub(crate) fn load(dir: &Path) -> Self {
        let console = std::fs::read(dir.join("console.log"))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        Self {
            console,
            ..Self::load_observer(dir)
        }
    }

    fn load_observer(dir: &Path) -> Self {
        let status_path = dir.join("status.json");
        let status = read_json(&status_path);
        let timeline_path = dir.join("timeline.jsonl");
        match std::fs::read_to_string(&timeline_path) {
            Ok(text) => {
                let mut ev = Self::parse_timeline(&text);
                ev.status = status;
                ev
            }
            Err(e) => Self {
                status,
                timeline: Vec::new(),
                bad_lines: Vec::new(),
                timeline_error: Some(format!("{}: {e}", timeline_path.display())),
                console: None,
            },
        }
    }

    fn parse_timeline(text: &str) -> Self {
        let mut timeline = Vec::new();
        let mut bad_lines = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            match serde_json::from_str::<Value>(line) {
                Ok(v) if v.is_object() => timeline.push(v),
                _ => bad_lines.push(format!("line {}: {}", n + 1, truncate(line, 120))),
            }
        }
        Self {
            status: Err("not read".into()),
            timeline,
            bad_lines,
            timeline_error: None,
            console: None,
        }
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.timeline.iter().filter(move |e| e["kind"] == kind)
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

/// Every check of `scenario` on `arch`'s machine, on the boot that matters.
#[must_use]
pub(crate) fn run_for(arch: GuestArch, scenario: Scenario, ev: &Evidence) -> Vec<Check> {
    match arch {
        GuestArch::Aarch64 => run(scenario, ev),
        GuestArch::X86_64 => run_x86(scenario, ev),
    }
}

/// The x86 machine (q35 + VT-d or AMD-Vi): its probe catalogue, and in kdump the capture
/// kernel's IOMMU table hand-over where arm64 has its SMMU reset.
fn run_x86(scenario: Scenario, ev: &Evidence) -> Vec<Check> {
    let mut checks = common(ev, true);
    checks.push(capture_kernel(ev, scenario.is_kdump()));
    checks.push(x86_probes(ev));
    if scenario.is_kdump() {
        checks.push(table_copy(ev));
    }
    match scenario {
        Scenario::Kdump => {
            let aer = ev.of_kind("aer").count();
            checks.push(Check::new(
                "no aer events (nothing was injected)",
                aer == 0,
                format!("{aer} aer event(s)"),
            ));
        }
        Scenario::KdumpAer => {
            for severity in ["correctable", "nonfatal", "fatal"] {
                checks.push(aer(ev, severity));
            }
        }
        _ => {}
    }
    checks
}

/// The x86 catalogue on a real x86 kernel: `mce:mce_record` attached, arm64's probes reported
/// absent and not required.
fn x86_probes(ev: &Evidence) -> Check {
    let name = "x86 probes: mce_record attached; arm64-only probes absent, not required";
    let Some(started) = ev.of_kind("observer_started").next() else {
        return Check::new(name, false, "no observer_started event");
    };
    let probes = started["probes"].as_array().map_or(&[][..], Vec::as_slice);
    let state = |n: &str| {
        probes.iter().find(|p| p["name"] == n).map(|p| {
            (
                p["state"].as_str().unwrap_or("?").to_owned(),
                p["required"] == true,
            )
        })
    };
    let mce = state("mce_record");
    let arm: Vec<_> = ["external_abort", "serror", "smmu_reg_write"]
        .iter()
        .map(|n| (*n, state(n)))
        .collect();
    let arm_ok = arm
        .iter()
        .all(|(_, s)| s.as_ref().is_some_and(|(st, req)| st == "absent" && !req));
    let attached: Vec<&str> = probes
        .iter()
        .filter(|p| p["state"] == "attached")
        .filter_map(|p| p["name"].as_str())
        .collect();
    Check::new(
        name,
        mce.as_ref().is_some_and(|(st, _)| st == "attached") && arm_ok,
        format!(
            "mce_record {mce:?}; {}; attached: [{}]",
            arm.iter()
                .map(|(n, s)| format!("{n} {s:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            attached.join(", ")
        ),
    )
}

/// The capture kernel took the crashed kernel's DMA translation tables over
/// (`iommu_table_copy` of `dmar` or `amd-vi` with outcome `copied` or `reused`; VT-d's
/// interrupt-remapping copy, `dmar-ir`, is not that hand-over).
fn table_copy(ev: &Evidence) -> Check {
    let all: Vec<&Value> = ev.of_kind("iommu_table_copy").collect();
    let done = all.iter().find(|e| {
        e["iommu"] != "dmar-ir" && (e["outcome"] == "copied" || e["outcome"] == "reused")
    });
    Check::new(
        "iommu_table_copy event: tables copied from the crashed kernel",
        done.is_some(),
        match (done, all.first()) {
            (Some(e), _) => brief(e),
            (None, Some(e)) => format!(
                "{} event(s), no DMA translation table copied; first: {}",
                all.len(),
                brief(e)
            ),
            (None, None) => "no iommu_table_copy event in the timeline".to_owned(),
        },
    )
}

/// Every check of `scenario` on the boot that matters (the capture kernel's for kdump ones).
#[must_use]
pub(crate) fn run(scenario: Scenario, ev: &Evidence) -> Vec<Check> {
    // capture-panic's observer dies with its kernel: no clean stop to check.
    let mut checks = common(ev, scenario != Scenario::CapturePanic);
    match scenario {
        Scenario::Boot => {
            checks.push(capture_kernel(ev, false));
            checks.push(smmu_event(ev, "smmu_probe"));
        }
        Scenario::Kdump => {
            checks.push(capture_kernel(ev, true));
            checks.push(smmu_event(ev, "smmu_reset"));
            let aer = ev.of_kind("aer").count();
            checks.push(Check::new(
                "no aer events (nothing was injected)",
                aer == 0,
                format!("{aer} aer event(s)"),
            ));
        }
        Scenario::KdumpAer => {
            checks.push(capture_kernel(ev, true));
            checks.push(smmu_event(ev, "smmu_reset"));
            for severity in ["correctable", "nonfatal", "fatal"] {
                checks.push(aer(ev, severity));
            }
            checks.push(reset_from_boot_trace(ev));
        }
        Scenario::ExternalAbort => {
            checks.push(capture_kernel(ev, true));
            let n = ev.of_kind("external_abort").count();
            let first = ev.of_kind("external_abort").next();
            checks.push(Check::new(
                "external_abort event",
                n > 0,
                first.map_or_else(
                    || "none in the timeline".to_owned(),
                    |e| format!("{n} event(s); first: {}", brief(e)),
                ),
            ));
        }
        Scenario::CapturePanic => {
            checks.push(capture_kernel(ev, true));
            checks.push(smmu_event(ev, "smmu_reset"));
            checks.push(aer(ev, "fatal"));
            checks.push(console_story(ev.console.as_deref()));
        }
        Scenario::KdumpResetAer => {
            checks.push(capture_kernel(ev, true));
            checks.push(smmu_event(ev, "smmu_reset"));
            checks.push(pci_evidence(ev, false));
        }
        Scenario::KdumpCompat => {
            checks.push(capture_kernel(ev, true));
            checks.push(smmu_event(ev, "smmu_reset"));
            let aer = ev.of_kind("aer").count();
            checks.push(Check::new(
                "no aer events (pcie_ports=compat: no kernel line or tracepoint reports it)",
                aer == 0,
                format!("{aer} aer event(s)"),
            ));
            let services: Vec<u64> = ev
                .of_kind("pci_snapshot")
                .filter_map(|e| e["aer_service_ports"].as_u64())
                .collect();
            checks.push(Check::new(
                "pci_snapshot: no AER port service bound",
                !services.is_empty() && services.iter().all(|&n| n == 0),
                format!("aer_service_ports per snapshot: {services:?}"),
            ));
            checks.push(pci_evidence(ev, true));
        }
    }
    if scenario.is_kdump() {
        checks.push(reset_on_one_clock(ev));
    }
    checks
}

/// The guest's `LAB: NOTE /proc/vmcore is <N> bytes` (the capture kernel's dump size).
fn vmcore_size(console: &str) -> Option<u64> {
    console
        .lines()
        .filter_map(|l| {
            l.split_once("NOTE /proc/vmcore is ")?
                .1
                .split_once(" bytes")
        })
        .find_map(|(n, _)| n.trim().parse().ok())
}

/// The lab machine's memory (`-m 2G`): a dump of it cannot be larger.
const GUEST_MEMORY: u64 = 2 << 30;

/// The capture kernel's /proc/vmcore has a plausible size (more than nothing, at most the
/// machine's memory). Debian's 6.1 fails it in this lab (a known issue of that kernel with the
/// guest's kexec-tools, `VMCORE_61`): never blocking there, blocking elsewhere.
#[must_use]
pub(crate) fn vmcore_sane(console: Option<&str>, known_broken: bool) -> Check {
    let name = "/proc/vmcore has a plausible size (0 < size <= guest memory)";
    let size = console.and_then(vmcore_size);
    let check = Check::new(
        name,
        size.is_some_and(|n| n > 0 && n <= GUEST_MEMORY),
        size.map_or_else(
            || "no `NOTE /proc/vmcore is <N> bytes` on the console".to_owned(),
            |n| format!("{n} bytes (guest memory {GUEST_MEMORY})"),
        ),
    );
    if known_broken {
        Check {
            blocking: false,
            exempt: Some(Exempt::KnownIssue),
            ..check
        }
    } else {
        check
    }
}

/// How far apart the kernel log's reset line and the boot trace's first CR0 write of that
/// reset may be on one clock (the driver writes CR0 right after printing the line; the serial
/// console's synchronous print of the line lies between them).
pub(crate) const ONE_CLOCK_TOLERANCE_NS: i64 = 10_000_000;

/// The capture kernel's reset seen by the kernel log (the console's last `SMMU currently
/// enabled! Resetting...` line, printk clock) and by the boot trace (the first CR0 write of the
/// timeline's `smmu_reset`, `CLOCK_MONOTONIC`): with status.json's `clock_offset_ns` added to
/// the line's time, the line comes first (within the offset's uncertainty) and the write at
/// most 10 ms after it. Blocking when both sightings exist; without the boot trace's writes it
/// cannot be judged (non-blocking failure, as `reset_from_boot_trace`).
fn reset_on_one_clock(ev: &Evidence) -> Check {
    let name = "smmu_reset: kmsg line and boot-trace CR0 write within 10 ms on one clock";
    let status = ev.status.as_ref().ok();
    let offset = status.and_then(|s| s["clock_offset_ns"].as_i64());
    let uncertainty = status
        .and_then(|s| s["clock_offset_uncertainty_ns"].as_i64())
        .unwrap_or(0);
    let Some(offset) = offset else {
        let why = status
            .and_then(|s| s["clock_offset_method"].as_str())
            .unwrap_or("no status.json");
        return Check::new(
            name,
            false,
            format!("status.json has no clock_offset_ns ({why})"),
        );
    };
    let line_ts = ev
        .console
        .as_deref()
        .and_then(|c| {
            c.lines()
                .rfind(|l| l.contains(SMMU) && l.contains(super::scenario::RESET_LINE))
        })
        .and_then(printk_time_ns);
    let write_ts = ev
        .of_kind("smmu_reset")
        .find(|e| e["smmu"] == SMMU)
        .and_then(|e| e["writes"].as_array())
        .and_then(|w| w.iter().find(|w| w["register"] == "CR0"))
        .and_then(|w| w["ts_ns"].as_i64());
    let (Some(line_ts), Some(write_ts)) = (line_ts, write_ts) else {
        return Check {
            blocking: false,
            ..Check::new(
                name,
                false,
                format!(
                    "cannot compare: reset line on the console {}, boot-trace CR0 write in the timeline {}",
                    if line_ts.is_some() {
                        "found"
                    } else {
                        "missing"
                    },
                    if write_ts.is_some() {
                        "found"
                    } else {
                        "missing"
                    }
                ),
            )
        };
    };
    let corrected = line_ts + offset;
    let gap = write_ts - corrected;
    #[expect(
        clippy::cast_precision_loss,
        reason = "boot-relative nanoseconds, shown in ms"
    )]
    let ms = |ns: i64| ns as f64 / 1e6;
    Check::new(
        name,
        (-uncertainty..=ONE_CLOCK_TOLERANCE_NS + uncertainty).contains(&gap),
        format!(
            "line {:.3} ms (printk) {:+.3} ms offset (±{:.3}) = {:.3} ms; first CR0 write {:.3} ms: write {:+.3} ms after the line (uncorrected {:+.3} ms)",
            ms(line_ts),
            ms(offset),
            ms(uncertainty),
            ms(corrected),
            ms(write_ts),
            ms(gap),
            ms(write_ts - line_ts)
        ),
    )
}

/// `[    1.986123] ...` -> 1 986 123 000 ns.
fn printk_time_ns(line: &str) -> Option<i64> {
    let inside = line.split_once('[')?.1.split_once(']')?.0.trim();
    let (secs, frac) = inside.split_once('.')?;
    let secs: i64 = secs.parse().ok()?;
    let digits = frac.len().min(9);
    let frac: i64 = frac.get(..digits)?.parse().ok()?;
    Some(secs * 1_000_000_000 + frac * 10_i64.pow(u32::try_from(9 - digits).ok()?))
}

/// The injected errors as the capture observer's config-space snapshot sees them: a
/// `pci_device` event on the NIC or on a root port naming it, with an uncorrectable error
/// latched (`new`: and new since the start snapshot) or its residue.
fn pci_evidence(ev: &Evidence, new: bool) -> Check {
    let name = if new {
        format!("pci_device: uncorrectable error on {AER_DEVICE} latched, new since start")
    } else {
        format!("pci_device: uncorrectable error or its residue on or naming {AER_DEVICE}")
    };
    let about_device = |e: &&Value| {
        e["bdf"] == AER_DEVICE
            || !new
                && e["residue"].as_array().is_some_and(|r| {
                    r.iter()
                        .any(|l| l.as_str().is_some_and(|l| l.contains(AER_DEVICE)))
                })
    };
    let hit = ev.of_kind("pci_device").filter(about_device).find(|e| {
        if new {
            e["uncorrectable"] == true
                && e["new_since_start"]
                    .as_array()
                    .is_some_and(|n| !n.is_empty())
        } else {
            e["uncorrectable"] == true || e["uncorrectable_residue"] == true
        }
    });
    let seen: Vec<String> = ev
        .of_kind("pci_device")
        .filter(|e| !e["errors"].is_null() || !e["residue"].is_null())
        .map(brief)
        .collect();
    Check::new(
        name,
        hit.is_some(),
        hit.map_or_else(
            || {
                format!(
                    "pci_device events with errors or residue: [{}]",
                    seen.join("; ")
                )
            },
            brief,
        ),
    )
}

/// capture-panic: what the serial console alone must hold in the capture boot (after the
/// second `Booting Linux`): the observer's mirror line of the fatal AER error, then the
/// capture kernel's panic.
fn console_story(console: Option<&str>) -> Check {
    let name = "console.log: fatal aer mirrored in the capture boot, then its panic";
    let Some(text) = console else {
        return Check::new(name, false, "no console.log");
    };
    let mut boots = 0;
    let mut mirrored = 0;
    let mut fatal_at = None;
    let mut panic = None;
    for (n, line) in text.lines().enumerate() {
        match super::console::classify(line) {
            Some(Signal::KernelBoot) => boots += 1,
            Some(Signal::KernelPanic(message)) if boots == 2 && fatal_at.is_some() => {
                panic = Some((n + 1, message));
                break;
            }
            _ => {}
        }
        let Some((_, json)) = line.split_once(MIRROR) else {
            continue;
        };
        if boots != 2 {
            continue;
        }
        mirrored += 1;
        let event = serde_json::from_str::<Value>(json.trim()).unwrap_or(Value::Null);
        if fatal_at.is_none() && event["kind"] == "aer" && event["severity"] == "fatal" {
            fatal_at = Some(n + 1);
        }
    }
    let detail = format!(
        "{boots} boot(s); {mirrored} mirror line(s) in the capture boot; fatal aer mirrored {}; panic after it {}",
        fatal_at.map_or_else(|| "nowhere".to_owned(), |n| format!("at line {n}")),
        panic
            .as_ref()
            .map_or_else(|| "none".to_owned(), |(n, m)| format!("at line {n}: {m}"))
    );
    Check::new(name, fatal_at.is_some() && panic.is_some(), detail)
}

/// What the observer's kernel-log mirror puts before each event's JSON.
const MIRROR: &str = "kdump-dma-observer: v1 ";

fn common(ev: &Evidence, clean_stop: bool) -> Vec<Check> {
    let mut checks = vec![match &ev.status {
        Ok(v) if v.is_object() => Check::new("status.json is a JSON object", true, "ok"),
        Ok(v) => Check::new(
            "status.json is a JSON object",
            false,
            truncate(&v.to_string(), 80),
        ),
        Err(e) => Check::new("status.json is a JSON object", false, e.clone()),
    }];
    checks.push(match (&ev.timeline_error, ev.bad_lines.first()) {
        (Some(e), _) => Check::new("timeline.jsonl is JSON Lines", false, e.clone()),
        (None, Some(bad)) => Check::new(
            "timeline.jsonl is JSON Lines",
            false,
            format!("{} bad line(s), first {bad}", ev.bad_lines.len()),
        ),
        (None, None) => Check::new(
            "timeline.jsonl is JSON Lines",
            !ev.timeline.is_empty(),
            format!("{} events", ev.timeline.len()),
        ),
    });
    if !clean_stop {
        return checks;
    }
    let last = ev.timeline.last();
    checks.push(Check::new(
        "observer stopped cleanly (observer_stopped last)",
        last.is_some_and(|e| e["kind"] == "observer_stopped"),
        last.map_or_else(|| "empty timeline".to_owned(), brief),
    ));
    checks
}

fn capture_kernel(ev: &Evidence, wanted: bool) -> Check {
    let found = ev.status.as_ref().ok().map(|s| s["capture_kernel"].clone());
    Check::new(
        format!("status.json capture_kernel == {wanted}"),
        found.as_ref().and_then(Value::as_bool) == Some(wanted),
        found.map_or_else(|| "no status.json".to_owned(), |v| format!("found {v}")),
    )
}

fn smmu_event(ev: &Evidence, kind: &str) -> Check {
    let all: Vec<&Value> = ev.of_kind(kind).collect();
    let ours = all.iter().find(|e| e["smmu"] == SMMU);
    Check::new(
        format!("{kind} event for {SMMU}"),
        ours.is_some(),
        match (ours, all.first()) {
            (Some(e), _) => brief(e),
            (None, Some(other)) => format!("only for other SMMUs: {}", brief(other)),
            (None, None) => format!("no {kind} event in the timeline"),
        },
    )
}

fn aer(ev: &Evidence, severity: &str) -> Check {
    let on_device: Vec<&Value> = ev
        .of_kind("aer")
        .filter(|e| e["device"] == AER_DEVICE)
        .collect();
    let hit = on_device.iter().find(|e| e["severity"] == severity);
    let seen: Vec<String> = ev
        .of_kind("aer")
        .map(|e| {
            format!(
                "{} {}",
                e["device"].as_str().unwrap_or("?"),
                e["severity"].as_str().unwrap_or("?")
            )
        })
        .collect();
    Check::new(
        format!("aer {severity} on {AER_DEVICE}"),
        hit.is_some(),
        hit.map_or_else(
            || format!("aer events seen: [{}]", seen.join(", ")),
            |e| brief(e),
        ),
    )
}

/// The boot-time trace check: the capture kernel's reset seen by both the boot trace
/// (`kprobe_event=` records) and kmsg, with its register writes, among them CR0.
fn reset_from_boot_trace(ev: &Evidence) -> Check {
    let name = "smmu_reset seen by boot_trace and kmsg, with a CR0 write";
    let Some(reset) = ev.of_kind("smmu_reset").find(|e| e["smmu"] == SMMU) else {
        return Check {
            blocking: false,
            ..Check::new(name, false, "no smmu_reset event")
        };
    };
    let sources: Vec<&str> = reset["sources"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let writes = reset["writes"].as_array().map_or(&[][..], Vec::as_slice);
    let cr0: Vec<String> = writes
        .iter()
        .filter(|w| w["register"] == "CR0")
        .map(|w| w["value"].as_str().unwrap_or("?").to_owned())
        .collect();
    let both = sources.contains(&"boot_trace") && sources.contains(&"kmsg");
    Check {
        blocking: false,
        ..Check::new(
            name,
            both && !cr0.is_empty(),
            format!(
                "sources [{}]; {} write(s), CR0 values [{}]",
                sources.join(", "),
                writes.len(),
                cr0.join(", ")
            ),
        )
    }
}

/// `kind` and the fields that identify an event, for messages.
/// The MIDR in the last `Booting Linux on physical CPU 0x... [0x<MIDR>]` line of the console
/// (arch/arm64/kernel/setup.c): the CPU QEMU presents, as the capture kernel read it.
fn console_midr(console: &str) -> Option<String> {
    console
        .lines()
        .filter_map(|l| {
            l.split_once("Booting Linux on physical CPU")?
                .1
                .split_once("[0x")
        })
        .filter_map(|(_, rest)| rest.split_once(']'))
        .filter_map(|(hex, _)| u32::from_str_radix(hex, 16).ok())
        .next_back()
        .map(|m| format!("{m:#010x}"))
}

/// The JSON document in `path`, or why not (naming the file).
fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
}

/// kdump-aer: the report's System section names the machine QEMU presents (its device-tree
/// model) and the CPU by the MIDR the kernel printed at boot.
#[must_use]
pub(crate) fn report_names_the_system(report_json: &Path, console: Option<&str>) -> Check {
    let name = "report names the machine (QEMU virt device tree) and the CPU (its MIDR)";
    let report = match read_json(report_json) {
        Ok(v) => v,
        Err(e) => return Check::new(name, false, e),
    };
    let system = &report["header"]["system"];
    let machine = system["machine"].as_str().unwrap_or("");
    let cpu = system["cpu"].as_str().unwrap_or("");
    let Some(midr) = console.and_then(console_midr) else {
        return Check::new(
            name,
            false,
            "no `Booting Linux on physical CPU ... [0x<MIDR>]` line on the console to compare with",
        );
    };
    Check::new(
        name,
        machine == QEMU_VIRT_MODEL && cpu.contains(&format!("MIDR {midr}")),
        format!(
            "machine {machine:?} (want {QEMU_VIRT_MODEL:?}), CPU {cpu:?} (want MIDR {midr}), from {}",
            system["source"].as_str().unwrap_or("nowhere")
        ),
    )
}

/// The machine name of the last `DMI: <name>, BIOS ...` console line (`dmi_setup()`,
/// `drivers/firmware/dmi_scan.c`): what an x86 guest says it is.
fn console_dmi_name(console: &str) -> Option<String> {
    console
        .lines()
        .filter_map(|l| l.split_once("] DMI: "))
        .filter_map(|(_, rest)| rest.split_once(", BIOS "))
        .map(|(name, _)| name.trim().to_owned())
        .next_back()
}

/// x86 kdump-aer: the report's System section names the machine by the DMI name the kernel
/// printed at boot. The observer does not identify x86 CPUs (its CPU line is the arm64 MIDR),
/// so only the machine is compared; the detail says what the report had for the CPU.
pub(crate) fn report_names_the_x86_machine(report_json: &Path, console: Option<&str>) -> Check {
    let name = "report names the machine (the console's DMI name)";
    let report = match read_json(report_json) {
        Ok(v) => v,
        Err(e) => return Check::new(name, false, e),
    };
    let system = &report["header"]["system"];
    let machine = system["machine"].as_str().unwrap_or("");
    let Some(dmi) = console.and_then(console_dmi_name) else {
        return Check::new(
            name,
            false,
            "no `DMI: <name>, BIOS ...` line on the console",
        );
    };
    Check::new(
        name,
        machine == dmi,
        format!(
            "machine {machine:?} (want {dmi:?}), CPU {:?} (not identified on x86), from {}",
            system["cpu"].as_str().unwrap_or(""),
            system["source"].as_str().unwrap_or("nowhere")
        ),
    )
}

fn brief(e: &Value) -> String {
    let mut e = e.clone();
    if let Some(map) = e.as_object_mut() {
        for noisy in ["raw", "probes", "writes"] {
            map.remove(noisy);
        }
    }
    truncate(&e.to_string(), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(status: Value, lines: &str) -> Evidence {
        let mut ev = Evidence::parse_timeline(lines);
        ev.status = Ok(status);
        ev
    }

    fn failed(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    const STOP: &str = r#"{"ts_ns":9,"kind":"observer_stopped","source":"observer","submitted":1,"dropped":0,"received":1,"undecodable":0}"#;

    #[test]
    fn the_x86_system_check_wants_the_consoles_dmi_name() {
        let dir = std::env::temp_dir().join(format!("xtask-x86-system-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.json");
        let console = "[    0.000000] DMI: QEMU Standard PC (Q35 + ICH9, 2009), BIOS 1.16.3-debian-1.16.3-2~bpo12+1 04/01/2014\r\n\
                       [    0.000000] DMI: Memory slots populated: 1/1\r\n";
        let write = |machine: &str| {
            let v = json!({"header": {"system": {"machine": machine, "source": "system_identity event"}}});
            std::fs::write(&path, v.to_string()).unwrap();
        };
        write("QEMU Standard PC (Q35 + ICH9, 2009)");
        let ok = report_names_the_x86_machine(&path, Some(console));
        assert!(ok.passed, "{ok:?}");
        write("linux,dummy-virt");
        assert!(!report_names_the_x86_machine(&path, Some(console)).passed);
        write("QEMU Standard PC (Q35 + ICH9, 2009)");
        assert!(!report_names_the_x86_machine(&path, Some("no dmi\n")).passed);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_system_check_wants_the_virt_model_and_the_booted_midr() {
        let dir = std::env::temp_dir().join(format!("xtask-system-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.json");
        let console = "[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x000f0510]\r\n\
                       [    0.000000] Booting Linux on physical CPU 0x0000000001 [0x000f0510]\r\n";
        let write = |machine: &str, cpu: &str| {
            let v = json!({"header": {"system": {"machine": machine, "cpu": cpu, "source": "system_identity event"}}});
            std::fs::write(&path, v.to_string()).unwrap();
        };
        write(
            QEMU_VIRT_MODEL,
            "implementer 0x00 part 0x051 r0p0 (MIDR 0x000f0510)",
        );
        let c = report_names_the_system(&path, Some(console));
        assert!(c.passed, "{}", c.detail);
        write(QEMU_VIRT_MODEL, "unknown");
        assert!(!report_names_the_system(&path, Some(console)).passed);
        write("unknown system", "x (MIDR 0x000f0510)");
        assert!(!report_names_the_system(&path, Some(console)).passed);
        assert!(!report_names_the_system(&path, None).passed);
        assert!(!report_names_the_system(&dir.join("nope.json"), Some(console)).passed);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn boot_passes_with_a_probe_and_fails_without() {
        let good = format!(
            "{}\n{}\n",
            r#"{"ts_ns":1,"source":"kmsg","kind":"smmu_probe","smmu":"9050000.smmuv3","oas_bits":44,"features":"0x88705"}"#,
            STOP
        );
        let checks = run(
            Scenario::Boot,
            &evidence(json!({"capture_kernel": false}), &good),
        );
        assert_eq!(failed(&checks), Vec::<&str>::new(), "{checks:?}");

        let checks = run(
            Scenario::Boot,
            &evidence(
                json!({"capture_kernel": true}),
                &format!("not json\n{STOP}\n"),
            ),
        );
        assert_eq!(
            failed(&checks),
            [
                "timeline.jsonl is JSON Lines",
                "status.json capture_kernel == false",
                "smmu_probe event for 9050000.smmuv3"
            ]
        );
    }

    #[test]
    fn kdump_aer_needs_all_three_severities_and_reports_boot_trace_separately() {
        let lines = [
            r#"{"ts_ns":1,"source":"kmsg","kind":"smmu_reset","smmu":"9050000.smmuv3"}"#,
            r#"{"ts_ns":2,"source":"ebpf","kind":"aer","device":"0000:02:00.0","severity":"correctable"}"#,
            r#"{"ts_ns":3,"source":"ebpf","kind":"aer","device":"0000:02:00.0","severity":"fatal"}"#,
            r#"{"ts_ns":4,"source":"ebpf","kind":"aer","device":"0000:00:03.0","severity":"nonfatal"}"#,
            STOP,
        ]
        .join("\n");
        let checks = run(
            Scenario::KdumpAer,
            &evidence(json!({"capture_kernel": true}), &lines),
        );
        assert_eq!(
            failed(&checks),
            [
                "aer nonfatal on 0000:02:00.0",
                "smmu_reset seen by boot_trace and kmsg, with a CR0 write",
                "smmu_reset: kmsg line and boot-trace CR0 write within 10 ms on one clock"
            ]
        );
        let boot_trace = &checks[checks.len() - 2];
        assert!(!boot_trace.blocking);
        assert!(
            checks
                .iter()
                .find(|c| c.name == "aer nonfatal on 0000:02:00.0")
                .unwrap()
                .detail
                .contains("0000:00:03.0 nonfatal")
        );

        let with_trace = lines.replace(
            r#""smmu":"9050000.smmuv3"}"#,
            r#""smmu":"9050000.smmuv3","sources":["boot_trace","kmsg"],"writes":[{"ts_ns":1,"register":"CR0","value":"0x0"},{"ts_ns":2,"register":"CR0","value":"0x9"}]}"#,
        );
        let checks = run(
            Scenario::KdumpAer,
            &evidence(json!({"capture_kernel": true}), &with_trace),
        );
        let boot_trace = &checks[checks.len() - 2];
        assert!(boot_trace.passed, "{boot_trace:?}");
        assert!(boot_trace.detail.contains("CR0 values [0x0, 0x9]"));
    }

    #[test]
    fn kdump_fails_on_aer_and_on_an_unclean_stop() {
        let lines = [
            r#"{"ts_ns":1,"source":"kmsg","kind":"smmu_reset","smmu":"9050000.smmuv3"}"#,
            r#"{"ts_ns":2,"source":"ebpf","kind":"aer","device":"0000:02:00.0","severity":"fatal"}"#,
        ]
        .join("\n");
        let checks = run(
            Scenario::Kdump,
            &evidence(json!({"capture_kernel": true}), &lines),
        );
        assert_eq!(
            failed(&checks),
            [
                "observer stopped cleanly (observer_stopped last)",
                "no aer events (nothing was injected)",
                "smmu_reset: kmsg line and boot-trace CR0 write within 10 ms on one clock"
            ]
        );
    }

    #[test]
    fn capture_panic_needs_the_fatal_aer_on_the_console_before_the_panic() {
        let lines = [
            r#"{"ts_ns":1,"source":"kmsg","kind":"smmu_reset","smmu":"9050000.smmuv3"}"#,
            r#"{"ts_ns":2,"source":"ebpf","kind":"aer","device":"0000:02:00.0","severity":"fatal"}"#,
        ]
        .join("\n");
        let console = concat!(
            "[    0.000000] Booting Linux on physical CPU 0x0\n",
            "[    5.0] kdump-dma-observer: v1 {\"kind\":\"aer\",\"severity\":\"fatal\"}\n",
            "[    6.3] Kernel panic - not syncing: sysrq triggered crash\n",
            "[    0.000000] Booting Linux on physical CPU 0x1\n",
            "[    6.0] kdump-dma-observer: v1 {\"kind\":\"smmu_reset\"}\n",
            "[    9.1] kdump-dma-observer: v1 {\"ts_ns\":8,\"kind\":\"aer\",\"device\":\"0000:02:00.0\",\"severity\":\"fatal\"}\n",
            "[   10.2] Kernel panic - not syncing: sysrq triggered crash\n",
        );
        let mut ev = evidence(json!({"capture_kernel": true}), &lines);
        ev.console = Some(console.to_owned());
        let checks = run(Scenario::CapturePanic, &ev);
        assert_eq!(
            failed(&checks),
            ["smmu_reset: kmsg line and boot-trace CR0 write within 10 ms on one clock"],
            "{checks:?}"
        );
        assert!(
            !checks
                .iter()
                .any(|c| c.name.starts_with("observer stopped")),
            "the observer dies with the capture kernel"
        );
        let story = &checks[checks.len() - 2];
        assert!(
            story.detail.contains("2 mirror line(s)")
                && story.detail.contains("fatal aer mirrored at line 6")
                && story.detail.contains("at line 7: sysrq triggered crash"),
            "{story:?}"
        );

        // The first kernel's mirror line does not count, nor does a panic before the AER.
        let only_first = console.replace(
            r#"{"ts_ns":8,"kind":"aer","device":"0000:02:00.0","severity":"fatal"}"#,
            "{}",
        );
        ev.console = Some(only_first);
        let checks = run(Scenario::CapturePanic, &ev);
        assert_eq!(
            failed(&checks),
            [
                "console.log: fatal aer mirrored in the capture boot, then its panic",
                "smmu_reset: kmsg line and boot-trace CR0 write within 10 ms on one clock"
            ]
        );
        ev.console = None;
        let checks = run(Scenario::CapturePanic, &ev);
        assert!(!checks[checks.len() - 2].passed);
    }

    /// The issue's run: the reset line at 2.003 s (printk), the first CR0 write at 1.804 s
    /// (monotonic), the printk clock 200 ms ahead.
    fn one_clock_evidence(offset: Option<i64>, write_ms: u64) -> Evidence {
        let line = format!(
            r#"{{"ts_ns":1,"source":"kmsg","kind":"smmu_reset","smmu":"9050000.smmuv3","sources":["boot_trace","kmsg"],"writes":[{{"ts_ns":{},"register":"CR0","value":"0x0"}}]}}"#,
            write_ms * 1_000_000
        );
        let status = match offset {
            Some(o) => {
                json!({"capture_kernel": true, "clock_offset_ns": o, "clock_offset_uncertainty_ns": 20_000})
            }
            None => {
                json!({"capture_kernel": true, "clock_offset_method": "not measured: cannot open /dev/kmsg"})
            }
        };
        let mut ev = evidence(status, &format!("{line}\n{STOP}"));
        ev.console = Some(
            "[    1.900000] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\r\n\
             [    0.000000] Booting Linux on physical CPU 0x1\r\n\
             [    2.003000] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\r\n"
                .to_owned(),
        );
        ev
    }

    #[test]
    fn the_reset_line_and_its_cr0_write_agree_on_one_clock() {
        let check = |ev: &Evidence| reset_on_one_clock(ev);
        let good = check(&one_clock_evidence(Some(-200_000_000), 1_806));
        assert!(good.passed && good.blocking, "{good:?}");
        assert!(
            good.detail.contains("write +3.000 ms after the line"),
            "{good:?}"
        );
        let uncorrected = check(&one_clock_evidence(Some(0), 1_806));
        assert!(
            !uncorrected.passed,
            "the write 197 ms before its line: {uncorrected:?}"
        );
        let late = check(&one_clock_evidence(Some(-200_000_000), 1_815));
        assert!(!late.passed, "12 ms apart: {late:?}");
        let unmeasured = check(&one_clock_evidence(None, 1_806));
        assert!(!unmeasured.passed && unmeasured.blocking, "{unmeasured:?}");
        assert!(unmeasured.detail.contains("not measured"), "{unmeasured:?}");
        let mut no_trace = one_clock_evidence(Some(-200_000_000), 1_806);
        no_trace.timeline.retain(|e| e["kind"] != "smmu_reset");
        let no_trace = check(&no_trace);
        assert!(!no_trace.passed && !no_trace.blocking, "{no_trace:?}");
        assert_eq!(printk_time_ns("[   12.3456] x"), Some(12_345_600_000));
        assert_eq!(printk_time_ns("no stamp"), None);
    }

    #[test]
    fn x86_kdump_aer_needs_the_table_copy_the_probes_and_the_errors() {
        let started = r#"{"ts_ns":0,"kind":"observer_started","source":"observer","version":"0","capture_kernel":true,"kernel_release":"6.12","detail":"","probes":[{"name":"mce_record","target":"tracepoint:mce/mce_record","required":true,"state":"attached"},{"name":"external_abort","target":"kprobe:do_sea","required":false,"state":"absent"},{"name":"serror","target":"kprobe:do_serror","required":false,"state":"absent"},{"name":"smmu_reg_write","target":"kprobe:arm_smmu_write_reg_sync","required":false,"state":"absent"}]}"#;
        let copy = r#"{"ts_ns":1,"source":"kmsg","kind":"iommu_table_copy","iommu":"dmar","outcome":"copied","detail":"dmar0"}"#;
        let aer = |sev: &str| {
            format!(
                r#"{{"ts_ns":5,"source":"ebpf","kind":"aer","device":"0000:02:00.0","severity":"{sev}"}}"#
            )
        };
        let good = [
            started.to_owned(),
            copy.to_owned(),
            aer("correctable"),
            aer("nonfatal"),
            aer("fatal"),
            STOP.to_owned(),
        ]
        .join("\n");
        let status = json!({"capture_kernel": true});
        let checks = run_for(
            GuestArch::X86_64,
            Scenario::KdumpAer,
            &evidence(status.clone(), &good),
        );
        assert!(failed(&checks).is_empty(), "{checks:?}");
        let trying = good.replace(r#""outcome":"copied""#, r#""outcome":"trying""#);
        let checks = run_for(
            GuestArch::X86_64,
            Scenario::KdumpAer,
            &evidence(status.clone(), &trying),
        );
        assert_eq!(
            failed(&checks),
            ["iommu_table_copy event: tables copied from the crashed kernel"]
        );
        let only_ir = good.replace(r#""iommu":"dmar","#, r#""iommu":"dmar-ir","#);
        let checks = run_for(
            GuestArch::X86_64,
            Scenario::KdumpAer,
            &evidence(status.clone(), &only_ir),
        );
        assert_eq!(
            failed(&checks),
            ["iommu_table_copy event: tables copied from the crashed kernel"],
            "the interrupt-remapping table is not the DMA hand-over"
        );
        let required = good.replace(
            r#""required":false,"state":"absent"}]"#,
            r#""required":true,"state":"absent"}]"#,
        );
        let checks = run_for(
            GuestArch::X86_64,
            Scenario::KdumpAer,
            &evidence(status, &required),
        );
        assert_eq!(
            failed(&checks),
            ["x86 probes: mce_record attached; arm64-only probes absent, not required"]
        );
    }

    #[test]
    fn missing_files_fail_with_their_paths() {
        let dir = std::env::temp_dir().join(format!("xtask-checks-{}", std::process::id()));
        let ev = Evidence::load(&dir);
        let checks = run(Scenario::ExternalAbort, &ev);
        assert!(checks[0].detail.contains("status.json"), "{checks:?}");
        assert!(checks[1].detail.contains("timeline.jsonl"), "{checks:?}");
        assert!(checks.iter().all(|c| !c.passed));
    }
}

#[cfg(test)]
mod pci_tests {
    use super::*;

    fn timeline(lines: &[Value]) -> Evidence {
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        Evidence::parse_timeline(&text.join("\n"))
    }

    #[test]
    fn residue_on_a_root_port_naming_the_nic_is_reset_evidence() {
        let root_port = json!({"ts_ns": 1, "kind": "pci_device", "source": "observer",
            "snapshot": "start", "bdf": "0000:00:01.0", "uncorrectable_residue": true,
            "residue": [format!("Error Source Identification names {AER_DEVICE} as the source of the last ERR_FATAL/NONFATAL")]});
        assert!(pci_evidence(&timeline(std::slice::from_ref(&root_port)), false).passed);
        assert!(
            !pci_evidence(&timeline(&[root_port]), true).passed,
            "residue is not a latched, new bit"
        );
        let other = json!({"ts_ns": 1, "kind": "pci_device", "source": "observer",
            "snapshot": "start", "bdf": "0000:00:05.0", "uncorrectable": true});
        assert!(!pci_evidence(&timeline(&[other]), false).passed);
    }

    #[test]
    fn compat_needs_a_bit_new_since_start() {
        let latched = json!({"ts_ns": 1, "kind": "pci_device", "source": "observer",
            "snapshot": "rescan", "bdf": AER_DEVICE, "uncorrectable": true,
            "new_since_start": ["UESta.MalfTLP (fatal)"]});
        assert!(pci_evidence(&timeline(&[latched]), true).passed);
    }
}
