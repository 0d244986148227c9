//! `cargo xtask lab matrix`: `kdump-aer` on every Debian kernel line the lab knows (6.1 from
//! bookworm, 6.12 from bookworm-backports, trixie's and sid's), `boot` on the two suites `lab
//! all` does not boot, a summary per kernel, and docs/probes.md: which live probe attached and
//! which boot-time probe fired on which kernel, read from each run's status.json. A probe that
//! disappears on a new kernel shows up there first.
use std::{collections::BTreeSet, fmt::Write as _, path::Path};

use serde_json::Value;

use super::{kernel::KernelChoice, runner::Outcome, scenario::Scenario};

/// The matrix's kernels, oldest first.
#[must_use]
pub(crate) fn kernels() -> Vec<KernelChoice> {
    vec![
        KernelChoice::Bookworm61,
        KernelChoice::Backports612,
        KernelChoice::Suite("trixie".into()),
        KernelChoice::Suite("sid".into()),
    ]
}

/// Every kernel's `kdump-aer`, then `boot` where `lab all` does not already boot that kernel.
#[must_use]
pub(crate) fn plan() -> Vec<(Scenario, KernelChoice)> {
    let mut plan: Vec<_> = kernels()
        .into_iter()
        .map(|k| (Scenario::KdumpAer, k))
        .collect();
    plan.extend(
        kernels()
            .into_iter()
            .filter(|k| matches!(k, KernelChoice::Suite(_)))
            .map(|k| (Scenario::Boot, k)),
    );
    plan
}

/// The part CI runs besides `lab all`, which has 6.12's `kdump-aer` and 6.1's `boot`
/// already: `kdump-aer` on 6.1, trixie and sid (about 30 s each here), not the `boot` runs,
/// so that the lab part of CI stays within about 8 minutes (`lab all` 157 s, this 85 s,
/// `debian-kdump` 168 s).
#[must_use]
pub(crate) fn ci_plan() -> Vec<(Scenario, KernelChoice)> {
    plan()
        .into_iter()
        .filter(|(s, k)| *s == Scenario::KdumpAer && *k != KernelChoice::Backports612)
        .collect()
}

/// One run of the matrix, as its files tell it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub scenario: &'static str,
    /// The `--kernel` word (`6.1`, `6.12`, `trixie`, `sid`).
    pub kernel: String,
    /// `uname -r`.
    pub release: String,
    pub passed: bool,
    pub verdict: Option<String>,
    /// (name, target, state) of every live probe of the boot that matters.
    pub probes: Vec<(String, String, String)>,
    /// Boot-time events the kernel registered (`kdo` kprobe events).
    pub boot_registered: Vec<String>,
    /// Boot-trace records per event name.
    pub boot_records: Vec<(String, u64)>,
    /// From starting the observer to its status.json (the guest's READY line), seconds.
    pub ready_s: Option<f64>,
    /// The observer's own start-to-ready and peak memory (status.json).
    pub footprint: super::runner::Footprint,
    pub clock_offset_ns: Option<i64>,
    pub wall_s: f64,
    /// Failed checks that do not block (known issues among them), by name.
    pub non_blocking_failures: Vec<String>,
}

impl Row {
    /// Reads `outcome`'s status.json and console.log.
    #[must_use]
    pub(crate) fn read(outcome: &Outcome) -> Self {
        let status = std::fs::read_to_string(outcome.dir.join("status.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .unwrap_or(Value::Null);
        let console = std::fs::read(outcome.dir.join("console.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let boot = if outcome.scenario.is_kdump() {
            "capture"
        } else {
            "first"
        };
        Self {
            scenario: outcome.scenario.name(),
            kernel: outcome.kernel.clone(),
            release: outcome.release.clone(),
            passed: outcome.passed,
            verdict: outcome.verdict.clone(),
            probes: status["probes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            let s = |k: &str| p[k].as_str().unwrap_or("?").to_owned();
                            (s("name"), s("target"), s("state"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            boot_registered: status["boot_trace"]["registered_events"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|e| e.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            boot_records: status["boot_trace"]["records_by_event"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                        .collect()
                })
                .unwrap_or_default(),
            ready_s: ready_seconds(&console, boot),
            footprint: super::runner::Footprint::read(&outcome.dir),
            clock_offset_ns: status["clock_offset_ns"].as_i64(),
            wall_s: outcome.wall.as_secs_f64(),
            non_blocking_failures: outcome
                .checks
                .iter()
                .filter(|c| !c.blocking && !c.passed)
                .map(|c| {
                    if c.exempt == Some(super::checks::Exempt::KnownIssue) {
                        format!("known issue: {}", c.name)
                    } else {
                        c.name.clone()
                    }
                })
                .collect(),
        }
    }

    fn attached(&self) -> usize {
        self.probes.iter().filter(|p| p.2 == "attached").count()
    }
}

/// `LAB: READY <boot> uptime=12.3 observer_started=10.1` -> 2.2.
fn ready_seconds(console: &str, boot: &str) -> Option<f64> {
    let marker = format!("LAB: READY {boot} ");
    let line = console.lines().find(|l| l.contains(&marker))?;
    let field = |key: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))?
            .parse()
            .ok()
    };
    let ready = field("uptime=")?;
    let started = field("observer_started=")?;
    Some(((ready - started) * 10.0).round() / 10.0)
}

/// The table printed after the matrix.
#[must_use]
pub(crate) fn summary(rows: &[Row]) -> String {
    let mut out = String::from("\nlab matrix\n");
    let _ = writeln!(
        out,
        "  {:<10} {:<22} {:<10} {:<6} {:<18} {:>7} {:>8} {:>8} {:>9} {:>10} {:>7}  non-blocking failures",
        "kernel",
        "release",
        "scenario",
        "result",
        "verdict",
        "probes",
        "ready",
        "startup",
        "peak RSS",
        "clock off.",
        "wall"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "  {:<10} {:<22} {:<10} {:<6} {:<18} {:>7} {:>8} {:>8} {:>9} {:>10} {:>5.0} s  {}",
            r.kernel,
            r.release,
            r.scenario,
            if r.passed { "pass" } else { "FAIL" },
            r.verdict.as_deref().unwrap_or("-"),
            format!("{}/{}", r.attached(), r.probes.len()),
            r.ready_s
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s")),
            r.footprint.startup(),
            r.footprint.peak(),
            r.clock_offset_ns
                .map_or_else(|| "-".to_owned(), |n| format!("{:+.1} ms", ns_to_ms(n))),
            r.wall_s,
            if r.non_blocking_failures.is_empty() {
                "-".to_owned()
            } else {
                r.non_blocking_failures.join("; ")
            }
        );
    }
    out
}

#[expect(
    clippy::cast_precision_loss,
    reason = "boot-relative nanoseconds, shown in ms"
)]
fn ns_to_ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

#[expect(clippy::too_many_lines, reason = "one document, three tables in a row")]
/// docs/probes.md: one column per kernel of the `kdump-aer` rows (the capture kernel, where
/// the observer matters).
#[must_use]
pub(crate) fn probes_md(rows: &[Row]) -> String {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.scenario == "kdump-aer").collect();
    let mut out = String::from(
        "# Probe compatibility\n\n\
         Generated by `cargo xtask lab matrix` (xtask/src/lab/matrix.rs) from the observer's \
         `status.json` in each kernel's kdump capture boot (`kdump-aer` in the QEMU lab, arm64, \
         TCG). Do not edit by hand: run the matrix again. A probe that disappears on a new kernel \
         shows up here first.\n\n",
    );
    let header = |out: &mut String, first: &str| {
        let _ = write!(out, "| {first} |");
        for r in &rows {
            let _ = write!(out, " {} `{}` |", r.kernel, r.release);
        }
        out.push_str("\n|---|");
        for _ in &rows {
            out.push_str("---|");
        }
        out.push('\n');
    };

    out.push_str(
        "## Live probes\n\n\
         What `kdump-dma-observer run` attached (`probes` in status.json; states as in \
         docs/timeline.md, Probe states).\n\n",
    );
    header(&mut out, "probe (target)");
    let mut names: Vec<(String, String)> = Vec::new();
    for r in &rows {
        for (name, target, _) in &r.probes {
            if !names.iter().any(|(n, _)| n == name) {
                names.push((name.clone(), target.clone()));
            }
        }
    }
    for (name, target) in &names {
        let _ = write!(out, "| {name} (`{target}`) |");
        for r in &rows {
            let state = r.probes.iter().find(|p| &p.0 == name).map_or(
                if r.probes.is_empty() {
                    "no status.json"
                } else {
                    "not listed"
                },
                |p| p.2.as_str(),
            );
            let _ = write!(out, " {state} |");
        }
        out.push('\n');
    }

    out.push_str(
        "\n## Boot-time probes\n\n\
         The capture kernel's command-line instrumentation (`kdump-dma-observer cmdline`: \
         `kprobe_event=` in the `kdo` group, `trace_event=` tracepoints): whether the kernel \
         registered each kprobe event (listed in tracefs `events/kdo/` when the observer \
         started), and how many records each event left in the trace buffer (`boot_trace` in \
         status.json). `registered, did not fire`: the probe exists but this scenario did not \
         reach it. `gone from tracefs at start`: the event fired during boot but was no longer \
         listed when the observer looked. `not registered`: the capture command line did not \
         define it for this kernel, or the kernel refused it.\n\n",
    );
    header(&mut out, "event");
    let events: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| {
            r.boot_registered
                .iter()
                .map(String::as_str)
                .chain(r.boot_records.iter().map(|(e, _)| e.as_str()))
        })
        .collect();
    for event in events {
        let _ = write!(out, "| {event} |");
        for r in &rows {
            let registered = r.boot_registered.iter().any(|e| e == event);
            let records = r
                .boot_records
                .iter()
                .find(|(e, _)| e == event)
                .map_or(0, |(_, n)| *n);
            let cell = match (registered, records) {
                (true, 0) => "registered, did not fire".to_owned(),
                (true, n) => format!("fired: {n} records"),
                (false, 0) => "not registered".to_owned(),
                (false, n) => format!("fired: {n} records; gone from tracefs at start"),
            };
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }

    out.push_str("\n## Runs\n\n| kernel | release | result | verdict | probes attached | ready | startup | peak RSS |\n|---|---|---|---|---|---|---|---|\n");
    for r in &rows {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {}/{} | {} | {} | {} |",
            r.kernel,
            r.release,
            if r.passed { "pass" } else { "fail" },
            r.verdict.as_deref().unwrap_or("-"),
            r.attached(),
            r.probes.len(),
            r.ready_s
                .map_or_else(|| "-".to_owned(), |s| format!("{s:.1} s")),
            r.footprint.startup(),
            r.footprint.peak(),
        );
    }
    out
}

/// Where `row`'s live probes differ from its kernel's column (by the `--kernel` word, not the
/// release, which moves with every upload) of the Live probes table in `probes_md`: one line
/// per difference; empty when the document still tells the truth, or has no such column.
#[must_use]
pub(crate) fn probe_drift(probes_md: &str, row: &Row) -> Vec<String> {
    let table: Vec<Vec<&str>> = probes_md
        .split("## Live probes")
        .nth(1)
        .and_then(|t| t.split("\n## ").next())
        .unwrap_or("")
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    let Some((header, body)) = table.split_first() else {
        return Vec::new();
    };
    let Some(column) = header
        .iter()
        .position(|h| h.starts_with(&format!("{} `", row.kernel)))
    else {
        return Vec::new();
    };
    let documented = |name: &str| {
        body.iter()
            .find(|cells| {
                cells
                    .first()
                    .is_some_and(|c| c.split(" (").next() == Some(name))
            })
            .and_then(|cells| cells.get(column).copied())
    };
    let mut out: Vec<String> = row
        .probes
        .iter()
        .filter_map(|(name, _, state)| match documented(name) {
            Some(doc) if doc == state => None,
            Some(doc) => Some(format!("{name}: docs/probes.md says {doc}, now {state}")),
            None => Some(format!("{name}: not in docs/probes.md, now {state}")),
        })
        .collect();
    for cells in body {
        let name = cells
            .first()
            .and_then(|c| c.split(" (").next())
            .unwrap_or("");
        if !row.probes.iter().any(|p| p.0 == name) {
            out.push(format!("{name}: in docs/probes.md, no longer listed"));
        }
    }
    out
}

/// Writes docs/probes.md under `root`.
pub(crate) fn write_probes_md(root: &Path, rows: &[Row]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let path = root.join("docs/probes.md");
    std::fs::write(&path, probes_md(rows)).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kernel: &str, probes: &[(&str, &str)], records: &[(&str, u64)]) -> Row {
        Row {
            scenario: "kdump-aer",
            kernel: kernel.into(),
            release: format!("{kernel}-arm64"),
            passed: true,
            verdict: Some("flagged".into()),
            probes: probes
                .iter()
                .map(|(n, s)| ((*n).to_owned(), format!("kprobe:{n}"), (*s).to_owned()))
                .collect(),
            boot_registered: vec!["kdo_smmu_write".into(), "kdo_sea".into()],
            boot_records: records.iter().map(|(e, n)| ((*e).to_owned(), *n)).collect(),
            ready_s: Some(2.5),
            footprint: crate::lab::runner::Footprint {
                startup_ms: Some(312),
                peak_rss_kib: Some(20_992),
            },
            clock_offset_ns: Some(-200_000_000),
            wall_s: 100.0,
            non_blocking_failures: Vec::new(),
        }
    }

    #[test]
    fn the_plan_is_kdump_aer_on_four_kernels_and_boot_on_the_new_suites() {
        let names: Vec<String> = plan()
            .iter()
            .map(|(s, k)| format!("{} {k}", s.name()))
            .collect();
        assert_eq!(
            names,
            [
                "kdump-aer 6.1",
                "kdump-aer 6.12",
                "kdump-aer trixie",
                "kdump-aer sid",
                "boot trixie",
                "boot sid"
            ]
        );
    }

    #[test]
    fn ci_runs_kdump_aer_on_the_kernels_lab_all_does_not() {
        let names: Vec<String> = ci_plan()
            .iter()
            .map(|(s, k)| format!("{} {k}", s.name()))
            .collect();
        assert_eq!(
            names,
            ["kdump-aer 6.1", "kdump-aer trixie", "kdump-aer sid"]
        );
    }

    #[test]
    fn a_probe_missing_on_one_kernel_shows_in_its_column() {
        let md = probes_md(&[
            row(
                "6.12",
                &[("aer_event", "attached"), ("do_sea", "attached")],
                &[("kdo_smmu_write", 4)],
            ),
            row(
                "sid",
                &[("aer_event", "attached"), ("do_sea", "absent")],
                &[],
            ),
        ]);
        assert!(
            md.contains("| do_sea (`kprobe:do_sea`) | attached | absent |"),
            "{md}"
        );
        assert!(
            md.contains("| kdo_smmu_write | fired: 4 records | registered, did not fire |"),
            "{md}"
        );
        assert!(
            md.contains(
                "| 6.12 | `6.12-arm64` | pass | flagged | 2/2 | 2.5 s | 312 ms | 20.5 MiB |"
            ),
            "{md}"
        );
        let mut gone = row("6.1", &[("aer_event", "attached")], &[("kdo_smmu_gbpa", 1)]);
        gone.boot_registered.clear();
        let md = probes_md(&[row("6.12", &[("aer_event", "attached")], &[]), gone]);
        assert!(
            md.contains(
                "| kdo_smmu_gbpa | not registered | fired: 1 records; gone from tracefs at start |"
            ) && md.contains("| kdo_sea | registered, did not fire | not registered |"),
            "{md}"
        );
    }

    #[test]
    fn a_probe_that_changed_since_the_document_is_drift() {
        let md = probes_md(&[
            row(
                "6.12",
                &[("aer_event", "attached"), ("do_sea", "attached")],
                &[],
            ),
            row(
                "sid",
                &[("aer_event", "attached"), ("do_sea", "attached")],
                &[],
            ),
        ]);
        let mut now = row(
            "sid",
            &[("aer_event", "attached"), ("do_sea", "absent")],
            &[],
        );
        now.release = "7.3.1+deb14-arm64".into();
        assert_eq!(
            probe_drift(&md, &now),
            ["do_sea: docs/probes.md says attached, now absent"]
        );
        now.probes[1].2 = "attached".into();
        assert!(
            probe_drift(&md, &now).is_empty(),
            "a new upload alone is no drift"
        );
        now.probes.remove(1);
        now.probes
            .push(("ghes".into(), "kprobe:ghes".into(), "attached".into()));
        assert_eq!(
            probe_drift(&md, &now),
            [
                "ghes: not in docs/probes.md, now attached",
                "do_sea: in docs/probes.md, no longer listed"
            ]
        );
        let found = probe_drift(&md, &row("trixie", &[], &[]));
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn time_to_ready_comes_from_the_ready_line() {
        let console = "[    9.0] LAB: READY first uptime=9.00 observer_started=7.50\r\n\
                       [   12.1] LAB: READY capture uptime=12.34 observer_started=10.20\r\n";
        assert_eq!(ready_seconds(console, "capture"), Some(2.1));
        assert_eq!(ready_seconds(console, "first"), Some(1.5));
        assert_eq!(
            ready_seconds("[ 1.0] LAB: READY capture uptime=3.0\n", "capture"),
            None
        );
    }

    #[test]
    fn the_summary_has_one_line_per_run_with_its_figures() {
        let mut failed = row("sid", &[("aer_event", "attached")], &[]);
        failed.passed = false;
        failed.non_blocking_failures = vec!["known issue: /proc/vmcore".into()];
        let text = summary(&[row("6.12", &[("aer_event", "attached")], &[]), failed]);
        let lines: Vec<&str> = text.lines().filter(|l| l.contains("kdump-aer")).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("pass") && lines[0].contains("20.5 MiB"),
            "{text}"
        );
        assert!(
            lines[0].contains("-200.0 ms") && lines[0].contains("2.5 s"),
            "{text}"
        );
        assert!(
            lines[1].contains("FAIL") && lines[1].ends_with("known issue: /proc/vmcore"),
            "{text}"
        );
    }
}
