//! One scenario run: boot the lab machine, follow its console through the expected phases, act
//! on the way (inject AER errors), stop QEMU, collect the observer's files, judge them with the
//! host observer's `report`, run the checks and write `result.json`.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::{
    arch::{GuestArch, X86Iommu},
    checks::{self, Check, Evidence},
    console::{Follower, Signal, Wait, Watch, classify},
    initramfs::Initrds,
    kernel::Kernel,
    metrics,
    qemu::{self, Machine, Qemu},
    qmp::Qmp,
    report,
    scenario::{BETWEEN_INJECTIONS, RESET_LINE, Scenario},
};

/// What a scenario run needs.
pub(crate) struct Spec<'a> {
    pub scenario: Scenario,
    pub kernel: &'a Kernel,
    pub initrds: &'a Initrds,
    /// The host build of the observer, for `report`.
    pub reporter: &'a Path,
    /// `target/lab/<name>`: emptied, then filled with the artifacts.
    pub dir: PathBuf,
    pub deadline_scale: f64,
    /// Non-blocking checks fail the scenario too.
    pub strict: bool,
    /// Known problems to record with the result (e.g. 6.1's broken vmcore).
    pub known_issues: Vec<String>,
    /// The machine: arm64 + SMMUv3, or x86-64 + `x86_iommu`.
    pub arch: GuestArch,
    pub x86_iommu: X86Iommu,
}

/// How a scenario went.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub scenario: Scenario,
    /// The kernel's label (`6.12`, `sid`, a release for a `.deb`).
    pub kernel: String,
    /// `uname -r` of the kernel.
    pub release: String,
    pub dir: PathBuf,
    pub passed: bool,
    /// Why the run itself failed (timeouts, panics, QEMU gone), if it did.
    pub error: Option<String>,
    pub checks: Vec<Check>,
    /// The observer's verdict on the scenario, if `report` ran.
    pub verdict: Option<String>,
    pub wall: Duration,
}

/// The observer's own footprint figures from a run's status.json (issue 15's targets: ready
/// in at most 1000 ms, peak RSS at most 8 MiB, in the capture kernel).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// Process start to ready (`startup_ms`).
    pub startup_ms: Option<u64>,
    /// `VmHWM` at stop (`peak_rss_kib`).
    pub peak_rss_kib: Option<u64>,
}

impl Footprint {
    /// Reads `<dir>/status.json` (the status of the boot that matters); empty if absent.
    #[must_use]
    pub(crate) fn read(dir: &std::path::Path) -> Self {
        let status: Value = std::fs::read_to_string(dir.join("status.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        Self {
            startup_ms: status["startup_ms"].as_u64(),
            peak_rss_kib: status["peak_rss_kib"].as_u64(),
        }
    }

    /// `312 ms` / `-`.
    #[must_use]
    pub(crate) fn startup(&self) -> String {
        self.startup_ms
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"))
    }

    /// `7.6 MiB` / `-`.
    #[must_use]
    pub(crate) fn peak(&self) -> String {
        #[expect(clippy::cast_precision_loss, reason = "KiB of one process")]
        self.peak_rss_kib.map_or_else(
            || "-".to_owned(),
            |k| format!("{:.1} MiB", k as f64 / 1024.0),
        )
    }
}

impl Outcome {
    /// Blocking checks passed / total.
    #[must_use]
    pub(crate) fn blocking_counts(&self) -> (usize, usize) {
        let blocking = self.checks.iter().filter(|c| c.blocking);
        let total = blocking.clone().count();
        (blocking.filter(|c| c.passed).count(), total)
    }

    /// Outcomes of the non-blocking checks.
    #[must_use]
    pub(crate) fn non_blocking(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.blocking).collect()
    }
}

/// A record of the run, for result.json.
#[derive(Default)]
struct Log {
    phases: Vec<Value>,
    injections: Vec<Value>,
    /// `LAB: NOTE ...` lines of the guest.
    notes: Vec<Value>,
    qemu_command: String,
    qemu_end: String,
}

/// Runs `spec`; a failing run is an `Outcome`, not an `Err` (errors are for the harness itself).
pub(crate) fn run(spec: &Spec<'_>) -> anyhow::Result<Outcome> {
    let name = spec.scenario.name();
    let dir = &spec.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
    }
    let share = dir.join("share");
    for sub in ["first", "capture"] {
        std::fs::create_dir_all(share.join(sub))
            .with_context(|| format!("creating {}", share.join(sub).display()))?;
    }
    let label = match spec.arch {
        GuestArch::Aarch64 => format!("[{name} {}]", spec.kernel.label()),
        GuestArch::X86_64 => format!("[{name} {} x86_64]", spec.kernel.label()),
    };
    eprintln!(
        "\nlab: {label} starting; console: {}",
        dir.join("console.log").display()
    );
    for issue in &spec.known_issues {
        eprintln!("lab: {label} KNOWN ISSUE: {issue}");
    }
    let started = Instant::now();
    let mut log = Log::default();
    let error = drive(spec, &share, started, &label, &mut log)
        .err()
        .map(|e| format!("{e:#}"));
    let wall = started.elapsed();
    collect(spec.scenario, dir, &share)?;

    let evidence = Evidence::load(dir);
    let mut checks = checks::run_for(spec.arch, spec.scenario, &evidence);
    if spec.scenario.is_kdump() {
        checks.push(checks::vmcore_sane(
            evidence.console.as_deref(),
            spec.kernel.is_debian_61(),
        ));
    }
    let judged = report::write(spec.reporter, spec.scenario, dir).map_err(|e| format!("{e:#}"));
    let wanted = report::expected_for(spec.arch, spec.scenario);
    checks.extend(report::checks_wanting(spec.scenario, wanted, &judged, dir));
    if spec.scenario == Scenario::KdumpAer {
        let report_json = dir.join("report.json");
        let console = evidence.console.as_deref();
        checks.push(match spec.arch {
            GuestArch::Aarch64 => checks::report_names_the_system(&report_json, console),
            GuestArch::X86_64 => checks::report_names_the_x86_machine(&report_json, console),
        });
    }
    let verdict = judged.as_ref().ok().map(|j| j.verdict.clone());
    checks.extend(metrics::checks(spec.scenario, dir, verdict.as_deref()));
    if spec.strict {
        for c in checks.iter_mut().filter(|c| c.strict_applies()) {
            c.blocking = true;
        }
    }
    let passed = error.is_none() && checks.iter().all(|c| c.passed || !c.blocking);
    let outcome = Outcome {
        scenario: spec.scenario,
        kernel: spec.kernel.label(),
        release: spec.kernel.release.clone(),
        dir: dir.clone(),
        passed,
        error,
        checks,
        verdict,
        wall,
    };
    write_result(spec, &outcome, &judged, &log)?;
    print_outcome(&label, &outcome);
    Ok(outcome)
}

/// Boots, follows the phases, injects, quits. Any error ends the run (QEMU is killed on drop).
fn drive(
    spec: &Spec<'_>,
    share: &Path,
    started: Instant,
    label: &str,
    log: &mut Log,
) -> anyhow::Result<()> {
    let (mut qemu, mut qmp) = start(spec, share, log)?;
    if let Err(e) = follow(spec, &mut qemu, &mut qmp, started, label, log) {
        log.qemu_end = match qemu.exited() {
            Ok(Some(status)) => format!("exited ({status})"),
            _ => "killed: the run failed".to_owned(),
        };
        return Err(e); // dropping `qemu` kills it
    }
    // DONE: the guest has flushed and unmounted the share. Poweroff from the guest is not
    // used: it hangs on 6.1 after a fatal AER. (capture-panic: the capture kernel panicked
    // with panic=-1 under -no-reboot, so QEMU is usually gone already.)
    let quit = if qemu.exited()?.is_none() {
        qmp.quit().err()
    } else {
        None
    };
    log.qemu_end = qemu.finish(Duration::from_secs(10))?;
    if let Some(e) = quit
        && log.qemu_end.starts_with("killed")
    {
        // (A quit that fails because QEMU is exiting anyway is no news.)
        eprintln!("lab: {label} QMP quit: {e:#} (QEMU was killed instead)");
    }
    Ok(())
}

/// Starts QEMU and connects to its QMP socket.
fn start(spec: &Spec<'_>, share: &Path, log: &mut Log) -> anyhow::Result<(Qemu, Qmp)> {
    let dir = &spec.dir;
    let scenario = spec.scenario;
    let initrd = if scenario.is_kdump() {
        spec.initrds
            .kdump
            .as_deref()
            .context("no kdump initramfs was built")?
    } else {
        &spec.initrds.base
    };
    let socket = qemu::socket_path(dir, scenario.name());
    let _ = std::fs::remove_file(&socket);
    let append = format!("lab={}", scenario.name());
    let console = dir.join("console.log");
    let machine = Machine {
        image: &spec.kernel.image,
        initrd,
        append: &append,
        console: &console,
        qmp_socket: &socket,
        share,
        arch: spec.arch,
        x86_iommu: spec.x86_iommu,
    };
    let qemu_log = dir.join("qemu.log");
    let mut qemu = Qemu::spawn(&machine, &qemu_log)?;
    log.qemu_command.clone_from(&qemu.command_line);
    match Qmp::connect(&socket, Instant::now() + Duration::from_secs(10)) {
        Ok(qmp) => Ok((qemu, qmp)),
        Err(e) => {
            // Most likely QEMU refused its command line: say what it said.
            std::thread::sleep(Duration::from_millis(200));
            let said = std::fs::read_to_string(&qemu_log).unwrap_or_default();
            Err(match qemu.exited()? {
                Some(status) => e.context(format!(
                    "QEMU exited ({status}): {}\n  command: {}",
                    said.trim(),
                    qemu.command_line
                )),
                None => e,
            })
        }
    }
}

/// Follows the console through the scenario's phases until DONE, acting on the way; fails on
/// a missed deadline, a guest failure, an unexpected panic or boot, or QEMU exiting.
fn follow(
    spec: &Spec<'_>,
    qemu: &mut Qemu,
    qmp: &mut Qmp,
    started: Instant,
    label: &str,
    log: &mut Log,
) -> anyhow::Result<()> {
    let scenario = spec.scenario;
    let mut watch = Watch::new(
        scenario.phases(spec.deadline_scale),
        scenario.expected_panics(),
    );
    let mut follower = Follower::new(&spec.dir.join("console.log"));
    let overall = started + scenario.deadline(spec.deadline_scale);
    let mut phase_started = started;
    let mut last_phase = "QEMU started";
    let mut in_capture_boot = false;
    let mut reset_injected = scenario.reset_injections().is_empty();
    loop {
        // Checked before reading the console, so that what QEMU wrote before it exited is
        // read before its exit counts against the scenario.
        let exited = qemu.exited()?;
        for line in follower.poll()? {
            if in_capture_boot && !reset_injected && line.contains(RESET_LINE) {
                // As real aborts do: right at the reset, long before any userspace.
                reset_injected = true;
                inject_at_reset(qmp, scenario, started, label, log)?;
            }
            if let Some(Signal::Marker(text)) = classify(&line)
                && let Some(note) = text.strip_prefix("NOTE ")
            {
                eprintln!("lab: {label} guest note: {note}");
                log.notes.push(Value::from(note));
            }
            let reached = watch
                .feed(&line)
                .map_err(|why| anyhow::anyhow!("{why}\n  last console lines:\n{}", watch.tail()))?;
            let Some(index) = reached else {
                continue;
            };
            let phase = &watch.phases()[index];
            let at = started.elapsed().as_secs_f64();
            eprintln!("lab: {label} +{at:5.1} s  {}", phase.name);
            log.phases
                .push(json!({ "phase": phase.name, "at_s": round(at) }));
            last_phase = phase.name;
            phase_started = Instant::now();
            if phase.wait == Wait::Boot(2) {
                in_capture_boot = true;
            }
            if phase.wait == Wait::Marker("READY capture") && !scenario.injections().is_empty() {
                inject_aer(
                    qmp,
                    scenario.injections(),
                    BETWEEN_INJECTIONS,
                    started,
                    label,
                    log,
                )?;
            }
        }
        let Some(current) = watch.current() else {
            return Ok(()); // DONE
        };
        if let Some(status) = exited {
            let rest = follower
                .rest()
                .map(|l| format!("\n    | {l}"))
                .unwrap_or_default();
            anyhow::bail!(
                "QEMU exited ({status}) while waiting for: {} (last phase: {last_phase}); see {}\n  last console lines:\n{}{rest}",
                current.name,
                spec.dir.join("qemu.log").display(),
                watch.tail()
            );
        }
        let now = Instant::now();
        if now > phase_started + current.within {
            anyhow::bail!(
                "{} within {:.0} s (last phase: {last_phase} at +{:.1} s)\n  last console lines:\n{}",
                current.missed,
                current.within.as_secs_f64(),
                (phase_started - started).as_secs_f64(),
                watch.tail()
            );
        }
        if now > overall {
            anyhow::bail!(
                "the scenario's {} s deadline passed while waiting for: {}",
                scenario.deadline(spec.deadline_scale).as_secs(),
                current.name
            );
        }
        // Waiting for the reset line: poll the console every millisecond, so that the errors
        // arrive within milliseconds of the reset.
        std::thread::sleep(if in_capture_boot && !reset_injected {
            Duration::from_millis(1)
        } else {
            Duration::from_millis(100)
        });
    }
}

/// Injects the scenario's reset-time errors back to back and records how long after the reset
/// line was read they were in.
fn inject_at_reset(
    qmp: &mut Qmp,
    scenario: Scenario,
    started: Instant,
    label: &str,
    log: &mut Log,
) -> anyhow::Result<()> {
    let seen = Instant::now();
    let at = started.elapsed().as_secs_f64();
    eprintln!("lab: {label} +{at:5.1} s  capture kernel reset its SMMU; injecting");
    let first = log.injections.len();
    inject_aer(
        qmp,
        scenario.reset_injections(),
        Duration::ZERO,
        started,
        label,
        log,
    )?;
    let ms = seen.elapsed().as_secs_f64() * 1000.0;
    for injection in &mut log.injections[first..] {
        injection["done_ms_after_reset_line_read"] = json!(ms.round());
    }
    eprintln!("lab: {label} both errors injected {ms:.1} ms after the reset line was read");
    Ok(())
}

fn inject_aer(
    qmp: &mut Qmp,
    injections: &[(&str, &str)],
    between: Duration,
    started: Instant,
    label: &str,
    log: &mut Log,
) -> anyhow::Result<()> {
    for (i, (severity, command)) in injections.iter().enumerate() {
        if i > 0 && !between.is_zero() {
            std::thread::sleep(between);
        }
        let reply = qmp
            .hmp(command)
            .with_context(|| format!("injecting a {severity} AER error"))?;
        anyhow::ensure!(
            reply.starts_with("OK"),
            "`{command}` answered {reply:?}, expected `OK id: vnet1 ...`"
        );
        let at = started.elapsed().as_secs_f64();
        eprintln!("lab: {label} +{at:5.1} s  injected {severity}: {command}");
        log.injections.push(json!({
            "severity": severity,
            "command": command,
            "reply": reply,
            "at_s": round(at),
            "at_ms": (at * 1000.0).round(),
        }));
    }
    Ok(())
}

/// Moves the observer's files out of the share: the capture kernel's (kdump scenarios) or the
/// first kernel's (`boot`) into `dir`, the other boot's under `dir/first`.
fn collect(scenario: Scenario, dir: &Path, share: &Path) -> anyhow::Result<()> {
    let main = share.join(if scenario.is_kdump() {
        "capture"
    } else {
        "first"
    });
    if let Ok(entries) = std::fs::read_dir(&main) {
        for entry in entries.filter_map(Result::ok) {
            let to = dir.join(entry.file_name());
            std::fs::rename(entry.path(), &to).with_context(|| {
                format!("moving {} to {}", entry.path().display(), to.display())
            })?;
        }
    }
    if scenario.is_kdump() {
        let first = share.join("first");
        if std::fs::read_dir(&first).is_ok_and(|mut d| d.next().is_some()) {
            std::fs::rename(&first, dir.join("first"))
                .with_context(|| format!("moving {}", first.display()))?;
        }
    }
    std::fs::remove_dir_all(share).with_context(|| format!("removing {}", share.display()))?;
    Ok(())
}

fn write_result(
    spec: &Spec<'_>,
    outcome: &Outcome,
    judged: &Result<report::Judged, String>,
    log: &Log,
) -> anyhow::Result<()> {
    let (passed, total) = outcome.blocking_counts();
    let verdict = match judged {
        Ok(j) => json!({
            "verdict": j.verdict,
            "expected": report::expected_for(spec.arch, spec.scenario),
            "input": j.input,
            "summary": j.summary,
            "first_fatal": j.first_fatal,
            "fatal_signs": j.fatal,
            "files": report::FILES,
        }),
        Err(e) => json!({ "error": e, "expected": report::expected_for(spec.arch, spec.scenario) }),
    };
    // In this order, for a reader (serde_json's maps would sort the keys).
    let footprint = Footprint::read(&spec.dir);
    let fields: [(&str, Value); 14] = [
        ("scenario", json!(spec.scenario.name())),
        (
            "kernel",
            json!({
                "choice": spec.kernel.choice.to_string(),
                "release": spec.kernel.release,
                "deb": spec.kernel.deb,
            }),
        ),
        (
            "outcome",
            json!(if outcome.passed { "pass" } else { "fail" }),
        ),
        ("error", json!(outcome.error)),
        ("verdict", verdict),
        ("checks_passed", json!(format!("{passed}/{total}"))),
        (
            "checks",
            Value::Array(outcome.checks.iter().map(Check::to_json).collect()),
        ),
        ("known_issues", json!(spec.known_issues)),
        ("phases", Value::Array(log.phases.clone())),
        ("injections", Value::Array(log.injections.clone())),
        ("guest_notes", Value::Array(log.notes.clone())),
        ("wall_s", json!(round(outcome.wall.as_secs_f64()))),
        (
            "observer",
            json!({
                "startup_ms": footprint.startup_ms,
                "peak_rss_kib": footprint.peak_rss_kib,
            }),
        ),
        (
            "qemu",
            json!({ "command": log.qemu_command, "end": log.qemu_end }),
        ),
    ];
    super::checks::write_result_json(&spec.dir.join("result.json"), &fields)
}

fn print_outcome(label: &str, o: &Outcome) {
    if let Some(e) = &o.error {
        eprintln!("lab: {label} RUN FAILED: {e}");
    }
    for c in &o.checks {
        eprintln!("lab: {label}   {}", c.line());
    }
    eprintln!(
        "lab: {label} {} in {:.1} s; verdict {}; artifacts in {}",
        if o.passed { "PASSED" } else { "FAILED" },
        o.wall.as_secs_f64(),
        o.verdict.as_deref().unwrap_or("(none)"),
        o.dir.display()
    );
}

fn round(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}
