//! `cargo xtask demo`: the main job. Installs what is missing (`setup`, with the lab's host
//! part), runs the `kdump-aer` QEMU lab scenario (a real arm64 kdump whose capture kernel
//! resets the SMMUv3, then AER errors), and shows the observer's verdict, the start of its
//! Markdown report and where the HTML report is.
//!
//! `--local` keeps the earlier demo: run the daemon on this machine's kernel, feed its
//! self-test probe, stop it, and summarise the timeline it wrote.
use std::{
    collections::BTreeMap,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};

use crate::{build, lab, setup};

/// Lines of report.md shown.
const REPORT_LINES: usize = 25;

#[derive(clap::Args)]
pub(crate) struct DemoArgs {
    /// Run the daemon on this machine's kernel instead of the QEMU lab (the earlier demo).
    #[arg(long)]
    pub local: bool,
    /// With --local: how long the daemon observes before it is stopped with SIGTERM.
    #[arg(long, default_value_t = 5, requires = "local")]
    pub seconds: u64,
    /// With --local: self-test events to trigger while it runs.
    #[arg(long, default_value_t = 1000, requires = "local")]
    pub events: u32,
}

pub(crate) fn run(root: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    if args.local {
        return local(root, args);
    }
    setup::run(root)?;
    // `lab::run` installs the lab's host part (QEMU 10, the arm64 architecture, depmod).
    let outcomes = lab::run(
        root,
        &lab::LabArgs {
            scenario: lab::Which::KdumpAer,
            kernel: None,
            strict: false,
            observer: None,
            deb: None,
            deadline_scale: 1.0,
            arch: lab::arch::GuestArch::Aarch64,
            iommu: lab::arch::X86Iommu::Intel,
        },
    )?;
    let outcome = outcomes
        .first()
        .context("the lab ran no scenario for kdump-aer")?;
    show(&outcome.dir, outcome.verdict.as_deref())?;
    if !outcome.passed {
        bail!(
            "the kdump-aer scenario failed{}; see {}",
            outcome
                .error
                .as_deref()
                .map_or_else(String::new, |e| format!(": {e}")),
            outcome.dir.join("result.json").display()
        );
    }
    Ok(())
}

/// Prints the verdict, the head of report.md and the path of report.html.
fn show(dir: &Path, verdict: Option<&str>) -> anyhow::Result<()> {
    let Some(verdict) = verdict else {
        eprintln!("\n==> no verdict: the report was not written (see result.json)");
        return Ok(());
    };
    let md = dir.join("report.md");
    let text = std::fs::read_to_string(&md).with_context(|| format!("reading {}", md.display()))?;
    println!("\n==> verdict: {verdict}\n");
    println!("==> {} (first {REPORT_LINES} lines)\n", md.display());
    for line in head(&text, REPORT_LINES) {
        println!("{line}");
    }
    let html = dir.join("report.html");
    println!("\n==> HTML report: {}", html.display());
    println!(
        "==> everything else (console.log, timeline.jsonl, verdict.json...): {}",
        dir.display()
    );
    Ok(())
}

fn head(text: &str, n: usize) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().take(n).collect();
    if text.lines().count() > n {
        lines.push("...");
    }
    lines
}

/// `--local`: the daemon on this machine's kernel, fed by its self-test probe.
fn local(root: &Path, args: &DemoArgs) -> anyhow::Result<()> {
    setup::run(root)?;
    let binary = build::run(
        root,
        &build::BuildArgs {
            arch: "host".into(),
        },
    )?;
    // SAFETY: no preconditions.
    ensure!(
        unsafe { libc::geteuid() } == 0,
        "the daemon loads eBPF programs: run the demo as root"
    );
    let dir = root.join("target/demo");
    std::fs::create_dir_all(&dir)?;
    let timeline = dir.join("timeline.jsonl");
    let _ = std::fs::remove_file(&timeline);

    eprintln!(
        "\n==> kdump-dma-observer run on this kernel for {} s",
        args.seconds
    );
    let mut daemon = Command::new(&binary)
        .args(["run", "--output"])
        .arg(&timeline)
        .arg("--self-test-pid")
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let deadline = Instant::now() + Duration::from_mins(1);
    while !std::fs::read_to_string(&timeline).is_ok_and(|t| t.contains("observer_started")) {
        if Instant::now() > deadline || daemon.try_wait()?.is_some() {
            let _ = daemon.kill();
            bail!("the daemon did not become ready (see its messages above)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for seq in 0..args.events {
        // SAFETY: getpgid has no memory arguments; the argument is the self-test sequence number.
        unsafe { libc::getpgid(libc::pid_t::try_from(seq)?) };
    }
    std::thread::sleep(Duration::from_secs(args.seconds));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(libc::pid_t::try_from(daemon.id())?, libc::SIGTERM) };
    let status = daemon.wait()?;
    ensure!(status.success(), "the daemon exited with {status}");

    let text = std::fs::read_to_string(&timeline)?;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", timeline.display(), n + 1))?;
        *kinds
            .entry(v["kind"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    eprintln!(
        "\n==> timeline {} ({} lines)",
        timeline.display(),
        text.lines().count()
    );
    for (kind, count) in &kinds {
        eprintln!("  {kind:<24} {count}");
    }
    let self_tests = kinds.get("self_test").copied().unwrap_or(0);
    ensure!(
        self_tests == u64::from(args.events),
        "triggered {} self-test events, the timeline has {self_tests}",
        args.events
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_marks_what_it_leaves_out() {
        assert_eq!(head("a\nb\nc\n", 2), ["a", "b", "..."]);
        assert_eq!(head("a\nb\n", 2), ["a", "b"]);
    }
}
