//! `cargo xtask ci`: everything CI checks, in the order that fails fastest.
use std::{path::Path, process::Command};

use crate::{cmd, cycles, dashboards, deb, fuzz, html_check, lab, setup, test, toolchain};

pub(crate) fn run(root: &Path) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    // Everything started from here (cargo test, the lab's checks) treats a missing tool as an
    // error, not a skip ([`cmd::in_ci`]).
    // SAFETY: xtask has started no thread yet, so nothing reads the environment concurrently.
    unsafe { std::env::set_var("CI", "true") };
    step("setup");
    setup::run(root)?;
    setup::lab()?;

    step("rustfmt");
    cmd::run(
        root,
        Command::new("cargo").args(["fmt", "--all", "--check"]),
    )?;

    step("module cycles (cargo xtask cycles)");
    cycles::run(root, &cycles::CyclesArgs { dirs: Vec::new() })?;

    step("clippy (userspace)");
    cmd::run(
        root,
        Command::new("cargo").args([
            "clippy",
            "--workspace",
            "--exclude",
            "observer-ebpf",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    step("clippy (eBPF)");
    let nightly = toolchain::ebpf(root)?;
    cmd::run(
        root,
        Command::new("rustup").args([
            "run",
            &nightly,
            "cargo",
            "clippy",
            "--package",
            "observer-ebpf",
            "--release",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    step("tests (unit and integration; then, as root, the eBPF tests on this kernel)");
    let tests = test::run(root, true)?;

    step(
        "Debian package (static aarch64 build; systemd-analyze verify; dracut initramfs with the module)",
    );
    let package = deb::build(root, deb::Arch::Aarch64)?;

    // Before the lab: it installs promtool, which the lab then uses on the capture kernels'
    // metrics files (the lab itself does not depend on it).
    step("dashboards and alert rules against a real Prometheus");
    dashboards::run(root, &dashboards::DashboardsArgs { keep_temp: false })?;

    let (lab_line, distro_line) = labs(root, &package)?;

    step("HTML report in Chromium (html-check, on the kdump-aer report)");
    html_check::run(root, &html_check::HtmlCheckArgs { report: None })?;

    step("fuzzing, bounded (10 s per parser target; `cargo xtask fuzz` for long runs)");
    fuzz::run(
        root,
        &fuzz::FuzzArgs {
            seconds: 10,
            target: None,
        },
    )?;

    step(&format!(
        "ci passed in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    println!("{lab_line}");
    println!("{distro_line}");
    // The one closing line that totals every test binary.
    println!("tests: {} passed, {} failed", tests.passed, tests.failed);
    Ok(())
}

/// Both QEMU labs (the Debian one installs `package`); their summary lines, or the first
/// failure.
fn labs(root: &Path, package: &Path) -> anyhow::Result<(String, String)> {
    step(
        "QEMU lab (lab all: 6.12 boot, kdump, kdump-aer, external-abort, capture-panic, kdump-reset-aer, kdump-compat; 6.1 boot; each judged by `report`)",
    );
    let lab_started = std::time::Instant::now();
    let outcomes = lab::run(
        root,
        &lab::LabArgs {
            scenario: lab::Which::All,
            kernel: None,
            // CI holds the boot-trace fusion to account too (issue: reset merged from the
            // boot trace and kmsg, with its CR0 writes).
            strict: true,
            observer: None,
            deb: None,
            deadline_scale: 1.0,
            arch: lab::arch::GuestArch::Aarch64,
            iommu: lab::arch::X86Iommu::Intel,
        },
    )?;

    step(
        "QEMU lab, kernel matrix (kdump-aer on 6.1, trixie and sid; 6.12 ran in lab all; `cargo xtask lab matrix` also boots trixie and sid and writes docs/probes.md)",
    );
    let matrix_args = lab::LabArgs {
        scenario: lab::Which::Matrix,
        kernel: None,
        strict: true,
        observer: None,
        deb: None,
        deadline_scale: 1.0,
        arch: lab::arch::GuestArch::Aarch64,
        iommu: lab::arch::X86Iommu::Intel,
    };
    let matrix = lab::run_plan(root, &matrix_args, &lab::matrix::ci_plan())?;
    let rows: Vec<lab::matrix::Row> = outcomes
        .iter()
        .filter(|o| o.scenario == lab::scenario::Scenario::KdumpAer)
        .chain(matrix.iter())
        .map(lab::matrix::Row::read)
        .collect();
    eprintln!("{}", lab::matrix::summary(&rows));
    // A probe that disappears on the newest kernel must show in docs/probes.md.
    let probes_md = std::fs::read_to_string(root.join("docs/probes.md"))
        .map_err(|e| anyhow::anyhow!("reading docs/probes.md: {e}"))?;
    let drift: Vec<String> = rows
        .iter()
        .filter(|r| r.scenario == "kdump-aer" && !r.probes.is_empty())
        .flat_map(|r| {
            lab::matrix::probe_drift(&probes_md, r)
                .into_iter()
                .map(move |d| format!("{} ({}): {d}", r.kernel, r.release))
        })
        .collect();
    anyhow::ensure!(
        drift.is_empty(),
        "docs/probes.md no longer matches the lab: {}; run `cargo xtask lab matrix` and commit docs/probes.md",
        drift.join("; ")
    );
    let mut outcomes = outcomes;
    outcomes.extend(matrix);
    outcomes.extend(x86_lab(root)?);

    let lab_line = lab::one_line(&outcomes, lab_started.elapsed());
    let lab_failed = outcomes.iter().filter(|o| !o.passed).count();
    if lab_failed > 0 {
        println!("{lab_line}");
        anyhow::bail!(
            "the QEMU lab failed: {lab_failed} scenario(s); each has a result.json with the reason"
        );
    }

    step(
        "Debian lab (debian-kdump: the .deb in a real Debian system, kdump-tools, crash, capture, dump, reboot, recover)",
    );
    let distro = lab::distro::run(
        root,
        &lab::LabArgs {
            scenario: lab::Which::DebianKdump,
            kernel: None,
            strict: true,
            observer: None,
            deb: Some(package.to_path_buf()),
            deadline_scale: 1.0,
            arch: lab::arch::GuestArch::Aarch64,
            iommu: lab::arch::X86Iommu::Intel,
        },
    )?;
    let distro_line = format!(
        "lab {}: {} ({} of {} checks passed) in {:.0} s",
        lab::distro::NAME,
        if distro.passed { "passed" } else { "FAILED" },
        distro.checks.iter().filter(|c| c.passed).count(),
        distro.checks.len(),
        distro.wall.as_secs_f64()
    );
    if !distro.passed {
        println!("{distro_line}");
        anyhow::bail!(
            "the Debian lab failed: {}",
            distro.dir.join("result.json").display()
        );
    }
    Ok((lab_line, distro_line))
}

/// The x86-64 twin: kdump-aer on q35 + Intel VT-d (about 25 s of QEMU once the static x86-64
/// observer is built).
fn x86_lab(root: &Path) -> anyhow::Result<Vec<lab::runner::Outcome>> {
    step(
        "QEMU lab, x86-64 (kdump-aer --arch x86_64: q35 + Intel VT-d, 6.12 amd64; the capture kernel copies the translation tables, verdict preserved)",
    );
    lab::run(
        root,
        &lab::LabArgs {
            scenario: lab::Which::KdumpAer,
            kernel: None,
            strict: true,
            observer: None,
            deb: None,
            deadline_scale: 1.0,
            arch: lab::arch::GuestArch::X86_64,
            iommu: lab::arch::X86Iommu::Intel,
        },
    )
}

fn step(name: &str) {
    eprintln!("\n==> {name}");
}
