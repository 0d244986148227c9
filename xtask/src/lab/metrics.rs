//! The capture kernel's `kdump-dma-observer.prom`: in a capture kernel the daemon writes its
//! metrics (node_exporter textfile format) next to its `--output` timeline when it stops, so
//! the file comes home through the 9p share with the timeline. Checked for presence, for
//! agreeing with the report's verdict, and with `promtool check metrics` when promtool is
//! installed (`cargo xtask dashboards-test` installs it; the lab does not depend on it).
use std::{path::Path, process::Command, time::Duration};

use super::{checks::Check, scenario::Scenario};
use crate::{bounded, cmd, debian};

pub(crate) const PROM: &str = "kdump-dma-observer.prom";
const PROMTOOL_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the scenario's observer stops cleanly in a capture kernel (and so writes the file).
#[must_use]
pub(crate) fn expected(scenario: Scenario) -> bool {
    scenario.is_kdump() && scenario != Scenario::CapturePanic
}

/// The checks on `dir/kdump-dma-observer.prom`; `verdict` is the report's.
#[must_use]
pub(crate) fn checks(scenario: Scenario, dir: &Path, verdict: Option<&str>) -> Vec<Check> {
    if !expected(scenario) {
        return Vec::new();
    }
    let path = dir.join(PROM);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return vec![Check::new(
                format!("{PROM} copied back"),
                false,
                format!("{}: {e}", path.display()),
            )];
        }
    };
    let mut checks = vec![Check::new(
        format!("{PROM} copied back"),
        true,
        format!("{} lines", text.lines().count()),
    )];
    let gauge = verdict_gauge(&text);
    checks.push(Check::new(
        format!("{PROM} verdict gauge agrees with the report"),
        verdict.is_some() && gauge.as_deref() == verdict,
        format!(
            "gauge: {}, report: {}",
            gauge
                .as_deref()
                .unwrap_or("(no kdump_dma_observer_verdict series at 1)"),
            verdict.unwrap_or("(no report)")
        ),
    ));
    checks.push(promtool(&path, dir));
    checks
}

/// The `verdict` label of the `kdump_dma_observer_verdict` series whose value is 1.
#[must_use]
pub(crate) fn verdict_gauge(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix("kdump_dma_observer_verdict{")?;
        let (labels, value) = rest.rsplit_once('}')?;
        if value.trim() != "1" && value.trim() != "1.0" {
            return None;
        }
        labels.split(',').find_map(|l| {
            Some(
                l.trim()
                    .strip_prefix("verdict=\"")?
                    .strip_suffix('"')?
                    .to_owned(),
            )
        })
    })
}

/// `promtool check metrics` on `path` (logs under `dir/logs`). When promtool is not installed
/// it passes, noting the skip, except in CI ([`cmd::in_ci`]), where it fails.
pub(crate) fn promtool(path: &Path, dir: &Path) -> Check {
    let name = format!("promtool check metrics {PROM}");
    if debian::which("promtool").is_none() {
        let ci = cmd::in_ci();
        let why = "promtool is not installed (`cargo xtask dashboards-test` installs it)";
        return Check::new(
            name,
            !ci,
            if ci {
                format!("{why}; CI must run this check")
            } else {
                format!("SKIPPED: {why}")
            },
        );
    }
    let logs = dir.join("logs");
    let ran = std::fs::create_dir_all(&logs)
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            bounded::run(
                Command::new("promtool").args(["check", "metrics"]),
                PROMTOOL_TIMEOUT,
                &logs.join("promtool"),
                Some(path),
            )
        });
    match ran {
        Ok(r) if r.status.success() => Check::new(name, true, "ok"),
        Ok(r) => {
            let said = r.stdout + &r.stderr;
            Check::new(name, false, format!("{}: {}", r.status, said.trim()))
        }
        Err(e) => Check::new(name, false, format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_verdict_gauge() {
        let text = "# HELP kdump_dma_observer_verdict 1 for the current verdict\n\
            kdump_dma_observer_verdict{verdict=\"inconclusive\"} 0\n\
            kdump_dma_observer_verdict{verdict=\"flagged\"} 1\n\
            kdump_dma_observer_verdict{verdict=\"reset-no-fatal\"} 0\n";
        assert_eq!(verdict_gauge(text).as_deref(), Some("flagged"));
        assert_eq!(verdict_gauge(&text.replace("} 1", "} 0")), None);
        assert_eq!(
            verdict_gauge("kdump_dma_observer_verdict{host=\"a\",verdict=\"preserved\"} 1"),
            Some("preserved".into())
        );
    }

    #[test]
    fn only_clean_capture_runs_leave_a_file() {
        let expecting: Vec<&str> = Scenario::ALL
            .iter()
            .filter(|&&s| expected(s))
            .map(|s| s.name())
            .collect();
        assert_eq!(
            expecting,
            [
                "kdump",
                "kdump-aer",
                "external-abort",
                "kdump-reset-aer",
                "kdump-compat"
            ]
        );
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let found = checks(Scenario::Boot, &dir, None);
        assert!(found.is_empty(), "{found:?}");
        let missing = checks(Scenario::Kdump, &dir, Some("reset-no-fatal"));
        assert_eq!(missing.len(), 1);
        assert!(!missing[0].passed && missing[0].detail.contains(PROM));
    }
}
