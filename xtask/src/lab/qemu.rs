//! The QEMU command line of the lab machine, and the running process, which is always killed
//! when the harness gives up on it (`Drop`).
//!
//! Results come back through a 9p share (virtio-9p, `security_model=none`) rather than a disk
//! image: the guest writes plain files that the host reads as they are, with no file system to
//! create or parse on the host; 9p writes go straight through to the host (no guest page
//! cache), so whatever the first kernel wrote before it was crashed on purpose is there
//! already; and both kernels mount the same share, each under its own folder. The 9p device
//! sits behind its own root port (0000:01:00.0), which puts the virtio-net NIC that takes the
//! AER errors at 0000:02:00.0, behind root port 0000:00:03.0.
use std::{
    fs::File,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::Context as _;

use super::{
    arch::{GuestArch, X86Iommu},
    host::QEMU,
};

/// The guest NIC's QEMU id: the target of `pcie_aer_inject_error`.
pub(crate) const AER_DEVICE_ID: &str = "vnet1";
/// Its PCI address in the guest.
pub(crate) const AER_DEVICE_BDF: &str = "0000:02:00.0";
/// The 9p share's mount tag.
pub(crate) const SHARE_TAG: &str = "lab";

/// What one boot of the lab machine needs.
pub(crate) struct Machine<'a> {
    pub image: &'a Path,
    pub initrd: &'a Path,
    /// Appended after the lab's fixed kernel parameters.
    pub append: &'a str,
    pub console: &'a Path,
    pub qmp_socket: &'a Path,
    /// Host folder the guest sees as 9p tag `lab`.
    pub share: &'a Path,
    /// Which board: arm64 `virt` + SMMUv3, or x86 q35 + VT-d / AMD-Vi.
    pub arch: GuestArch,
    /// The x86 board's IOMMU (ignored on arm64).
    pub x86_iommu: X86Iommu,
}

/// The kernel parameters every first kernel gets.
pub(crate) const BASE_APPEND: &str = "console=ttyAMA0 panic=-1 loglevel=7 crashkernel=256M";

/// Both labs' machine: an arm64 `virt` board under TCG with an SMMUv3 in front of the `PCIe`
/// root complex, 2 CPUs, 2 GiB, no display or monitor, and CPU model `cpu`. No DT kaslr-seed:
/// kexec-tools refuses a non-zero one (and `nokaslr` and `kexec -p` must agree).
#[must_use]
pub(crate) fn virt_smmuv3(cpu: &str) -> Vec<String> {
    [
        "-machine",
        "virt,iommu=smmuv3,gic-version=3,dtb-kaslr-seed=off",
        "-accel",
        "tcg",
        "-cpu",
        cpu,
        "-smp",
        "2",
        "-m",
        "2G",
        "-display",
        "none",
        "-monitor",
        "none",
    ]
    .map(str::to_owned)
    .into()
}

/// The kernel parameters every x86 first kernel gets: the serial console, and the IOMMU
/// switched on (Debian's amd64 kernels leave VT-d off by default), which the capture kernel
/// inherits through `kexec -p --append`.
#[must_use]
pub(crate) fn x86_append(iommu: X86Iommu) -> String {
    let on = match iommu {
        X86Iommu::Intel => "intel_iommu=on",
        X86Iommu::Amd => "amd_iommu=on",
    };
    format!("console=ttyS0 panic=-1 loglevel=7 crashkernel=256M {on}")
}

/// The x86 lab machine: q35 under TCG with the IOMMU `iommu` in front of the root complex, 2
/// CPUs, 2 GiB, and nothing QEMU would add by default (`-nodefaults`: no VGA, no default NIC),
/// so that the root ports sit at the same addresses as on arm64. VT-d's interrupt remapping
/// needs the split irqchip; `caching-mode=on` makes the guest flush every mapping change.
#[must_use]
pub(crate) fn q35(iommu: X86Iommu) -> Vec<String> {
    let device = match iommu {
        X86Iommu::Intel => "intel-iommu,intremap=on,caching-mode=on",
        X86Iommu::Amd => "amd-iommu,intremap=on",
    };
    [
        "-machine",
        "q35,kernel-irqchip=split",
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-smp",
        "2",
        "-m",
        "2G",
        "-nodefaults",
        "-display",
        "none",
        "-monitor",
        "none",
        "-device",
        device,
    ]
    .map(str::to_owned)
    .into()
}

/// The full QEMU argument list.
#[must_use]
pub(crate) fn args(m: &Machine<'_>) -> Vec<String> {
    let mut a = match m.arch {
        GuestArch::Aarch64 => virt_smmuv3("max,pauth-impdef=on"),
        GuestArch::X86_64 => q35(m.x86_iommu),
    };
    let base = match m.arch {
        GuestArch::Aarch64 => BASE_APPEND.to_owned(),
        GuestArch::X86_64 => x86_append(m.x86_iommu),
    };
    a.push("-no-reboot".into());
    a.extend(["-kernel".into(), m.image.display().to_string()]);
    a.extend(["-initrd".into(), m.initrd.display().to_string()]);
    a.extend(["-append".into(), format!("{base} {}", m.append)]);
    a.extend(["-serial".into(), format!("file:{}", m.console.display())]);
    a.extend([
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", m.qmp_socket.display()),
    ]);
    a.extend([
        "-device".into(),
        "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1,addr=0x2".into(),
        "-fsdev".into(),
        format!(
            "local,id=labfs,path={},security_model=none",
            m.share.display()
        ),
        "-device".into(),
        format!("virtio-9p-pci,bus=rp1,fsdev=labfs,mount_tag={SHARE_TAG},disable-legacy=on"),
        "-device".into(),
        "pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x3".into(),
        "-device".into(),
        // romfile=: no iPXE option ROM (not needed for -kernel boot, and not installed).
        format!(
            "virtio-net-pci,bus=rp2,id={AER_DEVICE_ID},aer=on,netdev=n2,disable-legacy=on,romfile="
        ),
        "-netdev".into(),
        "user,id=n2".into(),
    ]);
    a
}

/// A running QEMU. Dropping it kills the process.
pub(crate) struct Qemu {
    child: Child,
    pub command_line: String,
}

impl Qemu {
    /// Starts QEMU with its own stdout and stderr going to `log`.
    pub(crate) fn spawn(m: &Machine<'_>, log: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(m.arch.qemu(), &args(m), log)
    }

    /// Starts QEMU with the argument list `args` (another machine than [`args`]'s).
    pub(crate) fn spawn_args(args: &[String], log: &Path) -> anyhow::Result<Self> {
        Self::spawn_with(QEMU, args, log)
    }

    /// Starts the QEMU binary `qemu` with the argument list `args`.
    pub(crate) fn spawn_with(qemu: &str, args: &[String], log: &Path) -> anyhow::Result<Self> {
        let command_line = std::iter::once(qemu.to_owned())
            .chain(args.iter().map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            }))
            .collect::<Vec<_>>()
            .join(" ");
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out
            .try_clone()
            .with_context(|| format!("opening {}", log.display()))?;
        let mut command = Command::new(qemu);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec.
        // If the harness dies without running `Drop` (SIGKILL, SIGTERM), the kernel kills QEMU.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {qemu}: run `cargo xtask setup --lab`"))?;
        Ok(Self {
            child,
            command_line,
        })
    }

    /// The exit status if QEMU has exited.
    pub(crate) fn exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child.try_wait().context("checking on QEMU")
    }

    /// Waits up to `timeout` for QEMU to exit by itself, then kills it; returns how it ended.
    pub(crate) fn finish(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.exited()? {
                return Ok(format!("exited ({status})"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        Ok(format!(
            "killed after not exiting within {} s",
            timeout.as_secs()
        ))
    }

    fn kill(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A unix socket path for QMP: in `dir` when short enough for `sun_path` (108 bytes), else in
/// the temporary folder.
#[must_use]
pub(crate) fn socket_path(dir: &Path, name: &str) -> PathBuf {
    let preferred = dir.join(format!("{name}.qmp"));
    if preferred.as_os_str().len() < 100 {
        preferred
    } else {
        std::env::temp_dir().join(format!("kdo-lab-{}-{name}.qmp", std::process::id()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_has_the_lab_machine() {
        let a = args(&Machine {
            image: Path::new("/k/Image"),
            initrd: Path::new("/i.cpio"),
            append: "lab=kdump",
            console: Path::new("/t/console.log"),
            qmp_socket: Path::new("/t/q.qmp"),
            share: Path::new("/t/share"),
            arch: GuestArch::Aarch64,
            x86_iommu: X86Iommu::Intel,
        })
        .join(" ");
        for wanted in [
            "-machine virt,iommu=smmuv3,gic-version=3,dtb-kaslr-seed=off -accel tcg -cpu max,pauth-impdef=on -smp 2 -m 2G -display none",
            "-no-reboot",
            "-kernel /k/Image -initrd /i.cpio",
            "-append console=ttyAMA0 panic=-1 loglevel=7 crashkernel=256M lab=kdump",
            "-serial file:/t/console.log",
            "-qmp unix:/t/q.qmp,server=on,wait=off",
            "-device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x3 -device virtio-net-pci,bus=rp2,id=vnet1,aer=on,netdev=n2,disable-legacy=on,romfile= -netdev user,id=n2",
            "path=/t/share,security_model=none",
            "mount_tag=lab",
        ] {
            assert!(a.contains(wanted), "missing {wanted:?} in {a}");
        }
    }

    #[test]
    fn x86_command_line_has_q35_with_vt_d_and_the_same_root_ports() {
        let m = |iommu| {
            args(&Machine {
                image: Path::new("/k/vmlinuz"),
                initrd: Path::new("/i.cpio"),
                append: "lab=kdump",
                console: Path::new("/t/console.log"),
                qmp_socket: Path::new("/t/q.qmp"),
                share: Path::new("/t/share"),
                arch: GuestArch::X86_64,
                x86_iommu: iommu,
            })
            .join(" ")
        };
        let a = m(X86Iommu::Intel);
        for wanted in [
            "-machine q35,kernel-irqchip=split -accel tcg -cpu max",
            "-nodefaults",
            "-device intel-iommu,intremap=on,caching-mode=on",
            "-append console=ttyS0 panic=-1 loglevel=7 crashkernel=256M intel_iommu=on lab=kdump",
            "-device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,slot=2,addr=0x3 -device virtio-net-pci,bus=rp2,id=vnet1,aer=on",
        ] {
            assert!(a.contains(wanted), "missing {wanted:?} in {a}");
        }
        assert!(!a.contains("smmuv3") && !a.contains("ttyAMA0"), "{a}");
        let a = m(X86Iommu::Amd);
        assert!(
            a.contains("-device amd-iommu,intremap=on") && a.contains("amd_iommu=on"),
            "{a}"
        );
    }

    #[test]
    fn long_socket_paths_move_to_the_temporary_folder() {
        assert_eq!(
            socket_path(Path::new("/t"), "boot"),
            Path::new("/t/boot.qmp")
        );
        let long = Path::new("/x").join("y".repeat(120));
        assert!(socket_path(&long, "boot").starts_with(std::env::temp_dir()));
    }
}
