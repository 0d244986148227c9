//! `kdump-dma-observer recover`: on the next production boot, turn every new capture in the
//! dump directory into a report next to the dump, and publish its metrics to node_exporter.
//!
//! It works even when the capture kernel died before writing anything: the kernel log it
//! printed (with the daemon's `kdump-dma-observer: v1` mirror lines) survives in pstore.
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    capture::live_dir::{HandOff, LiveDir, hand_off},
    dump_files::outcome,
    event::{Detail, Event, Source},
    report::{Report, html, input, json, markdown},
    sinks::metrics::{Metrics, TEXTFILE_NAME},
    verdict::VerdictKind,
};

/// Where `recover` looks and writes.
#[derive(Clone, Debug)]
pub struct RecoverConfig {
    /// kdump-tools and kdump-utils both default to /var/crash; one sub-directory per capture.
    pub dump_dir: PathBuf,
    /// pstore mount (its records are read for captures that left no timeline).
    pub pstore: Option<PathBuf>,
    /// node_exporter's textfile directory, if metrics are to be published.
    pub textfile_dir: Option<PathBuf>,
    /// Which captures were already processed, and the persistent counters.
    pub state: PathBuf,
    /// Read the dump tool's lines from the systemd journal (`sources::dump_tool_journal`).
    pub journal: bool,
}

/// Counters that persist across captures, and what was processed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub captures_seen: u64,
    pub captures_flagged: u64,
    pub processed: Vec<String>,
}

/// One processed capture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    pub dir: PathBuf,
    pub verdict: String,
    pub summary: String,
}

/// Failures of `recover` (a single unreadable capture is reported and skipped, not fatal).
#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("cannot read the dump directory {path}: {source}", path = path.display())]
    DumpDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}", path = path.display())]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a recover state file: {source}", path = path.display())]
    StateFormat {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}", path = path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Processes every capture directory not processed before; returns what it did.
pub fn run(config: &RecoverConfig) -> Result<Vec<Recovered>, RecoverError> {
    let mut state = load_state(&config.state)?;
    adopt_live_dirs(&config.dump_dir);
    let mut done = Vec::new();
    let mut last_metrics = None;
    for dir in capture_dirs(&config.dump_dir)? {
        let key = dir.display().to_string();
        if state.processed.contains(&key) {
            continue;
        }
        let (recovered, metrics) = report_capture(&dir, config.pstore.as_deref(), config.journal);
        state.captures_seen += 1;
        if recovered.verdict == "flagged" {
            state.captures_flagged += 1;
        }
        state.processed.push(key);
        done.push(recovered);
        last_metrics = Some(metrics);
    }
    if let Some(dir) = &config.textfile_dir
        && (last_metrics.is_some() || !state.processed.is_empty())
    {
        let text = textfile(last_metrics.as_deref(), &state);
        std::fs::create_dir_all(dir).map_err(|source| RecoverError::Write {
            path: dir.clone(),
            source,
        })?;
        write_atomically(&dir.join(TEXTFILE_NAME), text.as_bytes())?;
    }
    save_state(&config.state, &state)?;
    Ok(done)
}

/// The capture directories under `dump_dir`, oldest first: sub-directories holding a dump, a
/// partial dump, a dmesg file or the daemon's timeline.
pub fn capture_dirs(dump_dir: &Path) -> Result<Vec<PathBuf>, RecoverError> {
    let entries = std::fs::read_dir(dump_dir).map_err(|source| RecoverError::DumpDir {
        path: dump_dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && outcome(p).is_some() || p.join("timeline.jsonl").is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// A daemon killed before its own hand-off (SIGKILL, a capture kernel that died) leaves its
/// live directory; its files join the dump of the same capture now, if there is one.
fn adopt_live_dirs(dump_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dump_dir) else {
        return;
    };
    let mut live: Vec<LiveDir> = entries
        .flatten()
        .filter_map(|e| LiveDir::parse(&e.path()))
        .collect();
    live.sort_by_key(|l| l.started);
    for l in live {
        match hand_off(&l) {
            Ok(HandOff::Moved(to)) => {
                tracing::info!(from = %l.path.display(), to = %to.display(), "moved a live directory beside its dump");
            }
            Ok(HandOff::NoDump) => {}
            Err(e) => tracing::warn!(error = %e, "live directory not moved"),
        }
    }
}

/// Judges one capture directory and writes report.md, report.html, report.json and
/// verdict.json into it; returns the outcome and the capture's metrics. With `journal`, the
/// dump tool's lines in the systemd journal join the evidence (why a dump failed).
pub fn report_capture(
    dir: &Path,
    pstore: Option<&Path>,
    journal: bool,
) -> (Recovered, std::sync::Arc<Metrics>) {
    let mut events = match input::load(dir) {
        Ok(l) => l.events,
        Err(e) => {
            tracing::info!(dir = %dir.display(), error = %e, "no kernel log in the capture directory; relying on pstore");
            Vec::new()
        }
    };
    let has_timeline = dir.join("timeline.jsonl").is_file();
    if !has_timeline && let Some(pstore) = pstore.filter(|p| p.is_dir()) {
        match input::load(pstore) {
            Ok(l) => events.extend(l.events),
            Err(e) => tracing::info!(error = %e, "pstore not read"),
        }
    }
    if journal {
        events.extend(crate::sources::dump_tool_journal::read(dir));
    }
    if let Some((complete, detail)) = outcome(dir) {
        let last = events.iter().map(|e| e.ts_ns).max().unwrap_or(0);
        events.push(Event::new(
            last + 1,
            Source::Observer,
            Detail::CaptureOutcome { complete, detail },
        ));
    }
    // The metrics below read the whole input; the report takes its own copy.
    let report = Report::build(&dir.display().to_string(), events.clone());
    // Each file whole or not at all, and durable: in a capture kernel a `reboot -f` may
    // follow at any moment. The verdict first.
    let write = |name: &str, text: &str| {
        if let Err(e) = write_atomically(&dir.join(name), text.as_bytes()) {
            tracing::warn!(error = %e, "report file not written");
        }
    };
    let json_report = json::render(&report);
    write("verdict.json", &format!("{:#}\n", json_report["judgement"]));
    write("report.md", &markdown::render(&report));
    write("report.json", &format!("{json_report:#}\n"));
    write("report.html", &html::render(&report));
    let metrics = Metrics::new(report.verdict.verdict != VerdictKind::NotCaptureKernel, 0.0);
    if let Some(Detail::ObserverStarted { probes, .. }) = events
        .iter()
        .map(|e| &e.detail)
        .find(|d| matches!(d, Detail::ObserverStarted { .. }))
    {
        metrics.set_probes(probes);
    }
    metrics.observe(&events);
    // The report's verdict: it weighs the dump's outcome too, which the timeline lacks.
    metrics.set_verdict(&report.verdict);
    metrics.written(
        events
            .iter()
            .filter(|e| e.source != Source::Console)
            .count() as u64,
        0,
        0,
    );
    (
        Recovered {
            dir: dir.to_path_buf(),
            verdict: markdown::verdict_word(&report.verdict),
            summary: report.verdict.summary.clone(),
        },
        metrics,
    )
}

/// The textfile: the last capture's metrics plus the counters kept across captures.
fn textfile(metrics: Option<&Metrics>, state: &State) -> String {
    let mut text = metrics.map(Metrics::encode_classic).unwrap_or_default();
    let _ = write!(
        text,
        "# HELP kdump_dma_observer_captures_seen_total Capture kernels recovered on this machine.\n\
         # TYPE kdump_dma_observer_captures_seen_total counter\n\
         kdump_dma_observer_captures_seen_total {}\n\
         # HELP kdump_dma_observer_captures_flagged_total Recovered captures judged flagged.\n\
         # TYPE kdump_dma_observer_captures_flagged_total counter\n\
         kdump_dma_observer_captures_flagged_total {}\n",
        state.captures_seen, state.captures_flagged
    );
    text
}

fn load_state(path: &Path) -> Result<State, RecoverError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| RecoverError::StateFormat {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(RecoverError::State {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn save_state(path: &Path, state: &State) -> Result<(), RecoverError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| RecoverError::Write {
            path: parent.to_path_buf(),
            source,
        })?;
    }
    let json = serde_json::to_vec_pretty(state).expect("state serializes");
    write_atomically(path, &json)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), RecoverError> {
    let err = |source| RecoverError::Write {
        path: path.to_path_buf(),
        source,
    };
    crate::atomic_file::write_atomically(path, bytes).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPTURE_LOG: &str = "\
[    0.000000] Booting Linux on physical CPU 0x0000000001 [0x000f0510]
[    0.000000] OF: fdt: Reserving 1 KiB of memory at 0xb97ff000 for elfcorehdr
[    1.637153] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...
";

    fn config(root: &Path) -> RecoverConfig {
        RecoverConfig {
            journal: false,
            dump_dir: root.join("crash"),
            pstore: Some(root.join("pstore")),
            textfile_dir: Some(root.join("textfile")),
            state: root.join("state/state.json"),
        }
    }

    #[test]
    fn incomplete_dump_is_flagged_reported_and_counted_once() {
        let root = tempfile::tempdir().unwrap();
        let cfg = config(root.path());
        let capture = cfg.dump_dir.join("202611241003");
        std::fs::create_dir_all(&capture).unwrap();
        std::fs::create_dir_all(cfg.textfile_dir.as_ref().unwrap()).unwrap();
        std::fs::write(capture.join("dmesg.202611241003"), CAPTURE_LOG).unwrap();
        std::fs::write(capture.join("dump-incomplete"), b"partial").unwrap();

        let done = run(&cfg).unwrap();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].verdict, "flagged", "{}", done[0].summary);
        for f in ["report.md", "report.html", "report.json", "verdict.json"] {
            assert!(capture.join(f).is_file(), "{f} written next to the dump");
        }
        let prom = std::fs::read_to_string(cfg.textfile_dir.as_ref().unwrap().join(TEXTFILE_NAME))
            .unwrap();
        assert!(
            prom.contains("kdump_dma_observer_captures_seen_total 1"),
            "{prom}"
        );
        assert!(prom.contains("kdump_dma_observer_captures_flagged_total 1"));
        assert!(
            prom.contains("kdump_dma_observer_verdict{verdict=\"flagged\"} 1"),
            "the verdict gauge agrees with verdict.json (the failed dump is the fatal sign):\n{prom}"
        );
        assert!(
            !prom.contains("# EOF"),
            "classic text format for node_exporter"
        );

        // A second boot finds nothing new; a new complete capture is counted on top.
        let found = run(&cfg).unwrap();
        assert!(found.is_empty(), "{found:?}");
        let second = cfg.dump_dir.join("202611250815");
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("dmesg.202611250815"), CAPTURE_LOG).unwrap();
        std::fs::write(second.join("dump.202611250815"), b"full").unwrap();
        let done = run(&cfg).unwrap();
        assert_eq!(done[0].verdict, "reset-no-fatal");
        let prom = std::fs::read_to_string(cfg.textfile_dir.as_ref().unwrap().join(TEXTFILE_NAME))
            .unwrap();
        assert!(prom.contains("kdump_dma_observer_captures_seen_total 2"));
        assert!(prom.contains("kdump_dma_observer_captures_flagged_total 1"));
    }

    #[test]
    fn a_live_dir_left_by_a_killed_daemon_joins_its_dump() {
        let root = tempfile::tempdir().unwrap();
        let cfg = config(root.path());
        let live = LiveDir::create(&cfg.dump_dir, std::time::SystemTime::now()).unwrap();
        let lines = concat!(
            r#"{"ts_ns":1000,"source":"observer","kind":"observer_started","version":"0.1.0","capture_kernel":true,"kernel_release":"6.12.95+deb12-arm64","hostname":"lab","probes":[]}"#,
            "\n",
            r#"{"ts_ns":1048614000,"source":"kmsg","raw":"arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...","kind":"smmu_reset","smmu":"9050000.smmuv3"}"#,
            "\n"
        );
        std::fs::write(live.timeline(), lines).unwrap();
        let capture = cfg.dump_dir.join("202611241003");
        std::fs::create_dir_all(&capture).unwrap();
        std::fs::write(capture.join("dump.202611241003"), b"full").unwrap();

        let done = run(&cfg).unwrap();
        assert_eq!(
            done.len(),
            1,
            "one capture, not a dump plus a stray timeline"
        );
        assert_eq!(done[0].dir, capture);
        assert!(capture.join("timeline.jsonl").is_file());
        assert!(!live.path.exists());
        assert_eq!(done[0].verdict, "reset-no-fatal", "{}", done[0].summary);
    }

    #[test]
    fn a_capture_that_died_is_rebuilt_from_pstore() {
        let root = tempfile::tempdir().unwrap();
        let cfg = config(root.path());
        let capture = cfg.dump_dir.join("202611241003");
        std::fs::create_dir_all(&capture).unwrap();
        std::fs::write(capture.join("dump-incomplete"), b"").unwrap();
        let pstore = cfg.pstore.as_ref().unwrap();
        std::fs::create_dir_all(pstore).unwrap();
        let console = format!(
            "{CAPTURE_LOG}[    9.700000] kdump-dma-observer: v1 {{\"ts_ns\":9669641000,\"source\":\"ebpf\",\"kind\":\"aer\",\"device\":\"0000:02:00.0\",\"severity\":\"fatal\"}}\n[    9.800000] Kernel panic - not syncing: Asynchronous SError Interrupt\n"
        );
        std::fs::write(pstore.join("console-ramoops-0"), console).unwrap();
        let done = run(&RecoverConfig {
            journal: false,
            textfile_dir: None,
            ..cfg
        })
        .unwrap();
        assert_eq!(done[0].verdict, "flagged");
        let report = std::fs::read_to_string(capture.join("report.md")).unwrap();
        assert!(
            report.contains("0000:02:00.0"),
            "the mirrored AER event is in the report"
        );
    }

    #[test]
    fn errors_name_the_path() {
        let root = tempfile::tempdir().unwrap();
        let mut cfg = config(root.path());
        let e = run(&cfg).unwrap_err().to_string();
        assert!(e.starts_with("cannot read the dump directory"), "{e}");
        std::fs::create_dir_all(&cfg.dump_dir).unwrap();
        cfg.state = root.path().join("bad-state.json");
        std::fs::write(&cfg.state, "not json").unwrap();
        let e = run(&cfg).unwrap_err().to_string();
        assert!(
            e.contains("bad-state.json: not a recover state file"),
            "{e}"
        );
    }
}
