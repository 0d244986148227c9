//! Finding (and if needed mounting) tracefs, and reading event formats from it.
use std::{
    ffi::CString,
    io,
    path::{Path, PathBuf},
};

use super::trace_format::{EventFormat, FormatError};

/// Where tracefs lives on current kernels.
pub const TRACEFS: &str = "/sys/kernel/tracing";
/// Where it lives inside debugfs on old kernels or setups.
pub const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// How tracefs was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mount {
    /// It was already mounted.
    Present,
    /// This process mounted it.
    MountedByUs,
}

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error("tracefs is not mounted at {TRACEFS} and mounting it failed: {0}")]
    Mount(io::Error),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// A mounted tracefs.
#[derive(Clone, Debug)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// Uses tracefs at `root` as it is (for tests and recorded trees).
    #[must_use]
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Finds tracefs, mounting it at [`TRACEFS`] when no copy is mounted.
    pub fn find_or_mount() -> Result<(Self, Mount), TracefsError> {
        for root in [TRACEFS, DEBUGFS_TRACING] {
            if Path::new(root).join("events").is_dir() {
                return Ok((Self::at(root), Mount::Present));
            }
        }
        mount_tracefs(Path::new(TRACEFS)).map_err(TracefsError::Mount)?;
        Ok((Self::at(TRACEFS), Mount::MountedByUs))
    }

    /// The mount point.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the kernel has the event `category/name`.
    #[must_use]
    pub fn has_event(&self, category: &str, name: &str) -> bool {
        self.event_dir(category, name).join("format").is_file()
    }

    /// Whether this kernel offers kprobe events through tracefs.
    #[must_use]
    pub fn has_kprobe_events(&self) -> bool {
        self.root.join("kprobe_events").exists()
    }

    /// Parses the `format` file of `category/name`.
    pub fn format(&self, category: &str, name: &str) -> Result<EventFormat, TracefsError> {
        let path = self.event_dir(category, name).join("format");
        let text = std::fs::read_to_string(&path).map_err(|source| TracefsError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(EventFormat::parse(&path, &text)?)
    }

    fn event_dir(&self, category: &str, name: &str) -> PathBuf {
        self.root.join("events").join(category).join(name)
    }
}

fn mount_tracefs(target: &Path) -> io::Result<()> {
    let target = CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let fstype = c"tracefs";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            fstype.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
