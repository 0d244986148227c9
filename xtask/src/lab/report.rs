//! The verdict on each scenario, from the observer itself: the HOST build of
//! `kdump-dma-observer report` (built once per `lab` run) reads the scenario's timeline.jsonl
//! (console.log alone for capture-panic: what a BMC's serial-over-LAN log keeps) and writes
//! report.md, report.html and report.json into the scenario folder, plus verdict.json: the JSON
//! report's `judgement` object (its `verdict` field is the verdict word), as
//! `kdump-dma-observer recover` writes it next to a dump.
use std::{path::Path, process::Command, time::Duration};

use anyhow::{Context as _, ensure};
use serde_json::Value;

use super::{arch::GuestArch, checks::Check, scenario::Scenario};
use crate::bounded;

/// One `report` run; it takes well under a second.
const TIMEOUT: Duration = Duration::from_mins(1);
/// What every scenario folder gets, in this order.
pub(crate) const FILES: [&str; 4] = ["verdict.json", "report.md", "report.html", "report.json"];

/// What the observer judged.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judged {
    /// The file it read, relative to the scenario folder.
    pub input: String,
    pub verdict: String,
    pub summary: String,
    /// `kind` of the first fatal sign, if any.
    pub first_fatal: Option<String>,
    /// `kind` of every fatal sign in the evidence.
    pub fatal: Vec<String>,
}

impl Judged {
    fn from_report(input: &str, report: &Value) -> anyhow::Result<Self> {
        let verdict = report["verdict"]
            .as_str()
            .context("report.json has no top-level `verdict` string")?;
        let judgement = &report["judgement"];
        ensure!(
            judgement["verdict"] == verdict,
            "report.json says `{verdict}` at the top and {} in its judgement",
            judgement["verdict"]
        );
        Ok(Self {
            input: input.to_owned(),
            verdict: verdict.to_owned(),
            summary: judgement["summary"].as_str().unwrap_or("").to_owned(),
            first_fatal: judgement["first_fatal"]["kind"].as_str().map(str::to_owned),
            fatal: judgement["evidence"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter(|e| e["fatal"] == true)
                        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The file the scenario is judged from.
#[must_use]
pub(crate) fn input(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::CapturePanic => "console.log",
        _ => "timeline.jsonl",
    }
}

/// The verdict the scenario must get (docs/verdict.md).
#[must_use]
pub(crate) fn expected(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Boot => "not-capture-kernel",
        Scenario::Kdump => "reset-no-fatal",
        Scenario::KdumpAer
        | Scenario::ExternalAbort
        | Scenario::CapturePanic
        | Scenario::KdumpResetAer
        | Scenario::KdumpCompat => "flagged",
    }
}

/// The verdict the scenario must get on `arch`. x86 capture kernels copy the IOMMU's
/// translation tables (VT-d: `Copied translation tables from previous kernel`) instead of
/// resetting it, so their kdump scenarios must be judged `preserved`.
#[must_use]
pub(crate) fn expected_for(arch: GuestArch, scenario: Scenario) -> &'static str {
    match (arch, scenario) {
        (GuestArch::X86_64, s) if s.is_kdump() => "preserved",
        _ => expected(scenario),
    }
}

/// Runs `observer report INPUT --format FORMAT --output OUTPUT`, bounded in time, its output
/// logged under `log`; fails with the command and the end of its stderr.
pub(crate) fn render(
    observer: &Path,
    input: &Path,
    format: &str,
    output: &Path,
    log: &Path,
) -> anyhow::Result<()> {
    let mut cmd = Command::new(observer);
    cmd.arg("report")
        .arg(input)
        .args(["--format", format, "--output"])
        .arg(output)
        .env("RUST_LOG", "warn");
    let ran = bounded::run(&mut cmd, TIMEOUT, log, None)?;
    ensure!(
        ran.status.success(),
        "`{}` failed ({}):\n{}",
        bounded::show(&cmd),
        ran.status,
        ran.stderr_tail(10)
    );
    Ok(())
}

/// Runs `observer report` on the scenario's input in `dir`; writes the four files.
pub(crate) fn write(observer: &Path, scenario: Scenario, dir: &Path) -> anyhow::Result<Judged> {
    let input = input(scenario);
    let source = dir.join(input);
    ensure!(source.is_file(), "no {} to judge", source.display());
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    for (format, file) in [
        ("json", "report.json"),
        ("md", "report.md"),
        ("html", "report.html"),
    ] {
        render(
            observer,
            &source,
            format,
            &dir.join(file),
            &logs.join(format!("report-{format}")),
        )?;
    }
    let path = dir.join("report.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let report: Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let judged = Judged::from_report(input, &report).with_context(|| path.display().to_string())?;
    let verdict = dir.join(FILES[0]);
    std::fs::write(&verdict, format!("{:#}\n", report["judgement"]))
        .with_context(|| format!("writing {}", verdict.display()))?;
    Ok(judged)
}

/// The checks on the verdict (and, for capture-panic, on what it rests on).
#[must_use]
#[cfg(test)]
fn checks(scenario: Scenario, judged: &Result<Judged, String>, dir: &Path) -> Vec<Check> {
    checks_wanting(scenario, expected(scenario), judged, dir)
}

/// As [`checks`], with the verdict `wanted` (see [`expected_for`]).
#[must_use]
pub(crate) fn checks_wanting(
    scenario: Scenario,
    wanted: &str,
    judged: &Result<Judged, String>,
    dir: &Path,
) -> Vec<Check> {
    let name = format!("report verdict == {wanted}");
    let judged = match judged {
        Ok(j) => j,
        Err(e) => return vec![Check::new(name, false, format!("no verdict: {e}"))],
    };
    let missing: Vec<&str> = FILES
        .into_iter()
        .filter(|f| !std::fs::metadata(dir.join(f)).is_ok_and(|m| m.len() > 0))
        .collect();
    let mut checks = vec![
        Check::new(
            format!("{} written", FILES.join(", ")),
            missing.is_empty(),
            if missing.is_empty() {
                format!("from {}", judged.input)
            } else {
                format!("missing or empty: {}", missing.join(", "))
            },
        ),
        Check::new(
            name,
            judged.verdict == wanted,
            format!(
                "{} (from {}): {}",
                judged.verdict, judged.input, judged.summary
            ),
        ),
    ];
    if scenario == Scenario::CapturePanic {
        // The panic itself is a fatal sign too; the injected AER error must come first.
        checks.push(Check::new(
            "console-only report: first fatal sign is the injected aer",
            judged.first_fatal.as_deref() == Some("aer"),
            format!(
                "first fatal sign: {}",
                judged.first_fatal.as_deref().unwrap_or("none")
            ),
        ));
        checks.push(panic_is_fatal(judged));
    }
    if matches!(scenario, Scenario::KdumpResetAer | Scenario::KdumpCompat) {
        checks.push(rests_on_config_space(judged));
    }
    checks
}

/// kdump-reset-aer, kdump-compat: no kernel line reports the injected errors, so the verdict
/// must rest on the devices' config space (`pci_device` among the fatal signs).
fn rests_on_config_space(judged: &Judged) -> Check {
    let seen = judged.fatal.iter().any(|k| k == "pci_device");
    Check::new(
        "the verdict rests on config-space evidence (pci_device is a fatal sign)",
        seen,
        format!(
            "first fatal sign: {}; fatal signs: [{}]",
            judged.first_fatal.as_deref().unwrap_or("none"),
            judged.fatal.join(", ")
        ),
    )
}

/// capture-panic: the capture kernel's own panic is on the console after the fatal AER, and
/// docs/verdict.md counts a panic as a fatal sign, so the console-only report must list it.
/// (It once did not: mirrored `kernel_boot` lines split the console into extra boots.)
fn panic_is_fatal(judged: &Judged) -> Check {
    let seen = judged.fatal.iter().any(|k| k == "panic");
    Check::new(
        "console-only report counts the capture kernel's panic as a fatal sign",
        seen,
        format!("fatal signs in the evidence: [{}]", judged.fatal.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn judged(verdict: &str, first_fatal: Option<&str>) -> Judged {
        Judged {
            input: "console.log".into(),
            verdict: verdict.into(),
            summary: "s".into(),
            first_fatal: first_fatal.map(str::to_owned),
            fatal: first_fatal.into_iter().map(str::to_owned).collect(),
        }
    }

    #[test]
    fn config_space_scenarios_need_a_pci_device_fatal_sign() {
        let dir = std::env::temp_dir();
        let on_aer = checks(
            Scenario::KdumpCompat,
            &Ok(judged("flagged", Some("aer"))),
            &dir,
        );
        assert!(!on_aer.last().unwrap().passed, "{on_aer:?}");
        let on_pci = checks(
            Scenario::KdumpResetAer,
            &Ok(judged("flagged", Some("pci_device"))),
            &dir,
        );
        assert!(on_pci.last().unwrap().passed, "{on_pci:?}");
        assert!(on_pci.last().unwrap().name.contains("config-space"));
    }

    #[test]
    fn capture_panic_is_judged_from_the_console_alone() {
        // Its capture kernel dies before the timeline is handed over: only the serial console
        // (with the mirror lines) is left, and the report must read that.
        assert_eq!(input(Scenario::CapturePanic), "console.log");
        assert_eq!(input(Scenario::Kdump), "timeline.jsonl");
    }

    #[test]
    fn x86_capture_kernels_are_expected_preserved_and_arm64_ones_keep_their_verdict() {
        // VT-d's tables are copied, not reset: every x86 kdump scenario expects `preserved`;
        // a boot without a crash is not a capture kernel on either architecture.
        assert_eq!(
            expected_for(GuestArch::X86_64, Scenario::Boot),
            expected(Scenario::Boot)
        );
        for s in [Scenario::Kdump, Scenario::KdumpAer] {
            assert_eq!(expected_for(GuestArch::X86_64, s), "preserved", "{s:?}");
            assert_eq!(expected_for(GuestArch::Aarch64, s), expected(s), "{s:?}");
            assert_ne!(expected(s), "preserved", "{s:?}");
        }
    }

    #[test]
    fn verdict_checks_pass_and_fail() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        for f in FILES {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let names = |c: &[Check]| -> Vec<(String, bool)> {
            c.iter().map(|c| (c.name.clone(), c.passed)).collect()
        };
        let ok = checks(
            Scenario::KdumpAer,
            &Ok(judged("flagged", Some("aer"))),
            &dir,
        );
        assert!(ok.iter().all(|c| c.passed), "{ok:?}");
        assert_eq!(ok.len(), 2);

        let wrong = checks(Scenario::Kdump, &Ok(judged("flagged", Some("aer"))), &dir);
        assert_eq!(
            names(&wrong)[1],
            ("report verdict == reset-no-fatal".to_owned(), false)
        );
        assert!(wrong[1].detail.starts_with("flagged (from console.log)"));

        let panic_first = checks(
            Scenario::CapturePanic,
            &Ok(judged("flagged", Some("panic"))),
            &dir,
        );
        assert_eq!(
            names(&panic_first),
            [
                (
                    "verdict.json, report.md, report.html, report.json written".to_owned(),
                    true
                ),
                ("report verdict == flagged".to_owned(), true),
                (
                    "console-only report: first fatal sign is the injected aer".to_owned(),
                    false
                ),
                (
                    "console-only report counts the capture kernel's panic as a fatal sign"
                        .to_owned(),
                    true
                ),
            ]
        );

        std::fs::remove_file(dir.join("report.html")).unwrap();
        let missing = checks(
            Scenario::Boot,
            &Ok(judged("not-capture-kernel", None)),
            &dir,
        );
        assert!(!missing[0].passed);
        assert!(missing[0].detail.contains("report.html"), "{missing:?}");

        let failed = checks(Scenario::Boot, &Err("report crashed".into()), &dir);
        assert_eq!(failed.len(), 1);
        assert!(!failed[0].passed && failed[0].detail.contains("report crashed"));
    }

    #[test]
    fn a_panic_left_out_of_the_evidence_fails_the_scenario() {
        let dir = std::env::temp_dir();
        let aer_only = checks(
            Scenario::CapturePanic,
            &Ok(judged("flagged", Some("aer"))),
            &dir,
        );
        let panic = aer_only.last().unwrap();
        assert!(!panic.passed && panic.blocking, "{panic:?}");
        let mut both = judged("flagged", Some("aer"));
        both.fatal.push("panic".into());
        let panic = checks(Scenario::CapturePanic, &Ok(both), &dir)
            .pop()
            .unwrap();
        assert!(panic.passed, "{panic:?}");
    }

    #[test]
    fn reads_the_json_report() {
        let report = json!({
            "verdict": "flagged",
            "judgement": {"verdict": "flagged", "summary": "reset, then AER", "first_fatal": {"kind": "aer"}},
        });
        let with_evidence = json!({
            "verdict": "flagged",
            "judgement": {"verdict": "flagged", "evidence": [
                {"kind": "smmu_reset", "fatal": false},
                {"kind": "aer", "fatal": true},
                {"kind": "panic", "fatal": true},
            ]},
        });
        assert_eq!(
            Judged::from_report("x", &with_evidence).unwrap().fatal,
            ["aer", "panic"]
        );
        let j = Judged::from_report("timeline.jsonl", &report).unwrap();
        assert_eq!(j.verdict, "flagged");
        assert!(j.fatal.is_empty(), "no evidence array: no fatal signs");
        assert_eq!(j.first_fatal.as_deref(), Some("aer"));
        let torn = json!({"verdict": "flagged", "judgement": {"verdict": "preserved"}});
        assert!(Judged::from_report("x", &torn).is_err());
        assert!(Judged::from_report("x", &json!({})).is_err());
    }
}
