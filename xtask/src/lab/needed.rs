//! Shared libraries of a dynamically linked ELF: its `DT_NEEDED` entries, resolved recursively
//! in unpacked package trees, and its `PT_INTERP` loader.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail, ensure};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;

/// What the dynamic loader needs to know about one ELF file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Dynamic {
    pub machine: u16,
    /// `PT_INTERP`, e.g. `/lib/ld-linux-aarch64.so.1`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` sonames, in order.
    pub needed: Vec<String>,
}

/// Reads the ELF header, program headers and dynamic section of a 64-bit little-endian ELF.
pub fn read(data: &[u8]) -> anyhow::Result<Dynamic> {
    ensure!(
        data.len() >= 64 && data.starts_with(b"\x7fELF"),
        "not an ELF file"
    );
    ensure!(
        data[4] == 2 && data[5] == 1,
        "not a 64-bit little-endian ELF"
    );
    let at = Reader(data);
    let machine = at.u16(18)?;
    let phoff = at.usize(32)?;
    let phentsize = usize::from(at.u16(54)?);
    let phnum = usize::from(at.u16(56)?);
    let mut loads = Vec::new();
    let mut dynamic = None;
    let mut interpreter = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let (offset, vaddr, filesz) = (at.u64(ph + 8)?, at.u64(ph + 16)?, at.u64(ph + 32)?);
        match at.u32(ph)? {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            PT_INTERP => {
                let bytes = at.slice(offset, filesz)?;
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                interpreter = Some(String::from_utf8_lossy(&bytes[..end]).into_owned());
            }
            _ => {}
        }
    }
    let mut out = Dynamic {
        machine,
        interpreter,
        needed: Vec::new(),
    };
    let Some((dyn_offset, dyn_size)) = dynamic else {
        return Ok(out); // static
    };
    let mut needed_offsets = Vec::new();
    let mut strtab_vaddr = None;
    for i in 0..dyn_size / 16 {
        let entry = dyn_offset + i * 16;
        let (tag, value) = (
            at.u64(usize::try_from(entry)?)?,
            at.u64(usize::try_from(entry + 8)?)?,
        );
        match tag {
            DT_NULL => break,
            DT_NEEDED => needed_offsets.push(value),
            DT_STRTAB => strtab_vaddr = Some(value),
            _ => {}
        }
    }
    if needed_offsets.is_empty() {
        return Ok(out);
    }
    let strtab_vaddr = strtab_vaddr.context("DT_NEEDED without DT_STRTAB")?;
    let strtab = loads
        .iter()
        .find(|(vaddr, _, size)| (*vaddr..vaddr + size).contains(&strtab_vaddr))
        .map(|(vaddr, offset, _)| strtab_vaddr - vaddr + offset)
        .context("DT_STRTAB is outside every PT_LOAD segment")?;
    for name in needed_offsets {
        out.needed.push(at.c_string(strtab + name)?);
    }
    Ok(out)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, offset: usize) -> anyhow::Result<[u8; N]> {
        self.0
            .get(offset..offset + N)
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("truncated ELF: {N} bytes at {offset:#x}"))
    }
    fn u16(&self, o: usize) -> anyhow::Result<u16> {
        Ok(u16::from_le_bytes(self.bytes(o)?))
    }
    fn u32(&self, o: usize) -> anyhow::Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(o)?))
    }
    fn u64(&self, o: usize) -> anyhow::Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(o)?))
    }
    fn usize(&self, o: usize) -> anyhow::Result<usize> {
        Ok(usize::try_from(self.u64(o)?)?)
    }
    fn slice(&self, offset: u64, len: u64) -> anyhow::Result<&[u8]> {
        let (offset, len) = (usize::try_from(offset)?, usize::try_from(len)?);
        self.0
            .get(offset..offset.saturating_add(len))
            .with_context(|| format!("truncated ELF: {len} bytes at {offset:#x}"))
    }
    fn c_string(&self, offset: u64) -> anyhow::Result<String> {
        let rest = self
            .0
            .get(usize::try_from(offset)?..)
            .context("string past the end of the ELF")?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .context("unterminated string in the ELF")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// Everything `binary` needs at run time, found in `roots` under `lib_dirs`.
#[derive(Debug, Default)]
pub struct Closure {
    /// Soname -> the real file (symlinks followed), for every library, recursively.
    pub libraries: BTreeMap<String, PathBuf>,
    /// `PT_INTERP` path and the file that provides it.
    pub interpreter: Option<(String, PathBuf)>,
}

/// Resolves the libraries of `binary`, recursively, in `roots` (unpacked packages), looking in
/// each root's `lib_dirs` (e.g. `lib/aarch64-linux-gnu`). Every library must have the binary's
/// architecture.
pub fn closure(binary: &Path, roots: &[PathBuf], lib_dirs: &[&str]) -> anyhow::Result<Closure> {
    let data = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let top = read(&data).with_context(|| format!("reading {}", binary.display()))?;
    let mut out = Closure::default();
    if let Some(interp) = &top.interpreter {
        let name = interp.rsplit('/').next().unwrap_or(interp);
        let file = find(name, roots, lib_dirs)?
            .with_context(|| format!("{}: loader {interp} not found", binary.display()))?;
        out.interpreter = Some((interp.clone(), file));
    }
    let mut queue: Vec<(String, String)> = top
        .needed
        .iter()
        .map(|n| (n.clone(), binary.display().to_string()))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some((soname, wanted_by)) = queue.pop() {
        if !seen.insert(soname.clone()) {
            continue;
        }
        let Some(file) = find(&soname, roots, lib_dirs)? else {
            bail!(
                "{soname} (needed by {wanted_by}) is in none of the unpacked packages ({})",
                roots
                    .iter()
                    .filter_map(|r| r.file_name())
                    .map(|n| n.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let data = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
        let lib = read(&data).with_context(|| format!("reading {}", file.display()))?;
        ensure!(
            lib.machine == top.machine,
            "{} has ELF machine {}, {} has {}",
            file.display(),
            lib.machine,
            binary.display(),
            top.machine
        );
        queue.extend(lib.needed.iter().map(|n| (n.clone(), soname.clone())));
        out.libraries.insert(soname, file);
    }
    Ok(out)
}

/// The real file behind `name` in the first root that has it, symlinks resolved inside that root.
fn find(name: &str, roots: &[PathBuf], lib_dirs: &[&str]) -> anyhow::Result<Option<PathBuf>> {
    for root in roots {
        for dir in lib_dirs {
            let candidate = root.join(dir).join(name);
            if candidate.symlink_metadata().is_err() {
                continue;
            }
            let real = std::fs::canonicalize(&candidate)
                .with_context(|| format!("resolving {}", candidate.display()))?;
            let root_real = std::fs::canonicalize(root)
                .with_context(|| format!("resolving {}", root.display()))?;
            ensure!(
                real.starts_with(&root_real),
                "{} points outside its package tree (to {})",
                candidate.display(),
                real.display()
            );
            return Ok(Some(real));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This test binary is a real dynamically linked host ELF: its loader and libc must be found
    /// on the host's own multiarch library folders.
    #[test]
    fn walks_the_needed_libraries_of_a_real_elf() {
        let me = std::env::current_exe().unwrap();
        let dynamic = read(&std::fs::read(&me).unwrap()).unwrap();
        assert!(
            dynamic.needed.iter().any(|n| n == "libc.so.6"),
            "{dynamic:?}"
        );
        let interp = dynamic.interpreter.clone().expect("a dynamic test binary");
        let triple = if cfg!(target_arch = "x86_64") {
            "x86_64-linux-gnu"
        } else {
            "aarch64-linux-gnu"
        };
        let dirs = [
            format!("lib/{triple}"),
            format!("usr/lib/{triple}"),
            "lib".into(),
            "lib64".into(),
        ];
        let dirs: Vec<&str> = dirs.iter().map(String::as_str).collect();
        let closure = closure(&me, &[PathBuf::from("/")], &dirs).unwrap();
        assert!(closure.libraries.contains_key("libc.so.6"), "{closure:?}");
        let (path, file) = closure.interpreter.unwrap();
        assert_eq!(path, interp);
        assert!(file.is_file());
        // A root without the libraries names the missing one.
        let empty = std::env::temp_dir();
        let err = super::closure(&me, &[empty], &dirs)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("loader") || err.contains("is in none"),
            "{err}"
        );
    }

    #[test]
    fn rejects_truncated_files() {
        let mut data = b"\x7fELF\x02\x01".to_vec();
        data.resize(64, 0);
        data[32] = 0xff; // program headers far past the end
        data[56] = 1;
        assert!(read(&data).unwrap_err().to_string().contains("truncated"));
        assert_eq!(
            read(b"#!/bin/sh").unwrap_err().to_string(),
            "not an ELF file"
        );
    }
}
