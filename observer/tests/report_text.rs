//! `report --format text` against a reviewed copy: the recorded timeline of a `kdump-aer` lab
//! run (QEMU virt, 6.12, three AER errors injected after the SMMU reset) and the text report
//! generated from it once and read by eye (`tests/data/lab/kdump-aer-612.report.txt`).
//!
//! When the text format changes on purpose, regenerate the copy from that directory with
//! `kdump-dma-observer report kdump-aer-612.timeline.jsonl --format text`, put `{version}` in
//! the last line, and review the difference before committing it.
use std::path::{Path, PathBuf};

use observer::report::{Report, input, text};

fn lab(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/lab")
        .join(name)
}

#[test]
fn text_report_of_the_recorded_kdump_aer_run_matches_the_reviewed_copy() {
    let name = "kdump-aer-612.timeline.jsonl";
    let loaded = input::load(&lab(name)).unwrap();
    let report = Report::build(name, loaded.events.clone());
    let got = text::render(&report).replace(
        &format!("kdump-dma-observer {}, report", env!("CARGO_PKG_VERSION")),
        "kdump-dma-observer {version}, report",
    );
    let want = std::fs::read_to_string(lab("kdump-aer-612.report.txt")).unwrap();
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(g, w)| g != w)
            .unwrap_or_else(|| got.lines().count().min(want.lines().count()));
        panic!(
            "the text report differs from the reviewed copy at line {}:\n  got:  {:?}\n  want: {:?}\nwhole report:\n{got}",
            first + 1,
            got.lines().nth(first),
            want.lines().nth(first)
        );
    }
    // What a mailing-list reply needs is all there, within 80 columns.
    for line in got.lines() {
        assert!(line.len() <= text::WIDTH, "{line:?}");
    }
    for needle in [
        "machine:        linux,dummy-virt",
        "crashed kernel: 6.12.95+deb12-arm64",
        "Verdict: flagged",
        "Reset to first fatal sign: 6.169 s",
        "    arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...",
        "What was missing",
    ] {
        assert!(got.contains(needle), "no {needle:?} in\n{got}");
    }
}
