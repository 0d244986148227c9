//! Root file system trees on the host: copied with `cp -a` (owners, modes, device nodes,
//! hard links and extended attributes kept) and removed only when nothing is mounted beneath
//! them (a chroot's bind-mounted /dev or /sys left by a killed build would otherwise be
//! emptied along with the tree).
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, bail, ensure};

/// Removes `dir` and everything in it, after checking that no file system is mounted in it.
pub(crate) fn remove(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let mountinfo =
        std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
    let canonical = dir
        .canonicalize()
        .with_context(|| format!("resolving {}", dir.display()))?;
    let beneath = mounts_under(&mountinfo, &canonical);
    if !beneath.is_empty() {
        bail!(
            "not removing {}: file systems are mounted in it ({}); unmount them first (`umount -R`)",
            dir.display(),
            beneath
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

/// `cp -a from to` (`to` must not exist yet).
pub(crate) fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    ensure!(!to.exists(), "{} exists already", to.display());
    let out = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .output()
        .context("cannot run cp")?;
    ensure!(
        out.status.success(),
        "`cp -a {} {}` failed ({}): {}",
        from.display(),
        to.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// Mount points at or below `dir`, from the text of /proc/self/mountinfo.
fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|point| PathBuf::from(unescape(point)))
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash in paths as `\ooo` octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4]
                .iter()
                .fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(u8::try_from(value).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
97 22 0:5 / /work/x/root\\040fs/dev rw,nosuid shared:2 - devtmpfs udev rw
98 22 0:21 / /work/x/root\\040fs/sys rw shared:7 - sysfs sysfs rw
99 22 0:22 / /work/x/rootfs-other/proc rw - proc proc rw
";

    #[test]
    fn finds_mounts_beneath_a_tree_only() {
        assert_eq!(
            mounts_under(MOUNTINFO, Path::new("/work/x/root fs")),
            [
                PathBuf::from("/work/x/root fs/dev"),
                PathBuf::from("/work/x/root fs/sys")
            ]
        );
        // A sibling whose name starts the same is not beneath it.
        let found = mounts_under(MOUNTINFO, Path::new("/work/x/rootfs"));
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(unescape("a\\134b\\011c"), "a\\b\tc");
        assert_eq!(unescape("trailing\\04"), "trailing\\04");
    }

    #[test]
    fn removes_a_plain_tree_and_copies_with_cp_a() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("base");
        let from = base.join("from");
        std::fs::create_dir_all(from.join("etc")).unwrap();
        std::fs::write(from.join("etc/hostname"), "kdumplab\n").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", from.join("link")).unwrap();
        let to = base.join("to");
        copy(&from, &to).unwrap();
        assert_eq!(
            std::fs::read_link(to.join("link")).unwrap(),
            Path::new("/etc/hostname")
        );
        assert!(copy(&from, &to).is_err(), "the target must be new");
        remove(&base).unwrap();
        assert!(!base.exists());
        remove(&base).unwrap();
    }
}
