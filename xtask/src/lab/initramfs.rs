//! The guest's initramfs: busybox, our /init, the observer, kexec with its libraries and the
//! kernel modules the lab needs, decompressed (busybox `insmod` cannot read `.ko.xz`). For kdump
//! scenarios a second image also carries the capture kernel's `Image` and its initramfs.
use std::{
    fmt::Write as _,
    io::BufReader,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context as _, bail};

use super::{
    cpio::{Archive, Data},
    kernel::{Kernel, ModuleIndex},
    userland::Userland,
};

/// The guest's /init (busybox sh).
pub(crate) const INIT: &str = include_str!("../../lab/init.sh");
/// Where /init finds the modules to load, one absolute path a line, dependencies first.
pub(crate) const MODULE_LIST: &str = "etc/lab/modules";
/// Inside the first kernel's initramfs: the capture kernel and its initramfs for `kexec -p`.
pub(crate) const CAPTURE_IMAGE: &str = "boot/Image";
pub(crate) const CAPTURE_INITRD: &str = "boot/capture.cpio";

/// Modules the lab loads: the virtio PCI transport (a module on 6.1, built in on 6.12), the 9p
/// file system that brings the results back to the host, and the NIC that takes the AER errors.
pub(crate) const MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "virtio_net"];

/// The images for one kernel.
#[derive(Debug)]
pub(crate) struct Initrds {
    /// busybox + init + observer + kexec + modules: the `boot` scenario's, and the capture
    /// kernel's.
    pub base: PathBuf,
    /// `base` plus `/boot/Image` and `/boot/capture.cpio`: the first kernel's for kdump.
    pub kdump: Option<PathBuf>,
}

/// Builds the images for `kernel` into `out_dir`.
pub(crate) fn build(
    out_dir: &Path,
    kernel: &Kernel,
    userland: &Userland,
    observer: &Path,
    with_kdump: bool,
) -> anyhow::Result<Initrds> {
    let started = Instant::now();
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut a = Archive::default();
    for dir in [
        "proc", "sys", "dev", "tmp", "run", "lab", "sbin", "usr/bin", "usr/sbin",
    ] {
        a.dir(dir)?;
    }
    a.file("init", 0o755, Data::Bytes(INIT.as_bytes().to_vec()))?;
    a.file("bin/busybox", 0o755, Data::File(userland.busybox.clone()))?;
    a.symlink("bin/sh", "busybox")?;
    a.file(
        "bin/kdump-dma-observer",
        0o755,
        Data::File(observer.to_path_buf()),
    )?;
    a.file("sbin/kexec", 0o755, Data::File(userland.kexec.clone()))?;
    add_libraries(&mut a, userland)?;
    let loaded = add_modules(&mut a, kernel)?;

    let base = out_dir.join("base.cpio");
    let size = a.write_file(&base)?;
    eprintln!(
        "lab: initramfs {} ({} MiB; modules: {loaded})",
        base.display(),
        size >> 20
    );
    let kdump = if with_kdump {
        a.file(CAPTURE_IMAGE, 0o644, Data::File(kernel.image.clone()))?;
        a.file(CAPTURE_INITRD, 0o644, Data::File(base.clone()))?;
        let path = out_dir.join("kdump.cpio");
        let size = a.write_file(&path)?;
        eprintln!(
            "lab: initramfs {} ({} MiB: the above + capture kernel Image and initramfs)",
            path.display(),
            size >> 20
        );
        Some(path)
    } else {
        None
    };
    eprintln!(
        "lab: initramfs built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(Initrds { base, kdump })
}

fn add_libraries(a: &mut Archive, userland: &Userland) -> anyhow::Result<()> {
    let lib = userland.lib_dir;
    for (soname, file) in &userland.libraries.libraries {
        a.file(&format!("{lib}/{soname}"), 0o755, Data::File(file.clone()))?;
    }
    if let Some((path, file)) = &userland.libraries.interpreter {
        let name = path.rsplit('/').next().unwrap_or(path);
        let inside = format!("{lib}/{name}");
        if !userland.libraries.libraries.contains_key(name) {
            a.file(&inside, 0o755, Data::File(file.clone()))?;
        }
        if path.trim_start_matches('/') != inside {
            a.symlink(path, &format!("/{inside}"))?;
        }
    }
    Ok(())
}

/// Adds the lab's modules (decompressed) and the list /init loads them from; returns a summary.
fn add_modules(a: &mut Archive, kernel: &Kernel) -> anyhow::Result<String> {
    let index = ModuleIndex::read(&kernel.modules)?;
    let plan = index.plan(MODULES).with_context(|| {
        format!(
            "kernel {} ({}) lacks a module the lab needs ({}: the virtio transport, the 9p \
                 share that brings results home, the NIC that takes AER errors); minimal \
                 flavours such as Debian's -cloud-arm64 have no 9p: use the generic \
                 linux-image-<release>-arm64 of the same version",
            kernel.release,
            kernel.deb,
            MODULES.join(", ")
        )
    })?;
    let mut list = String::new();
    let mut names = Vec::new();
    for rel in &plan.files {
        let source = kernel.modules.join(rel);
        let (target, data) = decompress(&source, rel)?;
        let guest = format!("lib/modules/{}/{target}", kernel.release);
        a.file(&guest, 0o644, Data::Bytes(data))?;
        let _ = writeln!(list, "/{guest}");
        names.push(
            target
                .rsplit('/')
                .next()
                .unwrap_or(&target)
                .trim_end_matches(".ko")
                .to_owned(),
        );
    }
    a.file(MODULE_LIST, 0o644, Data::Bytes(list.into_bytes()))?;
    let mut summary = names.join(" ");
    if !plan.builtin.is_empty() {
        let _ = write!(summary, "; built in: {}", plan.builtin.join(" "));
    }
    Ok(summary)
}

/// The module at `source` uncompressed, and its name without the compression suffix.
fn decompress(source: &Path, rel: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let open =
        || std::fs::File::open(source).with_context(|| format!("opening {}", source.display()));
    if let Some(plain) = rel.strip_suffix(".xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut BufReader::new(open()?), &mut out)
            .map_err(|e| anyhow::anyhow!("{e:?}"))
            .with_context(|| format!("xz-decompressing {}", source.display()))?;
        Ok((plain.to_owned(), out))
    } else if Path::new(rel).extension().is_some_and(|e| e == "ko") {
        let data =
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        Ok((rel.to_owned(), data))
    } else {
        bail!(
            "{}: only .ko and .ko.xz modules are supported (Debian's compression)",
            source.display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_without_9p_stops_naming_what_is_missing_and_what_to_do() {
        let dir = std::env::temp_dir().join(format!("lab-initramfs-test-{}", std::process::id()));
        let modules = dir.join("lib/modules/7.2.13+deb14-cloud-arm64");
        std::fs::create_dir_all(&modules).unwrap();
        std::fs::write(
            modules.join("modules.dep"),
            "kernel/drivers/net/virtio_net.ko.xz:\n",
        )
        .unwrap();
        std::fs::write(
            modules.join("modules.builtin"),
            "kernel/drivers/virtio/virtio_pci.ko\n",
        )
        .unwrap();
        let kernel = Kernel {
            choice: crate::lab::kernel::KernelChoice::Suite("sid".into()),
            release: "7.2.13+deb14-cloud-arm64".into(),
            deb: "linux-image-7.2.13+deb14-cloud-arm64_7.2.13-1_arm64.deb".into(),
            image: dir.join("vmlinuz"),
            modules: modules.clone(),
        };
        let err = add_modules(&mut Archive::default(), &kernel)
            .err()
            .map(|e| format!("{e:#}"));
        std::fs::remove_dir_all(&dir).ok();
        let err = err.expect("a kernel without 9p cannot carry the lab's share");
        assert!(
            err.contains("kernel 7.2.13+deb14-cloud-arm64")
                && err.contains("9pnet_virtio is neither in modules.dep nor in modules.builtin")
                && err.contains("use the generic linux-image-<release>-arm64"),
            "{err}"
        );
    }
}
