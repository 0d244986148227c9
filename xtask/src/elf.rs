//! Just enough ELF to check what a build produced: architecture, static or not, size.
use std::{fmt, path::Path};

use anyhow::{bail, ensure};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    X86_64,
    Aarch64,
    Other(u16),
}

/// Facts about an ELF executable.
#[derive(Debug)]
pub struct Info {
    pub machine: Machine,
    /// No `PT_INTERP`: the kernel runs it without a dynamic loader.
    pub is_static: bool,
    pub size: u64,
}

impl fmt::Display for Info {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let machine = match self.machine {
            Machine::X86_64 => "x86_64".to_owned(),
            Machine::Aarch64 => "aarch64".to_owned(),
            Machine::Other(m) => format!("e_machine {m}"),
        };
        let linkage = if self.is_static { "static" } else { "dynamic" };
        #[expect(clippy::cast_precision_loss, reason = "display only")]
        let mib = self.size as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "{machine} ELF, {linkage}, {} bytes = {mib:.2} MiB",
            self.size
        )
    }
}

const PT_INTERP: u32 = 3;

/// Reads the ELF header and program headers of a 64-bit little-endian file.
pub fn inspect(path: &Path) -> anyhow::Result<Info> {
    let data = std::fs::read(path)?;
    ensure!(
        data.len() >= 64 && data[..4] == *b"\x7fELF",
        "not an ELF file"
    );
    ensure!(
        data[4] == 2 && data[5] == 1,
        "not a 64-bit little-endian ELF"
    );
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(data[o..o + 8].try_into().expect("8 bytes"));
    let machine = match u16_at(18) {
        62 => Machine::X86_64,
        183 => Machine::Aarch64,
        m => Machine::Other(m),
    };
    let phoff = usize::try_from(u64_at(32))?;
    let phentsize = usize::from(u16_at(54));
    let phnum = usize::from(u16_at(56));
    let Some(end) = phentsize
        .checked_mul(phnum)
        .and_then(|n| n.checked_add(phoff))
    else {
        bail!("program header table overflows");
    };
    ensure!(
        end <= data.len(),
        "program header table past the end of the file"
    );
    let is_static = (0..phnum).all(|i| u32_at(phoff + i * phentsize) != PT_INTERP);
    Ok(Info {
        machine,
        is_static,
        size: data.len() as u64,
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
    }

    #[test]
    fn non_elf_is_rejected() {
        let dir = std::env::temp_dir().join(format!("xtask-elf-{}", std::process::id()));
        std::fs::write(&dir, b"#!/bin/sh\necho hi\n").unwrap();
        let e = inspect(&dir).unwrap_err();
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(e.to_string(), "not an ELF file");
    }
}
