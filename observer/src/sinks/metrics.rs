//! Prometheus metrics of the timeline, as OpenMetrics text: served on `/metrics` and written
//! as a node_exporter textfile (`kdump-dma-observer.prom`) when the capture ends.
//!
//! Names carry one prefix, base units and `_total` counters; label values come from small
//! fixed sets (event kinds, severities, sources, probe names) or from the machine's few SMMU
//! instances, so cardinality stays low.
use std::{
    path::Path,
    sync::{Arc, atomic::AtomicU64},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::{Registry, Unit},
};

use crate::{
    atomic_file::write_atomically,
    event::{Detail, Event, ProbeReport, ProbeState},
    verdict::{Verdict, VerdictKind},
};

/// File name of the textfile hand-off.
pub const TEXTFILE_NAME: &str = "kdump-dma-observer.prom";

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

/// The machine, so verdicts can be grouped by platform: one series per daemon run.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SystemLabels {
    vendor: String,
    product: String,
    bios_version: String,
    cpu: String,
    kernel: String,
}

/// Longest label value taken from firmware strings (DMI is hostile and unbounded).
const MAX_LABEL_CHARS: usize = 64;

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
    system_info: Family<SystemLabels, Gauge>,
}

fn register_system_info(registry: &mut Registry) -> Family<SystemLabels, Gauge> {
    let system_info = Family::<SystemLabels, Gauge>::default();
    registry.register(
        "system_info",
        "The machine (DMI vendor and product, else the device-tree model), BIOS version, CPU and running kernel (always 1)",
        system_info.clone(),
    );
    system_info
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
        let capture_kernel_gauge = Gauge::<i64>::default();
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
        let system_info = register_system_info(&mut registry);
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
            system_info,
        };
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

    /// Counts a batch of timeline events.
    pub fn observe(&self, batch: &[Event]) {
        for e in batch {
            let severity = e.detail.stated_severity().unwrap_or("info");
            self.events
                .get_or_create(&EventLabels {
                    kind: e.detail.kind().to_owned(),
                    severity: severity.to_owned(),
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
                            severity: severity.to_owned(),
                        })
                        .inc();
                }
                Detail::RingBufferDrops { new, .. } => {
                    self.ring_dropped.inc_by(*new);
                }
                Detail::SystemIdentity(id) => self.system(id),
                _ => {}
            }
        }
    }

    /// Replaces the `system_info` series with this identity's.
    fn system(&self, id: &crate::system::SystemIdentity) {
        let label = |s: &str| crate::system::bounded_to(s, MAX_LABEL_CHARS);
        let dmi = id.dmi.clone().unwrap_or_default();
        let product = if dmi.product_name.is_empty() {
            id.device_tree
                .as_ref()
                .and_then(crate::system::devicetree::DeviceTree::name)
                .unwrap_or_default()
        } else {
            dmi.product_name.clone()
        };
        self.system_info.clear();
        self.system_info
            .get_or_create(&SystemLabels {
                vendor: label(&dmi.sys_vendor),
                product: label(&product),
                bios_version: label(&dmi.bios_version),
                cpu: label(id.cpu.as_ref().map_or("", |c| c.name.as_str())),
                kernel: label(
                    id.running_kernel
                        .as_ref()
                        .map_or("", |k| k.release.as_str()),
                ),
            })
            .set(1);
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

    /// Publishes the verdict stage's result: the verdict gauge, and the reset-to-first-fatal
    /// time of a flagged capture.
    pub fn set_verdict(&self, v: &Verdict) {
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
    /// ([`write_atomically`]), for node_exporter's textfile collector.
    pub fn write_textfile(&self, dir: &Path) -> std::io::Result<std::path::PathBuf> {
        let path = dir.join(TEXTFILE_NAME);
        write_atomically(&path, self.encode_classic().as_bytes())?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{AerSeverity, Source};

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
        let batch = [reset, fatal];
        m.observe(&batch);
        let mut live = crate::verdict::LiveVerdict::new(true);
        live.observe(&batch);
        m.set_verdict(live.current());
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
    fn system_info_names_the_platform_once_with_bounded_labels() {
        use crate::system::{
            RunningKernel, SystemIdentity, cpu::Cpu, devicetree::DeviceTree, dmi::Dmi,
        };
        let m = Metrics::new(true, 0.0);
        let dt = SystemIdentity {
            device_tree: Some(DeviceTree {
                model: "linux,dummy-virt".into(),
                compatible: Vec::new(),
            }),
            cpu: Some(Cpu {
                midr: "0x000f0510".into(),
                name: "QEMU max".into(),
                count: None,
            }),
            running_kernel: Some(RunningKernel {
                release: "6.12.57".into(),
                cmdline: String::new(),
            }),
            ..SystemIdentity::default()
        };
        m.observe(&[Event::new(
            1,
            Source::Observer,
            Detail::SystemIdentity(Box::new(dt)),
        )]);
        let text = m.encode();
        assert!(
            text.contains("kdump_dma_observer_system_info{vendor=\"\",product=\"linux,dummy-virt\",bios_version=\"\",cpu=\"QEMU max\",kernel=\"6.12.57\"} 1"),
            "{text}"
        );
        let hostile = SystemIdentity {
            dmi: Some(Dmi {
                sys_vendor: format!("Evil\"}} 1\n{}", "V".repeat(500)),
                product_name: "Box".into(),
                bios_version: "1.0".into(),
                ..Dmi::default()
            }),
            ..SystemIdentity::default()
        };
        m.observe(&[Event::new(
            2,
            Source::Observer,
            Detail::SystemIdentity(Box::new(hostile)),
        )]);
        let text = m.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("kdump_dma_observer_system_info{"))
            .collect();
        assert_eq!(series.len(), 1, "one platform per run: {series:?}");
        assert!(series[0].contains("product=\"Box\""), "{}", series[0]);
        assert!(
            series[0].contains("vendor=\"Evil\\\"} 1 VVV"),
            "quote escaped, newline gone: {}",
            series[0]
        );
        assert!(series[0].len() < 300, "bounded: {}", series[0]);
        assert!(
            to_classic_text(&text).contains("# TYPE kdump_dma_observer_system_info gauge"),
            "{text}"
        );
    }

    #[test]
    fn textfile_carries_the_verdict_it_was_given() {
        let dir = tempfile::tempdir().unwrap();
        let m = Metrics::new(false, 0.0);
        m.set_verdict(crate::verdict::LiveVerdict::new(false).current());
        let path = m.write_textfile(dir.path()).unwrap();
        assert_eq!(path.file_name().unwrap(), TEXTFILE_NAME);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("kdump_dma_observer_verdict{verdict=\"not-capture-kernel\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("# EOF"),
            "the classic text format, not OpenMetrics"
        );
    }
}
