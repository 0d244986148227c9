//! `cargo xtask html-check`: the HTML report in a real browser (Debian's Chromium, headless).
//!
//! A task of its own rather than part of `lab`: Chromium is a large install that neither the
//! lab nor the demo should need, and the check does not need QEMU (only a report.html, which
//! the kdump-aer lab scenario leaves), so it runs in seconds while the HTML renderer changes.
//! `cargo xtask ci` runs it right after `lab all`, on that run's kdump-aer report.
//!
//! Checks, each with its negative control so that a check that cannot fail is noticed:
//! - a canary page with a `console.error` and an uncaught exception: both are seen in
//!   Chromium's log, and its (empty) screenshot is judged blank;
//! - the kdump-aer report.html: its screenshot is not blank, and it logs no console message
//!   (the report has no scripts, so any message is a problem: a failed load, a CSP report...);
//! - a report built by the host observer from a crafted capture timeline whose AER device is
//!   named `<script>alert(1)</script>`: its verdict is flagged (so the name is in the evidence),
//!   the DOM after load (`--dump-dom`) has no `<script` element and shows the name as text;
//!   a hostile DMI vendor is in its title as text;
//! - both reports fit a 1280-pixel window: a copy of each page with a one-line probe script logs
//!   its scroll width; the control is a page with an unbreakable 600-character line.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail, ensure};
use serde_json::Value;

use crate::{
    build,
    chromium::{Chromium, Visit},
    ink::{self, Ink},
    lab::checks::Check,
};

/// `cargo xtask html-check`.
#[derive(clap::Args)]
pub(crate) struct HtmlCheckArgs {
    /// The report to screenshot [default: target/lab/kdump-aer/report.html, from
    /// `cargo xtask lab kdump-aer`].
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Length of the unbroken machine text in the hostile report (a log line, a command line).
const LONG: usize = 600;
/// The screen the HTML report must fit (the window's width, [`crate::chromium::WINDOW`]).
const SCREEN_WIDTH: u32 = 1280;
/// What the width probe logs: `html-check width <scrollWidth>`.
const WIDTH_MESSAGE: &str = "html-check width ";

/// The hostile device name.
pub(crate) const HOSTILE: &str = "<script>alert(1)</script>";
/// How it must appear in the serialized DOM: as text.
pub(crate) const HOSTILE_AS_TEXT: &str = "&lt;script&gt;alert(1)&lt;/script&gt;";

const CANARY: &str = "<!doctype html>\n<html><head><title>html-check canary</title></head><body>\n\
     <script>console.error(\"html-check canary\"); notDefinedAnywhere();</script>\n</body></html>\n";

pub(crate) fn run(root: &Path, args: &HtmlCheckArgs) -> anyhow::Result<()> {
    let checks = check(root, args)?;
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    if !failed.is_empty() {
        bail!(
            "html-check: {} of {} checks failed: {}",
            failed.len(),
            checks.len(),
            failed
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

/// Runs every check; `Err` is for the harness (no report, no Chromium, a browser that hangs).
pub(crate) fn check(root: &Path, args: &HtmlCheckArgs) -> anyhow::Result<Vec<Check>> {
    let started = Instant::now();
    let target = build::target_dir(root)?;
    let report = args
        .report
        .clone()
        .unwrap_or_else(|| target.join("lab/kdump-aer/report.html"));
    ensure!(
        report.is_file(),
        "no report to check at {}: run `cargo xtask lab kdump-aer` first (or pass --report FILE)",
        report.display()
    );
    let out = target.join("html-check");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("emptying {}", out.display()))?;
    }
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let chromium = Chromium::ensure(&logs)?;
    let observer = crate::build::build_observer(root)?;

    let mut checks = Vec::new();
    // Negative controls first: a detector that sees nothing here is broken.
    let canary = out.join("canary.html");
    std::fs::write(&canary, CANARY).with_context(|| format!("writing {}", canary.display()))?;
    let shot = out.join("canary.png");
    let visit = chromium.screenshot(&canary, &shot, "canary")?;
    checks.push(canary_console(&visit.console));
    checks.push(match ink(&shot) {
        Ok(ink) => Check::new(
            "canary: an empty page is judged blank",
            ink.is_blank(),
            ink.to_string(),
        ),
        Err(e) => Check::new(
            "canary: an empty page is judged blank",
            false,
            format!("{e:#}"),
        ),
    });

    let shot = out.join("report.png");
    let visit = chromium.screenshot(&report, &shot, "report")?;
    checks.push(match ink(&shot) {
        Ok(ink) => Check::new(
            "report.html screenshot is not blank",
            !ink.is_blank(),
            format!("{ink}; {}", shot.display()),
        ),
        Err(e) => Check::new(
            "report.html screenshot is not blank",
            false,
            format!("{e:#}"),
        ),
    });
    checks.push(no_console("report.html logs no console message", &visit));

    let timeline = out.join("hostile.timeline.jsonl");
    std::fs::write(&timeline, hostile_timeline())
        .with_context(|| format!("writing {}", timeline.display()))?;
    let (html, verdict) = hostile_report(&observer, &timeline, &out)?;
    checks.push(Check::new(
        "hostile report: verdict flagged (the device is in the evidence)",
        verdict == "flagged",
        format!("verdict {verdict}"),
    ));
    checks.extend(width_checks(&chromium, &report, &html, &out)?);
    let page =
        std::fs::read_to_string(&html).with_context(|| format!("reading {}", html.display()))?;
    checks.push(title_names_the_system(&page));

    let visit = chromium.dump_dom(&html, "hostile-dom")?;
    let dom = out.join("hostile.dom.html");
    std::fs::write(&dom, &visit.stdout).with_context(|| format!("writing {}", dom.display()))?;
    checks.extend(dom_checks(&visit.stdout));
    checks.push(no_console("hostile report logs no console message", &visit));

    for c in &checks {
        eprintln!(
            "html-check: {} {}: {}",
            if c.passed { "pass" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let passed = checks.iter().filter(|c| c.passed).count();
    eprintln!(
        "html-check: {passed} of {} checks passed in {:.1} s (Chromium {}); screenshots and DOM in {}",
        checks.len(),
        started.elapsed().as_secs_f64(),
        chromium_version().unwrap_or_else(|| "?".into()),
        out.display()
    );
    let result = out.join("result.json");
    let json = Value::Array(checks.iter().map(Check::to_json).collect());
    std::fs::write(&result, format!("{json:#}\n"))
        .with_context(|| format!("writing {}", result.display()))?;
    Ok(checks)
}

fn ink(png_path: &Path) -> anyhow::Result<Ink> {
    let bytes =
        std::fs::read(png_path).with_context(|| format!("reading {}", png_path.display()))?;
    let img = ink::decode(&bytes).with_context(|| format!("decoding {}", png_path.display()))?;
    Ok(Ink::of(&img))
}

fn canary_console(console: &[String]) -> Check {
    let error = console.iter().any(|m| m.contains("html-check canary"));
    let uncaught = console.iter().any(|m| m.contains("Uncaught"));
    Check::new(
        "canary: console.error and an uncaught exception are seen",
        error && uncaught,
        format!(
            "{} console message(s): {}",
            console.len(),
            console.join(" | ")
        ),
    )
}

fn no_console(name: &str, visit: &Visit) -> Check {
    Check::new(
        name,
        visit.console.is_empty(),
        if visit.console.is_empty() {
            format!("none (Chromium's log: {})", visit.stderr_log.display())
        } else {
            visit.console.join(" | ")
        },
    )
}

/// A capture boot: the SMMU found enabled and reset, then a fatal AER error on a device with a
/// hostile name (and a hostile error type, in case it is shown).
#[must_use]
pub(crate) fn hostile_timeline() -> String {
    let events = [
        serde_json::json!({"ts_ns": 0, "source": "kmsg", "kind": "kernel_boot", "version": "6.12.0-html-check"}),
        serde_json::json!({"ts_ns": 0, "source": "kmsg", "kind": "capture_kernel_marker",
            "evidence": "OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr"}),
        serde_json::json!({"ts_ns": 1_000_000_000u64, "source": "kmsg", "kind": "smmu_reset", "smmu": "9050000.smmuv3",
            "raw": "arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting..."}),
        serde_json::json!({"ts_ns": 2_000_000_000u64, "source": "ebpf", "kind": "aer", "device": HOSTILE,
            "severity": "fatal", "status": "0x0", "error_type": "<img src=x onerror=alert(2)>",
            "reporter": "0000:00:03.0", "raw": format!("pcieport 0000:00:03.0: AER: {}", "x".repeat(LONG))}),
        // Firmware strings are hostile too, and command lines run long.
        serde_json::json!({"ts_ns": 2_000_000_001u64, "source": "observer", "kind": "system_identity",
            "dmi": {"sys_vendor": HOSTILE, "product_name": "<img src=x onerror=alert(3)>"},
            "running_kernel": {"release": "6.12.0-html-check",
                "cmdline": format!("reset_devices nr_cpus=1 kprobe_event={}", "p:kdo/x,arm_smmu_write_reg_sync;".repeat(LONG / 32))}}),
    ];
    let mut text = String::new();
    for e in &events {
        text.push_str(&e.to_string());
        text.push('\n');
    }
    text
}

/// Renders the hostile timeline as HTML and JSON; returns the HTML path and the verdict.
fn hostile_report(
    observer: &Path,
    timeline: &Path,
    out: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    let mut verdict = String::new();
    let html = out.join("hostile.report.html");
    for (format, file) in [("html", &html), ("json", &out.join("hostile.report.json"))] {
        crate::lab::report::render(
            observer,
            timeline,
            format,
            file,
            &out.join("logs").join(format!("report-{format}")),
        )?;
        if format == "json" {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", file.display()))?;
            v["verdict"]
                .as_str()
                .unwrap_or("(none)")
                .clone_into(&mut verdict);
        }
    }
    Ok((html, verdict))
}

/// What the DOM after load must (not) hold.
#[must_use]
pub(crate) fn dom_checks(dom: &str) -> Vec<Check> {
    let lower = dom.to_ascii_lowercase();
    let scripts = lower.matches("<script").count();
    let shown = dom.matches(HOSTILE_AS_TEXT).count();
    vec![
        Check::new(
            "hostile report: no <script element in the DOM",
            scripts == 0,
            format!("{scripts} `<script` in {} bytes of DOM", dom.len()),
        ),
        Check::new(
            "hostile report: the device name is shown as text",
            shown > 0,
            format!("{shown} occurrence(s) of {HOSTILE_AS_TEXT}"),
        ),
    ]
}

/// Each report fits a 1280-pixel window; a page with an unbreakable 600-character line is the
/// negative control.
fn width_checks(
    chromium: &Chromium,
    report: &Path,
    html: &Path,
    out: &Path,
) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    // Width: a copy of each page with a one-line probe script logging its scroll width. The
    // negative control is a page with an unbreakable 600-character line.
    let wide = out.join("wide.html");
    std::fs::write(
        &wide,
        format!(
            "<!doctype html><html><body><pre>{}</pre></body></html>",
            "x".repeat(LONG)
        ),
    )
    .with_context(|| format!("writing {}", wide.display()))?;
    let control = page_width(chromium, &wide, out, "wide")?;
    checks.push(Check::new(
        "width control: a page with a 600-character line is wider than 1280 px",
        control.is_some_and(|w| w > SCREEN_WIDTH),
        format!("scroll width {control:?}"),
    ));
    for (name, page) in [("report.html", report), ("hostile report", html)] {
        let width = page_width(chromium, page, out, &name.replace([' ', '.'], "-"))?;
        checks.push(Check::new(
            format!("{name} fits a 1280-pixel screen (long lines wrap inside their cell)"),
            width.is_some_and(|w| w <= SCREEN_WIDTH),
            format!("scroll width {width:?} px"),
        ));
    }
    Ok(checks)
}

/// The page's `document.documentElement.scrollWidth` in a 1280-pixel window: a copy of the page
/// with a probe script that logs it (the report itself has no scripts).
fn page_width(
    chromium: &Chromium,
    page: &Path,
    out: &Path,
    name: &str,
) -> anyhow::Result<Option<u32>> {
    let text =
        std::fs::read_to_string(page).with_context(|| format!("reading {}", page.display()))?;
    let probe = format!(
        "<script>console.log(\"{WIDTH_MESSAGE}\" + document.documentElement.scrollWidth)</script>"
    );
    let probed = match text.rfind("</body>") {
        Some(at) => format!("{}{probe}{}", &text[..at], &text[at..]),
        None => format!("{text}{probe}"),
    };
    let copy = out.join(format!("{name}.width.html"));
    std::fs::write(&copy, probed).with_context(|| format!("writing {}", copy.display()))?;
    let visit = chromium.screenshot(&copy, &out.join(format!("{name}.width.png")), name)?;
    Ok(logged_width(&visit.console))
}

/// The width a probe logged (`"html-check width 1234", source: ...`).
fn logged_width(console: &[String]) -> Option<u32> {
    console.iter().find_map(|m| {
        let rest = &m[m.find(WIDTH_MESSAGE)? + WIDTH_MESSAGE.len()..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// The hostile report's `<title>` names the system (escaped) as well as the verdict.
fn title_names_the_system(page: &str) -> Check {
    let title = page
        .split_once("<title>")
        .and_then(|(_, rest)| rest.split_once("</title>"))
        .map_or("", |(t, _)| t);
    Check::new(
        "hostile report: the title names the system, as text",
        title.contains(HOSTILE_AS_TEXT) && !title.contains('<'),
        format!("<title>{title}</title>"),
    )
}

fn chromium_version() -> Option<String> {
    let out = Command::new("chromium").arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_timeline_is_json_lines_with_the_hostile_device() {
        let text = hostile_timeline();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events.len(), 5);
        assert_eq!(events[4]["dmi"]["sys_vendor"], HOSTILE);
        assert!(
            events[4]["running_kernel"]["cmdline"]
                .as_str()
                .unwrap()
                .len()
                > LONG
        );
        assert_eq!(events[3]["device"], HOSTILE);
        assert_eq!(events[3]["severity"], "fatal");
        assert!(events[2]["ts_ns"].as_u64() < events[3]["ts_ns"].as_u64());
    }

    #[test]
    fn width_probe_message_and_title_check() {
        let console = [
            "\"other\", source: x (1)".to_owned(),
            format!("\"{WIDTH_MESSAGE}1264\", source: file:///r.html (9)"),
        ];
        assert_eq!(logged_width(&console), Some(1264));
        assert_eq!(logged_width(&console[..1]), None);
        let good =
            format!("<title>kdump DMA observer report: {HOSTILE_AS_TEXT} x: flagged</title>");
        assert!(title_names_the_system(&good).passed);
        assert!(
            !title_names_the_system("<title>kdump DMA observer report: flagged</title>").passed
        );
        let live = format!("<title>kdump DMA observer report: {HOSTILE}</title>");
        assert!(!title_names_the_system(&live).passed);
    }

    #[test]
    fn dom_checks_catch_a_live_script_and_want_the_text() {
        let safe = format!("<html><body><td>{HOSTILE_AS_TEXT}</td></body></html>");
        assert!(dom_checks(&safe).iter().all(|c| c.passed));
        let live = format!("<html><body><td>{HOSTILE}</td></body></html>");
        let failed: Vec<String> = dom_checks(&live)
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(
            failed,
            [
                "hostile report: no <script element in the DOM",
                "hostile report: the device name is shown as text"
            ]
        );
        assert!(!dom_checks("<SCRIPT src=x></SCRIPT>")[0].passed);
    }

    #[test]
    fn the_canary_needs_both_messages() {
        let both = [
            "\"html-check canary\", source: file:///c.html (2)".to_owned(),
            "\"Uncaught ReferenceError: notDefinedAnywhere is not defined\", source: x (2)"
                .to_owned(),
        ];
        assert!(canary_console(&both).passed);
        assert!(!canary_console(&both[..1]).passed);
        assert!(!canary_console(&[]).passed);
    }
}
