//! The kernel-log parser's hot paths over the recorded QEMU logs of `tests/data/logs/`:
//! - `kmsg/*`: `/dev/kmsg` records (one `read()` each): the header framing alone, and the
//!   daemon's `KmsgDecoder` (framing, sequence accounting, line parser, group folding);
//! - `text/*`: plain-text lines (dmesg, serial console): the `[ts]` framing alone, and a
//!   whole text log into events as `report` reads it.
//!
//! Throughput is in bytes of input.
mod common;

use std::{hint::black_box, path::Path};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use observer::logparse::{KmsgDecoder, parse_record, parse_text_line, parse_text_log_bytes};

fn bytes(total: usize) -> Throughput {
    Throughput::Bytes(u64::try_from(total).expect("small input"))
}

fn kmsg(c: &mut Criterion) {
    let records = common::kmsg_records();
    let mut group = c.benchmark_group("kmsg");
    group.throughput(bytes(records.iter().map(Vec::len).sum()));
    group.bench_function("parse_record", |b| {
        b.iter(|| {
            for record in &records {
                let _ = black_box(parse_record(black_box(record)));
            }
        });
    });
    group.bench_function("decoder", |b| {
        b.iter(|| {
            let mut decoder = KmsgDecoder::new();
            let mut events = Vec::new();
            for record in &records {
                decoder.push_record(black_box(record), &mut events);
            }
            decoder.finish(&mut events);
            events
        });
    });
    group.finish();
}

fn text(c: &mut Criterion) {
    let lines = common::text_lines();
    let mut group = c.benchmark_group("text");
    group.throughput(bytes(lines.iter().map(|l| l.len() + 1).sum()));
    group.bench_function("parse_text_line", |b| {
        b.iter(|| {
            for line in &lines {
                let _ = black_box(parse_text_line(black_box(line)));
            }
        });
    });
    let logs = common::text_logs();
    group.throughput(bytes(logs.iter().map(|l| l.len()).sum()));
    group.bench_function("parse_text_log", |b| {
        b.iter(|| {
            logs.map(|log| parse_text_log_bytes(Path::new("bench.log"), black_box(log.as_bytes())))
        });
    });
    group.finish();
}

criterion_group!(benches, kmsg, text);
criterion_main!(benches);
