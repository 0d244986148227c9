//! Present only so that `observer` can name this crate as a build dependency; the programs are in
//! `main.rs`.
#![no_std]

// The programs' dependencies, named here too so that this stub does not count them unused.
use aya_ebpf as _;
use observer_common as _;
