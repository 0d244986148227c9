//! `cargo xtask lab debian-kdump`: a real Debian 12 arm64 system (systemd as PID 1, Debian's
//! kdump-tools, the 6.12 kernel from bookworm-backports) under QEMU TCG, with the project's
//! .deb installed, driven through crash, capture kernel (the observer's unit, then
//! kdump-tools' dump), reboot, the recover unit and poweroff; the harness then reads the
//! results from the disk image with debugfs and checks them.
//!
//! | file | what |
//! |---|---|
//! | `tools.rs` | host tools: mmdebstrap, qemu-user + binfmt_misc, arch-test, e2fsprogs |
//! | `image.rs` | the base root file system (mmdebstrap), cached by recipe hash |
//! | `tree.rs` | copying trees, removing them only when nothing is mounted inside |
//! | `customize.rs` | the run's tree: configuration, the project's .deb (`dpkg -i` in a chroot), the driver |
//! | `disk.rs` | `mke2fs -d` image; `debugfs` listings and copies |
//! | `run.rs` | the QEMU machine, the console's phases, deadlines and milestones |
//! | `checks.rs` | assertions on the dump directory, the observer's files, the console |
//! | `../../../lab/debian-kdump/` | the guest's driver script and its unit |
pub(crate) mod checks;
pub(crate) mod customize;
pub(crate) mod disk;
pub(crate) mod image;
pub(crate) mod run;
pub(crate) mod tools;
pub(crate) mod tree;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use super::{LabArgs, checks::Check, packages};
use crate::{build, deb};

/// The scenario's name: its folder under target/lab and its label.
pub(crate) const NAME: &str = "debian-kdump";

/// How the run went.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub dir: PathBuf,
    pub passed: bool,
    pub error: Option<String>,
    pub checks: Vec<Check>,
    pub verdict: Option<String>,
    pub wall: Duration,
}

/// `cargo xtask lab debian-kdump`: fails when the run or a blocking check fails.
pub(crate) fn run_cli(root: &Path, args: &LabArgs) -> anyhow::Result<()> {
    let outcome = run(root, args)?;
    ensure!(
        outcome.passed,
        "lab {NAME} failed; {} has the reason",
        outcome.dir.join("result.json").display()
    );
    Ok(())
}

/// Times of the steps, for result.json.
#[derive(Default)]
struct Steps(Vec<(&'static str, f64)>);

impl Steps {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = f();
        self.0.push((name, round(started.elapsed().as_secs_f64())));
        out
    }

    /// In the order they ran.
    fn to_json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(step, secs)| json!({ "step": step.trim_end_matches("_s"), "s": secs }))
                .collect(),
        )
    }
}

/// Builds (or reuses) the image, runs the guest, reads the disk back, checks; a failing run is
/// an `Outcome`, errors are for the harness itself (tools, image, package).
pub(crate) fn run(root: &Path, args: &LabArgs) -> anyhow::Result<Outcome> {
    ensure!(
        args.kernel.as_deref().is_none_or(|k| k == "6.12"),
        "`lab {NAME}` boots the image's own kernel (bookworm-backports' 6.12); drop --kernel"
    );
    ensure!(
        args.observer.is_none(),
        "`lab {NAME}` installs the project's .deb (`cargo xtask deb`), which builds its own binary; drop --observer"
    );
    ensure!(
        args.deadline_scale > 0.0 && args.deadline_scale.is_finite(),
        "--deadline-scale must be a positive number"
    );
    if let Some(deb) = &args.deb {
        ensure!(deb.is_file(), "--deb {}: no such file", deb.display());
    }
    let started = Instant::now();
    let mut steps = Steps::default();
    let dir = build::target_dir(root)?.join("lab").join(NAME);
    tree::remove(&dir)?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    eprintln!("\nlab: [{NAME}] artifacts in {}", dir.display());

    let prepared = prepare(root, &dir, args.deb.as_deref(), &mut steps)?;
    let console = dir.join("console.log");
    let machine = run::Machine {
        kernel: &prepared.kernel,
        initrd: &prepared.initrd,
        disk: &prepared.disk,
        console: &console,
    };
    let ran = steps.time("qemu_s", || run::run(&machine, &dir, args.deadline_scale))?;
    let image = disk::Image::new(&prepared.tools.debugfs, &prepared.disk);
    let read = steps.time("readback_s", || read_back(&image, &dir));

    let evidence = checks::Evidence {
        installed: &prepared.installed,
        makedumpfile: image::MAKEDUMPFILE,
        dir: &dir,
        crash: read.crash.clone(),
        dump_dir: read.dump_dir.clone(),
        defaults: read.defaults.clone(),
        console: std::fs::read(&console)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
    };
    let mut checks = checks::run(&evidence);
    if args.strict {
        for c in checks.iter_mut().filter(|c| c.strict_applies()) {
            c.blocking = true;
        }
    }
    let verdict_json = std::fs::read_to_string(dir.join("verdict.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok());
    let outcome = Outcome {
        dir: dir.clone(),
        passed: ran.error.is_none() && checks.iter().all(|c| c.passed || !c.blocking),
        error: ran.error.clone(),
        checks,
        verdict: verdict_json
            .as_ref()
            .and_then(|v| v["verdict"].as_str().map(str::to_owned)),
        wall: started.elapsed(),
    };
    let record = Record {
        prepared: &prepared,
        ran: &ran,
        read: &read,
        verdict: verdict_json.as_ref(),
        steps: &steps,
    };
    write_result(&outcome, &record)?;
    print_outcome(&outcome, &steps);
    Ok(outcome)
}

/// What the run boots, and the tools to read it back.
struct Prepared {
    tools: tools::Tools,
    base: image::Base,
    installed: customize::Installed,
    kernel: PathBuf,
    initrd: PathBuf,
    disk: PathBuf,
}

/// Host tools, the base image (cached), the project's package, the run's tree and its disk.
fn prepare(
    root: &Path,
    dir: &Path,
    package: Option<&Path>,
    steps: &mut Steps,
) -> anyhow::Result<Prepared> {
    let logs = dir.join("logs");
    let tools = steps.time("host_tools_s", || -> anyhow::Result<_> {
        crate::lab::host::setup()?;
        tools::ensure(&logs)
    })?;
    let cache = packages::cache_dir()?;
    let mut apt = packages::Apt::open(&cache);
    let kernel_package = image::kernel_package(&mut apt)?;
    apt.save()?;
    let base = steps.time("base_image_s", || {
        image::base(&cache, &tools, image::Recipe::new(&kernel_package))
    })?;
    let deb = match package {
        Some(deb) => deb.to_path_buf(),
        None => steps.time("package_s", || deb::build(root, deb::Arch::Aarch64))?,
    };
    disk::ensure_room(dir, disk::ROOM_NEEDED)?;
    let rootfs = dir.join("rootfs");
    let installed = steps.time("customize_s", || {
        customize::prepare(&base.dir, &rootfs, &deb, &logs)
    })?;
    eprintln!(
        "lab: [{NAME}] installed {} in the image; enabled: {}",
        installed.deb,
        installed.enabled.join(", ")
    );
    let (kernel, initrd) =
        run::boot_files(&rootfs, base.recipe.kernel_release(), &dir.join("boot"))?;
    let disk_path = dir.join("disk.img");
    steps.time("mke2fs_s", || {
        disk::make(&tools.mke2fs, &rootfs, &disk_path)
    })?;
    // The image holds it all now (~500 MB less in target/).
    tree::remove(&rootfs)?;
    Ok(Prepared {
        tools,
        base,
        installed,
        kernel,
        initrd,
        disk: disk_path,
    })
}

/// What debugfs found on the disk after the run.
#[derive(Debug)]
struct Read {
    crash: Result<Vec<disk::Entry>, String>,
    dump_dir: Option<(String, Vec<disk::Entry>)>,
    defaults: Result<String, String>,
    /// Files copied into the run folder, and why others could not be.
    copied: Vec<String>,
    not_copied: Vec<String>,
}

/// Reads /var/crash, copies the observer's files and recover's textfile into `dir`, and keeps
/// /etc/default/kdump-tools as the guest's `setup --apply` left it.
fn read_back(image: &disk::Image, dir: &Path) -> Read {
    let crash = image.list("/var/crash").map_err(|e| format!("{e:#}"));
    let stamp = crash
        .as_ref()
        .ok()
        .and_then(|entries| newest_stamp(entries));
    let dump_dir = stamp.and_then(|s| {
        image
            .list(&format!("/var/crash/{s}"))
            .ok()
            .map(|entries| (s, entries))
    });
    let mut wanted: Vec<(String, PathBuf)> = Vec::new();
    if let Some((stamp, _)) = &dump_dir {
        for name in checks::NEXT_TO_DUMP {
            wanted.push((format!("/var/crash/{stamp}/{name}"), dir.join(name)));
        }
    }
    let textfile_copy = dir.join(checks::TEXTFILE_COPY);
    if let Some(parent) = textfile_copy.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    wanted.push((checks::TEXTFILE.to_owned(), textfile_copy));
    let mut copied = Vec::new();
    let mut not_copied = Vec::new();
    for (from, to) in wanted {
        match image.copy_out(&from, &to) {
            Ok(()) => copied.push(from),
            Err(e) => not_copied.push(format!("{e:#}")),
        }
    }
    let defaults = image
        .read("/etc/default/kdump-tools")
        .map_err(|e| format!("{e:#}"));
    if let Ok(text) = &defaults {
        let _ = std::fs::write(dir.join("kdump-tools.defaults"), text);
    }
    // The journal of all three boots, for `journalctl -D journal` (optional).
    if let Err(e) = image.copy_dir_out("/var/log/journal", dir) {
        not_copied.push(format!("{e:#}"));
    }
    Read {
        crash,
        dump_dir,
        defaults,
        copied,
        not_copied,
    }
}

/// kdump-tools names each capture's directory by its time, `YYYYMMDDHHMM`: the newest.
fn newest_stamp(entries: &[disk::Entry]) -> Option<String> {
    entries
        .iter()
        .filter(|e| e.is_dir() && e.name.len() == 12 && e.name.bytes().all(|b| b.is_ascii_digit()))
        .map(|e| e.name.clone())
        .max()
}

/// Everything result.json reports besides the outcome.
struct Record<'a> {
    prepared: &'a Prepared,
    ran: &'a run::Run,
    read: &'a Read,
    verdict: Option<&'a Value>,
    steps: &'a Steps,
}

fn entries_json(entries: &[disk::Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| json!({ "name": e.name, "size": e.size, "dir": e.is_dir() }))
            .collect(),
    )
}

fn write_result(outcome: &Outcome, r: &Record<'_>) -> anyhow::Result<()> {
    let (base, installed) = (&r.prepared.base, &r.prepared.installed);
    let passed = outcome
        .checks
        .iter()
        .filter(|c| c.blocking && c.passed)
        .count();
    let blocking = outcome.checks.iter().filter(|c| c.blocking).count();
    let verdict = r.verdict.map_or(Value::Null, |v| {
        json!({
            "verdict": v["verdict"],
            "first_fatal": v["first_fatal"]["kind"],
            "summary": v["summary"],
            "confidence": v["confidence"],
        })
    });
    let fields: [(&str, Value); 14] = [
        ("scenario", json!(NAME)),
        (
            "kernel",
            json!({
                "package": base.recipe.kernel_package,
                "release": base.recipe.kernel_release(),
            }),
        ),
        (
            "outcome",
            json!(if outcome.passed { "pass" } else { "fail" }),
        ),
        ("error", json!(outcome.error)),
        ("verdict", verdict),
        (
            "makedumpfile",
            json!({
                "package": image::MAKEDUMPFILE.name,
                "expects_empty_dump": image::MAKEDUMPFILE.empty_dump,
            }),
        ),
        ("checks_passed", json!(format!("{passed}/{blocking}"))),
        (
            "checks",
            Value::Array(outcome.checks.iter().map(Check::to_json).collect()),
        ),
        (
            "var_crash",
            json!({
                "listing": r.read.crash.as_ref().map_or_else(|e| json!(e), |v| entries_json(v)),
                "dump_dir": r.read.dump_dir.as_ref().map(|(s, v)| json!({ "stamp": s, "entries": entries_json(v) })),
                "copied": r.read.copied,
                "not_copied": r.read.not_copied,
            }),
        ),
        ("phases", Value::Array(r.ran.phases.clone())),
        ("milestones", Value::Array(r.ran.milestones.clone())),
        ("guest_notes", json!(r.ran.notes)),
        (
            "timings_s",
            json!({
                "steps": r.steps.to_json(),
                "mmdebstrap": base.built_in.map(|d| round(d.as_secs_f64())),
                "base_image": if base.built_in.is_some() { "built" } else { "cached" },
                "total": round(outcome.wall.as_secs_f64()),
            }),
        ),
        (
            "setup",
            json!({
                "image": base.dir,
                "recipe_key": base.recipe.key(),
                "package": installed.deb,
                "enabled_units": installed.enabled,
                "qemu_command": r.ran.qemu_command,
                "qemu_end": r.ran.qemu_end,
            }),
        ),
    ];
    super::checks::write_result_json(&outcome.dir.join("result.json"), &fields)
}

fn print_outcome(o: &Outcome, steps: &Steps) {
    if let Some(e) = &o.error {
        eprintln!("lab: [{NAME}] RUN FAILED: {e}");
    }
    for c in &o.checks {
        eprintln!("lab: [{NAME}]   {}", c.line());
    }
    let times: Vec<String> = steps
        .0
        .iter()
        .map(|(k, v)| format!("{} {v:.0} s", k.trim_end_matches("_s")))
        .collect();
    eprintln!(
        "lab: [{NAME}] {} in {:.0} s ({}); verdict {}; artifacts in {}",
        if o.passed { "PASSED" } else { "FAILED" },
        o.wall.as_secs_f64(),
        times.join(", "),
        o.verdict.as_deref().unwrap_or("(none)"),
        o.dir.display()
    );
}

fn round(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_kdump_tools_stamp_is_the_capture() {
        let e = |name: &str, mode| disk::Entry {
            name: name.into(),
            mode,
            size: 0,
        };
        let entries = [
            e("202611240833", 0o40_755),
            e("202611240852", 0o40_755),
            e("kdump-dma-observer.20261124T085200Z", 0o40_755),
            e("kdump_lock", 0o100_644),
            e("209911240852", 0o100_644),
        ];
        assert_eq!(newest_stamp(&entries).as_deref(), Some("202611240852"));
        assert_eq!(newest_stamp(&[]), None);
    }
}
