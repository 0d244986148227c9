//! The crashed kernel, from the `VMCOREINFO` ELF note of `/proc/vmcore`.
//!
//! /proc/vmcore is an ELF core file of the crashed kernel's memory. Its program headers hold
//! one `PT_NOTE` segment (fs/proc/vmcore.c merges the per-CPU notes and VMCOREINFO into it) and
//! `PT_LOAD` segments of memory. Only the ELF header, the program headers and the `PT_NOTE`
//! segment are read, never a `PT_LOAD`: the dump's memory is not touched.
//!
//! The note's text is `KEY=VALUE` lines written by the crashed kernel (`kernel/vmcore_info.c`,
//! `kernel/crash_core.c` before 6.9): `OSRELEASE=%s`, `PAGESIZE=%ld`, and `CRASHTIME=%lld`
//! (seconds since the epoch, added by `crash_save_vmcoreinfo` at the crash).
use std::path::Path;

use object::{
    Endianness, ReadCache,
    elf::{FileHeader64, PT_NOTE},
    read::elf::{FileHeader as _, ProgramHeader as _},
};
use serde::{Deserialize, Serialize};

use super::bounded;

/// Largest `PT_NOTE` segment read (the notes are a few KiB per CPU).
const MAX_NOTE_BYTES: u64 = 16 << 20;

/// What VMCOREINFO says about the kernel that crashed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashedKernel {
    /// `OSRELEASE`: its `uname -r`.
    pub release: String,
    /// `CRASHTIME`: Unix time of the crash, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crash_time: Option<i64>,
    /// `PAGESIZE` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
}

/// Reads the VMCOREINFO note of the ELF core at `path`.
pub fn read(path: &Path) -> Result<CrashedKernel, String> {
    let file = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{} absent (not a capture kernel)", path.display())
        } else {
            format!("cannot open {}: {e}", path.display())
        }
    })?;
    let cache = ReadCache::new(file);
    let text = vmcoreinfo_text(&cache).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: VMCOREINFO {e}", path.display()))
}

/// The VMCOREINFO note's text from an ELF64 core held by `data`.
pub fn vmcoreinfo_text<'a, R: object::ReadRef<'a>>(data: R) -> Result<String, String> {
    let header =
        FileHeader64::<Endianness>::parse(data).map_err(|e| format!("not an ELF64 core: {e}"))?;
    let endian = header
        .endian()
        .map_err(|e| format!("bad ELF byte order: {e}"))?;
    let phdrs = header
        .program_headers(endian, data)
        .map_err(|e| format!("bad program headers: {e}"))?;
    for ph in phdrs.iter().filter(|p| p.p_type(endian) == PT_NOTE) {
        if ph.p_filesz(endian) > MAX_NOTE_BYTES {
            continue;
        }
        let Ok(Some(mut notes)) = ph.notes(endian, data) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == b"VMCOREINFO" {
                return Ok(String::from_utf8_lossy(note.desc()).into_owned());
            }
        }
    }
    Err("no VMCOREINFO note in its PT_NOTE segments".into())
}

/// Parses the note's `KEY=VALUE` lines.
pub fn parse(text: &str) -> Result<CrashedKernel, String> {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
    };
    let release = value("OSRELEASE")
        .map(bounded)
        .filter(|r| !r.is_empty())
        .ok_or("has no OSRELEASE line")?;
    Ok(CrashedKernel {
        release,
        crash_time: value("CRASHTIME").and_then(|v| v.parse().ok()),
        page_size: value("PAGESIZE").and_then(|v| v.parse().ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian ELF64 core: header, a `PT_LOAD` that must not be read (it points past the
    /// end), and a `PT_NOTE` holding a CORE note then VMCOREINFO.
    pub(crate) fn core(info: &str) -> Vec<u8> {
        fn note(name: &str, kind: u32, desc: &[u8]) -> Vec<u8> {
            let mut n = Vec::new();
            let name = format!("{name}\0");
            n.extend(u32::try_from(name.len()).unwrap().to_le_bytes());
            n.extend(u32::try_from(desc.len()).unwrap().to_le_bytes());
            n.extend(kind.to_le_bytes());
            n.extend(name.as_bytes());
            n.resize(n.len().next_multiple_of(4), 0);
            n.extend(desc);
            n.resize(n.len().next_multiple_of(4), 0);
            n
        }
        let mut notes = note("CORE", 1, &[0u8; 16]);
        notes.extend(note("VMCOREINFO", 0, info.as_bytes()));
        let phoff = 64u64;
        let note_off = phoff + 2 * 56;
        let mut f = vec![0u8; 64];
        f[0..4].copy_from_slice(b"\x7fELF");
        f[4] = 2; // ELFCLASS64
        f[5] = 1; // little endian
        f[6] = 1; // EV_CURRENT
        f[16..18].copy_from_slice(&4u16.to_le_bytes()); // ET_CORE
        f[18..20].copy_from_slice(&183u16.to_le_bytes()); // EM_AARCH64
        f[20..24].copy_from_slice(&1u32.to_le_bytes());
        f[32..40].copy_from_slice(&phoff.to_le_bytes());
        f[52..54].copy_from_slice(&64u16.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let phdr = |kind: u32, offset: u64, size: u64| {
            let mut p = vec![0u8; 56];
            p[0..4].copy_from_slice(&kind.to_le_bytes());
            p[8..16].copy_from_slice(&offset.to_le_bytes());
            p[32..40].copy_from_slice(&size.to_le_bytes());
            p[40..48].copy_from_slice(&size.to_le_bytes());
            p
        };
        f.extend(phdr(1, 1 << 40, 1 << 30)); // PT_LOAD far past the end
        f.extend(phdr(PT_NOTE, note_off, notes.len() as u64));
        f.extend(notes);
        f
    }

    #[test]
    fn release_crash_time_and_page_size_from_the_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmcore");
        std::fs::write(
            &path,
            core("OSRELEASE=6.12.57+deb13-arm64\nBUILD-ID=abc\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffff\nCRASHTIME=1764840000\n"),
        )
        .unwrap();
        let k = read(&path).unwrap();
        assert_eq!(
            k,
            CrashedKernel {
                release: "6.12.57+deb13-arm64".into(),
                crash_time: Some(1_764_840_000),
                page_size: Some(4096),
            }
        );
    }

    #[test]
    fn missing_file_note_or_release_each_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vmcore");
        assert!(
            read(&path)
                .unwrap_err()
                .contains("absent (not a capture kernel)")
        );
        std::fs::write(&path, b"not an elf").unwrap();
        assert!(read(&path).unwrap_err().contains("not an ELF64 core"));
        let mut c = core("PAGESIZE=4096\n");
        std::fs::write(&path, &c).unwrap();
        assert!(read(&path).unwrap_err().contains("no OSRELEASE"));
        // Rename the note: no VMCOREINFO left.
        let at = c.windows(10).position(|w| w == b"VMCOREINFO").unwrap();
        c[at] = b'X';
        std::fs::write(&path, &c).unwrap();
        assert!(read(&path).unwrap_err().contains("no VMCOREINFO note"));
    }

    #[test]
    fn truncated_cores_never_panic() {
        let c = core("OSRELEASE=6.1.0\n");
        for cut in 0..c.len() {
            let _ = vmcoreinfo_text(&c[..cut]);
        }
    }
}
