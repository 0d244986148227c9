//! The ring-buffer record decoder (`probes::Decoder::decode`): raw `observer_common::Record`
//! bytes → one timeline `Event`, as the eBPF source's drain loop calls it for every record.
mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use observer::{event::Event, probes::Decoder};
use observer_common::Record;

/// Records per drain batch (the eBPF source's `MAX_BATCH`).
const BATCH: u64 = 4096;

/// Decodes every record of `ring` into a batch, as the drain loop does.
fn drain(decoder: &Decoder, ring: &[u8]) -> Vec<Event> {
    let mut batch = Vec::new();
    for item in ring.as_chunks::<{ Record::SIZE }>().0 {
        if let Ok(event) = decoder.decode(black_box(item)) {
            batch.push(event);
        }
    }
    batch
}

fn bench(c: &mut Criterion, name: &str, decoder: &Decoder, ring: &[u8]) {
    let records = u64::try_from(ring.len() / Record::SIZE).expect("few records");
    assert_eq!(
        drain(decoder, ring).len(),
        ring.len() / Record::SIZE,
        "{name}: every record decodes"
    );
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(records));
    group.bench_function(name, |b| b.iter(|| drain(decoder, ring)));
    group.finish();
}

fn decode(c: &mut Criterion) {
    let decoder = common::decoder();
    bench(c, "self_test", &decoder, &common::self_test_records(BATCH));
    bench(c, "aer", &decoder, &common::aer_records());
    bench(c, "smmu_reg_write", &decoder, &common::smmu_reset_records());
    bench(c, "capture_mix", &decoder, &common::capture_mix_records());
}

criterion_group!(benches, decode);
criterion_main!(benches);
