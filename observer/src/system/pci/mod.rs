//! PCI devices from sysfs: a config-space parser written from the PCI/PCIe register layout,
//! the decoded error bits and residue, and snapshots of every device.
pub mod config;
pub mod findings;
pub mod snapshot;

pub use config::{Config, ConfigError, parse};
pub use findings::{Findings, findings};
pub use snapshot::{Device, Scanner, Snapshot};
