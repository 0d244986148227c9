//! A `newc` cpio writer (the format the kernel unpacks as an initramfs), uncompressed.
//!
//! Layout of one entry: a 110-byte ASCII header (`070701` and 13 eight-digit hex fields), the
//! NUL-terminated name padded to a multiple of 4 bytes (counting the header), then the data
//! padded to a multiple of 4. The archive ends with an entry named `TRAILER!!!`.
//!
//! Kept by hand: the header is the 30-odd lines above the tests; what the lab needs on top of
//! any writer (parent directories made implicitly, one entry per path, host files streamed,
//! a byte-identical archive for identical input) is the rest. The newc writers on crates.io
//! (`cpio`, `kpea`) would replace the header only, for another dependency.
use std::{
    collections::BTreeSet,
    fmt::Write as _,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, ensure};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;

/// Contents of a regular file: bytes in memory, or a host file read when the archive is written.
#[derive(Clone, Debug)]
pub(crate) enum Data {
    Bytes(Vec<u8>),
    File(PathBuf),
}

#[derive(Clone, Debug)]
enum Body {
    Dir,
    File(Data),
    Symlink(String),
}

#[derive(Clone, Debug)]
struct Entry {
    path: String,
    mode: u32,
    body: Body,
}

/// An archive being put together. Parent folders are added before anything inside them, as the
/// kernel's unpacker creates nothing on its own.
#[derive(Clone, Debug, Default)]
pub(crate) struct Archive {
    entries: Vec<Entry>,
    paths: BTreeSet<String>,
}

impl Archive {
    /// A folder (mode 0755), and its parents.
    pub(crate) fn dir(&mut self, path: &str) -> anyhow::Result<()> {
        let path = clean(path)?;
        self.parents(&path)?;
        if self.paths.insert(path.clone()) {
            self.entries.push(Entry {
                path,
                mode: S_IFDIR | 0o755,
                body: Body::Dir,
            });
        }
        Ok(())
    }

    /// A regular file with permission bits `perm` (e.g. 0o755).
    pub(crate) fn file(&mut self, path: &str, perm: u32, data: Data) -> anyhow::Result<()> {
        let path = clean(path)?;
        self.add(path, S_IFREG | (perm & 0o7777), Body::File(data))
    }

    /// A symbolic link to `target`.
    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> anyhow::Result<()> {
        let path = clean(path)?;
        self.add(path, S_IFLNK | 0o777, Body::Symlink(target.to_owned()))
    }

    fn add(&mut self, path: String, mode: u32, body: Body) -> anyhow::Result<()> {
        self.parents(&path)?;
        ensure!(
            self.paths.insert(path.clone()),
            "{path} is in the archive twice"
        );
        self.entries.push(Entry { path, mode, body });
        Ok(())
    }

    fn parents(&mut self, path: &str) -> anyhow::Result<()> {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent)?;
        }
        Ok(())
    }

    /// Writes the archive; returns the number of bytes written.
    pub(crate) fn write_to(&self, out: &mut impl Write) -> anyhow::Result<u64> {
        let mut w = Counter { out, written: 0 };
        for (ino, entry) in (1u32..).zip(&self.entries) {
            let loaded;
            let data: &[u8] = match &entry.body {
                Body::Dir => &[],
                Body::Symlink(target) => target.as_bytes(),
                Body::File(Data::Bytes(b)) => b,
                Body::File(Data::File(p)) => {
                    loaded = std::fs::read(p)
                        .with_context(|| format!("reading {} for {}", p.display(), entry.path))?;
                    &loaded
                }
            };
            let nlink = if matches!(entry.body, Body::Dir) {
                2
            } else {
                1
            };
            write_entry(&mut w, ino, entry.mode, nlink, &entry.path, data)?;
        }
        write_entry(&mut w, 0, 0, 1, TRAILER, &[])?;
        Ok(w.written)
    }

    /// Writes the archive to `path`; returns its size.
    pub(crate) fn write_file(&self, path: &Path) -> anyhow::Result<u64> {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let n = self
            .write_to(&mut out)
            .with_context(|| format!("writing {}", path.display()))?;
        out.flush()
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(n)
    }
}

/// `/bin/sh` and `bin/sh` are both `bin/sh`; empty, `.` and `..` parts are refused.
fn clean(path: &str) -> anyhow::Result<String> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    ensure!(
        !parts.is_empty() && parts.iter().all(|p| *p != "." && *p != ".."),
        "bad archive path {path:?}"
    );
    Ok(parts.join("/"))
}

struct Counter<'a, W> {
    out: &'a mut W,
    written: u64,
}

impl<W: Write> Counter<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> anyhow::Result<()> {
        let n = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..usize::try_from(n)?])
    }
}

fn write_entry<W: Write>(
    w: &mut Counter<'_, W>,
    ino: u32,
    mode: u32,
    nlink: u32,
    name: &str,
    data: &[u8],
) -> anyhow::Result<()> {
    let size = u32::try_from(data.len())
        .with_context(|| format!("{name}: {} bytes is too large for newc", data.len()))?;
    let namesize = u32::try_from(name.len() + 1)?;
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, namesize, 0];
    let mut header = String::with_capacity(110);
    header.push_str(MAGIC);
    for f in fields {
        let _ = write!(header, "{f:08x}");
    }
    w.put(header.as_bytes())?;
    w.put(name.as_bytes())?;
    w.put(&[0])?;
    w.pad()?;
    w.put(data)?;
    w.pad()
}

#[cfg(test)]
pub(crate) mod reader {
    //! Reads `newc` archives back (tests only).
    use anyhow::{Context as _, ensure};

    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct Member {
        pub name: String,
        pub mode: u32,
        pub data: Vec<u8>,
    }

    /// The members of every archive in `bytes` (archives may be concatenated), trailers left out.
    pub(crate) fn read(mut bytes: &[u8]) -> anyhow::Result<Vec<Member>> {
        let mut out = Vec::new();
        let total = bytes.len();
        while !bytes.is_empty() {
            let offset = total - bytes.len();
            ensure!(
                offset.is_multiple_of(4),
                "member at unaligned offset {offset}"
            );
            let header = bytes.get(..110).context("truncated header")?;
            ensure!(&header[..6] == b"070701", "bad magic at {offset}");
            let field = |i: usize| -> anyhow::Result<u32> {
                let text = std::str::from_utf8(&header[6 + i * 8..14 + i * 8])?;
                Ok(u32::from_str_radix(text, 16)?)
            };
            let (mode, size, namesize) = (field(1)?, field(6)? as usize, field(11)? as usize);
            let name_end = 110 + namesize;
            let name = std::str::from_utf8(bytes.get(110..name_end - 1).context("name")?)?;
            ensure!(bytes[name_end - 1] == 0, "name not NUL-terminated");
            let data_start = name_end.next_multiple_of(4);
            let data = bytes
                .get(data_start..data_start + size)
                .context("truncated data")?;
            let next = (data_start + size).next_multiple_of(4);
            if name != "TRAILER!!!" {
                out.push(Member {
                    name: name.to_owned(),
                    mode,
                    data: data.to_vec(),
                });
            }
            bytes = bytes.get(next..).unwrap_or_default();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{reader::read, *};

    #[test]
    fn round_trips_through_a_reader() {
        let mut a = Archive::default();
        a.file("/bin/busybox", 0o755, Data::Bytes(b"ELF?".to_vec()))
            .unwrap();
        a.symlink("bin/sh", "busybox").unwrap();
        a.file("init", 0o755, Data::Bytes(b"#!/bin/sh\n".to_vec()))
            .unwrap();
        a.dir("proc").unwrap();
        let mut bytes = Vec::new();
        let n = a.write_to(&mut bytes).unwrap();
        assert_eq!(n, bytes.len() as u64);
        assert_eq!(bytes.len() % 4, 0);
        let members = read(&bytes).unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "init", "proc"]);
        assert_eq!(members[0].mode, 0o040_755);
        assert_eq!(members[1].mode, 0o100_755);
        assert_eq!(members[1].data, b"ELF?");
        assert_eq!(members[2].mode, 0o120_777);
        assert_eq!(members[2].data, b"busybox");
        // Two archives back to back read as one (the kernel accepts that too).
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes);
        assert_eq!(read(&twice).unwrap().len(), 10);
    }

    #[test]
    fn header_layout_is_byte_exact() {
        let mut a = Archive::default();
        a.file("ab", 0o644, Data::Bytes(b"xyz".to_vec())).unwrap();
        let mut bytes = Vec::new();
        a.write_to(&mut bytes).unwrap();
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        let fields = [
            "00000001", // ino
            "000081a4", // mode: regular file 0644
            "00000000", // uid
            "00000000", // gid
            "00000001", // nlink
            "00000000", // mtime
            "00000003", // filesize
            "00000000", // devmajor
            "00000000", // devminor
            "00000000", // rdevmajor
            "00000000", // rdevminor
            "00000003", // namesize, with the NUL
            "00000000", // check
        ];
        assert_eq!(header, format!("070701{}", fields.concat()));
        // 110 + "ab\0" = 113 -> padded to 116; 3 data bytes -> padded to 120.
        assert_eq!(&bytes[110..116], b"ab\0\0\0\0");
        assert_eq!(&bytes[116..120], b"xyz\0");
        assert_eq!(&bytes[120..126], b"070701");
        assert!(
            std::str::from_utf8(&bytes[120..])
                .unwrap()
                .contains("TRAILER!!!")
        );
    }

    #[test]
    fn refuses_duplicates_and_bad_paths() {
        let mut a = Archive::default();
        a.file("x", 0o644, Data::Bytes(vec![])).unwrap();
        assert!(a.file("/x", 0o644, Data::Bytes(vec![])).is_err());
        assert!(a.dir("a/../b").is_err());
        assert!(a.symlink("", "x").is_err());
    }
}
