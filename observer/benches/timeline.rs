//! After decoding and parsing, every event goes through fusion (`timeline::Fusion`) and the
//! JSON Lines writer's encoder (`sinks::jsonl::encode`):
//! - `fusion/self_test_passthrough`: the storm path, events that can have no twin;
//! - `fusion/fuse_boots`: a report's whole-input fusion of the recorded console log, the
//!   recorded dmesg and the eBPF sightings of the same AER errors (which merge);
//! - `jsonl/self_test`, `jsonl/log_events`: one JSON line per event into the writer's buffer.
//!
//! Throughput is in events.
mod common;

use std::{hint::black_box, path::Path};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use observer::{
    event::{Event, Source},
    logparse::parse_text_log,
    sinks::jsonl,
    timeline::{Fusion, fuse_boots},
};
use observer_common::Record;

/// Events per batch in the storm benchmarks (the eBPF source's `MAX_BATCH`).
const BATCH: u64 = 4096;

fn elements(events: &[Event]) -> Throughput {
    Throughput::Elements(u64::try_from(events.len()).expect("few events"))
}

fn decoded(ring: &[u8]) -> Vec<Event> {
    let decoder = common::decoder();
    ring.as_chunks::<{ Record::SIZE }>()
        .0
        .iter()
        .map(|item| decoder.decode(item).expect("valid record"))
        .collect()
}

/// The recorded console log, then the recorded dmesg of the AER run with the eBPF
/// sightings of its three errors: one capture's worth of evidence from three sources.
fn log_events() -> Vec<Event> {
    let mut events = parse_text_log(Path::new("console.log"), common::KDUMP_CONSOLE);
    let mut aer = parse_text_log(Path::new("dmesg.log"), common::AER_DMESG);
    for event in &mut aer {
        event.source = Source::Kmsg;
    }
    events.extend(aer);
    events.extend(decoded(&common::aer_records()));
    events
}

fn fusion(c: &mut Criterion) {
    let storm = decoded(&common::self_test_records(BATCH));
    let mut group = c.benchmark_group("fusion");
    group.throughput(elements(&storm));
    group.bench_function("self_test_passthrough", |b| {
        let mut fusion = Fusion::new();
        b.iter_batched(
            || storm.clone(),
            |batch| -> Vec<Event> {
                batch
                    .into_iter()
                    .filter_map(|e| fusion.push(e, 0))
                    .collect()
            },
            BatchSize::SmallInput,
        );
    });
    let events = log_events();
    let fused = fuse_boots(events.clone());
    assert!(
        fused.iter().any(|e| e.sources.len() > 1),
        "some sightings merge"
    );
    group.throughput(elements(&events));
    group.bench_function("fuse_boots", |b| {
        b.iter_batched(|| events.clone(), fuse_boots, BatchSize::SmallInput);
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("jsonl");
    for (name, events) in [
        ("self_test", decoded(&common::self_test_records(BATCH))),
        ("log_events", fuse_boots(log_events())),
    ] {
        let mut buf = Vec::new();
        group.throughput(elements(&events));
        group.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                jsonl::encode(&mut buf, black_box(&events));
                buf.len()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, fusion, encode);
criterion_main!(benches);
