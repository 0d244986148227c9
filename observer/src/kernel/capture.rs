//! Is this a kdump capture kernel?
//!
//! `/proc/vmcore` exists only in a capture kernel whose ELF core headers parsed: it is the one
//! test that works on every architecture (arm64 passes `elfcorehdr` in the device tree, not on
//! the command line).
use std::path::Path;

/// The file whose presence marks a capture kernel.
pub const VMCORE: &str = "/proc/vmcore";

/// Whether `vmcore` (normally [`VMCORE`]) exists.
#[must_use]
pub fn is_capture_kernel(vmcore: &Path) -> bool {
    vmcore.exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_of_the_file_decides() {
        let dir = tempfile::tempdir().unwrap();
        let vmcore = dir.path().join("vmcore");
        assert!(!is_capture_kernel(&vmcore));
        std::fs::write(&vmcore, b"").unwrap();
        assert!(is_capture_kernel(&vmcore));
    }
}
