//! The QEMU run of the Debian guest: the lab machine (SMMUv3, virtio-blk root, a NIC with AER
//! behind a root port), booted from the image's own kernel and initramfs without
//! `-no-reboot`, so that kdump-tools' `reboot -f` in the capture kernel comes back into the
//! normal system. The console is followed through the driver's phases, each with a deadline;
//! milestones of the systemd boots (no driver runs in the capture kernel) are timed on the way.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::lab::{
    console::{Follower, Phase, Signal, Wait, Watch, classify},
    qemu::{self, Qemu},
};

/// The first kernel's command line; kdump-tools derives the capture kernel's from it.
pub(crate) const APPEND: &str = "root=/dev/vda rw console=ttyAMA0 crashkernel=256M";

/// What one run boots.
pub(crate) struct Machine<'a> {
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub disk: &'a Path,
    pub console: &'a Path,
}

/// The `qemu-system-aarch64` argument list. `lpa2=off`: with `FEAT_LPA2` the 6.12 kernel runs
/// with 52-bit virtual addresses, whose page tables even upstream makedumpfile cannot walk
/// (measured with an upstream build when the lab was designed); without it a makedumpfile that supports the kernel can dump.
#[must_use]
pub(crate) fn args(m: &Machine<'_>) -> Vec<String> {
    // No -no-reboot: kdump-tools' `reboot -f` must bring the guest back into the normal system.
    let mut a = qemu::virt_smmuv3("max,pauth-impdef=on,lpa2=off");
    a.extend(["-kernel".into(), m.kernel.display().to_string()]);
    a.extend(["-initrd".into(), m.initrd.display().to_string()]);
    a.extend(["-append".into(), APPEND.to_owned()]);
    a.extend(["-serial".into(), format!("file:{}", m.console.display())]);
    a.extend([
        "-drive".into(),
        format!(
            "if=none,id=root,file={},format=raw,cache=unsafe",
            m.disk.display()
        ),
        "-device".into(),
        "virtio-blk-pci,drive=root,bus=pcie.0,addr=0x4".into(),
        "-device".into(),
        "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x3".into(),
        "-device".into(),
        "virtio-net-pci,bus=rp2,id=vnet1,aer=on,netdev=n2,disable-legacy=on,romfile=".into(),
        "-netdev".into(),
        "user,id=n2".into(),
    ]);
    a
}

/// The driver's phases, each with its deadline (times `scale`), counted from the previous one.
#[must_use]
pub(crate) fn phases(scale: f64) -> Vec<Phase> {
    let p = |name, missed, wait, secs| Phase::new(name, missed, wait, secs, scale);
    vec![
        p(
            "first boot: kernel starts",
            "no kernel started (no `Booting Linux` on the console)",
            Wait::Boot(1),
            60.0,
        ),
        p(
            "first boot: lab driver starts (multi-user)",
            "the first boot did not start the lab driver",
            Wait::Marker("DRIVER first"),
            300.0,
        ),
        p(
            "first boot: kdump-tools loaded the crash kernel",
            "kdump-tools did not load the crash kernel",
            Wait::Marker("KDUMP-LOADED"),
            330.0,
        ),
        p(
            "first boot: kdump-dma-observer setup --apply",
            "`kdump-dma-observer setup --apply` did not finish",
            Wait::Marker("SETUP-APPLIED"),
            120.0,
        ),
        p(
            "first boot: kdump reloaded",
            "kdump-tools did not reload the crash kernel",
            Wait::Marker("KDUMP-RELOADED"),
            180.0,
        ),
        p(
            "first boot: sysrq crash",
            "the first boot did not crash",
            Wait::Panic("sysrq triggered crash"),
            60.0,
        ),
        p(
            "capture kernel starts",
            "the capture kernel did not start after the crash",
            Wait::Boot(2),
            60.0,
        ),
        p(
            "dump taken, normal system boots again",
            "the capture boot did not reboot into the normal system",
            Wait::Boot(3),
            600.0,
        ),
        p(
            "second boot: lab driver starts",
            "the second boot did not start the lab driver",
            Wait::Marker("DRIVER second"),
            300.0,
        ),
        p(
            "second boot: recover unit finished",
            "the driver did not see kdump-dma-observer-recover.service finish",
            Wait::Marker("RECOVERED"),
            330.0,
        ),
        p(
            "second boot: driver done",
            "the second boot's driver did not finish",
            Wait::Marker("DONE"),
            120.0,
        ),
    ]
}

/// How long QEMU gets to exit after the driver's poweroff.
const POWEROFF: f64 = 120.0;

/// Console lines timed on the way: (boot number, text after ANSI colours are removed, name).
const MILESTONES: [(u32, &str, &str); 11] = [
    (
        1,
        "Reached target multi-user.target",
        "first boot: multi-user.target",
    ),
    (
        2,
        "SMMU currently enabled! Resetting",
        "capture: SMMU reset by the driver",
    ),
    (2, "Run /init as init process", "capture: initramfs /init"),
    (
        2,
        "kdump-dma-observer: v1 ",
        "capture: observer's first kernel-log mirror line",
    ),
    // systemd shortens unit names on the console; their start is enough.
    (
        2,
        "Started kdump-dma-observer",
        "capture: observer unit ready (READY=1)",
    ),
    (
        2,
        "Starting kdump-tools:",
        "capture: kdump-tools-dump starts",
    ),
    (2, "saved dmesg content", "capture: dmesg saved"),
    (2, "saved vmcore in", "capture: vmcore saved"),
    (2, "reboot: Restarting system", "capture: reboot"),
    (
        3,
        "Reached target multi-user.target",
        "second boot: multi-user.target",
    ),
    (3, "reboot: Power down", "second boot: power down"),
];

/// What the run did.
#[derive(Debug, Default)]
pub(crate) struct Run {
    pub phases: Vec<Value>,
    pub milestones: Vec<Value>,
    /// `LAB: NOTE ...` lines of the driver.
    pub notes: Vec<String>,
    pub qemu_command: String,
    pub qemu_end: String,
    /// Why the run failed (a missed deadline, FAIL from the driver, QEMU gone), if it did.
    pub error: Option<String>,
    pub wall: Duration,
}

/// Boots the guest and follows it to its poweroff; a failed run is `Run::error`, not `Err`.
pub(crate) fn run(m: &Machine<'_>, dir: &Path, scale: f64) -> anyhow::Result<Run> {
    let mut run = Run::default();
    let log = dir.join("qemu.log");
    let started = Instant::now();
    let mut qemu = Qemu::spawn_args(&args(m), &log)?;
    run.qemu_command.clone_from(&qemu.command_line);
    eprintln!(
        "lab: [debian-kdump] QEMU started; console: {}",
        m.console.display()
    );
    let mut console = Console {
        follower: Follower::new(m.console),
        boots: 0,
        seen: Vec::new(),
        started,
    };
    let followed = follow(&mut qemu, &mut console, &log, scale, &mut run);
    run.qemu_end = match followed {
        Ok(()) => {
            let end = qemu.finish(Duration::from_secs_f64(POWEROFF * scale))?;
            if end.starts_with("killed") {
                run.error = Some(format!(
                    "QEMU did not exit after the guest's poweroff: {end}"
                ));
            }
            end
        }
        Err(e) => {
            run.error = Some(format!("{e:#}"));
            let end = match qemu.exited() {
                Ok(Some(status)) => format!("exited ({status})"),
                _ => "killed: the run failed".to_owned(),
            };
            drop(qemu); // kills it
            end
        }
    };
    // The poweroff's lines came after the last phase.
    let mut rest = console.follower.poll()?;
    rest.extend(console.follower.rest());
    for line in rest {
        console.line(&line, &mut run);
    }
    run.wall = started.elapsed();
    Ok(run)
}

/// The console as read so far: boots counted, milestones timed.
struct Console {
    follower: Follower,
    boots: u32,
    seen: Vec<&'static str>,
    started: Instant,
}

impl Console {
    /// Times a milestone `line` reaches; notes the driver's `NOTE` lines.
    fn line(&mut self, line: &str, run: &mut Run) {
        let at = self.started.elapsed().as_secs_f64();
        if let Some(name) = milestone(line, &mut self.boots, &mut self.seen) {
            eprintln!("lab: [debian-kdump] +{at:6.1} s  ({name})");
            run.milestones
                .push(json!({ "milestone": name, "at_s": round(at) }));
        }
        if let Some(Signal::Marker(text)) = classify(line)
            && let Some(note) = text.strip_prefix("NOTE ")
        {
            eprintln!("lab: [debian-kdump] guest note: {note}");
            run.notes.push(note.to_owned());
        }
    }
}

fn follow(
    qemu: &mut Qemu,
    console: &mut Console,
    qemu_log: &Path,
    scale: f64,
    run: &mut Run,
) -> anyhow::Result<()> {
    let started = console.started;
    let mut watch = Watch::new(phases(scale), 1);
    let mut phase_started = started;
    let mut last_phase = "QEMU started";
    let overall =
        Duration::from_secs_f64(phases(scale).iter().map(|p| p.within.as_secs_f64()).sum());
    loop {
        // Checked before reading, so that QEMU's last lines are read before its exit counts.
        let exited = qemu.exited()?;
        for line in console.follower.poll()? {
            console.line(&line, run);
            let reached = watch
                .feed(&strip_ansi(&line))
                .map_err(|why| anyhow::anyhow!("{why}\n  last console lines:\n{}", watch.tail()))?;
            if let Some(index) = reached {
                let at = started.elapsed().as_secs_f64();
                let phase = &watch.phases()[index];
                eprintln!("lab: [debian-kdump] +{at:6.1} s  {}", phase.name);
                run.phases
                    .push(json!({ "phase": phase.name, "at_s": round(at) }));
                last_phase = phase.name;
                phase_started = Instant::now();
            }
        }
        let Some(current) = watch.current() else {
            return Ok(());
        };
        if let Some(status) = exited {
            anyhow::bail!(
                "QEMU exited ({status}) while waiting for: {} (last phase: {last_phase}); see {}\n  last console lines:\n{}",
                current.name,
                qemu_log.display(),
                watch.tail()
            );
        }
        if phase_started.elapsed() > current.within {
            anyhow::bail!(
                "{} within {:.0} s (last phase: {last_phase} at +{:.1} s)\n  last console lines:\n{}",
                current.missed,
                current.within.as_secs_f64(),
                (phase_started - started).as_secs_f64(),
                watch.tail()
            );
        }
        if started.elapsed() > overall {
            anyhow::bail!(
                "the run's {:.0} s deadline passed while waiting for: {}",
                overall.as_secs_f64(),
                current.name
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Counts boots; returns the milestone `line` reaches for the first time, if any.
fn milestone(line: &str, boots: &mut u32, seen: &mut Vec<&'static str>) -> Option<&'static str> {
    let line = strip_ansi(line);
    if classify(&line) == Some(Signal::KernelBoot) {
        *boots += 1;
    }
    let &(_, _, name) = MILESTONES.iter().find(|(boot, text, name)| {
        *boot == *boots && line.contains(text) && !seen.contains(name)
    })?;
    seen.push(name);
    Some(name)
}

/// The line without ANSI colour sequences (systemd colours its status lines).
#[must_use]
pub(crate) fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            // CSI: ESC [ parameters, ended by a letter.
            ('\u{1b}', Some('[')) => {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            // Two-character sequences (ESC M: cursor up, which systemd's progress uses).
            ('\u{1b}', Some(_)) => {
                chars.next();
            }
            ('\r', _) => {}
            _ => out.push(c),
        }
    }
    out
}

/// The kernel and initramfs the image boots, copied out of its tree.
pub(crate) fn boot_files(
    root: &Path,
    release: &str,
    into: &Path,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
    let mut out = Vec::new();
    for name in [
        format!("vmlinuz-{release}"),
        format!("initrd.img-{release}"),
    ] {
        let from = root.join("boot").join(&name);
        let to = into.join(&name);
        std::fs::copy(&from, &to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        out.push(to);
    }
    let initrd = out.pop().context("no initrd")?;
    let kernel = out.pop().context("no kernel")?;
    Ok((kernel, initrd))
}

fn round(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_the_lab_machine_without_no_reboot() {
        let a = args(&Machine {
            kernel: Path::new("/b/vmlinuz"),
            initrd: Path::new("/b/initrd.img"),
            disk: Path::new("/r/disk.img"),
            console: Path::new("/r/console.log"),
        })
        .join(" ");
        for wanted in [
            "-machine virt,iommu=smmuv3,gic-version=3,dtb-kaslr-seed=off -accel tcg -cpu max,pauth-impdef=on,lpa2=off -smp 2 -m 2G",
            "-kernel /b/vmlinuz -initrd /b/initrd.img -append root=/dev/vda rw console=ttyAMA0 crashkernel=256M",
            "-drive if=none,id=root,file=/r/disk.img,format=raw,cache=unsafe -device virtio-blk-pci,drive=root,bus=pcie.0,addr=0x4",
            "-device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x3 -device virtio-net-pci,bus=rp2,id=vnet1,aer=on",
            "-serial file:/r/console.log",
        ] {
            assert!(a.contains(wanted), "missing {wanted:?} in {a}");
        }
        assert!(
            !a.contains("-no-reboot"),
            "kdump-tools' reboot must come back"
        );
    }

    #[test]
    fn times_milestones_per_boot_through_systemds_colours() {
        let console = "[    0.000000] Booting Linux on physical CPU 0x0\n\
            [\u{1b}[0;32m  OK  \u{1b}[0m] Reached target \u{1b}[0;1;39mmulti-user.target\u{1b}[0m - Multi-User System.\n\
            [    0.000000] Booting Linux on physical CPU 0x1\n\
            [    1.5] arm-smmu-v3 9050000.smmuv3: SMMU currently enabled! Resetting...\n\
            [   35.6] reboot: Restarting system\n\
            [    0.000000] Booting Linux on physical CPU 0x0\n\
            [\u{1b}[0;32m  OK  \u{1b}[0m] Reached target \u{1b}[0;1;39mmulti-user.target\u{1b}[0m - Multi-User System.\n";
        let mut boots = 0;
        let mut seen = Vec::new();
        let names: Vec<&str> = console
            .lines()
            .filter_map(|l| milestone(l, &mut boots, &mut seen))
            .collect();
        assert_eq!(
            names,
            [
                "first boot: multi-user.target",
                "capture: SMMU reset by the driver",
                "capture: reboot",
                "second boot: multi-user.target"
            ]
        );
        assert_eq!(boots, 3);
        assert_eq!(strip_ansi("a\u{1b}[0;1;39mb\u{1b}[0mc"), "abc");
        assert_eq!(
            strip_ansi("\u{1b}M\u{1b}[K[  OK  ] Started x\r"),
            "[  OK  ] Started x"
        );
    }

    #[test]
    fn phases_end_with_the_second_boots_driver() {
        let p = phases(2.0);
        assert_eq!(p[0].wait, Wait::Boot(1));
        assert_eq!(p.last().unwrap().wait, Wait::Marker("DONE"));
        assert!(p.iter().any(|x| x.wait == Wait::Boot(3)));
        assert_eq!(p[0].within, Duration::from_mins(2));
    }
}
