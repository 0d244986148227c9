//! The fleet half of `dashboards-test`: four platforms, each a recorded lab capture whose
//! `system_identity` names a different machine (`dashboards/testdata/fleet/`), go through the
//! real `recover` into a textfile, each served by its own node_exporter. Prometheus scrapes
//! them as job `fleet`; then every expression of `dashboards/kdump-dma-observer-fleet.json`
//! must return exactly the platforms it is about, and the flagged alert must name its
//! platform.
use std::{
    collections::BTreeSet,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, ensure};
use serde_json::Value;

use super::{Api, Findings, Processes, Row, Variables, evaluate, load_dashboard, queries};
use crate::cmd;

pub(super) const DASHBOARD: &str = "dashboards/kdump-dma-observer-fleet.json";
/// The job name of the fleet's `node_exporter` targets in the test's Prometheus.
pub(super) const JOB: &str = "fleet";

/// One platform of the test fleet.
pub(super) struct Platform {
    /// The `input` label of its node_exporter target.
    pub label: &'static str,
    /// Relative to the workspace root.
    pub timeline: &'static str,
    /// `product` of `kdump_dma_observer_system_info` (DMI product name).
    pub product: &'static str,
    pub verdict: &'static str,
    /// A probe the verdict needs was missing in its capture kernel.
    pub probes_missing: bool,
}

/// The labels that name a platform in every fleet panel.
const PLATFORM_LABELS: [&str; 4] = ["vendor", "product", "bios_version", "kernel"];

pub(super) const AMPERE: &str = "fleet-ampere";
pub(super) const KUNPENG: &str = "fleet-kunpeng";
pub(super) const GRACE: &str = "fleet-grace";
pub(super) const SUPERCHIP: &str = "fleet-superchip";

pub(super) const PLATFORMS: [Platform; 4] = [
    // The lab's kdump-aer capture: reset, then correctable, non-fatal and fatal AER.
    Platform {
        label: AMPERE,
        timeline: "dashboards/testdata/fleet/ampere-mtjade.timeline.jsonl",
        product: "Mt.Jade Server System B81.03001.0005",
        verdict: "flagged",
        probes_missing: false,
    },
    // The lab's plain kdump capture: reset, no fatal sign, every probe attached.
    Platform {
        label: KUNPENG,
        timeline: "dashboards/testdata/fleet/huawei-taishan.timeline.jsonl",
        product: "TaiShan 200 (Model 2280)",
        verdict: "reset-no-fatal",
        probes_missing: false,
    },
    // The lab's degraded capture: a required probe absent, ring buffer drops.
    Platform {
        label: GRACE,
        timeline: "dashboards/testdata/fleet/supermicro-grace.timeline.jsonl",
        product: "ARS-221GL-NHIR",
        verdict: "reset-no-fatal",
        probes_missing: true,
    },
    // A capture whose reset the observer could not see (required probes missing too):
    // inconclusive.
    Platform {
        label: SUPERCHIP,
        timeline: "dashboards/testdata/fleet/nvidia-grace.timeline.jsonl",
        product: "Grace CPU Superchip",
        verdict: "inconclusive",
        probes_missing: true,
    },
];

/// Runs `recover` on each platform's capture and starts a node_exporter on its textfile.
pub(super) fn publish(
    root: &Path,
    observer: &Path,
    procs: &mut Processes,
    tmp: &Path,
) -> anyhow::Result<Vec<(&'static str, SocketAddr)>> {
    let mut nodes = Vec::new();
    for platform in &PLATFORMS {
        let textfile = recover(root, observer, platform, &tmp.join(platform.label))?;
        let addr = procs.start_node_exporter(&textfile, tmp)?;
        eprintln!(
            "node_exporter {:<14} {} on http://{addr}",
            platform.label, platform.timeline
        );
        nodes.push((platform.label, addr));
    }
    Ok(nodes)
}

/// A dump directory holding the platform's timeline and a complete dump; `recover` publishes
/// its textfile; returns the textfile directory.
fn recover(
    root: &Path,
    observer: &Path,
    platform: &Platform,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let capture = dir.join("crash/202612040900");
    let textfile = dir.join("textfile");
    for d in [&capture, &textfile] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let from = root.join(platform.timeline);
    std::fs::copy(&from, capture.join("timeline.jsonl"))
        .with_context(|| format!("copying {}", from.display()))?;
    std::fs::write(
        capture.join("dump.202612040900"),
        b"stand-in for a complete dump\n",
    )?;
    cmd::run(
        root,
        Command::new(observer)
            .arg("recover")
            .arg("--dump-dir")
            .arg(dir.join("crash"))
            .arg("--pstore")
            .arg(dir.join("no-pstore"))
            .arg("--textfile-dir")
            .arg(&textfile)
            .arg("--state")
            .arg(dir.join("recover-state.json")),
    )?;
    ensure!(
        textfile.join("kdump-dma-observer.prom").is_file(),
        "recover wrote no textfile for {}",
        platform.label
    );
    Ok(textfile)
}

/// The platforms (by product) a fleet panel must return, by panel title and target.
fn expected(title: &str, ref_id: &str) -> Option<BTreeSet<&'static str>> {
    let products = |keep: &dyn Fn(&Platform) -> bool| {
        PLATFORMS
            .iter()
            .filter(|p| keep(p))
            .map(|p| p.product)
            .collect()
    };
    Some(match (title, ref_id) {
        ("Flagged captures by platform" | "Reset to first fatal sign per platform", "A") => {
            products(&|p| p.verdict == "flagged")
        }
        ("Platforms never observed", "A") => products(&|p| p.verdict == "inconclusive"),
        ("Platforms never observed", "B") => products(&|p| p.probes_missing),
        ("Platforms reporting", "A") => products(&|_| true),
        _ => return None,
    })
}

/// Every target of the fleet dashboard, against the fleet's platforms.
pub(super) fn check_dashboard(
    root: &Path,
    api: &Api,
    table: &mut Vec<Row>,
    findings: &mut Findings,
) -> anyhow::Result<()> {
    let dashboard = load_dashboard(root, DASHBOARD)?;
    let variables = Variables::of(&dashboard);
    let queries = queries(&dashboard);
    let count = queries.len();
    for q in queries {
        let source = format!("fleet panel {:?} [{}]", q.title, q.ref_id);
        let expr = match variables.concrete(q.expr) {
            Ok(e) => e,
            Err(e) => {
                findings.fail(format!("{source}: {e}"));
                continue;
            }
        };
        match expected(q.title, q.ref_id) {
            Some(want) => check_grouping(api, &source, &expr, &want, table, findings),
            None if q.title == "Captures by verdict over time" => {
                check_verdict_counts(api, &source, &expr, table, findings);
            }
            None => findings.fail(format!(
                "{source}: no expectation in xtask/src/dashboards/fleet.rs"
            )),
        }
    }
    ensure!(count >= 5, "{DASHBOARD}: only {count} panel queries");
    Ok(())
}

/// The expression must return one series per expected platform (by `product`), nothing else.
fn check_grouping(
    api: &Api,
    source: &str,
    expr: &str,
    want: &BTreeSet<&str>,
    table: &mut Vec<Row>,
    findings: &mut Findings,
) {
    let result = if want.is_empty() {
        // An empty answer is the right one; `evaluate` would call it a failure.
        match api.query(expr) {
            Ok(r) => {
                table.push(Row {
                    source: source.to_owned(),
                    expr: expr.to_owned(),
                    series: Some(r.len()),
                });
                r
            }
            Err(e) => {
                findings.fail(format!("{source} failed to evaluate: {e:#}\n{expr}"));
                return;
            }
        }
    } else {
        match evaluate(api, source.to_owned(), expr.to_owned(), table, findings) {
            Some(r) => r,
            None => return,
        }
    };
    let got: BTreeSet<String> = result
        .iter()
        .filter_map(|s| s["metric"]["product"].as_str().map(str::to_owned))
        .collect();
    let want: BTreeSet<String> = want.iter().map(|s| (*s).to_owned()).collect();
    // A panel that dropped a platform label from its `by (...)` would still group by product.
    for series in &result {
        let missing: Vec<&str> = PLATFORM_LABELS
            .iter()
            .copied()
            .filter(|l| series["metric"].get(*l).is_none())
            .collect();
        if !missing.is_empty() {
            findings.fail(format!(
                "{source} returned a series without the platform label(s) {missing:?}: {}",
                series["metric"]
            ));
        }
    }
    if got != want || result.len() != want.len() {
        findings.fail(format!(
            "{source} grouped the fleet as {got:?} ({} series), expected {want:?}: {expr}",
            result.len()
        ));
    }
}

/// `count by (verdict)` over the platforms: each verdict as often as the fleet has it.
fn check_verdict_counts(
    api: &Api,
    source: &str,
    expr: &str,
    table: &mut Vec<Row>,
    findings: &mut Findings,
) {
    let Some(result) = evaluate(api, source.to_owned(), expr.to_owned(), table, findings) else {
        return;
    };
    let got: BTreeSet<(String, u64)> = result
        .iter()
        .filter_map(|s| {
            let verdict = s["metric"]["verdict"].as_str()?.to_owned();
            let n = s["value"][1].as_str()?.parse().ok()?;
            Some((verdict, n))
        })
        .collect();
    let mut want = std::collections::BTreeMap::<String, u64>::new();
    for p in &PLATFORMS {
        *want.entry(p.verdict.to_owned()).or_default() += 1;
    }
    let want: BTreeSet<(String, u64)> = want.into_iter().collect();
    if got != want {
        findings.fail(format!(
            "{source} counted verdicts {got:?}, expected {want:?}: {expr}"
        ));
    }
}

/// The flagged alert of the fleet's flagged platform names the platform.
pub(super) fn check_alert_labels(api: &Api, findings: &mut Findings) -> anyhow::Result<()> {
    let alerts = api.get("alerts", &[])?;
    let flagged: Vec<&Value> = alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| {
            a["labels"]["alertname"] == "KdumpDmaObserverCaptureFlagged"
                && a["labels"]["job"] == JOB
        })
        .collect();
    let products: BTreeSet<&str> = flagged
        .iter()
        .filter_map(|a| a["labels"]["product"].as_str())
        .collect();
    let want: BTreeSet<&str> = PLATFORMS
        .iter()
        .filter(|p| p.verdict == "flagged")
        .map(|p| p.product)
        .collect();
    if products != want || flagged.len() != want.len() {
        findings.fail(format!(
            "alert KdumpDmaObserverCaptureFlagged for job {JOB} names platforms {products:?} \
             ({} alerts), expected {want:?}",
            flagged.len()
        ));
    }
    Ok(())
}
