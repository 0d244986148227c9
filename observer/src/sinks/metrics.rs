//! Prometheus metrics of the timeline, as OpenMetrics text: served on `/metrics` and written
//! as a node_exporter textfile (`kdump-dma-observer.prom`) when the capture ends.
//!
//! Names carry one prefix, base units and `_total` counters; label values come from small
//! fixed sets (event kinds, severities, sources, probe names) or from the machine's few SMMU
//! instances, so cardinality stays low.
use std::{
    io::Write as _,
    path::Path,
    sync::{Arc, Mutex, atomic::AtomicU64},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

use crate::{
    event::{AerSeverity, Detail, Event, Source},
    probes::{ProbeReport, ProbeState},
    verdict::{self, VerdictKind},
};

/// File name of the textfile hand-off.
pub const TEXTFILE_NAME: &str = "kdump-dma-observer.prom";
/// Events kept for judging the live verdict (evidence kinds only; bounded).
const MAX_RETAINED: usize = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    kind: String,
    severity: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AerLabels {
    device: String,
    severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SmmuLabels {
    smmu: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    probe: String,
    required: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// Every metric of the daemon.
pub struct Metrics {
    registry: Registry,
    events: Family<EventLabels, Counter>,
    aer: Family<AerLabels, Counter>,
    smmu_resets: Family<SmmuLabels, Counter>,
    verdict: Family<VerdictLabels, Gauge>,
    reset_to_first_fatal: Gauge<f64, AtomicU64>,
    probe_attached: Family<ProbeLabels, Gauge>,
    ring_dropped: Counter,
    lines_written: Counter,
    write_failures: Counter,
    mirror_skipped: Counter,
    capture_kernel: Gauge,
    retained: Mutex<Vec<Event>>,
}

/// The five verdict words, for a complete info gauge.
const VERDICTS: [VerdictKind; 5] = [
    VerdictKind::Flagged,
    VerdictKind::ResetNoFatal,
    VerdictKind::Preserved,
    VerdictKind::NotCaptureKernel,
    VerdictKind::Inconclusive,
];

fn word(v: VerdictKind) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|w| w.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Metrics {
    /// A registry for one daemon run started at `start_unix_seconds`.
    #[must_use]
    pub fn new(capture_kernel: bool, start_unix_seconds: f64) -> Arc<Self> {
        let mut registry = Registry::with_prefix("kdump_dma_observer");
        let events = Family::<EventLabels, Counter>::default();
        registry.register(
            "events",
            "Timeline events by kind, severity and first source",
            events.clone(),
        );
        let aer = Family::<AerLabels, Counter>::default();
        registry.register(
            "aer_errors",
            "AER errors by reporting device (PCI address) and severity",
            aer.clone(),
        );
        let smmu_resets = Family::<SmmuLabels, Counter>::default();
        registry.register("smmu_resets", "SMMU resets by instance and path (abort: full reset; adopt: kdump adoption; fallback: adoption refused, reset)", smmu_resets.clone());
        let verdict = Family::<VerdictLabels, Gauge>::default();
        registry.register(
            "verdict",
            "1 for the current verdict on this capture kernel, 0 for the others",
            verdict.clone(),
        );
        let reset_to_first_fatal = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "reset_to_first_fatal",
            "Time from the aggressive SMMU reset to the first fatal sign (flagged captures)",
            Unit::Seconds,
            reset_to_first_fatal.clone(),
        );
        let probe_attached = Family::<ProbeLabels, Gauge>::default();
        registry.register(
            "probe_attached",
            "1 if the probe is attached on this kernel, 0 if not",
            probe_attached.clone(),
        );
        let ring_dropped = Counter::default();
        registry.register(
            "ring_buffer_dropped_records",
            "Records lost in the kernel because the BPF ring buffer was full",
            ring_dropped.clone(),
        );
        let lines_written = Counter::default();
        registry.register(
            "timeline_lines_written",
            "Timeline lines written and synced",
            lines_written.clone(),
        );
        let write_failures = Counter::default();
        registry.register(
            "timeline_write_failures",
            "Timeline lines lost to failed writes (e.g. a full disk)",
            write_failures.clone(),
        );
        let mirror_skipped = Counter::default();
        registry.register(
            "kmsg_mirror_skipped",
            "Events not mirrored into the kernel log (rate limit, size, write error)",
            mirror_skipped.clone(),
        );
        let capture_kernel_gauge = Gauge::default();
        registry.register(
            "capture_kernel",
            "1 if this daemon runs in a kdump capture kernel",
            capture_kernel_gauge.clone(),
        );
        capture_kernel_gauge.set(i64::from(capture_kernel));
        let start = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "capture_start_time",
            "Unix time the daemon started",
            Unit::Seconds,
            start.clone(),
        );
        start.set(start_unix_seconds);
        // A gauge named *_info rather than the OpenMetrics `info` type: the classic text
        // format (promtool, node_exporter's textfile collector) has no such type.
        let build = Family::<BuildLabels, Gauge>::default();
        registry.register("build_info", "Build information (always 1)", build.clone());
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        let metrics = Self {
            registry,
            events,
            aer,
            smmu_resets,
            verdict,
            reset_to_first_fatal,
            probe_attached,
            ring_dropped,
            lines_written,
            write_failures,
            mirror_skipped,
            capture_kernel: capture_kernel_gauge,
            retained: Mutex::new(Vec::new()),
        };
        metrics.judge();
        Arc::new(metrics)
    }

    /// Records probe states.
    pub fn set_probes(&self, probes: &[ProbeReport]) {
        for p in probes {
            self.probe_attached
                .get_or_create(&ProbeLabels {
                    probe: p.name.clone(),
                    required: p.required.to_string(),
                })
                .set(i64::from(p.state == ProbeState::Attached));
        }
    }

    /// Counts a batch of timeline events and refreshes the verdict if evidence arrived.
    pub fn observe(&self, batch: &[Event]) {
        let mut evidence = false;
        for e in batch {
            self.events
                .get_or_create(&EventLabels {
                    kind: e.detail.kind().to_owned(),
                    severity: severity(e).to_owned(),
                    source: e.source.as_str().to_owned(),
                })
                .inc();
            match &e.detail {
                Detail::SmmuReset { smmu, .. } => self.reset(smmu, "abort"),
                Detail::SmmuAdopt { smmu } => self.reset(smmu, "adopt"),
                Detail::SmmuAdoptFallback { smmu, .. } => self.reset(smmu, "fallback"),
                Detail::Aer { device, .. } => {
                    self.aer
                        .get_or_create(&AerLabels {
                            device: device.clone(),
                            severity: severity(e).to_owned(),
                        })
                        .inc();
                }
                Detail::RingBufferDrops { new, .. } => {
                    self.ring_dropped.inc_by(*new);
                }
                _ => {}
            }
            if crate::report::lane(e).is_some()
                || matches!(
                    e.detail,
                    Detail::ObserverStarted { .. }
                        | Detail::KernelBoot { .. }
                        | Detail::CaptureKernelMarker { .. }
                        | Detail::KernelCmdline { .. }
                        // recover's verdict on the dump (an empty dump is a fatal sign).
                        | Detail::CaptureOutcome { .. }
                )
            {
                evidence = true;
                let mut retained = self.retained.lock().expect("metrics lock");
                if retained.len() < MAX_RETAINED {
                    retained.push(e.clone());
                }
            }
        }
        if evidence {
            self.judge();
        }
    }

    fn reset(&self, smmu: &str, path: &str) {
        self.smmu_resets
            .get_or_create(&SmmuLabels {
                smmu: smmu.to_owned(),
                path: path.to_owned(),
            })
            .inc();
    }

    /// Counts lines written or lost, and events not mirrored (from the writer thread).
    pub fn written(&self, lines: u64, failed: u64, mirror_skipped: u64) {
        self.lines_written.inc_by(lines);
        self.write_failures.inc_by(failed);
        self.mirror_skipped.inc_by(mirror_skipped);
    }

    fn judge(&self) {
        let retained = self.retained.lock().expect("metrics lock");
        let mut events = retained.clone();
        drop(retained);
        if !events
            .iter()
            .any(|e| matches!(e.detail, Detail::ObserverStarted { .. }))
        {
            events.insert(
                0,
                Event::new(
                    0,
                    Source::Observer,
                    Detail::ObserverStarted {
                        version: String::new(),
                        capture_kernel: self.capture_kernel.get() == 1,
                        kernel_release: String::new(),
                        hostname: String::new(),
                        probes: Vec::new(),
                    },
                ),
            );
        }
        let v = verdict::judge(&events);
        for kind in VERDICTS {
            self.verdict
                .get_or_create(&VerdictLabels {
                    verdict: word(kind),
                })
                .set(i64::from(kind == v.verdict));
        }
        #[expect(clippy::cast_precision_loss, reason = "seconds as f64")]
        if let Some(ns) = v.reset_to_first_fatal_ns {
            self.reset_to_first_fatal.set(ns as f64 / 1e9);
        }
    }

    /// The OpenMetrics text exposition.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }

    /// The exposition in the classic Prometheus text format (what node_exporter's textfile
    /// collector and `promtool check metrics` read): see [`to_classic_text`].
    #[must_use]
    pub fn encode_classic(&self) -> String {
        to_classic_text(&self.encode())
    }

    /// Writes the classic-text exposition as `dir/kdump-dma-observer.prom`, atomically
    /// (temporary file, fsync, rename), for node_exporter's textfile collector.
    pub fn write_textfile(&self, dir: &Path) -> std::io::Result<std::path::PathBuf> {
        let path = dir.join(TEXTFILE_NAME);
        let tmp = dir.join(format!(".{TEXTFILE_NAME}.tmp"));
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(self.encode_classic().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }
}

/// OpenMetrics text → the classic Prometheus text format: a counter's `HELP`/`TYPE` name gets
/// its `_total` suffix (OpenMetrics names the family without it), and the OpenMetrics-only
/// `# UNIT` and `# EOF` lines are dropped.
#[must_use]
pub fn to_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// The `severity` label: AER severity, `fatal` for other fatal signs, else `info`.
fn severity(event: &Event) -> &'static str {
    match &event.detail {
        Detail::Aer {
            severity: AerSeverity::Correctable,
            ..
        } => "correctable",
        Detail::Aer {
            severity: AerSeverity::Nonfatal,
            ..
        } => "nonfatal",
        Detail::Aer {
            severity: AerSeverity::Fatal,
            ..
        } => "fatal",
        _ if verdict::fatal_sign(event).is_some() => "fatal",
        _ => "info",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_documented_series() {
        let m = Metrics::new(true, 1_700_000_000.0);
        m.set_probes(&[ProbeReport {
            name: "aer_event".into(),
            target: String::new(),
            required: true,
            state: ProbeState::Attached,
            reason: String::new(),
            errno: None,
        }]);
        let reset = Event::new(
            1_000,
            Source::Kmsg,
            Detail::SmmuReset {
                smmu: "9050000.smmuv3".into(),
                writes: Vec::new(),
            },
        );
        let fatal = Event::new(
            3_000_000_000,
            Source::Ebpf,
            Detail::Aer {
                device: "0000:02:00.0".into(),
                severity: AerSeverity::Fatal,
                status: None,
                error_type: None,
                reporter: None,
                errors: Vec::new(),
                firmware_first: None,
            },
        );
        m.observe(&[reset, fatal]);
        m.written(5, 0, 1);
        let text = m.encode();
        for needle in [
            "kdump_dma_observer_events_total{kind=\"aer\",severity=\"fatal\",source=\"ebpf\"} 1",
            "kdump_dma_observer_smmu_resets_total{smmu=\"9050000.smmuv3\",path=\"abort\"} 1",
            "kdump_dma_observer_aer_errors_total{device=\"0000:02:00.0\",severity=\"fatal\"} 1",
            "kdump_dma_observer_verdict{verdict=\"flagged\"} 1",
            "kdump_dma_observer_verdict{verdict=\"reset-no-fatal\"} 0",
            "kdump_dma_observer_probe_attached{probe=\"aer_event\",required=\"true\"} 1",
            "kdump_dma_observer_timeline_lines_written_total 5",
            "kdump_dma_observer_capture_kernel 1",
            "kdump_dma_observer_build_info{version=",
            "# TYPE kdump_dma_observer_build_info gauge",
            "# EOF",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(
            text.contains("kdump_dma_observer_reset_to_first_fatal_seconds 2.99"),
            "{text}"
        );
    }

    #[test]
    fn textfile_is_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metrics::new(false, 0.0);
        let path = m.write_textfile(dir.path()).unwrap();
        assert_eq!(path.file_name().unwrap(), TEXTFILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("kdump_dma_observer_verdict{verdict=\"not-capture-kernel\"} 1"),
            "{text}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }
}
