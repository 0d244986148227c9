//! The running kernel's GNU build ID, from `/sys/kernel/notes` (the ELF notes of vmlinux, every
//! kernel since 2.6.23): two kernels with the same build ID are the same build, so what was
//! learnt from one's kallsyms holds for the other.
//!
//! The notes are parsed here by hand: the format is three `u32`s and two padded byte strings
//! per note, and the `object` crate would add its ELF machinery to a crash-kernel binary for it.
use std::{io, path::Path};

/// The usual path.
pub const NOTES: &str = "/sys/kernel/notes";

/// `NT_GNU_BUILD_ID` (`include/uapi/linux/elf.h`).
const NT_GNU_BUILD_ID: u32 = 3;

/// The build ID in `path` as lowercase hex; `Ok(None)` when the kernel was built without one.
pub fn read(path: &Path) -> io::Result<Option<String>> {
    Ok(parse(&std::fs::read(path)?))
}

/// The GNU build ID among the ELF notes `bytes` (native endianness), as lowercase hex.
#[must_use]
pub fn parse(bytes: &[u8]) -> Option<String> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        usize::try_from(u32::from_ne_bytes(b.try_into().ok()?)).ok()
    };
    let pad = |n: usize| n.div_ceil(4) * 4;
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let (name_len, desc_len, kind) = (word(at)?, word(at + 4)?, word(at + 8)?);
        let name_at = at + 12;
        let desc_at = name_at.checked_add(pad(name_len))?;
        let next = desc_at.checked_add(pad(desc_len))?;
        let name = bytes.get(name_at..name_at + name_len)?;
        let desc = bytes.get(desc_at..desc_at + desc_len)?;
        if kind == NT_GNU_BUILD_ID as usize && name == b"GNU\0" && !desc.is_empty() {
            let mut hex = String::with_capacity(desc.len() * 2);
            for b in desc {
                hex.push(char::from_digit(u32::from(b >> 4), 16)?);
                hex.push(char::from_digit(u32::from(b & 0xf), 16)?);
            }
            return Some(hex);
        }
        at = next;
    }
    None
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// ELF notes as the kernel exports them: a Xen-like note first, then the build ID.
    pub(crate) fn notes(build_id: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        let mut note = |name: &[u8], kind: u32, desc: &[u8]| {
            b.extend_from_slice(&u32::try_from(name.len()).unwrap().to_ne_bytes());
            b.extend_from_slice(&u32::try_from(desc.len()).unwrap().to_ne_bytes());
            b.extend_from_slice(&kind.to_ne_bytes());
            b.extend_from_slice(name);
            b.resize(b.len().div_ceil(4) * 4, 0);
            b.extend_from_slice(desc);
            b.resize(b.len().div_ceil(4) * 4, 0);
        };
        note(b"Linux\0", 0x100, &[1, 2, 3]);
        note(b"GNU\0", NT_GNU_BUILD_ID, build_id);
        b
    }

    #[test]
    fn finds_the_gnu_build_id_after_other_notes() {
        let id = [0xde, 0xad, 0xbe, 0xef, 0x01];
        assert_eq!(parse(&notes(&id)).as_deref(), Some("deadbeef01"));
    }

    #[test]
    fn no_build_id_and_truncated_notes_are_none() {
        assert_eq!(parse(&[]), None);
        let full = notes(&[0xab; 20]);
        // Cut inside the build ID's description: no partial ID.
        assert_eq!(parse(&full[..full.len() - 4]), None);
        // A name length that points past the end.
        let mut bad = full.clone();
        bad[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(parse(&bad), None);
    }
}
