//! `cargo xtask lab`: boots a real Debian arm64 kernel under QEMU (TCG) with an emulated
//! SMMUv3, crashes it into a kdump capture kernel that resets the SMMU, injects `PCIe` AER errors
//! over QMP, runs the static aarch64 observer in both kernels and checks what it recorded.
//!
//! | file | what |
//! |---|---|
//! | `arch.rs` | `--arch`: what differs between the arm64 and the x86-64 machine |
//! | `host.rs` | host packages: bookworm-backports source, arm64 architecture, QEMU >= 10, depmod |
//! | `packages.rs` | guest `.deb`s: `apt-get download` into a cache, `dpkg-deb -x` |
//! | `kernel.rs` | `--kernel`: which package, unpacked, depmod, `modules.dep` |
//! | `userland.rs` | busybox-static, kexec-tools and its libraries |
//! | `needed.rs` | `DT_NEEDED` / `PT_INTERP` of ELF files, resolved recursively |
//! | `cpio.rs` | `newc` cpio writer |
//! | `initramfs.rs` | what goes into the guest's initramfs |
//! | `qemu.rs` | the machine's command line; the process, killed on drop |
//! | `qmp.rs` | QMP client: handshake, HMP commands (AER injection), quit |
//! | `console.rs` | following the serial console; phases, panics, `LAB:` markers |
//! | `scenario.rs` | one scenario run: phases, injection, artifacts, result.json |
//! | `checks.rs` | assertions on the observer's status.json and timeline.jsonl (and console.log) |
//! | `report.rs` | the host observer's `report`: report.md/.html/.json, verdict.json, verdict checks |
//! | `metrics.rs` | the capture kernel's kdump-dma-observer.prom: present, agrees, promtool |
//! | `matrix.rs` | `lab matrix`: kdump-aer on 6.1, 6.12, trixie and sid; its table; docs/probes.md |
//! | `compare.rs` | `lab compare`: kdump-aer on arm64 and x86-64, side by side in docs/arm64-vs-x86.md |
//! | `arch.rs` | `--arch`: the guest architecture and the x86 IOMMU, what each means for QEMU, Debian, the build |
//! | `distro/` | `debian-kdump`: a real Debian system with systemd and kdump-tools (its own table) |
//! | `../../lab/init.sh` | the guest's /init (busybox sh) |
pub(crate) mod arch;
pub(crate) mod checks;
pub(crate) mod compare;
pub(crate) mod console;
pub(crate) mod cpio;
pub(crate) mod distro;
pub(crate) mod host;
pub(crate) mod initramfs;
pub(crate) mod kernel;
pub(crate) mod matrix;
pub(crate) mod metrics;
pub(crate) mod needed;
pub(crate) mod packages;
pub(crate) mod qemu;
pub(crate) mod qmp;
pub(crate) mod report;
pub(crate) mod runner;
pub(crate) mod scenario;
pub(crate) mod userland;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context as _, bail, ensure};

use crate::{build, elf};
use arch::{GuestArch, X86Iommu};
use kernel::KernelChoice;
use runner::Outcome;
use scenario::Scenario;

/// A known issue of kdump scenarios on 6.1, recorded with their result (and checked, never
/// blocking: `checks::vmcore_sane`).
pub(crate) const VMCORE_61: &str = "on Debian's 6.1 kernel (6.1.0-*-arm64) the capture kernel boots, \
     resets the SMMU and runs the observer, but its /proc/vmcore is broken in this setup: a bogus \
     size (18446668904714547200) and an ELF header vmcore-dmesg rejects (`No program header \
     covering vaddr ...`), with or without nokaslr; kexec-tools 2.0.25 and 6.1 most likely \
     disagree on the arm64 linear-map layout. The observer's VMCOREINFO (crashed kernel, crash \
     time) is missing there.";

/// The scenario argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Which {
    /// Boot, start the observer, stop it: the SMMU probe must be in the timeline (from the
    /// kernel log backlog), status.json must say `capture_kernel: false`, and the verdict must
    /// be not-capture-kernel.
    Boot,
    /// Crash with sysrq into a kdump capture kernel (kexec -p); its SMMU reset must be in the
    /// capture kernel's timeline, with no AER errors; verdict reset-no-fatal.
    Kdump,
    /// As kdump, then inject correctable, non-fatal (`POISON_TLP`) and fatal (`MALF_TLP`) AER
    /// errors into the NIC (0000:02:00.0) over QMP: all three must be in the timeline, and
    /// the verdict must be flagged.
    KdumpAer,
    /// As kdump, then read unassigned physical memory (devmem 0x09100000): an
    /// `external_abort` event must be in the timeline; verdict flagged.
    ExternalAbort,
    /// As kdump, then one fatal AER error (`MALF_TLP`); once the capture kernel has it in its
    /// timeline and kernel log, it panics itself (sysrq c). The verdict, judged from
    /// console.log ALONE (what a BMC's serial-over-LAN log keeps), must be flagged.
    CapturePanic,
    /// As kdump, with a non-fatal (`POISON_TLP`) and a fatal (`MALF_TLP`) AER error injected
    /// into the NIC within milliseconds of the capture kernel's `SMMU currently enabled!
    /// Resetting...` console line, as real aborts arrive. The kernel clears the NIC's status
    /// before userspace; the observer must find what is left in config space (AER First Error
    /// Pointer, the root port's Error Source Identification) and the verdict (flagged) must
    /// rest on it.
    KdumpResetAer,
    /// As kdump, with the capture kernel booted with `pcie_ports=compat` (AER/DPC services
    /// off) and one fatal AER error (`MALF_TLP`) injected after READY capture: no kernel line
    /// sees it; the observer must find it in config space, new since its start snapshot, and
    /// the verdict must be flagged on that evidence.
    KdumpCompat,
    /// What CI runs: boot, kdump, kdump-aer, external-abort, capture-panic, kdump-reset-aer
    /// and kdump-compat on 6.12, and boot on 6.1.
    All,
    /// kdump-aer on 6.1 (bookworm), 6.12 (bookworm-backports), trixie and sid (Debian 14's
    /// split kernel packages), and boot on trixie and sid: a table per kernel (result,
    /// verdict, probes attached, the observer's time to ready, peak memory, clock offset),
    /// and docs/probes.md (which probe attached, which boot-time probe fired, per kernel).
    /// 6.1's broken /proc/vmcore is a known issue there (a non-blocking check), not a refusal.
    Matrix,
    /// A real Debian 12 arm64 system (systemd, kdump-tools, 6.12 from bookworm-backports; base
    /// image built once with mmdebstrap and cached) with the project's .deb installed: `setup
    /// --apply`, sysrq crash, the capture kernel runs the observer's unit before kdump-tools'
    /// dump, reboot, the recover unit, poweroff. The disk is read back with debugfs: the report
    /// files next to the dump, the verdict matching the dump's real size, recover's textfile.
    DebianKdump,
    /// kdump-aer on arm64 (SMMUv3) and then on x86-64 (q35 + Intel VT-d), and
    /// docs/arm64-vs-x86.md written from the two runs: each capture timeline's key events and
    /// console lines, the time from the capture kernel's start to its IOMMU hand-over (reset
    /// or table copy), what became of the injected errors, and both verdicts.
    Compare,
}

/// QEMU arm64 lab: a real SMMUv3 reset in kdump, AER injection, the observer's output and verdict
///
/// Boots a Debian arm64 kernel under QEMU (TCG) on a virt machine with an emulated SMMUv3,
/// runs kdump-dma-observer in it, crashes it with sysrq into a kdump capture kernel (which
/// finds the SMMU enabled and resets it), runs the observer there too, injects PCI Express AER errors
/// into the guest's NIC over QMP, and checks the observer's status.json and timeline.jsonl.
///
/// Every run first installs what the host lacks (as `cargo xtask setup --lab`: an apt source
/// for bookworm-backports, the arm64 architecture, qemu-system-arm 10, kmod; needs root once),
/// rebuilds the static aarch64 observer, fetches the guest packages with `apt-get download`
/// into ~/.cache/kdump-dma-observer/lab (or `$XDG_CACHE_HOME`), and builds the initramfs.
///
/// Each scenario leaves in target/lab/<scenario>/ (target/lab/<scenario>-<kernel> for a kernel
/// other than 6.12): console.log (the serial console of both kernels), timeline.jsonl,
/// status.json, observer.stderr and dmesg.txt of the boot that matters (the capture kernel's
/// for kdump scenarios; the first kernel's are under first/), kdump-dma-observer.prom (the
/// capture kernel's metrics), qemu.log, and result.json (every check with its outcome, the
/// verdict, phase timings, the QEMU command line).
///
/// Each scenario is then judged by the HOST build of the observer (`cargo build -p observer`,
/// once per run): `kdump-dma-observer report` on timeline.jsonl (console.log for
/// capture-panic) writes report.md, report.html and report.json, and verdict.json (the JSON
/// report's `judgement` object, whose `verdict` is the verdict word). The verdict must be the
/// scenario's (docs/verdict.md). kdump-dma-observer.prom is checked with `promtool check
/// metrics` when promtool is installed (`cargo xtask dashboards-test` installs it).
///
/// `debian-kdump` is different: no initramfs of ours and no 9p share, but a Debian system
/// built with mmdebstrap (needs root; about 5 min the first time, then cached next to the
/// guest packages, keyed by the recipe), the project's .deb installed in it with the guest's
/// dpkg, an ext4 disk image (mke2fs -d) booted through crash, capture, reboot and poweroff,
/// and then read back with debugfs. It leaves in target/lab/debian-kdump/: console.log,
/// disk.img, the files the observer wrote next to the dump (timeline.jsonl, status.json,
/// report.*, verdict.json, kdump-dma-observer.prom), node-exporter/kdump-dma-observer.prom
/// (recover's textfile), journal/ and result.json. --kernel and --observer do not apply to it;
/// --deb installs a given package instead of building one.
///
/// `--arch x86_64` boots Debian's amd64 kernel instead, on a q35 machine with an Intel VT-d
/// IOMMU (`-device intel-iommu,intremap=on,caching-mode=on`, guest `intel_iommu=on`; `--iommu
/// amd` for AMD-Vi) and the same root ports, NIC and 9p share, and runs the static x86-64
/// observer. Its capture kernel copies the crashed kernel's translation tables instead of
/// resetting the IOMMU: kdump and kdump-aer must show an `iommu_table_copy` event (outcome
/// `copied`) and the verdict `preserved`. `compare` runs kdump-aer on both and writes
/// docs/arm64-vs-x86.md.
///
/// The harness follows the serial console: the guest's /init prints `LAB: INIT`, `READY`,
/// `CRASHING`, `DONE` (or `FAIL <why>`), and every phase has a deadline. A missed deadline, a
/// guest FAIL, an unexpected kernel panic or reboot, or QEMU exiting ends the scenario at once
/// (QEMU is always killed); result.json and the last console lines say which.
///
/// Examples:
///   cargo xtask lab boot
///   cargo xtask lab kdump-aer
///   cargo xtask lab capture-panic
///   cargo xtask lab boot --kernel 6.1
///   cargo xtask lab kdump --kernel ~/linux-image-6.18.0-custom_arm64.deb
///   cargo xtask lab kdump-aer --kernel sid
///   cargo xtask lab kdump-aer --kernel ~/linux-image-7.2.13+deb14-arm64_7.2.13-1_arm64.deb
///   cargo xtask lab all
///   cargo xtask lab matrix
///   cargo xtask lab debian-kdump
///   cargo xtask lab kdump-aer --arch x86_64
///   cargo xtask lab compare
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
// `--help` text: architecture names (x86_64) are the values users type, shown without backticks.
#[allow(clippy::doc_markdown)]
pub(crate) struct LabArgs {
    /// The scenario to run.
    #[arg(value_enum)]
    pub scenario: Which,
    /// Guest kernel: 6.12 (bookworm-backports' linux-image-arm64, from the host's apt lists),
    /// 6.1 (bookworm's); a suite (bookworm, bookworm-backports, trixie, sid), resolved with the
    /// lab's own apt configuration under the cache, never the host's sources; the path of an
    /// arm64 linux-image-*.deb in either layout (/boot, or Debian 14's split packages, whose
    /// linux-binary-, linux-modules- and linux-base- siblings are taken from next to it, from
    /// the cache, or fetched from a lab suite); or a folder holding one. Not with `all` or
    /// `matrix`, which run their own lists.
    #[arg(long, value_name = "6.12|6.1|SUITE|DEB|DIR")]
    pub kernel: Option<String>,
    /// Fail scenarios on non-blocking checks too (the boot-trace check of kdump-aer), except
    /// those that report a known observer bug.
    #[arg(long)]
    pub strict: bool,
    /// Use this static aarch64 observer binary instead of building one.
    #[arg(long, value_name = "PATH")]
    pub observer: Option<PathBuf>,
    /// debian-kdump only: install this arm64 package instead of building one with
    /// `cargo xtask deb`.
    #[arg(long, value_name = "DEB")]
    pub deb: Option<PathBuf>,
    /// Multiply every deadline by this (for a slower or busier machine).
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub deadline_scale: f64,
    /// Guest architecture: `aarch64` (virt + SMMUv3) or `x86_64` (q35 + Intel VT-d, the
    /// baseline: its capture kernel copies the IOMMU tables instead of resetting). x86_64 runs
    /// boot, kdump and kdump-aer on Debian's amd64 kernels (6.12 from bookworm-backports, 6.1);
    /// its artifacts go to target/lab/<scenario>-x86_64[-<kernel>].
    #[arg(long, value_enum, default_value = "aarch64")]
    pub arch: GuestArch,
    /// x86_64 only: the IOMMU QEMU emulates (`intel`: intel-iommu; `amd`: amd-iommu, whose first
    /// kernel panics under TCG: "timer doesn't work through Interrupt-remapped IO-APIC").
    #[arg(long, value_enum, default_value = "intel")]
    pub iommu: X86Iommu,
}

/// The scenarios to run, each with its kernel.
fn plan(args: &LabArgs) -> anyhow::Result<Vec<(Scenario, KernelChoice)>> {
    let one = |s| -> anyhow::Result<Vec<(Scenario, KernelChoice)>> {
        let kernel = match &args.kernel {
            Some(k) => KernelChoice::parse(k)?,
            None => KernelChoice::Backports612,
        };
        Ok(vec![(s, kernel)])
    };
    if args.arch == GuestArch::X86_64 {
        ensure!(
            matches!(args.scenario, Which::Boot | Which::Kdump | Which::KdumpAer),
            "`lab {:?} --arch x86_64`: the x86 lab runs boot, kdump and kdump-aer (external-abort \
             reads an arm64 address; capture-panic, kdump-reset-aer, kdump-compat, all and matrix \
             are arm64 scenarios)",
            args.scenario
        );
    } else {
        ensure!(
            args.iommu == X86Iommu::Intel,
            "--iommu is for --arch x86_64 (arm64's is the SMMUv3)"
        );
    }
    let plan = match args.scenario {
        Which::Boot => one(Scenario::Boot)?,
        Which::Kdump => one(Scenario::Kdump)?,
        Which::KdumpAer => one(Scenario::KdumpAer)?,
        Which::ExternalAbort => one(Scenario::ExternalAbort)?,
        Which::CapturePanic => one(Scenario::CapturePanic)?,
        Which::KdumpResetAer => one(Scenario::KdumpResetAer)?,
        Which::KdumpCompat => one(Scenario::KdumpCompat)?,
        Which::DebianKdump => bail!(
            "`lab {}` is not a scenario of the initramfs lab: `lab::distro::run` runs it",
            distro::NAME
        ),
        Which::Matrix => {
            ensure!(
                args.kernel.is_none(),
                "`lab matrix` runs its own kernels (6.1, 6.12, trixie, sid); drop --kernel"
            );
            matrix::plan()
        }
        Which::Compare => bail!("`lab compare` runs kdump-aer twice: `lab::run_compare` runs it"),
        Which::All => {
            ensure!(
                args.kernel.is_none(),
                "`lab all` runs a fixed list (6.12: boot, kdump, kdump-aer, external-abort, capture-panic, kdump-reset-aer, kdump-compat; 6.1: boot); drop --kernel or name one scenario"
            );
            let mut plan: Vec<_> = Scenario::ALL
                .iter()
                .map(|&s| (s, KernelChoice::Backports612))
                .collect();
            plan.push((Scenario::Boot, KernelChoice::Bookworm61));
            plan
        }
    };
    Ok(plan)
}

/// `cargo xtask lab`: fails when a scenario fails.
pub(crate) fn run_cli(root: &Path, args: &LabArgs) -> anyhow::Result<()> {
    if args.scenario == Which::DebianKdump {
        return distro::run_cli(root, args);
    }
    let outcomes = if args.scenario == Which::Compare {
        run_compare(root, args)?
    } else {
        run(root, args)?
    };
    if args.scenario == Which::Matrix {
        let rows: Vec<matrix::Row> = outcomes.iter().map(matrix::Row::read).collect();
        eprintln!("{}", matrix::summary(&rows));
        matrix::write_probes_md(root, &rows)?;
        eprintln!(
            "lab matrix: wrote {}",
            root.join("docs/probes.md").display()
        );
    }
    let failed = outcomes.iter().filter(|o| !o.passed).count();
    if failed > 0 {
        bail!(
            "lab: {failed} of {} scenario(s) failed; each has a result.json with the reason",
            outcomes.len()
        );
    }
    Ok(())
}

/// `lab compare`: kdump-aer on both architectures, then the side-by-side page (written even
/// when a run failed: the page says so).
pub(crate) fn run_compare(root: &Path, args: &LabArgs) -> anyhow::Result<Vec<Outcome>> {
    ensure!(
        args.kernel.is_none() && args.observer.is_none(),
        "`lab compare` uses each architecture's 6.12 kernel and builds both observers; drop --kernel and --observer"
    );
    let mut outcomes = Vec::new();
    for arch in [GuestArch::Aarch64, GuestArch::X86_64] {
        let one = LabArgs {
            scenario: Which::KdumpAer,
            kernel: None,
            strict: args.strict,
            observer: None,
            deb: None,
            deadline_scale: args.deadline_scale,
            arch,
            iommu: X86Iommu::Intel,
        };
        outcomes.extend(run(root, &one)?);
    }
    let sides: Vec<compare::Side<'_>> = [GuestArch::Aarch64, GuestArch::X86_64]
        .into_iter()
        .zip(&outcomes)
        .map(|(arch, outcome)| compare::Side { arch, outcome })
        .collect();
    compare::write(root, &sides)?;
    Ok(outcomes)
}

/// Runs the scenarios `args` names and prints the summary table; returns every outcome, passed
/// or not (`Err` is for the harness itself: setup, build, packages).
pub(crate) fn run(root: &Path, args: &LabArgs) -> anyhow::Result<Vec<Outcome>> {
    run_plan(root, args, &plan(args)?)
}

/// [`run`] over an explicit list of scenarios and kernels (CI's subset of the matrix).
pub(crate) fn run_plan(
    root: &Path,
    args: &LabArgs,
    plan: &[(Scenario, KernelChoice)],
) -> anyhow::Result<Vec<Outcome>> {
    ensure!(
        args.deadline_scale > 0.0 && args.deadline_scale.is_finite(),
        "--deadline-scale must be a positive number"
    );
    ensure!(
        args.deb.is_none(),
        "--deb is for `lab {}` only: the other scenarios run the bare binary",
        distro::NAME
    );
    let started = Instant::now();
    crate::lab::host::setup()?;

    if args.arch == GuestArch::X86_64 {
        host::require_qemu_x86()?;
    }
    let observer = match &args.observer {
        Some(path) => path.clone(),
        None => build::run(
            root,
            &build::BuildArgs {
                arch: args.arch.build_arch().into(),
            },
        )?,
    };
    let info =
        elf::inspect(&observer).with_context(|| format!("inspecting {}", observer.display()))?;
    ensure!(
        info.machine == args.arch.elf_machine() && info.is_static,
        "{} is {info}; the guest needs a static {arch} executable (`cargo xtask build --arch {arch}`)",
        observer.display(),
        arch = args.arch.build_arch()
    );
    // The host build judges what the guest recorded.
    let reporter = crate::build::build_observer(root)?;

    let cache = packages::cache_dir()?;
    eprintln!("lab: guest packages cached in {}", cache.display());
    let mut apt = packages::Apt::open_for(&cache, args.arch.debian());
    let userland = userland::prepare(&cache, &mut apt)?;
    eprintln!(
        "lab: guest userland from {} packages ({}); kexec needs {} libraries",
        userland.packages.len(),
        userland.packages[..2.min(userland.packages.len())].join(", "),
        userland.libraries.libraries.len()
    );
    let lab_dir = build::target_dir(root)?.join("lab");

    // One kernel tree and one pair of images per kernel in the plan.
    let mut kernels: BTreeMap<String, (kernel::Kernel, initramfs::Initrds)> = BTreeMap::new();
    for (_, choice) in plan {
        let key = choice.to_string();
        if kernels.contains_key(&key) {
            continue;
        }
        let k = kernel::prepare(&cache, &mut apt, choice)?;
        eprintln!("lab: kernel {choice}: {} ({})", k.release, k.deb);
        let with_kdump = plan.iter().any(|(s, c)| c == choice && s.is_kdump());
        let initrds = initramfs::build(
            &lab_dir.join("initrd").join(&k.release),
            &k,
            &userland,
            &observer,
            with_kdump,
        )?;
        kernels.insert(key, (k, initrds));
    }
    apt.save()?;
    let prepared = started.elapsed();

    let mut outcomes = Vec::new();
    for (scenario, choice) in plan {
        let (kernel, initrds) = &kernels[&choice.to_string()];
        let mut dir_name = match choice {
            KernelChoice::Backports612 => scenario.name().to_owned(),
            _ => format!("{}-{}", scenario.name(), kernel.label()),
        };
        if args.arch == GuestArch::X86_64 {
            // x86 runs beside arm64's: target/lab/<scenario>-x86_64[-amd][-<kernel>].
            let suffix = match args.iommu {
                X86Iommu::Intel => "-x86_64",
                X86Iommu::Amd => "-x86_64-amd",
            };
            dir_name.insert_str(scenario.name().len(), suffix);
        }
        // 6.1's broken vmcore is an arm64 problem.
        let arm64_61 = args.arch == GuestArch::Aarch64 && kernel.is_debian_61();
        let known_issues = if arm64_61 && scenario.is_kdump() {
            vec![VMCORE_61.to_owned()]
        } else {
            Vec::new()
        };
        outcomes.push(runner::run(&runner::Spec {
            scenario: *scenario,
            kernel,
            initrds,
            reporter: &reporter,
            dir: lab_dir.join(dir_name),
            deadline_scale: args.deadline_scale,
            strict: args.strict,
            known_issues,
            arch: args.arch,
            x86_iommu: args.iommu,
        })?);
    }
    eprintln!("{}", summary(&outcomes, prepared, started.elapsed()));
    Ok(outcomes)
}

/// The closing table.
#[must_use]
pub(crate) fn summary(
    outcomes: &[Outcome],
    prepared: std::time::Duration,
    total: std::time::Duration,
) -> String {
    let kw = outcomes
        .iter()
        .map(|o| o.kernel.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = String::from("\nlab summary\n");
    let _ = writeln!(
        out,
        "  {:<16} {:<kw$} {:<6} {:>7}  {:<10} {:<18} {:>8} {:>9} {:>8}  artifacts",
        "scenario",
        "kernel",
        "result",
        "checks",
        "non-block.",
        "verdict",
        "startup",
        "peak RSS",
        "wall"
    );
    for o in outcomes {
        let (passed, total) = o.blocking_counts();
        let extra = o.non_blocking();
        let extra = if extra.is_empty() {
            "-"
        } else if extra.iter().all(|c| c.passed) {
            "pass"
        } else {
            "fail"
        };
        let footprint = runner::Footprint::read(&o.dir);
        let _ = writeln!(
            out,
            "  {:<16} {:<kw$} {:<6} {:>7}  {:<10} {:<18} {:>8} {:>9} {:>6.1} s  {}",
            o.scenario.name(),
            o.kernel,
            if o.passed { "pass" } else { "FAIL" },
            format!("{passed}/{total}"),
            extra,
            o.verdict.as_deref().unwrap_or("-"),
            footprint.startup(),
            footprint.peak(),
            o.wall.as_secs_f64(),
            o.dir.display()
        );
    }
    let _ = write!(
        out,
        "  preparation {:.1} s, total {:.1} s",
        prepared.as_secs_f64(),
        total.as_secs_f64()
    );
    out
}

/// `lab: 5 of 5 scenarios passed ...`: the one line `ci` closes the lab with.
#[must_use]
pub(crate) fn one_line(outcomes: &[Outcome], total: std::time::Duration) -> String {
    let passed = outcomes.iter().filter(|o| o.passed).count();
    let extra: Vec<&checks::Check> = outcomes.iter().flat_map(Outcome::non_blocking).collect();
    format!(
        "lab: {passed} of {} scenarios passed in {:.0} s (non-blocking checks: {} of {} passed)",
        outcomes.len(),
        total.as_secs_f64(),
        extra.iter().filter(|c| c.passed).count(),
        extra.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(scenario: Which, kernel: Option<&str>) -> LabArgs {
        LabArgs {
            scenario,
            kernel: kernel.map(str::to_owned),
            strict: false,
            observer: None,
            deb: None,
            deadline_scale: 1.0,
            arch: GuestArch::Aarch64,
            iommu: X86Iommu::Intel,
        }
    }

    #[test]
    fn all_is_the_ci_matrix() {
        let p = plan(&args(Which::All, None)).unwrap();
        let names: Vec<String> = p.iter().map(|(s, k)| format!("{} {k}", s.name())).collect();
        assert_eq!(
            names,
            [
                "boot 6.12",
                "kdump 6.12",
                "kdump-aer 6.12",
                "external-abort 6.12",
                "capture-panic 6.12",
                "kdump-reset-aer 6.12",
                "kdump-compat 6.12",
                "boot 6.1"
            ]
        );
        assert!(plan(&args(Which::All, Some("6.1"))).is_err());
    }

    #[test]
    fn matrix_runs_its_own_kernels_and_refuses_one_more() {
        assert_eq!(
            plan(&args(Which::Matrix, None)).unwrap(),
            matrix::plan(),
            "lab matrix runs the matrix's plan"
        );
        let err = plan(&args(Which::Matrix, Some("sid")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("drop --kernel"), "{err}");
    }

    #[test]
    fn kdump_on_61_runs_and_other_words_are_refused() {
        assert!(plan(&args(Which::Kdump, Some("6.1"))).is_ok());
        assert!(plan(&args(Which::Boot, Some("6.1"))).is_ok());
        let err = plan(&args(Which::Boot, Some("5.10")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a suite"), "{err}");
    }

    #[test]
    fn x86_runs_its_three_scenarios_and_kdump_on_61() {
        let x86 = |scenario, kernel| LabArgs {
            arch: GuestArch::X86_64,
            ..args(scenario, kernel)
        };
        for ok in [Which::Boot, Which::Kdump, Which::KdumpAer] {
            assert!(plan(&x86(ok, None)).is_ok(), "{ok:?}");
        }
        assert!(
            plan(&x86(Which::Kdump, Some("6.1"))).is_ok(),
            "6.1's vmcore issue is arm64's"
        );
        for refused in [
            Which::ExternalAbort,
            Which::CapturePanic,
            Which::KdumpResetAer,
            Which::KdumpCompat,
            Which::All,
            Which::Matrix,
        ] {
            let err = plan(&x86(refused, None)).unwrap_err().to_string();
            assert!(
                err.contains("x86 lab runs boot, kdump and kdump-aer"),
                "{err}"
            );
        }
        let amd_on_arm = LabArgs {
            iommu: X86Iommu::Amd,
            ..args(Which::Boot, None)
        };
        assert!(plan(&amd_on_arm).is_err());
    }
}
