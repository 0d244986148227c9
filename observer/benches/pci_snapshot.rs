//! The PCI config-space snapshot (`system::pci`, `sources::pci_snapshot`) over a generated sysfs
//! tree of 256 PCI Express functions in a tempdir (every config file 4 096 bytes; one in eight with an
//! uncorrectable error latched, one in eight with only residue):
//! - `pci/first_scan_256`: a fresh scanner: list, open and read every config file, parse, decode,
//!   read the `driver`, `iommu_group` and `iommu` links (the daemon's start snapshot);
//! - `pci/rescan_256`: the same with the files already open (the rescan every 3 s);
//! - `pci/rescan_256_events`: a rescan turned into events, as the daemon does;
//! - `pci/parse_config`: `system::pci::parse` + `findings` of one 4 096-byte config space.
//!
//! Throughput is in devices. The target (issue 12): a snapshot of 256 devices under 50 ms, with
//! memory bounded (one 4 KiB read buffer, at most `MAX_DEVICES` devices and open files).
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use observer::{
    sources::pci_snapshot::{PciSnapshotSource, Phase},
    system::pci::{
        self, Scanner,
        snapshot::{MAX_DEVICES, fake},
    },
};

const DEVICES: u16 = 256;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for i in 0..DEVICES {
        let bdf = format!("0000:{:02x}:{:02x}.{}", i >> 5, (i >> 3) & 3, i & 7);
        let config = match i % 8 {
            0 => fake::endpoint(true, 1 << 18, 18),
            1 => fake::endpoint(true, 0, 18),
            _ => fake::endpoint(i % 2 == 0, 0, 0),
        };
        fake::add_device(dir.path(), &bdf, &config).expect("fake device");
    }
    dir
}

fn bench(c: &mut Criterion) {
    let dir = tree();
    eprintln!(
        "pci bench: {} bytes per decoded device, read buffer 4096 bytes, at most {MAX_DEVICES} devices",
        std::mem::size_of::<pci::Device>()
    );
    let mut g = c.benchmark_group("pci");
    g.throughput(Throughput::Elements(u64::from(DEVICES)));
    g.bench_function("first_scan_256", |b| {
        b.iter_batched(
            || Scanner::new(dir.path()),
            |mut s| black_box(s.scan()),
            BatchSize::SmallInput,
        );
    });
    let mut scanner = Scanner::new(dir.path());
    let first = scanner.scan();
    assert_eq!(first.devices.len(), usize::from(DEVICES));
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    g.bench_function("rescan_256", |b| b.iter(|| black_box(scanner.scan())));
    let mut source = PciSnapshotSource::new(dir.path());
    source.scan(Phase::Start, 0);
    g.bench_function("rescan_256_events", |b| {
        b.iter(|| black_box(source.scan(Phase::Rescan, 1)));
    });
    g.throughput(Throughput::Elements(1));
    let config = fake::endpoint(true, 1 << 18, 18);
    g.bench_function("parse_config", |b| {
        b.iter(|| {
            let c = pci::parse(black_box(&config)).expect("valid");
            black_box(pci::findings(&c, 0))
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
