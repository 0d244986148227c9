//! What the build and the lab need to know about an ELF file, read with the `object` crate:
//! architecture, static or not, size; and for a dynamic one its loader and `DT_NEEDED` sonames.
use std::{fmt, path::Path};

use anyhow::Context as _;
use object::{
    elf,
    read::elf::{ElfFile64, FileHeader as _, ProgramHeader as _},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Machine {
    X86_64,
    Aarch64,
    Other(u16),
}

impl From<u16> for Machine {
    fn from(e_machine: u16) -> Self {
        match e_machine {
            elf::EM_X86_64 => Self::X86_64,
            elf::EM_AARCH64 => Self::Aarch64,
            m => Self::Other(m),
        }
    }
}

impl fmt::Display for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::X86_64 => f.write_str("x86_64"),
            Self::Aarch64 => f.write_str("aarch64"),
            Self::Other(m) => write!(f, "e_machine {m}"),
        }
    }
}

/// Facts about an ELF executable.
#[derive(Debug)]
pub(crate) struct Info {
    pub machine: Machine,
    /// No `PT_INTERP`: the kernel runs it without a dynamic loader.
    pub is_static: bool,
    pub size: u64,
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let linkage = if self.is_static { "static" } else { "dynamic" };
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let mib = self.size as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "{} ELF, {linkage}, {} bytes = {mib:.2} MiB",
            self.machine, self.size
        )
    }
}

/// What the dynamic loader needs to know about one ELF file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dynamic {
    pub machine: Machine,
    /// `PT_INTERP`, e.g. `/lib/ld-linux-aarch64.so.1`.
    pub interpreter: Option<String>,
    /// `DT_NEEDED` sonames, in order.
    pub needed: Vec<String>,
}

/// Reads the ELF header and program headers of the 64-bit ELF file at `path`.
pub(crate) fn inspect(path: &Path) -> anyhow::Result<Info> {
    let data = std::fs::read(path)?;
    let d = read(&data)?;
    Ok(Info {
        machine: d.machine,
        is_static: d.interpreter.is_none(),
        size: data.len() as u64,
    })
}

/// Reads the machine, the `PT_INTERP` loader and the `DT_NEEDED` entries of a 64-bit ELF.
pub(crate) fn read(data: &[u8]) -> anyhow::Result<Dynamic> {
    anyhow::ensure!(data.starts_with(b"\x7fELF"), "not an ELF file");
    let file = ElfFile64::<object::Endianness>::parse(data).context("not a valid 64-bit ELF")?;
    let endian = file.endian();
    let mut interpreter = None;
    for ph in file.elf_program_headers() {
        if let Some(path) = ph.interpreter(endian, data).context("reading PT_INTERP")? {
            interpreter = Some(String::from_utf8_lossy(path).into_owned());
        }
    }
    let table = file
        .elf_dynamic_table()
        .context("reading the dynamic section")?;
    let mut needed = Vec::new();
    for entry in table.iter().filter(|d| d.tag == elf::DT_NEEDED) {
        let name = table.string(entry).context("reading a DT_NEEDED name")?;
        needed.push(String::from_utf8_lossy(name).into_owned());
    }
    Ok(Dynamic {
        machine: file.elf_header().e_machine(endian).into(),
        interpreter,
        needed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_test_binary_is_a_host_elf() {
        let me = std::env::current_exe().unwrap();
        let info = inspect(&me).unwrap();
        assert_eq!(
            info.machine,
            if cfg!(target_arch = "x86_64") {
                Machine::X86_64
            } else {
                Machine::Aarch64
            }
        );
        assert!(info.size > 0);
        // The test binary is linked against glibc: it has a loader, so it is not static.
        assert!(!info.is_static, "{info}");
    }

    #[test]
    fn reads_the_loader_and_needed_libraries_of_a_real_elf() {
        let me = std::env::current_exe().unwrap();
        let dynamic = read(&std::fs::read(&me).unwrap()).unwrap();
        assert!(
            dynamic.needed.iter().any(|n| n == "libc.so.6"),
            "{dynamic:?}"
        );
        assert!(
            dynamic
                .interpreter
                .as_deref()
                .is_some_and(|i| i.contains("ld-linux")),
            "{dynamic:?}"
        );
    }

    #[test]
    fn non_elf_and_truncated_files_are_rejected() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), b"#!/bin/sh\necho hi\n").unwrap();
        let e = inspect(file.path()).unwrap_err();
        assert_eq!(e.to_string(), "not an ELF file");
        let mut data = b"\x7fELF\x02\x01\x01".to_vec();
        data.resize(64, 0);
        data[32] = 0xff; // program headers far past the end
        data[56] = 1;
        data[54] = 56;
        assert!(read(&data).is_err());
    }
}
