//! The guest's disk: an ext4 image made from a directory with `mke2fs -d` (no mounts, no
//! loop devices), and read back after the run with `debugfs` (listings and copies of single
//! files), so the host never mounts what the guest wrote.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail, ensure};

/// Size of the sparse image: the tree is ~500 MB; the dump of a 2 GiB guest is tens of MB.
pub(crate) const SIZE: &str = "3G";

/// Free space the run needs in its artifact directory: the copied tree (~500 MB), the image
/// holding it again, and the dump written into the image by the guest, with room to spare.
pub(crate) const ROOM_NEEDED: u64 = 2 << 30;

/// Fails with a clear message when the filesystem holding `dir` has less than `need` bytes
/// free for an unprivileged writer (a full disk otherwise surfaces as a confusing mke2fs error
/// about one file of the tree).
pub(crate) fn ensure_room(dir: &Path, need: u64) -> anyhow::Result<()> {
    let free = free_bytes(dir)?;
    ensure!(
        free >= need,
        "{} has {:.1} GiB free; the Debian lab needs {:.1} GiB there (the guest's tree, its \
         disk image and the dump). Free some space (e.g. `cargo clean`, old target/lab runs) \
         and run again",
        dir.display(),
        gib(free),
        gib(need)
    );
    Ok(())
}

#[allow(clippy::cast_precision_loss)] // a size shown with one decimal
fn gib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 30)
}

/// Bytes available to an unprivileged user on the filesystem holding `dir` (`statvfs(3)`).
fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .with_context(|| format!("{} has a NUL byte", dir.display()))?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is plain old data that statvfs fills.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above; both pointers are valid for the call.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &raw mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("statvfs {}", dir.display()));
    }
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Writes `image` (replacing it) from the tree at `root`; returns how long mke2fs took.
pub(crate) fn make(mke2fs: &Path, root: &Path, image: &Path) -> anyhow::Result<Duration> {
    if image.exists() {
        std::fs::remove_file(image).with_context(|| format!("removing {}", image.display()))?;
    }
    let started = Instant::now();
    let out = Command::new(mke2fs)
        .args(["-q", "-t", "ext4", "-L", "root", "-d"])
        .arg(root)
        .arg(image)
        .arg(SIZE)
        .output()
        .with_context(|| format!("cannot run {}", mke2fs.display()))?;
    ensure!(
        out.status.success(),
        "`mke2fs -d {} {}` failed ({}): {}",
        root.display(),
        image.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(started.elapsed())
}

/// One directory entry, as `debugfs ls -l` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    /// The full `st_mode`, octal as printed (`40755`, `100600`).
    pub mode: u32,
    pub size: u64,
}

impl Entry {
    #[must_use]
    pub(crate) fn is_dir(&self) -> bool {
        self.mode & 0o170_000 == 0o040_000
    }

    #[must_use]
    pub(crate) fn is_file(&self) -> bool {
        self.mode & 0o170_000 == 0o100_000
    }
}

/// An ext4 image read with debugfs.
pub(crate) struct Image {
    debugfs: PathBuf,
    path: PathBuf,
}

impl Image {
    #[must_use]
    pub(crate) fn new(debugfs: &Path, path: &Path) -> Self {
        Self {
            debugfs: debugfs.to_path_buf(),
            path: path.to_path_buf(),
        }
    }

    /// Runs one debugfs request (read-only); stdout, or the error debugfs printed.
    fn request(&self, request: &str) -> anyhow::Result<String> {
        let out = Command::new(&self.debugfs)
            .arg("-R")
            .arg(request)
            .arg(&self.path)
            .output()
            .with_context(|| format!("cannot run {}", self.debugfs.display()))?;
        // debugfs exits 0 on most errors; it says them on stderr after its banner.
        let complaints: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| !l.starts_with("debugfs ") && !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        if !out.status.success() || !complaints.is_empty() {
            bail!(
                "`debugfs -R '{request}' {}` failed ({}): {}",
                self.path.display(),
                out.status,
                complaints.join("; ")
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The entries of the directory `path` in the image (without `.` and `..`).
    pub(crate) fn list(&self, path: &str) -> anyhow::Result<Vec<Entry>> {
        let text = self.request(&format!("ls -l {path}"))?;
        Ok(parse_ls(&text))
    }

    /// Copies the file `path` of the image to `to` on the host.
    pub(crate) fn copy_out(&self, path: &str, to: &Path) -> anyhow::Result<()> {
        if to.exists() {
            std::fs::remove_file(to).with_context(|| format!("removing {}", to.display()))?;
        }
        self.request(&format!("dump {path} {}", to.display()))?;
        ensure!(
            to.is_file(),
            "debugfs did not copy {path} out of {} to {}",
            self.path.display(),
            to.display()
        );
        Ok(())
    }

    /// Copies the directory `path` of the image into the host folder `into` (as `into/<name>`).
    pub(crate) fn copy_dir_out(&self, path: &str, into: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(into).with_context(|| format!("creating {}", into.display()))?;
        self.request(&format!("rdump {path} {}", into.display()))?;
        Ok(())
    }

    /// The text of the file `path` in the image.
    pub(crate) fn read(&self, path: &str) -> anyhow::Result<String> {
        self.request(&format!("cat {path}"))
    }
}

/// `debugfs ls -l` lines: inode, mode, (type), uid, gid, size, date, time, name.
fn parse_ls(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let (fields, name) = split_fields(line, 8)?;
            let mode = u32::from_str_radix(fields[1], 8).ok()?;
            let size = fields[5].parse().ok()?;
            (name != "." && name != "..").then(|| Entry {
                name: name.to_owned(),
                mode,
                size,
            })
        })
        .collect()
}

/// The first `n` whitespace-separated fields of `line`, and the rest after them (which may hold
/// spaces: a file name).
fn split_fields(line: &str, n: usize) -> Option<(Vec<&str>, &str)> {
    let mut fields = Vec::with_capacity(n);
    let mut rest = line.trim_start();
    for _ in 0..n {
        let end = rest.find(char::is_whitespace)?;
        fields.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    (!rest.is_empty()).then_some((fields, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_measured_and_refused_when_short() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(free_bytes(tmp.path()).unwrap() > 0);
        ensure_room(tmp.path(), 1).unwrap();
        let err = ensure_room(tmp.path(), u64::MAX).unwrap_err().to_string();
        assert!(err.contains("needs") && err.contains("GiB free"), "{err}");
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
    }

    #[test]
    fn parses_debugfs_listings() {
        let text = "     13   40755 (2)      0      0    1024 24-Nov-2026 11:56 .\n\
             12   40755 (2)      0      0    1024 24-Nov-2026 11:56 ..\n\
             14   40755 (2)      0      0    1024 24-Nov-2026 11:56 202611240852\n\
             17  100600 (1)      0      0 48015015 24-Nov-2026 11:56 dump.202611240852\n\
             18  100644 (1)      0      0       2 24-Nov-2026 11:56 a  b\n\
             19  120777 (7)      0      0       2 24-Nov-2026 11:56 lnk\n\n";
        let entries = parse_ls(text);
        assert_eq!(entries.len(), 4, "{entries:?}");
        assert_eq!(entries[0].name, "202611240852");
        assert!(entries[0].is_dir() && !entries[0].is_file());
        assert_eq!(
            entries[1],
            Entry {
                name: "dump.202611240852".into(),
                mode: 0o100_600,
                size: 48_015_015
            }
        );
        assert!(entries[1].is_file());
        assert_eq!(entries[2].name, "a  b");
        assert!(!entries[3].is_file() && !entries[3].is_dir());
    }

    #[test]
    fn writes_an_image_and_reads_it_back() {
        let tool = |name: &str| {
            crate::debian::which(name).unwrap_or_else(|| Path::new("/usr/sbin").join(name))
        };
        let (mke2fs, debugfs) = (tool("mke2fs"), tool("debugfs"));
        if !mke2fs.exists() || !debugfs.exists() {
            // In CI (`cargo xtask ci` installs e2fsprogs) a missing tool is a failure.
            assert!(
                !crate::cmd::in_ci(),
                "e2fsprogs (mke2fs, debugfs) is not installed; CI must run this test"
            );
            eprintln!("SKIPPED: e2fsprogs is not installed");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        let root = base.join("root");
        std::fs::create_dir_all(root.join("var/crash/202611240852")).unwrap();
        std::fs::write(
            root.join("var/crash/202611240852/dmesg.202611240852"),
            "hi\n",
        )
        .unwrap();
        std::fs::write(root.join("var/crash/202611240852/dump.202611240852"), "").unwrap();
        let path = base.join("disk.img");
        // A small image is enough for the test.
        let out = Command::new(&mke2fs)
            .args(["-q", "-t", "ext4", "-d"])
            .arg(&root)
            .arg(&path)
            .arg("16M")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let image = Image::new(&debugfs, &path);
        let listing = image.list("/var/crash/202611240852").unwrap();
        let sizes: Vec<(&str, u64)> = listing.iter().map(|e| (e.name.as_str(), e.size)).collect();
        assert_eq!(sizes, [("dmesg.202611240852", 3), ("dump.202611240852", 0)]);
        let to = base.join("dmesg.txt");
        image
            .copy_out("/var/crash/202611240852/dmesg.202611240852", &to)
            .unwrap();
        assert_eq!(std::fs::read_to_string(&to).unwrap(), "hi\n");
        assert_eq!(
            image
                .read("/var/crash/202611240852/dmesg.202611240852")
                .unwrap(),
            "hi\n"
        );
        let err = image.list("/no/such").unwrap_err().to_string();
        assert!(err.contains("File not found"), "{err}");
        assert!(image.copy_out("/no/such", &to).is_err());
    }
}
