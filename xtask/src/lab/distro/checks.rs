//! What `lab debian-kdump` asserts, on what the guest left on its disk (read back with
//! debugfs), the serial console, and the files copied out of the dump directory.
use std::path::Path;

use serde_json::Value;

use super::{customize::Installed, disk::Entry, image::Makedumpfile, run::strip_ansi};
use crate::lab::{
    checks::{Check, SMMU},
    console::{Signal, classify},
    metrics,
};

/// Files the observer writes next to the dump once it is written (contract of `run --dump-dir`).
pub(crate) const NEXT_TO_DUMP: [&str; 7] = [
    "timeline.jsonl",
    "status.json",
    "report.md",
    "report.html",
    "report.json",
    "verdict.json",
    metrics::PROM,
];

/// Where recover publishes its metrics, and its copy in the run folder.
pub(crate) const TEXTFILE: &str = "/var/lib/prometheus/node-exporter/kdump-dma-observer.prom";
pub(crate) const TEXTFILE_COPY: &str = "node-exporter/kdump-dma-observer.prom";

/// What the run left, as read back.
#[derive(Debug)]
pub(crate) struct Evidence<'a> {
    pub installed: &'a Installed,
    pub makedumpfile: Makedumpfile,
    /// The run folder, holding the copied files.
    pub dir: &'a Path,
    /// /var/crash in the image.
    pub crash: Result<Vec<Entry>, String>,
    /// The dump directory kdump-tools made (`/var/crash/<stamp>`) and its entries.
    pub dump_dir: Option<(String, Vec<Entry>)>,
    /// /etc/default/kdump-tools after the run.
    pub defaults: Result<String, String>,
    pub console: String,
}

impl Evidence<'_> {
    fn json(&self, name: &str) -> Result<Value, String> {
        let path = self.dir.join(name);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))
    }

    fn timeline(&self) -> Result<Vec<Value>, String> {
        let path = self.dir.join("timeline.jsonl");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(n, l)| {
                serde_json::from_str::<Value>(l)
                    .map_err(|e| format!("timeline.jsonl line {}: {e}", n + 1))
            })
            .collect()
    }

    /// The dump file (`dump.<stamp>`) and its size.
    fn dump(&self) -> Option<&Entry> {
        self.dump_dir
            .as_ref()?
            .1
            .iter()
            .find(|e| e.is_file() && e.name.starts_with("dump."))
    }
}

/// Every check, in the order of the run.
#[must_use]
pub(crate) fn run(ev: &Evidence<'_>) -> Vec<Check> {
    let mut checks = vec![
        units_enabled(ev.installed),
        setup_applied(ev),
        dump_dir(ev),
        dump_size(ev),
        capture_kernel(ev),
        memory_within_cap(ev),
        started_before_dump(&ev.console),
    ];
    let timeline = ev.timeline();
    checks.push(smmu_reset(&timeline));
    checks.push(stopped_cleanly(&timeline, &ev.console));
    let verdict = ev.json("verdict.json");
    checks.push(verdict_as_expected(ev, &verdict));
    checks.push(outcome_agrees(ev));
    checks.push(files_next_to_dump(ev));
    checks.push(recovered(&ev.console));
    checks.extend(textfile(ev, &verdict));
    checks.push(instrumentation_reached_capture(ev, &verdict));
    checks.push(boot_trace(&timeline));
    checks.push(identity_in_report(ev));
    checks
}

/// The release in the first `Linux version <release> (...)` line of the console: the kernel
/// that booted first, i.e. the one that crashed.
fn first_linux_version(console: &str) -> Option<String> {
    console.lines().find_map(|l| {
        let rest = l.split_once("Linux version ")?.1;
        rest.split_whitespace().next().map(str::to_owned)
    })
}

/// The report next to the dump names the system from the daemon's `system_identity`, with the
/// crashed kernel's release read from VMCOREINFO (/proc/vmcore's note) matching the kernel that
/// booted first.
fn identity_in_report(ev: &Evidence<'_>) -> Check {
    let name = "report.json names the system and the crashed kernel's release from VMCOREINFO";
    let report = match ev.json("report.json") {
        Ok(r) => r,
        Err(e) => return Check::new(name, false, e),
    };
    let system = &report["header"]["system"];
    let vmcoreinfo = system["identity"]["crashed_kernel"]["release"]
        .as_str()
        .unwrap_or("");
    let console = strip_ansi(&ev.console);
    let (wanted, from) = match first_linux_version(&console) {
        Some(r) => (r, "the console's first `Linux version` line"),
        None => (
            ev.json("status.json")
                .ok()
                .and_then(|s| s["kernel_release"].as_str().map(str::to_owned))
                .unwrap_or_default(),
            "status.json (the capture kernel is the same package)",
        ),
    };
    let machine = system["machine"].as_str().unwrap_or("");
    let cpu = system["cpu"].as_str().unwrap_or("");
    Check::new(
        name,
        !machine.is_empty()
            && !cpu.is_empty()
            && !wanted.is_empty()
            && vmcoreinfo == wanted
            && report["header"]["crashed_kernel"] == wanted.as_str(),
        format!(
            "machine {machine:?}, CPU {cpu:?}, crashed kernel (VMCOREINFO) {vmcoreinfo:?}, want {wanted:?} from {from}; identity from {}",
            system["source"].as_str().unwrap_or("nowhere")
        ),
    )
}

fn units_enabled(installed: &Installed) -> Check {
    let wanted = [
        "kdump-tools-dump.service.wants/kdump-dma-observer.service",
        "multi-user.target.wants/kdump-dma-observer-recover.service",
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !installed.enabled.iter().any(|e| e == w))
        .collect();
    Check::new(
        "the package enables its units (dpkg -i in the image)",
        missing.is_empty(),
        if missing.is_empty() {
            format!("{}: {}", installed.deb, installed.enabled.join(", "))
        } else {
            format!(
                "missing {}; enabled: [{}]",
                missing.join(", "),
                installed.enabled.join(", ")
            )
        },
    )
}

/// The value of `name=` in a shell defaults file (last active setting, quotes removed).
fn variable<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.trim().strip_prefix(name)?.strip_prefix('='))
        .next_back()
        .map(|v| v.trim().trim_matches('"'))
}

fn setup_applied(ev: &Evidence<'_>) -> Check {
    let name = "setup --apply added the boot instrumentation to KDUMP_CMDLINE_APPEND";
    match &ev.defaults {
        Err(e) => Check::new(name, false, e.clone()),
        Ok(text) => {
            let before = variable(&ev.installed.kdump_tools_defaults, "KDUMP_CMDLINE_APPEND");
            let after = variable(text, "KDUMP_CMDLINE_APPEND");
            Check::new(
                name,
                after.is_some_and(|a| a.contains("kprobe_event=")),
                format!(
                    "before: {}; after: {}",
                    before.map_or("(unset)".to_owned(), |b| truncate(b, 80)),
                    after.map_or("(unset)".to_owned(), |a| truncate(a, 200))
                ),
            )
        }
    }
}

fn dump_dir(ev: &Evidence<'_>) -> Check {
    let name = "kdump-tools left a dump directory /var/crash/<stamp>";
    match (&ev.crash, &ev.dump_dir) {
        (Err(e), _) => Check::new(name, false, e.clone()),
        (Ok(_), Some((stamp, entries))) => Check::new(
            name,
            true,
            format!("/var/crash/{stamp}: {}", listing(entries)),
        ),
        (Ok(crash), None) => Check::new(
            name,
            false,
            format!("no <stamp> directory; /var/crash: {}", listing(crash)),
        ),
    }
}

fn dump_size(ev: &Evidence<'_>) -> Check {
    let name = format!("dump size as {} predicts", ev.makedumpfile.name);
    let Some(dump) = ev.dump() else {
        return Check::new(name, false, "no dump.<stamp> file");
    };
    let expected_empty = ev.makedumpfile.empty_dump;
    Check::new(
        name,
        (dump.size == 0) == expected_empty,
        format!(
            "{} is {} bytes; expected {}",
            dump.name,
            dump.size,
            if expected_empty {
                "0 (makedumpfile fails on this kernel)"
            } else {
                "> 0"
            }
        ),
    )
}

fn capture_kernel(ev: &Evidence<'_>) -> Check {
    let name = "the observer ran in the capture kernel (status.json capture_kernel == true)";
    match ev.json("status.json") {
        Err(e) => Check::new(name, false, e),
        Ok(status) => {
            let mut by_state: Vec<(String, usize)> = Vec::new();
            for p in status["probes"].as_array().into_iter().flatten() {
                let state = p["state"].as_str().unwrap_or("?").to_owned();
                match by_state.iter_mut().find(|(s, _)| *s == state) {
                    Some((_, n)) => *n += 1,
                    None => by_state.push((state, 1)),
                }
            }
            Check::new(
                name,
                status["capture_kernel"] == true,
                format!(
                    "capture_kernel {}; kernel {}; probes: {}",
                    status["capture_kernel"],
                    status["kernel_release"].as_str().unwrap_or("?"),
                    by_state
                        .iter()
                        .map(|(s, n)| format!("{n} {s}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    }
}

/// The unit caps the daemon at 64 MiB (`MemoryMax=`); `setup` tells users what it measured.
const MEMORY_MAX_KIB: u64 = 64 << 10;

fn memory_within_cap(ev: &Evidence<'_>) -> Check {
    let name = "the observer's peak memory in the capture kernel is under its unit's MemoryMax (status.json peak_rss_kib)";
    match ev.json("status.json") {
        Err(e) => Check::new(name, false, e),
        Ok(status) => match status["peak_rss_kib"].as_u64() {
            None => Check::new(name, false, "status.json has no peak_rss_kib"),
            Some(kib) => Check::new(
                name,
                kib < MEMORY_MAX_KIB,
                format!(
                    "peak {kib} KiB ({:.1} MiB) of {} MiB",
                    f64::from(u32::try_from(kib).unwrap_or(u32::MAX)) / 1024.0,
                    MEMORY_MAX_KIB >> 10
                ),
            ),
        },
    }
}

/// The lines of the `n`-th boot (1-based) on the console, without colours.
fn boot_lines(console: &str, n: u32) -> Vec<String> {
    let mut boot = 0;
    let mut out = Vec::new();
    for line in console.lines() {
        let line = strip_ansi(line);
        if classify(&line) == Some(Signal::KernelBoot) {
            boot += 1;
        }
        if boot == n {
            out.push(line);
        }
        if boot > n {
            break;
        }
    }
    out
}

fn started_before_dump(console: &str) -> Check {
    let name = "capture boot: the observer unit ran before kdump-tools-dump (console)";
    let capture = boot_lines(console, 2);
    let find = |needle: &str| capture.iter().position(|l| l.contains(needle));
    // systemd shortens unit names on the console (`kdump-tools-dump.…rnel crash dump`): the
    // start of the name is enough. `Started` of a Type=notify unit means READY=1 was sent.
    let observer = find("Started kdump-dma-observer").or_else(|| find("kdump-dma-observer: v1 "));
    let dump = find("Starting kdump-tools-dump").or_else(|| find("kdump-tools["));
    let detail = format!(
        "observer's first line: {}; kdump-tools-dump's first line: {}",
        observer.map_or("none".to_owned(), |i| format!(
            "capture line {}: {}",
            i + 1,
            truncate(capture[i].trim(), 100)
        )),
        dump.map_or("none".to_owned(), |i| format!(
            "capture line {}: {}",
            i + 1,
            truncate(capture[i].trim(), 100)
        )),
    );
    Check::new(
        name,
        matches!((observer, dump), (Some(o), Some(d)) if o < d),
        detail,
    )
}

fn smmu_reset(timeline: &Result<Vec<Value>, String>) -> Check {
    let name = format!("smmu_reset of {SMMU} in the capture timeline");
    match timeline {
        Err(e) => Check::new(name, false, e.clone()),
        Ok(events) => {
            let reset = events
                .iter()
                .find(|e| e["kind"] == "smmu_reset" && e["smmu"] == SMMU);
            Check::new(
                name,
                reset.is_some(),
                reset.map_or_else(
                    || format!("none among {} events", events.len()),
                    |e| {
                        format!(
                            "sources {}; {} register write(s)",
                            e["sources"],
                            e["writes"].as_array().map_or(0, Vec::len)
                        )
                    },
                ),
            )
        }
    }
}

fn stopped_cleanly(timeline: &Result<Vec<Value>, String>, console: &str) -> Check {
    let name =
        "the observer stopped once the dump was written (observer_stopped last in the timeline)";
    let events = match timeline {
        Err(e) => return Check::new(name, false, e.clone()),
        Ok(events) => events,
    };
    let last = events.last();
    let stopped = last.is_some_and(|e| e["kind"] == "observer_stopped");
    let mut detail = last.map_or_else(
        || "empty timeline".to_owned(),
        |e| format!("last: {}", e["kind"]),
    );
    // Why a missed stop matters: kdump-tools ends with `reboot -f`, which with systemd's
    // reboot means `systemctl reboot -ff`: sync and reboot(2), no service manager, no
    // systemd-shutdown, no signal to anyone. The daemon must see the dump finish by itself.
    let capture = boot_lines(console, 2);
    if !stopped
        && capture
            .iter()
            .any(|l| l.contains("reboot: Restarting system"))
        && !capture.iter().any(|l| l.contains("systemd-shutdown"))
    {
        detail.push_str(
            "; the capture boot rebooted without systemd-shutdown (kdump-tools' `reboot -f` is \
             `systemctl reboot -ff` on Debian 12: sync and reboot(2), no SIGTERM to any process; \
             the daemon did not stop on the finished dump before it)",
        );
    }
    Check::new(name, stopped, detail)
}

/// The verdict the dump on the disk calls for: `reset-no-fatal` either way. A complete dump
/// leaves the reset without fatal signs; an empty one (bookworm's makedumpfile 1.7.2 cannot
/// read the 6.12 kernel) is the dump tool's own failure, which the report names with its
/// cause and does not count against the reset (docs/verdict.md, "A failed capture says why").
/// Returns the verdict and, for the failed dump, what the summary must name.
fn expected_verdict(ev: &Evidence<'_>) -> (&'static str, Option<[&'static str; 2]>) {
    match ev.dump() {
        Some(d) if d.size > 0 => ("reset-no-fatal", None),
        _ => ("reset-no-fatal", Some(["makedumpfile Failed.", "(cause: "])),
    }
}

fn verdict_as_expected(ev: &Evidence<'_>, verdict: &Result<Value, String>) -> Check {
    let (expected, named) = expected_verdict(ev);
    let name = match named {
        Some(_) => format!(
            "verdict.json: {expected}, the makedumpfile failure and its cause named, no fatal sign"
        ),
        None => format!("verdict.json: {expected}"),
    };
    match verdict {
        Err(e) => Check::new(name, false, e.clone()),
        Ok(v) => {
            let found = v["verdict"].as_str().unwrap_or("(none)");
            let fatal = v["first_fatal"]["kind"].as_str();
            let summary = v["summary"].as_str().unwrap_or("");
            let all_named = named.is_none_or(|words| words.iter().all(|w| summary.contains(w)));
            Check::new(
                name,
                found == expected && fatal.is_none() && all_named,
                format!(
                    "verdict {found}; first fatal {}; summary: {}",
                    fatal.unwrap_or("none"),
                    truncate(summary, 400)
                ),
            )
        }
    }
}

fn outcome_agrees(ev: &Evidence<'_>) -> Check {
    let name = "the report's capture_outcome agrees with the dump size on the disk";
    let Some(dump) = ev.dump() else {
        return Check::new(name, false, "no dump.<stamp> file");
    };
    let report = match ev.json("report.json") {
        Ok(r) => r,
        Err(e) => return Check::new(name, false, e),
    };
    let outcome = report["timeline"]
        .as_array()
        .into_iter()
        .flatten()
        .rfind(|e| e["kind"] == "capture_outcome");
    match outcome {
        None => Check::new(name, false, "no capture_outcome event in report.json"),
        Some(o) => Check::new(
            name,
            o["complete"].as_bool() == Some(dump.size > 0),
            format!(
                "{} is {} bytes; report: complete {}, {}",
                dump.name,
                dump.size,
                o["complete"],
                o["detail"].as_str().unwrap_or("")
            ),
        ),
    }
}

fn files_next_to_dump(ev: &Evidence<'_>) -> Check {
    let name = "the observer's files are next to the dump";
    let Some((stamp, entries)) = &ev.dump_dir else {
        return Check::new(name, false, "no dump directory");
    };
    let missing: Vec<&str> = NEXT_TO_DUMP
        .iter()
        .copied()
        .filter(|f| {
            !entries
                .iter()
                .any(|e| e.is_file() && e.name == *f && e.size > 0)
        })
        .collect();
    Check::new(
        name,
        missing.is_empty(),
        if missing.is_empty() {
            format!("/var/crash/{stamp}: {}", NEXT_TO_DUMP.join(", "))
        } else {
            format!(
                "/var/crash/{stamp} lacks (or has empty) {}",
                missing.join(", ")
            )
        },
    )
}

fn recovered(console: &str) -> Check {
    let name = "kdump-dma-observer-recover.service succeeded on the next boot";
    let marker = console.lines().find_map(|l| match classify(l) {
        Some(Signal::Marker(text)) => text.strip_prefix("RECOVERED ").map(str::to_owned),
        _ => None,
    });
    match marker {
        None => Check::new(name, false, "the driver printed no RECOVERED line"),
        Some(text) => Check::new(
            name,
            text.split_whitespace().any(|w| w == "result=success")
                && text.split_whitespace().any(|w| w == "status=0")
                && text.split_whitespace().any(|w| w == "condition=yes"),
            text,
        ),
    }
}

fn textfile(ev: &Evidence<'_>, verdict: &Result<Value, String>) -> Vec<Check> {
    let path = ev.dir.join(TEXTFILE_COPY);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return vec![Check::new(
                format!("{TEXTFILE} written by recover"),
                false,
                format!("{}: {e}", path.display()),
            )];
        }
    };
    let gauge = metrics::verdict_gauge(&text);
    let word = verdict.as_ref().ok().and_then(|v| v["verdict"].as_str());
    vec![
        Check::new(
            format!("{TEXTFILE} written by recover"),
            true,
            format!("{} lines", text.lines().count()),
        ),
        Check::new(
            "its verdict gauge agrees with verdict.json",
            gauge.is_some() && gauge.as_deref() == word,
            format!(
                "gauge {}, verdict.json {}",
                gauge.as_deref().unwrap_or("(none at 1)"),
                word.unwrap_or("(none)")
            ),
        ),
        metrics::promtool(&path, ev.dir),
    ]
}

fn instrumentation_reached_capture(ev: &Evidence<'_>, verdict: &Result<Value, String>) -> Check {
    let name = "the boot instrumentation reached the capture kernel's command line";
    let capture = boot_lines(&ev.console, 2);
    let cmdline = capture
        .iter()
        .find_map(|l| l.split_once("Kernel command line: ").map(|(_, c)| c.trim()));
    let audited = verdict
        .as_ref()
        .ok()
        .and_then(|v| v["cmdline_audit"]["boot_instrumentation"].as_bool());
    let kprobes = cmdline.map_or(0, |c| c.matches("kprobe_event=").count());
    Check::new(
        name,
        kprobes > 0 && audited != Some(false),
        format!(
            "{kprobes} kprobe_event= on the console's capture command line; verdict.json cmdline_audit.boot_instrumentation {}; cmdline: {}",
            audited.map_or("absent".to_owned(), |b| b.to_string()),
            cmdline.map_or("(not on the console)".to_owned(), |c| truncate(c, 160))
        ),
    )
}

/// Non-blocking, as in the kdump-aer scenario: depends on which kprobes `cmdline` includes.
fn boot_trace(timeline: &Result<Vec<Value>, String>) -> Check {
    let name = "boot-trace records in the capture timeline (SMMU register writes)";
    let (passed, detail) = match timeline {
        Err(e) => (false, e.clone()),
        Ok(events) => {
            let from_trace = events
                .iter()
                .filter(|e| {
                    e["source"] == "boot_trace"
                        || e["sources"]
                            .as_array()
                            .is_some_and(|s| s.iter().any(|x| x == "boot_trace"))
                })
                .count();
            let writes = events
                .iter()
                .filter(|e| e["kind"] == "smmu_reset")
                .map(|e| e["writes"].as_array().map_or(0, Vec::len))
                .sum::<usize>()
                + events
                    .iter()
                    .filter(|e| e["kind"] == "smmu_reg_write")
                    .count();
            (
                from_trace > 0 && writes > 0,
                format!(
                    "{from_trace} event(s) from the boot trace; {writes} SMMU register write(s)"
                ),
            )
        }
    };
    Check {
        blocking: false,
        ..Check::new(name, passed, detail)
    }
}

fn listing(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "(empty)".to_owned();
    }
    entries
        .iter()
        .map(|e| {
            if e.is_dir() {
                format!("{}/", e.name)
            } else {
                format!("{} ({} B)", e.name, e.size)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shell_variables_like_kdump_config() {
        let text = "#KDUMP_CMDLINE_APPEND=\"x\"\nKDUMP_CMDLINE_APPEND=\"reset_devices\"\n  KDUMP_CMDLINE_APPEND=\"reset_devices kprobe_event=p,a\"\n";
        assert_eq!(
            variable(text, "KDUMP_CMDLINE_APPEND"),
            Some("reset_devices kprobe_event=p,a")
        );
        assert_eq!(variable(text, "USE_KDUMP"), None);
    }

    /// The capture boot of a real run (colours removed, shortened).
    const CONSOLE: &str = "[    0.0] Booting Linux on physical CPU 0x0\n\
        [   21.0] kdump-tools[1]: Starting kdump-tools:\n\
        [    0.0] Booting Linux on physical CPU 0x1\n\
        [    0.0] Kernel command line: root=/dev/vda reset_devices kprobe_event=p:kdo/a,f\n\
        \u{1b}[0m         Starting kdump-dma-observe\u{2026}nce in the kdump capture kernel...\n\
        [   19.2] kdump-dma-observer: v1 {\"kind\":\"smmu_reset\"}\n\
        [\u{1b}[0;32m  OK  \u{1b}[0m] Started kdump-dma-observer\u{2026}dence in the kdump capture kernel.\n\
        \u{1b}[K         Starting kdump-tools-dump.\u{2026}rnel crash dump capture service...\n\
        [   21.0] kdump-tools[272]: Starting kdump-tools:\n\
        [   22.4] kdump-dma-observer: v1 {\"kind\":\"smmu_reg_write\",\"value\":\"0x0\"}\n\
        [   22.4] reboot: Restarting system\n\
        [    0.0] Booting Linux on physical CPU 0x0\n";

    #[test]
    fn the_first_linux_version_is_the_crashed_kernel() {
        let console = "[    0.0] Booting Linux on physical CPU 0x0\n[    0.0] Linux version 6.12.95+deb12-arm64 (debian-kernel@lists.debian.org) #1\n[    0.0] Linux version 6.1.0-x (y)\n";
        assert_eq!(
            first_linux_version(console).as_deref(),
            Some("6.12.95+deb12-arm64")
        );
        assert_eq!(first_linux_version(CONSOLE), None);
    }

    #[test]
    fn orders_the_capture_boots_lines() {
        let c = started_before_dump(CONSOLE);
        assert!(c.passed, "{c:?}");
        assert!(
            c.detail.contains("capture line 5") && c.detail.contains("capture line 6"),
            "{c:?}"
        );
        let dump_first = CONSOLE.replace(
            "[\u{1b}[0;32m  OK  \u{1b}[0m] Started kdump-dma-observer\u{2026}dence in the kdump capture kernel.\n",
            "",
        );
        let dump_first = dump_first.replace(
            "[   19.2] kdump-dma-observer: v1 {\"kind\":\"smmu_reset\"}\n",
            "",
        );
        assert!(!started_before_dump(&dump_first).passed);
        assert_eq!(boot_lines(CONSOLE, 2).len(), 9);
    }

    #[test]
    fn says_why_the_observer_got_no_sigterm() {
        let timeline: Result<Vec<Value>, String> = Ok(vec![
            serde_json::json!({"kind": "observer_started"}),
            serde_json::json!({"kind": "smmu_reset"}),
        ]);
        let c = stopped_cleanly(&timeline, CONSOLE);
        assert!(!c.passed);
        assert!(c.detail.contains("without systemd-shutdown"), "{c:?}");
        let with_shutdown = CONSOLE.replace(
            "[   22.4] reboot: Restarting",
            "[   22.3] systemd-shutdown[1]: Sending SIGTERM to remaining processes...\n[   22.4] reboot: Restarting",
        );
        let c = stopped_cleanly(&timeline, &with_shutdown);
        assert!(
            !c.passed && !c.detail.contains("without systemd-shutdown"),
            "{c:?}"
        );
        let stopped: Result<Vec<Value>, String> =
            Ok(vec![serde_json::json!({"kind": "observer_stopped"})]);
        assert!(stopped_cleanly(&stopped, CONSOLE).passed);
    }

    #[test]
    fn recover_must_have_succeeded() {
        let ok = "[ 30.1] LAB: RECOVERED load=loaded result=success status=0 condition=yes\n";
        assert!(recovered(ok).passed);
        let failed = ok.replace("result=success status=0", "result=exit-code status=1");
        assert!(!recovered(&failed).passed);
        assert!(!recovered("").passed);
    }
}
