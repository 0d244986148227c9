//! Fleet roll-up: many `report.json` files (schema 1 or 2, `docs/report.schema.json`) grouped
//! by platform, BIOS, crashed kernel and verdict, with counts, the first fatal kinds and the
//! median reset-to-first-fatal time.
//!
//! Streaming: one file is read into a reused buffer, reduced to the few fields the roll-up
//! needs (the timeline is skipped by serde, never kept), and dropped before the next. Memory is
//! bounded by the number of distinct groups times [`MAX_SAMPLES`]: each group keeps at most that
//! many reset-to-fatal samples, exact below it and a uniform reservoir sample (Algorithm R with
//! a fixed-seed generator, so the output is reproducible) above it. The median of a 4096-sample
//! reservoir is within about ±1.6 percentile points of the true median (one standard error of a
//! sample quantile is sqrt(p(1-p)/n)), which is plenty for "how long after the reset".
//!
//! Bad or foreign files (not JSON, not a report, an unknown schema version) are recorded as
//! [`Skipped`] with the file and the reason, and the roll-up goes on.
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Read as _,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// Reset-to-fatal samples kept per group (see the module documentation).
pub const MAX_SAMPLES: usize = 4096;
/// Files larger than this are skipped rather than read (a report is kilobytes to a few MiB).
pub const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Highest report schema version this roll-up understands.
pub const MAX_SCHEMA: u32 = super::SCHEMA_VERSION;

/// What one group is keyed by.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// DMI vendor and product, else the device-tree model / `machine` line, else `unknown`.
    pub platform: String,
    /// DMI BIOS version (with date), else the report's `bios` line, else `unknown`.
    pub bios: String,
    /// The crashed kernel's release, else `unknown`.
    pub kernel: String,
    /// The report's verdict word.
    pub verdict: String,
}

/// One group's figures.
#[derive(Clone, Debug, Default)]
pub struct Group {
    pub captures: u64,
    /// First fatal event kind -> captures.
    pub first_fatal: BTreeMap<String, u64>,
    /// Captures that carried `reset_to_first_fatal_ns`.
    pub timed: u64,
    samples: Vec<u64>,
}

impl Group {
    fn add_sample(&mut self, ns: u64, rng: &mut SplitMix) {
        self.timed += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(ns);
        } else {
            // Algorithm R: keep the new sample with probability MAX_SAMPLES / timed.
            let slot = rng.below(self.timed);
            if let Ok(slot) = usize::try_from(slot)
                && slot < MAX_SAMPLES
            {
                self.samples[slot] = ns;
            }
        }
    }

    /// Median reset-to-first-fatal time (the lower middle of an even count), if any capture
    /// had one.
    #[must_use]
    pub fn median_ns(&self) -> Option<u64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        let mid = (sorted.len() - 1) / 2;
        let (_, median, _) = sorted.select_nth_unstable(mid);
        Some(*median)
    }
}

/// A file that was not counted, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub file: PathBuf,
    pub reason: String,
}

/// The roll-up.
#[derive(Debug, Default)]
pub struct Fleet {
    pub groups: BTreeMap<GroupKey, Group>,
    pub skipped: Vec<Skipped>,
    /// Reports counted.
    pub reports: u64,
    rng: SplitMix,
    buf: Vec<u8>,
}

/// The fields of a report the roll-up reads; everything else (the timeline) is ignored.
#[derive(Deserialize)]
struct Slim {
    schema_version: u32,
    verdict: String,
    header: SlimHeader,
    judgement: SlimJudgement,
}

#[derive(Deserialize)]
struct SlimHeader {
    crashed_kernel: Option<String>,
    #[serde(default)]
    system: SlimSystem,
}

#[derive(Deserialize, Default)]
struct SlimSystem {
    machine: Option<String>,
    bios: Option<String>,
    #[serde(default)]
    identity: SlimIdentity,
}

#[derive(Deserialize, Default)]
struct SlimIdentity {
    #[serde(default)]
    dmi: SlimDmi,
    #[serde(default)]
    device_tree: SlimDt,
}

#[derive(Deserialize, Default)]
struct SlimDmi {
    sys_vendor: Option<String>,
    product_name: Option<String>,
    bios_version: Option<String>,
}

#[derive(Deserialize, Default)]
struct SlimDt {
    model: Option<String>,
}

#[derive(Deserialize)]
struct SlimJudgement {
    first_fatal: Option<SlimEvidence>,
    reset_to_first_fatal_ns: Option<u64>,
}

#[derive(Deserialize)]
struct SlimEvidence {
    kind: String,
}

fn nonempty(s: Option<&String>) -> Option<&str> {
    s.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl Slim {
    fn key(&self) -> GroupKey {
        let sys = &self.header.system;
        let dmi = &sys.identity.dmi;
        let platform = match (
            nonempty(dmi.sys_vendor.as_ref()),
            nonempty(dmi.product_name.as_ref()),
        ) {
            (Some(v), Some(p)) => format!("{v} {p}"),
            (Some(one), None) | (None, Some(one)) => one.to_owned(),
            (None, None) => nonempty(sys.identity.device_tree.model.as_ref())
                .or_else(|| nonempty(sys.machine.as_ref()))
                .unwrap_or("unknown")
                .to_owned(),
        };
        let bios = nonempty(dmi.bios_version.as_ref())
            .or_else(|| nonempty(sys.bios.as_ref()))
            .unwrap_or("unknown")
            .to_owned();
        let kernel = nonempty(self.header.crashed_kernel.as_ref())
            .unwrap_or("unknown")
            .to_owned();
        GroupKey {
            platform,
            bios,
            kernel,
            verdict: self.verdict.clone(),
        }
    }
}

/// Why one report could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum SkipReason {
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
    #[error("larger than {MAX_FILE_BYTES} bytes, not a report")]
    TooLarge,
    #[error("not a kdump-dma-observer report: {0}")]
    NotReport(serde_json::Error),
    #[error("report schema version {0} is newer than this program understands ({MAX_SCHEMA})")]
    NewerSchema(u32),
}

impl Fleet {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Add every path: a file is read as a report; a directory is walked recursively (sorted)
    /// and its `*.json` files are read. Unreadable entries land in [`Fleet::skipped`].
    pub fn add_paths<P: AsRef<Path>>(&mut self, paths: &[P]) {
        for p in paths {
            let p = p.as_ref();
            if p.is_dir() {
                self.walk(p);
            } else {
                self.add_file(p);
            }
        }
    }

    fn walk(&mut self, dir: &Path) {
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(rd) => rd,
                Err(e) => {
                    self.skip(&d, &SkipReason::Io(e));
                    continue;
                }
            };
            let mut files = Vec::new();
            let mut dirs = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() => dirs.push(path),
                    Ok(_) if path.extension().is_some_and(|e| e == "json") => files.push(path),
                    _ => {}
                }
            }
            files.sort();
            for f in &files {
                self.add_file(f);
            }
            dirs.sort();
            stack.extend(dirs.into_iter().rev());
        }
    }

    fn skip(&mut self, file: &Path, reason: &SkipReason) {
        tracing::warn!(file = %file.display(), reason = %reason, "fleet: skipped");
        self.skipped.push(Skipped {
            file: file.to_path_buf(),
            reason: reason.to_string(),
        });
    }

    /// Read one report file and count it, or record why not.
    pub fn add_file(&mut self, file: &Path) {
        if let Err(reason) = self.try_add_file(file) {
            self.skip(file, &reason);
        }
    }

    fn try_add_file(&mut self, file: &Path) -> Result<(), SkipReason> {
        let f = std::fs::File::open(file)?;
        if f.metadata()?.len() > MAX_FILE_BYTES {
            return Err(SkipReason::TooLarge);
        }
        self.buf.clear();
        f.take(MAX_FILE_BYTES + 1).read_to_end(&mut self.buf)?;
        let slim: Slim = serde_json::from_slice(&self.buf).map_err(SkipReason::NotReport)?;
        self.add_slim(&slim)
    }

    /// Count one report given as JSON text.
    ///
    /// # Errors
    /// When the text is not a report this program understands.
    pub fn add_json(&mut self, text: &str) -> Result<(), SkipReason> {
        let slim: Slim = serde_json::from_str(text).map_err(SkipReason::NotReport)?;
        self.add_slim(&slim)
    }

    fn add_slim(&mut self, slim: &Slim) -> Result<(), SkipReason> {
        if slim.schema_version > MAX_SCHEMA {
            return Err(SkipReason::NewerSchema(slim.schema_version));
        }
        let group = self.groups.entry(slim.key()).or_default();
        group.captures += 1;
        if let Some(ff) = &slim.judgement.first_fatal {
            *group.first_fatal.entry(ff.kind.clone()).or_default() += 1;
        }
        if let Some(ns) = slim.judgement.reset_to_first_fatal_ns {
            group.add_sample(ns, &mut self.rng);
        }
        self.reports += 1;
        Ok(())
    }
}

/// A small deterministic generator (`SplitMix64`) for the reservoir; not for secrets.
#[derive(Debug)]
struct SplitMix(u64);

impl Default for SplitMix {
    fn default() -> Self {
        Self(0x9E37_79B9_7F4A_7C15)
    }
}

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn kinds(g: &Group) -> String {
    g.first_fatal
        .iter()
        .map(|(k, n)| format!("{k} ({n})"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(ns: Option<u64>) -> String {
    #[expect(clippy::cast_precision_loss, reason = "display only")]
    ns.map_or_else(String::new, |ns| format!("{:.3}", ns as f64 / 1e6))
}

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// Markdown: one table of groups, then the skipped files.
#[must_use]
pub fn render_markdown(fleet: &Fleet) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Fleet roll-up\n\n{} reports in {} groups; {} files skipped.\n",
        fleet.reports,
        fleet.groups.len(),
        fleet.skipped.len()
    );
    out.push_str(
        "| platform | BIOS | crashed kernel | verdict | captures | first fatal kinds | median reset to first fatal (ms) |\n",
    );
    out.push_str("|---|---|---|---|---:|---|---:|\n");
    for (k, g) in &fleet.groups {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            md_cell(&k.platform),
            md_cell(&k.bios),
            md_cell(&k.kernel),
            md_cell(&k.verdict),
            g.captures,
            md_cell(&kinds(g)),
            ms(g.median_ns())
        );
    }
    if !fleet.skipped.is_empty() {
        out.push_str("\n## Skipped files\n\n| file | reason |\n|---|---|\n");
        for s in &fleet.skipped {
            let _ = writeln!(
                out,
                "| {} | {} |",
                md_cell(&s.file.display().to_string()),
                md_cell(&s.reason)
            );
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// CSV (RFC 4180): one row per group. Skipped files are not in the table (they are logged and
/// counted on stderr by the command).
#[must_use]
pub fn render_csv(fleet: &Fleet) -> String {
    let mut out = String::from(
        "platform,bios,crashed_kernel,verdict,captures,first_fatal_kinds,median_reset_to_first_fatal_ns\r\n",
    );
    for (k, g) in &fleet.groups {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{}\r\n",
            csv_field(&k.platform),
            csv_field(&k.bios),
            csv_field(&k.kernel),
            csv_field(&k.verdict),
            g.captures,
            csv_field(&kinds(g)),
            g.median_ns().map_or_else(String::new, |n| n.to_string())
        );
    }
    out
}

#[derive(Serialize)]
struct JsonGroup<'a> {
    #[serde(flatten)]
    key: &'a GroupKey,
    captures: u64,
    first_fatal_kinds: &'a BTreeMap<String, u64>,
    timed_captures: u64,
    median_reset_to_first_fatal_ns: Option<u64>,
}

#[derive(Serialize)]
struct JsonFleet<'a> {
    reports: u64,
    groups: Vec<JsonGroup<'a>>,
    skipped: &'a [Skipped],
}

/// JSON: `{reports, groups: [...], skipped: [{file, reason}]}`.
///
/// # Errors
/// Only if serialization fails (it cannot for these types).
pub fn render_json(fleet: &Fleet) -> serde_json::Result<String> {
    let doc = JsonFleet {
        reports: fleet.reports,
        groups: fleet
            .groups
            .iter()
            .map(|(key, g)| JsonGroup {
                key,
                captures: g.captures,
                first_fatal_kinds: &g.first_fatal,
                timed_captures: g.timed,
                median_reset_to_first_fatal_ns: g.median_ns(),
            })
            .collect(),
        skipped: &fleet.skipped,
    };
    let mut s = serde_json::to_string_pretty(&doc)?;
    s.push('\n');
    Ok(s)
}

/// A minimal report.json for tests and the benchmark: the fields the roll-up reads.
#[must_use]
pub fn synthetic_report(
    vendor: &str,
    product: &str,
    bios: &str,
    kernel: &str,
    verdict: &str,
    first_fatal: Option<(&str, u64)>,
) -> String {
    let judgement = match first_fatal {
        Some((kind, ns)) => serde_json::json!({
            "verdict": verdict,
            "first_fatal": {"index": 3, "ts_ns": 1000 + ns, "kind": kind, "sources": ["kernel_log"], "summary": "x", "fatal": true},
            "reset_to_first_fatal_ns": ns,
        }),
        None => serde_json::json!({ "verdict": verdict }),
    };
    serde_json::json!({
        "schema_version": 2,
        "generator": "synthetic",
        "verdict": verdict,
        "header": {
            "input": "synthetic",
            "crashed_kernel": kernel,
            "system": {"identity": {"dmi": {"sys_vendor": vendor, "product_name": product, "bios_version": bios}}},
            "smmu_instances": [],
            "events_in_boot": 0,
            "events_total": 0,
        },
        "judgement": judgement,
        "timeline": [],
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_by_platform_bios_kernel_and_verdict() {
        let mut f = Fleet::new();
        for _ in 0..3 {
            f.add_json(&synthetic_report(
                "Ampere",
                "Mt.Jade",
                "1.0",
                "6.12",
                "flagged",
                Some(("aer", 5_000_000)),
            ))
            .unwrap();
        }
        f.add_json(&synthetic_report(
            "Ampere",
            "Mt.Jade",
            "2.0",
            "6.12",
            "flagged",
            Some(("aer", 1)),
        ))
        .unwrap();
        f.add_json(&synthetic_report(
            "Ampere",
            "Mt.Jade",
            "1.0",
            "6.1",
            "flagged",
            Some(("aer", 1)),
        ))
        .unwrap();
        f.add_json(&synthetic_report(
            "Ampere",
            "Mt.Jade",
            "1.0",
            "6.12",
            "preserved",
            None,
        ))
        .unwrap();
        assert_eq!(f.reports, 6);
        assert_eq!(f.groups.len(), 4);
        let key = GroupKey {
            platform: "Ampere Mt.Jade".into(),
            bios: "1.0".into(),
            kernel: "6.12".into(),
            verdict: "flagged".into(),
        };
        let g = &f.groups[&key];
        assert_eq!(g.captures, 3);
        assert_eq!(g.first_fatal["aer"], 3);
        assert_eq!(g.median_ns(), Some(5_000_000));
    }

    #[test]
    fn median_is_the_middle_sample() {
        let mut f = Fleet::new();
        for ns in [9, 1, 5, 7, 3] {
            f.add_json(&synthetic_report(
                "V",
                "P",
                "B",
                "K",
                "flagged",
                Some(("dpc", ns)),
            ))
            .unwrap();
        }
        let g = f.groups.values().next().unwrap();
        assert_eq!(g.median_ns(), Some(5));
    }

    #[test]
    fn reservoir_keeps_memory_bounded_and_median_close() {
        let mut g = Group::default();
        let mut rng = SplitMix::default();
        let n = 50_000u64;
        for i in 0..n {
            // a permutation of 0..n
            g.add_sample((i * 7919) % n, &mut rng);
        }
        assert_eq!(g.samples.len(), MAX_SAMPLES);
        assert_eq!(g.timed, n);
        let m = g.median_ns().unwrap();
        // within 5 percentile points of the true median n/2
        assert!(m.abs_diff(n / 2) < n / 20, "median {m}");
    }

    #[test]
    fn bad_and_foreign_files_are_listed_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a/report.json");
        std::fs::create_dir_all(good.parent().unwrap()).unwrap();
        std::fs::write(
            &good,
            synthetic_report("V", "P", "B", "K", "flagged", Some(("aer", 2))),
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.json"), "{ not json").unwrap();
        std::fs::write(dir.path().join("foreign.json"), r#"{"name":"package"}"#).unwrap();
        let newer = synthetic_report("V", "P", "B", "K", "flagged", None)
            .replace("\"schema_version\":2", "\"schema_version\":99");
        std::fs::write(dir.path().join("newer.json"), newer).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored: not *.json").unwrap();
        let mut f = Fleet::new();
        f.add_paths(&[dir.path().to_path_buf(), dir.path().join("missing.json")]);
        assert_eq!(f.reports, 1);
        let names: Vec<String> = f
            .skipped
            .iter()
            .map(|s| s.file.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["broken.json", "foreign.json", "newer.json", "missing.json"]
        );
        assert!(
            f.skipped[0]
                .reason
                .contains("not a kdump-dma-observer report")
        );
        assert!(f.skipped[2].reason.contains("schema version 99"));
        assert!(f.skipped[3].reason.contains("cannot read"));
        let md = render_markdown(&f);
        assert!(
            md.contains("| V P | B | K | flagged | 1 | aer (1) | 0.000 |"),
            "{md}"
        );
        assert!(md.contains("| ") && md.contains("broken.json"));
    }

    #[test]
    fn device_tree_machine_is_the_platform_without_dmi() {
        let mut f = Fleet::new();
        let text = r#"{"schema_version":2,"verdict":"inconclusive","header":{"crashed_kernel":null,
            "system":{"machine":"linux,dummy-virt","identity":{"device_tree":{"model":"linux,dummy-virt"}}}},
            "judgement":{"verdict":"inconclusive"},"timeline":[{"big":"ignored"}]}"#;
        f.add_json(text).unwrap();
        let k = f.groups.keys().next().unwrap();
        assert_eq!(k.platform, "linux,dummy-virt");
        assert_eq!(k.bios, "unknown");
        assert_eq!(k.kernel, "unknown");
    }

    #[test]
    fn csv_quotes_fields_and_json_lists_skipped() {
        let mut f = Fleet::new();
        f.add_json(&synthetic_report(
            "Acme, Inc.",
            "X\"1",
            "B",
            "K",
            "flagged",
            Some(("aer", 4)),
        ))
        .unwrap();
        f.add_json(&synthetic_report(
            "Acme, Inc.",
            "X\"1",
            "B",
            "K",
            "flagged",
            Some(("dpc", 8)),
        ))
        .unwrap();
        let csv = render_csv(&f);
        assert!(
            csv.contains("\"Acme, Inc. X\"\"1\",B,K,flagged,2,\"aer (1), dpc (1)\",4\r\n"),
            "{csv}"
        );
        f.add_file(Path::new("/nonexistent/r.json"));
        let v: serde_json::Value = serde_json::from_str(&render_json(&f).unwrap()).unwrap();
        assert_eq!(v["reports"], 2);
        assert_eq!(v["groups"][0]["captures"], 2);
        assert_eq!(v["groups"][0]["platform"], "Acme, Inc. X\"1");
        assert_eq!(v["skipped"][0]["file"], "/nonexistent/r.json");
    }

    #[test]
    fn lab_report_is_grouped_by_its_platform() {
        let lab = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/lab/kdump-aer-612.timeline.jsonl"
        ));
        let loaded = crate::report::input::load(lab).unwrap();
        let report = crate::report::Report::build("lab", loaded.events);
        let mut bytes = Vec::new();
        crate::report::json::write(&report, &mut bytes).unwrap();
        let mut f = Fleet::new();
        f.add_json(std::str::from_utf8(&bytes).unwrap()).unwrap();
        let (k, g) = f.groups.iter().next().unwrap();
        assert_eq!(k.platform, "linux,dummy-virt");
        assert_eq!(k.kernel, "6.12.95+deb12-arm64");
        assert_eq!(k.verdict, "flagged");
        assert_eq!(g.first_fatal.len(), 1);
        assert!(g.median_ns().is_some());
    }
}
