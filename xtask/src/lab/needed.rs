//! Shared libraries of a dynamically linked ELF: its `DT_NEEDED` entries (read by `crate::elf`),
//! resolved recursively in unpacked package trees, and its `PT_INTERP` loader.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail, ensure};

use crate::elf::read;

/// Everything `binary` needs at run time, found in `roots` under `lib_dirs`.
#[derive(Debug, Default)]
pub(crate) struct Closure {
    /// Soname -> the real file (symlinks followed), for every library, recursively.
    pub libraries: BTreeMap<String, PathBuf>,
    /// `PT_INTERP` path and the file that provides it.
    pub interpreter: Option<(String, PathBuf)>,
}

/// Resolves the libraries of `binary`, recursively, in `roots` (unpacked packages), looking in
/// each root's `lib_dirs` (e.g. `lib/aarch64-linux-gnu`). Every library must have the binary's
/// architecture.
pub(crate) fn closure(
    binary: &Path,
    roots: &[PathBuf],
    lib_dirs: &[&str],
) -> anyhow::Result<Closure> {
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
        let empty = tempfile::tempdir().unwrap();
        let err = super::closure(&me, &[empty.path().to_path_buf()], &dirs)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("loader") || err.contains("is in none"),
            "{err}"
        );
    }
}
