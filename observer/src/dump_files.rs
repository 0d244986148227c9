//! What the dump tools leave in a capture's directory, by name: the one place that knows
//! kdump-tools' (`dump.<stamp>`, `dump-incomplete[.ext]`, `dmesg.<stamp>`), kdump-utils'
//! (`vmcore`, `vmcore-incomplete`, `vmcore-dmesg.txt`, `kexec-dmesg.log`) and makedumpfile's
//! flattened output (`vmcore.flat`).
use std::path::Path;

/// A dump still being written (kdump-tools adds the compressor's extension:
/// `dump-incomplete.zst`).
#[must_use]
pub fn is_partial_dump(name: &str) -> bool {
    name.starts_with("dump-incomplete") || name.starts_with("vmcore-incomplete")
}

/// A dump under its final name (renamed there once the dump tool finished).
#[must_use]
pub fn is_final_dump(name: &str) -> bool {
    name.starts_with("dump.") || name == "vmcore" || name == "vmcore.flat"
}

/// The capture kernel's log as the dump tool saved it.
#[must_use]
pub fn is_dmesg(name: &str) -> bool {
    name.starts_with("dmesg") || name.starts_with("vmcore-dmesg") || name == "kexec-dmesg.log"
}

/// The file names in `dir`, or `None` if it cannot be read.
fn names(dir: &Path) -> Option<Vec<String>> {
    Some(
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
    )
}

/// Whether the dump in `dir` is written under its final name and nothing is still being
/// written there.
#[must_use]
pub fn dump_written(dir: &Path) -> bool {
    names(dir).is_some_and(|names| {
        names.iter().any(|n| is_final_dump(n)) && !names.iter().any(|n| is_partial_dump(n))
    })
}

/// Whether the dump in `dir` is complete, and why: `None` when `dir` holds nothing a dump
/// tool writes.
#[must_use]
pub fn outcome(dir: &Path) -> Option<(bool, String)> {
    let names = names(dir)?;
    let find = |pred: fn(&str) -> bool| names.iter().find(|n| pred(n)).cloned();
    if let Some(n) = find(is_partial_dump) {
        return Some((false, format!("{n} left behind: the dump was not finished")));
    }
    if let Some(n) = find(is_final_dump) {
        // kdump-tools reports "saved vmcore" even when makedumpfile failed and left an empty
        // file (bookworm's makedumpfile 1.7.2 on 6.12 arm64 kernels): size matters.
        let size = std::fs::metadata(dir.join(&n)).map_or(0, |m| m.len());
        return Some(if size == 0 {
            (
                false,
                format!("{n} is empty: the dump tool failed although the capture reported success"),
            )
        } else {
            (true, format!("{n} written ({size} bytes)"))
        });
    }
    find(is_dmesg).map(|n| (false, format!("only {n}: no dump file")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_dump_file_is_an_incomplete_capture() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("dump.202611241003"), b"").unwrap();
        let (complete, detail) = outcome(dir.path()).unwrap();
        assert!(!complete);
        assert!(detail.contains("is empty"), "{detail}");
        std::fs::write(dir.path().join("dump.202611241003"), b"KDUMP   ").unwrap();
        assert!(outcome(dir.path()).unwrap().0);
    }

    #[test]
    fn each_tool_s_names_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            outcome(dir.path()),
            None,
            "an empty directory is no capture"
        );
        std::fs::write(dir.path().join("vmcore-dmesg.txt"), "log").unwrap();
        assert_eq!(outcome(dir.path()).map(|o| o.0), Some(false));
        std::fs::write(dir.path().join("vmcore-incomplete"), "x").unwrap();
        assert!(!dump_written(dir.path()));
        let (complete, detail) = outcome(dir.path()).unwrap();
        assert!(
            !complete && detail.starts_with("vmcore-incomplete"),
            "{detail}"
        );
        std::fs::rename(
            dir.path().join("vmcore-incomplete"),
            dir.path().join("vmcore"),
        )
        .unwrap();
        assert!(dump_written(dir.path()));
        assert_eq!(outcome(dir.path()).map(|o| o.0), Some(true));
        assert!(is_partial_dump("dump-incomplete.zst") && is_final_dump("vmcore.flat"));
        assert!(is_dmesg("dmesg.202611241003") && is_dmesg("kexec-dmesg.log"));
    }
}
