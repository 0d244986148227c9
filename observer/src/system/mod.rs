//! Who the machine is: facts read from sysfs and firmware tables, below every source.
pub mod pci;
