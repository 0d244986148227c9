//! `cargo bench -p observer --bench fleet`: the `fleet` roll-up over 100 000 generated
//! report.json files in a temporary directory (written once, one at a time, before timing).
//! Prints wall time, reports per second and the process's peak resident memory (`VmHWM`), and
//! fails when the roll-up takes 5 s or more. Not criterion: one pass over 100 000 files is the
//! figure that matters, and repeating it dozens of times would only measure the page cache.
use std::time::Instant;

use observer::report::fleet::{Fleet, synthetic_report};

const REPORTS: usize = 100_000;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let vendors = ["Ampere", "HPE", "Lenovo", "NVIDIA", "Huawei"];
    let products = ["Mt.Jade", "RL300", "HR350A", "Grace", "TaiShan 200"];
    let bioses = ["1.0", "1.1", "2.0"];
    let kernels = ["5.10.0-30-arm64", "6.1.0-25-arm64", "6.12.95+deb12-arm64"];
    let verdicts = ["flagged", "reset-no-fatal", "preserved", "inconclusive"];
    let dir = tempfile::tempdir().expect("tempdir");
    let gen_start = Instant::now();
    for i in 0..REPORTS {
        let sub = dir.path().join(format!("{:03}", i % 1000));
        if i < 1000 {
            std::fs::create_dir(&sub).expect("mkdir");
        }
        let v = i % vendors.len();
        let verdict = verdicts[(i / 7) % verdicts.len()];
        let fatal = (verdict == "flagged").then_some(("aer", 1_000_000 + (i as u64 % 977) * 1000));
        let text = synthetic_report(
            vendors[v],
            products[v],
            bioses[(i / 5) % bioses.len()],
            kernels[(i / 15) % kernels.len()],
            verdict,
            fatal,
        );
        std::fs::write(sub.join(format!("{i}.report.json")), text).expect("write");
    }
    let generated = gen_start.elapsed();
    let rss_before = peak_rss_kib();
    let start = Instant::now();
    let mut fleet = Fleet::new();
    fleet.add_paths(&[dir.path()]);
    let took = start.elapsed();
    assert_eq!(fleet.reports, REPORTS as u64);
    assert_eq!(fleet.skipped, [] as [observer::report::fleet::Skipped; 0]);
    let rendered = observer::report::fleet::render_markdown(&fleet);
    #[expect(clippy::cast_precision_loss, reason = "a display figure")]
    let per_second = REPORTS as f64 / took.as_secs_f64();
    println!(
        "fleet: {} reports, {} groups in {:.3} s ({:.0} reports/s); generation {:.1} s; \
         peak RSS {} KiB before the roll-up, {} KiB after; markdown {} bytes",
        fleet.reports,
        fleet.groups.len(),
        took.as_secs_f64(),
        per_second,
        generated.as_secs_f64(),
        rss_before.map_or_else(|| "?".into(), |k| k.to_string()),
        peak_rss_kib().map_or_else(|| "?".into(), |k| k.to_string()),
        rendered.len()
    );
    assert!(
        took.as_secs_f64() < 5.0,
        "roll-up took {took:?}, budget 5 s"
    );
}
